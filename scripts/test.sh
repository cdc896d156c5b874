#!/usr/bin/env bash
# The project's checks: typecheck, the jest suite against the addon, the C++
# core tests (Release, ThreadSanitizer, ASan+UBSan), jest against an ASan
# build of the addon, the fuzz corpus replay, a short soak and the benchmark
# smoke run. GV_TEST_QUICK=1 skips the sanitizer, fuzz and soak steps (for a
# fast local loop). The long runs are npm scripts: fuzz, soak, faults.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "build the addon (node-gyp) and the TypeScript"
[ -f build/Release/gradvault.node ] || npm run build:native --silent
npm run build:ts --silent

step "typecheck (lib and tests)"
npm run typecheck --silent

step "jest"
npx jest --ci

step "jest: the optimizer and store specs again on the scalar kernels"
GRADVAULT_ISA=scalar npx jest --ci test/20 test/30

if [ -f CMakeLists.txt ]; then
  step "C++ core tests (Release; includes the history checker and the schedule search)"
  bash scripts/ctest.sh release
  if [ "${GV_TEST_QUICK:-0}" != "1" ]; then
    step "C++ core tests under ThreadSanitizer"
    bash scripts/ctest.sh thread
    step "C++ core tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    bash scripts/ctest.sh address
  fi
fi

if [ "${GV_TEST_QUICK:-0}" != "1" ]; then
  step "jest against an ASan+UBSan build of the addon"
  bash scripts/jest-asan.sh
  step "fuzz corpus and regression inputs replayed (libFuzzer, ASan+UBSan)"
  bash scripts/fuzz.sh replay
  step "soak, short: trainers, worker pushes, snapshots, checkpoints, injected faults (npm run soak: 10 minutes)"
  node scripts/soak.js --seconds 30
fi

step "both builds (node-gyp, cmake-js) and a prebuild without build/"
bash scripts/check-builds.sh

step "the packed tarball in an empty folder: prebuild, require, import, npx gradvault, types, build from source"
bash scripts/check-pack.sh

step "API reference from the TSDoc comments (typedoc, warnings are errors)"
npm run docs --silent

if [ -f scripts/bench.sh ]; then
  step "benchmark smoke run"
  bash scripts/bench.sh --smoke
fi
