// The production synchronisation policy of the lock-free protocols
// (versions.h, stripes.h, gate.h).
//
// Each protocol is a template over a policy S that supplies its atomics
// (S::template Atomic<T>), the plain data it hands between threads
// (S::template Data<T>), its memory orders (named constants, defined next to
// the protocol), and hooks: S::point() at a shared access (test_schedules'
// deterministic scheduler), S::relax() / S::yield() in spin loops. Native is
// the real thing: std::atomic, plain T, no points; the protocols' default
// policies derive from it, so production code is what it was. The tests put
// a scheduler (test_schedules.cpp) or a weak-memory model checker
// (native/tests/wmm.h, test_weak_memory.cpp) in its place, and run mutants
// that weaken one order each.
#pragma once
#include <atomic>
#include <thread>

#include "../platform.h"

namespace gv {
namespace detail {

struct Native {
  template <class T>
  using Atomic = std::atomic<T>;
  template <class T>
  using Data = T;
  static void point() {}
  static void relax() { cpu_relax(); }
  static void yield() { std::this_thread::yield(); }
};

}  // namespace detail
}  // namespace gv
