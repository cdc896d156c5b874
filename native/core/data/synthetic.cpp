// Deterministic synthetic data (SplitMix64 from the seed).
//
// sparse-logistic, like RCV1: feature f (a fixed random permutation of rank
// r) is drawn with probability ∝ r^-zipf, so a few features are in most rows
// and most are rare; each row has about `nnz` distinct features (uniform in
// [nnz/2, 3nnz/2]) with positive tf-idf-like values, L2-normalised; its label
// is the sign of w·x for a hidden w ~ N(0, 1), flipped with probability `noise`.
// blobs: `classes` Gaussian clusters (std `spread`) around centres uniform in
// [-10, 10]^features, as scikit-learn's make_blobs. ratings: U ~ N(0, 1/√rank)
// per user and V per item; distinct (user, item) pairs rated u·v + N(0, noise).
#include <algorithm>
#include <cmath>
#include <new>
#include <unordered_set>

#include "../random.h"
#include "reader.h"

namespace gv::data {
namespace {

Status bad(const std::string& field, const std::string& msg) { return Status::Error(Code::Config, field + " " + msg, field); }

// Every kind is made synchronously, in memory: its estimated size is
// checked first against one budget, so no option can ask for gigabytes
// (issue 10: sparse-logistic with 4294967294 features and nnz allocated
// gigabytes before anything refused it).
constexpr double kBudgetBytes = 4.0 * (1ull << 30);
Status within_budget(const std::string& field, const std::string& what, double bytes) {
  if (bytes <= kBudgetBytes) return Status::Ok();
  return bad(field, "makes " + what + " too large: about " + std::to_string(static_cast<long long>(bytes / (1 << 20))) +
                        " MiB, the limit for a synthetic set is 4096 MiB");
}

Status sparse_logistic(const SyntheticOptions& o, Dataset* out) {
  if (o.features < 1 || o.features > 0xFFFFFFFEull) return bad("features", "must be in 1..4294967294");
  if (!(o.nnz >= 1) || o.nnz > static_cast<double>(o.features)) return bad("nnz", "must be in 1..features");
  if (!(o.zipf >= 0) || o.zipf > 10) return bad("zipf", "must be in [0, 10]");
  if (!(o.noise >= 0) || o.noise > 0.5) return bad("noise", "must be in [0, 0.5]");
  // per feature: permutation, cdf, weight, idf; per nonzero (up to 1.5 nnz a row): index and value
  Status b = within_budget("features", "the feature tables", 20.0 * static_cast<double>(o.features));
  if (b.ok()) b = within_budget("nnz", "rows x nnz", 12.0 * static_cast<double>(o.rows) * o.nnz);
  if (!b.ok()) return b;
  SplitMix64 rng(o.seed ^ 0x5350415253454C47ull);
  const uint64_t F = o.features;
  // Rank → feature: a permutation, so frequent features are spread over the index range.
  std::vector<uint32_t> perm(F);
  for (uint64_t i = 0; i < F; ++i) perm[i] = static_cast<uint32_t>(i);
  for (uint64_t i = F - 1; i > 0; --i) std::swap(perm[i], perm[rng.next() % (i + 1)]);
  std::vector<double> cdf(F);
  double acc = 0;
  for (uint64_t r = 0; r < F; ++r) cdf[r] = (acc += std::pow(static_cast<double>(r + 1), -o.zipf));
  for (auto& c : cdf) c /= acc;
  std::vector<float> w(F), idf(F);
  for (uint64_t f = 0; f < F; ++f) w[f] = static_cast<float>(rng.normal());
  // Rare features weigh more, as idf does (log of 1 / probability).
  for (uint64_t r = 0; r < F; ++r) {
    double p = cdf[r] - (r ? cdf[r - 1] : 0);
    idf[perm[r]] = static_cast<float>(1.0 + std::log1p(1.0 / (p * static_cast<double>(F))));
  }

  Dataset d;
  d.kind = Kind::Sparse;
  d.features = F;
  d.rows = o.rows;
  d.indptr.reserve(o.rows + 1);
  d.indptr.push_back(0);
  d.indices.reserve(static_cast<size_t>(o.rows * o.nnz * 1.01));
  d.values.reserve(d.indices.capacity());
  d.labels.reserve(o.rows);
  std::vector<uint32_t> row;
  std::unordered_set<uint32_t> seen;
  for (uint64_t i = 0; i < o.rows; ++i) {
    uint64_t k = static_cast<uint64_t>(std::llround(o.nnz * (0.5 + rng.uniform())));
    k = std::clamp<uint64_t>(k, 1, F);
    row.clear();
    seen.clear();
    for (uint64_t tries = 0; row.size() < k && tries < 20 * k + 100; ++tries) {
      double u = rng.uniform();
      uint64_t r = static_cast<uint64_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
      if (r >= F) r = F - 1;
      uint32_t f = perm[r];
      if (seen.insert(f).second) row.push_back(f);
    }
    std::sort(row.begin(), row.end());
    double norm = 0, margin = 0;
    size_t base = d.values.size();
    for (uint32_t f : row) {
      float v = idf[f] * static_cast<float>(1.0 + rng.uniform());
      d.indices.push_back(f);
      d.values.push_back(v);
      norm += double(v) * v;
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (size_t j = base; j < d.values.size(); ++j) {
      d.values[j] *= inv;
      margin += double(d.values[j]) * w[d.indices[j]];
    }
    float y = margin >= 0 ? 1.0f : -1.0f;
    if (rng.uniform() < o.noise) y = -y;
    d.labels.push_back(y);
    d.indptr.push_back(d.indices.size());
  }
  d.classes = 2;
  d.classIds.resize(d.rows);
  for (uint64_t i = 0; i < d.rows; ++i) d.classIds[i] = d.labels[i] > 0 ? 1 : 0;
  *out = std::move(d);
  return Status::Ok();
}

Status blobs(const SyntheticOptions& o, Dataset* out) {
  if (o.features < 1 || o.features > 1000000) return bad("features", "must be in 1..1000000");
  if (o.classes < 1 || o.classes > 100000) return bad("classes", "must be in 1..100000");
  if (!(o.spread >= 0) || !std::isfinite(o.spread)) return bad("spread", "must be a finite number >= 0");
  if (Status b = within_budget("rows", "rows x features", 4.0 * static_cast<double>(o.rows) * static_cast<double>(o.features)); !b.ok())
    return b;
  if (Status b = within_budget("classes", "the class centres", 8.0 * static_cast<double>(o.classes) * static_cast<double>(o.features)); !b.ok())
    return b;
  SplitMix64 rng(o.seed ^ 0x424C4F4253424C42ull);
  std::vector<double> centres(o.classes * o.features);
  for (auto& c : centres) c = -10.0 + 20.0 * rng.uniform();
  Dataset d;
  d.kind = Kind::Dense;
  d.rows = o.rows;
  d.features = o.features;
  d.classes = o.classes;
  d.X.resize(o.rows * o.features);
  d.labels.resize(o.rows);
  d.classIds.resize(o.rows);
  for (uint64_t i = 0; i < o.rows; ++i) {
    uint64_t c = rng.next() % o.classes;
    d.classIds[i] = static_cast<int32_t>(c);
    d.labels[i] = static_cast<float>(c);
    for (uint64_t f = 0; f < o.features; ++f)
      d.X[i * o.features + f] = static_cast<float>(centres[c * o.features + f] + o.spread * rng.normal());
  }
  *out = std::move(d);
  return Status::Ok();
}

Status ratings(const SyntheticOptions& o, Dataset* out) {
  if (o.users < 1 || o.users > 0xFFFFFFFEull) return bad("users", "must be in 1..4294967294");
  if (o.items < 1 || o.items > 0xFFFFFFFEull) return bad("items", "must be in 1..4294967294");
  if (o.rank < 1 || o.rank > 4096) return bad("rank", "must be in 1..4096");
  if (!(o.noise >= 0) || !std::isfinite(o.noise)) return bad("noise", "must be a finite number >= 0");
  if (static_cast<double>(o.rows) > 0.5 * static_cast<double>(o.users) * static_cast<double>(o.items))
    return bad("rows", "must be at most half of users x items (distinct pairs)");
  if (Status b = within_budget("rank", "rank x (users + items)", 4.0 * static_cast<double>(o.users + o.items) * static_cast<double>(o.rank)); !b.ok())
    return b;
  if (Status b = within_budget("rows", "the ratings", 24.0 * static_cast<double>(o.rows)); !b.ok()) return b;
  SplitMix64 rng(o.seed ^ 0x524154494E475321ull);
  const double sd = 1.0 / std::sqrt(static_cast<double>(o.rank));
  std::vector<float> U(o.users * o.rank), V(o.items * o.rank);
  for (auto& x : U) x = static_cast<float>(sd * rng.normal());
  for (auto& x : V) x = static_cast<float>(sd * rng.normal());
  Dataset d;
  d.kind = Kind::Ratings;
  d.rows = o.rows;
  d.users = o.users;
  d.items = o.items;
  d.features = o.users + o.items;
  d.classes = 0;
  d.user.reserve(o.rows);
  d.item.reserve(o.rows);
  d.labels.reserve(o.rows);
  std::unordered_set<uint64_t> pairs;
  pairs.reserve(o.rows);
  while (d.labels.size() < o.rows) {
    uint64_t u = rng.next() % o.users, v = rng.next() % o.items;
    if (!pairs.insert(u * o.items + v).second) continue;
    double r = 0;
    for (uint64_t k = 0; k < o.rank; ++k) r += double(U[u * o.rank + k]) * V[v * o.rank + k];
    d.user.push_back(static_cast<uint32_t>(u));
    d.item.push_back(static_cast<uint32_t>(v));
    d.labels.push_back(static_cast<float>(r + o.noise * rng.normal()));
  }
  *out = std::move(d);
  return Status::Ok();
}

}  // namespace

Status synthetic(const std::string& kind, const SyntheticOptions& o, Dataset* out) {
  try {
    if (o.rows > (uint64_t(1) << 32)) return bad("rows", "must be at most 4294967296");
    if (kind == "sparse-logistic") return sparse_logistic(o, out);
    if (kind == "blobs") return blobs(o, out);
    if (kind == "ratings") return ratings(o, out);
    return Status::Error(Code::Config, "kind must be one of 'sparse-logistic', 'blobs', 'ratings', got '" + kind + "'", "kind");
  } catch (const std::bad_alloc&) {
    return Status::Error(Code::Internal, "out of memory generating synthetic '" + kind + "' data");
  }
}

}  // namespace gv::data
