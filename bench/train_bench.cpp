// gv_bench_train: the native trainer alone (no Node), for thread scaling on
// machines with many cores. Trains one model per (mode, threads) pair on one
// data set and prints samples/s, loss and test accuracy, one JSON line each.
//
//   gv_bench_train --data fashion|rcv1|blobs|ratings|FILE.svm --model softmax --modes atomic,hogwild
//                  --threads 1,2,4 --batch 32 --epochs 1 --lr 0.1 [--hidden 128] [--rows N] [--reps 3]
//                  [--fashion DIR] [--json FILE] [--resume FILE] [--save FILE] [--paths per-sample,generic]
//
// fashion: Fashion-MNIST (Debian dataset-fashion-mnist) train/test; rcv1:
// the RCV1-like synthetic sparse set (200,000 + 20,000 rows); blobs: dense
// synthetic 3-class; ratings: synthetic ratings for mf. --reps runs each
// configuration several times and reports the median throughput.
// --paths: at batch 1, the per-sample path (trainer/sample.h, the default
// where the run qualifies) and/or the generic snapshot-grad-push path, each
// configuration run with each, in that order (before and after in one run).
// --resume starts every run from a checkpoint (its parameters, optimizer and
// state; the mode from --modes) instead of a new store, and --save writes the
// last run's store: a C++ caller saves and resumes through the core alone
// (native/core/checkpoint), in the format ParameterStore.load reads.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/checkpoint/checkpoint.h"
#include "core/data/dataset.h"
#include "core/model/model.h"
#include "core/store.h"
#include "core/trainer/trainer.h"
#include "kernels/dispatch.h"

using namespace gv;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ',')) out.push_back(x);
  return out;
}

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "gv_bench_train: %s\n", m.c_str());
  std::exit(2);
}

void ok(const Status& s, const char* what) {
  if (!s.ok()) die(std::string(what) + ": " + s.message + (s.file.empty() ? "" : " (" + s.file + ")"));
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  std::string dataName = "fashion", modelName = "softmax", modes = "atomic", threads = "1,2", json, fashionDir = "/usr/share/datasets/fashion-mnist";
  std::string resume, save, paths = "per-sample";
  uint32_t batch = 32, epochs = 1, reps = 1;
  float lr = 0.1f;
  std::vector<uint32_t> hidden{128};
  uint64_t rows = 0, seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--data") dataName = next();
    else if (a == "--model") modelName = next();
    else if (a == "--modes") modes = next();
    else if (a == "--threads") threads = next();
    else if (a == "--batch") batch = std::stoul(next());
    else if (a == "--epochs") epochs = std::stoul(next());
    else if (a == "--reps") reps = std::stoul(next());
    else if (a == "--lr") lr = std::stof(next());
    else if (a == "--rows") rows = std::stoull(next());
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--json") json = next();
    else if (a == "--fashion") fashionDir = next();
    else if (a == "--resume") resume = next();
    else if (a == "--save") save = next();
    else if (a == "--paths") paths = next();
    else if (a == "--hidden") {
      hidden.clear();
      for (auto& h : split(next())) hidden.push_back(std::stoul(h));
    } else if (a == "-h" || a == "--help") {
      std::printf("see the comment at the top of bench/train_bench.cpp\n");
      return 0;
    } else die("unknown option " + a);
  }

  data::Dataset train, test;
  const auto t0 = std::chrono::steady_clock::now();
  if (dataName == "fashion") {
    ok(data::load_idx(fashionDir + "/train-images-idx3-ubyte.gz", fashionDir + "/train-labels-idx1-ubyte.gz", true, &train), "fashion train");
    ok(data::load_idx(fashionDir + "/t10k-images-idx3-ubyte.gz", fashionDir + "/t10k-labels-idx1-ubyte.gz", true, &test), "fashion test");
  } else {
    data::Dataset all;
    data::SyntheticOptions o;
    o.seed = 7;
    uint64_t n = rows ? rows : 200000;
    if (dataName == "rcv1") {
      o.rows = n + n / 10;
      ok(data::synthetic("sparse-logistic", o, &all), "synthetic");
    } else if (dataName == "blobs") {
      o.rows = n + n / 10;
      o.features = 100;
      o.classes = 3;
      ok(data::synthetic("blobs", o, &all), "synthetic");
    } else if (dataName == "ratings") {
      o.rows = n + n / 10;
      o.users = 10000;
      o.items = 5000;
      ok(data::synthetic("ratings", o, &all), "synthetic");
    } else {
      ok(data::load_libsvm(dataName, {}, &all), "libsvm");
      n = all.rows - all.rows / 11;
    }
    ok(data::slice(all, 0, n, &train), "slice");
    ok(data::slice(all, n, all.rows, &test), "slice");
  }
  if (rows && rows < train.rows) {
    data::Dataset cut;
    ok(data::slice(train, 0, rows, &cut), "slice");
    train = std::move(cut);
  }
  const double loadSec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  model::ModelSpec ms;
  if (!model::parse_kind(modelName, &ms.kind)) die("unknown model " + modelName);
  ms.hidden = hidden;
  std::unique_ptr<model::Model> m;
  ok(model::Model::create(ms, model::Model::dims_of(train), &m), "model");

  std::printf("# machine: %s, %u hardware threads, kernels %s\n", cpu_model().c_str(), std::thread::hardware_concurrency(),
              kernels::active().name);
  std::printf("# data %s: %llu train rows, %llu test rows, %llu features (loaded in %.2f s); model %s, batch %u, epochs %u, lr %s\n",
              dataName.c_str(), (unsigned long long)train.rows, (unsigned long long)test.rows,
              (unsigned long long)train.features, loadSec, modelName.c_str(), batch, epochs,
              resume.empty() ? std::to_string(lr).c_str() : ("the optimizer of " + resume).c_str());
  FILE* jf = json.empty() ? nullptr : std::fopen(json.c_str(), "w");
  if (jf) std::fprintf(jf, "[\n");
  bool first = true;
  std::shared_ptr<Store> last;
  for (const std::string& modeName : split(modes)) {
    Mode mode;
    if (!parse_mode(modeName, &mode)) die("unknown mode " + modeName);
    for (const std::string& ts : split(threads))
    for (const std::string& path : split(paths)) {
      if (path != "per-sample" && path != "generic") die("--paths: per-sample or generic, got " + path);
      // batches of more than one always take the generic path: say so
      const std::string taken = batch == 1 ? path : "generic";
      const uint32_t T = std::stoul(ts);
      std::vector<double> sps;
      double loss = 0, acc = 0, rmse = 0, stale = 0;
      for (uint32_t r = 0; r < reps; ++r) {
        StoreConfig sc;
        sc.mode = mode;
        sc.optimizer.lr = lr;
        sc.seed = seed;
        sc.syncEvery = T;
        std::shared_ptr<Store> store;
        if (resume.empty()) {
          ok(Store::create(sc, m->tensors(), &store), "store");
        } else {
          ckpt::LoadOptions lo;
          lo.mode = mode;
          if (mode == Mode::Averaging) lo.syncEvery = T;
          ok(ckpt::load(resume, lo, &store), "resume");
          if (store->tensor_count() != m->tensors().size()) die(resume + ": not a checkpoint of model " + modelName + " on these data");
        }
        train::TrainerConfig tc;
        tc.threads = T;
        tc.epochs = epochs;
        tc.batchSize = batch;
        tc.seed = seed;
        tc.perSample = path == "per-sample";
        train::Result res;
        double staleSum = 0;
        ok(train::train(tc, *store, *m, train, nullptr, [&](const train::Progress& p) { staleSum += p.stalenessMean; }, &res), "train");
        sps.push_back(res.samplesPerSec);
        std::vector<float> snap(store->padded_floats());
        store->snapshot(snap.data());
        std::vector<const float*> p;
        for (size_t k = 0; k < store->tensor_count(); ++k) p.push_back(snap.data() + store->tensor(k).offset);
        model::EvalSums ev;
        ok(model::evaluate(*m, p.data(), test, &ev), "evaluate");
        loss = ev.loss / ev.rows;
        acc = double(ev.correct) / ev.rows;
        rmse = std::sqrt(ev.sqErr / ev.rows);
        stale = staleSum / res.epochs;
        // every batch one push (a thread's share of the rows in batches of
        // `batch`, its last one shorter), in every mode but averaging (which
        // counts its rounds' pushes as it applies them)
        uint64_t batches = 0;
        for (uint32_t t = 0; t < T; ++t) {
          const uint64_t share = train.rows * (t + 1) / T - train.rows * t / T;
          batches += (share + batch - 1) / batch;
        }
        const Stats st = store->stats();
        if (mode != Mode::Averaging && st.pushes != batches * res.epochs)
          die("pushes " + std::to_string(st.pushes) + " != batches " + std::to_string(batches * res.epochs) + " (" +
              std::to_string(res.samples) + " samples)");
        last = store;
      }
      std::sort(sps.begin(), sps.end());
      const double med = sps[sps.size() / 2];
      std::printf("%-13s %-10s threads %-3u %12.0f samples/s  test loss %.4f  %s %.4f  staleness %.2f\n", modeName.c_str(), taken.c_str(), T, med, loss,
                  m->regression() ? "rmse" : "accuracy", m->regression() ? rmse : acc, stale);
      if (jf)
        std::fprintf(jf,
                     "%s  {\"bench\": \"train\", \"data\": \"%s\", \"model\": \"%s\", \"mode\": \"%s\", \"path\": \"%s\", \"threads\": %u, \"batch\": %u, "
                     "\"epochs\": %u, \"lr\": %g, \"samplesPerSec\": %.1f, \"testLoss\": %.6f, \"testAccuracy\": %.6f, \"rmse\": %.6f, "
                     "\"staleness\": %.3f, \"reps\": %u, \"isa\": \"%s\"}",
                     first ? "" : ",\n", dataName.c_str(), modelName.c_str(), modeName.c_str(), taken.c_str(), T, batch, epochs, lr, med, loss,
                     m->regression() ? 0.0 : acc, m->regression() ? rmse : 0.0, stale, reps, kernels::active().name);
      first = false;
    }
  }
  if (jf) {
    std::fprintf(jf, "\n]\n");
    std::fclose(jf);
  }
  if (!save.empty() && last) {
    ckpt::SaveInfo si;
    ok(ckpt::save(*last, save, &si), "save");
    std::printf("# saved version %llu to %s\n", (unsigned long long)si.version, save.c_str());
  }
  return 0;
}
