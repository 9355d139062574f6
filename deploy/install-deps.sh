#!/usr/bin/env bash
# Installs every build, run and test dependency from Debian's packages and the npm registry.
# Idempotent: a second run on a prepared machine does nothing but check.
# `install-deps.sh build` installs only what building the gateway needs (deploy/Dockerfile's build
# stage: no test tools, servers or Node.js in the image build).
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev libssl-dev openssl ca-certificates
  libsimdjson-dev libyaml-cpp-dev prometheus-cpp-dev
  libsqlite3-dev libhiredis-dev libpq-dev
)
if [ "${1:-}" != build ]; then
  PKGS+=(
    libgtest-dev libgmock-dev libbenchmark-dev
    sqlite3 postgresql postgresql-client
    prometheus redis-server nginx wrk
    clang libclang-rt-14-dev
    curl
    chromium fonts-liberation
  )
  # Node.js + npm (for the OpenAI SDK tests): use the machine's if present, else Debian's.
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian nginx/redis/prometheus packages start system services on install;
  # the project runs its own instances on loopback, so stop the system ones if they started.
  for svc in nginx redis-server prometheus postgresql; do
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true; fi
    command -v service >/dev/null 2>&1 && $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi
echo "install-deps: all Debian packages present"
