#include "store.h"

#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "../kernels/dispatch.h"
#include "atomics.h"
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

// The version VersionedStore::apply just published on this thread, which
// push() returns: version() may already be a later writer's.
static thread_local uint64_t t_published_version = 0;

// Q32.32 fixed point: exact, associative integer sums for deterministic mode
// and the averaging accumulator.
constexpr double kFixedOne = 4294967296.0;  // 2^32
constexpr double kFixedMax = 4611686018427387904.0;  // 2^62: headroom so sums of a few terms cannot wrap
// deterministic: the largest |parameter| in Q32.32 (2^62, a value of 2^30).
// Each push's increment is below 2^62 too, so a push that crosses the limit
// is seen before the 64-bit sum can wrap, and is taken back.
constexpr int64_t kFixedLimit = int64_t{1} << 62;
inline float fixed_to_float(int64_t q) { return static_cast<float>(static_cast<double>(q) / kFixedOne); }

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

kernels::StepArgs Store::step_args(uint64_t t, float lrDivisor) const {
  kernels::StepArgs a = cfg_.optimizer;
  // A true division: 'scale' promises lr / (1 + staleness), and lr * (1 / (1 + s))
  // differs from it in the last bit for most lr (0.1 / 3, 0.3 / 3, ...).
  a.lr = lrDivisor == 1.f ? learning_rate() : learning_rate() / lrDivisor;
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
      case InitKind::Values: std::memcpy(p, s.values.data(), n * sizeof(float)); break;
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

Status Store::push(const Grad* grads, size_t n, int64_t basedOn, PushResult* out) {
  *out = PushResult{};
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
  // Non-finite values are found before anything is touched.
  for (size_t i = 0; i < n; ++i) {
    size_t bad = K().first_nonfinite(grads[i].data, grads[i].size);
    if (bad < grads[i].size) {
      if (cfg_.nonFinite == NonFinitePolicy::Skip) {
        skippedNonFinite_.add(1);
        out->reason = SkipReason::NonFinite;
        out->version = version();
        return Status::Ok();
      }
      const TensorInfo& t = tensors_[grads[i].tensor];
      Status s = Status::Error(Code::NonFinite, "gradient for '" + t.name + "' has a non-finite value (" +
                                                    std::to_string(grads[i].data[bad]) + ") at index " +
                                                    std::to_string(bad));
      s.tensor = grads[i].tensor;
      s.index = static_cast<int64_t>(bad);
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
  kernels::StepArgs args = step_args(cfg_.mode == Mode::Averaging ? 0 : next_step(), lrDivisor);
  Status s = apply(grads, n, args);
  if (!s.ok()) return s;
  pushes_.add(1);
  out->applied = true;
  // Release pairs with the acquire in version(): whoever reads the new
  // version also sees this push's writes (for modes that write in place).
  out->version = counts_version_itself() ? t_published_version : version_.fetch_add(1, std::memory_order_acq_rel) + 1;
  return Status::Ok();
}

uint64_t Store::snapshot(float* out) {
  snapshots_.add(1);
  return read(out);
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

bool plain_sgd(const kernels::StepArgs& a) {
  return a.kind == kernels::OptKind::Sgd && a.momentum == 0.f && a.weightDecay == 0.f;
}

// One step over [off, off+len) of the flat layout with gradient g.
inline void step_range(FloatState& st, const kernels::StepArgs& a, size_t off, const float* g, size_t len) {
  if (plain_sgd(a))
    K().axpby(st.params.data() + off, st.params.data() + off, g, -a.lr, 1.f, len);
  else
    K().step(a, st.params.data() + off, st.s1_at(off), st.s2_at(off), g, len);
}

// Calls f(shard, lo, hi) for each stripe of the flat layout overlapping
// [off, off + len); lo/hi are flat offsets.
template <class F>
inline void for_each_shard(size_t shardFloats, size_t off, size_t len, F f) {
  size_t end = off + len;
  for (size_t lo = off; lo < end;) {
    size_t shard = lo / shardFloats;
    size_t hi = std::min(end, (shard + 1) * shardFloats);
    f(shard, lo, hi);
    lo = hi;
  }
}

// ---- atomic: lock-free per-element accumulation.
class AtomicStore final : public Store {
 public:
  AtomicStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    st_.allocate(padded_, state_slots());
    fill_initial(st_.params.data());
  }

 protected:
  Status apply(const Grad* grads, size_t n, const kernels::StepArgs& base) override {
    const kernels::StepArgs& a = base;
    uint64_t retries = 0;
    for (size_t i = 0; i < n; ++i) {
      const TensorInfo& t = tensors_[grads[i].tensor];
      float* p = st_.params.data() + t.offset;
      if (plain_sgd(a))
        retries += atomics::add_scaled(p, grads[i].data, -a.lr, t.size);
      else
        retries += atomics::step(a, p, st_.s1_at(t.offset), st_.s2_at(t.offset), grads[i].data, t.size);
    }
    if (retries) conflicts_.add(retries);
    return Status::Ok();
  }
  uint64_t read(float* out) override {
    uint64_t v = version();
    for (const TensorInfo& t : tensors_) atomics::load(out + t.offset, st_.params.data() + t.offset, t.size);
    return v;
  }

 private:
  FloatState st_;
};

// ---- locked: striped locks, SIMD inside each critical section.
class LockedStore final : public Store {
 public:
  LockedStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    st_.allocate(padded_, state_slots());
    fill_initial(st_.params.data());
    locks_ = std::make_unique<Stripe[]>(shard_count());
  }

 protected:
  struct alignas(64) Stripe {
    std::mutex m;
  };
  size_t shard_count() const { return padded_ / cfg_.shardFloats + 1; }

  Status apply(const Grad* grads, size_t n, const kernels::StepArgs& base) override {
    const kernels::StepArgs& a = base;
    // Stripes are taken one at a time in ascending order: no deadlock, and a
    // reader never waits for more than one stripe's update.
    for (size_t i = 0; i < n; ++i) {
      const TensorInfo& t = tensors_[grads[i].tensor];
      const float* g = grads[i].data;
      for_each_shard(cfg_.shardFloats, t.offset, t.size, [&](size_t s, size_t lo, size_t hi) {
        std::lock_guard<std::mutex> lk(locks_[s].m);
        step_range(st_, a, lo, g + (lo - t.offset), hi - lo);
      });
    }
    return Status::Ok();
  }
  uint64_t read(float* out) override {
    uint64_t v = version();
    for (const TensorInfo& t : tensors_)
      for_each_shard(cfg_.shardFloats, t.offset, t.size, [&](size_t s, size_t lo, size_t hi) {
        std::lock_guard<std::mutex> lk(locks_[s].m);
        K().copy(out + lo, st_.params.data() + lo, hi - lo);
      });
    return v;
  }
  uint64_t extra_bytes() const override { return shard_count() * sizeof(Stripe); }

 private:
  FloatState st_;
  std::unique_ptr<Stripe[]> locks_;
};

// ---- hogwild: racy in-place writes, for sparse problems and as the speed
// reference. Overlapping writers on a stripe are detected with one counter
// per stripe and counted as conflicts (each one a possible lost update).
class HogwildStore final : public Store {
 public:
  HogwildStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    st_.allocate(padded_, state_slots());
    fill_initial(st_.params.data());
    writers_ = std::make_unique<Writers[]>(padded_ / cfg_.shardFloats + 1);
  }

 protected:
  struct alignas(64) Writers {
    std::atomic<uint32_t> n{0};
  };
  GV_NO_TSAN Status apply(const Grad* grads, size_t n, const kernels::StepArgs& base) override {
    const kernels::StepArgs& a = base;
    uint64_t overlaps = 0;
    for (size_t i = 0; i < n; ++i) {
      const TensorInfo& t = tensors_[grads[i].tensor];
      const float* g = grads[i].data;
      for_each_shard(cfg_.shardFloats, t.offset, t.size, [&](size_t s, size_t lo, size_t hi) {
        if (writers_[s].n.fetch_add(1, std::memory_order_relaxed) != 0) ++overlaps;
        step_range(st_, a, lo, g + (lo - t.offset), hi - lo);
        writers_[s].n.fetch_sub(1, std::memory_order_relaxed);
      });
    }
    if (overlaps) conflicts_.add(overlaps);
    return Status::Ok();
  }
  GV_NO_TSAN uint64_t read(float* out) override {
    uint64_t v = version();
    for (const TensorInfo& t : tensors_) K().copy(out + t.offset, st_.params.data() + t.offset, t.size);
    return v;
  }

 private:
  FloatState st_;
  std::unique_ptr<Writers[]> writers_;
};

// ---- versioned: copy-on-write versions published with one atomic pointer.
//
// Writers are serialised by writer_; each builds the next version in a
// recycled buffer and publishes it with a seq_cst store to current_. Readers
// pin a buffer (readers++), then check it is still current; otherwise unpin
// and retry. A buffer is recycled only when it is not current and has no
// pins. Buffers are freed only with the store, so a pin on a buffer that was
// just retired is harmless: the re-check fails and the reader retries.
// The seq_cst pair (reader: pin then load current_; writer: store current_
// then load pins) is the Dekker pattern: either the reader sees the new
// version, or the writer sees the pin.
class VersionedStore final : public Store {
 public:
  VersionedStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    if (state_slots() >= 1) s1_ = AlignedArray<float>(padded_);
    if (state_slots() >= 2) s2_ = AlignedArray<float>(padded_);
    auto v = std::make_unique<Version>(padded_);
    fill_initial(v->data.data());
    current_.store(v.get(), std::memory_order_seq_cst);
    pool_.push_back(std::move(v));
  }

  // Test hook: how many buffers exist (bounded by pinned readers + 2).
  size_t pool_size() const { return pool_.size(); }

 protected:
  struct Version {
    explicit Version(size_t n) : data(n) {}
    AlignedArray<float> data;
    uint64_t version = 0;
    alignas(64) std::atomic<int64_t> pins{0};
  };

  bool counts_version_itself() const override { return true; }

  Version* pin() {
    for (;;) {
      Version* v = current_.load(std::memory_order_seq_cst);
      v->pins.fetch_add(1, std::memory_order_seq_cst);
      if (current_.load(std::memory_order_seq_cst) == v) return v;
      v->pins.fetch_sub(1, std::memory_order_release);
    }
  }
  static void unpin(Version* v) {
    // Release pairs with the acquire in recycle(): our reads of v->data
    // happen before the writer reuses the buffer.
    v->pins.fetch_sub(1, std::memory_order_release);
  }

  Version* recycle(Version* cur) {
    for (auto& v : pool_)
      if (v.get() != cur && v->pins.load(std::memory_order_seq_cst) == 0) {
        std::atomic_thread_fence(std::memory_order_acquire);
        return v.get();
      }
    pool_.push_back(std::make_unique<Version>(padded_));
    return pool_.back().get();
  }

  Status apply(const Grad* grads, size_t n, const kernels::StepArgs& base) override {
    std::lock_guard<std::mutex> lk(writer_);
    const kernels::StepArgs& a = base;
    Version* cur = current_.load(std::memory_order_relaxed);  // only writers change it, and we hold writer_
    Version* next = recycle(cur);
    // Tensors without a gradient are copied; pushed ones are copied and
    // stepped in one pass where the optimizer allows it.
    std::vector<const float*> gradOf(tensors_.size(), nullptr);
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
    next->version = cur->version + 1;
    current_.store(next, std::memory_order_seq_cst);
    version_.store(next->version, std::memory_order_release);
    t_published_version = next->version;
    return Status::Ok();
  }

  uint64_t read(float* out) override {
    Version* v = pin();
    for (const TensorInfo& t : tensors_) K().copy(out + t.offset, v->data.data() + t.offset, t.size);
    uint64_t ver = v->version;
    unpin(v);
    return ver;
  }

  uint64_t extra_bytes() const override {
    std::lock_guard<std::mutex> lk(writer_);
    return (pool_.size() - 1) * padded_ * sizeof(float);
  }

 private:
  mutable std::mutex writer_;
  std::vector<std::unique_ptr<Version>> pool_;  // guarded by writer_
  std::atomic<Version*> current_{nullptr};
  AlignedArray<float> s1_, s2_;  // optimizer state: touched only under writer_
};

// ---- deterministic: Q32.32 fixed-point parameters, integer fetch_add.
// Integer addition is associative, so the same multiset of pushes gives the
// same bits in any order on any number of threads. Weight decay uses the
// parameters as of the last sync() (the anchor), so each push's increment
// depends on the push alone.
class DeterministicStore final : public Store {
 public:
  DeterministicStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    q_ = AlignedArray<int64_t>(padded_);
    AlignedArray<float> init(padded_);
    fill_initial(init.data());
    for (size_t i = 0; i < padded_; ++i) q_.data()[i] = std::llrint(static_cast<double>(init.data()[i]) * kFixedOne);
    if (cfg_.optimizer.weightDecay != 0.f) anchor_ = std::move(init);
  }

  Status sync() override {
    if (anchor_.empty()) {
      syncs_.add(1);
      return Status::Ok();
    }
    std::unique_lock<std::shared_mutex> lk(anchorLock_);
    atomics::load_fixed(anchor_.data(), q_.data(), padded_);
    syncs_.add(1);
    return Status::Ok();
  }

 protected:
  Status apply(const Grad* grads, size_t n, const kernels::StepArgs& a) override {
    const double lr = a.lr, wd = a.weightDecay;
    std::shared_lock<std::shared_mutex> lk(anchorLock_, std::defer_lock);
    if (!anchor_.empty()) lk.lock();
    // Range check before any write, so a refused push changes nothing.
    for (size_t i = 0; i < n; ++i) {
      const TensorInfo& t = tensors_[grads[i].tensor];
      const float* g = grads[i].data;
      const float* an = anchor_.empty() ? nullptr : anchor_.data() + t.offset;
      double worst = 0;
      for (size_t k = 0; k < t.size; ++k) {
        double v = std::fabs(g[k] + (an ? wd * an[k] : 0.0));
        worst = v > worst ? v : worst;
      }
      if (worst * lr * kFixedOne >= kFixedMax) {
        Status s = Status::Error(Code::Overflow, "gradient for '" + t.name + "' times lr leaves the fixed-point range of mode 'deterministic' (|lr*g| must stay below 2^30)");
        s.tensor = grads[i].tensor;
        return s;
      }
    }
    // The increment of element k of grads[i]: a function of the push and the
    // anchor alone (the anchor cannot move: we hold anchorLock_ shared).
    auto delta = [&](size_t i, size_t k) {
      const float* g = grads[i].data;
      const float* an = anchor_.empty() ? nullptr : anchor_.data() + tensors_[grads[i].tensor].offset;
      double gg = an ? g[k] + wd * an[k] : static_cast<double>(g[k]);
      return static_cast<int64_t>(std::llrint(-lr * gg * kFixedOne));
    };
    for (size_t i = 0; i < n; ++i) {
      const TensorInfo& t = tensors_[grads[i].tensor];
      int64_t* q = q_.data() + t.offset;
      for (size_t k = 0; k < t.size; ++k) {
        const int64_t d = delta(i, k);
        if (!d) continue;
        // Relaxed: the sum is order-free; publication is the version's release.
        const int64_t old = std::atomic_ref<int64_t>(q[k]).fetch_add(d, std::memory_order_relaxed);
        // fetch_add returns the exact value it replaced, so the sum's range is
        // checked without a CAS loop; 0 < |d| < 2^62 (checked above), so the
        // bounds below cannot overflow.
        const bool out = d > 0 ? old > kFixedLimit - d : old < -kFixedLimit - d;
        if (out) {
          // Take this push back: integer addition commutes, so subtracting
          // the same increments restores the exact sum whatever other pushes
          // did meanwhile. (A concurrent snapshot may see the out-of-range
          // value until then; it never sees a wrapped one.)
          for (size_t j = 0; j <= i; ++j) {
            int64_t* qj = q_.data() + tensors_[grads[j].tensor].offset;
            const size_t end = j < i ? tensors_[grads[j].tensor].size : k + 1;
            for (size_t e = 0; e < end; ++e)
              if (int64_t dj = delta(j, e)) std::atomic_ref<int64_t>(qj[e]).fetch_sub(dj, std::memory_order_relaxed);
          }
          Status s = Status::Error(Code::Overflow, "parameter '" + t.name + "' at index " + std::to_string(k) +
                                                       " would leave the fixed-point range of mode 'deterministic' "
                                                       "(|value| must stay below 2^30)");
          s.tensor = grads[i].tensor;
          s.index = static_cast<int64_t>(k);
          return s;
        }
      }
    }
    return Status::Ok();
  }
  uint64_t read(float* out) override {
    uint64_t v = version();
    for (const TensorInfo& t : tensors_) atomics::load_fixed(out + t.offset, q_.data() + t.offset, t.size);
    return v;
  }
  void add_stats(Stats& s) const override { s.rounds = syncs_.get(); }
  uint64_t extra_bytes() const override {
    return padded_ * (sizeof(int64_t) - sizeof(float)) + anchor_.size() * sizeof(float);
  }

 private:
  AlignedArray<int64_t> q_;
  AlignedArray<float> anchor_;  // parameters at the last sync(), only with weight decay
  std::shared_mutex anchorLock_;
  PaddedCounter syncs_;
};

// ---- averaging: pushes accumulate into a fixed-point sum (so a round's
// result does not depend on the order inside the round); every syncEvery
// pushes, or on sync(), their mean goes through the optimizer once.
//
// roundLock_ shared: pushes accumulating, snapshots reading; exclusive: a
// round being applied. A push takes a slot in the open round; the push that
// takes the last slot closes the round; pushes beyond it wait for the next.
class AveragingStore final : public Store {
 public:
  AveragingStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : Store(c, std::move(t), p) {}
  void initialize() override {
    st_.allocate(padded_, state_slots());
    fill_initial(st_.params.data());
    acc_ = AlignedArray<int64_t>(padded_);
    mean_ = AlignedArray<float>(padded_);
    touched_ = std::make_unique<std::atomic<uint8_t>[]>(tensors_.size());
    for (size_t t = 0; t < tensors_.size(); ++t) touched_[t].store(0, std::memory_order_relaxed);
  }

  Status sync() override {
    std::unique_lock<std::shared_mutex> ex(roundLock_);
    close_round_locked();
    return Status::Ok();
  }

 protected:
  Status apply(const Grad* grads, size_t n, const kernels::StepArgs&) override {
    const double limit = kFixedMax / kFixedOne / static_cast<double>(cfg_.syncEvery);
    for (size_t i = 0; i < n; ++i) {
      const TensorInfo& t = tensors_[grads[i].tensor];
      for (size_t k = 0; k < t.size; ++k)
        if (std::fabs(grads[i].data[k]) >= limit) {
          Status s = Status::Error(Code::Overflow, "gradient for '" + t.name + "' at index " + std::to_string(k) +
                                                       " is too large for the averaging accumulator");
          s.tensor = grads[i].tensor;
          s.index = static_cast<int64_t>(k);
          return s;
        }
    }
    for (;;) {
      std::shared_lock<std::shared_mutex> lk(roundLock_);
      uint64_t round = round_.load(std::memory_order_acquire);
      uint64_t slot = admitted_.fetch_add(1, std::memory_order_acq_rel);
      if (slot >= cfg_.syncEvery) {
        // The round is full: wait for it to close, then try the next one.
        admitted_.fetch_sub(1, std::memory_order_acq_rel);
        lk.unlock();
        std::unique_lock<std::mutex> w(waitLock_);
        roundClosed_.wait(w, [&] { return round_.load(std::memory_order_acquire) != round; });
        continue;
      }
      for (size_t i = 0; i < n; ++i) {
        const TensorInfo& t = tensors_[grads[i].tensor];
        int64_t* acc = acc_.data() + t.offset;
        const float* g = grads[i].data;
        for (size_t k = 0; k < t.size; ++k) {
          int64_t d = std::llrint(static_cast<double>(g[k]) * kFixedOne);
          if (d) std::atomic_ref<int64_t>(acc[k]).fetch_add(d, std::memory_order_relaxed);
        }
        touched_[grads[i].tensor].store(1, std::memory_order_relaxed);
      }
      accumulated_.fetch_add(1, std::memory_order_acq_rel);
      lk.unlock();
      if (slot == cfg_.syncEvery - 1) {
        std::unique_lock<std::shared_mutex> ex(roundLock_);
        close_round_locked();
      }
      return Status::Ok();
    }
  }

  void close_round_locked() {
    uint64_t count = accumulated_.load(std::memory_order_acquire);
    if (count > 0) {
      kernels::StepArgs a = step_args(next_step(), 1.f);
      const double inv = 1.0 / (kFixedOne * static_cast<double>(count));
      for (size_t t = 0; t < tensors_.size(); ++t) {
        if (!touched_[t].load(std::memory_order_relaxed)) continue;
        const TensorInfo& ti = tensors_[t];
        int64_t* acc = acc_.data() + ti.offset;
        float* mean = mean_.data() + ti.offset;
        for (size_t k = 0; k < ti.size; ++k) {
          mean[k] = static_cast<float>(static_cast<double>(acc[k]) * inv);
          acc[k] = 0;
        }
        step_range(st_, a, ti.offset, mean, ti.size);
        touched_[t].store(0, std::memory_order_relaxed);
      }
      rounds_.add(1);
    }
    accumulated_.store(0, std::memory_order_release);
    admitted_.store(0, std::memory_order_release);
    {
      std::lock_guard<std::mutex> w(waitLock_);
      round_.fetch_add(1, std::memory_order_acq_rel);
    }
    roundClosed_.notify_all();
  }

  uint64_t read(float* out) override {
    std::shared_lock<std::shared_mutex> lk(roundLock_);
    uint64_t v = version();
    for (const TensorInfo& t : tensors_) K().copy(out + t.offset, st_.params.data() + t.offset, t.size);
    return v;
  }
  void add_stats(Stats& s) const override {
    s.rounds = rounds_.get();
    s.pending = accumulated_.load(std::memory_order_relaxed);
  }
  uint64_t extra_bytes() const override { return padded_ * (sizeof(int64_t) + sizeof(float)); }

 private:
  FloatState st_;
  AlignedArray<int64_t> acc_;
  AlignedArray<float> mean_;
  std::unique_ptr<std::atomic<uint8_t>[]> touched_;
  mutable std::shared_mutex roundLock_;
  std::atomic<uint64_t> admitted_{0}, accumulated_{0}, round_{0};
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
    for (size_t j = 0; j < i; ++j)
      if (tensors[j].name == t.name) return config_error(f, "is defined twice");
    double size = 1;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] < 0) return config_error(f + ".shape", "has a negative dimension " + std::to_string(t.shape[d]));
      size *= static_cast<double>(t.shape[d]);
    }
    if (size > 4.0e9) return config_error(f + ".shape", "is too large (" + std::to_string(size) + " elements)");
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
    store->specs_.clear();
    store->specs_.shrink_to_fit();
    *out = std::move(store);
  } catch (const std::bad_alloc&) {
    return Status::Error(Code::InvalidArgument, "not enough memory for " + std::to_string(padded * 4) + " bytes of parameters", "tensors");
  }
  return Status::Ok();
}

}  // namespace gv
