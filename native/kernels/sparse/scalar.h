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

// W[indices[k] * width + j] += a * (0 + values[k] * d[j]): the plain sgd
// step (p = 1 * p + a * g, a = -lr) of the gradient rows_scatter would add
// into a zeroed buffer, fused: the per-sample trainer's update of a sample's
// rows, the bits of the unfused scatter then step. Indices unique.
inline void rows_step(float* W, size_t width, const uint32_t* indices, const float* values, size_t nnz, const float* d,
                      float a) {
  for (size_t k = 0; k < nnz; ++k) {
    const float v = values[k];
    float* w = W + size_t{indices[k]} * width;
    for (size_t j = 0; j < width; ++j) w[j] = w[j] + a * (0.f + v * d[j]);
  }
}

// The nonzeros of a dense row (x[j] != 0, NaN included) in order: their
// indices into idx and values into val; returns their count. idx and val
// must hold n + 16 entries (vector versions store whole registers).
inline size_t nonzeros(const float* x, size_t n, uint32_t* idx, float* val) {
  size_t k = 0;
  for (size_t j = 0; j < n; ++j) {  // branch-free: half the pixels are zero, at random
    idx[k] = static_cast<uint32_t>(j);
    val[k] = x[j];
    k += x[j] != 0.f;
  }
  return k;
}

}  // namespace gv::kernels::scalar
