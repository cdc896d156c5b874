// Model mlp: W1 [F, h1], b1, ..., Wn [h, C], bn (ReLU hidden layers, softmax output) (model.h: tensors and math; batch.h: the shared plumbing).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "batch.h"
#include "families.h"

namespace gv::model::detail {
namespace {

// "W3", "b3" (appended: GCC 12 reports a false -Wrestrict for
// string + string here).
std::string layer_name(char kind, size_t layer) {
  std::string name(1, kind);
  name += std::to_string(layer);
  return name;
}

class Mlp final : public Model {
 public:
  Mlp(const ModelSpec& s, const Dims& d) : Model(s, d) {
    widths_.push_back(d.features);
    for (uint32_t h : s.hidden) widths_.push_back(h);
    widths_.push_back(d.classes);
    for (size_t l = 1; l < widths_.size(); ++l) {
      tensors_.push_back({layer_name('W', l), {int64_t(widths_[l - 1]), int64_t(widths_[l])}, InitKind::Glorot});
      tensors_.push_back({layer_name('b', l), {int64_t(widths_[l])}, InitKind::Zeros});
    }
    maxw_ = *std::max_element(widths_.begin() + 1, widths_.end());
  }
  size_t layers() const { return widths_.size() - 1; }
  bool sparse_gradient(const Dataset& d, size_t batch) const override { return d.kind == DK::Sparse || batch == 1; }
  void rows_needed(const Dataset& d, const uint32_t* rows, size_t n, bool rowSparse, Touched* need) const override {
    Model::rows_needed(d, rows, n, rowSparse, need);
    if (d.kind == DK::Sparse || rowSparse) feature_rows(d, rows, n, need[0], widths_[1], 0);
  }
  size_t workspace_floats(const Dataset& d, size_t batch) const override {
    size_t acts = 0;
    for (size_t l = 1; l < widths_.size(); ++l) acts += widths_[l];
    return batch * (acts + 2 * maxw_ + 1) + (d.kind == DK::Dense ? batch * d.features : 0);
  }

  // Forward: A[l] [n, widths_[l]] for l = 1..L (hidden ones after ReLU, the
  // last the logits). Returns the logits.
  float* forward(const float* const* p, const Dataset& d, const Batch& b, const float* X, const SparseView* sv, float* ws,
                 std::vector<float*>& A) const {
    A.assign(widths_.size(), nullptr);
    float* at = ws;
    for (size_t l = 1; l < widths_.size(); ++l) {
      A[l] = at;
      at += b.n * widths_[l];
      const float* W = p[2 * (l - 1)];
      const float* bias = p[2 * (l - 1) + 1];
      if (l == 1) {
        first_layer(d, b, X, sv, W, bias, widths_[1], A[1]);
      } else {
        for (size_t i = 0; i < b.n; ++i) std::memcpy(A[l] + i * widths_[l], bias, widths_[l] * sizeof(float));
        K().gemm(false, false, b.n, widths_[l], widths_[l - 1], 1.f, A[l - 1], widths_[l - 1], W, widths_[l], A[l],
                 widths_[l]);
      }
      if (l + 1 < widths_.size()) K().relu(A[l], A[l], b.n * widths_[l]);
    }
    return A.back();
  }
  size_t acts_floats(size_t n) const {
    size_t a = 0;
    for (size_t l = 1; l < widths_.size(); ++l) a += n * widths_[l];
    return a;
  }

  double grad(const float* const* p, const Dataset& d, const uint32_t* rows, size_t n, float* const* g, float* ws,
              Touched* touched, bool rowSparse) const override {
    Batch b{rows, 0, n};
    const size_t L = layers(), C = dims_.classes;
    float* D0 = ws + acts_floats(n);
    float* D1 = D0 + n * maxw_;
    uint32_t* labels = reinterpret_cast<uint32_t*>(D1 + n * maxw_);
    const SparseView* sv = view_for(d, b, rowSparse);
    const float* X = sv ? nullptr : dense_rows(d, b, D1 + n * maxw_ + n);
    thread_local std::vector<float*> A;  // reused: no allocation per batch
    float* Z = forward(p, d, b, X, sv, ws, A);
    gather_labels(d, b, labels);
    const double sum = K().softmax_xent_batch(Z, n, C, labels, D0);
    const float inv = 1.f / static_cast<float>(n);
    for (size_t i = 0; i < n * C; ++i) D0[i] *= inv;
    if (touched) {
      // only W1 can be row-sparse (its rows are the features); the rest are dense
      for (size_t t = 0; t < 2 * L; ++t) {
        touched[t].dense = !(t == 0 && sv != nullptr);
        touched[t].width = t == 0 ? widths_[1] : 1;
        touched[t].rows.clear();
      }
    }
    float* D = D0;
    float* Dprev = D1;
    for (size_t l = L; l >= 1; --l) {
      const size_t in = widths_[l - 1], out = widths_[l];
      float* gW = g[2 * (l - 1)];
      float* gb = g[2 * (l - 1) + 1];
      if (l == 1) {
        first_layer_grad(d, b, X, sv, D, out, gW, gb, touched ? &touched[0] : nullptr, 0);
        break;
      }
      for (size_t j = 0; j < out; ++j) gb[j] = 0.f;
      for (size_t i = 0; i < n; ++i) K().axpby(gb, gb, D + i * out, 1.f, 1.f, out);
      std::memset(gW, 0, in * out * sizeof(float));
      K().gemm(true, false, in, out, n, 1.f, A[l - 1], in, D, out, gW, out);
      // Dprev = D W^T, through the ReLU of layer l - 1.
      std::memset(Dprev, 0, n * in * sizeof(float));
      K().gemm(false, true, n, in, out, 1.f, D, out, p[2 * (l - 1)], out, Dprev, in);
      K().relu_backward(Dprev, A[l - 1], n * in);
      std::swap(D, Dprev);
    }
    return sum;
  }

  void eval(const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float* ws,
            EvalSums* out) const override {
    Batch b{nullptr, begin, size_t(end - begin)};
    const size_t C = dims_.classes;
    uint32_t* labels = reinterpret_cast<uint32_t*>(ws + acts_floats(b.n));
    const SparseView* sv = view_for(d, b, false);
    const float* X = sv ? nullptr : dense_rows(d, b, nullptr);
    std::vector<float*> A;
    float* Z = forward(p, d, b, X, sv, ws, A);
    gather_labels(d, b, labels);
    count_correct(Z, b.n, C, labels, out);
    out->loss += K().softmax_xent_batch(Z, b.n, C, labels, nullptr);
    out->rows += b.n;
  }
  void outputs(const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float* ws, float* out) const override {
    Batch b{nullptr, begin, size_t(end - begin)};
    const SparseView* sv = view_for(d, b, false);
    std::vector<float*> A;
    const float* Z = forward(p, d, b, sv ? nullptr : dense_rows(d, b, nullptr), sv, ws, A);
    std::memcpy(out, Z, b.n * dims_.classes * sizeof(float));
  }

 private:
  std::vector<size_t> widths_;
  size_t maxw_ = 0;
};

}  // namespace

std::unique_ptr<Model> make_mlp(const ModelSpec& spec, const Dims& dims) { return std::unique_ptr<Model>(new Mlp(spec, dims)); }

}  // namespace gv::model::detail
