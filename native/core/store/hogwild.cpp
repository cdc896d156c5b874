// Mode hogwild (README "Modes").
#include <atomic>
#include <memory>

#include "float_state.h"
#include "modes.h"

namespace gv::detail {
namespace {

// hogwild: racy in-place writes, for sparse problems and as the speed
// reference. Overlapping writers on a stripe are detected with one counter
// per stripe and counted as conflicts (each one a possible lost update).
class HogwildStore final : public FloatStore {
 public:
  HogwildStore(const StoreConfig& c, std::vector<TensorInfo> t, size_t p) : FloatStore(c, std::move(t), p) {}
  void initialize() override {
    allocate_float();
    stripes_ = Stripes(padded_, cfg_.shardFloats);
    writers_ = std::make_unique<Writers[]>(stripes_.count());
  }

 protected:
  using Writers = SampleAccess::Writers;
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
  // Racy in place, as its pushes (not under ThreadSanitizer, which would
  // report the races Hogwild is made of: the trainer takes the generic path).
  bool sample_access(SampleAccess* a) override {
    if (kTsanBuild || !plain_sgd(cfg_.optimizer)) return false;
    a->params = st_.params.data();
    a->stripeFloats = stripes_.floats();
    a->writers = writers_.get();
    return true;
  }
  bool uses_ledger() const override { return true; }
  GV_NO_TSAN size_t dry_run(const Piece* p, size_t np, const kernels::StepArgs& a) override { return dry_run_float(st_, p, np, a); }
  GV_NO_TSAN void measure(double* p, double* s1, double* s2) override { measure_float(st_, p, s1, s2); }

 private:
  Stripes stripes_;
  std::unique_ptr<Writers[]> writers_;
};

}  // namespace

std::shared_ptr<Store> make_hogwild(const StoreConfig& c, std::vector<TensorInfo> t, size_t padded) {
  return std::make_shared<HogwildStore>(c, std::move(t), padded);
}

}  // namespace gv::detail
