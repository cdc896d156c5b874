# Cross-compiling for linux-arm64 (AArch64) on an x86-64 Debian host:
# Debian's g++-aarch64-linux-gnu (its libc and libstdc++ under
# /usr/aarch64-linux-gnu) and a private root of arm64 Debian packages
# (zlib1g-dev, and what the tests need to run under qemu-user) that
# scripts/build-arm64.sh extracts into build-arm64/root without installing
# anything into the host. Used by scripts/build-arm64.sh:
#
#   cmake -S . -B build-arm64/cmake -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64.cmake
#
# GV_ARM64_ROOT (environment) names another root. The tests run under
# qemu-aarch64 through CMAKE_CROSSCOMPILING_EMULATOR, so ctest works as on
# the host (slower: every instruction is emulated).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

if(DEFINED ENV{GV_ARM64_ROOT})
  set(GV_ARM64_ROOT "$ENV{GV_ARM64_ROOT}")
else()
  get_filename_component(GV_ARM64_ROOT "${CMAKE_CURRENT_LIST_DIR}/../build-arm64/root" ABSOLUTE)
endif()

# Headers and libraries from the cross toolchain and the private root only;
# programs (cmake's own tools) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu "${GV_ARM64_ROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# libz.so.1's own dependencies resolve in the root at link time.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${GV_ARM64_ROOT}/lib/aarch64-linux-gnu")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${GV_ARM64_ROOT}/lib/aarch64-linux-gnu")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${GV_ARM64_ROOT}/lib/aarch64-linux-gnu")

# add_test() of an executable target runs it under qemu with the root's
# dynamic loader and libraries (Debian's arm64 libc6, libstdc++6, zlib1g).
find_program(GV_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(GV_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${GV_QEMU_AARCH64};-L;${GV_ARM64_ROOT}")
endif()
