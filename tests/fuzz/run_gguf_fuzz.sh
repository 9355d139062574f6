#!/usr/bin/env bash
# Builds the GGUF fuzz target with clang (libFuzzer + AddressSanitizer + UBSan) and runs it for
# a bounded time on a generated seed corpus.
#   tests/fuzz/run_gguf_fuzz.sh [SECONDS=30]
# Environment: CXX_FUZZ (default clang++-14, then clang++), GGUF_FUZZ_DIR (default build-fuzz),
# GGUF_FUZZ_JOBS (parallel compile jobs, default 2).
set -euo pipefail
secs="${1:-30}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${GGUF_FUZZ_DIR:-$root/build-fuzz}"
cxx="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}"
if [[ -z "$cxx" ]]; then
  echo "run_gguf_fuzz.sh: clang++ not found (install clang-14 and libclang-rt-14-dev)" >&2
  exit 1
fi
mkdir -p "$out/obj" "$out/corpus" "$out/crashes"
srcs=("$root"/local_backend/*.cpp "$root/core/error.cpp")
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I"$root")
san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)

# Library objects with sanitizers and fuzzer coverage, compiled in parallel (bounded jobs).
objs=()
pids=()
jobs_max="${GGUF_FUZZ_JOBS:-2}"
for s in "${srcs[@]}"; do
  o="$out/obj/$(basename "$(dirname "$s")")_$(basename "${s%.cpp}").o"
  objs+=("$o")
  if [[ ! -f "$o" || "$s" -nt "$o" || -n "$(find "$root/local_backend" -name '*.h' -newer "$o" -print -quit)" ]]; then
    "$cxx" "${flags[@]}" "${san[@]}" -fsanitize=fuzzer-no-link -c "$s" -o "$o" &
    pids+=($!)
    if (( ${#pids[@]} >= jobs_max )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done

"$cxx" "${flags[@]}" "${san[@]}" -fsanitize=fuzzer "$root/tests/fuzz/gguf_fuzz.cpp" "${objs[@]}" -lpthread -o "$out/gguf_fuzz"
"$cxx" "${flags[@]}" "${san[@]}" -DGGUF_FUZZ_SEEDS "$root/tests/fuzz/gguf_fuzz.cpp" "${objs[@]}" -lpthread -o "$out/gguf_fuzz_seeds"
"$out/gguf_fuzz_seeds" "$out/corpus"

cd "$out/crashes"
"$out/gguf_fuzz" -max_total_time="$secs" -max_len=131072 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 "$out/corpus"
