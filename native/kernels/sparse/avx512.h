// AVX-512F versions of the sparse family (masked tails). sparse_axpy stays the
// scalar loop: a scatter would lose repeated indices (AVX-512CD conflict
// detection could handle them; not worth it for ~75 nonzeros a row).
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "../vmath/avx512.h"
#include "avx2.h"
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

// rows_gather: sixteen columns a register, a masked last block
// (AVX-512 masked loads and stores are single instructions), each term a
// multiply then an add in the scalar order, so the scalar bits. A row of up
// to 16 classes is one register: the ten classes of a Fashion-MNIST softmax.
GV_AVX512F inline void rows_gather(float* z, const float* W, size_t width, const uint32_t* indices, const float* values,
                                   size_t nnz) {
  for (size_t j0 = 0; j0 < width; j0 += 64) {
    const size_t cols = width - j0 < 64 ? width - j0 : 64;
    __mmask16 m[4];
    __m512 acc[4];
    for (int r = 0; r < 4; ++r) {
      const size_t lo = size_t(r) * 16;
      m[r] = mask16(cols > lo ? cols - lo : 0);
      acc[r] = _mm512_maskz_loadu_ps(m[r], z + j0 + lo);
    }
    const int regs = static_cast<int>((cols + 15) / 16);
    if (regs == 1) {
      __m512 a0 = acc[0];
      for (size_t k = 0; k < nnz; ++k)
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_set1_ps(values[k]),
                                             _mm512_maskz_loadu_ps(m[0], W + size_t{indices[k]} * width + j0)));
      acc[0] = a0;
    } else {
      for (size_t k = 0; k < nnz; ++k) {
        const __m512 a = _mm512_set1_ps(values[k]);
        const float* w = W + size_t{indices[k]} * width + j0;
        for (int r = 0; r < regs; ++r) acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m[r], w + r * 16)));
      }
    }
    for (int r = 0; r < regs; ++r) _mm512_mask_storeu_ps(z + j0 + size_t(r) * 16, m[r], acc[r]);
  }
}

GV_AVX512F inline void rows_scatter(float* G, size_t width, const uint32_t* indices, const float* values, size_t nnz,
                                    const float* d) {
  avx2::rows_scatter(G, width, indices, values, nnz, d);
}

// nonzeros: sixteen at a time, compressed in registers and stored whole
// (vcompressps to memory is microcoded on AMD Zen 4); the buffers' 16
// entries of slack take the unused lanes.
GV_AVX512F inline size_t nonzeros(const float* x, size_t n, uint32_t* idx, float* val) {
  size_t k = 0;
  __m512i j = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i sixteen = _mm512_set1_epi32(16);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 in = mask16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(in, x + i);
    const __mmask16 m = _mm512_mask_cmp_ps_mask(in, v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    _mm512_storeu_si512(idx + k, _mm512_maskz_compress_epi32(m, j));
    _mm512_storeu_ps(val + k, _mm512_maskz_compress_ps(m, v));
    k += static_cast<size_t>(__builtin_popcount(m));
    j = _mm512_add_epi32(j, sixteen);
  }
  return k;
}

// rows_step: no masked store. A masked store followed by a masked load of
// the next row (usually a neighbour: a sample's nonzeros are ascending)
// does not forward on AMD Zen 4/5 and stalls the loop (measured: 70% of its
// time on the load). Whole registers of 16 and 8 columns, then the tail in
// 4, 2 and 1 (a row of ten classes: 8 + 2), never wider than the row.
GV_AVX512F inline void rows_step(float* W, size_t width, const uint32_t* indices, const float* values, size_t nnz,
                                 const float* d, float a) {
  const __m512 av16 = _mm512_set1_ps(a), zero16 = _mm512_setzero_ps();
  const __m256 av8 = _mm256_set1_ps(a), zero8 = _mm256_setzero_ps();
  const __m128 av4 = _mm_set1_ps(a), zero4 = _mm_setzero_ps();
  for (size_t k = 0; k < nnz; ++k) {
    const float v = values[k];
    float* w = W + size_t{indices[k]} * width;
    size_t j = 0;
    if (width >= 16) {
      const __m512 vv = _mm512_set1_ps(v);
      for (; j + 16 <= width; j += 16) {
        const __m512 g = _mm512_add_ps(zero16, _mm512_mul_ps(vv, _mm512_loadu_ps(d + j)));
        _mm512_storeu_ps(w + j, _mm512_add_ps(_mm512_loadu_ps(w + j), _mm512_mul_ps(av16, g)));
      }
    }
    if (j + 8 <= width) {
      const __m256 g = _mm256_add_ps(zero8, _mm256_mul_ps(_mm256_set1_ps(v), _mm256_loadu_ps(d + j)));
      _mm256_storeu_ps(w + j, _mm256_add_ps(_mm256_loadu_ps(w + j), _mm256_mul_ps(av8, g)));
      j += 8;
    }
    const __m128 v4 = _mm_set1_ps(v);
    if (j + 4 <= width) {
      const __m128 g = _mm_add_ps(zero4, _mm_mul_ps(v4, _mm_loadu_ps(d + j)));
      _mm_storeu_ps(w + j, _mm_add_ps(_mm_loadu_ps(w + j), _mm_mul_ps(av4, g)));
      j += 4;
    }
    if (j + 2 <= width) {  // two floats through the low half of a register (64-bit loads and stores)
      const __m128 dj = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(d + j)));
      const __m128 wj = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + j)));
      const __m128 g = _mm_add_ps(zero4, _mm_mul_ps(v4, dj));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(w + j), _mm_castps_si128(_mm_add_ps(wj, _mm_mul_ps(av4, g))));
      j += 2;
    }
    if (j < width) w[j] = w[j] + a * (0.f + v * d[j]);
  }
}

}  // namespace gv::kernels::avx512
#endif
