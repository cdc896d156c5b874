// What the store's files share (internal to native/core/store/): the kernel
// table, the snapshot copy, Q32.32 constants, and the version a versioned
// push published on this thread.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../../kernels/dispatch.h"
#include "../store.h"

namespace gv::detail {

inline const kernels::Table& K() { return kernels::active(); }

// The copy a snapshot of `padded` floats uses: streaming stores for large
// stores (the destination is fresh or recycled memory that the reader will
// walk once; for 40 MB this is 0.63 -> 1.0 of the JS copy's speed here).
inline auto snapshot_copy(size_t padded) {
  return padded * sizeof(float) >= kernels::kStreamBytes ? K().copy_stream : K().copy;
}

// The version VersionedStore::apply just published on this thread, which
// push() returns: version() may already be a later writer's.
inline thread_local uint64_t t_published_version = 0;

// Q32.32 fixed point (kernels/fixed): exact, associative integer sums for
// deterministic parameters and the averaging accumulator.
using kernels::kFixedOne;
constexpr double kFixedMax = static_cast<double>(kernels::kFixedLimit);  // 2^62 in Q32.32: a value of 2^30

}  // namespace gv::detail
