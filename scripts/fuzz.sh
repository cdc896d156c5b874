#!/usr/bin/env bash
# libFuzzer targets of the parsers (native/fuzz/), built with Debian's clang
# under ASan+UBSan into build-fuzz/.
#
#   scripts/fuzz.sh build               build every target
#   scripts/fuzz.sh replay              run each target once over its corpus and
#                                       its regression inputs (CI; exits non-zero on a finding)
#   scripts/fuzz.sh run TARGET SECONDS  fuzz one target, growing native/fuzz/corpus/TARGET;
#                                       a crash is written to native/fuzz/regressions/TARGET/
#   scripts/fuzz.sh all SECONDS         every target in turn (npm run fuzz)
#
# Needs clang and libfuzzer-14-dev (apt); .ci/run installs them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/build-fuzz"
targets=(idx libsvm csv safetensors checkpoint roundtrip)
CXX="${FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}"
[ -n "$CXX" ] || { echo "fuzz.sh: clang++ not found (apt-get install clang libfuzzer-14-dev)" >&2; exit 1; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1 halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1 print_stacktrace=1}"

build() {
  mkdir -p "$out/obj"
  local flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -ffp-contract=off -fsanitize=address,undefined
               -fno-sanitize-recover=undefined -I"$root/native")
  local objs=() src obj
  # The core once, instrumented for coverage (fuzzer-no-link), then one link per target.
  while read -r src; do
    src="$(echo "$src" | tr -d '[:space:]')"
    [ -n "$src" ] || continue
    obj="$out/obj/$(echo "$src" | tr '/' '_').o"
    if [ ! -f "$obj" ] || [ "$root/$src" -nt "$obj" ] || [ -n "$(find "$root/native" -name '*.h' -newer "$obj" -print -quit)" ]; then
      "$CXX" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$root/$src" -o "$obj" &
    fi
    objs+=("$obj")
    # two compiles at a time
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
  done < "$root/native/sources.txt"
  wait
  for t in "${targets[@]}"; do
    "$CXX" "${flags[@]}" -fsanitize=fuzzer "$root/native/fuzz/fuzz_$t.cpp" "${objs[@]}" -lz -lpthread -o "$out/fuzz_$t"
  done
  echo "fuzz.sh: built ${targets[*]} in $out"
}

case "${1:-}" in
  build) build ;;
  replay)
    build
    for t in "${targets[@]}"; do
      dirs=()
      for d in "$root/native/fuzz/corpus/$t" "$root/native/fuzz/regressions/$t"; do [ -d "$d" ] && dirs+=("$d"); done
      [ ${#dirs[@]} -gt 0 ] || { echo "fuzz.sh: no corpus for $t" >&2; exit 1; }
      n=$(find "${dirs[@]}" -type f | wc -l)
      start=$(date +%s%N)
      "$out/fuzz_$t" -runs=0 -rss_limit_mb=2048 "${dirs[@]}" > "$out/replay_$t.log" 2>&1 || { cat "$out/replay_$t.log"; exit 1; }
      printf 'replay %-12s %6d inputs  %5d ms\n' "$t" "$n" "$(( ($(date +%s%N) - start) / 1000000 ))"
    done
    ;;
  run)
    t="${2:?target}"; secs="${3:-600}"
    [ -x "$out/fuzz_$t" ] || build
    mkdir -p "$root/native/fuzz/corpus/$t" "$root/native/fuzz/regressions/$t"
    set +e
    "$out/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len="${FUZZ_MAX_LEN:-65536}" -print_final_stats=1 \
      -artifact_prefix="$root/native/fuzz/regressions/$t/" "$root/native/fuzz/corpus/$t" > "$out/run_$t.log" 2>&1
    rc=$?
    set -e
    grep -E '^#[0-9]+ +(DONE|INITED)|stat::|ERROR|FUZZ_CHECK|SUMMARY|^artifact' "$out/run_$t.log" || true
    [ "$rc" -eq 0 ] || { echo "fuzz.sh: $t found a failure (log: $out/run_$t.log)" >&2; exit "$rc"; }
    ;;
  all)
    secs="${2:-600}"
    build
    for t in "${targets[@]}"; do "$0" run "$t" "$secs"; done
    ;;
  *) echo "usage: $0 build | replay | run TARGET SECONDS | all SECONDS" >&2; exit 2 ;;
esac
