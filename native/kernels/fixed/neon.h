// NEON versions of the fixed family (AArch64). vcvtnq_s64_f64 rounds to
// nearest-even like llrint, so no range trick is needed for increments.
#pragma once
#if defined(__aarch64__)
#include <arm_neon.h>
#include "scalar.h"

namespace gv::kernels::neon {

inline bool fixed_add(int64_t* q, const float* g, const float* anchor, double scale, double wd, size_t n) {
  const float64x2_t vs = vdupq_n_f64(scale), v32 = vdupq_n_f64(kFixedOne), vwd = vdupq_n_f64(wd);
  const int64x2_t hi = vdupq_n_s64(kFixedLimit), lo = vdupq_n_s64(-kFixedLimit);
  uint64x2_t bad = vdupq_n_u64(0);
  size_t k = 0;
  for (; k + 2 <= n; k += 2) {
    float64x2_t gg = vcvt_f64_f32(vld1_f32(g + k));
    if (anchor) gg = vaddq_f64(gg, vmulq_f64(vwd, vcvt_f64_f32(vld1_f32(anchor + k))));
    int64x2_t d = vcvtnq_s64_f64(vmulq_f64(vmulq_f64(vs, gg), v32));
    int64x2_t v = vaddq_s64(vld1q_s64(q + k), d);
    bad = vorrq_u64(bad, vorrq_u64(vcgtq_s64(v, hi), vcltq_s64(v, lo)));
    vst1q_s64(q + k, v);
  }
  bool ok = (vgetq_lane_u64(bad, 0) | vgetq_lane_u64(bad, 1)) == 0;
  return scalar::fixed_add(q + k, g + k, anchor ? anchor + k : nullptr, scale, wd, n - k) && ok;
}

inline void fixed_load(float* out, const int64_t* q, size_t n) {
  const float64x2_t inv = vdupq_n_f64(1.0 / kFixedOne);
  size_t k = 0;
  for (; k + 2 <= n; k += 2) vst1_f32(out + k, vcvt_f32_f64(vmulq_f64(vcvtq_f64_s64(vld1q_s64(q + k)), inv)));
  scalar::fixed_load(out + k, q + k, n - k);
}

inline scalar::ScanResult scan(const float* x, size_t n) { return scalar::scan(x, n); }

}  // namespace gv::kernels::neon
#endif
