// Mode averaging (README "Modes").
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "fixed.h"
#include "modes.h"

namespace gv::detail {
namespace {

// averaging: pushes accumulate into a fixed-point sum (so a round's
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
class AveragingStore final : public FloatStore {
 public:
  AveragingStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : FloatStore(c, std::move(t), p) {}
  void initialize() override {
    allocate_float();
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

std::shared_ptr<Store> make_averaging(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded) {
  return std::make_shared<AveragingStore>(c, std::move(t), padded);
}

}  // namespace gv::detail
