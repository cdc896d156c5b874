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

}  // namespace gv::ckpt
