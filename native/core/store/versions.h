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
// Kept apart from the store so that the tests can run this very code: the
// policy S (sync_policy.h) supplies the atomics, the memory orders and a
// hook at every shared access (S::point()), and names the variant of the
// protocol. Production uses Plain (std::atomic, today's orders, no points).
// Checked in two ways, each with mutants that must be caught:
// test_schedules.cpp runs it under a deterministic scheduler (sequential
// consistency; the mutants switch one rule off), test_weak_memory.cpp under
// a weak-memory model checker (native/tests/wmm.h; the mutants weaken one
// order each). The weak-memory run also shows that kGuessOrder may be
// acquire: the re-check alone decides (RELIABILITY.md, section 3).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "sync_policy.h"

namespace gv::detail {

struct Plain : Native {
  static constexpr bool kRecheck = true;       // reader: is the pinned buffer still current?
  static constexpr bool kCounterFirst = true;  // writer: version counter before the pointer
  static constexpr bool kRespectPins = true;   // writer: never recycle a pinned buffer
  // The orders. The Dekker pair: reader kPinOrder (pins++) then
  // kRecheckOrder (load current), writer kPublishOrder (store current) then
  // kRecycleOrder (load pins); all four seq_cst, so either the reader sees
  // the new buffer or the writer sees the pin. kPublishOrder is also the
  // release that kGuessOrder and kRecheckOrder acquire: the buffer's
  // contents before its pointer. kUnpinOrder (release) pairs with
  // kRecycleOrder (seq_cst, so acquire): a reader's reads of a buffer
  // happen before the writer refills it. kCounterOrder (release) pairs with
  // the store's version() (acquire).
  static constexpr std::memory_order kGuessOrder = std::memory_order_seq_cst;
  static constexpr std::memory_order kPinOrder = std::memory_order_seq_cst;
  static constexpr std::memory_order kRecheckOrder = std::memory_order_seq_cst;
  static constexpr std::memory_order kRetryOrder = std::memory_order_release;  // the unpin of a failed re-check
  static constexpr std::memory_order kUnpinOrder = std::memory_order_release;
  static constexpr std::memory_order kRecycleOrder = std::memory_order_seq_cst;
  static constexpr std::memory_order kPublishOrder = std::memory_order_seq_cst;
  static constexpr std::memory_order kCounterOrder = std::memory_order_release;
};

template <class Buffer, class S = Plain>
class VersionPool {
 public:
  struct Slot {
    template <class... A>
    explicit Slot(A&&... a) : data(std::forward<A>(a)...) {}
    Buffer data;
    typename S::template Data<uint64_t> version = 0;
    alignas(64) typename S::template Atomic<int64_t> pins{0};
  };

  // The first buffer, current from the start (before any reader).
  template <class... A>
  Slot* init(A&&... a) {
    pool_.push_back(std::make_unique<Slot>(std::forward<A>(a)...));
    current_.store(pool_.back().get(), S::kPublishOrder);
    return pool_.back().get();
  }

  // Readers: the current buffer, pinned; it stays unchanged until unpin().
  Slot* pin() {
    for (;;) {
      S::point();
      Slot* v = current_.load(S::kGuessOrder);
      S::point();
      v->pins.fetch_add(1, S::kPinOrder);
      if (!S::kRecheck) return v;
      S::point();
      if (current_.load(S::kRecheckOrder) == v) return v;
      S::point();
      v->pins.fetch_sub(1, S::kRetryOrder);
    }
  }
  static void unpin(Slot* v) {
    S::point();
    // Release pairs with the load in recycle(): the reader's reads of the
    // buffer happen before a writer reuses it.
    v->pins.fetch_sub(1, S::kUnpinOrder);
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
      if (!S::kRespectPins || v->pins.load(S::kRecycleOrder) == 0) return v.get();
    }
    pool_.push_back(std::make_unique<Slot>(std::forward<A>(a)...));
    return pool_.back().get();
  }
  // ... and its publication as `version`. The counter goes first: a reader
  // that pins this buffer then sees counter >= its version, so a snapshot's
  // version is never ahead of the store's.
  void publish(Slot* next, uint64_t version, typename S::template Atomic<uint64_t>& counter) {
    next->version = version;
    if (S::kCounterFirst) {
      S::point();
      counter.store(version, S::kCounterOrder);
    }
    S::point();
    current_.store(next, S::kPublishOrder);
    if (!S::kCounterFirst) {
      S::point();
      counter.store(version, S::kCounterOrder);
    }
  }

  size_t size() const { return pool_.size(); }  // writers only

 private:
  std::vector<std::unique_ptr<Slot>> pool_;  // changed by writers only
  typename S::template Atomic<Slot*> current_{nullptr};
};

}  // namespace gv::detail
