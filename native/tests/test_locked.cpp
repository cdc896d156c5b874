// Mode 'locked': a snapshot sees each stripe (shard) consistent. With
// shardFloats = 16 and pushes whose gradient is the same for every element of
// a stripe, every stripe in every concurrent snapshot must hold equal
// values; different stripes may come from different pushes. The final
// parameters are exact (no lost updates).
#include <thread>

#include "check.h"

using namespace gv;

namespace {

constexpr size_t kShard = 16;
// A: 300 floats = 18 full stripes and a partial one (288..300); B starts at
// 304 (padded to 16) and covers 2.5 stripes: tensors and stripes do not line up.
constexpr int64_t kSizeA = 300, kSizeB = 40;
constexpr int kWriters = 4, kReaders = 2;

// Writer w pushes -(w + 1) in stripes of even index and +(w + 1) in odd
// ones, so stripes move in different directions at different speeds.
float grad_for(int w, size_t flat) { return ((flat / kShard) % 2 == 0 ? -1.f : 1.f) * static_cast<float>(w + 1); }

}  // namespace

int main() {
  StoreConfig c;
  c.mode = Mode::Locked;
  c.optimizer.lr = 1.f;
  c.shardFloats = kShard;
  auto store = gvtest::make_store(c, {gvtest::tensor("A", {kSizeA}), gvtest::tensor("B", {kSizeB})});
  CHECK_EQ(store->tensor(1).offset, 304u);
  const uint64_t perWriter = gvtest::scaled(40000, 200);

  std::atomic<bool> done{false};
  std::atomic<uint64_t> torn{0}, snapshots{0};
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < kReaders; ++r)
    threads.emplace_back([&] {
      std::vector<float> s(store->padded_floats());
      started.fetch_add(1);
      while (started.load() < kReaders + kWriters) std::this_thread::yield();
      while (!done.load(std::memory_order_acquire)) {
        store->snapshot(s.data());
        snapshots.fetch_add(1, std::memory_order_relaxed);
        for (size_t t = 0; t < store->tensor_count(); ++t) {
          const TensorInfo& ti = store->tensor(t);
          // Each stripe's part of this tensor: all equal.
          for (size_t i = ti.offset; i < ti.offset + ti.size; ++i) {
            size_t first = std::max(ti.offset, i / kShard * kShard);
            if (s[i] != s[first]) {
              torn.fetch_add(1);
              break;
            }
          }
        }
      }
    });
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      std::vector<float> ga(kSizeA), gb(kSizeB);
      for (int64_t i = 0; i < kSizeA; ++i) ga[i] = grad_for(w, store->tensor(0).offset + i);
      for (int64_t i = 0; i < kSizeB; ++i) gb[i] = grad_for(w, store->tensor(1).offset + i);
      Grad g[2] = {{0, ga.data(), ga.size()}, {1, gb.data(), gb.size()}};
      started.fetch_add(1);
      while (started.load() < kReaders + kWriters) std::this_thread::yield();
      for (uint64_t i = 0; i < perWriter; ++i) {
        PushResult r;
        CHECK_OK(store->push(g, i % 3 == 0 ? 1 : 2, -1, &r));
      }
    });
  for (int w = 0; w < kWriters; ++w) threads[kReaders + w].join();
  done.store(true, std::memory_order_release);
  for (int r = 0; r < kReaders; ++r) threads[r].join();

  CHECK_EQ(torn.load(), 0u);
  CHECK(snapshots.load() > 0);
  // Exact final values: sum over writers of -(grad) * pushes naming the tensor.
  uint64_t withB = 0;
  for (uint64_t i = 0; i < perWriter; ++i) withB += i % 3 != 0;
  std::vector<float> s = gvtest::snapshot(*store);
  int wrong = 0;
  for (size_t t = 0; t < 2; ++t) {
    const TensorInfo& ti = store->tensor(t);
    const uint64_t n = t == 0 ? perWriter : withB;
    for (size_t i = ti.offset; i < ti.offset + ti.size; ++i) {
      double want = 0;
      for (int w = 0; w < kWriters; ++w) want -= static_cast<double>(grad_for(w, i)) * static_cast<double>(n);
      if (s[i] != want && wrong++ < 3) CHECK_MSG(false, ti.name << " flat " << i << " = " << s[i] << ", expected " << want);
    }
  }
  CHECK_EQ(wrong, 0);
  CHECK_EQ(store->version(), kWriters * perWriter);
  std::printf("locked: %llu pushes, %llu snapshots, no torn stripe\n",
              static_cast<unsigned long long>(kWriters * perWriter), static_cast<unsigned long long>(snapshots.load()));
  return gvtest::finish("test_locked");
}
