// Mode deterministic (README "Modes", and what it promises exactly).
#include <cmath>
#include <shared_mutex>

#include "fixed.h"
#include "modes.h"

namespace gv::detail {
namespace {

// deterministic: Q32.32 fixed-point parameters (FixedAccumulator).
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
  // Plain sgd without decay (no anchor): a sample's increments depend on
  // the sample alone, as a push's do.
  bool sample_access(SampleAccess* a) override {
    const kernels::StepArgs& o = cfg_.optimizer;
    if (o.kind != kernels::OptKind::Sgd || o.momentum != 0.f || o.weightDecay != 0.f) return false;  // (no decay: no anchor)
    a->fixed = acc_.data();
    a->stripeFloats = acc_.stripes().floats();
    a->locks = acc_.stripes().locks();
    a->lockedReads = true;
    return true;
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

}  // namespace

std::shared_ptr<Store> make_deterministic(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded) {
  return std::make_shared<DeterministicStore>(c, std::move(t), padded);
}

}  // namespace gv::detail
