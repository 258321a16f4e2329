#!/usr/bin/env bash
# Install the Debian packages instantstyle needs to build and test (run as root).
set -euo pipefail
packages=(build-essential cmake pkg-config
  libcjson-dev libutf8proc-dev libpng-dev libjpeg62-turbo-dev libopenblas-openmp-dev libdnnl-dev
  # scripts/fuzz.sh: clang, libFuzzer + sanitizer runtimes (libclang_rt.fuzzer-x86_64.a is in
  # libclang-rt-14-dev, only recommended by clang), clang's OpenMP runtime
  clang libclang-rt-dev libomp-dev
  # instantstyle serve: libmicrohttpd; its tests: Chromium (the page), wrk (the load test)
  libmicrohttpd-dev chromium wrk curl)
# Node.js for the server's tests, from Debian unless a node (and its npm) is already installed (a
# NodeSource node conflicts with Debian's npm package).
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# playwright-core (pinned in tests/browser/package-lock.json) drives Debian's Chromium in the page test.
# Without it (no registry access) everything else still builds and tests; cmake then warns that the page
# test does not run.
if [ ! -d "$(dirname "$0")/../tests/browser/node_modules/playwright-core" ]; then
  npm ci --prefix "$(dirname "$0")/../tests/browser" --no-audit --no-fund --loglevel=error ||
    echo "install-deps: WARNING: npm ci --prefix tests/browser failed: the web page test will not run" >&2
fi
