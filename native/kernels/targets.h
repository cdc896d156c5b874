// The instruction sets a kernel function is compiled for, spelled once.
// SIMD is enabled per function with these target attributes, never for the
// whole build (no -march=native): the dispatch table (dispatch.cpp) calls a
// function only on a CPU that has its set (best_isa). The AVX2 table's
// kernels that use fused multiply-add (vmath/) are GV_AVX2_FMA; the others
// are GV_AVX2, so -ffp-contract=off keeps them bit-identical to scalar.
#pragma once

#if defined(__x86_64__)
#define GV_AVX2 __attribute__((target("avx2")))
#define GV_AVX2_FMA __attribute__((target("avx2,fma")))
#define GV_AVX512F __attribute__((target("avx512f")))
#endif
