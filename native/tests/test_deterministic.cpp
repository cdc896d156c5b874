// Mode 'deterministic': the same multiset of pushes gives the same bytes on
// 1, 2, 4 or 8 threads and in any order; with weight decay the increment of a
// push depends on the anchor (the parameters at the last sync()), so between
// syncs order still does not matter, and sync() moves the anchor.
#include <algorithm>
#include <random>
#include <thread>

#include "check.h"

using namespace gv;

namespace {

constexpr int64_t kSizeW = 37, kSizeB = 5;  // odd sizes: no kernel width divides them

struct Push {
  std::vector<float> w, b;  // b empty: the push names W only
};

// Random gradients with magnitudes from 2^-20 to 2^8, both signs, some zeros.
std::vector<Push> make_pushes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> e(-20, 8);
  auto value = [&] { return rng() % 16 == 0 ? 0.f : std::ldexp(u(rng), e(rng)); };
  std::vector<Push> v(n);
  for (Push& p : v) {
    p.w.resize(kSizeW);
    for (float& x : p.w) x = value();
    if (rng() % 3) {
      p.b.resize(kSizeB);
      for (float& x : p.b) x = value();
    }
  }
  return v;
}

StoreConfig config(float wd) {
  StoreConfig c;
  c.mode = Mode::Deterministic;
  c.optimizer.lr = 0.01f;
  c.optimizer.weightDecay = wd;
  c.seed = 7;
  return c;
}

std::shared_ptr<Store> fresh(float wd) {
  TensorSpec w = gvtest::tensor("W", {kSizeW});
  w.init = InitKind::Normal;
  w.std = 0.5f;
  TensorSpec b = gvtest::tensor("b", {kSizeB});
  b.init = InitKind::Normal;
  b.std = 0.25f;
  return gvtest::make_store(config(wd), {w, b});
}

// Applies pushes[order[i]] for all i on `threads` threads (thread k takes
// every threads-th entry of order).
void apply(Store& s, const std::vector<Push>& pushes, const std::vector<size_t>& order, int threads) {
  auto work = [&](int k) {
    for (size_t i = k; i < order.size(); i += threads) {
      const Push& p = pushes[order[i]];
      Grad g[2] = {{0, p.w.data(), p.w.size()}, {1, p.b.data(), p.b.size()}};
      PushResult r;
      CHECK_OK(s.push(g, p.b.empty() ? 1 : 2, -1, &r));
      CHECK(r.applied);
    }
  };
  if (threads == 1) {
    work(0);
    return;
  }
  std::vector<std::thread> ts;
  for (int k = 0; k < threads; ++k) ts.emplace_back(work, k);
  for (auto& t : ts) t.join();
}

std::vector<size_t> shuffled(size_t n, uint64_t seed) {
  std::vector<size_t> o(n);
  for (size_t i = 0; i < n; ++i) o[i] = i;
  if (seed) std::shuffle(o.begin(), o.end(), std::mt19937_64(seed));
  return o;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Phases of pushes separated by sync(); each run applies every phase with
// its own thread count and order. Returns the final snapshot.
std::vector<float> run(float wd, const std::vector<std::vector<Push>>& phases, int threads, uint64_t orderSeed) {
  auto s = fresh(wd);
  uint64_t pushes = 0;
  for (size_t ph = 0; ph < phases.size(); ++ph) {
    apply(*s, phases[ph], shuffled(phases[ph].size(), orderSeed ? orderSeed + ph : 0), threads);
    pushes += phases[ph].size();
    if (ph + 1 < phases.size()) CHECK_OK(s->sync());
  }
  uint64_t v = 0;
  std::vector<float> snap = gvtest::snapshot(*s, &v);
  CHECK_EQ(v, pushes);
  CHECK_EQ(s->stats().rounds, phases.size() - 1);
  return snap;
}

// The result in double precision: p -= lr * (g + wd * anchor) per push, the
// anchor being the parameters at the last sync (the initial ones first).
std::vector<double> reference(float wd, const std::vector<std::vector<Push>>& phases) {
  auto s = fresh(wd);
  std::vector<float> init = gvtest::snapshot(*s);
  std::vector<double> p(init.begin(), init.end());
  const double lr = 0.01f;
  for (const auto& phase : phases) {
    // The anchor is the stored parameters, read back as float.
    std::vector<double> anchor(p.size());
    for (size_t i = 0; i < p.size(); ++i) anchor[i] = static_cast<float>(p[i]);
    for (const Push& push : phase) {
      for (int64_t i = 0; i < kSizeW; ++i) p[i] -= lr * (push.w[i] + wd * anchor[i]);
      if (!push.b.empty())
        for (int64_t i = 0; i < kSizeB; ++i) p[s->tensor(1).offset + i] -= lr * (push.b[i] + wd * anchor[s->tensor(1).offset + i]);
    }
  }
  return p;
}

void check_close(const std::vector<float>& got, const std::vector<double>& want, size_t pushes, const Store& layout) {
  // Each push rounds once to 2^-32 (Q32.32), the final conversion once to float.
  for (size_t t = 0; t < layout.tensor_count(); ++t) {
    const TensorInfo& ti = layout.tensor(t);
    for (size_t i = 0; i < ti.size; ++i) {
      double w = want[ti.offset + i], g = got[ti.offset + i];
      double tol = static_cast<double>(pushes) * 0x1p-32 + std::fabs(w) * 0x1p-23 + 1e-30;
      CHECK_MSG(std::fabs(g - w) <= tol, ti.name << "[" << i << "] = " << g << ", double reference " << w);
    }
  }
}

void determinism(float wd, const std::vector<std::vector<Push>>& phases) {
  gvtest::Context ctx("weightDecay=" + std::to_string(wd));
  const std::vector<float> base = run(wd, phases, 1, 0);
  size_t total = 0;
  for (auto& ph : phases) total += ph.size();
  auto layout = fresh(wd);
  check_close(base, reference(wd, phases), total, *layout);
  int runs = 0;
  for (int threads : {1, 2, 4, 8})
    for (uint64_t seed : {0ull, 11ull, 12345ull}) {
      gvtest::Context c2("weightDecay=" + std::to_string(wd) + " threads=" + std::to_string(threads) +
                         " order seed=" + std::to_string(seed));
      std::vector<float> got = run(wd, phases, threads, seed);
      CHECK_MSG(same_bytes(got, base), "snapshot bytes differ from the 1-thread in-order run");
      ++runs;
    }
  std::printf("weightDecay %-5g %d runs over %zu pushes in %zu phases: identical bytes\n", wd, runs, total,
              phases.size());
}

// With weight decay and no sync, the anchor stays put: pushing a zero
// gradient twice moves every parameter by exactly twice the move of once.
void anchor_semantics() {
  gvtest::Context ctx("anchor");
  auto once = fresh(0.1f), twice = fresh(0.1f);
  std::vector<float> init = gvtest::snapshot(*once);
  std::vector<float> zw(kSizeW, 0.f);
  Grad g{0, zw.data(), zw.size()};
  PushResult r;
  CHECK_OK(once->push(&g, 1, -1, &r));
  CHECK_OK(twice->push(&g, 1, -1, &r));
  CHECK_OK(twice->push(&g, 1, -1, &r));
  std::vector<float> s1 = gvtest::snapshot(*once), s2 = gvtest::snapshot(*twice);
  for (int64_t i = 0; i < kSizeW; ++i) {
    double m1 = static_cast<double>(s1[i]) - init[i], m2 = static_cast<double>(s2[i]) - init[i];
    CHECK_MSG(std::fabs(m2 - 2 * m1) <= 4 * 0x1p-32 + std::fabs(init[i]) * 0x1p-22,
              "W[" << i << "]: moves " << m1 << " then " << m2 << " (anchor moved without sync?)");
    // And the move is -lr * wd * p0.
    CHECK(std::fabs(m1 - (-0.01 * 0.1 * init[i])) <= 2 * 0x1p-32 + std::fabs(init[i]) * 0x1p-23);
  }
  // After sync() the anchor is the current parameters: the next decay step
  // uses them, so it differs from a store that did not sync.
  auto synced = fresh(0.1f);
  CHECK_OK(synced->push(&g, 1, -1, &r));
  CHECK_OK(synced->sync());
  CHECK_OK(synced->push(&g, 1, -1, &r));
  std::vector<float> s3 = gvtest::snapshot(*synced);
  bool differs = false;
  for (int64_t i = 0; i < kSizeW; ++i) differs = differs || s3[i] != s2[i];
  CHECK_MSG(differs, "sync() did not refresh the weight decay anchor");
}

}  // namespace

int main() {
  const size_t n = gvtest::scaled(24000, 300);
  // Without weight decay one phase is the whole story; a sync() in the
  // middle must not change anything either.
  auto p1 = make_pushes(n, 1);
  determinism(0.f, {p1});
  determinism(0.f, {make_pushes(n / 2, 2), make_pushes(n / 2, 3)});
  // With weight decay: three phases, two syncs.
  determinism(0.05f, {make_pushes(n / 3, 4), make_pushes(n / 3, 5), make_pushes(n / 3, 6)});
  anchor_semantics();
  return gvtest::finish("test_deterministic");
}
