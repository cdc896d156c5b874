// Upper bounds on how large any parameter and optimizer state can be, so
// that a push whose result could be non-finite is found before it writes
// anything (issue 10, item 8: finite gradients made the store non-finite).
//
// Checking every push exactly would mean reading the parameters and state
// once more before the write (a second pass over memory, and racy unless
// every stripe were held for the whole push). Instead each push reserves
// its worst case in this ledger, from max |g| (measured by the non-finite
// scan), its learning rate and the optimizer's constants; only when the
// bounds could leave kLimit does the push take the exact path: pushes are
// paused, the step is tried element by element without writing, and the
// ledger is reset to the measured maxima. kLimit = 2^100 leaves a factor of
// 2^28 below FLT_MAX; ordinary training (|lr * g| around 1) needs ~10^30
// pushes to exhaust it, so the exact path is for hostile or diverging runs.
//
// Every bound is order-free: the real order in which concurrent pushes
// reach an element does not matter. State bounds are maxima or sums of
// per-push terms; parameter bounds are p0 + psum + lsum * c(state bound),
// with lsum = sum of the learning rates, so a push's move is bounded by the
// final state bound whatever ran before it. The one exception is coupled
// weight decay, where |g + wd * p| uses the parameter bound at reservation
// time: in-flight pushes can exceed it by their own moves, which the 2^28
// margin covers.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>

#include "../../kernels/optim/step.h"

namespace gv {

class MagnitudeLedger {
 public:
  static constexpr double kLimit = 0x1p100;

  // Exact maxima of |parameters| and of each state slot, measured with no
  // push in flight (creation, load, the exact path).
  void reset(double p, double s1, double s2) {
    std::lock_guard<std::mutex> lk(m_);
    b_ = Bounds{p, 0, 0, s1, s2};
    resets_.fetch_add(1, std::memory_order_relaxed);
  }
  // How many times reset() ran: a reservation made before a reset is no
  // longer counted (reserve_sgd_moves' holders give theirs up).
  uint64_t resets() const { return resets_.load(std::memory_order_relaxed); }

  // Plain sgd (no momentum, no decay): pushes whose |lr * g| sum to at
  // most `moves` move any parameter by at most that much.
  bool reserve_sgd_moves(double moves) {
    if (!(moves >= 0) || !std::isfinite(moves)) return false;
    std::lock_guard<std::mutex> lk(m_);
    Bounds n = b_;
    n.psum += moves;
    if (!(n.p0 + n.psum < kLimit)) return false;
    b_ = n;
    return true;
  }

  // Reserves the worst case of one push of max |g| = maxG with these step
  // arguments (lr already scaled). False: the bounds could leave kLimit, and
  // nothing was reserved (the caller takes the exact path).
  bool reserve(const kernels::StepArgs& a, double maxG) {
    using kernels::OptKind;
    const double lr = a.lr, wd = a.weightDecay;
    // |1 - lr * wd| > 1 grows every parameter geometrically: no bound.
    if (!(lr * wd <= 2.0) || !std::isfinite(maxG)) return false;
    std::lock_guard<std::mutex> lk(m_);
    Bounds n = b_;
    const double gg = maxG + (a.decoupled ? 0.0 : wd * param_bound(a, b_));
    n.lsum += lr;
    switch (a.kind) {
      case OptKind::Sgd:
        // v' = mu v + gg stays within gg / (1 - mu) once v does.
        if (a.momentum == 0.f) n.psum += lr * gg;
        else n.s1 = std::max(n.s1, gg / (1.0 - a.momentum));
        break;
      case OptKind::Adagrad: n.s1 += gg * gg; break;
      case OptKind::Rmsprop: n.s1 = std::max(n.s1, gg * gg); break;
      case OptKind::Adam:
        n.s1 = std::max(n.s1, gg);
        n.s2 = std::max(n.s2, gg * gg);
        break;
    }
    if (!(param_bound(a, n) < kLimit && n.s1 < kLimit && n.s2 < kLimit)) return false;
    b_ = n;
    return true;
  }

 private:
  struct Bounds {
    double p0 = 0, psum = 0, lsum = 0, s1 = 0, s2 = 0;
  };

  // |move| <= lr * c for the optimizer's c (see kernels/optim/step.h):
  // momentum: |v| (or |gg + mu v|) <= (1 + mu) * s1; adagrad and rmsprop:
  // |gg| / (sqrt(s') + eps) <= 1 / sqrt(1 - alpha) since s' >= (1 - alpha) gg^2
  // (the 1.001 covers rounding; when gg^2 underflows, |gg| < 1.1e-19 bounds
  // it by 1.1e-19 / eps); adam: |m / bc1| / (sqrt(v / bc2) + eps) <= s1 /
  // ((1 - beta1) eps), as bc1 >= 1 - beta1. Decay (decoupled, or coupled in
  // plain sgd) multiplies p by 1 - lr * wd, within [-1, 1] here.
  static double param_bound(const kernels::StepArgs& a, const Bounds& b) {
    using kernels::OptKind;
    const double eps = a.eps;
    double c = 0;
    switch (a.kind) {
      case OptKind::Sgd: c = a.momentum == 0.f ? 0.0 : (1.0 + a.momentum) * b.s1; break;
      case OptKind::Adagrad: c = std::max(1.001, 1.1e-19 / eps); break;
      case OptKind::Rmsprop: c = std::max(1.001, 1.1e-19 / eps) / std::sqrt(1.0 - a.alpha); break;
      case OptKind::Adam: c = b.s1 / ((1.0 - a.beta1) * eps) * 1.001; break;
    }
    return b.p0 + b.psum + b.lsum * c;
  }

  std::mutex m_;
  Bounds b_;
  std::atomic<uint64_t> resets_{0};
};

// Whether one optimizer step from (p, s1, s2) with gradient g keeps every
// value finite, tried without writing: the exact path's check. Index of
// the first element that would not, or n.
inline size_t first_non_finite_step(const kernels::StepArgs& a, const float* p, const float* s1, const float* s2,
                                    const float* g, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    float pp = p[i], v1 = s1 ? s1[i] : 0.f, v2 = s2 ? s2[i] : 0.f;
    kernels::step_range(a, &pp, s1 ? &v1 : nullptr, s2 ? &v2 : nullptr, g + i, 1);
    if (!std::isfinite(pp) || !std::isfinite(v1) || !std::isfinite(v2)) return i;
  }
  return n;
}

}  // namespace gv
