// node-addon-api glue, module init: the Addon (this environment's
// constructors and training runs) and the small module functions. The
// wrapped objects live in store.cpp, dataset.cpp, trainer.cpp and
// checkpoint.cpp; conversions in convert.cpp. No math here.
#include <napi.h>

#include "../core/model/model.h"
#include "../core/trainer/trainer.h"
#include "../kernels/dispatch.h"
#include "binding.h"
#include "buffers.h"
#include "convert.h"

namespace gv::binding {
namespace {

Napi::Value checksum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_arg(env, "checksum expects a Float32Array");
  Napi::Float32Array f = info[0].As<Napi::Float32Array>();
  std::vector<float> keep;
  return Napi::BigInt::New(env, gv::kernels::active().checksum(aligned_floats(f, &keep), f.ElementLength()));
}

Napi::Value isa_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("active", gv::kernels::active().name);
  Napi::Array sup = Napi::Array::New(env);
  uint32_t k = 0;
  for (auto isa : {gv::kernels::Isa::Scalar, gv::kernels::Isa::Avx2, gv::kernels::Isa::Avx512, gv::kernels::Isa::Neon})
    if (gv::kernels::table_for(isa)) sup.Set(k++, gv::kernels::isa_name(isa));
  o.Set("supported", sup);
  return o;
}

// defaults() -> the core structs' defaults, for the test that checks lib/
// config.ts and lib/trainer.ts default to the same values (test/15.defaults).
Napi::Value core_defaults(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto n = [&](double v) { return Napi::Number::New(env, v); };
  const StoreConfig c;
  Napi::Object store = config_js(env, c);  // floats as their shortest decimal, as store.config() gives them
  store.Set("adamLr", Napi::Number::New(env, float_decimal(kAdamDefaultLr)));
  const TensorSpec t;
  Napi::Object tensor = Napi::Object::New(env);
  tensor.Set("init", init_name(t.init));
  tensor.Set("std", n(t.std));
  const model::ModelSpec m;
  Napi::Object mo = Napi::Object::New(env);
  Napi::Array hidden = Napi::Array::New(env, m.hidden.size());
  for (size_t i = 0; i < m.hidden.size(); ++i) hidden.Set(i, n(m.hidden[i]));
  mo.Set("hidden", hidden);
  mo.Set("rank", n(m.rank));
  mo.Set("biases", m.biases);
  mo.Set("l2", n(m.l2));
  const train::TrainerConfig tc;
  Napi::Object tr = Napi::Object::New(env);
  tr.Set("epochs", n(tc.epochs));
  tr.Set("batchSize", n(tc.batchSize));
  tr.Set("seed", n(static_cast<double>(tc.seed)));
  tr.Set("lr", n(tc.lr));
  tr.Set("stepEvery", n(tc.stepEvery));
  tr.Set("gamma", n(tc.gamma));
  tr.Set("scale", n(tc.scale));
  tr.Set("maxAhead", n(static_cast<double>(tc.maxAhead)));
  Napi::Object o = Napi::Object::New(env);
  o.Set("store", store);
  o.Set("tensor", tensor);
  o.Set("model", mo);
  o.Set("trainer", tr);
  o.Set("maxTensorElements", n(static_cast<double>(kMaxTensorElements)));
  return o;
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    Napi::Function store = define_store(env);
    storeCtor_ = Napi::Persistent(store);
    datasetCtor_ = Napi::Persistent(define_dataset(env));
    DefineAddon(exports, {
                             InstanceValue("NativeStore", store),
                             InstanceMethod<&Addon::Checksum>("checksum"),
                             InstanceMethod<&Addon::Isa>("isa"),
                             InstanceMethod<&Addon::Release>("release"),
                             InstanceMethod<&Addon::LoadIdx>("loadIdx"),
                             InstanceMethod<&Addon::LoadLibsvm>("loadLibsvm"),
                             InstanceMethod<&Addon::LoadCsv>("loadCsv"),
                             InstanceMethod<&Addon::Synthetic>("synthetic"),
                             InstanceMethod<&Addon::ModelTensors>("modelTensors"),
                             InstanceMethod<&Addon::Evaluate>("evaluate"),
                             InstanceMethod<&Addon::Predict>("predict"),
                             InstanceMethod<&Addon::PredictAsync>("predictAsync"),
                             InstanceMethod<&Addon::FromDense>("fromDense"),
                             InstanceMethod<&Addon::FromSparse>("fromSparse"),
                             InstanceMethod<&Addon::FromRatings>("fromRatings"),
                             InstanceMethod<&Addon::Train>("train"),
                             InstanceMethod<&Addon::LoadCheckpoint>("loadCheckpoint"),
                             InstanceMethod<&Addon::InspectCheckpoint>("inspectCheckpoint"),
                             InstanceMethod<&Addon::MergeCheckpoints>("mergeCheckpoints"),
                             InstanceMethod<&Addon::LoadSlices>("loadSlices"),
                             InstanceMethod<&Addon::Defaults>("defaults"),
                         });
    // Training runs of this environment: its teardown cancels and joins them.
    env.AddCleanupHook([this] { runs_.stop_all(); });
  }

 private:
  Napi::Value Checksum(const Napi::CallbackInfo& info) { return checksum(info); }
  Napi::Value Isa(const Napi::CallbackInfo& info) { return isa_info(info); }
  Napi::Value Release(const Napi::CallbackInfo& info) { return release_buffer(info); }
  Napi::Value LoadIdx(const Napi::CallbackInfo& info) { return load_idx(info); }
  Napi::Value LoadLibsvm(const Napi::CallbackInfo& info) { return load_libsvm(info); }
  Napi::Value LoadCsv(const Napi::CallbackInfo& info) { return load_csv(info); }
  Napi::Value Synthetic(const Napi::CallbackInfo& info) { return synthetic_dataset(info); }
  Napi::Value ModelTensors(const Napi::CallbackInfo& info) { return model_tensors(info); }
  Napi::Value Evaluate(const Napi::CallbackInfo& info) { return evaluate(info); }
  Napi::Value Predict(const Napi::CallbackInfo& info) { return predict(info); }
  Napi::Value PredictAsync(const Napi::CallbackInfo& info) { return predict_async(info); }
  Napi::Value FromDense(const Napi::CallbackInfo& info) { return dataset_from_dense(info); }
  Napi::Value FromSparse(const Napi::CallbackInfo& info) { return dataset_from_sparse(info); }
  Napi::Value FromRatings(const Napi::CallbackInfo& info) { return dataset_from_ratings(info); }
  Napi::Value Train(const Napi::CallbackInfo& info) { return train(info); }
  Napi::Value LoadCheckpoint(const Napi::CallbackInfo& info) { return load_checkpoint(info); }
  Napi::Value InspectCheckpoint(const Napi::CallbackInfo& info) { return inspect_checkpoint(info); }
  Napi::Value MergeCheckpoints(const Napi::CallbackInfo& info) { return merge_checkpoints(info); }
  Napi::Value LoadSlices(const Napi::CallbackInfo& info) { return load_slices(info); }
  Napi::Value Defaults(const Napi::CallbackInfo& info) { return core_defaults(info); }

 public:
  Napi::FunctionReference storeCtor_;
  Napi::FunctionReference datasetCtor_;  // per environment: wrap_dataset uses it
  RunRegistry runs_;
};

}  // namespace

RunRegistry* run_registry(Napi::Env env) { return &env.GetInstanceData<Addon>()->runs_; }

Napi::Object wrap_dataset(Napi::Env env, DatasetPtr d) {
  // The External points at a local: the constructor copies the shared_ptr
  // before New returns.
  Napi::External<DatasetPtr> ext = Napi::External<DatasetPtr>::New(env, &d);
  return env.GetInstanceData<Addon>()->datasetCtor_.New({ext});
}

Napi::Object wrap_store(Napi::Env env, std::shared_ptr<Store> s) {
  // As wrap_dataset: the constructor copies the shared_ptr before New returns.
  Napi::External<std::shared_ptr<Store>> ext = Napi::External<std::shared_ptr<Store>>::New(env, &s);
  return env.GetInstanceData<Addon>()->storeCtor_.New({env.Null(), env.Null(), ext});
}

bool is_instance(Napi::Env env, const Napi::Value& v, bool store) {
  if (!v.IsObject()) return false;
  Addon* a = env.GetInstanceData<Addon>();
  return v.As<Napi::Object>().InstanceOf((store ? a->storeCtor_ : a->datasetCtor_).Value());
}

}  // namespace gv::binding

// The macro pastes its argument into identifiers: it takes a plain name.
using gv::binding::Addon;
NODE_API_ADDON(Addon)
