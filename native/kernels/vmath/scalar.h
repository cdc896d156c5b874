// Scalar exp and log1p for the model kernels: the SAME operations, in the
// same order, as the SIMD versions beside this file (no FMA; the build uses
// -ffp-contract=off), so every instruction set gives these bits. See README.md.
#pragma once
#include <cstdint>
#include <cstring>
#include "../tolerance.h"

namespace gv::kernels::vm {

// Cephes expf constants.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;       // few bits: fx * kLn2Hi is exact
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpP0 = 1.9875691500E-4f, kExpP1 = 1.3981999507E-3f, kExpP2 = 8.3334519073E-3f,
                kExpP3 = 4.1665795894E-2f, kExpP4 = 1.6666665459E-1f, kExpP5 = 5.0000001201E-1f;
// Cephes logf constants.
constexpr float kSqrtHalf = 0.707106781186547524f;
constexpr float kLogP0 = 7.0376836292E-2f, kLogP1 = -1.1514610310E-1f, kLogP2 = 1.1676998740E-1f,
                kLogP3 = -1.2420140846E-1f, kLogP4 = 1.4249322787E-1f, kLogP5 = -1.6668057665E-1f,
                kLogP6 = 2.0000714765E-1f, kLogP7 = -2.4999993993E-1f, kLogP8 = 3.3333331174E-1f;

// max/min with the x86 semantics (the second operand when unordered), so NaN
// inputs give the same bits everywhere.
inline float vmax(float a, float b) { return a > b ? a : b; }
inline float vmin(float a, float b) { return a < b ? a : b; }

inline float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// exp(x) for x in [kExpLo, kExpHi] within kExpMaxUlp; 0 below, exp(kExpHi) above.
inline float exp_approx(float x0) {
  float x = vmin(vmax(x0, tol::kExpLo), tol::kExpHi);
  float fx = std::floor(x * kLog2e + 0.5f);
  x = x - fx * kLn2Hi;
  x = x - fx * kLn2Lo;
  float z = x * x;
  float y = kExpP0;
  y = y * x + kExpP1;
  y = y * x + kExpP2;
  y = y * x + kExpP3;
  y = y * x + kExpP4;
  y = y * x + kExpP5;
  y = y * z + x;
  y = y + 1.f;
  int32_t n = static_cast<int32_t>(fx);
  float r = y * bits_to_float(static_cast<uint32_t>(n + 127) << 23);
  return x0 < tol::kExpLo ? 0.f : r;
}

// log(u) for u in [1, 2] (Cephes logf core).
inline float log_1to2(float u) {
  uint32_t b = float_to_bits(u);
  float e = static_cast<float>(static_cast<int32_t>(b >> 23) - 126);
  float m = bits_to_float((b & 0x807fffffu) | 0x3f000000u);  // [0.5, 1)
  bool lo = m < kSqrtHalf;
  float x = (m - 1.f) + (lo ? m : 0.f);
  e = e - (lo ? 1.f : 0.f);
  float z = x * x;
  float y = kLogP0;
  y = y * x + kLogP1;
  y = y * x + kLogP2;
  y = y * x + kLogP3;
  y = y * x + kLogP4;
  y = y * x + kLogP5;
  y = y * x + kLogP6;
  y = y * x + kLogP7;
  y = y * x + kLogP8;
  y = y * x;
  y = y * z;
  y = y + e * kLn2Lo;
  y = y + (-0.5f) * z;
  x = x + y;
  return x + e * kLn2Hi;
}

// log(1 + t) for t in [0, 1]: log(u) * t / (u - 1) with u = 1 + t corrects
// the rounding of u (u - 1 is exact); t itself when u rounds to 1.
inline float log1p_approx(float t) {
  float u = 1.f + t;
  float d = u - 1.f;
  float r = (log_1to2(u) * t) / d;
  return d == 0.f ? t : r;
}

// sigmoid(z) = 1 / (1 + exp(-z)), from t = exp(-|z|) <= 1 so nothing overflows.
inline float sigmoid(float z) {
  float t = exp_approx(-std::fabs(z));
  float d = 1.f + t;
  return z >= 0.f ? 1.f / d : t / d;
}

}  // namespace gv::kernels::vm
