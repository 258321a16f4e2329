#!/usr/bin/env bash
# Build the libFuzzer harnesses (tests/fuzz/, clang, ASan + UBSan) in build-fuzz/ and run them.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]
#   scripts/fuzz.sh --runs N [HARNESS...]
#
# SECONDS: fuzzing time per harness (default 30; 0 = only replay the corpora). HARNESS: names
# without the fuzz_ prefix (default: all; `scripts/fuzz.sh --list` lists them). For each harness, first
# its corpus is replayed once: the committed seeds tests/fuzz/corpus/<harness>/, the reproducers other
# engineers keep in tests/regressions/ (images/ for png and jpeg, tokenizer/ for tokenizer, <harness>/
# for any harness) and what earlier runs found (build-fuzz/corpus/<harness>/). An input there that
# crashes, leaks, times out or hits undefined behaviour fails at once. Then it fuzzes for SECONDS with
# its dictionary tests/fuzz/<harness>.dict, -rss_limit_mb=2048 -timeout=10; new inputs go to
# build-fuzz/corpus/<harness>/, a failing input to build-fuzz/artifacts/<harness>/ and the log to
# build-fuzz/logs/<harness>.log. One line per harness: executions, exec/s, coverage, corpus size.
# --runs N fuzzes each harness until it has executed N inputs (libFuzzer's -runs, the initial corpus
# included) instead of for SECONDS: the long runs toward issue 12's 10^7 bar (docs/LIMITS.md).
# Exit status: non-zero when any harness failed (crash, leak, timeout, out of memory, UB).
#
# scripts/fuzz.sh --coverage [HARNESS...] builds build-fuzz-cov/ with clang's source-based coverage,
# replays the same corpora (no fuzzing) and prints, per harness, the line and branch coverage of the source
# files it is for (needs llvm-profdata and llvm-cov of clang's version: Debian package llvm).
#
# FUZZ_FINDINGS=1 replays tests/fuzz/findings/<harness>/ instead (known, unfixed failures: each input
# is run alone and reported; the status is non-zero while any still fails). Goldens: ../shared/golden or
# $IS_GOLDEN_DIR. Needs clang with libFuzzer (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
all=(safetensors safetensors_index ip_adapter png jpeg tokenizer tokenizer_files block_scales config_unet config_controlnet config_vae
  config_text_encoder config_image_encoder config_preprocessor config_scheduler config_pipeline cli server_request lora)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${all[@]}"; exit 0; fi
coverage=0
if [ "${1:-}" = "--coverage" ]; then coverage=1; shift; set -- 0 "$@"; fi
seconds=30 # SECONDS may be left out: scripts/fuzz.sh png jpeg
runs=0
if [ "${1:-}" = "--runs" ]; then
  [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --runs takes a number of executions" >&2; exit 2; }
  runs=$2
  shift 2
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
harnesses=("$@")
((${#harnesses[@]})) || harnesses=("${all[@]}")
for h in "${harnesses[@]}"; do
  [[ " ${all[*]} " == *" $h "* ]] || { echo "fuzz.sh: unknown harness '$h' (see scripts/fuzz.sh --list)" >&2; exit 2; }
done
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (run scripts/install-deps.sh)" >&2; exit 2; }

build=build-fuzz
jobs=$(nproc 2>/dev/null || echo 2)
cmake_extra=()
if ((coverage)); then
  build=build-fuzz-cov
  cmake_extra=(-DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping"
    -DCMAKE_EXE_LINKER_FLAGS=-fprofile-instr-generate)
  v=$(clang -dumpversion | cut -d. -f1)
  profdata=$(command -v "llvm-profdata-$v" || command -v llvm-profdata || true)
  llvmcov=$(command -v "llvm-cov-$v" || command -v llvm-cov || true)
  [ -n "$profdata" ] && [ -n "$llvmcov" ] || { echo "fuzz.sh: --coverage needs llvm-profdata and llvm-cov (Debian: llvm)" >&2; exit 2; }
fi
# Configured every time (a second or two): a build folder made before a harness was added has no target for it.
CC=clang cmake -S . -B "$build" -DIS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_extra[@]}" >/dev/null
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$build/build.log" 2>&1 || {
  tail -40 "$build/build.log" >&2
  echo "fuzz.sh: build failed (whole log: $build/build.log)" >&2
  exit 1
}

# One thread: the harnesses never need more, and OpenMP teams only slow each execution down.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The files each harness writes from its input live in a private folder, in memory when possible.
tmp=$(mktemp -d /dev/shm/is-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp" ${reports:+"$reports"}' EXIT
export TMPDIR=$tmp

# Folders of inputs for harness $1 (existing ones only): seeds, regressions, earlier finds.
corpus_dirs() {
  local h=$1 d
  local dirs=("tests/fuzz/corpus/$h" "tests/regressions/$h")
  case $h in
    png | jpeg) dirs+=(tests/regressions/images) ;;
    tokenizer) dirs+=(tests/regressions/tokenizer) ;;
  esac
  for d in "${dirs[@]}"; do [ -d "$d" ] && printf '%s\n' "$d"; done
  return 0
}

# "N execs, X exec/s, cov C, ft F, corpus K" from a libFuzzer log.
summary() {
  local log=$1 execs rate cov ft corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  printf '%s execs, %s exec/s, cov %s, ft %s, corpus %s' "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
}

failed=()
report() { # harness, verdict, log
  printf '%-22s %s\n' "$1" "$2"
  if [ "$2" != "${2#FAIL}" ]; then
    failed+=("$1")
    grep -E -A24 '^==[0-9]+==ERROR|runtime error:|^==[0-9]+== ?ERROR: libFuzzer|^SUMMARY:|Test unit written to' "$3" |
      head -60 | sed 's/^/    /' >&2 || true
    echo "    (whole log: $3)" >&2
  fi
}

# ---- --coverage: which lines of the parsers the corpora reach (clang source-based coverage, no fuzzing)
# Files each harness is for (the report covers these; the harness reaches others too).
targets_of() {
  case $1 in
    safetensors | safetensors_index) echo src/core/safetensors.c ;;
    ip_adapter) echo src/unet/ip_adapter.c src/core/safetensors.c ;;
    png) echo src/vision/image_png.c src/vision/image_load.c ;;
    jpeg) echo src/vision/image_jpeg.c src/vision/image_load.c ;;
    tokenizer) echo src/text/tokenizer.c src/text/tokenizer_bpe.c src/text/tokenizer_normalize.c \
      src/text/tokenizer_pretok.c src/text/tokenizer_utf8.c ;;
    tokenizer_files) echo src/text/tokenizer_load.c ;;
    block_scales) echo src/unet/block_scales.c ;;
    config_unet) echo src/unet/unet_config.c src/unet/unet_load.c src/core/config.c ;;
    config_controlnet) echo src/controlnet/controlnet_load.c src/controlnet/controlnet_model.c src/controlnet/controlnet_forward.c \
      src/unet/unet_config.c ;;
    config_vae) echo src/vae/vae_load.c src/core/config.c ;;
    config_text_encoder) echo src/text/clip_text.c src/clip/clip_encoder.c ;;
    config_image_encoder) echo src/vision/clip_vision.c ;;
    config_preprocessor) echo src/vision/clip_preprocess.c ;;
    config_scheduler) echo src/sample/scheduler_config.c src/sample/scheduler_common.c src/sample/scheduler_lcm.c \
      src/sample/scheduler_tcd.c ;;
    config_pipeline) echo src/pipeline/pipeline.c src/text/sdxl_prompt.c ;;
    cli) echo cli/generate_args.c cli/command_args.c cli/args.c src/pipeline/png_meta.c ;;
  esac
}

mkdir -p "$build/logs"
if ((coverage)); then
  for h in "${harnesses[@]}"; do
    mapfile -t dirs < <(corpus_dirs "$h")
    [ -d "build-fuzz/corpus/$h" ] && dirs+=("build-fuzz/corpus/$h")
    raw=$build/logs/$h.profraw
    mkdir -p "$build/logs"
    LLVM_PROFILE_FILE=$raw "$build/tests/fuzz/fuzz_$h" -runs=0 -rss_limit_mb=2048 -timeout=10 "${dirs[@]}" \
      >"$build/logs/$h-coverage.log" 2>&1 || { report "$h" "FAIL: replaying the corpus" "$build/logs/$h-coverage.log"; continue; }
    "$profdata" merge -sparse "$raw" -o "$build/logs/$h.profdata"
    mapfile -t files < <(targets_of "$h" | tr ' ' '\n')
    echo "$h ($(find "${dirs[@]}" -type f | wc -l) inputs):"
    for f in "${files[@]}"; do
      "$llvmcov" report "$build/tests/fuzz/fuzz_$h" -instr-profile="$build/logs/$h.profdata" "$PWD/$f" |
        awk -v f="$f" '$1 == "TOTAL" { printf "    %-32s lines %7s of %4d, branches %7s of %4d\n", f, $10, $8, $13, $11 }'
    done
  done
  ((${#failed[@]} == 0))
  exit $?
fi
if [ "${FUZZ_FINDINGS:-0}" = 1 ]; then
  for h in "${harnesses[@]}"; do
    for f in tests/fuzz/findings/"$h"/*; do
      [ -f "$f" ] || continue
      [ "${f##*.}" = md ] && continue
      log=$build/logs/finding-$h-$(basename "$f").log
      if "$build/tests/fuzz/fuzz_$h" -rss_limit_mb=2048 -timeout=10 "$f" >"$log" 2>&1; then
        report "$h" "fixed: $f ($(sed -n 's/^Executed .* in \([0-9]* ms\)/\1/p' "$log"))" "$log"
      else
        report "$h" "FAIL (still): $f" "$log"
      fi
    done
  done
  ((${#failed[@]} == 0))
  exit $?
fi

# One harness: its report line on stdout (details of a failure on stderr); status 1 when it failed.
fuzz_one() {
  local h=$1
  local bin=$build/tests/fuzz/fuzz_$h
  work=$build/corpus/$h
  art=$build/artifacts/$h
  mkdir -p "$work" "$art"
  mapfile -t dirs < <(corpus_dirs "$h")
  common=(-rss_limit_mb=2048 -timeout=10 -artifact_prefix="$art/" -print_final_stats=1)
  log=$build/logs/$h-replay.log
  if ! "$bin" "${common[@]}" -runs=0 "$work" "${dirs[@]}" >"$log" 2>&1; then
    report "$h" "FAIL: replaying the corpus ($(find "$work" "${dirs[@]}" -type f | wc -l) inputs)" "$log"
    return 1
  fi
  if ((seconds == 0 && runs == 0)); then
    report "$h" "replayed: $(summary "$log")" "$log"
    return 0
  fi
  log=$build/logs/$h.log
  extra=()
  # Long regression inputs are replayed whole above; fuzzing mutates shorter ones (faster executions).
  case $h in
    tokenizer) extra+=(-max_len=8192) ;;
    png | jpeg | server_request) extra+=(-max_len=65536) ;;
  esac
  if ((runs)); then extra+=(-runs="$runs"); else extra+=(-max_total_time="$seconds"); fi
  dict=tests/fuzz/$h.dict
  if [ "$h" = config_controlnet ]; then # a ControlNet config is a UNet config plus its own keys
    dict=$build/logs/$h.dict
    cat tests/fuzz/config_unet.dict tests/fuzz/config_controlnet.dict >"$dict"
  fi
  if "$bin" "${common[@]}" -dict="$dict" "${extra[@]}" \
    "$work" "${dirs[@]}" >"$log" 2>&1; then
    report "$h" "ok: $(summary "$log")" "$log"
  elif grep -q 'libFuzzer: run interrupted' "$log"; then
    report "$h" "FAIL: stopped by SIGINT/SIGTERM from outside, not a finding: $(summary "$log")" "$log"
  else
    report "$h" "FAIL: $(summary "$log")" "$log"
  fi
  ((${#failed[@]} == 0))
}

# The harnesses run side by side, one per core (FUZZ_JOBS=N to choose), each alone on its core; the
# reports are printed in the order of the list once all have finished.
lanes=${FUZZ_JOBS:-$jobs}
[[ $lanes =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: FUZZ_JOBS must be a positive number" >&2; exit 2; }
# this run's own folder: a second fuzz.sh beside it (other harnesses) must not delete its reports
mkdir -p "$build/logs"
reports=$(mktemp -d "$build/logs/reports.XXXXXX")
start=$SECONDS
running=0
for h in "${harnesses[@]}"; do
  if ((running == lanes)); then
    wait -n || true
    running=$((running - 1))
  fi
  # the subshell's exit status, also when set -e ends it early, is the harness's verdict
  (
    trap 'echo $? >"$reports/$h.status"' EXIT
    fuzz_one "$h" >"$reports/$h.out" 2>"$reports/$h.err"
  ) &
  running=$((running + 1))
done
wait
for h in "${harnesses[@]}"; do
  cat "$reports/$h.out"
  cat "$reports/$h.err" >&2
  [ "$(cat "$reports/$h.status" 2>/dev/null)" = 0 ] || failed+=("$h")
done
each="${seconds} s each"
((runs)) && each="$runs executions each"
echo "fuzz.sh: ${#harnesses[@]} harnesses in $((SECONDS - start)) s, $each after replay;" \
  "${#failed[@]} failed${failed[*]:+: ${failed[*]}}"
((${#failed[@]} == 0))
