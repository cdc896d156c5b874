// One optimizer step over a contiguous range: parameters p, optimizer state
// s1/s2 (null when the optimizer keeps none), gradient g. See README.md.
//
// The element formulas are written once (the *_elem functions) and used by
// three callers: the vectorised range loop below, compiled once per
// instruction set by dispatch.cpp (a target attribute on each wrapper,
// auto-vectorised at -O3); the scalar reference (same loop, vectoriser off);
// and the core's per-element atomic path. Only +, -, *, / and sqrt appear and
// the build uses -ffp-contract=off, so all give the same bits.
#pragma once
#include <cmath>
#include <cstddef>

#define GV_INLINE inline __attribute__((always_inline))

namespace gv::kernels {

enum class OptKind : int { Sgd = 0, Adagrad = 1, Rmsprop = 2, Adam = 3 };

struct StepArgs {
  OptKind kind = OptKind::Sgd;
  float lr = 0.01f;        // already multiplied by any staleness scale
  float momentum = 0.f;    // sgd
  bool nesterov = false;   // sgd
  float weightDecay = 0.f;
  bool decoupled = false;  // decay shrinks p directly (AdamW style) instead of adding wd*p to g
  float beta1 = 0.9f, beta2 = 0.999f;  // adam
  float alpha = 0.99f;     // rmsprop smoothing constant
  float eps = 1e-8f;       // adagrad, rmsprop, adam
  float bc1 = 1.f, bc2 = 1.f;  // adam bias corrections 1 - beta^t for this push's step t
};

// State floats per parameter.
inline int state_slots(const StepArgs& a) {
  switch (a.kind) {
    case OptKind::Sgd: return a.momentum != 0.f ? 1 : 0;
    case OptKind::Adagrad: case OptKind::Rmsprop: return 1;
    case OptKind::Adam: return 2;
  }
  return 0;
}

GV_INLINE float decayed_grad(const StepArgs& a, float p, float g) { return a.decoupled ? g : g + a.weightDecay * p; }
// New parameter value from the old one and the optimizer's move.
GV_INLINE float finish(const StepArgs& a, float p, float move) {
  return a.decoupled ? (p - (a.lr * a.weightDecay) * p) + move : p + move;
}

// State transitions: new state from old state and the decayed gradient gg.
GV_INLINE float momentum_next(const StepArgs& a, float v, float gg) { return a.momentum * v + gg; }
GV_INLINE float adagrad_next(float s, float gg) { return s + gg * gg; }
GV_INLINE float rmsprop_next(const StepArgs& a, float s, float gg) { return a.alpha * s + (1.f - a.alpha) * (gg * gg); }
GV_INLINE float adam_m_next(const StepArgs& a, float m, float gg) { return a.beta1 * m + (1.f - a.beta1) * gg; }
GV_INLINE float adam_v_next(const StepArgs& a, float v, float gg) { return a.beta2 * v + (1.f - a.beta2) * (gg * gg); }

// Moves (what finish() adds) from the decayed gradient and the new state.
GV_INLINE float sgd_move(const StepArgs& a, float gg) { return -a.lr * gg; }
GV_INLINE float momentum_move(const StepArgs& a, float gg, float v) {
  return a.nesterov ? -a.lr * (gg + a.momentum * v) : -a.lr * v;
}
GV_INLINE float adaptive_move(const StepArgs& a, float gg, float s) { return -a.lr * gg / (std::sqrt(s) + a.eps); }
GV_INLINE float adam_move(const StepArgs& a, float m, float v) {
  return -a.lr * (m / a.bc1) / (std::sqrt(v / a.bc2) + a.eps);
}

GV_INLINE void step_range(const StepArgs& args, float* __restrict p, float* __restrict s1, float* __restrict s2,
                          const float* __restrict g, size_t n) {
  const StepArgs a = args;  // a local copy: stores through p cannot alias it, so the loops vectorise
  switch (a.kind) {
    case OptKind::Sgd:
      if (a.momentum == 0.f) {
        for (size_t i = 0; i < n; ++i) p[i] = finish(a, p[i], sgd_move(a, decayed_grad(a, p[i], g[i])));
      } else {
        for (size_t i = 0; i < n; ++i) {
          float gg = decayed_grad(a, p[i], g[i]);
          float v = momentum_next(a, s1[i], gg);
          s1[i] = v;
          p[i] = finish(a, p[i], momentum_move(a, gg, v));
        }
      }
      break;
    case OptKind::Adagrad:
      for (size_t i = 0; i < n; ++i) {
        float gg = decayed_grad(a, p[i], g[i]);
        float s = adagrad_next(s1[i], gg);
        s1[i] = s;
        p[i] = finish(a, p[i], adaptive_move(a, gg, s));
      }
      break;
    case OptKind::Rmsprop:
      for (size_t i = 0; i < n; ++i) {
        float gg = decayed_grad(a, p[i], g[i]);
        float s = rmsprop_next(a, s1[i], gg);
        s1[i] = s;
        p[i] = finish(a, p[i], adaptive_move(a, gg, s));
      }
      break;
    case OptKind::Adam:
      for (size_t i = 0; i < n; ++i) {
        float gg = decayed_grad(a, p[i], g[i]);
        float m = adam_m_next(a, s1[i], gg);
        float v = adam_v_next(a, s2[i], gg);
        s1[i] = m;
        s2[i] = v;
        p[i] = finish(a, p[i], adam_move(a, m, v));
      }
      break;
  }
}

}  // namespace gv::kernels
