#!/usr/bin/env bash
# npm run test:full: what npm test leaves out because it is slow or needs
# tools beyond `npm install`: the C++ core tests under ThreadSanitizer and
# ASan+UBSan, jest against an ASan+UBSan build of the addon, the fuzz corpus
# and regression inputs replayed (clang + libFuzzer), a short soak, both
# builds (node-gyp, cmake-js) with a prebuild, the linux-arm64 build
# (cross-compiled, its kernel tests and a smoke test under qemu-user), the
# API reference, and the benchmark smoke run. A missing tool is an error,
# never a silent skip.
# Debian: apt-get install cmake clang libfuzzer-14-dev libclang-rt-14-dev python3-numpy g++-aarch64-linux-gnu qemu-user
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== %s (%d s)\n' "$*" "$(( $(date +%s) - start ))"; }

missing=()
command -v cmake >/dev/null || missing+=("cmake (apt-get install cmake)")
command -v clang++ >/dev/null || command -v clang++-14 >/dev/null || missing+=("clang++ (apt-get install clang)")
compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null \
  || missing+=("libFuzzer (apt-get install libfuzzer-14-dev libclang-rt-14-dev)")
[ -f "$(g++ -print-file-name=libasan.so)" ] || missing+=("libasan (g++'s sanitizer runtime)")
[ -f "$(g++ -print-file-name=libtsan.so)" ] || missing+=("libtsan (g++'s sanitizer runtime)")
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=("the arm64 cross compiler (apt-get install g++-aarch64-linux-gnu)")
command -v qemu-aarch64 >/dev/null || missing+=("qemu-aarch64 (apt-get install qemu-user)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'test:full: missing tools:\n' >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi

[ -f build/Release/gradvault.node ] || npm run build:native --silent
npm run build:ts --silent

step "C++ core tests under ThreadSanitizer"
bash scripts/ctest.sh thread
step "C++ core tests under AddressSanitizer + UndefinedBehaviorSanitizer"
bash scripts/ctest.sh address
step "jest against an ASan+UBSan build of the addon"
bash scripts/jest-asan.sh
step "fuzz corpus and regression inputs replayed (libFuzzer, ASan+UBSan)"
bash scripts/fuzz.sh replay
step "soak, short: trainers, worker pushes, snapshots, checkpoints, injected faults (npm run soak: 10 minutes)"
node test/harness/soak.js --seconds 30
step "both builds (node-gyp, cmake-js) and a prebuild without build/"
bash scripts/check-builds.sh
step "linux-arm64: cross-compiled addon and C++ tests under qemu-user (NEON vs scalar kernels, core tests, smoke test)"
bash scripts/test-arm64.sh
step "API reference from the TSDoc comments (typedoc, warnings are errors)"
npm run docs --silent
step "benchmark smoke run"
bash scripts/bench.sh --smoke
node bench/cluster_bench.js --quick --json bench/out/smoke/cluster.json
# predict beside evaluate and a plain JS loop (fails if the JS loop's classes differ); outside the repo: the committed results stay
node bench/predict_bench.js --quick --json "${TMPDIR:-/tmp}/gradvault-bench-smoke/predict.json"
# remote Trainers in worker processes through shard processes; the PyTorch
# DDP rows need python3-torch (a benchmark baseline, not a test): left out here, and it says so
node bench/cluster_train.js --quick --only-cluster --configs 1x2x1,1x2x1a --json bench/out/smoke/cluster_train.json

echo "test:full: passed in $(( $(date +%s) - start )) s"
