// Feature scaling (standardization): a Scaler holds, per feature, the mean
// subtracted and the scale divided by (x' = (x - mean) / scale, in double,
// rounded to float32 once). fit_scaler() fits one on a dataset's rows;
// standardize() (dataset.h) applies one. A store records the scaler of the
// data its model was trained on (store.h ModelInfo), checkpoints save it
// (metadata "model"), and predict() applies it to raw rows.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../status.h"

namespace gv::data {

struct Scaler {
  std::vector<double> mean;   // per feature; all 0 for a sparse dataset's (scaled, not centred)
  std::vector<double> scale;  // per feature, finite and > 0 (a constant feature's is 1)
  bool empty() const { return mean.empty() && scale.empty(); }
  bool operator==(const Scaler&) const = default;
};

// A scaler of features values: both arrays of that length, every mean
// finite, every scale finite and > 0. ERR_INVALID_ARGUMENT naming the field
// ("mean" or "scale") and the index otherwise.
Status check_scaler(const Scaler& s, uint64_t features);

}  // namespace gv::data
