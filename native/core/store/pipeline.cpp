// The push pipeline every strategy shares (store.h): the quiescence gate,
// the checks that come before any write, staleness, the magnitude ledger's
// fast and exact paths, snapshots, stats and the checkpoint image.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "../../kernels/update/scalar.h"
#include "../random.h"
#include "internal.h"

namespace gv {

using detail::K;
using detail::t_published_version;

template <class T>
AlignedArray<T>::AlignedArray(size_t n) : n_(n) {
  if (n == 0) return;
  size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
  p_ = static_cast<T*>(std::aligned_alloc(64, bytes));
  if (!p_) throw std::bad_alloc();
  std::memset(p_, 0, bytes);
}
template <class T>
AlignedArray<T>::~AlignedArray() {
  std::free(p_);
}
template <class T>
AlignedArray<T>& AlignedArray<T>::operator=(AlignedArray&& o) noexcept {
  if (this != &o) {
    std::free(p_);
    p_ = o.p_;
    n_ = o.n_;
    o.p_ = nullptr;
    o.n_ = 0;
  }
  return *this;
}
template class AlignedArray<float>;
template class AlignedArray<int64_t>;


// ---------------------------------------------------------------- Store

static std::atomic<uint64_t> g_next_id{1};

Store::Store(const StoreConfig& cfg, std::vector<TensorInfo> tensors, size_t padded)
    : cfg_(cfg), tensors_(std::move(tensors)), padded_(padded), id_(g_next_id.fetch_add(1)) {
  lr_.store(cfg.optimizer.lr, std::memory_order_relaxed);
}

Store::~Store() = default;

int64_t Store::find(const std::string& name) const {
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (tensors_[i].name == name) return static_cast<int64_t>(i);
  return -1;
}

kernels::StepArgs Store::step_args(uint64_t t, float lrDivisor, float lr) const {
  kernels::StepArgs a = cfg_.optimizer;
  if (std::isnan(lr)) lr = learning_rate();
  // A true division: 'scale' promises lr / (1 + staleness), and lr * (1 / (1 + s))
  // differs from it in the last bit for most lr (0.1 / 3, 0.3 / 3, ...).
  a.lr = lrDivisor == 1.f ? lr : lr / lrDivisor;
  if (a.kind == kernels::OptKind::Adam) {
    a.bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(a.beta1), static_cast<double>(t)));
    a.bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(a.beta2), static_cast<double>(t)));
  }
  return a;
}

void Store::fill_initial(float* params) const {
  for (size_t t = 0; t < specs_.size(); ++t) {
    const TensorSpec& s = specs_[t];
    float* p = params + tensors_[t].offset;
    size_t n = tensors_[t].size;
    SplitMix64 rng(cfg_.seed * 0x9E3779B97F4A7C15ull + t + 1);
    switch (s.init) {
      case InitKind::Zeros: break;
      case InitKind::Values:
        if (n) std::memcpy(p, s.values.data(), n * sizeof(float));  // an empty tensor's values may be null
        break;
      case InitKind::Glorot: {
        // Uniform(-l, l), l = sqrt(6 / (fan_in + fan_out)); fan_out is the last
        // dimension, fan_in the product of the others (W is [inputs, outputs]).
        double fanOut = s.shape.empty() ? 1.0 : static_cast<double>(s.shape.back());
        double fanIn = s.shape.size() <= 1 ? fanOut : static_cast<double>(n) / fanOut;
        double limit = std::sqrt(6.0 / std::max(1.0, fanIn + fanOut));
        for (size_t i = 0; i < n; ++i) p[i] = static_cast<float>((2.0 * rng.uniform() - 1.0) * limit);
        break;
      }
      case InitKind::Normal:
        for (size_t i = 0; i < n; ++i) p[i] = static_cast<float>(rng.normal() * s.std);
        break;
    }
  }
}

Status Store::make_pieces(const Grad* grads, size_t n, bool forPush, std::vector<Piece>* pieces, bool* sparse) const {
  *sparse = false;
  pieces->clear();
  for (size_t i = 0; i < n; ++i) {
    const Grad& g = grads[i];
    const TensorInfo& t = tensors_[g.tensor];
    if (!g.rows) {
      pieces->push_back({static_cast<uint32_t>(i), t.offset, t.size, g.data});
      continue;
    }
    *sparse = true;
    auto bad = [&](const std::string& why) {
      Status s = Status::Error(Code::InvalidArgument, std::string(forPush ? "row-sparse gradient" : "row read") + " of '" + t.name + "': " + why, "rows");
      s.tensor = g.tensor;
      return s;
    };
    if (forPush && !rows_exact())
      return bad("needs an optimizer whose step on a zero gradient changes nothing (plain sgd or adagrad, no weight decay)");
    if (g.width == 0 || t.size % g.width) return bad("width " + std::to_string(g.width) + " does not divide the tensor");
    const size_t rowCount = t.size / g.width;
    // One pass: check each row (ascending, unique, in range) and merge runs
    // of consecutive rows into one piece.
    for (size_t r = 0; r < g.nrows;) {
      if (g.rows[r] >= rowCount || (r > 0 && g.rows[r] <= g.rows[r - 1]))
        return bad("rows must be ascending, unique and < " + std::to_string(rowCount) + " (row " + std::to_string(g.rows[r]) +
                   " at " + std::to_string(r) + ")");
      size_t e = r + 1;
      while (e < g.nrows && g.rows[e] == g.rows[e - 1] + 1) ++e;
      const size_t at = size_t{g.rows[r]} * g.width;
      pieces->push_back({static_cast<uint32_t>(i), t.offset + at, (e - r) * g.width, g.data ? g.data + at : nullptr});
      r = e;
    }
  }
  return Status::Ok();
}

namespace {
size_t gate_slot() {
  static std::atomic<size_t> next{0};
  static thread_local const size_t slot = next.fetch_add(1, std::memory_order_relaxed) % Store::kGateCount;
  return slot;
}
}  // namespace

void Store::pause() { gate_.close(); }

void Store::resume() { gate_.open(); }

void Store::size_image(StateImage* out) const {
  out->params.resize(padded_);
  if (state_slots() >= 1) out->s1.resize(padded_);
  if (state_slots() >= 2) out->s2.resize(padded_);
}

Status Store::export_state(StateImage* out) {
  *out = StateImage{};
  // Everything the copy needs is allocated before the gate closes: an
  // allocation failure then leaves pushes running (a failure with the gate
  // closed would block every later push for good).
  try {
    size_image(out);
  } catch (const std::bad_alloc&) {
    *out = StateImage{};
    return Status::Error(Code::Internal, "not enough memory to copy the store's state for a checkpoint", "state");
  }
  // No sync() here: closing averaging's round early or moving deterministic's
  // decay anchor would make a save change what training computes.
  if (cfg_.mode == Mode::Versioned && state_slots() == 0) return export_locked(out);  // a pinned version is a point in time already
  const auto t0 = std::chrono::steady_clock::now();
  Status s;
  {
    Paused held(this);  // reopened however this scope ends
    out->version = version();  // no push is in flight: the counters match the copy
    out->step = steps_.load(std::memory_order_relaxed);
    s = export_locked(out);  // versioned overwrites version with its pinned one
  }
  out->pauseSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!s.ok()) *out = StateImage{};
  return s;
}

Status Store::import_state(const StateImage& in) {
  if (in.params.size() != padded_) return Status::Error(Code::InvalidArgument, "state image of another layout", "state");
  const int slots = state_slots();
  if ((slots >= 1 && !in.s1.empty() && in.s1.size() != padded_) || (slots >= 2 && !in.s2.empty() && in.s2.size() != padded_))
    return Status::Error(Code::InvalidArgument, "optimizer state of another layout", "state");
  Paused held(this);
  Status s = import_locked(in);
  if (s.ok()) {
    version_.store(in.version, std::memory_order_release);
    steps_.store(in.step, std::memory_order_relaxed);
  }
  remeasure();
  return s;
}

Status Store::push(const Grad* grads, size_t n, int64_t basedOn, PushResult* out, float lr) {
  *out = PushResult{};
  // The quiescence gate (checkpoints; gate.h): waits while pause() holds it.
  GateSlot slot{gate_.enter(gate_slot())};
  // Shapes and duplicates: a push names each tensor at most once.
  uint64_t seen = 0;
  std::vector<bool> seenMany;
  if (tensors_.size() > 64) seenMany.assign(tensors_.size(), false);
  for (size_t i = 0; i < n; ++i) {
    const Grad& g = grads[i];
    if (g.tensor >= tensors_.size()) {
      Status s = Status::Error(Code::InvalidArgument, "unknown tensor index " + std::to_string(g.tensor), "grads");
      return s;
    }
    const TensorInfo& t = tensors_[g.tensor];
    bool dup = tensors_.size() > 64 ? seenMany[g.tensor] : ((seen >> g.tensor) & 1);
    if (dup) {
      Status s = Status::Error(Code::InvalidArgument, "tensor '" + t.name + "' appears twice in one push", "grads");
      s.tensor = g.tensor;
      return s;
    }
    if (tensors_.size() > 64) seenMany[g.tensor] = true; else seen |= 1ull << g.tensor;
    if (g.size != t.size) {
      Status s = Status::Error(Code::Shape, "gradient for '" + t.name + "' has " + std::to_string(g.size) +
                                                " elements, expected " + std::to_string(t.size));
      s.tensor = g.tensor;
      return s;
    }
  }
  bool sparse = false;
  thread_local std::vector<Piece> pieces;
  Status ps = make_pieces(grads, n, true, &pieces, &sparse);
  if (!ps.ok()) return ps;
  // Non-finite values are found before anything is touched; the same pass
  // measures max |g| for the fixed-point modes' range checks.
  float maxAbsSmall[8];
  std::vector<float> maxAbsMany;
  float* maxAbs = maxAbsSmall;
  if (n > 8) maxAbsMany.resize(n);
  if (n > 8) maxAbs = maxAbsMany.data();
  for (size_t i = 0; i < n; ++i) maxAbs[i] = 0.f;
  for (const Piece& p : pieces) {
    // Row-sparse pushes bring many short pieces: those skip the indirect call.
    kernels::scalar::ScanResult r = p.len < 16 ? kernels::scalar::scan(p.g, p.len) : K().scan(p.g, p.len);
    maxAbs[p.grad] = std::max(maxAbs[p.grad], r.maxAbs);
    size_t bad = r.firstNonFinite;
    if (bad < p.len) {
      if (cfg_.nonFinite == NonFinitePolicy::Skip) {
        skippedNonFinite_.add(1);
        out->reason = SkipReason::NonFinite;
        out->version = version();
        return Status::Ok();
      }
      const Grad& g = grads[p.grad];
      const TensorInfo& t = tensors_[g.tensor];
      const size_t index = p.offset - t.offset + bad;
      Status s = Status::Error(Code::NonFinite, "gradient for '" + t.name + "' has a non-finite value (" +
                                                    std::to_string(p.g[bad]) + ") at index " + std::to_string(index));
      s.tensor = g.tensor;
      s.index = static_cast<int64_t>(index);
      return s;
    }
  }
  // Staleness.
  uint64_t now = version();
  float lrDivisor = 1.f;
  if (basedOn >= 0) {
    if (static_cast<uint64_t>(basedOn) > now)
      return Status::Error(Code::InvalidArgument,
                           "basedOn " + std::to_string(basedOn) + " is ahead of the store's version " +
                               std::to_string(now) + " (a snapshot of another store?)",
                           "basedOn");
    uint64_t st = now - static_cast<uint64_t>(basedOn);
    out->staleness = st;
    staleCount_.add(1);
    staleSum_.add(st);
    staleHist_[stale_bucket(st)].add(1);
    raise_stale_max(st);
    // 'reject' without a bound refuses every stale push; with one it is the
    // bound, as for the other policies.
    const uint64_t bound =
        cfg_.stalePolicy == StalePolicy::Reject && cfg_.staleBound == UINT64_MAX ? 0 : cfg_.staleBound;
    if (st > bound) {
      rejectedStale_.add(1);
      out->reason = SkipReason::Stale;
      out->version = now;
      return Status::Ok();
    }
    if (cfg_.stalePolicy == StalePolicy::Scale) lrDivisor = 1.f + static_cast<float>(st);
  }
  // Averaging steps once per round, at the round's close; every other mode once per push.
  kernels::StepArgs args = step_args(cfg_.mode == Mode::Averaging ? 0 : next_step(), lrDivisor, lr);
  return step_checked(grads, n, pieces.data(), pieces.size(), sparse, args, maxAbs, slot, out);
}

Status Store::step_checked(const Grad* grads, size_t n, const Piece* pieces, size_t np, bool sparse,
                           const kernels::StepArgs& args, const float* maxAbs, GateSlot& slot, PushResult* out) {
  auto applied = [&] {
    pushes_.add(1);
    out->applied = true;
    // Release pairs with the acquire in version(): whoever reads the new
    // version also sees this push's writes (for modes that write in place).
    out->version = counts_version_itself() ? t_published_version : version_.fetch_add(1, std::memory_order_acq_rel) + 1;
    return Status::Ok();
  };
  double maxG = 0;
  for (size_t i = 0; i < n; ++i) maxG = std::max(maxG, static_cast<double>(maxAbs[i]));
  if (!uses_ledger() || ledger_.reserve(args, maxG)) {
    Status s = apply(grads, n, pieces, np, sparse, args, maxAbs);
    return s.ok() ? applied() : s;
  }
  // The exact path: no other push runs while this one is tried without
  // writing, applied only if every value stays finite, and measured.
  slot.leave();
  Paused held(this);
  const size_t bad = dry_run(pieces, np, args);
  if (bad != SIZE_MAX) {
    if (cfg_.nonFinite == NonFinitePolicy::Skip) {
      skippedNonFinite_.add(1);
      out->reason = SkipReason::NonFinite;
      out->version = version();
      return Status::Ok();
    }
    size_t t = 0;
    while (t + 1 < tensors_.size() && tensors_[t + 1].offset <= bad) ++t;
    const size_t index = bad - tensors_[t].offset;
    Status s = Status::Error(Code::NonFinite, "the step of this push would make '" + tensors_[t].name + "' at index " +
                                                  std::to_string(index) +
                                                  " non-finite (the gradient is finite, the result overflows); the store is unchanged");
    s.tensor = static_cast<int64_t>(t);
    s.index = static_cast<int64_t>(index);
    return s;
  }
  Status s = apply(grads, n, pieces, np, sparse, args, maxAbs);
  remeasure();
  return s.ok() ? applied() : s;
}

void Store::raise_stale_max(uint64_t s) {
  uint64_t m = staleMax_.load(std::memory_order_relaxed);
  while (s > m && !staleMax_.compare_exchange_weak(m, s, std::memory_order_relaxed)) {
  }
}

void Store::SampleHold::enter() {
  if (!slot_.slot) slot_.slot = s_.gate_.enter(gate_slot());
}

void Store::commit_samples(SampleTally& t) {
  if (t.applied) {
    steps_.fetch_add(t.applied, std::memory_order_relaxed);
    pushes_.add(t.applied);
    staleCount_.add(t.applied);
    staleSum_.add(t.stalenessSum);
    for (int i = 0; i < kStaleBuckets; ++i)
      if (t.histogram[i]) staleHist_[i].add(t.histogram[i]);
    raise_stale_max(t.stalenessMax);
    if (t.conflicts) conflicts_.add(t.conflicts);
    // Release, after the writes it counts (as step_checked's increment).
    version_.fetch_add(t.applied, std::memory_order_acq_rel);
  }
  t = SampleTally{};
}

bool Store::rows_exact() const {
  const kernels::StepArgs& o = cfg_.optimizer;
  return o.weightDecay == 0.f && ((o.kind == kernels::OptKind::Sgd && o.momentum == 0.f) || o.kind == kernels::OptKind::Adagrad);
}

uint64_t Store::snapshot(float* out) {
  snapshots_.add(1);
  thread_local std::vector<Piece> pieces;
  pieces.clear();
  for (size_t t = 0; t < tensors_.size(); ++t) pieces.push_back({static_cast<uint32_t>(t), tensors_[t].offset, tensors_[t].size, nullptr});
  return read(out, pieces.data(), pieces.size(), false);
}

Status Store::snapshot_rows(const Grad* req, size_t n, float* out, uint64_t* version) {
  for (size_t i = 0; i < n; ++i)
    if (req[i].tensor >= tensors_.size())
      return Status::Error(Code::InvalidArgument, "unknown tensor index " + std::to_string(req[i].tensor), "rows");
  thread_local std::vector<Piece> pieces;
  bool sparse = false;
  Status s = make_pieces(req, n, false, &pieces, &sparse);
  if (!s.ok()) return s;
  snapshots_.add(1);
  *version = read(out, pieces.data(), pieces.size(), sparse);
  return Status::Ok();
}

Stats Store::stats() const {
  Stats s;
  s.version = version();
  s.pushes = pushes_.get();
  s.rejectedStale = rejectedStale_.get();
  s.skippedNonFinite = skippedNonFinite_.get();
  s.conflicts = conflicts_.get();
  s.snapshots = snapshots_.get();
  s.stalenessCount = staleCount_.get();
  s.stalenessSum = staleSum_.get();
  s.stalenessMax = staleMax_.load(std::memory_order_relaxed);
  for (int i = 0; i < kStaleBuckets; ++i) s.stalenessHistogram[i] = staleHist_[i].get();
  s.bytes = padded_ * sizeof(float) * (1 + state_slots()) + extra_bytes();
  add_stats(s);
  return s;
}

void clear_padding(const Store& s, float* out) {
  for (size_t i = 0; i < s.tensor_count(); ++i) {
    const TensorInfo& t = s.tensor(i);
    const size_t end = i + 1 < s.tensor_count() ? s.tensor(i + 1).offset : s.padded_floats();
    std::memset(out + t.offset + t.size, 0, (end - t.offset - t.size) * sizeof(float));
  }
}

std::string model_text(const ModelInfo& m) {
  if (!m.known()) return "unknown";
  std::string r = m.kind, opts;
  auto add = [&](const std::string& k, const std::string& v) { opts += (opts.empty() ? "" : ", ") + k + " " + v; };
  if (!m.hidden.empty()) {
    std::string h;
    for (uint32_t w : m.hidden) h += (h.empty() ? "" : ", ") + std::to_string(w);
    add("hidden", "[" + h + "]");
  }
  if (m.rank) add("rank", std::to_string(m.rank));
  if (m.kind == "mf") add("biases", m.biases ? "true" : "false");
  for (auto [k, v] : {std::pair{"features", m.features}, std::pair{"classes", m.classes}, std::pair{"users", m.users}, std::pair{"items", m.items}})
    if (v) add(k, std::to_string(v));
  if (!m.scaler.empty()) opts += opts.empty() ? "standardized" : ", standardized";
  return opts.empty() ? r : r + " (" + opts + ")";
}

Status Store::set_model(const ModelInfo& m) {
  std::lock_guard<std::mutex> g(modelMu_);
  if (model_.known() && m.known()) {
    ModelInfo a = model_, b = m;
    a.l2 = b.l2 = 0.f;  // a training setting: the latest run's
    if (!a.scaler.empty() && !b.scaler.empty() && !(a.scaler == b.scaler)) {
      a.scaler = b.scaler;
      if (a == b)
        return Status::Error(Code::Config,
                             "the store holds the parameters of model " + model_text(model_) +
                                 " trained on data standardized with another scaler: standardize this data with the store's scaler "
                                 "(dataset.standardize(store.scaler)), or use another store",
                             "model");
    }
    if (!(a == b))
      return Status::Error(Code::Config,
                           "the store holds the parameters of model " + model_text(model_) + ", not " + model_text(m) +
                               ": train it as its own model, or use another store",
                           "model");
  }
  model_ = m;
  return Status::Ok();
}

}  // namespace gv
