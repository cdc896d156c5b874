// The six built-in models on the kernel table (see model.h). Gradients are
// means over the batch, so a learning rate means the same at any batch size.
#include "model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <iterator>

#include "../../kernels/dispatch.h"

namespace gv::model {

using data::Dataset;
using DK = data::Kind;

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Linear: return "linear";
    case Kind::Logistic: return "logistic";
    case Kind::Softmax: return "softmax";
    case Kind::Svm: return "svm";
    case Kind::Mlp: return "mlp";
    case Kind::Mf: return "mf";
  }
  return "?";
}

bool parse_kind(const std::string& s, Kind* out) {
  static const char* names[] = {"linear", "logistic", "softmax", "svm", "mlp", "mf"};
  for (int i = 0; i < 6; ++i)
    if (s == names[i]) {
      *out = static_cast<Kind>(i);
      return true;
    }
  return false;
}

Status parse_model_kind(const std::string& s, Kind* out) {
  static const char* const names[] = {kind_name(Kind::Linear), kind_name(Kind::Logistic), kind_name(Kind::Softmax),
                                      kind_name(Kind::Svm),    kind_name(Kind::Mlp),      kind_name(Kind::Mf)};
  return parse_named(s, names, "model", out);
}

namespace {

const kernels::Table& K() { return kernels::active(); }

// The rows of one batch: rows[i] when given, else begin + i (evaluation).
struct Batch {
  const uint32_t* rows;
  uint64_t begin;
  size_t n;
  uint64_t row(size_t i) const { return rows ? rows[i] : begin + i; }
};

// A contiguous [n, features] block of the batch's dense rows: the data itself
// when the rows are consecutive, else gathered into ws.
const float* dense_rows(const Dataset& d, const Batch& b, float* ws) {
  const size_t F = d.features;
  if (!b.rows || b.n == 1) return d.X.data() + b.row(0) * F;
  for (size_t i = 0; i < b.n; ++i) std::memcpy(ws + i * F, d.X.data() + b.rows[i] * F, F * sizeof(float));
  return ws;
}

// Collects the unique row ids of one tensor in a bitset; finish() lists them
// ascending (a scan of rows/64 words, cheaper than sorting a batch's ids)
// and leaves the bitset clear.
struct RowSet {
  std::vector<uint64_t> bits;
  void add(Touched&, uint32_t r) { bits[r >> 6] |= uint64_t{1} << (r & 63); }
  void finish(Touched& t) {
    t.rows.clear();
    for (size_t w = 0; w < bits.size(); ++w)
      for (uint64_t b = bits[w]; b; b &= b - 1) t.rows.push_back(static_cast<uint32_t>(w * 64 + __builtin_ctzll(b)));
    for (uint32_t r : t.rows) bits[r >> 6] = 0;
  }
};
thread_local RowSet tlsRows[4];
RowSet& rowset(int k, size_t rows) {
  RowSet& s = tlsRows[k];
  if (s.bits.size() < (rows + 63) / 64) s.bits.assign((rows + 63) / 64, 0);
  return s;
}

// Marks each tensor's gradient dense or row-sparse (no allocation: this runs per batch).
template <class Sparse, class Width>
void start_touched(Touched* t, size_t count, const Sparse& sparse, const Width& width) {
  auto s = std::begin(sparse);
  auto w = std::begin(width);
  for (size_t i = 0; i < count; ++i, ++s, ++w) {
    t[i].dense = !*s;
    t[i].width = *w;
    t[i].rows.clear();
  }
}
void start_touched(Touched* t, size_t count, std::initializer_list<bool> sparse, std::initializer_list<size_t> width) {
  start_touched<std::initializer_list<bool>, std::initializer_list<size_t>>(t, count, sparse, width);
}


void feature_rows(const Dataset& d, const uint32_t* rows, size_t n, Touched& t, size_t width, int slot);
struct SparseView;
const SparseView& sparse_view(const Dataset& d, const Batch& b);
void rows_of(const Dataset& d, const SparseView& v, Touched& t, int slot);

// ---- linear, logistic, svm: w [F], b [1]

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
};

// ---- softmax: W [F, C], b [C]; mlp: W1 [F, h1], b1, ..., Wn [h, C], bn

// Labels of the batch as class ids.
void gather_labels(const Dataset& d, const Batch& b, uint32_t* out) {
  for (size_t i = 0; i < b.n; ++i) out[i] = static_cast<uint32_t>(d.classIds[b.row(i)]);
}

// A batch's rows as sparse rows: CSR slices of sparse data, or the nonzeros
// of dense rows (a dense batch of one trains as sparse: a Fashion-MNIST
// image is about half zeros, whose rows of W it neither reads nor updates).
struct SparseView {
  // the batch this view holds (grad() and rows_needed() ask for the same one)
  const Dataset* data = nullptr;
  std::vector<uint64_t> key;
  std::vector<const uint32_t*> idx;
  std::vector<const float*> val;
  std::vector<size_t> nnz;
  std::vector<uint32_t> cidx;  // dense rows' nonzeros
  std::vector<float> cval;
};
thread_local SparseView tlsView;

const SparseView& sparse_view(const Dataset& d, const Batch& b) {
  SparseView& v = tlsView;
  bool same = v.data == &d && v.key.size() == b.n;
  for (size_t i = 0; same && i < b.n; ++i) same = v.key[i] == b.row(i);
  if (same) return v;
  v.data = &d;
  v.key.resize(b.n);
  for (size_t i = 0; i < b.n; ++i) v.key[i] = b.row(i);
  v.idx.resize(b.n);
  v.val.resize(b.n);
  v.nnz.resize(b.n);
  if (d.kind == DK::Sparse) {
    for (size_t i = 0; i < b.n; ++i) {
      const uint64_t r = b.row(i), lo = d.indptr[r];
      v.idx[i] = d.indices.data() + lo;
      v.val[i] = d.values.data() + lo;
      v.nnz[i] = d.indptr[r + 1] - lo;
    }
    return v;
  }
  const size_t F = d.features;
  v.cidx.resize(b.n * F);
  v.cval.resize(b.n * F);
  for (size_t i = 0; i < b.n; ++i) {
    const float* x = d.X.data() + b.row(i) * F;
    uint32_t* ci = v.cidx.data() + i * F;
    float* cv = v.cval.data() + i * F;
    size_t k = 0;
    for (size_t j = 0; j < F; ++j) {  // branch-free: half the pixels are zero, at random
      ci[k] = static_cast<uint32_t>(j);
      cv[k] = x[j];
      k += x[j] != 0.f;
    }
    v.idx[i] = ci;
    v.val[i] = cv;
    v.nnz[i] = k;
  }
  return v;
}

// Z[n, width] = bias rows + X W for the first layer: a dense X block, or sparse rows (sv).
void first_layer(const Dataset& d, const Batch& b, const float* Xdense, const SparseView* sv, const float* W,
                 const float* bias, size_t width, float* Z) {
  for (size_t i = 0; i < b.n; ++i) std::memcpy(Z + i * width, bias, width * sizeof(float));
  if (!sv) {
    K().gemm(false, false, b.n, width, d.features, 1.f, Xdense, d.features, W, width, Z, width);
    return;
  }
  for (size_t i = 0; i < b.n; ++i) K().rows_gather(Z + i * width, W, width, sv->idx[i], sv->val[i], sv->nnz[i]);
}

void rows_of(const Dataset& d, const SparseView& v, Touched& t, int slot);

// gW = X^T D, gb = column sums of D; D [n, width] already holds the 1/n.
// Sparse rows (sv) add into gW (zero on entry) and list the rows in tW.
void first_layer_grad(const Dataset& d, const Batch& b, const float* Xdense, const SparseView* sv, const float* D,
                      size_t width, float* gW, float* gb, Touched* tW, int rowsetSlot) {
  for (size_t j = 0; j < width; ++j) gb[j] = 0.f;
  for (size_t i = 0; i < b.n; ++i) K().axpby(gb, gb, D + i * width, 1.f, 1.f, width);
  if (!sv) {
    std::memset(gW, 0, d.features * width * sizeof(float));
    K().gemm(true, false, d.features, width, b.n, 1.f, Xdense, d.features, D, width, gW, width);
    return;
  }
  for (size_t i = 0; i < b.n; ++i) K().rows_scatter(gW, width, sv->idx[i], sv->val[i], sv->nnz[i], D + i * width);
  if (tW) rows_of(d, *sv, *tW, rowsetSlot);
}

// The distinct features of a view's rows, ascending: one row's indices as
// they are (ascending and unique already), more rows through a bitset.
void rows_of(const Dataset& d, const SparseView& v, Touched& t, int slot) {
  if (v.nnz.size() == 1) {
    t.rows.assign(v.idx[0], v.idx[0] + v.nnz[0]);
    return;
  }
  RowSet& rs = rowset(slot, d.features);
  for (size_t i = 0; i < v.nnz.size(); ++i)
    for (size_t k = 0; k < v.nnz[i]; ++k) rs.add(t, v.idx[i][k]);
  rs.finish(t);
}

// The sparse view a first layer uses for this batch, or null (dense block).
const SparseView* view_for(const Dataset& d, const Batch& b, bool rowSparse) {
  return d.kind == DK::Sparse || (rowSparse && d.kind == DK::Dense) ? &sparse_view(d, b) : nullptr;
}

// The features of a batch's rows (sparse, or the nonzeros of dense rows), as
// the rows of a first-layer tensor.
void feature_rows(const Dataset& d, const uint32_t* rows, size_t n, Touched& t, size_t width, int slot) {
  t.dense = false;
  t.width = width;
  rows_of(d, sparse_view(d, Batch{rows, 0, n}), t, slot);
}

void count_correct(const float* Z, size_t n, size_t C, const uint32_t* labels, EvalSums* out) {
  for (size_t i = 0; i < n; ++i) {
    const float* z = Z + i * C;
    size_t best = 0;
    for (size_t j = 1; j < C; ++j)
      if (z[j] > z[best]) best = j;
    if (best == labels[i]) ++out->correct;
  }
}

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
};

class Mlp final : public Model {
 public:
  Mlp(const ModelSpec& s, const Dims& d) : Model(s, d) {
    widths_.push_back(d.features);
    for (uint32_t h : s.hidden) widths_.push_back(h);
    widths_.push_back(d.classes);
    for (size_t l = 1; l < widths_.size(); ++l) {
      tensors_.push_back({std::string("W") + std::to_string(l), {int64_t(widths_[l - 1]), int64_t(widths_[l])}, InitKind::Glorot});
      tensors_.push_back({std::string("b") + std::to_string(l), {int64_t(widths_[l])}, InitKind::Zeros});
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

 private:
  std::vector<size_t> widths_;
  size_t maxw_ = 0;
};

// ---- mf: U [users, rank], V [items, rank], bu [users], bi [items]

class Mf final : public Model {
 public:
  Mf(const ModelSpec& s, const Dims& d) : Model(s, d) {
    const int64_t r = s.rank;
    tensors_.push_back({"U", {int64_t(d.users), r}, InitKind::Normal, 0.1f});
    tensors_.push_back({"V", {int64_t(d.items), r}, InitKind::Normal, 0.1f});
    if (s.biases) {
      tensors_.push_back({"bu", {int64_t(d.users)}, InitKind::Zeros});
      tensors_.push_back({"bi", {int64_t(d.items)}, InitKind::Zeros});
    }
  }
  bool sparse_gradient(const Dataset&, size_t) const override { return true; }
  size_t workspace_floats(const Dataset&, size_t) const override { return 0; }
  void rows_needed(const Dataset& d, const uint32_t* rows, size_t n, bool, Touched* need) const override {
    const size_t R = spec_.rank;
    const int T = spec_.biases ? 4 : 2;
    start_touched(need, T, {true, true, true, true}, {R, R, 1, 1});
    RowSet& ru = rowset(0, d.users);
    RowSet& ri = rowset(1, d.items);
    for (size_t k = 0; k < n; ++k) {
      ru.add(need[0], d.user[rows[k]]);
      ri.add(need[1], d.item[rows[k]]);
    }
    ru.finish(need[0]);
    ri.finish(need[1]);
    if (spec_.biases) {
      need[2].rows = need[0].rows;
      need[3].rows = need[1].rows;
    }
  }

  float predict(const float* const* p, uint32_t u, uint32_t i) const {
    const size_t R = spec_.rank;
    float z = K().dot(p[0] + size_t{u} * R, p[1] + size_t{i} * R, R);
    if (spec_.biases) z += p[2][u] + p[3][i];
    return z;
  }

  double grad(const float* const* p, const Dataset& d, const uint32_t* rows, size_t n, float* const* g, float*,
              Touched* touched, bool) const override {
    const size_t R = spec_.rank;
    const int T = spec_.biases ? 4 : 2;
    start_touched(touched, T, {true, true, true, true}, {R, R, 1, 1});
    RowSet& ru = rowset(0, d.users);
    RowSet& ri = rowset(1, d.items);
    const float inv = 1.f / static_cast<float>(n), l2 = spec_.l2;
    double sum = 0;
    for (size_t k = 0; k < n; ++k) {
      const uint32_t r = rows[k], u = d.user[r], i = d.item[r];
      const float e = predict(p, u, i) - d.labels[r];
      const float* pu = p[0] + size_t{u} * R;
      const float* pi = p[1] + size_t{i} * R;
      // the objective: squared error plus the L2 term of the two rows
      sum += 0.5 * double(e) * e;
      if (l2 != 0.f) sum += 0.5 * l2 * (double(K().dot(pu, pu, R)) + K().dot(pi, pi, R));
      float* gu = g[0] + size_t{u} * R;
      float* gi = g[1] + size_t{i} * R;
      // g += (e * other + l2 * own) / n
      K().axpby(gu, gu, pi, e * inv, 1.f, R);
      K().axpby(gi, gi, pu, e * inv, 1.f, R);
      if (l2 != 0.f) {
        K().axpby(gu, gu, pu, l2 * inv, 1.f, R);
        K().axpby(gi, gi, pi, l2 * inv, 1.f, R);
      }
      if (spec_.biases) {
        g[2][u] += e * inv;
        g[3][i] += e * inv;
      }
      ru.add(touched[0], u);
      ri.add(touched[1], i);
    }
    ru.finish(touched[0]);
    ri.finish(touched[1]);
    if (spec_.biases) {
      touched[2].rows = touched[0].rows;
      touched[3].rows = touched[1].rows;
    }
    return sum;
  }

  void eval(const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float*,
            EvalSums* out) const override {
    for (uint64_t r = begin; r < end; ++r) {
      double e = double(predict(p, d.user[r], d.item[r])) - d.labels[r];
      out->loss += 0.5 * e * e;
      out->sqErr += e * e;
    }
    out->rows += end - begin;
  }
};

Status config_error(const std::string& msg, const std::string& field) { return Status::Error(Code::Config, msg, field); }

}  // namespace

void Model::rows_needed(const Dataset&, const uint32_t*, size_t, bool, Touched* need) const {
  for (size_t t = 0; t < tensors_.size(); ++t) {
    need[t].dense = true;
    need[t].rows.clear();
  }
}

Dims Model::dims_of(const Dataset& d) {
  Dims m;
  m.features = d.kind == DK::Ratings ? 0 : d.features;
  m.classes = d.classes;
  m.users = d.users;
  m.items = d.items;
  return m;
}

Status Model::create(const ModelSpec& spec, const Dims& dims, std::unique_ptr<Model>* out) {
  const char* name = kind_name(spec.kind);
  if (spec.kind == Kind::Mf) {
    if (dims.users == 0 || dims.items == 0)
      return Status::Error(Code::InvalidArgument, "model 'mf' needs ratings data (users and items), got none", "data");
    if (spec.rank == 0 || spec.rank > 4096) return config_error(std::string("rank must be in 1..4096, got ") + std::to_string(spec.rank), "rank");
    out->reset(new Mf(spec, dims));
    return Status::Ok();
  }
  if (dims.features == 0)
    return Status::Error(Code::InvalidArgument, std::string("model '") + name + "' needs dense or sparse feature rows, got none", "data");
  if (dims.features > UINT32_MAX) return config_error("too many features", "features");
  switch (spec.kind) {
    case Kind::Linear:
    case Kind::Logistic:
    case Kind::Svm:
      out->reset(new LinearFamily(spec, dims));
      return Status::Ok();
    case Kind::Softmax:
    case Kind::Mlp:
      if (dims.classes < 2)
        return Status::Error(Code::InvalidArgument,
                             std::string("model '") + name + "' needs class labels (2 or more classes), got " +
                                 std::to_string(dims.classes),
                             "data");
      if (spec.kind == Kind::Mlp) {
        if (spec.hidden.empty()) return config_error("hidden must list at least one layer width", "hidden");
        for (size_t i = 0; i < spec.hidden.size(); ++i)
          if (spec.hidden[i] == 0 || spec.hidden[i] > 65536)
            return config_error(std::string("hidden[") + std::to_string(i) + "] must be in 1..65536, got " +
                                    std::to_string(spec.hidden[i]),
                                std::string("hidden[") + std::to_string(i) + "]");
        out->reset(new Mlp(spec, dims));
      } else {
        out->reset(new Softmax(spec, dims));
      }
      return Status::Ok();
    default:
      return config_error("unknown model", "model");
  }
}

Status Model::check_data(const Dataset& d) const {
  const std::string name = kind_name(spec_.kind);
  auto bad = [&](const std::string& msg) { return Status::Error(Code::InvalidArgument, "model '" + name + "': " + msg, "data"); };
  if (spec_.kind == Kind::Mf) {
    if (d.kind != DK::Ratings) return bad(std::string("needs ratings data, got ") + data::kind_name(d.kind));
    if (d.users > dims_.users || d.items > dims_.items)
      return bad(std::string("the data has ") + std::to_string(d.users) + std::string(" users and ") + std::to_string(d.items) +
                 std::string(" items, the model ") + std::to_string(dims_.users) + std::string(" and ") + std::to_string(dims_.items));
    return Status::Ok();
  }
  if (d.kind == DK::Ratings) return bad("needs dense or sparse feature rows, got ratings");
  if (d.features != dims_.features)
    return bad(std::string("the data has ") + std::to_string(d.features) + std::string(" features, the model ") + std::to_string(dims_.features));
  switch (spec_.kind) {
    case Kind::Logistic:
    case Kind::Svm:
      if (d.classes != 2) return bad(std::string("needs binary labels (±1), got ") + std::to_string(d.classes) + " classes");
      break;
    case Kind::Softmax:
    case Kind::Mlp:
      if (d.classes < 2) return bad("needs class labels, got none");
      if (d.classes > dims_.classes)
        return bad(std::string("the data has ") + std::to_string(d.classes) + std::string(" classes, the model ") + std::to_string(dims_.classes));
      break;
    default: break;
  }
  return Status::Ok();
}

Status Model::from_shapes(const ModelSpec& spec0, const std::vector<std::string>& names,
                          const std::vector<std::vector<int64_t>>& shapes, std::unique_ptr<Model>* out,
                          std::vector<int>* order) {
  ModelSpec spec = spec0;
  auto find = [&](const std::string& n) -> int {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == n) return static_cast<int>(i);
    return -1;
  };
  auto need = [&](const std::string& n, size_t rank, int* at) -> Status {
    *at = find(n);
    if (*at < 0) return Status::Error(Code::Shape, std::string("model '") + kind_name(spec.kind) + "' needs a tensor '" + n + "'", n);
    if (shapes[*at].size() != rank)
      return Status::Error(Code::Shape, "tensor '" + n + std::string("' must have ") + std::to_string(rank) + " dimensions", n);
    return Status::Ok();
  };
  Dims d;
  int i0, i1;
  Status s;
  switch (spec.kind) {
    case Kind::Linear:
    case Kind::Logistic:
    case Kind::Svm:
      if (!(s = need("w", 1, &i0)).ok() || !(s = need("b", 1, &i1)).ok()) return s;
      d.features = shapes[i0][0];
      break;
    case Kind::Softmax:
      if (!(s = need("W", 2, &i0)).ok() || !(s = need("b", 1, &i1)).ok()) return s;
      d.features = shapes[i0][0];
      d.classes = shapes[i0][1];
      break;
    case Kind::Mlp: {
      spec.hidden.clear();
      size_t L = 0;
      while (find(std::string("W") + std::to_string(L + 1)) >= 0) ++L;
      if (L < 2) return Status::Error(Code::Shape, "model 'mlp' needs tensors W1, b1, ..., Wn, bn with n >= 2", "W2");
      for (size_t l = 1; l <= L; ++l) {
        int w, b;
        if (!(s = need(std::string("W") + std::to_string(l), 2, &w)).ok() || !(s = need(std::string("b") + std::to_string(l), 1, &b)).ok()) return s;
        if (l == 1) d.features = shapes[w][0];
        if (l < L) spec.hidden.push_back(static_cast<uint32_t>(shapes[w][1]));
        else d.classes = shapes[w][1];
      }
      break;
    }
    case Kind::Mf:
      if (!(s = need("U", 2, &i0)).ok() || !(s = need("V", 2, &i1)).ok()) return s;
      d.users = shapes[i0][0];
      d.items = shapes[i1][0];
      spec.rank = static_cast<uint32_t>(shapes[i0][1]);
      spec.biases = find("bu") >= 0 && find("bi") >= 0;
      break;
  }
  if (!(s = create(spec, d, out)).ok()) return s;
  order->clear();
  for (const TensorSpec& t : (*out)->tensors()) {
    int at = find(t.name);
    if (at < 0) return Status::Error(Code::Shape, "model needs a tensor '" + t.name + "'", t.name);
    if (shapes[at] != t.shape) {
      std::string want, got;
      for (int64_t x : t.shape) want += (want.empty() ? "" : ", ") + std::to_string(x);
      for (int64_t x : shapes[at]) got += (got.empty() ? "" : ", ") + std::to_string(x);
      return Status::Error(Code::Shape, "tensor '" + t.name + "' must have shape [" + want + "], got [" + got + "]", t.name);
    }
    order->push_back(at);
  }
  return Status::Ok();
}

Status evaluate(const Model& m, const float* const* p, const Dataset& d, EvalSums* out) {
  Status s = m.check_data(d);
  if (!s.ok()) return s;
  std::vector<float> ws(m.workspace_floats(d, Model::kEvalBlock) + 16);
  for (uint64_t r = 0; r < d.rows; r += Model::kEvalBlock)
    m.eval(p, d, r, std::min<uint64_t>(d.rows, r + Model::kEvalBlock), ws.data(), out);
  return Status::Ok();
}

Status evaluate(const Model& m, const float* const* p, const Dataset& d, Evaluation* out) {
  EvalSums sums;
  Status s = evaluate(m, p, d, &sums);
  if (!s.ok()) return s;
  const double rows = static_cast<double>(sums.rows);
  out->rows = sums.rows;
  out->regression = m.regression();
  out->loss = rows ? sums.loss / rows : NAN;
  out->rmse = out->regression && rows ? std::sqrt(sums.sqErr / rows) : NAN;
  out->accuracy = !out->regression && rows ? static_cast<double>(sums.correct) / rows : NAN;
  return Status::Ok();
}

Status evaluate(const ModelSpec& spec, const std::vector<NamedArray>& tensors, const Dataset& d, Evaluation* out) {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (const NamedArray& t : tensors) {
    uint64_t size = 1;
    for (int64_t n : t.shape) size *= static_cast<uint64_t>(n);
    if (t.size != size)
      return Status::Error(Code::Shape, "tensor '" + t.name + "' has " + std::to_string(t.size) + " values, its shape says " + std::to_string(size));
    names.push_back(t.name);
    shapes.push_back(t.shape);
  }
  std::unique_ptr<Model> m;
  std::vector<int> order;
  Status s = Model::from_shapes(spec, names, shapes, &m, &order);
  if (!s.ok()) return s;
  std::vector<const float*> p;
  for (int k : order) p.push_back(tensors[static_cast<size_t>(k)].data);
  return evaluate(*m, p.data(), d, out);
}

}  // namespace gv::model
