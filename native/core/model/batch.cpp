// The plumbing the model families share (batch.h).
#include "batch.h"

namespace gv::model::detail {

const float* dense_rows(const Dataset& d, const Batch& b, float* ws) {
  const size_t F = d.features;
  if (!b.rows || b.n == 1) return d.X.data() + b.row(0) * F;
  for (size_t i = 0; i < b.n; ++i) std::memcpy(ws + i * F, d.X.data() + b.rows[i] * F, F * sizeof(float));
  return ws;
}

thread_local RowSet tlsRows[4];
RowSet& rowset(int k, size_t rows) {
  RowSet& s = tlsRows[k];
  if (s.bits.size() < (rows + 63) / 64) s.bits.assign((rows + 63) / 64, 0);
  return s;
}

void gather_labels(const Dataset& d, const Batch& b, uint32_t* out) {
  for (size_t i = 0; i < b.n; ++i) out[i] = static_cast<uint32_t>(d.classIds[b.row(i)]);
}

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
  v.cidx.resize(b.n * F + 16);  // + 16: the kernel's slack
  v.cval.resize(b.n * F + 16);
  for (size_t i = 0; i < b.n; ++i) {
    uint32_t* ci = v.cidx.data() + i * F;
    float* cv = v.cval.data() + i * F;
    v.idx[i] = ci;
    v.val[i] = cv;
    v.nnz[i] = K().nonzeros(d.X.data() + b.row(i) * F, F, ci, cv);
  }
  return v;
}

void first_layer(const Dataset& d, const Batch& b, const float* Xdense, const SparseView* sv, const float* W,
                 const float* bias, size_t width, float* Z) {
  for (size_t i = 0; i < b.n; ++i) std::memcpy(Z + i * width, bias, width * sizeof(float));
  if (!sv) {
    K().gemm(false, false, b.n, width, d.features, 1.f, Xdense, d.features, W, width, Z, width);
    return;
  }
  for (size_t i = 0; i < b.n; ++i) K().rows_gather(Z + i * width, W, width, sv->idx[i], sv->val[i], sv->nnz[i]);
}

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

const SparseView* view_for(const Dataset& d, const Batch& b, bool rowSparse) {
  return d.kind == DK::Sparse || (rowSparse && d.kind == DK::Dense) ? &sparse_view(d, b) : nullptr;
}

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

}  // namespace gv::model::detail
