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

}  // namespace gv::kernels::avx2
#endif
