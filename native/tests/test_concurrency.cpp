// What every mode keeps under concurrency, on the production path (issue 11):
//
//  1. checkpoint_content: a checkpoint holds exactly the pushes its version
//     counts. Push k touches only element k, so an image's touched elements
//     (parameters moved, or averaging's open round holding a sum) must number
//     exactly its version, each touched once, while two threads push and a
//     third saves as fast as it can.
//  2. save_failure: an allocation failure anywhere in a save (injected: the
//     n-th operator new of the saving thread throws) is an error, and the
//     store's pushes go on (a save that threw with the gate closed used to
//     block every later push for good).
//  3. averaging_range: gradients whose sums would leave the accumulator's
//     range never make a push fail or wait forever: the round closes early.
//  4. deterministic: order-free even at the range limit; a push is accepted
//     on its own size alone and is never seen half-applied; staleness
//     policies that would make the step depend on timing are refused;
//     saves do not move the weight-decay anchor.
//  5. shared_stripes: two tensors in one stripe (a weight and its bias) are
//     consistent together in every locked and deterministic snapshot, for
//     dense and row-sparse pushes and row reads.
//
// Every blocking case runs under a watchdog: a hang is a failure, not a
// ctest timeout.
#include <chrono>
#include <future>
#include <new>
#include <random>
#include <thread>

#include "check.h"
#include "kernels/fixed/scalar.h"

using namespace gv;

// ---- allocation failure injection: the calling thread's n-th allocation
// from now on throws std::bad_alloc (n = -1: never).
namespace {
thread_local long t_failAfter = -1;
bool should_fail() {
  if (t_failAfter < 0) return false;
  if (t_failAfter == 0) {
    t_failAfter = -1;
    return true;
  }
  --t_failAfter;
  return false;
}
}  // namespace

void* operator new(size_t n) {
  if (should_fail()) throw std::bad_alloc();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// malloc underneath, so free matches it (GCC cannot see that through a
// replaced operator new).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

const char* name(Mode m) { return mode_name(m); }

// Runs f on a thread; fails the test and exits when it takes longer than
// `seconds` (a hang would otherwise stall ctest until its timeout).
template <class F>
void within(double seconds, const std::string& what, F&& f) {
  std::packaged_task<void()> task(std::forward<F>(f));
  auto done = task.get_future();
  std::thread t(std::move(task));
  if (done.wait_for(std::chrono::duration<double>(seconds)) != std::future_status::ready) {
    std::fprintf(stderr, "FAIL: %s did not finish within %.0f s (a push or a save blocks)\n", what.c_str(), seconds);
    std::fflush(stderr);
    std::_Exit(1);
  }
  t.join();
  done.get();
}

StoreConfig config(Mode m) {
  StoreConfig c;
  c.mode = m;
  c.optimizer.lr = 0.5f;
  if (m == Mode::Averaging) c.syncEvery = 7;
  return c;
}

// ---------------------------------------------------------------- 1

void checkpoint_content(Mode m, bool momentum) {
  gvtest::Context ctx(std::string(name(m)) + (momentum ? " momentum" : ""));
  StoreConfig c = config(m);
  if (momentum) c.optimizer.momentum = 0.5f;  // optimizer state: versioned then pauses too
  const size_t N = gvtest::scaled(6000, 400);
  auto store = gvtest::make_store(c, {gvtest::tensor("w", {static_cast<int64_t>(N)})});
  std::atomic<bool> done{false};
  uint64_t images = 0, partial = 0;
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t)
    writers.emplace_back([&, t] {
      std::vector<float> g(N, 0.f);
      const Grad grad{0, g.data(), N};
      for (size_t k = t; k < N; k += 2) {
        g[k] = 1.f;
        PushResult r;
        CHECK_OK(store->push(&grad, 1, -1, &r));
        g[k] = 0.f;
      }
    });
  std::thread saver([&] {
    while (!done.load(std::memory_order_acquire)) {
      StateImage img;
      CHECK_OK(store->export_state(&img));
      ++images;
      uint64_t touched = 0, inRound = 0, twice = 0;
      for (size_t k = 0; k < N; ++k) {
        const bool moved = img.params[k] != 0.f;
        const bool pending = !img.round.empty() && img.round[k] != 0;
        touched += moved || pending;
        inRound += pending;
        twice += moved && pending;
      }
      partial += img.version > 0 && img.version < N;
      CHECK_EQ(twice, 0u);
      CHECK_EQ(touched, img.version);
      if (m == Mode::Averaging) CHECK_EQ(inRound, img.pending);
    }
  });
  for (auto& w : writers) w.join();
  done.store(true, std::memory_order_release);
  saver.join();
  StateImage last;
  CHECK_OK(store->export_state(&last));
  uint64_t touched = 0;
  for (size_t k = 0; k < N; ++k) touched += last.params[k] != 0.f || (!last.round.empty() && last.round[k] != 0);
  CHECK_EQ(touched, N);
  CHECK_EQ(last.version, N);
  std::printf("checkpoint_content %-13s%s: %llu checkpoints during %zu pushes (%llu mid-run), each holds exactly its version\n",
              name(m), momentum ? " +momentum" : "", static_cast<unsigned long long>(images), N,
              static_cast<unsigned long long>(partial));
}

// ---------------------------------------------------------------- 2

void save_failure(Mode m, bool momentum) {
  gvtest::Context ctx(std::string(name(m)) + (momentum ? " momentum" : ""));
  StoreConfig c = config(m);
  if (momentum) c.optimizer.momentum = 0.5f;
  auto store = gvtest::make_store(c, {gvtest::tensor("w", {1000}), gvtest::tensor("b", {10})});
  std::vector<float> g(1000, 0.25f), gb(10, 0.5f);
  const Grad grads[2] = {{0, g.data(), g.size()}, {1, gb.data(), gb.size()}};
  uint64_t pushed = 0;
  long failures = 0;
  for (long n = 0;; ++n) {
    StateImage img;
    Status s;
    bool threw = false;
    t_failAfter = n;
    try {
      s = store->export_state(&img);
    } catch (const std::bad_alloc&) {
      threw = true;  // an error may also be a Status; either way the store must go on
    }
    const bool fired = t_failAfter == -1;  // the injected failure happened inside this save
    t_failAfter = -1;
    CHECK(!threw);  // typed: a Status, never an exception through the API
    // The gate must be open: a push from another thread completes.
    within(20, std::string("a push after a save that failed at allocation ") + std::to_string(n), [&] {
      PushResult r;
      CHECK_OK(store->push(grads, 2, -1, &r));
      CHECK(r.applied);
    });
    ++pushed;
    if (!fired) {  // the save needs fewer allocations than n: every one of them has failed once
      CHECK_OK(s);
      CHECK_EQ(img.version, pushed - 1);
      break;
    }
    CHECK(!s.ok());
    if (!s.ok()) CHECK_EQ(s.code, Code::Internal);
    ++failures;
  }
  CHECK(failures > 0);
  CHECK_EQ(store->version(), pushed);
  std::printf("save_failure %-13s%s: %ld injected allocation failures, each an error, pushes never blocked\n", name(m),
              momentum ? " +momentum" : "", failures);
}

// ---------------------------------------------------------------- 3

void averaging_range(uint64_t syncEvery) {
  gvtest::Context ctx("syncEvery " + std::to_string(syncEvery));
  StoreConfig c;
  c.mode = Mode::Averaging;
  c.syncEvery = syncEvery;
  c.optimizer.lr = 1.f / 1073741824.f;  // 2^-30: the mean of gradients near 2^30 moves a parameter by about 1
  auto store = gvtest::make_store(c, {gvtest::tensor("w", {8})});
  const uint64_t perThread = gvtest::scaled(4000, 200);
  const float big = 0.9f * 1073741824.f;  // two of them leave the range (2^30)
  within(60, "averaging pushes near the range limit", [&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 2; ++t)
      ts.emplace_back([&, t] {
        std::vector<float> g(8);
        for (uint64_t i = 0; i < perThread; ++i) {
          std::fill(g.begin(), g.end(), ((i + t) % 3 == 0 ? -big : big));
          PushResult r;
          const Grad grad{0, g.data(), g.size()};
          CHECK_OK(store->push(&grad, 1, -1, &r));
          CHECK(r.applied);
        }
      });
    for (auto& t : ts) t.join();
    CHECK_OK(store->sync());
  });
  Stats s = store->stats();
  CHECK_EQ(s.pushes, 2 * perThread);
  CHECK_EQ(s.version, 2 * perThread);
  CHECK_EQ(s.pending, 0u);
  // Rounds closed early (a round's sum would have left the range) leave more rounds than pushes / syncEvery.
  CHECK(s.rounds >= 2 * perThread / syncEvery);
  std::printf("averaging_range syncEvery %llu: %llu pushes near 2^30 in %llu rounds, none refused or blocked\n",
              static_cast<unsigned long long>(syncEvery), static_cast<unsigned long long>(s.pushes),
              static_cast<unsigned long long>(s.rounds));
}

// ---------------------------------------------------------------- 4

std::vector<float> bits_after(const std::vector<std::vector<float>>& pushes, float wd = 0.f, bool saveBetween = false) {
  StoreConfig c;
  c.mode = Mode::Deterministic;
  c.optimizer.lr = 1.f;
  c.optimizer.weightDecay = wd;
  const size_t n = pushes.empty() ? 1 : pushes[0].size();
  auto store = gvtest::make_store(c, {gvtest::tensor("w", {static_cast<int64_t>(n)}, std::vector<float>(n, 0.25f))});
  for (const auto& p : pushes) {
    PushResult r;
    const Grad g{0, p.data(), p.size()};
    CHECK_OK(store->push(&g, 1, -1, &r));
    CHECK(r.applied);
    if (saveBetween) {
      StateImage img;
      CHECK_OK(store->export_state(&img));
    }
  }
  return gvtest::snapshot(*store);
}

void deterministic_order_free() {
  const float X = 0.75f * 1073741824.f;  // 0.75 * 2^30: two of them pass the range
  const std::vector<float> minus{-X}, plus{X};
  // The example: {-X, -X, X} and {-X, X, -X} end at the same value,
  // with every push accepted in both orders (the sum passes 1.5 * 2^30 in
  // the first).
  auto o1 = bits_after({minus, minus, plus}), o2 = bits_after({minus, plus, minus}), o3 = bits_after({plus, minus, minus});
  CHECK(gvtest::same_bits(o1[0], o2[0]));
  CHECK(gvtest::same_bits(o1[0], o3[0]));
  CHECK_EQ(o1[0], 0.25f + X);  // sgd, lr 1: w - (-X) - (-X) - X
  // Many orders of one multiset of large pushes, on several threads.
  std::mt19937 rng(7);
  std::vector<std::vector<float>> pushes;
  for (int i = 0; i < 48; ++i) {
    std::vector<float> g(64);
    for (float& v : g) v = std::uniform_real_distribution<float>(-X, X)(rng);
    pushes.push_back(g);
  }
  const auto want = bits_after(pushes);
  int orders = 0;
  for (int trial = 0; trial < 12; ++trial) {
    std::shuffle(pushes.begin(), pushes.end(), rng);
    CHECK(bits_after(pushes) == want);
    ++orders;
    StoreConfig c;
    c.mode = Mode::Deterministic;
    c.optimizer.lr = 1.f;
    auto store = gvtest::make_store(c, {gvtest::tensor("w", {64}, std::vector<float>(64, 0.25f))});
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; ++t)
      ts.emplace_back([&, t] {
        for (size_t i = t; i < pushes.size(); i += 3) {
          PushResult r;
          const Grad g{0, pushes[i].data(), 64};
          CHECK_OK(store->push(&g, 1, -1, &r));
        }
      });
    for (auto& t : ts) t.join();
    auto got = gvtest::snapshot(*store);
    CHECK(std::equal(want.begin(), want.end(), got.begin(), [](float x, float y) { return gvtest::same_bits(x, y); }));
  }
  std::printf("deterministic order-free near the range limit: %d orders and 12 threaded runs of 48 pushes, same bits\n", orders);

  // Out of the range at save time: an error naming the element; back in range: saves again.
  StoreConfig c;
  c.mode = Mode::Deterministic;
  c.optimizer.lr = 1.f;
  auto store = gvtest::make_store(c, {gvtest::tensor("w", {4}), gvtest::tensor("v", {3})});
  std::vector<float> g(3, 0.f);
  g[2] = -X;
  const Grad up{1, g.data(), 3};
  PushResult r;
  CHECK_OK(store->push(&up, 1, -1, &r));
  CHECK_OK(store->push(&up, 1, -1, &r));
  CHECK(r.applied);
  const float beyond = gvtest::snapshot(*store)[16 + 2];
  CHECK_EQ(beyond, 2 * X);  // exact beyond the range, in int64 Q32.32
  StateImage img;
  Status s = store->export_state(&img);
  CHECK_EQ(s.code, Code::Overflow);
  CHECK_EQ(s.tensor, 1);
  CHECK_EQ(s.index, 2);
  for (float& v : g) v = -v;
  CHECK_OK(store->push(&up, 1, -1, &r));
  CHECK_OK(store->export_state(&img));
  CHECK_EQ(img.params[16 + 2], X);
}

void deterministic_never_half_applied() {
  // a and b share a stripe; b starts next to the range limit. A push that
  // moves both past it is accepted (the sum's range never refuses a push)
  // and a reader sees a and b change together.
  StoreConfig c;
  c.mode = Mode::Deterministic;
  c.optimizer.lr = 1.f;
  const float nearLimit = 0.99f * 1073741824.f, step = 0.5f * 1073741824.f;
  auto store = gvtest::make_store(c, {gvtest::tensor("a", {64}), gvtest::tensor("b", {64}, std::vector<float>(64, nearLimit))});
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0}, halves{0};
  std::thread reader([&] {
    std::vector<float> s(store->padded_floats());
    while (!done.load(std::memory_order_acquire)) {
      store->snapshot(s.data());
      const bool aMoved = s[0] != 0.f, bMoved = s[64] != nearLimit;
      halves += aMoved != bMoved;
      ++reads;
    }
  });
  std::vector<float> ga(64, -1.f), gb(64, -step);
  const Grad both[2] = {{0, ga.data(), 64}, {1, gb.data(), 64}};
  PushResult r;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_OK(store->push(both, 2, -1, &r));
  CHECK(r.applied);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  done.store(true, std::memory_order_release);
  reader.join();
  CHECK_EQ(halves.load(), 0u);
  auto s = gvtest::snapshot(*store);
  CHECK_EQ(s[0], 1.f);
  CHECK_EQ(s[64], nearLimit + step);
  // A push too large on its own is refused before anything is written.
  std::vector<float> huge(64, 2.f * 1073741824.f);
  const Grad tooBig[2] = {{0, ga.data(), 64}, {1, huge.data(), 64}};
  Status st = store->push(tooBig, 2, -1, &r);
  CHECK_EQ(st.code, Code::Overflow);
  CHECK_EQ(st.tensor, 1);
  const float after = gvtest::snapshot(*store)[0];  // (CHECK_EQ keeps references: no temporaries)
  CHECK_EQ(after, 1.f);
  std::printf("deterministic: %llu reads around a push past the range limit, none saw it half applied\n",
              static_cast<unsigned long long>(reads.load()));
}

void deterministic_config() {
  for (StalePolicy p : {StalePolicy::Scale, StalePolicy::Reject}) {
    StoreConfig c;
    c.mode = Mode::Deterministic;
    c.stalePolicy = p;
    std::shared_ptr<Store> s;
    Status st = Store::create(c, {gvtest::tensor("w", {4})}, &s);
    CHECK_EQ(st.code, Code::Config);
    CHECK_EQ(st.field, std::string("staleness"));
  }
  StoreConfig c;
  c.mode = Mode::Deterministic;
  c.staleBound = 3;
  std::shared_ptr<Store> s;
  CHECK_EQ(Store::create(c, {gvtest::tensor("w", {4})}, &s).code, Code::Config);
  // Staleness is still measured.
  c.staleBound = UINT64_MAX;
  CHECK_OK(Store::create(c, {gvtest::tensor("w", {4})}, &s));
  std::vector<float> g(4, 1.f);
  const Grad grad{0, g.data(), 4};
  PushResult r;
  CHECK_OK(s->push(&grad, 1, -1, &r));
  CHECK_OK(s->push(&grad, 1, 0, &r));
  CHECK_EQ(r.staleness, 1u);
  CHECK(r.applied);

  // Saving does not move the weight-decay anchor: the same bits with and without saves.
  std::vector<std::vector<float>> pushes;
  for (int i = 0; i < 20; ++i) pushes.push_back(std::vector<float>(16, 0.01f * static_cast<float>(i - 7)));
  CHECK(bits_after(pushes, 0.1f, false) == bits_after(pushes, 0.1f, true));

  // A push's own rate: used for that push only.
  StoreConfig lc;
  lc.mode = Mode::Deterministic;
  lc.optimizer.lr = 0.5f;
  CHECK_OK(Store::create(lc, {gvtest::tensor("w", {4})}, &s));
  CHECK_OK(s->push(&grad, 1, -1, &r, 0.25f));
  const float once = gvtest::snapshot(*s)[0];
  CHECK_EQ(once, -0.25f);
  CHECK_EQ(s->learning_rate(), 0.5f);
  CHECK_OK(s->push(&grad, 1, -1, &r));
  const float twice = gvtest::snapshot(*s)[0];
  CHECK_EQ(twice, -0.75f);
}

// ---------------------------------------------------------------- 5

void shared_stripes(Mode m, bool sparse, bool rowReads) {
  gvtest::Context ctx(std::string(name(m)) + (sparse ? " row-sparse" : "") + (rowReads ? " row reads" : ""));
  StoreConfig c;
  c.mode = m;
  c.optimizer.lr = 1.f;
  // W [50, 2] and b [10]: one stripe (16384 floats) holds both.
  auto store = gvtest::make_store(c, {gvtest::tensor("W", {50, 2}), gvtest::tensor("b", {10})});
  CHECK(store->tensor(1).offset + 10 <= c.shardFloats);
  const uint64_t perWriter = gvtest::scaled(20000, 500);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0}, torn{0};
  std::thread reader([&] {
    std::vector<float> s(store->padded_floats());
    const uint32_t rowsW[] = {3, 4, 40}, rowsB[] = {0, 9};
    const Grad req[2] = {{0, nullptr, 0, rowsW, 3, 2}, {1, nullptr, 0, rowsB, 2, 1}};
    while (!done.load(std::memory_order_acquire)) {
      float first;
      bool bad = false;
      if (rowReads) {
        uint64_t v;
        CHECK_OK(store->snapshot_rows(req, 2, s.data(), &v));
        first = s[6];
        for (size_t i : {6, 7, 8, 9, 80, 81}) bad |= s[i] != first;
        bad |= s[store->tensor(1).offset] != first || s[store->tensor(1).offset + 9] != first;
      } else {
        store->snapshot(s.data());
        first = s[0];
        for (size_t i = 0; i < 100; ++i) bad |= s[i] != first;
        for (size_t i = 0; i < 10; ++i) bad |= s[store->tensor(1).offset + i] != first;
      }
      torn += bad;
      ++reads;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w)
    writers.emplace_back([&] {
      std::vector<float> gW(100, 1.f), gb(10, 1.f);
      std::vector<uint32_t> rows(50);
      for (uint32_t i = 0; i < 50; ++i) rows[i] = i;
      Grad g[2] = {{0, gW.data(), 100}, {1, gb.data(), 10}};
      if (sparse) {
        g[0].rows = rows.data();  // every row, as rows: the row-sparse path
        g[0].nrows = 50;
        g[0].width = 2;
      }
      for (uint64_t i = 0; i < perWriter; ++i) {
        PushResult r;
        CHECK_OK(store->push(g, 2, -1, &r));
      }
    });
  for (auto& w : writers) w.join();
  done.store(true, std::memory_order_release);
  reader.join();
  CHECK_EQ(torn.load(), 0u);
  auto s = gvtest::snapshot(*store);
  CHECK_EQ(s[0], -static_cast<float>(2 * perWriter));
  CHECK_EQ(s[store->tensor(1).offset + 9], -static_cast<float>(2 * perWriter));
  std::printf("shared_stripes %-13s%s%s: %llu snapshots, W and b consistent in every one\n", name(m), sparse ? " row-sparse" : "",
              rowReads ? " row-reads" : "", static_cast<unsigned long long>(reads.load()));
}

}  // namespace

int main() {
  for (Mode m : {Mode::Atomic, Mode::Locked, Mode::Versioned, Mode::Deterministic, Mode::Averaging}) checkpoint_content(m, false);
  for (Mode m : {Mode::Atomic, Mode::Versioned, Mode::Averaging}) checkpoint_content(m, true);
  for (Mode m : gvtest::kAllModes) save_failure(m, false);
  for (Mode m : {Mode::Locked, Mode::Versioned, Mode::Averaging}) save_failure(m, true);
  for (uint64_t k : {2, 3, 5}) averaging_range(k);
  deterministic_order_free();
  deterministic_never_half_applied();
  deterministic_config();
  for (Mode m : {Mode::Locked, Mode::Deterministic})
    for (int v = 0; v < 3; ++v) shared_stripes(m, v == 1, v == 2);
  return gvtest::finish("test_concurrency");
}
