// The vault: named float32 tensors in aligned native memory, updated only
// through push() with one of six strategies, read only through snapshot()
// copies. No Node headers here; errors come back as a Status.
#pragma once
#include <array>
#include <cmath>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../kernels/optim/step.h"
#include "store/gate.h"
#include "store/magnitude.h"
#include "data/standardize.h"
#include "status.h"

namespace gv {

template <class S>
struct BasicStripeLock;
namespace detail { struct PlainLock; }

enum class Mode : int { Atomic = 0, Locked, Versioned, Deterministic, Averaging, Hogwild };
enum class InitKind : int { Zeros = 0, Glorot, Normal, Values };
enum class StalePolicy : int { Accept = 0, Scale, Reject };
enum class NonFinitePolicy : int { Reject = 0, Skip };

const char* mode_name(Mode m);
bool parse_mode(const std::string& s, Mode* out);

// The configuration's names, as the facade sends them (lib/config.ts). An
// unknown name is an ERR_CONFIG Status naming the field and the value, never
// a default (store/parse.cpp).
Status parse_store_mode(const std::string& s, Mode* out);               // mode
Status parse_optimizer_kind(const std::string& s, kernels::OptKind* out); // optimizer.kind
Status parse_init(const std::string& s, InitKind* out);                 // init: zeros, glorot, normal, values
Status parse_stale_policy(const std::string& s, StalePolicy* out);      // staleness.policy
Status parse_non_finite(const std::string& s, NonFinitePolicy* out);    // nonFinite
const char* init_name(InitKind k);
const char* optimizer_kind_name(kernels::OptKind k);
const char* stale_policy_name(StalePolicy p);
const char* non_finite_name(NonFinitePolicy p);

// Elements of one tensor, at most: lib/config.ts refuses more with the same
// constant (MAX_TENSOR_ELEMENTS; test/15.defaults checks they agree).
constexpr uint64_t kMaxTensorElements = uint64_t{1} << 32;

// Zeroes the padding between the tensors of a padded-layout buffer (which
// snapshot() does not write): a reused buffer then shows no earlier bytes
// there (store/pipeline.cpp).
class Store;
void clear_padding(const Store& s, float* out);

struct TensorSpec {
  TensorSpec() = default;
  TensorSpec(std::string n, std::vector<int64_t> s, InitKind i = InitKind::Zeros, float sd = 0.01f)
      : name(std::move(n)), shape(std::move(s)), init(i), std(sd) {}
  std::string name;
  std::vector<int64_t> shape;
  InitKind init = InitKind::Zeros;
  float std = 0.01f;          // for Normal
  std::vector<float> values;  // for Values: exactly size() floats
};

struct StoreConfig {
  Mode mode = Mode::Atomic;
  kernels::StepArgs optimizer;  // bc1/bc2 are set per push
  StalePolicy stalePolicy = StalePolicy::Accept;  // Scale: lr / (1 + staleness)
  // Pushes staler than this are rejected (counted), whatever the policy.
  // Left at UINT64_MAX (no bound), Reject uses 0: every stale push is refused.
  uint64_t staleBound = UINT64_MAX;
  NonFinitePolicy nonFinite = NonFinitePolicy::Reject;
  uint64_t syncEvery = 1;            // averaging: pushes per round
  uint64_t seed = 0;                 // initialisation
  size_t shardFloats = 16384;        // floats per stripe (64 KiB): the unit a writer owns (store/stripes.h)
  // Snapshots keep a checksum and pushes based on one modified in place are
  // refused: the facade does the checking (lib/snapshot.ts); the core keeps
  // the setting so that checkpoints record it.
  bool verify = false;
};

// What a store's parameters are for: a built-in model's kind and options
// and the data shape it was made for, as a trainer recorded it (checkpoint
// metadata "model"). kind empty: unknown (a store never trained, a file of
// another writer or an older one). Fields that do not apply to the kind are
// left at zero: hidden (mlp); rank, biases, l2 (mf); features (all but mf);
// classes (softmax, mlp); users, items (mf). model/model.cpp info_of() fills it.
struct ModelInfo {
  std::string kind;  // model::kind_name
  std::vector<uint32_t> hidden;
  uint32_t rank = 0;
  bool biases = false;
  float l2 = 0.f;
  uint64_t features = 0, classes = 0, users = 0, items = 0;
  // The scaler of the data it was trained on (a standardized dataset's,
  // data/standardize.h), features values each; empty: raw data. Inputs to
  // the model are standardized with it (predict). Part of the model: a
  // store trained on data of one scaler refuses data of another, or raw.
  data::Scaler scaler;
  bool known() const { return !kind.empty(); }
  bool operator==(const ModelInfo&) const = default;
};

// A ModelInfo as text for messages: "mlp (hidden [128], features 784, classes 10)".
std::string model_text(const ModelInfo& m);

// optimizer.lr where none is given: StepArgs's default, adam's own (lib/
// config.ts DEFAULTS.adamLr; test/15.defaults checks they agree).
constexpr float kAdamDefaultLr = 0.001f;
inline float default_lr(kernels::OptKind k) { return k == kernels::OptKind::Adam ? kAdamDefaultLr : kernels::StepArgs{}.lr; }

// A float32 setting as the shortest decimal that reads back as the same
// float, then as a double: 0.1f is 0.1, not 0.10000000149011612. Checkpoint
// metadata and the configuration the facade reads back use it, so a value
// written as 0.1 comes back as 0.1 (store/parse.cpp).
double float_decimal(float x);
// The same decimal as text (JSON: finite values only).
std::string float_text(float x);

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;
  size_t size = 0;    // elements
  size_t offset = 0;  // in floats, from the start of the padded layout; a multiple of 16 (64 bytes)
};

// One gradient of a push: the whole tensor, size must equal the tensor's.
// Row-sparse form (rows != null): data still spans the whole tensor but only
// rows[0..nrows) (ascending, unique, `width` floats each) are read and
// stepped, the rest taken as zero. The store accepts it only where that is
// exactly the dense push (rows_exact()).
struct Grad {
  uint32_t tensor;
  const float* data;
  size_t size;
  const uint32_t* rows = nullptr;
  size_t nrows = 0;
  size_t width = 0;
};

// A contiguous run of one gradient, at a flat offset of the padded layout.
struct Piece {
  uint32_t grad;       // index into the push's grads
  size_t offset, len;  // flat floats
  const float* g;      // the gradient at offset
};

enum class SkipReason : int { None = 0, Stale, NonFinite };

struct PushResult {
  bool applied = false;
  uint64_t version = 0;    // the store's version after this push (or at its rejection)
  uint64_t staleness = 0;  // version - basedOn at the push, 0 without basedOn
  SkipReason reason = SkipReason::None;
};

// Staleness histogram buckets: [0], [1], [2,3], [4,7], ... , [2^15, 2^16), [2^16, inf).
constexpr int kStaleBuckets = 18;
inline int stale_bucket(uint64_t s) {
  if (s == 0) return 0;
  int b = 64 - __builtin_clzll(s);  // 1 -> 1, 2..3 -> 2, 4..7 -> 3
  return b < kStaleBuckets - 1 ? b : kStaleBuckets - 1;
}

struct Stats {
  uint64_t version = 0;
  uint64_t pushes = 0;            // applied
  uint64_t rejectedStale = 0;     // refused by the staleness bound
  uint64_t skippedNonFinite = 0;  // refused for NaN/Inf under nonFinite: skip
  uint64_t conflicts = 0;         // hogwild: overlapping writers on a stripe (possible lost updates); other modes: 0
  uint64_t snapshots = 0;
  uint64_t rounds = 0;            // averaging: rounds applied; deterministic: syncs
  uint64_t pending = 0;           // averaging: pushes accumulated in the open round
  uint64_t stalenessCount = 0;    // pushes that named basedOn
  uint64_t stalenessSum = 0;
  uint64_t stalenessMax = 0;
  std::array<uint64_t, kStaleBuckets> stalenessHistogram{};
  uint64_t bytes = 0;             // native memory held: parameters, optimizer state, versions, accumulators
};

// Parameters and optimizer state at one point in time, in the padded layout
// (checkpoints). s1/s2 are empty when the optimizer keeps no such state;
// fixed holds deterministic mode's exact Q32.32 values.
struct StateImage {
  std::vector<float> params, s1, s2;
  std::vector<int64_t> fixed;
  // averaging: the open round (saving must not close it: that would change
  // what training computes). round holds its Q32.32 sums in the padded
  // layout, roundTensors which tensors its pushes named, pending how many
  // pushes it holds; all empty / 0 when no round is open.
  std::vector<int64_t> round;
  std::vector<uint8_t> roundTensors;
  uint64_t pending = 0;
  uint64_t version = 0, step = 0;
  double pauseSeconds = 0;  // how long pushes were held back to take it (0 when none were)
};

struct alignas(64) PaddedCounter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) { v.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// 64-byte aligned, zero-initialised memory of T.
template <class T>
class AlignedArray {
 public:
  AlignedArray() = default;
  explicit AlignedArray(size_t n);
  ~AlignedArray();
  AlignedArray(AlignedArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  AlignedArray& operator=(AlignedArray&& o) noexcept;
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

class Store {
 public:
  // Validates the tensors and the configuration; on success *out holds the store.
  static Status create(const StoreConfig& cfg, std::vector<TensorSpec> tensors, std::shared_ptr<Store>* out);
  virtual ~Store();

  Mode mode() const { return cfg_.mode; }
  const StoreConfig& config() const { return cfg_; }
  uint64_t id() const { return id_; }
  size_t tensor_count() const { return tensors_.size(); }
  const TensorInfo& tensor(size_t i) const { return tensors_[i]; }
  int64_t find(const std::string& name) const;
  size_t padded_floats() const { return padded_; }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

  // Applies one push of whole-tensor gradients. basedOn < 0: no basis given.
  // lr: this push's learning rate; NaN (the default) takes the store's
  // current one (set_learning_rate). A trainer passes each push its own, so
  // the rate a push gets never depends on another thread's timing.
  // On any error nothing was applied. Safe to call from any number of threads.
  Status push(const Grad* grads, size_t n, int64_t basedOn, PushResult* out, float lr = NAN);

  // hogwild only: the parameters themselves (padded layout), for a native
  // trainer that reads them in place as Hogwild does; null in every other mode.
  virtual const float* racy_view() { return nullptr; }

  // Whether a row-sparse push is exactly the dense push with zeros outside
  // its rows: the optimizer's step on a zero gradient changes nothing (plain
  // sgd or adagrad, no weight decay).
  bool rows_exact() const;

  // Copies every tensor into out (padded_floats() floats, tensors at their
  // offsets; padding is not written) and returns the version it was read at.
  uint64_t snapshot(float* out);

  // The same for some rows only: for each request (tensor, rows, nrows,
  // width; data unused) the listed rows, or the whole tensor when rows is
  // null, with the same guarantee as snapshot() in this mode. A trainer on
  // sparse data reads the rows its batch needs this way.
  Status snapshot_rows(const Grad* req, size_t n, float* out, uint64_t* version);

  // averaging: applies the open round now; deterministic: refreshes the weight
  // decay anchor; the other modes: nothing to do.
  virtual Status sync() { return Status::Ok(); }

  // ---- The per-sample path (trainer/sample.cpp): a trainer thread's
  // pushes of one sample each, computed and applied fused, with the mode's
  // own protocol on the rows the sample touches and the bookkeeping batched
  // per thread. Only for a store whose sample_access() says how.
  //
  // params: the float parameters in the padded layout. stripeFloats and
  // locks: the stripe protocol (store/stripes.h) of modes atomic and locked:
  // a sample's update of a stripe is made holding that stripe's lock, so no
  // update is lost. lockedReads (locked): the sample's rows are read under
  // the same locks; otherwise (atomic, hogwild) read in place, each element
  // a value some push wrote. writers (hogwild): per stripe, counted in and
  // out around the racy writes to find overlaps, as its pushes do.
  struct SampleAccess {
    float* params = nullptr;
    size_t stripeFloats = 0;
    BasicStripeLock<detail::PlainLock>* locks = nullptr;
    bool lockedReads = false;
    struct alignas(64) Writers {
      std::atomic<uint32_t> n{0};
    };
    Writers* writers = nullptr;
    // deterministic: the Q32.32 values (params null), read and written
    // under the stripe locks; a sample adds llrint(-lr * g * 2^32) to each
    // element it moves, as its pushes do (order-free integer sums).
    int64_t* fixed = nullptr;
  };
  // Whether this store takes per-sample pushes (atomic, locked, hogwild,
  // deterministic with plain sgd: the step of a sample is x * d on its rows
  // and nothing else).
  virtual bool sample_access(SampleAccess*) { return false; }
  // One thread's per-sample pushes since its last commit, applied already.
  struct SampleTally {
    uint64_t applied = 0, conflicts = 0;
    uint64_t stalenessSum = 0, stalenessMax = 0;
    std::array<uint64_t, kStaleBuckets> histogram{};
    void add_staleness(uint64_t s) {
      stalenessSum += s;
      stalenessMax = s > stalenessMax ? s : stalenessMax;
      ++histogram[stale_bucket(s)];
    }
  };
  // Counts them: the version moves by `applied` at once (release: a reader
  // that sees the new version sees their writes), and the push, step and
  // staleness counters by their totals. The tally is cleared.
  void commit_samples(SampleTally& t);
  // A place at the quiescence gate for a run of per-sample pushes: a
  // checkpoint waits until the holder commits and lets go, so the image
  // holds exactly the pushes its version counts.
  class SampleHold;
  // The magnitude ledger's worst case for plain sgd pushes whose moves
  // |lr * g| sum to at most `moves` (a thread reserves them ahead, in bulk).
  // False: the bound could leave the ledger's limit; nothing was reserved.
  bool reserve_sgd_moves(double moves) { return ledger_.reserve_sgd_moves(moves); }
  // The ledger's resets so far: a reservation made before the last one is void.
  uint64_t ledger_resets() const { return ledger_.resets(); }

  Stats stats() const;

  // Checkpoints. export_state() copies every tensor and the optimizer state
  // from one point in time: versioned mode pins a version (with optimizer
  // state, it also holds the writer for the copy), the others hold new pushes
  // at a gate and wait for those in flight (a brief quiescence, measured in
  // pauseSeconds); averaging copies its open round as it is. The image holds
  // exactly the pushes its version counts. Memory is allocated before the
  // gate closes, and the gate reopens on every path (an allocation failure
  // is an error, never a store that blocks its pushes). import_state()
  // replaces them (a store just created, before any push).
  Status export_state(StateImage* out);
  Status import_state(const StateImage& in);

  // The model the store's parameters are for (ModelInfo; unknown until a
  // trainer or a checkpoint records one). set_model() records it; a store
  // that already holds another model (kind, options or data shape; l2 aside,
  // which is the latest run's) refuses it: ERR_CONFIG naming 'model'.
  // Both are safe from any thread (a save may read it while a run starts).
  ModelInfo model() const {
    std::lock_guard<std::mutex> g(modelMu_);
    return model_;
  }
  Status set_model(const ModelInfo& m);

  // Learning rate used by pushes from now on (a schedule sets it between pushes).
  void set_learning_rate(float lr) { lr_.store(lr, std::memory_order_relaxed); }
  float learning_rate() const { return lr_.load(std::memory_order_relaxed); }

 protected:
  Store(const StoreConfig& cfg, std::vector<TensorInfo> tensors, size_t padded);

  // Mode-specific work. apply() sees validated, finite gradients; an error it
  // returns must be found before anything was modified.
  // maxAbs[i] is max |grads[i]| (measured by the non-finite check).
  // The pieces cover what is pushed: one per gradient for whole tensors
  // (sparse == false), else the runs of consecutive rows, in each gradient's
  // ascending order.
  virtual Status apply(const Grad* grads, size_t n, const Piece* pieces, size_t np, bool sparse,
                       const kernels::StepArgs& args, const float* maxAbs) = 0;
  // Copies the pieces (their offset and len; g unused) into out at the same
  // offsets; returns the version read at. sparse: many short pieces (rows).
  virtual uint64_t read(float* out, const Piece* pieces, size_t np, bool sparse) = 0;
  // Pieces of a push (forPush: rows only where rows_exact()) or of a row read.
  Status make_pieces(const Grad* grads, size_t n, bool forPush, std::vector<Piece>* pieces, bool* sparse) const;
  // Allocates memory and writes the initial values (specs_ holds the tensor specs).
  virtual void initialize() = 0;
  virtual void add_stats(Stats&) const {}
  // With pushes held at the gate (pause()): copy out / in. export_locked
  // writes into the image that size_image() sized (it must not allocate:
  // it runs with the gate closed). Versioned may be called without the
  // pause (no optimizer state): it pins a version.
  virtual void size_image(StateImage* out) const;
  virtual Status export_locked(StateImage* out) = 0;
  virtual Status import_locked(const StateImage& in) = 0;
  // The quiescence gate: every push passes it; pause() closes it and waits
  // for the pushes in flight (detail::QuiescenceGate, gate.h). Paused
  // holds it closed for a scope, so it reopens however the scope ends.
  void pause();
  void resume();
  struct Paused {
    Store* s;
    explicit Paused(Store* st) : s(st) { s->pause(); }
    ~Paused() { s->resume(); }
    Paused(const Paused&) = delete;
    Paused& operator=(const Paused&) = delete;
  };
  using Gate = detail::QuiescenceGate<>;
  // A push's place at the gate, left when the push ends (or earlier, by
  // the exact path, which must not hold a slot while it pauses pushes).
  struct GateSlot {
    Gate::Slot* slot = nullptr;
    void leave() {
      if (slot) Gate::leave(slot);
      slot = nullptr;
    }
    ~GateSlot() { leave(); }
  };
  // Float-state modes (atomic, locked, hogwild, versioned) keep a
  // MagnitudeLedger (magnitude.h) so that no push can make a value
  // non-finite. Both hooks run with pushes paused: dry_run() tries the
  // step on the pieces without writing and returns the first element (flat
  // offset) that would become non-finite, or SIZE_MAX; measure() gives the
  // exact maxima of |params|, |s1|, |s2|.
  virtual bool uses_ledger() const { return false; }
  virtual size_t dry_run(const Piece*, size_t, const kernels::StepArgs&) { return SIZE_MAX; }
  virtual void measure(double* p, double* s1, double* s2) { *p = *s1 = *s2 = 0; }
  void remeasure() {
    double p, s1, s2;
    measure(&p, &s1, &s2);
    ledger_.reset(p, s1, s2);
  }
  // The push after staleness, with its step arguments: the ledger's fast
  // path or the exact one (which leaves the caller's gate slot itself).
  Status step_checked(const Grad* grads, size_t n, const Piece* pieces, size_t np, bool sparse,
                      const kernels::StepArgs& args, const float* maxAbs, GateSlot& slot, PushResult* out);
  MagnitudeLedger ledger_;

 public:
  static constexpr size_t kGateCount = Gate::kSlots;

 protected:
  Gate gate_;
  virtual uint64_t extra_bytes() const { return 0; }
  virtual bool counts_version_itself() const { return false; }  // versioned publishes its own versions

  // Optimizer arguments for the next step t (1-based) at learning rate lr
  // (NaN: the store's), divided by lrDivisor (1 + staleness under 'scale').
  kernels::StepArgs step_args(uint64_t t, float lrDivisor, float lr = NAN) const;
  uint64_t next_step() { return steps_.fetch_add(1, std::memory_order_relaxed) + 1; }
  void fill_initial(float* params) const;
  int state_slots() const { return kernels::state_slots(cfg_.optimizer); }

  StoreConfig cfg_;
  std::vector<TensorInfo> tensors_;
  std::vector<TensorSpec> specs_;  // kept until the subclass fills memory, then cleared
  size_t padded_ = 0;
  uint64_t id_ = 0;
  // Release on every applied push, paired with the acquire in version(): a
  // reader that sees version v also sees the push that made it.
  std::atomic<uint64_t> version_{0};
  std::atomic<uint64_t> steps_{0};
  std::atomic<float> lr_{0.f};
  mutable std::mutex modelMu_;
  ModelInfo model_;  // guarded by modelMu_

  mutable PaddedCounter pushes_, rejectedStale_, skippedNonFinite_, conflicts_, snapshots_;
  PaddedCounter staleCount_, staleSum_;
  std::atomic<uint64_t> staleMax_{0};
  std::array<PaddedCounter, kStaleBuckets> staleHist_;
  void raise_stale_max(uint64_t s);  // staleMax_ = max(staleMax_, s)

 public:
  class SampleHold {
   public:
    explicit SampleHold(Store& s) : s_(s) {}
    void enter();
    void leave() { slot_.leave(); }
    bool held() const { return slot_.slot != nullptr; }

   private:
    Store& s_;
    GateSlot slot_;
  };

};

}  // namespace gv
