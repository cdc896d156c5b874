#include "convert.h"

#include <climits>
#include <cmath>


namespace gv::binding {

// ---- errors

Napi::Error make_error(Napi::Env env, Code code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", gv::code_name(code));
  return e;
}

Napi::Error status_error(Napi::Env env, const Status& s, const Store* store) {
  Napi::Error e = make_error(env, s.code, s.message);
  if (!s.field.empty()) e.Set("field", s.field);
  if (!s.tensorName.empty()) e.Set("tensor", s.tensorName);
  if (s.tensor >= 0 && store && static_cast<size_t>(s.tensor) < store->tensor_count())
    e.Set("tensor", store->tensor(static_cast<size_t>(s.tensor)).name);
  if (s.index >= 0) e.Set("index", Napi::Number::New(env, static_cast<double>(s.index)));
  if (!s.file.empty()) e.Set("file", s.file);
  if (s.line >= 0) e.Set("line", Napi::Number::New(env, static_cast<double>(s.line)));
  if (s.column >= 0) e.Set("column", Napi::Number::New(env, static_cast<double>(s.column)));
  if (s.offset >= 0) e.Set("offset", Napi::Number::New(env, static_cast<double>(s.offset)));
  return e;
}

[[noreturn]] void throw_arg(Napi::Env env, const std::string& what) {
  throw make_error(env, Code::InvalidArgument, what);
}

// ---- config conversion
//
// The facade sends every field the glue reads (lib/native.ts declares them,
// resolved by lib/config.ts and lib/trainer.ts): a missing one is a bug
// there, an internal error here, never a default. Defaults live in
// lib/config.ts and the core's structs only.

Napi::Value field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) throw make_error(o.Env(), Code::Internal, std::string("the addon was called without the field '") + key + "'");
  return v;
}

double num(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsNumber()) throw_arg(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool flag(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsBoolean()) throw_arg(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

int64_t integer(const Napi::Object& o, const char* key, int64_t lo, int64_t hi) {
  const double x = num(o, key);
  if (!(x >= static_cast<double>(lo) && x <= static_cast<double>(hi)) || x != std::floor(x))
    throw_arg(o.Env(), std::string(key) + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int64_t>(x);
}

std::string str(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsString()) throw_arg(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

static Napi::Object object(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsObject()) throw_arg(o.Env(), std::string(key) + " must be an object");
  return v.As<Napi::Object>();
}

// A core parse_xxx() result: its ERR_CONFIG Status as the error.
static void parsed(Napi::Env env, const Status& s) {
  if (!s.ok()) throw status_error(env, s, nullptr);
}

namespace {

kernels::StepArgs to_optimizer(Napi::Env env, const Napi::Object& o) {
  kernels::StepArgs a;
  parsed(env, gv::parse_optimizer_kind(str(o, "kind"), &a.kind));
  a.lr = static_cast<float>(num(o, "lr"));
  a.momentum = static_cast<float>(num(o, "momentum"));
  a.nesterov = flag(o, "nesterov");
  a.weightDecay = static_cast<float>(num(o, "weightDecay"));
  a.decoupled = flag(o, "decoupled");
  a.beta1 = static_cast<float>(num(o, "beta1"));
  a.beta2 = static_cast<float>(num(o, "beta2"));
  a.alpha = static_cast<float>(num(o, "alpha"));
  a.eps = static_cast<float>(num(o, "eps"));
  return a;
}

// { policy, bound }: bound null is no bound (the core's UINT64_MAX)
ckpt::Staleness to_staleness(Napi::Env env, const Napi::Object& st) {
  ckpt::Staleness s;
  parsed(env, gv::parse_stale_policy(str(st, "policy"), &s.policy));
  if (!field(st, "bound").IsNull()) s.bound = static_cast<uint64_t>(num(st, "bound"));
  return s;
}

}  // namespace

gv::StoreConfig to_config(Napi::Env env, const Napi::Object& c) {
  gv::StoreConfig cfg;
  parsed(env, gv::parse_store_mode(str(c, "mode"), &cfg.mode));
  cfg.optimizer = to_optimizer(env, object(c, "optimizer"));
  const ckpt::Staleness st = to_staleness(env, object(c, "staleness"));
  cfg.stalePolicy = st.policy;
  cfg.staleBound = st.bound;
  parsed(env, gv::parse_non_finite(str(c, "nonFinite"), &cfg.nonFinite));
  cfg.syncEvery = static_cast<uint64_t>(num(c, "syncEvery"));
  cfg.seed = static_cast<uint64_t>(num(c, "seed"));
  cfg.verify = flag(c, "verify");
  return cfg;
}

Napi::Object config_js(Napi::Env env, const gv::StoreConfig& c) {
  auto n = [&](float v) { return Napi::Number::New(env, gv::float_decimal(v)); };
  const kernels::StepArgs& a = c.optimizer;
  Napi::Object opt = Napi::Object::New(env);
  opt.Set("kind", optimizer_kind_name(a.kind));
  opt.Set("lr", n(a.lr));
  opt.Set("momentum", n(a.momentum));
  opt.Set("nesterov", a.nesterov);
  opt.Set("weightDecay", n(a.weightDecay));
  opt.Set("decoupled", a.decoupled);
  opt.Set("beta1", n(a.beta1));
  opt.Set("beta2", n(a.beta2));
  opt.Set("alpha", n(a.alpha));
  opt.Set("eps", n(a.eps));
  Napi::Object st = Napi::Object::New(env);
  st.Set("policy", stale_policy_name(c.stalePolicy));
  st.Set("bound", c.staleBound == UINT64_MAX ? env.Null() : Napi::Number::New(env, static_cast<double>(c.staleBound)));
  Napi::Object o = Napi::Object::New(env);
  o.Set("mode", mode_name(c.mode));
  o.Set("optimizer", opt);
  o.Set("staleness", st);
  o.Set("nonFinite", non_finite_name(c.nonFinite));
  o.Set("syncEvery", Napi::Number::New(env, static_cast<double>(c.syncEvery)));
  o.Set("seed", Napi::Number::New(env, static_cast<double>(c.seed)));
  o.Set("verify", c.verify);
  return o;
}

ckpt::LoadOptions to_load_options(Napi::Env env, const Napi::Object& o) {
  ckpt::LoadOptions l;
  // every field is there; null leaves it to the file
  auto given = [&](const char* key) { return !field(o, key).IsNull(); };
  if (given("mode")) {
    Mode m;
    parsed(env, gv::parse_store_mode(str(o, "mode"), &m));
    l.mode = m;
  }
  if (given("optimizer")) l.optimizer = to_optimizer(env, object(o, "optimizer"));
  if (given("staleness")) l.staleness = to_staleness(env, object(o, "staleness"));
  if (given("nonFinite")) {
    NonFinitePolicy p;
    parsed(env, gv::parse_non_finite(str(o, "nonFinite"), &p));
    l.nonFinite = p;
  }
  if (given("syncEvery")) l.syncEvery = static_cast<uint64_t>(num(o, "syncEvery"));
  if (given("seed")) l.seed = static_cast<uint64_t>(num(o, "seed"));
  if (given("verify")) l.verify = flag(o, "verify");
  return l;
}

std::vector<gv::TensorSpec> to_tensors(Napi::Env env, const Napi::Value& v) {
  if (!v.IsArray()) throw_arg(env, "tensors must be an array");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<gv::TensorSpec> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value tv = arr.Get(i);
    if (!tv.IsObject()) throw_arg(env, "tensor spec must be an object");
    Napi::Object t = tv.As<Napi::Object>();
    gv::TensorSpec s;
    s.name = str(t, "name");
    Napi::Value shape = field(t, "shape");
    if (!shape.IsArray()) throw_arg(env, "shape must be an array");
    Napi::Array sh = shape.As<Napi::Array>();
    for (uint32_t d = 0; d < sh.Length(); ++d) {
      Napi::Value dv = sh.Get(d);
      if (!dv.IsNumber()) throw_arg(env, "shape entries must be numbers");
      s.shape.push_back(dv.As<Napi::Number>().Int64Value());
    }
    parsed(env, gv::parse_init(str(t, "init"), &s.init));
    if (s.init == gv::InitKind::Values) {
      Napi::Value vals = field(t, "values");
      if (!vals.IsTypedArray() || vals.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw_arg(env, "values must be a Float32Array");
      Napi::Float32Array f = vals.As<Napi::Float32Array>();
      // bytes, not floats: the array may sit at any address
      s.values.resize(f.ElementLength());
      if (!s.values.empty()) std::memcpy(s.values.data(), f.Data(), s.values.size() * sizeof(float));
    }
    s.std = static_cast<float>(num(t, "std"));
    out.push_back(std::move(s));
  }
  return out;
}

std::string string_arg(const Napi::CallbackInfo& info, uint32_t k, const char* name) {
  if (info.Length() <= k || !info[k].IsString()) throw_arg(info.Env(), std::string(name) + " must be a string");
  return info[k].As<Napi::String>().Utf8Value();
}

Napi::Object object_arg(const Napi::CallbackInfo& info, uint32_t k, const char* name) {
  if (info.Length() <= k || !info[k].IsObject()) throw_arg(info.Env(), std::string(name) + " must be an object");
  return info[k].As<Napi::Object>();
}

Napi::Array shape_js(Napi::Env env, const std::vector<int64_t>& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t d = 0; d < shape.size(); ++d) a.Set(d, Napi::Number::New(env, static_cast<double>(shape[d])));
  return a;
}

gv::model::ModelSpec to_model_spec(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) throw_arg(env, "model must be an object");
  Napi::Object o = v.As<Napi::Object>();
  gv::model::ModelSpec m;
  parsed(env, gv::model::parse_model_kind(str(o, "kind"), &m.kind));
  Napi::Value h = field(o, "hidden");
  if (!h.IsArray()) throw_arg(env, "hidden must be an array");
  m.hidden.clear();
  Napi::Array a = h.As<Napi::Array>();
  // Out-of-range widths and ranks become 0, which the core refuses (a
  // double beyond uint32 would not convert).
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw_arg(env, "hidden entries must be numbers");
    double w = x.As<Napi::Number>().DoubleValue();
    m.hidden.push_back(w >= 1 && w <= 65536 ? static_cast<uint32_t>(w) : 0);
  }
  double rank = num(o, "rank");
  m.rank = rank >= 1 && rank <= 4096 ? static_cast<uint32_t>(rank) : 0;
  m.biases = flag(o, "biases");
  m.l2 = static_cast<float>(num(o, "l2"));
  return m;
}

Napi::Object model_info_js(Napi::Env env, const ModelInfo& m) {
  Napi::Object o = Napi::Object::New(env);
  auto n = [&](double v) { return Napi::Number::New(env, v); };
  o.Set("model", m.kind);
  if (m.kind == "mlp") {
    Napi::Array h = Napi::Array::New(env, m.hidden.size());
    for (size_t i = 0; i < m.hidden.size(); ++i) h.Set(static_cast<uint32_t>(i), n(m.hidden[i]));
    o.Set("hidden", h);
  }
  if (m.kind == "mf") {
    o.Set("rank", n(m.rank));
    o.Set("biases", Napi::Boolean::New(env, m.biases));
    o.Set("l2", n(float_decimal(m.l2)));
    o.Set("users", n(static_cast<double>(m.users)));
    o.Set("items", n(static_cast<double>(m.items)));
  } else {
    o.Set("features", n(static_cast<double>(m.features)));
  }
  if (m.kind == "softmax" || m.kind == "mlp") o.Set("classes", n(static_cast<double>(m.classes)));
  return o;
}

Napi::Object scaler_js(Napi::Env env, const gv::data::Scaler& s) {
  Napi::Object o = Napi::Object::New(env);
  for (auto [key, v] : {std::pair{"mean", &s.mean}, std::pair{"scale", &s.scale}}) {
    Napi::Float64Array a = Napi::Float64Array::New(env, v->size());
    if (!v->empty()) std::memcpy(a.Data(), v->data(), v->size() * sizeof(double));
    o.Set(key, a);
  }
  return o;
}

gv::train::TrainerConfig to_trainer_config(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) throw_arg(env, "trainer options must be an object");
  Napi::Object o = v.As<Napi::Object>();
  gv::train::TrainerConfig c;
  c.threads = static_cast<uint32_t>(num(o, "threads"));
  c.epochs = static_cast<uint32_t>(num(o, "epochs"));
  c.batchSize = static_cast<uint32_t>(num(o, "batchSize"));
  c.seed = static_cast<uint64_t>(num(o, "seed"));
  c.lr = static_cast<float>(num(o, "lr"));
  parsed(env, gv::train::parse_schedule(str(o, "schedule"), &c.schedule));
  c.stepEvery = static_cast<uint32_t>(num(o, "stepEvery"));
  c.gamma = static_cast<float>(num(o, "gamma"));
  c.scale = num(o, "scale");
  c.maxAhead = static_cast<int64_t>(num(o, "maxAhead"));
  c.targetLoss = num(o, "targetLoss");  // NaN: no target
  return c;
}

static const char* reason_name(gv::SkipReason r) {
  switch (r) {
    case gv::SkipReason::Stale: return "stale";
    case gv::SkipReason::NonFinite: return "nonFinite";
    default: return "";
  }
}

Napi::Object result_object(Napi::Env env, const gv::PushResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("applied", r.applied);
  o.Set("version", Napi::Number::New(env, static_cast<double>(r.version)));
  o.Set("staleness", Napi::Number::New(env, static_cast<double>(r.staleness)));
  if (!r.applied) o.Set("reason", reason_name(r.reason));
  return o;
}

Napi::Object progress_js(Napi::Env env, const gv::train::Progress& p) {
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  set("epoch", p.epoch);
  set("epochs", p.epochs);
  set("samples", static_cast<double>(p.samples));
  set("epochSamples", static_cast<double>(p.epochSamples));
  set("loss", p.loss);
  set("seconds", p.seconds);
  set("epochSeconds", p.epochSeconds);
  set("samplesPerSec", p.samplesPerSec);
  set("lr", p.lr);
  set("version", static_cast<double>(p.version));
  Napi::Object st = Napi::Object::New(env);
  st.Set("mean", Napi::Number::New(env, p.stalenessMean));
  st.Set("max", Napi::Number::New(env, static_cast<double>(p.stalenessMax)));
  st.Set("rejected", Napi::Number::New(env, static_cast<double>(p.rejected)));
  st.Set("skipped", Napi::Number::New(env, static_cast<double>(p.skipped)));
  o.Set("staleness", st);
  set("conflicts", static_cast<double>(p.conflicts));
  return o;
}

}  // namespace gv::binding
