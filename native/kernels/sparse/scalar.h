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

// The rows of a sparse row times a row-major matrix W [*, width]:
// z[j] += sum_k values[k] * W[indices[k] * width + j], k in order, each term
// a multiply then an add (the forward pass of a first layer on a sparse row).
inline void rows_gather(float* z, const float* W, size_t width, const uint32_t* indices, const float* values, size_t nnz) {
  for (size_t k = 0; k < nnz; ++k) {
    const float a = values[k];
    const float* w = W + size_t{indices[k]} * width;
    for (size_t j = 0; j < width; ++j) z[j] = z[j] + a * w[j];
  }
}

// G[indices[k] * width + j] += values[k] * d[j] (the first layer's gradient
// on a sparse row); repeated indices add up in order.
inline void rows_scatter(float* G, size_t width, const uint32_t* indices, const float* values, size_t nnz, const float* d) {
  for (size_t k = 0; k < nnz; ++k) {
    const float a = values[k];
    float* g = G + size_t{indices[k]} * width;
    for (size_t j = 0; j < width; ++j) g[j] = g[j] + a * d[j];
  }
}

}  // namespace gv::kernels::scalar
