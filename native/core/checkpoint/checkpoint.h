// A store as a safetensors checkpoint: parameters under their own names, the
// optimizer state as `optimizer.<slot>.<tensor>` (PyTorch's slot names:
// momentum_buffer, sum, square_avg, exp_avg, exp_avg_sq), deterministic
// mode's exact Q32.32 values as `fixed.<tensor>` (I64), averaging's open
// round as `round.<tensor>` (I64 sums, for the tensors its pushes named) with
// its push count in metadata `pending`, and metadata: format, mode,
// version, step, optimizer (JSON), tensors (JSON names).
#pragma once
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

// Writes the store crash-safely (safetensors.h). meta: extra metadata (the
// facade adds the optimizer's JSON and the store options).
Status save(Store& s, const std::string& file, const std::vector<std::pair<std::string, std::string>>& meta, SaveInfo* info);

// A checkpoint's state for a freshly created store (the facade picks what
// applies: the optimizer's slots when the kinds match, deterministic's exact
// values, averaging's open round). Arrays are by tensor name, each exactly
// the tensor's size; a null data is an array of the wrong type. The
// messages name the typed arrays the facade sends.
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
