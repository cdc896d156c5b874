// Scalar reference for the logistic family (sigmoid, binary log-loss); see
// README.md. The SIMD versions give these bits per element (same operations,
// no FMA); only the returned loss sum is a reduction.
#pragma once
#include <cstddef>
#include "../vmath/scalar.h"

namespace gv::kernels::scalar {

// out[i] = sigmoid(z[i]); out may be z.
inline void sigmoid(float* out, const float* z, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = vm::sigmoid(z[i]);
}

// Binary log-loss of scores z against labels y (+1 / -1), m = y z:
//   loss_i = log(1 + exp(-m)) = max(-m, 0) + log1p(exp(-|m|))
//   grad_i = d loss_i / d z_i = -y * sigmoid(-m)
// Returns sum_i loss_i; writes grad when not null (grad may be z).
inline float logloss_elem(float z, float y, float* g) {
  const float m = y * z;
  const float t = vm::exp_approx(-std::fabs(m));
  const float d = 1.f + t;
  *g = (-y) * (m >= 0.f ? t / d : 1.f / d);
  return vm::vmax(-m, 0.f) + vm::log1p_approx(t);
}

inline float logloss(const float* z, const float* y, float* grad, size_t n) {
  float s = 0.f;
  for (size_t i = 0; i < n; ++i) {
    float g;
    s = s + logloss_elem(z[i], y[i], &g);
    if (grad) grad[i] = g;
  }
  return s;
}

}  // namespace gv::kernels::scalar
