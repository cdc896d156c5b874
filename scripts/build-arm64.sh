#!/usr/bin/env bash
# Cross-compiles gradvault for linux-arm64 (AArch64) on an x86-64 Debian
# host, so the NEON kernels (native/kernels/*/neon.h) are built and tested
# where no arm64 machine is at hand. scripts/test-arm64.sh runs the results
# under qemu-user.
#
#   scripts/build-arm64.sh            the addon and the C++ tests
#   scripts/build-arm64.sh --addon    the addon only: prebuilds/linux-arm64/gradvault.node (npm run prebuild:arm64)
#   scripts/build-arm64.sh --tests    the C++ tests only: build-arm64/cmake/test_*
#   --force                           rebuild the addon even when it is newer than its sources
#
# Everything it writes is under build-arm64/ (never build/, the host's
# node-gyp build) except the prebuild:
#   build-arm64/root/   arm64 Debian packages extracted with dpkg -x, never
#                       installed: zlib1g-dev (headers and libz.so to link
#                       against), and what the binaries need under qemu
#                       (libc6, libstdc++6, zlib1g, and nodejs with its
#                       libraries for the smoke test). Installing
#                       zlib1g-dev:arm64 itself would upgrade the host's
#                       amd64 zlib1g, libssl3, ... to the same versions
#                       (Multi-Arch: same), so this root stays private.
#   build-arm64/gyp/    node-gyp's build of binding.gyp (the build that
#                       ships), through prebuildify as npm run prebuildify
#   build-arm64/cmake/  CMake with cmake/aarch64.cmake: the core and its tests
#
# Needs (installed with apt-get when missing and run as root): the Debian
# cross compiler g++-aarch64-linux-gnu (binutils-aarch64-linux-gnu with it),
# cmake, make, python3, and the arm64 architecture in dpkg
# (dpkg --add-architecture arm64; apt-get update) to download the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build-arm64
SYSROOT=$OUT/root
addon=1; tests=1; force=0
for arg in "$@"; do
  case "$arg" in
    --addon) tests=0 ;;
    --tests) addon=0 ;;
    --force) force=1 ;;
    *) echo "usage: $0 [--addon|--tests] [--force]" >&2; exit 2 ;;
  esac
done
TRIPLE=aarch64-linux-gnu
JOBS="${JOBS:-2}"
start=$(date +%s)
say() { printf 'build-arm64: %s (%d s)\n' "$*" "$(( $(date +%s) - start ))"; }
die() { printf 'build-arm64: %s\n' "$*" >&2; exit 1; }

# ---- host tools
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    || die "missing: $* (as root: apt-get install -y $*)"
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null; } \
    || die "apt-get install $* failed"
}
need=()
command -v $TRIPLE-g++ >/dev/null || need+=(g++-$TRIPLE)
command -v $TRIPLE-strip >/dev/null || need+=(binutils-$TRIPLE)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
[ "$tests" = 0 ] || command -v cmake >/dev/null || need+=(cmake)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

# ---- the private arm64 root (Debian 12 bookworm's package names)
dpkg --print-foreign-architectures | grep -qx arm64 || {
  [ "$(id -u)" = 0 ] || die "dpkg has no arm64 architecture (as root: dpkg --add-architecture arm64 && apt-get update)"
  say "dpkg --add-architecture arm64"
  dpkg --add-architecture arm64
  apt-get update -q >/dev/null
}
apt-cache show nodejs:arm64 >/dev/null 2>&1 || {
  [ "$(id -u)" = 0 ] || die "apt has no arm64 package lists (as root: apt-get update)"
  apt-get update -q >/dev/null
}
# libnode's name follows Debian's Node (bookworm: libnode108)
libnode=$(apt-cache depends nodejs:arm64 2>/dev/null | awk '/Depends: libnode[0-9]+/ && !n { sub(/.*Depends: /, ""); sub(/:.*/, ""); print; n = 1 }')
[ -n "$libnode" ] || die "cannot find nodejs:arm64's libnode package (apt-cache depends nodejs:arm64)"
packages=(zlib1g:arm64 zlib1g-dev:arm64 libc6:arm64 libgcc-s1:arm64 libstdc++6:arm64
          nodejs:arm64 "$libnode:arm64" libbrotli1:arm64 libc-ares2:arm64 libicu72:arm64 libnghttp2-14:arm64
          libssl3:arm64 libuv1:arm64 node-acorn node-cjs-module-lexer node-undici)
stamp="$SYSROOT/.gradvault-packages"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${packages[*]}" ]; then
  say "downloading ${#packages[@]} arm64 packages into build-arm64/root (apt-get download, dpkg -x)"
  rm -rf "$OUT/debs" "$SYSROOT"
  mkdir -p "$OUT/debs" "$SYSROOT"
  # apt's _apt user may not write here: the download then runs as root, which apt says in a warning
  (cd "$OUT/debs" && apt-get download -qq "${packages[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  [ "$(ls "$OUT/debs"/*.deb 2>/dev/null | wc -l)" = "${#packages[@]}" ] \
    || die "apt-get download did not fetch all of: ${packages[*]}"
  for deb in "$OUT/debs"/*.deb; do dpkg -x "$deb" "$SYSROOT"; done
  # Absolute links (libz.so -> /lib/aarch64-linux-gnu/libz.so.1.2.13) point into the host: make them relative.
  while IFS= read -r link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT$target")" "$link"
  done < <(find "$SYSROOT" -type l -lname '/*')
  echo "${packages[*]}" > "$stamp"
fi
[ -f "$SYSROOT/usr/include/zlib.h" ] && [ -e "$SYSROOT/usr/lib/$TRIPLE/libz.so" ] || die "no arm64 zlib in $SYSROOT"

# ---- the addon: binding.gyp through prebuildify, as `npm run prebuildify`
# does for the host, in build-arm64/gyp (node-gyp always builds into
# ./build of the folder it runs in: a copy of binding.gyp beside links to
# native/ and node_modules/).
node_file=prebuilds/linux-arm64/gradvault.node
if [ "$addon" = 1 ] && [ "$force" = 0 ] && [ -f "$node_file" ] \
   && [ -z "$(find native binding.gyp scripts/build-arm64.sh -newer "$node_file" -type f | head -1)" ]; then
  say "addon: $node_file is newer than its sources (--force rebuilds it)"
  addon=0
fi
if [ "$addon" = 1 ]; then
  gyp="$OUT/gyp"
  mkdir -p "$gyp"
  cp binding.gyp "$gyp/binding.gyp"
  ln -sfn ../../native "$gyp/native"
  ln -sfn ../../node_modules "$gyp/node_modules"
  [ -d node_modules/node-addon-api ] && [ -d node_modules/prebuildify ] || die "node_modules is incomplete (npm ci)"
  # node-gyp: npm's own (npm run puts it on PATH; found here when run alone)
  node_gyp=$(command -v node-gyp || true)
  [ -n "$node_gyp" ] || node_gyp="$(npm prefix -g 2>/dev/null)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
  [ -x "$node_gyp" ] || die "node-gyp not found (npm's bundled copy: $node_gyp)"
  # Node's headers: N-API is the same on every architecture, so the host
  # Node's own headers serve (as ~/.npmrc's nodedir does for npm run
  # prebuildify); without them node-gyp downloads the 20.20.2 headers.
  node_prefix=$(node -p 'require("path").resolve(process.execPath, "../..")')
  if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node_api.h" ]; then
    export npm_config_nodedir="$node_prefix"
  fi
  rm -f "$node_file"
  say "addon: node-gyp --arch=arm64 with $TRIPLE-g++ (log: build-arm64/gyp.log)"
  if ! CC=$TRIPLE-gcc CXX=$TRIPLE-g++ LINK=$TRIPLE-g++ AR=$TRIPLE-ar \
       CPPFLAGS="-isystem $SYSROOT/usr/include" \
       LDFLAGS="-L$SYSROOT/usr/lib/$TRIPLE -Wl,-rpath-link,$SYSROOT/lib/$TRIPLE" \
       JOBS="$JOBS" PREBUILD_NODE_GYP="$node_gyp" \
       node node_modules/prebuildify/bin.js --napi --strip --strip-bin $TRIPLE-strip --target 20.20.2 \
         --arch arm64 --platform linux --name gradvault --cwd "$gyp" --out "$ROOT" > "$OUT/gyp.log" 2>&1; then
    tail -40 "$OUT/gyp.log" >&2
    die "the arm64 addon did not build (build-arm64/gyp.log)"
  fi
  ! grep -q 'warning:' "$OUT/gyp.log" || { echo "build-arm64: compiler warnings:" >&2; grep -A3 'warning:' "$OUT/gyp.log" | head -40 >&2; }
  [ -f "$node_file" ] || die "prebuildify wrote no $node_file"
  # What it is and what it needs on the target.
  machine=$(od -An -tu2 -j18 -N2 "$node_file" | tr -d ' ')
  [ "$machine" = 183 ] || die "$node_file is not an AArch64 ELF (e_machine $machine)"
  needed=$($TRIPLE-readelf -d "$node_file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  glibc=$($TRIPLE-objdump -T "$node_file" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  glibcxx=$($TRIPLE-objdump -T "$node_file" | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)
  say "addon: $node_file ($(du -h "$node_file" | cut -f1), AArch64; needs ${needed}up to $glibc, $glibcxx)"
fi

# ---- the C++ tests: CMake with the toolchain file, into build-arm64/cmake
if [ "$tests" = 1 ]; then
  targets=()
  for t in $(sed -n 's/^ *set(GV_TESTS \(.*\))$/\1/p' CMakeLists.txt); do targets+=("test_$t"); done
  [ ${#targets[@]} -gt 0 ] || die "no GV_TESTS list in CMakeLists.txt"
  say "C++ tests: configure build-arm64/cmake (cmake/aarch64.cmake)"
  GV_ARM64_ROOT="$SYSROOT" cmake -S . -B "$OUT/cmake" -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/aarch64.cmake" \
    -DCMAKE_BUILD_TYPE=Release > "$OUT/cmake-configure.log" 2>&1 \
    || { tail -30 "$OUT/cmake-configure.log" >&2; die "cmake configure failed (build-arm64/cmake-configure.log)"; }
  say "C++ tests: build ${#targets[@]} tests, -j$JOBS (log: build-arm64/cmake-build.log)"
  cmake --build "$OUT/cmake" -j"$JOBS" --target "${targets[@]}" > "$OUT/cmake-build.log" 2>&1 \
    || { grep -E 'error|Error' "$OUT/cmake-build.log" | head -40 >&2; die "the arm64 C++ tests did not build (build-arm64/cmake-build.log)"; }
  # The NEON code compiles nowhere else: its warnings are shown, as the host build's are.
  ! grep -q 'warning:' "$OUT/cmake-build.log" || { echo "build-arm64: compiler warnings:" >&2; grep -A3 'warning:' "$OUT/cmake-build.log" | head -40 >&2; }
fi
say "done"
