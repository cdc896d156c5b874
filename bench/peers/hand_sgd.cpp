// (One file on purpose: a peer is a self-contained program.)
// Peer: the plain hand-written C++ SGD loop, the ceiling the benchmark
// compares gradvault against. Plain SGD on the mean gradient of each batch
// (the step is lr * mean gradient), no momentum, no weight decay.
//
//   W1  softmax regression on Fashion-MNIST, W [784,10] + b [10], zeros
//   W2  MLP 784-128-10 (ReLU, softmax), Glorot-uniform W1/W2, zero biases
//   W3  sparse binary logistic regression on bench/data/w3-*.svm, w [47236] + b
//
// With --threads N > 1 it is Hogwild (Niu et al. 2011): N std::threads update
// the shared float arrays in place without any synchronisation. That is a
// data race by the letter of C++ and deliberately so: it is the racy baseline
// being measured (plain loads and stores compile to the same instructions as
// relaxed atomics would on x86, but plain ones let the compiler vectorise).
// Each epoch the rows are shuffled once (by std::barrier's completion step)
// and every thread takes a disjoint contiguous share of the permutation.
//
// Batch 1 has its own loops (trainSoftmax1, trainMlp1, trainLogistic1), written
// as a careful engineer would for this machine: a CSR copy of the pixels,
// software prefetch of the next random row, AVX-512 with the accumulators in
// registers (see "batch-1 helpers"). They compute the same steps as the
// batched loops would at batch 1, up to the order of float additions.
//
// Build (from the repository root):
//   g++ -O3 -march=native -std=c++20 -pthread bench/peers/hand_sgd.cpp -lz -o bench/data/bin/hand_sgd
// Run:
//   bench/data/bin/hand_sgd --workload W1 --threads 2 --epochs 5 --batch 1 --lr 0.01
// Prints one JSON line on stdout. Options: --seed S, --rows N (first N training rows),
// --fmnist DIR (default /usr/share/datasets/fashion-mnist), --data DIR (default bench/data).

#include <zlib.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <charconv>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kClasses = 10;  // Fashion-MNIST
constexpr int kHidden = 128;  // W2's hidden layer

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "hand_sgd: %s\n", msg.c_str());
  std::exit(2);
}

// ---------------------------------------------------------------- options

struct Options {
  std::string workload = "W1";
  int threads = 1;
  int epochs = 5;
  int batch = 1;
  double lr = -1;  // < 0: the workload's default (defaultLr)
  uint32_t seed = 42;
  long rows = -1;  // < 0: all training rows
  std::string fmnist = "/usr/share/datasets/fashion-mnist";
  std::string data = "bench/data";
};

// Learning rates that reach the target accuracy in 5 epochs (see bench/peers/README.md).
double defaultLr(const std::string& workload, int batch) {
  if (workload == "W1") return batch == 1 ? 0.005 : 0.1;
  if (workload == "W2") return batch == 1 ? 0.01 : 0.1;
  return batch == 1 ? 1.0 : 8.0;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string k = argv[i];
    if (i + 1 >= argc) die("missing value for " + k);
    std::string v = argv[++i];
    try {
      if (k == "--workload") o.workload = v;
      else if (k == "--threads") o.threads = std::stoi(v);
      else if (k == "--epochs") o.epochs = std::stoi(v);
      else if (k == "--batch") o.batch = std::stoi(v);
      else if (k == "--lr") o.lr = std::stod(v);
      else if (k == "--seed") o.seed = static_cast<uint32_t>(std::stoul(v));
      else if (k == "--rows") o.rows = std::stol(v);
      else if (k == "--fmnist") o.fmnist = v;
      else if (k == "--data") o.data = v;
      else die("unknown option " + k);
    } catch (const std::logic_error&) {
      die("bad value for " + k + ": " + v);
    }
  }
  if (o.workload != "W1" && o.workload != "W2" && o.workload != "W3") die("--workload must be W1, W2 or W3");
  if (o.threads < 1 || o.epochs < 1 || o.batch < 1) die("--threads, --epochs and --batch must be >= 1");
  if (o.lr < 0) o.lr = defaultLr(o.workload, o.batch);
  return o;
}

// ---------------------------------------------------------------- random numbers
// A tiny generator shared by all the peers (hand_sgd, plain.js, sab_hogwild.js,
// the Glorot init of torch_hogwild.py) so that they start from the same weights
// and, in C++ and JS, shuffle identically: a Weyl sequence through murmur3's
// 32-bit finaliser.
struct Rng {
  uint32_t state;
  explicit Rng(uint32_t seed) : state(seed) {}
  uint32_t next() {
    uint32_t z = (state += 0x9E3779B9u);
    z = (z ^ (z >> 16)) * 0x85EBCA6Bu;
    z = (z ^ (z >> 13)) * 0xC2B2AE35u;
    return z ^ (z >> 16);
  }
  float uniform() { return static_cast<float>(next() >> 8) * (1.0f / 16777216.0f); }  // [0, 1)
  uint32_t below(uint32_t n) { return static_cast<uint32_t>((uint64_t{next()} * n) >> 32); }
};

void shuffle(std::vector<uint32_t>& perm, Rng& rng) {
  for (size_t i = perm.size() - 1; i > 0; i--) std::swap(perm[i], perm[rng.below(static_cast<uint32_t>(i + 1))]);
}

template <class V>
void glorot(V& w, int fanIn, int fanOut, Rng& rng) {
  const float limit = std::sqrt(6.0f / static_cast<float>(fanIn + fanOut));
  for (float& x : w) x = (2.0f * rng.uniform() - 1.0f) * limit;
}

// ---------------------------------------------------------------- data

struct Dense {  // row-major float rows, class ids
  size_t rows = 0, cols = 0;
  std::vector<float> x;
  std::vector<int32_t> y;
  const float* row(size_t i) const { return x.data() + i * cols; }
};

struct Sparse {  // CSR, labels ±1
  size_t rows = 0, cols = 0;
  std::vector<uint64_t> start{0};
  std::vector<uint32_t> index;
  std::vector<float> value;
  std::vector<float> y;
};

std::vector<unsigned char> gunzip(const std::string& file) {
  gzFile f = gzopen(file.c_str(), "rb");
  if (!f) die("cannot open " + file);
  std::vector<unsigned char> out;
  unsigned char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  if (n < 0) die("cannot read " + file);
  gzclose(f);
  return out;
}

uint32_t be32(const unsigned char* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

Dense loadIdx(const std::string& images, const std::string& labels) {
  auto im = gunzip(images), lb = gunzip(labels);
  if (im.size() < 16 || be32(im.data()) != 0x803 || lb.size() < 8 || be32(lb.data()) != 0x801) die("not IDX: " + images);
  Dense d;
  d.rows = be32(im.data() + 4);
  d.cols = size_t{be32(im.data() + 8)} * be32(im.data() + 12);
  if (im.size() != 16 + d.rows * d.cols || lb.size() != 8 + d.rows) die("truncated IDX: " + images);
  d.x.resize(d.rows * d.cols);
  for (size_t i = 0; i < d.x.size(); i++) d.x[i] = im[16 + i] / 255.0f;
  d.y.assign(lb.begin() + 8, lb.end());
  return d;
}

// LIBSVM text: "label idx:val ...", 1-based indices.
Sparse loadLibsvm(const std::string& file, size_t cols) {
  FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) die("cannot open " + file + " (run: node bench/peers/make-w3.js)");
  std::fseek(f, 0, SEEK_END);
  std::string text(static_cast<size_t>(std::ftell(f)), '\0');
  std::fseek(f, 0, SEEK_SET);
  if (std::fread(text.data(), 1, text.size(), f) != text.size()) die("cannot read " + file);
  std::fclose(f);
  Sparse s;
  s.cols = cols;
  const char* p = text.data();
  const char* end = p + text.size();
  auto bad = [&] { die("malformed LIBSVM in " + file + " at byte " + std::to_string(p - text.data())); };
  while (p < end) {
    float label;
    if (*p == '+') p++;
    auto r = std::from_chars(p, end, label);
    if (r.ec != std::errc()) bad();
    p = r.ptr;
    s.y.push_back(label > 0 ? 1.0f : -1.0f);
    while (p < end && *p != '\n') {
      while (p < end && *p == ' ') p++;
      if (p >= end || *p == '\n') break;
      uint32_t idx;
      float val;
      auto ri = std::from_chars(p, end, idx);
      if (ri.ec != std::errc() || ri.ptr >= end || *ri.ptr != ':' || idx < 1 || idx > cols) bad();
      p = ri.ptr + 1;
      auto rv = std::from_chars(p, end, val);
      if (rv.ec != std::errc()) bad();
      p = rv.ptr;
      s.index.push_back(idx - 1);
      s.value.push_back(val);
    }
    p++;  // '\n'
    s.start.push_back(s.index.size());
  }
  s.rows = s.y.size();
  return s;
}

// ---------------------------------------------------------------- batch-1 helpers
// At batch 1 a step is only a few thousand multiply-adds, so how the loop
// around them is written decides the speed. The batch-1 loops (trainSoftmax1,
// trainMlp1, trainLogistic1) compute what the batched loops compute for
// batch = 1, up to the order of float additions, and use:
//  - a CSR copy of the Fashion-MNIST training rows, made once at load time
//    (PixelRows): about half the pixels are 0, and a loop over a row's
//    nonzeros neither tests 784 pixels nor mispredicts branches on them;
//  - software prefetch: rows come in permutation order, a random walk over
//    140-250 MB that no hardware prefetcher can guess, so while one row is
//    computed the next one is fetched (PixelRows::Prefetch, prefetchBytes);
//  - with AVX-512 (-march=native here), explicit vector code that keeps the
//    accumulators in registers: a 10-float class row is one masked 16-lane
//    register (Ten), a 128-float hidden row is 8 registers. Other targets get
//    plain loops, which g++ vectorises less well;
//  - __restrict on the arrays a loop reads and writes (the parameters, the
//    data and the scratch never overlap), so g++ need not reload after stores.
// Hogwild is unchanged: the threads update the shared arrays with plain,
// unsynchronised loads and stores.

// Prefetches [p, p + bytes) line by line.
inline void prefetchBytes(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o);
  if (bytes) __builtin_prefetch(c + bytes - 1);  // the last line, when p is not line-aligned
}

struct PixelRows {  // CSR copy of a Dense: row r's nonzeros are [start[r], start[r + 1])
  std::vector<uint32_t> start{0};
  std::vector<uint16_t> index;  // pixel index (< 784)
  std::vector<float> value;     // the same floats as Dense::x holds
  size_t size(size_t r) const { return start[r + 1] - start[r]; }
  const uint16_t* indices(size_t r) const { return &index[start[r]]; }
  const float* values(size_t r) const { return &value[start[r]]; }

  // Prefetches row r a line at a time, spread over the loop of the row before
  // it: touch(k) fetches line k of r's values and of its indices (the loops
  // call touch(i / 8) at nonzero i, so a row of the usual length is requested
  // by the middle of the previous one). Issuing all ~40 lines of a row at
  // once, one or two rows ahead, was ~20% slower (measured), presumably as
  // they then compete all together with the loop's own loads for the few
  // outstanding-miss slots.
  struct Prefetch {
    const char *idx, *val;
    size_t idxEnd, valEnd;  // byte lengths: touch() clamps to them
    Prefetch(const PixelRows& x, size_t r)
        : idx(reinterpret_cast<const char*>(x.indices(r))),
          val(reinterpret_cast<const char*>(x.values(r))),
          idxEnd(x.size(r) * sizeof(uint16_t)),
          valEnd(x.size(r) * sizeof(float)) {}
    void touch(size_t k) const {
      __builtin_prefetch(val + std::min(64 * k, valEnd));
      __builtin_prefetch(idx + std::min(64 * k, idxEnd));
    }
  };
};

PixelRows toCsr(const Dense& d) {
  if (d.cols > 65536) die("too many columns for 16-bit CSR indices");
  PixelRows c;
  c.start.reserve(d.rows + 1);
  for (size_t r = 0; r < d.rows; r++) {
    const float* x = d.row(r);
    for (size_t j = 0; j < d.cols; j++)
      if (x[j] != 0.0f) c.index.push_back(static_cast<uint16_t>(j)), c.value.push_back(x[j]);
    c.start.push_back(static_cast<uint32_t>(c.index.size()));
  }
  return c;
}

#if defined(__AVX512F__)
// A 10-float row (W1's W [784,10], W2's W2 [128,10]) in registers.
struct Ten {
  static constexpr __mmask16 kLanes = (1u << kClasses) - 1;
  // Loads a row into 10 lanes of 16, zeroing the others (masked-off lanes are
  // not read, so this never faults past the end of the array).
  static __m512 load(const float* p) { return _mm512_maskz_loadu_ps(kLanes, p); }

  // A fixed row g as 8 + 2 floats, for dot(w) = w·g and subScaled: w -= a g.
  // Not a masked 16-lane store there: rows are 40 bytes apart, and a 64-byte
  // masked store to row j makes the next load of row j + 1 wait until the
  // store has retired, though their live lanes do not overlap: 3x slower
  // measured.
  __m256 lo;
  __m128 hi;  // g[8], g[9], 0, 0
  // Two floats to and from the low half of an xmm register (through the
  // may_alias __m128i_u: _mm_load_sd's double* would break strict aliasing).
  static __m128 load2(const float* p) { return _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i_u*>(p))); }
  static void store2(float* p, __m128 v) { _mm_storel_epi64(reinterpret_cast<__m128i_u*>(p), _mm_castps_si128(v)); }
  explicit Ten(const float* g) : lo(_mm256_loadu_ps(g)), hi(load2(g + 8)) {}
  float dot(const float* w) const {
    const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(w), lo);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));
    s = _mm_fmadd_ps(load2(w + 8), hi, s);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  void subScaled(float* w, float a) const {
    const __m256 av = _mm256_set1_ps(a);
    _mm256_storeu_ps(w, _mm256_fnmadd_ps(av, lo, _mm256_loadu_ps(w)));
    store2(w + 8, _mm_fnmadd_ps(_mm256_castps256_ps128(av), hi, load2(w + 8)));
  }
};

#endif

// ---------------------------------------------------------------- W1: softmax regression

// p = softmax(z) in place; returns log(sum exp(z)) for the loss.
double softmaxInPlace(float* z) {
  float m = z[0];
  for (int k = 1; k < kClasses; k++) m = std::max(m, z[k]);
  float s = 0;
  for (int k = 0; k < kClasses; k++) s += (z[k] = std::exp(z[k] - m));
  for (int k = 0; k < kClasses; k++) z[k] /= s;
  return m + std::log(double{s});
}

struct Softmax {
  size_t d;
  std::vector<float> W, b;  // W [d, 10] row-major: row j holds feature j's weights for every class
  explicit Softmax(size_t features) : d(features), W(features * kClasses, 0.0f), b(kClasses, 0.0f) {}

  // z = x·W + b over the nonzero x_j, whose indices go to nz; returns their count.
  size_t logits(const float* x, float* z, uint32_t* nz) const {
    std::copy_n(b.data(), kClasses, z);
    size_t n = 0;
    for (size_t j = 0; j < d; j++) {
      const float xj = x[j];
      if (xj == 0.0f) continue;
      nz[n++] = static_cast<uint32_t>(j);
      const float* w = &W[j * kClasses];
      for (int k = 0; k < kClasses; k++) z[k] += xj * w[k];
    }
    return n;
  }
};

// W1 at batch 1 over the CSR rows: two passes over the row's nonzeros, the
// ten logits (four independent accumulators, so each multiply-add need not
// wait for the previous one), then, after the softmax, W row j -= x_j lr (p - y).
void trainSoftmax1(Softmax& m, const PixelRows& X, const int32_t* label, const uint32_t* perm, size_t lo, size_t hi, float lr) {
  float* __restrict W = m.W.data();
  float* __restrict b = m.b.data();
  alignas(64) float g[16] = {};
  for (size_t t = lo; t < hi; t++) {
    const uint32_t r = perm[t];
    const uint16_t* __restrict idx = X.indices(r);
    const float* __restrict val = X.values(r);
    const size_t n = X.size(r);
    const PixelRows::Prefetch next(X, perm[t + 1 < hi ? t + 1 : t]);
#if defined(__AVX512F__)
    __m512 z0 = Ten::load(b), z1 = _mm512_setzero_ps(), z2 = z1, z3 = z1;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      next.touch(i / 8);
      z0 = _mm512_fmadd_ps(_mm512_set1_ps(val[i]), Ten::load(W + idx[i] * kClasses), z0);
      z1 = _mm512_fmadd_ps(_mm512_set1_ps(val[i + 1]), Ten::load(W + idx[i + 1] * kClasses), z1);
      z2 = _mm512_fmadd_ps(_mm512_set1_ps(val[i + 2]), Ten::load(W + idx[i + 2] * kClasses), z2);
      z3 = _mm512_fmadd_ps(_mm512_set1_ps(val[i + 3]), Ten::load(W + idx[i + 3] * kClasses), z3);
    }
    for (; i < n; i++) z0 = _mm512_fmadd_ps(_mm512_set1_ps(val[i]), Ten::load(W + idx[i] * kClasses), z0);
    _mm512_store_ps(g, _mm512_add_ps(_mm512_add_ps(z0, z1), _mm512_add_ps(z2, z3)));
#else
    float z[kClasses];
    for (int k = 0; k < kClasses; k++) z[k] = b[k];
    for (size_t i = 0; i < n; i++) {
      if (i % 4 == 0) next.touch(i / 8);
      const float* __restrict w = W + idx[i] * kClasses;
      for (int k = 0; k < kClasses; k++) z[k] += val[i] * w[k];
    }
    for (int k = 0; k < kClasses; k++) g[k] = z[k];
#endif
    softmaxInPlace(g);
    g[label[r]] -= 1.0f;
    for (int k = 0; k < kClasses; k++) g[k] *= lr;  // lr * (p - y)
    for (int k = 0; k < kClasses; k++) b[k] -= g[k];
#if defined(__AVX512F__)
    const Ten step(g);
    for (size_t i = 0; i < n; i++) step.subScaled(W + idx[i] * kClasses, val[i]);
#else
    for (size_t i = 0; i < n; i++) {
      float* __restrict w = W + idx[i] * kClasses;
      for (int k = 0; k < kClasses; k++) w[k] -= val[i] * g[k];
    }
#endif
  }
}

// One thread's share of an epoch, rows perm[lo, hi) in batches (batch > 1).
void trainSoftmax(Softmax& m, const Dense& data, const uint32_t* perm, size_t lo, size_t hi, int batch, float lr) {
  std::vector<uint32_t> nz(m.d);
  float g[kClasses];
  // Batches: the summed gradient accumulates privately, then one step of lr * mean.
  std::vector<float> gW(m.W.size()), gb(kClasses);
  for (size_t t0 = lo; t0 < hi; t0 += batch) {
    const size_t t1 = std::min(hi, t0 + batch);
    std::fill(gW.begin(), gW.end(), 0.0f);
    std::fill(gb.begin(), gb.end(), 0.0f);
    for (size_t t = t0; t < t1; t++) {
      const uint32_t r = perm[t];
      const float* x = data.row(r);
      const size_t n = m.logits(x, g, nz.data());
      softmaxInPlace(g);
      g[data.y[r]] -= 1.0f;
      for (int k = 0; k < kClasses; k++) gb[k] += g[k];
      for (size_t i = 0; i < n; i++) {
        const float xj = x[nz[i]];
        float* gw = &gW[size_t{nz[i]} * kClasses];
        for (int k = 0; k < kClasses; k++) gw[k] += xj * g[k];
      }
    }
    const float step = lr / static_cast<float>(t1 - t0);
    for (size_t i = 0; i < gW.size(); i++) m.W[i] -= step * gW[i];
    for (int k = 0; k < kClasses; k++) m.b[k] -= step * gb[k];
  }
}

// ---------------------------------------------------------------- W2: MLP 784-128-10

// 64-byte aligned storage: a 128-float row of W1 is then exactly 8 cache lines and
// none of its 16-lane loads and stores straddles two lines.
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  bool operator==(const Aligned64&) const { return true; }
};
using Floats = std::vector<float, Aligned64<float>>;

struct Mlp {
  size_t d;
  Floats W1, b1, W2, b2;  // W1 [d, 128], W2 [128, 10], row-major
  Mlp(size_t features, uint32_t seed) : d(features), W1(features * kHidden), b1(kHidden, 0.0f), W2(kHidden * kClasses), b2(kClasses, 0.0f) {
    Rng rng(seed);
    glorot(W1, static_cast<int>(features), kHidden, rng);
    glorot(W2, kHidden, kClasses, rng);
  }

  // h = relu(x·W1 + b1), z = h·W2 + b2; nonzero x_j indices go to nz; returns their count.
  size_t forward(const float* x, float* h, float* z, uint32_t* nz) const {
    std::copy_n(b1.data(), kHidden, h);
    size_t n = 0;
    for (size_t j = 0; j < d; j++) {
      const float xj = x[j];
      if (xj == 0.0f) continue;
      nz[n++] = static_cast<uint32_t>(j);
      const float* w = &W1[j * kHidden];
      for (int i = 0; i < kHidden; i++) h[i] += xj * w[i];
    }
    for (int i = 0; i < kHidden; i++) h[i] = std::max(h[i], 0.0f);
    std::copy_n(b2.data(), kClasses, z);
    for (int i = 0; i < kHidden; i++) {
      if (h[i] == 0.0f) continue;
      const float* w = &W2[i * kClasses];
      for (int k = 0; k < kClasses; k++) z[k] += h[i] * w[k];
    }
    return n;
  }

  // g = p - y (in: z after softmax); gh = (W2 g) masked by relu'.
  void backHidden(const float* h, const float* g, float* gh) const {
    for (int i = 0; i < kHidden; i++) {
      float s = 0;
      const float* w = &W2[i * kClasses];
      for (int k = 0; k < kClasses; k++) s += w[k] * g[k];
      gh[i] = h[i] > 0.0f ? s : 0.0f;
    }
  }
};

// W2 at batch 1 over the CSR rows. The hidden pre-activations (128 floats,
// 8 registers) accumulate over the row's nonzeros in registers; the units
// that pass the ReLU are listed without branches (about half are 0, so a
// test per unit would mispredict often), and only they take part in z, the
// backward pass into the hidden layer and W2's update; then W1 row j -=
// x_j lr gh for the row's nonzeros.
void trainMlp1(Mlp& m, const PixelRows& X, const int32_t* label, const uint32_t* perm, size_t lo, size_t hi, float lr) {
  float* __restrict W1 = m.W1.data();
  float* __restrict b1 = m.b1.data();
  float* __restrict W2 = m.W2.data();
  float* __restrict b2 = m.b2.data();
  alignas(64) float h[kHidden], gh[kHidden], g[16] = {};
  uint32_t on[kHidden];  // the hidden units with h > 0
  for (size_t t = lo; t < hi; t++) {
    const uint32_t r = perm[t];
    const uint16_t* __restrict idx = X.indices(r);
    const float* __restrict val = X.values(r);
    const size_t n = X.size(r);
    const PixelRows::Prefetch next(X, perm[t + 1 < hi ? t + 1 : t]);
#if defined(__AVX512F__)
    constexpr int kV = kHidden / 16;
    __m512 a[kV];
    for (int c = 0; c < kV; c++) a[c] = _mm512_loadu_ps(b1 + 16 * c);
    for (size_t i = 0; i < n; i++) {
      next.touch(i / 8);
      const float* __restrict w = W1 + size_t{idx[i]} * kHidden;
      const __m512 x = _mm512_set1_ps(val[i]);
      for (int c = 0; c < kV; c++) a[c] = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + 16 * c), a[c]);
    }
    for (int c = 0; c < kV; c++) {  // ReLU: keep the lanes > 0, zero the others
      const __mmask16 pos = _mm512_cmp_ps_mask(a[c], _mm512_setzero_ps(), _CMP_GT_OQ);
      _mm512_store_ps(h + 16 * c, _mm512_maskz_mov_ps(pos, a[c]));
    }
#else
    for (int u = 0; u < kHidden; u++) h[u] = b1[u];
    for (size_t i = 0; i < n; i++) {
      next.touch(i / 8);
      const float* __restrict w = W1 + size_t{idx[i]} * kHidden;
      for (int u = 0; u < kHidden; u++) h[u] += val[i] * w[u];
    }
    for (int u = 0; u < kHidden; u++) h[u] = std::max(h[u], 0.0f);
#endif
    size_t non = 0;
    for (int u = 0; u < kHidden; u++) on[non] = u, non += h[u] > 0.0f;
#if defined(__AVX512F__)
    __m512 z0 = Ten::load(b2), z1 = _mm512_setzero_ps();
    size_t q = 0;
    for (; q + 2 <= non; q += 2) {
      z0 = _mm512_fmadd_ps(_mm512_set1_ps(h[on[q]]), Ten::load(W2 + on[q] * kClasses), z0);
      z1 = _mm512_fmadd_ps(_mm512_set1_ps(h[on[q + 1]]), Ten::load(W2 + on[q + 1] * kClasses), z1);
    }
    if (q < non) z0 = _mm512_fmadd_ps(_mm512_set1_ps(h[on[q]]), Ten::load(W2 + on[q] * kClasses), z0);
    _mm512_store_ps(g, _mm512_add_ps(z0, z1));
#else
    for (int k = 0; k < kClasses; k++) g[k] = b2[k];
    for (size_t q = 0; q < non; q++) {
      const float* __restrict w = W2 + on[q] * kClasses;
      for (int k = 0; k < kClasses; k++) g[k] += h[on[q]] * w[k];
    }
#endif
    softmaxInPlace(g);
    g[label[r]] -= 1.0f;  // g = p - y
    // gh = lr (W2 g) on the active units (0 elsewhere), before W2 changes.
    for (int u = 0; u < kHidden; u++) gh[u] = 0.0f;
#if defined(__AVX512F__)
    const Ten err(g);
    for (size_t q = 0; q < non; q++) gh[on[q]] = lr * err.dot(W2 + on[q] * kClasses);
#else
    for (size_t q = 0; q < non; q++) {
      const float* __restrict w = W2 + on[q] * kClasses;
      float s = 0;
      for (int k = 0; k < kClasses; k++) s += w[k] * g[k];
      gh[on[q]] = lr * s;
    }
#endif
    for (int k = 0; k < kClasses; k++) g[k] *= lr;
#if defined(__AVX512F__)
    const Ten step(g);
    for (size_t q = 0; q < non; q++) step.subScaled(W2 + on[q] * kClasses, h[on[q]]);
#else
    for (size_t q = 0; q < non; q++) {
      float* __restrict w = W2 + on[q] * kClasses;
      for (int k = 0; k < kClasses; k++) w[k] -= h[on[q]] * g[k];
    }
#endif
    for (int k = 0; k < kClasses; k++) b2[k] -= g[k];
#if defined(__AVX512F__)
    __m512 d[kV];
    for (int c = 0; c < kV; c++) d[c] = _mm512_load_ps(gh + 16 * c);
    for (size_t i = 0; i < n; i++) {
      float* __restrict w = W1 + size_t{idx[i]} * kHidden;
      const __m512 x = _mm512_set1_ps(val[i]);
      for (int c = 0; c < kV; c++) _mm512_storeu_ps(w + 16 * c, _mm512_fnmadd_ps(x, d[c], _mm512_loadu_ps(w + 16 * c)));
    }
#else
    for (size_t i = 0; i < n; i++) {
      float* __restrict w = W1 + size_t{idx[i]} * kHidden;
      for (int u = 0; u < kHidden; u++) w[u] -= val[i] * gh[u];
    }
#endif
    for (int u = 0; u < kHidden; u++) b1[u] -= gh[u];
  }
}

void trainMlp(Mlp& m, const Dense& data, const uint32_t* perm, size_t lo, size_t hi, int batch, float lr) {
  std::vector<uint32_t> nz(m.d);
  alignas(64) float h[kHidden], gh[kHidden], g[kClasses];
  std::vector<float> gW1(m.W1.size()), gb1(kHidden), gW2(m.W2.size()), gb2(kClasses);
  for (size_t t0 = lo; t0 < hi; t0 += batch) {
    const size_t t1 = std::min(hi, t0 + batch);
    std::fill(gW1.begin(), gW1.end(), 0.0f);
    std::fill(gb1.begin(), gb1.end(), 0.0f);
    std::fill(gW2.begin(), gW2.end(), 0.0f);
    std::fill(gb2.begin(), gb2.end(), 0.0f);
    for (size_t t = t0; t < t1; t++) {
      const uint32_t r = perm[t];
      const float* x = data.row(r);
      const size_t n = m.forward(x, h, g, nz.data());
      softmaxInPlace(g);
      g[data.y[r]] -= 1.0f;
      m.backHidden(h, g, gh);
      for (int i = 0; i < kHidden; i++) {
        if (h[i] == 0.0f) continue;
        float* gw = &gW2[i * kClasses];
        for (int k = 0; k < kClasses; k++) gw[k] += h[i] * g[k];
      }
      for (int k = 0; k < kClasses; k++) gb2[k] += g[k];
      for (size_t q = 0; q < n; q++) {
        const float xj = x[nz[q]];
        float* gw = &gW1[size_t{nz[q]} * kHidden];
        for (int i = 0; i < kHidden; i++) gw[i] += xj * gh[i];
      }
      for (int i = 0; i < kHidden; i++) gb1[i] += gh[i];
    }
    const float step = lr / static_cast<float>(t1 - t0);
    for (size_t i = 0; i < gW1.size(); i++) m.W1[i] -= step * gW1[i];
    for (int i = 0; i < kHidden; i++) m.b1[i] -= step * gb1[i];
    for (size_t i = 0; i < gW2.size(); i++) m.W2[i] -= step * gW2[i];
    for (int k = 0; k < kClasses; k++) m.b2[k] -= step * gb2[k];
  }
}

// ---------------------------------------------------------------- W3: sparse logistic regression

struct Logistic {
  std::vector<float> w;
  float b = 0;
  explicit Logistic(size_t features) : w(features, 0.0f) {}
  float margin(const Sparse& s, size_t r) const {
    float z = b;
    for (uint64_t q = s.start[r]; q < s.start[r + 1]; q++) z += w[s.index[q]] * s.value[q];
    return z;
  }
};

// d/dz log(1 + exp(-y z)) = -y / (1 + exp(y z))
inline float logisticGrad(float z, float y) { return -y / (1.0f + std::exp(y * z)); }

// W3 at batch 1. A row is ~75 nonzeros; its index and value lines are
// prefetched two steps ahead (prefetching the weights w[index] of the next
// row as well was tried: with w (185 KB) in L2, the extra index loads and
// prefetches cost more than they saved, 25% slower measured).
void trainLogistic1(Logistic& m, const Sparse& data, const uint32_t* perm, size_t lo, size_t hi, float lr) {
  float* __restrict w = m.w.data();
  const uint64_t* __restrict start = data.start.data();
  const uint32_t* __restrict index = data.index.data();
  const float* __restrict value = data.value.data();
  for (size_t t = lo; t < hi; t++) {
    if (t + 2 < hi) {
      const uint32_t ahead = perm[t + 2];
      const size_t a = start[ahead], n = start[ahead + 1] - a;
      prefetchBytes(index + a, n * sizeof(uint32_t));
      prefetchBytes(value + a, n * sizeof(float));
    }
    const uint32_t r = perm[t];
    const uint32_t* __restrict idx = index + start[r];
    const float* __restrict val = value + start[r];
    const size_t n = start[r + 1] - start[r];
    float z = m.b;
    for (size_t q = 0; q < n; q++) z += w[idx[q]] * val[q];
    const float g = lr * logisticGrad(z, data.y[r]);
    for (size_t q = 0; q < n; q++) w[idx[q]] -= g * val[q];
    m.b -= g;
  }
}

void trainLogistic(Logistic& m, const Sparse& data, const uint32_t* perm, size_t lo, size_t hi, int batch, float lr) {
  // The batch's gradient is sparse: a private dense accumulator, and the list of touched features.
  std::vector<float> gw(m.w.size(), 0.0f);
  std::vector<uint8_t> seen(m.w.size(), 0);
  std::vector<uint32_t> touched;
  for (size_t t0 = lo; t0 < hi; t0 += batch) {
    const size_t t1 = std::min(hi, t0 + batch);
    float gb = 0;
    for (size_t t = t0; t < t1; t++) {
      const uint32_t r = perm[t];
      const float g = logisticGrad(m.margin(data, r), data.y[r]);
      for (uint64_t q = data.start[r]; q < data.start[r + 1]; q++) {
        const uint32_t j = data.index[q];
        if (!seen[j]) seen[j] = 1, touched.push_back(j);
        gw[j] += g * data.value[q];
      }
      gb += g;
    }
    const float step = lr / static_cast<float>(t1 - t0);
    for (uint32_t j : touched) m.w[j] -= step * gw[j], gw[j] = 0.0f, seen[j] = 0;
    touched.clear();
    m.b -= step * gb;
  }
}

// ---------------------------------------------------------------- evaluation

struct Eval {
  double accuracy, loss;
};

Eval evalSoftmax(const Softmax& m, const Dense& test) {
  std::vector<uint32_t> nz(m.d);
  float z[kClasses];
  size_t right = 0;
  double loss = 0;
  for (size_t r = 0; r < test.rows; r++) {
    m.logits(test.row(r), z, nz.data());
    const int y = test.y[r];
    right += std::max_element(z, z + kClasses) - z == y;
    const float zy = z[y];
    loss += softmaxInPlace(z) - zy;
  }
  return {double(right) / test.rows, loss / test.rows};
}

Eval evalMlp(const Mlp& m, const Dense& test) {
  std::vector<uint32_t> nz(m.d);
  float h[kHidden], z[kClasses];
  size_t right = 0;
  double loss = 0;
  for (size_t r = 0; r < test.rows; r++) {
    m.forward(test.row(r), h, z, nz.data());
    const int y = test.y[r];
    right += std::max_element(z, z + kClasses) - z == y;
    const float zy = z[y];
    loss += softmaxInPlace(z) - zy;
  }
  return {double(right) / test.rows, loss / test.rows};
}

Eval evalLogistic(const Logistic& m, const Sparse& test) {
  size_t right = 0;
  double loss = 0;
  for (size_t r = 0; r < test.rows; r++) {
    const double yz = double{test.y[r]} * m.margin(test, r);
    right += yz > 0;
    loss += yz > 0 ? std::log1p(std::exp(-yz)) : -yz + std::log1p(std::exp(yz));
  }
  return {double(right) / test.rows, loss / test.rows};
}

// ---------------------------------------------------------------- the Hogwild driver

// Runs `epochs` epochs over n rows on `threads` threads; step(perm, lo, hi)
// trains on perm[lo, hi). Returns the wall time in seconds.
template <class Step>
double hogwild(size_t n, int threads, int epochs, uint32_t seed, Step step) {
  std::vector<uint32_t> perm(n);
  for (size_t i = 0; i < n; i++) perm[i] = static_cast<uint32_t>(i);
  Rng rng(seed ^ 0x5EEDu);
  // The completion step runs once per phase, after all threads arrived and
  // before any continues: a new permutation for the next epoch.
  std::barrier sync(threads, [&]() noexcept { shuffle(perm, rng); });
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) {
    pool.emplace_back([&, t] {
      const size_t lo = n * t / threads, hi = n * (t + 1) / threads;
      for (int e = 0; e < epochs; e++) {
        sync.arrive_and_wait();
        step(perm.data(), lo, hi);
      }
    });
  }
  for (auto& th : pool) th.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void limitRows(Dense& d, long rows) {
  if (rows < 0 || size_t(rows) >= d.rows) return;
  d.rows = rows;
  d.x.resize(d.rows * d.cols);
  d.y.resize(d.rows);
}

void limitRows(Sparse& s, long rows) {
  if (rows < 0 || size_t(rows) >= s.rows) return;
  s.rows = rows;
  s.y.resize(rows);
  s.start.resize(rows + 1);
  s.index.resize(s.start.back());
  s.value.resize(s.start.back());
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const float lr = static_cast<float>(o.lr);
  size_t trainRows;
  double seconds;
  Eval ev;
  if (o.workload == "W3") {
    Sparse train = loadLibsvm(o.data + "/w3-train.svm", 47236);
    Sparse test = loadLibsvm(o.data + "/w3-test.svm", 47236);
    limitRows(train, o.rows);
    trainRows = train.rows;
    Logistic m(train.cols);
    seconds = hogwild(train.rows, o.threads, o.epochs, o.seed, [&](const uint32_t* perm, size_t lo, size_t hi) {
      if (o.batch == 1) trainLogistic1(m, train, perm, lo, hi, lr);
      else trainLogistic(m, train, perm, lo, hi, o.batch, lr);
    });
    ev = evalLogistic(m, test);
  } else {
    Dense train = loadIdx(o.fmnist + "/train-images-idx3-ubyte.gz", o.fmnist + "/train-labels-idx1-ubyte.gz");
    Dense test = loadIdx(o.fmnist + "/t10k-images-idx3-ubyte.gz", o.fmnist + "/t10k-labels-idx1-ubyte.gz");
    limitRows(train, o.rows);
    trainRows = train.rows;
    if (o.workload == "W1") {
      Softmax m(train.cols);
      const PixelRows csr = o.batch == 1 ? toCsr(train) : PixelRows{};
      seconds = hogwild(train.rows, o.threads, o.epochs, o.seed, [&](const uint32_t* perm, size_t lo, size_t hi) {
        if (o.batch == 1) trainSoftmax1(m, csr, train.y.data(), perm, lo, hi, lr);
        else trainSoftmax(m, train, perm, lo, hi, o.batch, lr);
      });
      ev = evalSoftmax(m, test);
    } else {
      Mlp m(train.cols, o.seed);
      const PixelRows csr = o.batch == 1 ? toCsr(train) : PixelRows{};
      seconds = hogwild(train.rows, o.threads, o.epochs, o.seed, [&](const uint32_t* perm, size_t lo, size_t hi) {
        if (o.batch == 1) trainMlp1(m, csr, train.y.data(), perm, lo, hi, lr);
        else trainMlp(m, train, perm, lo, hi, o.batch, lr);
      });
      ev = evalMlp(m, test);
    }
  }
  const double samples = double(trainRows) * o.epochs;
  std::printf(
      "{\"peer\":\"hand_sgd\",\"workload\":\"%s\",\"threads\":%d,\"batch\":%d,\"epochs\":%d,\"lr\":%g,"
      "\"trainRows\":%zu,\"samples\":%.0f,\"seconds\":%.6f,\"samplesPerSec\":%.1f,\"testAccuracy\":%.6f,\"testLoss\":%.6f}\n",
      o.workload.c_str(), o.threads, o.batch, o.epochs, o.lr, trainRows, samples, seconds, samples / seconds, ev.accuracy, ev.loss);
  return 0;
}
