// Mode versioned (README "Modes").
#include <mutex>

#include "float_state.h"
#include "versions.h"
#include "modes.h"

namespace gv::detail {
namespace {

// versioned: copy-on-write versions published with one atomic pointer
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

}  // namespace

std::shared_ptr<Store> make_versioned(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded) {
  return std::make_shared<VersionedStore>(c, std::move(t), padded);
}

}  // namespace gv::detail
