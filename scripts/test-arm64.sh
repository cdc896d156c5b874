#!/usr/bin/env bash
# linux-arm64 on an x86-64 Debian host (npm run test:arm64; a stage of
# npm run test:full): cross-compiles the addon and the C++ tests
# (scripts/build-arm64.sh), then runs them under qemu-user with Debian's
# arm64 libraries (build-arm64/root):
#   1. test_kernels and test_model_kernels: every instruction set the build
#      has (scalar and NEON on arm64) against the scalar reference; the
#      dispatch must pick NEON;
#   2. the other C++ core tests through ctest (the emulator is in
#      cmake/aarch64.cmake; GV_STRESS_SCALE=0.25 unless set);
#   3. test/arm64/smoke.js on Debian's arm64 Node through dist/ and the
#      prebuild (PREBUILDS_ONLY=1), with the NEON kernels and again with
#      GRADVAULT_ISA=scalar: the deterministic store's bytes must agree.
# qemu emulates QEMU_CPU=cortex-a72 unless set (an ARMv8.0-A core: the
# binaries must not need anything newer). x86-64 is a stronger memory model
# than AArch64's and qemu-user runs the guest's threads on it, so the
# concurrency tests here do not exercise weak orderings (test_weak_memory's
# model checker does, on any host). --quick: steps 1 and 3 only.
# A missing tool is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SYSROOT=$ROOT/build-arm64/root
quick=0
[ "${1:-}" = --quick ] && quick=1
start=$(date +%s)
step() { printf '\n== arm64: %s (%d s)\n' "$*" "$(( $(date +%s) - start ))"; }
die() { printf 'test-arm64: %s\n' "$*" >&2; exit 1; }

if ! command -v qemu-aarch64 >/dev/null; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "qemu-aarch64 is missing (apt-get install qemu-user)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-user >/dev/null || die "apt-get install qemu-user failed"
fi
[ -f dist/index.js ] || die "dist/ is missing (npm run build:ts)"
export QEMU_CPU="${QEMU_CPU:-cortex-a72}"
qemu=(qemu-aarch64 -L "$SYSROOT")

step "cross-compile the addon and the C++ tests (scripts/build-arm64.sh)"
bash scripts/build-arm64.sh

step "C++ kernel tests under qemu-aarch64 (QEMU_CPU=$QEMU_CPU): every instruction set against scalar"
cd build-arm64/cmake
for t in test_kernels test_model_kernels; do
  echo "$ qemu-aarch64 -L build-arm64/root ./$t"
  out=$("${qemu[@]}" "./$t" 2>&1) || { echo "$out"; die "$t failed"; }
  grep -E '^(scalar|avx2|avx512|neon) |checks|exp_approx|log1p_approx' <<<"$out"
  grep -qE '^neon +ok' <<<"$out" || { echo "$out"; die "$t did not compare NEON with scalar"; }
done
# The dispatch chose NEON (test_kernels checks active() against the best
# table; here it is said out loud) and GRADVAULT_ISA still forces scalar.
out=$(GRADVAULT_ISA=scalar "${qemu[@]}" ./test_kernels 2>&1) || { echo "$out"; die "test_kernels with GRADVAULT_ISA=scalar failed"; }
grep -q '^GRADVAULT_ISA=scalar -> active scalar$' <<<"$out" || { echo "$out"; die "GRADVAULT_ISA=scalar did not select scalar"; }
echo "GRADVAULT_ISA=scalar -> active scalar: ok"

if [ "$quick" = 0 ]; then
  step "the other C++ core tests under qemu-aarch64 (ctest, GV_STRESS_SCALE=${GV_STRESS_SCALE:-0.25})"
  GV_STRESS_SCALE="${GV_STRESS_SCALE:-0.25}" ctest --output-on-failure --timeout 900 -j2 -E '_strict$|^kernels$|^model_kernels$'
fi
cd "$ROOT"

step "smoke test: Debian's arm64 Node $("${qemu[@]}" "$SYSROOT/usr/bin/node" --version) loads prebuilds/linux-arm64 through dist/"
node_arm64=("${qemu[@]}" "$SYSROOT/usr/bin/node")
PREBUILDS_ONLY=1 "${node_arm64[@]}" test/arm64/smoke.js | tee build-arm64/smoke-neon.log
step "smoke test again on the scalar kernels (GRADVAULT_ISA=scalar)"
GRADVAULT_ISA=scalar PREBUILDS_ONLY=1 "${node_arm64[@]}" test/arm64/smoke.js | tee build-arm64/smoke-scalar.log
neon=$(sed -n 's/^deterministic digest: //p' build-arm64/smoke-neon.log)
scalar=$(sed -n 's/^deterministic digest: //p' build-arm64/smoke-scalar.log)
[ -n "$neon" ] && [ "$neon" = "$scalar" ] || die "deterministic bytes differ between NEON ($neon) and scalar ($scalar)"
echo "deterministic store: the same bytes with NEON and scalar kernels ($neon)"

echo "test-arm64: passed in $(( $(date +%s) - start )) s"
