// AVX-512F versions of the logistic family (masked tails); see avx2.h.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "../vmath/avx512.h"
#include "scalar.h"

namespace gv::kernels::avx512 {

GV_AVX512F inline void sigmoid(float* out, const float* z, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 t = mask16(n - i);
    _mm512_mask_storeu_ps(out + i, t, sigmoid16(_mm512_maskz_loadu_ps(t, z + i)));
  }
}

GV_AVX512F inline float logloss(const float* z, const float* y, float* grad, size_t n) {
  __m512 acc = _mm512_setzero_ps();
  const __m512 one = _mm512_set1_ps(1.f), zero = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 k = mask16(n - i);
    const __m512 yv = _mm512_maskz_loadu_ps(k, y + i);
    const __m512 m = _mm512_mul_ps(yv, _mm512_maskz_loadu_ps(k, z + i));
    const __m512 t = exp16(neg16(abs16(m)));
    const __m512 d = _mm512_add_ps(one, t);
    const __mmask16 pos = _mm512_cmp_ps_mask(m, zero, _CMP_GE_OQ);
    const __m512 g = _mm512_mul_ps(neg16(yv), _mm512_mask_blend_ps(pos, _mm512_div_ps(one, d), _mm512_div_ps(t, d)));
    const __m512 l = _mm512_add_ps(_mm512_max_ps(neg16(m), zero), log1p16(t));
    acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, l));
    if (grad) _mm512_mask_storeu_ps(grad + i, k, g);
  }
  return _mm512_reduce_add_ps(acc);
}

}  // namespace gv::kernels::avx512
#endif
