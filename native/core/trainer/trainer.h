// The native trainer: a pool of threads that each train on their own share
// of the rows, every update going through the store's strategy.
//
// Each thread keeps its gradients private: per batch it reads a snapshot of
// the parameters into its own replica, computes the batch's mean gradient
// with the model's SIMD kernels into its own buffer, and pushes that buffer
// once, based on the snapshot's version (so staleness is measured and the
// store's staleness policy applies). Threads meet at a barrier at the end of
// each epoch, where progress is reported.
#pragma once
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "../data/dataset.h"
#include "../model/model.h"
#include "../status.h"
#include "../store.h"

namespace gv::train {

enum class Schedule { Constant = 0, Step, InverseSqrt };
// schedule.kind: 'constant', 'step', 'inverse-sqrt'; anything else is an ERR_CONFIG Status.
Status parse_schedule(const std::string& s, Schedule* out);

struct TrainerConfig {
  uint32_t threads = 1;
  uint32_t epochs = 1;
  // 32: the library's and the CLI's default (lib/trainer.ts TRAINER_DEFAULTS)
  uint32_t batchSize = 32;
  uint64_t seed = 0;
  // Learning rate: lr (0: the store's) under the schedule.
  //   step: lr * gamma^floor(epoch / stepEvery) (epoch 0-based)
  //   inverse-sqrt: lr / sqrt(1 + t / scale), t the batches pushed so far
  float lr = 0.f;
  Schedule schedule = Schedule::Constant;
  uint32_t stepEvery = 1;
  float gamma = 0.5f;
  double scale = 1000;
  // Stale-synchronous bound: a thread waits while it is more than maxAhead
  // batches ahead of the slowest thread in the epoch. < 0: no bound.
  int64_t maxAhead = -1;
  // Stop after an epoch whose mean training loss is <= targetLoss (NaN: never).
  double targetLoss = NAN;
  // Batches of one take the per-sample path where the run qualifies
  // (sample.h); false: always the generic snapshot-grad-push path (the
  // benchmarks compare the two).
  bool perSample = true;
};

struct Progress {
  uint32_t epoch = 0;     // 1-based, the epoch just finished
  uint32_t epochs = 0;
  uint64_t samples = 0;   // since the start
  uint64_t epochSamples = 0;
  double loss = 0;        // mean training loss over the epoch (on the parameters each batch read)
  double seconds = 0;     // since the start
  double epochSeconds = 0;
  double samplesPerSec = 0;  // this epoch
  double lr = 0;
  uint64_t version = 0;
  // pushes of this epoch that named their basis (all of them here)
  double stalenessMean = 0;
  uint64_t stalenessMax = 0;  // this epoch
  uint64_t rejected = 0;      // this epoch: refused as too stale
  uint64_t skipped = 0;       // this epoch: refused for NaN/Inf (nonFinite: 'skip')
  uint64_t conflicts = 0;     // this epoch: hogwild overlaps (possible lost updates)
};

// What a run has done so far, as Monitor::poll reads it while the run trains.
struct Live {
  bool started = false;       // train() has begun this run's epochs
  bool finished = false;      // train() has returned
  uint32_t epoch = 0;         // 1-based: the epoch in progress (the last one trained once finished); 0 before the start
  uint32_t epochs = 0;
  uint64_t samples = 0;       // since the start, this epoch's so far included
  uint64_t epochSamples = 0;  // this epoch so far
  uint64_t batches = 0;       // this epoch so far
  double loss = NAN;          // mean training loss over this epoch's samples so far (NaN: none yet)
  double seconds = 0;         // since the start (until the end, once finished)
  double epochSeconds = 0;    // since this epoch started
  double lr = 0;              // the store's learning rate now
  uint64_t version = 0;       // the store's version now
};

// Watches a run mid-epoch. Every trainer thread owns one cache-line-padded
// slot and, after each batch, stores its epoch-so-far counts there with
// relaxed stores (no shared counter, nothing contended on the batch path);
// poll() sums the slots, from any thread, at any time, without locks. The
// epoch's close (at the barrier, while every thread waits) folds the slots
// into the totals and clears them under a sequence counter, so a poll never
// sees an epoch counted twice or not at all.
//
// At each epoch's end, inside onEpoch, poll() reads exactly the Progress
// being reported (epochSamples, samples; loss summed in the same order).
class Monitor {
 public:
  // Slots for runs of up to `threads` threads.
  explicit Monitor(uint32_t threads);
  uint32_t capacity() const { return n_; }
  // Lock-free; retries only while an epoch is being closed. store: where lr
  // and version are read (it must be alive); nullptr: the values recorded
  // when the run ended (0 before).
  Live poll(const Store* store) const;

  // The trainer's side (train() calls these; one writer at a time).
  void begin(uint32_t epochs, uint32_t threads);
  // Thread t's counts for this epoch so far, after each batch.
  void record(uint32_t t, uint64_t samples, uint64_t batches, double loss) {
    Slot& s = slots_[t];
    s.samples.store(samples, std::memory_order_relaxed);
    s.batches.store(batches, std::memory_order_relaxed);
    s.loss.store(loss, std::memory_order_relaxed);
  }
  // At the barrier, every thread waiting: the epoch's samples into the total, slots cleared, next epoch.
  void next_epoch(uint64_t epochSamples);
  void finish(double lr, uint64_t version);

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> samples{0};
    std::atomic<uint64_t> batches{0};
    std::atomic<double> loss{0};
  };
  uint32_t n_;
  std::unique_ptr<Slot[]> slots_;
  std::atomic<uint32_t> used_{0};  // threads of the current run
  std::atomic<uint64_t> seq_{0};   // odd while an epoch closes
  std::atomic<bool> started_{false}, finished_{false};
  std::atomic<uint32_t> epoch_{0}, epochs_{0};
  std::atomic<uint64_t> doneSamples_{0};  // epochs closed
  std::atomic<int64_t> t0_{0}, epochStart_{0}, end_{0};  // steady_clock nanoseconds
  std::atomic<double> endLr_{0};
  std::atomic<uint64_t> endVersion_{0};
};

enum class StopReason { Completed = 0, TargetLoss, Aborted, Error };
const char* stop_reason_name(StopReason r);

struct Result {
  uint32_t epochs = 0;  // completed
  uint64_t samples = 0;
  double seconds = 0;
  double samplesPerSec = 0;
  double loss = NAN;  // the last completed epoch's mean loss
  StopReason reason = StopReason::Completed;
};

// Binds a model to a store: the store must hold the model's tensors (by name,
// same shapes). tensorIndex[k] is the store's index of the model's tensor k.
Status bind_model(const model::Model& m, const Store& s, std::vector<uint32_t>* tensorIndex);

// Trains m on d through the store with cfg.threads threads and returns when
// done, stopped (cancel set, checked before every batch) or failed (a push
// error such as NaN under nonFinite: 'reject'; the other threads stop at
// their next batch). onEpoch runs on one trainer thread at each epoch's end
// while the others wait. The store is consistent at every return.
// monitor, when given, is updated as the run goes (its capacity must be >=
// cfg.threads, else ERR_INTERNAL); it may be polled from any thread.
Status train(const TrainerConfig& cfg, Store& store, const model::Model& m, const data::Dataset& d,
             const std::atomic<bool>* cancel, const std::function<void(const Progress&)>& onEpoch, Result* out,
             Monitor* monitor = nullptr);

Status check_config(const TrainerConfig& cfg);

}  // namespace gv::train
