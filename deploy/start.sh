#!/usr/bin/env bash
# Installs what is needed, builds, and starts the gateway on its default configuration
# (deploy/gateway.yaml, http://127.0.0.1:8080). Works with no API key set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
# A first build skips tests and benchmarks (faster); an existing build folder keeps its configuration
# (tests/run_all.sh's included).
[ -f build/CMakeCache.txt ] ||
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGATEWAY_BUILD_TESTS=OFF -DGATEWAY_BUILD_BENCH=OFF
cmake --build build -j"${JOBS:-2}" --target gateway gguf-make-test-model
# The embedded default needs a model file; make the small demo one if none is there.
mkdir -p var
[ -f var/demo-qwen3moe.gguf ] || ./build/local_backend/gguf-make-test-model --out var/demo-qwen3moe.gguf

# Echoes the gateway's output and, once it says where it listens, how to reach it.
announce() {
  local line url
  while IFS= read -r line; do
    printf '%s\n' "$line"
    case $line in
      "gateway: listening on "*)
        url=${line#gateway: listening on }
        printf '\nGateway ready at %s\n' "$url"
        printf 'Try it:\n  curl -s %s/v1/chat/completions -H '"'"'content-type: application/json'"'"' \\\n' "$url"
        printf '    -d '"'"'{"model":"auto","messages":[{"role":"user","content":"Hello"}]}'"'"'\n'
        printf 'Metrics: %s/metrics   Health: %s/healthz\n\n' "$url" "$url"
        ;;
    esac
  done
}

./build/gateway/gateway serve --config "${GATEWAY_CONFIG:-deploy/gateway.yaml}" "$@" > >(announce) &
pid=$!
# Signals go to the gateway: TERM/INT drain and stop it, HUP reloads its policy.
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
trap 'kill -HUP "$pid" 2>/dev/null' HUP
status=0
while :; do
  status=0
  wait "$pid" || status=$?
  kill -0 "$pid" 2>/dev/null || break
done
exit "$status"
