// Models, the native trainer, evaluate() and predict(): modelTensors, evaluate, predict, train,
// and the runs each environment keeps so its teardown can stop them.
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "binding.h"
#include "convert.h"
#include "worker.h"

namespace gv::binding {

// One training run: owned jointly by its thread, the JS handle and the
// progress events in flight.
struct TrainRun {
  std::shared_ptr<Store> store;
  DatasetPtr data;
  std::unique_ptr<gv::model::Model> model;
  gv::train::TrainerConfig cfg;
  std::atomic<bool> cancel{false};
  Napi::ThreadSafeFunction tsfn;
  Napi::Promise::Deferred deferred;
  std::thread thread;
  Status status;
  gv::train::Result result;
  // what poll() reads while the run trains; shared with the handle's poll,
  // which outlives the run
  std::shared_ptr<gv::train::Monitor> monitor;
  explicit TrainRun(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

namespace {

void join_run(TrainRun& r) {
  if (r.thread.joinable()) r.thread.join();
}

struct TrainEvent {
  std::shared_ptr<TrainRun> run;
  bool final = false;
  gv::train::Progress progress;
};

// poll()'s object (lib/native.ts NativeLive).
Napi::Object live_js(Napi::Env env, const gv::train::Live& l) {
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  o.Set("started", Napi::Boolean::New(env, l.started));
  o.Set("finished", Napi::Boolean::New(env, l.finished));
  set("epoch", l.epoch);
  set("epochs", l.epochs);
  set("samples", static_cast<double>(l.samples));
  set("epochSamples", static_cast<double>(l.epochSamples));
  set("batches", static_cast<double>(l.batches));
  set("loss", l.loss);
  set("seconds", l.seconds);
  set("epochSeconds", l.epochSeconds);
  set("lr", l.lr);
  set("version", static_cast<double>(l.version));
  return o;
}

Napi::Array tensor_specs_js(Napi::Env env, const gv::model::Model& m) {
  Napi::Array out = Napi::Array::New(env);
  uint32_t k = 0;
  for (const gv::TensorSpec& t : m.tensors()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    o.Set("shape", shape_js(env, t.shape));
    o.Set("init", gv::init_name(t.init));
    o.Set("std", Napi::Number::New(env, t.std));
    out.Set(k++, o);
  }
  return out;
}

}  // namespace

// modelTensors(model, dataset) -> [{ name, shape, init, std }]: the store a
// model needs for this data.
Napi::Value model_tensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  gv::model::ModelSpec spec = to_model_spec(env, info[0]);
  DatasetPtr d = dataset_arg(info, 1);
  std::unique_ptr<gv::model::Model> m;
  Status s = gv::model::Model::create(spec, gv::model::Model::dims_of(*d), &m);
  if (!s.ok()) throw status_error(env, s, nullptr);
  return tensor_specs_js(env, *m);
}

namespace {

// A snapshot's tensors as (names, shapes, arrays) at info[0..2]. Misaligned
// arrays are copied into keep; own = true copies every array (a job off the
// JS thread must not read JS memory).
std::vector<gv::model::NamedArray> named_arrays(const Napi::CallbackInfo& info, const char* what,
                                                std::vector<std::vector<float>>* keep, bool own) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsArray() || !info[1].IsArray() || !info[2].IsArray())
    throw_arg(env, std::string(what) + " expects (names, shapes, arrays, model, dataset)");
  Napi::Array names = info[0].As<Napi::Array>(), shapes = info[1].As<Napi::Array>(), arrays = info[2].As<Napi::Array>();
  const uint32_t n = names.Length();
  if (shapes.Length() != n || arrays.Length() != n) throw_arg(env, "names, shapes and arrays must have one entry per tensor");
  std::vector<gv::model::NamedArray> tensors(n);
  keep->assign(n, {});
  for (uint32_t i = 0; i < n; ++i) {
    gv::model::NamedArray& t = tensors[i];
    t.name = names.Get(i).ToString().Utf8Value();
    Napi::Value sv = shapes.Get(i);
    if (!sv.IsArray()) throw_arg(env, "shapes entries must be arrays");
    Napi::Array sa = sv.As<Napi::Array>();
    for (uint32_t d = 0; d < sa.Length(); ++d) t.shape.push_back(sa.Get(d).ToNumber().Int64Value());
    Napi::Value av = arrays.Get(i);
    if (!av.IsTypedArray() || av.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw_arg(env, "arrays entries must be Float32Arrays");
    Napi::Float32Array f = av.As<Napi::Float32Array>();
    t.size = f.ElementLength();
    if (own) {
      (*keep)[i].assign(f.Data(), f.Data() + t.size);
      t.data = (*keep)[i].data();
    } else {
      t.data = aligned_floats(f, &(*keep)[i]);
    }
  }
  return tensors;
}

Napi::Object prediction_js(Napi::Env env, gv::model::Kind kind, const gv::model::Prediction& r) {
  auto floats = [&](const std::vector<float>& v) {
    Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
    if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
    return a;
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("rows", Napi::Number::New(env, static_cast<double>(r.rows)));
  o.Set("width", Napi::Number::New(env, static_cast<double>(r.width)));
  o.Set("threads", Napi::Number::New(env, r.threads));
  o.Set("values", floats(r.values));
  if (kind != gv::model::Kind::Linear && kind != gv::model::Kind::Mf) {
    Napi::Int32Array c = Napi::Int32Array::New(env, r.classes.size());
    if (!r.classes.empty()) std::memcpy(c.Data(), r.classes.data(), r.classes.size() * sizeof(int32_t));
    o.Set("classes", c);
  }
  if (kind == gv::model::Kind::Logistic || kind == gv::model::Kind::Svm) o.Set("labels", floats(r.labels));
  return o;
}

}  // namespace

// evaluate(names, shapes, arrays, model, dataset) -> { rows, loss, accuracy | rmse }
Napi::Value evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::vector<float>> copies;  // of misaligned arrays
  std::vector<gv::model::NamedArray> tensors = named_arrays(info, "evaluate", &copies, false);
  gv::model::ModelSpec spec = to_model_spec(env, info[3]);
  DatasetPtr d = dataset_arg(info, 4);
  gv::model::Evaluation ev;
  Status s = gv::model::evaluate(spec, tensors, *d, &ev);
  if (!s.ok()) throw status_error(env, s, nullptr);
  Napi::Object o = Napi::Object::New(env);
  o.Set("rows", Napi::Number::New(env, static_cast<double>(ev.rows)));
  o.Set("loss", Napi::Number::New(env, ev.loss));
  if (ev.regression) o.Set("rmse", Napi::Number::New(env, ev.rmse));
  else o.Set("accuracy", Napi::Number::New(env, ev.accuracy));
  return o;
}

// predict(names, shapes, arrays, model, dataset, threads) -> { rows, width, values, classes?, labels? }
Napi::Value predict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::vector<float>> copies;
  std::vector<gv::model::NamedArray> tensors = named_arrays(info, "predict", &copies, false);
  gv::model::ModelSpec spec = to_model_spec(env, info[3]);
  DatasetPtr d = dataset_arg(info, 4);
  const unsigned threads = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Uint32Value() : 0;
  gv::model::Prediction r;
  Status s = gv::model::predict(spec, tensors, *d, &r, threads);
  if (!s.ok()) throw status_error(env, s, nullptr);
  return prediction_js(env, spec.kind, r);
}

// predictAsync(...): predict on the libuv pool, on copies of the tensors.
Napi::Value predict_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto copies = std::make_shared<std::vector<std::vector<float>>>();
  std::vector<gv::model::NamedArray> tensors = named_arrays(info, "predictAsync", copies.get(), true);
  gv::model::ModelSpec spec = to_model_spec(env, info[3]);
  DatasetPtr d = dataset_arg(info, 4);
  const unsigned threads = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Uint32Value() : 0;
  auto job = [copies, tensors = std::move(tensors), spec, d, threads](gv::model::Prediction* out) {
    return gv::model::predict(spec, tensors, *d, out, threads);
  };
  const gv::model::Kind kind = spec.kind;
  return queue_promise<gv::model::Prediction>(
      env, std::move(job), [kind](Napi::Env e, gv::model::Prediction& r) { return prediction_js(e, kind, r); });
}

// train(store, dataset, model, options, onProgress) -> { done: Promise<result>, cancel() }
Napi::Value train(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !is_instance(env, info[0], true) || !info[4].IsFunction())
    throw_arg(env, "train expects (store, dataset, model, options, onProgress)");
  auto run = std::make_shared<TrainRun>(env);
  run->store = store_arg(info, 0);
  run->data = dataset_arg(info, 1);
  gv::model::ModelSpec spec = to_model_spec(env, info[2]);
  run->cfg = to_trainer_config(env, info[3]);
  Status s = gv::train::check_config(run->cfg);
  if (s.ok()) s = gv::model::Model::create(spec, gv::model::Model::dims_of(*run->data), &run->model);
  if (s.ok()) s = run->model->check_data(*run->data);
  std::vector<uint32_t> idx;
  if (s.ok()) s = gv::train::bind_model(*run->model, *run->store, &idx);
  // the store now knows its model (checkpoints record it); another one recorded is ERR_CONFIG
  // (with the scaler of standardized data: predict applies it to raw rows)
  if (s.ok()) {
    gv::ModelInfo mi = gv::model::info_of(*run->model);
    if (run->data->scaler) mi.scaler = *run->data->scaler;
    // a narrow sparse set standardized with a wider set's scaler: its model would not match the scaler
    if (!mi.scaler.empty() && mi.scaler.mean.size() != mi.features)
      s = Status::Error(Code::InvalidArgument,
                        "the data were standardized with a scaler of " + std::to_string(mi.scaler.mean.size()) + " features, the model has " +
                            std::to_string(mi.features) + ": train on data as wide as its scaler (loadLibsvm's features option)",
                        "data");
    else
      s = run->store->set_model(mi);
  }
  if (!s.ok()) throw status_error(env, s, run->store.get());
  run->monitor = std::make_shared<gv::train::Monitor>(run->cfg.threads);

  auto* registry = run_registry(env);
  run->tsfn = Napi::ThreadSafeFunction::New(env, info[4].As<Napi::Function>(), "gradvault.train", 0, 1);
  registry->runs.insert(run);
  run->thread = std::thread([run] {
    auto emit = [&](TrainEvent* e) {
      napi_status st = run->tsfn.BlockingCall(e, [](Napi::Env env, Napi::Function cb, TrainEvent* ev) {
        std::unique_ptr<TrainEvent> hold(ev);
        if (!env) return;  // the environment is going away
        TrainRun& r = *ev->run;
        if (!ev->final) {
          cb.Call({progress_js(env, ev->progress)});
          return;
        }
        join_run(r);
        auto* reg = run_registry(env);
        if (reg) reg->runs.erase(ev->run);
        if (!r.status.ok()) {
          Napi::Error err = status_error(env, r.status, r.store.get());
          err.Set("reason", gv::train::stop_reason_name(r.result.reason));
          r.deferred.Reject(err.Value());
          return;
        }
        Napi::Object o = Napi::Object::New(env);
        o.Set("epochs", Napi::Number::New(env, r.result.epochs));
        o.Set("samples", Napi::Number::New(env, static_cast<double>(r.result.samples)));
        o.Set("seconds", Napi::Number::New(env, r.result.seconds));
        o.Set("samplesPerSec", Napi::Number::New(env, r.result.samplesPerSec));
        o.Set("loss", Napi::Number::New(env, r.result.loss));
        o.Set("reason", gv::train::stop_reason_name(r.result.reason));
        r.deferred.Resolve(o);
      });
      if (st != napi_ok) delete e;
    };
    run->status = gv::train::train(run->cfg, *run->store, *run->model, *run->data, &run->cancel,
                                   [&](const gv::train::Progress& p) {
                                     auto* e = new TrainEvent{run, false, p};
                                     emit(e);
                                   },
                                   &run->result, run->monitor.get());
    emit(new TrainEvent{run, true, {}});
    run->tsfn.Release();
  });

  Napi::Object handle = Napi::Object::New(env);
  handle.Set("done", run->deferred.Promise());
  std::weak_ptr<TrainRun> weak = run;
  handle.Set("cancel", Napi::Function::New(env, [weak](const Napi::CallbackInfo& ci) {
               if (auto r = weak.lock()) r->cancel.store(true);
               return ci.Env().Undefined();
             }));
  // poll() -> NativeLive: the run so far, read without waiting for the
  // trainer's threads (their per-thread counters, summed)
  handle.Set("poll", Napi::Function::New(env, [weak, monitor = run->monitor](const Napi::CallbackInfo& ci) {
               std::shared_ptr<TrainRun> r = weak.lock();  // keeps the store alive while it is read
               return live_js(ci.Env(), monitor->poll(r ? r->store.get() : nullptr));
             }));
  return handle;
}

void RunRegistry::stop_all() {
  for (const auto& r : runs) r->cancel.store(true);
  for (const auto& r : runs) join_run(*r);
}

}  // namespace gv::binding
