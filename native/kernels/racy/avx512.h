// AVX-512 (F) racy copies (x86-64): see avx2.h for why the loads are inline
// asm and which hardware guarantee they rest on.
#pragma once
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <cstdint>
#include "../targets.h"
#include "scalar.h"

namespace gv::kernels::avx512 {

// One 64-byte vmovups (the "v" constraint: any of zmm0-31).
GV_AVX512F inline __m512 load_whole(const float* p) {
  __m512 v;
  asm volatile("vmovups %1, %0" : "=v"(v) : "m"(*reinterpret_cast<const float(*)[16]>(p)));
  return v;
}

// The tail (< 16 floats) goes through the scalar kernel: a masked asm load
// would have to claim 64 bytes it does not read.
GV_AVX512F inline void copy_racy(float* dst, const float* src, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512 a = load_whole(src + i), b = load_whole(src + i + 16);
    __m512 c = load_whole(src + i + 32), d = load_whole(src + i + 48);
    _mm512_storeu_ps(dst + i, a);
    _mm512_storeu_ps(dst + i + 16, b);
    _mm512_storeu_ps(dst + i + 32, c);
    _mm512_storeu_ps(dst + i + 48, d);
  }
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load_whole(src + i));
  scalar::copy_racy(dst + i, src + i, n - i);
}

GV_AVX512F inline void copy_racy_stream(float* dst, const float* src, size_t n) {
  size_t head = 0;
  while (head < n && (reinterpret_cast<uintptr_t>(dst + head) & 63)) ++head;  // align the destination
  scalar::copy_racy(dst, src, head);
  size_t i = head;
  for (; i + 64 <= n; i += 64) {
    __m512 a = load_whole(src + i), b = load_whole(src + i + 16);
    __m512 c = load_whole(src + i + 32), d = load_whole(src + i + 48);
    _mm512_stream_ps(dst + i, a);
    _mm512_stream_ps(dst + i + 16, b);
    _mm512_stream_ps(dst + i + 32, c);
    _mm512_stream_ps(dst + i + 48, d);
  }
  _mm_sfence();  // streaming stores are weakly ordered: make them visible before returning
  scalar::copy_racy(dst + i, src + i, n - i);
}

}  // namespace gv::kernels::avx512
#endif
