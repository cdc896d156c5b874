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
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "sync_policy.h"

namespace gv {

namespace detail {
// The stripe lock's policy (sync_policy.h): kLockOrder, try_lock()'s
// acquire, pairs with kUnlockOrder, unlock()'s release: whatever the owner
// wrote under the lock happens before the next owner's accesses. Checked
// with mutants in native/tests/test_weak_memory.cpp.
struct PlainLock : Native {
  static constexpr std::memory_order kLockOrder = std::memory_order_acquire;
  static constexpr std::memory_order kUnlockOrder = std::memory_order_release;
};
}  // namespace detail

template <class S>
struct alignas(64) BasicStripeLock {
  typename S::template Atomic<uint32_t> v{0};
  // Test first (a relaxed load: it only decides whether to try), so waiting
  // writers spin on a shared line instead of bouncing it with exchanges.
  bool try_lock() { return v.load(std::memory_order_relaxed) == 0 && v.exchange(1, S::kLockOrder) == 0; }
  void lock() {
    for (unsigned spins = 0; !try_lock(); ++spins) {
      if (spins < 128) S::relax();
      else S::yield();  // the owner may be descheduled: more threads than cores
    }
  }
  void unlock() { v.store(0, S::kUnlockOrder); }
};
using StripeLock = BasicStripeLock<detail::PlainLock>;

class Stripes {
 public:
  Stripes() = default;
  Stripes(size_t paddedFloats, size_t floatsPerStripe)
      : floats_(floatsPerStripe), count_(paddedFloats / floatsPerStripe + 1), locks_(new StripeLock[count_]) {}

  size_t count() const { return count_; }
  size_t floats() const { return floats_; }

  // One stripe's share of a push or a read: flat [lo, hi) of piece `piece`.
  // for_parts() is the entry point; cut() and each() are its general case.
  struct Part {
    size_t stripe, piece, lo, hi;
  };

  // Cuts pieces [off(i), off(i) + len(i)), i < np, at stripe boundaries
  // into parts ordered by stripe, then offset. Holding each stripe once for
  // all of its parts makes a stripe's share of one push, or of one
  // snapshot, a single step even where several tensors share the stripe
  // (a weight and its bias usually do).
  template <class Off, class Len>
  void cut(size_t np, Off&& off, Len&& len, std::vector<Part>* out) const {
    out->clear();
    bool ordered = true;
    for (size_t i = 0; i < np; ++i) {
      size_t lo = off(i);
      const size_t end = lo + len(i);
      while (lo < end) {
        const size_t s = lo / floats_, hi = std::min(end, (s + 1) * floats_);
        if (!out->empty() && (out->back().stripe > s || (out->back().stripe == s && out->back().lo > lo))) ordered = false;
        out->push_back({s, i, lo, hi});
        lo = hi;
      }
    }
    // Pieces usually come in layout order (tensors in order, rows ascending).
    if (!ordered)
      std::sort(out->begin(), out->end(), [](const Part& a, const Part& b) { return a.stripe != b.stripe ? a.stripe < b.stripe : a.lo < b.lo; });
  }

  // f(part) for every stripe part of pieces [off(i), off(i) + len(i)),
  // i < np, each stripe's parts under one hold of its lock (see cut() and
  // each()). Pieces in layout order within one stripe, or read ascending,
  // stream without building the list: the common push and snapshot.
  template <class Off, class Len, class F>
  void for_parts(size_t np, Off&& off, Len&& len, bool staggered, F&& f) {
    bool ordered = true;
    size_t end = 0, firstStripe = SIZE_MAX, lastStripe = 0;
    for (size_t i = 0; i < np; ++i) {
      const size_t o = off(i), n = len(i);
      if (n == 0) continue;
      ordered &= o >= end;
      end = o + n;
      if (firstStripe == SIZE_MAX) firstStripe = o / floats_;
      lastStripe = (end - 1) / floats_;
    }
    if (firstStripe == SIZE_MAX) return;
    if (ordered && (!staggered || firstStripe == lastStripe)) {
      size_t held = SIZE_MAX;
      for (size_t i = 0; i < np; ++i) {
        size_t lo = off(i);
        const size_t e = lo + len(i);
        while (lo < e) {
          const size_t s = lo / floats_, hi = std::min(e, (s + 1) * floats_);
          if (s != held) {
            if (held != SIZE_MAX) locks_[held].unlock();
            locks_[s].lock();
            held = s;
          }
          f(Part{s, i, lo, hi});
          lo = hi;
        }
      }
      locks_[held].unlock();
      return;
    }
    thread_local std::vector<Part> parts;  // for_parts() never nests
    cut(np, off, len, &parts);
    each(parts, staggered, f);
  }

  // f(part) for every part of cut(), each stripe's parts under one hold of
  // its lock. Staggered (writers of large pushes): start at this thread's
  // stripe and leave busy stripes for the end, as write() does. Otherwise
  // ascending, waiting for each lock (readers, and pushes of scattered rows,
  // where the stagger buys nothing). One stripe is held at a time: no
  // order between locks, so no deadlock.
  template <class F>
  void each(const std::vector<Part>& parts, bool staggered, F&& f) {
    if (parts.empty()) return;
    thread_local std::vector<size_t> runs;  // where each stripe's parts start; each() never nests
    runs.clear();
    for (size_t i = 0; i < parts.size(); ++i)
      if (i == 0 || parts[i].stripe != parts[i - 1].stripe) runs.push_back(i);
    const size_t n = runs.size();
    runs.push_back(parts.size());
    auto run = [&](size_t r) {
      for (size_t i = runs[r]; i < runs[r + 1]; ++i) f(parts[i]);
    };
    if (!staggered || n == 1) {
      for (size_t r = 0; r < n; ++r) {
        StripeLock& l = locks_[parts[runs[r]].stripe];
        l.lock();
        run(r);
        l.unlock();
      }
      return;
    }
    const size_t start = thread_start(n);
    thread_local std::vector<size_t> busy;
    busy.clear();
    for (size_t k = 0; k < n; ++k) {
      const size_t r = (start + k) % n;
      StripeLock& l = locks_[parts[runs[r]].stripe];
      if (!l.try_lock()) {
        busy.push_back(r);
        continue;
      }
      run(r);
      l.unlock();
    }
    for (size_t r : busy) {
      StripeLock& l = locks_[parts[runs[r]].stripe];
      l.lock();
      run(r);
      l.unlock();
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
  StripeLock* locks() { return locks_.get(); }

 private:
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
