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

// restore({ version, step, state: [{ slot, name, data }], fixed: [{ name, data }] }):
// a freshly created store takes a checkpoint's optimizer state and counters.
void restore_store(const Napi::CallbackInfo& info, Store& s) {
  Napi::Env env = info.Env();
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
    size_t numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<size_t>(d);
    // where its bytes start in the file, for errors that name a byte offset
    e.Set("offset", Napi::Number::New(env, static_cast<double>(r.header.dataStart + t.begin)));
    const uint8_t* src = r.data.data() + t.begin;
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
