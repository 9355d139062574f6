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
#                     Each round runs PACED_SECS (default 5) seconds per target in each placement.
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
# Rounds: the whole sequence (every phase, every target) runs ROUNDS times (default 5), interleaved,
# and each figure is the median over the rounds with its spread [min-max]; the added latencies also
# give the range of the per-round difference. A round whose load generator fell behind is named and
# left out of the medians: paced_load skipped sends (every connection busy), sent over 1 % of them
# more than one interval late, answered under 95 % of PACED_RATE, or saw errors; wrk (closed loop,
# no asked rate) reached under WRK_FLOOR (default 0.8) of that target's median requests/s, or saw
# errors. The expected run time is printed first and the real one last.
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
# Usage: tests/bench/proxy_bench.sh            (env: GATEWAY_BIN, PACED_LOAD, ROUNDS=5, DURATION=5s, WARMUP=1s, PACED_RATE, PACED_SECS,
#                                               WRK_FLOOR=0.8, LAT_CONNS, TP_CONNS, WRK_THREADS, LOADGEN_CPU, PROXY_CPU, KEEP_TMP=1)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$REPO/build/gateway/gateway}"
DURATION="${DURATION:-5s}"
LAT_CONNS="${LAT_CONNS:-4}"
PACED_RATE="${PACED_RATE:-5000}"
PACED_SECS="${PACED_SECS:-5}"
ROUNDS="${ROUNDS:-5}"
WRK_FLOOR="${WRK_FLOOR:-0.8}"
PACED_LOAD="${PACED_LOAD:-$REPO/build/tests/bench/paced_load}"
TP_CONNS="${TP_CONNS:-64}"
WRK_THREADS="${WRK_THREADS:-1}"
LOADGEN_CPU="${LOADGEN_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
WARMUP="${WARMUP:-1s}"

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
GW_URL="$(gateway_url "$TMP/gateway.out")"
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

# One line per measured round in $TMP/rounds.txt, tab-separated:
#   phase target round p50_us p99_us req_per_s cpu_us cpu_sys_us problem
# "problem" is "-" or why the round cannot be used (errors; the load generator fell behind);
# the summary below leaves such rounds out of the medians and names them.
ROUNDS_FILE="$TMP/rounds.txt"
: >"$ROUNDS_FILE"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROUNDS_FILE"; }
field() { awk -v f="$1" '{for(i=1;i<NF;i++) if($i==f) print $(i+1)}' "$2"; }  # figure named $1 in file $2

printf '%s' '{"model":"bench","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}' >"$TMP/body.json"
# The gateway sends model "bench-local" to the upstream on the proxy CPU; the fake upstreams ignore it.
printf '%s' '{"model":"bench-local","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}' >"$TMP/body2.json"
run_paced() { # phase (paced: like-for-like, pacedx: cross-CPU), target a|b|c, round
  local phase="$1" t="$2" r="$3" key="$2" body="$TMP/body.json" out="$TMP/$1.$2.$3.txt" hostport path
  if [[ $phase == paced ]]; then key="${t}2"; body="$TMP/body2.json"; fi
  hostport="${URL[$key]#http://}"; path="/${hostport#*/}"; hostport="${hostport%%/*}"
  taskset -c "$LOADGEN_CPU" "$PACED_LOAD" "${hostport%:*}" "${hostport##*:}" "$path" "$body" "$PACED_RATE" 1 32 >/dev/null
  taskset -c "$LOADGEN_CPU" "$PACED_LOAD" "${hostport%:*}" "${hostport##*:}" "$path" "$body" "$PACED_RATE" "$PACED_SECS" 32 >"$out"
  local sent e l b rate problem=""
  sent="$(field sent "$out")"; e="$(field errors "$out")"; l="$(field late "$out")"; b="$(field behind "$out")"
  rate="$(field rate "$out")"
  if [[ -z "$sent" || -z "$b" || -z "$rate" ]]; then  # no line, or a paced_load without "behind"
    echo "proxy_bench: unexpected paced_load output in $out (rebuild paced_load): $(cat "$out")" >&2
    exit 1
  fi
  # Fell behind: any send skipped because every connection was busy, more than 1 % of sends that
  # left over one interval late (bursts), or under 95 % of the asked rate answered.
  [[ "$e" == 0 ]] || problem+="errors=$e "
  [[ "$l" == 0 ]] || problem+="late=$l "
  (( b * 100 <= sent )) || problem+="behind=$b/$sent "
  (( rate * 100 >= PACED_RATE * 95 )) || problem+="rate=$rate "
  problem="${problem% }"
  record "$phase" "$t" "$r" "$(field p50 "$out")" "$(field p99 "$out")" "$rate" nan nan "${problem:--}"
}
run_wrk() { # phase, target, conns, round
  local phase="$1" t="$2" conns="$3" r="$4" out="$TMP/wrk.$1.$2.$4.txt" script="$HERE/nginx/post.lua"
  # Warm-up (connection pools, caches), not recorded.
  taskset -c "$LOADGEN_CPU" wrk -t"$WRK_THREADS" -c"$conns" -d"$WARMUP" -s "$script" "${URL[$t]}" >/dev/null
  local pids="" before="" u0 s0 u1 s1 n cpu=nan sys=nan errs
  if [[ $t != a ]]; then pids="$(proxy_pids "$t")"; before="$(cpu_ticks $pids)"; fi
  taskset -c "$LOADGEN_CPU" wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --timeout 5s --latency -s "$script" "${URL[$t]}" >"$out"
  n="$(awk '/requests in/{print $1}' "$out")"
  if [[ $t != a ]]; then
    # CPU microseconds the proxy spent per request (user+system, and the system part).
    read -r u0 s0 <<<"$before"
    read -r u1 s1 < <(cpu_ticks $pids)
    cpu="$(python3 -c "print(round(($u1-$u0+$s1-$s0)*1e6/$CLK_TCK/max($n,1),2))")"
    sys="$(python3 -c "print(round(($s1-$s0)*1e6/$CLK_TCK/max($n,1),2))")"
  fi
  errs="$( (grep -E 'Non-2xx|Socket errors' "$out" || true) | tr -s ' ' | tr -d '\t' | paste -sd';' -)"
  record "$phase" "$t" "$r" "$(to_us "$(awk '$1=="50%"{print $2}' "$out")")" "$(to_us "$(awk '$1=="99%"{print $2}' "$out")")" \
    "$(awk '$1=="Requests/sec:"{print $2}' "$out")" "$cpu" "$sys" "${errs:--}"
}

conns_of() { case "$1" in paced|pacedx) echo 32 ;; latency) echo "$LAT_CONNS" ;; *) echo "$TP_CONNS" ;; esac; }
secs_of() { python3 -c '
import re,sys
m=re.fullmatch(r"([0-9.]+)(s|m|h)?", sys.argv[1])
print(int(float(m.group(1))*{"s":1,"m":60,"h":3600,None:1}[m.group(2)]) if m else 0)' "$1"; }
# Each round: 2 paced phases x 3 targets x (1 s warm-up + PACED_SECS) + 2 wrk phases x 3 targets x
# (WARMUP + DURATION), plus start-up; printed up front so a long run is a choice, not a surprise.
ROUND_S=$(( 6 * (1 + PACED_SECS) + 6 * ($(secs_of "$WARMUP") + $(secs_of "$DURATION")) ))
echo "proxy_bench: wrk threads=$WRK_THREADS duration=$DURATION (+$WARMUP warm-up); wrk+upstream on CPU $LOADGEN_CPU, proxy under test on CPU $PROXY_CPU (paced like-for-like: second upstream on CPU $PROXY_CPU)"
echo "proxy_bench: gateway $GATEWAY_BIN ($GW_URL), nginx $(nginx -v 2>&1 | sed 's/.*\///')"
echo "proxy_bench: $ROUNDS interleaved rounds of about $ROUND_S s each: about $((ROUNDS * ROUND_S)) s in all"
# Rounds interleave every phase and target, so a burst of noise from the host lands on one round of
# each at most; the figures are medians over the rounds, with their spread.
BENCH_START=$SECONDS
for r in $(seq 1 "$ROUNDS"); do
  for phase in paced pacedx; do
    for t in a b c; do run_paced "$phase" "$t" "$r"; done
  done
  for phase in latency throughput; do
    for t in a b c; do run_wrk "$phase" "$t" "$(conns_of "$phase")" "$r"; done
  done
  echo "proxy_bench: round $r of $ROUNDS done ($((SECONDS - BENCH_START)) s)"
done

python3 - "$ROUNDS_FILE" "$PACED_RATE" "$LAT_CONNS" "$TP_CONNS" "$WRK_FLOOR" <<'EOF'
import statistics, sys
path, paced_rate, lat_conns, tp_conns, wrk_floor = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
PHASES = ("paced", "pacedx", "latency", "throughput")
NAME = {"a": "upstream direct", "b": "gateway", "c": "nginx proxy"}
CONNS = {"paced": "32", "pacedx": "32", "latency": lat_conns, "throughput": tp_conns}
rows = {}  # (phase, target) -> list of dict
for line in open(path):
    ph, t, r, p50, p99, rps, cpu, sysc, problem = line.rstrip("\n").split("\t")
    num = lambda x: float(x) if x not in ("", "nan") else float("nan")
    rows.setdefault((ph, t), []).append(dict(round=int(r), p50=num(p50), p99=num(p99), rps=num(rps),
                                             cpu=num(cpu), sys=num(sysc), problem=None if problem == "-" else problem))
# wrk runs closed loop, so it has no asked rate: a round is taken to have fallen behind when its
# requests/s is under WRK_FLOOR of that target's median over all rounds (wrk or the host stalled).
for ph in ("latency", "throughput"):
    for t in "abc":
        rs = rows.get((ph, t), [])
        med = statistics.median(x["rps"] for x in rs) if rs else 0
        for x in rs:
            if x["rps"] < wrk_floor * med:
                x["problem"] = (x["problem"] + " " if x["problem"] else "") + f"req/s {x['rps']:.0f} < {wrk_floor:.2f} x median {med:.0f}"
def used(ph, t):
    rs = rows.get((ph, t), [])
    ok = [x for x in rs if not x["problem"]]
    return (ok, False) if ok else (rs, True)  # every round flagged: use them all, and say so
def med(ph, t, k):
    rs, _ = used(ph, t)
    return statistics.median(x[k] for x in rs)
def spread(ph, t, k):
    vals = [x[k] for x in used(ph, t)[0]]
    return f"{statistics.median(vals):.1f} [{min(vals):.1f}-{max(vals):.1f}]"
def added(ph, t, k):
    # median(t) - median(a), and the range of the same difference within each round both used.
    ra = {x["round"]: x[k] for x in used(ph, "a")[0]}
    diffs = [x[k] - ra[x["round"]] for x in used(ph, t)[0] if x["round"] in ra]
    rng = f"[per round {min(diffs):+.1f}..{max(diffs):+.1f}]" if diffs else "[per round n/a]"
    return f"{med(ph, t, k) - med(ph, 'a', k):+.1f} us {rng}"
print()
print("medians over the usable rounds, [min-max] over the same rounds; 'rounds' = used/run")
print("added figures and ratios: difference (ratio) of those medians, then [per round min..max] of the same difference")
print(f"{'phase':<11} {'target':<20} {'conns':>5} {'p50 (us)':>22} {'p99 (us)':>24} {'req/s':>26}  rounds  flagged (left out)")
flagged_all = False
for ph in PHASES:
    for t in "abc":
        if (ph, t) not in rows: continue
        rs, fallback = used(ph, t)
        flagged_all |= fallback
        notes = "; ".join(f"round {x['round']}: {x['problem']}" for x in rows[(ph, t)] if x["problem"])
        print(f"{ph:<11} {'(' + t + ') ' + NAME[t]:<20} {CONNS[ph]:>5} {spread(ph, t, 'p50'):>22} {spread(ph, t, 'p99'):>24} "
              f"{spread(ph, t, 'rps'):>26}  {(0 if fallback else len(rs))}/{len(rows[(ph, t)])}     {notes or 'none'}")
if flagged_all:
    print("WARNING: every round of some target was flagged; its figures are medians over all rounds (0/N above) and are not trustworthy")
print()
print(f"gateway added latency (b - a), paced at {paced_rate:.0f} req/s, like-for-like: p50 {added('paced', 'b', 'p50')}   p99 {added('paced', 'b', 'p99')}   (target at 5k req/s: p50 <= 50 us, p99 <= 250 us)")
print(f"nginx   added latency (c - a), paced, like-for-like:       p50 {added('paced', 'c', 'p50')}   p99 {added('paced', 'c', 'p99')}   (for reference)")
print(f"gateway added latency (b - a), paced, cross-CPU:           p50 {added('pacedx', 'b', 'p50')}   p99 {added('pacedx', 'b', 'p99')}   (reference: 4 idle-vCPU wake-ups the direct path does not pay)")
print(f"nginx   added latency (c - a), paced, cross-CPU:           p50 {added('pacedx', 'c', 'p50')}   p99 {added('pacedx', 'c', 'p99')}   (for reference)")
print(f"gateway added latency (b - a), latency phase:    p50 {added('latency', 'b', 'p50')}   p99 {added('latency', 'b', 'p99')}   (closed loop, core mostly busy)")
print(f"nginx   added latency (c - a), latency phase:    p50 {added('latency', 'c', 'p50')}   p99 {added('latency', 'c', 'p99')}   (for reference)")
print(f"gateway added latency (b - a), throughput phase: p50 {added('throughput', 'b', 'p50')}   p99 {added('throughput', 'b', 'p99')}   (includes queueing)")
def ratios(ph):
    # per-round b/c where both rounds are usable: their median and range
    rc = {x["round"]: x["rps"] for x in used(ph, "c")[0]}
    rr = [x["rps"] / rc[x["round"]] for x in used(ph, "b")[0] if x["round"] in rc and rc[x["round"]] > 0]
    return f"{med(ph, 'b', 'rps') / med(ph, 'c', 'rps'):.3f} [per round {min(rr):.3f}-{max(rr):.3f}]" if rr else "n/a"
print(f"gateway throughput / nginx throughput (b / c):   {ratios('throughput')} at saturation ({med('throughput', 'b', 'rps'):.0f} vs {med('throughput', 'c', 'rps'):.0f} req/s), "
      f"{ratios('latency')} in the latency phase   (target: >= 1.0)")
print("proxy CPU per request at saturation (user+system, and system; from /proc ticks, about +-10 % per round):")
print(f"  gateway {spread('throughput', 'b', 'cpu')} us (system {spread('throughput', 'b', 'sys')} us)   "
      f"nginx {spread('throughput', 'c', 'cpu')} us (system {spread('throughput', 'c', 'sys')} us)   "
      f"ratio {med('throughput', 'b', 'cpu') / med('throughput', 'c', 'cpu'):.2f} (target <= 1.25)")
EOF
echo "proxy_bench: total run time $((SECONDS - BENCH_START)) s of measurement ($SECONDS s with start-up)"
