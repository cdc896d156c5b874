// The named tolerances of the model kernels (dense, sparse, softmax,
// logistic, relu): how far an instruction set may differ from the scalar
// reference, and both from a double-precision reference. One place, used by
// the tests and documented in README.md.
//
// Elementwise kernels (relu, relu_backward, sigmoid, the per-element gradient
// of logloss, exp_approx itself) have no tolerance: every instruction set runs
// the same correctly rounded operations in the same order (no FMA in them),
// so they must give the scalar bits.
#pragma once
#include <cfloat>
#include <cmath>
#include <cstddef>

namespace gv::kernels::tol {

// A float reduction of n terms (dot, sparse dot, the sums of softmax and
// logloss, each output of gemv/gemm): SIMD sums in another order and with FMA,
// so it differs from the sequential scalar loop by rounding. Bound, relative
// to the sum of the absolute terms sum|x_i y_i| (not to the result, which may
// cancel to zero):
//     |got - want| <= kReduceFactor * FLT_EPSILON * (sqrt(n) + 1) * sum|terms|
// sqrt(n): rounding errors of random sign grow like a random walk; the factor
// covers the worst of the tests' data with room (measured on AVX2: at most
// 0.07 of the bound; test_model_kernels prints the fractions).
constexpr double kReduceFactor = 4.0;
inline double reduce_bound(size_t n, double sumAbs) {
  return kReduceFactor * FLT_EPSILON * (std::sqrt(static_cast<double>(n)) + 1.0) * sumAbs;
}

// exp_approx (vmath/): the Cephes single-precision polynomial, clamped to
// [kExpLo, kExpHi]. At most kExpMaxUlp units in the last place from the
// correctly rounded exp over that range (the test sweeps every float in it
// with a stride); below kExpLo the result is 0, above kExpHi it is exp(kExpHi).
constexpr float kExpLo = -87.0f;
constexpr float kExpHi = 88.0f;
constexpr unsigned kExpMaxUlp = 2;

// log1p_approx (vmath/, for t in [0, 1]): relative error at most this.
constexpr double kLog1pRel = 4.0 * FLT_EPSILON;

// Softmax probabilities and the cross-entropy gradient p - onehot: absolute
// error per element against the double-precision softmax (p in [0, 1]).
constexpr double kSoftmaxAbs = 2e-6;
// Cross-entropy / log-loss per row: absolute error max(1, |loss|) * this.
constexpr double kLossRel = 2e-6;

}  // namespace gv::kernels::tol
