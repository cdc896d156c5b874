// No push can make the store non-finite (issue 10, item 8): the ledger of
// magnitude.h lets ordinary pushes through untouched, refuses (and leaves
// the store bit-identical) a push whose step would overflow, and under
// threads racing into the limit the store ends finite with every push
// either applied whole or refused whole.
#include <cmath>
#include <thread>

#include "core/store/magnitude.h"
#include "check.h"

using namespace gv;
using kernels::OptKind;

namespace {

constexpr Mode kFloatModes[] = {Mode::Atomic, Mode::Locked, Mode::Versioned, Mode::Hogwild, Mode::Averaging};

std::shared_ptr<Store> make(Mode m, OptKind k, float lr, size_t n, float init = 0.f) {
  StoreConfig c;
  c.mode = m;
  c.optimizer.kind = k;
  c.optimizer.lr = lr;
  std::shared_ptr<Store> s;
  Status st = Store::create(c, {gvtest::tensor("w", {static_cast<int64_t>(n)}, std::vector<float>(n, init))}, &s);
  CHECK_MSG(st.ok(), st.message);
  return s;
}

std::vector<float> read(Store& s) {
  std::vector<float> out(s.padded_floats());
  s.snapshot(out.data());
  return out;
}

Status push(Store& s, const std::vector<float>& g, PushResult* r) {
  Grad gr{0, g.data(), g.size()};
  return s.push(&gr, 1, -1, r);
}

void overflow_is_refused() {
  for (Mode m : kFloatModes)
    for (OptKind k : {OptKind::Sgd, OptKind::Adagrad, OptKind::Rmsprop, OptKind::Adam}) {
      gvtest::Context ctx(std::string(mode_name(m)) + " optimizer " + std::to_string(static_cast<int>(k)));
      // sgd: the step itself overflows; the others: the square of the gradient
      const bool sgd = k == OptKind::Sgd;
      auto s = make(m, k, sgd ? (m == Mode::Averaging ? 2e29f : 1.f) : 0.1f, 37);
      std::vector<float> g(37, sgd ? (m == Mode::Averaging ? 1e9f : -3e38f) : (m == Mode::Averaging ? 1e9f : 1e20f));
      PushResult r;
      if (sgd) CHECK(push(*s, g, &r).ok());
      const std::vector<float> before = read(*s);
      const uint64_t v = s->version();
      Status st = push(*s, g, &r);
      if (m == Mode::Averaging && !sgd) {
        // 1e9 squared is finite: the averaging accumulator bounds |g| by 2^30
        CHECK(st.ok());
        continue;
      }
      CHECK_EQ(st.code, Code::NonFinite);
      CHECK_EQ(st.tensor, 0);
      const std::vector<float> after = read(*s);
      for (float x : after) CHECK(std::isfinite(x));
      if (m != Mode::Averaging) {  // averaging counts the discarded round's pushes
        CHECK(std::memcmp(before.data(), after.data(), before.size() * 4) == 0);
        CHECK_EQ(s->version(), v);
      }
    }
}

// Four threads push gradients of random size up to 8.5e37 at lr 1: values
// race towards FLT_MAX. Every push is applied or refused whole, the store
// ends finite, and the applied ones are counted exactly.
void racing_into_the_limit() {
  for (Mode m : {Mode::Atomic, Mode::Locked, Mode::Versioned}) {
    gvtest::Context ctx(mode_name(m));
    auto s = make(m, OptKind::Sgd, 1.f, 4096);
    std::atomic<uint64_t> applied{0}, refused{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&, t] {
        uint64_t x = 0x9E3779B97F4A7C15ull * (t + 1);
        std::vector<float> g(4096);
        for (int i = 0; i < 400; ++i) {
          x ^= x << 13, x ^= x >> 7, x ^= x << 17;
          const float mag = std::ldexp(1.f, static_cast<int>(x % 127));  // 1 .. 2^126 (~8.5e37)
          for (float& v : g) v = -mag;
          PushResult r;
          Status st = push(*s, g, &r);
          if (st.ok()) applied.fetch_add(1);
          else if (st.code == Code::NonFinite) refused.fetch_add(1);
          else CHECK_MSG(false, st.message);
        }
      });
    for (auto& t : ts) t.join();
    CHECK_EQ(applied.load() + refused.load(), uint64_t{1600});
    CHECK(refused.load() > 0);
    CHECK_EQ(s->version(), applied.load());
    for (float v : read(*s)) CHECK(std::isfinite(v));
  }
}

// The ledger itself: ordinary pushes reserve without reaching the limit; a
// huge one is refused and leaves the bounds as they were.
void ledger_bounds() {
  MagnitudeLedger l;
  kernels::StepArgs a;
  a.lr = 0.01f;
  l.reset(1.0, 0, 0);
  for (int i = 0; i < 100000; ++i) CHECK(l.reserve(a, 10.0));
  CHECK(!l.reserve(a, 1e300));
  CHECK(l.reserve(a, 10.0));
  a.weightDecay = 300.f;  // lr * wd > 2: parameters grow geometrically
  CHECK(!l.reserve(a, 0.0));
  kernels::StepArgs adam;
  adam.kind = OptKind::Adam;
  adam.lr = 1e-3f;
  l.reset(0, 0, 0);
  for (int i = 0; i < 100000; ++i) CHECK(l.reserve(adam, 1.0));
}

}  // namespace

int main() {
  ledger_bounds();
  overflow_is_refused();
  racing_into_the_limit();
  return gvtest::finish("test_magnitude");
}
