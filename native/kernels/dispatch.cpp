#include "dispatch.h"

#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "fixed/avx2.h"
#include "fixed/neon.h"
#include "racy/avx2.h"
#include "racy/avx512.h"
#include "racy/neon.h"
#include "racy/scalar.h"
#include "update/avx2.h"
#include "update/avx512.h"
#include "update/neon.h"
#include "update/scalar.h"

// GCC 12's AVX-512 intrinsics (_mm512_max_ps, _mm512_reduce_add_ps, ...)
// start from _mm512_undefined_ps(), a deliberate self-initialisation that
// -Wuninitialized reports once inlined (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__  // a GCC-only warning (clang builds the fuzzers)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "dense/avx2.h"
#include "dense/avx512.h"
#include "dense/neon.h"
#include "dense/scalar.h"
#include "logistic/avx2.h"
#include "logistic/avx512.h"
#include "logistic/neon.h"
#include "logistic/scalar.h"
#include "relu/avx2.h"
#include "relu/avx512.h"
#include "relu/neon.h"
#include "relu/scalar.h"
#include "softmax/avx2.h"
#include "softmax/avx512.h"
#include "softmax/neon.h"
#include "softmax/scalar.h"
#include "sparse/avx2.h"
#include "sparse/avx512.h"
#include "sparse/neon.h"
#include "targets.h"
#include "sparse/scalar.h"
#pragma GCC diagnostic pop

namespace gv::kernels {
namespace {

// The batched cross-entropy: the row kernel of one instruction set over each row.
template <float (*Row)(const float*, size_t, uint32_t, float*)>
double softmax_xent_batch(const float* z, size_t rows, size_t k, const uint32_t* labels, float* grad) {
  double s = 0.0;
  for (size_t r = 0; r < rows; ++r) s += Row(z + r * k, k, labels[r], grad ? grad + r * k : nullptr);
  return s;
}

// The model kernels of one instruction set, by field name (a swap of two
// fields of one signature, gemv and gemv_t, would otherwise compile).
#define GV_MODEL_KERNELS(ns, sparse_dot_fn, rows_ns)                                                              \
  .dot = ns::dot, .gemv = ns::gemv, .gemv_t = ns::gemv_t, .gemm = ns::gemm, .sparse_dot = sparse_dot_fn,          \
  .sparse_axpy = ns::sparse_axpy, .rows_gather = rows_ns::rows_gather, .rows_scatter = rows_ns::rows_scatter,     \
  .nonzeros = rows_ns::nonzeros, .rows_step = rows_ns::rows_step,                                                \
  .softmax_xent = ns::softmax_xent, .softmax_xent_batch = softmax_xent_batch<ns::softmax_xent>,                  \
  .log_softmax = ns::log_softmax, .sigmoid = ns::sigmoid, .logloss = ns::logloss, .relu = ns::relu,              \
  .relu_backward = ns::relu_backward

// The scalar reference: the vectoriser is switched off so it stays a reference.
__attribute__((optimize("no-tree-vectorize"))) void step_scalar(const StepArgs& a, float* p, float* s1, float* s2,
                                                                  const float* g, size_t n) {
  step_range(a, p, s1, s2, g, n);
}

// copy_racy_stream: scalar and NEON have no streaming stores, so both slots
// hold the plain racy copy.
const Table kScalar{.isa = Isa::Scalar,
                   .name = "scalar",
                   .axpby = scalar::axpby,
                   .copy = scalar::copy,
                   .copy_stream = scalar::copy_stream,
                   .copy_racy = scalar::copy_racy,
                   .copy_racy_stream = scalar::copy_racy,
                   .first_nonfinite = scalar::first_nonfinite,
                   .checksum = scalar::checksum,
                   .step = step_scalar,
                   .scan = scalar::scan,
                   .fixed_add = scalar::fixed_add,
                   .fixed_load = scalar::fixed_load,
                   GV_MODEL_KERNELS(scalar, scalar::sparse_dot, scalar)};

#if defined(__x86_64__)
GV_AVX2 void step_avx2(const StepArgs& a, float* p, float* s1, float* s2, const float* g,
                                               size_t n) {
  step_range(a, p, s1, s2, g, n);
}
GV_AVX512F void step_avx512(const StepArgs& a, float* p, float* s1, float* s2,
                                                    const float* g, size_t n) {
  step_range(a, p, s1, s2, g, n);
}
const Table kAvx2{.isa = Isa::Avx2,
                   .name = "avx2",
                   .axpby = avx2::axpby,
                   .copy = avx2::copy,
                   .copy_stream = avx2::copy_stream,
                   .copy_racy = avx2::copy_racy,
                   .copy_racy_stream = avx2::copy_racy_stream,
                   .first_nonfinite = avx2::first_nonfinite,
                   .checksum = avx2::checksum,
                   .step = step_avx2,
                   .scan = avx2::scan,
                   .fixed_add = avx2::fixed_add,
                   .fixed_load = avx2::fixed_load,
                   GV_MODEL_KERNELS(avx2, avx2::sparse_dot_unrolled, avx2)};
// The fixed family and scan have no AVX-512 versions yet: every AVX-512 CPU
// has AVX2, and these are bound by memory, not by vector width.
// sparse_dot and the row kernels: plain loads beat gathers (sparse/README.md);
// every AVX-512 CPU has AVX2 and FMA, so they run the AVX2 loops.
const Table kAvx512{.isa = Isa::Avx512,
                   .name = "avx512",
                   .axpby = avx512::axpby,
                   .copy = avx512::copy,
                   .copy_stream = avx512::copy_stream,
                   .copy_racy = avx512::copy_racy,
                   .copy_racy_stream = avx512::copy_racy_stream,
                   .first_nonfinite = avx512::first_nonfinite,
                   .checksum = avx512::checksum,
                   .step = step_avx512,
                   .scan = avx2::scan,
                   .fixed_add = avx2::fixed_add,
                   .fixed_load = avx2::fixed_load,
                   GV_MODEL_KERNELS(avx512, avx2::sparse_dot_unrolled, avx512)};
#endif

#if defined(__aarch64__)
void step_neon(const StepArgs& a, float* p, float* s1, float* s2, const float* g, size_t n) {
  step_range(a, p, s1, s2, g, n);
}
const Table kNeon{.isa = Isa::Neon,
                   .name = "neon",
                   .axpby = neon::axpby,
                   .copy = neon::copy,
                   .copy_stream = neon::copy_stream,
                   .copy_racy = neon::copy_racy,
                   .copy_racy_stream = neon::copy_racy,
                   .first_nonfinite = neon::first_nonfinite,
                   .checksum = neon::checksum,
                   .step = step_neon,
                   .scan = neon::scan,
                   .fixed_add = neon::fixed_add,
                   .fixed_load = neon::fixed_load,
                   GV_MODEL_KERNELS(neon, neon::sparse_dot, neon)};
#endif

const Table* choose() {
  const char* forced = std::getenv("GRADVAULT_ISA");
  if (forced && *forced) {
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon})
      if (std::strcmp(forced, isa_name(isa)) == 0 && table_for(isa)) return table_for(isa);
    // An unknown or unsupported choice falls back to the best available: a
    // prebuilt binary must never crash because of a stale environment variable.
  }
  if (const Table* t = table_for(best_isa(cpu_features()))) return t;
  return &kScalar;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Neon: return "neon";
  }
  return "unknown";
}

uint32_t cpu_features() {
  uint32_t f = 0;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) f |= kFeatureAvx2;
  if (__builtin_cpu_supports("fma")) f |= kFeatureFma;
  if (__builtin_cpu_supports("avx512f")) f |= kFeatureAvx512f;
#endif
#if defined(__aarch64__)
  f |= kFeatureNeon;
#endif
  return f;
}

// Every feature a table's code is compiled for, not just the one in its
// name: the AVX2 table's vmath kernels are target("avx2,fma"), and the
// AVX-512 table reuses AVX2+FMA kernels beside its avx512f ones. A CPU (or a
// VM that masks FMA) reporting AVX2 alone gets the scalar table, not SIGILL.
bool isa_ok(Isa isa, uint32_t f) {
  const uint32_t avx2 = kFeatureAvx2 | kFeatureFma;
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return (f & avx2) == avx2;
    case Isa::Avx512: return (f & (avx2 | kFeatureAvx512f)) == (avx2 | kFeatureAvx512f);
    case Isa::Neon: return (f & kFeatureNeon) != 0;
  }
  return false;
}

Isa best_isa(uint32_t f) {
  for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::Neon})
    if (isa_ok(isa, f)) return isa;
  return Isa::Scalar;
}

bool isa_supported(Isa isa) {
  static const uint32_t f = cpu_features();
  if (!isa_ok(isa, f)) return false;
  // and the build has its code
#if defined(__x86_64__)
  if (isa == Isa::Neon) return false;
#elif defined(__aarch64__)
  if (isa == Isa::Avx2 || isa == Isa::Avx512) return false;
#else
  if (isa != Isa::Scalar) return false;
#endif
  return true;
}

const Table* table_for(Isa isa) {
  if (!isa_supported(isa)) return nullptr;
  switch (isa) {
    case Isa::Scalar: return &kScalar;
#if defined(__x86_64__)
    case Isa::Avx2: return &kAvx2;
    case Isa::Avx512: return &kAvx512;
#endif
#if defined(__aarch64__)
    case Isa::Neon: return &kNeon;
#endif
    default: return nullptr;
  }
}

const Table& active() {
  static const Table* t = choose();
  return *t;
}

}  // namespace gv::kernels
