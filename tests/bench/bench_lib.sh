# Shared by the benchmark scripts (sourced): a temporary directory, processes stopped on exit, ports.
# Set BENCH_NAME before sourcing; KEEP_TMP=1 keeps the directory.
TMP="$(mktemp -d "/tmp/${BENCH_NAME:-bench}.XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ "${KEEP_TMP:-0}" != 1 ]]; then rm -rf "$TMP"; else echo "kept $TMP"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
