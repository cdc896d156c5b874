// Feature scaling: fit_scaler() and standardize() (dataset.h), check_scaler()
// (standardize.h).
#include <cmath>
#include <cstdio>
#include <new>
#include <utility>

#include "dataset.h"

namespace gv::data {
namespace {

std::string number_text(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.17g", x);
  return b;
}

Status invalid(const std::string& msg, const char* field, int64_t index = -1) {
  Status s = Status::Error(Code::InvalidArgument, msg, field);
  s.index = index;
  return s;
}

Status check_kind(const Dataset& d, const char* what) {
  if (d.kind == Kind::Ratings)
    return invalid(std::string(what) + ": a ratings dataset ((user, item) pairs for mf) has no features to standardize", "kind");
  return Status::Ok();
}

// A standardized value beyond float32 (a scale far below the data's spread).
Status too_large(uint64_t row, uint64_t j, double scale) {
  Status s = invalid("standardizing row " + std::to_string(row) + ", feature " + std::to_string(j) + " by scale[" + std::to_string(j) +
                         "] = " + number_text(scale) + " gives a value beyond float32",
                     "scale", static_cast<int64_t>(j));
  return s;
}

}  // namespace

Status check_scaler(const Scaler& s, uint64_t features) {
  for (auto [v, name] : {std::pair{&s.mean, "mean"}, std::pair{&s.scale, "scale"}})
    if (v->size() != features)
      return invalid(std::string("the scaler's ") + name + " has " + std::to_string(v->size()) + " values, the data " +
                         std::to_string(features) + " features",
                     name);
  for (uint64_t j = 0; j < features; ++j) {
    if (!std::isfinite(s.mean[j]))
      return invalid("the scaler's mean[" + std::to_string(j) + "] is " + number_text(s.mean[j]) + ", not a finite number", "mean",
                     static_cast<int64_t>(j));
    if (!std::isfinite(s.scale[j]) || !(s.scale[j] > 0))
      return invalid("the scaler's scale[" + std::to_string(j) + "] is " + number_text(s.scale[j]) + ", not a finite number > 0",
                     "scale", static_cast<int64_t>(j));
  }
  return Status::Ok();
}

Status fit_scaler(const Dataset& d, Scaler* out) {
  if (Status s = check_kind(d, "standardize"); !s.ok()) return s;
  if (d.rows == 0) return invalid("standardize: a dataset of no rows has no mean or standard deviation to fit", "data");
  try {
    const uint64_t F = d.features, n = d.rows;
    const double dn = static_cast<double>(n);
    Scaler r;
    r.mean.assign(F, 0.0);
    r.scale.assign(F, 0.0);
    std::vector<double>& sum = r.mean;
    std::vector<double>& sq = r.scale;
    if (d.kind == Kind::Dense) {
      for (uint64_t i = 0; i < n; ++i) {
        const float* x = d.X.data() + i * F;
        for (uint64_t j = 0; j < F; ++j) sum[j] += static_cast<double>(x[j]);
      }
      for (uint64_t j = 0; j < F; ++j) sum[j] /= dn;
      for (uint64_t i = 0; i < n; ++i) {
        const float* x = d.X.data() + i * F;
        for (uint64_t j = 0; j < F; ++j) {
          const double c = static_cast<double>(x[j]) - sum[j];
          sq[j] += c * c;
        }
      }
      for (uint64_t j = 0; j < F; ++j) sq[j] /= dn;
    } else {
      std::vector<uint64_t> stored(F, 0);
      for (uint64_t k = 0; k < d.indices.size(); ++k) {
        sum[d.indices[k]] += static_cast<double>(d.values[k]);
        ++stored[d.indices[k]];
      }
      for (uint64_t j = 0; j < F; ++j) sum[j] /= dn;
      for (uint64_t k = 0; k < d.indices.size(); ++k) {
        const double c = static_cast<double>(d.values[k]) - sum[d.indices[k]];
        sq[d.indices[k]] += c * c;
      }
      for (uint64_t j = 0; j < F; ++j) {
        sq[j] = (sq[j] + static_cast<double>(n - stored[j]) * sum[j] * sum[j]) / dn;
        sum[j] = 0.0;  // scaled, not centred
      }
    }
    for (uint64_t j = 0; j < F; ++j) {
      const double s = std::sqrt(sq[j]);
      sq[j] = s > 0 && std::isfinite(s) ? s : 1.0;
    }
    *out = std::move(r);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status::Error(Code::Internal, "out of memory fitting a scaler");
  }
}

Status standardize(const Dataset& d, const Scaler& s, Dataset* out) {
  if (Status st = check_kind(d, "standardize"); !st.ok()) return st;
  if (d.scaler)
    return invalid("standardize: this dataset is already standardized (it carries a scaler): standardize the raw data", "data");
  // A sparse file's width is its largest index + 1: a scaler of a wider
  // training set fits it (its first features values are read).
  const uint64_t width = d.kind == Kind::Sparse && s.mean.size() > d.features && s.scale.size() == s.mean.size() ? s.mean.size() : d.features;
  if (Status st = check_scaler(s, width); !st.ok()) return st;
  if (d.kind == Kind::Sparse)
    for (uint64_t j = 0; j < d.features; ++j)
      if (s.mean[j] != 0)
        return invalid("the scaler's mean[" + std::to_string(j) + "] is " + number_text(s.mean[j]) +
                           ": a sparse dataset is scaled, not centred (centring would make every row dense), so its scaler's mean must be 0",
                       "mean", static_cast<int64_t>(j));
  try {
    auto scaler = std::make_shared<const Scaler>(s);
    Dataset r = d;  // a copy: labels, class ids, CSR structure
    const uint64_t F = d.features;
    if (d.kind == Kind::Dense) {
      for (uint64_t i = 0; i < d.rows; ++i) {
        float* x = r.X.data() + i * F;
        for (uint64_t j = 0; j < F; ++j) {
          x[j] = static_cast<float>((static_cast<double>(x[j]) - s.mean[j]) / s.scale[j]);
          if (!std::isfinite(x[j])) return too_large(i, j, s.scale[j]);
        }
      }
    } else {
      for (uint64_t k = 0; k < r.values.size(); ++k) {
        const uint32_t j = r.indices[k];
        r.values[k] = static_cast<float>((static_cast<double>(r.values[k]) - s.mean[j]) / s.scale[j]);
        if (!std::isfinite(r.values[k])) {
          uint64_t i = 0;
          while (r.indptr[i + 1] <= k) ++i;
          return too_large(i, j, s.scale[j]);
        }
      }
    }
    r.scaler = std::move(scaler);
    *out = std::move(r);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status::Error(Code::Internal, "out of memory standardizing a dataset");
  }
}

}  // namespace gv::data
