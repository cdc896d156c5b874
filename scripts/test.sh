#!/usr/bin/env bash
# The project's checks: typecheck, the jest suite against the addon, the C++
# core tests (Release, ThreadSanitizer, ASan+UBSan) and the benchmark smoke run.
# GV_TEST_QUICK=1 skips the sanitizer builds (for a fast local loop).
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
  step "C++ core tests (Release)"
  bash scripts/ctest.sh release
  if [ "${GV_TEST_QUICK:-0}" != "1" ]; then
    step "C++ core tests under ThreadSanitizer"
    bash scripts/ctest.sh thread
    step "C++ core tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    bash scripts/ctest.sh address
  fi
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
