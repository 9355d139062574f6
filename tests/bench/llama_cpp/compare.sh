#!/usr/bin/env bash
# Local engine vs llama.cpp built from source, on the 4-layer Qwen3-30B-A3B-shaped files (not in
# CI: it builds llama.cpp and writes ~15 GB of models into a cache). Interleaved rounds: in each
# round, for each file and thread count, gguf-bench and llama-bench each run pp64, pp2000 and tg32
# (-r REPS runs after a warm-up), the order of the two tools alternating from round to round.
# Prints the medians over rounds of each round's mean t/s and the ratio engine / llama.cpp.
#   tests/bench/llama_cpp/compare.sh [BUILD_DIR]       (default: build)
# Environment: ROUNDS (3), REPS (2), THREADS ("1 2"), PROMPTS (64,2000), GEN (32), ONLY (a regex
# over the file labels q8_0, q4_k, q4_k_m(llama), q5_k_m(llama)), RESULTS (a directory to keep
# the raw CSV in), plus those of fetch_build.sh and models.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
build="$(cd "${1:-$repo/build}" && pwd)"
ROUNDS="${ROUNDS:-3}" REPS="${REPS:-2}" THREADS="${THREADS:-1 2}" PROMPTS="${PROMPTS:-64,2000}" GEN="${GEN:-32}"
gbench="$build/local_backend/gguf-bench"
[ -x "$gbench" ] || { echo "build gguf-bench and gguf-make-test-model first (cmake --build $build --target gguf-bench gguf-make-test-model)" >&2; exit 2; }

source "$here/fetch_build.sh"
source "$here/models.sh"
out="${RESULTS:-$(mktemp -d)}"
mkdir -p "$out"
raw="$out/results.csv"   # round,tool,label,threads,test,t/s
: >"$raw"
rss="$out/rss.csv"       # tool,label,peak RSS KiB
: >"$rss"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

# Appends this tool's rows to $raw. CSV columns are found by name in each tool's header.
run_tool() {  # TOOL ROUND LABEL FILE THREADS
  local tool=$1 round=$2 label=$3 file=$4 t=$5 csv="$out/last.csv" cmd
  if [ "$tool" = engine ]; then cmd=("$gbench" -m "$file"); else cmd=("$LLAMA_BENCH" -m "$file"); fi
  /usr/bin/time -f "%M" -o "$out/time.txt" "${cmd[@]}" -p "$PROMPTS" -n "$GEN" -t "$t" -r "$REPS" -o csv \
    >"$csv" 2>"$out/stderr-$tool.txt" || { echo "$tool failed on $file, see $out/stderr-$tool.txt" >&2; exit 1; }
  echo "$tool,$label,$(tail -1 "$out/time.txt")" >>"$rss"
  awk -v round="$round" -v tool="$tool" -v label="$label" -v t="$t" -v kv="$out/kv-$label.txt" '
    function split_csv(line, f,    n, i, c, q, cur) {  # fields may be quoted and hold commas
      n = 0; cur = ""; q = 0
      for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (c == "\"") q = !q; else if (c == "," && !q) { f[++n] = cur; cur = "" } else cur = cur c
      }
      f[++n] = cur; return n
    }
    NR == 1 { n = split_csv($0, h); for (i = 1; i <= n; i++) col[h[i]] = i; next }
    { split_csv($0, f); np = f[col["n_prompt"]]; ng = f[col["n_gen"]]
      printf "%s,%s,%s,%s,%s,%s\n", round, tool, label, t, ng == 0 ? "pp" np : "tg" ng, f[col["avg_ts"]]
      if (NR == 2 && "kv_bytes_per_token" in col) print f[col["kv_bytes_per_token"]] > kv }' "$csv" >>"$raw"
}

for round in $(seq 1 "$ROUNDS"); do
  for spec in "${MODEL_FILES[@]}"; do
    label="${spec%%=*}" file="${spec#*=}"
    [[ -z "${ONLY:-}" || "$label" =~ $ONLY ]] || continue
    for t in $THREADS; do
      if [ $((round % 2)) = 1 ]; then order="engine llama"; else order="llama engine"; fi
      for tool in $order; do
        echo "round $round: $tool $label threads=$t" >&2
        run_tool "$tool" "$round" "$label" "$file" "$t"
      done
    done
  done
done

load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "llama.cpp: snapshot $LLAMA_COMMIT (node-llama-cpp $NODE_LLAMA_CPP_VERSION, tag $LLAMA_TAG), CPU, GGML_NATIVE=ON"
echo "$(nproc) CPUs: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "load average (1/5/15 min) at start: $load_start; at end: $load_end"
echo "rounds: $ROUNDS, runs per tool per round: $REPS (after a warm-up); medians over rounds of each round's mean"
echo
echo "| weights | threads | test | engine t/s | llama.cpp t/s | engine / llama.cpp |"
echo "|---|---|---|---|---|---|"
awk -F, '
  function median(key,    n, i, j, v, tmp) {
    n = split(vals[key], v, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { tmp = v[i]; v[i] = v[j]; v[j] = tmp }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  { key = $3 SUBSEP $4 SUBSEP $5; vals[$2 SUBSEP key] = vals[$2 SUBSEP key] " " $6
    if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
  END {
    for (i = 1; i <= n; i++) {
      split(order[i], k, SUBSEP); e = median("engine" SUBSEP order[i]); l = median("llama" SUBSEP order[i])
      printf "| %s | %s | %s | %.2f | %.2f | %.2f |\n", k[1], k[2], k[3], e, l, (l > 0 ? e / l : 0)
    }
  }' "$raw"
echo
echo "KV cache bytes per token (engine, default type) and peak RSS (max over runs):"
for spec in "${MODEL_FILES[@]}"; do
  label="${spec%%=*}"
  [ -f "$out/kv-$label.txt" ] || continue
  e="$(awk -F, -v l="$label" '$1 == "engine" && $2 == l && $3 > m { m = $3 } END { printf "%.0f", m / 1024 }' "$rss")"
  ll="$(awk -F, -v l="$label" '$1 == "llama" && $2 == l && $3 > m { m = $3 } END { printf "%.0f", m / 1024 }' "$rss")"
  echo "  $label: KV $(cat "$out/kv-$label.txt") B/token; peak RSS engine $e MiB, llama-bench $ll MiB"
done
echo "raw results: $raw"
