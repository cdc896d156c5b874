// AVX-512F versions of the dense family (masked tails). Sums differ from
// scalar.h by rounding only: see tol::reduce_bound. Compiled on x86-64, run
// only where the CPU has AVX-512F.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "../vmath/avx512.h"
#include "scalar.h"

namespace gv::kernels::avx512 {

GV_AVX512F inline float dot(const float* x, const float* y, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
  }
  for (; i < n; i += 16) {
    __mmask16 m = mask16(n - i);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

GV_AVX512F inline void gemv(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha,
                            float beta) {
  size_t i = 0;
  for (; i + 4 <= m; i += 4) {
    const float* r0 = A + i * lda;
    const float *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t j = 0; j < n; j += 16) {
      __mmask16 mk = mask16(n - j);
      __m512 xv = _mm512_maskz_loadu_ps(mk, x + j);
      s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, r0 + j), xv, s0);
      s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, r1 + j), xv, s1);
      s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, r2 + j), xv, s2);
      s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, r3 + j), xv, s3);
    }
    const float s[4] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1), _mm512_reduce_add_ps(s2),
                        _mm512_reduce_add_ps(s3)};
    for (int r = 0; r < 4; ++r) y[i + r] = beta == 0.f ? alpha * s[r] : alpha * s[r] + beta * y[i + r];
  }
  for (; i < m; ++i) {
    float s = alpha * dot(A + i * lda, x, n);
    y[i] = beta == 0.f ? s : s + beta * y[i];
  }
}

GV_AVX512F inline void gemv_t(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha,
                              float beta) {
  if (beta != 1.f) {
    const __m512 vb = _mm512_set1_ps(beta);
    for (size_t j = 0; j < n; j += 16) {
      __mmask16 mk = mask16(n - j);
      __m512 v = beta == 0.f ? _mm512_setzero_ps() : _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mk, y + j));
      _mm512_mask_storeu_ps(y + j, mk, v);
    }
  }
  size_t i = 0;
  for (; i + 4 <= m; i += 4) {
    const float* r0 = A + i * lda;
    const float *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
    const __m512 a0 = _mm512_set1_ps(alpha * x[i]), a1 = _mm512_set1_ps(alpha * x[i + 1]);
    const __m512 a2 = _mm512_set1_ps(alpha * x[i + 2]), a3 = _mm512_set1_ps(alpha * x[i + 3]);
    for (size_t j = 0; j < n; j += 16) {
      __mmask16 mk = mask16(n - j);
      __m512 v = _mm512_maskz_loadu_ps(mk, y + j);
      v = _mm512_fmadd_ps(a0, _mm512_maskz_loadu_ps(mk, r0 + j), v);
      v = _mm512_fmadd_ps(a1, _mm512_maskz_loadu_ps(mk, r1 + j), v);
      v = _mm512_fmadd_ps(a2, _mm512_maskz_loadu_ps(mk, r2 + j), v);
      v = _mm512_fmadd_ps(a3, _mm512_maskz_loadu_ps(mk, r3 + j), v);
      _mm512_mask_storeu_ps(y + j, mk, v);
    }
  }
  for (; i < m; ++i) {
    const float* r = A + i * lda;
    const __m512 a = _mm512_set1_ps(alpha * x[i]);
    for (size_t j = 0; j < n; j += 16) {
      __mmask16 mk = mask16(n - j);
      _mm512_mask_storeu_ps(y + j, mk,
                            _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(mk, r + j), _mm512_maskz_loadu_ps(mk, y + j)));
    }
  }
}

// As avx2::gemm_micro: R rows x 32 columns (masks m0, m1).
template <int R>
GV_AVX512F inline void gemm_micro(size_t kc, const float* a, size_t ars, size_t acs, const float* b, size_t ldb,
                                  float* c, size_t ldc, float alpha, __mmask16 m0, __mmask16 m1) {
  __m512 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (size_t p = 0; p < kc; ++p) {
    const float* bp = b + p * ldb;
    __m512 b0 = _mm512_maskz_loadu_ps(m0, bp), b1 = _mm512_maskz_loadu_ps(m1, bp + 16);
    const float* ap = a + p * acs;
    for (int r = 0; r < R; ++r) {
      __m512 av = _mm512_set1_ps(ap[r * ars]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    _mm512_mask_storeu_ps(cr, m0, _mm512_fmadd_ps(va, acc0[r], _mm512_maskz_loadu_ps(m0, cr)));
    _mm512_mask_storeu_ps(cr + 16, m1, _mm512_fmadd_ps(va, acc1[r], _mm512_maskz_loadu_ps(m1, cr + 16)));
  }
}

constexpr size_t kGemmKc = 256;

GV_AVX512F inline void gemm(bool transA, bool transB, size_t m, size_t n, size_t k, float alpha, const float* A,
                            size_t lda, const float* B, size_t ldb, float* C, size_t ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  if (transB) {  // dot-shaped products: as the AVX2 version (its tails are masked too)
    if (transA) scalar::gemm(true, true, m, n, k, alpha, A, lda, B, ldb, C, ldc);
    else
      for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < n; ++j) C[i * ldc + j] = C[i * ldc + j] + alpha * dot(A + i * lda, B + j * ldb, k);
    return;
  }
  const size_t ars = transA ? 1 : lda, acs = transA ? lda : 1;
  for (size_t j = 0; j < n; j += 32) {
    const size_t cols = n - j < 32 ? n - j : 32;
    const __mmask16 m0 = mask16(cols), m1 = mask16(cols > 16 ? cols - 16 : 0);
    for (size_t p = 0; p < k; p += kGemmKc) {
      const size_t kc = k - p < kGemmKc ? k - p : kGemmKc;
      const float* a = A + p * acs;
      const float* b = B + p * ldb + j;
      size_t i = 0;
      for (; i + 4 <= m; i += 4) gemm_micro<4>(kc, a + i * ars, ars, acs, b, ldb, C + i * ldc + j, ldc, alpha, m0, m1);
      for (; i < m; ++i) gemm_micro<1>(kc, a + i * ars, ars, acs, b, ldb, C + i * ldc + j, ldc, alpha, m0, m1);
    }
  }
}

}  // namespace gv::kernels::avx512
#endif
