#!/usr/bin/env bash
# Build and run the whole test suite twice: optimised, then under AddressSanitizer +
# UndefinedBehaviorSanitizer. Goldens come from ../shared/golden or $IS_GOLDEN_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j 1

# Sanitizers: leaks, overflows and UB fail the run (detect_leaks is on by default for ASan).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DIS_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j 1
