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

# require_tools <script name> <tool>...: exits 2 naming the first tool missing.
require_tools() {
  local who="$1"; shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$who: '$tool' is required (Debian package)" >&2; exit 2; }
  done
}

# render <template> <output> KEY=VALUE...: the template with each @KEY@ replaced.
render() {
  local in="$1" out="$2"; shift 2
  local sedargs=()
  for kv in "$@"; do sedargs+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
  sed "${sedargs[@]}" "$in" >"$out"
}

# gateway_url <gateway stdout file>: prints the URL the gateway says it listens on, waiting up to
# 10 s; prints nothing when it never says.
gateway_url() {
  local url=""
  for _ in $(seq 1 100); do
    url="$(sed -n 's#.*gateway: listening on \(https\?://[^ ]*\).*#\1#p' "$1" | head -1)"
    [[ -n "$url" ]] && break
    sleep 0.1
  done
  echo "$url"
}

# one_worker_gateway_yaml <file> <upstream port>: a gateway with one worker and no access log, in
# front of the fake upstream on that port: alias "bench" (plain answers under /v1) and
# "bench-stream" (streamed answers under /stream/v1, where the upstream serves them).
one_worker_gateway_yaml() {
  cat >"$1" <<YAML
server:
  listen: "127.0.0.1:0"
  workers: 1
  access_log: "off"
upstream:
  max_attempts: 1
providers:
  fake:
    type: openai_compatible
    base_url: "http://127.0.0.1:$2/v1"
  fakestream:
    type: openai_compatible
    base_url: "http://127.0.0.1:$2/stream/v1"
models:
  bench: ["fake/bench-model"]
  bench-stream: ["fakestream/bench-model"]
YAML
}
