// AVX2 racy copies (x86-64): see scalar.h and README.md.
#pragma once
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <cstdint>
#include "../targets.h"
#include "scalar.h"

namespace gv::kernels::avx2 {

// One 32-byte vmovups, written as inline asm rather than an intrinsic or a
// volatile access: the compiler can neither fuse a loop of these into a
// memcpy call (which may copy byte by byte) nor split or narrow it, and
// ThreadSanitizer does not instrument asm, so the racy load is invisible to
// it while the stores into the caller's private buffer stay checked.
// `volatile`: every load happens where written (none hoisted out of a
// caller's loop as if memory could not change under it).
//
// The hardware assumption: the x86-64 manuals (Intel SDM vol. 3A "Guaranteed
// Atomic Operations", AMD APM vol. 2 "Access Atomicity") guarantee aligned
// accesses of up to 8 bytes (Intel's, on CPUs with AVX, also aligned 16-byte
// vector moves) and say a wider vector access "may be implemented using
// multiple memory accesses"; they promise nothing per element beyond that.
// Known implementations split such a load only at 8-byte or wider aligned
// boundaries (their cache data paths are 16-64 bytes wide), never inside an
// aligned 4-byte element, so each float is read whole. That is an
// assumption, not a documented rule: test_torn hunts for a counter-example
// on every ISA the CPU has.
GV_AVX2 inline __m256 load_whole(const float* p) {
  __m256 v;
  asm volatile("vmovups %1, %0" : "=x"(v) : "m"(*reinterpret_cast<const float(*)[8]>(p)));
  return v;
}

GV_AVX2 inline void copy_racy(float* dst, const float* src, size_t n) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 a = load_whole(src + i), b = load_whole(src + i + 8);
    __m256 c = load_whole(src + i + 16), d = load_whole(src + i + 24);
    _mm256_storeu_ps(dst + i, a);
    _mm256_storeu_ps(dst + i + 8, b);
    _mm256_storeu_ps(dst + i + 16, c);
    _mm256_storeu_ps(dst + i + 24, d);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_whole(src + i));
  scalar::copy_racy(dst + i, src + i, n - i);
}

// Large snapshots: the same loads with streaming stores, as update's
// copy_stream (the destination is not read for ownership first).
GV_AVX2 inline void copy_racy_stream(float* dst, const float* src, size_t n) {
  size_t head = 0;
  while (head < n && (reinterpret_cast<uintptr_t>(dst + head) & 31)) ++head;  // align the destination
  scalar::copy_racy(dst, src, head);
  size_t i = head;
  for (; i + 32 <= n; i += 32) {
    __m256 a = load_whole(src + i), b = load_whole(src + i + 8);
    __m256 c = load_whole(src + i + 16), d = load_whole(src + i + 24);
    _mm256_stream_ps(dst + i, a);
    _mm256_stream_ps(dst + i + 8, b);
    _mm256_stream_ps(dst + i + 16, c);
    _mm256_stream_ps(dst + i + 24, d);
  }
  _mm_sfence();  // streaming stores are weakly ordered: make them visible before returning
  scalar::copy_racy(dst + i, src + i, n - i);
}

}  // namespace gv::kernels::avx2
#endif
