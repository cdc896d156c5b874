// The store's quiescence gate: every push passes it; a checkpoint closes it
// and waits for the pushes in flight, so that it copies a state no push is
// changing (Store::pause() / resume(), pipeline.cpp).
//
// A push announces itself in its slot's counter (inFlight++), then checks
// that the gate is open; a closer sets `closed`, then waits for every slot
// to drain. The seq_cst pair on each side (push: kEnterOrder then
// kCheckOrder; closer: kCloseOrder then kDrainOrder) is the Dekker pattern:
// either the push sees the gate closed (and backs out), or the closer sees
// the push (and waits for it). Leaving (kLeaveOrder, release) pairs with
// the closer's drain loads (seq_cst, so acquire): a push's writes happen
// before the closer's copy. Opening (kOpenOrder, release) pairs with the
// pushes' kCheckOrder (seq_cst, so acquire): the closer's writes (an
// imported state) happen before the pushes that follow. (kWaitOrder only
// decides when to try again; the weak-memory check finds it could be
// relaxed.)
//
// Slots (64 by default, one cache line each; a thread keeps its slot) so
// that pushes do not all bounce one counter. Closers are serialised by a
// mutex. Checked with mutants that weaken each order under a weak-memory
// model checker: native/tests/test_weak_memory.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "sync_policy.h"

namespace gv::detail {

struct PlainGate : Native {
  static constexpr std::memory_order kEnterOrder = std::memory_order_seq_cst;
  static constexpr std::memory_order kCheckOrder = std::memory_order_seq_cst;
  static constexpr std::memory_order kBackOutOrder = std::memory_order_release;  // a push that found the gate closed
  static constexpr std::memory_order kWaitOrder = std::memory_order_acquire;
  static constexpr std::memory_order kLeaveOrder = std::memory_order_release;
  static constexpr std::memory_order kCloseOrder = std::memory_order_seq_cst;
  static constexpr std::memory_order kDrainOrder = std::memory_order_seq_cst;
  static constexpr std::memory_order kOpenOrder = std::memory_order_release;
};

template <class S = PlainGate>
class QuiescenceGate {
 public:
  static constexpr size_t kSlots = 64;
  struct alignas(64) Slot {
    typename S::template Atomic<uint32_t> inFlight{0};
  };

  explicit QuiescenceGate(size_t slots = kSlots) : n_(slots), slots_(new Slot[slots]) {}

  // A push: waits while the gate is closed, then holds slot k (any k below
  // the slot count; the caller keeps one per thread) until leave().
  Slot* enter(size_t k) {
    Slot& s = slots_[k];
    for (;;) {
      s.inFlight.fetch_add(1, S::kEnterOrder);
      if (!closed_.load(S::kCheckOrder)) return &s;
      s.inFlight.fetch_sub(1, S::kBackOutOrder);
      while (closed_.load(S::kWaitOrder)) S::yield();
    }
  }
  static void leave(Slot* s) { s->inFlight.fetch_sub(1, S::kLeaveOrder); }

  // A closer: once close() returns, no push is in flight and none enters
  // until open().
  void close() {
    mu_.lock();
    closed_.store(true, S::kCloseOrder);
    for (size_t k = 0; k < n_; ++k)
      for (unsigned spins = 0; slots_[k].inFlight.load(S::kDrainOrder) != 0; ++spins)
        if (spins > 64) S::yield();
        else S::relax();
  }
  void open() {
    closed_.store(false, S::kOpenOrder);
    mu_.unlock();
  }

 private:
  size_t n_;
  std::unique_ptr<Slot[]> slots_;
  typename S::template Atomic<bool> closed_{false};
  std::mutex mu_;
};

}  // namespace gv::detail
