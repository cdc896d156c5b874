// AVX2 versions of the softmax family. The max is exact (any order); the sum
// of exponentials is a reduction (tol::kSoftmaxAbs, tol::kLossRel).
#pragma once
#if defined(__x86_64__)
#include <cmath>
#include <immintrin.h>
#include "../vmath/avx2.h"
#include "scalar.h"

namespace gv::kernels::avx2 {

GV_AVX2_FMA inline float max_of(const float* z, size_t k) {
  __m256 m = _mm256_set1_ps(z[0]);
  size_t j = 0;
  for (; j + 8 <= k; j += 8) m = _mm256_max_ps(_mm256_loadu_ps(z + j), m);
  if (j < k) {
    __m256i t = tail_mask8(k - j);
    m = _mm256_max_ps(_mm256_blendv_ps(m, _mm256_maskload_ps(z + j, t), _mm256_castsi256_ps(t)), m);
  }
  return hmax8(m);
}

// sum_j exp(z_j - mx), storing each exponential in e when e is not null.
GV_AVX2_FMA inline float sum_exp(const float* z, size_t k, float mx, float* e) {
  const __m256 vmx = _mm256_set1_ps(mx);
  __m256 acc = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 8 <= k; j += 8) {
    __m256 v = exp8(_mm256_sub_ps(_mm256_loadu_ps(z + j), vmx));
    if (e) _mm256_storeu_ps(e + j, v);
    acc = _mm256_add_ps(acc, v);
  }
  if (j < k) {
    __m256i t = tail_mask8(k - j);
    __m256 v = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(z + j, t), vmx)), _mm256_castsi256_ps(t));
    if (e) _mm256_maskstore_ps(e + j, t, v);
    acc = _mm256_add_ps(acc, v);
  }
  return hsum8(acc);
}

GV_AVX2_FMA inline float softmax_xent(const float* z, size_t k, uint32_t label, float* grad) {
  if (k == 0) return 0.f;
  const float mx = max_of(z, k);
  const float zl = z[label];
  const float s = sum_exp(z, k, mx, grad);
  if (grad) {
    const __m256 vs = _mm256_set1_ps(s);
    size_t j = 0;
    for (; j + 8 <= k; j += 8) _mm256_storeu_ps(grad + j, _mm256_div_ps(_mm256_loadu_ps(grad + j), vs));
    for (; j < k; ++j) grad[j] = grad[j] / s;
    grad[label] = grad[label] - 1.f;
  }
  return std::log(s) - (zl - mx);
}

GV_AVX2_FMA inline void log_softmax(float* out, const float* z, size_t k) {
  if (k == 0) return;
  const float mx = max_of(z, k);
  const float ls = std::log(sum_exp(z, k, mx, nullptr));
  const __m256 vmx = _mm256_set1_ps(mx), vls = _mm256_set1_ps(ls);
  size_t j = 0;
  for (; j + 8 <= k; j += 8) _mm256_storeu_ps(out + j, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(z + j), vmx), vls));
  for (; j < k; ++j) out[j] = (z[j] - mx) - ls;
}

}  // namespace gv::kernels::avx2
#endif
