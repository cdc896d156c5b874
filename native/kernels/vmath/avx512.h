// AVX-512F versions of vmath/scalar.h: the same operations in the same order
// (no FMA), so each lane gives the scalar bits. Compiled on x86-64; runs only
// where the CPU has AVX-512F.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "scalar.h"
#include "../targets.h"


namespace gv::kernels::avx512 {

GV_AVX512F inline __mmask16 mask16(size_t left) {
  return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

GV_AVX512F inline __m512 exp16(__m512 x0) {
  __m512 x = _mm512_min_ps(_mm512_max_ps(x0, _mm512_set1_ps(tol::kExpLo)), _mm512_set1_ps(tol::kExpHi));
  __m512 fx = _mm512_floor_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(vm::kLog2e)), _mm512_set1_ps(0.5f)));
  x = _mm512_sub_ps(x, _mm512_mul_ps(fx, _mm512_set1_ps(vm::kLn2Hi)));
  x = _mm512_sub_ps(x, _mm512_mul_ps(fx, _mm512_set1_ps(vm::kLn2Lo)));
  __m512 z = _mm512_mul_ps(x, x);
  __m512 y = _mm512_set1_ps(vm::kExpP0);
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kExpP1));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kExpP2));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kExpP3));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kExpP4));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kExpP5));
  y = _mm512_add_ps(_mm512_mul_ps(y, z), x);
  y = _mm512_add_ps(y, _mm512_set1_ps(1.f));
  __m512i n = _mm512_cvttps_epi32(fx);
  __m512 pow2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
  __m512 r = _mm512_mul_ps(y, pow2);
  __mmask16 under = _mm512_cmp_ps_mask(x0, _mm512_set1_ps(tol::kExpLo), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(under, r, _mm512_setzero_ps());
}

GV_AVX512F inline __m512 log_1to2_16(__m512 u) {
  __m512i b = _mm512_castps_si512(u);
  __m512 e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(b, 23), _mm512_set1_epi32(126)));
  __m512 m = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi32((int)0x807fffffu)), _mm512_set1_epi32(0x3f000000)));
  __mmask16 lo = _mm512_cmp_ps_mask(m, _mm512_set1_ps(vm::kSqrtHalf), _CMP_LT_OQ);
  __m512 one = _mm512_set1_ps(1.f), zero = _mm512_setzero_ps();
  __m512 x = _mm512_add_ps(_mm512_sub_ps(m, one), _mm512_mask_blend_ps(lo, zero, m));
  e = _mm512_sub_ps(e, _mm512_mask_blend_ps(lo, zero, one));
  __m512 z = _mm512_mul_ps(x, x);
  __m512 y = _mm512_set1_ps(vm::kLogP0);
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kLogP1));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kLogP2));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kLogP3));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kLogP4));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kLogP5));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kLogP6));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kLogP7));
  y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(vm::kLogP8));
  y = _mm512_mul_ps(y, x);
  y = _mm512_mul_ps(y, z);
  y = _mm512_add_ps(y, _mm512_mul_ps(e, _mm512_set1_ps(vm::kLn2Lo)));
  y = _mm512_add_ps(y, _mm512_mul_ps(_mm512_set1_ps(-0.5f), z));
  x = _mm512_add_ps(x, y);
  return _mm512_add_ps(x, _mm512_mul_ps(e, _mm512_set1_ps(vm::kLn2Hi)));
}

GV_AVX512F inline __m512 log1p16(__m512 t) {
  __m512 u = _mm512_add_ps(_mm512_set1_ps(1.f), t);
  __m512 d = _mm512_sub_ps(u, _mm512_set1_ps(1.f));
  __m512 r = _mm512_div_ps(_mm512_mul_ps(log_1to2_16(u), t), d);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_EQ_OQ), r, t);
}

GV_AVX512F inline __m512 abs16(__m512 x) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}
GV_AVX512F inline __m512 neg16(__m512 x) {
  return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
}

GV_AVX512F inline __m512 sigmoid16(__m512 z) {
  __m512 t = exp16(neg16(abs16(z)));
  __m512 d = _mm512_add_ps(_mm512_set1_ps(1.f), t);
  __mmask16 pos = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ);
  return _mm512_mask_blend_ps(pos, _mm512_div_ps(t, d), _mm512_div_ps(_mm512_set1_ps(1.f), d));
}

}  // namespace gv::kernels::avx512
#endif
