// NEON versions of the dense family (AArch64, FMA through vfmaq). Sums differ
// from scalar.h by rounding only. Cross-compiled and tested under qemu-user
// by scripts/test-arm64.sh.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>
#include "scalar.h"

namespace gv::kernels::neon {

inline float dot(const float* x, const float* y, size_t n) {
  float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
    a1 = vfmaq_f32(a1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
    a2 = vfmaq_f32(a2, vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
    a3 = vfmaq_f32(a3, vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
  }
  for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
  for (; i < n; ++i) s += x[i] * y[i];
  return s;
}

inline void gemv(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha, float beta) {
  for (size_t i = 0; i < m; ++i) {
    float s = alpha * dot(A + i * lda, x, n);
    y[i] = beta == 0.f ? s : s + beta * y[i];
  }
}

// y[j] += a * row[j]
inline void axpy_row(float* y, const float* row, float a, size_t n) {
  const float32x4_t va = vdupq_n_f32(a);
  size_t j = 0;
  for (; j + 4 <= n; j += 4) vst1q_f32(y + j, vfmaq_f32(vld1q_f32(y + j), va, vld1q_f32(row + j)));
  for (; j < n; ++j) y[j] = y[j] + a * row[j];
}

inline void gemv_t(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha,
                   float beta) {
  if (beta == 0.f)
    for (size_t j = 0; j < n; ++j) y[j] = 0.f;
  else if (beta != 1.f)
    for (size_t j = 0; j < n; ++j) y[j] = beta * y[j];
  for (size_t i = 0; i < m; ++i) axpy_row(y, A + i * lda, alpha * x[i], n);
}

inline void gemm(bool transA, bool transB, size_t m, size_t n, size_t k, float alpha, const float* A, size_t lda,
                 const float* B, size_t ldb, float* C, size_t ldc) {
  if (transB) {
    if (transA) scalar::gemm(true, true, m, n, k, alpha, A, lda, B, ldb, C, ldc);
    else
      for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < n; ++j) C[i * ldc + j] = C[i * ldc + j] + alpha * dot(A + i * lda, B + j * ldb, k);
    return;
  }
  for (size_t i = 0; i < m; ++i)
    for (size_t p = 0; p < k; ++p)
      axpy_row(C + i * ldc, B + p * ldb, alpha * (transA ? A[p * lda + i] : A[i * lda + p]), n);
}

}  // namespace gv::kernels::neon
#endif
