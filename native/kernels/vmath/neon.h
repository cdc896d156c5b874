// NEON versions of vmath/scalar.h (AArch64): the same operations in the same
// order (vmulq + vaddq, never vfmaq), so each lane gives the scalar bits.
// Cross-compiled and tested under qemu-user by scripts/test-arm64.sh.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>
#include "scalar.h"

namespace gv::kernels::neon {

// x86 max/min semantics (second operand when unordered), as scalar.h.
inline float32x4_t vmax4(float32x4_t a, float32x4_t b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
inline float32x4_t vmin4(float32x4_t a, float32x4_t b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
inline float32x4_t madd4(float32x4_t y, float32x4_t x, float c) { return vaddq_f32(vmulq_f32(y, x), vdupq_n_f32(c)); }

inline float32x4_t exp4(float32x4_t x0) {
  float32x4_t x = vmin4(vmax4(x0, vdupq_n_f32(tol::kExpLo)), vdupq_n_f32(tol::kExpHi));
  float32x4_t fx = vrndmq_f32(vaddq_f32(vmulq_f32(x, vdupq_n_f32(vm::kLog2e)), vdupq_n_f32(0.5f)));
  x = vsubq_f32(x, vmulq_f32(fx, vdupq_n_f32(vm::kLn2Hi)));
  x = vsubq_f32(x, vmulq_f32(fx, vdupq_n_f32(vm::kLn2Lo)));
  float32x4_t z = vmulq_f32(x, x);
  float32x4_t y = vdupq_n_f32(vm::kExpP0);
  y = madd4(y, x, vm::kExpP1);
  y = madd4(y, x, vm::kExpP2);
  y = madd4(y, x, vm::kExpP3);
  y = madd4(y, x, vm::kExpP4);
  y = madd4(y, x, vm::kExpP5);
  y = vaddq_f32(vmulq_f32(y, z), x);
  y = vaddq_f32(y, vdupq_n_f32(1.f));
  int32x4_t n = vcvtq_s32_f32(fx);
  float32x4_t pow2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n, vdupq_n_s32(127)), 23));
  float32x4_t r = vmulq_f32(y, pow2);
  uint32x4_t under = vcltq_f32(x0, vdupq_n_f32(tol::kExpLo));
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(r), under));
}

inline float32x4_t log_1to2_4(float32x4_t u) {
  uint32x4_t b = vreinterpretq_u32_f32(u);
  float32x4_t e = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(b, 23)), vdupq_n_s32(126)));
  float32x4_t m = vreinterpretq_f32_u32(vorrq_u32(vandq_u32(b, vdupq_n_u32(0x807fffffu)), vdupq_n_u32(0x3f000000u)));
  uint32x4_t lo = vcltq_f32(m, vdupq_n_f32(vm::kSqrtHalf));
  float32x4_t one = vdupq_n_f32(1.f);
  float32x4_t x = vaddq_f32(vsubq_f32(m, one), vreinterpretq_f32_u32(vandq_u32(lo, vreinterpretq_u32_f32(m))));
  e = vsubq_f32(e, vreinterpretq_f32_u32(vandq_u32(lo, vreinterpretq_u32_f32(one))));
  float32x4_t z = vmulq_f32(x, x);
  float32x4_t y = vdupq_n_f32(vm::kLogP0);
  y = madd4(y, x, vm::kLogP1);
  y = madd4(y, x, vm::kLogP2);
  y = madd4(y, x, vm::kLogP3);
  y = madd4(y, x, vm::kLogP4);
  y = madd4(y, x, vm::kLogP5);
  y = madd4(y, x, vm::kLogP6);
  y = madd4(y, x, vm::kLogP7);
  y = madd4(y, x, vm::kLogP8);
  y = vmulq_f32(y, x);
  y = vmulq_f32(y, z);
  y = vaddq_f32(y, vmulq_f32(e, vdupq_n_f32(vm::kLn2Lo)));
  y = vaddq_f32(y, vmulq_f32(vdupq_n_f32(-0.5f), z));
  x = vaddq_f32(x, y);
  return vaddq_f32(x, vmulq_f32(e, vdupq_n_f32(vm::kLn2Hi)));
}

inline float32x4_t log1p4(float32x4_t t) {
  float32x4_t u = vaddq_f32(vdupq_n_f32(1.f), t);
  float32x4_t d = vsubq_f32(u, vdupq_n_f32(1.f));
  float32x4_t r = vdivq_f32(vmulq_f32(log_1to2_4(u), t), d);
  return vbslq_f32(vceqq_f32(d, vdupq_n_f32(0.f)), t, r);
}

inline float32x4_t sigmoid4(float32x4_t z) {
  float32x4_t t = exp4(vnegq_f32(vabsq_f32(z)));
  float32x4_t d = vaddq_f32(vdupq_n_f32(1.f), t);
  return vbslq_f32(vcgeq_f32(z, vdupq_n_f32(0.f)), vdivq_f32(vdupq_n_f32(1.f), d), vdivq_f32(t, d));
}

}  // namespace gv::kernels::neon
#endif
