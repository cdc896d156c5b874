// Mode 'atomic', default build vs GV_STRICT_ATOMICS: one push and one
// snapshot of a 10 M-float tensor on one thread, medians of --reps runs. The
// same source is built twice (gv_bench_strict_atomics against
// gradvault_core, gv_bench_strict_atomics_strict against
// gradvault_core_strict); bench/strict_atomics.js alternates the two
// processes and writes bench/results/strict-atomics.json.
//
// The default binary also times the snapshot copy kernels alone on the same
// 40 MB (update's copy and copy_stream against racy's copy_racy and
// copy_racy_stream): the racy ones must keep the plain ones' speed.
//
// Output: one JSON object on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/store.h"
#include "kernels/dispatch.h"

using namespace gv;
using Clock = std::chrono::steady_clock;

namespace {

#if defined(GV_STRICT_ATOMICS) && GV_STRICT_ATOMICS
constexpr const char* kBuild = "strict";
#else
constexpr const char* kBuild = "default";
#endif

template <class F>
double median_ms(int reps, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 10'000'000;
  int reps = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--floats")) n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  }
  StoreConfig c;
  c.mode = Mode::Atomic;
  c.optimizer.lr = 1e-3f;
  TensorSpec spec;
  spec.name = "w";
  spec.shape = {static_cast<int64_t>(n)};
  std::shared_ptr<Store> store;
  Status st = Store::create(c, {spec}, &store);
  if (!st.ok()) {
    std::fprintf(stderr, "Store::create: %s\n", st.message.c_str());
    return 1;
  }
  std::vector<float> g(n, 0.5f), out(store->padded_floats(), 0.f);
  Grad grad{0, g.data(), n};
  PushResult res;
  auto push = [&] {
    if (!store->push(&grad, 1, -1, &res).ok()) std::abort();
  };
  auto snap = [&] { store->snapshot(out.data()); };
  push(), snap();  // warm: page faults, caches
  const double pushMs = median_ms(reps, push), snapMs = median_ms(reps, snap);

  const kernels::Table& k = kernels::active();
  std::printf("{\"build\":\"%s\",\"isa\":\"%s\",\"floats\":%zu,\"reps\":%d,\"pushMs\":%.3f,\"snapshotMs\":%.3f", kBuild,
              k.name, n, reps, pushMs, snapMs);
  if (std::strcmp(kBuild, "default") == 0) {
    // The kernels alone, source and destination both 40 MB (out of cache).
    std::vector<float> src(n, 1.f), dst(n, 0.f);
    const struct {
      const char* name;
      void (*f)(float*, const float*, size_t);
    } kernels[] = {{"copy", k.copy}, {"copy_stream", k.copy_stream}, {"copy_racy", k.copy_racy},
                   {"copy_racy_stream", k.copy_racy_stream}};
    std::printf(",\"kernelMs\":{");
    for (size_t i = 0; i < std::size(kernels); ++i) {
      kernels[i].f(dst.data(), src.data(), n);
      std::printf("%s\"%s\":%.3f", i ? "," : "", kernels[i].name,
                  median_ms(reps, [&] { kernels[i].f(dst.data(), src.data(), n); }));
    }
    std::printf("}");
  }
  std::printf("}\n");
  return 0;
}
