// NEON versions of the ReLU family (AArch64): the scalar bits. Cross-compiled
// and tested under qemu-user by scripts/test-arm64.sh.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>
#include "scalar.h"

namespace gv::kernels::neon {

inline void relu(float* out, const float* x, size_t n) {
  const float32x4_t zero = vdupq_n_f32(0.f);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = vld1q_f32(x + i);
    vst1q_f32(out + i, vbslq_f32(vcgtq_f32(v, zero), v, zero));  // not vmaxq: NaN must give +0
  }
  scalar::relu(out + i, x + i, n - i);
}

inline void relu_backward(float* grad, const float* x, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32x4_t keep = vcgtq_f32(vld1q_f32(x + i), vdupq_n_f32(0.f));
    vst1q_f32(grad + i, vreinterpretq_f32_u32(vandq_u32(keep, vreinterpretq_u32_f32(vld1q_f32(grad + i)))));
  }
  scalar::relu_backward(grad + i, x + i, n - i);
}

}  // namespace gv::kernels::neon
#endif
