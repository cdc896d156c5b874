// Datasets from arrays already in memory (dense rows, CSR, rating triples),
// checked as a loader checks a file, and shuffle(). Every bad value is
// ERR_INVALID_ARGUMENT naming the array (field) and its index.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <new>
#include <numeric>

#include "../random.h"
#include "reader.h"

namespace gv::data {
namespace {

Status bad(const std::string& field, int64_t index, const std::string& msg) {
  Status s = Status::Error(Code::InvalidArgument, msg, field);
  s.index = index;
  return s;
}

std::string at(const std::string& field, uint64_t i) { return field + "[" + std::to_string(i) + "]"; }

std::string show(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  // integers in full: an id of 4294967296 must not read as the limit 4294967295
  if (v == std::floor(v) && std::fabs(v) < 1e17)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// An integer id in [0, limit): ids arrive as doubles (exact below 2^53).
Status check_id(const std::string& field, uint64_t i, double v, double limit, const char* what) {
  if (!(v >= 0 && v < limit && v == std::floor(v)))
    return bad(field, static_cast<int64_t>(i),
               at(field, i) + " is " + show(v) + ", not " + what + " in 0.." + show(limit - 1));
  return Status::Ok();
}

Status take_labels(const Column& labels, uint64_t rows, Dataset* d) {
  if (!labels.data) {
    d->labels.assign(rows, 0.f);  // unlabelled: classes 0, for predict()
    d->classes = 0;
    return Status::Ok();
  }
  if (labels.size != rows)
    return bad("labels", -1, "labels has " + std::to_string(labels.size) + " values, the data " + std::to_string(rows) + " rows");
  // copied, then checked: memory another thread shares cannot change between the two
  d->labels.assign(labels.data, labels.data + rows);
  for (uint64_t i = 0; i < rows; ++i)
    if (!std::isfinite(d->labels[i]))
      return bad("labels", static_cast<int64_t>(i), at("labels", i) + " is " + show(d->labels[i]) + ", not a finite number");
  detail::finish_labels(d);
  return Status::Ok();
}

template <class F>
Status guarded(F f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return bad("input", -1, "out of memory copying a dataset");
  }
}

}  // namespace

Status from_dense(const float* x, uint64_t size, uint64_t features, const Column& labels, Dataset* out) {
  return guarded([&] {
    if (features == 0 || features > UINT32_MAX)
      return bad("features", -1, "features must be an integer in 1.." + std::to_string(UINT32_MAX) + ", got " + std::to_string(features));
    if (size % features != 0)
      return bad("x", -1, "x has " + std::to_string(size) + " values, not a whole number of rows of " + std::to_string(features) + " features");
    const uint64_t rows = size / features;
    Dataset d;
    // copied, then checked: memory another thread shares cannot change between the two
    d.X.assign(x, x + size);
    for (uint64_t i = 0; i < size; ++i)
      if (!std::isfinite(d.X[i]))
        return bad("x", static_cast<int64_t>(i), at("x", i) + " (row " + std::to_string(i / features) + ", column " +
                                                     std::to_string(i % features) + ") is " + show(d.X[i]) + ", not a finite number");
    d.kind = Kind::Dense;
    d.rows = rows;
    d.features = features;
    Status s = take_labels(labels, rows, &d);
    if (!s.ok()) return s;
    *out = std::move(d);
    return Status::Ok();
  });
}

Status from_sparse(const SparseInput& in, const Column& labels, Dataset* out) {
  return guarded([&] {
    if (in.features > UINT32_MAX)
      return bad("features", -1, "features must be at most " + std::to_string(UINT32_MAX) + ", got " + std::to_string(in.features));
    if (in.indptrSize == 0) return bad("indptr", -1, "indptr must have rows + 1 offsets, got an empty array");
    if (in.indicesSize != in.valuesSize)
      return bad("values", -1, "values has " + std::to_string(in.valuesSize) + " entries, indices " + std::to_string(in.indicesSize));
    const uint64_t rows = in.indptrSize - 1, nnz = in.indicesSize;
    if (in.indptr[0] != 0) return bad("indptr", 0, "indptr[0] is " + show(in.indptr[0]) + ", not 0");
    for (uint64_t r = 1; r <= rows; ++r) {
      const double v = in.indptr[r], prev = in.indptr[r - 1];
      if (!(v >= prev && v <= static_cast<double>(nnz) && v == std::floor(v)))
        return bad("indptr", static_cast<int64_t>(r),
                   at("indptr", r) + " is " + show(v) + ", not an offset in " + show(prev) + ".." + std::to_string(nnz));
    }
    if (in.indptr[rows] != static_cast<double>(nnz))
      return bad("indptr", static_cast<int64_t>(rows),
                 at("indptr", rows) + " is " + show(in.indptr[rows]) + ", not the number of nonzeros " + std::to_string(nnz));
    // features: given, or the largest index + 1 (at most UINT32_MAX, as a given one)
    double limit = static_cast<double>(in.features ? in.features : UINT32_MAX);
    uint64_t features = in.features;
    Dataset d;
    d.kind = Kind::Sparse;
    d.rows = rows;
    d.indptr.resize(rows + 1);
    d.indices.resize(nnz);
    d.values.resize(nnz);
    for (uint64_t r = 0; r < rows; ++r) {
      const uint64_t lo = static_cast<uint64_t>(in.indptr[r]), hi = static_cast<uint64_t>(in.indptr[r + 1]);
      d.indptr[r] = lo;
      for (uint64_t k = lo; k < hi; ++k) {
        Status s = check_id("indices", k, in.indices[k], limit, "a feature index");
        if (!s.ok()) return s;
        if (k > lo && in.indices[k] <= in.indices[k - 1])
          return bad("indices", static_cast<int64_t>(k),
                     at("indices", k) + " is " + show(in.indices[k]) + ", not above " + show(in.indices[k - 1]) + " before it in row " +
                         std::to_string(r) + " (indices ascend within a row)");
        const float v = in.values[k];  // read once (shared memory)
        if (!std::isfinite(v)) return bad("values", static_cast<int64_t>(k), at("values", k) + " is " + show(v) + ", not a finite number");
        d.indices[k] = static_cast<uint32_t>(in.indices[k]);
        d.values[k] = v;
        if (!in.features) features = std::max<uint64_t>(features, d.indices[k] + uint64_t{1});
      }
    }
    d.indptr[rows] = nnz;
    d.features = features;
    Status s = take_labels(labels, rows, &d);
    if (!s.ok()) return s;
    *out = std::move(d);
    return Status::Ok();
  });
}

Status from_ratings(const RatingsInput& in, Dataset* out) {
  return guarded([&] {
    const uint64_t n = in.size;
    const double ulimit = in.users ? static_cast<double>(in.users) : 4294967296.0;
    const double ilimit = in.items ? static_cast<double>(in.items) : 4294967296.0;
    Dataset d;
    d.kind = Kind::Ratings;
    d.rows = n;
    d.user.resize(n);
    d.item.resize(n);
    d.labels.assign(n, 0.f);
    uint64_t users = in.users, items = in.items;
    for (uint64_t i = 0; i < n; ++i) {
      Status s = check_id("users", i, in.user[i], ulimit, "a user id");
      if (s.ok()) s = check_id("items", i, in.item[i], ilimit, "an item id");
      if (!s.ok()) return s;
      const float rating = in.ratings ? in.ratings[i] : 0.f;  // read once (shared memory)
      if (!std::isfinite(rating))
        return bad("ratings", static_cast<int64_t>(i), at("ratings", i) + " is " + show(rating) + ", not a finite number");
      d.user[i] = static_cast<uint32_t>(in.user[i]);
      d.item[i] = static_cast<uint32_t>(in.item[i]);
      d.labels[i] = rating;
      if (!in.users) users = std::max<uint64_t>(users, d.user[i] + uint64_t{1});
      if (!in.items) items = std::max<uint64_t>(items, d.item[i] + uint64_t{1});
    }
    d.users = users;
    d.items = items;
    d.features = users + items;
    d.classes = 0;
    *out = std::move(d);
    return Status::Ok();
  });
}

Status shuffle(const Dataset& d, uint64_t seed, Dataset* out) {
  return guarded([&] {
    // Fisher-Yates on the row order, SplitMix64 from the seed: the same
    // order on every platform.
    std::vector<uint64_t> order(d.rows);
    std::iota(order.begin(), order.end(), uint64_t{0});
    SplitMix64 rng(seed);
    for (uint64_t i = d.rows; i > 1; --i) std::swap(order[i - 1], order[rng.next() % i]);
    Dataset r;
    r.kind = d.kind;
    r.rows = d.rows;
    r.features = d.features;
    r.classes = d.classes;
    r.users = d.users;
    r.items = d.items;
    r.scaler = d.scaler;
    r.labels.resize(d.rows);
    if (!d.classIds.empty()) r.classIds.resize(d.rows);
    if (d.kind == Kind::Dense) r.X.resize(d.X.size());
    if (d.kind == Kind::Sparse) {
      r.indptr.resize(d.rows + 1);
      r.indices.reserve(d.indices.size());
      r.values.reserve(d.values.size());
    }
    if (d.kind == Kind::Ratings) {
      r.user.resize(d.rows);
      r.item.resize(d.rows);
    }
    const uint64_t F = d.features;
    for (uint64_t i = 0; i < d.rows; ++i) {
      const uint64_t s = order[i];
      r.labels[i] = d.labels[s];
      if (!d.classIds.empty()) r.classIds[i] = d.classIds[s];
      switch (d.kind) {
        case Kind::Dense: std::copy_n(d.X.begin() + s * F, F, r.X.begin() + i * F); break;
        case Kind::Sparse:
          r.indptr[i] = r.indices.size();
          r.indices.insert(r.indices.end(), d.indices.begin() + d.indptr[s], d.indices.begin() + d.indptr[s + 1]);
          r.values.insert(r.values.end(), d.values.begin() + d.indptr[s], d.values.begin() + d.indptr[s + 1]);
          break;
        case Kind::Ratings:
          r.user[i] = d.user[s];
          r.item[i] = d.item[s];
          break;
      }
    }
    if (d.kind == Kind::Sparse) r.indptr[d.rows] = r.indices.size();
    *out = std::move(r);
    return Status::Ok();
  });
}

}  // namespace gv::data
