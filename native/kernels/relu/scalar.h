// Scalar reference for the ReLU family; every instruction set gives these
// bits (a compare and a select: no rounding).
#pragma once
#include <cstddef>

namespace gv::kernels::scalar {

// out[i] = max(x[i], 0) (+0 for x <= 0 and for NaN, as maxps(x, 0)); out may be x.
inline void relu(float* out, const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i] > 0.f ? x[i] : 0.f;
}

// grad[i] *= (x[i] > 0): keeps grad where the forward input was positive,
// +0 elsewhere. x is the forward input (or its output: same sign test).
inline void relu_backward(float* grad, const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) grad[i] = x[i] > 0.f ? grad[i] : 0.f;
}

}  // namespace gv::kernels::scalar
