// AVX2 versions of the logistic family: per element the scalar bits (the
// same operations; no FMA); the loss sum is a reduction (tol::reduce_bound).
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "../vmath/avx2.h"
#include "scalar.h"

namespace gv::kernels::avx2 {

GV_AVX2_FMA inline void sigmoid(float* out, const float* z, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, sigmoid8(_mm256_loadu_ps(z + i)));
  if (i < n) {
    __m256i t = tail_mask8(n - i);
    _mm256_maskstore_ps(out + i, t, sigmoid8(_mm256_maskload_ps(z + i, t)));
  }
}

// loss lanes of one vector; g receives the gradient lanes.
GV_AVX2_FMA inline __m256 logloss8(__m256 z, __m256 y, __m256* g) {
  const __m256 m = _mm256_mul_ps(y, z);
  const __m256 t = exp8(neg8(abs8(m)));
  const __m256 d = _mm256_add_ps(_mm256_set1_ps(1.f), t);
  const __m256 pos = _mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GE_OQ);
  *g = _mm256_mul_ps(neg8(y), _mm256_blendv_ps(_mm256_div_ps(_mm256_set1_ps(1.f), d), _mm256_div_ps(t, d), pos));
  return _mm256_add_ps(_mm256_max_ps(neg8(m), _mm256_setzero_ps()), log1p8(t));
}

GV_AVX2_FMA inline float logloss(const float* z, const float* y, float* grad, size_t n) {
  __m256 acc = _mm256_setzero_ps(), g;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc = _mm256_add_ps(acc, logloss8(_mm256_loadu_ps(z + i), _mm256_loadu_ps(y + i), &g));
    if (grad) _mm256_storeu_ps(grad + i, g);
  }
  if (i < n) {
    __m256i t = tail_mask8(n - i);
    __m256 l = logloss8(_mm256_maskload_ps(z + i, t), _mm256_maskload_ps(y + i, t), &g);
    acc = _mm256_add_ps(acc, _mm256_and_ps(l, _mm256_castsi256_ps(t)));
    if (grad) _mm256_maskstore_ps(grad + i, t, g);
  }
  return hsum8(acc);
}

}  // namespace gv::kernels::avx2
#endif
