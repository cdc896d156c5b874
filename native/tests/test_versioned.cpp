// Mode 'versioned': a snapshot is the whole store at one point in time.
// Writers keep an invariant across tensors (every push adds 1 to each
// element of A and subtracts 1 from each element of B, so after version v,
// A == v and B == -v everywhere); concurrent readers check that no snapshot
// is ever torn and that its version matches its data. The copy-on-write pool
// must stay bounded by the readers that can pin a buffer.
#include <algorithm>
#include <thread>

#include "check.h"

using namespace gv;

namespace {

constexpr int64_t kSizeA = 4099;  // big enough that a copy takes a while: a torn read would show
constexpr int64_t kSizeB = 37;
constexpr int kWriters = 3, kReaders = 3;

std::shared_ptr<Store> fresh(const StoreConfig& c) {
  return gvtest::make_store(c, {gvtest::tensor("A", {kSizeA}), gvtest::tensor("B", {kSizeB}), gvtest::tensor("C", {5})});
}

StoreConfig config() {
  StoreConfig c;
  c.mode = Mode::Versioned;
  c.optimizer.lr = 1.f;
  return c;
}

void concurrent() {
  auto store = fresh(config());
  const size_t bytesPerCopy = store->padded_floats() * sizeof(float);
  const uint64_t perWriter = gvtest::scaled(40000, 200);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> snapshots{0}, torn{0}, mismatched{0}, backwards{0}, maxExtra{0};
  std::atomic<int> started{0};

  std::vector<std::thread> threads;
  for (int r = 0; r < kReaders; ++r)
    threads.emplace_back([&] {
      std::vector<float> s(store->padded_floats());
      const size_t offA = store->tensor(0).offset, offB = store->tensor(1).offset;
      uint64_t last = 0;
      started.fetch_add(1);
      while (started.load() < kReaders + kWriters) std::this_thread::yield();
      while (!done.load(std::memory_order_acquire)) {
        uint64_t v = store->snapshot(s.data());
        snapshots.fetch_add(1, std::memory_order_relaxed);
        const float a = s[offA];
        bool ok = true;
        for (int64_t i = 0; i < kSizeA; ++i) ok = ok && s[offA + i] == a;
        for (int64_t i = 0; i < kSizeB; ++i) ok = ok && s[offB + i] == -a;
        if (!ok) torn.fetch_add(1);
        if (a != static_cast<float>(v)) mismatched.fetch_add(1);
        if (v < last) backwards.fetch_add(1);
        last = v;
        // The pool: at most one buffer per reader that can pin one, the
        // current one and the one a writer is filling.
        uint64_t extra = store->stats().bytes - bytesPerCopy;  // plain SGD: no optimizer state
        uint64_t m = maxExtra.load();
        while (extra > m && !maxExtra.compare_exchange_weak(m, extra)) {
        }
      }
    });
  std::vector<uint64_t> versions(kWriters * perWriter);
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      std::vector<float> ga(kSizeA, -1.f), gb(kSizeB, 1.f);
      Grad g[2] = {{0, ga.data(), ga.size()}, {1, gb.data(), gb.size()}};
      started.fetch_add(1);
      while (started.load() < kReaders + kWriters) std::this_thread::yield();
      for (uint64_t i = 0; i < perWriter; ++i) {
        PushResult r;
        CHECK_OK(store->push(g, 2, -1, &r));
        versions[w * perWriter + i] = r.version;
      }
    });
  for (int w = 0; w < kWriters; ++w) threads[kReaders + w].join();
  done.store(true, std::memory_order_release);
  for (int r = 0; r < kReaders; ++r) threads[r].join();

  const uint64_t total = kWriters * perWriter;
  CHECK_EQ(torn.load(), 0u);
  CHECK_EQ(mismatched.load(), 0u);
  CHECK_EQ(backwards.load(), 0u);
  CHECK(snapshots.load() > 0);
  uint64_t v = 0;
  std::vector<float> s = gvtest::snapshot(*store, &v);
  CHECK_EQ(v, total);
  CHECK_EQ(store->version(), total);
  CHECK_EQ(s[store->tensor(0).offset], static_cast<float>(total));
  CHECK_EQ(s[store->tensor(1).offset + kSizeB - 1], -static_cast<float>(total));
  CHECK_EQ(s[store->tensor(2).offset], 0.f);  // never pushed: copied unchanged into every version
  // Every push got its own version number.
  std::sort(versions.begin(), versions.end());
  bool unique = true;
  for (uint64_t i = 0; i < total; ++i) unique = unique && versions[i] == i + 1;
  CHECK_MSG(unique, "PushResult.version is not one distinct version per push");
  const uint64_t bound = (kReaders + 1) * bytesPerCopy;  // pool <= readers + 2 buffers
  CHECK_MSG(maxExtra.load() <= bound, "version pool grew to " << maxExtra.load() / bytesPerCopy + 1 << " buffers");
  CHECK(store->stats().bytes - bytesPerCopy <= bound);
  std::printf("versioned: %llu pushes, %llu snapshots, none torn; pool at most %llu buffers (bound %d)\n",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(snapshots.load()),
              static_cast<unsigned long long>(maxExtra.load() / bytesPerCopy + 1), kReaders + 2);
}

// Single-threaded: versions are points in time, a push that names only some
// tensors carries the others over, and with no reader the pool stays at 2.
void single_thread() {
  auto store = fresh(config());
  const size_t bytesPerCopy = store->padded_floats() * sizeof(float);
  std::vector<float> ga(kSizeA, -1.f), gc(5, 2.f);
  Grad a{0, ga.data(), ga.size()}, c{2, gc.data(), gc.size()};
  PushResult r;
  for (int i = 0; i < 100; ++i) {
    CHECK_OK(store->push(&a, 1, -1, &r));
    CHECK_EQ(r.version, static_cast<uint64_t>(i + 1));
  }
  CHECK_OK(store->push(&c, 1, -1, &r));
  uint64_t v = 0;
  std::vector<float> s = gvtest::snapshot(*store, &v);
  CHECK_EQ(v, 101u);
  CHECK_EQ(s[store->tensor(0).offset + 17], 100.f);
  CHECK_EQ(s[store->tensor(1).offset], 0.f);
  CHECK_EQ(s[store->tensor(2).offset + 4], -2.f);
  CHECK_EQ(store->stats().bytes, 2 * bytesPerCopy);
}

}  // namespace

// Regression: a snapshot's version is never ahead of version(), so a push
// based on it is never refused as "ahead of the store" (the publication
// order once let a reader pin version v + 1 while version() still said v).
void based_on_own_snapshot() {
  StoreConfig c;
  c.mode = Mode::Versioned;
  c.optimizer.lr = 0.001f;
  std::shared_ptr<Store> s;
  CHECK_OK(Store::create(c, {TensorSpec{"w", {64}}}, &s));
  std::atomic<int> refused{0};
  const int iters = static_cast<int>(100000 * gvtest::stress_scale());
  std::vector<std::thread> th;
  for (int t = 0; t < 3; ++t)
    th.emplace_back([&] {
      std::vector<float> snap(s->padded_floats()), g(64, 1.f);
      for (int i = 0; i < iters; ++i) {
        const uint64_t v = s->snapshot(snap.data());
        Grad gr{0, g.data(), 64};
        PushResult r;
        if (!s->push(&gr, 1, static_cast<int64_t>(v), &r).ok()) refused.fetch_add(1);
      }
    });
  for (auto& t : th) t.join();
  CHECK_EQ(refused.load(), 0);
  CHECK_EQ(s->version(), uint64_t(3) * iters);
}

int main() {
  single_thread();
  concurrent();
  based_on_own_snapshot();
  return gvtest::finish("test_versioned");
}
