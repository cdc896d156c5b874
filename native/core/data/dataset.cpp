#include <algorithm>
#include <cmath>
#include <new>

#include "reader.h"

namespace gv::data {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Dense: return "dense";
    case Kind::Sparse: return "sparse";
    case Kind::Ratings: return "ratings";
  }
  return "dense";
}

uint64_t Dataset::bytes() const {
  return labels.size() * 4 + classIds.size() * 4 + X.size() * 4 + indptr.size() * 8 + indices.size() * 4 +
         values.size() * 4 + user.size() * 4 + item.size() * 4;
}

Status slice(const Dataset& d, uint64_t start, uint64_t end, Dataset* out) {
  if (start > end || end > d.rows)
    return Status::Error(Code::InvalidArgument,
                         "slice [" + std::to_string(start) + ", " + std::to_string(end) + ") is outside 0.." + std::to_string(d.rows),
                         "start");
  try {
    Dataset r;
    r.kind = d.kind;
    r.rows = end - start;
    r.features = d.features;
    r.classes = d.classes;
    r.users = d.users;
    r.items = d.items;
    r.scaler = d.scaler;
    r.labels.assign(d.labels.begin() + start, d.labels.begin() + end);
    if (!d.classIds.empty()) r.classIds.assign(d.classIds.begin() + start, d.classIds.begin() + end);
    if (d.kind == Kind::Dense) {
      r.X.assign(d.X.begin() + start * d.features, d.X.begin() + end * d.features);
    } else if (d.kind == Kind::Sparse) {
      uint64_t a = d.indptr[start], b = d.indptr[end];
      r.indices.assign(d.indices.begin() + a, d.indices.begin() + b);
      r.values.assign(d.values.begin() + a, d.values.begin() + b);
      r.indptr.resize(r.rows + 1);
      for (uint64_t i = 0; i <= r.rows; ++i) r.indptr[i] = d.indptr[start + i] - a;
    } else {
      r.user.assign(d.user.begin() + start, d.user.begin() + end);
      r.item.assign(d.item.begin() + start, d.item.begin() + end);
    }
    *out = std::move(r);
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status::Error(Code::Internal, "out of memory slicing a dataset");
  }
}

namespace detail {

void finish_labels(Dataset* d) {
  bool pm1 = true, zero_one = true, ids = true;
  float maxv = 0;
  for (float v : d->labels) {
    if (v != 1.0f && v != -1.0f) pm1 = false;
    if (v != 1.0f && v != 0.0f) zero_one = false;
    if (!(v >= 0 && v == std::floor(v) && v < 2147483647.0f)) ids = false;
    maxv = std::max(maxv, v);
  }
  d->classIds.clear();
  if (d->labels.empty()) {
    d->classes = 0;
  } else if (pm1 || zero_one) {
    d->classes = 2;
    d->classIds.resize(d->labels.size());
    for (size_t i = 0; i < d->labels.size(); ++i) {
      d->classIds[i] = d->labels[i] > 0 ? 1 : 0;
      d->labels[i] = d->labels[i] > 0 ? 1.0f : -1.0f;
    }
  } else if (ids) {
    d->classes = static_cast<uint64_t>(maxv) + 1;
    d->classIds.resize(d->labels.size());
    for (size_t i = 0; i < d->labels.size(); ++i) d->classIds[i] = static_cast<int32_t>(d->labels[i]);
  } else {
    d->classes = 0;
  }
}

}  // namespace detail
}  // namespace gv::data
