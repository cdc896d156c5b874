// Racy copies: the lock-free snapshot of mode 'atomic' reads the parameters
// while a stripe's owner writes them with plain SIMD stores. Each kernel here
// reads every aligned 4-byte element with one access that the hardware
// performs whole, so each element read is a value some writer stored (never
// a mix of two); which of the stores it sees is unspecified. See README.md.
//
// This file is the portable reference, and also holds the per-element
// relaxed atomics of the strictly conforming build (GV_STRICT_ATOMICS).
#pragma once
#include <atomic>
#include <cstddef>

namespace gv::kernels::scalar {

// Relaxed atomic loads, one per element: indivisible by the letter of the
// language, and a plain 4-byte load on x86-64 and AArch64. This kernel races
// with the owner's plain (non-atomic) SIMD stores on purpose, which
// ThreadSanitizer would report; no_sanitize("thread") on exactly this
// function hides these loads from it (GCC leaves the whole function,
// atomics included, uninstrumented) while the writers' locking stays checked.
// The builtin rather than std::atomic_ref: it expands in place, where a
// library call could be instrumented out of line under the sanitizer.
//
// These loops are not vectorised (atomics never are) and run at about one
// element per cycle, bound by the front end rather than by memory: unrolled,
// so that where the linker happens to place the loop does not halve its
// speed (measured: 3.6 vs 6.3 ms for 10 M floats, the same code at two
// addresses).
__attribute__((no_sanitize("thread"))) inline void copy_racy(float* dst, const float* src, size_t n) {
#pragma GCC unroll 4
  for (size_t i = 0; i < n; ++i) __atomic_load(src + i, dst + i, __ATOMIC_RELAXED);
}

// GV_STRICT_ATOMICS: readers and the stripe's owner both access the shared
// parameters through std::atomic_ref, so the program has no data race at
// all. These stay instrumented: a ThreadSanitizer build checks that claim.
inline void load_relaxed(float* dst, const float* src, size_t n) {
#pragma GCC unroll 4
  for (size_t i = 0; i < n; ++i)
    dst[i] = std::atomic_ref<float>(const_cast<float&>(src[i])).load(std::memory_order_relaxed);
}
inline void store_relaxed(float* dst, const float* src, size_t n) {
#pragma GCC unroll 4
  for (size_t i = 0; i < n; ++i) std::atomic_ref<float>(dst[i]).store(src[i], std::memory_order_relaxed);
}

}  // namespace gv::kernels::scalar
