// Checkpoints: save() and readCheckpoint() on the pool, restore() of a
// checkpoint's state into a freshly created store.
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/checkpoint/checkpoint.h"
#include "../core/checkpoint/safetensors.h"
#include "binding.h"
#include "convert.h"
#include "worker.h"

namespace gv::binding {

// save(file, { key: value }) -> Promise<{ file, bytes, version, pauseSeconds, seconds }>:
// the export holds pushes back only for the copy; the file is written after they resume.
Napi::Value save_store(const Napi::CallbackInfo& info, std::shared_ptr<Store> store) {
  Napi::Env env = info.Env();
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
  std::string file = info[0].As<Napi::String>().Utf8Value();
  auto job = [store, file, meta = std::move(meta)](ckpt::SaveInfo* out) { return ckpt::save(*store, file, meta, out); };
  auto convert = [file](Napi::Env e, const ckpt::SaveInfo& si) {
    Napi::Object o = Napi::Object::New(e);
    o.Set("file", file);
    o.Set("bytes", Napi::Number::New(e, static_cast<double>(si.bytes)));
    o.Set("version", Napi::Number::New(e, static_cast<double>(si.version)));
    o.Set("pauseSeconds", Napi::Number::New(e, si.pauseSeconds));
    o.Set("seconds", Napi::Number::New(e, si.seconds));
    return o;
  };
  return queue_promise<ckpt::SaveInfo>(env, std::move(job), std::move(convert), store);
}

namespace {

// { name, data } with data a typed array of element T (napi type `type`);
// data of another type arrives as null, which the core reports.
template <class T>
ckpt::RestoreInput::Array<T> array_of(const Napi::Value& v, napi_typedarray_type type) {
  if (!v.IsObject()) throw_arg(v.Env(), "restore entries must be objects");
  Napi::Object e = v.As<Napi::Object>();
  ckpt::RestoreInput::Array<T> a;
  a.name = str(e, "name");
  Napi::Value dv = field(e, "data");
  if (dv.IsTypedArray() && dv.As<Napi::TypedArray>().TypedArrayType() == type) {
    Napi::TypedArrayOf<T> t = dv.As<Napi::TypedArrayOf<T>>();
    a.data = t.Data();
    a.size = t.ElementLength();
  }
  return a;
}

Napi::Array array_field(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsArray()) throw_arg(o.Env(), std::string(key) + " must be an array");
  return v.As<Napi::Array>();
}

}  // namespace

// restore({ version, step, state: [{ slot, name, data }], fixed: [{ name, data }], round: [{ name, data }], pending }):
// a freshly created store takes a checkpoint's optimizer state and counters
// (ckpt::restore builds the image). The arrays are read during the call only.
void restore_store(const Napi::CallbackInfo& info, Store& s) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_arg(env, "restore expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  ckpt::RestoreInput in;
  in.version = static_cast<uint64_t>(num(o, "version"));
  in.step = static_cast<uint64_t>(num(o, "step"));
  in.pending = static_cast<uint64_t>(num(o, "pending"));
  Napi::Array state = array_field(o, "state"), fixed = array_field(o, "fixed"), round = array_field(o, "round");
  for (uint32_t i = 0; i < state.Length(); ++i) {
    Napi::Value e = state.Get(i);
    auto a = array_of<float>(e, napi_float32_array);
    in.state.emplace_back(static_cast<int>(num(e.As<Napi::Object>(), "slot")), std::move(a));
  }
  for (uint32_t i = 0; i < fixed.Length(); ++i) in.fixed.push_back(array_of<int64_t>(fixed.Get(i), napi_bigint64_array));
  for (uint32_t i = 0; i < round.Length(); ++i) in.round.push_back(array_of<int64_t>(round.Get(i), napi_bigint64_array));
  Status st = ckpt::restore(s, in);
  if (!st.ok()) throw status_error(env, st, &s);
}

namespace {

// What readCheckpoint's job reads: the validated header, then the tensors' bytes.
struct ReadResult {
  st::Header header;
  std::vector<uint8_t> data;
};

Napi::Object tensors_js(Napi::Env env, ReadResult& r) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Object meta = Napi::Object::New(env);
  for (const auto& kv : r.header.metadata) meta.Set(kv.first, kv.second);
  o.Set("metadata", meta);
  Napi::Array ts = Napi::Array::New(env);
  uint32_t k = 0;
  for (const st::Tensor& t : r.header.tensors) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", t.name);
    e.Set("dtype", t.dtype);
    e.Set("shape", shape_js(env, t.shape));
    // where its bytes start in the file, for errors that name a byte offset
    e.Set("offset", Napi::Number::New(env, static_cast<double>(r.header.dataStart + t.begin)));
    const size_t numel = static_cast<size_t>(ckpt::elements(t));
    if (ckpt::is_float(t)) {
      Napi::Float32Array a = Napi::Float32Array::New(env, numel);
      ckpt::read_floats(t, r.data.data(), a.Data());
      e.Set("data", a);
    } else if (t.dtype == "I64") {
      Napi::TypedArrayOf<int64_t> a = Napi::TypedArrayOf<int64_t>::New(env, numel, napi_bigint64_array);
      std::memcpy(a.Data(), r.data.data() + t.begin, numel * sizeof(int64_t));
      e.Set("data", a);
    } else {
      e.Set("data", env.Null());
    }
    ts.Set(k++, e);
  }
  o.Set("tensors", ts);
  return o;
}

}  // namespace

// readCheckpoint(file) -> Promise<{ metadata, tensors: [{ name, dtype, shape, offset, data }] }>:
// the header validated before any tensor is read (safetensors.h).
Napi::Value read_checkpoint(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw_arg(info.Env(), "file must be a string");
  std::string file = info[0].As<Napi::String>().Utf8Value();
  auto job = [file](ReadResult* r) { return st::read(file, uint64_t{1} << 40, &r->header, &r->data); };
  return queue_promise<ReadResult>(info.Env(), std::move(job), tensors_js);
}

}  // namespace gv::binding
