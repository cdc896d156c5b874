// Stripe ownership: the writers' protocol of modes atomic, locked and
// deterministic, and of averaging's accumulator.
//
// The flat parameter layout is cut into stripes of shardFloats floats, each
// with a spin lock on its own cache line. A push owns one stripe at a time
// and updates it with plain SIMD code; it starts at a stripe chosen per
// thread (so threads pushing together start apart), skips stripes that are
// busy and comes back to them at the end, so a writer rarely waits. One
// locked instruction per 64 KiB stripe replaces one per element: measured
// in bench/, a `lock cmpxchg16b` costs 16 ns here even uncontended, which
// capped per-element compare-and-swap at 3 GB/s per thread.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define GV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GV_TSAN 1
#endif
#endif

// Racy by design (hogwild's writes and reads): not reported by
// ThreadSanitizer. See native/tests/tsan.supp.
#define GV_NO_TSAN __attribute__((no_sanitize("thread")))

namespace gv {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

struct alignas(64) StripeLock {
  std::atomic<uint32_t> v{0};
  // Test first, so waiting writers spin on a shared line instead of
  // bouncing it with exchanges. Acquire pairs with unlock()'s release.
  bool try_lock() { return v.load(std::memory_order_relaxed) == 0 && v.exchange(1, std::memory_order_acquire) == 0; }
  void lock() {
    for (unsigned spins = 0; !try_lock(); ++spins) {
      if (spins < 128) cpu_relax();
      else std::this_thread::yield();  // the owner may be descheduled: more threads than cores
    }
  }
  void unlock() { v.store(0, std::memory_order_release); }
};

class Stripes {
 public:
  Stripes() = default;
  Stripes(size_t paddedFloats, size_t floatsPerStripe)
      : floats_(floatsPerStripe), count_(paddedFloats / floatsPerStripe + 1), locks_(new StripeLock[count_]) {}

  size_t count() const { return count_; }
  size_t floats() const { return floats_; }

  // f(lo, hi) for every stripe overlapping [off, off + len) (flat offsets),
  // each called once while its lock is held, in staggered order.
  template <class F>
  void write(size_t off, size_t len, F&& f) {
    if (len == 0) return;
    const size_t first = off / floats_, n = (off + len - 1) / floats_ - first + 1;
    const size_t start = n == 1 ? 0 : thread_start(n);
    thread_local std::vector<uint32_t> busy;  // write() never nests: f only does element work
    busy.clear();
    for (size_t k = 0; k < n; ++k) {
      size_t s = first + (start + k) % n;
      if (!locks_[s].try_lock()) {
        busy.push_back(static_cast<uint32_t>(s));
        continue;
      }
      call(s, off, len, f);
      locks_[s].unlock();
    }
    for (uint32_t s : busy) {
      locks_[s].lock();
      call(s, off, len, f);
      locks_[s].unlock();
    }
  }

  // f(lo, hi) for every stripe overlapping [off, off + len) in ascending
  // order, each under its lock (readers that want each stripe consistent).
  template <class F>
  void read(size_t off, size_t len, F&& f) {
    if (len == 0) return;
    for (size_t s = off / floats_, last = (off + len - 1) / floats_; s <= last; ++s) {
      locks_[s].lock();
      call(s, off, len, f);
      locks_[s].unlock();
    }
  }

  // f(stripe, lo, hi) in staggered order without locks (hogwild).
  template <class F>
  void visit(size_t off, size_t len, F&& f) const {
    if (len == 0) return;
    const size_t first = off / floats_, n = (off + len - 1) / floats_ - first + 1;
    const size_t start = n == 1 ? 0 : thread_start(n);
    for (size_t k = 0; k < n; ++k) {
      size_t s = first + (start + k) % n;
      size_t lo = std::max(off, s * floats_), hi = std::min(off + len, (s + 1) * floats_);
      f(s, lo, hi);
    }
  }

  size_t bytes() const { return count_ * sizeof(StripeLock); }
  StripeLock& lock_of(size_t stripe) { return locks_[stripe]; }

 private:
  template <class F>
  void call(size_t s, size_t off, size_t len, F& f) {
    size_t lo = std::max(off, s * floats_), hi = std::min(off + len, (s + 1) * floats_);
    f(lo, hi);
  }
  // Where this thread starts, as a fraction of the stripes in 2^-32 units:
  // the k-th thread to push starts at frac(k * golden ratio), so any number
  // of threads start spread out (a hash of the thread id let two threads
  // start side by side).
  static size_t thread_start_fraction() {
    static std::atomic<uint32_t> next{0};
    static thread_local const uint32_t f = next.fetch_add(1, std::memory_order_relaxed) * 0x9E3779B9u;
    return f;
  }
  static size_t thread_start(size_t n) { return static_cast<size_t>((static_cast<uint64_t>(thread_start_fraction()) * n) >> 32); }

  size_t floats_ = 16384, count_ = 0;
  std::unique_ptr<StripeLock[]> locks_;
};

}  // namespace gv
