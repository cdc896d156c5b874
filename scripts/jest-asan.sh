#!/usr/bin/env bash
# The jest suite against an AddressSanitizer + UndefinedBehaviorSanitizer
# build of the addon (cmake-js, GV_SANITIZE=address,undefined, into
# build-asan-addon/), loaded through GRADVAULT_ADDON with libasan preloaded
# (node itself is not instrumented). Any report fails the run.
#
#   scripts/jest-asan.sh [jest arguments]     (default: the whole suite)
#
# Leak detection is off: node and V8 keep memory to the end by design, and
# the core's own leaks are LeakSanitizer's job in the ctest ASan run.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out=build-asan-addon
npx cmake-js build -O "$out" --CDGV_SANITIZE=address,undefined --CDGV_BUILD_TESTS=OFF > /tmp/gradvault-asan-addon.log 2>&1 \
  || { tail -30 /tmp/gradvault-asan-addon.log; exit 1; }
[ -f dist/index.js ] || npm run build:ts --silent
export GRADVAULT_ADDON="$PWD/$out/Release/gradvault.node"
export LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
# A report is fatal and names itself in stderr; exitcode 86 marks it.
export ASAN_OPTIONS="detect_leaks=0 halt_on_error=1 abort_on_error=0 exitcode=86 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
node -e 'const n = require(process.env.GRADVAULT_ADDON); console.log("ASan addon:", process.env.GRADVAULT_ADDON, JSON.stringify(n.isa()))'
# One worker: the child processes the suite starts inherit the preload too.
# By default all but the Fashion-MNIST accuracy goals (minutes of training
# under ASan; the same code runs in the other trainer tests, and the goals
# themselves in the plain jest run).
if [ $# -eq 0 ]; then set -- --testNamePattern '^(?!Fashion-MNIST accuracy)'; fi
# A hang (an open handle after the last test) fails the stage in 30 minutes
# instead of holding CI to its limit.
timeout -k 30 1800 npx jest --ci --runInBand "$@" || { rc=$?; [ $rc -eq 124 ] && echo "jest-asan.sh: jest did not finish within 1800 s" >&2; exit $rc; }
echo "jest-asan.sh: $(( $(date +%s) - start )) s"
