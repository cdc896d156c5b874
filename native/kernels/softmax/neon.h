// NEON versions of the softmax family (AArch64); see avx2.h. Cross-compiled
// and tested under qemu-user by scripts/test-arm64.sh.
#pragma once
#if defined(__aarch64__)
#include <cmath>
#include <arm_neon.h>
#include "../vmath/neon.h"
#include "scalar.h"

namespace gv::kernels::neon {

inline float sum_exp(const float* z, size_t k, float mx, float* e) {
  const float32x4_t vmx = vdupq_n_f32(mx);
  float32x4_t acc = vdupq_n_f32(0.f);
  size_t j = 0;
  for (; j + 4 <= k; j += 4) {
    float32x4_t v = exp4(vsubq_f32(vld1q_f32(z + j), vmx));
    if (e) vst1q_f32(e + j, v);
    acc = vaddq_f32(acc, v);
  }
  float s = vaddvq_f32(acc);
  for (; j < k; ++j) {
    float v = vm::exp_approx(z[j] - mx);
    if (e) e[j] = v;
    s += v;
  }
  return s;
}

inline float softmax_xent(const float* z, size_t k, uint32_t label, float* grad) {
  if (k == 0) return 0.f;
  const float mx = scalar::max_of(z, k);
  const float zl = z[label];
  const float s = sum_exp(z, k, mx, grad);
  if (grad) {
    for (size_t j = 0; j < k; ++j) grad[j] = grad[j] / s;
    grad[label] = grad[label] - 1.f;
  }
  return std::log(s) - (zl - mx);
}

inline void log_softmax(float* out, const float* z, size_t k) {
  if (k == 0) return;
  const float mx = scalar::max_of(z, k);
  const float ls = std::log(sum_exp(z, k, mx, nullptr));
  for (size_t j = 0; j < k; ++j) out[j] = (z[j] - mx) - ls;
}

}  // namespace gv::kernels::neon
#endif
