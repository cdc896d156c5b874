// Model softmax: W [F, C], b [C] (model.h: tensors and math; batch.h: the shared plumbing).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "batch.h"
#include "families.h"

namespace gv::model::detail {
namespace {

class Softmax final : public Model {
 public:
  Softmax(const ModelSpec& s, const Dims& d) : Model(s, d) {
    tensors_.push_back({"W", {int64_t(d.features), int64_t(d.classes)}, InitKind::Zeros});
    tensors_.push_back({"b", {int64_t(d.classes)}, InitKind::Zeros});
  }
  // Dense data in batches of one trains as sparse rows (their nonzeros).
  bool sparse_gradient(const Dataset& d, size_t batch) const override { return d.kind == DK::Sparse || batch == 1; }
  size_t workspace_floats(const Dataset& d, size_t batch) const override {
    return batch * (dims_.classes + 1) + (d.kind == DK::Dense ? batch * d.features : 0);
  }
  void rows_needed(const Dataset& d, const uint32_t* rows, size_t n, bool rowSparse, Touched* need) const override {
    Model::rows_needed(d, rows, n, rowSparse, need);
    if (d.kind == DK::Sparse || rowSparse) feature_rows(d, rows, n, need[0], dims_.classes, 0);
  }
  double grad(const float* const* p, const Dataset& d, const uint32_t* rows, size_t n, float* const* g, float* ws,
              Touched* touched, bool rowSparse) const override {
    const size_t C = dims_.classes;
    Batch b{rows, 0, n};
    float* Z = ws;
    uint32_t* labels = reinterpret_cast<uint32_t*>(ws + n * C);
    const SparseView* sv = view_for(d, b, rowSparse);
    const float* X = sv ? nullptr : dense_rows(d, b, ws + n * (C + 1));
    first_layer(d, b, X, sv, p[0], p[1], C, Z);
    gather_labels(d, b, labels);
    const double sum = K().softmax_xent_batch(Z, n, C, labels, Z);
    const float inv = 1.f / static_cast<float>(n);
    for (size_t i = 0; i < n * C; ++i) Z[i] *= inv;
    if (touched) start_touched(touched, 2, {sv != nullptr, false}, {C, 1});
    first_layer_grad(d, b, X, sv, Z, C, g[0], g[1], touched ? &touched[0] : nullptr, 0);
    return sum;
  }
  void eval(const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float* ws,
            EvalSums* out) const override {
    const size_t C = dims_.classes;
    Batch b{nullptr, begin, size_t(end - begin)};
    float* Z = ws;
    uint32_t* labels = reinterpret_cast<uint32_t*>(ws + b.n * C);
    const SparseView* sv = view_for(d, b, false);
    const float* X = sv ? nullptr : dense_rows(d, b, nullptr);
    first_layer(d, b, X, sv, p[0], p[1], C, Z);
    gather_labels(d, b, labels);
    count_correct(Z, b.n, C, labels, out);
    out->loss += K().softmax_xent_batch(Z, b.n, C, labels, nullptr);
    out->rows += b.n;
  }
  void outputs(const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float*, float* out) const override {
    Batch b{nullptr, begin, size_t(end - begin)};
    const SparseView* sv = view_for(d, b, false);
    first_layer(d, b, sv ? nullptr : dense_rows(d, b, nullptr), sv, p[0], p[1], dims_.classes, out);
  }
};

}  // namespace

std::unique_ptr<Model> make_softmax(const ModelSpec& spec, const Dims& dims) { return std::unique_ptr<Model>(new Softmax(spec, dims)); }

}  // namespace gv::model::detail
