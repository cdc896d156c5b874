// AVX2 versions of the sparse family. sparse_dot sums in another order with
// FMA (tol::reduce_bound); sparse_axpy is the scalar loop compiled for AVX2
// (same bits): AVX2 has no scatter, and a scatter could not add repeated
// indices anyway.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "../vmath/avx2.h"
#include "scalar.h"

namespace gv::kernels::avx2 {

// Eight indices at a time through vgatherdps. Indices must be below 2^31
// (the gather takes signed 32-bit offsets).
GV_AVX2_FMA inline float sparse_dot_gather(const float* values, const uint32_t* indices, size_t nnz,
                                           const float* dense) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  size_t i = 0;
  for (; i + 16 <= nnz; i += 16) {
    __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(indices + i));
    __m256i i1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(indices + i + 8));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + i), _mm256_i32gather_ps(dense, i0, 4), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(values + i + 8), _mm256_i32gather_ps(dense, i1, 4), a1);
  }
  if (i + 8 <= nnz) {
    __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(indices + i));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(values + i), _mm256_i32gather_ps(dense, i0, 4), a0);
    i += 8;
  }
  if (i < nnz) {
    __m256i m = tail_mask8(nnz - i);
    __m256i ix = _mm256_maskload_epi32(reinterpret_cast<const int*>(indices + i), m);
    __m256 g = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), dense, ix, _mm256_castsi256_ps(m), 4);
    a1 = _mm256_fmadd_ps(_mm256_maskload_ps(values + i, m), g, a1);
  }
  return hsum8(_mm256_add_ps(a0, a1));
}

// Scalar loads with four FMA chains: the loads, not the arithmetic, bound a
// sparse dot, and on the machines measured (bench/kernels_bench.cpp) this
// is as fast as the gather or faster.
GV_AVX2_FMA inline float sparse_dot_unrolled(const float* values, const uint32_t* indices, size_t nnz,
                                             const float* dense) {
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
  size_t i = 0;
  for (; i + 4 <= nnz; i += 4) {
    s0 = __builtin_fmaf(values[i], dense[indices[i]], s0);
    s1 = __builtin_fmaf(values[i + 1], dense[indices[i + 1]], s1);
    s2 = __builtin_fmaf(values[i + 2], dense[indices[i + 2]], s2);
    s3 = __builtin_fmaf(values[i + 3], dense[indices[i + 3]], s3);
  }
  for (; i < nnz; ++i) s0 = __builtin_fmaf(values[i], dense[indices[i]], s0);
  return (s0 + s1) + (s2 + s3);
}

GV_AVX2_FMA inline void sparse_axpy(float* dense, const uint32_t* indices, const float* values, size_t nnz, float a) {
  scalar::sparse_axpy(dense, indices, values, nnz, a);
}

// rows_gather / rows_scatter: columns in blocks of 32 held in four
// registers (a masked last block), the terms in the scalar order with a
// multiply and an add (no FMA), so every ISA gives the scalar bits.
GV_AVX2_FMA inline void rows_gather(float* z, const float* W, size_t width, const uint32_t* indices, const float* values,
                                    size_t nnz) {
  for (size_t j0 = 0; j0 < width; j0 += 32) {
    const size_t cols = width - j0 < 32 ? width - j0 : 32;
    if (cols == 32) {
      __m256 z0 = _mm256_loadu_ps(z + j0), z1 = _mm256_loadu_ps(z + j0 + 8), z2 = _mm256_loadu_ps(z + j0 + 16),
             z3 = _mm256_loadu_ps(z + j0 + 24);
      for (size_t k = 0; k < nnz; ++k) {
        const __m256 a = _mm256_set1_ps(values[k]);
        const float* w = W + size_t{indices[k]} * width + j0;
        z0 = _mm256_add_ps(z0, _mm256_mul_ps(a, _mm256_loadu_ps(w)));
        z1 = _mm256_add_ps(z1, _mm256_mul_ps(a, _mm256_loadu_ps(w + 8)));
        z2 = _mm256_add_ps(z2, _mm256_mul_ps(a, _mm256_loadu_ps(w + 16)));
        z3 = _mm256_add_ps(z3, _mm256_mul_ps(a, _mm256_loadu_ps(w + 24)));
      }
      _mm256_storeu_ps(z + j0, z0);
      _mm256_storeu_ps(z + j0 + 8, z1);
      _mm256_storeu_ps(z + j0 + 16, z2);
      _mm256_storeu_ps(z + j0 + 24, z3);
      continue;
    }
    // up to 31 columns: four masked registers
    __m256i m[4];
    __m256 acc[4];
    for (int r = 0; r < 4; ++r) {
      const size_t lo = size_t(r) * 8;
      m[r] = tail_mask8(cols > lo ? (cols - lo < 8 ? cols - lo : 8) : 0);
      acc[r] = _mm256_maskload_ps(z + j0 + lo, m[r]);
    }
    const int regs = static_cast<int>((cols + 7) / 8);
    for (size_t k = 0; k < nnz; ++k) {
      const __m256 a = _mm256_set1_ps(values[k]);
      const float* w = W + size_t{indices[k]} * width + j0;
      for (int r = 0; r < regs; ++r) acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(a, _mm256_maskload_ps(w + r * 8, m[r])));
    }
    for (int r = 0; r < regs; ++r) _mm256_maskstore_ps(z + j0 + r * 8, m[r], acc[r]);
  }
}

// The tail is scalar: a masked store is microcoded and slow on some CPUs
// (AMD Zen), and a row of ten classes would pay it once per nonzero.
GV_AVX2_FMA inline void rows_scatter(float* G, size_t width, const uint32_t* indices, const float* values, size_t nnz,
                                     const float* d) {
  const size_t w8 = width & ~size_t(7);
  for (size_t k = 0; k < nnz; ++k) {
    const float av = values[k];
    const __m256 a = _mm256_set1_ps(av);
    float* g = G + size_t{indices[k]} * width;
    size_t j = 0;
    for (; j < w8; j += 8)
      _mm256_storeu_ps(g + j, _mm256_add_ps(_mm256_loadu_ps(g + j), _mm256_mul_ps(a, _mm256_loadu_ps(d + j))));
    for (; j < width; ++j) g[j] = g[j] + av * d[j];
  }
}

// rows_step: eight columns at a time, the tail scalar (as rows_scatter).
GV_AVX2_FMA inline void rows_step(float* W, size_t width, const uint32_t* indices, const float* values, size_t nnz,
                                  const float* d, float a) {
  const size_t w8 = width & ~size_t(7);
  const __m256 av = _mm256_set1_ps(a), zero = _mm256_setzero_ps();
  for (size_t k = 0; k < nnz; ++k) {
    const float v = values[k];
    const __m256 vv = _mm256_set1_ps(v);
    float* w = W + size_t{indices[k]} * width;
    size_t j = 0;
    for (; j < w8; j += 8) {
      const __m256 g = _mm256_add_ps(zero, _mm256_mul_ps(vv, _mm256_loadu_ps(d + j)));
      _mm256_storeu_ps(w + j, _mm256_add_ps(_mm256_loadu_ps(w + j), _mm256_mul_ps(av, g)));
    }
    for (; j < width; ++j) w[j] = w[j] + a * (0.f + v * d[j]);
  }
}

GV_AVX2_FMA inline size_t nonzeros(const float* x, size_t n, uint32_t* idx, float* val) { return scalar::nonzeros(x, n, idx, val); }

}  // namespace gv::kernels::avx2
#endif
