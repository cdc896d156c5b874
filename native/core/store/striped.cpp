// Modes atomic and locked (README "Modes").
#include "../../kernels/racy/scalar.h"
#include "float_state.h"
#include "modes.h"

namespace gv::detail {
namespace {

// atomic and locked: writers own one stripe at a time (stripes.h) and
// step it with the SIMD kernels, so a parameter and its optimizer state
// change together and no update is lost. They differ in their readers:
// atomic snapshots take no lock (a reader never waits; each element is one
// value some push wrote), locked snapshots take each stripe's lock (each
// stripe is consistent).
//
// GV_STRICT_ATOMICS (a build option: CMake, or GRADVAULT_STRICT_ATOMICS=1
// for node-gyp) makes atomic mode data-race free by the letter of C++: the
// owner steps a stripe in a private scratch and stores it back with relaxed
// atomic stores, and snapshots read with relaxed atomic loads. By default
// the owner steps the stripe in place and snapshots use the racy-copy
// kernels (kernels/racy), which rest on a hardware guarantee instead.
#if defined(GV_STRICT_ATOMICS) && GV_STRICT_ATOMICS
constexpr bool kStrictAtomics = true;
#else
constexpr bool kStrictAtomics = false;
#endif

template <bool LockedReads>
class StripedStore final : public FloatStore {
 public:
  StripedStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : FloatStore(c, std::move(t), p) {}
  void initialize() override {
    allocate_float();
    stripes_ = Stripes(padded_, cfg_.shardFloats);
  }

 protected:
  // Each stripe a push touches is held once for all of its parts (a weight
  // and its bias in one stripe change together).
  Status apply(const Grad*, size_t, const Piece* pieces, size_t np, bool sparse, const kernels::StepArgs& a,
               const float*) override {
    for_piece_parts(stripes_, pieces, np, !sparse, [&](const Stripes::Part& q) {
      const Piece& p = pieces[q.piece];
      if constexpr (kStrictAtomics && !LockedReads) strict_step(a, q.lo, p.g + (q.lo - p.offset), q.hi - q.lo);
      else step_range(st_, a, q.lo, p.g + (q.lo - p.offset), q.hi - q.lo);
    });
    return Status::Ok();
  }
  // The version is read before the copy: every push it counts had finished
  // writing, so the copy holds all of them (a push still in flight may show
  // in part, per element or per stripe, and is not counted).
  uint64_t read(float* out, const Piece* pieces, size_t np, bool sparse) override {
    uint64_t v = version();
    if constexpr (LockedReads) {
      const auto copy = snapshot_copy(padded_);
      // Each stripe once for all its parts, so a stripe is consistent across tensors.
      for_piece_parts(stripes_, pieces, np, false, [&](const Stripes::Part& q) {
        if (q.hi - q.lo < 16)
          for (size_t k = q.lo; k < q.hi; ++k) out[k] = st_.params.data()[k];
        else
          copy(out + q.lo, st_.params.data() + q.lo, q.hi - q.lo);
      });
    } else {
      lock_free_copy(out, pieces, np);
    }
    return v;
  }
  // Without a lock, while owners write: each element is read whole, so it is
  // a value some push wrote. By default with the racy-copy kernels (every
  // build, sanitizers included, runs this path; ThreadSanitizer does not see
  // their loads, kernels/racy/README.md), large stores with streaming stores
  // as snapshot_copy; strict builds with relaxed atomic loads.
  void lock_free_copy(float* out, const Piece* pieces, size_t np) {
    const auto copy = kStrictAtomics                                      ? kernels::scalar::load_relaxed
                      : padded_ * sizeof(float) >= kernels::kStreamBytes ? K().copy_racy_stream
                                                                          : K().copy_racy;
    for (size_t i = 0; i < np; ++i) copy(out + pieces[i].offset, st_.params.data() + pieces[i].offset, pieces[i].len);
  }
  // GV_STRICT_ATOMICS: one stripe's step, made in a private scratch with the
  // usual kernels (the same bits as step_range) and published with relaxed
  // atomic stores, which lock-free readers may load at any time. The owner
  // reads the stripe plainly: only it writes it, under the stripe lock.
  void strict_step(const kernels::StepArgs& a, size_t off, const float* g, size_t len) {
    thread_local std::vector<float> scratch;
    scratch.resize(len);
    float* p = scratch.data();
    K().copy(p, st_.params.data() + off, len);
    if (plain_sgd(a)) K().axpby(p, p, g, -a.lr, 1.f, len);
    else K().step(a, p, st_.s1_at(off), st_.s2_at(off), g, len);
    kernels::scalar::store_relaxed(st_.params.data() + off, p, len);
  }
  // Writes under the stripe locks; reads in place without a lock (atomic:
  // each element read whole, as lock_free_copy) or under them (locked, and
  // atomic under ThreadSanitizer, which would report the lock-free reads).
  // Strict builds (relaxed atomics for every access) take the generic path.
  bool sample_access(SampleAccess* a) override {
    if ((kStrictAtomics && !LockedReads) || !plain_sgd(cfg_.optimizer)) return false;
    a->params = st_.params.data();
    a->stripeFloats = stripes_.floats();
    a->locks = stripes_.locks();
    a->lockedReads = LockedReads || kTsanBuild;
    return true;
  }
  uint64_t extra_bytes() const override { return stripes_.bytes(); }
  bool uses_ledger() const override { return true; }
  size_t dry_run(const Piece* p, size_t np, const kernels::StepArgs& a) override { return dry_run_float(st_, p, np, a); }

 private:
  Stripes stripes_;
};
using AtomicStore = StripedStore<false>;
using LockedStore = StripedStore<true>;

}  // namespace

std::shared_ptr<Store> make_atomic(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded) {
  return std::make_shared<AtomicStore>(c, std::move(t), padded);
}
std::shared_ptr<Store> make_locked(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded) {
  return std::make_shared<LockedStore>(c, std::move(t), padded);
}

}  // namespace gv::detail
