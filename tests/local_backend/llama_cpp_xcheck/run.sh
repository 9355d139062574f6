#!/usr/bin/env bash
# Optional (not in CI: node-llama-cpp's prebuilt binaries are ~85 MB): checks that llama.cpp
# loads GGUF files written by gguf-make-test-model for every architecture and several weight
# types, and that its greedy continuation of a token prompt equals the local engine's.
# Both keep an F32 KV cache and llama.cpp's flash attention is off (greedy.mjs): with it on, its
# rounding inside attention moved the greedy tokens of these random models within a few steps.
# Random models have flat logits, so late divergence after a near-tie (quantised activations
# round differently once sums are taken in another order) is reported but not an error; the
# first 8 tokens must agree. top.mjs and `gguf-greedy-tokens --top K` print the most probable
# next tokens after a prompt, for looking into a divergence.
#   tests/local_backend/llama_cpp_xcheck/run.sh BUILD_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: run.sh BUILD_DIR}"
tool="$build/local_backend/gguf-make-test-model"
greedy="$build/local_backend/gguf-greedy-tokens"
# npm ci refuses this lock (an optional platform package it cannot resolve): npm install keeps it.
(cd "$here" && [ -d node_modules/node-llama-cpp ] || npm install --no-audit --no-fund --ignore-scripts >/dev/null)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
prompt="11 22 33 44 55 66 77 88 99 100 150 200"
fail=0
for spec in "qwen3moe f32 synthetic" "qwen3moe f16 synthetic" "qwen3moe bf16 synthetic" "qwen3moe q8_0 synthetic" \
            "qwen3moe q4_k_m synthetic" "qwen2moe f32 synthetic" "qwen2moe q8_0 synthetic" "mixtral f32 spm" "mixtral q8_0 spm"; do
  set -- $spec
  m="$tmp/$1-$2.gguf"
  "$tool" --arch "$1" --type "$2" --vocab "$3" --seed 3 --out "$m" 2>/dev/null
  ours=($("$greedy" "$m" 24 $prompt))
  theirs=($(cd "$here" && node greedy.mjs "$m" 24 $prompt))
  same=0
  while [ $same -lt 24 ] && [ "${ours[$same]:-x}" = "${theirs[$same]:-y}" ]; do same=$((same + 1)); done
  echo "$1 $2: first $same of 24 greedy tokens agree with llama.cpp"
  if [ $same -lt 8 ]; then fail=1; fi
done
exit $fail
