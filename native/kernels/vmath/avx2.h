// AVX2 versions of vmath/scalar.h: the same operations in the same order
// (plain mul and add, no FMA), so each lane gives the scalar bits.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "scalar.h"
#include "../targets.h"

// Model kernels may use FMA (dense, sparse, softmax sums); elementwise ones do not.

namespace gv::kernels::avx2 {

GV_AVX2_FMA inline __m256 exp8(__m256 x0) {
  __m256 x = _mm256_min_ps(_mm256_max_ps(x0, _mm256_set1_ps(tol::kExpLo)), _mm256_set1_ps(tol::kExpHi));
  __m256 fx = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(vm::kLog2e)), _mm256_set1_ps(0.5f)));
  x = _mm256_sub_ps(x, _mm256_mul_ps(fx, _mm256_set1_ps(vm::kLn2Hi)));
  x = _mm256_sub_ps(x, _mm256_mul_ps(fx, _mm256_set1_ps(vm::kLn2Lo)));
  __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(vm::kExpP0);
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kExpP1));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kExpP2));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kExpP3));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kExpP4));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kExpP5));
  y = _mm256_add_ps(_mm256_mul_ps(y, z), x);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.f));
  __m256i n = _mm256_cvttps_epi32(fx);  // fx is integral: truncation is exact
  __m256 pow2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
  __m256 r = _mm256_mul_ps(y, pow2);
  __m256 under = _mm256_cmp_ps(x0, _mm256_set1_ps(tol::kExpLo), _CMP_LT_OQ);
  return _mm256_andnot_ps(under, r);
}

GV_AVX2_FMA inline __m256 log_1to2_8(__m256 u) {
  __m256i b = _mm256_castps_si256(u);
  __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b, 23), _mm256_set1_epi32(126)));
  __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(b, _mm256_set1_epi32((int)0x807fffffu)), _mm256_set1_epi32(0x3f000000)));
  __m256 lo = _mm256_cmp_ps(m, _mm256_set1_ps(vm::kSqrtHalf), _CMP_LT_OQ);
  __m256 one = _mm256_set1_ps(1.f);
  __m256 x = _mm256_add_ps(_mm256_sub_ps(m, one), _mm256_and_ps(lo, m));
  e = _mm256_sub_ps(e, _mm256_and_ps(lo, one));
  __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(vm::kLogP0);
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kLogP1));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kLogP2));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kLogP3));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kLogP4));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kLogP5));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kLogP6));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kLogP7));
  y = _mm256_add_ps(_mm256_mul_ps(y, x), _mm256_set1_ps(vm::kLogP8));
  y = _mm256_mul_ps(y, x);
  y = _mm256_mul_ps(y, z);
  y = _mm256_add_ps(y, _mm256_mul_ps(e, _mm256_set1_ps(vm::kLn2Lo)));
  y = _mm256_add_ps(y, _mm256_mul_ps(_mm256_set1_ps(-0.5f), z));
  x = _mm256_add_ps(x, y);
  return _mm256_add_ps(x, _mm256_mul_ps(e, _mm256_set1_ps(vm::kLn2Hi)));
}

GV_AVX2_FMA inline __m256 log1p8(__m256 t) {
  __m256 u = _mm256_add_ps(_mm256_set1_ps(1.f), t);
  __m256 d = _mm256_sub_ps(u, _mm256_set1_ps(1.f));
  __m256 r = _mm256_div_ps(_mm256_mul_ps(log_1to2_8(u), t), d);
  return _mm256_blendv_ps(r, t, _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ));
}

GV_AVX2_FMA inline __m256 abs8(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), x); }
GV_AVX2_FMA inline __m256 neg8(__m256 x) { return _mm256_xor_ps(_mm256_set1_ps(-0.f), x); }

GV_AVX2_FMA inline __m256 sigmoid8(__m256 z) {
  __m256 t = exp8(neg8(abs8(z)));
  __m256 d = _mm256_add_ps(_mm256_set1_ps(1.f), t);
  __m256 pos = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GE_OQ);
  return _mm256_blendv_ps(_mm256_div_ps(t, d), _mm256_div_ps(_mm256_set1_ps(1.f), d), pos);
}

GV_AVX2_FMA inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
GV_AVX2_FMA inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// Lanes [0, left) set, for maskload/maskstore tails (left < 8).
GV_AVX2_FMA inline __m256i tail_mask8(size_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace gv::kernels::avx2
#endif
