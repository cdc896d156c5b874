#!/usr/bin/env bash
# Builds the C++ core and its tests with CMake and runs them with ctest.
#
#   scripts/ctest.sh release   build-cmake/release, no sanitizer
#   scripts/ctest.sh thread    build-cmake/tsan,    -fsanitize=thread
#   scripts/ctest.sh address   build-cmake/asan,    -fsanitize=address,undefined
#
# Any sanitizer report fails the run (halt_on_error). Sanitizer runs shrink
# the stress tests with GV_STRESS_SCALE (default 0.25 there; set it to
# override). Extra arguments go to ctest (e.g. -R kernels, -V).
set -euo pipefail

variant="${1:-}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
supp="$root/native/tests/tsan.supp"

case "$variant" in
  release)
    dir="$root/build-cmake/release"
    sanitize=""
    ;;
  thread)
    dir="$root/build-cmake/tsan"
    sanitize="thread"
    export GV_STRESS_SCALE="${GV_STRESS_SCALE:-0.25}"
    # second_deadlock_stack: both stacks of a lock-order report.
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$supp ${TSAN_OPTIONS:-}"
    ;;
  address)
    dir="$root/build-cmake/asan"
    sanitize="address,undefined"
    export GV_STRESS_SCALE="${GV_STRESS_SCALE:-0.25}"
    export ASAN_OPTIONS="halt_on_error=1 detect_leaks=1 strict_string_checks=1 detect_stack_use_after_return=1 ${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
    ;;
  *)
    echo "usage: $0 release|thread|address [ctest arguments]" >&2
    exit 2
    ;;
esac

start=$(date +%s)
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release "-DGV_SANITIZE=$sanitize"
cmake --build "$dir" -j2
cd "$dir"
# The release run also repeats the store tests on the scalar kernels
# (GRADVAULT_ISA=scalar, registered in CMakeLists.txt); test_kernels itself
# iterates every instruction set this CPU supports in one process.
ctest --output-on-failure --timeout 600 "$@"
echo "ctest.sh $variant: $(( $(date +%s) - start )) s (configure, build and tests)"
