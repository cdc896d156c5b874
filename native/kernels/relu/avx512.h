// AVX-512F versions of the ReLU family (masked tails): the scalar bits.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "../vmath/avx512.h"
#include "scalar.h"

namespace gv::kernels::avx512 {

GV_AVX512F inline void relu(float* out, const float* x, size_t n) {
  const __m512 zero = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 t = mask16(n - i);
    _mm512_mask_storeu_ps(out + i, t, _mm512_max_ps(_mm512_maskz_loadu_ps(t, x + i), zero));
  }
}

GV_AVX512F inline void relu_backward(float* grad, const float* x, size_t n) {
  const __m512 zero = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 t = mask16(n - i);
    __mmask16 keep = _mm512_mask_cmp_ps_mask(t, _mm512_maskz_loadu_ps(t, x + i), zero, _CMP_GT_OQ);
    // Lanes in t but not in keep become +0; lanes outside t are not written.
    _mm512_mask_storeu_ps(grad + i, t, _mm512_maskz_loadu_ps(keep, grad + i));
  }
}

}  // namespace gv::kernels::avx512
#endif
