// History checker for push / snapshot: many short randomized histories, 2 to
// 8 threads, each operation stamped with a global logical clock before and
// after it. Every snapshot is then checked against what the real-time order
// allows, at the granularity each mode promises (README "Modes"):
//
//   every mode    each element is the sum of a per-thread prefix of that
//                 thread's pushes: at least those completed before the
//                 snapshot began, at most those begun before it ended
//                 (linearizable per element), and never goes backwards for
//                 one reader;
//   locked        each shard is one state: two elements of a shard that every
//                 push writes together always agree;
//   versioned     the whole snapshot is one state: all shards agree, each
//                 thread's pushes seen form a prefix, and their number is the
//                 snapshot's version exactly.
//   at the end    nothing was lost: every element holds every push.
//
// The gradients make a snapshot decodable. With sgd at lr 1 a gradient of -1
// adds 1. Tensor `bits` [8][kMaxPushes]: push k of thread t sets bits[t][k]
// (so a snapshot shows exactly which pushes it holds); tensor `count`
// [kShards][16]: every push of thread t adds 1 to count[s][t] and
// count[s][8 + t] in every shard s (16 floats, one stripe each).
// Mode atomic's snapshot is not one state across elements (by design); how
// often a snapshot here mixed states is reported, not failed.
#include <algorithm>
#include <random>
#include <thread>

#include "check.h"

using namespace gv;

namespace {

constexpr int kMaxThreads = 8;
constexpr int kMaxPushes = 48;  // per writer: 3 stripes of 16
constexpr int kShards = 4;

std::atomic<uint64_t> g_clock{0};
uint64_t tick() { return g_clock.fetch_add(1, std::memory_order_seq_cst); }

struct Op {
  uint64_t begin, end;
};
struct Snap {
  uint64_t begin, end, version;
  std::vector<float> data;
};

struct Totals {
  uint64_t histories = 0, pushes = 0, snapshots = 0, mixed = 0;
};

// A little random waiting between operations, so interleavings vary.
void jitter(std::mt19937_64& rng) {
  const uint64_t r = rng() % 100;
  if (r < 10) std::this_thread::yield();
  else if (r < 60)
    for (uint64_t i = 0, n = rng() % 400; i < n; ++i) std::atomic_signal_fence(std::memory_order_seq_cst);  // not optimised away
}

void run_history(Mode mode, uint64_t seed, Totals& tot) {
  std::mt19937_64 rng(seed);
  const int threads = 2 + static_cast<int>(rng() % 7);                   // 2..8
  const int readers = 1 + static_cast<int>(rng() % std::min(2, threads - 1));
  const int writers = threads - readers;
  const int pushes = 1 + static_cast<int>(rng() % kMaxPushes);
  gvtest::Context ctx(std::string(mode_name(mode)) + " seed " + std::to_string(seed) + ", " + std::to_string(writers) +
                      " writers x " + std::to_string(pushes) + ", " + std::to_string(readers) + " readers");
  StoreConfig c;
  c.mode = mode;
  c.optimizer.lr = 1.f;
  c.shardFloats = 16;
  auto store = gvtest::make_store(c, {gvtest::tensor("bits", {kMaxThreads, kMaxPushes}), gvtest::tensor("count", {kShards, 16})});
  const size_t offBits = store->tensor(0).offset, offCount = store->tensor(1).offset;
  const size_t nBits = store->tensor(0).size, nCount = store->tensor(1).size;

  std::vector<std::vector<Op>> ops(writers, std::vector<Op>(pushes));
  std::vector<std::vector<Snap>> snaps(readers);
  std::atomic<int> running{writers}, ready{0};
  std::vector<std::thread> pool;
  for (int w = 0; w < writers; ++w)
    pool.emplace_back([&, w] {
      std::mt19937_64 r(seed * 31 + w);
      std::vector<float> gb(nBits, 0.f), gc(nCount, 0.f);
      for (int s = 0; s < kShards; ++s) gc[s * 16 + w] = gc[s * 16 + 8 + w] = -1.f;
      ready.fetch_add(1);
      while (ready.load() < writers + readers) std::this_thread::yield();
      for (int k = 0; k < pushes; ++k) {
        jitter(r);
        gb[w * kMaxPushes + k] = -1.f;
        Grad g[2] = {{0, gb.data(), nBits}, {1, gc.data(), nCount}};
        PushResult res;
        ops[w][k].begin = tick();
        Status st = store->push(g, 2, -1, &res);
        ops[w][k].end = tick();
        CHECK_OK(st);
        gb[w * kMaxPushes + k] = 0.f;
      }
      running.fetch_sub(1);
    });
  for (int rd = 0; rd < readers; ++rd)
    pool.emplace_back([&, rd] {
      std::mt19937_64 r(seed * 131 + rd);
      ready.fetch_add(1);
      while (ready.load() < writers + readers) std::this_thread::yield();
      bool last = false;
      while (!last) {
        last = running.load() == 0;  // one more snapshot after the writers are done
        jitter(r);
        Snap s;
        s.data.resize(store->padded_floats());
        s.begin = tick();
        s.version = store->snapshot(s.data.data());
        s.end = tick();
        snaps[rd].push_back(std::move(s));
      }
    });
  for (auto& t : pool) t.join();

  // ---- the checks
  auto bit = [&](const Snap& s, int t, int k) { return s.data[offBits + t * kMaxPushes + k]; };
  auto cnt = [&](const Snap& s, int shard, int e) { return s.data[offCount + shard * 16 + e]; };
  for (int rd = 0; rd < readers; ++rd) {
    const Snap* prev = nullptr;
    for (const Snap& s : snaps[rd]) {
      ++tot.snapshots;
      bool wholeStore = true;
      uint64_t seen = 0;
      for (int t = 0; t < writers; ++t) {
        // real-time bounds: completed before the snapshot began / begun before it ended
        int lo = 0, hi = 0;
        while (lo < pushes && ops[t][lo].end < s.begin) ++lo;
        while (hi < pushes && ops[t][hi].begin < s.end) ++hi;
        int prefix = 0;
        while (prefix < pushes && bit(s, t, prefix) == 1.f) ++prefix;
        for (int k = 0; k < pushes; ++k) {
          const float b = bit(s, t, k);
          CHECK_MSG(b == 0.f || b == 1.f, "bits[" + std::to_string(t) + "][" + std::to_string(k) + "] = " + std::to_string(b));
          if (k < lo) CHECK_MSG(b == 1.f, "push " + std::to_string(k) + " of thread " + std::to_string(t) + " completed before the snapshot began, not in it");
          if (k >= hi) CHECK_MSG(b == 0.f, "push " + std::to_string(k) + " of thread " + std::to_string(t) + " began after the snapshot ended, yet in it");
          if (b == 1.f && k >= prefix) wholeStore = false;
          // one stripe (16 pushes of one thread) is one state in locked and versioned
          if ((mode == Mode::Locked || mode == Mode::Versioned) && k % 16 != 0 && b == 1.f)
            CHECK_MSG(bit(s, t, k - 1) == 1.f, "shard torn: push " + std::to_string(k) + " of thread " + std::to_string(t) + " without push " + std::to_string(k - 1));
        }
        for (int sh = 0; sh < kShards; ++sh) {
          const float a = cnt(s, sh, t), b = cnt(s, sh, 8 + t);
          CHECK_MSG(a >= lo && a <= hi, "count[" + std::to_string(sh) + "][" + std::to_string(t) + "] = " + std::to_string(a) + " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
          CHECK_MSG(b >= lo && b <= hi, "count[" + std::to_string(sh) + "][" + std::to_string(8 + t) + "] = " + std::to_string(b) + " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
          if (mode == Mode::Locked || mode == Mode::Versioned)
            CHECK_MSG(a == b, "shard " + std::to_string(sh) + " torn: thread " + std::to_string(t) + "'s two counters " + std::to_string(a) + " and " + std::to_string(b));
          if (a != static_cast<float>(prefix) || b != a) wholeStore = false;
          if (prev) {
            CHECK_MSG(a >= cnt(*prev, sh, t), "count[" + std::to_string(sh) + "][" + std::to_string(t) + "] went backwards for one reader");
          }
        }
        seen += static_cast<uint64_t>(prefix);
      }
      if (mode == Mode::Versioned) {
        CHECK_MSG(wholeStore, "a versioned snapshot is not one state of the store");
        CHECK_EQ(s.version, seen);
        if (prev) CHECK(s.version >= prev->version);
      }
      if (!wholeStore) ++tot.mixed;
      prev = &s;
    }
    // the last snapshot came after every writer finished: nothing lost
    const Snap& f = snaps[rd].back();
    for (int t = 0; t < writers; ++t) {
      for (int k = 0; k < pushes; ++k) CHECK(bit(f, t, k) == 1.f);
      for (int sh = 0; sh < kShards; ++sh) CHECK_EQ(cnt(f, sh, t), static_cast<float>(pushes));
    }
  }
  CHECK_EQ(store->version(), static_cast<uint64_t>(writers) * pushes);
  tot.pushes += static_cast<uint64_t>(writers) * pushes;
  ++tot.histories;
}

}  // namespace

int main() {
  // GV_HISTORIES: histories per mode (default 600, scaled by GV_STRESS_SCALE).
  const char* env = std::getenv("GV_HISTORIES");
  const uint64_t per = env ? std::strtoull(env, nullptr, 10) : gvtest::scaled(600, 40);
  // GV_HISTORY_MODES=hogwild shows the checker failing a racy store (lost
  // updates, torn shards); the default is the modes with guarantees.
  std::vector<Mode> modes = {Mode::Atomic, Mode::Locked, Mode::Versioned, Mode::Deterministic};
  if (const char* m = std::getenv("GV_HISTORY_MODES")) {
    modes.clear();
    std::string list = m;
    for (size_t at = 0; at <= list.size();) {
      size_t comma = std::min(list.find(',', at), list.size());
      Mode mode;
      if (parse_mode(list.substr(at, comma - at), &mode)) modes.push_back(mode);
      at = comma + 1;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (Mode m : modes) {
    Totals tot;
    for (uint64_t h = 0; h < per; ++h) run_history(m, h + 1, tot);
    std::printf("  %-13s %5llu histories, %7llu pushes, %7llu snapshots checked, %6llu of them not one state of the whole store\n",
                mode_name(m), (unsigned long long)tot.histories, (unsigned long long)tot.pushes, (unsigned long long)tot.snapshots,
                (unsigned long long)tot.mixed);
  }
  std::printf("  %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return gvtest::finish("test_history");
}
