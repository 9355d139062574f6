#!/usr/bin/env bash
# Proxy overhead benchmark (not part of CI).
#
# In ONE run, with wrk (--latency, Lua script POSTing a chat request) against:
#   (a) the fake upstream directly         (nginx returning a fixed chat.completion JSON)
#   (b) the gateway in front of it         (openai_compatible provider, alias "bench")
#   (c) nginx as a plain reverse proxy     (keep-alive upstream pool) in front of it
# it prints p50/p99 latency and req/s for each, the gateway's added latency (b - a) and its
# throughput as a ratio of nginx's (b / c), and the CPU time each proxy spent per request.
#
# Three phases, each target measured in all three:
#   paced phase:      the DESIGN condition for the latency budget, "at 5k requests/s": open-loop
#                     load at PACED_RATE (default 5000) req/s, sends evenly spaced, from
#                     build/tests/bench/paced_load (wrk can only pace in whole milliseconds, which
#                     makes its connections fire in bursts). Run in two placements:
#                       like-for-like (the budget figure): a second fake upstream runs on the
#                         proxy's CPU, so the direct path and the proxied path both cross between
#                         the two CPUs once each way; the difference is the proxy's own work and
#                         its extra hop on that CPU.
#                     Each placement runs PACED_ROUNDS (default 3) rounds of PACED_SECS (default 5)
#                     seconds per target, interleaved; the printed figures are medians over rounds.
#                       cross-CPU (for reference): the upstream on the load generator's CPU, as in
#                         the other phases. The direct path then never leaves CPU 0 while the
#                         proxied one wakes the other CPU and back twice; on a VM each wake-up of
#                         an idle vCPU costs tens of microseconds, which nginx pays in full too.
#   latency phase:    few connections (LAT_CONNS, default 4), closed loop: each sends its next request
#                     as soon as the answer arrives, so the proxy's core is busy most of the time and
#                     the figures include some queueing; reported for reference.
#   throughput phase: many connections (TP_CONNS, default 64) to saturate the proxy's core;
#                     the b/c ratio comes from this phase.
#
# CPU placement on a 2-core machine (the DESIGN budget is per core):
#   CPU $LOADGEN_CPU (default 0): wrk (1 thread) and the fake upstream nginx (1 worker). Both are
#       identical in all three runs, so they cancel out of (b - a) and (b / c).
#   CPU $PROXY_CPU (default 1):   the proxy under test alone: the gateway with server.workers=1,
#       or nginx with worker_processes 1. One dedicated core each, so b/c is "per core".
#       (Only in the like-for-like paced phase does a second fake upstream share it.)
#   On a machine with more cores, set LOADGEN_CPU=0,1 PROXY_CPU=2 WRK_THREADS=2 for less noise.
# Numbers on a shared 2-core VM are noisy; run it twice and compare before believing a figure.
#
# Usage: tests/bench/proxy_bench.sh            (env: GATEWAY_BIN, PACED_LOAD, DURATION=10s, PACED_RATE, PACED_SECS, PACED_ROUNDS, LAT_CONNS, TP_CONNS,
#                                               WRK_THREADS, LOADGEN_CPU, PROXY_CPU, KEEP_TMP=1)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$REPO/build/gateway/gateway}"
DURATION="${DURATION:-10s}"
LAT_CONNS="${LAT_CONNS:-4}"
PACED_RATE="${PACED_RATE:-5000}"
PACED_SECS="${PACED_SECS:-5}"
PACED_ROUNDS="${PACED_ROUNDS:-3}"
PACED_LOAD="${PACED_LOAD:-$REPO/build/tests/bench/paced_load}"
TP_CONNS="${TP_CONNS:-64}"
WRK_THREADS="${WRK_THREADS:-1}"
LOADGEN_CPU="${LOADGEN_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
WARMUP="${WARMUP:-2s}"

for tool in nginx wrk taskset python3 curl; do
  command -v "$tool" >/dev/null || { echo "proxy_bench: '$tool' is required (Debian package)" >&2; exit 2; }
done
if [[ ! -x "$PACED_LOAD" ]]; then
  echo "proxy_bench: paced load generator not found at $PACED_LOAD (cmake --build build --target paced_load)" >&2
  exit 2
fi
if [[ ! -x "$GATEWAY_BIN" ]]; then
  echo "proxy_bench: gateway binary not found at $GATEWAY_BIN (build it or set GATEWAY_BIN)" >&2
  exit 2
fi

BENCH_NAME=proxy-bench
# shellcheck source=tests/bench/bench_lib.sh
source "$HERE/bench_lib.sh"
mkdir -p "$TMP/tmp"

wait_http() { # url, expects an answer within 10 s
  local url="$1"
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null -X POST -H 'content-type: application/json' \
         -d '{"model":"bench","messages":[{"role":"user","content":"Hello"}]}' "$url"; then return 0; fi
    sleep 0.1
  done
  echo "proxy_bench: $url did not come up" >&2
  exit 1
}

render() { # template, output, then KEY=VALUE pairs
  local in="$1" out="$2"; shift 2
  local sedargs=()
  for kv in "$@"; do sedargs+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
  sed "${sedargs[@]}" "$in" >"$out"
}

UP_PORT="$(free_port)"
PX_PORT="$(free_port)"
UP2_PORT="$(free_port)"
PX2_PORT="$(free_port)"

# --- (a) fake upstream: nginx, 1 worker, on the load-generator CPU --------------------------------
render "$HERE/nginx/upstream.conf.in" "$TMP/upstream.conf" PREFIX="$TMP" PORT="$UP_PORT"
taskset -c "$LOADGEN_CPU" nginx -p "$TMP" -c "$TMP/upstream.conf" &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP_PORT/v1/chat/completions"
# The same fake upstream on the proxy CPU, for the like-for-like paced phase only.
mkdir -p "$TMP/up2/tmp"
render "$HERE/nginx/upstream.conf.in" "$TMP/up2/upstream.conf" PREFIX="$TMP/up2" PORT="$UP2_PORT"
taskset -c "$PROXY_CPU" nginx -p "$TMP/up2" -c "$TMP/up2/upstream.conf" &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP2_PORT/v1/chat/completions"

# --- (c) nginx reverse proxy, 1 worker, on the proxy CPU ------------------------------------------
render "$HERE/nginx/proxy.conf.in" "$TMP/proxy.conf" PREFIX="$TMP" PORT="$PX_PORT" UPSTREAM_PORT="$UP_PORT" \
  PORT2="$PX2_PORT" UPSTREAM_PORT2="$UP2_PORT" WORKERS=1
taskset -c "$PROXY_CPU" nginx -p "$TMP" -c "$TMP/proxy.conf" &
PIDS+=($!)
NGINX_PROXY_MASTER=$!
wait_http "http://127.0.0.1:$PX_PORT/v1/chat/completions"

# --- (b) the gateway, 1 worker, on the proxy CPU --------------------------------------------------
cat >"$TMP/gateway.yaml" <<EOF
server:
  listen: "127.0.0.1:0"
  workers: 1
  max_connections: 10000
  max_body_bytes: 1048576
  header_timeout_ms: 10000
  keepalive_idle_ms: 75000
  drain_timeout_ms: 2000
  access_log: "off"
upstream:
  connect_timeout_ms: 2000
  tls_timeout_ms: 2000
  first_byte_timeout_ms: 5000
  stream_idle_timeout_ms: 5000
  total_timeout_ms: 10000
  max_attempts: 1
providers:
  fake:
    type: openai_compatible
    base_url: "http://127.0.0.1:$UP_PORT/v1"
  fake2:
    type: openai_compatible
    base_url: "http://127.0.0.1:$UP2_PORT/v1"
models:
  bench: ["fake/bench-model"]
  bench-local: ["fake2/bench-model"]
EOF
taskset -c "$PROXY_CPU" "$GATEWAY_BIN" serve --config "$TMP/gateway.yaml" >"$TMP/gateway.out" 2>"$TMP/gateway.err" &
PIDS+=($!)
GATEWAY_PID=$!  # the same after its one re-exec (deploy/CONFIGURATION.md, process environment)
GW_URL=""
for _ in $(seq 1 100); do
  GW_URL="$(sed -n 's#.*gateway: listening on \(https\?://[^ ]*\).*#\1#p' "$TMP/gateway.out" | head -1)"
  [[ -n "$GW_URL" ]] && break
  sleep 0.1
done
if [[ -z "$GW_URL" ]]; then
  echo "proxy_bench: gateway did not start; stderr:" >&2
  cat "$TMP/gateway.err" >&2
  exit 1
fi
GW_URL="${GW_URL%/}"
wait_http "$GW_URL/v1/chat/completions"
status="$(curl -s -o "$TMP/check.json" -w '%{http_code}' -X POST -H 'content-type: application/json' \
  -d '{"model":"bench","messages":[{"role":"user","content":"Hello"}]}' "$GW_URL/v1/chat/completions")"
if [[ "$status" != 200 ]]; then
  echo "proxy_bench: gateway answered $status to the bench request:" >&2
  cat "$TMP/check.json" >&2
  exit 1
fi

declare -A URL=(
  [a]="http://127.0.0.1:$UP_PORT/v1/chat/completions"
  [b]="$GW_URL/v1/chat/completions"
  [c]="http://127.0.0.1:$PX_PORT/v1/chat/completions"
  [a2]="http://127.0.0.1:$UP2_PORT/v1/chat/completions"
  [b2]="$GW_URL/v1/chat/completions"
  [c2]="http://127.0.0.1:$PX2_PORT/v1/chat/completions"
)
declare -A NAME=([a]="upstream direct" [b]="gateway" [c]="nginx proxy")

# Converts a wrk latency figure (e.g. 812.00us, 1.23ms, 2.01s) to microseconds.
to_us() {
  python3 -c '
import re,sys
m=re.fullmatch(r"([0-9.]+)(us|ms|s|m)", sys.argv[1].strip())
if not m: print("nan"); sys.exit()
v=float(m.group(1)); u=m.group(2)
print(round(v*{"us":1,"ms":1e3,"s":1e6,"m":6e7}[u],1))' "$1"
}

# CPU time (user, system) in clock ticks consumed so far by the processes serving target b or c.
CLK_TCK="$(getconf CLK_TCK)"
proxy_pids() { # target
  case "$1" in
    b) echo "$GATEWAY_PID" ;;
    c) pgrep -P "$NGINX_PROXY_MASTER" | tr '\n' ' ' ;;
  esac
}
cpu_ticks() { # pids... -> "user system"
  local u=0 s=0 pid pu ps
  for pid in "$@"; do
    read -r pu ps < <(awk '{print $14, $15}' "/proc/$pid/stat")
    u=$((u + pu)); s=$((s + ps))
  done
  echo "$u $s"
}

declare -A P50 P99 RPS ERRS CPU_US CPU_SYS
printf '%s' '{"model":"bench","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}' >"$TMP/body.json"
# The gateway sends model "bench-local" to the upstream on the proxy CPU; the fake upstreams ignore it.
printf '%s' '{"model":"bench-local","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}' >"$TMP/body2.json"
run_paced() { # phase (paced: like-for-like, pacedx: cross-CPU), target a|b|c, round
  local phase="$1" t="$2" r="$3" key="$2" body="$TMP/body.json" out="$TMP/$1.$2.$3.txt" hostport path
  if [[ $phase == paced ]]; then key="${t}2"; body="$TMP/body2.json"; fi
  hostport="${URL[$key]#http://}"; path="/${hostport#*/}"; hostport="${hostport%%/*}"
  taskset -c "$LOADGEN_CPU" "$PACED_LOAD" "${hostport%:*}" "${hostport##*:}" "$path" "$body" "$PACED_RATE" 1 32 >/dev/null
  taskset -c "$LOADGEN_CPU" "$PACED_LOAD" "${hostport%:*}" "${hostport##*:}" "$path" "$body" "$PACED_RATE" "$PACED_SECS" 32 >"$out"
  local e l
  e="$(awk '{for(i=1;i<NF;i++) if($i=="errors") print $(i+1)}' "$out")"
  l="$(awk '{for(i=1;i<NF;i++) if($i=="late") print $(i+1)}' "$out")"
  ERRS[$phase.$t]+="$([[ "$e" == 0 && "$l" == 0 ]] || echo "round $r: errors $e, late sends $l; ")"
}
# Median over the rounds of each figure of paced_load's output line (p50, p99, rate).
paced_median() { # phase, target, figure
  local vals=""
  for r in $(seq 1 "$PACED_ROUNDS"); do
    vals+=" $(awk -v f="$3" '{for(i=1;i<NF;i++) if($i==f) print $(i+1)}' "$TMP/$1.$2.$r.txt")"
  done
  python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' $vals
}
run_wrk() { # phase, target, conns
  local phase="$1" t="$2" conns="$3" out="$TMP/wrk.$1.$2.txt" script="$HERE/nginx/post.lua"
  # Warm-up (connection pools, caches), not recorded.
  taskset -c "$LOADGEN_CPU" wrk -t"$WRK_THREADS" -c"$conns" -d"$WARMUP" -s "$script" "${URL[$t]}" >/dev/null
  local pids="" before="" u0 s0 u1 s1 n
  if [[ $t != a ]]; then pids="$(proxy_pids "$t")"; before="$(cpu_ticks $pids)"; fi
  taskset -c "$LOADGEN_CPU" wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --timeout 5s --latency -s "$script" "${URL[$t]}" >"$out"
  if [[ $t != a ]]; then
    # CPU microseconds the proxy spent per request (user+system, and the system part).
    read -r u0 s0 <<<"$before"
    read -r u1 s1 < <(cpu_ticks $pids)
    n="$(awk '/requests in/{print $1}' "$out")"
    CPU_US[$phase.$t]="$(python3 -c "print(round(($u1-$u0+$s1-$s0)*1e6/$CLK_TCK/max($n,1),2))")"
    CPU_SYS[$phase.$t]="$(python3 -c "print(round(($s1-$s0)*1e6/$CLK_TCK/max($n,1),2))")"
  fi
  P50[$phase.$t]="$(to_us "$(awk '$1=="50%"{print $2}' "$out")")"
  P99[$phase.$t]="$(to_us "$(awk '$1=="99%"{print $2}' "$out")")"
  RPS[$phase.$t]="$(awk '$1=="Requests/sec:"{print $2}' "$out")"
  ERRS[$phase.$t]="$( (grep -E 'Non-2xx|Socket errors' "$out" || true) | tr -s ' ' | paste -sd';' -)"
}

echo "proxy_bench: wrk threads=$WRK_THREADS duration=$DURATION (+$WARMUP warm-up); wrk+upstream on CPU $LOADGEN_CPU, proxy under test on CPU $PROXY_CPU (paced like-for-like: second upstream on CPU $PROXY_CPU)"
echo "proxy_bench: gateway $GATEWAY_BIN ($GW_URL), nginx $(nginx -v 2>&1 | sed 's/.*\///')"
conns_of() { case "$1" in paced|pacedx) echo 32 ;; latency) echo "$LAT_CONNS" ;; *) echo "$TP_CONNS" ;; esac; }
# Rounds interleave the three targets, so a burst of noise from the host lands on one round of
# each at most; the figures are the medians over the rounds.
for phase in paced pacedx; do
  for r in $(seq 1 "$PACED_ROUNDS"); do
    for t in a b c; do run_paced "$phase" "$t" "$r"; done
  done
  for t in a b c; do
    P50[$phase.$t]="$(paced_median "$phase" "$t" p50)"
    P99[$phase.$t]="$(paced_median "$phase" "$t" p99)"
    RPS[$phase.$t]="$(paced_median "$phase" "$t" rate)"
  done
done
for phase in latency throughput; do
  for t in a b c; do run_wrk "$phase" "$t" "$(conns_of "$phase")"; done
done

printf '\n%-11s %-20s %6s %12s %12s %12s  %s\n' phase target conns "p50 (us)" "p99 (us)" "req/s" "errors"
for phase in paced pacedx latency throughput; do
  conns="$(conns_of "$phase")"
  for t in a b c; do
    printf '%-11s %-20s %6s %12s %12s %12s  %s\n' "$phase" "(${t}) ${NAME[$t]}" "$conns" "${P50[$phase.$t]}" "${P99[$phase.$t]}" "${RPS[$phase.$t]}" "${ERRS[$phase.$t]:-none}"
  done
done

python3 - "${P50[paced.a]}" "${P99[paced.a]}" "${P50[paced.b]}" "${P99[paced.b]}" "${P50[paced.c]}" "${P99[paced.c]}" "${RPS[paced.b]}" \
  "${P50[pacedx.a]}" "${P99[pacedx.a]}" "${P50[pacedx.b]}" "${P99[pacedx.b]}" "${P50[pacedx.c]}" "${P99[pacedx.c]}" \
  "${P50[latency.a]}" "${P99[latency.a]}" "${P50[latency.b]}" "${P99[latency.b]}" "${P50[latency.c]}" "${P99[latency.c]}" \
  "${P50[throughput.a]}" "${P99[throughput.a]}" "${P50[throughput.b]}" "${P99[throughput.b]}" "${RPS[latency.b]}" "${RPS[latency.c]}" \
  "${RPS[throughput.b]}" "${RPS[throughput.c]}" <<'EOF'
import sys
v = [float(x) for x in sys.argv[1:]]
pa50, pa99, pb50, pb99, pc50, pc99, prb, xa50, xa99, xb50, xb99, xc50, xc99, la50, la99, lb50, lb99, lc50, lc99, ta50, ta99, tb50, tb99, lrb, lrc, trb, trc = v
print()
print(f"gateway added latency (b - a), paced at {prb:.0f} req/s, like-for-like: p50 {pb50 - pa50:+.1f} us   p99 {pb99 - pa99:+.1f} us   (target at 5k req/s: p50 <= 50 us, p99 <= 250 us)")
print(f"nginx   added latency (c - a), paced, like-for-like:       p50 {pc50 - pa50:+.1f} us   p99 {pc99 - pa99:+.1f} us   (for reference)")
print(f"gateway added latency (b - a), paced, cross-CPU:           p50 {xb50 - xa50:+.1f} us   p99 {xb99 - xa99:+.1f} us   (reference: 4 idle-vCPU wake-ups the direct path does not pay)")
print(f"nginx   added latency (c - a), paced, cross-CPU:           p50 {xc50 - xa50:+.1f} us   p99 {xc99 - xa99:+.1f} us   (for reference)")
print(f"gateway added latency (b - a), latency phase:    p50 {lb50 - la50:+.1f} us   p99 {lb99 - la99:+.1f} us   (closed loop, core mostly busy)")
print(f"nginx   added latency (c - a), latency phase:    p50 {lc50 - la50:+.1f} us   p99 {lc99 - la99:+.1f} us   (for reference)")
print(f"gateway added latency (b - a), throughput phase: p50 {tb50 - ta50:+.1f} us   p99 {tb99 - ta99:+.1f} us   (includes queueing)")
print(f"gateway throughput / nginx throughput (b / c):   {trb / trc:.3f} at saturation ({trb:.0f} vs {trc:.0f} req/s), {lrb / lrc:.3f} in the latency phase   (target: >= 1.0)")
EOF
echo "proxy CPU per request at saturation (user+system, of which system; from /proc ticks, about +-10 %):"
echo "  gateway ${CPU_US[throughput.b]} us (system ${CPU_SYS[throughput.b]} us)   nginx ${CPU_US[throughput.c]} us (system ${CPU_SYS[throughput.c]} us)"
