// The kernel table, chosen once at load from what the CPU supports and
// overridable with GRADVAULT_ISA=scalar|avx2|avx512|neon (tests run every
// path on one machine this way).
#pragma once
#include <cstddef>
#include <cstdint>
#include "fixed/scalar.h"
#include "optim/step.h"

namespace gv::kernels {

// Snapshots of this many bytes and more copy with copy_stream.
constexpr size_t kStreamBytes = size_t{4} << 20;

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Neon = 3 };

struct Table {
  Isa isa;
  const char* name;
  void (*axpby)(float* out, const float* y, const float* x, float a, float b, size_t n);
  void (*copy)(float* dst, const float* src, size_t n);
  // copy with streaming stores where the ISA has them: for large snapshots,
  // whose destination is not read back soon and would not fit in cache.
  void (*copy_stream)(float* dst, const float* src, size_t n);
  // racy/: copy and copy_stream for a source that other threads write while
  // it is read (mode 'atomic''s lock-free snapshots): every aligned 4-byte
  // element is read by one access the hardware performs whole, so each
  // element copied is a value some store wrote (racy/README.md).
  void (*copy_racy)(float* dst, const float* src, size_t n);
  void (*copy_racy_stream)(float* dst, const float* src, size_t n);
  size_t (*first_nonfinite)(const float* x, size_t n);
  uint64_t (*checksum)(const float* x, size_t n);
  void (*step)(const StepArgs& a, float* p, float* s1, float* s2, const float* g, size_t n);
  // First NaN/Inf and max |x| in one pass (the pre-check of every push).
  scalar::ScanResult (*scan)(const float* x, size_t n);
  // Q32.32: q[k] += llrint(scale * (g[k] + wd * anchor[k]) * 2^32); anchor may be null.
  // SIMD versions need |scale * (g + wd * anchor)| * 2^32 < 2^51 (the caller checks;
  // beyond that it calls scalar). Adds wrap modulo 2^64 (exact, order-free);
  // returns false if a value ends outside [-2^62, 2^62].
  bool (*fixed_add)(int64_t* q, const float* g, const float* anchor, double scale, double wd, size_t n);
  void (*fixed_load)(float* out, const int64_t* q, size_t n);

  // ---- model kernels (README.md; named tolerances in tolerance.h). The
  // reductions (dot, gemv, gemm, sparse_dot, the softmax and loss sums) may
  // differ from scalar by rounding within tol::; the elementwise ones
  // (sigmoid, logloss's gradient, relu, relu_backward, sparse_axpy) give
  // the scalar bits.
  // dense/: sum_i x[i] y[i].
  float (*dot)(const float* x, const float* y, size_t n);
  // y[m] = alpha * A x + beta * y, A row-major [m, n] with row stride lda;
  // beta == 0 writes y without reading it.
  void (*gemv)(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha, float beta);
  // y[n] = alpha * A^T x + beta * y, A row-major [m, n], x[m]; beta == 0 as gemv.
  void (*gemv_t)(const float* A, size_t lda, const float* x, float* y, size_t m, size_t n, float alpha, float beta);
  // C[m, n] += alpha * op(A)[m, k] op(B)[k, n], row-major with leading
  // dimensions; op(X) = X^T when the flag is set (A stored [k, m], B [n, k]).
  void (*gemm)(bool transA, bool transB, size_t m, size_t n, size_t k, float alpha, const float* A, size_t lda,
               const float* B, size_t ldb, float* C, size_t ldc);
  // sparse/ (one CSR row): sum_i values[i] * dense[indices[i]] (indices < 2^31).
  float (*sparse_dot)(const float* values, const uint32_t* indices, size_t nnz, const float* dense);
  // dense[indices[i]] += a * values[i], in order (repeated indices add up).
  void (*sparse_axpy)(float* dense, const uint32_t* indices, const float* values, size_t nnz, float a);
  // A sparse row times W [*, width] (row-major): z[j] += sum_k values[k] *
  // W[indices[k], j]; and its gradient G[indices[k], j] += values[k] * d[j].
  // Both give the scalar bits on every ISA (a multiply then an add per term).
  void (*rows_gather)(float* z, const float* W, size_t width, const uint32_t* indices, const float* values, size_t nnz);
  void (*rows_scatter)(float* G, size_t width, const uint32_t* indices, const float* values, size_t nnz, const float* d);
  // the nonzeros of a dense row (x != 0) in order: indices and values (buffers of n + 16); their count
  size_t (*nonzeros)(const float* x, size_t n, uint32_t* idx, float* val);
  // W[indices[k] * width + j] += a * (0 + values[k] * d[j]), indices unique: the plain sgd
  // step (a = -lr) of the rows_scatter gradient, fused (the per-sample trainer's update)
  void (*rows_step)(float* W, size_t width, const uint32_t* indices, const float* values, size_t nnz, const float* d, float a);
  // softmax/: one row of k finite logits, label < k. Returns the cross-entropy
  // -log softmax(z)[label]; writes grad = softmax(z) - onehot(label) when grad
  // is not null (grad may be z).
  float (*softmax_xent)(const float* z, size_t k, uint32_t label, float* grad);
  // The same over `rows` consecutive rows (z, grad [rows, k]); returns the sum of the losses.
  double (*softmax_xent_batch)(const float* z, size_t rows, size_t k, const uint32_t* labels, float* grad);
  // out[j] = z[j] - max - log(sum exp(z - max)); out may be z.
  void (*log_softmax)(float* out, const float* z, size_t k);
  // logistic/: out[i] = 1 / (1 + exp(-z[i])) (stable for any z); out may be z.
  void (*sigmoid)(float* out, const float* z, size_t n);
  // Binary log-loss, labels y = +1/-1: returns sum log(1 + exp(-y z)); writes
  // grad[i] = -y[i] sigmoid(-y[i] z[i]) when grad is not null (grad may be z).
  float (*logloss)(const float* z, const float* y, float* grad, size_t n);
  // relu/: out[i] = max(x[i], 0) (out may be x); grad[i] = x[i] > 0 ? grad[i] : 0.
  void (*relu)(float* out, const float* x, size_t n);
  void (*relu_backward)(float* grad, const float* x, size_t n);
};

// CPU features the tables need, as a mask: the decision below is a pure
// function of it, so tests can check it for CPUs this one is not.
enum : uint32_t { kFeatureAvx2 = 1, kFeatureFma = 2, kFeatureAvx512f = 4, kFeatureNeon = 8 };
uint32_t cpu_features();
// Whether a CPU with features f can run the table of isa (all of its code's features).
bool isa_ok(Isa isa, uint32_t f);
// The best instruction set for features f.
Isa best_isa(uint32_t f);
bool isa_supported(Isa isa);
// The table for one instruction set, or nullptr where this CPU or build lacks it.
const Table* table_for(Isa isa);
// The active table: the best supported, or GRADVAULT_ISA's choice.
const Table& active();
const char* isa_name(Isa isa);

}  // namespace gv::kernels
