#!/usr/bin/env bash
# Installs what is needed, builds, and starts the gateway on its default configuration
# (deploy/gateway.yaml, http://127.0.0.1:8080). Works with no API key set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGATEWAY_BUILD_TESTS=OFF -DGATEWAY_BUILD_BENCH=OFF
cmake --build build -j"${JOBS:-2}" --target gateway gguf-make-test-model
# The embedded default needs a model file; make the small demo one if none is there.
mkdir -p var
[ -f var/demo-qwen3moe.gguf ] || ./build/local_backend/gguf-make-test-model --out var/demo-qwen3moe.gguf
exec ./build/gateway/gateway serve --config "${GATEWAY_CONFIG:-deploy/gateway.yaml}" "$@"
