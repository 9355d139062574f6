#!/usr/bin/env bash
# The replay benchmark, one command (not part of the test run): four policies over a window of the
# Azure LLM trace through the real gateway. Options: run.sh --help. Needs the normal build
# (build/gateway/gateway, or GATEWAY_BIN), node >= 20 with tests/node's packages, and sqlite3.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
export GATEWAY_BIN="${GATEWAY_BIN:-$REPO/build/gateway/gateway}"
[[ -x "$GATEWAY_BIN" ]] || { echo "run.sh: no gateway binary at $GATEWAY_BIN (build first, or set GATEWAY_BIN)" >&2; exit 2; }
for tool in node sqlite3 timeout; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found" >&2; exit 2; }
done
[[ -d "$REPO/tests/node/node_modules/yaml" ]] || { echo "run.sh: run 'npm ci' in tests/node first" >&2; exit 2; }

# Hard bound on the whole run; timeout signals its own process group (node, the gateway it
# spawned), node kills the gateway on exit. A signal to this script is passed on.
timeout --kill-after=10 "${REPLAY_TIMEOUT_S:-900}" node "$HERE/replay.mjs" "$@" &
pid=$!
trap 'echo "run.sh: stopping" >&2; kill -TERM "$pid" 2>/dev/null || true' INT TERM
wait "$pid"
