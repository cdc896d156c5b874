#!/usr/bin/env bash
# The packed tarball installs and works in an empty folder (issue 4):
#  1. with its prebuild and no compiler (PREBUILDS_ONLY=1): CommonJS require,
#     ESM import, `npx gradvault demo`, `gradvault inspect` of a checkpoint,
#     and the shipped TypeScript types compiled by tsc;
#  2. without a prebuild that fits: `npm rebuild` compiles from source.
# The tarball ships the host's prebuild and, cross-compiled where the tools
# are installed, prebuilds/linux-arm64 (below).
# Needs the npm registry for the package's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
# The repository's .npmrc (onnxruntime-node-install=skip, for a dev
# dependency) reaches child npm processes as npm_config_onnxruntime_node_install,
# and npx warns about it on stderr: the packed package below is installed as
# a user installs it, without that setting.
unset npm_config_onnxruntime_node_install
ROOT=$PWD

# (re)build the prebuild when it is missing or older than the native sources
pb="prebuilds/$(node -p 'process.platform + "-" + process.arch')"
node_file=$(ls "$pb"/*.node 2>/dev/null | head -1 || true)
if [ -z "$node_file" ] || [ -n "$(find native binding.gyp -newer "$node_file" -type f | head -1)" ]; then
  echo "building the prebuild (npm run prebuildify)"
  npm run prebuildify --silent >/tmp/gradvault-prebuildify.log 2>&1 || { tail -30 /tmp/gradvault-prebuildify.log; exit 1; }
fi
ships=("$pb")
# linux-arm64 beside it, cross-compiled (npm run prebuild:arm64:
# scripts/build-arm64.sh) where Debian's cross compiler is installed (CI).
# Elsewhere (npm test needs nothing beyond npm install) the tarball goes
# without it and says so; GRADVAULT_PACK_ARM64=1 makes that an error.
if [ "$pb" != prebuilds/linux-arm64 ]; then
  arm64=prebuilds/linux-arm64/gradvault.node
  if [ ! -f "$arm64" ] || [ -n "$(find native binding.gyp -newer "$arm64" -type f | head -1)" ]; then
    if command -v aarch64-linux-gnu-g++ >/dev/null; then
      echo "building the linux-arm64 prebuild (npm run prebuild:arm64)"
      bash scripts/build-arm64.sh --addon >/tmp/gradvault-prebuild-arm64.log 2>&1 || { tail -30 /tmp/gradvault-prebuild-arm64.log; exit 1; }
    elif [ -f "$arm64" ]; then
      echo "$arm64 is older than the native sources and there is no cross compiler to rebuild it" \
           "(apt-get install g++-aarch64-linux-gnu; npm run prebuild:arm64), or delete it" >&2
      exit 1
    elif [ "${GRADVAULT_PACK_ARM64:-}" = 1 ]; then
      echo "GRADVAULT_PACK_ARM64=1: no linux-arm64 prebuild and no cross compiler (apt-get install g++-aarch64-linux-gnu)" >&2
      exit 1
    else
      echo "NOTE: the tarball has no linux-arm64 prebuild: arm64 installs will compile from source" \
           "(apt-get install g++-aarch64-linux-gnu, then npm run prebuild:arm64, to ship one)" >&2
    fi
  fi
  if [ -f "$arm64" ]; then ships+=(prebuilds/linux-arm64); fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tarball=$(npm pack --silent --pack-destination "$tmp" | tail -1)
echo "packed $tarball ($(du -h "$tmp/$tarball" | cut -f1))"
listing=$(tar tzf "$tmp/$tarball")
for d in "${ships[@]}"; do
  grep -q "^package/$d/[^/]*\.node$" <<<"$listing" || { echo "$tarball lacks $d/" >&2; exit 1; }
done
echo "  prebuilds in the tarball: ${ships[*]#prebuilds/}"
# What the tarball holds (issue 15): what a user needs, to run it, build it
# from source and follow README.md; none of the fuzz corpus, tests,
# benchmarks or repository scripts. One line names the first offending path.
files=$(tar tzf "$tmp/$tarball" | sed 's#^package/##' | sort)
required=(package.json dist/index.js dist/index.d.ts dist/cli.js binding.gyp CMakeLists.txt README.md
          docs/ARCHITECTURE.md native/sources.js native/sources.txt)
for f in examples/*.js; do required+=("$f"); done
# every source binding.gyp compiles (its own list and native/sources.txt's)
required+=($(grep -o 'native/[A-Za-z0-9_/]*\.cpp' binding.gyp) $(grep -v '^[[:space:]]*$' native/sources.txt))
for d in "${ships[@]}"; do required+=("$d/gradvault.node"); done
for f in "${required[@]}"; do
  grep -qxF "$f" <<<"$files" || { echo "$tarball lacks $f" >&2; exit 1; }
done
forbidden='(^|/)(fuzz|corpus|tests?|bench|\.ci|scripts|build(-[^/]*)?)/|(^|/)(test_[^/]*|[^/]*_test)\.(c|cc|cpp)$'
bad=$(grep -E -m1 "$forbidden" <<<"$files" || true)
[ -z "$bad" ] || { echo "$tarball must not ship $bad" >&2; exit 1; }
unpacked=$(tar tzvf "$tmp/$tarball" | awk '{ s += $3 } END { print s }')
echo "  $(wc -l <<<"$files") files, $unpacked bytes unpacked, $(stat -c %s "$tmp/$tarball") bytes packed;" \
     "the ${#required[@]} required ones present, no test, fuzz, bench or script file"
cd "$tmp"
npm init -y >/dev/null
# --ignore-scripts is not used: the install script (node-gyp-build) must find the prebuild
PREBUILDS_ONLY=1 npm install --no-audit --no-fund --silent "./$tarball" >/dev/null
[ ! -e node_modules/gradvault/build ] || { echo "a build/ folder appeared: the prebuild was not used" >&2; exit 1; }

echo "CommonJS require, with the prebuild only:"
PREBUILDS_ONLY=1 node -e '
  const { ParameterStore, Trainer, synthetic, evaluate, isa } = require("gradvault");
  const s = new ParameterStore({ tensors: { w: { shape: [2] } }, optimizer: { kind: "sgd", lr: 1 } });
  s.push({ w: new Float32Array([1, 1]) });
  if (s.snapshot().get("w").join() !== "-1,-1") throw new Error("wrong result");
  console.log("  ok", JSON.stringify(isa()));
'
echo "ESM import:"
cat > esm.mjs <<'JS'
import { ParameterStore, Trainer, synthetic, evaluate, MODES } from 'gradvault';
const [train, test] = synthetic('blobs', { rows: 2000, features: 5, classes: 3 }).split(0.8);
const t = new Trainer({ model: 'softmax', threads: 2, epochs: 2, optimizer: { kind: 'sgd', lr: 0.05 } });
await t.fit(train);
const acc = evaluate(t.store, 'softmax', test).accuracy;
if (!(acc > 0.9)) throw new Error(`accuracy ${acc}`);
await t.store.save('m.safetensors');
const back = await ParameterStore.load('m.safetensors');
console.log(`  ok: ${MODES.length} modes, accuracy ${acc.toFixed(3)}, reloaded version ${back.version}`);
JS
PREBUILDS_ONLY=1 node esm.mjs
echo "npx gradvault demo and inspect:"
PREBUILDS_ONLY=1 npx --no-install gradvault demo --no-train --pushes 200 | tail -3
PREBUILDS_ONLY=1 npx --no-install gradvault inspect m.safetensors | head -4
if PREBUILDS_ONLY=1 npx --no-install gradvault train --epochs zero 2>err.txt; then echo "bad arguments must fail" >&2; exit 1; fi
[ "$(wc -l < err.txt)" = 1 ] || { echo "a bad argument must print one line:" >&2; cat err.txt >&2; exit 1; }
echo "  ok: bad arguments print one line: $(cat err.txt)"
echo "the shipped examples, installed:"
# One in place (it requires 'gradvault', as a user's copy does), one copied
# into the project; TMPDIR is a fresh folder that they must leave empty.
mkdir ex-tmp
TMPDIR="$tmp/ex-tmp" PREBUILDS_ONLY=1 node node_modules/gradvault/examples/custom-model.js | sed 's/^/  /'
cp node_modules/gradvault/examples/resume.js .
TMPDIR="$tmp/ex-tmp" PREBUILDS_ONLY=1 node resume.js | sed 's/^/  /'
[ -z "$(ls -A ex-tmp)" ] || { echo "an example left behind $(ls -A ex-tmp | head -1) in its temporary folder" >&2; exit 1; }
echo "  ok: both ran and left nothing behind"
echo "shipped types (tsc):"
mkdir -p types && sed 's#../../dist#gradvault#' "$ROOT/test/types/usage.ts" > types/usage.ts
cat > types/tsconfig.json <<'JS'
{ "compilerOptions": { "strict": true, "noEmit": true, "target": "ES2022", "module": "node16", "moduleResolution": "node16",
  "types": ["node"], "typeRoots": ["ROOT/node_modules/@types"] }, "include": ["usage.ts"] }
JS
sed -i "s#ROOT#$ROOT#" types/tsconfig.json
"$ROOT/node_modules/.bin/tsc" -p types/tsconfig.json
echo "  ok"
echo "no prebuild fits: npm rebuild compiles from source:"
rm -rf node_modules/gradvault/prebuilds
npm rebuild gradvault --silent >/dev/null 2>"$tmp/rebuild.log" || { tail -20 "$tmp/rebuild.log" >&2; exit 1; }
[ -f node_modules/gradvault/build/Release/gradvault.node ] || { echo "no build from source" >&2; exit 1; }
node -e 'const g = require("gradvault"); new g.ParameterStore({ tensors: { w: { shape: [1] } } }); console.log("  ok: built from source")'
