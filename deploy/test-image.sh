#!/usr/bin/env bash
# Builds deploy/Dockerfile with podman and runs the image for real, then prints its figures.
#   1. Base image: Debian 12 from `debootstrap --variant=minbase bookworm`, imported with
#      `podman import` (no image registry is reachable here). Made once, reused after that
#      (REBUILD_BASE=1 makes it again).
#   2. The image: the Dockerfile's two stages on that base.
#   3. As shipped: /healthz, one chat request on the embedded default, then SIGTERM while a stream
#      is being answered: the stream ends with [DONE] and the gateway exits 0.
#   4. As deploy/k8s runs it: read-only root file system, user 10001, no capabilities, no new
#      privileges, deploy/k8s/base/gateway.yaml and policies/ mounted read-only where the ConfigMaps
#      go, a writable state folder: /readyz, a chat request, the SQLite ledger written, /admin/spend
#      with the admin key, SIGTERM, exit 0.
#   5. Fails when the image is larger than MAX_IMAGE_MB (default 200).
# Needs root, podman, runc, debootstrap and curl (apt-get install podman runc debootstrap curl).
# Not part of tests/run_all.sh: a first run downloads Debian and compiles the gateway (minutes).
#
# podman runs with runc and the cgroupfs manager, and without default ulimits: the default crun
# fails on this kernel's hybrid cgroups and on setting rlimits (CONTAINERS_CONF below).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
IMAGE=${IMAGE:-localhost/llm-gateway:latest}
BASE=${BASE_IMAGE:-localhost/debian-bookworm-minbase:latest}
MAX_IMAGE_MB=${MAX_IMAGE_MB:-200}
JOBS=${JOBS:-2}
WAIT_S=${WAIT_S:-120}

for tool in podman runc debootstrap curl; do
  command -v "$tool" >/dev/null || { echo "test-image: $tool is missing (apt-get install podman runc debootstrap curl)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "test-image: run as root (debootstrap and podman's storage)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/test-image.XXXXXX")
containers=()
cleanup() {
  for c in "${containers[@]}"; do "${PODMAN[@]}" rm -f "$c" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

export CONTAINERS_CONF=$WORK/containers.conf
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
EOF
PODMAN=(podman --runtime runc)   # an array, not a function: nice and timeout run it too
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
fail() { echo "test-image: FAIL: $*" >&2; exit 1; }
figures=()
figure() { figures+=("$(printf '%-34s %s' "$1" "$2")"); echo "test-image: $1 $2"; }

# ---- 1. base image ------------------------------------------------------------------------
if [ "${REBUILD_BASE:-0}" = 1 ] || ! "${PODMAN[@]}" image exists "$BASE"; then
  t0=$(now)
  # The mirror is debootstrap's default unless DEBIAN_MIRROR names one.
  nice -n 10 debootstrap --variant=minbase bookworm "$WORK/rootfs" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
  # The downloaded .deb files and package lists are not part of a base image (the Dockerfile's
  # stages run apt-get update themselves).
  rm -rf "$WORK/rootfs"/var/cache/apt/archives/*.deb "$WORK/rootfs"/var/lib/apt/lists/*
  tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
  figure "debootstrap + import (s):" "$(secs "$t0" "$(now)")"
else
  echo "test-image: reusing base image $BASE (REBUILD_BASE=1 to make it again)"
fi
base_bytes=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE")
figure "base image (MB):" "$((base_bytes / 1000000))"

# ---- 2. the image -------------------------------------------------------------------------
t0=$(now)
nice -n 10 "${PODMAN[@]}" build --pull=never --network host --build-arg BASE="$BASE" --build-arg JOBS="$JOBS" \
  -f deploy/Dockerfile -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; fail "podman build"; }
figure "image build (s):" "$(secs "$t0" "$(now)")"
image_bytes=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
figure "image size (MB):" "$((image_bytes / 1000000))"

# ---- helpers for a running container --------------------------------------------------------
# Starts a container (arguments: podman run options and image arguments) on the host network
# (the gateway listens on 127.0.0.1, port 0: the kernel picks a free one) and sets $cid and $url
# once the gateway says where it listens.
start() {
  cid=$("${PODMAN[@]}" run -d --network host "$@")
  containers+=("$cid")
  local waited=0 line
  url=
  while [ -z "$url" ]; do
    line=$("${PODMAN[@]}" logs "$cid" 2>&1 | grep -m1 '^gateway: listening on ' || true)
    url=${line#gateway: listening on }
    if [ -z "$url" ]; then
      [ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$cid")" = true ] || { "${PODMAN[@]}" logs "$cid" >&2; fail "the container exited before listening"; }
      [ "$waited" -lt $((WAIT_S * 10)) ] || { "${PODMAN[@]}" logs "$cid" >&2; fail "not listening within ${WAIT_S}s"; }
      sleep 0.1
      waited=$((waited + 1))
    fi
  done
}
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@"; }
chat() {
  curl -s --max-time 60 -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' "$url/v1/chat/completions" \
    -H 'content-type: application/json' -d '{"model":"auto","max_tokens":8,"messages":[{"role":"user","content":"Hello"}]}'
}
# SIGTERM, then the exit status, bounded by WAIT_S.
stop_with_term() {
  "${PODMAN[@]}" kill --signal TERM "$cid" >/dev/null
  local rc
  rc=$(timeout "$WAIT_S" "${PODMAN[@]}" wait "$cid") || fail "no exit within ${WAIT_S}s of SIGTERM"
  echo "$rc"
}

# ---- 3. as shipped ----------------------------------------------------------------------------
t0=$(now)
start "$IMAGE" --listen 127.0.0.1:0
[ "$(status_of "$url/healthz")" = 200 ] || fail "/healthz"
figure "start to listening (s):" "$(secs "$t0" "$(now)")"
t0=$(now)
code=$(chat)
[ "$code" = 200 ] || { cat "$WORK/body" >&2; fail "chat request answered $code"; }
grep -qi '^x-gateway-deployment: local@self/qwen3moe-demo' "$WORK/headers" || fail "chat not served by the embedded engine"
figure "first chat request (s):" "$(secs "$t0" "$(now)")"

# A stream in flight when SIGTERM arrives is finished by the drain.
curl -sN --max-time 60 "$url/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"local","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"Tell me a story"}]}' >"$WORK/stream" &
stream_pid=$!
for _ in $(seq 1 $((WAIT_S * 10))); do grep -q '^data: ' "$WORK/stream" && break; sleep 0.1; done
grep -q '^data: ' "$WORK/stream" || fail "the stream sent nothing"
t0=$(now)
rc=$(stop_with_term)
figure "SIGTERM to exit (s):" "$(secs "$t0" "$(now)")"
wait "$stream_pid" || fail "the stream's client failed"
[ "$rc" = 0 ] || { "${PODMAN[@]}" logs "$cid" | tail -20 >&2; fail "exit status $rc after SIGTERM"; }
tail -n 3 "$WORK/stream" | grep -q '^data: \[DONE\]' || fail "the stream in flight did not end with [DONE]"
echo "test-image: as shipped: healthz, chat, stream drained, exit 0"

# ---- 4. as deploy/k8s runs it ---------------------------------------------------------------
state=$WORK/state
mkdir -p "$state"
chown 10001:10001 "$state"
admin_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
start --read-only --tmpfs /tmp --user 10001:10001 --cap-drop ALL --security-opt no-new-privileges \
  -v "$ROOT/deploy/k8s/base/gateway.yaml:/etc/gateway/config/gateway.yaml:ro" \
  -v "$ROOT/policies:/etc/gateway/policies:ro" -v "$state:/var/lib/gateway" \
  -e GATEWAY_ADMIN_KEY="$admin_key" \
  --entrypoint /usr/local/bin/gateway "$IMAGE" serve --config /etc/gateway/config/gateway.yaml --listen 127.0.0.1:0
[ "$(status_of "$url/readyz")" = 200 ] || fail "/readyz (pod settings)"
code=$(chat)
[ "$code" = 200 ] || { cat "$WORK/body" >&2; fail "chat request answered $code (pod settings)"; }
[ -s "$state/ledger.sqlite" ] || fail "no SQLite ledger in the state volume"
[ "$(status_of "$url/admin/spend")" = 401 ] || fail "/admin/spend without the admin key is not 401"
[ "$(status_of -H "authorization: Bearer $admin_key" "$url/admin/spend")" = 200 ] || fail "/admin/spend with the admin key"
rc=$(stop_with_term)
[ "$rc" = 0 ] || { "${PODMAN[@]}" logs "$cid" | tail -20 >&2; fail "exit status $rc after SIGTERM (pod settings)"; }
echo "test-image: as deploy/k8s runs it: read-only root, uid 10001, readyz, chat, ledger, admin key, exit 0"

# ---- 5. size --------------------------------------------------------------------------------
[ "$((image_bytes / 1000000))" -le "$MAX_IMAGE_MB" ] || fail "image is $((image_bytes / 1000000)) MB, more than MAX_IMAGE_MB=$MAX_IMAGE_MB"
echo "test-image: figures"
printf '  %s\n' "${figures[@]}"
echo "test-image: passed"
