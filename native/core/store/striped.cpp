// Modes atomic and locked (README "Modes").
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
constexpr bool kTsan = kTsanBuild;

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

}  // namespace

std::shared_ptr<Store> make_atomic(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded) {
  return std::make_shared<AtomicStore>(c, std::move(t), padded);
}
std::shared_ptr<Store> make_locked(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded) {
  return std::make_shared<LockedStore>(c, std::move(t), padded);
}

}  // namespace gv::detail
