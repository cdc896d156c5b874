// gv_bench_kernels: the model kernels (native/kernels/ README.md) on every
// instruction set this CPU supports, scalar beside SIMD, in one process.
// Each case is timed in `--reps` rounds (default 15) of about 2 ms each,
// rounds of every instruction set interleaved (the machine is noisy); the
// table shows medians, the throughput (GFLOP/s for dense kernels, counting a
// multiply-add as 2 flops; Melem/s for the others) and the speedup over
// scalar. Shapes are the ones the models run: MLP 784-128-10 at batch 32,
// softmax over 10 classes, sparse rows of ~75 nonzeros out of 47,236.
//
//   cmake --build <dir> --target gv_bench_kernels && <dir>/gv_bench_kernels [--reps N] [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#if defined(__x86_64__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/sparse/avx2.h"
#include "kernels/sparse/avx512.h"
#pragma GCC diagnostic pop
#endif

using namespace gv::kernels;

namespace {

using Clock = std::chrono::steady_clock;
volatile float g_sink;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Case {
  std::string name;
  std::string unit;  // "GFLOP/s" or "Melem/s"
  double work;       // flops or elements per call
  // One call of the kernel for a table (or a named variant).
  std::vector<std::pair<std::string, std::function<void()>>> runs;
};

std::vector<float> randv(size_t n, std::mt19937_64& rng, float s = 1.f) {
  std::uniform_real_distribution<float> u(-s, s);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 15;
  double roundSec = 2e-3;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--quick")) reps = 3, roundSec = 2e-4;
    else {
      std::printf("usage: gv_bench_kernels [--reps N] [--quick]\n");
      return std::strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  std::vector<const Table*> tables;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon})
    if (const Table* t = table_for(isa)) tables.push_back(t);

  std::mt19937_64 rng(1);
  // Shapes: MLP 784-128-10, batch 32.
  const size_t B = 32, In = 784, H = 128;
  auto X = randv(B * In, rng), W1 = randv(H * In, rng), dH = randv(B * H, rng), C = randv(B * In, rng),
       dW = randv(H * In, rng), Hout = randv(B * H, rng);
  auto x1 = randv(4096, rng), y1 = randv(4096, rng), big1 = randv(1 << 20, rng), big2 = randv(1 << 20, rng);
  auto logits = randv(B * 10, rng, 5.f), grad = randv(B * 10, rng), out = randv(4096, rng);
  std::vector<float> yl(4096);
  for (auto& v : yl) v = rng() % 2 ? 1.f : -1.f;
  std::vector<uint32_t> labels(B);
  for (auto& l : labels) l = static_cast<uint32_t>(rng() % 10);
  const size_t dim = 47236, nnz = 75;
  auto dense = randv(dim, rng), vals = randv(nnz, rng);
  std::vector<uint32_t> idx(nnz);
  {  // power-law-ish: half the nonzeros among the first 1,000 features
    std::uniform_int_distribution<uint32_t> hot(0, 999), all(0, dim - 1);
    for (size_t i = 0; i < nnz; ++i) idx[i] = i % 2 ? hot(rng) : all(rng);
    std::sort(idx.begin(), idx.end());
  }

  std::vector<Case> cases;
  auto add = [&](std::string name, std::string unit, double work, std::function<void(const Table&)> f) {
    Case c{name, unit, work, {}};
    for (const Table* t : tables) c.runs.push_back({t->name, [f, t] { f(*t); }});
    cases.push_back(std::move(c));
    return &cases.back();
  };
  add("dot n=4096 (L1)", "GFLOP/s", 2.0 * 4096, [&](const Table& t) { g_sink = t.dot(x1.data(), y1.data(), 4096); });
  add("dot n=1M (DRAM)", "GFLOP/s", 2.0 * (1 << 20),
      [&](const Table& t) { g_sink = t.dot(big1.data(), big2.data(), 1 << 20); });
  add("gemv 128x784 (W1 x)", "GFLOP/s", 2.0 * H * In,
      [&](const Table& t) { t.gemv(W1.data(), In, X.data(), Hout.data(), H, In, 1.f, 0.f); });
  add("gemv_t 128x784 (W1^T d)", "GFLOP/s", 2.0 * H * In,
      [&](const Table& t) { t.gemv_t(W1.data(), In, dH.data(), C.data(), H, In, 1.f, 0.f); });
  add("gemm NT 32x128x784 (fwd X W1^T)", "GFLOP/s", 2.0 * B * H * In, [&](const Table& t) {
    t.gemm(false, true, B, H, In, 1.f, X.data(), In, W1.data(), In, Hout.data(), H);
  });
  add("gemm NN 32x784x128 (dX = dH W1)", "GFLOP/s", 2.0 * B * H * In, [&](const Table& t) {
    t.gemm(false, false, B, In, H, 1.f, dH.data(), H, W1.data(), In, C.data(), In);
  });
  add("gemm TN 128x784x32 (dW = dH^T X)", "GFLOP/s", 2.0 * B * H * In, [&](const Table& t) {
    t.gemm(true, false, H, In, B, 1.f, dH.data(), H, X.data(), In, dW.data(), In);
  });
  Case* sd = add("sparse_dot nnz=75 (table)", "Melem/s", nnz,
                 [&](const Table& t) { g_sink = t.sparse_dot(vals.data(), idx.data(), nnz, dense.data()); });
#if defined(__x86_64__)
  if (isa_supported(Isa::Avx2)) {
    sd->runs.push_back({"avx2 gather", [&] { g_sink = avx2::sparse_dot_gather(vals.data(), idx.data(), nnz, dense.data()); }});
    sd->runs.push_back({"avx2 unrolled", [&] { g_sink = avx2::sparse_dot_unrolled(vals.data(), idx.data(), nnz, dense.data()); }});
  }
  if (isa_supported(Isa::Avx512))
    sd->runs.push_back({"avx512 gather", [&] { g_sink = avx512::sparse_dot_gather(vals.data(), idx.data(), nnz, dense.data()); }});
#endif
  add("sparse_axpy nnz=75", "Melem/s", nnz,
      [&](const Table& t) { t.sparse_axpy(dense.data(), idx.data(), vals.data(), nnz, 1e-7f); });
  add("softmax_xent_batch 32x10", "Melem/s", B * 10.0,
      [&](const Table& t) { g_sink = (float)t.softmax_xent_batch(logits.data(), B, 10, labels.data(), grad.data()); });
  add("softmax_xent k=1000", "Melem/s", 1000,
      [&](const Table& t) { g_sink = t.softmax_xent(big1.data(), 1000, 7, out.data()); });
  add("sigmoid n=4096", "Melem/s", 4096, [&](const Table& t) { t.sigmoid(out.data(), x1.data(), 4096); });
  add("logloss n=4096", "Melem/s", 4096,
      [&](const Table& t) { g_sink = t.logloss(x1.data(), yl.data(), out.data(), 4096); });
  add("relu n=4096", "Melem/s", 4096, [&](const Table& t) { t.relu(out.data(), x1.data(), 4096); });
  add("relu_backward n=4096", "Melem/s", 4096, [&](const Table& t) { t.relu_backward(out.data(), x1.data(), 4096); });

  std::printf("gv_bench_kernels: %d rounds per case, medians; speedup = time(scalar) / time\n\n", reps);
  std::printf("| kernel | variant | ns/call | throughput | speedup |\n| --- | --- | ---: | ---: | ---: |\n");
  for (Case& c : cases) {
    // Calls per round, from a calibration of the slowest variant (scalar).
    size_t iters = 1;
    for (;;) {
      auto t0 = Clock::now();
      for (size_t i = 0; i < iters; ++i) c.runs[0].second();
      if (std::chrono::duration<double>(Clock::now() - t0).count() > roundSec || iters > (1u << 26)) break;
      iters *= 2;
    }
    std::vector<std::vector<double>> ns(c.runs.size());
    for (int r = 0; r < reps; ++r)
      for (size_t v = 0; v < c.runs.size(); ++v) {
        auto t0 = Clock::now();
        for (size_t i = 0; i < iters; ++i) c.runs[v].second();
        ns[v].push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters);
      }
    const double base = median(ns[0]);
    for (size_t v = 0; v < c.runs.size(); ++v) {
      const double m = median(ns[v]);
      const double thr = c.unit == "GFLOP/s" ? c.work / m : c.work / m * 1e3;
      std::printf("| %s | %s | %.1f | %.2f %s | %.2fx |\n", c.name.c_str(), c.runs[v].first.c_str(), m, thr,
                  c.unit.c_str(), base / m);
    }
  }
  return 0;
}
