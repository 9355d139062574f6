#!/usr/bin/env bash
# Streaming soak benchmark (not part of CI), for the DESIGN budget "10k concurrent streaming
# connections on one machine; added inter-chunk latency p99 <= 100 us; memory flat over a long soak".
#
# build/tests/bench/stream_load plays a fake SSE upstream (one chat.completion.chunk every
# INTERVAL_MS, EVENTS per stream, each carrying its send time) and STREAMS clients that keep one
# stream each open for the whole run (the next request starts on the same connection when a
# stream ends). An event's latency is its arrival at the client minus its send time. Three runs:
#   (a) direct:  clients on CPU $LOADGEN_CPU -> upstream on CPU $PROXY_CPU
#   (b) gateway: clients on CPU $LOADGEN_CPU -> gateway (1 worker) on CPU $PROXY_CPU -> upstream on
#                CPU $PROXY_CPU
#   (c) nginx:   the same placement through nginx (1 worker) as an SSE reverse proxy
#                (tests/bench/nginx/stream_proxy.conf.in: proxy_buffering off, keep-alive upstream)
# All paths cross between the CPUs once each way, so (b - a) is what the gateway adds: relaying,
# normalising each event (JSON), and its extra hop on the upstream's CPU; (c - a) is what a proxy
# that only passes bytes adds on this machine, the baseline for (b - a). During (b) and (c) the
# proxy's resident memory (nginx: its workers) is sampled every SAMPLE_S seconds: flat after
# ramp-up means no per-stream leak; after ramp-up minus idle, over STREAMS, is memory per stream.
# NGINX=0 skips (c) (nginx is the Debian package). DIRECT=0 skips (a): a soak, which only needs the
# gateway's memory over time (then no added latency is printed), e.g. 30 minutes at 5,000 streams:
#   STREAMS=5000 SECONDS_=1800 SAMPLE_S=60 NGINX=0 DIRECT=0 tests/bench/stream_bench.sh
#
# Usage: tests/bench/stream_bench.sh   (env: STREAMS=10000 SECONDS_=60 INTERVAL_MS=1000 EVENTS=20
#                                       RAMP_PER_S=2000 SAMPLE_S=5 GATEWAY_BIN STREAM_LOAD
#                                       LOADGEN_CPU=0 PROXY_CPU=1 NGINX=1 DIRECT=1 UPSTREAM_TLS=0 KEEP_TMP=1)
# UPSTREAM_TLS=1: the gateway reaches the upstream over TLS (an nginx TLS front on the proxy CPU,
# tests/bench/nginx/tls_front.conf.in), as it reaches every real vendor; memory per stream then
# includes each stream's TLS session. The added latency then includes the TLS front's hop.
# Needs 2 x STREAMS (+100) open files in the gateway: run as root or with a high hard limit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$REPO/build/gateway/gateway}"
STREAM_LOAD="${STREAM_LOAD:-$REPO/build/tests/bench/stream_load}"
STREAMS="${STREAMS:-10000}"
WINDOW_S="${SECONDS_:-60}"
INTERVAL_MS="${INTERVAL_MS:-1000}"
EVENTS="${EVENTS:-20}"
RAMP_PER_S="${RAMP_PER_S:-2000}"
SAMPLE_S="${SAMPLE_S:-5}"
LOADGEN_CPU="${LOADGEN_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
NGINX="${NGINX:-1}"
DIRECT="${DIRECT:-1}"
UPSTREAM_TLS="${UPSTREAM_TLS:-0}"

TOOLS=(taskset python3 curl)
if [[ $NGINX == 1 ]]; then TOOLS+=(nginx); fi
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null || { echo "stream_bench: '$tool' is required (Debian package)" >&2; exit 2; }
done
for bin in "$GATEWAY_BIN" "$STREAM_LOAD"; do
  [[ -x "$bin" ]] || { echo "stream_bench: $bin not found (cmake --build build)" >&2; exit 2; }
done

# The gateway holds 2 descriptors per stream (client and upstream connections); each stream_load
# process one. Root may raise the hard limit (not inside a container without CAP_SYS_RESOURCE).
# nginx is given 4 per stream (below): when fewer than 1/16 of its worker_connections are free it
# closes idle keep-alive client connections, which the clients see as errors. So the hard limit
# is raised to that where allowed (else nginx gets several worker processes, below); only the
# gateway's need is required.
need=$((STREAMS * 2 + 100))
want=$need
if [[ $NGINX == 1 ]]; then want=$((STREAMS * 4 + 100)); fi
if (( $(ulimit -Hn) < want )); then ulimit -Hn "$want" 2>/dev/null || true; fi
ulimit -Sn "$(ulimit -Hn)"
if (( $(ulimit -Sn) < need )); then
  echo "stream_bench: open-file limit $(ulimit -Sn) < $need needed for $STREAMS streams through one gateway;" \
       "raise the hard limit or run with STREAMS=$((($(ulimit -Sn) - 100) / 2))" >&2
  exit 2
fi

BENCH_NAME=stream-bench
# shellcheck source=tests/bench/bench_lib.sh
source "$HERE/bench_lib.sh"
UP_PORT="$(free_port)"
RUN_S=$((WINDOW_S + STREAMS / RAMP_PER_S + 30))  # window + ramp-up + slack; the upstream outlives each run

start_upstream() {
  taskset -c "$PROXY_CPU" "$STREAM_LOAD" "$UP_PORT" 0 0 "$RUN_S" "$INTERVAL_MS" "$EVENTS" &
  UP_PID=$!
  PIDS+=("$UP_PID")
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$UP_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "stream_bench: fake upstream did not come up" >&2
  exit 1
}
stop_upstream() { kill -TERM "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; }

run_clients() { # port, output file
  taskset -c "$LOADGEN_CPU" "$STREAM_LOAD" 0 "$1" "$STREAMS" "$WINDOW_S" "$INTERVAL_MS" "$EVENTS" "$RAMP_PER_S" >"$2"
}

# Resident memory and CPU time of a proxy (summed over the pids that the named function prints),
# every SAMPLE_S seconds while the clients run: "seconds RSS_KiB ticks" per line.
CLK_TCK="$(getconf CLK_TCK)"
sample() { # pid-listing function
  local t=0 pids
  while pids="$("$1")" && [[ -n "$pids" ]]; do
    local rss=0 ticks=0 pid r k
    for pid in $pids; do
      r="$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
      k="$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
      rss=$((rss + ${r:-0})); ticks=$((ticks + ${k:-0}))
    done
    echo "$t $rss $ticks"
    sleep "$SAMPLE_S"
    t=$((t + SAMPLE_S))
  done
}
start_sampler() { # output file, pid-listing function
  sample "$2" >"$1" &
  SAMPLER=$!
  PIDS+=("$SAMPLER")
}
gateway_pids() { if kill -0 "$GATEWAY_PID" 2>/dev/null; then echo "$GATEWAY_PID"; fi; }
nginx_pids() { pgrep -P "$NGINX_PID" 2>/dev/null | tr '\n' ' ' || true; }  # the workers, not the master

echo "stream_bench: $STREAMS streams, one event every $INTERVAL_MS ms, $EVENTS events per stream, ${WINDOW_S} s measured after ramp-up ($RAMP_PER_S new streams/s)"
echo "stream_bench: clients on CPU $LOADGEN_CPU; fake upstream (and the gateway) on CPU $PROXY_CPU"

# --- (a) direct -------------------------------------------------------------------------------------
if [[ $DIRECT == 1 ]]; then
  start_upstream
  run_clients "$UP_PORT" "$TMP/direct.txt"
  stop_upstream
else
  : >"$TMP/direct.txt"
fi

# --- (b) through the gateway ------------------------------------------------------------------------
start_upstream
UP_URL="http://127.0.0.1:$UP_PORT/v1"
UP_TLS_YAML=""
if [[ $UPSTREAM_TLS == 1 ]]; then
  command -v openssl >/dev/null || { echo "stream_bench: 'openssl' is required for UPSTREAM_TLS=1" >&2; exit 2; }
  TLS_PORT="$(free_port)"
  mkdir -p "$TMP/tmp"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$TMP/front.key" -out "$TMP/front.crt" 2>/dev/null
  sed -e "s#@PREFIX@#$TMP#g" -e "s#@PORT@#$TLS_PORT#g" -e "s#@UPSTREAM_PORT@#$UP_PORT#g" \
      -e "s#@CONNS@#$((STREAMS * 2 + 100))#g" -e "s#@KEEPALIVE@#$((STREAMS + 1000))#g" \
      -e "s#@CERT@#$TMP/front.crt#g" -e "s#@KEY@#$TMP/front.key#g" "$HERE/nginx/tls_front.conf.in" >"$TMP/tls_front.conf"
  taskset -c "$PROXY_CPU" nginx -p "$TMP" -c "$TMP/tls_front.conf" 2>"$TMP/tls_front.err" &
  FRONT_PID=$!
  PIDS+=("$FRONT_PID")
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null && break
    sleep 0.1
  done
  UP_URL="https://127.0.0.1:$TLS_PORT/v1"
  UP_TLS_YAML="  ca_file: \"$TMP/front.crt\""
fi
cat >"$TMP/gateway.yaml" <<EOF
server:
  listen: "127.0.0.1:0"
  workers: 1
  max_connections: $((STREAMS + 1000))
  header_timeout_ms: 10000
  keepalive_idle_ms: 75000
  drain_timeout_ms: 2000
  access_log: "off"
upstream:
$UP_TLS_YAML
  connect_timeout_ms: 5000
  first_byte_timeout_ms: 10000
  stream_idle_timeout_ms: $((INTERVAL_MS * 3 + 5000))
  total_timeout_ms: $((INTERVAL_MS * (EVENTS + 2) + 60000))
  pool_max_idle_per_endpoint: $((STREAMS + 1000))
  pool_max_open_per_endpoint: $((STREAMS + 1000))
  max_attempts: 1
providers:
  fake:
    type: openai_compatible
    base_url: "$UP_URL"
models:
  soak: ["fake/soak-model"]
EOF
taskset -c "$PROXY_CPU" "$GATEWAY_BIN" serve --config "$TMP/gateway.yaml" >"$TMP/gateway.out" 2>"$TMP/gateway.err" &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
GW_URL="$(gateway_url "$TMP/gateway.out")"
[[ -n "$GW_URL" ]] || { echo "stream_bench: gateway did not start:" >&2; cat "$TMP/gateway.err" >&2; exit 1; }
GW_PORT="${GW_URL##*:}"; GW_PORT="${GW_PORT%%/*}"

start_sampler "$TMP/samples.txt" gateway_pids
NSTAT_KEYS='TcpRetransSegs|TcpExtTCPTimeouts|TcpExtTCPLossProbes|TcpExtTCPDelayedACKLost|TcpExtListenOverflows|TcpExtTCPRcvQDrop'
if command -v nstat >/dev/null; then nstat -n; fi
run_clients "$GW_PORT" "$TMP/gateway.txt"
if command -v nstat >/dev/null; then
  { nstat 2>/dev/null || true; } | { grep -E "$NSTAT_KEYS" || true; } | awk '{printf "%s=%s ", $1, $2} END {print ""}' >"$TMP/nstat.txt"
fi
kill "$SAMPLER" 2>/dev/null || true
stop_upstream
# The gateway is done: stopped so that it does not share the proxy CPU with nginx's run.
kill -TERM "$GATEWAY_PID" 2>/dev/null || true; wait "$GATEWAY_PID" 2>/dev/null || true
if [[ -n "${FRONT_PID:-}" ]]; then kill -TERM "$FRONT_PID" 2>/dev/null || true; wait "$FRONT_PID" 2>/dev/null || true; fi

# --- (c) through nginx (SSE reverse proxy) -----------------------------------------------------------
: >"$TMP/nginx.txt"; : >"$TMP/nginx_samples.txt"
if [[ $NGINX == 1 ]]; then
  start_upstream
  NGX_PORT="$(free_port)"
  # Client and upstream connection per stream, plus the idle upstream pool (up to STREAMS more):
  # with fewer, nginx "reuses" (closes) idle client keep-alive connections and streams fail.
  ngx_conns=$((STREAMS * 4 + 100))
  # One process may not open more files than the hard limit (which root cannot raise without
  # CAP_SYS_RESOURCE, e.g. in a container). Then nginx runs several worker processes, all on the
  # proxy CPU (so it still has one core, as the gateway has), and the kernel spreads the streams
  # over them (listen ... reuseport); each gets a quarter more than its even share of connections.
  ngx_workers=1
  hard="$(ulimit -Hn)"
  if (( ngx_conns > hard )); then
    ngx_workers=$(( (ngx_conns + hard * 3 / 4 - 1) / (hard * 3 / 4) ))
    ngx_conns="$hard"
    echo "stream_bench: nginx needs $((STREAMS * 4 + 100)) connections, over the hard open-file limit $hard:" \
         "$ngx_workers worker processes, all on CPU $PROXY_CPU" >&2
  fi
  mkdir -p "$TMP/tmp"
  render "$HERE/nginx/stream_proxy.conf.in" "$TMP/stream_proxy.conf" PREFIX="$TMP" PORT="$NGX_PORT" \
    UPSTREAM_PORT="$UP_PORT" CONNS="$ngx_conns" KEEPALIVE="$(( (STREAMS + 1000) / ngx_workers ))" WORKERS="$ngx_workers"
  taskset -c "$PROXY_CPU" nginx -p "$TMP" -c "$TMP/stream_proxy.conf" 2>"$TMP/nginx.err" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  for _ in $(seq 1 50); do
    [[ -n "$(nginx_pids)" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$NGX_PORT") 2>/dev/null && break
    sleep 0.1
  done
  [[ -n "$(nginx_pids)" ]] || { echo "stream_bench: nginx did not start:" >&2; cat "$TMP/nginx.err" >&2; exit 1; }
  start_sampler "$TMP/nginx_samples.txt" nginx_pids
  run_clients "$NGX_PORT" "$TMP/nginx.txt"
  kill "$SAMPLER" 2>/dev/null || true
  stop_upstream
  kill -TERM "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true
fi

echo
if [[ -s "$TMP/nstat.txt" ]]; then echo "TCP counters during the gateway run: $(cat "$TMP/nstat.txt")"; fi
printf '%-9s %s\n' direct "$(cat "$TMP/direct.txt")" gateway "$(cat "$TMP/gateway.txt")"
if [[ -s "$TMP/nginx.txt" ]]; then printf '%-9s %s\n' nginx "$(cat "$TMP/nginx.txt")"; fi
python3 - "$TMP/direct.txt" "$TMP/gateway.txt" "$TMP/samples.txt" "$CLK_TCK" "$STREAMS" "$RAMP_PER_S" \
  "$TMP/nginx.txt" "$TMP/nginx_samples.txt" <<'EOF'
import sys
def figures(path):
    w = open(path).read().split()
    return {w[i]: float(w[i + 1]) for i in range(0, len(w) - 1, 2)}
a, b, c = figures(sys.argv[1]), figures(sys.argv[2]), figures(sys.argv[7])
if not a:  # DIRECT=0: no baseline, so no added latency; memory only
    a = {k: 0.0 for k in b}
clk, streams, ramp = float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
runs = [("gateway", b, sys.argv[3])] + ([("nginx", c, sys.argv[8])] if c else [])
print()
for name, r, _ in runs:
    if a["errors"] or r["errors"]: print(f"WARNING: errors direct {a['errors']:.0f}, {name} {r['errors']:.0f}")
    if r["open"] < streams: print(f"WARNING: only {r['open']:.0f} of {streams} streams open through {name} at the end")
for name, r, _ in runs if a["events"] else []:
    print(f"added inter-event latency ({name + ' - direct):':<18} p50 {r['p50'] - a['p50']:+8.1f} us   p99 {r['p99'] - a['p99']:+8.1f} us"
          f"   p999 {r['p999'] - a['p999']:+8.1f} us" + ("   (target p99 <= 100 us)" if name == "gateway" else ""))
if c and a["events"]:
    def ratio(k):
        g, n = b[k] - a[k], c[k] - a[k]
        # A proxy "adding" a negative amount is noise larger than its cost: no ratio from that.
        return f"{g / n:.2f}" if n > 0 and g > 0 else f"n/a (gateway {g:+.1f} us, nginx {n:+.1f} us: below this run's noise)"
    print(f"gateway / nginx added latency: p50 {ratio('p50')}   p99 {ratio('p99')}   (target p99 <= 1.5)")
print("events measured: direct {:.0f}, ".format(a["events"]) + ", ".join(f"{n} {r['events']:.0f}" for n, r, _ in runs)
      + "; streams completed: " + ", ".join(f"{n} {r['completed']:.0f}" for n, r, _ in runs))
ramp_s = streams / ramp + 2
for name, r, path in runs:
    rows = [tuple(map(float, l.split())) for l in open(path) if len(l.split()) == 3]
    after = [x for x in rows if x[0] >= ramp_s]
    if len(after) < 2 or not rows:
        print(f"{name}: too few RSS samples for memory per stream (a longer SECONDS_ or smaller SAMPLE_S)")
        continue
    first, last = after[0], after[-1]
    peak = max(x[1] for x in after)
    cpu = (last[2] - first[2]) / clk / max(last[0] - first[0], 1)
    print(f"{name} RSS after ramp-up {first[1] / 1024:.1f} MiB, at the end {last[1] / 1024:.1f} MiB "
          f"({(last[1] - first[1]) / 1024:+.1f} MiB over {last[0] - first[0]:.0f} s), peak {peak / 1024:.1f} MiB; "
          f"{(first[1] - rows[0][1]) / streams:.1f} KiB per open stream over the idle {name}'s {rows[0][1] / 1024:.1f} MiB")
    print(f"{name} CPU while streaming: {cpu * 100:.1f} % of one core")
    print(f"{name} RSS samples (s, MiB): " + " ".join(f"{x[0]:.0f}:{x[1] / 1024:.1f}" for x in rows))
EOF
