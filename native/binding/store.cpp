// The wrapped store: NativeStore, pushes (sync and on the pool), snapshots,
// stats, and the process-wide registry behind share() / attach().
#include <cmath>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "binding.h"
#include "buffers.h"
#include "convert.h"
#include "worker.h"

namespace gv::binding {
namespace {

// ---- process-wide registry of shared stores: id -> store, for attach() from
// other worker_threads. Weak: a store lives while some holder keeps it open.

std::mutex g_registry_mutex;
// The options JSON is the facade's resolved configuration, written by the
// thread that shared the store: attach() takes it from here, never from the
// handle it was given (a handle is only an id).
struct Shared {
  std::weak_ptr<Store> store;
  std::string options;
};
std::unordered_map<uint64_t, Shared> g_registry;

void registry_put(const std::shared_ptr<Store>& s, std::string options) {
  std::lock_guard<std::mutex> lk(g_registry_mutex);
  for (auto it = g_registry.begin(); it != g_registry.end();) it = it->second.store.expired() ? g_registry.erase(it) : ++it;
  g_registry[s->id()] = Shared{s, std::move(options)};
}

std::shared_ptr<Store> registry_get(uint64_t id, std::string* options) {
  std::lock_guard<std::mutex> lk(g_registry_mutex);
  auto it = g_registry.find(id);
  if (it == g_registry.end()) return nullptr;
  *options = it->second.options;
  return it->second.store.lock();
}

// ---- push arguments

struct PushArgs {
  std::vector<gv::Grad> grads;
  int64_t basedOn = -1;
  float lr = NAN;  // NaN: the store's current learning rate
};

// indices: number[] of tensor indices; arrays: Float32Array[] beside them.
// With copyAll (pushAsync), every gradient is copied into *copies (so the
// caller may reuse its buffers at once); otherwise only those in shared
// memory are, and the rest point into the caller's memory, read during the
// call only.
bool in_shared_memory(Napi::Env env, const Napi::TypedArray& a) {
  napi_value buffer;
  if (napi_get_typedarray_info(env, a, nullptr, nullptr, nullptr, &buffer, nullptr) != napi_ok) return true;
  bool plain = false;
  // napi_is_arraybuffer is false for a SharedArrayBuffer
  if (napi_is_arraybuffer(env, buffer, &plain) != napi_ok) return true;
  return !plain;
}

PushArgs to_push(const Napi::CallbackInfo& info, bool copyAll, std::vector<std::unique_ptr<OwnedCopy>>* copies) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsArray() || !info[2].IsNumber())
    throw_arg(env, "push expects (indices, arrays, basedOn)");
  Napi::Array idx = info[0].As<Napi::Array>(), arrs = info[1].As<Napi::Array>();
  if (idx.Length() != arrs.Length()) throw_arg(env, "indices and arrays differ in length");
  PushArgs p;
  p.basedOn = info[2].As<Napi::Number>().Int64Value();
  // an optional 4th argument: this push's learning rate (the library's own
  // calls: a remote trainer's corrections of its replica)
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsNumber()) throw_arg(env, "lr must be a number");
    p.lr = info[3].As<Napi::Number>().FloatValue();
    if (!(p.lr >= 0.f) || !std::isfinite(p.lr)) throw_arg(env, "lr must be a finite number >= 0");
  }
  copies->reserve(idx.Length());
  for (uint32_t i = 0; i < idx.Length(); ++i) {
    Napi::Value iv = idx.Get(i), av = arrs.Get(i);
    if (!iv.IsNumber()) throw_arg(env, "tensor index must be a number");
    if (!av.IsTypedArray() || av.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw_arg(env, "gradient must be a Float32Array");
    Napi::Float32Array f = av.As<Napi::Float32Array>();
    int64_t t = iv.As<Napi::Number>().Int64Value();
    if (t < 0 || t > UINT32_MAX) throw_arg(env, "tensor index out of range");
    const float* data = f.Data();
    // A gradient in a SharedArrayBuffer can change while the push runs
    // (another thread writes it): the store reads a gradient twice (the
    // non-finite scan, then the step), so such a gradient is copied first
    // and the store only ever sees values it checked. A misaligned one
    // (a view of external memory) is copied too: the kernels load whole floats.
    if (copyAll || in_shared_memory(env, f) || misaligned(data)) {
      try {
        copies->push_back(std::make_unique<OwnedCopy>(data, f.ElementLength()));
      } catch (const std::bad_alloc&) {
        throw make_error(env, Code::InvalidArgument, "not enough memory to copy a gradient of " + std::to_string(f.ElementLength()) + " floats");
      }
      data = copies->back()->data();
    }
    p.grads.push_back({static_cast<uint32_t>(t), data, f.ElementLength()});
  }
  return p;
}

// ---- the wrapped store

class NativeStore : public Napi::ObjectWrap<NativeStore> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeStore",
                       {
                           InstanceMethod<&NativeStore::Push>("push"),
                           InstanceMethod<&NativeStore::PushAsync>("pushAsync"),
                           InstanceMethod<&NativeStore::Snapshot>("snapshot"),
                           InstanceMethod<&NativeStore::Version>("version"),
                           InstanceMethod<&NativeStore::Stats>("stats"),
                           InstanceMethod<&NativeStore::Sync>("sync"),
                           InstanceMethod<&NativeStore::Share>("share"),
                           InstanceMethod<&NativeStore::Close>("close"),
                           InstanceMethod<&NativeStore::Tensors>("tensors"),
                           InstanceMethod<&NativeStore::Info>("info"),
                           InstanceMethod<&NativeStore::SetLearningRate>("setLearningRate"),
                           InstanceMethod<&NativeStore::Save>("save"),
                           InstanceMethod<&NativeStore::Config>("config"),
                           InstanceMethod<&NativeStore::SharedOptions>("sharedOptions"),
                           InstanceMethod<&NativeStore::Model>("model"),
                           InstanceMethod<&NativeStore::Scaler>("scaler"),
                       });
  }

  // new NativeStore(config, tensors), new NativeStore(null, null, sharedId), or (wrap_store) an External
  explicit NativeStore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeStore>(info) {
    Napi::Env env = info.Env();
    if (info.Length() >= 3 && info[2].IsExternal()) {  // wrap_store
      store_ = *info[2].As<Napi::External<std::shared_ptr<Store>>>().Data();
      return;
    }
    if (info.Length() >= 3 && info[2].IsNumber()) {
      uint64_t id = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
      store_ = registry_get(id, &sharedOptions_);
      if (!store_) throw make_error(env, Code::Closed, "the shared store " + std::to_string(id) + " is closed or does not exist in this process");
      return;
    }
    if (info.Length() < 2 || !info[0].IsObject()) throw_arg(env, "NativeStore expects (config, tensors)");
    gv::StoreConfig cfg = to_config(env, info[0].As<Napi::Object>());
    std::vector<gv::TensorSpec> tensors = to_tensors(env, info[1]);
    Status s = Store::create(cfg, std::move(tensors), &store_);
    if (!s.ok()) throw status_error(env, s, nullptr);
  }

 public:
  // save(file): checkpoint.cpp
  Napi::Value Save(const Napi::CallbackInfo& info) { return save_store(info, shared(info.Env())); }

  // The store for a native trainer (shared: closing the JS object leaves a
  // running trainer its reference).
  std::shared_ptr<Store> shared(Napi::Env env) {
    live(env);
    return store_;
  }

 private:
  Store& live(Napi::Env env) {
    if (!store_) throw make_error(env, Code::Closed, "the store is closed");
    return *store_;
  }

  Napi::Value Push(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Store& s = live(env);
    std::vector<std::unique_ptr<OwnedCopy>> shared;  // copies of gradients in shared memory
    PushArgs p = to_push(info, false, &shared);
    gv::PushResult r;
    Status st = s.push(p.grads.data(), p.grads.size(), p.basedOn, &r, p.lr);
    if (!st.ok()) throw status_error(env, st, &s);
    return result_object(env, r);
  }

  Napi::Value PushAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    live(env);
    std::vector<std::unique_ptr<OwnedCopy>> owned;
    PushArgs p = to_push(info, true, &owned);
    // The job owns the store and the copies until it has run.
    auto job = [store = store_, owned = std::move(owned), p = std::move(p)](PushResult* r) {
      return store->push(p.grads.data(), p.grads.size(), p.basedOn, r, p.lr);
    };
    return queue_promise<PushResult>(env, std::move(job), result_object, store_);
  }

  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Store& s = live(env);
    Napi::ArrayBuffer buf = snapshot_buffer(env, s.padded_floats() * sizeof(float));
    float* out = static_cast<float*>(buf.Data());
    uint64_t v = s.snapshot(out);
    gv::clear_padding(s, out);  // the buffer may be a recycled one
    Napi::Object o = Napi::Object::New(env);
    o.Set("version", Napi::Number::New(env, static_cast<double>(v)));
    o.Set("buffer", buf);
    return o;
  }

  Napi::Value Version(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(live(info.Env()).version()));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    gv::Stats st = live(env).stats();
    auto n = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
    Napi::Object o = Napi::Object::New(env);
    o.Set("version", n(st.version));
    o.Set("pushes", n(st.pushes));
    o.Set("rejectedStale", n(st.rejectedStale));
    o.Set("skippedNonFinite", n(st.skippedNonFinite));
    o.Set("conflicts", n(st.conflicts));
    o.Set("snapshots", n(st.snapshots));
    o.Set("rounds", n(st.rounds));
    o.Set("pending", n(st.pending));
    o.Set("stalenessCount", n(st.stalenessCount));
    o.Set("stalenessSum", n(st.stalenessSum));
    o.Set("stalenessMax", n(st.stalenessMax));
    Napi::Array h = Napi::Array::New(env, gv::kStaleBuckets);
    for (int i = 0; i < gv::kStaleBuckets; ++i) h.Set(i, n(st.stalenessHistogram[i]));
    o.Set("stalenessHistogram", h);
    o.Set("bytes", n(st.bytes));
    return o;
  }

  Napi::Value Sync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Store& s = live(env);
    Status st = s.sync();
    if (!st.ok()) throw status_error(env, st, &s);
    return Napi::Number::New(env, static_cast<double>(s.version()));
  }

  // share(optionsJson) -> id
  Napi::Value Share(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    live(env);
    if (info.Length() < 1 || !info[0].IsString()) throw_arg(env, "share expects the options as JSON");
    registry_put(store_, info[0].As<Napi::String>().Utf8Value());
    return Napi::Number::New(env, static_cast<double>(store_->id()));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    store_.reset();  // the vault goes when its last holder lets go
    return info.Env().Undefined();
  }

  Napi::Value Tensors(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Store& s = live(env);
    Napi::Array arr = Napi::Array::New(env, s.tensor_count());
    for (size_t i = 0; i < s.tensor_count(); ++i) {
      const gv::TensorInfo& t = s.tensor(i);
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", t.name);
      o.Set("shape", shape_js(env, t.shape));
      o.Set("size", Napi::Number::New(env, static_cast<double>(t.size)));
      o.Set("offset", Napi::Number::New(env, static_cast<double>(t.offset)));
      arr.Set(i, o);
    }
    return arr;
  }

  // The resolved configuration, for attach() in another thread.
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Store& s = live(env);
    Napi::Object o = Napi::Object::New(env);
    o.Set("mode", gv::mode_name(s.mode()));
    o.Set("id", Napi::Number::New(env, static_cast<double>(s.id())));
    o.Set("paddedFloats", Napi::Number::New(env, static_cast<double>(s.padded_floats())));
    o.Set("learningRate", Napi::Number::New(env, s.learning_rate()));
    return o;
  }

  // The configuration the store was made with (a loaded store: the caller's
  // options over the file's), as NativeStoreConfig.
  Napi::Value Config(const Napi::CallbackInfo& info) { return config_js(info.Env(), live(info.Env()).config()); }

  Napi::Value SetLearningRate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Store& s = live(env);
    if (info.Length() < 1 || !info[0].IsNumber()) throw_arg(env, "learning rate must be a number");
    s.set_learning_rate(info[0].As<Napi::Number>().FloatValue());
    return env.Undefined();
  }

  // model() -> NativeModelInfo | undefined: the model the store's parameters are for, where known.
  Napi::Value Model(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const gv::ModelInfo m = live(env).model();
    return m.known() ? Napi::Value(model_info_js(env, m)) : env.Undefined();
  }

  // scaler() -> { mean, scale } (Float64Arrays) | undefined: the scaler of the data the model was trained on.
  Napi::Value Scaler(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const gv::ModelInfo m = live(env).model();
    return m.known() && !m.scaler.empty() ? Napi::Value(scaler_js(env, m.scaler)) : env.Undefined();
  }

  // The options JSON registered by share(), for a store opened by attach().
  Napi::Value SharedOptions(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), sharedOptions_); }

  std::shared_ptr<Store> store_;
  std::string sharedOptions_;
};


}  // namespace

Napi::Function define_store(Napi::Env env) { return NativeStore::Define(env); }

std::shared_ptr<Store> store_arg(const Napi::CallbackInfo& info, uint32_t k) {
  if (info.Length() <= k || !is_instance(info.Env(), info[k], true)) throw_arg(info.Env(), "store must be a NativeStore");
  return Napi::ObjectWrap<NativeStore>::Unwrap(info[k].As<Napi::Object>())->shared(info.Env());
}

}  // namespace gv::binding
