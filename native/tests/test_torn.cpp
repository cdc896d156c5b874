// Torn-element hunter for mode 'atomic''s lock-free snapshots, which read
// floats while a stripe's owner writes them (kernels/racy/README.md). The
// values written differ in every byte, so a float read as anything but one
// of them was torn: assembled from two stores.
//
// (a) Kernel level, for every instruction set this CPU runs: a writer
//     toggles an aligned buffer between two patterns with that ISA's store
//     kernels (copy, axpby) while readers copy it with its copy_racy and
//     copy_racy_stream, from vector-aligned and misaligned starts.
// (b) Store level, through push() and snapshot(): in mode 'atomic' (sgd,
//     lr = 1) each writer flips its own tensor between A and B with exact
//     gradients (A - B, B - A), while readers snapshot the whole store;
//     once above the streaming size (kStreamBytes) and once below it. With
//     GV_STRICT_ATOMICS (test_torn_strict) only this part runs.
//
// Reported per case: reads, elements checked, reads caught mid-write (both
// values in one copy: the readers really overlapped a writer) and torn
// elements, which must be 0. Sizes scale with GV_STRESS_SCALE.
#include <thread>

#include "check.h"
#include "kernels/dispatch.h"

using namespace gv;

namespace {

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Built against the strict core too (test_torn_strict), whose kernels are the same.
#if defined(GV_STRICT_ATOMICS) && GV_STRICT_ATOMICS
constexpr bool kStrict = true;
#else
constexpr bool kStrict = false;
#endif

// Kernel level: two finite patterns that differ in every byte.
constexpr uint32_t kPatA = 0x12345678u, kPatB = 0x6DCBA987u;
// Store level: differ in every byte too, and B/2 <= A <= 2B, so A - B is
// exact (Sterbenz) and so are A - (A - B) = B and B - (B - A) = A.
constexpr uint32_t kStoreA = 0x3FABCDEFu, kStoreB = 0x40123456u;  // about 1.342 and 2.284

struct Tally {
  std::atomic<uint64_t> reads{0}, elements{0}, midWrite{0}, torn{0};
  void print(const char* what) const {
    std::printf("%-36s reads %10" PRIu64 "  elements %14" PRIu64 "  caught mid-write %8" PRIu64 "  torn %" PRIu64 "\n",
                what, reads.load(), elements.load(), midWrite.load(), torn.load());
  }
};

// Checks one copy: every element is a or b. Returns whether it held both.
bool check_copy(const float* x, size_t n, uint32_t a, uint32_t b, size_t at, Tally& t) {
  size_t na = 0, nb = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t w = bits_of(x[i]);
    if (w == a) ++na;
    else if (w == b) ++nb;
    else if (t.torn.fetch_add(1, std::memory_order_relaxed) < 5)
      std::fprintf(stderr, "torn element at %zu: 0x%08x (expected 0x%08x or 0x%08x)\n", at + i, w, a, b);
  }
  t.elements.fetch_add(n, std::memory_order_relaxed);
  return na > 0 && nb > 0;
}

struct AlignedBuffer {
  float* p;
  explicit AlignedBuffer(size_t n) : p(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))) {}
  ~AlignedBuffer() { std::free(p); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
};

void hunt_kernels(const kernels::Table& k, int readers) {
  // 2^20 floats (4 MiB = kStreamBytes): a buffer the size at which the
  // store switches to the streaming copy, and far larger than L2.
  constexpr size_t kN = size_t{1} << 20;
  const uint64_t toggles = gvtest::scaled(800, 40);
  AlignedBuffer buf(kN), patA(kN), patB(kN);
  for (size_t i = 0; i < kN; ++i) buf.p[i] = patA.p[i] = from_bits(kPatA), patB.p[i] = from_bits(kPatB);

  Tally t;
  std::atomic<bool> done{false};
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < readers; ++r)
    threads.emplace_back([&, r] {
      AlignedBuffer out(kN);
      started.fetch_add(1);
      for (uint64_t i = 0; !done.load(std::memory_order_acquire); ++i) {
        // Starts 0..15 floats in: vector-aligned and not; the two kernels in turn.
        const size_t from = (i * 7 + r) % 16, n = kN - from - i % 5;
        (i % 2 ? k.copy_racy_stream : k.copy_racy)(out.p, buf.p + from, n);
        t.reads.fetch_add(1, std::memory_order_relaxed);
        if (check_copy(out.p, n, kPatA, kPatB, from, t)) t.midWrite.fetch_add(1, std::memory_order_relaxed);
      }
    });
  while (started.load() < readers) std::this_thread::yield();
  // The writer: the plain SIMD stores of this ISA's copy and of axpby (0 * buf + 1 * pattern).
  for (uint64_t i = 0; i < toggles; ++i) {
    const float* pat = i % 2 ? patA.p : patB.p;
    if (i % 4 < 2) k.copy(buf.p, pat, kN);
    else k.axpby(buf.p, buf.p, pat, 1.f, 0.f, kN);
  }
  done.store(true, std::memory_order_release);
  for (auto& th : threads) th.join();

  char what[64];
  std::snprintf(what, sizeof what, "kernels %s", k.name);
  t.print(what);
  CHECK_EQ(t.torn.load(), 0u);
  CHECK(t.reads.load() > 0);
}

void hunt_store(size_t tensorFloats, int writers, int readers) {
  StoreConfig c;
  c.mode = Mode::Atomic;
  c.optimizer.lr = 1.f;
  std::vector<TensorSpec> specs;
  for (int w = 0; w < writers; ++w) {
    std::string name = "W";
    name.push_back(static_cast<char>('0' + w));  // not "W" + to_string(w): a GCC 12 -Wrestrict false positive
    specs.push_back(gvtest::tensor(name, {static_cast<int64_t>(tensorFloats)},
                                   std::vector<float>(tensorFloats, from_bits(kStoreA))));
  }
  auto store = gvtest::make_store(c, std::move(specs));
  const uint64_t pushes = gvtest::scaled(1000, 40);
  const float a = from_bits(kStoreA), b = from_bits(kStoreB);
  // Exact in both directions (see kStoreA): the flips below really reach B and A.
  CHECK(bits_of(a - (a - b)) == kStoreB && bits_of(b - (b - a)) == kStoreA);

  Tally t;
  std::atomic<int> running{writers};
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < readers; ++r)
    threads.emplace_back([&] {
      std::vector<float> s(store->padded_floats());
      started.fetch_add(1);
      while (running.load(std::memory_order_acquire) > 0) {
        store->snapshot(s.data());
        t.reads.fetch_add(1, std::memory_order_relaxed);
        bool mixed = false;
        for (size_t k = 0; k < store->tensor_count(); ++k) {
          const TensorInfo& ti = store->tensor(k);
          mixed |= check_copy(s.data() + ti.offset, ti.size, kStoreA, kStoreB, ti.offset, t);
        }
        if (mixed) t.midWrite.fetch_add(1, std::memory_order_relaxed);
      }
    });
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      // Writer w owns tensor w: A -> B with gradient A - B, B -> A with B - A.
      const std::vector<float> toB(tensorFloats, a - b), toA(tensorFloats, b - a);
      while (started.load() < readers) std::this_thread::yield();
      for (uint64_t i = 0; i < pushes; ++i) {
        Grad g{static_cast<uint32_t>(w), i % 2 ? toA.data() : toB.data(), tensorFloats};
        PushResult res;
        CHECK_OK(store->push(&g, 1, -1, &res));
      }
      running.fetch_sub(1, std::memory_order_release);
    });
  for (auto& th : threads) th.join();

  // An even number of flips per tensor: every element is A again.
  const auto last = gvtest::snapshot(*store);
  for (int w = 0; w < writers; ++w) {
    const TensorInfo& ti = store->tensor(w);
    size_t wrong = 0;
    for (size_t i = ti.offset; i < ti.offset + ti.size; ++i) wrong += bits_of(last[i]) != (pushes % 2 ? kStoreB : kStoreA);
    CHECK_EQ(wrong, 0u);
  }
  char what[64];
  std::snprintf(what, sizeof what, "store %s %s %zu floats", kStrict ? "strict" : "default", kernels::active().name,
                store->padded_floats());
  t.print(what);
  CHECK_EQ(t.torn.load(), 0u);
  CHECK(t.reads.load() > 0);
}

}  // namespace

int main() {
  CHECK(std::isfinite(from_bits(kPatA)) && std::isfinite(from_bits(kPatB)));
  CHECK(std::isfinite(from_bits(kStoreA)) && std::isfinite(from_bits(kStoreB)));
  for (uint32_t shift = 0; shift < 32; shift += 8) {  // every byte differs
    CHECK(((kPatA >> shift) & 0xff) != ((kPatB >> shift) & 0xff));
    CHECK(((kStoreA >> shift) & 0xff) != ((kStoreB >> shift) & 0xff));
  }
  const unsigned hw = std::thread::hardware_concurrency();
  const int readers = hw > 2 ? static_cast<int>(hw - 1) : 2;
  // The kernels do not depend on the store's build: the strict binary skips them.
  for (kernels::Isa isa : {kernels::Isa::Scalar, kernels::Isa::Avx2, kernels::Isa::Avx512, kernels::Isa::Neon})
    if (const kernels::Table* k = kernels::table_for(isa); k && !kStrict) hunt_kernels(*k, readers);
  // 2 x 600,000 floats (4.8 MB, the streaming copy) and 2 x 100,000 (the plain one).
  hunt_store(600000, 2, readers);
  hunt_store(100000, 2, readers);
  return gvtest::finish("test_torn");
}
