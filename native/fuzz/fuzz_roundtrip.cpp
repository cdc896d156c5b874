// Structured round trip: the input chooses a store (mode, optimizer, 1-4
// tensors with any names and small shapes, staleness, nonFinite, verify),
// pushes into it, and extra metadata; the store is saved with ckpt::save to
// a real file, read back with st::read (the metadata checked), and opened
// with ckpt::load, the one load path (the facade's and gv_bench_train's),
// without options: everything must come back bit for bit: configuration,
// parameters, optimizer state, deterministic's fixed-point values,
// averaging's open round, version, step and metadata; then (the input's
// last choice) a built-in model's store with its model record (metadata
// "model"), which must come back as it was.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/metadata.h"
#include "core/checkpoint/safetensors.h"
#include "core/model/model.h"
#include "core/store.h"
#include "fuzz.h"

namespace {

std::string dir() {
  static std::string d = [] {
    std::string p = "/dev/shm/gv-fuzz-roundtrip-" + std::to_string(getpid());
    std::filesystem::create_directories(p);
    std::atexit([] { std::filesystem::remove_all("/dev/shm/gv-fuzz-roundtrip-" + std::to_string(getpid())); });
    return p;
  }();
  return d;
}

std::vector<uint8_t> bytes_of(const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  return std::vector<uint8_t>(b, b + n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  gv::StoreConfig cfg;
  cfg.mode = static_cast<gv::Mode>(in.ConsumeIntegralInRange<int>(0, 5));
  cfg.optimizer.kind = static_cast<gv::kernels::OptKind>(in.ConsumeIntegralInRange<int>(0, 3));
  cfg.optimizer.lr = in.ConsumeFloatingPointInRange<float>(1e-4f, 1.f);
  if (in.ConsumeBool()) cfg.optimizer.momentum = 0.9f;
  if (in.ConsumeBool()) cfg.optimizer.weightDecay = 0.01f;
  cfg.syncEvery = in.ConsumeIntegralInRange<uint64_t>(1, 3);
  cfg.seed = in.ConsumeIntegral<uint8_t>();
  cfg.shardFloats = 16 * in.ConsumeIntegralInRange<size_t>(1, 4);
  if (in.ConsumeBool() && cfg.mode != gv::Mode::Averaging && cfg.mode != gv::Mode::Deterministic) {
    cfg.stalePolicy = static_cast<gv::StalePolicy>(in.ConsumeIntegralInRange<int>(0, 2));
    if (in.ConsumeBool()) cfg.staleBound = in.ConsumeIntegral<uint16_t>();
  }
  cfg.nonFinite = in.ConsumeBool() ? gv::NonFinitePolicy::Skip : gv::NonFinitePolicy::Reject;
  cfg.verify = in.ConsumeBool();
  std::vector<gv::TensorSpec> specs;
  const int nt = in.ConsumeIntegralInRange<int>(1, 4);
  for (int t = 0; t < nt; ++t) {
    gv::TensorSpec sp;
    sp.name = in.ConsumeRandomLengthString(24);
    const int nd = in.ConsumeIntegralInRange<int>(0, 3);
    for (int d = 0; d < nd; ++d) sp.shape.push_back(in.ConsumeIntegralInRange<int64_t>(0, 40));
    sp.init = in.ConsumeBool() ? gv::InitKind::Glorot : gv::InitKind::Normal;
    specs.push_back(std::move(sp));
  }
  std::shared_ptr<gv::Store> a;
  if (!gv::Store::create(cfg, specs, &a).ok()) return 0;  // e.g. an empty or repeated name
  if (std::getenv("GV_FUZZ_VERBOSE"))
    std::fprintf(stderr, "mode %s, optimizer %d, momentum %g, decay %g, %zu tensors\n", gv::mode_name(cfg.mode),
                 int(cfg.optimizer.kind), double(cfg.optimizer.momentum), double(cfg.optimizer.weightDecay), a->tensor_count());

  // Pushes: whole-tensor gradients of fuzzed floats (a non-finite or
  // out-of-range one is refused, and must leave the store unchanged).
  const int pushes = in.ConsumeIntegralInRange<int>(0, 6);
  for (int p = 0; p < pushes && in.remaining_bytes() > 0; ++p) {
    std::vector<std::vector<float>> g(a->tensor_count());
    std::vector<gv::Grad> grads;
    for (size_t t = 0; t < a->tensor_count(); ++t) {
      if (!in.ConsumeBool()) continue;
      g[t].resize(a->tensor(t).size);
      const float scale = in.ConsumeFloatingPointInRange<float>(-2.f, 2.f);
      for (float& x : g[t]) x = scale * (in.ConsumeIntegral<uint8_t>() - 128) / 64.f;
      if (!g[t].empty() && in.ConsumeIntegralInRange<int>(0, 15) == 0) g[t][0] = NAN;
      grads.push_back({static_cast<uint32_t>(t), g[t].data(), g[t].size()});
    }
    std::vector<float> before(a->padded_floats());
    const uint64_t v0 = a->snapshot(before.data());
    gv::PushResult r;
    gv::Status s = a->push(grads.data(), grads.size(), -1, &r);
    if (!s.ok()) {
      std::vector<float> after(a->padded_floats());
      FUZZ_CHECK(a->snapshot(after.data()) == v0, "a refused push changed the version: %s", s.message.c_str());
      for (size_t t = 0; t < a->tensor_count(); ++t) {
        const gv::TensorInfo& ti = a->tensor(t);
        FUZZ_CHECK(std::memcmp(before.data() + ti.offset, after.data() + ti.offset, ti.size * 4) == 0,
                   "a refused push changed '%s': %s", ti.name.c_str(), s.message.c_str());
      }
    }
  }
  std::vector<std::pair<std::string, std::string>> meta;
  const int nm = in.ConsumeIntegralInRange<int>(0, 2);
  for (int m = 0; m < nm; ++m) {
    std::string k = "x-" + in.ConsumeRandomLengthString(12);
    if (m == 1 && k == meta[0].first) k += "2";  // keys are unique (the facade's metadata is an object)
    meta.emplace_back(k, in.ConsumeRandomLengthString(40));
  }

  const std::string file = dir() + "/ckpt.safetensors";
  gv::ckpt::SaveInfo info;
  gv::Status s = gv::ckpt::save(*a, file, &info, meta);
  FUZZ_CHECK(s.ok(), "save failed: %s", s.message.c_str());
  gv::StateImage img;
  FUZZ_CHECK(a->export_state(&img).ok(), "export");

  gv::st::Header h;
  std::vector<uint8_t> body;
  s = gv::st::read(file, uint64_t(1) << 30, &h, &body);
  FUZZ_CHECK(s.ok(), "the reader refuses what the writer wrote: %s", s.message.c_str());
  FUZZ_CHECK(h.meta("format") && *h.meta("format") == gv::ckpt::kFormat, "format");
  FUZZ_CHECK(h.meta("mode") && *h.meta("mode") == gv::mode_name(cfg.mode), "mode");
  FUZZ_CHECK(h.meta("version") && *h.meta("version") == std::to_string(img.version), "version");
  FUZZ_CHECK(h.meta("step") && *h.meta("step") == std::to_string(img.step), "step");
  for (const auto& kv : meta) {
    const std::string* v = h.meta(kv.first);
    FUZZ_CHECK(v && *v == kv.second, "metadata '%s'", kv.first.c_str());
  }

  // Back through the core's one load path, with no options: the file decides.
  std::shared_ptr<gv::Store> b;
  s = gv::ckpt::load(file, {}, &b);
  FUZZ_CHECK(s.ok(), "load refuses what save wrote: %s", s.message.c_str());
  const gv::StoreConfig& c = b->config();
  // (shardFloats and seed are not the file's: layout and initial values come from its tensors)
  FUZZ_CHECK(c.mode == cfg.mode && c.stalePolicy == cfg.stalePolicy && c.staleBound == cfg.staleBound &&
                 c.nonFinite == cfg.nonFinite && c.verify == cfg.verify && (cfg.mode != gv::Mode::Averaging || c.syncEvery == cfg.syncEvery),
             "configuration differs after the round trip");
  FUZZ_CHECK(gv::ckpt::slot_names(c.optimizer) == gv::ckpt::slot_names(cfg.optimizer) && c.optimizer.kind == cfg.optimizer.kind &&
                 c.optimizer.lr == cfg.optimizer.lr && c.optimizer.weightDecay == cfg.optimizer.weightDecay &&
                 // momentum is sgd's setting: the file records each kind's own settings only
                 (cfg.optimizer.kind != gv::kernels::OptKind::Sgd || c.optimizer.momentum == cfg.optimizer.momentum),
             "optimizer differs after the round trip");
  FUZZ_CHECK(b->tensor_count() == a->tensor_count(), "tensor count");
  for (size_t t = 0; t < a->tensor_count(); ++t)
    FUZZ_CHECK(b->tensor(t).name == a->tensor(t).name && b->tensor(t).shape == a->tensor(t).shape, "tensor %zu", t);
  gv::StateImage again;
  FUZZ_CHECK(b->export_state(&again).ok(), "export b");
  FUZZ_CHECK(again.version == img.version && again.step == img.step && again.pending == img.pending, "counters");
  for (size_t t = 0; t < a->tensor_count(); ++t) {
    const gv::TensorInfo& ti = a->tensor(t);
    auto same = [&](const auto& x, const auto& y, const char* what) {
      FUZZ_CHECK(x.size() == y.size(), "%s sizes", what);
      if (x.empty()) return;
      const size_t es = sizeof(x[0]);
      FUZZ_CHECK(bytes_of(x.data() + ti.offset, ti.size * es) == bytes_of(y.data() + ti.offset, ti.size * es),
                 "%s of '%s' differs after the round trip", what, ti.name.c_str());
    };
    same(img.params, again.params, "parameters");
    same(img.s1, again.s1, "optimizer state 1");
    same(img.s2, again.s2, "optimizer state 2");
    same(img.fixed, again.fixed, "fixed-point values");
    if (img.pending > 0 && img.roundTensors[t]) same(img.round, again.round, "round sums");
  }
  // a store that was never given a model records none
  FUZZ_CHECK(!h.meta("model") && !b->model().known(), "a model record where none was set");

  // A built-in model's store and its record: the same record back.
  if (in.remaining_bytes() == 0 || !in.ConsumeBool()) return 0;
  gv::model::ModelSpec spec;
  spec.kind = static_cast<gv::model::Kind>(in.ConsumeIntegralInRange<int>(0, 5));
  spec.hidden.assign(in.ConsumeIntegralInRange<size_t>(1, 3), 0);
  for (uint32_t& w : spec.hidden) w = in.ConsumeIntegralInRange<uint32_t>(1, 6);
  spec.rank = in.ConsumeIntegralInRange<uint32_t>(1, 4);
  spec.biases = in.ConsumeBool();
  spec.l2 = in.ConsumeFloatingPointInRange<float>(0.f, 1.f);
  gv::model::Dims dims{in.ConsumeIntegralInRange<uint64_t>(1, 9), in.ConsumeIntegralInRange<uint64_t>(2, 5),
                       in.ConsumeIntegralInRange<uint64_t>(1, 9), in.ConsumeIntegralInRange<uint64_t>(1, 9)};
  std::unique_ptr<gv::model::Model> m;
  s = gv::model::Model::create(spec, dims, &m);
  FUZZ_CHECK(s.ok(), "model: %s", s.message.c_str());
  std::shared_ptr<gv::Store> ms, mb;
  s = gv::Store::create(cfg, m->tensors(), &ms);
  FUZZ_CHECK(s.ok(), "a model's store: %s", s.message.c_str());
  gv::ModelInfo mi = gv::model::info_of(*m);
  // a scaler of standardized data (all but mf): its doubles must come back bit for bit
  if (mi.kind != "mf" && in.ConsumeBool()) {
    for (uint64_t j = 0; j < mi.features; ++j) {
      const double a = in.ConsumeFloatingPoint<double>(), b = std::fabs(in.ConsumeFloatingPoint<double>());
      mi.scaler.mean.push_back(std::isfinite(a) ? a : 0.0);
      mi.scaler.scale.push_back(std::isfinite(b) && b > 0 ? b : 1.0);
    }
  }
  FUZZ_CHECK(ms->set_model(mi).ok(), "set_model");
  s = gv::ckpt::save(*ms, file, &info);
  FUZZ_CHECK(s.ok(), "save of a model's store: %s", s.message.c_str());
  s = gv::st::read(file, uint64_t(1) << 30, &h, &body);
  FUZZ_CHECK(s.ok() && h.meta("model") && *h.meta("model") == gv::ckpt::model_json(mi), "the model record written");
  s = gv::ckpt::load(file, {}, &mb);
  FUZZ_CHECK(s.ok(), "load refuses a model's store: %s", s.message.c_str());
  FUZZ_CHECK(mb->model() == mi, "the model record differs after the round trip: %s", gv::model_text(mb->model()).c_str());
  return 0;
}
