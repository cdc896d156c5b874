// What the binding's files share beyond the conversions (convert.h): the
// wrapped objects' entry points, the module functions, and the per-
// environment state the Addon (addon.cpp) holds.
#pragma once
#include <napi.h>

#include <memory>
#include <unordered_set>

#include "../core/data/dataset.h"
#include "../core/store.h"

namespace gv::binding {

using DatasetPtr = std::shared_ptr<const data::Dataset>;

// addon.cpp: whether v is a NativeStore (store) or a NativeDataset of this
// environment, and a new NativeDataset holding d.
bool is_instance(Napi::Env env, const Napi::Value& v, bool store);
Napi::Object wrap_dataset(Napi::Env env, DatasetPtr d);

// store.cpp
Napi::Function define_store(Napi::Env env);
// The store of the NativeStore in info[k] (shared: closing the JS object
// leaves a running trainer its reference).
std::shared_ptr<Store> store_arg(const Napi::CallbackInfo& info, uint32_t k);

// A new NativeStore holding s (a store the core made: load).
Napi::Object wrap_store(Napi::Env env, std::shared_ptr<Store> s);

// checkpoint.cpp: NativeStore.save, loadCheckpoint, inspectCheckpoint
Napi::Value save_store(const Napi::CallbackInfo& info, std::shared_ptr<Store> store);
Napi::Value load_checkpoint(const Napi::CallbackInfo& info);
Napi::Value inspect_checkpoint(const Napi::CallbackInfo& info);
Napi::Value merge_checkpoints(const Napi::CallbackInfo& info);
Napi::Value load_slices(const Napi::CallbackInfo& info);

// dataset.cpp
Napi::Function define_dataset(Napi::Env env);
DatasetPtr dataset_arg(const Napi::CallbackInfo& info, uint32_t k);
Napi::Value load_idx(const Napi::CallbackInfo& info);
Napi::Value load_libsvm(const Napi::CallbackInfo& info);
Napi::Value load_csv(const Napi::CallbackInfo& info);
Napi::Value synthetic_dataset(const Napi::CallbackInfo& info);
Napi::Value dataset_from_dense(const Napi::CallbackInfo& info);
Napi::Value dataset_from_sparse(const Napi::CallbackInfo& info);
Napi::Value dataset_from_ratings(const Napi::CallbackInfo& info);

// trainer.cpp
Napi::Value model_tensors(const Napi::CallbackInfo& info);
Napi::Value evaluate(const Napi::CallbackInfo& info);
Napi::Value predict(const Napi::CallbackInfo& info);
Napi::Value predict_async(const Napi::CallbackInfo& info);
Napi::Value train(const Napi::CallbackInfo& info);

// Training runs still going in an environment: its teardown (worker.terminate(),
// process exit) cancels and joins them, so no trainer thread outlives it.
struct TrainRun;
struct RunRegistry {
  std::unordered_set<std::shared_ptr<TrainRun>> runs;
  void stop_all();
};
RunRegistry* run_registry(Napi::Env env);

}  // namespace gv::binding
