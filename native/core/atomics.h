// Lock-free element updates for mode 'atomic' and the relaxed reads that go
// with them. Every operation is relaxed: each element is updated atomically
// and no update is lost; the store's version counter (release/acquire)
// publishes a whole push.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../kernels/optim/step.h"

#if defined(__SANITIZE_THREAD__)
#define GV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GV_TSAN 1
#endif
#endif

// Racy by design (hogwild): not reported by ThreadSanitizer.
#define GV_NO_TSAN __attribute__((no_sanitize("thread")))

#if defined(__x86_64__) && !defined(GV_TSAN)
#include <cpuid.h>
#define GV_HAVE_CAS16 1
#endif

namespace gv::atomics {

// Atomic read-modify-write of one float: p = f(p). Returns the new value;
// counts failed attempts (another writer got there first) in retries.
template <class F>
inline float update(float* p, F f, uint64_t& retries) {
  std::atomic_ref<float> r(*p);
  float old = r.load(std::memory_order_relaxed);
  for (;;) {
    float next = f(old);
    // compare_exchange compares bits, so a NaN never loops forever.
    if (r.compare_exchange_weak(old, next, std::memory_order_relaxed, std::memory_order_relaxed)) return next;
    ++retries;
  }
}

#if defined(GV_HAVE_CAS16)
inline bool cpu_has_cas16() {
  static const bool has = [] {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_CMPXCHG16B);
  }();
  return has;
}

// Four floats in one lock cmpxchg16b: a quarter of the locked operations of
// a per-float CAS, which is what bounds this path (measured in bench/).
__attribute__((target("cx16"))) inline uint64_t add_scaled4(float* p, const float* g, float a) {
  using u128 = unsigned __int128;
  u128* q = reinterpret_cast<u128*>(p);
  // A plain first read may be torn; that only makes the first CAS fail.
  uint64_t lo = std::atomic_ref<uint64_t>(reinterpret_cast<uint64_t*>(p)[0]).load(std::memory_order_relaxed);
  uint64_t hi = std::atomic_ref<uint64_t>(reinterpret_cast<uint64_t*>(p)[1]).load(std::memory_order_relaxed);
  u128 expected = (static_cast<u128>(hi) << 64) | lo;
  uint64_t retries = 0;
  for (;;) {
    float cur[4], next[4];
    std::memcpy(cur, &expected, 16);
    for (int k = 0; k < 4; ++k) next[k] = cur[k] + a * g[k];
    u128 desired;
    std::memcpy(&desired, next, 16);
    u128 seen = __sync_val_compare_and_swap(q, expected, desired);
    if (seen == expected) return retries;
    expected = seen;
    ++retries;
  }
}
#endif

// Two floats in one 8-byte CAS (portable: AArch64, sanitizer builds).
inline uint64_t add_scaled2(float* p, const float* g, float a) {
  std::atomic_ref<uint64_t> r(*reinterpret_cast<uint64_t*>(p));
  uint64_t expected = r.load(std::memory_order_relaxed);
  uint64_t retries = 0;
  for (;;) {
    float cur[2], next[2];
    std::memcpy(cur, &expected, 8);
    next[0] = cur[0] + a * g[0];
    next[1] = cur[1] + a * g[1];
    uint64_t desired;
    std::memcpy(&desired, next, 8);
    if (r.compare_exchange_weak(expected, desired, std::memory_order_relaxed, std::memory_order_relaxed))
      return retries;
    ++retries;
  }
}

// p[i] += a * g[i] for all i, each element atomically; p is 64-byte aligned.
// Groups whose gradient is all zero are skipped (sparse pushes stay cheap).
inline uint64_t add_scaled(float* p, const float* g, float a, size_t n) {
  uint64_t retries = 0;
  size_t i = 0;
#if defined(GV_HAVE_CAS16)
  if (cpu_has_cas16()) {
    for (; i + 4 <= n; i += 4)
      if (g[i] != 0.f || g[i + 1] != 0.f || g[i + 2] != 0.f || g[i + 3] != 0.f) retries += add_scaled4(p + i, g + i, a);
  }
#endif
  for (; i + 2 <= n; i += 2)
    if (g[i] != 0.f || g[i + 1] != 0.f) retries += add_scaled2(p + i, g + i, a);
  for (; i < n; ++i)
    if (g[i] != 0.f) update(p + i, [&](float x) { return x + a * g[i]; }, retries);
  return retries;
}

// One optimizer step, element by element: each state element and each
// parameter is updated atomically (no lost update of either), with the same
// formulas as the SIMD kernels. A parameter and its state are not one
// transaction: concurrent pushes to one element see each other's state in
// some order, as in any lock-free asynchronous optimizer.
inline uint64_t step(const kernels::StepArgs& a, float* p, float* s1, float* s2, const float* g, size_t n) {
  using namespace kernels;
  uint64_t retries = 0;
  for (size_t i = 0; i < n; ++i) {
    const float gi = g[i];
    // Coupled weight decay needs the current value; a relaxed read is the
    // value some serial order would have seen.
    float pnow = std::atomic_ref<float>(p[i]).load(std::memory_order_relaxed);
    float gg = decayed_grad(a, pnow, gi);
    float move = 0.f;
    switch (a.kind) {
      case OptKind::Sgd:
        if (a.momentum == 0.f) {
          if (a.weightDecay != 0.f && !a.decoupled) {
            // p - lr*(g + wd*p) must use the p it replaces: one CAS does both.
            update(p + i, [&](float x) { return finish(a, x, sgd_move(a, decayed_grad(a, x, gi))); }, retries);
            continue;
          }
          move = sgd_move(a, gg);
        } else {
          float v = update(s1 + i, [&](float x) { return momentum_next(a, x, gg); }, retries);
          move = momentum_move(a, gg, v);
        }
        break;
      case OptKind::Adagrad: {
        float s = update(s1 + i, [&](float x) { return adagrad_next(x, gg); }, retries);
        move = adaptive_move(a, gg, s);
        break;
      }
      case OptKind::Rmsprop: {
        float s = update(s1 + i, [&](float x) { return rmsprop_next(a, x, gg); }, retries);
        move = adaptive_move(a, gg, s);
        break;
      }
      case OptKind::Adam: {
        float m = update(s1 + i, [&](float x) { return adam_m_next(a, x, gg); }, retries);
        float v = update(s2 + i, [&](float x) { return adam_v_next(a, x, gg); }, retries);
        move = adam_move(a, m, v);
        break;
      }
    }
    update(p + i, [&](float x) { return finish(a, x, move); }, retries);
  }
  return retries;
}

inline void load(float* out, const float* p, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = std::atomic_ref<const float>(p[i]).load(std::memory_order_relaxed);
}

inline void load_fixed(float* out, const int64_t* q, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    int64_t v = std::atomic_ref<const int64_t>(q[i]).load(std::memory_order_relaxed);
    out[i] = static_cast<float>(static_cast<double>(v) / 4294967296.0);
  }
}

}  // namespace gv::atomics
