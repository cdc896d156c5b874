// AVX-512 (F) versions of the update kernels (x86-64). Bit-identical to scalar.h.
// Tails use masked loads and stores instead of a scalar loop.
#pragma once
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <cstdint>
#include "scalar.h"
#include "../targets.h"


namespace gv::kernels::avx512 {

GV_AVX512F inline __mmask16 tail_mask(size_t left) { return (__mmask16)((1u << left) - 1u); }

GV_AVX512F inline void axpby(float* out, const float* y, const float* x, float a, float b, size_t n) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 r0 = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_loadu_ps(y + i)), _mm512_mul_ps(va, _mm512_loadu_ps(x + i)));
    __m512 r1 = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_loadu_ps(y + i + 16)), _mm512_mul_ps(va, _mm512_loadu_ps(x + i + 16)));
    _mm512_storeu_ps(out + i, r0);
    _mm512_storeu_ps(out + i + 16, r1);
  }
  for (; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
    __m512 r = _mm512_add_ps(_mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, y + i)), _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i)));
    _mm512_mask_storeu_ps(out + i, m, r);
  }
}

// Copies of kStreamBytes and more (a snapshot of a large store) use
// streaming stores: the destination is not read for ownership first (8
// instead of 12 bytes of traffic per element), and a copy that large would
// not stay in cache anyway. Measured in bench/: 1.45-1.75x memcpy at 40 MB.
GV_AVX512F inline void copy_stream(float* dst, const float* src, size_t n) {
  size_t i = 0;
  while (i < n && (reinterpret_cast<uintptr_t>(dst + i) & 63)) {  // align the destination
    dst[i] = src[i];
    ++i;
  }
  for (; i + 64 <= n; i += 64) {
    __m512 a = _mm512_loadu_ps(src + i), b = _mm512_loadu_ps(src + i + 16);
    __m512 c = _mm512_loadu_ps(src + i + 32), d = _mm512_loadu_ps(src + i + 48);
    _mm512_stream_ps(dst + i, a);
    _mm512_stream_ps(dst + i + 16, b);
    _mm512_stream_ps(dst + i + 32, c);
    _mm512_stream_ps(dst + i + 48, d);
  }
  _mm_sfence();  // streaming stores are weakly ordered: make them visible before returning
  for (; i < n; ++i) dst[i] = src[i];
}

GV_AVX512F inline void copy(float* dst, const float* src, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512 a = _mm512_loadu_ps(src + i), b = _mm512_loadu_ps(src + i + 16);
    __m512 c = _mm512_loadu_ps(src + i + 32), d = _mm512_loadu_ps(src + i + 48);
    _mm512_storeu_ps(dst + i, a);
    _mm512_storeu_ps(dst + i + 16, b);
    _mm512_storeu_ps(dst + i + 32, c);
    _mm512_storeu_ps(dst + i + 48, d);
  }
  for (; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
  }
}

GV_AVX512F inline size_t first_nonfinite(const float* x, size_t n) {
  const __m512i exp = _mm512_set1_epi32(0x7f800000);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i v = _mm512_and_si512(_mm512_loadu_si512(x + i), exp);
    if (_mm512_cmpeq_epi32_mask(v, exp)) break;
  }
  return i + scalar::first_nonfinite(x + i, n - i);
}

GV_AVX512F inline uint64_t checksum(const float* x, size_t n) {
  const uint32_t* w = reinterpret_cast<const uint32_t*>(x);
  const __m512i mul = _mm512_set1_epi32((int)scalar::kChecksumMul);
  const __m512i add = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i h = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    h = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_xor_si512(h, _mm512_loadu_si512(w + i)), mul), add);
  alignas(64) uint32_t lanes[scalar::kChecksumLanes];
  _mm512_store_si512(lanes, h);
  scalar::checksum_tail(lanes, w, i, n);
  return scalar::checksum_fold(lanes, n);
}

}  // namespace gv::kernels::avx512
#endif
