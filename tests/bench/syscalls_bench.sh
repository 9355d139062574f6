#!/usr/bin/env bash
# System calls per proxied non-stream request, the gateway against nginx as a reverse proxy (not
# part of CI). Both proxies sit in front of the same fake upstream (nginx returning a fixed
# chat.completion JSON); one keep-alive client sends N requests, one at a time, through each while
# `strace -c -f` counts every system call the proxy makes (all its threads). Prints, per request,
# each call's count for both proxies, the failing calls (EAGAIN and the like), the totals and the
# ratio. Counts, not times: they repeat from run to run, unlike the CPU time they cost.
#
# Usage: tests/bench/syscalls_bench.sh     (env: GATEWAY_BIN, N=2000 requests, KEEP_TMP=1)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$REPO/build/gateway/gateway}"
N="${N:-2000}"
[[ -x "$GATEWAY_BIN" ]] || { echo "syscalls_bench: gateway binary not found at $GATEWAY_BIN" >&2; exit 2; }

BENCH_NAME=syscalls-bench
# shellcheck source=tests/bench/bench_lib.sh
source "$HERE/bench_lib.sh"
require_tools syscalls_bench nginx strace python3 curl
mkdir -p "$TMP/tmp"

BODY='{"model":"bench","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}'
wait_http() { # url; an answer within 10 s
  for _ in $(seq 1 100); do
    curl -s -o /dev/null -X POST -H 'content-type: application/json' -d "$BODY" "$1" && return 0
    sleep 0.1
  done
  echo "syscalls_bench: $1 did not come up" >&2
  exit 1
}

UP_PORT="$(free_port)"; PX_PORT="$(free_port)"; PX2_PORT="$(free_port)"
render "$HERE/nginx/upstream.conf.in" "$TMP/upstream.conf" PREFIX="$TMP" PORT="$UP_PORT"
nginx -p "$TMP" -c "$TMP/upstream.conf" &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP_PORT/v1/chat/completions"
# The proxy template has a second server for proxy_bench's second upstream; here both are the same.
render "$HERE/nginx/proxy.conf.in" "$TMP/proxy.conf" PREFIX="$TMP" PORT="$PX_PORT" UPSTREAM_PORT="$UP_PORT" \
  PORT2="$PX2_PORT" UPSTREAM_PORT2="$UP_PORT" WORKERS=1
nginx -p "$TMP" -c "$TMP/proxy.conf" &
NGINX_MASTER=$!
PIDS+=($NGINX_MASTER)
wait_http "http://127.0.0.1:$PX_PORT/v1/chat/completions"

one_worker_gateway_yaml "$TMP/gateway.yaml" "$UP_PORT"
"$GATEWAY_BIN" serve --config "$TMP/gateway.yaml" >"$TMP/gateway.out" 2>"$TMP/gateway.err" &
GATEWAY_PID=$!
PIDS+=($GATEWAY_PID)
GW_URL="$(gateway_url "$TMP/gateway.out")"
[[ -n "$GW_URL" ]] || { echo "syscalls_bench: the gateway did not start: $(cat "$TMP/gateway.err")" >&2; exit 1; }
wait_http "$GW_URL/v1/chat/completions"
NGINX_WORKER="$(pgrep -P "$NGINX_MASTER" | head -1)"

# One keep-alive connection, N requests one after another; every answer must be a 200.
cat >"$TMP/client.py" <<'EOF'
import http.client, sys
host, port, n, body = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection(host, port)
for _ in range(n):
    c.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}")
EOF

# count <pid> <port> <name>: strace -c over N requests through that proxy, written to $TMP/<name>.txt.
count() {
  local pid="$1" port="$2" name="$3"
  python3 "$TMP/client.py" 127.0.0.1 "$port" 50 "$BODY"  # warm the upstream pool
  strace -c -f -U name,calls,errors -p "$pid" -o "$TMP/$name.txt" &
  local tracer=$!
  # Attached once the kernel names a tracer for every thread (bounded: 10 s).
  for _ in $(seq 1 100); do
    ! grep -q '^TracerPid:[[:space:]]*0$' /proc/"$pid"/task/*/status 2>/dev/null && break
    sleep 0.1
  done
  python3 "$TMP/client.py" 127.0.0.1 "$port" "$N" "$BODY"
  kill -INT "$tracer"
  wait "$tracer" || true
}
GW_PORT="${GW_URL##*:}"
count "$GATEWAY_PID" "$GW_PORT" gateway
count "$NGINX_WORKER" "$PX_PORT" nginx

python3 - "$TMP/gateway.txt" "$TMP/nginx.txt" "$N" <<'EOF'
import sys
def load(path):
    calls, errors = {}, {}
    for line in open(path):
        f = line.split()
        if len(f) >= 2 and f[1].isdigit() and f[0] not in ("total", "syscall"):
            calls[f[0]] = int(f[1])
            errors[f[0]] = int(f[2]) if len(f) > 2 and f[2].isdigit() else 0
    return calls, errors
gw, gwe = load(sys.argv[1])
nx, nxe = load(sys.argv[2])
n = int(sys.argv[3])
names = sorted(set(gw) | set(nx), key=lambda k: -(gw.get(k, 0) + nx.get(k, 0)))
print(f"syscalls per proxied non-stream request, {n} keep-alive requests one at a time (failing calls in brackets)")
print(f"{'call':<16} {'gateway':>14} {'nginx':>14}")
for k in names:
    g, x = gw.get(k, 0) / n, nx.get(k, 0) / n
    if g < 0.005 and x < 0.005:
        continue
    ge, xe = gwe.get(k, 0) / n, nxe.get(k, 0) / n
    print(f"{k:<16} {g:>7.2f} [{ge:4.2f}] {x:>7.2f} [{xe:4.2f}]")
tg, tx = sum(gw.values()) / n, sum(nx.values()) / n
eg, ex = sum(gwe.values()) / n, sum(nxe.values()) / n
print(f"{'total':<16} {tg:>7.2f} [{eg:4.2f}] {tx:>7.2f} [{ex:4.2f}]   gateway / nginx = {tg / tx:.2f}")
EOF
