// Q32.32 fixed point: the scalar reference of the fixed family (see
// README.md). An increment is llrint(scale * g[k] * 2^32) computed in double
// (scale = -lr for deterministic parameters, 1 for averaging sums); integer
// sums are associative, which is what makes the result order-free.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace gv::kernels {
constexpr double kFixedOne = 4294967296.0;                 // 2^32
constexpr int64_t kFixedLimit = int64_t{1} << 62;          // |value| above this is refused (2^30 as a real)
constexpr double kFixedExactSimd = 2251799813685248.0;     // 2^51: below it the SIMD rounding trick is exact
}  // namespace gv::kernels

namespace gv::kernels::scalar {

// One element's increment; also used by the SIMD tails.
inline int64_t fixed_increment(double scale, float g, const float* anchor, double wd, size_t k) {
  double gg = anchor ? static_cast<double>(g) + wd * static_cast<double>(anchor[k]) : static_cast<double>(g);
  return std::llrint(scale * gg * kFixedOne);
}

// q[k] += increment for k < n, modulo 2^64 (two's complement, as the SIMD
// adds: exact and associative, so the order of pushes never matters).
// Returns false if some new value is outside [-2^62, 2^62].
inline bool fixed_add(int64_t* q, const float* g, const float* anchor, double scale, double wd, size_t n) {
  bool ok = true;
  for (size_t k = 0; k < n; ++k) {
    const int64_t v = static_cast<int64_t>(static_cast<uint64_t>(q[k]) + static_cast<uint64_t>(fixed_increment(scale, g[k], anchor, wd, k)));
    q[k] = v;
    ok &= v <= kFixedLimit && v >= -kFixedLimit;
  }
  return ok;
}

inline void fixed_load(float* out, const int64_t* q, size_t n) {
  for (size_t k = 0; k < n; ++k) out[k] = static_cast<float>(static_cast<double>(q[k]) / kFixedOne);
}

// First NaN/Inf (or n) and the largest |x| before it, in one pass: the
// pre-check of every push, and the fixed-point range check.
struct ScanResult {
  size_t firstNonFinite;
  float maxAbs;
};
inline ScanResult scan(const float* x, size_t n) {
  float m = 0.f;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return {i, m};
    float a = std::fabs(x[i]);
    m = a > m ? a : m;
  }
  return {n, m};
}

}  // namespace gv::kernels::scalar
