// Scalar reference for the dense family (see README.md). Sequential float
// sums with separate multiply and add (-ffp-contract=off); the SIMD versions
// sum in another order with FMA and are held to tol::reduce_bound.
#pragma once
#include <cstddef>

namespace gv::kernels::scalar {

inline float dot(const float* x, const float* y, size_t n) {
  float s = 0.f;
  for (size_t i = 0; i < n; ++i) s = s + x[i] * y[i];
  return s;
}

// y[m] = alpha * A x + beta * y, A row-major [m, n] with row stride lda.
// beta == 0 overwrites y without reading it (NaN in y does not survive).
inline void gemv(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha, float beta) {
  for (size_t i = 0; i < m; ++i) {
    float s = alpha * dot(A + i * lda, x, n);
    y[i] = beta == 0.f ? s : s + beta * y[i];
  }
}

// y[n] = alpha * A^T x + beta * y, A row-major [m, n], x[m]; beta == 0 as gemv.
inline void gemv_t(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha,
                   float beta) {
  if (beta == 0.f)
    for (size_t j = 0; j < n; ++j) y[j] = 0.f;
  else if (beta != 1.f)
    for (size_t j = 0; j < n; ++j) y[j] = beta * y[j];
  for (size_t i = 0; i < m; ++i) {
    const float a = alpha * x[i];
    const float* row = A + i * lda;
    for (size_t j = 0; j < n; ++j) y[j] = y[j] + a * row[j];
  }
}

// C[m, n] += alpha * op(A)[m, k] * op(B)[k, n], all row-major with leading
// dimensions lda, ldb, ldc; op(X) = X^T when the flag is set (A stored
// [k, m], B stored [n, k]). Row by row, as a sequence of axpys.
inline void gemm(bool transA, bool transB, size_t m, size_t n, size_t k, float alpha, const float* A, size_t lda,
                 const float* B, size_t ldb, float* C, size_t ldc) {
  for (size_t i = 0; i < m; ++i) {
    float* c = C + i * ldc;
    for (size_t p = 0; p < k; ++p) {
      const float a = alpha * (transA ? A[p * lda + i] : A[i * lda + p]);
      if (transB)
        for (size_t j = 0; j < n; ++j) c[j] = c[j] + a * B[j * ldb + p];
      else
        for (size_t j = 0; j < n; ++j) c[j] = c[j] + a * B[p * ldb + j];
    }
  }
}

}  // namespace gv::kernels::scalar
