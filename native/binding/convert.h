// Shared glue of the binding: JS values to core structs and back, and a core
// Status to a JS error with a stable code. The TypeScript facade validates
// and normalises every argument first; the checks here only keep a bad call
// from crashing the process.
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../core/checkpoint/checkpoint.h"
#include "../core/model/model.h"
#include "../core/store.h"
#include "../core/trainer/trainer.h"

namespace gv::binding {

// A Float32Array's floats can sit at any address: a view of external memory
// (a ZeroMQ message's, say) need not be 4-byte aligned, and the kernels load
// whole floats. aligned_floats gives its own address when that is aligned,
// else a copy kept in *keep (found by UBSan on a shard's push).
inline bool misaligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % alignof(float) != 0; }
inline const float* aligned_floats(const Napi::Float32Array& f, std::vector<float>* keep) {
  const void* p = f.Data();
  if (!misaligned(p)) return static_cast<const float*>(p);
  keep->resize(f.ElementLength());
  if (!keep->empty()) std::memcpy(keep->data(), p, keep->size() * sizeof(float));
  return keep->data();
}

Napi::Error make_error(Napi::Env env, Code code, const std::string& message);
// store (may be null) names the tensor a Status points at.
Napi::Error status_error(Napi::Env env, const Status& s, const Store* store);
[[noreturn]] void throw_arg(Napi::Env env, const std::string& what);

// o[key], which must be there (see convert.cpp), of the type named.
Napi::Value field(const Napi::Object& o, const char* key);
double num(const Napi::Object& o, const char* key);
bool flag(const Napi::Object& o, const char* key);
std::string str(const Napi::Object& o, const char* key);
// A number that is an integer in lo..hi (the C++ field's range; the core checks what it means).
int64_t integer(const Napi::Object& o, const char* key, int64_t lo, int64_t hi);
std::string string_arg(const Napi::CallbackInfo& info, uint32_t k, const char* name);
Napi::Object object_arg(const Napi::CallbackInfo& info, uint32_t k, const char* name);
Napi::Array shape_js(Napi::Env env, const std::vector<int64_t>& shape);

StoreConfig to_config(Napi::Env env, const Napi::Object& c);
Napi::Object config_js(Napi::Env env, const StoreConfig& c);  // floats as their shortest decimal
ckpt::LoadOptions to_load_options(Napi::Env env, const Napi::Object& o);
std::vector<TensorSpec> to_tensors(Napi::Env env, const Napi::Value& v);
model::ModelSpec to_model_spec(Napi::Env env, const Napi::Value& v);
// A known ModelInfo as NativeModelInfo: { model, hidden?, rank?, biases?, l2?, features?, classes?, users?, items? }
Napi::Object model_info_js(Napi::Env env, const ModelInfo& m);
// A scaler (data/standardize.h) as { mean: Float64Array, scale: Float64Array } (copies).
Napi::Object scaler_js(Napi::Env env, const gv::data::Scaler& s);
train::TrainerConfig to_trainer_config(Napi::Env env, const Napi::Value& v);

Napi::Object result_object(Napi::Env env, const PushResult& r);
Napi::Object progress_js(Napi::Env env, const train::Progress& p);

}  // namespace gv::binding
