#include "sample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "../../kernels/dispatch.h"
#include "../../kernels/fixed/scalar.h"
#include "../model/batch.h"
#include "../store/stripes.h"

namespace gv::train {

namespace {
const kernels::Table& K() { return kernels::active(); }
using DK = data::Kind;
}  // namespace

bool SampleStepper::applies(const TrainerConfig& cfg, Store& store, const model::Model& m, const data::Dataset& d,
                            const std::vector<uint32_t>& tensors) {
  const StoreConfig& sc = store.config();
  if (!cfg.perSample || cfg.batchSize != 1 || cfg.maxAhead >= 0 || sc.stalePolicy != StalePolicy::Accept ||
      sc.staleBound != UINT64_MAX)
    return false;
  const model::Kind k = m.kind();
  const bool linear = k == model::Kind::Logistic || k == model::Kind::Svm || k == model::Kind::Linear;
  const bool mf = k == model::Kind::Mf && d.kind == DK::Ratings && (tensors.size() == 2 || tensors.size() == 4);
  if (!mf && (tensors.size() != 2 ||
              !((linear && d.kind == DK::Sparse) || (k == model::Kind::Softmax && (d.kind == DK::Sparse || d.kind == DK::Dense)))))
    return false;
  Store::SampleAccess a;
  return store.sample_access(&a) && !(mf && a.fixed);  // deterministic mf: the generic path
}

std::vector<float> SampleStepper::row_max(const data::Dataset& d) {
  if (d.kind == DK::Ratings) return std::vector<float>(d.rows, 1.f);  // mf: the step bounds its own gradient
  std::vector<float> out(d.rows, 1.f);
  for (uint64_t r = 0; r < d.rows; ++r) {
    const float* v = d.kind == DK::Sparse ? d.values.data() + d.indptr[r] : d.X.data() + r * d.features;
    const uint64_t n = d.kind == DK::Sparse ? d.indptr[r + 1] - d.indptr[r] : d.features;
    float m = 1.f;
    bool finite = true;
    for (uint64_t k = 0; k < n; ++k) {
      m = std::max(m, std::fabs(v[k]));
      finite &= std::isfinite(v[k]);
    }
    // a NaN or an infinity: no bound, so its samples go the generic way
    // (whose scan finds them in the gradient: the loss of a NaN input need not be NaN)
    out[r] = finite ? m : INFINITY;
  }
  return out;
}

std::unique_ptr<SampleStepper> SampleStepper::make(Store& store, const model::Model& m, const data::Dataset& d,
                                                   const std::vector<uint32_t>& tensors, const std::vector<float>& rowMax) {
  Store::SampleAccess a;
  if (!store.sample_access(&a) || rowMax.size() != d.rows) return nullptr;
  std::vector<size_t> off;
  for (uint32_t t : tensors) off.push_back(store.tensor(t).offset);
  return std::unique_ptr<SampleStepper>(new SampleStepper(store, m, d, a, off, rowMax));
}

SampleStepper::SampleStepper(Store& s, const model::Model& m, const data::Dataset& d, const Store::SampleAccess& a,
                             const std::vector<size_t>& off, const std::vector<float>& rowMax)
    : store_(s), model_(m), data_(d), rowMax_(rowMax), access_(a), kind_(m.kind()),
      width_(m.kind() == model::Kind::Softmax ? static_cast<size_t>(m.dims().classes)
             : m.kind() == model::Kind::Mf    ? m.spec().rank
                                              : 1),
      offW_(off[0]), offB_(off[1]), off_(off) {
  z_.resize(4 * width_ + 16);
  if (a.fixed) {  // deterministic reads a sample's rows into floats: at most every feature
    rows_.resize((d.features + 1) * width_ + 16);
    iota_.resize(d.features + 1);
    for (size_t k = 0; k < iota_.size(); ++k) iota_[k] = static_cast<uint32_t>(k);
  }
  // Parameters that fit in a core's L2 stay there: prefetching them costs the
  // index loads and instructions and saves nothing (measured on W3: w of
  // 189 KB ran 19% faster without). Larger ones (mf's factor tables, wide
  // sparse models) are prefetched a step ahead.
  const size_t paramBytes = (m.kind() == model::Kind::Mf ? (d.users + d.items) * width_ : size_t(d.features) * width_) *
                            (a.fixed ? sizeof(int64_t) : sizeof(float));
  prefetchParams_ = paramBytes > kCacheBytes;
  const size_t sf = a.stripeFloats;
  oneStripe_ = sf && offW_ / sf == (offB_ + width_ - 1) / sf ? offW_ / sf : SIZE_MAX;
}

void SampleStepper::collect_stripes(const uint32_t* idx, size_t nnz) {
  stripes_.clear();
  if (oneStripe_ != SIZE_MAX) {  // a small model (Fashion-MNIST's softmax): one stripe holds it all
    stripes_.push_back(oneStripe_);
    return;
  }
  const size_t sf = access_.stripeFloats;
  // idx ascending: the stripes come in order; the last stripe's end is
  // tracked instead of dividing per row. A row's floats [lo, hi] add every
  // stripe they cross (a wide row can cross several).
  size_t end = 0;
  auto add = [&](size_t lo, size_t hi) {
    if (!stripes_.empty() && hi < end) return;
    for (size_t s = std::max(lo / sf, stripes_.empty() ? size_t{0} : stripes_.back() + 1); s <= hi / sf; ++s) stripes_.push_back(s);
    end = (stripes_.back() + 1) * sf;
  };
  for (size_t k = 0; k < nnz; ++k) {
    const size_t off = offW_ + size_t{idx[k]} * width_;
    add(off, off + width_ - 1);
  }
  add(offB_, offB_ + width_ - 1);
}

void SampleStepper::enter(size_t s, Store::SampleTally& tally) {
  if (access_.locks) access_.locks[s].lock();
  else if (access_.writers[s].n.fetch_add(1, std::memory_order_relaxed) != 0) ++tally.conflicts;
}
void SampleStepper::leave(size_t s) {
  if (access_.locks) access_.locks[s].unlock();
  else access_.writers[s].n.fetch_sub(1, std::memory_order_relaxed);
}

void SampleStepper::hold() {
  for (size_t s : stripes_) access_.locks[s].lock();  // ascending: no cycle between holders of several
}
void SampleStepper::release() {
  for (size_t s : stripes_) access_.locks[s].unlock();
}
void SampleStepper::prefetch_index(uint32_t row) const {
  if (data_.kind == DK::Sparse) __builtin_prefetch(&data_.indptr[row]);
  else if (data_.kind == DK::Ratings) {
    __builtin_prefetch(&data_.user[row]);
    __builtin_prefetch(&data_.item[row]);
  }
  // the row's label and bound: arrays of a float a row, read at random too
  __builtin_prefetch(kind_ == model::Kind::Softmax ? static_cast<const void*>(&data_.classIds[row])
                                                  : static_cast<const void*>(&data_.labels[row]));
  if (!rowMax_.empty()) __builtin_prefetch(&rowMax_[row]);
}

void SampleStepper::prefetch_data(uint32_t row) const {
  if (data_.kind == DK::Ratings) {
    return;  // prefetch_index fetched the pair
  } else if (data_.kind == DK::Sparse) {
    const uint64_t lo = data_.indptr[row], hi = data_.indptr[row + 1];
    for (uint64_t i = lo; i < hi; i += 16) __builtin_prefetch(&data_.indices[i]);
    for (uint64_t i = lo; i < hi; i += 16) __builtin_prefetch(&data_.values[i]);
  } else {
    const float* x = data_.X.data() + size_t{row} * data_.features;
    for (size_t i = 0; i < data_.features; i += 16) __builtin_prefetch(x + i);
  }
}

void SampleStepper::prefetch_params(uint32_t row) const {
  if (!prefetchParams_) return;
  if (data_.kind == DK::Ratings) {
    __builtin_prefetch(access_.params + off_[0] + size_t{data_.user[row]} * width_, 1);
    __builtin_prefetch(access_.params + off_[1] + size_t{data_.item[row]} * width_, 1);
    return;
  }
  if (data_.kind != DK::Sparse) return;
  const uint64_t lo = data_.indptr[row], hi = data_.indptr[row + 1];
  if (access_.fixed) {
    const int64_t* Q = access_.fixed + offW_;
    for (uint64_t i = lo; i < hi; ++i) __builtin_prefetch(Q + size_t{data_.indices[i]} * width_, 1);
    return;
  }
  const float* W = access_.params + offW_;
  for (uint64_t i = lo; i < hi; ++i) __builtin_prefetch(W + size_t{data_.indices[i]} * width_, 1);
}

bool SampleStepper::reserve(double move) {
  // The ledger was reset since (the exact path, a restore): what this thread
  // held is no longer counted there, so it is given up.
  const uint64_t resets = store_.ledger_resets();
  if (resets != ledgerResets_) {
    ledgerResets_ = resets;
    budget_ = 0;
  }
  if (!std::isfinite(move)) return false;  // an infinite rate, even on a d of 0: the generic push decides
  if (!(move <= budget_)) {  // a chunk's worth at this size, from the store's ledger (one mutex per reservation)
    const double take = std::max(move * double(kChunk), 1e-30);
    if (!store_.reserve_sgd_moves(take)) return false;
    budget_ += take;
  }
  budget_ -= move;
  return true;
}

SampleStepper::Outcome SampleStepper::step(uint32_t row, float lr, Store::SampleTally& tally, double* loss,
                                          uint64_t* staleness) {
  if (kind_ == model::Kind::Mf) return step_mf(row, lr, tally, loss, staleness);
  const uint32_t* idx;
  const float* val;
  size_t nnz;
  if (data_.kind == DK::Sparse) {
    const uint64_t lo = data_.indptr[row];
    idx = data_.indices.data() + lo;
    val = data_.values.data() + lo;
    nnz = data_.indptr[row + 1] - lo;
  } else {  // a dense row's nonzeros, as the generic path's batch of one
    const model::detail::SparseView& v = model::detail::sparse_view(data_, model::detail::Batch{&row, 0, 1});
    idx = v.idx[0];
    val = v.val[0];
    nnz = v.nnz[0];
  }
  float* P = access_.params;  // null in deterministic (Q below)
  float* W = P ? P + offW_ : nullptr;
  float* b = P ? P + offB_ : nullptr;
  const size_t C = width_;
  const size_t sf = access_.stripeFloats;
  const uint64_t basis = store_.version();
  if (access_.lockedReads) collect_stripes(idx, nnz);

  // Forward: the model's output on the parameters as they are now.
  float* z = z_.data();
  int64_t* Q = access_.fixed;
  if (access_.lockedReads) hold();
  if (Q) {
    // deterministic: the sample's rows as floats (what the generic path's
    // row snapshot copies), the forward pass on those, in the same order
    float* rw = rows_.data();
    if (C == 1)
      for (size_t k = 0; k < nnz; ++k) rw[k] = static_cast<float>(static_cast<double>(Q[offW_ + idx[k]]) / kernels::kFixedOne);
    else
      for (size_t k = 0, e; k < nnz; k = e) {  // runs of consecutive rows in one call, as the row snapshot's pieces
        for (e = k + 1; e < nnz && idx[e] == idx[e - 1] + 1;) ++e;
        K().fixed_load(rw + k * C, Q + offW_ + size_t{idx[k]} * C, (e - k) * C);
      }
    K().fixed_load(rw + nnz * C, Q + offB_, C);
    if (access_.lockedReads) release();
    if (C == 1) z[0] = K().sparse_dot(val, iota_.data(), nnz, rw) + rw[nnz];
    else {
      std::memcpy(z, rw + nnz * C, C * sizeof(float));
      K().rows_gather(z, rw, C, iota_.data(), val, nnz);
    }
  } else {
    if (C == 1) z[0] = K().sparse_dot(val, idx, nnz, W) + b[0];
    else {
      std::memcpy(z, b, C * sizeof(float));
      K().rows_gather(z, W, C, idx, val, nnz);
    }
    if (access_.lockedReads) release();
  }

  // The loss and its derivative d (z becomes d), as the model's grad() at n = 1.
  double l;
  float* D = z;
  switch (kind_) {
    case model::Kind::Logistic: {
      const float y = data_.labels[row];
      float dz;
      l = K().logloss(z, &y, &dz, 1);
      z[0] = dz;
      break;
    }
    case model::Kind::Linear: {
      const float e = z[0] - data_.labels[row];
      l = 0.5 * double(e) * e;
      z[0] = e;
      break;
    }
    case model::Kind::Svm: {
      const float y = data_.labels[row], m = 1.f - y * z[0];
      l = m > 0 ? m : 0.f;
      z[0] = m > 0 ? -y : 0.f;
      break;
    }
    default: {
      const uint32_t label = static_cast<uint32_t>(data_.classIds[row]);
      l = K().softmax_xent_batch(z, 1, C, &label, z);
      break;
    }
  }
  // Finite, and a move the ledger allows: else the generic path decides.
  float maxD = 0.f;
  bool finite = std::isfinite(l);
  for (size_t c = 0; c < C; ++c) {
    finite &= std::isfinite(D[c]);
    maxD = std::max(maxD, std::fabs(D[c]));
  }
  const float maxX = rowMax_[row];
  const double move = double(lr) * double(maxD) * double(maxX);
  if (!finite || !(double(maxD) * maxX <= std::numeric_limits<float>::max())) return Outcome::Generic;  // 0 * inf too
  // deterministic's range (|lr * g| below 2^30, else the push's Overflow
  // error; NaN fails it too), or the float modes' ledger
  if (Q ? !(move * kernels::kFixedOne < static_cast<double>(kernels::kFixedLimit)) : !reserve(move)) return Outcome::Generic;

  const uint64_t st = store_.version() - basis;
  // The update, as the generic push of the materialised gradient steps it:
  // g = 0 + x * d (the zeroed buffer the model adds into), p = 1 * p + (-lr) * g.
  const float a = -lr;
  // One stripe at a time, ascending, as a generic push holds them: its
  // share of the rows under its lock (atomic, locked, deterministic), or
  // counted in (hogwild). A row across a boundary is cut there.
  //
  // deterministic: q += llrint(-lr * g * 2^32), wrapping as its pushes add,
  // with the fixed family's kernel (SIMD where its rounding trick is exact,
  // the scalar reference beyond; the margin covers the float rounding of
  // x * d above the double bound)
  const double scale = -static_cast<double>(lr);
  const kernels::Table& fixedK =
      move * kernels::kFixedOne * (1.0 + 0x1p-20) < kernels::kFixedExactSimd ? K() : *kernels::table_for(kernels::Isa::Scalar);
  auto add = [&](size_t flat, float g) {
    Q[flat] = static_cast<int64_t>(static_cast<uint64_t>(Q[flat]) + static_cast<uint64_t>(std::llrint(scale * double(g) * kernels::kFixedOne)));
  };
  // elements [c0, c1) of the row of input x at flat offset o
  float* g = z_.data() + C;
  auto part = [&](size_t o, float x, size_t c0, size_t c1) {
    if (Q) {
      for (size_t c = c0; c < c1; ++c) g[c] = 0.f + x * D[c];
      fixedK.fixed_add(Q + o + c0, g + c0, nullptr, scale, 0.0, c1 - c0);
    } else {
      for (size_t c = c0; c < c1; ++c) P[o + c] = 1.f * P[o + c] + a * (0.f + x * D[c]);
    }
  };
  // rows [k0, k1), whole
  auto rows = [&](size_t k0, size_t k1) {
    if (C > 1 && !Q) return K().rows_step(W, C, idx + k0, val + k0, k1 - k0, D, a);
    if (C > 1) {  // runs of consecutive rows in one call (the rows read above are no longer needed: their space holds g)
      float* gr = rows_.data();
      for (size_t k = k0, e; k < k1; k = e) {
        for (e = k + 1; e < k1 && idx[e] == idx[e - 1] + 1;) ++e;
        for (size_t q = k; q < e; ++q)
          for (size_t c = 0; c < C; ++c) gr[(q - k) * C + c] = 0.f + val[q] * D[c];
        fixedK.fixed_add(Q + offW_ + size_t{idx[k]} * C, gr, nullptr, scale, 0.0, (e - k) * C);
      }
      return;
    }
    const float d = D[0];
    if (Q)
      for (size_t k = k0; k < k1; ++k) add(offW_ + idx[k], 0.f + val[k] * d);
    else
      for (size_t k = k0; k < k1; ++k) {
        float& w = W[idx[k]];
        w = 1.f * w + a * (0.f + val[k] * d);
      }
  };
  // a row at flat offset o, its elements from c on, stripe by stripe
  auto cut = [&](size_t o, float x, size_t c) {
    while (c < C) {
      const size_t s = (o + c) / sf, e = std::min(C, (s + 1) * sf - o);
      enter(s, tally);
      part(o, x, c, e);
      leave(s);
      c = e;
    }
  };
  // the generic gradient leaves out the rows of a linear model whose d is 0: they add nothing
  const bool skipRows = C == 1 && D[0] == 0.f;
  if (oneStripe_ != SIZE_MAX) {  // a small model (Fashion-MNIST's softmax): one stripe holds it all
    enter(oneStripe_, tally);
    if (!skipRows) rows(0, nnz);
    part(offB_, 1.f, 0, C);
    leave(oneStripe_);
  } else {
    for (size_t k = 0; k < nnz && !skipRows;) {
      const size_t off = offW_ + size_t{idx[k]} * C, s = off / sf, end = (s + 1) * sf;
      enter(s, tally);
      size_t k1 = k;
      while (k1 < nnz && offW_ + size_t{idx[k1]} * C + C <= end) ++k1;
      rows(k, k1);
      const size_t o = k1 < nnz ? offW_ + size_t{idx[k1]} * C : SIZE_MAX;
      if (o < end) {  // row k1 begins in this stripe and ends beyond it
        part(o, val[k1], 0, end - o);
        leave(s);
        cut(o, val[k1], end - o);
        k = k1 + 1;
      } else {
        leave(s);
        k = k1;
      }
    }
    cut(offB_, 1.f, 0);
  }
  ++tally.applied;
  tally.add_staleness(st);
  *loss = l;
  *staleness = st;
  return Outcome::Applied;
}

// mf: a rating (u, i, y) reads rows U[u] and V[i] (and bu[u], bi[i]) and
// writes the same four places: gU = e * V[i] (+ l2 * U[u]), gV = e * U[u]
// (+ l2 * V[i]), gbu = gbi = e, each from the values read, as the model's
// grad() at n = 1 computes them (its axpby into a zeroed buffer: 0 + ...).
SampleStepper::Outcome SampleStepper::step_mf(uint32_t row, float lr, Store::SampleTally& tally, double* loss,
                                             uint64_t* staleness) {
  const size_t R = width_;
  const bool biases = off_.size() == 4;
  const uint32_t u = data_.user[row], i = data_.item[row];
  float* P = access_.params;
  // the four places, ascending (the tensors are laid out U, V, bu, bi)
  struct Span {
    size_t off, len;
    const float* g;
  };
  float* pu = z_.data();  // the values read
  float* pi = pu + R;
  float* gu = pi + R;  // the gradient
  float* gi = gu + R;
  float gb = 0.f;
  const Span spans[4] = {{off_[0] + size_t{u} * R, R, gu},
                         {off_[1] + size_t{i} * R, R, gi},
                         {biases ? off_[2] + u : 0, biases ? size_t{1} : 0, &gb},
                         {biases ? off_[3] + i : 0, biases ? size_t{1} : 0, &gb}};
  const size_t nspans = biases ? 4 : 2;
  const size_t sf = access_.stripeFloats;
  const uint64_t basis = store_.version();
  if (access_.lockedReads) {
    stripes_.clear();
    for (size_t k = 0; k < nspans; ++k)
      for (size_t s = spans[k].off / sf; s <= (spans[k].off + spans[k].len - 1) / sf; ++s)
        if (stripes_.empty() || stripes_.back() < s) stripes_.push_back(s);
    hold();
  }
  std::memcpy(pu, P + spans[0].off, R * sizeof(float));
  std::memcpy(pi, P + spans[1].off, R * sizeof(float));
  const float bu = biases ? P[spans[2].off] : 0.f, bi = biases ? P[spans[3].off] : 0.f;
  if (access_.lockedReads) release();

  float z = K().dot(pu, pi, R);
  if (biases) z += bu + bi;
  const float e = z - data_.labels[row], l2 = model_.spec().l2;
  double l = 0.5 * double(e) * e;
  if (l2 != 0.f) l += 0.5 * l2 * (double(K().dot(pu, pu, R)) + K().dot(pi, pi, R));
  std::memset(gu, 0, 2 * R * sizeof(float));
  K().axpby(gu, gu, pi, e, 1.f, R);
  K().axpby(gi, gi, pu, e, 1.f, R);
  if (l2 != 0.f) {
    K().axpby(gu, gu, pu, l2, 1.f, R);
    K().axpby(gi, gi, pi, l2, 1.f, R);
  }
  gb = 0.f + e;
  // finite, and the move the ledger allows (the generic path's scan: max |g|)
  bool finite = std::isfinite(l) && std::isfinite(gb);
  float maxG = std::fabs(gb);
  for (size_t c = 0; c < 2 * R; ++c) {
    finite &= std::isfinite(gu[c]);
    maxG = std::max(maxG, std::fabs(gu[c]));
  }
  if (!finite) return Outcome::Generic;
  if (!reserve(double(lr) * maxG)) return Outcome::Generic;
  const uint64_t st = store_.version() - basis;
  // p = 1 * p + (-lr) * g, stripe by stripe, ascending; one stripe held at a time
  const float a = -lr;
  size_t held = SIZE_MAX;
  for (size_t k = 0; k < nspans; ++k) {
    const Span& sp = spans[k];
    for (size_t c = 0; c < sp.len;) {
      const size_t s = (sp.off + c) / sf, e2 = std::min(sp.len, (s + 1) * sf - sp.off);
      if (s != held) {
        if (held != SIZE_MAX) leave(held);
        enter(held = s, tally);
      }
      float* p = P + sp.off;
      for (; c < e2; ++c) p[c] = 1.f * p[c] + a * sp.g[c];
    }
  }
  if (held != SIZE_MAX) leave(held);
  ++tally.applied;
  tally.add_staleness(st);
  *loss = l;
  *staleness = st;
  return Outcome::Applied;
}

}  // namespace gv::train
