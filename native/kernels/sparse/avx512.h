// AVX-512F versions of the sparse family (masked tails). sparse_axpy stays the
// scalar loop: a scatter would lose repeated indices (AVX-512CD conflict
// detection could handle them; not worth it for ~75 nonzeros a row).
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "../vmath/avx512.h"
#include "scalar.h"

namespace gv::kernels::avx512 {

GV_AVX512F inline float sparse_dot_gather(const float* values, const uint32_t* indices, size_t nnz,
                                          const float* dense) {
  __m512 a0 = _mm512_setzero_ps();
  for (size_t i = 0; i < nnz; i += 16) {
    __mmask16 m = mask16(nnz - i);
    __m512i ix = _mm512_maskz_loadu_epi32(m, indices + i);
    __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, ix, dense, 4);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, values + i), g, a0);
  }
  return _mm512_reduce_add_ps(a0);
}

GV_AVX512F inline void sparse_axpy(float* dense, const uint32_t* indices, const float* values, size_t nnz, float a) {
  scalar::sparse_axpy(dense, indices, values, nnz, a);
}

}  // namespace gv::kernels::avx512
#endif
