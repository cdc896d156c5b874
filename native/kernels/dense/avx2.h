// AVX2 + FMA versions of the dense family. Sums differ from scalar.h by
// rounding only (another order, FMA): see tol::reduce_bound.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "../vmath/avx2.h"
#include "scalar.h"

namespace gv::kernels::avx2 {

GV_AVX2_FMA inline float dot(const float* x, const float* y, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
  if (i < n) {
    __m256i m = tail_mask8(n - i);
    a1 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m), a1);
  }
  return hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

// Four rows share each load of x.
GV_AVX2_FMA inline void gemv(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha,
                             float beta) {
  size_t i = 0;
  const size_t n8 = n & ~size_t(7);
  const __m256i tm = tail_mask8(n - n8);
  for (; i + 4 <= m; i += 4) {
    const float* r0 = A + i * lda;
    const float *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t j = 0; j < n8; j += 8) {
      __m256 xv = _mm256_loadu_ps(x + j);
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + j), xv, s0);
      s1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + j), xv, s1);
      s2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + j), xv, s2);
      s3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + j), xv, s3);
    }
    if (n8 < n) {
      __m256 xv = _mm256_maskload_ps(x + n8, tm);
      s0 = _mm256_fmadd_ps(_mm256_maskload_ps(r0 + n8, tm), xv, s0);
      s1 = _mm256_fmadd_ps(_mm256_maskload_ps(r1 + n8, tm), xv, s1);
      s2 = _mm256_fmadd_ps(_mm256_maskload_ps(r2 + n8, tm), xv, s2);
      s3 = _mm256_fmadd_ps(_mm256_maskload_ps(r3 + n8, tm), xv, s3);
    }
    const float s[4] = {hsum8(s0), hsum8(s1), hsum8(s2), hsum8(s3)};
    for (int r = 0; r < 4; ++r) y[i + r] = beta == 0.f ? alpha * s[r] : alpha * s[r] + beta * y[i + r];
  }
  for (; i < m; ++i) {
    float s = alpha * dot(A + i * lda, x, n);
    y[i] = beta == 0.f ? s : s + beta * y[i];
  }
}

// y += (alpha x_i) * row i, four rows per pass over y.
GV_AVX2_FMA inline void gemv_t(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha,
                               float beta) {
  const size_t n8 = n & ~size_t(7);
  const __m256i tm = tail_mask8(n - n8);
  if (beta != 1.f) {
    const __m256 vb = _mm256_set1_ps(beta);
    for (size_t j = 0; j < n8; j += 8)
      _mm256_storeu_ps(y + j, beta == 0.f ? _mm256_setzero_ps() : _mm256_mul_ps(vb, _mm256_loadu_ps(y + j)));
    for (size_t j = n8; j < n; ++j) y[j] = beta == 0.f ? 0.f : beta * y[j];
  }
  size_t i = 0;
  for (; i + 4 <= m; i += 4) {
    const float* r0 = A + i * lda;
    const float *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
    const __m256 a0 = _mm256_set1_ps(alpha * x[i]), a1 = _mm256_set1_ps(alpha * x[i + 1]);
    const __m256 a2 = _mm256_set1_ps(alpha * x[i + 2]), a3 = _mm256_set1_ps(alpha * x[i + 3]);
    for (size_t j = 0; j < n8; j += 8) {
      __m256 v = _mm256_loadu_ps(y + j);
      v = _mm256_fmadd_ps(a0, _mm256_loadu_ps(r0 + j), v);
      v = _mm256_fmadd_ps(a1, _mm256_loadu_ps(r1 + j), v);
      v = _mm256_fmadd_ps(a2, _mm256_loadu_ps(r2 + j), v);
      v = _mm256_fmadd_ps(a3, _mm256_loadu_ps(r3 + j), v);
      _mm256_storeu_ps(y + j, v);
    }
    if (n8 < n) {
      __m256 v = _mm256_maskload_ps(y + n8, tm);
      v = _mm256_fmadd_ps(a0, _mm256_maskload_ps(r0 + n8, tm), v);
      v = _mm256_fmadd_ps(a1, _mm256_maskload_ps(r1 + n8, tm), v);
      v = _mm256_fmadd_ps(a2, _mm256_maskload_ps(r2 + n8, tm), v);
      v = _mm256_fmadd_ps(a3, _mm256_maskload_ps(r3 + n8, tm), v);
      _mm256_maskstore_ps(y + n8, tm, v);
    }
  }
  for (; i < m; ++i) {
    const float* r = A + i * lda;
    const __m256 a = _mm256_set1_ps(alpha * x[i]);
    for (size_t j = 0; j < n8; j += 8)
      _mm256_storeu_ps(y + j, _mm256_fmadd_ps(a, _mm256_loadu_ps(r + j), _mm256_loadu_ps(y + j)));
    if (n8 < n)
      _mm256_maskstore_ps(y + n8, tm, _mm256_fmadd_ps(a, _mm256_maskload_ps(r + n8, tm), _mm256_maskload_ps(y + n8, tm)));
  }
}

// R rows x 16 columns of C += alpha * sum_p op(A)(r, p) B(p, :), over kc
// values of p. op(A)(r, p) is at a[r * ars + p * acs]; B rows are ldb apart.
// Full: all 16 columns; otherwise `cols` (< 16) through masks.
template <int R, bool Full>
GV_AVX2_FMA inline void gemm_micro(size_t kc, const float* a, size_t ars, size_t acs, const float* b, size_t ldb,
                                   float* c, size_t ldc, float alpha, size_t cols) {
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  const __m256i m0 = tail_mask8(cols < 8 ? cols : 8), m1 = tail_mask8(cols > 8 ? cols - 8 : 0);
  for (size_t p = 0; p < kc; ++p) {
    const float* bp = b + p * ldb;
    __m256 b0 = Full ? _mm256_loadu_ps(bp) : _mm256_maskload_ps(bp, m0);
    __m256 b1 = Full ? _mm256_loadu_ps(bp + 8) : _mm256_maskload_ps(bp + 8, m1);
    const float* ap = a + p * acs;
    for (int r = 0; r < R; ++r) {
      __m256 av = _mm256_broadcast_ss(ap + r * ars);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha);
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if (Full) {
      _mm256_storeu_ps(cr, _mm256_fmadd_ps(va, acc0[r], _mm256_loadu_ps(cr)));
      _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(va, acc1[r], _mm256_loadu_ps(cr + 8)));
    } else {
      _mm256_maskstore_ps(cr, m0, _mm256_fmadd_ps(va, acc0[r], _mm256_maskload_ps(cr, m0)));
      _mm256_maskstore_ps(cr + 8, m1, _mm256_fmadd_ps(va, acc1[r], _mm256_maskload_ps(cr + 8, m1)));
    }
  }
}

template <bool Full>
GV_AVX2_FMA inline void gemm_rows(size_t m, size_t kc, const float* a, size_t ars, size_t acs, const float* b,
                                  size_t ldb, float* c, size_t ldc, float alpha, size_t cols) {
  size_t i = 0;
  for (; i + 4 <= m; i += 4) gemm_micro<4, Full>(kc, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, alpha, cols);
  switch (m - i) {
    case 3: gemm_micro<3, Full>(kc, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, alpha, cols); break;
    case 2: gemm_micro<2, Full>(kc, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, alpha, cols); break;
    case 1: gemm_micro<1, Full>(kc, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, alpha, cols); break;
    default: break;
  }
}

// The k block keeps a 16-column panel of B (kGemmKc x 16 floats, 16 KiB) in
// L1 while every row block of A passes over it.
constexpr size_t kGemmKc = 256;

GV_AVX2_FMA inline void gemm(bool transA, bool transB, size_t m, size_t n, size_t k, float alpha, const float* A,
                             size_t lda, const float* B, size_t ldb, float* C, size_t ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  if (!transB) {
    const size_t ars = transA ? 1 : lda, acs = transA ? lda : 1;
    for (size_t j = 0; j < n; j += 16) {
      const size_t cols = n - j < 16 ? n - j : 16;
      for (size_t p = 0; p < k; p += kGemmKc) {
        const size_t kc = k - p < kGemmKc ? k - p : kGemmKc;
        const float* a = A + p * acs;
        const float* b = B + p * ldb + j;
        if (cols == 16) gemm_rows<true>(m, kc, a, ars, acs, b, ldb, C + j, ldc, alpha, 16);
        else gemm_rows<false>(m, kc, a, ars, acs, b, ldb, C + j, ldc, alpha, cols);
      }
    }
    return;
  }
  if (transA) {  // both transposed: rare (no model uses it); the reference loop
    scalar::gemm(true, true, m, n, k, alpha, A, lda, B, ldb, C, ldc);
    return;
  }
  // C[i, j] += alpha * dot(A row i, B row j): two rows of A against four of
  // B (eight sums; six loads feed eight FMAs).
  const size_t k8 = k & ~size_t(7);
  const __m256i tm = tail_mask8(k - k8);
  size_t i = 0;
  for (; i + 2 <= m; i += 2) {
    const float *a0 = A + i * lda, *a1 = a0 + lda;
    float *c0 = C + i * ldc, *c1 = c0 + ldc;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const float* b0 = B + j * ldb;
      const float *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
      __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
      auto step = [&](__m256 x0, __m256 x1, __m256 y0, __m256 y1, __m256 y2, __m256 y3) GV_AVX2_FMA {
        s00 = _mm256_fmadd_ps(x0, y0, s00);
        s01 = _mm256_fmadd_ps(x0, y1, s01);
        s02 = _mm256_fmadd_ps(x0, y2, s02);
        s03 = _mm256_fmadd_ps(x0, y3, s03);
        s10 = _mm256_fmadd_ps(x1, y0, s10);
        s11 = _mm256_fmadd_ps(x1, y1, s11);
        s12 = _mm256_fmadd_ps(x1, y2, s12);
        s13 = _mm256_fmadd_ps(x1, y3, s13);
      };
      for (size_t p = 0; p < k8; p += 8)
        step(_mm256_loadu_ps(a0 + p), _mm256_loadu_ps(a1 + p), _mm256_loadu_ps(b0 + p), _mm256_loadu_ps(b1 + p),
             _mm256_loadu_ps(b2 + p), _mm256_loadu_ps(b3 + p));
      if (k8 < k)
        step(_mm256_maskload_ps(a0 + k8, tm), _mm256_maskload_ps(a1 + k8, tm), _mm256_maskload_ps(b0 + k8, tm),
             _mm256_maskload_ps(b1 + k8, tm), _mm256_maskload_ps(b2 + k8, tm), _mm256_maskload_ps(b3 + k8, tm));
      c0[j] = c0[j] + alpha * hsum8(s00);
      c0[j + 1] = c0[j + 1] + alpha * hsum8(s01);
      c0[j + 2] = c0[j + 2] + alpha * hsum8(s02);
      c0[j + 3] = c0[j + 3] + alpha * hsum8(s03);
      c1[j] = c1[j] + alpha * hsum8(s10);
      c1[j + 1] = c1[j + 1] + alpha * hsum8(s11);
      c1[j + 2] = c1[j + 2] + alpha * hsum8(s12);
      c1[j + 3] = c1[j + 3] + alpha * hsum8(s13);
    }
    for (; j < n; ++j) {
      c0[j] = c0[j] + alpha * dot(a0, B + j * ldb, k);
      c1[j] = c1[j] + alpha * dot(a1, B + j * ldb, k);
    }
  }
  if (i < m) {  // the last row alone: one dot per column
    const float* ar = A + i * lda;
    float* cr = C + i * ldc;
    for (size_t j = 0; j < n; ++j) cr[j] = cr[j] + alpha * dot(ar, B + j * ldb, k);
  }
}

}  // namespace gv::kernels::avx2
#endif
