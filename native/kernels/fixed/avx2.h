// AVX2 versions of the fixed family. Bit-identical to scalar.h within the
// range the caller checks (|increment| < 2^51, |value| < 2^51 for loads).
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include "scalar.h"
#include "../targets.h"

namespace gv::kernels::avx2 {

// Adding 1.5 * 2^52 rounds a double below 2^51 to an integer in the current
// rounding mode (nearest-even, as llrint) and leaves it in the low mantissa
// bits; subtracting the constant's bits turns it into an int64.
constexpr double kMagic = 6755399441055744.0;

GV_AVX2 inline bool fixed_add(int64_t* q, const float* g, const float* anchor, double scale,
                                                      double wd, size_t n) {
  const __m256d vs = _mm256_set1_pd(scale), v32 = _mm256_set1_pd(kFixedOne), vm = _mm256_set1_pd(kMagic);
  const __m256d vwd = _mm256_set1_pd(wd);
  const __m256i mbits = _mm256_castpd_si256(vm);
  const __m256i hi = _mm256_set1_epi64x(kFixedLimit), lo = _mm256_set1_epi64x(-kFixedLimit);
  __m256i bad = _mm256_setzero_si256();
  size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    __m256d gg = _mm256_cvtps_pd(_mm_loadu_ps(g + k));
    if (anchor) gg = _mm256_add_pd(gg, _mm256_mul_pd(vwd, _mm256_cvtps_pd(_mm_loadu_ps(anchor + k))));
    __m256d x = _mm256_mul_pd(_mm256_mul_pd(vs, gg), v32);
    __m256i d = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(x, vm)), mbits);
    __m256i* qp = reinterpret_cast<__m256i*>(q + k);
    __m256i v = _mm256_add_epi64(_mm256_loadu_si256(qp), d);
    bad = _mm256_or_si256(bad, _mm256_or_si256(_mm256_cmpgt_epi64(v, hi), _mm256_cmpgt_epi64(lo, v)));
    _mm256_storeu_si256(qp, v);
  }
  bool ok = _mm256_testz_si256(bad, bad);
  return scalar::fixed_add(q + k, g + k, anchor ? anchor + k : nullptr, scale, wd, n - k) && ok;
}

// Exact for |q| < 2^51; returns false (output unspecified) otherwise, and
// the caller falls back to scalar for the block.
GV_AVX2 inline bool fixed_load_exact(float* out, const int64_t* q, size_t n) {
  const __m256d vm = _mm256_set1_pd(kMagic), inv = _mm256_set1_pd(1.0 / kFixedOne);
  const __m256i mbits = _mm256_castpd_si256(vm);
  const __m256i hi = _mm256_set1_epi64x((int64_t{1} << 51) - 1), lo = _mm256_set1_epi64x(-((int64_t{1} << 51) - 1));
  __m256i bad = _mm256_setzero_si256();
  size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k));
    bad = _mm256_or_si256(bad, _mm256_or_si256(_mm256_cmpgt_epi64(v, hi), _mm256_cmpgt_epi64(lo, v)));
    __m256d d = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_add_epi64(v, mbits)), vm);
    // x / 2^32 and x * 2^-32 are the same exact power-of-two scaling.
    _mm_storeu_ps(out + k, _mm256_cvtpd_ps(_mm256_mul_pd(d, inv)));
  }
  scalar::fixed_load(out + k, q + k, n - k);
  return _mm256_testz_si256(bad, bad);
}

GV_AVX2 inline void fixed_load(float* out, const int64_t* q, size_t n) {
  constexpr size_t kBlock = 4096;
  for (size_t lo = 0; lo < n; lo += kBlock) {
    size_t len = n - lo < kBlock ? n - lo : kBlock;
    if (!fixed_load_exact(out + lo, q + lo, len)) scalar::fixed_load(out + lo, q + lo, len);
  }
}

// One branch per 32 floats; the exact position is found by the scalar loop
// inside the first bad block.
GV_AVX2 inline scalar::ScanResult scan(const float* x, size_t n) {
  const __m256i e = _mm256_set1_epi32(0x7f800000);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
    __m256i ia = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(a), e), e);
    __m256i ib = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(b), e), e);
    __m256i ic = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(c), e), e);
    __m256i id = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(d), e), e);
    __m256i bad = _mm256_or_si256(_mm256_or_si256(ia, ib), _mm256_or_si256(ic, id));
    if (!_mm256_testz_si256(bad, bad)) break;
    m0 = _mm256_max_ps(m0, _mm256_max_ps(_mm256_and_ps(a, absmask), _mm256_and_ps(b, absmask)));
    m1 = _mm256_max_ps(m1, _mm256_max_ps(_mm256_and_ps(c, absmask), _mm256_and_ps(d, absmask)));
  }
  alignas(32) float l[8];
  _mm256_store_ps(l, _mm256_max_ps(m0, m1));
  float m = 0.f;
  for (float v : l) m = v > m ? v : m;
  scalar::ScanResult r = scalar::scan(x + i, n - i);
  return {i + r.firstNonFinite, r.maxAbs > m ? r.maxAbs : m};
}

}  // namespace gv::kernels::avx2
#endif
