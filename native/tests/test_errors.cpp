// Bad input never damages the store (docs/ARCHITECTURE.md, invariants): every refused
// configuration names its field; every refused push returns its code and
// leaves the store bit-identical (snapshot bytes, version, counters).
// Staleness bounds and policies, basedOn validation, deterministic overflow.
#include "check.h"

using namespace gv;
using kernels::OptKind;

namespace {

StoreConfig base(Mode m = Mode::Atomic) {
  StoreConfig c;
  c.mode = m;
  c.optimizer.lr = 0.5f;
  return c;
}

std::vector<TensorSpec> two_tensors() {
  TensorSpec w = gvtest::tensor("W", {4, 5});
  w.init = InitKind::Glorot;
  TensorSpec b = gvtest::tensor("b", {7}, {1, 2, 3, 4, 5, 6, 7});
  return {w, b};
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// ---------------------------------------------------------------- config

void expect_config(const std::string& field, const StoreConfig& c, std::vector<TensorSpec> t) {
  gvtest::Context ctx("config " + field);
  std::shared_ptr<Store> s;
  Status st = Store::create(c, std::move(t), &s);
  CHECK_EQ(st.code, Code::Config);
  CHECK_EQ(st.field, field);
  CHECK_MSG(st.message.find(field) != std::string::npos, "message '" << st.message << "' does not name the field");
  CHECK(s == nullptr);
  CHECK_EQ(std::string(code_name(st.code)), std::string("ERR_CONFIG"));
}

template <class F>
void bad_optimizer(const std::string& field, F edit, Mode m = Mode::Atomic) {
  StoreConfig c = base(m);
  edit(c);
  expect_config(field, c, two_tensors());
}

void config_errors() {
  bad_optimizer("optimizer.lr", [](StoreConfig& c) { c.optimizer.lr = 0.f; });
  bad_optimizer("optimizer.lr", [](StoreConfig& c) { c.optimizer.lr = -1.f; });
  bad_optimizer("optimizer.lr", [](StoreConfig& c) { c.optimizer.lr = NAN; });
  bad_optimizer("optimizer.lr", [](StoreConfig& c) { c.optimizer.lr = INFINITY; });
  bad_optimizer("optimizer.momentum", [](StoreConfig& c) { c.optimizer.momentum = 1.f; });
  bad_optimizer("optimizer.momentum", [](StoreConfig& c) { c.optimizer.momentum = -0.1f; });
  bad_optimizer("optimizer.momentum", [](StoreConfig& c) { c.optimizer.momentum = NAN; });
  bad_optimizer("optimizer.weightDecay", [](StoreConfig& c) { c.optimizer.weightDecay = -1e-3f; });
  bad_optimizer("optimizer.weightDecay", [](StoreConfig& c) { c.optimizer.weightDecay = INFINITY; });
  bad_optimizer("optimizer.beta1", [](StoreConfig& c) { c.optimizer.kind = OptKind::Adam; c.optimizer.beta1 = 1.f; });
  bad_optimizer("optimizer.beta2", [](StoreConfig& c) { c.optimizer.kind = OptKind::Adam; c.optimizer.beta2 = -0.5f; });
  bad_optimizer("optimizer.alpha", [](StoreConfig& c) { c.optimizer.kind = OptKind::Rmsprop; c.optimizer.alpha = 1.f; });
  bad_optimizer("optimizer.eps", [](StoreConfig& c) { c.optimizer.eps = 0.f; });
  bad_optimizer("optimizer.nesterov", [](StoreConfig& c) { c.optimizer.nesterov = true; });
  // deterministic refuses stateful optimizers and decoupled decay.
  bad_optimizer("optimizer", [](StoreConfig& c) { c.optimizer.kind = OptKind::Adam; }, Mode::Deterministic);
  bad_optimizer("optimizer", [](StoreConfig& c) { c.optimizer.kind = OptKind::Adagrad; }, Mode::Deterministic);
  bad_optimizer("optimizer", [](StoreConfig& c) { c.optimizer.kind = OptKind::Rmsprop; }, Mode::Deterministic);
  bad_optimizer("optimizer", [](StoreConfig& c) { c.optimizer.momentum = 0.9f; }, Mode::Deterministic);
  bad_optimizer("optimizer.decoupled", [](StoreConfig& c) { c.optimizer.weightDecay = 0.1f; c.optimizer.decoupled = true; },
                Mode::Deterministic);
  // averaging: no staleness control, at least one push per round.
  bad_optimizer("staleness", [](StoreConfig& c) { c.stalePolicy = StalePolicy::Reject; }, Mode::Averaging);
  bad_optimizer("staleness", [](StoreConfig& c) { c.staleBound = 3; }, Mode::Averaging);
  bad_optimizer("syncEvery", [](StoreConfig& c) { c.syncEvery = 0; }, Mode::Averaging);
  bad_optimizer("shardFloats", [](StoreConfig& c) { c.shardFloats = 0; }, Mode::Locked);
  bad_optimizer("shardFloats", [](StoreConfig& c) { c.shardFloats = 8; }, Mode::Locked);
  bad_optimizer("shardFloats", [](StoreConfig& c) { c.shardFloats = 24; }, Mode::Hogwild);

  expect_config("tensors", base(), {});
  expect_config("tensors", base(), {gvtest::tensor("", {3})});
  expect_config("tensors.W", base(), {gvtest::tensor("W", {3}), gvtest::tensor("W", {2})});
  expect_config("tensors.W.shape", base(), {gvtest::tensor("W", {3, -1})});
  expect_config("tensors.W.shape", base(), {gvtest::tensor("W", {100000, 100000})});
  expect_config("tensors.W.init", base(), {gvtest::tensor("W", {3}, {1.f, 2.f})});
  TensorSpec n = gvtest::tensor("W", {3});
  n.init = InitKind::Normal;
  n.std = -1.f;
  expect_config("tensors.W.std", base(), {n});
  // Initial values must be finite (a NaN would poison every later step).
  expect_config("tensors.W.init", base(), {gvtest::tensor("W", {3}, {1.f, NAN, 2.f})});
  expect_config("tensors.W.init", base(Mode::Versioned), {gvtest::tensor("W", {2}, {INFINITY, 2.f})});
  // deterministic holds parameters in Q32.32: initial values beyond its range are refused.
  expect_config("tensors.W.init", base(Mode::Deterministic), {gvtest::tensor("W", {2}, {1.f, 3e9f})});

  // Valid edge cases are accepted: a scalar (empty shape) and an empty tensor.
  std::shared_ptr<Store> s;
  CHECK_OK(Store::create(base(), {gvtest::tensor("s", {}), gvtest::tensor("e", {0, 3})}, &s));
  if (s) {
    CHECK_EQ(s->tensor(0).size, 1u);
    CHECK_EQ(s->tensor(1).size, 0u);
  }
}

// ---------------------------------------------------------------- pushes

struct Unchanged {
  Store& s;
  std::vector<float> before;
  uint64_t version;
  Stats stats;
  explicit Unchanged(Store& st) : s(st), before(gvtest::snapshot(st)), version(st.version()), stats(st.stats()) {}
  void check(const char* what) {
    gvtest::Context ctx(std::string(mode_name(s.mode())) + ": " + what);
    std::vector<float> after = gvtest::snapshot(s);
    CHECK_MSG(same_bytes(before, after), "the store changed");
    CHECK_EQ(s.version(), version);
    Stats now = s.stats();
    CHECK_EQ(now.pushes, stats.pushes);
    CHECK_EQ(now.rounds, stats.rounds);
    CHECK_EQ(now.pending, stats.pending);
  }
};

void push_errors(Mode m) {
  StoreConfig c = base(m);
  if (m == Mode::Averaging) c.syncEvery = 2;
  auto s = gvtest::make_store(c, two_tensors());
  std::vector<float> gw(20, 0.25f), gb(7, -0.5f), shortb(6, 1.f);
  PushResult r;
  // One good push first, so the state is not just the initial one.
  Grad good[2] = {{0, gw.data(), 20}, {1, gb.data(), 7}};
  CHECK_OK(s->push(good, 2, -1, &r));

  {
    Unchanged u(*s);
    Grad g[2] = {{0, gw.data(), 20}, {1, shortb.data(), 6}};
    Status st = s->push(g, 2, -1, &r);
    CHECK_EQ(st.code, Code::Shape);
    CHECK_EQ(st.tensor, 1);
    CHECK(!r.applied);
    CHECK(st.message.find("'b'") != std::string::npos);
    u.check("wrong size");
  }
  {
    Unchanged u(*s);
    Grad g[1] = {{2, gb.data(), 7}};
    CHECK_EQ(s->push(g, 1, -1, &r).code, Code::InvalidArgument);
    Grad dup[2] = {{1, gb.data(), 7}, {1, gb.data(), 7}};
    Status st = s->push(dup, 2, -1, &r);
    CHECK_EQ(st.code, Code::InvalidArgument);
    CHECK_EQ(st.field, std::string("grads"));
    u.check("unknown or repeated tensor");
  }
  // Non-finite values anywhere in any gradient of the push: nothing applied,
  // even for the gradients before the bad one.
  const float bads[] = {NAN, INFINITY, -INFINITY};
  for (float bad : bads)
    for (size_t at : {size_t(0), size_t(5), size_t(6)}) {
      Unchanged u(*s);
      std::vector<float> gbad = gb;
      gbad[at] = bad;
      Grad g[2] = {{0, gw.data(), 20}, {1, gbad.data(), 7}};
      Status st = s->push(g, 2, -1, &r);
      CHECK_EQ(st.code, Code::NonFinite);
      CHECK_EQ(st.tensor, 1);
      CHECK_EQ(st.index, static_cast<int64_t>(at));
      CHECK(!r.applied);
      CHECK_EQ(std::string(code_name(st.code)), std::string("ERR_NON_FINITE"));
      u.check("non-finite gradient");
    }
  // basedOn ahead of the store's version.
  {
    Unchanged u(*s);
    Status st = s->push(good, 2, static_cast<int64_t>(s->version() + 1), &r);
    CHECK_EQ(st.code, Code::InvalidArgument);
    CHECK_EQ(st.field, std::string("basedOn"));
    u.check("basedOn ahead");
  }
}

void non_finite_skip() {
  for (Mode m : gvtest::kAllModes) {
    gvtest::Context ctx(std::string("skip in ") + mode_name(m));
    StoreConfig c = base(m);
    c.nonFinite = NonFinitePolicy::Skip;
    auto s = gvtest::make_store(c, two_tensors());
    std::vector<float> gw(20, 1.f), gb(7, 1.f);
    gw[13] = NAN;
    Grad g[2] = {{0, gw.data(), 20}, {1, gb.data(), 7}};
    Unchanged u(*s);
    PushResult r;
    for (int i = 0; i < 3; ++i) {
      CHECK_OK(s->push(g, 2, -1, &r));
      CHECK(!r.applied);
      CHECK_EQ(r.reason, SkipReason::NonFinite);
    }
    CHECK_EQ(s->stats().skippedNonFinite, 3u);
    u.check("skipped non-finite");
  }
}

// ---------------------------------------------------------------- staleness

void staleness() {
  // (deterministic refuses every policy but 'accept' without a bound:
  // test_concurrency; it measures staleness as the others do.)
  for (Mode m : {Mode::Atomic, Mode::Locked, Mode::Versioned, Mode::Deterministic, Mode::Hogwild}) {
    const bool det = m == Mode::Deterministic;
    // A bound: pushes staler than it are rejected (counted) under any policy.
    for (StalePolicy policy : {StalePolicy::Accept, StalePolicy::Scale, StalePolicy::Reject}) {
      if (det) break;
      gvtest::Context ctx(std::string("staleness bound in ") + mode_name(m) + " policy " +
                          std::to_string(static_cast<int>(policy)));
      StoreConfig c = base(m);
      c.optimizer.lr = 1.f;
      c.staleBound = 2;
      c.stalePolicy = policy;
      auto s = gvtest::make_store(c, two_tensors());
      std::vector<float> gb(7, 1.f);
      Grad g{1, gb.data(), 7};
      PushResult r;
      for (int i = 0; i < 5; ++i) CHECK_OK(s->push(&g, 1, -1, &r));
      {
        Unchanged u(*s);
        CHECK_OK(s->push(&g, 1, 2, &r));  // staleness 3 > bound 2
        CHECK(!r.applied);
        CHECK_EQ(r.reason, SkipReason::Stale);
        CHECK_EQ(r.staleness, 3u);
        CHECK_EQ(r.version, 5u);
        CHECK_EQ(s->stats().rejectedStale, 1u);
        u.check("stale push rejected");
      }
      CHECK_OK(s->push(&g, 1, 3, &r));  // staleness 2 == bound: applied
      CHECK(r.applied);
      CHECK_EQ(r.staleness, 2u);
      CHECK_EQ(r.version, 6u);
      Stats st = s->stats();
      CHECK_EQ(st.stalenessCount, 2u);
      CHECK_EQ(st.stalenessSum, 5u);
      CHECK_EQ(st.stalenessMax, 3u);
      CHECK_EQ(st.stalenessHistogram[2], 2u);  // 2 and 3 share the bucket [2, 3]
    }
    // 'reject' without a bound refuses every stale push (staleness > 0);
    // 'accept' without a bound takes them all.
    for (StalePolicy policy : {StalePolicy::Accept, StalePolicy::Reject}) {
      if (det && policy != StalePolicy::Accept) continue;
      gvtest::Context ctx(std::string("staleness unbounded in ") + mode_name(m) + " policy " +
                          std::to_string(static_cast<int>(policy)));
      StoreConfig c = base(m);
      c.stalePolicy = policy;
      auto s = gvtest::make_store(c, two_tensors());
      std::vector<float> gb(7, 1.f);
      Grad g{1, gb.data(), 7};
      PushResult r;
      CHECK_OK(s->push(&g, 1, -1, &r));
      CHECK_OK(s->push(&g, 1, 1, &r));  // staleness 0: always applied
      CHECK(r.applied);
      CHECK_OK(s->push(&g, 1, 0, &r));  // staleness 2
      CHECK_EQ(r.applied, policy == StalePolicy::Accept);
      CHECK_EQ(s->stats().rejectedStale, policy == StalePolicy::Accept ? 0u : 1u);
    }
    // 'scale' divides the learning rate by 1 + staleness: exactly lr / (1 + s).
    if (!det) {
      gvtest::Context ctx(std::string("staleness scale in ") + mode_name(m));
      StoreConfig c = base(m);
      c.stalePolicy = StalePolicy::Scale;
      for (float lr : {0.1f, 0.3f, 0.7f, 1.f})
        for (uint64_t stale : {0, 1, 2, 4, 6, 9}) {
          c.optimizer.lr = lr;
          auto s = gvtest::make_store(c, {gvtest::tensor("x", {1})});
          // 1 is a power of two: p = 0 - (lr / (1 + s)) * 1 exactly, and in
          // deterministic mode too (the step is a multiple of 2^-32 with < 25 bits).
          std::vector<float> one(1, 0.f);
          Grad zero{0, one.data(), 1};
          PushResult r;
          for (uint64_t i = 0; i < stale; ++i) CHECK_OK(s->push(&zero, 1, -1, &r));
          std::vector<float> g1(1, 1.f);
          Grad g{0, g1.data(), 1};
          CHECK_OK(s->push(&g, 1, 0, &r));
          CHECK(r.applied);
          CHECK_EQ(r.staleness, stale);
          const float want = -(lr / (1.f + static_cast<float>(stale)));
          float got = gvtest::snapshot(*s)[0];
          CHECK_MSG(gvtest::same_bits(got, want), "lr " << lr << " staleness " << stale << ": "
                                                      << gvtest::show(got) << " vs " << gvtest::show(want));
        }
    }
  }
}

// ---------------------------------------------------------------- deterministic range

void deterministic_overflow() {
  gvtest::Context ctx("deterministic overflow");
  StoreConfig c = base(Mode::Deterministic);
  c.optimizer.lr = 1.f;
  auto s = gvtest::make_store(c, two_tensors());
  PushResult r;
  std::vector<float> gw(20, 1.f), gb(7, 1.f);
  Grad ok[2] = {{0, gw.data(), 20}, {1, gb.data(), 7}};
  CHECK_OK(s->push(ok, 2, -1, &r));
  // One push too large for Q32.32: refused, store unchanged (the W part of
  // the same push is not applied either).
  {
    Unchanged u(*s);
    std::vector<float> big = gb;
    big[4] = -2e9f;
    Grad g[2] = {{0, gw.data(), 20}, {1, big.data(), 7}};
    Status st = s->push(g, 2, -1, &r);
    CHECK_EQ(st.code, Code::Overflow);
    CHECK_EQ(st.tensor, 1);
    CHECK(!r.applied);
    u.check("one push out of range");
  }
  // Pushes each in range whose sum leaves the range: every one is accepted
  // (acceptance depends on a push alone, so on no order), the sum stays
  // exact (modulo 2^64), and a save while a value is out of the range is an
  // error naming it.
  {
    std::vector<float> step(7, 0.f);
    step[2] = -2.5e8f;  // each push adds 2.5e8 to b[2]
    Grad g{1, step.data(), 7};
    for (int i = 0; i < 8; ++i) {
      CHECK_OK(s->push(&g, 1, -1, &r));
      CHECK(r.applied);
    }
    std::vector<float> snap = gvtest::snapshot(*s);
    float b2 = snap[s->tensor(1).offset + 2];
    CHECK_EQ(b2, 2e9f - 1.f);  // -1 (the first push) + 8 * 2.5e8, exact in Q32.32
    StateImage img;
    Status st = s->export_state(&img);
    CHECK_EQ(st.code, Code::Overflow);
    CHECK_EQ(st.tensor, 1);
    CHECK_EQ(st.index, 2);
    // Moving back into range: saves again.
    std::vector<float> back(7, 0.f);
    back[2] = 1e9f;
    Grad gback{1, back.data(), 7};
    CHECK_OK(s->push(&gback, 1, -1, &r));
    CHECK(r.applied);
    CHECK_OK(s->export_state(&img));
  }
}

// averaging: a gradient too large for the accumulator is refused up front;
// a push whose range does not fit the open round closes that round early
// and opens the next (no push is refused for what the others added).
void averaging_overflow() {
  gvtest::Context ctx("averaging overflow");
  StoreConfig c = base(Mode::Averaging);
  c.syncEvery = 4;
  auto s = gvtest::make_store(c, two_tensors());
  std::vector<float> gw(20, 1.f), gb(7, 1.f);
  PushResult r;
  Grad ok[2] = {{0, gw.data(), 20}, {1, gb.data(), 7}};
  CHECK_OK(s->push(ok, 2, -1, &r));
  {
    Unchanged u(*s);
    gb[3] = 1.5e9f;  // above 2^30 on its own
    Status st = s->push(ok, 2, -1, &r);
    CHECK_EQ(st.code, Code::Overflow);
    CHECK_EQ(st.tensor, 1);
    CHECK_EQ(st.index, 3);
    u.check("averaging: one gradient out of range");
  }
  gb[3] = 6e8f;  // in range alone; two of them are not
  CHECK_OK(s->push(ok, 2, -1, &r));
  CHECK_EQ(s->stats().pending, 2u);
  CHECK_EQ(s->stats().rounds, 0u);
  CHECK_OK(s->push(ok, 2, -1, &r));  // the open round (two pushes) closes first
  CHECK(r.applied);
  Stats st = s->stats();
  CHECK_EQ(st.rounds, 1u);
  CHECK_EQ(st.pending, 1u);
  CHECK_EQ(st.pushes, 3u);
  // The closed round's mean: b[3] moved by lr * (1 + 6e8) / 2.
  const float b3 = gvtest::snapshot(*s)[s->tensor(1).offset + 3];
  CHECK_EQ(b3, -static_cast<float>(static_cast<double>(c.optimizer.lr) * ((1.0 + 6e8) / 2)));
}

// Configuration names: each parse_xxx() takes back every name its *_name()
// gives, and an unknown name is ERR_CONFIG naming the field and the value,
// never a default (the binding used to read an unknown nonFinite as 'reject'
// and an unknown schedule as 'constant').
void config_names() {
  for (int i = 0; i < 6; ++i) {
    Mode m{};
    CHECK_OK(parse_store_mode(mode_name(static_cast<Mode>(i)), &m));
    CHECK_EQ(static_cast<int>(m), i);
  }
  for (int i = 0; i < 4; ++i) {
    OptKind k{};
    CHECK_OK(parse_optimizer_kind(optimizer_kind_name(static_cast<OptKind>(i)), &k));
    CHECK_EQ(static_cast<int>(k), i);
    InitKind init{};
    CHECK_OK(parse_init(init_name(static_cast<InitKind>(i)), &init));
    CHECK_EQ(static_cast<int>(init), i);
  }
  for (int i = 0; i < 3; ++i) {
    StalePolicy p{};
    CHECK_OK(parse_stale_policy(stale_policy_name(static_cast<StalePolicy>(i)), &p));
    CHECK_EQ(static_cast<int>(p), i);
  }
  for (int i = 0; i < 2; ++i) {
    NonFinitePolicy p{};
    CHECK_OK(parse_non_finite(non_finite_name(static_cast<NonFinitePolicy>(i)), &p));
    CHECK_EQ(static_cast<int>(p), i);
  }
  NonFinitePolicy nf = NonFinitePolicy::Skip;
  Status st = parse_non_finite("ignore", &nf);
  CHECK(st.code == Code::Config);
  CHECK_EQ(st.field, std::string("nonFinite"));
  CHECK_EQ(st.message, std::string("nonFinite must be one of 'reject', 'skip', got 'ignore'"));
  CHECK(nf == NonFinitePolicy::Skip);  // untouched
  Mode m = Mode::Hogwild;
  st = parse_store_mode("fast\x01", &m);
  CHECK(st.code == Code::Config);
  CHECK_EQ(st.field, std::string("mode"));
  CHECK(st.message.find("got 'fast\\x01'") != std::string::npos);  // the value's bytes escaped
  CHECK(m == Mode::Hogwild);
  // One size limit, 2^32 elements (lib/config.ts: MAX_TENSOR_ELEMENTS):
  // one more is refused before anything is allocated.
  std::shared_ptr<Store> s;
  st = Store::create(base(), {gvtest::tensor("W", {65536, 65537})}, &s);
  CHECK(st.code == Code::Config);
  CHECK(st.message.find("too large") != std::string::npos);
  CHECK_EQ(kMaxTensorElements, uint64_t{65536} * 65536);
}

}  // namespace

int main() {
  config_errors();
  config_names();
  for (Mode m : gvtest::kAllModes) push_errors(m);
  non_finite_skip();
  staleness();
  deterministic_overflow();
  averaging_overflow();
  return gvtest::finish("test_errors");
}
