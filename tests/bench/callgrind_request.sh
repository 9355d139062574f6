#!/usr/bin/env bash
# Instructions the gateway executes per proxied request, counted by callgrind (not part of CI).
#
# The gateway (1 worker, access log off, no ledger) runs under valgrind --tool=callgrind in front of
# a fake upstream (nginx answering a fixed chat.completion, or a fixed SSE stream). After WARMUP
# requests the counters are zeroed (callgrind_control -z); then N requests are sent on one
# keep-alive connection (curl, a separate process that callgrind does not see) and the counters are
# dumped. Instructions per request = Ir of that dump / N. Startup, configuration and the warm-up
# (first connections, lazy initialisation) are outside the figure; timers that fire while the N
# requests run are inside it, which is why N is large. The figure is deterministic to within a few
# hundred instructions per request, so a code change's cost shows as a ratio against a baseline run:
#   tests/bench/callgrind_request.sh                 # this build
#   GATEWAY_BIN=/path/to/other/gateway tests/bench/callgrind_request.sh   # the baseline
# Where the instructions go: KEEP_TMP=1, then callgrind_annotate on the kept dumps
# (nonstream.callgrind, stream.callgrind).
# Env: GATEWAY_BIN, N (default 300), WARMUP (default 30), KEEP_TMP=1.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$REPO/build/gateway/gateway}"
N="${N:-300}"
WARMUP="${WARMUP:-30}"
[[ -x "$GATEWAY_BIN" ]] || { echo "callgrind_request: no gateway binary at $GATEWAY_BIN" >&2; exit 2; }

BENCH_NAME=callgrind-request
# shellcheck source=tests/bench/bench_lib.sh
source "$HERE/bench_lib.sh"
require_tools callgrind_request nginx valgrind callgrind_control curl python3
mkdir -p "$TMP/tmp"
UP_PORT="$(free_port)"

# The fake upstream: the proxy benchmark's, plus a streamed answer under /stream/.
sed -e "s#@PREFIX@#$TMP#g" -e "s#@PORT@#$UP_PORT#g" "$HERE/nginx/upstream.conf.in" >"$TMP/upstream.conf"
python3 - "$TMP/upstream.conf" <<'PY'
import sys
p = sys.argv[1]
conf = open(p).read()
chunk = lambda d: 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764000000,"model":"bench-model","choices":[{"index":0,"delta":%s,"finish_reason":%s}]}\\n\\n' % d
body = chunk(('{"role":"assistant","content":""}', 'null')) + ''.join(chunk(('{"content":"word "}', 'null')) for _ in range(8)) \
     + chunk(('{}', '"stop"')) \
     + 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764000000,"model":"bench-model","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}\\n\\n' \
     + 'data: [DONE]\\n\\n'
loc = "        location = /stream/v1/chat/completions {\n            default_type text/event-stream;\n            return 200 '%s';\n        }\n" % body
conf = conf.replace("        location / { return 404; }", loc + "        location / { return 404; }")
open(p, "w").write(conf)
PY
nginx -p "$TMP" -c "$TMP/upstream.conf" &
PIDS+=($!)

one_worker_gateway_yaml "$TMP/gateway.yaml" "$UP_PORT"
# GATEWAY_MALLOC_TUNED: no re-exec (valgrind would have to follow it).
GATEWAY_MALLOC_TUNED=1 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/cg.%p" \
  "$GATEWAY_BIN" serve --config "$TMP/gateway.yaml" >"$TMP/gateway.out" 2>"$TMP/gateway.err" &
GW_PID=$!
PIDS+=($GW_PID)
URL=""
for _ in $(seq 1 600); do
  URL="$(sed -n 's#.*gateway: listening on \(http://[^ ]*\).*#\1#p' "$TMP/gateway.out" | head -1)"
  [[ -n "$URL" ]] && break
  sleep 0.1
done
[[ -n "$URL" ]] || { echo "callgrind_request: gateway did not start" >&2; cat "$TMP/gateway.err" >&2; exit 1; }
URL="${URL%/}/v1/chat/completions"

send() { # count, body file: that many POSTs on one keep-alive connection; fails unless all are 200
  local count="$1" body="$2" args=()
  for _ in $(seq 1 "$count"); do args+=(-o /dev/null "$URL"); done
  local codes
  codes="$(curl -s -w '%{http_code}\n' -H 'content-type: application/json' --data-binary "@$body" "${args[@]}" | sort | uniq -c)"
  if [[ "$(echo "$codes" | awk '$2 != 200' | wc -l)" != 0 ]]; then
    echo "callgrind_request: not every answer was 200: $codes" >&2; exit 1
  fi
}

measure() { # label, body file, name of the kept dump
  local label="$1" body="$2" keep="$3"
  callgrind_control -i on "$GW_PID" >/dev/null 2>&1
  send "$WARMUP" "$body"
  callgrind_control -z "$GW_PID" >/dev/null 2>&1
  send "$N" "$body"
  rm -f "$TMP"/cg.*.[0-9]*
  callgrind_control -d measured "$GW_PID" >/dev/null 2>&1
  callgrind_control -i off "$GW_PID" >/dev/null 2>&1
  local f ir
  f="$(ls -t "$TMP"/cg.*.* 2>/dev/null | head -1)"
  ir="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p;s/^totals: *\([0-9]*\).*/\1/p' "$f" | head -1)"
  cp "$f" "$TMP/$keep.callgrind"
  printf '%-34s %12d instructions / request  (N=%d)\n' "$label" "$((ir / N))" "$N"
}

printf '{"model":"bench","messages":[{"role":"user","content":"Hello, how are you today?"}]}' >"$TMP/plain.json"
printf '{"model":"bench-stream","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello, how are you today?"}]}' >"$TMP/stream.json"
echo "gateway: $GATEWAY_BIN"
measure "chat completion (non-stream)" "$TMP/plain.json" nonstream
measure "chat completion (stream, 10 events)" "$TMP/stream.json" stream
