// (About 900 lines: every contender with its baselines in one program, so
// they run in the same process and the same conditions.)
// gv_bench_core: throughput of the core alone (no Node), each contender beside
// its baselines in the same run.
//
//   push      T threads each push whole-tensor gradients (their own buffer)
//             into ONE shared store, plain SGD. Counted as 12 bytes/element
//             (read params, read grad, write params), like the triad.
//   snapshot  T threads each copy the whole store into their own buffer.
//             Counted as 8 bytes/element (read, write), like memcpy.
//
// Baselines, same thread counts, same bytes per element, measured in chunks
// interleaved with the contenders (the machine is noisy; pooled medians):
//   triad         a_t[i] = a_t[i] + s*c_t[i]: each thread its OWN a_t and c_t
//                 of the tensor's size. Same bytes and per-thread working set
//                 as T pushers, nothing shared, nothing synchronised: the
//                 roofline the goals are measured against.
//   triad-shared  a[i] = a[i] + s*c_t[i] on ONE shared a (racy): what any
//                 in-place mode must at least pay for sharing the tensor
//                 (coherence traffic), without any synchronisation.
//   memcpy        std::memcpy of one shared source into each thread's own
//                 destination (glibc; non-temporal stores for large copies).
//   read          the core's non-finite scan of the gradient alone (kernel
//                 `scan`, which also returns max|g|): every push reads its
//                 gradient once with it before applying it.
//   ctr           ns per fetch_add on one shared counter from every thread
//                 (the per-push bookkeeping atomics pay this).
//
// Extras (--no-prototypes skips them): micro rows of the core's copy kernels
// alone and of copies into freshly allocated memory.
//
// Build (stand-alone, as the CMake target gv_bench_core does):
//   g++ -std=c++20 -O3 -ffp-contract=off -fno-math-errno -pthread -Inative
//       bench/core_bench.cpp $(cat native/sources.txt) -o build-bench/gv_bench_core
// (one line), or: cmake --build <dir> --target gv_bench_core
// Run: gv_bench_core --help
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "core/store.h"
#include "core/store/stripes.h"
#include "kernels/dispatch.h"

namespace {

using Clock = std::chrono::steady_clock;
double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "gv_bench_core: ");
  std::vfprintf(stderr, fmt, ap);
  std::fprintf(stderr, "\n");
  va_end(ap);
  std::exit(2);
}

// ------------------------------------------------------------------ options

const char* kAllModes[] = {"atomic", "locked", "versioned", "deterministic", "averaging", "hogwild"};

struct Options {
  std::vector<size_t> sizes{1000, 100000, 10000000};
  std::vector<int> threads{1, 2};
  std::vector<std::string> modes{std::begin(kAllModes), std::end(kAllModes)};
  int reps = 9;             // rounds: timed repetitions per case (median)
  double repMs = 25;        // each repetition runs at least this long (work is batched to reach it)
  bool pin = true;          // pin worker t to CPU t % cpus
  bool prototypes = true;  // the extras: copy micro rows
  bool snapshots = true;
  bool averagingSyncT = true;  // also averaging with syncEvery = threads
  bool smoke = false;
  bool quiet = false;
  std::string json;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

size_t parse_size(const std::string& s) {
  // 1000, 100k, 10M, 1e7
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str()) die("bad size '%s'", s.c_str());
  std::string suf(end);
  if (suf == "k" || suf == "K") v *= 1e3;
  else if (suf == "m" || suf == "M") v *= 1e6;
  else if (!suf.empty()) die("bad size '%s'", s.c_str());
  if (v < 1 || v > 4e9) die("size out of range: '%s'", s.c_str());
  return static_cast<size_t>(v);
}

void usage() {
  std::printf(
      "gv_bench_core: push and snapshot throughput of every mode of the gradvault core, beside\n"
      "memcpy / triad baselines measured in the same run (medians; ratios to the baselines).\n\n"
      "  --sizes LIST       floats per tensor, e.g. 1000,100k,10M        (default 1000,100000,10000000)\n"
      "  --threads LIST     thread counts, e.g. 1,2,4,8,16,32,64          (default 1,2)\n"
      "  --modes LIST|all   atomic,locked,versioned,deterministic,averaging,hogwild (default all)\n"
      "  --reps N           rounds; each runs one repetition of every case (default 9)\n"
      "  --rep-ms X         minimum duration of one repetition, ms        (default 25)\n"
      "  --json FILE        write every result as JSON\n"
      "  --no-pin           do not pin worker threads to CPUs\n"
      "  --no-prototypes    skip the extras: copy micro rows\n"
      "  --no-snapshot      skip snapshot cases\n"
      "  --no-averaging-sync-t  skip averaging with syncEvery = threads\n"
      "  --smoke            quick CI check: 1000,100000 floats, 1 rep, short reps (< 10 s)\n"
      "  --quiet            print only the summary tables\n"
      "Environment: GRADVAULT_ISA=scalar|avx2|avx512|neon forces the core's kernels.\n");
}

Options parse(int argc, char** argv) {
  Options o;
  bool repsSet = false, sizesSet = false, repMsSet = false;
  auto need = [&](int& i) -> std::string {
    if (i + 1 >= argc) die("%s needs a value", argv[i]);
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else if (a == "--sizes") {
      o.sizes.clear();
      for (auto& s : split(need(i), ',')) o.sizes.push_back(parse_size(s));
      sizesSet = true;
    } else if (a == "--threads") {
      o.threads.clear();
      for (auto& s : split(need(i), ',')) {
        int t = std::atoi(s.c_str());
        if (t < 1 || t > 1024) die("bad thread count '%s'", s.c_str());
        o.threads.push_back(t);
      }
    } else if (a == "--modes") {
      std::string v = need(i);
      o.modes.clear();
      if (v == "all") {
        o.modes.assign(std::begin(kAllModes), std::end(kAllModes));
      } else {
        for (auto& m : split(v, ',')) {
          gv::Mode mm;
          if (!gv::parse_mode(m, &mm)) die("unknown mode '%s'", m.c_str());
          o.modes.push_back(m);
        }
      }
    } else if (a == "--reps") {
      o.reps = std::max(1, std::atoi(need(i).c_str()));
      repsSet = true;
    } else if (a == "--rep-ms") {
      o.repMs = std::max(0.01, std::atof(need(i).c_str()));
      repMsSet = true;
    } else if (a == "--json") {
      o.json = need(i);
    } else if (a == "--no-pin") {
      o.pin = false;
    } else if (a == "--no-prototypes") {
      o.prototypes = false;
    } else if (a == "--no-snapshot") {
      o.snapshots = false;
    } else if (a == "--no-averaging-sync-t") {
      o.averagingSyncT = false;
    } else if (a == "--smoke") {
      o.smoke = true;
    } else if (a == "--quiet") {
      o.quiet = true;
    } else {
      usage();
      die("unknown option '%s'", a.c_str());
    }
  }
  if (o.smoke) {
    if (!sizesSet) o.sizes = {1000, 100000};
    if (!repsSet) o.reps = 1;
    if (!repMsSet) o.repMs = 2;
  }
  std::sort(o.threads.begin(), o.threads.end());
  o.threads.erase(std::unique(o.threads.begin(), o.threads.end()), o.threads.end());
  return o;
}

// ------------------------------------------------------------------ machine

struct Machine {
  std::string cpu, isa, isas, compiler, date, kernel, loadStart, loadEnd;
  int cpus = 0;        // logical CPUs this process may run on
  int online = 0;      // logical CPUs online
  long l2 = 0, l3 = 0;
};

std::string read_cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0 || line.rfind("CPU part", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) {
        std::string v = line.substr(p + 1);
        while (!v.empty() && v.front() == ' ') v.erase(v.begin());
        return v;
      }
    }
  }
  return "unknown";
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a.empty() ? "" : a + " " + b + " " + c;
}

Machine machine() {
  Machine m;
  m.loadStart = loadavg();
  m.cpu = read_cpu_model();
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  m.cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
  m.online = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
#ifdef _SC_LEVEL2_CACHE_SIZE
  m.l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  m.l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
  std::ifstream k("/proc/sys/kernel/osrelease");
  std::getline(k, m.kernel);
#endif
  if (m.cpus <= 0) m.cpus = static_cast<int>(std::thread::hardware_concurrency());
  const auto& t = gv::kernels::active();
  m.isa = t.name;
  for (auto isa : {gv::kernels::Isa::Scalar, gv::kernels::Isa::Avx2, gv::kernels::Isa::Avx512, gv::kernels::Isa::Neon})
    if (gv::kernels::isa_supported(isa)) m.isas += std::string(m.isas.empty() ? "" : ",") + gv::kernels::isa_name(isa);
#if defined(__clang__)
  m.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  m.compiler = std::string("g++ ") + __VERSION__;
#endif
  std::time_t tt = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
  m.date = buf;
  return m;
}

// ------------------------------------------------------------------ threads

void pin_to(int cpu) {
#if defined(__linux__)
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  int n = CPU_COUNT(&allowed);
  if (n <= 0) return;
  int want = cpu % n, seen = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) {
      if (seen++ == want) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
        return;
      }
    }
#else
  (void)cpu;
#endif
}

// T persistent worker threads. run(job) starts job(tid) on all of them at
// once (a spin barrier lines them up) and returns the seconds from the
// earliest start to the latest finish. The coordinating thread sleeps
// (futex) meanwhile, so it steals no CPU from the workers.
class Team {
 public:
  Team(int n, bool pin) : n_(n), start_(n), end_(n) {
    for (int t = 0; t < n; ++t)
      threads_.emplace_back([this, t, pin] {
        if (pin) pin_to(t);
        uint64_t seen = 0;
        for (;;) {
          gen_.wait(seen, std::memory_order_acquire);
          seen = gen_.load(std::memory_order_acquire);
          if (stop_.load(std::memory_order_acquire)) return;
          arrived_.fetch_add(1, std::memory_order_acq_rel);
          unsigned spins = 0;
          while (arrived_.load(std::memory_order_acquire) < n_)
            if (++spins > 2000) std::this_thread::yield(); else gv::cpu_relax();
          start_[t] = now_s();
          (*job_)(t);
          end_[t] = now_s();
          if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) done_.notify_one();
        }
      });
  }
  ~Team() {
    stop_.store(true, std::memory_order_release);
    gen_.fetch_add(1, std::memory_order_acq_rel);
    gen_.notify_all();
    for (auto& th : threads_) th.join();
  }
  int size() const { return n_; }
  double run(const std::function<void(int)>& job) {
    job_ = &job;
    arrived_.store(0, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_acq_rel);  // release: job_ and the resets are visible to the workers
    gen_.notify_all();
    for (int d = done_.load(std::memory_order_acquire); d < n_; d = done_.load(std::memory_order_acquire))
      done_.wait(d, std::memory_order_acquire);
    double s = *std::min_element(start_.begin(), start_.end());
    double e = *std::max_element(end_.begin(), end_.end());
    return e - s;
  }

 private:
  int n_;
  std::vector<std::thread> threads_;
  std::vector<double> start_, end_;
  const std::function<void(int)>* job_ = nullptr;
  alignas(64) std::atomic<uint64_t> gen_{0};
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
};

// ------------------------------------------------------------------ memory

struct Buf {
  float* p = nullptr;
  size_t n = 0;
  Buf() = default;
  explicit Buf(size_t count) : n(count) {
    size_t bytes = (std::max<size_t>(count, 16) * sizeof(float) + 63) / 64 * 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) die("out of memory (%zu bytes)", bytes);
  }
  ~Buf() { std::free(p); }
  Buf(Buf&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr; o.n = 0; }
  Buf& operator=(Buf&& o) noexcept {
    std::swap(p, o.p);
    std::swap(n, o.n);
    return *this;
  }
  Buf(const Buf&) = delete;
};

// Small, finite, non-zero gradients (the atomic path skips all-zero groups).
void fill_grad(float* g, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    double u = static_cast<double>((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;  // [0,1)
    float v = static_cast<float>((u - 0.5) * 2e-3);
    g[i] = v == 0.f ? 1e-6f : v;
  }
}

// ------------------------------------------------------------------ baseline kernels
// The baselines use the best instruction set of this CPU (not the core's
// choice): they stand for what the machine can do.

#if defined(__x86_64__)
__attribute__((target("avx2"))) void triad_avx2(float* a, const float* c, float s, size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = a[i] + s * c[i];
}
#endif
void triad_plain(float* a, const float* c, float s, size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = a[i] + s * c[i];
}
// Racy by design (triad-shared, like hogwild).
__attribute__((no_sanitize("thread"))) void triad(float* a, const float* c, float s, size_t n) {
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return triad_avx2(a, c, s, n);
#endif
  triad_plain(a, c, s, n);
}

// Keeps the compiler from dropping a computation whose result is unused.
template <class T>
inline void keep(T const& v) {
  asm volatile("" : : "r,m"(v) : "memory");
}

// ------------------------------------------------------------------ stats

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}
double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// One measured case: `ops` operations per repetition over all threads, each
// repetition taking secs[r].
struct Result {
  std::string kind;   // baseline | push | snapshot | proto-push | proto-snapshot | micro
  std::string name;   // e.g. triad, atomic, averaging/s=2, kernel-copy
  std::string mode;   // store mode, or ""
  size_t size = 0;
  int threads = 0;
  uint64_t syncEvery = 0;
  double bytesPerOp = 0;   // counted bytes per operation (12N push, 8N snapshot)
  uint64_t opsPerRep = 0;  // operations per repetition, all threads together
  std::vector<double> secs;
  std::string baseline;    // name of the baseline the ratio is against
  double ratio = 0;        // median GB/s / baseline median GB/s
  uint64_t conflicts = 0;  // from the store's stats
  std::string note;

  double med() const { return median(secs); }
  double gbps() const { return med() > 0 ? bytesPerOp * static_cast<double>(opsPerRep) / med() / 1e9 : 0; }
  double ops_per_s() const { return med() > 0 ? static_cast<double>(opsPerRep) / med() : 0; }
  // Wall time of one operation on one thread (per-thread latency).
  double ns_per_op() const { return med() > 0 ? med() / (static_cast<double>(opsPerRep) / threads) * 1e9 : 0; }
  double gbps_at(double q) const {
    double s = quantile(secs, q);
    return s > 0 ? bytesPerOp * static_cast<double>(opsPerRep) / s / 1e9 : 0;
  }
};

// ------------------------------------------------------------------ bench driver

struct SizeCtx {
  size_t n = 0;
  std::vector<Buf> grads;   // one per thread (private gradient buffers)
  std::vector<Buf> outs;    // one per thread (snapshot / memcpy destinations)
  std::vector<Buf> priv;    // triad: each thread's own target
  Buf shared;               // triad-shared target, memcpy source
};

using OpK = std::function<void(int tid, uint64_t k)>;

// One contender or baseline of a (size, threads) block: its operation, the
// objects it needs alive, and its repetitions.
struct Case {
  Result r;
  OpK op;
  uint64_t k = 1;
  std::shared_ptr<void> keepAlive;          // the store the operation uses
  std::shared_ptr<gv::Store> store;         // for its conflict counter
  uint64_t conflictsBefore = 0;
};

class Bench {
 public:
  explicit Bench(const Options& o) : o_(o), m_(machine()) {}

  int main() {
    double t0 = now_s();
    print_machine();
    for (int t : o_.threads) teams_[t] = std::make_unique<Team>(t, o_.pin);
    micro_counter();
    for (size_t n : o_.sizes) run_size(n);
    summary();
    total_ = now_s() - t0;
    m_.loadEnd = loadavg();
    std::printf("\ntotal: %.1f s; load average at start %s, at end %s\n", total_, m_.loadStart.c_str(),
                m_.loadEnd.c_str());
    if (!o_.json.empty()) write_json(o_.json);
    return 0;
  }

 private:
  const Options& o_;
  Machine m_;
  std::map<int, std::unique_ptr<Team>> teams_;
  std::vector<Result> results_;
  double total_ = 0;

  double target_s() const { return o_.repMs / 1000.0; }

  void print_machine() {
    std::printf("machine: %s, %d logical CPUs usable (%d online), L2 %ld KiB, L3 %ld KiB, kernel %s, load %s\n",
                m_.cpu.c_str(), m_.cpus, m_.online, m_.l2 / 1024, m_.l3 / 1024, m_.kernel.c_str(),
                m_.loadStart.c_str());
    std::printf("isa: core kernels '%s' (supported: %s)%s; baselines: best of this CPU\n", m_.isa.c_str(),
                m_.isas.c_str(), std::getenv("GRADVAULT_ISA") ? " [GRADVAULT_ISA set]" : "");
    std::printf("compiler: %s; options: %d rounds (one repetition of every case per round), rep >= %.1f ms, pin %s%s\n",
                m_.compiler.c_str(), o_.reps, o_.repMs, o_.pin ? "on" : "off", o_.smoke ? ", SMOKE" : "");
    std::fflush(stdout);
  }

  // Runs one repetition of k ops per thread and returns its seconds.
  double rep(Team& team, const OpK& op, uint64_t k) {
    std::function<void(int)> job = [&](int tid) { op(tid, k); };
    return team.run(job);
  }

  // k ops per thread per repetition so that a repetition lasts >= target.
  // The calibration repetitions double as warm-up.
  uint64_t calibrate(Team& team, const OpK& op) {
    uint64_t k = 1;
    for (int i = 0; i < 40; ++i) {
      double s = rep(team, op, k);
      if (s >= target_s()) return k;
      double grow = s > 0 ? target_s() / s * 1.25 : 16;
      grow = std::min(std::max(grow, 2.0), 64.0);
      k = static_cast<uint64_t>(std::ceil(static_cast<double>(k) * grow));
    }
    return k;
  }

  std::shared_ptr<gv::Store> make_store(const std::string& mode, size_t n, uint64_t syncEvery) {
    gv::StoreConfig cfg;
    if (!gv::parse_mode(mode, &cfg.mode)) die("unknown mode %s", mode.c_str());
    cfg.optimizer.kind = gv::kernels::OptKind::Sgd;
    cfg.optimizer.lr = 1e-3f;
    cfg.syncEvery = syncEvery;
    gv::TensorSpec spec;
    spec.name = "w";
    spec.shape = {static_cast<int64_t>(n)};
    spec.init = gv::InitKind::Zeros;
    std::shared_ptr<gv::Store> s;
    gv::Status st = gv::Store::create(cfg, {spec}, &s);
    if (!st.ok()) die("create %s: %s", mode.c_str(), st.message.c_str());
    return s;
  }

  void print_result(const Result& r) {
    std::printf("  %-14s %-28s T=%-2d %9.2f GB/s  %12.0f ops/s  %10.0f ns/op  x%-5.3f vs %s%s%s\n", r.kind.c_str(),
                r.name.c_str(), r.threads, r.gbps(), r.ops_per_s(), r.ns_per_op(), r.ratio, r.baseline.c_str(),
                r.conflicts ? ("  conflicts " + std::to_string(r.conflicts)).c_str() : "",
                r.note.empty() ? "" : ("  (" + r.note + ")").c_str());
    std::fflush(stdout);
  }

  static Case make_case(const char* kind, const std::string& name, const std::string& mode, size_t n, int T,
                        double bytes, const std::string& baseline, const std::string& note, OpK op) {
    Case c;
    c.r.kind = kind;
    c.r.name = name;
    c.r.mode = mode;
    c.r.size = n;
    c.r.threads = T;
    c.r.bytesPerOp = bytes;
    c.r.baseline = baseline;
    c.r.note = note;
    c.op = std::move(op);
    return c;
  }

  // ---- the cases of one (size, threads) block

  void add_baselines(std::vector<Case>& cs, SizeCtx& c, int T) {
    const size_t n = c.n;
    cs.push_back(make_case("baseline", "triad", "", n, T, 12.0 * n, "", "each thread its own a and c", [&c, n](int t, uint64_t k) {
      for (uint64_t i = 0; i < k; ++i) triad(c.priv[t].p, c.grads[t].p, -1e-3f, n);
    }));
    cs.push_back(make_case("baseline", "triad-shared", "", n, T, 12.0 * n, "", "one shared a, racy", [&c, n](int t, uint64_t k) {
      for (uint64_t i = 0; i < k; ++i) triad(c.shared.p, c.grads[t].p, -1e-3f, n);
    }));
    // As triad-shared, but thread t starts at t*N/T and wraps around, so
    // threads that start together write different lines.
    cs.push_back(make_case("baseline", "triad-shared-rot", "", n, T, 12.0 * n, "", "one shared a, staggered starts",
                           [&c, n, T](int t, uint64_t k) {
                             size_t off = (n * static_cast<size_t>(t) / static_cast<size_t>(T)) / 16 * 16;
                             for (uint64_t i = 0; i < k; ++i) {
                               triad(c.shared.p + off, c.grads[t].p + off, -1e-3f, n - off);
                               triad(c.shared.p, c.grads[t].p, -1e-3f, off);
                             }
                           }));
    cs.push_back(make_case("baseline", "memcpy", "", n, T, 8.0 * n, "", "shared source, own destination", [&c, n](int t, uint64_t k) {
      for (uint64_t i = 0; i < k; ++i) {
        std::memcpy(c.outs[t].p, c.shared.p, n * sizeof(float));
        keep(c.outs[t].p[0]);
      }
    }));
    cs.push_back(make_case("baseline", "read", "", n, T, 4.0 * n, "", "the core's non-finite scan (+ max|g|) alone", [&c, n](int t, uint64_t k) {
      for (uint64_t i = 0; i < k; ++i) keep(gv::kernels::active().scan(c.grads[t].p, n).firstNonFinite);
    }));
  }

  void add_mode(std::vector<Case>& cs, SizeCtx& c, int T, const std::string& mode, uint64_t syncEvery,
                const std::string& label, bool withSnapshot) {
    const size_t n = c.n;
    auto store = make_store(mode, n, syncEvery);
    gv::Store* s = store.get();
    Case push = make_case("push", label, mode, n, T, 12.0 * n, "triad", "", [&c, s, n, mode](int t, uint64_t k) {
      gv::Grad g{0, c.grads[t].p, n};
      gv::PushResult res;
      for (uint64_t i = 0; i < k; ++i) {
        gv::Status st = s->push(&g, 1, -1, &res);
        if (!st.ok() || !res.applied) die("push failed in %s: %s", mode.c_str(), st.message.c_str());
      }
    });
    push.r.syncEvery = mode == "averaging" ? syncEvery : 0;
    push.store = store;
    push.keepAlive = store;
    cs.push_back(std::move(push));
    if (withSnapshot && o_.snapshots) {
      Case snap = make_case("snapshot", mode, mode, n, T, 8.0 * n, "memcpy", "", [&c, s](int t, uint64_t k) {
        for (uint64_t i = 0; i < k; ++i) keep(s->snapshot(c.outs[t].p));
      });
      snap.keepAlive = store;
      cs.push_back(std::move(snap));
    }
  }

  // The extras of a block (--no-prototypes skips them): the core's copy
  // kernels alone (plain and streaming) and copies into fresh memory.
  void add_copy_micro(std::vector<Case>& cs, SizeCtx& c, int T) {
    const size_t n = c.n;
    cs.push_back(make_case("micro", "kernel-copy-stream", "", n, T, 8.0 * n, "memcpy",
                           "the core's streaming-store copy kernel alone (snapshots of 4 MiB and more)", [&c, n](int t, uint64_t k) {
                             for (uint64_t i = 0; i < k; ++i) {
                               gv::kernels::active().copy_stream(c.outs[t].p, c.shared.p, n);
                               keep(c.outs[t].p[0]);
                             }
                           }));
    // The core's own copy kernel (what snapshot() runs in hogwild, versioned,
    // locked and atomic), without the store around it.
    cs.push_back(make_case("micro", "kernel-copy", "", n, T, 8.0 * n, "memcpy", "the core's copy kernel alone",
                           [&c, n](int t, uint64_t k) {
                             for (uint64_t i = 0; i < k; ++i) {
                               gv::kernels::active().copy(c.outs[t].p, c.shared.p, n);
                               keep(c.outs[t].p[0]);
                             }
                           }));
    // A copy into FRESH memory, as a JS snapshot (a new ArrayBuffer) or a
    // pushAsync (the binding copies the gradient into a new vector) does:
    // first-touch page faults on 4 KiB pages, then the same with 2 MiB
    // pages (madvise MADV_HUGEPAGE; THP here is "madvise"), which is what the
    // binding now does for snapshots >= 1 MiB (before its pool recycles them).
    cs.push_back(make_case("micro", "fresh-alloc-copy", "", n, T, 8.0 * n, "memcpy",
                           "calloc + copy + free per operation (4 KiB pages)", [&c, n](int, uint64_t k) {
                             for (uint64_t i = 0; i < k; ++i) {
                               float* d = static_cast<float*>(std::calloc(n, sizeof(float)));
                               if (!d) die("out of memory");
                               std::memcpy(d, c.shared.p, n * sizeof(float));
                               keep(d);
                               std::free(d);
                             }
                           }));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n * sizeof(float) >= (size_t{4} << 20))
    cs.push_back(make_case("micro", "fresh-alloc-copy-thp", "", n, T, 8.0 * n, "memcpy",
                           "2 MiB-aligned alloc + MADV_HUGEPAGE + copy + free", [&c, n](int, uint64_t k) {
                             const size_t huge = size_t{2} << 20;
                             size_t bytes = (n * sizeof(float) + huge - 1) / huge * huge;
                             for (uint64_t i = 0; i < k; ++i) {
                               float* d = static_cast<float*>(std::aligned_alloc(huge, bytes));
                               if (!d) die("out of memory");
                               madvise(d, bytes, MADV_HUGEPAGE);
                               std::memcpy(d, c.shared.p, n * sizeof(float));
                               keep(d);
                               std::free(d);
                             }
                           }));
#endif
  }

  void micro_counter() {
    // ns per fetch_add on one shared counter, every thread hammering it:
    // what each of the store's shared per-push counters costs under contention.
    for (int T : o_.threads) {
      alignas(64) static std::atomic<uint64_t> ctr{0};
      Team& team = *teams_[T];
      OpK op = [&](int, uint64_t k) {
        for (uint64_t i = 0; i < k; ++i) ctr.fetch_add(1, std::memory_order_acq_rel);
      };
      uint64_t k = calibrate(team, op);
      Result r;
      r.kind = "micro";
      r.name = "ctr";
      r.threads = T;
      r.opsPerRep = k * static_cast<uint64_t>(T);
      for (int i = 0; i < std::max(3, o_.reps); ++i) r.secs.push_back(rep(team, op, k));
      r.note = "shared counter fetch_add";
      if (!o_.quiet) print_result(r);
      results_.push_back(std::move(r));
    }
  }

  // One (size, threads) block, round-robin: every case is calibrated (and
  // warmed up), then each round runs ONE repetition of every case, starting
  // at a different case each round. A burst of noise from other processes
  // thus lands on all cases alike instead of on whichever ran at that
  // moment, and every median is drawn from the same time windows.
  void run_block(SizeCtx& c, int T) {
    Team& team = *teams_[T];
    double t0 = now_s();
    std::vector<Case> cs;
    add_baselines(cs, c, T);
    for (const std::string& mode : o_.modes) {
      add_mode(cs, c, T, mode, 1, mode, true);
      if (mode == "averaging" && T > 1 && o_.averagingSyncT)
        add_mode(cs, c, T, mode, static_cast<uint64_t>(T), "averaging/s=" + std::to_string(T), false);
    }
    if (o_.prototypes) add_copy_micro(cs, c, T);
    for (Case& x : cs) {
      x.k = calibrate(team, x.op);
      if (x.store) x.conflictsBefore = x.store->stats().conflicts;
    }
    for (int round = 0; round < o_.reps; ++round)
      for (size_t i = 0; i < cs.size(); ++i) {
        Case& x = cs[(i + static_cast<size_t>(round) * 5) % cs.size()];
        x.r.secs.push_back(rep(team, x.op, x.k));
      }
    for (Case& x : cs) {
      x.r.opsPerRep = x.k * static_cast<uint64_t>(T);
      if (x.store) x.r.conflicts = x.store->stats().conflicts - x.conflictsBefore;
      results_.push_back(x.r);
    }
    // Ratios against this block's baselines, then print.
    for (Result& r : results_)
      if (r.size == c.n && r.threads == T) set_ratio(r);
    if (!o_.quiet) {
      for (const Result& r : results_)
        if (r.size == c.n && r.threads == T) print_result(r);
      std::printf("  (T=%d: %zu cases x %d rounds, %.1f s)\n", T, cs.size(), o_.reps, now_s() - t0);
    }
  }

  void set_ratio(Result& r) {
    if (r.baseline.empty()) return;
    for (const Result& b : results_)
      if (b.kind == "baseline" && b.name == r.baseline && b.size == r.size && b.threads == r.threads && b.gbps() > 0)
        r.ratio = r.gbps() / b.gbps();
  }

  void run_size(size_t n) {
    int maxT = o_.threads.back();
    std::printf("\n== %zu floats (%.1f MB per tensor) ==\n", n, n * 4.0 / 1e6);
    std::fflush(stdout);
    double t0 = now_s();
    SizeCtx c;
    c.n = n;
    c.shared = Buf(n);
    std::memset(c.shared.p, 0, n * sizeof(float));
    c.grads.resize(maxT);
    c.outs.resize(maxT);
    c.priv.resize(maxT);
    {
      // Each thread allocates and first-touches its own buffers (NUMA-local on big machines).
      Team& team = *teams_[maxT];
      std::function<void(int)> init = [&](int t) {
        c.grads[t] = Buf(n);
        fill_grad(c.grads[t].p, n, 1000 + t);
        c.outs[t] = Buf(std::max<size_t>(n, (n + 15) / 16 * 16));
        std::memset(c.outs[t].p, 0, c.outs[t].n * sizeof(float));
        c.priv[t] = Buf(n);
        std::memset(c.priv[t].p, 0, n * sizeof(float));
      };
      team.run(init);
    }
    for (int T : o_.threads) run_block(c, T);
    std::printf("  (%zu floats: %.1f s)\n", n, now_s() - t0);
  }

  // The tables: one row per case, one column pair per thread count.
  void summary() {
    std::printf("\n== summary (medians; ratio = GB/s / baseline GB/s, same size and threads) ==\n");
    for (size_t n : o_.sizes) {
      std::printf("\n%zu floats\n", n);
      std::printf("  %-30s", "case");
      for (int T : o_.threads) std::printf(" | T=%-2d GB/s  ratio   ", T);
      std::printf("\n");
      std::vector<std::pair<std::string, std::string>> rows;  // kind, name
      for (auto& r : results_)
        if (r.size == n) {
          auto p = std::make_pair(r.kind, r.name);
          if (std::find(rows.begin(), rows.end(), p) == rows.end()) rows.push_back(p);
        }
      std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) {
        auto rank = [](const std::string& k) {
          return k == "baseline" ? 0 : k == "push" ? 1 : k == "proto-push" ? 2 : k == "snapshot" ? 3 : k == "proto-read" ? 5 : 4;
        };
        return rank(a.first) < rank(b.first);
      });
      for (auto& [kind, name] : rows) {
        std::printf("  %-30s", (kind + " " + name).c_str());
        for (int T : o_.threads) {
          const Result* hit = nullptr;
          for (auto& r : results_)
            if (r.size == n && r.threads == T && r.kind == kind && r.name == name) hit = &r;
          if (!hit) std::printf(" | %-20s", "-");
          else if (hit->baseline.empty()) std::printf(" | %8.2f  %-9s", hit->gbps(), "");
          else std::printf(" | %8.2f  x%-8.3f", hit->gbps(), hit->ratio);
        }
        std::printf("\n");
      }
    }
  }

  static std::string jstr(const std::string& s) {
    std::string o = "\"";
    for (char ch : s) {
      if (ch == '"' || ch == '\\') o += '\\', o += ch;
      else if (static_cast<unsigned char>(ch) < 0x20) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", ch);
        o += b;
      } else o += ch;
    }
    return o + "\"";
  }
  static std::string jnum(double v) {
    if (!std::isfinite(v)) return "null";
    char b[64];
    std::snprintf(b, sizeof b, "%.6g", v);
    return b;
  }

  void write_json(const std::string& path) {
    std::ostringstream j;
    j << "{\n  \"suite\": \"core\",\n  \"machine\": {"
      << "\"cpu\": " << jstr(m_.cpu) << ", \"cpus\": " << m_.cpus << ", \"online\": " << m_.online
      << ", \"l2\": " << m_.l2 << ", \"l3\": " << m_.l3 << ", \"kernel\": " << jstr(m_.kernel)
      << ", \"isa\": " << jstr(m_.isa) << ", \"isas\": " << jstr(m_.isas)
      << ", \"isaForced\": " << (std::getenv("GRADVAULT_ISA") ? jstr(std::getenv("GRADVAULT_ISA")) : "null")
      << ", \"compiler\": " << jstr(m_.compiler) << ", \"date\": " << jstr(m_.date)
      << ", \"loadStart\": " << jstr(m_.loadStart) << ", \"loadEnd\": " << jstr(m_.loadEnd) << "},\n";
    j << "  \"options\": {\"reps\": " << o_.reps << ", \"schedule\": \"round-robin\""
      << ", \"repMs\": " << o_.repMs << ", \"pin\": " << (o_.pin ? "true" : "false")
      << ", \"smoke\": " << (o_.smoke ? "true" : "false") << ", \"threads\": [";
    for (size_t i = 0; i < o_.threads.size(); ++i) j << (i ? ", " : "") << o_.threads[i];
    j << "], \"sizes\": [";
    for (size_t i = 0; i < o_.sizes.size(); ++i) j << (i ? ", " : "") << o_.sizes[i];
    j << "]},\n  \"seconds\": " << jnum(total_) << ",\n  \"results\": [\n";
    for (size_t i = 0; i < results_.size(); ++i) {
      const Result& r = results_[i];
      j << "    {\"kind\": " << jstr(r.kind) << ", \"name\": " << jstr(r.name) << ", \"mode\": " << jstr(r.mode)
        << ", \"size\": " << r.size << ", \"threads\": " << r.threads << ", \"syncEvery\": " << r.syncEvery
        << ", \"bytesPerOp\": " << jnum(r.bytesPerOp) << ", \"opsPerRep\": " << r.opsPerRep
        << ", \"reps\": " << r.secs.size() << ", \"medianSec\": " << jnum(r.med())
        << ", \"gbps\": " << jnum(r.gbps()) << ", \"gbpsP25\": " << jnum(r.gbps_at(0.75))
        << ", \"gbpsP75\": " << jnum(r.gbps_at(0.25)) << ", \"opsPerSec\": " << jnum(r.ops_per_s())
        << ", \"nsPerOp\": " << jnum(r.ns_per_op()) << ", \"baseline\": " << jstr(r.baseline)
        << ", \"ratio\": " << jnum(r.ratio) << ", \"conflicts\": " << r.conflicts << ", \"note\": " << jstr(r.note)
        << ", \"secs\": [";
      for (size_t k = 0; k < r.secs.size(); ++k) j << (k ? ", " : "") << jnum(r.secs[k]);
      j << "]}" << (i + 1 < results_.size() ? "," : "") << "\n";
    }
    j << "  ]\n}\n";
    std::ofstream f(path);
    if (!f) die("cannot write %s", path.c_str());
    f << j.str();
    std::printf("wrote %s\n", path.c_str());
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  Bench b(o);
  return b.main();
}
