// AVX2 versions of the ReLU family: the scalar bits.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "../vmath/avx2.h"
#include "scalar.h"

namespace gv::kernels::avx2 {

GV_AVX2_FMA inline void relu(float* out, const float* x, size_t n) {
  const __m256 zero = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 a = _mm256_max_ps(_mm256_loadu_ps(x + i), zero), b = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), zero);
    _mm256_storeu_ps(out + i, a);
    _mm256_storeu_ps(out + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_max_ps(_mm256_loadu_ps(x + i), zero));
  if (i < n) {
    __m256i t = tail_mask8(n - i);
    _mm256_maskstore_ps(out + i, t, _mm256_max_ps(_mm256_maskload_ps(x + i, t), zero));
  }
}

GV_AVX2_FMA inline void relu_backward(float* grad, const float* x, size_t n) {
  const __m256 zero = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 keep = _mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_GT_OQ);
    _mm256_storeu_ps(grad + i, _mm256_and_ps(keep, _mm256_loadu_ps(grad + i)));
  }
  if (i < n) {
    __m256i t = tail_mask8(n - i);
    __m256 keep = _mm256_cmp_ps(_mm256_maskload_ps(x + i, t), zero, _CMP_GT_OQ);
    _mm256_maskstore_ps(grad + i, t, _mm256_and_ps(keep, _mm256_maskload_ps(grad + i, t)));
  }
}

}  // namespace gv::kernels::avx2
#endif
