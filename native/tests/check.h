// A tiny assertion helper for the core's ctest executables: no framework to
// download. A failed CHECK prints where and why and counts; main() returns
// gvtest::finish(), non-zero when anything failed, so ctest sees the failure.
// Checks keep going after a failure (one run shows every broken case), but
// each site reports at most kMaxReportsPerSite times so a loop stays readable.
#pragma once
#include <cstdint>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "core/store.h"

namespace gvtest {

inline std::atomic<int>& failures() {
  static std::atomic<int> n{0};
  return n;
}
inline std::atomic<int>& checks() {
  static std::atomic<int> n{0};
  return n;
}
inline std::mutex& print_mutex() {
  static std::mutex m;
  return m;
}

constexpr int kMaxReportsPerSite = 5;

inline void report(const char* file, int line, const std::string& what, std::atomic<int>& siteCount) {
  failures().fetch_add(1, std::memory_order_relaxed);
  int n = siteCount.fetch_add(1, std::memory_order_relaxed);
  if (n < kMaxReportsPerSite) {
    std::lock_guard<std::mutex> lk(print_mutex());
    std::fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what.c_str());
  } else if (n == kMaxReportsPerSite) {
    std::lock_guard<std::mutex> lk(print_mutex());
    std::fprintf(stderr, "FAIL %s:%d: (further failures at this line not shown)\n", file, line);
  }
}

template <class T>
std::string show(const T& v) {
  std::ostringstream o;
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    o.precision(9);
    o << v;
    if constexpr (std::is_same_v<T, float>) {
      uint32_t b;
      std::memcpy(&b, &v, 4);
      char hex[16];
      std::snprintf(hex, sizeof hex, " [%08x]", b);
      o << hex;
    }
  } else if constexpr (std::is_enum_v<T>) {
    o << static_cast<long long>(v);
  } else {
    o << v;
  }
  return o.str();
}

// The context printed with a failure: a test names the case it is in.
inline thread_local std::string g_context;
struct Context {
  std::string saved;
  explicit Context(const std::string& c) : saved(g_context) { g_context = c; }
  ~Context() { g_context = saved; }
};
inline std::string where() { return g_context.empty() ? std::string() : " [" + g_context + "]"; }

// Every check site keeps its own report counter (a constant-initialised
// block-scope static: no guard, no code). The failure paths are out of line
// (cold, noinline), so a test with hundreds of checks compiles quickly under
// the sanitizers too.
[[gnu::cold, gnu::noinline]] inline void fail(const char* file, int line, const char* expr, std::atomic<int>& site) {
  report(file, line, std::string("CHECK(") + expr + ")" + where(), site);
}
[[gnu::cold, gnu::noinline]] inline void fail_msg(const char* file, int line, const char* expr, const std::string& msg,
                                                  std::atomic<int>& site) {
  report(file, line, std::string("CHECK(") + expr + "): " + msg + where(), site);
}
template <class A, class B>
[[gnu::cold, gnu::noinline]] void fail_eq(const char* file, int line, const char* expr, const A& a, const B& b,
                                          std::atomic<int>& site) {
  report(file, line, std::string("CHECK_EQ(") + expr + "): " + show(a) + " != " + show(b) + where(), site);
}
[[gnu::cold, gnu::noinline]] inline void fail_status(const char* file, int line, const char* expr,
                                                     const gv::Status& s, std::atomic<int>& site) {
  report(file, line, std::string(expr) + " failed: " + gv::code_name(s.code) + " " + s.message + where(), site);
}
inline void count_check() { checks().fetch_add(1, std::memory_order_relaxed); }

#define CHECK(cond)                                                        \
  do {                                                                     \
    ::gvtest::count_check();                                               \
    if (!(cond)) {                                                         \
      static std::atomic<int> gv_site_{0};                                 \
      ::gvtest::fail(__FILE__, __LINE__, #cond, gv_site_);                 \
    }                                                                      \
  } while (0)

#define CHECK_MSG(cond, msg)                                               \
  do {                                                                     \
    ::gvtest::count_check();                                               \
    if (!(cond)) {                                                         \
      static std::atomic<int> gv_site_{0};                                 \
      std::ostringstream gv_o_;                                            \
      gv_o_ << msg;                                                        \
      ::gvtest::fail_msg(__FILE__, __LINE__, #cond, gv_o_.str(), gv_site_); \
    }                                                                      \
  } while (0)

#define CHECK_EQ(a, b)                                                          \
  do {                                                                          \
    ::gvtest::count_check();                                                    \
    const auto& gv_a_ = (a);                                                    \
    const auto& gv_b_ = (b);                                                    \
    if (!(gv_a_ == gv_b_)) {                                                    \
      static std::atomic<int> gv_site_{0};                                      \
      ::gvtest::fail_eq(__FILE__, __LINE__, #a ", " #b, gv_a_, gv_b_, gv_site_); \
    }                                                                           \
  } while (0)

// A Status must be ok; prints its message otherwise.
#define CHECK_OK(expr)                                                     \
  do {                                                                     \
    ::gvtest::count_check();                                               \
    const ::gv::Status gv_s_ = (expr);                                     \
    if (!gv_s_.ok()) {                                                     \
      static std::atomic<int> gv_site_{0};                                 \
      ::gvtest::fail_status(__FILE__, __LINE__, #expr, gv_s_, gv_site_);   \
    }                                                                      \
  } while (0)

// Bitwise equality of floats (NaN payloads and signed zeros included).
inline bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

// Distance in units in the last place between two finite floats.
inline uint64_t ulp_distance(float a, float b) {
  if (same_bits(a, b)) return 0;
  if (std::isnan(a) || std::isnan(b)) return UINT64_MAX;
  auto key = [](float x) {
    int32_t i;
    std::memcpy(&i, &x, 4);
    // Map the sign-magnitude bits onto a monotonic integer line.
    return i < 0 ? -static_cast<int64_t>(i & 0x7fffffff) : static_cast<int64_t>(i);
  };
  int64_t d = key(a) - key(b);
  return static_cast<uint64_t>(d < 0 ? -d : d);
}

// GV_STRESS_SCALE (default 1) multiplies the stress tests' sizes; sanitizer
// runs set it below 1 (they are 5-20x slower).
inline double stress_scale() {
  const char* s = std::getenv("GV_STRESS_SCALE");
  if (!s || !*s) return 1.0;
  double v = std::atof(s);
  return v > 0 ? v : 1.0;
}
inline uint64_t scaled(uint64_t n, uint64_t atLeast = 1) {
  double v = static_cast<double>(n) * stress_scale();
  uint64_t r = static_cast<uint64_t>(v);
  return r < atLeast ? atLeast : r;
}

// A store or a failed check.
inline std::shared_ptr<gv::Store> make_store(const gv::StoreConfig& cfg, std::vector<gv::TensorSpec> specs) {
  std::shared_ptr<gv::Store> s;
  gv::Status st = gv::Store::create(cfg, std::move(specs), &s);
  if (!st.ok()) {
    std::fprintf(stderr, "Store::create failed: %s %s (field %s)\n", gv::code_name(st.code), st.message.c_str(),
                 st.field.c_str());
    std::abort();
  }
  return s;
}

inline gv::TensorSpec tensor(const std::string& name, std::vector<int64_t> shape, std::vector<float> values = {}) {
  gv::TensorSpec t;
  t.name = name;
  t.shape = std::move(shape);
  if (!values.empty()) {
    t.init = gv::InitKind::Values;
    t.values = std::move(values);
  }
  return t;
}

// The whole padded layout of a store.
inline std::vector<float> snapshot(gv::Store& s, uint64_t* version = nullptr) {
  std::vector<float> out(s.padded_floats(), 0.f);
  uint64_t v = s.snapshot(out.data());
  if (version) *version = v;
  return out;
}
// One tensor out of a padded snapshot.
inline std::vector<float> slice(const gv::Store& s, const std::vector<float>& snap, size_t t) {
  const gv::TensorInfo& ti = s.tensor(t);
  return std::vector<float>(snap.begin() + ti.offset, snap.begin() + ti.offset + ti.size);
}

inline const gv::Mode kAllModes[] = {gv::Mode::Atomic,        gv::Mode::Locked,    gv::Mode::Versioned,
                                     gv::Mode::Deterministic, gv::Mode::Averaging, gv::Mode::Hogwild};

class Timer {
 public:
  Timer() : t0_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  std::chrono::steady_clock::time_point t0_;
};

inline int finish(const char* name) {
  int f = failures().load();
  std::printf("%s: %d checks, %d failed\n", name, checks().load(), f);
  return f == 0 ? 0 : 1;
}


// A float buffer with canaries on both sides, whose data starts `misalign`
// floats after a 64-byte boundary: a kernel must not write outside [0, n).
class GuardedBuffer {
 public:
  static constexpr size_t kGuard = 32;
  static constexpr uint32_t kCanary = 0x7fa5a5a5u;  // a NaN pattern no kernel produces

  GuardedBuffer(size_t n, size_t misalign) : n_(n), raw_(n + 2 * kGuard + 16 + misalign) {
    uintptr_t base = reinterpret_cast<uintptr_t>(raw_.data() + kGuard);
    data_ = reinterpret_cast<float*>((base + 63) & ~uintptr_t(63)) + misalign;
    start_ = static_cast<size_t>(data_ - raw_.data());
    for (float& f : raw_) std::memcpy(&f, &kCanary, 4);
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  float* data() { return data_; }
  const float* data() const { return data_; }
  float& operator[](size_t i) { return data_[i]; }
  float operator[](size_t i) const { return data_[i]; }
  size_t size() const { return n_; }
  bool guards_intact() const {
    for (size_t i = 0; i < raw_.size(); ++i) {
      if (i >= start_ && i < start_ + n_) continue;
      uint32_t b;
      std::memcpy(&b, &raw_[i], 4);
      if (b != kCanary) return false;
    }
    return true;
  }

 private:
  size_t n_;
  std::vector<float> raw_;
  float* data_;
  size_t start_;
};

}  // namespace gvtest
