#!/usr/bin/env bash
# What a newcomer does with a fresh clone: run every shell block of README.md, verbatim, in order,
# from the repository root. The blocks are read from README.md itself, so editing the README changes
# what is run.
#   ./deploy/start.sh   runs in the background until it prints "Gateway ready"; stopped with SIGTERM
#                       at the end (the gateway must then exit 0).
#   ./tests/run_all.sh  skipped when NEWCOMER_FROM_RUN_ALL=1 (run_all.sh calls this script last).
#   A block preceded by `<!-- newcomer: skip (why) -->` is shown, not run (e.g. a vendor's own API).
#   Every other block runs with `bash -euo pipefail`; HOME is a temporary folder, so an install into
#   "$HOME/..." stays out of the real home. Each block must exit 0 within NEWCOMER_BLOCK_TIMEOUT s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/newcomer.XXXXXX")
START_TIMEOUT=${NEWCOMER_START_TIMEOUT:-1800}
BLOCK_TIMEOUT=${NEWCOMER_BLOCK_TIMEOUT:-120}
server_pid=

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=
  return "$rc"
}
trap 'stop_server || true; rm -rf "$WORK"' EXIT

# Splits README.md into $WORK/block.N files (N from 1) and $WORK/skip.N for blocks marked to skip.
extract_blocks() {
  awk -v dir="$WORK" '
    /^<!-- newcomer: skip/ { skip = 1; next }
    /^```(sh|bash|shell)[[:space:]]*$/ { n++; inblock = 1; if (skip) print "" > (dir "/skip." n); skip = 0; next }
    /^```/ && inblock { inblock = 0; close(dir "/block." n); next }
    inblock { print > (dir "/block." n); next }
    NF { skip = 0 }
  ' README.md
}

start_server() {
  local log=$WORK/start.log
  if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
    echo "newcomer: something already listens on 127.0.0.1:8080; stop it first" >&2
    return 1
  fi
  ./deploy/start.sh >"$log" 2>&1 &
  server_pid=$!
  local waited=0
  until grep -q '^Gateway ready at ' "$log"; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "newcomer: ./deploy/start.sh exited before the gateway listened:" >&2
      tail -40 "$log" >&2
      return 1
    fi
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      echo "newcomer: no 'Gateway ready' from ./deploy/start.sh within ${START_TIMEOUT}s" >&2
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  grep -A4 '^Gateway ready at ' "$log"
}

run_block() {
  local file=$1 out=$WORK/out
  mkdir -p "$WORK/home"
  if ! HOME=$WORK/home timeout "$BLOCK_TIMEOUT" bash -euo pipefail "$file" >"$out" 2>&1; then
    echo "newcomer: this README block failed:" >&2
    sed 's/^/    /' "$file" >&2
    tail -20 "$out" >&2
    return 1
  fi
  # Printable characters only: the demo model answers random bytes.
  head -c 400 "$out" | LC_ALL=C tr -cd '[:print:]\n'
  echo
}

extract_blocks
n=0
for f in $(ls "$WORK"/block.* | sort -t. -k2 -n); do
  n=$((n + 1))
  i=${f##*.}
  cmd=$(tr '\n' ' ' <"$f" | sed 's/[[:space:]]*$//')
  echo "== README block $i: $cmd"
  if [ -e "$WORK/skip.$i" ]; then
    echo "   (shown in README for comparison, not run)"
  elif [ "$cmd" = "./deploy/start.sh" ]; then
    start_server
  elif [ "$cmd" = "./tests/run_all.sh" ] && [ "${NEWCOMER_FROM_RUN_ALL:-0}" = 1 ]; then
    echo "   (skipped: run_all.sh is what is running this script)"
  else
    run_block "$f"
  fi
done
[ "$n" -gt 0 ] || { echo "newcomer: README.md has no shell blocks" >&2; exit 1; }
stop_server
echo "newcomer: all $n README blocks done"
