// NEON versions of the update kernels (AArch64, where NEON is baseline).
// Bit-identical to scalar.h. Compiled only on AArch64 (cross-compiled and
// tested under qemu-user by scripts/test-arm64.sh).
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>
#include "scalar.h"

namespace gv::kernels::neon {

inline void axpby(float* out, const float* y, const float* x, float a, float b, size_t n) {
  const float32x4_t va = vdupq_n_f32(a), vb = vdupq_n_f32(b);
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(out + i, vaddq_f32(vmulq_f32(vb, vld1q_f32(y + i)), vmulq_f32(va, vld1q_f32(x + i))));
  scalar::axpby(out + i, y + i, x + i, a, b, n - i);
}

inline void copy(float* dst, const float* src, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vld1q_f32(src + i));
  scalar::copy(dst + i, src + i, n - i);
}

inline void copy_stream(float* dst, const float* src, size_t n) { copy(dst, src, n); }

inline size_t first_nonfinite(const float* x, size_t n) {
  const uint32x4_t exp = vdupq_n_u32(0x7f800000u);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32x4_t v = vandq_u32(vld1q_u32(reinterpret_cast<const uint32_t*>(x + i)), exp);
    if (vmaxvq_u32(vceqq_u32(v, exp))) break;
  }
  return i + scalar::first_nonfinite(x + i, n - i);
}

inline uint64_t checksum(const float* x, size_t n) {
  const uint32_t* w = reinterpret_cast<const uint32_t*>(x);
  alignas(16) uint32_t lanes[scalar::kChecksumLanes];
  for (size_t l = 0; l < scalar::kChecksumLanes; ++l) lanes[l] = (uint32_t)(l + 1);
  uint32x4_t h[4], add[4];
  for (int k = 0; k < 4; ++k) {
    h[k] = vld1q_u32(lanes + 4 * k);
    uint32_t a[4] = {4u * k, 4u * k + 1, 4u * k + 2, 4u * k + 3};
    add[k] = vld1q_u32(a);
  }
  const uint32x4_t mul = vdupq_n_u32(scalar::kChecksumMul);
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 4; ++k)
      h[k] = vaddq_u32(vmulq_u32(veorq_u32(h[k], vld1q_u32(w + i + 4 * k)), mul), add[k]);
  for (int k = 0; k < 4; ++k) vst1q_u32(lanes + 4 * k, h[k]);
  scalar::checksum_tail(lanes, w, i, n);
  return scalar::checksum_fold(lanes, n);
}

}  // namespace gv::kernels::neon
#endif
