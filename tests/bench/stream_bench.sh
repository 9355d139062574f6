#!/usr/bin/env bash
# Streaming soak benchmark (not part of CI), for the DESIGN budget "10k concurrent streaming
# connections on one machine; added inter-chunk latency p99 <= 100 us; memory flat over a long soak".
#
# build/tests/bench/stream_load plays a fake SSE upstream (one chat.completion.chunk every
# INTERVAL_MS, EVENTS per stream, each carrying its send time) and STREAMS clients that keep one
# stream each open for the whole run (the next request starts on the same connection when a
# stream ends). An event's latency is its arrival at the client minus its send time. Two runs:
#   (a) direct:  clients on CPU $LOADGEN_CPU -> upstream on CPU $PROXY_CPU
#   (b) gateway: clients on CPU $LOADGEN_CPU -> gateway (1 worker) on CPU $PROXY_CPU -> upstream on
#                CPU $PROXY_CPU
# Both paths cross between the CPUs once each way, so (b - a) is what the gateway adds: relaying,
# normalising each event (JSON), and its extra hop on the upstream's CPU. During (b) the gateway's
# resident memory is sampled every SAMPLE_S seconds: flat after ramp-up means no per-stream leak.
#
# Usage: tests/bench/stream_bench.sh   (env: STREAMS=10000 SECONDS_=60 INTERVAL_MS=1000 EVENTS=20
#                                       RAMP_PER_S=2000 SAMPLE_S=5 GATEWAY_BIN STREAM_LOAD
#                                       LOADGEN_CPU=0 PROXY_CPU=1 KEEP_TMP=1)
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

for tool in taskset python3 curl; do
  command -v "$tool" >/dev/null || { echo "stream_bench: '$tool' is required (Debian package)" >&2; exit 2; }
done
for bin in "$GATEWAY_BIN" "$STREAM_LOAD"; do
  [[ -x "$bin" ]] || { echo "stream_bench: $bin not found (cmake --build build)" >&2; exit 2; }
done

# The gateway holds 2 descriptors per stream (client and upstream connections); each stream_load
# process one. Root may raise the hard limit (not inside a container without CAP_SYS_RESOURCE).
need=$((STREAMS * 2 + 100))
if (( $(ulimit -Hn) < need )); then ulimit -Hn "$need" 2>/dev/null || true; fi
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

echo "stream_bench: $STREAMS streams, one event every $INTERVAL_MS ms, $EVENTS events per stream, ${WINDOW_S} s measured after ramp-up ($RAMP_PER_S new streams/s)"
echo "stream_bench: clients on CPU $LOADGEN_CPU; fake upstream (and the gateway) on CPU $PROXY_CPU"

# --- (a) direct -------------------------------------------------------------------------------------
start_upstream
run_clients "$UP_PORT" "$TMP/direct.txt"
stop_upstream

# --- (b) through the gateway ------------------------------------------------------------------------
start_upstream
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
    base_url: "http://127.0.0.1:$UP_PORT/v1"
models:
  soak: ["fake/soak-model"]
EOF
taskset -c "$PROXY_CPU" "$GATEWAY_BIN" serve --config "$TMP/gateway.yaml" >"$TMP/gateway.out" 2>"$TMP/gateway.err" &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
GW_URL=""
for _ in $(seq 1 100); do
  GW_URL="$(sed -n 's#.*gateway: listening on \(http://[^ ]*\).*#\1#p' "$TMP/gateway.out" | head -1)"
  [[ -n "$GW_URL" ]] && break
  sleep 0.1
done
[[ -n "$GW_URL" ]] || { echo "stream_bench: gateway did not start:" >&2; cat "$TMP/gateway.err" >&2; exit 1; }
GW_PORT="${GW_URL##*:}"; GW_PORT="${GW_PORT%%/*}"

# Resident memory and CPU time of the gateway, every SAMPLE_S seconds while the clients run.
CLK_TCK="$(getconf CLK_TCK)"
sample() {
  local t=0
  while kill -0 "$GATEWAY_PID" 2>/dev/null; do
    local rss ticks
    rss="$(awk '/^VmRSS:/{print $2}' "/proc/$GATEWAY_PID/status" 2>/dev/null || echo 0)"
    ticks="$(awk '{print $14 + $15}' "/proc/$GATEWAY_PID/stat" 2>/dev/null || echo 0)"
    echo "$t $rss $ticks"
    sleep "$SAMPLE_S"
    t=$((t + SAMPLE_S))
  done
}
sample >"$TMP/samples.txt" &
SAMPLER=$!
PIDS+=("$SAMPLER")
NSTAT_KEYS='TcpRetransSegs|TcpExtTCPTimeouts|TcpExtTCPLossProbes|TcpExtTCPDelayedACKLost|TcpExtListenOverflows|TcpExtTCPRcvQDrop'
if command -v nstat >/dev/null; then nstat -n; fi
run_clients "$GW_PORT" "$TMP/gateway.txt"
if command -v nstat >/dev/null; then
  { nstat 2>/dev/null || true; } | { grep -E "$NSTAT_KEYS" || true; } | awk '{printf "%s=%s ", $1, $2} END {print ""}' >"$TMP/nstat.txt"
fi
kill "$SAMPLER" 2>/dev/null || true
stop_upstream

echo
if [[ -s "$TMP/nstat.txt" ]]; then echo "TCP counters during the gateway run: $(cat "$TMP/nstat.txt")"; fi
printf '%-9s %s\n' direct "$(cat "$TMP/direct.txt")" gateway "$(cat "$TMP/gateway.txt")"
python3 - "$TMP/direct.txt" "$TMP/gateway.txt" "$TMP/samples.txt" "$CLK_TCK" "$STREAMS" "$RAMP_PER_S" <<'EOF'
import sys
def figures(path):
    w = open(path).read().split()
    return {w[i]: float(w[i + 1]) for i in range(0, len(w) - 1, 2)}
a, b = figures(sys.argv[1]), figures(sys.argv[2])
clk, streams, ramp = float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
print()
for k in ("errors",):
    if a[k] or b[k]: print(f"WARNING: errors direct {a[k]:.0f}, gateway {b[k]:.0f}")
if b["open"] < streams: print(f"WARNING: only {b['open']:.0f} of {streams} streams open through the gateway at the end")
print(f"added inter-event latency (gateway - direct): p50 {b['p50'] - a['p50']:+.1f} us   p99 {b['p99'] - a['p99']:+.1f} us"
      f"   p999 {b['p999'] - a['p999']:+.1f} us   (target p99 <= 100 us)")
print(f"events measured: direct {a['events']:.0f}, gateway {b['events']:.0f}; streams completed through the gateway {b['completed']:.0f}")
rows = [tuple(map(float, l.split())) for l in open(sys.argv[3]) if len(l.split()) == 3]
ramp_s = streams / ramp + 2
after = [r for r in rows if r[0] >= ramp_s]
if len(after) >= 2:
    first, last = after[0], after[-1]
    peak = max(r[1] for r in after)
    cpu = (last[2] - first[2]) / clk / max(last[0] - first[0], 1)
    print(f"gateway RSS after ramp-up {first[1] / 1024:.1f} MiB, at the end {last[1] / 1024:.1f} MiB "
          f"({(last[1] - first[1]) / 1024:+.1f} MiB over {last[0] - first[0]:.0f} s), peak {peak / 1024:.1f} MiB; "
          f"{(first[1] - rows[0][1]) / streams:.1f} KiB per open stream over the idle gateway's {rows[0][1] / 1024:.1f} MiB")
    print(f"gateway CPU while streaming: {cpu * 100:.1f} % of one core")
    print("RSS samples (s, MiB): " + " ".join(f"{r[0]:.0f}:{r[1] / 1024:.1f}" for r in rows))
EOF
