// node-addon-api glue, module init: the Addon (this environment's
// constructors and training runs) and the small module functions. The
// wrapped objects live in store.cpp, dataset.cpp, trainer.cpp and
// checkpoint.cpp; conversions in convert.cpp. No math here.
#include <napi.h>

#include "../kernels/dispatch.h"
#include "../kernels/fixed/scalar.h"
#include "binding.h"
#include "convert.h"
#include "buffers.h"

namespace gv::binding {
namespace {

Napi::Value checksum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_arg(env, "checksum expects a Float32Array");
  Napi::Float32Array f = info[0].As<Napi::Float32Array>();
  return Napi::BigInt::New(env, gv::kernels::active().checksum(f.Data(), f.ElementLength()));
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
                             InstanceMethod<&Addon::Train>("train"),
                             InstanceMethod<&Addon::ReadCheckpoint>("readCheckpoint"),
                             // Q32.32 values beyond this are refused (kernels/fixed): checkpoint readers check fixed.* with it
                             InstanceValue("fixedLimit", Napi::BigInt::New(env, gv::kernels::kFixedLimit)),
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
  Napi::Value Train(const Napi::CallbackInfo& info) { return train(info); }
  Napi::Value ReadCheckpoint(const Napi::CallbackInfo& info) { return read_checkpoint(info); }

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

bool is_instance(Napi::Env env, const Napi::Value& v, bool store) {
  if (!v.IsObject()) return false;
  Addon* a = env.GetInstanceData<Addon>();
  return v.As<Napi::Object>().InstanceOf((store ? a->storeCtor_ : a->datasetCtor_).Value());
}

}  // namespace gv::binding

// The macro pastes its argument into identifiers: it takes a plain name.
using gv::binding::Addon;
NODE_API_ADDON(Addon)
