// The lock-free protocols under a weak memory model (native/tests/wmm.h):
// the very code of versions.h, stripes.h and gate.h, instantiated with
// wmm's atomics and plain-data race detection, explored by a depth-first
// search over schedules and reads-from choices within per-case budgets.
//
// For each protocol the correct orders must pass every explored execution,
// and mutants that weaken one order each must be caught (the test fails if
// one is not: it shows the checker sees the bug that order prevents).
// Equivalent mutants, weakenings that no execution within the budgets can
// tell apart, must pass; each says why in its row. Litmus tests check the
// checker itself: store buffering shows 0/0 with release/acquire and not
// with seq_cst; message passing shows the stale read (and the race) with
// relaxed and not with release/acquire.
//
// GV_WMM_BUDGET=k adds k to the protocol cases' preemption and stale-read
// budgets (the litmus tests explore every execution already).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "core/store/gate.h"
#include "core/store/stripes.h"
#include "core/store/versions.h"
#include "wmm.h"

namespace {

using std::memory_order;
using std::memory_order_acq_rel;
using std::memory_order_acquire;
using std::memory_order_relaxed;
using std::memory_order_release;
using std::memory_order_seq_cst;

enum class Expect { Pass, Caught };

constexpr int kAll = 1 << 20;  // a budget that never runs out
int g_extra = 0;                // GV_WMM_BUDGET
double g_total = 0;

// One row of the table: explores scenario with the budgets, prints, checks.
template <class F>
void row(const char* protocol, const char* variant, Expect expect, const wmm::Options& o, F&& scenario,
         const char* note = "") {
  wmm::Checker c(o);
  const auto t0 = std::chrono::steady_clock::now();
  const wmm::Result r = c.explore(scenario);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_total += s;
  const bool caught = r.violating > 0;
  // The budgets: preemptions/stale reads ("all": unbounded); "+" after the
  // count: the execution cap was reached first; ops: the most atomic
  // operations in one execution.
  const std::string budgets =
      o.preemptions >= kAll ? "all" : std::to_string(o.preemptions) + "/" + std::to_string(o.staleReads);
  std::printf("| %-9s | %-36s | %-6s | %9llu%s | %-7s | %4llu | %6llu | %-6s | %5.2f s | %s\n", protocol, variant,
              expect == Expect::Pass ? "pass" : "caught", (unsigned long long)r.executions, r.complete ? " " : "+",
              budgets.c_str(), (unsigned long long)r.maxSteps, (unsigned long long)r.violating, caught ? "yes" : "no", s,
              r.first.empty() ? note : r.first.c_str());
  gvtest::Context ctx(std::string(protocol) + " / " + variant);
  if (expect == Expect::Pass) CHECK_MSG(!caught, "a violation in a correct (or equivalent) variant: " + r.first);
  else CHECK_MSG(caught, "the checker missed a broken variant");
  CHECK(r.executions > 1);
}

// ---- litmus tests (the checker's self-checks); a violation = the outcome seen

template <memory_order St, memory_order Ld>
void store_buffering() {
  wmm::Atomic<int> x{0}, y{0};
  int r[2] = {-1, -1};  // each written by its thread, read by main after the join
  wmm::checker().threads(2, [&](int t) {
    (t == 0 ? x : y).store(1, St);
    r[t] = (t == 0 ? y : x).load(Ld);
  });
  if (r[0] == 0 && r[1] == 0) wmm::fail("0/0: both loads read the initial value");
}

template <memory_order St, memory_order Ld>
void message_passing() {
  wmm::Atomic<int> data{0}, flag{0};
  int seen = -1;
  wmm::checker().threads(2, [&](int t) {
    if (t == 0) {
      data.store(1, memory_order_relaxed);
      flag.store(1, St);
    } else if (flag.load(Ld) == 1) {
      seen = data.load(memory_order_relaxed);
    }
  });
  if (seen == 0) wmm::fail("flag 1 but data 0: a stale read");
}

template <memory_order St, memory_order Ld>
void message_passing_plain() {
  wmm::NonAtomic<int> data{0, "the message"};
  wmm::Atomic<int> flag{0};
  wmm::checker().threads(2, [&](int t) {
    if (t == 0) {
      data = 1;
      flag.store(1, St);
    } else if (flag.load(Ld) == 1) {
      (void)static_cast<int>(data);
    }
  });
}

// ---- versions.h: one writer publishing, readers pinning (as test_schedules)

template <class S>
struct Words {
  explicit Words(int) {}
  wmm::NonAtomic<uint64_t> a{0, "a buffer's first word"}, b{0, "a buffer's second word"};
};

template <class S>
auto versions(int publishes, int readers, int reads) {
  return [=] {
    gv::detail::VersionPool<Words<S>, S> pool;
    pool.init(0);
    typename S::template Atomic<uint64_t> counter{0};
    wmm::checker().threads(1 + readers, [&](int self) {
      if (self == 0) {
        for (int p = 1; p <= publishes; ++p) {
          auto* next = pool.recycle(pool.current(), 0);
          next->data.a = p;
          next->data.b = p;
          pool.publish(next, p, counter);
          if (pool.size() > static_cast<size_t>(readers) + 2) wmm::fail("the pool grew to " + std::to_string(pool.size()));
        }
        return;
      }
      uint64_t last = 0;
      for (int r = 0; r < reads; ++r) {
        auto* v = pool.pin();
        const uint64_t a = v->data.a, b = v->data.b, ver = v->version;
        const uint64_t c = counter.load(memory_order_acquire);
        pool.unpin(v);
        if (a != b) wmm::fail("torn read: " + std::to_string(a) + " and " + std::to_string(b));
        else if (a != ver) wmm::fail("buffer holds " + std::to_string(a) + " but says version " + std::to_string(ver));
        else if (ver > c) wmm::fail("version " + std::to_string(ver) + " ahead of the counter " + std::to_string(c));
        else if (ver < last) wmm::fail("version went back");
        last = ver;
      }
    });
  };
}

using VCorrect = wmm::Checked<gv::detail::Plain>;
struct VPinAcqRel : VCorrect {
  static constexpr memory_order kPinOrder = memory_order_acq_rel;
};
struct VRecheckAcquire : VCorrect {
  static constexpr memory_order kRecheckOrder = memory_order_acquire;
};
struct VPublishRelease : VCorrect {
  static constexpr memory_order kPublishOrder = memory_order_release;
};
struct VRecycleAcquire : VCorrect {
  static constexpr memory_order kRecycleOrder = memory_order_acquire;
};
struct VRecycleRelaxed : VCorrect {
  static constexpr memory_order kRecycleOrder = memory_order_relaxed;
};
struct VUnpinRelaxed : VCorrect {
  static constexpr memory_order kUnpinOrder = memory_order_relaxed;
};
// Every seq_cst made acquire/release: what test_schedules cannot tell apart.
struct VAllAcqRel : VCorrect {
  static constexpr memory_order kGuessOrder = memory_order_acquire, kPinOrder = memory_order_acq_rel,
                                kRecheckOrder = memory_order_acquire, kRecycleOrder = memory_order_acquire,
                                kPublishOrder = memory_order_release;
};
struct VGuessAcquire : VCorrect {
  static constexpr memory_order kGuessOrder = memory_order_acquire;
};
struct VGuessRelaxed : VCorrect {
  static constexpr memory_order kGuessOrder = memory_order_relaxed;
};
struct VRetryRelaxed : VCorrect {
  static constexpr memory_order kRetryOrder = memory_order_relaxed;
};

// ---- stripes.h: the stripe lock guarding plain data

template <class S>
auto stripe_lock(int threads, int rounds) {
  return [=] {
    gv::BasicStripeLock<S> lock;
    wmm::NonAtomic<int> x{0, "the stripe's floats"};
    wmm::checker().threads(threads, [&](int) {
      for (int r = 0; r < rounds; ++r) {
        lock.lock();
        x = x + 1;
        lock.unlock();
      }
    });
    if (x != threads * rounds) wmm::fail("lost update: " + std::to_string(static_cast<int>(x)));
  };
}

using LCorrect = wmm::Checked<gv::detail::PlainLock>;
struct LLockRelaxed : LCorrect {
  static constexpr memory_order kLockOrder = memory_order_relaxed;
};
struct LUnlockRelaxed : LCorrect {
  static constexpr memory_order kUnlockOrder = memory_order_relaxed;
};

// ---- gate.h: pushes through the quiescence gate, a checkpoint closing it
// and copying (then rewriting, as an import does) what the pushes write.

template <class S>
auto gate(int pushers, int pushes) {
  return [=] {
    gv::detail::QuiescenceGate<S> g(pushers);
    std::vector<std::unique_ptr<wmm::NonAtomic<int>>> state;  // one per pusher: pushes only race through the gate
    for (int k = 0; k < pushers; ++k) state.push_back(std::make_unique<wmm::NonAtomic<int>>(0, "the state a push writes"));
    wmm::checker().threads(1 + pushers, [&](int self) {
      if (self == 0) {
        g.close();
        for (auto& s : state) *s = *s + 100;
        g.open();
        return;
      }
      for (int p = 0; p < pushes; ++p) {
        auto* slot = g.enter(self - 1);
        *state[self - 1] = *state[self - 1] + 1;
        gv::detail::QuiescenceGate<S>::leave(slot);
      }
    });
  };
}

using GCorrect = wmm::Checked<gv::detail::PlainGate>;
struct GEnterAcqRel : GCorrect {
  static constexpr memory_order kEnterOrder = memory_order_acq_rel;
};
struct GCheckAcquire : GCorrect {
  static constexpr memory_order kCheckOrder = memory_order_acquire;
};
struct GCloseRelease : GCorrect {
  static constexpr memory_order kCloseOrder = memory_order_release;
};
struct GDrainAcquire : GCorrect {
  static constexpr memory_order kDrainOrder = memory_order_acquire;
};
struct GLeaveRelaxed : GCorrect {
  static constexpr memory_order kLeaveOrder = memory_order_relaxed;
};
struct GOpenRelaxed : GCorrect {
  static constexpr memory_order kOpenOrder = memory_order_relaxed;
};
struct GWaitRelaxed : GCorrect {
  static constexpr memory_order kWaitOrder = memory_order_relaxed;
};

}  // namespace

int main() {
  if (const char* e = std::getenv("GV_WMM_BUDGET")) g_extra = std::atoi(e);
  using wmm::Options;
  const Options all{kAll, kAll, 1000000};  // the litmus tests: every execution
  std::printf("| %-9s | %-36s | %-6s | %10s | %-7s | %4s | %6s | %-6s | %7s | %s\n", "protocol", "variant", "expect",
              "executions", "p/s", "ops", "bad", "caught", "time", "first violation (or why it passes)");
  row("litmus", "SB release/acquire", Expect::Caught, all, store_buffering<memory_order_release, memory_order_acquire>);
  row("litmus", "SB seq_cst", Expect::Pass, all, store_buffering<memory_order_seq_cst, memory_order_seq_cst>);
  row("litmus", "MP relaxed", Expect::Caught, all, message_passing<memory_order_relaxed, memory_order_relaxed>);
  row("litmus", "MP release/acquire", Expect::Pass, all, message_passing<memory_order_release, memory_order_acquire>);
  row("litmus", "MP relaxed, plain data", Expect::Caught, all, message_passing_plain<memory_order_relaxed, memory_order_relaxed>);
  row("litmus", "MP release/acquire, plain data", Expect::Pass, all,
      message_passing_plain<memory_order_release, memory_order_acquire>);

  const Options v{2 + g_extra, 2 + g_extra, 200000};
  row("versions", "correct (2 publishes, 1 reader x 2)", Expect::Pass, v, versions<VCorrect>(2, 1, 2));
  row("versions", "correct (2 publishes, 2 readers)", Expect::Pass, v, versions<VCorrect>(2, 2, 1));
  row("versions", "pin seq_cst -> acq_rel", Expect::Caught, v, versions<VPinAcqRel>(2, 1, 1));
  row("versions", "re-check seq_cst -> acquire", Expect::Caught, v, versions<VRecheckAcquire>(2, 1, 1));
  row("versions", "publish seq_cst -> release", Expect::Caught, v, versions<VPublishRelease>(2, 1, 1));
  row("versions", "recycle seq_cst -> acquire", Expect::Caught, v, versions<VRecycleAcquire>(2, 1, 1));
  row("versions", "recycle seq_cst -> relaxed", Expect::Caught, v, versions<VRecycleRelaxed>(2, 1, 1));
  row("versions", "unpin release -> relaxed", Expect::Caught, v, versions<VUnpinRelaxed>(2, 1, 1));
  row("versions", "every seq_cst -> acquire/release", Expect::Caught, v, versions<VAllAcqRel>(2, 1, 1));
  row("versions", "first load seq_cst -> relaxed", Expect::Caught, v, versions<VGuessRelaxed>(2, 1, 1));
  row("versions", "first load seq_cst -> acquire", Expect::Pass, v, versions<VGuessAcquire>(2, 1, 2),
      "equivalent: the re-check decides");
  row("versions", "retry unpin release -> relaxed", Expect::Pass, v, versions<VRetryRelaxed>(2, 1, 2),
      "equivalent: no buffer read before it");

  const Options l{2 + g_extra, 2 + g_extra, 200000};
  row("stripe", "correct (3 threads x 1)", Expect::Pass, l, stripe_lock<LCorrect>(3, 1));
  row("stripe", "correct (2 threads x 2)", Expect::Pass, l, stripe_lock<LCorrect>(2, 2));
  row("stripe", "try_lock acquire -> relaxed", Expect::Caught, l, stripe_lock<LLockRelaxed>(2, 1));
  row("stripe", "unlock release -> relaxed", Expect::Caught, l, stripe_lock<LUnlockRelaxed>(2, 1));

  const Options g{2 + g_extra, 2 + g_extra, 200000};
  row("gate", "correct (1 closer, 2 pushers x 1)", Expect::Pass, g, gate<GCorrect>(2, 1));
  row("gate", "correct (1 closer, 1 pusher x 2)", Expect::Pass, g, gate<GCorrect>(1, 2));
  row("gate", "enter seq_cst -> acq_rel", Expect::Caught, g, gate<GEnterAcqRel>(1, 1));
  row("gate", "check seq_cst -> acquire", Expect::Caught, g, gate<GCheckAcquire>(1, 1));
  row("gate", "close seq_cst -> release", Expect::Caught, g, gate<GCloseRelease>(1, 1));
  row("gate", "drain seq_cst -> acquire", Expect::Caught, g, gate<GDrainAcquire>(1, 1));
  row("gate", "leave release -> relaxed", Expect::Caught, g, gate<GLeaveRelaxed>(1, 1));
  row("gate", "open release -> relaxed", Expect::Caught, g, gate<GOpenRelaxed>(1, 1));
  row("gate", "wait acquire -> relaxed", Expect::Pass, g, gate<GWaitRelaxed>(1, 2),
      "equivalent: the check after it acquires");
  std::printf("total %.1f s\n", g_total);
  return gvtest::finish("test_weak_memory");
}
