// One factory per update strategy (one file each in this folder);
// Store::create (create.cpp) picks one by mode.
#pragma once
#include <memory>
#include <vector>

#include "../store.h"

namespace gv::detail {

using MakeStore = std::shared_ptr<Store> (*)(const StoreConfig&, std::vector<TensorInfo>, size_t padded);
std::shared_ptr<Store> make_atomic(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded);
std::shared_ptr<Store> make_locked(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded);
std::shared_ptr<Store> make_hogwild(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded);
std::shared_ptr<Store> make_versioned(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded);
std::shared_ptr<Store> make_deterministic(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded);
std::shared_ptr<Store> make_averaging(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded);

}  // namespace gv::detail
