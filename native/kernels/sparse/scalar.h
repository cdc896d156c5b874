// Scalar reference for the sparse (CSR row) family; see README.md.
#pragma once
#include <cstddef>
#include <cstdint>

namespace gv::kernels::scalar {

// sum_i values[i] * dense[indices[i]]
inline float sparse_dot(const float* values, const uint32_t* indices, size_t nnz, const float* dense) {
  float s = 0.f;
  for (size_t i = 0; i < nnz; ++i) s = s + values[i] * dense[indices[i]];
  return s;
}

// dense[indices[i]] += a * values[i], in order (repeated indices add up).
inline void sparse_axpy(float* dense, const uint32_t* indices, const float* values, size_t nnz, float a) {
  for (size_t i = 0; i < nnz; ++i) dense[indices[i]] = dense[indices[i]] + a * values[i];
}

}  // namespace gv::kernels::scalar
