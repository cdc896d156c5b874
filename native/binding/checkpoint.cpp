// Checkpoints: NativeStore.save(), loadCheckpoint() and inspectCheckpoint(),
// each the core's call (core/checkpoint) on the pool, converted.
#include <memory>
#include <string>
#include <utility>

#include "../core/checkpoint/checkpoint.h"
#include "binding.h"
#include "convert.h"
#include "worker.h"

namespace gv::binding {
namespace {

// { file, bytes, version, pauseSeconds, seconds } (NativeSaveResult)
Napi::Object save_result(Napi::Env e, const std::string& file, const ckpt::SaveInfo& si) {
  Napi::Object o = Napi::Object::New(e);
  o.Set("file", file);
  o.Set("bytes", Napi::Number::New(e, static_cast<double>(si.bytes)));
  o.Set("version", Napi::Number::New(e, static_cast<double>(si.version)));
  o.Set("pauseSeconds", Napi::Number::New(e, si.pauseSeconds));
  o.Set("seconds", Napi::Number::New(e, si.seconds));
  return o;
}

}  // namespace

// save(file) -> Promise<{ file, bytes, version, pauseSeconds, seconds }>:
// the export holds pushes back only for the copy; the file is written after they resume.
Napi::Value save_store(const Napi::CallbackInfo& info, std::shared_ptr<Store> store) {
  Napi::Env env = info.Env();
  std::string file = string_arg(info, 0, "file");
  auto job = [store, file](ckpt::SaveInfo* out) { return ckpt::save(*store, file, out); };
  auto convert = [file](Napi::Env e, const ckpt::SaveInfo& si) { return save_result(e, file, si); };
  return queue_promise<ckpt::SaveInfo>(env, std::move(job), std::move(convert), store);
}

// loadCheckpoint(file, options) -> Promise<NativeStore>: options as
// NativeLoadOptions (lib/native.ts), null for a field the file decides.
Napi::Value load_checkpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file = string_arg(info, 0, "file");
  ckpt::LoadOptions options = to_load_options(env, object_arg(info, 1, "options"));
  auto job = [file, options](std::shared_ptr<Store>* out) { return ckpt::load(file, options, out); };
  auto convert = [](Napi::Env e, std::shared_ptr<Store>& s) { return wrap_store(e, std::move(s)); };
  return queue_promise<std::shared_ptr<Store>>(env, std::move(job), std::move(convert));
}

// inspectCheckpoint(file) -> Promise<{ metadata, tensors: [{ name, dtype,
// shape, offset, elements, min, max, mean }], model? }> (min, max, mean: null
// for tensors that are not F32 or F64, or empty; model: NativeModelInfo where
// the metadata records a valid one; scaler: { mean, scale } where that model
// records one).
Napi::Value inspect_checkpoint(const Napi::CallbackInfo& info) {
  std::string file = string_arg(info, 0, "file");
  auto job = [file](ckpt::Inspection* out) { return ckpt::inspect(file, out); };
  auto convert = [](Napi::Env env, const ckpt::Inspection& r) {
    Napi::Object o = Napi::Object::New(env);
    Napi::Object meta = Napi::Object::New(env);
    for (const auto& kv : r.metadata) meta.Set(kv.first, kv.second);
    o.Set("metadata", meta);
    Napi::Array ts = Napi::Array::New(env, r.tensors.size());
    auto n = [&](double v) { return Napi::Number::New(env, v); };
    for (size_t i = 0; i < r.tensors.size(); ++i) {
      const ckpt::TensorSummary& t = r.tensors[i];
      Napi::Object e = Napi::Object::New(env);
      e.Set("name", t.name);
      e.Set("dtype", t.dtype);
      e.Set("shape", shape_js(env, t.shape));
      e.Set("offset", n(static_cast<double>(t.offset)));
      e.Set("elements", n(static_cast<double>(t.elements)));
      e.Set("min", t.numeric ? n(t.min) : env.Null());
      e.Set("max", t.numeric ? n(t.max) : env.Null());
      e.Set("mean", t.numeric ? n(t.mean) : env.Null());
      ts.Set(static_cast<uint32_t>(i), e);
    }
    o.Set("tensors", ts);
    if (r.model) o.Set("model", model_info_js(env, *r.model));
    if (r.model && !r.model->scaler.empty()) o.Set("scaler", scaler_js(env, r.model->scaler));
    return o;
  };
  return queue_promise<ckpt::Inspection>(info.Env(), std::move(job), std::move(convert));
}

// mergeCheckpoints(file, parts: Buffer[], tensors: [{ name, shape, slices: [{ part, name, start, size }] }])
// -> Promise<{ file, bytes, version, pauseSeconds, seconds }>: the parts are copied first.
Napi::Value merge_checkpoints(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file = string_arg(info, 0, "file");
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsArray()) throw_arg(env, "mergeCheckpoints expects (file, parts, tensors)");
  Napi::Array ps = info[1].As<Napi::Array>(), ts = info[2].As<Napi::Array>();
  std::vector<std::vector<uint8_t>> parts;
  for (uint32_t i = 0; i < ps.Length(); ++i) {
    Napi::Value v = ps.Get(i);
    if (!v.IsBuffer()) throw_arg(env, "parts must be Buffers");
    Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    parts.emplace_back(b.Data(), b.Data() + b.Length());
  }
  std::vector<ckpt::MergeTensor> tensors;
  for (uint32_t i = 0; i < ts.Length(); ++i) {
    if (!ts.Get(i).IsObject()) throw_arg(env, "tensors must be objects");
    Napi::Object t = ts.Get(i).As<Napi::Object>();
    ckpt::MergeTensor m;
    m.name = str(t, "name");
    Napi::Value shape = field(t, "shape"), slices = field(t, "slices");
    if (!shape.IsArray() || !slices.IsArray()) throw_arg(env, "shape and slices must be arrays");
    for (uint32_t d = 0; d < shape.As<Napi::Array>().Length(); ++d) m.shape.push_back(shape.As<Napi::Array>().Get(d).As<Napi::Number>().Int64Value());
    Napi::Array sl = slices.As<Napi::Array>();
    for (uint32_t k = 0; k < sl.Length(); ++k) {
      Napi::Object o = sl.Get(k).As<Napi::Object>();
      m.slices.push_back({static_cast<size_t>(integer(o, "part", 0, 1 << 20)), str(o, "name"), static_cast<uint64_t>(integer(o, "start", 0, int64_t{1} << 53)),
                          static_cast<uint64_t>(integer(o, "size", 0, int64_t{1} << 53))});
    }
    tensors.push_back(std::move(m));
  }
  auto job = [file, parts = std::move(parts), tensors = std::move(tensors)](ckpt::SaveInfo* out) { return ckpt::merge(file, parts, tensors, out); };
  auto convert = [file](Napi::Env e, const ckpt::SaveInfo& si) { return save_result(e, file, si); };
  return queue_promise<ckpt::SaveInfo>(env, std::move(job), std::move(convert));
}

// loadSlices(file, options, slices: [{ name, tensor, start, size }], shard) -> Promise<NativeStore>
Napi::Value load_slices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file = string_arg(info, 0, "file");
  ckpt::LoadOptions options = to_load_options(env, object_arg(info, 1, "options"));
  if (info.Length() < 4 || !info[2].IsArray() || !info[3].IsNumber()) throw_arg(env, "loadSlices expects (file, options, slices, shard)");
  Napi::Array sl = info[2].As<Napi::Array>();
  std::vector<ckpt::SliceSpec> slices;
  for (uint32_t k = 0; k < sl.Length(); ++k) {
    if (!sl.Get(k).IsObject()) throw_arg(env, "slices must be objects");
    Napi::Object o = sl.Get(k).As<Napi::Object>();
    slices.push_back({str(o, "name"), str(o, "tensor"), static_cast<uint64_t>(integer(o, "start", 0, int64_t{1} << 53)),
                      static_cast<uint64_t>(integer(o, "size", 0, int64_t{1} << 53))});
  }
  const uint64_t shard = static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value());
  auto job = [file, options, slices = std::move(slices), shard](std::shared_ptr<Store>* out) { return ckpt::load_slices(file, options, slices, shard, out); };
  auto convert = [](Napi::Env e, std::shared_ptr<Store>& s) { return wrap_store(e, std::move(s)); };
  return queue_promise<std::shared_ptr<Store>>(env, std::move(job), std::move(convert));
}

}  // namespace gv::binding
