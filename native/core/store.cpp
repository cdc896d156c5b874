#include "store.h"

#include <chrono>
#include <cmath>
#include <thread>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "../kernels/dispatch.h"
#include "../kernels/update/scalar.h"
#include "stripes.h"
#include "versions.h"
#include "random.h"

namespace gv {

// ---------------------------------------------------------------- helpers

const char* code_name(Code c) {
  switch (c) {
    case Code::Ok: return "OK";
    case Code::Config: return "ERR_CONFIG";
    case Code::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case Code::Shape: return "ERR_SHAPE";
    case Code::NonFinite: return "ERR_NON_FINITE";
    case Code::Overflow: return "ERR_OVERFLOW";
    case Code::Closed: return "ERR_CLOSED";
    case Code::DataFormat: return "ERR_DATA_FORMAT";
    case Code::NotFound: return "ERR_NOT_FOUND";
    case Code::Io: return "ERR_IO";
    case Code::Internal: return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

static const char* kModeNames[] = {"atomic", "locked", "versioned", "deterministic", "averaging", "hogwild"};

const char* mode_name(Mode m) { return kModeNames[static_cast<int>(m)]; }

bool parse_mode(const std::string& s, Mode* out) {
  for (int i = 0; i < 6; ++i)
    if (s == kModeNames[i]) {
      *out = static_cast<Mode>(i);
      return true;
    }
  return false;
}

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

static const kernels::Table& K() { return kernels::active(); }

// The copy a snapshot of `padded` floats uses: streaming stores for large
// stores (the destination is fresh or recycled memory that the reader will
// walk once; for 40 MB this is 0.63 -> 1.0 of the JS copy's speed here).
static auto snapshot_copy(size_t padded) {
  return padded * sizeof(float) >= kernels::kStreamBytes ? K().copy_stream : K().copy;
}

// The version VersionedStore::apply just published on this thread, which
// push() returns: version() may already be a later writer's.
static thread_local uint64_t t_published_version = 0;

// Q32.32 fixed point (kernels/fixed): exact, associative integer sums for
// deterministic parameters and the averaging accumulator.
using kernels::kFixedOne;
constexpr double kFixedMax = static_cast<double>(kernels::kFixedLimit);  // 2^62 in Q32.32: a value of 2^30

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

void Store::pause() {
  pauseMu_.lock();
  paused_.store(true, std::memory_order_seq_cst);
  for (size_t k = 0; k < kGates; ++k)
    for (unsigned spins = 0; gates_[k].inFlight.load(std::memory_order_seq_cst) != 0; ++spins)
      if (spins > 64) std::this_thread::yield();
}

void Store::resume() {
  paused_.store(false, std::memory_order_release);
  pauseMu_.unlock();
}

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
  // The quiescence gate (checkpoints): announce this push, then check the
  // gate (seq_cst both, as pause() does the reverse).
  Gate& gate = gates_[gate_slot()];
  for (;;) {
    gate.inFlight.fetch_add(1, std::memory_order_seq_cst);
    if (!paused_.load(std::memory_order_seq_cst)) break;
    gate.inFlight.fetch_sub(1, std::memory_order_release);
    while (paused_.load(std::memory_order_acquire)) std::this_thread::yield();
  }
  GateSlot slot{&gate};
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
    uint64_t m = staleMax_.load(std::memory_order_relaxed);
    while (st > m && !staleMax_.compare_exchange_weak(m, st, std::memory_order_relaxed)) {
    }
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

// ---------------------------------------------------------------- modes

namespace {

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
void export_float(const FloatState& st, size_t padded, StateImage* out) {
  if (padded == 0) return;
  std::memcpy(out->params.data(), st.params.data(), padded * sizeof(float));
  if (!st.s1.empty()) std::memcpy(out->s1.data(), st.s1.data(), padded * sizeof(float));
  if (!st.s2.empty()) std::memcpy(out->s2.data(), st.s2.data(), padded * sizeof(float));
}

Status import_float(FloatState& st, size_t padded, const StateImage& in) {
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
size_t dry_run_pieces(const float* p, const float* s1, const float* s2, const Piece* pieces, size_t np, const kernels::StepArgs& a) {
  for (size_t i = 0; i < np; ++i) {
    const size_t o = pieces[i].offset;
    const size_t k = first_non_finite_step(a, p + o, s1 ? s1 + o : nullptr, s2 ? s2 + o : nullptr, pieces[i].g, pieces[i].len);
    if (k < pieces[i].len) return o + k;
  }
  return SIZE_MAX;
}

double max_abs(const AlignedArray<float>& a) { return a.empty() ? 0.0 : K().scan(a.data(), a.size()).maxAbs; }

void measure_arrays(const AlignedArray<float>& p, const AlignedArray<float>& s1, const AlignedArray<float>& s2, double* mp,
                    double* m1, double* m2) {
  *mp = max_abs(p), *m1 = max_abs(s1), *m2 = max_abs(s2);
}

size_t dry_run_float(FloatState& st, const Piece* pieces, size_t np, const kernels::StepArgs& a) {
  return dry_run_pieces(st.params.data(), st.s1_at(0), st.s2_at(0), pieces, np, a);
}
void measure_float(const FloatState& st, double* p, double* s1, double* s2) { measure_arrays(st.params, st.s1, st.s2, p, s1, s2); }

bool plain_sgd(const kernels::StepArgs& a) {
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
void walk_stripes(size_t floatsPerStripe, const Piece* p, size_t np, Enter&& enter, Leave&& leave, F&& f) {
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

// ---- atomic and locked: writers own one stripe at a time (stripes.h) and
// step it with the SIMD kernels, so a parameter and its optimizer state
// change together and no update is lost. They differ in their readers:
// atomic snapshots take no lock (a reader never waits; each element is one
// value some push wrote), locked snapshots take each stripe's lock (each
// stripe is consistent).
#if defined(GV_TSAN)
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif

// f(part) for the stripe parts of pieces, each stripe held once (Stripes::for_parts).
template <class F>
void for_piece_parts(Stripes& st, const Piece* pieces, size_t np, bool staggered, F&& f) {
  st.for_parts(np, [&](size_t i) { return pieces[i].offset; }, [&](size_t i) { return pieces[i].len; }, staggered, f);
}

template <bool LockedReads>
class StripedStore final : public Store {
 public:
  StripedStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    st_.allocate(padded_, state_slots());
    fill_initial(st_.params.data());
    stripes_ = Stripes(padded_, cfg_.shardFloats);
  }

 protected:
  // Each stripe a push touches is held once for all of its parts (a weight
  // and its bias in one stripe change together).
  Status apply(const Grad*, size_t, const Piece* pieces, size_t np, bool sparse, const kernels::StepArgs& a,
               const float*) override {
    for_piece_parts(stripes_, pieces, np, !sparse, [&](const Stripes::Part& q) {
      const Piece& p = pieces[q.piece];
      step_range(st_, a, q.lo, p.g + (q.lo - p.offset), q.hi - q.lo);
    });
    return Status::Ok();
  }
  // The version is read before the copy: every push it counts had finished
  // writing, so the copy holds all of them (a push still in flight may show
  // in part, per element or per stripe, and is not counted).
  uint64_t read(float* out, const Piece* pieces, size_t np, bool sparse) override {
    uint64_t v = version();
    const auto copy = snapshot_copy(padded_);
    // Under ThreadSanitizer atomic reads take the stripe locks too: the
    // lock-free read is a benign race by design (TSan cannot judge it, and a
    // suppression would need the reader's stack, which TSan sometimes cannot
    // restore), while what TSan can check, that writers exclude each other,
    // stays checked.
    if (LockedReads || kTsan) {
      // Each stripe once for all its parts, so a stripe is consistent across tensors.
      for_piece_parts(stripes_, pieces, np, false, [&](const Stripes::Part& q) {
        if (q.hi - q.lo < 16)
          for (size_t k = q.lo; k < q.hi; ++k) out[k] = st_.params.data()[k];
        else
          copy(out + q.lo, st_.params.data() + q.lo, q.hi - q.lo);
      });
    } else {
      lock_free_copy(out, pieces, np, copy);
    }
    return v;
  }
  // Aligned 4-byte elements are written and read whole by SIMD loads and
  // stores on x86-64 and AArch64, so each element read is a value some push
  // wrote; in C++ terms this read races with the owner's plain stores, as a
  // hogwild read does (tsan.supp names this function).
  GV_NO_TSAN void lock_free_copy(float* out, const Piece* pieces, size_t np, void (*copy)(float*, const float*, size_t)) {
    copy_pieces(out, st_.params.data(), pieces, np, copy);
  }
  uint64_t extra_bytes() const override { return stripes_.bytes(); }
  bool uses_ledger() const override { return true; }
  size_t dry_run(const Piece* p, size_t np, const kernels::StepArgs& a) override { return dry_run_float(st_, p, np, a); }
  void measure(double* p, double* s1, double* s2) override { measure_float(st_, p, s1, s2); }
  Status export_locked(StateImage* out) override {
    export_float(st_, padded_, out);
    return Status::Ok();
  }
  Status import_locked(const StateImage& in) override { return import_float(st_, padded_, in); }

 private:
  FloatState st_;
  Stripes stripes_;
};
using AtomicStore = StripedStore<false>;
using LockedStore = StripedStore<true>;

// ---- hogwild: racy in-place writes, for sparse problems and as the speed
// reference. Overlapping writers on a stripe are detected with one counter
// per stripe and counted as conflicts (each one a possible lost update).
class HogwildStore final : public Store {
 public:
  HogwildStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    st_.allocate(padded_, state_slots());
    fill_initial(st_.params.data());
    stripes_ = Stripes(padded_, cfg_.shardFloats);
    writers_ = std::make_unique<Writers[]>(stripes_.count());
  }

 protected:
  struct alignas(64) Writers {
    std::atomic<uint32_t> n{0};
  };
  GV_NO_TSAN Status apply(const Grad*, size_t, const Piece* pieces, size_t np, bool sparse,
                          const kernels::StepArgs& a, const float*) override {
    uint64_t overlaps = 0;
    auto enter = [&](size_t st) {
      if (writers_[st].n.fetch_add(1, std::memory_order_relaxed) != 0) ++overlaps;
    };
    auto leave = [&](size_t st) { writers_[st].n.fetch_sub(1, std::memory_order_relaxed); };
    auto step = [&](const Piece& p, size_t lo, size_t hi) { step_range(st_, a, lo, p.g + (lo - p.offset), hi - lo); };
    if (sparse) {
      walk_stripes(stripes_.floats(), pieces, np, enter, leave, step);
    } else {
      for (size_t i = 0; i < np; ++i)
        stripes_.visit(pieces[i].offset, pieces[i].len, [&](size_t st, size_t lo, size_t hi) {
          enter(st);
          step(pieces[i], lo, hi);
          leave(st);
        });
    }
    if (overlaps) conflicts_.add(overlaps);
    return Status::Ok();
  }
  GV_NO_TSAN uint64_t read(float* out, const Piece* pieces, size_t np, bool) override {
    uint64_t v = version();
    copy_pieces(out, st_.params.data(), pieces, np, snapshot_copy(padded_));
    return v;
  }
  uint64_t extra_bytes() const override { return stripes_.count() * sizeof(Writers); }
  const float* racy_view() override { return st_.params.data(); }
  bool uses_ledger() const override { return true; }
  GV_NO_TSAN size_t dry_run(const Piece* p, size_t np, const kernels::StepArgs& a) override { return dry_run_float(st_, p, np, a); }
  GV_NO_TSAN void measure(double* p, double* s1, double* s2) override { measure_float(st_, p, s1, s2); }
  Status export_locked(StateImage* out) override {
    export_float(st_, padded_, out);
    return Status::Ok();
  }
  Status import_locked(const StateImage& in) override { return import_float(st_, padded_, in); }

 private:
  FloatState st_;
  Stripes stripes_;
  std::unique_ptr<Writers[]> writers_;
};

// ---- fixed-point accumulation shared by deterministic (parameters) and
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
  Stripes& stripes() { return stripes_; }
  size_t bytes() const { return q_.size() * sizeof(int64_t) + stripes_.bytes(); }

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

// ---- versioned: copy-on-write versions published with one atomic pointer
// (detail::VersionPool, versions.h: the protocol, and why it is safe).
// Writers are serialised by writer_; each builds the next version in a
// recycled buffer and publishes it. Buffers are freed only with the store.
class VersionedStore final : public Store {
 public:
  VersionedStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    if (state_slots() >= 1) s1_ = AlignedArray<float>(padded_);
    if (state_slots() >= 2) s2_ = AlignedArray<float>(padded_);
    fill_initial(versions_.init(padded_)->data.data());
  }

  // Test hook: how many buffers exist (bounded by pinned readers + 2).
  size_t pool_size() const { return versions_.size(); }

 protected:
  using Pool = detail::VersionPool<AlignedArray<float>>;
  using Version = Pool::Slot;

  bool counts_version_itself() const override { return true; }

  Version* pin() { return versions_.pin(); }
  static void unpin(Version* v) { Pool::unpin(v); }

  Status apply(const Grad* grads, size_t n, const Piece* pieces, size_t np, bool sparse, const kernels::StepArgs& base,
               const float*) override {
    std::lock_guard<std::mutex> lk(writer_);
    const kernels::StepArgs& a = base;
    Version* cur = versions_.current();
    Version* next = versions_.recycle(cur, padded_);
    // Tensors without a gradient are copied; pushed ones are copied and
    // stepped in one pass where the optimizer allows it. Row-sparse pushes
    // copy everything, then step their rows.
    std::vector<const float*> gradOf(tensors_.size(), nullptr);
    if (!sparse)
      for (size_t i = 0; i < n; ++i) gradOf[grads[i].tensor] = grads[i].data;
    for (size_t t = 0; t < tensors_.size(); ++t) {
      const TensorInfo& ti = tensors_[t];
      float* dst = next->data.data() + ti.offset;
      const float* src = cur->data.data() + ti.offset;
      if (!gradOf[t]) {
        K().copy(dst, src, ti.size);
      } else if (plain_sgd(a)) {
        K().axpby(dst, src, gradOf[t], -a.lr, 1.f, ti.size);
      } else {
        K().copy(dst, src, ti.size);
        K().step(a, dst, s1_.empty() ? nullptr : s1_.data() + ti.offset,
                 s2_.empty() ? nullptr : s2_.data() + ti.offset, gradOf[t], ti.size);
      }
    }
    for (size_t i = 0; sparse && i < np; ++i) {
      const Piece& p = pieces[i];
      float* dst = next->data.data() + p.offset;
      if (plain_sgd(a)) K().axpby(dst, dst, p.g, -a.lr, 1.f, p.len);
      else K().step(a, dst, s1_.empty() ? nullptr : s1_.data() + p.offset, s2_.empty() ? nullptr : s2_.data() + p.offset, p.g, p.len);
    }
    versions_.publish(next, cur->version + 1, version_);
    t_published_version = next->version;
    return Status::Ok();
  }

  uint64_t read(float* out, const Piece* pieces, size_t np, bool) override {
    Version* v = pin();
    copy_pieces(out, v->data.data(), pieces, np, snapshot_copy(padded_));
    uint64_t ver = v->version;
    unpin(v);
    return ver;
  }

  uint64_t extra_bytes() const override {
    std::lock_guard<std::mutex> lk(writer_);
    return (versions_.size() - 1) * padded_ * sizeof(float);
  }
  bool uses_ledger() const override { return true; }
  size_t dry_run(const Piece* pieces, size_t np, const kernels::StepArgs& a) override {
    std::lock_guard<std::mutex> lk(writer_);
    return dry_run_pieces(versions_.current()->data.data(), s1_.empty() ? nullptr : s1_.data(), s2_.empty() ? nullptr : s2_.data(),
                          pieces, np, a);
  }
  void measure(double* p, double* s1, double* s2) override {
    std::lock_guard<std::mutex> lk(writer_);
    measure_arrays(versions_.current()->data, s1_, s2_, p, s1, s2);
  }
  // Into the sized image: nothing here allocates or throws, so the pin is
  // always given back.
  Status export_locked(StateImage* out) override {
    Version* v = pin();
    if (padded_) std::memcpy(out->params.data(), v->data.data(), padded_ * sizeof(float));
    out->version = v->version;
    unpin(v);
    if (state_slots() > 0) {  // paused: the state matches the current version
      std::lock_guard<std::mutex> lk(writer_);
      if (!s1_.empty()) std::memcpy(out->s1.data(), s1_.data(), padded_ * sizeof(float));
      if (!s2_.empty()) std::memcpy(out->s2.data(), s2_.data(), padded_ * sizeof(float));
    }
    out->step = steps_.load(std::memory_order_relaxed);
    return Status::Ok();
  }
  Status import_locked(const StateImage& in) override {
    std::lock_guard<std::mutex> lk(writer_);
    Version* cur = versions_.current();
    // a store of empty tensors has no memory (null: not for memcpy)
    if (!in.params.empty()) std::memcpy(cur->data.data(), in.params.data(), padded_ * sizeof(float));
    cur->version = in.version;
    if (!s1_.empty()) {
      if (in.s1.empty()) std::memset(s1_.data(), 0, padded_ * sizeof(float));
      else std::memcpy(s1_.data(), in.s1.data(), padded_ * sizeof(float));
    }
    if (!s2_.empty()) {
      if (in.s2.empty()) std::memset(s2_.data(), 0, padded_ * sizeof(float));
      else std::memcpy(s2_.data(), in.s2.data(), padded_ * sizeof(float));
    }
    return Status::Ok();
  }

 private:
  mutable std::mutex writer_;
  Pool versions_;  // its writer side guarded by writer_
  AlignedArray<float> s1_, s2_;  // optimizer state: touched only under writer_
};

// ---- deterministic: Q32.32 fixed-point parameters (FixedAccumulator).
// The same multiset of pushes gives the same bits in any order on any
// number of threads:
// - each push's increment depends on the push alone: weight decay uses the
//   parameters as of the last sync() (the anchor), and validate() refuses
//   staleness policies, which would make the step depend on timing;
// - whether a push is accepted depends on the push alone (|lr * g| below
//   2^30 per element), never on the sum it lands on, and is decided before
//   anything is written, so a snapshot never sees a push that is refused;
// - the sums are exact modulo 2^64 in any order; a value outside the range
//   (|value| > 2^30) is reported when the state is exported (save), where
//   it would not load back.
class DeterministicStore final : public Store {
 public:
  DeterministicStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    acc_.allocate(padded_, cfg_.shardFloats);
    AlignedArray<float> init(padded_);
    fill_initial(init.data());
    for (size_t i = 0; i < padded_; ++i) acc_.data()[i] = std::llrint(static_cast<double>(init.data()[i]) * kFixedOne);
    if (cfg_.optimizer.weightDecay != 0.f) {
      anchor_ = std::move(init);
      anchorMax_ = K().scan(anchor_.data(), padded_).maxAbs;
    }
  }

  Status sync() override {
    if (!anchor_.empty()) {
      std::unique_lock<std::shared_mutex> lk(anchorLock_);
      acc_.load_all(anchor_.data());
      anchorMax_ = K().scan(anchor_.data(), padded_).maxAbs;
    }
    syncs_.add(1);
    return Status::Ok();
  }

 protected:
  Status apply(const Grad* grads, size_t n, const Piece* pieces, size_t np, bool, const kernels::StepArgs& a,
               const float* maxAbs) override {
    const double scale = -static_cast<double>(a.lr), wd = a.weightDecay;
    std::shared_lock<std::shared_mutex> lk(anchorLock_, std::defer_lock);
    if (!anchor_.empty()) lk.lock();  // the anchor cannot move during this push
    for (size_t i = 0; i < n; ++i) {
      const TensorInfo& t = tensors_[grads[i].tensor];
      double bound = -scale * (maxAbs[i] + (anchor_.empty() ? 0.0 : wd * anchorMax_)) * kFixedOne;
      if (bound >= static_cast<double>(kernels::kFixedLimit)) {
        Status s = Status::Error(Code::Overflow, "gradient for '" + t.name + "' times lr leaves the fixed-point range of mode "
                                                 "'deterministic' (|lr * g| must stay below 2^30)");
        s.tensor = grads[i].tensor;
        s.index = static_cast<int64_t>(first_at_least(grads[i].data, t.size, maxAbs[i]));
        return s;
      }
    }
    thread_local std::vector<FixedAccumulator::Term> terms;
    terms.resize(np);
    for (size_t i = 0; i < np; ++i) {
      const Piece& p = pieces[i];
      const float* an = anchor_.empty() ? nullptr : anchor_.data() + p.offset;
      terms[i] = {p.g, an, p.offset, p.len, -scale * (maxAbs[p.grad] + (an ? wd * anchorMax_ : 0.0)) * kFixedOne};
    }
    acc_.add(terms.data(), np, scale, wd);  // wraps where a sum passes the range: order-free (see above)
    return Status::Ok();
  }
  // The version before the copy, as StripedStore::read.
  uint64_t read(float* out, const Piece* pieces, size_t np, bool) override {
    uint64_t v = version();
    acc_.load(out, pieces, np);
    return v;
  }
  void add_stats(Stats& s) const override { s.rounds = syncs_.get(); }
  uint64_t extra_bytes() const override {
    return acc_.bytes() - padded_ * sizeof(float) + anchor_.size() * sizeof(float);
  }
  void size_image(StateImage* out) const override {
    out->params.resize(padded_);
    out->fixed.resize(padded_);
  }
  Status export_locked(StateImage* out) override {
    const size_t bad = acc_.first_out_of_range();
    if (bad != SIZE_MAX) {
      size_t t = 0;
      while (t + 1 < tensors_.size() && tensors_[t + 1].offset <= bad) ++t;
      Status s = Status::Error(Code::Overflow, "parameter '" + tensors_[t].name + "' at index " + std::to_string(bad - tensors_[t].offset) +
                                                   " is out of the fixed-point range of mode 'deterministic' (|value| must stay "
                                                   "below 2^30); the state cannot be saved");
      s.tensor = static_cast<int64_t>(t);
      s.index = static_cast<int64_t>(bad - tensors_[t].offset);
      return s;
    }
    if (padded_ == 0) return Status::Ok();
    std::memcpy(out->fixed.data(), acc_.data(), padded_ * sizeof(int64_t));
    K().fixed_load(out->params.data(), acc_.data(), padded_);
    return Status::Ok();
  }
  Status import_locked(const StateImage& in) override {
    if (in.fixed.size() == padded_) {
      if (!in.fixed.empty()) std::memcpy(acc_.data(), in.fixed.data(), padded_ * sizeof(int64_t));
    } else {
      for (size_t i = 0; i < padded_; ++i) {
        const double v = static_cast<double>(in.params[i]);
        if (!(std::fabs(v) < kFixedMax / kFixedOne)) {
          Status s = Status::Error(Code::Overflow, "a value (" + std::to_string(v) + ") is out of the range of mode 'deterministic'");
          s.index = static_cast<int64_t>(i);
          return s;
        }
      }
      for (size_t i = 0; i < padded_; ++i) acc_.data()[i] = std::llrint(static_cast<double>(in.params[i]) * kFixedOne);
    }
    if (!anchor_.empty()) {
      acc_.load_all(anchor_.data());
      anchorMax_ = K().scan(anchor_.data(), padded_).maxAbs;
    }
    return Status::Ok();
  }

 private:
  static size_t first_at_least(const float* g, size_t n, float m) {
    for (size_t k = 0; k < n; ++k)
      if (std::fabs(g[k]) >= m) return k;
    return 0;
  }
  FixedAccumulator acc_;
  AlignedArray<float> anchor_;  // parameters at the last sync(), only with weight decay
  float anchorMax_ = 0.f;
  std::shared_mutex anchorLock_;
  PaddedCounter syncs_;
};

// ---- averaging: pushes accumulate into a fixed-point sum (so a round's
// result does not depend on the order inside the round); every syncEvery
// pushes, or on sync(), their mean goes through the optimizer once.
//
// roundLock_ shared: pushes accumulating, snapshots reading; exclusive: a
// round being applied. A push takes a slot in the open round and reserves
// its range (the largest |g| it adds, in Q32.32): the push that takes the
// last slot closes the round; pushes beyond it wait for the next; a push
// whose range does not fit closes the round early and goes into the next
// one. So the round's sum can never leave the accumulator's range: no push
// is refused for what the others added, and none waits for a round that
// nobody will close.
//
// The counters (admitted_, reserved_, accumulated_, round_) change only
// under roundLock_ (shared: atomic adds; exclusive: the close resets them),
// and the lock orders them: relaxed is enough. round_ is also read by the
// waiters under waitLock_, which the close takes to advance it.
class AveragingStore final : public Store {
 public:
  AveragingStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    st_.allocate(padded_, state_slots());
    fill_initial(st_.params.data());
    acc_.allocate(padded_, cfg_.shardFloats);
    mean_ = AlignedArray<float>(padded_);
    touched_ = std::make_unique<std::atomic<uint8_t>[]>(tensors_.size());
    for (size_t t = 0; t < tensors_.size(); ++t) touched_[t].store(0, std::memory_order_relaxed);
  }

  Status sync() override {
    std::unique_lock<std::shared_mutex> ex(roundLock_);
    return close_round_locked();
  }

 protected:
  Status apply(const Grad* grads, size_t n, const Piece* pieces, size_t np, bool, const kernels::StepArgs&,
               const float* maxAbs) override {
    double largest = 0;
    for (size_t i = 0; i < n; ++i) {
      const TensorInfo& t = tensors_[grads[i].tensor];
      double bound = maxAbs[i] * kFixedOne;
      largest = std::max(largest, bound);
      if (bound >= static_cast<double>(kernels::kFixedLimit)) {
        size_t k = 0;
        while (k + 1 < t.size && std::fabs(grads[i].data[k]) < maxAbs[i]) ++k;
        Status s = Status::Error(Code::Overflow, "gradient for '" + t.name + "' at index " + std::to_string(k) +
                                                     " is too large for the averaging accumulator (|g| must stay below 2^30)");
        s.tensor = grads[i].tensor;
        s.index = static_cast<int64_t>(k);
        return s;
      }
    }
    // Every increment of this push is at most `range` (|llrint(x)| <= ceil(|x|)).
    const uint64_t range = static_cast<uint64_t>(std::ceil(largest));
    thread_local std::vector<FixedAccumulator::Term> terms;
    terms.resize(np);
    for (size_t i = 0; i < np; ++i) terms[i] = {pieces[i].g, nullptr, pieces[i].offset, pieces[i].len, maxAbs[pieces[i].grad] * kFixedOne};
    for (;;) {
      std::shared_lock<std::shared_mutex> lk(roundLock_);
      const uint64_t round = round_.load(std::memory_order_relaxed);
      const uint64_t slot = admitted_.fetch_add(1, std::memory_order_relaxed);
      if (slot >= cfg_.syncEvery) {
        // The round is full: wait for it to close, then try the next one.
        admitted_.fetch_sub(1, std::memory_order_relaxed);
        lk.unlock();
        std::unique_lock<std::mutex> w(waitLock_);
        roundClosed_.wait(w, [&] { return round_.load(std::memory_order_relaxed) != round; });
        continue;
      }
      if (reserved_.fetch_add(range, std::memory_order_relaxed) + range > static_cast<uint64_t>(kernels::kFixedLimit)) {
        // The round's sum could leave the range with this push in it: close
        // the round now (it holds at least one push: a push alone fits) and
        // join the next.
        reserved_.fetch_sub(range, std::memory_order_relaxed);
        admitted_.fetch_sub(1, std::memory_order_relaxed);
        lk.unlock();
        std::unique_lock<std::shared_mutex> ex(roundLock_);
        if (round_.load(std::memory_order_relaxed) == round) {
          Status s = close_round_locked();
          if (!s.ok()) return s;
        }
        continue;
      }
      if (!acc_.add(terms.data(), np, 1.0, 0.0))  // cannot happen: the reservation keeps every sum in range
        return Status::Error(Code::Internal, "the averaging accumulator left its range despite the reservation", "grads");
      for (size_t i = 0; i < n; ++i) touched_[grads[i].tensor].store(1, std::memory_order_relaxed);
      accumulated_.fetch_add(1, std::memory_order_relaxed);
      lk.unlock();
      if (slot == cfg_.syncEvery - 1) {
        std::unique_lock<std::shared_mutex> ex(roundLock_);
        // Unless sync() or an early close took this round (and this push) already.
        if (round_.load(std::memory_order_relaxed) == round) return close_round_locked();
      }
      return Status::Ok();
    }
  }

  // Applies the open round's mean. The mean is at most 2^30 (the
  // accumulator's range) but a large lr or parameters near the float limit
  // could still overflow: the ledger (magnitude.h) decides, and when it
  // cannot, the step is tried without writing first (nothing else writes
  // the parameters during a close). A round whose step would make a value
  // non-finite is discarded: its pushes were counted, none is applied.
  Status close_round_locked() {
    Status result;
    const uint64_t count = accumulated_.load(std::memory_order_relaxed);
    if (count > 0) {
      kernels::StepArgs a = step_args(next_step(), 1.f);
      const double inv = 1.0 / (kFixedOne * static_cast<double>(count));
      double maxMean = 0;
      for (size_t t = 0; t < tensors_.size(); ++t) {
        if (!touched_[t].load(std::memory_order_relaxed)) continue;
        const TensorInfo& ti = tensors_[t];
        int64_t* acc = acc_.data() + ti.offset;
        float* mean = mean_.data() + ti.offset;
        for (size_t k = 0; k < ti.size; ++k) {
          mean[k] = static_cast<float>(static_cast<double>(acc[k]) * inv);
          maxMean = std::max(maxMean, static_cast<double>(std::fabs(mean[k])));
          acc[k] = 0;
        }
      }
      bool exact = !ledger_.reserve(a, maxMean), discard = false;
      for (size_t t = 0; exact && !discard && t < tensors_.size(); ++t) {
        if (!touched_[t].load(std::memory_order_relaxed)) continue;
        const TensorInfo& ti = tensors_[t];
        const size_t k = first_non_finite_step(a, st_.params.data() + ti.offset, st_.s1_at(ti.offset), st_.s2_at(ti.offset),
                                               mean_.data() + ti.offset, ti.size);
        if (k < ti.size) {
          discard = true;
          if (cfg_.nonFinite == NonFinitePolicy::Skip) {
            skippedNonFinite_.add(count);
          } else {
            result = Status::Error(Code::NonFinite, "the mean step of this averaging round would make '" + ti.name + "' at index " +
                                                        std::to_string(k) + " non-finite; the round (" + std::to_string(count) +
                                                        " pushes) was discarded");
            result.tensor = static_cast<int64_t>(t);
            result.index = static_cast<int64_t>(k);
          }
        }
      }
      for (size_t t = 0; t < tensors_.size(); ++t) {
        if (!touched_[t].load(std::memory_order_relaxed)) continue;
        if (!discard) step_range(st_, a, tensors_[t].offset, mean_.data() + tensors_[t].offset, tensors_[t].size);
        touched_[t].store(0, std::memory_order_relaxed);
      }
      if (exact) remeasure();
      if (!discard) rounds_.add(1);
    }
    accumulated_.store(0, std::memory_order_relaxed);
    admitted_.store(0, std::memory_order_relaxed);
    reserved_.store(0, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> w(waitLock_);
      round_.fetch_add(1, std::memory_order_relaxed);
    }
    roundClosed_.notify_all();
    return result;
  }

  void measure(double* p, double* s1, double* s2) override { measure_float(st_, p, s1, s2); }

  uint64_t read(float* out, const Piece* pieces, size_t np, bool) override {
    std::shared_lock<std::shared_mutex> lk(roundLock_);
    uint64_t v = version();
    copy_pieces(out, st_.params.data(), pieces, np, snapshot_copy(padded_));
    return v;
  }
  void add_stats(Stats& s) const override {
    s.rounds = rounds_.get();
    s.pending = accumulated_.load(std::memory_order_relaxed);
  }
  uint64_t extra_bytes() const override { return acc_.bytes() + padded_ * sizeof(float); }
  void size_image(StateImage* out) const override {
    Store::size_image(out);
    out->round.resize(padded_);
    out->roundTensors.resize(tensors_.size());
  }
  Status export_locked(StateImage* out) override {
    std::shared_lock<std::shared_mutex> lk(roundLock_);  // no round closes during the copy
    export_float(st_, padded_, out);
    // Paused: no push is accumulating, so the sums and the count agree.
    out->pending = accumulated_.load(std::memory_order_relaxed);
    if (out->pending == 0) {
      out->round.clear();  // no open round (clear: no allocation with the gate closed)
      out->roundTensors.clear();
      return Status::Ok();
    }
    if (padded_) std::memcpy(out->round.data(), acc_.data(), padded_ * sizeof(int64_t));
    for (size_t t = 0; t < tensors_.size(); ++t) out->roundTensors[t] = touched_[t].load(std::memory_order_relaxed);
    return Status::Ok();
  }
  Status import_locked(const StateImage& in) override {
    std::unique_lock<std::shared_mutex> lk(roundLock_);
    Status s = import_float(st_, padded_, in);
    if (!s.ok() || in.pending == 0) return s;
    if (in.round.size() != padded_ || in.roundTensors.size() != tensors_.size())
      return Status::Error(Code::InvalidArgument, "the open round of another layout", "state");
    if (padded_) std::memcpy(acc_.data(), in.round.data(), padded_ * sizeof(int64_t));
    // The restored sums take the range they already use (their largest |sum|).
    uint64_t used = 0;
    for (size_t i = 0; i < padded_; ++i) {
      const uint64_t v = static_cast<uint64_t>(in.round[i]);
      used = std::max(used, in.round[i] < 0 ? 0 - v : v);
    }
    if (used > static_cast<uint64_t>(kernels::kFixedLimit))
      return Status::Error(Code::InvalidArgument, "the open round's sums are out of the accumulator's range (2^30)", "state");
    for (size_t t = 0; t < tensors_.size(); ++t) touched_[t].store(in.roundTensors[t] ? 1 : 0, std::memory_order_relaxed);
    accumulated_.store(in.pending, std::memory_order_relaxed);
    admitted_.store(std::min(in.pending, cfg_.syncEvery), std::memory_order_relaxed);
    reserved_.store(used, std::memory_order_relaxed);
    // A round already full under this store's syncEvery closes now.
    if (in.pending >= cfg_.syncEvery) return close_round_locked();
    return Status::Ok();
  }

 private:
  FloatState st_;
  FixedAccumulator acc_;
  AlignedArray<float> mean_;
  std::unique_ptr<std::atomic<uint8_t>[]> touched_;
  mutable std::shared_mutex roundLock_;
  std::atomic<uint64_t> admitted_{0}, reserved_{0}, accumulated_{0}, round_{0};
  std::mutex waitLock_;
  std::condition_variable roundClosed_;
  PaddedCounter rounds_;
};

}  // namespace

// ---------------------------------------------------------------- create

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
      case Mode::Atomic: store = std::make_shared<AtomicStore>(cfg, std::move(infos), padded); break;
      case Mode::Locked: store = std::make_shared<LockedStore>(cfg, std::move(infos), padded); break;
      case Mode::Versioned: store = std::make_shared<VersionedStore>(cfg, std::move(infos), padded); break;
      case Mode::Deterministic: store = std::make_shared<DeterministicStore>(cfg, std::move(infos), padded); break;
      case Mode::Averaging: store = std::make_shared<AveragingStore>(cfg, std::move(infos), padded); break;
      case Mode::Hogwild: store = std::make_shared<HogwildStore>(cfg, std::move(infos), padded); break;
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
