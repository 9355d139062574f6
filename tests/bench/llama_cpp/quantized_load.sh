#!/usr/bin/env bash
# Not in CI (builds llama.cpp from source, see fetch_build.sh). Checks that files written by
# llama-quantize load in the local engine and continue a token prompt greedily as the engine's
# own files of the same weights do: for an 8-expert and a 128-expert qwen3moe model, and a
# qwen2moe model whose expert rows are not a multiple of 256 (so llama-quantize falls back to
# Q5_0 / Q5_1 / Q8_0 for them), an F32 file from gguf-make-test-model is quantised by
# llama-quantize to Q4_K_M, Q5_K_M and Q6_K, and compared with gguf-make-test-model's file of the
# same seed in the same per-tensor types (--types-like).
# Pass: every file loads, and each type's weights decode (gguf-tensor-error) within 1.25x the
# relative error of the engine's own quantiser against the F32 originals. Greedy agreement is
# reported, not required: the two quantisers round differently, and on these random models with
# near-flat logits that alone moves greedy tokens within the first few (the baseline line: the
# engine's own Q4_K_M file against the F32 one diverges as early). What is required of greedy
# tokens: the same llama-quantize file continued by the engine and by llama.cpp (node-llama-cpp's
# prebuilt binary, installed from npm on first use; XCHECK=0 skips it) agree on the first 8.
# Prints llama-quantize's type mix for each file.
#   tests/bench/llama_cpp/quantized_load.sh [BUILD_DIR]     (default: build)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
build="$(cd "${1:-$repo/build}" && pwd)"
tool="$build/local_backend/gguf-make-test-model"
greedy="$build/local_backend/gguf-greedy-tokens"
tensor_error="$build/local_backend/gguf-tensor-error"
[ -x "$tool" ] && [ -x "$greedy" ] && [ -x "$tensor_error" ] ||
  { echo "build gguf-make-test-model, gguf-greedy-tokens and gguf-tensor-error first" >&2; exit 2; }
source "$here/fetch_build.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
prompt="11 22 33 44 55 66 77 88 99 100 150 200"
common=(--layers 2 --embd 512 --heads 4 --kv-heads 2 --head-dim 128 --vocab synthetic --seed 3)
fail=0
# Each llama-quantize file is also continued by llama.cpp itself (node-llama-cpp's prebuilt CPU
# binary, about 85 MB from the npm registry, installed here on first use as llama_cpp_xcheck/run.sh
# does; npm ci refuses that lock). XCHECK=0 skips it.
xcheck="$repo/tests/local_backend/llama_cpp_xcheck"
if [ "${XCHECK:-1}" != 0 ] && [ ! -d "$xcheck/node_modules/node-llama-cpp" ]; then
  (cd "$xcheck" && npm install --no-audit --no-fund --ignore-scripts >/dev/null) ||
    echo "quantized_load: node-llama-cpp did not install; the llama.cpp greedy check is skipped" >&2
fi
agree() {  # "IDS" "IDS" -> length of the common prefix
  local -a x=($1) y=($2); local n=0
  while [ $n -lt ${#x[@]} ] && [ "${x[$n]}" = "${y[$n]:-}" ]; do n=$((n + 1)); done
  echo $n
}
# ARCH EXPERTS USED EXPERT_FF [SHARED_FF]: the qwen2moe shape has Qwen1.5-MoE-A2.7B's expert FFN
# of 1408 (and a shared one of 5632), rows that are not a multiple of 256, so llama-quantize
# writes its legacy fallbacks (Q5_0, Q5_1, Q8_0) for ffn_down_exps and ffn_down_shexp.
for shape_spec in "qwen3moe 8 2 256" "qwen3moe 128 8 256" "qwen2moe 8 2 1408 5632"; do
  set -- $shape_spec
  shape=(--arch "$1" "${common[@]}" --expert-ff "$4")
  [ -n "${5:-}" ] && shape+=(--shared-ff "$5")
  base="$tmp/$1-e$2"
  shift  # $1, $2: experts and experts used
  "$tool" "${shape[@]}" --experts "$1" --experts-used "$2" --type f32 --out "$base-f32.gguf" 2>/dev/null
  ref=($("$greedy" "$base-f32.gguf" 24 $prompt))
  for type in q4_k_m q5_k_m q6_k; do
    ours="$base-$type.gguf" theirs="$base-llama-$type.gguf" TYPE="${type^^}"
    "$LLAMA_QUANTIZE" "$base-f32.gguf" "$theirs" "$TYPE" >"$tmp/q.log" 2>&1 ||
      { echo "llama-quantize failed:"; tail -5 "$tmp/q.log"; fail=1; continue; }
    # The engine's own file in llama-quantize's per-tensor types (its mix differs by expert count
    # and layer), so only the two quantisers' rounding differs.
    "$tool" "${shape[@]}" --experts "$1" --experts-used "$2" --type "$type" --types-like "$theirs" --out "$ours" 2>/dev/null
    # Type mix of the llama-quantize file, from its log ("... converting to q5_K ..."), per tensor kind.
    mix="$(sed -n 's/.*\] *blk\.[0-9]*\.\([a-z_]*\)\.weight.*converting to \([a-z0-9_A-Z]*\).*/\1=\2/p;
                  s/.*\] *\(output\|token_embd\)\.weight.*converting to \([a-z0-9_A-Z]*\).*/\1=\2/p' "$tmp/q.log" |
           sort -u | tr '\n' ' ')"
    a=($("$greedy" "$ours" 24 $prompt))
    if ! b=($("$greedy" "$theirs" 24 $prompt 2>"$tmp/err")); then
      echo "${shape[1]} $1 experts $TYPE: llama-quantize file does not load: $(cat "$tmp/err")"
      fail=1
      continue
    fi
    same="$(agree "${a[*]}" "${b[*]}")"
    echo "${shape[1]} $1 experts $TYPE: first $same of 24 greedy tokens agree (llama-quantize file vs the engine's own, same types)"
    if [ -d "$xcheck/node_modules/node-llama-cpp" ]; then
      # The same llama-quantize file in llama.cpp (node-llama-cpp's build): the same weights, so the
      # engines must agree; late divergence after a near-tie is reported, the first 8 must agree.
      c=($(cd "$xcheck" && node greedy.mjs "$theirs" 24 $prompt))
      both="$(agree "${b[*]}" "${c[*]}")"
      echo "  the llama-quantize file in the engine vs in llama.cpp: first $both of 24 greedy tokens agree"
      [ "$both" -ge 8 ] || { echo "  FAIL: the engine reads llama-quantize's file differently from llama.cpp"; fail=1; }
    fi
    echo "  baseline: the engine's own file vs F32: first $(agree "${a[*]}" "${ref[*]}") agree"
    echo "  llama-quantize types: $mix"
    # Relative RMS error of the decoded weights against the F32 originals, largest per type:
    # llama-quantize's blocks as the engine reads them, then the engine's own quantiser.
    errs="$("$tensor_error" "$base-f32.gguf" "$theirs" "$ours")" || fail=1
    echo "$errs" | sed "s|$tmp/||; s|^|  weight error: |"
    # Decoded right: no type's error above 1.25x the engine's own quantiser's (a misread layout
    # gives errors near 1).
    echo "$errs" | awk 'NR == 1 { for (i = 2; i < NF; i += 2) a[$i] = $(i + 1) }
                        NR == 2 { for (i = 2; i < NF; i += 2) if (a[$i] > 1.25 * $(i + 1) + 1e-4) bad = 1 }
                        END { exit bad }' || { echo "  FAIL: llama-quantize's weights decode with a larger error"; fail=1; }
  done
done
exit $fail
