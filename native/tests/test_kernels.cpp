// (Long on purpose: one case per kernel of the update, fixed and racy
// families, which share their helpers.)
// Every kernel on every instruction set this CPU supports (iterated in
// process with table_for) against the scalar reference: bitwise, at sizes
// around every vector width, on aligned and misaligned pointers, without
// writing outside [0, n).
#include <algorithm>
#include <cfloat>
#include <concepts>
#include <random>

#include "check.h"
#include "kernels/dispatch.h"
#include "kernels/update/scalar.h"

using namespace gv::kernels;
using gvtest::same_bits;

namespace {

const size_t kSizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 1000, 100003};

// Step results may differ from scalar by at most this many ULPs. Zero: the
// build uses -ffp-contract=off and the kernels use only +, -, *, / and sqrt,
// all correctly rounded, so every instruction set gives the scalar bits.
constexpr uint64_t kStepMaxUlp = 0;

using Buffer = gvtest::GuardedBuffer;

// Values of every kind a gradient or parameter holds: varied magnitudes,
// both signs, zeros of both signs, subnormals.
float random_value(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> e(-30, 10);
  int kind = static_cast<int>(rng() % 64);
  if (kind == 0) return 0.f;
  if (kind == 1) return -0.f;
  if (kind == 2) return 1e-40f * u(rng);  // subnormal
  return std::ldexp(u(rng), e(rng));
}

void fill(Buffer& b, std::mt19937_64& rng) {
  for (size_t i = 0; i < b.size(); ++i) b[i] = random_value(rng);
}
void fill_positive(Buffer& b, std::mt19937_64& rng) {
  for (size_t i = 0; i < b.size(); ++i) b[i] = std::fabs(random_value(rng));
}
void copy_into(Buffer& dst, const Buffer& src) {
  if (src.size()) std::memcpy(dst.data(), src.data(), src.size() * 4);
}

// Index of the first element whose bits differ, or n.
size_t first_difference(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!same_bits(a[i], b[i])) return i;
  return n;
}

std::string describe(const Table& t, size_t n, size_t misalign) {
  return std::string(t.name) + " n=" + std::to_string(n) + " misalign=" + std::to_string(misalign);
}

// ---------------------------------------------------------------- axpby

void test_axpby(const Table& ref, const Table& t) {
  std::mt19937_64 rng(1);
  const float coeffs[][2] = {{-0.05f, 1.f}, {1.f, 1.f}, {0.3f, -2.5f}, {0.f, 1.f}, {-1e-20f, 0.999f}};
  for (size_t n : kSizes)
    for (size_t mis : {0, 1}) {
      gvtest::Context ctx("axpby " + describe(t, n, mis));
      Buffer y(n, mis), x(n, mis * 2), want(n, mis), got(n, mis), inplace(n, mis);
      fill(y, rng);
      fill(x, rng);
      for (auto& ab : coeffs) {
        const float a = ab[0], b = ab[1];
        ref.axpby(want.data(), y.data(), x.data(), a, b, n);
        t.axpby(got.data(), y.data(), x.data(), a, b, n);
        size_t d = first_difference(want.data(), got.data(), n);
        CHECK_MSG(d == n, "differs from scalar at " << d << ": " << gvtest::show(want[d]) << " vs "
                                                    << gvtest::show(got[d]));
        // out aliasing y (how the store uses it: p = 1*p - lr*g).
        copy_into(inplace, y);
        t.axpby(inplace.data(), inplace.data(), x.data(), a, b, n);
        d = first_difference(want.data(), inplace.data(), n);
        CHECK_MSG(d == n, "in place differs from scalar at " << d);
        // The reference itself against the formula.
        if (&t == &ref)
          for (size_t i = 0; i < n; ++i) {
            float f = b * y[i] + a * x[i];
            if (!same_bits(f, want[i])) {
              CHECK_MSG(false, "scalar axpby is not b*y + a*x at " << i);
              break;
            }
          }
        CHECK(got.guards_intact());
        CHECK(inplace.guards_intact());
      }
    }
}

// ---------------------------------------------------------------- copy

void test_copy(const Table& t) {
  std::mt19937_64 rng(2);
  // Streaming copies of a few MiB too.
  std::vector<size_t> sizes(std::begin(kSizes), std::end(kSizes));
  for (size_t n : {(size_t{1} << 20) - 1, size_t{1} << 20, (size_t{1} << 20) + 17, size_t{3000001}}) sizes.push_back(n);
  for (size_t n : sizes)
    for (size_t mis : {0, 1, 3}) {
      gvtest::Context ctx("copy " + describe(t, n, mis));
      Buffer src(n, mis), dst(n, (mis + 1) % 16);
      fill(src, rng);
      // NaN payloads and infinities travel unchanged.
      if (n > 3) {
        uint32_t nan = 0x7fc01234u, snan = 0xff800001u;
        std::memcpy(&src[1], &nan, 4);
        std::memcpy(&src[n - 1], &snan, 4);
        src[n / 2] = -INFINITY;
      }
      // The racy copies (racy/) are plain copies when nothing writes meanwhile.
      const struct {
        const char* name;
        void (*f)(float*, const float*, size_t);
      } copies[] = {{"copy", t.copy}, {"copy_stream", t.copy_stream}, {"copy_racy", t.copy_racy},
                    {"copy_racy_stream", t.copy_racy_stream}};
      for (const auto& c : copies) {
        std::memset(dst.data(), 0, n * 4);
        c.f(dst.data(), src.data(), n);
        CHECK_MSG(n == 0 || std::memcmp(dst.data(), src.data(), n * 4) == 0, c.name);
        CHECK_MSG(dst.guards_intact(), c.name);
      }
    }
}

// ---------------------------------------------------------------- first_nonfinite

void test_first_nonfinite(const Table& ref, const Table& t) {
  std::mt19937_64 rng(3);
  const uint32_t bad[] = {0x7fc00000u /* NaN */, 0xffc00000u /* -NaN */, 0x7f800001u /* signalling NaN */,
                          0x7f800000u /* +inf */, 0xff800000u /* -inf */, 0x7fffffffu};
  for (size_t n : kSizes)
    for (size_t mis : {0, 1}) {
      gvtest::Context ctx("first_nonfinite " + describe(t, n, mis));
      Buffer x(n, mis);
      fill(x, rng);
      if (n > 2) {
        x[0] = FLT_MAX;  // large but finite
        x[n - 1] = -FLT_MAX;
      }
      CHECK_EQ(t.first_nonfinite(x.data(), n), n);
      std::vector<size_t> positions = {0, 1, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, n / 2, n - 2, n - 1};
      for (size_t pos : positions) {
        if (pos >= n) continue;
        for (uint32_t b : bad) {
          float saved = x[pos];
          std::memcpy(&x[pos], &b, 4);
          size_t want = ref.first_nonfinite(x.data(), n);
          CHECK_EQ(want, pos);
          CHECK_EQ(t.first_nonfinite(x.data(), n), pos);
          // A second bad value later does not hide the first.
          if (pos + 9 < n) {
            float s2 = x[pos + 9];
            x[pos + 9] = INFINITY;
            CHECK_EQ(t.first_nonfinite(x.data(), n), pos);
            x[pos + 9] = s2;
          }
          x[pos] = saved;
        }
      }
      CHECK_EQ(t.first_nonfinite(x.data(), n), n);
    }
}

// ---------------------------------------------------------------- checksum

void test_checksum(const Table& ref, const Table& t) {
  std::mt19937_64 rng(4);
  for (size_t n : kSizes) {
    Buffer a(n, 0), b(n, 1);
    fill(a, rng);
    copy_into(b, a);
    gvtest::Context ctx("checksum " + describe(t, n, 0));
    const uint64_t want = ref.checksum(a.data(), n);
    CHECK_EQ(want, scalar::checksum(a.data(), n));
    CHECK_EQ(t.checksum(a.data(), n), want);
    CHECK_EQ(t.checksum(b.data(), n), want);  // alignment does not matter, only the values
    // Any single changed element changes the checksum: every position for
    // the small sizes, a sample (every 997th, and 40 at each end) for the large one.
    const uint32_t flips[] = {0x00000001u /* last mantissa bit */, 0x80000000u /* sign */, 0x00400000u,
                              0x7f800000u /* exponent */};
    for (size_t pos = 0; pos < n; ++pos) {
      if (n > 2000 && pos % 997 != 0 && pos + 40 < n && pos > 40) continue;
      for (uint32_t f : flips) {
        uint32_t w;
        std::memcpy(&w, &b[pos], 4);
        uint32_t w2 = w ^ f;
        std::memcpy(&b[pos], &w2, 4);
        uint64_t h = t.checksum(b.data(), n);
        CHECK_MSG(h != want, "changing element " << pos << " (xor " << f << ") kept the checksum");
        if (n <= 1000) CHECK_EQ(h, ref.checksum(b.data(), n));
        std::memcpy(&b[pos], &w, 4);
      }
    }
    CHECK_EQ(t.checksum(b.data(), n), want);
    // A prefix is not the whole: the length is part of the checksum.
    if (n > 0) CHECK(t.checksum(a.data(), n - 1) != want);
  }
  // Zero-filled arrays of different lengths differ.
  std::vector<float> z(64, 0.f);
  for (size_t n = 1; n < 64; ++n) CHECK(t.checksum(z.data(), n) != t.checksum(z.data(), n - 1));
}

// ---------------------------------------------------------------- step

struct OptCase {
  const char* name;
  StepArgs args;
};

std::vector<OptCase> optimizer_cases() {
  std::vector<OptCase> v;
  auto add = [&](const char* name, auto edit) {
    StepArgs a;
    a.lr = 0.05f;
    edit(a);
    v.push_back({name, a});
  };
  add("sgd", [](StepArgs&) {});
  add("sgd momentum", [](StepArgs& a) { a.momentum = 0.9f; });
  add("sgd nesterov", [](StepArgs& a) { a.momentum = 0.9f; a.nesterov = true; });
  add("sgd wd coupled", [](StepArgs& a) { a.weightDecay = 0.01f; });
  add("sgd wd decoupled", [](StepArgs& a) { a.weightDecay = 0.01f; a.decoupled = true; });
  add("sgd momentum wd", [](StepArgs& a) { a.momentum = 0.5f; a.weightDecay = 0.1f; });
  add("nesterov wd decoupled", [](StepArgs& a) { a.momentum = 0.9f; a.nesterov = true; a.weightDecay = 0.1f; a.decoupled = true; });
  add("adagrad", [](StepArgs& a) { a.kind = OptKind::Adagrad; });
  add("adagrad wd", [](StepArgs& a) { a.kind = OptKind::Adagrad; a.weightDecay = 0.01f; });
  add("rmsprop", [](StepArgs& a) { a.kind = OptKind::Rmsprop; a.lr = 0.001f; });
  add("rmsprop wd decoupled", [](StepArgs& a) { a.kind = OptKind::Rmsprop; a.weightDecay = 0.05f; a.decoupled = true; });
  add("adam", [](StepArgs& a) { a.kind = OptKind::Adam; a.lr = 0.001f; });
  add("adam wd coupled", [](StepArgs& a) { a.kind = OptKind::Adam; a.weightDecay = 0.01f; });
  add("adamw", [](StepArgs& a) { a.kind = OptKind::Adam; a.weightDecay = 0.01f; a.decoupled = true; });
  return v;
}

struct UlpReport {
  uint64_t max = 0;
  std::string where;
};

void compare_step_arrays(const char* what, const Buffer& want, const Buffer& got, size_t n, UlpReport& ulps) {
  for (size_t i = 0; i < n; ++i) {
    const float a = want[i], b = got[i];
    uint64_t d = gvtest::ulp_distance(a, b);
    if (d > ulps.max) {
      ulps.max = d;
      ulps.where = std::string(what) + "[" + std::to_string(i) + "] " + gvtest::show(a) + " vs " + gvtest::show(b);
    }
  }
}

void test_step(const Table& ref, const Table& t, uint64_t& worstUlp) {
  std::mt19937_64 rng(5);
  struct Misalign {
    size_t p, s1, s2, g;
  };
  const Misalign mis[] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {1, 3, 0, 2}};
  for (const OptCase& oc : optimizer_cases())
    for (size_t n : kSizes)
      for (const Misalign& m : mis) {
        gvtest::Context ctx(std::string("step ") + oc.name + " " + describe(t, n, m.p) + " (s1 +" +
                            std::to_string(m.s1) + ", g +" + std::to_string(m.g) + ")");
        Buffer p0(n, m.p), p1(n, m.p), a1(n, m.s1), b1(n, m.s1), a2(n, m.s2), b2(n, m.s2), g(n, m.g);
        fill(p0, rng);
        copy_into(p1, p0);
        const int slots = state_slots(oc.args);
        // Start from a state some steps have built (positive second moments).
        if (slots >= 1) {
          // Momentum and Adam's first moment take any sign; squared-gradient sums do not.
          if (oc.args.kind == OptKind::Sgd || oc.args.kind == OptKind::Adam) fill(a1, rng);
          else fill_positive(a1, rng);
          copy_into(b1, a1);
        }
        if (slots >= 2) {
          fill_positive(a2, rng);
          copy_into(b2, a2);
        }
        float* s1r = slots >= 1 ? a1.data() : nullptr;
        float* s1t = slots >= 1 ? b1.data() : nullptr;
        float* s2r = slots >= 2 ? a2.data() : nullptr;
        float* s2t = slots >= 2 ? b2.data() : nullptr;
        UlpReport ulps;
        for (uint64_t step = 1; step <= 3; ++step) {
          fill(g, rng);
          StepArgs a = oc.args;
          if (a.kind == OptKind::Adam) {
            a.bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(a.beta1), static_cast<double>(step)));
            a.bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(a.beta2), static_cast<double>(step)));
          }
          ref.step(a, p0.data(), s1r, s2r, g.data(), n);
          t.step(a, p1.data(), s1t, s2t, g.data(), n);
          compare_step_arrays("p", p0, p1, n, ulps);
          if (slots >= 1) compare_step_arrays("s1", a1, b1, n, ulps);
          if (slots >= 2) compare_step_arrays("s2", a2, b2, n, ulps);
        }
        worstUlp = std::max(worstUlp, ulps.max);
        CHECK_MSG(ulps.max <= kStepMaxUlp, "max ULP difference from scalar " << ulps.max << " at " << ulps.where);
        CHECK(p1.guards_intact());
        CHECK(b1.guards_intact());
        CHECK(b2.guards_intact());
        // The step moved something (the comparison is not vacuous).
        if (n > 0) {
          bool finite = true;
          for (size_t i = 0; i < n; ++i) finite = finite && std::isfinite(p1[i]);
          CHECK(finite);
        }
      }
}

// The scalar step table against the formulas written out here, so the
// reference itself is checked (one element at a time, float arithmetic).
void test_step_reference(const Table& ref) {
  StepArgs a;
  a.lr = 0.1f;
  a.momentum = 0.9f;
  float p = 1.f, v = 0.5f, g = 2.f;
  ref.step(a, &p, &v, nullptr, &g, 1);
  float vWant = 0.9f * 0.5f + 2.f;
  CHECK(same_bits(v, vWant));
  CHECK(same_bits(p, 1.f + -0.1f * vWant));

  StepArgs n = a;
  n.nesterov = true;
  p = 1.f, v = 0.5f;
  ref.step(n, &p, &v, nullptr, &g, 1);
  CHECK(same_bits(p, 1.f + -0.1f * (2.f + 0.9f * vWant)));

  StepArgs d;
  d.lr = 0.1f;
  d.weightDecay = 0.5f;
  d.decoupled = true;
  p = 2.f;
  g = 1.f;
  ref.step(d, &p, nullptr, nullptr, &g, 1);
  CHECK(same_bits(p, (2.f - (0.1f * 0.5f) * 2.f) + -0.1f * 1.f));

  StepArgs ad;
  ad.kind = OptKind::Adam;
  ad.lr = 0.01f;
  ad.bc1 = 1.f - 0.9f;
  ad.bc2 = static_cast<float>(1.0 - 0.999);
  float m = 0.f, s = 0.f;
  p = 1.f;
  g = 3.f;
  ref.step(ad, &p, &m, &s, &g, 1);
  float mW = 0.9f * 0.f + (1.f - 0.9f) * 3.f;
  float vW = 0.999f * 0.f + (1.f - 0.999f) * (3.f * 3.f);
  CHECK(same_bits(m, mW));
  CHECK(same_bits(s, vW));
  CHECK(same_bits(p, 1.f + -0.01f * (mW / ad.bc1) / (std::sqrt(vW / ad.bc2) + ad.eps)));
  // The first Adam step moves by about lr, whatever the gradient's scale.
  CHECK(std::fabs((1.f - p) - 0.01f) < 1e-5f);
}

// ---------------------------------------------------------------- scan, fixed point
//
// The fixed-point family (Q32.32 adds and loads) and scan (first non-finite
// and max |x| in one pass) joined the table while these tests were written;
// requires-expressions test them where the table has them with these
// signatures, and say so where it does not.

template <class T>
constexpr bool has_scan = requires(const T& t, const float* x) { t.scan(x, size_t{0}).firstNonFinite; };
template <class T>
constexpr bool has_fixed = requires(const T& t, int64_t* q, const float* g, float* out, const int64_t* cq) {
  { t.fixed_add(q, g, g, 1.0, 0.0, size_t{0}) } -> std::same_as<bool>;
  t.fixed_load(out, cq, size_t{0});
};

// An int64 buffer whose data starts `misalign` elements after a 64-byte boundary.
struct Buffer64 {
  std::vector<int64_t> raw;
  int64_t* data;
  size_t n;
  Buffer64(size_t n_, size_t misalign) : raw(n_ + 16 + misalign + 2 * Buffer::kGuard), n(n_) {
    uintptr_t base = reinterpret_cast<uintptr_t>(raw.data() + Buffer::kGuard);
    data = reinterpret_cast<int64_t*>((base + 63) & ~uintptr_t(63)) + misalign;
    for (auto& v : raw) v = 0x5a5a5a5a5a5a5a5all;
  }
  bool guards_intact() const {
    for (size_t i = 0; i < raw.size(); ++i) {
      const int64_t* p = raw.data() + i;
      if (p >= data && p < data + n) continue;
      if (*p != 0x5a5a5a5a5a5a5a5all) return false;
    }
    return true;
  }
};

template <class T>
void test_scan(const T& ref, const T& t) {
  std::mt19937_64 rng(6);
  for (size_t n : kSizes)
    for (size_t mis : {0, 1}) {
      gvtest::Context ctx("scan " + describe(t, n, mis));
      Buffer x(n, mis);
      fill(x, rng);
      auto check_same = [&] {
        auto a = ref.scan(x.data(), n), b = t.scan(x.data(), n);
        CHECK_EQ(b.firstNonFinite, a.firstNonFinite);
        CHECK(same_bits(a.maxAbs, b.maxAbs));
        return a;
      };
      auto whole = check_same();
      CHECK_EQ(whole.firstNonFinite, n);
      // The reference itself: max |x| over the whole array.
      float m = 0.f;
      for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
      CHECK(same_bits(whole.maxAbs, m));
      // A large value late in the array is found; a NaN before it hides it.
      for (size_t pos : {size_t(0), size_t(7), size_t(31), size_t(32), size_t(33), n / 2, n - 1}) {
        if (pos >= n) continue;
        float saved = x[pos];
        x[pos] = -1e30f;
        auto r = check_same();
        CHECK(same_bits(r.maxAbs, 1e30f));
        x[pos] = NAN;
        r = check_same();
        CHECK_EQ(r.firstNonFinite, pos);
        x[pos] = -INFINITY;
        r = check_same();
        CHECK_EQ(r.firstNonFinite, pos);
        x[pos] = saved;
      }
    }
}

template <class T>
void test_fixed(const T& ref, const T& t) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> q40(-(int64_t{1} << 40), int64_t{1} << 40);
  const double scales[] = {-0.01, 1.0, -3.5};
  for (size_t n : kSizes)
    for (size_t mis : {0, 1})
      for (double scale : scales)
        for (double wd : {0.0, 0.05}) {
          gvtest::Context ctx("fixed_add " + describe(t, n, mis) + " scale=" + std::to_string(scale) +
                              " wd=" + std::to_string(wd));
          Buffer g(n, mis), anchor(n, (mis + 1) % 2);
          fill(g, rng);
          fill(anchor, rng);
          Buffer64 qa(n, mis), qb(n, mis);
          for (size_t i = 0; i < n; ++i) qa.data[i] = qb.data[i] = q40(rng);
          const float* an = wd != 0.0 ? anchor.data() : nullptr;
          bool ra = ref.fixed_add(qa.data, g.data(), an, scale, wd, n);
          bool rb = t.fixed_add(qb.data, g.data(), an, scale, wd, n);
          CHECK(ra);
          CHECK_EQ(rb, ra);
          CHECK(n == 0 || std::memcmp(qa.data, qb.data, n * 8) == 0);
          CHECK(qb.guards_intact());
          // Leaving [-2^62, 2^62] anywhere is reported (the caller takes the push back).
          if (n > 0) {
            for (size_t pos : {size_t(0), size_t(3), size_t(4), n / 2, n - 1}) {
              if (pos >= n) continue;
              std::vector<float> gg(g.data(), g.data() + n);
              gg[pos] = scale > 0 ? 1.f : -1.f;  // increment +2^32 * |scale|
              qa.data[pos] = qb.data[pos] = (int64_t{1} << 62) - 1;  // the range limit, less one
              ra = ref.fixed_add(qa.data, gg.data(), nullptr, scale, 0.0, n);
              rb = t.fixed_add(qb.data, gg.data(), nullptr, scale, 0.0, n);
              CHECK(!ra);
              CHECK_EQ(rb, ra);
              CHECK(std::memcmp(qa.data, qb.data, n * 8) == 0);
              qa.data[pos] = qb.data[pos] = 0;
            }
          }
        }
  // Loads: exact below 2^51, the fallback beyond, both as scalar.
  for (size_t n : kSizes)
    for (size_t mis : {0, 1}) {
      gvtest::Context ctx("fixed_load " + describe(t, n, mis));
      Buffer64 q(n, mis);
      std::uniform_int_distribution<int64_t> q60(-(int64_t{1} << 61), int64_t{1} << 61);
      for (size_t i = 0; i < n; ++i) q.data[i] = i % 3 == 0 ? q60(rng) : q40(rng);
      for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1)  // all below 2^51: the SIMD path throughout
          for (size_t i = 0; i < n; ++i) q.data[i] >>= 12;
        Buffer a(n, mis), b(n, mis);
        ref.fixed_load(a.data(), q.data, n);
        t.fixed_load(b.data(), q.data, n);
        size_t d = first_difference(a.data(), b.data(), n);
        CHECK_MSG(d == n, "differs from scalar at " << d);
        CHECK(b.guards_intact());
        for (size_t i = 0; i < n; ++i)
          if (!same_bits(a[i], static_cast<float>(static_cast<double>(q.data[i]) / 4294967296.0))) {
            CHECK_MSG(false, "scalar fixed_load is not q / 2^32 at " << i);
            break;
          }
      }
    }
}

}  // namespace

// The run-time decision for CPUs this one is not (issue 10: AVX2 without
// FMA chose the AVX2 table, whose vmath kernels are target("avx2,fma")).
void dispatch_decisions() {
  gvtest::Context ctx("dispatch");
  CHECK_EQ(best_isa(0), Isa::Scalar);
  CHECK_EQ(best_isa(kFeatureAvx2), Isa::Scalar);  // no FMA: not the AVX2 table
  CHECK_EQ(best_isa(kFeatureFma), Isa::Scalar);
  CHECK_EQ(best_isa(kFeatureAvx2 | kFeatureFma), Isa::Avx2);
  CHECK_EQ(best_isa(kFeatureAvx512f), Isa::Scalar);                 // avx512f alone: the table reuses AVX2+FMA code
  CHECK_EQ(best_isa(kFeatureAvx512f | kFeatureAvx2), Isa::Scalar);  // still no FMA
  CHECK_EQ(best_isa(kFeatureAvx512f | kFeatureAvx2 | kFeatureFma), Isa::Avx512);
  CHECK_EQ(best_isa(kFeatureNeon), Isa::Neon);
  CHECK(!isa_ok(Isa::Avx2, kFeatureAvx2));
  CHECK(isa_ok(Isa::Scalar, 0));
  // this CPU: the active table is one it can run
  CHECK(isa_ok(active().isa, cpu_features()));
}

int main() {
  dispatch_decisions();
  const Table* ref = table_for(Isa::Scalar);
  CHECK(ref != nullptr);
  if (!ref) return gvtest::finish("test_kernels");
  CHECK_EQ(ref->isa, Isa::Scalar);

  // The active table is the forced one when GRADVAULT_ISA names a supported
  // set, otherwise the best this CPU has.
  const Table& act = active();
  CHECK(table_for(act.isa) == &act);
  if (const char* forced = std::getenv("GRADVAULT_ISA"); forced && *forced) {
    bool known = false;
    for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon})
      if (std::strcmp(forced, isa_name(i)) == 0 && table_for(i)) {
        known = true;
        CHECK_EQ(std::string(act.name), std::string(forced));
      }
    std::printf("GRADVAULT_ISA=%s -> active %s%s\n", forced, act.name, known ? "" : " (not supported here: best available)");
  } else {
    for (Isa i : {Isa::Avx512, Isa::Avx2, Isa::Neon})
      if (table_for(i)) {
        CHECK_EQ(act.isa, i);
        break;
      }
  }

  test_step_reference(*ref);
  std::printf("scan kernel: %s; fixed-point kernels: %s\n", has_scan<Table> ? "tested" : "not in the table",
              has_fixed<Table> ? "tested" : "not in the table (or another signature)");
  uint64_t worstUlp = 0;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon}) {
    const Table* t = table_for(isa);
    if (!t) {
      std::printf("%-7s not supported by this CPU or build: not tested\n", isa_name(isa));
      continue;
    }
    CHECK_EQ(t->isa, isa);
    CHECK_EQ(std::string(t->name), std::string(isa_name(isa)));
    gvtest::Timer timer;
    int before = gvtest::failures().load();
    test_axpby(*ref, *t);
    test_copy(*t);
    test_first_nonfinite(*ref, *t);
    test_checksum(*ref, *t);
    uint64_t ulp = 0;
    test_step(*ref, *t, ulp);
    if constexpr (has_scan<Table>) test_scan(*ref, *t);
    if constexpr (has_fixed<Table>) test_fixed(*ref, *t);
    worstUlp = std::max(worstUlp, ulp);
    std::printf("%-7s %s (step max ULP vs scalar: %llu) in %.2f s\n", t->name,
                gvtest::failures().load() == before ? "ok" : "FAILED", static_cast<unsigned long long>(ulp),
                timer.seconds());
  }
  return gvtest::finish("test_kernels");
}
