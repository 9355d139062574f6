#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries the given binaries load, one a line
# (deploy/Dockerfile installs exactly these in the runtime image, so a new library dependency needs
# no edit there). Fails when a library belongs to no package: the image would not run.
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
for bin in "$@"; do
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u | while read -r lib; do
  # dpkg knows each file under the path its package shipped, /lib or /usr/lib (merged /usr).
  pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null ||
        dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null) ||
    { echo "runtime-packages: no Debian package holds $lib" >&2; exit 1; }
  echo "${pkg%%:*}"
done | sort -u
