#!/usr/bin/env bash
# AddressSanitizer + UBSan build of the gateway and the unit tests, then the unit tests and the
# Node.js integration suite against the sanitized binary. Not part of the default test command
# (it doubles the build time on 2 cores); run it before releases and after risky changes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGATEWAY_SANITIZE=ON -DGATEWAY_BUILD_BENCH=OFF
cmake --build build-asan -j"${JOBS:-2}" --target gateway gw_unit_tests gguf-make-test-model
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
./build-asan/tests/gw_unit_tests
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/node && GATEWAY_BIN="$PWD/../../build-asan/gateway/gateway" \
   GGUF_TOOL="$PWD/../../build-asan/local_backend/gguf-make-test-model" \
   node --test --test-concurrency=1 --test-timeout=180000)
echo "sanitizers: clean"
