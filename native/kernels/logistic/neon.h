// NEON versions of the logistic family (AArch64); see avx2.h. Cross-compiled
// and tested under qemu-user by scripts/test-arm64.sh.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>
#include "../vmath/neon.h"
#include "scalar.h"

namespace gv::kernels::neon {

inline void sigmoid(float* out, const float* z, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, sigmoid4(vld1q_f32(z + i)));
  scalar::sigmoid(out + i, z + i, n - i);
}

inline float logloss(const float* z, const float* y, float* grad, size_t n) {
  float32x4_t acc = vdupq_n_f32(0.f);
  const float32x4_t one = vdupq_n_f32(1.f), zero = vdupq_n_f32(0.f);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t yv = vld1q_f32(y + i);
    const float32x4_t m = vmulq_f32(yv, vld1q_f32(z + i));
    const float32x4_t t = exp4(vnegq_f32(vabsq_f32(m)));
    const float32x4_t d = vaddq_f32(one, t);
    const float32x4_t g = vmulq_f32(vnegq_f32(yv), vbslq_f32(vcgeq_f32(m, zero), vdivq_f32(t, d), vdivq_f32(one, d)));
    acc = vaddq_f32(acc, vaddq_f32(vmax4(vnegq_f32(m), zero), log1p4(t)));
    if (grad) vst1q_f32(grad + i, g);
  }
  return vaddvq_f32(acc) + scalar::logloss(z + i, y + i, grad ? grad + i : nullptr, n - i);
}

}  // namespace gv::kernels::neon
#endif
