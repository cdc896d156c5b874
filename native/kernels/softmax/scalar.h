// Scalar reference for the softmax / cross-entropy family; see README.md.
// Finite logits are assumed (an infinite logit has no stable softmax here).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include "../vmath/scalar.h"

namespace gv::kernels::scalar {

inline float max_of(const float* z, size_t k) {
  float mx = z[0];
  for (size_t j = 1; j < k; ++j) mx = vm::vmax(z[j], mx);
  return mx;
}

// One row of k logits and its label (< k): returns the cross-entropy
// -log softmax(z)[label] = log(sum_j exp(z_j - max)) - (z_label - max), and,
// when grad is not null, writes grad[j] = softmax(z)_j - [j == label]. grad
// may be z itself (in place).
inline float softmax_xent(const float* z, size_t k, uint32_t label, float* grad) {
  if (k == 0) return 0.f;
  const float mx = max_of(z, k);
  const float zl = z[label];  // before grad (possibly z) is written
  float s = 0.f;
  for (size_t j = 0; j < k; ++j) {
    const float e = vm::exp_approx(z[j] - mx);
    if (grad) grad[j] = e;
    s = s + e;
  }
  if (grad) {
    for (size_t j = 0; j < k; ++j) grad[j] = grad[j] / s;
    grad[label] = grad[label] - 1.f;
  }
  return std::log(s) - (zl - mx);
}

// out[j] = log softmax(z)_j = (z_j - max) - log(sum_j exp(z_j - max)); out may be z.
inline void log_softmax(float* out, const float* z, size_t k) {
  if (k == 0) return;
  const float mx = max_of(z, k);
  float s = 0.f;
  for (size_t j = 0; j < k; ++j) s = s + vm::exp_approx(z[j] - mx);
  const float ls = std::log(s);
  for (size_t j = 0; j < k; ++j) out[j] = (z[j] - mx) - ls;
}

}  // namespace gv::kernels::scalar
