// The per-sample path of the native trainer (batch size 1): a sample's
// forward pass reads the store's parameters in place, its update (x ⊗ d on
// the rows of its nonzero features, d on the bias) is applied at once under
// the mode's protocol, and the bookkeeping (version, push and staleness
// counters) is tallied per thread and committed in chunks. No dense
// gradient is materialised or zeroed, nothing is validated twice.
//
// What it keeps of the generic path (snapshot, grad, Store::push):
// - the same arithmetic: the forward pass uses the same kernels on the same
//   values, and each parameter moves by p + (-lr) * (0 + x * d), the bits
//   the generic push of the materialised gradient gives (test_sample checks
//   it element by element);
// - no lost update in modes atomic, locked and deterministic: the rows a
//   sample writes are written holding their stripes' locks
//   (store/stripes.h), one stripe at a time in ascending order;
//   deterministic adds its pushes' Q32.32 increments, order-free;
// - exact counts: every sample applied is one push, one version, one step
//   and one staleness measurement; the thread commits its tally every
//   kChunk samples and before anything else can look (epoch end, stop, a
//   generic push), holding a gate place meanwhile so a checkpoint never sees
//   an update its version does not count;
// - non-finite values and the magnitude ledger's exact path: a sample whose
//   loss or derivative is not finite, or whose move the ledger cannot
//   reserve, is not written here: the caller sends it through the generic
//   path, which reports or skips it exactly as before.
// Staleness is counted in committed versions: another thread's samples
// become visible to it in steps of up to kChunk.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "../data/dataset.h"
#include "../model/model.h"
#include "../store.h"
#include "trainer.h"

namespace gv::train {

class SampleStepper {
 public:
  // Samples a thread applies before it commits its tally.
  static constexpr uint64_t kChunk = 64;

  // Whether the per-sample path serves this run: batch size 1, no
  // maxAhead, staleness policy 'accept' without a bound, a store whose mode
  // offers per-sample access (atomic, locked, hogwild, deterministic with
  // plain sgd: Store::sample_access; mf not in deterministic), and a model
  // and data it handles (logistic, svm, linear on sparse rows; softmax on
  // dense or sparse rows; mf on ratings). tensors: the store's index of each
  // model tensor.
  static bool applies(const TrainerConfig& cfg, Store& store, const model::Model& m, const data::Dataset& d,
                      const std::vector<uint32_t>& tensors);
  // The stepper of one trainer thread of a run that applies() (not checked
  // again). rowMax: row_max() of the data, shared by the threads.
  static std::unique_ptr<SampleStepper> make(Store& store, const model::Model& m, const data::Dataset& d,
                                             const std::vector<uint32_t>& tensors, const std::vector<float>& rowMax);
  // max(1, max |x|) of every row (infinity where a value is not finite):
  // with max |d|, the bound on a sample's gradient the magnitude ledger
  // reserves (1 stands for the bias's input).
  static std::vector<float> row_max(const data::Dataset& d);

  enum class Outcome { Applied, Generic };
  // Trains on row `row` at learning rate lr. Applied: the update is written
  // and tallied (loss and staleness out). Generic: nothing was written; the
  // caller must push this sample through the generic path.
  Outcome step(uint32_t row, float lr, Store::SampleTally& tally, double* loss, uint64_t* staleness);
  // Ask for the memory a later step(row) reads, in three stages a step
  // apart (the rows are in random order: each stage's address comes from
  // the memory the one before fetched): the row's place in the data (its
  // CSR offsets, its rating's pair), the row's data (indices and values, a
  // dense row), the parameters of its features (rating: its two rows).
  void prefetch_index(uint32_t row) const;
  void prefetch_data(uint32_t row) const;
  void prefetch_params(uint32_t row) const;

 private:
  SampleStepper(Store& s, const model::Model& m, const data::Dataset& d, const Store::SampleAccess& a,
                const std::vector<size_t>& offsets, const std::vector<float>& rowMax);
  Outcome step_mf(uint32_t row, float lr, Store::SampleTally& tally, double* loss, uint64_t* staleness);
  // The distinct stripes of the sample's rows and bias, ascending, into
  // stripes_: locked reads hold them all (hold(), release()) for the forward pass.
  void collect_stripes(const uint32_t* idx, size_t nnz);
  // Takes a sample's move |lr * g| from the budget, reserving more from the
  // store's magnitude ledger when it runs out; false: the ledger refuses.
  bool reserve(double move);
  // A stripe a sample writes: locked (atomic, locked, deterministic) or
  // counted in as a writer, an overlap counted in the tally (hogwild).
  void enter(size_t stripe, Store::SampleTally& tally);
  void leave(size_t stripe);
  void hold();
  void release();

  Store& store_;
  const model::Model& model_;
  const data::Dataset& data_;
  const std::vector<float>& rowMax_;
  Store::SampleAccess access_;
  model::Kind kind_;
  size_t width_;       // floats per feature row (classes for softmax, the rank for mf, 1 else)
  size_t offW_, offB_; // flat offsets of the weight matrix and the bias
  std::vector<size_t> off_;  // of every model tensor (mf: U, V, bu, bi)
  double budget_ = 0;  // ledger moves reserved and not yet used
  uint64_t ledgerResets_ = 0;  // the ledger's resets when budget_ was reserved
  std::vector<size_t> stripes_;
  size_t oneStripe_;
  bool prefetchParams_;  // the parameters exceed kCacheBytes
  static constexpr size_t kCacheBytes = size_t{512} << 10;  // a core's L2 here (AMD EPYC)   // the stripe holding every weight and the bias, or SIZE_MAX
  std::vector<float> z_;
  std::vector<float> rows_;     // deterministic: a sample's rows as floats
  std::vector<uint32_t> iota_;  // 0, 1, 2, ...: their indices there
};

}  // namespace gv::train
