#!/bin/sh
# gguf-bench on a tiny generated model: a table row per test and thread count, a CSV line per
# test with the KV bytes per token, and exit status 2 on a bad option. Checks the format only.
#   gguf_bench_smoke.sh MAKE_MODEL_TOOL GGUF_BENCH WORK_DIR
set -eu
make_model="$1" bench="$2" dir="$3"
mkdir -p "$dir"
m="$dir/gguf_bench_smoke.gguf"
"$make_model" --type q8_0 --seed 5 --out "$m" 2>/dev/null
rows="$("$bench" -m "$m" -p 8,16 -n 4 -t 1,2 -r 2 2>/dev/null | grep -c '^| qwen3moe Q8_0 | .* | CPU | [12] | \(pp8\|pp16\|tg4\) | [0-9.]* ± [0-9.]* |$')"
[ "$rows" = 6 ] || { echo "expected 6 table rows, got $rows"; exit 1; }
csv="$("$bench" -m "$m" -p 8 -n 0 -t 1 -r 1 -ctk f32 -o csv 2>/dev/null)"
[ "$(echo "$csv" | head -1 | cut -d, -f1)" = model_filename ] || { echo "no CSV header"; exit 1; }
echo "$csv" | tail -1 | grep -q ',8,0,256,f32,[0-9]*,' || { echo "bad CSV line: $csv"; exit 1; }
status=0
"$bench" -m "$m" -t 0 >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || { echo "bad option: exit $status, expected 2"; exit 1; }
echo ok
