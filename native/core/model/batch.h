// What the model families share (internal to native/core/model/): a batch's
// rows, dense blocks and sparse views of them, first-layer products and
// gradients, the rows a gradient touches. One file per family beside this
// (linear.cpp, softmax.cpp, mlp.cpp, mf.cpp) builds on it; model.cpp makes
// the families (families.h) and checks their specs.
#pragma once
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <vector>

#include "../../kernels/dispatch.h"
#include "model.h"

namespace gv::model::detail {

using data::Dataset;
using DK = data::Kind;

inline const kernels::Table& K() { return kernels::active(); }

// The rows of one batch: rows[i] when given, else begin + i (evaluation).
struct Batch {
  const uint32_t* rows;
  uint64_t begin;
  size_t n;
  uint64_t row(size_t i) const { return rows ? rows[i] : begin + i; }
};

// A contiguous [n, features] block of the batch's dense rows: the data itself
// when the rows are consecutive, else gathered into ws.
const float* dense_rows(const Dataset& d, const Batch& b, float* ws);

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
// This thread's row set number k (0..3), sized for `rows` ids.
RowSet& rowset(int k, size_t rows);

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
inline void start_touched(Touched* t, size_t count, std::initializer_list<bool> sparse, std::initializer_list<size_t> width) {
  start_touched<std::initializer_list<bool>, std::initializer_list<size_t>>(t, count, sparse, width);
}

// Labels of the batch as class ids.
void gather_labels(const Dataset& d, const Batch& b, uint32_t* out);

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
// This thread's view of the batch (rebuilt only when the batch changes).
const SparseView& sparse_view(const Dataset& d, const Batch& b);

// Z[n, width] = bias rows + X W for the first layer: a dense X block, or sparse rows (sv).
void first_layer(const Dataset& d, const Batch& b, const float* Xdense, const SparseView* sv, const float* W,
                 const float* bias, size_t width, float* Z);
// gW = X^T D, gb = column sums of D; D [n, width] already holds the 1/n.
// Sparse rows (sv) add into gW (zero on entry) and list the rows in tW.
void first_layer_grad(const Dataset& d, const Batch& b, const float* Xdense, const SparseView* sv, const float* D,
                      size_t width, float* gW, float* gb, Touched* tW, int rowsetSlot);
// The distinct features of a view's rows, ascending.
void rows_of(const Dataset& d, const SparseView& v, Touched& t, int slot);
// The sparse view a first layer uses for this batch, or null (dense block).
const SparseView* view_for(const Dataset& d, const Batch& b, bool rowSparse);
// The features of a batch's rows (sparse, or the nonzeros of dense rows), as
// the rows of a first-layer tensor.
void feature_rows(const Dataset& d, const uint32_t* rows, size_t n, Touched& t, size_t width, int slot);
// Adds to out->correct the rows whose largest score is their label.
void count_correct(const float* Z, size_t n, size_t C, const uint32_t* labels, EvalSums* out);

}  // namespace gv::model::detail
