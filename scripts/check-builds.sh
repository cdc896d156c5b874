#!/usr/bin/env bash
# Both builds produce a working addon, and a prebuild loads without build/:
#  1. node-gyp (binding.gyp, the build that ships)  -> build/Release/gradvault.node
#  2. cmake-js (CMakeLists.txt, the developer build) -> build-cmake-js/Release/gradvault.node
#  3. prebuildify -> prebuilds/<platform>-<arch>/, loaded by node-gyp-build with
#     PREBUILDS_ONLY=1 from a copy of the package that has no build/ folder.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke='
  const n = require(process.argv[1]);
  const optimizer = { kind: "sgd", lr: 1, momentum: 0, nesterov: false, weightDecay: 0, decoupled: false, beta1: 0.9, beta2: 0.999, alpha: 0.99, eps: 1e-8 };
  const config = { mode: "atomic", optimizer, staleness: { policy: "accept", bound: null }, nonFinite: "reject", syncEvery: 1, seed: 0, verify: false };
  const s = new n.NativeStore(config, [{ name: "w", shape: [3], init: "zeros", std: 0.01 }]);
  s.push([0], [new Float32Array([1, 2, 3])], -1);
  const w = new Float32Array(s.snapshot().buffer, 0, 3);
  if (w.join() !== "-1,-2,-3") throw new Error("wrong result " + w.join());
  console.log("  ok:", process.argv[1], JSON.stringify(n.isa()));
'

echo "node-gyp build:"
[ -f build/Release/gradvault.node ] || npm run build:native --silent
node -e "$smoke" "$PWD/build/Release/gradvault.node"

if [ -f CMakeLists.txt ]; then
  echo "cmake-js build:"
  npm run cmake:addon --silent > /tmp/gradvault-cmake-js.log 2>&1 || { tail -30 /tmp/gradvault-cmake-js.log; exit 1; }
  node -e "$smoke" "$PWD/build-cmake-js/Release/gradvault.node"
fi

echo "prebuild without build/ (PREBUILDS_ONLY=1):"
npm run prebuildify --silent > /tmp/gradvault-prebuildify.log 2>&1 || { tail -30 /tmp/gradvault-prebuildify.log; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/gradvault/node_modules"
cp -r package.json dist prebuilds "$tmp/gradvault/"
cp -r node_modules/node-gyp-build "$tmp/gradvault/node_modules/"
(cd "$tmp/gradvault" && [ ! -e build ] && PREBUILDS_ONLY=1 node -e '
  const { ParameterStore, isa } = require(".");
  const s = new ParameterStore({ tensors: { w: { shape: [2] } }, optimizer: { kind: "sgd", lr: 1 } });
  s.push({ w: new Float32Array([1, 1]) });
  if (s.snapshot().get("w").join() !== "-1,-1") throw new Error("wrong result");
  console.log("  ok: prebuilds/ loaded without build/", JSON.stringify(isa()));
')
