// The trainer's per-sample path (trainer/sample.h, issue 16): batches of one
// computed and applied fused, bookkeeping committed per thread in chunks.
// - the same bits as the generic snapshot-grad-push path on one thread, for
//   every model and data kind it serves and every mode that offers it;
// - exact counts at 1 and 2 threads: every sample one push, one version, one
//   staleness measurement; no conflict in atomic, locked and deterministic;
// - no lost update: two threads' exact sums (atomic, locked, deterministic);
// - which runs it serves (and which go the generic way);
// - a checkpoint taken while it trains holds exactly the pushes its version
//   counts (the parameters of a single-sample-per-version store);
// - cancellation, a non-finite loss (reject and skip), and the magnitude
//   ledger's exact path, all through the generic path's own handling.
#include <cmath>
#include <cstring>
#include <thread>

#include "check.h"
#include "data.h"
#include "core/data/dataset.h"
#include "core/model/model.h"
#include "core/random.h"
#include "core/trainer/sample.h"
#include "core/trainer/trainer.h"

using namespace gv;

namespace {

// Separable-ish dense rows with about half the entries zero (as pixels are).
data::Dataset dense_set(uint64_t rows, uint64_t features, uint64_t classes, uint64_t seed) {
  data::Dataset d;
  d.kind = data::Kind::Dense;
  d.rows = rows;
  d.features = features;
  d.classes = classes;
  SplitMix64 r(seed);
  d.X.resize(rows * features);
  for (uint64_t i = 0; i < rows; ++i) {
    const int32_t c = static_cast<int32_t>(r.next() % classes);
    d.classIds.push_back(c);
    d.labels.push_back(classes == 2 ? (c ? 1.f : -1.f) : static_cast<float>(c));
    for (uint64_t j = 0; j < features; ++j)
      d.X[i * features + j] = r.next() % 2 ? 0.f : static_cast<float>(r.normal() + (j % classes == uint64_t(c) ? 1.5 : 0.0));
  }
  return d;
}

// Sparse binary rows: ~nnz random features of `features`, label the sign of a hidden w.x.
data::Dataset sparse_set(uint64_t rows, uint64_t features, uint64_t nnz, uint64_t seed) {
  data::Dataset d;
  d.kind = data::Kind::Sparse;
  d.rows = rows;
  d.features = features;
  d.classes = 2;
  SplitMix64 r(seed);
  std::vector<float> w(features);
  for (auto& x : w) x = static_cast<float>(r.normal());
  d.indptr.push_back(0);
  for (uint64_t i = 0; i < rows; ++i) {
    std::vector<uint32_t> idx;
    for (uint64_t k = 0; k < nnz; ++k) idx.push_back(static_cast<uint32_t>(r.next() % features));
    std::sort(idx.begin(), idx.end());
    idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
    double z = 0;
    for (uint32_t j : idx) {
      const float v = static_cast<float>(r.uniform());
      d.indices.push_back(j);
      d.values.push_back(v);
      z += v * w[j];
    }
    d.indptr.push_back(d.indices.size());
    d.classIds.push_back(z > 0 ? 1 : 0);
    d.labels.push_back(z > 0 ? 1.f : -1.f);
  }
  return d;
}

// Sparse rows of `features` all labelled +1: row i's entries come from
// fill(i, add), add(index, value) in ascending index order. The svm on them
// keeps its margins violated at a small rate: every sample moves its
// features by exactly lr * x and the bias by lr, whatever the parameters.
template <class Fill>
data::Dataset positive_rows(uint64_t rows, uint64_t features, Fill&& fill) {
  data::Dataset d;
  d.kind = data::Kind::Sparse;
  d.features = features;
  d.classes = 2;
  d.rows = rows;
  d.indptr.push_back(0);
  for (uint64_t i = 0; i < rows; ++i) {
    fill(i, [&](uint32_t j, float v) {
      d.indices.push_back(j);
      d.values.push_back(v);
    });
    d.indptr.push_back(d.indices.size());
    d.labels.push_back(1.f);
    d.classIds.push_back(1);
  }
  return d;
}

struct Run {
  std::vector<float> params;
  Stats stats;
  train::Result result;
  Status status;
  std::vector<train::Progress> epochs;
};

Run train_once(const data::Dataset& d, model::Kind kind, Mode mode, uint32_t threads, bool perSample, float lr = 0.05f,
               uint32_t epochs = 2, NonFinitePolicy nonFinite = NonFinitePolicy::Reject, const std::atomic<bool>* cancel = nullptr,
               size_t shardFloats = 16384, const model::ModelSpec* spec = nullptr) {
  model::ModelSpec ms;
  if (spec) ms = *spec;
  ms.kind = kind;
  std::unique_ptr<model::Model> m;
  CHECK_OK(model::Model::create(ms, model::Model::dims_of(d), &m));
  StoreConfig sc;
  sc.mode = mode;
  sc.optimizer.lr = lr;
  sc.nonFinite = nonFinite;
  sc.shardFloats = shardFloats;
  std::shared_ptr<Store> store;
  CHECK_OK(Store::create(sc, m->tensors(), &store));
  train::TrainerConfig tc;
  tc.threads = threads;
  tc.epochs = epochs;
  tc.batchSize = 1;
  tc.seed = 5;
  tc.perSample = perSample;
  Run r;
  r.status = train::train(tc, *store, *m, d, cancel, [&](const train::Progress& p) { r.epochs.push_back(p); }, &r.result);
  r.params.resize(store->padded_floats());
  store->snapshot(r.params.data());
  clear_padding(*store, r.params.data());
  r.stats = store->stats();
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool serves(const data::Dataset& d, model::Kind kind, Mode mode, uint32_t batch = 1, bool perSample = true,
            kernels::OptKind opt = kernels::OptKind::Sgd, StalePolicy stale = StalePolicy::Accept, int64_t maxAhead = -1) {
  model::ModelSpec ms;
  ms.kind = kind;
  std::unique_ptr<model::Model> m;
  CHECK_OK(model::Model::create(ms, model::Model::dims_of(d), &m));
  StoreConfig sc;
  sc.mode = mode;
  sc.optimizer.kind = opt;
  sc.stalePolicy = stale;
  std::shared_ptr<Store> store;
  if (!Store::create(sc, m->tensors(), &store).ok()) return false;  // deterministic refuses some settings outright
  std::vector<uint32_t> tix;
  CHECK_OK(train::bind_model(*m, *store, &tix));
  train::TrainerConfig tc;
  tc.batchSize = batch;
  tc.perSample = perSample;
  tc.maxAhead = maxAhead;
  return train::SampleStepper::applies(tc, *store, *m, d, tix);
}

const Mode kFused[] = {Mode::Atomic, Mode::Locked, Mode::Hogwild, Mode::Deterministic};
// Runs of several threads: hogwild's races are by design and not for
// ThreadSanitizer (its per-sample path is off there; tsan.supp covers its
// generic pushes only where the frames name HogwildStore).
bool racy_under_tsan(Mode m) { return kTsanBuild && m == Mode::Hogwild; }

void test_which_runs() {
  const data::Dataset dense = dense_set(50, 12, 3, 1), sparse = sparse_set(50, 40, 5, 2);
  for (Mode mode : kFused) {
    gvtest::Context c(mode_name(mode));
    // hogwild's racy reads and writes are not for ThreadSanitizer: its runs take the generic path there
    const bool on = !(mode == Mode::Hogwild && kTsanBuild);
    CHECK_EQ(serves(dense, model::Kind::Softmax, mode), on);
    CHECK_EQ(serves(sparse, model::Kind::Softmax, mode), on);
    CHECK_EQ(serves(sparse, model::Kind::Logistic, mode), on);
    CHECK_EQ(serves(sparse, model::Kind::Svm, mode), on);
    CHECK_EQ(serves(gvtest::ratings(50, 10, 10, 1), model::Kind::Mf, mode), on && mode != Mode::Deterministic);
    CHECK(!serves(dense, model::Kind::Softmax, mode, 2));                  // batches of more than one
    CHECK(!serves(dense, model::Kind::Softmax, mode, 1, false));           // turned off
    CHECK(!serves(dense, model::Kind::Softmax, mode, 1, true, kernels::OptKind::Adam));  // a step beyond x * d
    CHECK(!serves(dense, model::Kind::Softmax, mode, 1, true, kernels::OptKind::Sgd, StalePolicy::Scale));
    CHECK(!serves(dense, model::Kind::Softmax, mode, 1, true, kernels::OptKind::Sgd, StalePolicy::Accept, 0));
    CHECK(!serves(dense_set(50, 12, 2, 1), model::Kind::Logistic, mode));  // dense linear models: the generic path
  }
  for (Mode mode : {Mode::Versioned, Mode::Averaging}) {
    gvtest::Context c(mode_name(mode));
    CHECK(!serves(dense, model::Kind::Softmax, mode));
  }
}

// One thread: the per-sample path computes exactly what the generic path does.
void test_same_bits() {
  const data::Dataset dense = dense_set(600, 30, 4, 3), sparse = sparse_set(800, 300, 12, 4);
  struct Case {
    const data::Dataset* d;
    model::Kind kind;
    const char* name;
  } cases[] = {{&dense, model::Kind::Softmax, "softmax dense"},
               {&sparse, model::Kind::Softmax, "softmax sparse"},
               {&sparse, model::Kind::Logistic, "logistic sparse"},
               {&sparse, model::Kind::Svm, "svm sparse"},
               {&sparse, model::Kind::Linear, "linear sparse"}};
  for (const Case& k : cases)
    for (Mode mode : kFused)
      for (size_t shard : {size_t(16384), size_t(64)}) {  // 64: rows of W straddle stripes, several stripes a sample
        gvtest::Context c(std::string(k.name) + " " + mode_name(mode) + " shard " + std::to_string(shard));
        const Run fused = train_once(*k.d, k.kind, mode, 1, true, 0.05f, 2, NonFinitePolicy::Reject, nullptr, shard);
        const Run generic = train_once(*k.d, k.kind, mode, 1, false, 0.05f, 2, NonFinitePolicy::Reject, nullptr, shard);
        CHECK_OK(fused.status);
        CHECK_OK(generic.status);
        CHECK(same_bits(fused.params, generic.params));
        CHECK_EQ(fused.stats.pushes, generic.stats.pushes);
        CHECK_EQ(fused.stats.version, generic.stats.version);
        CHECK_EQ(fused.stats.pushes, 2 * k.d->rows);
        CHECK_EQ(fused.stats.stalenessCount, 2 * k.d->rows);
        CHECK_EQ(fused.stats.stalenessMax, uint64_t{0});  // one thread: never stale
        CHECK_EQ(fused.result.loss, generic.result.loss);
      }
}

// Rows wider than a stripe: softmax of 40 classes in stripes of 16 floats,
// so a row of W crosses three stripes; locked and deterministic read a
// sample's rows holding every one of them (under ThreadSanitizer, atomic
// too: a stripe left out is a reported race), two threads write them.
void test_wide_rows() {
  const data::Dataset d = dense_set(1500, 12, 40, 14);
  for (Mode mode : kFused) {
    if (racy_under_tsan(mode)) continue;
    gvtest::Context c(std::string("wide rows ") + mode_name(mode));
    const Run one = train_once(d, model::Kind::Softmax, mode, 1, true, 0.02f, 1, NonFinitePolicy::Reject, nullptr, 16);
    const Run gen = train_once(d, model::Kind::Softmax, mode, 1, false, 0.02f, 1, NonFinitePolicy::Reject, nullptr, 16);
    CHECK(same_bits(one.params, gen.params));
    const Run two = train_once(d, model::Kind::Softmax, mode, 2, true, 0.02f, 2, NonFinitePolicy::Reject, nullptr, 16);
    CHECK_OK(two.status);
    CHECK_EQ(two.stats.pushes, 2 * d.rows);
    CHECK_EQ(two.stats.version, 2 * d.rows);
    if (mode != Mode::Hogwild) CHECK_EQ(two.stats.conflicts, uint64_t{0});
  }
}

// An infinite learning rate (a step schedule that overflows float by its
// last epoch): refused before anything trains (ERR_CONFIG naming
// schedule.gamma), the store untouched. (On samples whose d is 0, lr * 0
// would be NaN, and the per-sample path sends a move that is not finite the
// generic way besides.)
void test_infinite_rate() {
  const data::Dataset d = positive_rows(400, 2, [](uint64_t, auto add) { add(0, 1.f); });
  model::ModelSpec ms;
  ms.kind = model::Kind::Svm;
  std::unique_ptr<model::Model> m;
  CHECK_OK(model::Model::create(ms, model::Model::dims_of(d), &m));
  for (Mode mode : kFused) {
    gvtest::Context c(std::string("infinite rate ") + mode_name(mode));
    StoreConfig sc;
    sc.mode = mode;
    sc.optimizer.lr = 0.5f;
    std::shared_ptr<Store> store;
    CHECK_OK(Store::create(sc, m->tensors(), &store));
    train::TrainerConfig tc;
    tc.batchSize = 1;
    tc.epochs = 3;
    tc.schedule = train::Schedule::Step;  // 0.5, 5e37, then inf
    tc.stepEvery = 1;
    tc.gamma = 1e38f;
    train::Result res;
    const Status st = train::train(tc, *store, *m, d, nullptr, nullptr, &res);
    CHECK(st.code == Code::Config);
    CHECK_MSG(st.message.find("schedule.gamma") != std::string::npos && st.message.find("epoch 3") != std::string::npos, st.message);
    CHECK_EQ(store->version(), uint64_t{0});
    std::vector<float> p(store->padded_floats());
    store->snapshot(p.data());
    for (size_t i = 0; i < p.size(); ++i) CHECK_MSG(std::isfinite(p[i]), "at " << i << ": " << p[i]);
    CHECK_EQ(store->stats().pushes, store->stats().version);
  }
}

// mf: two rows and two biases a rating, with and without biases and L2.
void test_mf() {
  const data::Dataset d = gvtest::ratings(3000, 300, 200, 12);
  for (Mode mode : kFused)
    for (int variant = 0; variant < 3; ++variant)
      for (size_t shard : {size_t(16384), size_t(48)}) {
        model::ModelSpec ms;
        ms.kind = model::Kind::Mf;
        ms.rank = variant == 2 ? 20 : 8;  // 20: a row across a 48-float stripe boundary, and kernels past 16
        ms.biases = variant != 1;
        ms.l2 = variant == 2 ? 0.01f : 0.f;
        gvtest::Context c(std::string("mf ") + mode_name(mode) + " variant " + std::to_string(variant) + " shard " + std::to_string(shard));
        const Run fused = train_once(d, model::Kind::Mf, mode, 1, true, 0.05f, 2, NonFinitePolicy::Reject, nullptr, shard, &ms);
        const Run generic = train_once(d, model::Kind::Mf, mode, 1, false, 0.05f, 2, NonFinitePolicy::Reject, nullptr, shard, &ms);
        CHECK_OK(fused.status);
        CHECK_OK(generic.status);
        CHECK(same_bits(fused.params, generic.params));
        CHECK_EQ(fused.result.loss, generic.result.loss);
        CHECK_EQ(fused.stats.pushes, 2 * d.rows);
        if (racy_under_tsan(mode)) continue;
        const Run two = train_once(d, model::Kind::Mf, mode, 2, true, 0.05f, 2, NonFinitePolicy::Reject, nullptr, shard, &ms);
        CHECK_OK(two.status);
        CHECK_EQ(two.stats.pushes, 2 * d.rows);
        CHECK_EQ(two.stats.version, 2 * d.rows);
        CHECK_EQ(two.stats.stalenessCount, 2 * d.rows);
        if (mode != Mode::Hogwild) CHECK_EQ(two.stats.conflicts, uint64_t{0});
        CHECK(two.epochs.size() == 2 && two.epochs[1].loss < two.epochs[0].loss);
      }
}

// Two threads: every sample one push and one version, staleness measured for each.
void test_exact_counts() {
  const data::Dataset dense = dense_set(4000, 40, 5, 7), sparse = sparse_set(6000, 2000, 20, 8);
  for (Mode mode : kFused)
    for (const data::Dataset* d : {&dense, &sparse})
      for (size_t shard : {size_t(16384), size_t(256)}) {
        if (racy_under_tsan(mode)) continue;
        gvtest::Context c(std::string(mode_name(mode)) + (d == &dense ? " dense" : " sparse") + " shard " + std::to_string(shard));
        const Run r = train_once(*d, model::Kind::Softmax, mode, 2, true, 0.02f, 3, NonFinitePolicy::Reject, nullptr, shard);
        CHECK_OK(r.status);
        const uint64_t n = 3 * d->rows;
        CHECK_EQ(r.result.samples, n);
        CHECK_EQ(r.stats.pushes, n);
        CHECK_EQ(r.stats.version, n);
        CHECK_EQ(r.stats.stalenessCount, n);
        uint64_t hist = 0;
        for (uint64_t h : r.stats.stalenessHistogram) hist += h;
        CHECK_EQ(hist, n);
        if (mode != Mode::Hogwild) CHECK_EQ(r.stats.conflicts, uint64_t{0});
        CHECK_EQ(r.epochs.size(), size_t{3});
        if (r.epochs.size() == 3) {
          CHECK_EQ(r.epochs[2].version, n);
          CHECK(std::isfinite(r.epochs[2].loss));
        }
      }
}

// No lost update: svm on rows whose margins stay violated (y = +1, a tiny
// lr), so each sample moves its feature by exactly lr * x and the bias by
// lr: two threads end at exactly the sums.
void test_no_lost_update() {
  // lr * x = 2^-16 * 2^-2: exact sums
  const data::Dataset d = positive_rows(20000, 8, [](uint64_t i, auto add) { add(static_cast<uint32_t>(i % 8), 0.25f); });
  for (Mode mode : {Mode::Atomic, Mode::Locked, Mode::Deterministic}) {
    gvtest::Context c(mode_name(mode));
    const Run r = train_once(d, model::Kind::Svm, mode, 2, true, 1.f / 65536, 1);
    CHECK_OK(r.status);
    // Each sample adds lr * 0.25 = 2^-18 to its feature and 2^-16 to b: w_j = 2500 * 2^-18, b = 20000 * 2^-16
    // (w.x + b stays below 1: every margin violated, every update made), all exact in float.
    for (int j = 0; j < 8; ++j) CHECK_EQ(r.params[j], 2500.f / 262144.f);
    CHECK_EQ(r.params[16], 20000.f / 65536.f);  // b: the next tensor, at offset 16
    CHECK_EQ(r.stats.pushes, uint64_t{20000});
  }
}

// deterministic: samples whose updates do not depend on the parameters
// (violated margins) at values whose float sums would round differently in
// another order: the same bits on 1, 2 and 3 threads, as the multiset of
// its pushes promises, on the per-sample path as on the generic one.
void test_deterministic_threads() {
  SplitMix64 r(13);
  const data::Dataset d = positive_rows(30000, 40, [&](uint64_t, auto add) {
    for (uint32_t j = static_cast<uint32_t>(r.next() % 5); j < 40; j += 1 + static_cast<uint32_t>(r.next() % 7))
      add(j, 0.1f + 0.37f * static_cast<float>(r.uniform()));
  });
  std::vector<float> first;
  for (uint32_t threads : {1u, 2u, 3u})
    for (bool perSample : {true, false}) {
      gvtest::Context c("threads " + std::to_string(threads) + (perSample ? " per-sample" : " generic"));
      const Run run = train_once(d, model::Kind::Svm, Mode::Deterministic, threads, perSample, 1e-6f, 2);
      CHECK_OK(run.status);
      CHECK_EQ(run.stats.pushes, 2 * d.rows);
      if (first.empty()) first = run.params;
      else CHECK(same_bits(run.params, first));
    }
}

void test_cancel() {
  const data::Dataset sparse = sparse_set(200000, 5000, 20, 9);
  for (Mode mode : kFused) {
    if (racy_under_tsan(mode)) continue;
    gvtest::Context c(mode_name(mode));
    std::atomic<bool> cancel{false};
    std::thread stopper([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      cancel.store(true);
    });
    const Run r = train_once(sparse, model::Kind::Logistic, mode, 2, true, 0.1f, 50, NonFinitePolicy::Reject, &cancel);
    stopper.join();
    CHECK_OK(r.status);
    CHECK(r.result.reason == train::StopReason::Aborted);
    CHECK(r.result.epochs < 50u);
    // every sample that ran was committed: pushes, version and staleness agree
    CHECK_EQ(r.stats.pushes, r.stats.version);
    CHECK_EQ(r.stats.stalenessCount, r.stats.pushes);
    CHECK(r.stats.pushes < 50 * sparse.rows);
  }
}

// A row whose value is NaN: its loss is not finite, the sample goes the
// generic way, which stops the run (reject) or skips the push (skip).
void test_non_finite() {
  data::Dataset d = sparse_set(3000, 100, 8, 10);
  d.values[d.indptr[1234]] = NAN;
  for (Mode mode : kFused) {
    gvtest::Context c(mode_name(mode));
    const Run rej = train_once(d, model::Kind::Logistic, mode, 1, true, 0.05f, 1, NonFinitePolicy::Reject);
    CHECK(rej.status.code == Code::NonFinite);
    CHECK_EQ(rej.stats.pushes, rej.stats.version);
    CHECK(rej.stats.pushes < d.rows);
    for (size_t i = 0; i < rej.params.size(); ++i) CHECK_MSG(std::isfinite(rej.params[i]), "at " << i);
    const Run skip = train_once(d, model::Kind::Logistic, mode, 2, true, 0.05f, 2, NonFinitePolicy::Skip);
    CHECK_OK(skip.status);
    CHECK_EQ(skip.stats.skippedNonFinite, uint64_t{2});  // the row, once an epoch
    CHECK_EQ(skip.stats.pushes, 2 * d.rows - 2);
    CHECK_EQ(skip.stats.version, skip.stats.pushes);
    for (size_t i = 0; i < skip.params.size(); ++i) CHECK_MSG(std::isfinite(skip.params[i]), "at " << i);
  }
}

// Values near FLT_MAX: the ledger cannot reserve the moves; those samples
// take the exact path (pushes paused, the step tried), which refuses the one
// that would overflow: the store stays finite. Deterministic's range check
// sends them the generic way too, whose push refuses them.
void test_ledger_exact_path() {
  data::Dataset d = sparse_set(500, 50, 5, 11);
  for (auto& v : d.values) v *= 1e37f;
  for (Mode mode : kFused) {
    gvtest::Context c(mode_name(mode));
    const Run r = train_once(d, model::Kind::Linear, mode, 1, true, 1.f, 1, NonFinitePolicy::Reject);
    CHECK(!r.status.ok());
    // deterministic: the push's own refusal, |lr * g| beyond its fixed-point range
    CHECK(r.status.code == (mode == Mode::Deterministic ? Code::Overflow : Code::NonFinite));
    for (size_t i = 0; i < r.params.size(); ++i) CHECK_MSG(std::isfinite(r.params[i]), "at " << i);
    CHECK_EQ(r.stats.pushes, r.stats.version);
  }
}

// A checkpoint image while two threads train per sample: the gate waits for
// the threads' commits, so the image's version is exactly the number of
// samples its parameters hold. Rows without features: each sample adds
// exactly lr = 2^-22 to b.
void test_checkpoint_counts() {
  const data::Dataset d = positive_rows(400000, 4, [](uint64_t, auto) {});
  model::ModelSpec ms;
  ms.kind = model::Kind::Svm;
  std::unique_ptr<model::Model> m;
  CHECK_OK(model::Model::create(ms, model::Model::dims_of(d), &m));
  for (Mode mode : kFused) {
    if (mode == Mode::Hogwild) continue;  // racy: b may lose updates
    gvtest::Context c(mode_name(mode));
    StoreConfig sc;
    sc.mode = mode;
    sc.optimizer.lr = 1.f / 4096 / 1024;  // b stays below 1: every margin violated; 2^-22 a sample
    std::shared_ptr<Store> store;
    CHECK_OK(Store::create(sc, m->tensors(), &store));
    train::TrainerConfig tc;
    tc.threads = 2;
    tc.batchSize = 1;
    train::Result res;
    std::atomic<bool> done{false};
    std::thread saver([&] {
      int images = 0;
      while (!done.load() || images < 3) {
        StateImage img;
        CHECK_OK(store->export_state(&img));
        const float b = img.params[store->tensor(1).offset];
        CHECK_EQ(double(b), double(img.version) / (4096.0 * 1024.0));
        ++images;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
    CHECK_OK(train::train(tc, *store, *m, d, nullptr, nullptr, &res));
    done.store(true);
    saver.join();
    CHECK_EQ(store->stats().pushes, d.rows);
  }
}

}  // namespace

int main() {
  test_which_runs();
  test_same_bits();
  test_exact_counts();
  test_mf();
  test_wide_rows();
  test_infinite_rate();
  test_no_lost_update();
  test_deterministic_threads();
  test_cancel();
  test_non_finite();
  test_ledger_exact_path();
  test_checkpoint_counts();
  return gvtest::finish("test_sample");
}
