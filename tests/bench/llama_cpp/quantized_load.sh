#!/usr/bin/env bash
# Not in CI (builds llama.cpp from source, see fetch_build.sh). Checks that K-quant files written
# by llama-quantize load in the local engine and continue a token prompt greedily as the engine's
# own files of the same weights do: for an 8-expert and a 128-expert qwen3moe model, an F32 file
# from gguf-make-test-model is quantised by llama-quantize to Q4_K_M and Q5_K_M, and compared
# with gguf-make-test-model's --type q4_k_m / q5_k_m of the same seed. The two quantisers need
# not round alike and random models have near-flat logits, so late divergence is reported, not an
# error; the first 8 tokens must agree. Rows are multiples of 256 so no tensor falls back to a
# non-K type. Prints llama-quantize's type mix for each file.
#   tests/bench/llama_cpp/quantized_load.sh [BUILD_DIR]     (default: build)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
build="$(cd "${1:-$repo/build}" && pwd)"
tool="$build/local_backend/gguf-make-test-model"
greedy="$build/local_backend/gguf-greedy-tokens"
[ -x "$tool" ] && [ -x "$greedy" ] || { echo "build gguf-make-test-model and gguf-greedy-tokens first" >&2; exit 2; }
source "$here/fetch_build.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
prompt="11 22 33 44 55 66 77 88 99 100 150 200"
shape=(--arch qwen3moe --layers 2 --embd 512 --heads 4 --kv-heads 2 --head-dim 128 --expert-ff 256 --vocab synthetic --seed 3)
fail=0
for experts in "8 2" "128 8"; do
  set -- $experts
  base="$tmp/e$1"
  "$tool" "${shape[@]}" --experts "$1" --experts-used "$2" --type f32 --out "$base-f32.gguf" 2>/dev/null
  for type in q4_k_m q5_k_m; do
    ours="$base-$type.gguf" theirs="$base-llama-$type.gguf" TYPE="${type^^}"
    "$tool" "${shape[@]}" --experts "$1" --experts-used "$2" --type "$type" --out "$ours" 2>/dev/null
    "$LLAMA_QUANTIZE" "$base-f32.gguf" "$theirs" "$TYPE" >"$tmp/q.log" 2>&1 ||
      { echo "llama-quantize failed:"; tail -5 "$tmp/q.log"; fail=1; continue; }
    # Type mix of the llama-quantize file, from its log ("... converting to q5_K ..."), per tensor kind.
    mix="$(sed -n 's/.*\] *blk\.[0-9]*\.\([a-z_]*\)\.weight.*converting to \([a-z0-9_A-Z]*\).*/\1=\2/p;
                  s/.*\] *\(output\|token_embd\)\.weight.*converting to \([a-z0-9_A-Z]*\).*/\1=\2/p' "$tmp/q.log" |
           sort -u | tr '\n' ' ')"
    a=($("$greedy" "$ours" 24 $prompt))
    if ! b=($("$greedy" "$theirs" 24 $prompt 2>"$tmp/err")); then
      echo "$1 experts $TYPE: llama-quantize file does not load: $(cat "$tmp/err")"
      fail=1
      continue
    fi
    same=0
    while [ $same -lt 24 ] && [ "${a[$same]:-x}" = "${b[$same]:-y}" ]; do same=$((same + 1)); done
    echo "$1 experts $TYPE: first $same of 24 greedy tokens agree (llama-quantize file vs the engine's own)"
    echo "  llama-quantize types: $mix"
    if [ $same -lt 8 ]; then fail=1; fi
  done
done
exit $fail
