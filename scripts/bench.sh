#!/usr/bin/env bash
# npm run bench: builds what is missing, runs the benchmark suites (core C++,
# JS API, training, predict), and writes bench/RESULTS.md plus the raw JSON in bench/results/.
#
#   bash scripts/bench.sh            full run (core ~55 s, JS ~130 s, training ~15 min, per-sample vs generic
#                                    ~2 min, predict ~2 min on 2 cores), writes bench/RESULTS.md
#   bash scripts/bench.sh --smoke    quick CI check (small sizes, 1 rep; ~4 s once built plus ~3 s for the
#                                    per-sample step, ~16 s more to build gv_bench_core from scratch), writes bench/out/smoke/
#   bash scripts/bench.sh --report-only   rewrites bench/RESULTS.md from bench/results/*.json
#                                         (after editing bench/ANALYSIS.md; nothing is run)
#
# Extra arguments for the suites: BENCH_CORE_ARGS="--threads 1,2,4,8,16" BENCH_JS_ARGS="--modes atomic"
# BENCH_TRAIN_ARGS="--workloads W1b32 --peers hand_sgd" BENCH_PREDICT_ARGS="--workloads softmax,mf"
# BENCH_SAMPLE=0 leaves out the per-sample vs generic step (gv_bench_train --paths per-sample,generic).
# The core bench binaries are built with the CMake targets gv_bench_core and gv_bench_train
# when CMake is available (same flags as the addon), else with g++ directly.
# The report puts the first run's numbers (bench/results/before/) beside the new ones.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

SMOKE=0
REPORT_ONLY=0
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    --report-only) REPORT_ONLY=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done

# The first run's raw JSON, shown BEFORE / AFTER in the report (kept, never overwritten).
BEFORE=bench/results/before

T0=$(date +%s)
log() { printf '\n[bench] %s\n' "$*"; }

if [ "$REPORT_ONLY" = 1 ]; then
  OUT=bench/results
  [ "$SMOKE" = 1 ] && OUT=bench/out/smoke
  RESULTS=bench/RESULTS.md
  [ "$SMOKE" = 1 ] && RESULTS=$OUT/RESULTS.md
  exec node bench/report.js --core "$OUT/core.json" --js "$OUT/js.json" --train "$OUT/train.json" --run "$OUT/run.json" \
    --predict "$OUT/predict.json" --out "$RESULTS" --analysis bench/ANALYSIS.md --before "$BEFORE"
fi

# ---- 1. the addon
if [ ! -f build/Release/gradvault.node ]; then
  log "building the addon (npm run build:native)"
  npm run build:native
fi

# ---- 2. dist/ (the public API the JS suite requires), when missing or older than lib/
if [ ! -f dist/index.js ] || [ -n "$(find lib -name '*.ts' -newer dist/index.js 2>/dev/null | head -1)" ]; then
  log "compiling the TypeScript facade (tsc -p tsconfig.json)"
  npx --no-install tsc -p tsconfig.json
fi

# ---- 3. the core bench binary
# Which core was measured: the commit and a hash of the native sources as they are now.
SRC_HASH=$(cat native/sources.txt $(cat native/sources.txt) $(find native/core native/kernels -name '*.h' | sort) 2>/dev/null | sha256sum | cut -c1-12)
if REV=$(git rev-parse --short HEAD 2>/dev/null); then
  DIRTY=$(git status --porcelain -- native 2>/dev/null | head -1)
  SOURCE="commit $REV${DIRTY:+ with uncommitted changes in native/}, native sources sha256 $SRC_HASH"
else
  SOURCE="native sources sha256 $SRC_HASH"
fi
if [ -n "$(find native -newer build/Release/gradvault.node \( -name '*.cpp' -o -name '*.h' \) 2>/dev/null | head -1)" ]; then
  echo "[bench] warning: build/Release/gradvault.node is older than native/ (the JS suite measures the older addon; run npm run build:native to refresh)" >&2
  SOURCE="$SOURCE; the addon used by the JS suite is older than these sources"
fi


CORE_BIN=""
CMAKE_DIR=""
build_core_cmake() {
  command -v cmake >/dev/null 2>&1 || return 1
  grep -q 'gv_bench_core' CMakeLists.txt 2>/dev/null || return 1
  local dir=build-bench/cmake
  # GV_BUILD_TESTS=OFF: the bench needs only the core library and itself.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DGV_BUILD_TESTS=OFF >"$dir.configure.log" 2>&1 || {
    echo "[bench] cmake configure failed (see $dir.configure.log); falling back to g++" >&2
    return 1
  }
  cmake --build "$dir" --target gv_bench_core -j "$(nproc 2>/dev/null || echo 2)" >"$dir.build.log" 2>&1 || {
    echo "[bench] cmake build failed (see $dir.build.log); falling back to g++" >&2
    tail -20 "$dir.build.log" >&2 || true
    return 1
  }
  CORE_BIN="$dir/gv_bench_core"
  CMAKE_DIR="$dir"
  [ -x "$CORE_BIN" ]
}
build_core_gxx() {
  local bin=build-bench/gv_bench_core
  mkdir -p build-bench
  # Rebuild when the bench or any core source is newer than the binary.
  if [ ! -x "$bin" ] || [ -n "$(find bench/core_bench.cpp native -newer "$bin" \( -name '*.cpp' -o -name '*.h' -o -name 'sources.txt' \) 2>/dev/null | head -1)" ]; then
    log "compiling the core bench (g++)"
    # shellcheck disable=SC2046
    g++ -std=c++20 -O3 -ffp-contract=off -fno-math-errno -pthread -Inative \
      bench/core_bench.cpp $(cat native/sources.txt) -o "$bin"
  fi
  CORE_BIN="$bin"
}
mkdir -p build-bench
log "building the core bench (gv_bench_core)"
build_core_cmake || build_core_gxx

# The native trainer alone (bench/train_bench.cpp), for step 4b: the CMake
# build directory of gv_bench_core when there is one, else g++. Empty when
# neither builds (step 4b then records why instead of failing the run).
TRAIN_BIN=""
build_train() {
  if [ -n "$CMAKE_DIR" ] && grep -q 'gv_bench_train' CMakeLists.txt 2>/dev/null; then
    if cmake --build "$CMAKE_DIR" --target gv_bench_train -j "$(nproc 2>/dev/null || echo 2)" >"$CMAKE_DIR.build-train.log" 2>&1; then
      TRAIN_BIN="$CMAKE_DIR/gv_bench_train"
      return 0
    fi
    echo "[bench] cmake build of gv_bench_train failed (see $CMAKE_DIR.build-train.log); trying g++" >&2
  fi
  local bin=build-bench/gv_bench_train
  if [ ! -x "$bin" ] || [ -n "$(find bench/train_bench.cpp native -newer "$bin" \( -name '*.cpp' -o -name '*.h' -o -name 'sources.txt' \) 2>/dev/null | head -1)" ]; then
    # shellcheck disable=SC2046
    g++ -std=c++20 -O3 -ffp-contract=off -fno-math-errno -pthread -Inative \
      bench/train_bench.cpp $(cat native/sources.txt) -lz -o "$bin" || return 1
  fi
  TRAIN_BIN="$bin"
}
if [ "${BENCH_SAMPLE:-1}" != 0 ]; then
  log "building the native trainer bench (gv_bench_train)"
  build_train || echo "[bench] warning: gv_bench_train did not build: the per-sample vs generic step is skipped" >&2
fi

# ---- 3b. the training suite's peers: the hand-written C++ loop (the
# ceiling, -march=native on purpose) and, for a full run, the W3 data files
# the peers read (bench/data/, git-ignored).
mkdir -p bench/data/bin
HAND=bench/data/bin/hand_sgd
if [ ! -x "$HAND" ] || [ bench/peers/hand_sgd.cpp -nt "$HAND" ]; then
  log "compiling the hand-written C++ peer (g++ -O3 -march=native)"
  g++ -O3 -march=native -std=c++20 -pthread bench/peers/hand_sgd.cpp -lz -o "$HAND"
fi
if [ "$SMOKE" = 0 ]; then
  log "W3 data for the peers (node bench/peers/make-w3.js; skipped when present)"
  node bench/peers/make-w3.js
fi

# ---- 4. run
if [ "$SMOKE" = 1 ]; then
  OUT=bench/out/smoke
  RESULTS=$OUT/RESULTS.md
  MODE_ARGS=(--smoke)
  CMD="bash scripts/bench.sh --smoke"
else
  OUT=bench/results
  RESULTS=bench/RESULTS.md
  MODE_ARGS=()
  CMD="npm run bench"
fi
mkdir -p "$OUT" bench/out

log "core suite: $CORE_BIN ${MODE_ARGS[*]} ${BENCH_CORE_ARGS:-}"
# shellcheck disable=SC2086
"$CORE_BIN" "${MODE_ARGS[@]}" ${BENCH_CORE_ARGS:-} --json "$OUT/core.json" | tee bench/out/core.txt

log "JS suite: node bench/js_bench.js ${MODE_ARGS[*]} ${BENCH_JS_ARGS:-}"
# shellcheck disable=SC2086
node bench/js_bench.js "${MODE_ARGS[@]}" ${BENCH_JS_ARGS:-} --json "$OUT/js.json" | tee bench/out/js.txt

log "training suite: node bench/train_bench.js ${MODE_ARGS[*]} ${BENCH_TRAIN_ARGS:-}"
# shellcheck disable=SC2086
node bench/train_bench.js "${MODE_ARGS[@]}" ${BENCH_TRAIN_ARGS:-} --out "$OUT/train.json" 2>&1 | tee bench/out/train.txt

# ---- 4b. the per-sample path vs the generic path (issue 16), before and after in one run:
# gv_bench_train --paths per-sample,generic runs every (mode, threads) once with the
# fused batch-1 path (native/core/trainer/sample.h) and once with the generic
# snapshot-grad-push path, medians of --reps. It exits non-zero when a run's
# store counts a push other than one per sample (a lost update), so a JSON file
# here means none was lost. Modes: the four that have a per-sample path
# (versioned and averaging take the generic path either way; mf in
# deterministic too).
# About 1.5 min on 2 cores (estimated from 1-epoch rates: W1 ~25 s, W3 ~45 s with the
# data made, mf ~15 s); --smoke (6,000 rows, 1 epoch, 1 rep): ~3 s.
# Each file is bench/results/sample-{w1,w3,mf}.json; a run that fails leaves
# {"error": ...} there instead (the report says so), and the run goes on.
run_sample() {  # name, then gv_bench_train's arguments
  local name=$1; shift
  local json="$OUT/sample-$name.json" txt="bench/out/sample-$name.txt" rc=0
  log "per-sample vs generic ($name): $TRAIN_BIN $*"
  "$TRAIN_BIN" "$@" --paths per-sample,generic --json "$json.tmp" >"$txt" 2>&1 || rc=$?
  cat "$txt"
  if [ "$rc" = 0 ] && [ -s "$json.tmp" ]; then
    mv "$json.tmp" "$json"
  else
    rm -f "$json.tmp"
    local why
    why=$(tail -1 "$txt" | tr -d '"\\')
    echo "[bench] warning: gv_bench_train ($name) failed with status $rc: $why" >&2
    node -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify({ error: process.argv[2] }) + "\n")' \
      "$json" "gv_bench_train exited with status $rc: $why (log: $txt)"
  fi
}
rm -f "$OUT"/sample-w1.json "$OUT"/sample-w3.json "$OUT"/sample-mf.json
if [ "${BENCH_SAMPLE:-1}" != 0 ] && [ -n "$TRAIN_BIN" ]; then
  if [ "$SMOKE" = 1 ]; then
    SAMPLE_ARGS=(--epochs 1 --reps 1 --rows 6000 --modes atomic,hogwild --threads 1,2)
  else
    SAMPLE_ARGS=(--epochs 2 --reps 3 --modes atomic,locked,hogwild,deterministic --threads 1,2)
  fi
  if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    run_sample w1 --data fashion --model softmax --batch 1 --lr 0.005 "${SAMPLE_ARGS[@]}"
  else
    echo "[bench] Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): per-sample W1 skipped" >&2
  fi
  # rcv1: the RCV1-like synthetic rows of W3 (seed 7, 200,000 train + 20,000 test), made in memory
  run_sample w3 --data rcv1 --model logistic --batch 1 --lr 1 "${SAMPLE_ARGS[@]}"
  run_sample mf --data ratings --model mf --batch 1 --lr 0.05 "${SAMPLE_ARGS[@]}"
fi

# The predict suite (bench/predict_bench.js): predict / predictAsync beside evaluate and a plain
# JS loop. A full run only: its smoke run (--quick) is in scripts/test-full.sh beside the other
# suites' smoke lines, so a --smoke run leaves it out (and its report has no predict section).
if [ "$SMOKE" = 0 ]; then
  log "predict suite: node bench/predict_bench.js ${BENCH_PREDICT_ARGS:-}"
  # shellcheck disable=SC2086
  node bench/predict_bench.js ${BENCH_PREDICT_ARGS:-} --json "$OUT/predict.json" | tee bench/out/predict.txt
fi

T1=$(date +%s)
# How the run was made, for the report (and for --report-only later).
node -e 'const [f, seconds, command, source] = process.argv.slice(1);
  require("fs").writeFileSync(f, JSON.stringify({ seconds: Number(seconds), command, source }, null, 1) + "\n");' \
  "$OUT/run.json" "$((T1 - T0))" "$CMD" "$SOURCE"
node bench/report.js --core "$OUT/core.json" --js "$OUT/js.json" --train "$OUT/train.json" --run "$OUT/run.json" \
  --predict "$OUT/predict.json" --out "$RESULTS" --analysis bench/ANALYSIS.md --before "$BEFORE"
log "done in $((T1 - T0)) s: $RESULTS"
