// Store::create: the configuration checked, the layout laid out, and the
// strategy a mode gets (modes.h).
#include <cmath>

#include "internal.h"
#include "modes.h"

namespace gv {

using detail::kFixedMax;
using detail::kFixedOne;

namespace {

Status config_error(const std::string& field, const std::string& msg) {
  return Status::Error(Code::Config, field + " " + msg, field);
}

bool finite_positive(float x) { return std::isfinite(x) && x > 0.f; }

Status validate(const StoreConfig& c, const std::vector<TensorSpec>& tensors) {
  using kernels::OptKind;
  const kernels::StepArgs& o = c.optimizer;
  if (!finite_positive(o.lr)) return config_error("optimizer.lr", "must be > 0, got " + std::to_string(o.lr));
  if (!(o.momentum >= 0.f && o.momentum < 1.f))
    return config_error("optimizer.momentum", "must be in [0, 1), got " + std::to_string(o.momentum));
  if (!(o.weightDecay >= 0.f && std::isfinite(o.weightDecay)))
    return config_error("optimizer.weightDecay", "must be >= 0, got " + std::to_string(o.weightDecay));
  if (!(o.beta1 >= 0.f && o.beta1 < 1.f)) return config_error("optimizer.beta1", "must be in [0, 1)");
  if (!(o.beta2 >= 0.f && o.beta2 < 1.f)) return config_error("optimizer.beta2", "must be in [0, 1)");
  if (!(o.alpha >= 0.f && o.alpha < 1.f)) return config_error("optimizer.alpha", "must be in [0, 1)");
  if (!finite_positive(o.eps)) return config_error("optimizer.eps", "must be > 0");
  if (o.nesterov && o.momentum == 0.f) return config_error("optimizer.nesterov", "needs momentum > 0");
  if (c.mode == Mode::Deterministic) {
    if (o.kind != OptKind::Sgd || o.momentum != 0.f)
      return config_error("optimizer", "must be plain sgd (no momentum) in mode 'deterministic': a stateful "
                                       "optimizer depends on push order; use mode 'averaging' to apply it at sync points");
    if (o.decoupled && o.weightDecay != 0.f)
      return config_error("optimizer.decoupled", "is not supported in mode 'deterministic'");
    // Refusing or scaling a push by its staleness makes the result depend on
    // when it arrived, not only on the multiset of pushes.
    if (c.stalePolicy != StalePolicy::Accept || c.staleBound != UINT64_MAX)
      return config_error("staleness", "must be 'accept' without a bound in mode 'deterministic': refusing or scaling "
                                       "stale pushes would make the result depend on timing (staleness is still measured)");
  }
  if (c.mode == Mode::Averaging) {
    if (c.stalePolicy != StalePolicy::Accept || c.staleBound != UINT64_MAX)
      return config_error("staleness", "does not apply to mode 'averaging' (pushes are applied at round ends)");
    if (c.syncEvery < 1) return config_error("syncEvery", "must be >= 1");
  }
  if (c.shardFloats < 16 || c.shardFloats % 16) return config_error("shardFloats", "must be a multiple of 16");
  if (tensors.empty()) return config_error("tensors", "must name at least one tensor");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSpec& t = tensors[i];
    std::string f = "tensors." + t.name;
    if (t.name.empty()) return config_error("tensors", "has a tensor with an empty name");
    if (t.name.find('\0') != std::string::npos) return config_error("tensors", "has a tensor name with a NUL character");
    // A checkpoint keeps optimizer state as optimizer.<slot>.<name> and exact
    // values as fixed.<name> beside the parameters, and its header's
    // metadata under __metadata__: a parameter may not take those names
    // (found by fuzz_roundtrip: 'fixed.x' beside 'x' wrote a file that could
    // not be read back).
    if (t.name.rfind("optimizer.", 0) == 0 || t.name.rfind("fixed.", 0) == 0 || t.name.rfind("round.", 0) == 0 ||
        t.name == "__metadata__")
      return config_error(f, "is a name checkpoints reserve (optimizer.*, fixed.*, round.* and __metadata__)");
    for (size_t j = 0; j < i; ++j)
      if (tensors[j].name == t.name) return config_error(f, "is defined twice");
    double size = 1;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] < 0) return config_error(f + ".shape", "has a negative dimension " + std::to_string(t.shape[d]));
      size *= static_cast<double>(t.shape[d]);
    }
    if (size > static_cast<double>(kMaxTensorElements)) return config_error(f + ".shape", "is too large (" + std::to_string(size) + " elements)");
    if (t.init == InitKind::Values && t.values.size() != static_cast<size_t>(size))
      return config_error(f + ".init", "has " + std::to_string(t.values.size()) + " values, expected " +
                                           std::to_string(static_cast<size_t>(size)));
    if (t.init == InitKind::Values) {
      // A NaN or infinity would poison every later step; in deterministic
      // mode a value must also fit the fixed-point range.
      const double limit = c.mode == Mode::Deterministic ? kFixedMax / kFixedOne : INFINITY;
      for (size_t k = 0; k < t.values.size(); ++k) {
        const float v = t.values[k];
        if (std::isfinite(v) && std::fabs(static_cast<double>(v)) < limit) continue;
        const char* what = std::isfinite(v) ? "a value out of the range of mode 'deterministic' (" : "a non-finite value (";
        return config_error(f + ".init", "has " + std::string(what) + std::to_string(v) + ") at index " + std::to_string(k));
      }
    }
    if (t.init == InitKind::Normal && !(t.std >= 0.f && std::isfinite(t.std)))
      return config_error(f + ".std", "must be >= 0");
    // Box-Muller draws stay below 9 standard deviations (53-bit uniforms).
    if (t.init == InitKind::Normal && c.mode == Mode::Deterministic && t.std * 16.0 >= kFixedMax / kFixedOne)
      return config_error(f + ".std", "is too large for the fixed-point range of mode 'deterministic'");
  }
  return Status::Ok();
}

}  // namespace

Status Store::create(const StoreConfig& cfg, std::vector<TensorSpec> tensors, std::shared_ptr<Store>* out) {
  Status s = validate(cfg, tensors);
  if (!s.ok()) return s;
  std::vector<TensorInfo> infos;
  size_t offset = 0;
  for (const TensorSpec& t : tensors) {
    TensorInfo info;
    info.name = t.name;
    info.shape = t.shape;
    info.size = 1;
    for (int64_t d : t.shape) info.size *= static_cast<size_t>(d);
    info.offset = offset;
    offset += (info.size + 15) / 16 * 16;  // each tensor starts on its own 64-byte line
    infos.push_back(std::move(info));
  }
  size_t padded = offset;
  try {
    std::shared_ptr<Store> store;
    switch (cfg.mode) {
      case Mode::Atomic: store = detail::make_atomic(cfg, std::move(infos), padded); break;
      case Mode::Locked: store = detail::make_locked(cfg, std::move(infos), padded); break;
      case Mode::Versioned: store = detail::make_versioned(cfg, std::move(infos), padded); break;
      case Mode::Deterministic: store = detail::make_deterministic(cfg, std::move(infos), padded); break;
      case Mode::Averaging: store = detail::make_averaging(cfg, std::move(infos), padded); break;
      case Mode::Hogwild: store = detail::make_hogwild(cfg, std::move(infos), padded); break;
    }
    store->specs_ = std::move(tensors);
    store->initialize();
    store->remeasure();
    store->specs_.clear();
    store->specs_.shrink_to_fit();
    *out = std::move(store);
  } catch (const std::bad_alloc&) {
    return Status::Error(Code::InvalidArgument, "not enough memory for " + std::to_string(padded * 4) + " bytes of parameters", "tensors");
  }
  return Status::Ok();
}

}  // namespace gv
