// Parameters and optimizer state as float arrays, and what the strategies
// that keep them so (atomic, locked, hogwild, versioned, averaging's
// parameters) share: the checkpoint image, the magnitude ledger's hooks,
// one step over a range, copies of pieces, stripe walks.
#pragma once
#include <cstring>

#include "../../kernels/update/scalar.h"
#include "internal.h"
#include "stripes.h"

namespace gv::detail {

// Parameters and optimizer state as plain float arrays (all modes but
// deterministic keep them so).
struct FloatState {
  AlignedArray<float> params, s1, s2;
  void allocate(size_t padded, int slots) {
    params = AlignedArray<float>(padded);
    if (slots >= 1) s1 = AlignedArray<float>(padded);
    if (slots >= 2) s2 = AlignedArray<float>(padded);
  }
  float* s1_at(size_t off) { return s1.empty() ? nullptr : s1.data() + off; }
  float* s2_at(size_t off) { return s2.empty() ? nullptr : s2.data() + off; }
};

// Into an image that Store::size_image sized: no allocation (the gate is closed).
inline void export_float(const FloatState& st, size_t padded, StateImage* out) {
  if (padded == 0) return;
  std::memcpy(out->params.data(), st.params.data(), padded * sizeof(float));
  if (!st.s1.empty()) std::memcpy(out->s1.data(), st.s1.data(), padded * sizeof(float));
  if (!st.s2.empty()) std::memcpy(out->s2.data(), st.s2.data(), padded * sizeof(float));
}

inline Status import_float(FloatState& st, size_t padded, const StateImage& in) {
  // a store of empty tensors has no memory (null: not for memcpy)
  if (!in.params.empty()) std::memcpy(st.params.data(), in.params.data(), padded * sizeof(float));
  if (!st.s1.empty()) {
    if (in.s1.empty()) std::memset(st.s1.data(), 0, padded * sizeof(float));
    else std::memcpy(st.s1.data(), in.s1.data(), padded * sizeof(float));
  }
  if (!st.s2.empty()) {
    if (in.s2.empty()) std::memset(st.s2.data(), 0, padded * sizeof(float));
    else std::memcpy(st.s2.data(), in.s2.data(), padded * sizeof(float));
  }
  return Status::Ok();
}

// The ledger hooks (store.h), shared by every mode with float state:
// parameters p and state s1, s2 (null when the optimizer keeps none) in
// the padded layout.
inline size_t dry_run_pieces(const float* p, const float* s1, const float* s2, const Piece* pieces, size_t np, const kernels::StepArgs& a) {
  for (size_t i = 0; i < np; ++i) {
    const size_t o = pieces[i].offset;
    const size_t k = first_non_finite_step(a, p + o, s1 ? s1 + o : nullptr, s2 ? s2 + o : nullptr, pieces[i].g, pieces[i].len);
    if (k < pieces[i].len) return o + k;
  }
  return SIZE_MAX;
}

inline double max_abs(const AlignedArray<float>& a) { return a.empty() ? 0.0 : K().scan(a.data(), a.size()).maxAbs; }

inline void measure_arrays(const AlignedArray<float>& p, const AlignedArray<float>& s1, const AlignedArray<float>& s2, double* mp,
                    double* m1, double* m2) {
  *mp = max_abs(p), *m1 = max_abs(s1), *m2 = max_abs(s2);
}

inline size_t dry_run_float(FloatState& st, const Piece* pieces, size_t np, const kernels::StepArgs& a) {
  return dry_run_pieces(st.params.data(), st.s1_at(0), st.s2_at(0), pieces, np, a);
}
inline void measure_float(const FloatState& st, double* p, double* s1, double* s2) { measure_arrays(st.params, st.s1, st.s2, p, s1, s2); }

inline bool plain_sgd(const kernels::StepArgs& a) {
  return a.kind == kernels::OptKind::Sgd && a.momentum == 0.f && a.weightDecay == 0.f;
}

// One step over [off, off+len) of the flat layout with gradient g.
inline void step_range(FloatState& st, const kernels::StepArgs& a, size_t off, const float* g, size_t len) {
  if (plain_sgd(a) && len < 16)  // a row of a row-sparse push: inline (the same bits as every ISA's axpby)
    kernels::scalar::axpby(st.params.data() + off, st.params.data() + off, g, -a.lr, 1.f, len);
  else if (plain_sgd(a))
    K().axpby(st.params.data() + off, st.params.data() + off, g, -a.lr, 1.f, len);
  else
    K().step(a, st.params.data() + off, st.s1_at(off), st.s2_at(off), g, len);
}

// Copies pieces of src into out at the same offsets: short ones (rows)
// inline, long ones with the snapshot copy for the store's size.
inline void copy_pieces(float* out, const float* src, const Piece* p, size_t np, void (*copy)(float*, const float*, size_t)) {
  for (size_t i = 0; i < np; ++i) {
    const size_t o = p[i].offset, n = p[i].len;
    if (n < 16)
      for (size_t k = 0; k < n; ++k) out[o + k] = src[o + k];
    else
      copy(out + o, src + o, n);
  }
}

// Hogwild's row-sparse pushes: f(piece, lo, hi) for every part of every
// piece, stripe by stripe in the pieces' order, entering a stripe once per
// run of parts in it (enter(s) before, leave(s) after), to count the
// writers that overlap on a stripe.
template <class Enter, class Leave, class F>
inline void walk_stripes(size_t floatsPerStripe, const Piece* p, size_t np, Enter&& enter, Leave&& leave, F&& f) {
  size_t held = SIZE_MAX;
  for (size_t i = 0; i < np; ++i) {
    size_t off = p[i].offset;
    const size_t end = off + p[i].len;
    while (off < end) {
      const size_t st = off / floatsPerStripe, hi = std::min(end, (st + 1) * floatsPerStripe);
      if (st != held) {
        if (held != SIZE_MAX) leave(held);
        enter(st);
        held = st;
      }
      f(p[i], off, hi);
      off = hi;
    }
  }
  if (held != SIZE_MAX) leave(held);
}

// f(part) for the stripe parts of pieces, each stripe held once (Stripes::for_parts).
template <class F>
inline void for_piece_parts(Stripes& st, const Piece* pieces, size_t np, bool staggered, F&& f) {
  st.for_parts(np, [&](size_t i) { return pieces[i].offset; }, [&](size_t i) { return pieces[i].len; }, staggered, f);
}

// The strategies whose parameters and optimizer state are a FloatState
// (atomic, locked, hogwild, averaging): their allocation, exact maxima and
// checkpoint image, written once.
class FloatStore : public Store {
 protected:
  using Store::Store;
  void allocate_float() {
    st_.allocate(padded_, state_slots());
    fill_initial(st_.params.data());
  }
  void measure(double* p, double* s1, double* s2) override { measure_float(st_, p, s1, s2); }
  Status export_locked(StateImage* out) override {
    export_float(st_, padded_, out);
    return Status::Ok();
  }
  Status import_locked(const StateImage& in) override { return import_float(st_, padded_, in); }
  FloatState st_;
};

}  // namespace gv::detail
