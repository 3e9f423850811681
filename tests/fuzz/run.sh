#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer (outside CI): installs clang + libFuzzer when
# missing, builds the harnesses into build-fuzz/ (clang, -fsanitize=fuzzer,address,
# undefined; `make fuzz`), then runs each for SECONDS (default 60) on a working
# copy of its seed corpus and prints executions, time and exec/s per harness.
# Usage: tests/fuzz/run.sh [SECONDS] [HARNESS...]; env FUZZ_JOBS=N workers per
# harness (default 1), FUZZ_RUNS=N executions per worker, FUZZ_FLAGS more flags.
# A crash stops with its input in build-fuzz/fuzz-out/NAME/: fix the parser, then
# add the input to tests/fuzz/regressions/NAME/ (ctest replays that folder).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
secs="${1:-60}"; shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(safetensors config peft_config schema shard_index script manifest elf tokenizer_json encode template request)
missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
build="$root/build-fuzz"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DLORAJIT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz -j"$(nproc)" >/dev/null
jobs="${FUZZ_JOBS:-1}"
runs="${FUZZ_RUNS:--1}"
total_runs=0
printf '%-12s %8s %12s %10s %s\n' harness seconds executions exec/s result
for h in "${harnesses[@]}"; do
  out="$build/fuzz-out/$h"; work="$build/fuzz-corpus/$h"
  mkdir -p "$out" "$work"
  cp -n "$root/tests/fuzz/corpus/$h/"* "$work/" 2>/dev/null || true
  log="$out/log.txt"; : > "$log"
  t0=$(date +%s.%N)
  rc=0
  if [ "$jobs" -gt 1 ]; then
    (cd "$out" && ASAN_OPTIONS=detect_leaks=1 "$build/fuzz_$h" -max_total_time="$secs" -max_len=4096 \
       -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -runs="$runs" -jobs="$jobs" -workers="$jobs" \
       ${FUZZ_FLAGS:-} "$work" "$root/tests/fuzz/regressions/$h" > "$log" 2>&1) || rc=$?
    # the parent prints each worker's fuzz-N.log, stats included, when it ends
  else
    (cd "$out" && ASAN_OPTIONS=detect_leaks=1 "$build/fuzz_$h" -max_total_time="$secs" -max_len=4096 \
       -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -runs="$runs" ${FUZZ_FLAGS:-} \
       "$work" "$root/tests/fuzz/regressions/$h" > "$log" 2>&1) || rc=$?
  fi
  t1=$(date +%s.%N)
  n=$(grep -h '^stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
  el=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", b - a}')
  total_runs=$((total_runs + n))
  result=ok
  if [ $rc != 0 ] || grep -qE '^==[0-9]+==ERROR|^SUMMARY: |FUZZ_CHECK|deadly signal' "$log"; then result="CRASH (see $log)"; fi
  printf '%-12s %8s %12s %10s %s\n' "$h" "$el" "$n" "$((n / (el > 0 ? el : 1)))" "$result"
  [ "$result" = ok ] || exit 1
done
echo "total executions: $total_runs"
