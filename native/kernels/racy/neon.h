// NEON racy copy (AArch64 only): see scalar.h and README.md.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>
#include "scalar.h"

namespace gv::kernels::neon {

// `ld1 {v.4s}` as inline asm. The Arm ARM (B2.2.1, single-copy atomicity)
// makes each element access of an element/structure load such as LD1
// single-copy atomic when aligned to the element size, so every aligned
// 4-byte float is read whole; a 128-bit LDR Q or an LDP would only promise
// aligned 64-bit halves without FEAT_LSE2, so the arrangement is pinned
// here. Inline asm because an intrinsic may be compiled to LDR Q/LDP, or a
// loop of them fused into memcpy; "Q" is the bare [Xn] address LD1 takes;
// volatile keeps each load where it is written; ThreadSanitizer does not
// see asm.
inline float32x4_t load_whole(const float* p) {
  float32x4_t v;
  asm volatile("ld1 {%0.4s}, %1" : "=w"(v) : "Q"(*reinterpret_cast<const float(*)[4]>(p)));
  return v;
}

inline void copy_racy(float* dst, const float* src, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, load_whole(src + i));
  scalar::copy_racy(dst + i, src + i, n - i);
}

}  // namespace gv::kernels::neon
#endif
