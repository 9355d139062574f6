#!/usr/bin/env bash
# Fetches a llama.cpp source snapshot and builds llama-bench and llama-quantize from it (CPU,
# Release, -DGGML_NATIVE=ON, no CURL). The snapshot is the git bundle that the npm package
# node-llama-cpp ships (llama/gitRelease.bundle, one squashed commit), so only the npm registry
# is needed. Nothing of it is kept in this repository. Sourced by compare.sh and
# quantized_load.sh; prints nothing on success but sets:
#   LLAMA_SRC, LLAMA_BUILD, LLAMA_BENCH, LLAMA_QUANTIZE, LLAMA_COMMIT, LLAMA_TAG
# Environment: LLAMA_CPP_CACHE (default ~/.cache/llm-gateway-bench/llama.cpp),
#   NODE_LLAMA_CPP_VERSION (default 3.22.1), LLAMA_JOBS (default 2).
set -euo pipefail
LLAMA_CPP_CACHE="${LLAMA_CPP_CACHE:-$HOME/.cache/llm-gateway-bench/llama.cpp}"
NODE_LLAMA_CPP_VERSION="${NODE_LLAMA_CPP_VERSION:-3.22.1}"
LLAMA_SRC="$LLAMA_CPP_CACHE/src"
# On a CPU with AMX, -march=native builds ggml's AMX path, whose matrix multiply crashed
# (SIGSEGV in ggml_backend_amx_mul_mat) on every model here (2-vCPU Intel Xeon VM with
# amx_tile/amx_int8/amx_bf16, snapshot de3ff815); it is compiled out, in a build directory of
# its own. LLAMA_AMX=1 keeps it.
LLAMA_NO_AMX_FLAGS=""
if [ "${LLAMA_AMX:-0}" != 1 ] && grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
  LLAMA_NO_AMX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  LLAMA_BUILD="$LLAMA_CPP_CACHE/build-noamx"
else
  LLAMA_BUILD="$LLAMA_CPP_CACHE/build"
fi
LLAMA_BENCH="$LLAMA_BUILD/bin/llama-bench"
LLAMA_QUANTIZE="$LLAMA_BUILD/bin/llama-quantize"

llama_fetch() {
  [ -d "$LLAMA_SRC/.git" ] && return 0
  local npm_dir="$LLAMA_CPP_CACHE/npm"
  mkdir -p "$npm_dir"
  local tgz
  tgz="$(cd "$npm_dir" && npm pack --silent "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" | tail -1)"
  tar -xzf "$npm_dir/$tgz" -C "$npm_dir" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  git -c advice.detachedHead=false clone --quiet "$npm_dir/package/llama/gitRelease.bundle" "$LLAMA_SRC"
  cp "$npm_dir/package/llama/llama.cpp.info.json" "$LLAMA_CPP_CACHE/info.json"
}

llama_build() {
  [ -x "$LLAMA_BENCH" ] && [ -x "$LLAMA_QUANTIZE" ] && return 0
  local t0=$SECONDS
  cmake -S "$LLAMA_SRC" -B "$LLAMA_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DBUILD_SHARED_LIBS=OFF -DCMAKE_C_FLAGS="$LLAMA_NO_AMX_FLAGS" -DCMAKE_CXX_FLAGS="$LLAMA_NO_AMX_FLAGS" \
    >"$LLAMA_CPP_CACHE/cmake.log" 2>&1 ||
    { echo "llama.cpp configure failed, see $LLAMA_CPP_CACHE/cmake.log" >&2; return 1; }
  cmake --build "$LLAMA_BUILD" -j"${LLAMA_JOBS:-2}" --target llama-bench llama-quantize >"$LLAMA_CPP_CACHE/build.log" 2>&1 ||
    { echo "llama.cpp build failed, see $LLAMA_CPP_CACHE/build.log" >&2; return 1; }
  echo "$((SECONDS - t0))" >"$LLAMA_CPP_CACHE/build_seconds"
}

llama_fetch
llama_build
LLAMA_COMMIT="$(git -C "$LLAMA_SRC" rev-parse --short=8 HEAD)"
LLAMA_TAG="$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$LLAMA_CPP_CACHE/info.json" 2>/dev/null || true)"
