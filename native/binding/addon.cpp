// node-addon-api glue only: converts arguments, wraps the core Store, maps a
// Status to a JS error with a stable code. No math here. The TypeScript
// facade validates and normalises every argument first; the checks below
// only keep a bad call from crashing the process.
#include <napi.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <new>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <atomic>
#include <thread>
#include <unordered_set>

#include "../core/checkpoint/checkpoint.h"
#include "../core/data/dataset.h"
#include "../core/model/model.h"
#include "../core/store.h"
#include "../core/trainer/trainer.h"
#include "../kernels/dispatch.h"
#include "../kernels/fixed/scalar.h"

namespace {

using gv::Code;
using gv::Status;
using gv::Store;

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

// ---- snapshot buffers
//
// A large snapshot spends most of its time in page faults on fresh memory,
// not in the copy (measured in bench/: calloc + copy of 40 MB runs at 0.2x
// memcpy). Large buffers therefore go back to a small pool when V8 collects
// the ArrayBuffer or the snapshot is released (Snapshot.release() detaches
// it at once; collection waits for a turn of the event loop), so a steady
// snapshot loop copies into memory that is already mapped. Transparent huge
// pages were tried and dropped: on the reference VM, first-touch of 40 MB
// with MADV_HUGEPAGE took 61-101 ms against 31-43 ms with 4 KiB pages.

class BufferPool {
 public:
  static constexpr size_t kMinBytes = 1 << 20;      // smaller ones: V8's own allocation
  static constexpr size_t kAlign = 64;
  static constexpr size_t kMaxPooled = 512u << 20;  // bytes kept for reuse, at most
  // Bytes lent to JavaScript and not back yet, at most: a synchronous loop
  // that never releases its snapshots gets nothing back until the event loop
  // turns (N-API runs finalizers then), so past this the snapshots use V8's
  // own allocation, which its garbage collector can free inside the loop.
  static constexpr size_t kMaxLent = 256u << 20;

  static BufferPool& instance() {
    static BufferPool* p = new BufferPool();  // never destroyed: finalizers may run at exit
    return *p;
  }

  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lk(m_);
      auto it = free_.find(bytes);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        pooled_ -= bytes;
        return p;
      }
    }
    return std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  }

  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lk(m_);
      if (pooled_ + bytes <= kMaxPooled) {
        free_.emplace(bytes, p);
        pooled_ += bytes;
        return;
      }
    }
    std::free(p);
  }

  // A buffer lent to one ArrayBuffer. Its memory comes back to the pool
  // exactly once, by whichever comes first: Snapshot.release() (which
  // detaches the ArrayBuffer) or the ArrayBuffer's finalizer. The finalizer
  // always runs, after release() if there was one, and frees the lease.
  // Both run on the ArrayBuffer's own JS thread; the mutex guards the pool.
  // The finalizer is keyed by its lease, never by the address: after a
  // release the same address may already be lent to a newer snapshot, and a
  // finalizer that looked it up by address would give that one's memory
  // away (two live snapshots sharing bytes: issue 10, item 1).
  struct Lease {
    void* data;
    size_t bytes;
    bool returned = false;
  };
  // Takes a buffer to lend, or returns null when kMaxLent is reached.
  Lease* lend(size_t bytes) {
    {
      std::lock_guard<std::mutex> lk(m_);
      if (lentBytes_ + bytes > kMaxLent) return nullptr;
      lentBytes_ += bytes;
    }
    void* p = take(bytes);
    std::lock_guard<std::mutex> lk(m_);
    if (!p) {
      lentBytes_ -= bytes;
      return nullptr;
    }
    Lease* l = new Lease{p, bytes};
    byData_[p] = l;
    return l;
  }
  // The lease of memory that is lent now (null if data is not pooled memory
  // lent to JavaScript: a small snapshot in V8's own memory).
  Lease* lease_of(void* data) {
    std::lock_guard<std::mutex> lk(m_);
    auto it = byData_.find(data);
    return it == byData_.end() ? nullptr : it->second;
  }
  // The one return of a lease's memory; later calls do nothing.
  void give_back(Lease* l) {
    {
      std::lock_guard<std::mutex> lk(m_);
      if (l->returned) return;
      l->returned = true;
      byData_.erase(l->data);
      lentBytes_ -= l->bytes;
    }
    give(l->data, l->bytes);
  }
  // The ArrayBuffer is gone: its memory comes back unless release() gave it already.
  void finalize(Lease* l) {
    give_back(l);
    delete l;
  }

 private:
  std::mutex m_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, Lease*> byData_;  // memory lent now -> its lease
  size_t pooled_ = 0, lentBytes_ = 0;
};

// A gradient copied for pushAsync: large ones in pooled memory too.
class OwnedCopy {
 public:
  OwnedCopy(const float* src, size_t n) : n_(n) {
    const size_t bytes = n * sizeof(float);
    if (bytes >= BufferPool::kMinBytes) {
      p_ = static_cast<float*>(BufferPool::instance().take(bytes));
      if (!p_) throw std::bad_alloc();
      pooled_ = true;
    } else {
      p_ = n ? static_cast<float*>(std::malloc(bytes)) : nullptr;
      if (n && !p_) throw std::bad_alloc();
    }
    if (n) std::memcpy(p_, src, bytes);
  }
  ~OwnedCopy() {
    if (pooled_) BufferPool::instance().give(p_, n_ * sizeof(float));
    else std::free(p_);
  }
  OwnedCopy(const OwnedCopy&) = delete;
  OwnedCopy& operator=(const OwnedCopy&) = delete;
  const float* data() const { return p_; }

 private:
  float* p_ = nullptr;
  size_t n_;
  bool pooled_ = false;
};

Napi::ArrayBuffer snapshot_buffer(Napi::Env env, size_t bytes) {
  if (bytes < BufferPool::kMinBytes) return Napi::ArrayBuffer::New(env, bytes);
  BufferPool::Lease* l = BufferPool::instance().lend(bytes);
  if (!l) return Napi::ArrayBuffer::New(env, bytes);
  return Napi::ArrayBuffer::New(
      env, l->data, bytes, [](Napi::Env, void*, BufferPool::Lease* lease) { BufferPool::instance().finalize(lease); }, l);
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

// ---- push arguments

struct PushArgs {
  std::vector<gv::Grad> grads;
  int64_t basedOn = -1;
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
    // and the store only ever sees values it checked.
    if (copyAll || in_shared_memory(env, f)) {
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

const char* reason_name(gv::SkipReason r) {
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

// ---- pushAsync: the gradient is copied on the JS thread, applied on a pool
// thread; the worker holds the store, so close() or GC meanwhile is safe.

class PushWorker : public Napi::AsyncWorker {
 public:
  PushWorker(Napi::Env env, std::shared_ptr<Store> store, std::vector<std::unique_ptr<OwnedCopy>> owned, PushArgs args)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), store_(std::move(store)),
        owned_(std::move(owned)), args_(std::move(args)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { status_ = store_->push(args_.grads.data(), args_.grads.size(), args_.basedOn, &result_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (status_.ok()) deferred_.Resolve(result_object(env, result_));
    else deferred_.Reject(status_error(env, status_, store_.get()).Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Store> store_;
  std::vector<std::unique_ptr<OwnedCopy>> owned_;
  PushArgs args_;
  Status status_;
  gv::PushResult result_;
};

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
                           InstanceMethod<&NativeStore::Restore>("restore"),
                           InstanceMethod<&NativeStore::SharedOptions>("sharedOptions"),
                       });
  }

  // new NativeStore(config, tensors) or new NativeStore(null, null, sharedId)
  explicit NativeStore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeStore>(info) {
    Napi::Env env = info.Env();
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
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Restore(const Napi::CallbackInfo& info);

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
    Status st = s.push(p.grads.data(), p.grads.size(), p.basedOn, &r);
    if (!st.ok()) throw status_error(env, st, &s);
    return result_object(env, r);
  }

  Napi::Value PushAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    live(env);
    std::vector<std::unique_ptr<OwnedCopy>> owned;
    PushArgs p = to_push(info, true, &owned);
    auto* w = new PushWorker(env, store_, std::move(owned), std::move(p));
    Napi::Promise promise = w->promise();
    w->Queue();
    return promise;
  }

  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Store& s = live(env);
    Napi::ArrayBuffer buf = snapshot_buffer(env, s.padded_floats() * sizeof(float));
    float* out = static_cast<float*>(buf.Data());
    uint64_t v = s.snapshot(out);
    // The padding between tensors is not written by the store; a recycled
    // buffer must not show an earlier snapshot's bytes there.
    for (size_t i = 0; i < s.tensor_count(); ++i) {
      const gv::TensorInfo& t = s.tensor(i);
      size_t end = i + 1 < s.tensor_count() ? s.tensor(i + 1).offset : s.padded_floats();
      std::memset(out + t.offset + t.size, 0, (end - t.offset - t.size) * sizeof(float));
    }
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
      Napi::Array shape = Napi::Array::New(env, t.shape.size());
      for (size_t d = 0; d < t.shape.size(); ++d) shape.Set(d, Napi::Number::New(env, static_cast<double>(t.shape[d])));
      o.Set("shape", shape);
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

  Napi::Value SetLearningRate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Store& s = live(env);
    if (info.Length() < 1 || !info[0].IsNumber()) throw_arg(env, "learning rate must be a number");
    s.set_learning_rate(info[0].As<Napi::Number>().FloatValue());
    return env.Undefined();
  }

  // The options JSON registered by share(), for a store opened by attach().
  Napi::Value SharedOptions(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), sharedOptions_); }

  std::shared_ptr<Store> store_;
  std::string sharedOptions_;
};

// ---- datasets: parsed off the JS thread (AsyncWorker), held in C++ memory
// behind a shared_ptr that a native trainer can share without copying. JS
// reads copies (rows, labels), never views into the dataset.

using DatasetPtr = std::shared_ptr<const gv::data::Dataset>;

Napi::Object wrap_dataset(Napi::Env env, DatasetPtr d);  // defined after Addon

class NativeDataset : public Napi::ObjectWrap<NativeDataset> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeDataset",
                       {
                           InstanceMethod<&NativeDataset::Info>("info"),
                           InstanceMethod<&NativeDataset::Labels>("labels"),
                           InstanceMethod<&NativeDataset::ClassIds>("classIds"),
                           InstanceMethod<&NativeDataset::Row>("row"),
                           InstanceMethod<&NativeDataset::Slice>("slice"),
                       });
  }

  // Only wrap_dataset constructs one, passing the dataset in an External.
  explicit NativeDataset(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeDataset>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) throw_arg(info.Env(), "NativeDataset is created by the loaders");
    data_ = *info[0].As<Napi::External<DatasetPtr>>().Data();
    if (!data_) throw_arg(info.Env(), "NativeDataset is created by the loaders");
  }

  const DatasetPtr& data() const { return data_; }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto& d = *data_;
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", gv::data::kind_name(d.kind));
    o.Set("rows", Napi::Number::New(env, static_cast<double>(d.rows)));
    o.Set("features", Napi::Number::New(env, static_cast<double>(d.features)));
    o.Set("classes", Napi::Number::New(env, static_cast<double>(d.classes)));
    o.Set("nnz", Napi::Number::New(env, static_cast<double>(d.nnz())));
    o.Set("users", Napi::Number::New(env, static_cast<double>(d.users)));
    o.Set("items", Napi::Number::New(env, static_cast<double>(d.items)));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(d.bytes())));
    return o;
  }

  Napi::Value Labels(const Napi::CallbackInfo& info) {
    const auto& v = data_->labels;
    Napi::Float32Array a = Napi::Float32Array::New(info.Env(), v.size());
    if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
    return a;
  }

  Napi::Value ClassIds(const Napi::CallbackInfo& info) {
    const auto& v = data_->classIds;
    if (v.empty() && data_->classes == 0) return info.Env().Null();
    Napi::Int32Array a = Napi::Int32Array::New(info.Env(), v.size());
    if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(int32_t));
    return a;
  }

  uint64_t row_arg(const Napi::CallbackInfo& info, uint32_t k, uint64_t max, const char* name) {
    if (info.Length() <= k || !info[k].IsNumber()) throw_arg(info.Env(), std::string(name) + " must be a number");
    double x = info[k].As<Napi::Number>().DoubleValue();
    if (!(x >= 0) || x > static_cast<double>(max) || x != std::floor(x))
      throw_arg(info.Env(), std::string(name) + " must be an integer in 0.." + std::to_string(max));
    return static_cast<uint64_t>(x);
  }

  Napi::Value Row(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto& d = *data_;
    if (d.rows == 0) throw_arg(env, "the dataset has no rows");
    uint64_t r = row_arg(info, 0, d.rows - 1, "row");
    if (d.kind == gv::data::Kind::Dense) {
      Napi::Float32Array a = Napi::Float32Array::New(env, d.features);
      if (d.features) std::memcpy(a.Data(), d.X.data() + r * d.features, d.features * sizeof(float));
      return a;
    }
    Napi::Object o = Napi::Object::New(env);
    if (d.kind == gv::data::Kind::Sparse) {
      uint64_t a = d.indptr[r], n = d.indptr[r + 1] - a;
      Napi::Uint32Array idx = Napi::Uint32Array::New(env, n);
      Napi::Float32Array val = Napi::Float32Array::New(env, n);
      if (n) {
        std::memcpy(idx.Data(), d.indices.data() + a, n * sizeof(uint32_t));
        std::memcpy(val.Data(), d.values.data() + a, n * sizeof(float));
      }
      o.Set("indices", idx);
      o.Set("values", val);
    } else {
      o.Set("user", Napi::Number::New(env, d.user[r]));
      o.Set("item", Napi::Number::New(env, d.item[r]));
      o.Set("rating", Napi::Number::New(env, d.labels[r]));
    }
    return o;
  }

  Napi::Value Slice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t start = row_arg(info, 0, data_->rows, "start");
    uint64_t end = row_arg(info, 1, data_->rows, "end");
    auto out = std::make_shared<gv::data::Dataset>();
    Status s = gv::data::slice(*data_, start, end, out.get());
    if (!s.ok()) throw status_error(env, s, nullptr);
    return wrap_dataset(env, std::move(out));
  }

  DatasetPtr data_;
};

// Runs a loader on the libuv pool; the promise settles on the JS thread with
// a NativeDataset or the loader's Status as a typed error.
class LoadWorker : public Napi::AsyncWorker {
 public:
  using Job = std::function<Status(gv::data::Dataset*)>;
  LoadWorker(Napi::Env env, Job job)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    auto d = std::make_shared<gv::data::Dataset>();
    status_ = job_(d.get());
    if (status_.ok()) result_ = std::move(d);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!status_.ok()) {
      deferred_.Reject(status_error(env, status_, nullptr).Value());
      return;
    }
    try {
      deferred_.Resolve(wrap_dataset(env, std::move(result_)));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  Status status_;
  DatasetPtr result_;
};

std::string string_arg(const Napi::CallbackInfo& info, uint32_t k, const char* name) {
  if (info.Length() <= k || !info[k].IsString()) throw_arg(info.Env(), std::string(name) + " must be a string");
  return info[k].As<Napi::String>().Utf8Value();
}

Napi::Object options_arg(const Napi::CallbackInfo& info, uint32_t k) {
  if (info.Length() <= k || !info[k].IsObject()) return Napi::Object::New(info.Env());
  return info[k].As<Napi::Object>();
}

Napi::Value start(Napi::Env env, LoadWorker::Job job) {
  auto* w = new LoadWorker(env, std::move(job));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// loadIdx(images, labels, scale) -> Promise<NativeDataset>
Napi::Value LoadIdx(const Napi::CallbackInfo& info) {
  std::string images = string_arg(info, 0, "images"), labels = string_arg(info, 1, "labels");
  bool scale = info.Length() < 3 || info[2].ToBoolean().Value();
  return start(info.Env(), [=](gv::data::Dataset* d) { return gv::data::load_idx(images, labels, scale, d); });
}

// loadLibsvm(file, { indexBase: -1|0|1, features }) -> Promise<NativeDataset>
Napi::Value LoadLibsvm(const Napi::CallbackInfo& info) {
  std::string file = string_arg(info, 0, "file");
  Napi::Object o = options_arg(info, 1);
  gv::data::LibsvmOptions opt;
  double base = num(o, "indexBase", -1);
  opt.indexBase = base == 0 ? 0 : base == 1 ? 1 : -1;
  double features = num(o, "features", 0);
  opt.features = features >= 1 ? static_cast<uint64_t>(features) : 0;
  return start(info.Env(), [=](gv::data::Dataset* d) { return gv::data::load_libsvm(file, opt, d); });
}

// loadCsv(file, { labelIndex, labelName, header: -1|0|1, delimiter }) -> Promise<NativeDataset>
Napi::Value LoadCsv(const Napi::CallbackInfo& info) {
  std::string file = string_arg(info, 0, "file");
  Napi::Object o = options_arg(info, 1);
  gv::data::CsvOptions opt;
  opt.labelIndex = static_cast<int64_t>(num(o, "labelIndex", -1));
  opt.labelName = str(o, "labelName", "");
  double header = num(o, "header", -1);
  opt.header = header == 0 ? 0 : header == 1 ? 1 : -1;
  std::string delim = str(o, "delimiter", ",");
  if (delim.size() != 1) throw_arg(info.Env(), "delimiter must be one character");
  opt.delimiter = delim[0];
  return start(info.Env(), [=](gv::data::Dataset* d) { return gv::data::load_csv(file, opt, d); });
}

// synthetic(kind, options) -> NativeDataset, synchronously.
Napi::Value Synthetic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = string_arg(info, 0, "kind");
  Napi::Object o = options_arg(info, 1);
  gv::data::SyntheticOptions opt;
  auto u64 = [&](const char* key, uint64_t dflt) {
    double x = num(o, key, static_cast<double>(dflt));
    if (!(x >= 0) || x > 9007199254740991.0) throw_arg(env, std::string(key) + " must be a non-negative integer");
    return static_cast<uint64_t>(x);
  };
  opt.rows = u64("rows", opt.rows);
  opt.seed = u64("seed", opt.seed);
  opt.features = u64("features", opt.features);
  opt.classes = u64("classes", opt.classes);
  opt.users = u64("users", opt.users);
  opt.items = u64("items", opt.items);
  opt.rank = u64("rank", opt.rank);
  opt.nnz = num(o, "nnz", opt.nnz);
  opt.zipf = num(o, "zipf", opt.zipf);
  opt.noise = num(o, "noise", opt.noise);
  opt.spread = num(o, "spread", opt.spread);
  auto d = std::make_shared<gv::data::Dataset>();
  Status s = gv::data::synthetic(kind, opt, d.get());
  if (!s.ok()) throw status_error(env, s, nullptr);
  return wrap_dataset(env, std::move(d));
}

// ---- module functions

Napi::Value Checksum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_arg(env, "checksum expects a Float32Array");
  Napi::Float32Array f = info[0].As<Napi::Float32Array>();
  return Napi::BigInt::New(env, gv::kernels::active().checksum(f.Data(), f.ElementLength()));
}

// Detaches a snapshot's ArrayBuffer: its memory goes back to the pool now
// instead of at the next collection. Views of it become empty.
Napi::Value Release(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw_arg(env, "release expects an ArrayBuffer");
  Napi::ArrayBuffer b = info[0].As<Napi::ArrayBuffer>();
  if (b.IsDetached()) return env.Undefined();
  BufferPool::Lease* l = BufferPool::instance().lease_of(b.Data());
  // Detached first: no view can reach the memory once it is back in the pool.
  b.Detach();
  if (l) BufferPool::instance().give_back(l);
  return env.Undefined();
}

// ---- checkpoints

// Writes a checkpoint on the libuv pool (the export holds pushes back only
// for the copy; the file is written after they resume).
class SaveWorker : public Napi::AsyncWorker {
 public:
  SaveWorker(Napi::Env env, std::shared_ptr<Store> s, std::string file, std::vector<std::pair<std::string, std::string>> meta)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), store_(std::move(s)), file_(std::move(file)),
        meta_(std::move(meta)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { status_ = gv::ckpt::save(*store_, file_, meta_, &info_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!status_.ok()) {
      deferred_.Reject(status_error(env, status_, store_.get()).Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("file", file_);
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(info_.bytes)));
    o.Set("version", Napi::Number::New(env, static_cast<double>(info_.version)));
    o.Set("pauseSeconds", Napi::Number::New(env, info_.pauseSeconds));
    o.Set("seconds", Napi::Number::New(env, info_.seconds));
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Store> store_;
  std::string file_;
  std::vector<std::pair<std::string, std::string>> meta_;
  gv::ckpt::SaveInfo info_;
  Status status_;
};

// save(file, { key: value }) -> Promise<{ file, bytes, version, pauseSeconds, seconds }>
Napi::Value NativeStore::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Store& s = live(env);
  (void)s;
  if (info.Length() < 1 || !info[0].IsString()) throw_arg(env, "file must be a string");
  std::vector<std::pair<std::string, std::string>> meta;
  if (info.Length() >= 2 && info[1].IsObject()) {
    Napi::Object m = info[1].As<Napi::Object>();
    Napi::Array keys = m.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).ToString().Utf8Value();
      meta.emplace_back(k, m.Get(k).ToString().Utf8Value());
    }
  }
  auto* w = new SaveWorker(env, store_, info[0].As<Napi::String>().Utf8Value(), std::move(meta));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// restore({ version, step, state: [{ slot, name, data }], fixed: [{ name, data }] }):
// a freshly created store takes a checkpoint's optimizer state and counters.
Napi::Value NativeStore::Restore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Store& s = live(env);
  if (info.Length() < 1 || !info[0].IsObject()) throw_arg(env, "restore expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  gv::StateImage img;
  img.params.resize(s.padded_floats());
  s.snapshot(img.params.data());  // the parameters came with the store's creation
  img.version = static_cast<uint64_t>(num(o, "version", 0));
  img.step = static_cast<uint64_t>(num(o, "step", 0));
  auto tensorOf = [&](const std::string& name) -> const gv::TensorInfo& {
    int64_t t = s.find(name);
    if (t < 0) throw make_error(env, Code::InvalidArgument, "no tensor '" + name + "'");
    return s.tensor(static_cast<size_t>(t));
  };
  Napi::Value sv = o.Get("state");
  if (sv.IsArray()) {
    Napi::Array a = sv.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Object e = a.Get(i).As<Napi::Object>();
      const int slot = static_cast<int>(num(e, "slot", 1));
      const gv::TensorInfo& t = tensorOf(str(e, "name", ""));
      Napi::Value dv = e.Get("data");
      if (!dv.IsTypedArray() || dv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
          dv.As<Napi::Float32Array>().ElementLength() != t.size)
        throw make_error(env, Code::Shape, "optimizer state for '" + t.name + "' must be a Float32Array of " + std::to_string(t.size));
      std::vector<float>& dst = slot == 2 ? img.s2 : img.s1;
      if (dst.empty()) dst.assign(s.padded_floats(), 0.f);
      std::memcpy(dst.data() + t.offset, dv.As<Napi::Float32Array>().Data(), t.size * sizeof(float));
    }
  }
  // { name, data: BigInt64Array of the tensor's size } into dst at the tensor's offset
  auto copyI64 = [&](Napi::Value ev, const char* what, std::vector<int64_t>& dst) -> const gv::TensorInfo& {
    Napi::Object e = ev.As<Napi::Object>();
    const gv::TensorInfo& t = tensorOf(str(e, "name", ""));
    Napi::Value dv = e.Get("data");
    if (!dv.IsTypedArray() || dv.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array ||
        dv.As<Napi::TypedArrayOf<int64_t>>().ElementLength() != t.size)
      throw make_error(env, Code::Shape, std::string(what) + " for '" + t.name + "' must be a BigInt64Array of " + std::to_string(t.size));
    std::memcpy(dst.data() + t.offset, dv.As<Napi::TypedArrayOf<int64_t>>().Data(), t.size * sizeof(int64_t));
    return t;
  };
  Napi::Value fv = o.Get("fixed");
  if (fv.IsArray()) {
    Napi::Array a = fv.As<Napi::Array>();
    if (a.Length() > 0) img.fixed.assign(s.padded_floats(), 0);
    for (uint32_t i = 0; i < a.Length(); ++i) copyI64(a.Get(i), "fixed-point values", img.fixed);
    if (img.fixed.size() && a.Length() != s.tensor_count()) img.fixed.clear();  // partial: use the float values
  }
  // averaging's open round: round: [{ name, data: BigInt64Array }], pending
  Napi::Value rv = o.Get("round");
  img.pending = static_cast<uint64_t>(num(o, "pending", 0));
  if (img.pending > 0) {
    if (!rv.IsArray()) throw_arg(env, "round must be an array");
    Napi::Array a = rv.As<Napi::Array>();
    img.round.assign(s.padded_floats(), 0);
    img.roundTensors.assign(s.tensor_count(), 0);
    for (uint32_t i = 0; i < a.Length(); ++i) img.roundTensors[static_cast<size_t>(s.find(copyI64(a.Get(i), "round sums", img.round).name))] = 1;
  }
  Status st = s.import_state(img);
  if (!st.ok()) throw status_error(env, st, &s);
  return env.Undefined();
}

// readCheckpoint(file) -> Promise<{ metadata, tensors: [{ name, dtype, shape, data }] }>:
// the header validated before any tensor is read (safetensors.h).
class ReadCheckpointWorker : public Napi::AsyncWorker {
 public:
  ReadCheckpointWorker(Napi::Env env, std::string file)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), file_(std::move(file)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { status_ = gv::st::read(file_, uint64_t{1} << 40, &header_, &data_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!status_.ok()) {
      deferred_.Reject(status_error(env, status_, nullptr).Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    Napi::Object meta = Napi::Object::New(env);
    for (const auto& kv : header_.metadata) meta.Set(kv.first, kv.second);
    o.Set("metadata", meta);
    Napi::Array ts = Napi::Array::New(env);
    uint32_t k = 0;
    for (const gv::st::Tensor& t : header_.tensors) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("name", t.name);
      e.Set("dtype", t.dtype);
      Napi::Array shape = Napi::Array::New(env);
      size_t numel = 1;
      for (uint32_t d = 0; d < t.shape.size(); ++d) {
        shape.Set(d, Napi::Number::New(env, static_cast<double>(t.shape[d])));
        numel *= static_cast<size_t>(t.shape[d]);
      }
      e.Set("shape", shape);
      // where its bytes start in the file, for errors that name a byte offset
      e.Set("offset", Napi::Number::New(env, static_cast<double>(header_.dataStart + t.begin)));
      const uint8_t* src = data_.data() + t.begin;
      if (t.dtype == "F32") {
        Napi::Float32Array a = Napi::Float32Array::New(env, numel);
        std::memcpy(a.Data(), src, numel * 4);
        e.Set("data", a);
      } else if (t.dtype == "F64") {
        Napi::Float32Array a = Napi::Float32Array::New(env, numel);
        for (size_t i = 0; i < numel; ++i) {
          double v;
          std::memcpy(&v, src + 8 * i, 8);
          a[i] = static_cast<float>(v);
        }
        e.Set("data", a);
      } else if (t.dtype == "I64") {
        Napi::TypedArrayOf<int64_t> a = Napi::TypedArrayOf<int64_t>::New(env, numel, napi_bigint64_array);
        std::memcpy(a.Data(), src, numel * 8);
        e.Set("data", a);
      } else {
        e.Set("data", env.Null());
      }
      ts.Set(k++, e);
    }
    o.Set("tensors", ts);
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string file_;
  gv::st::Header header_;
  std::vector<uint8_t> data_;
  Status status_;
};

Napi::Value ReadCheckpoint(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw_arg(info.Env(), "file must be a string");
  auto* w = new ReadCheckpointWorker(info.Env(), info[0].As<Napi::String>().Utf8Value());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// ---- models, the trainer and evaluate()

bool is_instance(Napi::Env env, const Napi::Value& v, bool store);
struct RunRegistry;
RunRegistry* run_registry(Napi::Env env);

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

DatasetPtr dataset_arg(const Napi::CallbackInfo& info, uint32_t k);

Napi::Array tensor_specs_js(Napi::Env env, const gv::model::Model& m) {
  Napi::Array out = Napi::Array::New(env);
  uint32_t k = 0;
  for (const gv::TensorSpec& t : m.tensors()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    Napi::Array shape = Napi::Array::New(env);
    for (uint32_t d = 0; d < t.shape.size(); ++d) shape.Set(d, Napi::Number::New(env, static_cast<double>(t.shape[d])));
    o.Set("shape", shape);
    o.Set("init", t.init == gv::InitKind::Glorot ? "glorot" : t.init == gv::InitKind::Normal ? "normal" : "zeros");
    o.Set("std", Napi::Number::New(env, t.std));
    out.Set(k++, o);
  }
  return out;
}

// modelTensors(model, dataset) -> [{ name, shape, init, std }]: the store a
// model needs for this data.
Napi::Value ModelTensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  gv::model::ModelSpec spec = to_model_spec(env, info[0]);
  DatasetPtr d = dataset_arg(info, 1);
  std::unique_ptr<gv::model::Model> m;
  Status s = gv::model::Model::create(spec, gv::model::Model::dims_of(*d), &m);
  if (!s.ok()) throw status_error(env, s, nullptr);
  return tensor_specs_js(env, *m);
}

// evaluate(names, shapes, arrays, model, dataset) -> { rows, loss, accuracy | rmse }
Napi::Value Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsArray() || !info[1].IsArray() || !info[2].IsArray())
    throw_arg(env, "evaluate expects (names, shapes, arrays, model, dataset)");
  Napi::Array names = info[0].As<Napi::Array>(), shapes = info[1].As<Napi::Array>(), arrays = info[2].As<Napi::Array>();
  const uint32_t n = names.Length();
  if (shapes.Length() != n || arrays.Length() != n) throw_arg(env, "names, shapes and arrays must have one entry per tensor");
  std::vector<std::string> nm;
  std::vector<std::vector<int64_t>> sh;
  std::vector<const float*> ptr;
  for (uint32_t i = 0; i < n; ++i) {
    nm.push_back(names.Get(i).ToString().Utf8Value());
    Napi::Value sv = shapes.Get(i);
    if (!sv.IsArray()) throw_arg(env, "shapes entries must be arrays");
    Napi::Array sa = sv.As<Napi::Array>();
    std::vector<int64_t> shape;
    size_t size = 1;
    for (uint32_t d = 0; d < sa.Length(); ++d) {
      shape.push_back(sa.Get(d).ToNumber().Int64Value());
      size *= static_cast<size_t>(shape.back());
    }
    sh.push_back(shape);
    Napi::Value av = arrays.Get(i);
    if (!av.IsTypedArray() || av.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw_arg(env, "arrays entries must be Float32Arrays");
    Napi::Float32Array f = av.As<Napi::Float32Array>();
    if (f.ElementLength() != size) throw make_error(env, Code::Shape, "tensor '" + nm.back() + "' has " + std::to_string(f.ElementLength()) + " values, its shape says " + std::to_string(size));
    ptr.push_back(f.Data());
  }
  gv::model::ModelSpec spec = to_model_spec(env, info[3]);
  DatasetPtr d = dataset_arg(info, 4);
  std::unique_ptr<gv::model::Model> m;
  std::vector<int> order;
  Status s = gv::model::Model::from_shapes(spec, nm, sh, &m, &order);
  if (!s.ok()) throw status_error(env, s, nullptr);
  std::vector<const float*> p;
  for (int k : order) p.push_back(ptr[k]);
  gv::model::EvalSums sums;
  s = gv::model::evaluate(*m, p.data(), *d, &sums);
  if (!s.ok()) throw status_error(env, s, nullptr);
  Napi::Object o = Napi::Object::New(env);
  const double rows = static_cast<double>(sums.rows);
  o.Set("rows", Napi::Number::New(env, rows));
  o.Set("loss", Napi::Number::New(env, rows ? sums.loss / rows : NAN));
  if (m->regression()) o.Set("rmse", Napi::Number::New(env, rows ? std::sqrt(sums.sqErr / rows) : NAN));
  else o.Set("accuracy", Napi::Number::New(env, rows ? sums.correct / rows : NAN));
  return o;
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
  explicit TrainRun(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

// Runs still going in an environment: its teardown (worker.terminate(),
// process exit) cancels and joins them, so no trainer thread outlives it.
struct RunRegistry {
  std::unordered_set<std::shared_ptr<TrainRun>> runs;
};

void join_run(TrainRun& r) {
  if (r.thread.joinable()) r.thread.join();
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

struct TrainEvent {
  std::shared_ptr<TrainRun> run;
  bool final = false;
  gv::train::Progress progress;
};

// train(store, dataset, model, options, onProgress) -> { done: Promise<result>, cancel() }
Napi::Value Train(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !is_instance(env, info[0], true) || !info[4].IsFunction())
    throw_arg(env, "train expects (store, dataset, model, options, onProgress)");
  auto run = std::make_shared<TrainRun>(env);
  run->store = Napi::ObjectWrap<NativeStore>::Unwrap(info[0].As<Napi::Object>())->shared(env);
  run->data = dataset_arg(info, 1);
  gv::model::ModelSpec spec = to_model_spec(env, info[2]);
  run->cfg = to_trainer_config(env, info[3]);
  Status s = gv::train::check_config(run->cfg);
  if (s.ok()) s = gv::model::Model::create(spec, gv::model::Model::dims_of(*run->data), &run->model);
  if (s.ok()) s = run->model->check_data(*run->data);
  std::vector<uint32_t> idx;
  if (s.ok()) s = gv::train::bind_model(*run->model, *run->store, &idx);
  if (!s.ok()) throw status_error(env, s, run->store.get());

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
                                   &run->result);
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
  return handle;
}

Napi::Value IsaInfo(const Napi::CallbackInfo& info) {
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
    Napi::Function store = NativeStore::Define(env);
    storeCtor_ = Napi::Persistent(store);
    datasetCtor_ = Napi::Persistent(NativeDataset::Define(env));
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
    env.AddCleanupHook([this] {
      for (const auto& r : runs_.runs) r->cancel.store(true);
      for (const auto& r : runs_.runs) join_run(*r);
    });
  }

 private:
  Napi::Value Checksum(const Napi::CallbackInfo& info) { return ::Checksum(info); }
  Napi::Value Isa(const Napi::CallbackInfo& info) { return IsaInfo(info); }
  Napi::Value Release(const Napi::CallbackInfo& info) { return ::Release(info); }
  Napi::Value LoadIdx(const Napi::CallbackInfo& info) { return ::LoadIdx(info); }
  Napi::Value LoadLibsvm(const Napi::CallbackInfo& info) { return ::LoadLibsvm(info); }
  Napi::Value LoadCsv(const Napi::CallbackInfo& info) { return ::LoadCsv(info); }
  Napi::Value Synthetic(const Napi::CallbackInfo& info) { return ::Synthetic(info); }
  Napi::Value ModelTensors(const Napi::CallbackInfo& info) { return ::ModelTensors(info); }
  Napi::Value Evaluate(const Napi::CallbackInfo& info) { return ::Evaluate(info); }
  Napi::Value Train(const Napi::CallbackInfo& info) { return ::Train(info); }
  Napi::Value ReadCheckpoint(const Napi::CallbackInfo& info) { return ::ReadCheckpoint(info); }

 public:
  Napi::FunctionReference storeCtor_;
  Napi::FunctionReference datasetCtor_;  // per environment: wrap_dataset uses it
  RunRegistry runs_;
};

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

DatasetPtr dataset_arg(const Napi::CallbackInfo& info, uint32_t k) {
  if (info.Length() <= k || !is_instance(info.Env(), info[k], false)) throw_arg(info.Env(), "data must be a Dataset");
  return Napi::ObjectWrap<NativeDataset>::Unwrap(info[k].As<Napi::Object>())->data();
}

}  // namespace

NODE_API_ADDON(Addon)
