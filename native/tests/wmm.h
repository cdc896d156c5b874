// A small stateless model checker for C++ atomics under a weak memory
// (one header, about 600 lines: the model, the explorer and the race
// detector are one piece and are read together)
// model, for the lock-free protocols of the core (versions.h, stripes.h,
// gate.h), run on their production code through its policy S
// (core/store/sync_policy.h): S::template Atomic<T> = wmm::Atomic<T>,
// S::template Data<T> = wmm::NonAtomic<T>.
//
// A scenario's threads are real threads, but one runs at a time: before
// each atomic operation the running thread asks the checker which thread
// goes on (a scheduling decision), and each load asks which store it reads
// (a reads-from decision). A depth-first search replays the scenario once
// per distinct sequence of decisions, within two budgets per execution:
// preemptions (switching away from a thread that could go on) and stale
// reads (reading a store other than the newest one), as context bounding
// does (most bugs need few of either), plus a cap on executions.
//
// The model, per execution:
//  - Every atomic location keeps its stores in modification order, which
//    is the order the interleaving executed them in (stores are never
//    reordered with each other, only loads read old ones; see "misses").
//  - Each thread has a view: a vector clock (happens-before) and, per
//    location, the newest store it has observed (read, written, or learnt
//    through happens-before). A load may read any store not older than
//    that (coherence); a seq_cst load also none older than the location's
//    newest seq_cst store, nor than what an earlier seq_cst load read.
//  - A release store carries its writer's view; an acquire load that reads
//    it joins that view. An RMW reads the newest store (atomicity) and
//    carries on what that store carried (the release sequence, as C++20
//    defines it: a release store followed by RMWs).
//  - Plain data (wmm::NonAtomic) is checked with happens-before race
//    detection: a read not ordered after the last write, or a write not
//    ordered after the last write and every read since, is a data race, a
//    violation. Using an atomic whose construction does not happen before
//    the use (a pointer to it read without acquire) is one too.
//  - A spin loop calls spin() (the policy's relax()/yield()): the thread
//    waits until another thread stores to a location the loop read since
//    the last spin() (another iteration reading the same stores would do
//    the same); when every thread left is waiting, each is made to see the
//    newest stores (stores become visible in finite time) and goes on.
//
// The seq_cst approximation. The interleaving order of the seq_cst
// operations is taken as the single total order S, and a seq_cst load must
// read the newest seq_cst store to its location before it in S, or a later
// one in modification order (and, as C++20's coherence-ordered-before
// requires, nothing older than an earlier seq_cst load of it read). For
// seq_cst-only locations this is sequential consistency, so the Dekker
// pattern (store A; load B against store B; load A) cannot read two stale
// values, while with release/acquire it can.
// What it may miss: executions that C++ allows but no interleaving explains.
// Here S is the execution order, which is also every location's
// modification order, while C++ only asks S to be consistent with
// happens-before and coherence; so an outcome that needs a seq_cst
// operation ordered in S against the order its thread ran in, relative to
// weaker accesses, is never explored. seq_cst fences are not modelled.
//
// What else it misses (it is a bug finder within its bounds, not a proof):
// load buffering (a load reading a store later in the interleaving: the
// modification order is execution order), fences, spurious failures of
// compare_exchange_weak and stale reads by a failing compare_exchange
// (both always read the newest store; they would only add retries),
// mixed-size accesses, and anything beyond the budgets.
//
// Race freedom of the checker itself (TSan runs it): all checker state is
// touched by the one running thread (the main one between executions), and
// the turn passes under a mutex.
#pragma once
#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace wmm {

constexpr int kMaxThreads = 8;  // the main thread (index 0) and up to 7 scenario threads
using Clock = std::array<uint32_t, kMaxThreads>;

struct Options {
  int preemptions = 2;          // per execution
  int staleReads = 2;           // per execution
  uint64_t maxExecutions = 200000;
};

struct Result {
  uint64_t executions = 0, violating = 0, maxSteps = 0;  // maxSteps: atomic operations in the longest execution
  bool complete = false;  // every execution within the budgets explored
  std::string first;      // the first violation found
};

class Checker;
inline Checker* g_checker = nullptr;  // set by explore() before any scenario thread starts
inline thread_local int tl_tid = 0;   // 0: the main thread; scenario threads are 1..n

inline bool acquires(std::memory_order m) {
  return m == std::memory_order_acquire || m == std::memory_order_acq_rel || m == std::memory_order_seq_cst ||
         m == std::memory_order_consume;
}
inline bool releases(std::memory_order m) {
  return m == std::memory_order_release || m == std::memory_order_acq_rel || m == std::memory_order_seq_cst;
}

class Checker {
 public:
  explicit Checker(Options o) : opts_(o) {}

  // Runs scenario() once per execution until every one within the budgets
  // has run (or the cap). scenario builds its objects, calls threads() once
  // and may check the outcome afterwards; fail() records a violation.
  template <class F>
  Result explore(F&& scenario) {
    Result r;
    g_checker = this;
    stack_.clear();
    for (;;) {
      reset();
      scenario();
      ++r.executions;
      if (steps_ > r.maxSteps) r.maxSteps = steps_;
      if (!why_.empty()) {
        if (r.violating++ == 0) r.first = why_;
      }
      if (!backtrack()) {
        r.complete = true;
        break;
      }
      if (r.executions >= opts_.maxExecutions) break;
    }
    stop_workers();
    g_checker = nullptr;
    return r;
  }
  ~Checker() { stop_workers(); }

  // Runs body(0..n-1) as n threads under the checker's schedule.
  void threads(int n, const std::function<void(int)>& body) {
    if (n < 1 || n + 1 > kMaxThreads) std::abort();
    if (static_cast<int>(workers_.size()) != n) {
      stop_workers();
      for (int t = 1; t <= n; ++t) workers_.emplace_back([this, t] { work(t); });
    }
    n_ = n;
    th_.resize(n + 1);
    for (int t = 1; t <= n; ++t) {  // thread start: each begins with what main has done
      th_[t].view = th_[0].view;
      th_[t].view.clock[t] = 1;
    }
    ++th_[0].view.clock[0];
    body_ = &body;
    running_ = true;
    const int first = 1 + static_cast<int>(decide(n));  // which thread starts (not a preemption)
    pass_turn(first);
    wait_turn(0);  // until the last thread ends
    running_ = false;
    for (int t = 1; t <= n; ++t) th_[0].view.join(th_[t].view);  // join: main sees everything
  }

  void fail(const std::string& why) {
    if (why_.empty()) why_ = (tl_tid == 0 ? std::string("main: ") : "thread " + std::to_string(tl_tid - 1) + ": ") + why;
  }

  // A spin loop's iteration: wait for another thread's store (see above).
  void spin() {
    if (!running_) return;
    Thread& me = th_[tl_tid];
    me.waiting = true;
    me.waitStamp = stores_;
    schedule(tl_tid);
    me.waiting = false;
    me.watch.clear();
    if (me.fresh) {
      me.fresh = false;
      for (size_t l = 0; l < locs_.size(); ++l) me.view.see(l, static_cast<uint32_t>(locs_[l].mo.size() - 1));
    }
  }

  // ---- the operations (wmm::Atomic, wmm::NonAtomic)

  size_t new_location(uint64_t init) {
    const int me = tl_tid;
    locs_.push_back(Location{{Write{init, false, false, {}}}, 0, me, th_[me].view.clock[me]});
    return locs_.size() - 1;
  }

  uint64_t load(size_t loc, std::memory_order mo) {
    Thread& me = begin_op(loc);
    Location& L = locs_[loc];
    uint32_t lo = me.view.seen_of(loc);
    if (mo == std::memory_order_seq_cst && L.scFloor > lo) lo = L.scFloor;
    const uint32_t latest = static_cast<uint32_t>(L.mo.size() - 1);
    uint32_t n = latest - lo + 1;
    if (!running_ || staleLeft_ == 0) n = 1;
    const uint32_t k = running_ ? decide(n) : 0;
    if (k > 0) --staleLeft_;
    const uint32_t idx = latest - k;
    me.view.see(loc, idx);
    if (mo == std::memory_order_seq_cst && L.scFloor < idx) L.scFloor = idx;
    const Write& w = L.mo[idx];
    if (acquires(mo) && w.releases) me.view.join(w.msg);
    return w.value;
  }

  void store(size_t loc, uint64_t v, std::memory_order mo) {
    Thread& me = begin_op(loc);
    append(loc, me, Write{v, mo == std::memory_order_seq_cst, false, {}}, releases(mo));
  }

  // Read-modify-write of the newest store: f(old, &next) returns whether
  // it writes next (a failing compare_exchange does not; it is a load with
  // order `failure`). Returns the old value.
  template <class F>
  uint64_t rmw(size_t loc, std::memory_order mo, std::memory_order failure, F&& f) {
    Thread& me = begin_op(loc);
    Location& L = locs_[loc];
    const uint32_t idx = static_cast<uint32_t>(L.mo.size() - 1);
    const Write r = L.mo[idx];
    me.view.see(loc, idx);
    uint64_t next = 0;
    const bool writes = f(r.value, &next);
    if (acquires(writes ? mo : failure) && r.releases) me.view.join(r.msg);
    if (!writes) return r.value;
    // The release sequence: this store carries on what the one it read carried.
    Write w{next, mo == std::memory_order_seq_cst, r.releases, r.releases ? r.msg : View{}};
    append(loc, me, std::move(w), releases(mo));
    return r.value;
  }

  size_t new_data(const char* what) {
    const int me = tl_tid;
    data_.push_back(Data{what, me, th_[me].view.clock[me], {}});
    return data_.size() - 1;
  }
  void read(size_t d) {
    const int me = tl_tid;
    Data& D = data_[d];
    const Clock& c = th_[me].view.clock;
    if (D.wrote > c[D.writer]) race(D, "reads", D.writer);
    D.reads[me] = c[me];
  }
  void write(size_t d) {
    const int me = tl_tid;
    Data& D = data_[d];
    const Clock& c = th_[me].view.clock;
    if (D.wrote > c[D.writer]) race(D, "writes", D.writer);
    for (int t = 0; t < kMaxThreads; ++t)
      if (t != me && D.reads[t] > c[t]) race(D, "writes", t);
    D.writer = me;
    D.wrote = c[me];
    D.reads = {};
  }

 private:
  // What a thread knows: happens-before as a vector clock (entries count
  // each thread's releases, from 1), and per atomic location the index of
  // the newest store it has observed.
  struct View {
    Clock clock{};
    std::vector<uint32_t> seen;
    uint32_t seen_of(size_t loc) const { return loc < seen.size() ? seen[loc] : 0; }
    void see(size_t loc, uint32_t idx) {
      if (seen.size() <= loc) seen.resize(loc + 1, 0);
      if (seen[loc] < idx) seen[loc] = idx;
    }
    void join(const View& o) {
      for (int i = 0; i < kMaxThreads; ++i)
        if (clock[i] < o.clock[i]) clock[i] = o.clock[i];
      for (size_t l = 0; l < o.seen.size(); ++l) see(l, o.seen[l]);
    }
  };
  struct Write {
    uint64_t value;
    bool sc;
    bool releases;  // carries msg (a release store, or an RMW in a release sequence)
    View msg;
  };
  struct Location {
    std::vector<Write> mo;  // modification order
    uint32_t scFloor;       // the oldest store a seq_cst load may read: the newest one a seq_cst operation wrote or read
    int creator;
    uint32_t born;           // the creator's clock at the construction
    uint64_t lastStore = 0;  // stores_ at its newest store
    bool reported = false;
  };
  struct Data {
    const char* what;
    int writer;
    uint32_t wrote;  // the last write: writer's clock then
    Clock reads;     // per thread, its clock at its last read since that write (0: none)
  };
  struct Thread {
    View view;
    bool done = false, waiting = false, fresh = false;
    uint64_t waitStamp = 0;      // stores_ when it began to wait
    std::vector<size_t> watch;  // the locations read since the last spin()
  };
  struct Decision {
    uint32_t n, chosen;
  };
  static constexpr uint64_t kMaxSteps = 100000;  // per execution: a livelock is a bug of the scenario

  void reset() {
    th_.assign(1, Thread{});
    th_[0].view.clock[0] = 1;
    locs_.clear();
    data_.clear();
    why_.clear();
    depth_ = 0;
    steps_ = stores_ = 0;
    preemptionsLeft_ = opts_.preemptions;
    staleLeft_ = opts_.staleReads;
    running_ = false;
  }

  Thread& begin_op(size_t loc) {
    if (running_) {
      if (++steps_ > kMaxSteps) {
        std::fprintf(stderr, "wmm: an execution ran past %llu steps (a livelock?)\n", (unsigned long long)kMaxSteps);
        std::abort();
      }
      schedule(tl_tid);
    }
    Thread& me = th_[tl_tid];
    if (std::find(me.watch.begin(), me.watch.end(), loc) == me.watch.end()) me.watch.push_back(loc);
    Location& L = locs_[loc];
    if (L.born > me.view.clock[L.creator] && !L.reported) {
      L.reported = true;
      fail("uses an atomic whose construction (by thread " + std::to_string(L.creator - 1) + ") does not happen before");
    }
    return me;
  }

  void append(size_t loc, Thread& me, Write w, bool release) {
    Location& L = locs_[loc];
    const uint32_t idx = static_cast<uint32_t>(L.mo.size());
    me.view.see(loc, idx);
    if (release) {
      w.msg.join(me.view);
      w.releases = true;
      ++me.view.clock[tl_tid];  // what this thread does next is not covered by the release
    }
    if (w.sc) L.scFloor = idx;
    L.mo.push_back(std::move(w));
    L.lastStore = ++stores_;
  }

  void race(const Data& D, const char* op, int other) {
    fail(std::string("data race: ") + op + " " + D.what + " while an access by " +
         (other == 0 ? std::string("the main thread") : "thread " + std::to_string(other - 1)) +
         " does not happen before");
  }

  // The next decision among n options: replayed from the stack while the
  // search is inside a known prefix, option 0 beyond it.
  uint32_t decide(uint32_t n) {
    if (n <= 1) return 0;
    if (depth_ < stack_.size()) {
      const Decision& d = stack_[depth_++];
      if (d.n != n) {
        std::fprintf(stderr, "wmm: the scenario is not deterministic (decision %zu: %u options, was %u)\n", depth_, n, d.n);
        std::abort();
      }
      return d.chosen;
    }
    stack_.push_back(Decision{n, 0});
    ++depth_;
    return 0;
  }
  // The deepest decision with an untried option; everything below forgotten.
  bool backtrack() {
    while (!stack_.empty()) {
      Decision& d = stack_.back();
      if (d.chosen + 1 < d.n) {
        ++d.chosen;
        return true;
      }
      stack_.pop_back();
    }
    return false;
  }

  bool enabled(int t) const {
    const Thread& T = th_[t];
    if (T.done) return false;
    if (!T.waiting) return true;
    for (size_t l : T.watch)
      if (locs_[l].lastStore > T.waitStamp) return true;
    return T.watch.empty() && stores_ > T.waitStamp;
  }

  // The running thread `self` (about to do an atomic operation, waiting, or
  // done) lets the schedule pick who goes on; returns when it is self's turn.
  void schedule(int self) {
    std::array<int, kMaxThreads> opts;
    uint32_t n = 0;
    const bool selfGoesOn = enabled(self);
    auto collect = [&] {
      n = 0;
      if (enabled(self)) opts[n++] = self;
      for (int t = 1; t <= n_; ++t)
        if (t != self && enabled(t)) opts[n++] = t;
    };
    collect();
    if (n == 0) {
      // Every thread left waits for a store no one will make: time passes,
      // and each sees the newest stores (spin()).
      for (int t = 1; t <= n_; ++t)
        if (!th_[t].done && th_[t].waiting) {
          th_[t].waiting = false;
          th_[t].fresh = true;
        }
      collect();
      if (n == 0) {  // the last thread ends: back to main
        pass_turn(0);
        return;
      }
    }
    if (selfGoesOn && preemptionsLeft_ == 0) n = 1;
    const uint32_t k = decide(n);
    if (selfGoesOn && k > 0) --preemptionsLeft_;
    const int next = opts[k];
    if (next == self) return;
    const bool done = th_[self].done;  // read before the turn passes: after, the state is the next thread's
    pass_turn(next);
    if (!done) wait_turn(self);
  }

  // The scenario threads are kept from one execution to the next (starting
  // threads cost more than the rest of an execution): thread t runs the
  // body whenever the turn comes to it, until stop_workers().
  void work(int t) {
    tl_tid = t;
    for (;;) {
      wait_turn(t);
      if (quit_) return;
      (*body_)(t - 1);
      th_[t].done = true;
      schedule(t);
    }
  }
  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    for (auto& c : cv_) c.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    quit_ = false;
  }
  void pass_turn(int next) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      turn_ = next;
    }
    cv_[next].notify_one();
  }
  void wait_turn(int self) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_[self].wait(lk, [&] { return turn_ == self || quit_; });
  }

  Options opts_;
  std::vector<Decision> stack_;
  size_t depth_ = 0;
  int preemptionsLeft_ = 0, staleLeft_ = 0;
  std::vector<Thread> th_;
  std::vector<Location> locs_;
  std::vector<Data> data_;
  std::string why_;
  uint64_t steps_ = 0, stores_ = 0;
  int n_ = 0;
  bool running_ = false;
  std::mutex mu_;
  std::array<std::condition_variable, kMaxThreads> cv_;  // one per thread: a hand-over wakes only the next
  int turn_ = 0;                                          // guarded by mu_
  bool quit_ = false;                                     // guarded by mu_
  std::vector<std::thread> workers_;
  const std::function<void(int)>* body_ = nullptr;
};

inline Checker& checker() { return *g_checker; }
inline void fail(const std::string& why) { checker().fail(why); }
inline void spin() { checker().spin(); }

// The checked stand-in for std::atomic<T> (integers, bool, pointers): the
// operations the protocols use, with the same names and defaults.
template <class T>
class Atomic {
  static_assert(sizeof(T) <= 8 && (std::is_integral_v<T> || std::is_pointer_v<T>));
  static uint64_t enc(T v) {
    if constexpr (std::is_pointer_v<T>) return reinterpret_cast<uintptr_t>(v);
    else return static_cast<uint64_t>(v);
  }
  static T dec(uint64_t v) {
    if constexpr (std::is_pointer_v<T>) return reinterpret_cast<T>(static_cast<uintptr_t>(v));
    else if constexpr (std::is_same_v<T, bool>) return v != 0;
    else return static_cast<T>(v);
  }
  static std::memory_order failure_of(std::memory_order m) {
    return m == std::memory_order_acq_rel ? std::memory_order_acquire
           : m == std::memory_order_release ? std::memory_order_relaxed
                                            : m;
  }

 public:
  Atomic(T init = T{}) : loc_(checker().new_location(enc(init))) {}
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  T load(std::memory_order m = std::memory_order_seq_cst) const { return dec(checker().load(loc_, m)); }
  void store(T v, std::memory_order m = std::memory_order_seq_cst) { checker().store(loc_, enc(v), m); }
  T exchange(T v, std::memory_order m = std::memory_order_seq_cst) {
    return dec(checker().rmw(loc_, m, m, [&](uint64_t, uint64_t* next) {
      *next = enc(v);
      return true;
    }));
  }
  T fetch_add(T d, std::memory_order m = std::memory_order_seq_cst) {
    static_assert(std::is_integral_v<T>);
    return dec(checker().rmw(loc_, m, m, [&](uint64_t old, uint64_t* next) {
      *next = enc(static_cast<T>(dec(old) + d));
      return true;
    }));
  }
  T fetch_sub(T d, std::memory_order m = std::memory_order_seq_cst) {
    static_assert(std::is_integral_v<T>);
    return dec(checker().rmw(loc_, m, m, [&](uint64_t old, uint64_t* next) {
      *next = enc(static_cast<T>(dec(old) - d));
      return true;
    }));
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success, std::memory_order failure) {
    const uint64_t want = enc(expected);
    const uint64_t old = checker().rmw(loc_, success, failure, [&](uint64_t cur, uint64_t* next) {
      *next = enc(desired);
      return cur == want;
    });
    if (old == want) return true;
    expected = dec(old);
    return false;
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order m = std::memory_order_seq_cst) {
    return compare_exchange_strong(expected, desired, m, failure_of(m));
  }
  // Never fails spuriously here (a spurious failure only adds a retry).
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success, std::memory_order failure) {
    return compare_exchange_strong(expected, desired, success, failure);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order m = std::memory_order_seq_cst) {
    return compare_exchange_strong(expected, desired, m, failure_of(m));
  }

 private:
  size_t loc_;
};

// Plain data handed between threads by a protocol: every read and write is
// checked for a race against the accesses before it.
template <class T>
class NonAtomic {
 public:
  NonAtomic(T v = T{}, const char* what = "plain data") : v_(v), id_(checker().new_data(what)) {}
  NonAtomic(const NonAtomic&) = delete;
  NonAtomic& operator=(const NonAtomic&) = delete;
  operator T() const {
    checker().read(id_);
    return v_;
  }
  NonAtomic& operator=(T v) {
    checker().write(id_);
    v_ = v;
    return *this;
  }

 private:
  T v_;
  size_t id_;
};

// The policy hooks of core/store/sync_policy.h, checked: P is a protocol's
// production policy (its orders), or a mutant derived from one.
template <class P>
struct Checked : P {
  template <class T>
  using Atomic = wmm::Atomic<T>;
  template <class T>
  using Data = wmm::NonAtomic<T>;
  static void point() {}  // every atomic operation is a scheduling point already
  static void relax() { wmm::spin(); }
  static void yield() { wmm::spin(); }
};

}  // namespace wmm
