// NEON versions of the sparse family (AArch64 has no gather): four FMA chains
// over scalar loads. Cross-compiled and tested under qemu-user by
// scripts/test-arm64.sh.
#pragma once
#if defined(__aarch64__)
#include <cmath>
#include "scalar.h"

namespace gv::kernels::neon {

inline float sparse_dot(const float* values, const uint32_t* indices, size_t nnz, const float* dense) {
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
  size_t i = 0;
  for (; i + 4 <= nnz; i += 4) {
    s0 = std::fma(values[i], dense[indices[i]], s0);
    s1 = std::fma(values[i + 1], dense[indices[i + 1]], s1);
    s2 = std::fma(values[i + 2], dense[indices[i + 2]], s2);
    s3 = std::fma(values[i + 3], dense[indices[i + 3]], s3);
  }
  for (; i < nnz; ++i) s0 = std::fma(values[i], dense[indices[i]], s0);
  return (s0 + s1) + (s2 + s3);
}

inline void sparse_axpy(float* dense, const uint32_t* indices, const float* values, size_t nnz, float a) {
  scalar::sparse_axpy(dense, indices, values, nnz, a);
}

// The row kernels: the scalar loops, which the compiler vectorises for NEON
// (a multiply then an add per term, as scalar: the same bits).
inline void rows_gather(float* z, const float* W, size_t width, const uint32_t* indices, const float* values, size_t nnz) {
  scalar::rows_gather(z, W, width, indices, values, nnz);
}
inline void rows_scatter(float* G, size_t width, const uint32_t* indices, const float* values, size_t nnz, const float* d) {
  scalar::rows_scatter(G, width, indices, values, nnz, d);
}
inline size_t nonzeros(const float* x, size_t n, uint32_t* idx, float* val) { return scalar::nonzeros(x, n, idx, val); }
inline void rows_step(float* W, size_t width, const uint32_t* indices, const float* values, size_t nnz, const float* d,
                      float a) {
  scalar::rows_step(W, width, indices, values, nnz, d, a);
}

}  // namespace gv::kernels::neon
#endif
