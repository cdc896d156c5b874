// Checkpoints, the one owner of the format (README "Checkpoints"): a store
// as a safetensors file and back. Parameters under their own names, the
// optimizer state as `optimizer.<slot>.<tensor>` (PyTorch's slot names:
// momentum_buffer, sum, square_avg, exp_avg, exp_avg_sq), deterministic
// mode's exact Q32.32 values as `fixed.<tensor>` (I64), averaging's open
// round as `round.<tensor>` (I64 sums, for the tensors its pushes named) with
// its push count in metadata `pending`, and metadata (metadata.h): format,
// mode, version, step, tensors (JSON names), optimizer and options (JSON),
// and model (JSON) when the store knows the model its parameters are for.
//
// save() writes it; load() opens a file as a new store, the caller's
// options over the file's; inspect() describes any safetensors file. The
// facade (lib/store.ts, lib/cli/inspect.ts), gv_bench_train and the fuzzers
// call these, and nothing else reads or writes the format.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../store.h"
#include "safetensors.h"

namespace gv::ckpt {

constexpr const char* kFormat = "gradvault/1";

// Slot names of the optimizer's state, in slot order (empty: no state).
std::vector<std::string> slot_names(const kernels::StepArgs& opt);

struct SaveInfo {
  uint64_t bytes = 0;
  uint64_t version = 0;
  double pauseSeconds = 0;
  double seconds = 0;
};

// Writes the store crash-safely (safetensors.h): every tensor from one point
// in time (pushes wait for the copy only), the metadata from the store's own
// configuration. extra: further metadata entries (keys other than ours).
Status save(Store& s, const std::string& file, SaveInfo* info,
            const std::vector<std::pair<std::string, std::string>>& extra = {});

// Staleness control as the configuration holds it (bound UINT64_MAX: none).
struct Staleness {
  StalePolicy policy = StalePolicy::Accept;
  uint64_t bound = UINT64_MAX;
};

// The caller's options for load(): each one set overrides the file's; one
// unset comes from the file, else from the defaults (StoreConfig).
struct LoadOptions {
  std::optional<Mode> mode;
  std::optional<kernels::StepArgs> optimizer;  // whole: its unset fields are not taken from the file
  std::optional<Staleness> staleness;
  std::optional<NonFinitePolicy> nonFinite;
  std::optional<uint64_t> syncEvery;
  std::optional<uint64_t> seed;
  std::optional<bool> verify;
  uint64_t maxBytes = uint64_t{1} << 40;  // a larger file is refused before it is read
};

// Opens a checkpoint as a new store (*out), or a file of another writer
// (every F32 or F64 tensor a parameter). Everything in the file is data,
// checked before a store exists: the header (safetensors.h), the metadata
// (metadata.h), finite parameters and state, non-negative second moments,
// fixed-point values in range, state of its parameter's size; each fault a
// DataFormat Status naming the file and, where there is one, the tensor
// (tensorName) and byte offset. The optimizer state is restored when the
// optimizer is the file's kind, deterministic's exact values when both are
// deterministic, averaging's open round when both are averaging.
// An invalid combination is the file's fault (DataFormat) when the file
// supplied the field, the caller's (Config) otherwise, and the caller's when
// the file is valid alone and only clashes with the mode the caller chose.
Status load(const std::string& file, const LoadOptions& options, std::shared_ptr<Store>* out);
// The same from a file already read (st::read): file names it in errors.
Status open(const std::string& file, const st::Header& header, const std::vector<uint8_t>& data,
            const LoadOptions& options, std::shared_ptr<Store>* out);

// A cluster's checkpoint (cluster.cpp). merge(): the shards' own
// checkpoints (bytes; each shard's slices as tensors named as `slices` say)
// into one file of whole tensors, parameters and optimizer state, with the
// shards' common metadata, the version and step summed and each shard's
// version in metadata `shards`. A single process loads it; load_slices()
// gives a restarted shard its slices of it (values and state; its own
// version where the file has it). An open averaging round is refused.
struct MergeSlice {
  size_t part = 0;  // which shard's checkpoint holds it
  std::string name;  // its tensor there
  uint64_t start = 0, size = 0;  // its place in the whole tensor
};
struct MergeTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<MergeSlice> slices;  // covering it exactly
};
Status merge(const std::string& file, const std::vector<std::vector<uint8_t>>& parts, const std::vector<MergeTensor>& tensors, SaveInfo* info);
struct SliceSpec {
  std::string name;    // the shard's tensor
  std::string tensor;  // the file's tensor it is cut from
  uint64_t start = 0, size = 0;
};
Status load_slices(const std::string& file, const LoadOptions& options, const std::vector<SliceSpec>& slices, uint64_t shard,
                   std::shared_ptr<Store>* out);

// What `gradvault inspect` shows: the metadata, the model it records, and
// each tensor, with the range and mean of its values for F32 and F64 tensors.
struct TensorSummary {
  std::string name, dtype;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // of its data in the file
  uint64_t elements = 0;
  bool numeric = false;  // F32 or F64: min, max and mean hold
  double min = 0, max = 0, mean = 0;
};
struct Inspection {
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<TensorSummary> tensors;  // in file order
  // metadata "model" read (metadata.h read_model): absent when the file has
  // none or one that load() would refuse (the text stays in metadata).
  std::optional<ModelInfo> model;
};
Status inspect(const std::string& file, Inspection* out);

// A checkpoint's state for a freshly created store (load() picks what
// applies). Arrays are by tensor name, each exactly the tensor's size; a
// an empty array's data may be null.
struct RestoreInput {
  template <class T>
  struct Array {
    std::string name;
    const T* data = nullptr;
    size_t size = 0;
  };
  uint64_t version = 0, step = 0;
  std::vector<std::pair<int, Array<float>>> state;  // slot 1 or 2
  std::vector<Array<int64_t>> fixed;                // all tensors, or ignored (partial: the float values stand)
  std::vector<Array<int64_t>> round;                // the open round's sums, for the tensors it named
  uint64_t pending = 0;                             // pushes in the open round (0: none)
};

// Builds the store's state image (its parameters as created, the input's
// state and counters) and imports it.
Status restore(Store& s, const RestoreInput& in);

// A read tensor's values as float32 (F32 as it is, F64 rounded), into
// out[elements(t)]; other dtypes are not float tensors.
uint64_t elements(const st::Tensor& t);
bool is_float(const st::Tensor& t);
void read_floats(const st::Tensor& t, const uint8_t* data, float* out);

}  // namespace gv::ckpt
