#!/usr/bin/env bash
# Runs the whole test suite (the C++ tests through ctest, then the Node.js integration suite, which
# ctest would otherwise run as integration_node too) N times while a background
# load keeps every core busy, to flush out tests that only pass on an idle machine. The load is
# bounded: one busy loop per core, at the same priority as the tests by default (so they really
# share the cores; at nice 19 the scheduler would give the loops almost nothing), stopped when this
# script exits (also on failure or Ctrl-C). Needs an existing build (cmake --build build).
#   tests/stress.sh 5            # five rounds
#   STRESS_LOAD=0 tests/stress.sh 1   # no background load
#   STRESS_NICE=19 tests/stress.sh 1  # a load that yields to the tests
set -uo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
LOAD=${STRESS_LOAD:-$(nproc)}
NICE=${STRESS_NICE:-0}
[ -x build/gateway/gateway ] || { echo "stress: build/gateway/gateway missing: build first" >&2; exit 2; }

LOAD_PIDS=()
stop_load() {
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${LOAD_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  LOAD_PIDS=()
}
trap stop_load EXIT INT TERM
for ((i = 0; i < LOAD; i++)); do
  # A busy loop that ends by itself after 2 hours if this script is killed hard.
  nice -n "$NICE" timeout 7200 bash -c 'while :; do :; done' &
  LOAD_PIDS+=($!)
done

pass=0
summary=()
for ((r = 1; r <= ROUNDS; r++)); do
  t0=$(date +%s)
  log=$(mktemp -t stress-round-XXXX.log)
  ok=1
  ctest --test-dir build --output-on-failure --timeout 900 -E integration_node >"$log" 2>&1 || ok=0
  (cd tests/node && npm test) >>"$log" 2>&1 || ok=0
  secs=$(($(date +%s) - t0))
  if [ "$ok" = 1 ]; then
    pass=$((pass + 1))
    summary+=("round $r: pass (${secs} s)")
    rm -f "$log"
  else
    summary+=("round $r: FAIL (${secs} s), log kept: $log")
    grep -E "^not ok|Failed|\*\*\*Failed" "$log" | head -20
  fi
  echo "stress: ${summary[-1]}"
done
stop_load
printf '%s\n' "${summary[@]}"
echo "stress: $pass of $ROUNDS rounds green with $LOAD busy background loop(s) at nice $NICE on $(nproc) core(s)"
[ "$pass" = "$ROUNDS" ]
