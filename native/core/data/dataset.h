// Training data held in memory owned by C++, so a native trainer reads it
// without copies: dense row-major float32, sparse CSR, or rating triples.
// Loaders stream their files in chunks (raw or gzip) and report the first
// bad token with its file, line and column (text) or byte offset (IDX).
// Nothing here throws: every entry point returns a Status.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../status.h"
#include "standardize.h"

namespace gv::data {

enum class Kind { Dense, Sparse, Ratings };
const char* kind_name(Kind k);

struct Dataset {
  Kind kind = Kind::Dense;
  uint64_t rows = 0;
  // Dense and sparse: columns of X. Ratings: users + items (each rating is a
  // one-hot (user, item) row).
  uint64_t features = 0;
  // 0 for regression targets; 2 for binary (labels ±1, classIds 0/1); k for
  // class ids 0..k-1.
  uint64_t classes = 0;
  std::vector<float> labels;      // per row: ±1 (binary), the class id, the target or the rating
  std::vector<int32_t> classIds;  // per row when classes > 0, else empty

  std::vector<float> X;  // dense: rows * features, row-major

  std::vector<uint64_t> indptr;   // sparse CSR: rows + 1 offsets into indices/values
  std::vector<uint32_t> indices;  // 0-based, ascending within a row
  std::vector<float> values;

  uint64_t users = 0, items = 0;  // ratings: (users[r], items[r], labels[r])
  std::vector<uint32_t> user, item;

  // The scaler its values were standardized with (standardize()); null for
  // raw data. Slices and shuffles share it.
  std::shared_ptr<const Scaler> scaler;

  uint64_t nnz() const { return kind == Kind::Sparse ? indices.size() : kind == Kind::Dense ? X.size() : rows * 2; }
  uint64_t bytes() const;
};

// Rows [start, end) as a new dataset (copies). Classes, features, users and
// items stay those of the whole set.
Status slice(const Dataset& d, uint64_t start, uint64_t end, Dataset* out);

// ---- loaders

// MNIST-family IDX: an unsigned-byte images file of n x d1 x ... (features =
// d1 * ...) and a labels file of n. Pixels scaled to [0, 1] when scale.
Status load_idx(const std::string& images, const std::string& labels, bool scale, Dataset* out);

struct LibsvmOptions {
  int indexBase = -1;     // -1: auto (1-based unless an index 0 appears), 0 or 1: forced
  uint64_t features = 0;  // 0: the largest index seen; else fixed, larger indices are errors
};
// LIBSVM / SVMLight text: `label idx:value ... [# comment]`; `qid:n` is
// ignored; indices ascending within a line.
Status load_libsvm(const std::string& file, const LibsvmOptions& o, Dataset* out);

struct CsvOptions {
  int64_t labelIndex = -1;  // the label column, or
  std::string labelName;    // its header name (implies a header row)
  int header = -1;          // -1: auto (a first row with a non-numeric cell), 0, 1
  char delimiter = ',';
};
// CSV with a label column; every other cell a number. Quoted cells ("1.5")
// are accepted; a quote left open at the end of a line is an error.
Status load_csv(const std::string& file, const CsvOptions& o, Dataset* out);

// ---- datasets from arrays in memory (copied; checked as a loader checks a
// file: a bad value is ERR_INVALID_ARGUMENT naming the array and its index).

// Labels of the rows, or none (data = null: unlabelled rows, for predict()).
// Classes follow the loaders' rule (finish_labels): ±1 or 0/1 are binary,
// other non-negative integers class ids, anything else regression targets.
struct Column {
  const float* data = nullptr;
  uint64_t size = 0;
};
// x: rows * features floats, row-major.
Status from_dense(const float* x, uint64_t size, uint64_t features, const Column& labels, Dataset* out);

// CSR; offsets and indices arrive as doubles (exact integers below 2^53)
// so a negative or fractional one is reported, not wrapped.
struct SparseInput {
  const double* indptr = nullptr;  // rows + 1 offsets, from 0 to nnz, non-decreasing
  uint64_t indptrSize = 0;
  const double* indices = nullptr;  // 0-based, ascending within a row, below features
  uint64_t indicesSize = 0;
  const float* values = nullptr;
  uint64_t valuesSize = 0;
  uint64_t features = 0;  // 0: the largest index + 1
};
Status from_sparse(const SparseInput& in, const Column& labels, Dataset* out);

struct RatingsInput {
  const double* user = nullptr;
  const double* item = nullptr;
  const float* ratings = nullptr;  // null: unrated pairs (for predict())
  uint64_t size = 0;
  uint64_t users = 0, items = 0;  // 0: the largest id + 1; else ids must be below
};
Status from_ratings(const RatingsInput& in, Dataset* out);

// The rows in an order drawn from seed (Fisher-Yates on SplitMix64): the same
// order on every platform.
Status shuffle(const Dataset& d, uint64_t seed, Dataset* out);

// ---- feature scaling (standardize.h)

// Fits a scaler on d's rows, in double precision, in row order:
// dense: mean_j = (sum_r x_rj) / n, var_j = (sum_r (x_rj - mean_j)^2) / n;
// sparse (implicit zeros included, so centring would destroy sparsity: the
// mean is recorded as 0 and the values only scaled): m_j = (sum of the
// stored values, in row order) / n, var_j = (sum of (v - m_j)^2 over the
// stored values + (n - stored_j) * m_j * m_j) / n. scale_j = sqrt(var_j), or
// 1 where that is 0 (a constant feature). Population variance (divisor n).
// Ratings, or no rows: ERR_INVALID_ARGUMENT.
Status fit_scaler(const Dataset& d, Scaler* out);

// A copy of d with each value x of feature j replaced by
// float((double(x) - mean_j) / scale_j) (sparse: the stored values only,
// which needs an all-zero mean), labels kept; out->scaler = s. A scaler
// that check_scaler() refuses, a dataset already standardized, or ratings:
// ERR_INVALID_ARGUMENT.
Status standardize(const Dataset& d, const Scaler& s, Dataset* out);

// ---- synthetic data, deterministic from the seed on a given platform.

struct SyntheticOptions {
  uint64_t rows = 10000;
  uint64_t seed = 0;
  // sparse-logistic and blobs (the facade's default for blobs is 2)
  uint64_t features = 47236;
  double nnz = 75;      // mean nonzeros per row
  double zipf = 1.0;    // exponent of the feature frequencies (rank^-zipf)
  double noise = 0.05;  // sparse-logistic: label flip probability; blobs: unused; ratings: rating noise std
  // blobs
  uint64_t classes = 3;
  double spread = 1.0;  // cluster standard deviation
  // ratings
  uint64_t users = 1000, items = 1500, rank = 10;
};
// kind: "sparse-logistic", "blobs" or "ratings".
Status synthetic(const std::string& kind, const SyntheticOptions& o, Dataset* out);

}  // namespace gv::data
