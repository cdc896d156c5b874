// The lock-free heart of mode 'versioned': copy-on-write buffers published
// through one atomic pointer, pinned by readers, recycled by the writer.
//
// Writers are serialised by the caller; each takes a buffer that is neither
// current nor pinned (recycle), fills it, and publishes it (publish): the
// store's version counter first, then the pointer, with a seq_cst store.
// Readers pin the current buffer (pins++), then check it is still current;
// otherwise they unpin and retry. The seq_cst pair (reader: pin then load
// current; writer: store current then load pins) is the Dekker pattern:
// either the reader sees the new buffer, or the writer sees the pin. Buffers
// are freed only with the pool, so a pin on a buffer that was just retired is
// harmless: the re-check fails and the reader retries.
//
// Kept apart from the store so that test_schedules can run this very code
// under a deterministic scheduler: the policy S is called at every shared
// access (S::point()), and names the variant of the protocol. Production
// uses Plain (no points, the correct protocol); the test's mutants switch
// one rule off each and must be caught.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace gv::detail {

struct Plain {
  static void point() {}
  static constexpr bool kRecheck = true;       // reader: is the pinned buffer still current?
  static constexpr bool kCounterFirst = true;  // writer: version counter before the pointer
  static constexpr bool kRespectPins = true;   // writer: never recycle a pinned buffer
};

template <class Buffer, class S = Plain>
class VersionPool {
 public:
  struct Slot {
    template <class... A>
    explicit Slot(A&&... a) : data(std::forward<A>(a)...) {}
    Buffer data;
    uint64_t version = 0;
    alignas(64) std::atomic<int64_t> pins{0};
  };

  // The first buffer, current from the start (before any reader).
  template <class... A>
  Slot* init(A&&... a) {
    pool_.push_back(std::make_unique<Slot>(std::forward<A>(a)...));
    current_.store(pool_.back().get(), std::memory_order_seq_cst);
    return pool_.back().get();
  }

  // Readers: the current buffer, pinned; it stays unchanged until unpin().
  Slot* pin() {
    for (;;) {
      S::point();
      Slot* v = current_.load(std::memory_order_seq_cst);
      S::point();
      v->pins.fetch_add(1, std::memory_order_seq_cst);
      if (!S::kRecheck) return v;
      S::point();
      if (current_.load(std::memory_order_seq_cst) == v) return v;
      S::point();
      v->pins.fetch_sub(1, std::memory_order_release);
    }
  }
  static void unpin(Slot* v) {
    S::point();
    // Release pairs with the load in recycle(): the reader's reads of the
    // buffer happen before a writer reuses it.
    v->pins.fetch_sub(1, std::memory_order_release);
  }

  // Writers (serialised by the caller): the current buffer, ...
  Slot* current() const { return current_.load(std::memory_order_relaxed); }
  // ... a buffer to fill (neither current nor pinned; a new one when every
  // other is pinned: the pool grows to the pinned readers + 2) ...
  template <class... A>
  Slot* recycle(Slot* cur, A&&... a) {
    for (auto& v : pool_) {
      if (v.get() == cur) continue;
      S::point();
      // seq_cst, so also acquire: a reader's unpin (release) happens before
      // the writer reuses the buffer.
      if (!S::kRespectPins || v->pins.load(std::memory_order_seq_cst) == 0) return v.get();
    }
    pool_.push_back(std::make_unique<Slot>(std::forward<A>(a)...));
    return pool_.back().get();
  }
  // ... and its publication as `version`. The counter goes first: a reader
  // that pins this buffer then sees counter >= its version, so a snapshot's
  // version is never ahead of the store's.
  void publish(Slot* next, uint64_t version, std::atomic<uint64_t>& counter) {
    next->version = version;
    if (S::kCounterFirst) {
      S::point();
      counter.store(version, std::memory_order_release);
    }
    S::point();
    current_.store(next, std::memory_order_seq_cst);
    if (!S::kCounterFirst) {
      S::point();
      counter.store(version, std::memory_order_release);
    }
  }

  size_t size() const { return pool_.size(); }  // writers only

 private:
  std::vector<std::unique_ptr<Slot>> pool_;  // changed by writers only
  std::atomic<Slot*> current_{nullptr};
};

}  // namespace gv::detail
