// AVX-512F versions of the softmax family (masked tails); see avx2.h.
#pragma once
#if defined(__x86_64__)
#include <cmath>
#include <immintrin.h>
#include "../vmath/avx512.h"
#include "scalar.h"

namespace gv::kernels::avx512 {

GV_AVX512F inline float max_of(const float* z, size_t k) {
  __m512 m = _mm512_set1_ps(z[0]);
  for (size_t j = 0; j < k; j += 16) m = _mm512_max_ps(_mm512_mask_loadu_ps(m, mask16(k - j), z + j), m);
  return _mm512_reduce_max_ps(m);
}

GV_AVX512F inline float sum_exp(const float* z, size_t k, float mx, float* e) {
  const __m512 vmx = _mm512_set1_ps(mx);
  __m512 acc = _mm512_setzero_ps();
  for (size_t j = 0; j < k; j += 16) {
    __mmask16 t = mask16(k - j);
    __m512 v = _mm512_maskz_mov_ps(t, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, z + j), vmx)));
    if (e) _mm512_mask_storeu_ps(e + j, t, v);
    acc = _mm512_add_ps(acc, v);
  }
  return _mm512_reduce_add_ps(acc);
}

GV_AVX512F inline float softmax_xent(const float* z, size_t k, uint32_t label, float* grad) {
  if (k == 0) return 0.f;
  const float mx = max_of(z, k);
  const float zl = z[label];
  const float s = sum_exp(z, k, mx, grad);
  if (grad) {
    const __m512 vs = _mm512_set1_ps(s);
    for (size_t j = 0; j < k; j += 16) {
      __mmask16 t = mask16(k - j);
      _mm512_mask_storeu_ps(grad + j, t, _mm512_div_ps(_mm512_maskz_loadu_ps(t, grad + j), vs));
    }
    grad[label] = grad[label] - 1.f;
  }
  return std::log(s) - (zl - mx);
}

GV_AVX512F inline void log_softmax(float* out, const float* z, size_t k) {
  if (k == 0) return;
  const float mx = max_of(z, k);
  const float ls = std::log(sum_exp(z, k, mx, nullptr));
  const __m512 vmx = _mm512_set1_ps(mx), vls = _mm512_set1_ps(ls);
  for (size_t j = 0; j < k; j += 16) {
    __mmask16 t = mask16(k - j);
    _mm512_mask_storeu_ps(out + j, t, _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, z + j), vmx), vls));
  }
}

}  // namespace gv::kernels::avx512
#endif
