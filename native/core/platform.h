// What the core needs to know about the machine and the build: a spin-wait
// hint, and whether ThreadSanitizer instruments this build.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define GV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GV_TSAN 1
#endif
#endif

// Racy by design (hogwild writes and its trainer's in-place reads): not
// reported by ThreadSanitizer. See native/tests/tsan.supp.
#define GV_NO_TSAN __attribute__((no_sanitize("thread")))

namespace gv {

#if defined(GV_TSAN)
constexpr bool kTsanBuild = true;
#else
constexpr bool kTsanBuild = false;
#endif

// Inside a spin loop: lets the other hardware thread of the core run.
inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace gv
