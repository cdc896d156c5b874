#include "trainer.h"

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstring>
#include <mutex>
#include <numeric>
#include <thread>

#include "../random.h"
#include "../platform.h"
#include "sample.h"

namespace gv::train {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Completed: return "completed";
    case StopReason::TargetLoss: return "target-loss";
    case StopReason::Aborted: return "aborted";
    case StopReason::Error: return "error";
  }
  return "?";
}

Status parse_schedule(const std::string& s, Schedule* out) {
  static const char* const names[] = {"constant", "step", "inverse-sqrt"};
  return parse_named(s, names, "schedule.kind", out);
}

Status check_config(const TrainerConfig& c) {
  auto bad = [](const std::string& f, const std::string& m) { return Status::Error(Code::Config, f + " " + m, f); };
  if (c.threads < 1 || c.threads > 1024) return bad("threads", "must be in 1..1024, got " + std::to_string(c.threads));
  if (c.epochs < 1) return bad("epochs", "must be >= 1, got " + std::to_string(c.epochs));
  if (c.batchSize < 1 || c.batchSize > 65536) return bad("batchSize", "must be in 1..65536, got " + std::to_string(c.batchSize));
  if (!(c.lr >= 0.f) || !std::isfinite(c.lr)) return bad("lr", "must be a finite number >= 0");
  if (c.stepEvery < 1) return bad("schedule.every", "must be >= 1");
  if (!(c.gamma > 0.f) || !std::isfinite(c.gamma)) return bad("schedule.gamma", "must be > 0");
  if (!(c.scale > 0) || !std::isfinite(c.scale)) return bad("schedule.scale", "must be > 0");
  return Status::Ok();
}

Status bind_model(const model::Model& m, const Store& s, std::vector<uint32_t>* idx) {
  idx->clear();
  for (const TensorSpec& t : m.tensors()) {
    int64_t i = s.find(t.name);
    if (i < 0)
      return Status::Error(Code::Shape,
                           std::string("the store has no tensor '") + t.name + "', which model '" +
                               model::kind_name(m.kind()) + "' needs",
                           t.name);
    if (s.tensor(i).shape != t.shape) {
      auto fmt = [](const std::vector<int64_t>& v) {
        std::string r;
        for (int64_t x : v) r += (r.empty() ? "" : ", ") + std::to_string(x);
        return "[" + r + "]";
      };
      return Status::Error(Code::Shape,
                           "tensor '" + t.name + "' has shape " + fmt(s.tensor(i).shape) + ", the model and data need " +
                               fmt(t.shape),
                           t.name);
    }
    idx->push_back(static_cast<uint32_t>(i));
  }
  return Status::Ok();
}

namespace {

using Clock = std::chrono::steady_clock;

// Floats a snapshot copies in the time it reads one scattered row.
constexpr size_t kRowCost = 128;

struct alignas(64) ThreadClock {
  std::atomic<uint64_t> batches{0};
};

float scheduled_lr(const TrainerConfig& c, float lr0, uint32_t epoch, uint64_t batches) {
  switch (c.schedule) {
    case Schedule::Step: return lr0 * std::pow(c.gamma, static_cast<float>(epoch / c.stepEvery));
    case Schedule::InverseSqrt: return static_cast<float>(lr0 / std::sqrt(1.0 + batches / c.scale));
    default: return lr0;
  }
}

// Per-thread partial sums of one epoch, read at the barrier.
struct alignas(64) EpochSums {
  double loss = 0;
  uint64_t samples = 0;
  uint64_t pushes = 0, staleSum = 0, staleMax = 0, rejected = 0, skipped = 0;
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

Monitor::Monitor(uint32_t threads) : n_(threads), slots_(new Slot[threads > 0 ? threads : 1]) {}

void Monitor::begin(uint32_t epochs, uint32_t threads) {
  seq_.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (uint32_t t = 0; t < n_; ++t) record(t, 0, 0, 0);
  used_.store(std::min(threads, n_), std::memory_order_relaxed);
  epoch_.store(1, std::memory_order_relaxed);
  epochs_.store(epochs, std::memory_order_relaxed);
  doneSamples_.store(0, std::memory_order_relaxed);
  const int64_t t0 = now_ns();
  t0_.store(t0, std::memory_order_relaxed);
  epochStart_.store(t0, std::memory_order_relaxed);
  finished_.store(false, std::memory_order_relaxed);
  started_.store(true, std::memory_order_relaxed);
  seq_.fetch_add(1, std::memory_order_release);
}

void Monitor::next_epoch(uint64_t epochSamples) {
  seq_.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (uint32_t t = 0; t < n_; ++t) record(t, 0, 0, 0);
  doneSamples_.store(doneSamples_.load(std::memory_order_relaxed) + epochSamples, std::memory_order_relaxed);
  epoch_.store(epoch_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  epochStart_.store(now_ns(), std::memory_order_relaxed);
  seq_.fetch_add(1, std::memory_order_release);
}

void Monitor::finish(double lr, uint64_t version) {
  seq_.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  end_.store(now_ns(), std::memory_order_relaxed);
  endLr_.store(lr, std::memory_order_relaxed);
  endVersion_.store(version, std::memory_order_relaxed);
  finished_.store(true, std::memory_order_relaxed);
  seq_.fetch_add(1, std::memory_order_release);
}

Live Monitor::poll(const Store* store) const {
  Live l;
  double loss = 0;
  int64_t t0 = 0, epochStart = 0, end = 0;
  for (unsigned tries = 0;; ++tries) {
    const uint64_t s1 = seq_.load(std::memory_order_acquire);
    if (s1 & 1) {
      if (tries < 64) cpu_relax();
      else std::this_thread::yield();
      continue;
    }
    l = Live{};
    loss = 0;
    l.started = started_.load(std::memory_order_relaxed);
    l.finished = finished_.load(std::memory_order_relaxed);
    l.epoch = l.started ? epoch_.load(std::memory_order_relaxed) : 0;
    l.epochs = epochs_.load(std::memory_order_relaxed);
    const uint32_t used = used_.load(std::memory_order_relaxed);
    for (uint32_t t = 0; t < used; ++t) {
      l.epochSamples += slots_[t].samples.load(std::memory_order_relaxed);
      l.batches += slots_[t].batches.load(std::memory_order_relaxed);
      loss += slots_[t].loss.load(std::memory_order_relaxed);
    }
    l.samples = doneSamples_.load(std::memory_order_relaxed) + l.epochSamples;
    t0 = t0_.load(std::memory_order_relaxed);
    epochStart = epochStart_.load(std::memory_order_relaxed);
    end = end_.load(std::memory_order_relaxed);
    l.lr = endLr_.load(std::memory_order_relaxed);
    l.version = endVersion_.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq_.load(std::memory_order_relaxed) == s1) break;
  }
  l.loss = l.epochSamples ? loss / l.epochSamples : NAN;
  if (l.started) {
    const int64_t now = l.finished ? end : now_ns();
    l.seconds = std::max<int64_t>(0, now - t0) * 1e-9;
    l.epochSeconds = std::max<int64_t>(0, now - epochStart) * 1e-9;
  }
  if (store && !l.finished) {
    l.lr = store->learning_rate();
    l.version = store->version();
  }
  return l;
}

Status train(const TrainerConfig& cfg, Store& store, const model::Model& m, const data::Dataset& d,
             const std::atomic<bool>* cancel, const std::function<void(const Progress&)>& onEpoch, Result* out,
             Monitor* monitor) {
  Status st = check_config(cfg);
  if (!st.ok()) return st;
  if (monitor && monitor->capacity() < cfg.threads)
    return Status::Error(Code::Internal, "the monitor has slots for " + std::to_string(monitor->capacity()) +
                                             " threads, the run " + std::to_string(cfg.threads));
  if (!(st = m.check_data(d)).ok()) return st;
  std::vector<uint32_t> tix;
  if (!(st = bind_model(m, store, &tix)).ok()) return st;
  if (d.rows > UINT32_MAX) return Status::Error(Code::InvalidArgument, "at most 2^32 - 1 rows", "data");

  const uint32_t T = cfg.threads;
  const float lrBefore = store.learning_rate();  // the store's rate now (store.learningRate may have changed it)
  const float lr0 = cfg.lr > 0.f ? cfg.lr : lrBefore;
  // A step schedule with gamma > 1 grows the rate every epoch: refused before
  // anything trains if it leaves float's range (an infinite rate times a zero
  // gradient is NaN, and llrint(NaN) differs between machines).
  // (lr0 is finite, and only a growing step schedule can overflow: at its last epoch.)
  if (const uint32_t last = cfg.epochs - 1; !std::isfinite(scheduled_lr(cfg, lr0, last, 0)))
    return Status::Error(Code::Config,
                         "schedule.gamma " + std::to_string(cfg.gamma) + " makes the learning rate of epoch " +
                             std::to_string(last + 1) + " infinite (" + std::to_string(lr0) + " x gamma^" +
                             std::to_string(last / cfg.stepEvery) + ")",
                         "schedule.gamma");
  const bool sparse = m.sparse_gradient(d, cfg.batchSize);
  // Sparse gradients go as row-sparse pushes where that is exact (plain sgd
  // or adagrad without weight decay): the store steps only the touched rows.
  const bool rowPushes = sparse && store.rows_exact();
  // hogwild: threads read the parameters in place, racily, as Hogwild does
  // (not under ThreadSanitizer, which would report the model's reads).
  const float* racy = kTsanBuild ? nullptr : store.racy_view();

  // One fixed, seeded permutation split into T shares; each thread reshuffles
  // its share every epoch from (seed, epoch, thread).
  std::vector<uint32_t> perm(d.rows);
  std::iota(perm.begin(), perm.end(), 0u);
  {
    SplitMix64 r(cfg.seed ^ 0x5eedu);
    for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[r.next() % i]);
  }

  // Whether the per-sample path serves this run (sample.h), and its bound
  // on each row's inputs, once for all threads.
  const bool perSample = SampleStepper::applies(cfg, store, m, d, tix);
  const std::vector<float> rowMax = perSample ? SampleStepper::row_max(d) : std::vector<float>{};

  std::atomic<bool> stop{false};
  // Batches per epoch if the threads took turns: the schedule's clock.
  const uint64_t batchesPerEpoch = (uint64_t(d.rows) + T * uint64_t(cfg.batchSize) - 1) / (T * uint64_t(cfg.batchSize)) * T;
  std::mutex errMu;
  Status firstError;
  std::vector<ThreadClock> clocks(T);
  std::vector<EpochSums> sums(T);
  Result res;
  const auto t0 = Clock::now();
  auto epochStart = t0;
  uint64_t conflictsBefore = store.stats().conflicts;
  uint64_t totalSamples = 0;
  uint32_t epoch = 0;  // the current epoch, advanced at the barrier

  auto fail = [&](const Status& s) {
    std::lock_guard<std::mutex> g(errMu);
    if (firstError.ok()) firstError = s;
    stop.store(true, std::memory_order_relaxed);
  };
  auto stopping = [&] { return stop.load(std::memory_order_relaxed) || (cancel && cancel->load(std::memory_order_relaxed)); };

  // Runs on one thread when all have arrived: sync, report, decide.
  auto completion = [&]() noexcept {
    const auto now = Clock::now();
    Progress p;
    p.epoch = epoch + 1;
    p.epochs = cfg.epochs;
    double loss = 0;
    uint64_t pushes = 0, staleSum = 0;
    for (uint32_t t = 0; t < T; ++t) {
      const EpochSums& e = sums[t];
      loss += e.loss;
      p.epochSamples += e.samples;
      pushes += e.pushes;
      staleSum += e.staleSum;
      p.stalenessMax = std::max(p.stalenessMax, e.staleMax);
      p.rejected += e.rejected;
      p.skipped += e.skipped;
      sums[t] = EpochSums{};
    }
    totalSamples += p.epochSamples;
    for (auto& c : clocks) c.batches.store(0, std::memory_order_relaxed);
    if (!firstError.ok() || (cancel && cancel->load(std::memory_order_relaxed))) {
      stop.store(true);  // an unfinished epoch: no report
      return;
    }
    Status s = store.sync();  // averaging: applies the open round; deterministic: refreshes the decay anchor
    if (!s.ok()) {
      fail(s);
      return;
    }
    p.samples = totalSamples;
    p.loss = p.epochSamples ? loss / p.epochSamples : NAN;
    p.seconds = std::chrono::duration<double>(now - t0).count();
    p.epochSeconds = std::chrono::duration<double>(now - epochStart).count();
    p.samplesPerSec = p.epochSeconds > 0 ? p.epochSamples / p.epochSeconds : 0;
    p.lr = store.learning_rate();
    p.stalenessMean = pushes ? double(staleSum) / pushes : 0;
    const uint64_t conflicts = store.stats().conflicts;
    p.conflicts = conflicts - conflictsBefore;
    conflictsBefore = conflicts;
    p.version = store.version();
    epochStart = now;
    res.epochs = epoch + 1;
    res.loss = p.loss;
    if (onEpoch) onEpoch(p);
    ++epoch;
    if (!std::isnan(cfg.targetLoss) && p.loss <= cfg.targetLoss) {
      res.reason = StopReason::TargetLoss;
      stop.store(true);
    }
    if (epoch >= cfg.epochs) stop.store(true);
    // the monitor moves on only to an epoch that will be trained: after the
    // last, it keeps showing that epoch's full counts
    if (monitor && !stop.load()) monitor->next_epoch(p.epochSamples);
  };
  std::barrier sync(static_cast<std::ptrdiff_t>(T), completion);

  auto worker = [&](uint32_t t) {
    const size_t lo = size_t(d.rows) * t / T, hi = size_t(d.rows) * (t + 1) / T;
    std::vector<uint32_t> mine(perm.begin() + lo, perm.begin() + hi);
    const size_t B = cfg.batchSize;
    AlignedArray<float> replica(store.padded_floats()), grad(store.padded_floats());
    std::vector<float> ws(m.workspace_floats(d, B) + 16);
    const size_t K = tix.size();
    std::vector<const float*> p(K);
    std::vector<float*> g(K);
    std::vector<Grad> grads(K);
    for (size_t k = 0; k < K; ++k) {
      const TensorInfo& ti = store.tensor(tix[k]);
      p[k] = (racy ? racy : replica.data()) + ti.offset;
      g[k] = grad.data() + ti.offset;
      grads[k] = Grad{tix[k], g[k], ti.size};
    }
    std::vector<model::Touched> touched(K), need(K);
    std::vector<Grad> reads(K);
    for (size_t k = 0; k < K; ++k) reads[k] = Grad{tix[k], nullptr, 0};
    // The per-sample path (sample.h), where the run qualifies: its tally is
    // committed every kChunk samples, before a generic push and at the
    // epoch's end, and a gate place is held between commits.
    std::unique_ptr<SampleStepper> fused = perSample ? SampleStepper::make(store, m, d, tix, rowMax) : nullptr;
    Store::SampleHold hold(store);
    Store::SampleTally tally;
    float lrSet = NAN;
    auto commit = [&](uint64_t myBatches, const EpochSums& local) {
      store.commit_samples(tally);
      hold.leave();
      clocks[t].batches.store(myBatches, std::memory_order_release);
      if (monitor) monitor->record(t, local.samples, myBatches, local.loss);
    };
    for (;;) {
      const uint32_t e = epoch;  // written only in the completion, which happens-before this read
      SplitMix64 r(cfg.seed * 0x9E3779B97F4A7C15ull + (uint64_t(e) << 32) + t + 1);
      for (size_t i = mine.size(); i > 1; --i) std::swap(mine[i - 1], mine[r.next() % i]);
      EpochSums local;
      uint64_t myBatches = 0;
      if (fused)  // the pipeline of prefetches (sample.h) filled for the first rows
        for (size_t k = 0; k < std::min<size_t>(3, mine.size()); ++k) {
          fused->prefetch_index(mine[k]);
          if (k < 2) fused->prefetch_data(mine[k]);
          if (k < 1) fused->prefetch_params(mine[k]);
        }
      for (size_t at = 0; at < mine.size(); at += B) {
        if (stopping()) break;
        // This batch's rate, from where it stands in the epoch's plan (its
        // number if the threads took turns), never from the other threads'
        // progress: the rate a push gets does not depend on timing, and the
        // push carries it (setting the store's rate between pushes would let
        // one thread's push take another's). The store's rate follows it,
        // for what it reports.
        const uint64_t planned = uint64_t(e) * batchesPerEpoch + myBatches * T + t;
        const float lr = scheduled_lr(cfg, lr0, e, planned);
        if (!(lr == lrSet) && (cfg.schedule != Schedule::Constant || t == 0)) store.set_learning_rate(lrSet = lr);
        if (fused) {
          // the memory of the samples ahead, one stage a step (sample.h)
          if (at + 3 < mine.size()) fused->prefetch_index(mine[at + 3]);
          if (at + 2 < mine.size()) fused->prefetch_data(mine[at + 2]);
          if (at + 1 < mine.size()) fused->prefetch_params(mine[at + 1]);
          hold.enter();
          double l;
          uint64_t st;
          if (fused->step(mine[at], lr, tally, &l, &st) == SampleStepper::Outcome::Applied) {
            local.loss += l;
            ++local.samples;
            ++local.pushes;
            local.staleSum += st;
            local.staleMax = std::max(local.staleMax, st);
            ++myBatches;
            if (tally.applied >= SampleStepper::kChunk) commit(myBatches, local);
            continue;
          }
          commit(myBatches, local);  // the generic push may pause the pushes: no gate place held
        }
        if (cfg.maxAhead >= 0) {
          // Wait while more than maxAhead batches ahead of the slowest thread
          // still in this epoch (finished threads read as UINT64_MAX).
          for (unsigned spins = 0;; ++spins) {
            uint64_t slowest = UINT64_MAX;
            for (uint32_t o = 0; o < T; ++o)
              if (o != t) slowest = std::min(slowest, clocks[o].batches.load(std::memory_order_acquire));
            if (slowest == UINT64_MAX || myBatches <= slowest + uint64_t(cfg.maxAhead) || stopping()) break;
            if (spins < 64) cpu_relax();
            else std::this_thread::yield();
          }
        }
        const size_t n = std::min(B, mine.size() - at);
        // Read what this batch needs: its rows of sparse tensors, or everything.
        uint64_t v = 0;
        if (racy) {
          v = store.version();
        } else if (sparse) {
          m.rows_needed(d, mine.data() + at, n, sparse, need.data());
          for (size_t k = 0; k < K; ++k) {
            // Rows only where they are few: a copy moves ~kRowCost floats in the
            // time one scattered row costs (bench: W3's 2,000 single-float rows
            // of 47,236 read faster as one copy).
            bool rows = !need[k].dense;
            if (rows) {
              const std::vector<uint32_t>& r = need[k].rows;
              size_t runs = r.empty() ? 0 : 1;  // consecutive rows read as one piece
              for (size_t i = 1; i < r.size(); ++i) runs += r[i] != r[i - 1] + 1;
              rows = runs * kRowCost < store.tensor(tix[k]).size;
            }
            reads[k].rows = rows ? need[k].rows.data() : nullptr;
            reads[k].nrows = rows ? need[k].rows.size() : 0;
            reads[k].width = need[k].width;
          }
          Status rs = store.snapshot_rows(reads.data(), K, replica.data(), &v);
          if (!rs.ok()) {
            fail(rs);
            break;
          }
        } else {
          v = store.snapshot(replica.data());
        }
        const double batchLoss = m.grad(p.data(), d, mine.data() + at, n, g.data(), ws.data(), touched.data(), sparse);
        // A non-finite loss means the model diverged: under 'reject' the run
        // stops with that error instead of reporting NaN as a completed run;
        // under 'skip' the batch is left out of the loss (its push, if its
        // gradient is non-finite too, is skipped by the store).
        if (!std::isfinite(batchLoss)) {
          if (store.config().nonFinite == NonFinitePolicy::Reject) {
            Status e = Status::Error(Code::NonFinite, "the training loss became non-finite (" + std::to_string(batchLoss) +
                                                          ") in epoch " + std::to_string(epoch + 1) +
                                                          ": the model diverged; lower the learning rate");
            fail(e);
            break;
          }
        } else {
          local.loss += batchLoss;
        }
        local.samples += n;
        if (rowPushes)
          for (size_t k = 0; k < K; ++k) {
            const model::Touched& tk = touched[k];
            grads[k].rows = tk.dense ? nullptr : tk.rows.data();
            grads[k].nrows = tk.dense ? 0 : tk.rows.size();
            grads[k].width = tk.width;
          }
        PushResult pr;
        Status s = store.push(grads.data(), K, static_cast<int64_t>(v), &pr, lr);
        if (sparse)
          for (size_t k = 0; k < K; ++k) {
            if (touched[k].dense) continue;
            const size_t w = touched[k].width;
            if (w == 1)
              for (uint32_t row : touched[k].rows) g[k][row] = 0.f;
            else
              for (uint32_t row : touched[k].rows) std::fill_n(g[k] + size_t{row} * w, w, 0.f);
          }
        if (!s.ok()) {
          fail(s);
          break;
        }
        ++local.pushes;
        local.staleSum += pr.staleness;
        local.staleMax = std::max(local.staleMax, pr.staleness);
        if (!pr.applied) ++(pr.reason == SkipReason::Stale ? local.rejected : local.skipped);
        clocks[t].batches.store(++myBatches, std::memory_order_release);
        if (monitor) monitor->record(t, local.samples, myBatches, local.loss);
      }
      if (fused) commit(myBatches, local);
      clocks[t].batches.store(UINT64_MAX, std::memory_order_release);
      sums[t] = local;
      sync.arrive_and_wait();
      if (stop.load()) return;
    }
  };

  std::vector<std::thread> pool;
  pool.reserve(T);
  if (monitor) monitor->begin(cfg.epochs, T);
  try {
    for (uint32_t t = 1; t < T; ++t) pool.emplace_back(worker, t);
  } catch (...) {
    stop.store(true);
    // threads that did start wait at the barrier for the ones that did not: drop those
    for (size_t k = pool.size() + 1; k < T; ++k) sync.arrive_and_drop();
    worker(0);
    for (auto& th : pool) th.join();
    if (monitor) monitor->finish(store.learning_rate(), store.version());
    store.set_learning_rate(lrBefore);
    return Status::Error(Code::Internal, "could not start " + std::to_string(T) + " threads");
  }
  worker(0);
  for (auto& th : pool) th.join();
  if (monitor) monitor->finish(store.learning_rate(), store.version());
  store.set_learning_rate(lrBefore);

  res.samples = totalSamples;
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.samplesPerSec = res.seconds > 0 ? totalSamples / res.seconds : 0;
  if (!firstError.ok()) {
    res.reason = StopReason::Error;
    *out = res;
    return firstError;
  }
  if (cancel && cancel->load() && res.epochs < cfg.epochs && res.reason != StopReason::TargetLoss)
    res.reason = StopReason::Aborted;
  *out = res;
  return Status::Ok();
}

}  // namespace gv::train
