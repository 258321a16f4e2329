#!/usr/bin/env bash
# Build and run the whole test suite twice: optimised, then under AddressSanitizer +
# UndefinedBehaviorSanitizer. Goldens come from ../shared/golden or $IS_GOLDEN_DIR.
# Between the two: install into a temporary prefix and build and run examples/generate_twice.c
# against it, through pkg-config and through find_package(instantstyle).
# Last, a short run of every fuzz harness (scripts/fuzz.sh: clang + libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j 1

# Install: the header, both libraries, the program, instantstyle.pc and the CMake package must be
# all a program needs, without the source tree. The example runs on the README's tiny model.
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
cmake --install build --prefix "$prefix" >/dev/null
for f in include/instantstyle.h lib/libinstantstyle.a lib/libinstantstyle.so lib/pkgconfig/instantstyle.pc \
         lib/cmake/instantstyle/instantstyleConfig.cmake lib/cmake/instantstyle/instantstyleConfigVersion.cmake \
         bin/instantstyle; do
  [ -e "$prefix/$f" ] || { echo "install: $f missing" >&2; exit 1; }
done
# Installed flags are for every x86-64 CPU: no -march=native (or any -m flag) reaches users.
if grep -rE -e '-march|-mtune|-mavx|-mfma|-mf16c' "$prefix/lib/pkgconfig" "$prefix/lib/cmake"; then
  echo "install: machine-specific flags in the installed pkg-config / CMake files" >&2; exit 1
fi
pc() { PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config "$@" instantstyle; }
version=$(sed -n 's/^#define IS_VERSION_STRING "\(.*\)"/\1/p' include/instantstyle.h)
[ "$(pc --modversion)" = "$version" ] || { echo "install: instantstyle.pc is not version $version" >&2; exit 1; }
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
cc -std=c11 -Wall -Wextra -Werror examples/generate_twice.c $(pc --cflags --libs) -Wl,-rpath,"$prefix/lib" \
  -o "$work/generate_twice"
cmake -S examples -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" -j "$jobs" >/dev/null
"$prefix/bin/instantstyle" make-tiny-model "$work/tiny" --force >/dev/null
tiny=("$work/tiny/sdxl" "$work/tiny/ip-adapter/ip-adapter_sdxl.safetensors" docs/examples/style.png)
"$work/generate_twice" "${tiny[@]}" "$work/pc"
"$work/cmake/generate_twice" "${tiny[@]}" "$work/cmake-shared" >/dev/null
"$work/cmake/generate_twice_static" "${tiny[@]}" "$work/cmake-static" >/dev/null
rm -rf "$prefix" "$work"
trap - EXIT

# Sanitizers: leaks, overflows and UB fail the run (detect_leaks is on by default for ASan).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIS_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j 1

# Fuzzing (clang + libFuzzer, build-fuzz/): every harness replays its seeds and tests/regressions/ inputs,
# then fuzzes for 30 s, two harnesses at a time on 2 cores; any crash, leak, timeout or UB fails
# (tests/fuzz/README.md, about 5 min on 2 cores plus the build).
bash scripts/fuzz.sh 30
