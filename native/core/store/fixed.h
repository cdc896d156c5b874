// Q32.32 fixed-point sums (FixedAccumulator): deterministic's parameters
// and averaging's round.
#pragma once
#include <vector>

#include "float_state.h"

namespace gv::detail {

// fixed-point accumulation shared by deterministic (parameters) and
// averaging (round sums): q += llrint(scale * (g + wd*anchor) * 2^32) per
// element, each stripe held by one writer for all of a push's parts in it
// while the SIMD kernel runs. Integer adds modulo 2^64 are exact and
// associative, so the sum of a multiset of pushes does not depend on their
// order, even where a partial sum passes the range on the way. Whether a
// push is accepted is decided before it writes anything (the callers check
// its size), so no push is ever taken back.
class FixedAccumulator {
 public:
  void allocate(size_t padded, size_t stripeFloats) {
    q_ = AlignedArray<int64_t>(padded);
    stripes_ = Stripes(padded, stripeFloats);
  }
  int64_t* data() { return q_.data(); }
  const int64_t* data() const { return q_.data(); }
  size_t bytes() const { return q_.size() * sizeof(int64_t) + stripes_.bytes(); }
  Stripes& stripes() { return stripes_; }

  struct Term {
    const float* g;
    const float* anchor;  // may be null
    size_t offset, size;
    double bound;  // |scale| * max|g + wd * anchor| * 2^32, an upper bound on every increment
  };

  // Adds every term. Returns false if some value ended outside [-2^62, 2^62]
  // (the adds wrap modulo 2^64; callers that promise no value leaves the
  // range check before adding).
  bool add(const Term* terms, size_t n, double scale, double wd) {
    bool ok = true;
    stripes_.for_parts(n, [&](size_t i) { return terms[i].offset; }, [&](size_t i) { return terms[i].size; }, true,
                       [&](const Stripes::Part& q) {
      const Term& t = terms[q.piece];
      const kernels::Table& k = t.bound < kernels::kFixedExactSimd ? K() : *kernels::table_for(kernels::Isa::Scalar);
      const size_t at = q.lo - t.offset;
      ok &= k.fixed_add(q_.data() + q.lo, t.g + at, t.anchor ? t.anchor + at : nullptr, scale, wd, q.hi - q.lo);
    });
    return ok;
  }

  // Reads the pieces as floats, each stripe once for all its parts.
  void load(float* out, const Piece* pieces, size_t np) {
    for_piece_parts(stripes_, pieces, np, false,
                    [&](const Stripes::Part& q) { K().fixed_load(out + q.lo, q_.data() + q.lo, q.hi - q.lo); });
  }
  void load_all(float* out) {
    const Piece all{0, 0, q_.size(), nullptr};
    load(out, &all, 1);
  }

  // The first element outside [-2^62, 2^62] (flat offset), or SIZE_MAX.
  size_t first_out_of_range() const {
    for (size_t i = 0; i < q_.size(); ++i)
      if (q_.data()[i] > kernels::kFixedLimit || q_.data()[i] < -kernels::kFixedLimit) return i;
    return SIZE_MAX;
  }

 private:
  AlignedArray<int64_t> q_;
  Stripes stripes_;
};

}  // namespace gv::detail
