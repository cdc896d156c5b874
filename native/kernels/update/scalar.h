// Scalar reference for the update kernel family. Every other instruction set
// in this folder must produce the same bits as these loops (the build uses
// -ffp-contract=off, so no fused multiply-add changes rounding anywhere).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gv::kernels::scalar {

// out[i] = b * y[i] + a * x[i]; out may alias y.
inline void axpby(float* out, const float* y, const float* x, float a, float b, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = b * y[i] + a * x[i];
}

inline void copy(float* dst, const float* src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = src[i];
}

// The scalar reference has no streaming stores: the same loop.
inline void copy_stream(float* dst, const float* src, size_t n) { copy(dst, src, n); }

// Index of the first NaN or infinity, or n when every value is finite.
inline size_t first_nonfinite(const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], 4);
    if ((bits & 0x7f800000u) == 0x7f800000u) return i;
  }
  return n;
}

// 16 lanes of a multiplicative hash over the 32-bit words (lane = i % 16),
// folded into 64 bits. Any single changed word changes its lane's state, so a
// value modified in place is always detected; it is a change detector, not a
// cryptographic hash.
constexpr uint32_t kChecksumMul = 0x9E3779B1u;
constexpr size_t kChecksumLanes = 16;

inline uint64_t checksum_fold(const uint32_t* lanes, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
  for (size_t l = 0; l < kChecksumLanes; ++l) {
    h ^= lanes[l];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h;
}

inline void checksum_tail(uint32_t* lanes, const uint32_t* w, size_t from, size_t n) {
  for (size_t i = from; i < n; ++i) {
    size_t l = i % kChecksumLanes;
    lanes[l] = (lanes[l] ^ w[i]) * kChecksumMul + (uint32_t)l;
  }
}

inline uint64_t checksum(const float* x, size_t n) {
  uint32_t lanes[kChecksumLanes];
  for (size_t l = 0; l < kChecksumLanes; ++l) lanes[l] = (uint32_t)(l + 1);
  checksum_tail(lanes, reinterpret_cast<const uint32_t*>(x), 0, n);
  return checksum_fold(lanes, n);
}

}  // namespace gv::kernels::scalar
