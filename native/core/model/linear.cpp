// Models linear (squared loss), logistic and svm: w [F], b [1] (model.h: tensors and math; batch.h: the shared plumbing).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "batch.h"
#include "families.h"

namespace gv::model::detail {
namespace {

class LinearFamily final : public Model {
 public:
  LinearFamily(const ModelSpec& s, const Dims& d) : Model(s, d) {
    tensors_.push_back({"w", {static_cast<int64_t>(d.features)}, InitKind::Zeros});
    tensors_.push_back({"b", {1}, InitKind::Zeros});
  }
  bool sparse_gradient(const Dataset& d, size_t) const override { return d.kind == DK::Sparse; }
  size_t workspace_floats(const Dataset& d, size_t batch) const override {
    return 2 * batch + (d.kind == DK::Dense ? batch * d.features : 0);
  }
  void rows_needed(const Dataset& d, const uint32_t* rows, size_t n, bool rowSparse, Touched* need) const override {
    Model::rows_needed(d, rows, n, rowSparse, need);
    if (d.kind == DK::Sparse) feature_rows(d, rows, n, need[0], 1, 0);
  }

  // dz[i] = d loss_i / d z_i; returns the loss sum.
  double loss(const float* z, const float* y, float* dz, size_t n) const {
    double s = 0;
    switch (spec_.kind) {
      case Kind::Linear:
        for (size_t i = 0; i < n; ++i) {
          float e = z[i] - y[i];
          if (dz) dz[i] = e;
          s += 0.5 * double(e) * e;
        }
        return s;
      case Kind::Logistic:
        return K().logloss(z, y, dz, n);
      default:  // hinge
        for (size_t i = 0; i < n; ++i) {
          float m = 1.f - y[i] * z[i];
          if (dz) dz[i] = m > 0 ? -y[i] : 0.f;
          s += m > 0 ? m : 0.f;
        }
        return s;
    }
  }

  // z = X w + b for the batch; y gathered beside it. Returns the dense rows
  // block (null for sparse data).
  const float* forward(const float* const* p, const Dataset& d, const Batch& b, float* z, float* y, float* ws) const {
    const float bias = p[1][0];
    const float* X = nullptr;
    if (d.kind == DK::Dense) {
      X = dense_rows(d, b, ws);
      K().gemv(X, d.features, p[0], z, b.n, d.features, 1.f, 0.f);
      for (size_t i = 0; i < b.n; ++i) z[i] += bias;
    } else {
      for (size_t i = 0; i < b.n; ++i) {
        uint64_t r = b.row(i), lo = d.indptr[r];
        z[i] = K().sparse_dot(d.values.data() + lo, d.indices.data() + lo, d.indptr[r + 1] - lo, p[0]) + bias;
      }
    }
    for (size_t i = 0; i < b.n; ++i) y[i] = d.labels[b.row(i)];
    return X;
  }

  double grad(const float* const* p, const Dataset& d, const uint32_t* rows, size_t n, float* const* g, float* ws,
              Touched* touched, bool) const override {
    Batch b{rows, 0, n};
    float* z = ws;
    float* y = ws + n;
    const float* X = forward(p, d, b, z, y, ws + 2 * n);
    const double sum = loss(z, y, z, n);  // z becomes dz
    const float inv = 1.f / static_cast<float>(n);
    float gb = 0.f;
    for (size_t i = 0; i < n; ++i) gb += z[i];
    g[1][0] = gb * inv;
    if (d.kind == DK::Dense) {
      K().gemv_t(X, d.features, z, g[0], n, d.features, inv, 0.f);
      if (touched) start_touched(touched, 2, {false, false}, {1, 1});
    } else {
      start_touched(touched, 2, {true, false}, {1, 1});
      for (size_t i = 0; i < n; ++i) {
        uint64_t r = rows[i], lo = d.indptr[r], nnz = d.indptr[r + 1] - lo;
        if (z[i] != 0.f) K().sparse_axpy(g[0], d.indices.data() + lo, d.values.data() + lo, nnz, z[i] * inv);
      }
      // the rows written (a row whose dz is 0 adds zeros: listing it is harmless)
      rows_of(d, sparse_view(d, b), touched[0], 0);
    }
    return sum;
  }

  void eval(const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float* ws,
            EvalSums* out) const override {
    Batch b{nullptr, begin, static_cast<size_t>(end - begin)};
    float* z = ws;
    float* y = ws + b.n;
    forward(p, d, b, z, y, ws + 2 * b.n);
    out->loss += loss(z, y, nullptr, b.n);
    for (size_t i = 0; i < b.n; ++i) {
      double e = double(z[i]) - y[i];
      out->sqErr += e * e;
      if ((z[i] > 0 ? 1.f : -1.f) == y[i]) ++out->correct;
    }
    out->rows += b.n;
  }
  void outputs(const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float* ws, float* out) const override {
    Batch b{nullptr, begin, static_cast<size_t>(end - begin)};
    forward(p, d, b, out, ws, ws + b.n);
  }
};

}  // namespace

std::unique_ptr<Model> make_linear(const ModelSpec& spec, const Dims& dims) { return std::unique_ptr<Model>(new LinearFamily(spec, dims)); }

}  // namespace gv::model::detail
