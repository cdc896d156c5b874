// Deterministic-schedule test of mode 'versioned''s lock-free protocol
// (core/store/versions.h, the very template VersionedStore uses): version
// publication, reader pins and buffer recycling.
//
// The scenario's threads are real threads, but only one runs at a time: at
// every shared access the protocol calls S::point(), where the scheduler
// decides which thread goes on. A depth-first search replays the scenario
// once per distinct schedule: every schedule for the small scenarios,
// every schedule with at most kBound preemptions for the larger ones
// (context bounding: most concurrency bugs need very few preemptions).
//
// Writer: publishes versions 1..P; version v's buffer holds {v, v}, written
// one word at a time with a scheduling point between (a torn read shows).
// Readers: pin, read both words and the version, read the store's version
// counter, unpin. Every read must be untorn, match its version, never be
// ahead of the counter, never go backwards; the pool must stay within
// readers + 2 buffers.
//
// Three mutants each switch one rule of the protocol off (no re-check after
// the pin; the pointer published before the counter; pinned buffers
// recycled). The search must catch each of them, or the test fails: it
// proves the search reaches the interleavings that matter.
//
// One thread at a time, every access seeing the latest value: sequential
// consistency, so this search cannot see a memory-order bug. The orders are
// checked by test_weak_memory.cpp, under a weak-memory model.
#include <thread>

#include "check.h"
#include "core/store/versions.h"

namespace {

// ---- the scheduler

class Scheduler {
 public:
  explicit Scheduler(int bound) : bound_(bound) {}

  // Runs body(i) for i in [0, n) as threads under one schedule; false when
  // every schedule has been run.
  template <class F>
  bool run_one(int n, F body) {
    if (exhausted_) return false;
    n_ = n;
    preemptions_ = 0;
    done_.assign(n, false);
    // Which thread starts is the first decision (not a preemption).
    if (stack_.empty()) {
      Decision d;
      for (int i = 0; i < n; ++i) d.options.push_back(i);
      stack_.push_back(d);
    }
    turn_.store(stack_[0].options[stack_[0].chosen]);
    depth_ = 1;
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i)
      ts.emplace_back([this, i, &body] {
        tl_sched = this;
        tl_self = i;
        wait_turn(i);
        body(i);
        finish(i);
      });
    for (auto& t : ts) t.join();
    ++schedules_;
    backtrack();
    return true;
  }
  uint64_t schedules() const { return schedules_; }
  uint64_t max_depth() const { return maxDepth_; }

  // Called by the running thread at a shared access.
  void point(int self) { hand_over(self, /*finished=*/false); }

  static thread_local Scheduler* tl_sched;
  static thread_local int tl_self;

 private:
  struct Decision {
    std::vector<int> options;  // thread ids; options[0] continues the current thread where it can
    size_t chosen = 0;
    bool preempts(size_t k) const { return k > 0 && continuing; }
    bool continuing = false;  // options[0] is the running thread
  };

  void wait_turn(int self) {
    while (turn_.load(std::memory_order_acquire) != self) std::this_thread::yield();
  }
  void finish(int self) { hand_over(self, /*finished=*/true); }

  void hand_over(int self, bool finished) {
    if (finished) done_[self] = true;
    std::vector<int> enabled;
    if (!finished) enabled.push_back(self);
    for (int i = 0; i < n_; ++i)
      if (i != self && !done_[i]) enabled.push_back(i);
    if (enabled.empty()) return;  // the last thread ends
    Decision* d;
    if (depth_ < stack_.size()) {
      d = &stack_[depth_];
    } else {
      Decision nd;
      nd.continuing = !finished;
      // With the preemption budget spent, the running thread must go on.
      if (!finished && preemptions_ >= bound_) nd.options = {self};
      else nd.options = enabled;
      stack_.push_back(nd);
      d = &stack_.back();
    }
    if (d->preempts(d->chosen)) ++preemptions_;
    const int next = d->options[d->chosen];
    ++depth_;
    if (depth_ > maxDepth_) maxDepth_ = depth_;
    if (next == self) return;
    turn_.store(next, std::memory_order_release);
    if (!finished) wait_turn(self);
  }

  // Next schedule: the deepest decision with an untried option (within the
  // preemption bound), everything below it forgotten.
  void backtrack() {
    while (!stack_.empty()) {
      Decision& d = stack_.back();
      if (d.chosen + 1 < d.options.size()) {
        ++d.chosen;
        return;
      }
      stack_.pop_back();
    }
    exhausted_ = true;
  }

  int bound_;
  int n_ = 0;
  size_t depth_ = 0, maxDepth_ = 0;
  int preemptions_ = 0;
  std::vector<bool> done_;
  std::vector<Decision> stack_;
  std::atomic<int> turn_{0};
  bool exhausted_ = false;
  uint64_t schedules_ = 0;
};
thread_local Scheduler* Scheduler::tl_sched = nullptr;
thread_local int Scheduler::tl_self = -1;

void point() {
  if (Scheduler::tl_sched) Scheduler::tl_sched->point(Scheduler::tl_self);
}

// ---- the protocol variants

struct Correct : gv::detail::Plain {  // std::atomic and the production orders
  static void point() { ::point(); }
};
struct NoRecheck : Correct {
  static constexpr bool kRecheck = false;
};
struct PointerFirst : Correct {
  static constexpr bool kCounterFirst = false;
};
struct IgnorePins : Correct {
  static constexpr bool kRespectPins = false;
};

struct Words {
  explicit Words(int) {}
  uint64_t a = 0, b = 0;
};

struct Result {
  uint64_t schedules = 0, maxDepth = 0, violations = 0;
  std::string first;
};

// One writer publishing `publishes` versions, `readers` readers reading
// `reads` times each, under every schedule with at most `bound` preemptions
// (a large bound: every schedule).
template <class S>
Result explore(int publishes, int readers, int reads, int bound) {
  Scheduler sched(bound);
  Result res;
  for (;;) {
    gv::detail::VersionPool<Words, S> pool;
    pool.init(0);
    std::atomic<uint64_t> counter{0};
    std::vector<std::string> bad(1 + readers);
    bool ran = sched.run_one(1 + readers, [&](int self) {
      if (self == 0) {
        for (int p = 1; p <= publishes; ++p) {
          auto* cur = pool.current();
          auto* next = pool.recycle(cur, 0);
          point();
          next->data.a = p;
          point();
          next->data.b = p;
          pool.publish(next, p, counter);
          if (pool.size() > static_cast<size_t>(readers) + 2 && bad[0].empty())
            bad[0] = "the pool grew to " + std::to_string(pool.size()) + " buffers";
        }
        return;
      }
      uint64_t last = 0;
      for (int r = 0; r < reads; ++r) {
        auto* v = pool.pin();
        point();
        const uint64_t a = v->data.a;
        point();
        const uint64_t b = v->data.b;
        const uint64_t ver = v->version;
        point();
        const uint64_t c = counter.load(std::memory_order_acquire);
        pool.unpin(v);
        std::string& why = bad[self];
        if (!why.empty()) continue;
        if (a != b) why = "torn read: words " + std::to_string(a) + " and " + std::to_string(b);
        else if (a != ver) why = "buffer holds " + std::to_string(a) + " but says version " + std::to_string(ver);
        else if (ver > c) why = "version " + std::to_string(ver) + " ahead of the store's counter " + std::to_string(c);
        else if (ver < last) why = "version went back from " + std::to_string(last) + " to " + std::to_string(ver);
        last = ver;
      }
    });
    if (!ran) break;
    for (const std::string& b : bad)
      if (!b.empty()) {
        if (res.violations++ == 0) res.first = b;
      }
  }
  res.schedules = sched.schedules();
  res.maxDepth = sched.max_depth();
  return res;
}

template <class S>
void scenario(const char* variant, bool correct, int publishes, int readers, int reads, int bound) {
  const auto t0 = std::chrono::steady_clock::now();
  Result r = explore<S>(publishes, readers, reads, bound);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string bnd = bound >= 1000 ? std::string("all schedules") : "<= " + std::to_string(bound) + " preemptions";
  std::printf("  %-13s 1 writer x %d, %d reader(s) x %d, %-17s %8llu schedules (%3llu steps max), %6llu violating  %5.1f s%s%s\n",
              variant, publishes, readers, reads, bnd.c_str(), (unsigned long long)r.schedules, (unsigned long long)r.maxDepth,
              (unsigned long long)r.violations, s, r.first.empty() ? "" : "  first: ", r.first.c_str());
  gvtest::Context ctx(std::string(variant) + " " + bnd);
  if (correct) CHECK_EQ(r.violations, uint64_t{0});
  else CHECK_MSG(r.violations > 0, "the search missed a broken protocol");
  CHECK(r.schedules > 1);
}

}  // namespace

int main() {
  const char* env = std::getenv("GV_SCHEDULE_BOUND");
  constexpr int kAll = 1 << 20;
  if (const char* one = std::getenv("GV_SCHEDULE_ONE")) {  // "publishes,readers,reads,bound": explore one scenario
    int p = 1, r = 1, k = 1, b = kAll;
    std::sscanf(one, "%d,%d,%d,%d", &p, &r, &k, &b);
    scenario<Correct>("correct", true, p, r, k, b);
    return gvtest::finish("test_schedules");
  }
  // every schedule of a small scenario, then every schedule within a
  // preemption bound for larger ones (GV_SCHEDULE_BOUND adds to each bound)
  // Under the sanitizers (GV_STRESS_SCALE < 1), where a thread start costs
  // far more, the same scenarios with smaller bounds.
  const int extra = env ? std::atoi(env) : 0;
  const int less = gvtest::stress_scale() < 1 ? 2 : 0;
  scenario<Correct>("correct", true, 1, 1, less ? 1 : 2, kAll);
  scenario<Correct>("correct", true, 2, 1, 1, 6 + extra - less);
  scenario<Correct>("correct", true, 3, 1, 1, 5 + extra - less);
  scenario<Correct>("correct", true, 2, 1, 2, 4 + extra - less);
  scenario<Correct>("correct", true, 2, 2, 1, 2 + extra - less / 2);
  // the mutants must be caught
  scenario<NoRecheck>("no re-check", false, 2, 1, 1, 2);
  scenario<PointerFirst>("pointer first", false, 2, 1, 1, 2);
  scenario<IgnorePins>("ignore pins", false, 2, 1, 1, 2);
  return gvtest::finish("test_schedules");
}
