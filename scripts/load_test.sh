#!/usr/bin/env bash
# Load test of `instantstyle serve` (docs/SERVER.md, "Load"): wrk on the status endpoints while a long job
# runs, then many small synchronous txt2img jobs; the server's RSS after each phase (it must stay flat).
#
#   scripts/load_test.sh [BUILD_DIR] [SECONDS]     (default: build, 20 s per phase)
#
# Uses the golden tiny model (../shared/golden or $IS_GOLDEN_DIR). Needs wrk and curl (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-20}
golden=${IS_GOLDEN_DIR:-../shared/golden}
models=$golden/models
out=$(mktemp)
"$build/instantstyle" serve --model "$models/tiny-sdxl" --ip-adapter "$models/tiny-ip-adapter/ip-adapter_sdxl.safetensors" \
  --port 0 --precision f32 --queue 64 --max-connections 128 >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on \(http[^ ]*\)$/\1/p' "$out")
[ -n "$url" ] || { cat "$out"; exit 1; }
rss() { awk '/VmRSS|VmHWM/ {printf "%s %.1f MiB  ", $1, $2 / 1024}' "/proc/$pid/status"; echo; }
echo "server $url (pid $pid); $(nproc) cores; $(lscpu | sed -n 's/^Model name: *//p')"
echo -n "idle:               "; rss
# warm up: the first generation loads the networks
curl -s -X POST "${url}sdapi/v1/txt2img" -d '{"prompt":"warm","steps":1,"width":64,"height":64}' -o /dev/null
echo -n "after one job:      "; rss

echo "== /sdapi/v1/progress and /v1/info while a long job runs ($secs s each, 8 connections)"
curl -s -X POST "${url}v1/jobs" -d '{"prompt":"long","steps":150,"width":256,"height":256}' >/dev/null
sleep 1
wrk -t 2 -c 8 -d "${secs}s" --latency "${url}sdapi/v1/progress" | sed -n '/Latency Distribution/,/Transfer/p;/Requests\/sec/p;/Non-2xx/p;/Socket errors/p'
wrk -t 2 -c 8 -d "${secs}s" --latency "${url}v1/info" | sed -n '/99%/p;/Requests\/sec/p;/Non-2xx/p;/Socket errors/p'
curl -s -X DELETE "${url}v1/jobs/j2" >/dev/null
echo -n "after status load:  "; rss

echo "== small synchronous txt2img jobs (64x64, 2 steps; $secs s, 4 connections; queue 64: no 503 expected)"
wrk -t 2 -c 4 -d "${secs}s" --timeout 60s --latency -s tests/load/txt2img.lua "${url}sdapi/v1/txt2img" | sed -n '/50%/p;/99%/p;/Requests\/sec/p;/^txt2img/p'
echo -n "after txt2img load: "; rss
echo "== again (memory must not grow with the number of jobs)"
wrk -t 2 -c 4 -d "${secs}s" --timeout 60s -s tests/load/txt2img.lua "${url}sdapi/v1/txt2img" | sed -n '/Requests\/sec/p;/^txt2img/p'
echo -n "after second round: "; rss
curl -s "${url}v1/info" >/dev/null || { echo "server gone" >&2; exit 1; }
kill -TERM $pid
wait $pid
echo "server stopped cleanly (exit $?)"
