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
  size_t (*first_nonfinite)(const float* x, size_t n);
  uint64_t (*checksum)(const float* x, size_t n);
  void (*step)(const StepArgs& a, float* p, float* s1, float* s2, const float* g, size_t n);
  // First NaN/Inf and max |x| in one pass (the pre-check of every push).
  scalar::ScanResult (*scan)(const float* x, size_t n);
  // Q32.32: q[k] += llrint(scale * (g[k] + wd * anchor[k]) * 2^32); anchor may be null.
  // SIMD versions need |scale * (g + wd * anchor)| * 2^32 < 2^51 (the caller checks;
  // beyond that it calls scalar). Returns false if a value left [-2^62, 2^62].
  bool (*fixed_add)(int64_t* q, const float* g, const float* anchor, double scale, double wd, size_t n);
  void (*fixed_load)(float* out, const int64_t* q, size_t n);
};

bool isa_supported(Isa isa);
// The table for one instruction set, or nullptr where this CPU or build lacks it.
const Table* table_for(Isa isa);
// The active table: the best supported, or GRADVAULT_ISA's choice.
const Table& active();
const char* isa_name(Isa isa);

}  // namespace gv::kernels
