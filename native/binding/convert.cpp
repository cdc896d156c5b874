#include "convert.h"

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

double num(const Napi::Object& o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) throw_arg(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool flag(const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  return v.ToBoolean().Value();
}

std::string str(const Napi::Object& o, const char* key, const char* dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsString()) throw_arg(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

gv::StoreConfig to_config(Napi::Env env, const Napi::Object& c) {
  gv::StoreConfig cfg;
  if (!gv::parse_mode(str(c, "mode", "atomic"), &cfg.mode)) throw_arg(env, "unknown mode");
  Napi::Value ov = c.Get("optimizer");
  if (ov.IsObject()) {
    Napi::Object o = ov.As<Napi::Object>();
    std::string kind = str(o, "kind", "sgd");
    auto& a = cfg.optimizer;
    if (kind == "sgd") a.kind = gv::kernels::OptKind::Sgd;
    else if (kind == "adagrad") a.kind = gv::kernels::OptKind::Adagrad;
    else if (kind == "rmsprop") a.kind = gv::kernels::OptKind::Rmsprop;
    else if (kind == "adam") a.kind = gv::kernels::OptKind::Adam;
    else throw_arg(env, "unknown optimizer kind");
    a.lr = static_cast<float>(num(o, "lr", 0.01));
    a.momentum = static_cast<float>(num(o, "momentum", 0));
    a.nesterov = flag(o, "nesterov", false);
    a.weightDecay = static_cast<float>(num(o, "weightDecay", 0));
    a.decoupled = flag(o, "decoupled", false);
    a.beta1 = static_cast<float>(num(o, "beta1", 0.9));
    a.beta2 = static_cast<float>(num(o, "beta2", 0.999));
    a.alpha = static_cast<float>(num(o, "alpha", 0.99));
    a.eps = static_cast<float>(num(o, "eps", 1e-8));
  }
  Napi::Value sv = c.Get("staleness");
  if (sv.IsObject()) {
    Napi::Object s = sv.As<Napi::Object>();
    std::string policy = str(s, "policy", "accept");
    if (policy == "accept") cfg.stalePolicy = gv::StalePolicy::Accept;
    else if (policy == "scale") cfg.stalePolicy = gv::StalePolicy::Scale;
    else if (policy == "reject") cfg.stalePolicy = gv::StalePolicy::Reject;
    else throw_arg(env, "unknown staleness policy");
    double bound = num(s, "bound", -1);
    if (bound >= 0) cfg.staleBound = static_cast<uint64_t>(bound);
  }
  cfg.nonFinite = str(c, "nonFinite", "reject") == "skip" ? gv::NonFinitePolicy::Skip : gv::NonFinitePolicy::Reject;
  cfg.syncEvery = static_cast<uint64_t>(num(c, "syncEvery", 1));
  cfg.seed = static_cast<uint64_t>(num(c, "seed", 0));
  double shard = num(c, "shardFloats", 16384);
  cfg.shardFloats = shard >= 16 ? static_cast<size_t>(shard) : 0;
  return cfg;
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
    s.name = str(t, "name", "");
    Napi::Value shape = t.Get("shape");
    if (!shape.IsArray()) throw_arg(env, "shape must be an array");
    Napi::Array sh = shape.As<Napi::Array>();
    for (uint32_t d = 0; d < sh.Length(); ++d) {
      Napi::Value dv = sh.Get(d);
      if (!dv.IsNumber()) throw_arg(env, "shape entries must be numbers");
      s.shape.push_back(dv.As<Napi::Number>().Int64Value());
    }
    std::string init = str(t, "init", "zeros");
    if (init == "zeros") s.init = gv::InitKind::Zeros;
    else if (init == "glorot") s.init = gv::InitKind::Glorot;
    else if (init == "normal") s.init = gv::InitKind::Normal;
    else if (init == "values") {
      s.init = gv::InitKind::Values;
      Napi::Value vals = t.Get("values");
      if (!vals.IsTypedArray() || vals.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw_arg(env, "values must be a Float32Array");
      Napi::Float32Array f = vals.As<Napi::Float32Array>();
      s.values.assign(f.Data(), f.Data() + f.ElementLength());
    } else throw_arg(env, "unknown init");
    s.std = static_cast<float>(num(t, "std", 0.01));
    out.push_back(std::move(s));
  }
  return out;
}

std::string string_arg(const Napi::CallbackInfo& info, uint32_t k, const char* name) {
  if (info.Length() <= k || !info[k].IsString()) throw_arg(info.Env(), std::string(name) + " must be a string");
  return info[k].As<Napi::String>().Utf8Value();
}

Napi::Object options_arg(const Napi::CallbackInfo& info, uint32_t k) {
  if (info.Length() <= k || !info[k].IsObject()) return Napi::Object::New(info.Env());
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
  if (!gv::model::parse_kind(str(o, "kind", ""), &m.kind)) throw_arg(env, "unknown model kind");
  Napi::Value h = o.Get("hidden");
  if (h.IsArray()) {
    m.hidden.clear();
    Napi::Array a = h.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value x = a.Get(i);
      if (!x.IsNumber()) throw_arg(env, "hidden entries must be numbers");
      double w = x.As<Napi::Number>().DoubleValue();
      m.hidden.push_back(w >= 1 && w <= 65536 ? static_cast<uint32_t>(w) : 0);
    }
  }
  double rank = num(o, "rank", 10);
  m.rank = rank >= 1 && rank <= 4096 ? static_cast<uint32_t>(rank) : 0;
  m.biases = flag(o, "biases", true);
  m.l2 = static_cast<float>(num(o, "l2", 0));
  return m;
}

gv::train::TrainerConfig to_trainer_config(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) throw_arg(env, "trainer options must be an object");
  Napi::Object o = v.As<Napi::Object>();
  gv::train::TrainerConfig c;
  c.threads = static_cast<uint32_t>(num(o, "threads", 1));
  c.epochs = static_cast<uint32_t>(num(o, "epochs", 1));
  c.batchSize = static_cast<uint32_t>(num(o, "batchSize", 1));
  c.seed = static_cast<uint64_t>(num(o, "seed", 0));
  c.lr = static_cast<float>(num(o, "lr", 0));
  std::string sched = str(o, "schedule", "constant");
  c.schedule = sched == "step" ? gv::train::Schedule::Step
               : sched == "inverse-sqrt" ? gv::train::Schedule::InverseSqrt
                                         : gv::train::Schedule::Constant;
  c.stepEvery = static_cast<uint32_t>(num(o, "stepEvery", 1));
  c.gamma = static_cast<float>(num(o, "gamma", 0.5));
  c.scale = num(o, "scale", 1000);
  c.maxAhead = static_cast<int64_t>(num(o, "maxAhead", -1));
  c.targetLoss = num(o, "targetLoss", NAN);
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
