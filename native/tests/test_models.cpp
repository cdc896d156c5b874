// Models and trainer (issue 3): every model's gradient against central finite
// differences of its own loss, on dense and sparse rows; the sparse
// gradient's touched rows; evaluation; the trainer reaching an accuracy on
// blobs in every mode with 1 and 2 threads, with exact push counts; errors,
// cancellation, maxAhead and the target loss.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

#include "check.h"
#include "data.h"
#include "core/data/dataset.h"
#include "core/model/model.h"
#include "core/random.h"
#include "core/trainer/trainer.h"

using namespace gv;
using namespace gv::model;

namespace {

data::Dataset tiny_dense(uint64_t rows, uint64_t features, uint64_t classes, uint64_t seed) {
  data::Dataset d;
  d.kind = data::Kind::Dense;
  d.rows = rows;
  d.features = features;
  d.classes = classes;
  SplitMix64 r(seed);
  d.X.resize(rows * features);
  for (auto& x : d.X) x = static_cast<float>(r.normal());
  for (uint64_t i = 0; i < rows; ++i) {
    if (classes == 2) {
      d.classIds.push_back(static_cast<int32_t>(r.next() % 2));
      d.labels.push_back(d.classIds.back() ? 1.f : -1.f);
    } else if (classes > 2) {
      d.classIds.push_back(static_cast<int32_t>(r.next() % classes));
      d.labels.push_back(static_cast<float>(d.classIds.back()));
    } else {
      d.labels.push_back(static_cast<float>(r.normal()));
    }
  }
  return d;
}

// The same rows as CSR with about half the entries dropped.
data::Dataset to_sparse(const data::Dataset& dense, uint64_t seed) {
  data::Dataset d = dense;
  d.kind = data::Kind::Sparse;
  d.X.clear();
  d.indptr.push_back(0);
  SplitMix64 r(seed);
  for (uint64_t i = 0; i < dense.rows; ++i) {
    for (uint64_t j = 0; j < dense.features; ++j)
      if (r.next() % 2) {
        d.indices.push_back(static_cast<uint32_t>(j));
        d.values.push_back(dense.X[i * dense.features + j]);
      }
    d.indptr.push_back(d.indices.size());
  }
  return d;
}

struct Params {
  std::vector<std::vector<float>> t;
  std::vector<const float*> p() const {
    std::vector<const float*> v;
    for (auto& x : t) v.push_back(x.data());
    return v;
  }
};

Params random_params(const Model& m, uint64_t seed, float scale) {
  Params P;
  SplitMix64 r(seed);
  for (const TensorSpec& s : m.tensors()) {
    size_t n = 1;
    for (int64_t x : s.shape) n *= x;
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(r.normal() * scale);
    P.t.push_back(std::move(v));
  }
  return P;
}

bool g_rowSparse = false;  // dense rows trained as sparse (batches of one)

// Runs grad() and returns the loss sum; g receives the gradient (zeroed first).
double run_grad(const Model& m, const Params& P, const data::Dataset& d, const std::vector<uint32_t>& rows,
                std::vector<std::vector<float>>* g, std::vector<Touched>* touched) {
  g->clear();
  for (auto& x : P.t) g->emplace_back(x.size(), 0.f);
  std::vector<float*> gp;
  for (auto& x : *g) gp.push_back(x.data());
  std::vector<float> ws(m.workspace_floats(d, rows.size()) + 16);
  touched->assign(P.t.size(), Touched{});
  auto p = P.p();
  return m.grad(p.data(), d, rows.data(), rows.size(), gp.data(), ws.data(), touched->data(), g_rowSparse);
}

void check_fd(const char* label, const ModelSpec& spec, const Dims& dims, const data::Dataset& d, float scale) {
  gvtest::g_context = label;
  std::unique_ptr<Model> m;
  CHECK_OK(Model::create(spec, dims, &m));
  CHECK_OK(m->check_data(d));
  Params P = random_params(*m, 11, scale);
  std::vector<uint32_t> rows(std::min<uint64_t>(d.rows, 7));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<uint32_t>((i * 5 + 3) % d.rows);
  std::vector<std::vector<float>> g, scratch;
  std::vector<Touched> touched;
  run_grad(*m, P, d, rows, &g, &touched);
  const double n = static_cast<double>(rows.size());
  for (size_t t = 0; t < P.t.size(); ++t) {
    double num2 = 0, diff2 = 0, ana2 = 0;
    // every element of small tensors, a stride of the big ones
    const size_t stride = std::max<size_t>(1, P.t[t].size() / 97);
    for (size_t i = 0; i < P.t[t].size(); i += stride) {
      const float keep = P.t[t][i];
      const float h = 1e-2f * std::max(1.f, std::fabs(keep));
      P.t[t][i] = keep + h;
      double lp = run_grad(*m, P, d, rows, &scratch, &touched);
      P.t[t][i] = keep - h;
      double lm = run_grad(*m, P, d, rows, &scratch, &touched);
      P.t[t][i] = keep;
      const double num = (lp - lm) / (2.0 * h) / n;
      num2 += num * num;
      ana2 += double(g[t][i]) * g[t][i];
      diff2 += (num - g[t][i]) * (num - g[t][i]);
    }
    const double rel = std::sqrt(diff2) / std::max(1e-6, std::sqrt(num2) + std::sqrt(ana2));
    CHECK_MSG(rel < 2e-2, std::string("tensor ") + m->tensors()[t].name + " relative error " + std::to_string(rel));
    CHECK_MSG(ana2 > 0, std::string("tensor ") + m->tensors()[t].name + " has an all-zero gradient");
  }
  // A sparse gradient is zero outside its touched rows, and lists them once, ascending.
  run_grad(*m, P, d, rows, &g, &touched);
  for (size_t t = 0; t < P.t.size(); ++t) {
    if (touched[t].dense) continue;
    std::vector<uint8_t> in(P.t[t].size() / touched[t].width, 0);
    CHECK(std::is_sorted(touched[t].rows.begin(), touched[t].rows.end()));
    CHECK(std::adjacent_find(touched[t].rows.begin(), touched[t].rows.end()) == touched[t].rows.end());
    for (uint32_t r : touched[t].rows) in[r] = 1;
    size_t stray = 0;
    for (size_t i = 0; i < P.t[t].size(); ++i)
      if (!in[i / touched[t].width] && g[t][i] != 0.f) ++stray;
    CHECK_EQ(stray, size_t{0});
  }
  gvtest::g_context.clear();
}

void test_gradients() {
  data::Dataset reg = tiny_dense(40, 13, 0, 1), bin = tiny_dense(40, 13, 2, 2), multi = tiny_dense(40, 13, 5, 3);
  data::Dataset sreg = to_sparse(reg, 4), sbin = to_sparse(bin, 5), smulti = to_sparse(multi, 6);
  ModelSpec s;
  for (auto [kind, name] : {std::pair{Kind::Linear, "linear"}, {Kind::Logistic, "logistic"}, {Kind::Svm, "svm"}}) {
    s.kind = kind;
    const data::Dataset& dd = kind == Kind::Linear ? reg : bin;
    const data::Dataset& ds = kind == Kind::Linear ? sreg : sbin;
    check_fd((std::string(name) + " dense").c_str(), s, Model::dims_of(dd), dd, 0.3f);
    check_fd((std::string(name) + " sparse").c_str(), s, Model::dims_of(ds), ds, 0.3f);
  }
  s.kind = Kind::Softmax;
  check_fd("softmax dense", s, Model::dims_of(multi), multi, 0.3f);
  // dense rows with zeros, trained as their nonzeros
  data::Dataset holes = multi;
  for (size_t i = 0; i < holes.X.size(); i += 3) holes.X[i] = 0.f;
  g_rowSparse = true;
  check_fd("softmax dense as sparse rows", s, Model::dims_of(holes), holes, 0.3f);
  s.kind = Kind::Mlp;
  s.hidden = {5};
  check_fd("mlp dense as sparse rows", s, Model::dims_of(holes), holes, 0.5f);
  g_rowSparse = false;
  s.kind = Kind::Softmax;
  check_fd("softmax sparse", s, Model::dims_of(smulti), smulti, 0.3f);
  s.kind = Kind::Mlp;
  s.hidden = {9, 6};
  check_fd("mlp dense", s, Model::dims_of(multi), multi, 0.5f);
  check_fd("mlp sparse", s, Model::dims_of(smulti), smulti, 0.5f);
  s.hidden = {17};
  check_fd("mlp one layer", s, Model::dims_of(multi), multi, 0.5f);
  s.kind = Kind::Mf;
  s.rank = 4;
  s.l2 = 0.1f;
  data::Dataset rt = gvtest::ratings(50, 6, 8, 7);
  check_fd("mf", s, Model::dims_of(rt), rt, 0.5f);
  s.biases = false;
  check_fd("mf without biases", s, Model::dims_of(rt), rt, 0.5f);
}

void test_shapes_and_errors() {
  ModelSpec s;
  s.kind = Kind::Mlp;
  s.hidden = {5};
  data::Dataset multi = tiny_dense(10, 4, 3, 1);
  std::unique_ptr<Model> m, back;
  CHECK_OK(Model::create(s, Model::dims_of(multi), &m));
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (auto& t : m->tensors()) names.push_back(t.name), shapes.push_back(t.shape);
  CHECK(names == (std::vector<std::string>{"W1", "b1", "W2", "b2"}));
  CHECK(shapes[0] == (std::vector<int64_t>{4, 5}));
  std::vector<int> order;
  std::reverse(names.begin(), names.end());
  std::reverse(shapes.begin(), shapes.end());
  CHECK_OK(Model::from_shapes(s, names, shapes, &back, &order));
  CHECK(order == (std::vector<int>{3, 2, 1, 0}));
  shapes[1] = {5, 4};  // reversed order: b2, W2, b1, W1; W2 must be [5, 3]
  Status st = Model::from_shapes(s, names, shapes, &back, &order);
  CHECK_EQ(st.code, Code::Shape);
  CHECK_EQ(st.field, std::string("b2"));  // W2 [5, 4] says 4 classes; b2 [3] disagrees

  s.kind = Kind::Logistic;
  CHECK_OK(Model::create(s, Model::dims_of(multi), &m));
  st = m->check_data(multi);
  CHECK_EQ(st.code, Code::InvalidArgument);
  CHECK_MSG(st.message.find("binary") != std::string::npos, st.message);
  s.kind = Kind::Mf;
  st = Model::create(s, Model::dims_of(multi), &m);
  CHECK_EQ(st.code, Code::InvalidArgument);
  s.kind = Kind::Softmax;
  data::Dataset reg = tiny_dense(10, 4, 0, 1);
  st = Model::create(s, Model::dims_of(reg), &m);
  CHECK_EQ(st.code, Code::InvalidArgument);
}

// Trains softmax on well-separated blobs; returns the test accuracy.
double train_blobs(Mode mode, uint32_t threads, uint32_t batch, uint64_t* pushes, std::string* err) {
  data::SyntheticOptions o;
  o.rows = 3000;
  o.features = 10;
  o.classes = 4;
  o.seed = 3;
  data::Dataset all, train, test;
  CHECK_OK(data::synthetic("blobs", o, &all));
  CHECK_OK(data::slice(all, 0, 2400, &train));
  CHECK_OK(data::slice(all, 2400, 3000, &test));
  ModelSpec ms;
  std::unique_ptr<Model> m;
  CHECK_OK(Model::create(ms, Model::dims_of(train), &m));
  StoreConfig sc;
  sc.mode = mode;
  sc.optimizer.lr = 0.05f;
  sc.syncEvery = 4;
  std::shared_ptr<Store> store;
  CHECK_OK(Store::create(sc, m->tensors(), &store));
  train::TrainerConfig tc;
  tc.threads = threads;
  tc.epochs = 3;
  tc.batchSize = batch;
  tc.seed = 9;
  std::vector<train::Progress> seen;
  train::Result res;
  Status st = train::train(tc, *store, *m, train, nullptr, [&](const train::Progress& p) { seen.push_back(p); }, &res);
  if (!st.ok()) *err = st.message;
  CHECK_EQ(seen.size(), size_t{3});
  CHECK_EQ(res.epochs, 3u);
  CHECK_EQ(res.samples, uint64_t{3 * 2400});
  for (size_t e = 0; e < seen.size(); ++e) {
    CHECK_EQ(seen[e].epoch, uint32_t(e + 1));
    CHECK_EQ(seen[e].epochSamples, uint64_t{2400});
  }
  if (seen.size() == 3) CHECK(seen[2].loss < seen[0].loss);
  *pushes = store->stats().pushes;
  std::vector<float> snap(store->padded_floats());
  store->snapshot(snap.data());
  std::vector<const float*> p;
  for (size_t k = 0; k < store->tensor_count(); ++k) p.push_back(snap.data() + store->tensor(k).offset);
  EvalSums ev;
  CHECK_OK(evaluate(*m, p.data(), test, &ev));
  CHECK_EQ(ev.rows, uint64_t{600});
  return double(ev.correct) / ev.rows;
}

void test_trainer_modes() {
  const uint64_t batchesPerEpoch1 = 2400 / 8;  // 2400 rows, batch 8, one thread
  for (Mode mode : {Mode::Atomic, Mode::Locked, Mode::Versioned, Mode::Deterministic, Mode::Averaging, Mode::Hogwild})
    for (uint32_t threads : {1u, 2u}) {
      gvtest::g_context = std::string(mode_name(mode)) + " threads " + std::to_string(threads);
      uint64_t pushes = 0;
      std::string err;
      double acc = train_blobs(mode, threads, 8, &pushes, &err);
      CHECK_MSG(err.empty(), err);
      CHECK_MSG(acc > 0.9, "accuracy " + std::to_string(acc));
      // Every batch's push was applied: 300 per epoch per thread count (shares of 1200 rows are
      // multiples of 8). Averaging counts pushes as it applies rounds, so its count is the same.
      CHECK_EQ(pushes, 3 * batchesPerEpoch1);
    }
  gvtest::g_context.clear();
}

void test_trainer_control() {
  data::SyntheticOptions o;
  o.rows = 20000;
  o.features = 20;
  o.classes = 3;
  data::Dataset d;
  CHECK_OK(data::synthetic("blobs", o, &d));
  ModelSpec ms;
  std::unique_ptr<Model> m;
  CHECK_OK(Model::create(ms, Model::dims_of(d), &m));
  StoreConfig sc;
  sc.optimizer.lr = 0.05f;
  std::shared_ptr<Store> store;
  CHECK_OK(Store::create(sc, m->tensors(), &store));

  // Cancellation: set from another thread during the first epoch; returns
  // promptly with reason Aborted and a usable store.
  {
    std::atomic<bool> cancel{false};
    train::TrainerConfig tc;
    tc.threads = 2;
    tc.epochs = 1000;
    train::Result res;
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      cancel.store(true);
    });
    auto t0 = std::chrono::steady_clock::now();
    CHECK_OK(train::train(tc, *store, *m, d, &cancel, nullptr, &res));
    canceller.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK_EQ(res.reason, train::StopReason::Aborted);
    CHECK_MSG(s < 30, "took " + std::to_string(s) + " s");
    CHECK(res.epochs < 1000u);
    CHECK_EQ(store->learning_rate(), 0.05f);
  }
  // Target loss: stops after the first epoch whose loss is below it.
  {
    train::TrainerConfig tc;
    tc.threads = 2;
    tc.epochs = 50;
    tc.batchSize = 4;
    tc.targetLoss = 1e9;
    train::Result res;
    CHECK_OK(train::train(tc, *store, *m, d, nullptr, nullptr, &res));
    CHECK_EQ(res.reason, train::StopReason::TargetLoss);
    CHECK_EQ(res.epochs, 1u);
  }
  // maxAhead 0 (lockstep) with unequal shares and a step schedule completes.
  {
    data::Dataset odd;
    CHECK_OK(data::slice(d, 0, 1001, &odd));
    train::TrainerConfig tc;
    tc.threads = 3;
    tc.epochs = 3;
    tc.batchSize = 7;
    tc.maxAhead = 0;
    tc.schedule = train::Schedule::Step;
    tc.gamma = 0.5f;
    std::vector<double> lrs;
    train::Result res;
    CHECK_OK(train::train(tc, *store, *m, odd, nullptr, [&](const train::Progress& p) { lrs.push_back(p.lr); }, &res));
    CHECK_EQ(res.samples, uint64_t{3 * 1001});
    CHECK(lrs == (std::vector<double>{0.05f, 0.025f, 0.0125f}));
  }
  // Monitor: polled at each epoch's end (inside onEpoch) it reads the
  // Progress reported; polled from another thread meanwhile, the total never
  // goes back and an epoch's count never exceeds its rows.
  {
    train::TrainerConfig tc;
    tc.threads = 2;
    tc.epochs = 3;
    tc.batchSize = 3;
    train::Monitor mon(2);
    CHECK(!mon.poll(nullptr).started);
    std::vector<train::Live> atEnd;
    std::vector<train::Progress> seen;
    std::atomic<bool> done{false};
    bool monotone = true, bounded = true;
    uint64_t polls = 0;
    std::thread poller([&] {
      uint64_t last = 0;
      while (!done.load()) {
        train::Live l = mon.poll(store.get());
        monotone = monotone && l.samples >= last;
        bounded = bounded && l.epochSamples <= d.rows && l.epoch <= 3;
        last = l.samples;
        ++polls;
      }
    });
    train::Result res;
    CHECK_OK(train::train(tc, *store, *m, d, nullptr,
                          [&](const train::Progress& p) {
                            seen.push_back(p);
                            atEnd.push_back(mon.poll(store.get()));
                          },
                          &res, &mon));
    done.store(true);
    poller.join();
    CHECK(monotone);
    CHECK(bounded);
    CHECK(polls > 0);
    CHECK_EQ(atEnd.size(), size_t{3});
    for (size_t e = 0; e < atEnd.size() && e < seen.size(); ++e) {
      CHECK(atEnd[e].started && !atEnd[e].finished);
      CHECK_EQ(atEnd[e].epoch, seen[e].epoch);
      CHECK_EQ(atEnd[e].epochs, 3u);
      CHECK_EQ(atEnd[e].epochSamples, seen[e].epochSamples);
      CHECK_EQ(atEnd[e].epochSamples, uint64_t{d.rows});
      CHECK_EQ(atEnd[e].samples, seen[e].samples);
      CHECK_EQ(atEnd[e].batches, uint64_t{(d.rows / 2 + 2) / 3 * 2});  // two shares of 10,000 rows, batch 3
      CHECK_MSG(std::fabs(atEnd[e].loss - seen[e].loss) <= 1e-12 * std::fabs(seen[e].loss),
                std::to_string(atEnd[e].loss) + " vs " + std::to_string(seen[e].loss));
      CHECK(atEnd[e].seconds >= atEnd[e].epochSeconds);
    }
    train::Live end = mon.poll(nullptr);
    CHECK(end.finished);
    CHECK_EQ(end.epoch, 3u);
    CHECK_EQ(end.samples, uint64_t{3} * d.rows);
    CHECK_EQ(end.version, store->version());
    // too few slots for the run's threads
    train::Monitor small(1);
    CHECK_EQ(train::train(tc, *store, *m, d, nullptr, nullptr, &res, &small).code, Code::Internal);
  }
  // Errors: bad config; a store without the model's tensors.
  {
    train::TrainerConfig tc;
    tc.threads = 0;
    train::Result res;
    Status st = train::train(tc, *store, *m, d, nullptr, nullptr, &res);
    CHECK_EQ(st.code, Code::Config);
    CHECK_EQ(st.field, std::string("threads"));
    std::shared_ptr<Store> other;
    CHECK_OK(Store::create(sc, {TensorSpec{"W", {20, 4}}}, &other));
    tc.threads = 1;
    st = train::train(tc, *other, *m, d, nullptr, nullptr, &res);
    CHECK_EQ(st.code, Code::Shape);
    CHECK_EQ(st.field, std::string("W"));
  }
  // A NaN in the data makes a NaN gradient: under nonFinite 'reject' the run
  // stops with NonFinite and that push is not applied.
  {
    data::Dataset bad = d;
    bad.X[5 * bad.features + 2] = NAN;
    std::shared_ptr<Store> s2;
    CHECK_OK(Store::create(sc, m->tensors(), &s2));
    train::TrainerConfig tc;
    tc.threads = 2;
    tc.epochs = 5;
    train::Result res;
    Status st = train::train(tc, *s2, *m, bad, nullptr, nullptr, &res);
    CHECK_EQ(st.code, Code::NonFinite);
    std::vector<float> snap(s2->padded_floats());
    s2->snapshot(snap.data());
    for (size_t k = 0; k < s2->tensor_count(); ++k)
      for (size_t i = 0; i < s2->tensor(k).size; ++i) CHECK(std::isfinite(snap[s2->tensor(k).offset + i]));
    CHECK_EQ(res.reason, train::StopReason::Error);
  }
}

}  // namespace

int main() {
  test_gradients();
  test_shapes_and_errors();
  test_trainer_modes();
  test_trainer_control();
  return gvtest::finish("test_models");
}
