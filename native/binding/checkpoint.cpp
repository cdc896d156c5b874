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

// save(file) -> Promise<{ file, bytes, version, pauseSeconds, seconds }>:
// the export holds pushes back only for the copy; the file is written after they resume.
Napi::Value save_store(const Napi::CallbackInfo& info, std::shared_ptr<Store> store) {
  Napi::Env env = info.Env();
  std::string file = string_arg(info, 0, "file");
  auto job = [store, file](ckpt::SaveInfo* out) { return ckpt::save(*store, file, out); };
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
// shape, offset, elements, min, max, mean }] }> (min, max, mean: null for
// tensors that are not F32 or F64, or empty).
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
    return o;
  };
  return queue_promise<ckpt::Inspection>(info.Env(), std::move(job), std::move(convert));
}

}  // namespace gv::binding
