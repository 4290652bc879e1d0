#!/usr/bin/env bash
# Install qpack's build and test dependencies from Debian/Ubuntu packages.
# Runs as root, or through sudo when available. Quiet when all are present.
set -euo pipefail
PKGS="build-essential cmake ninja-build pkg-config zlib1g-dev libzstd-dev libcjson-dev
      libxxhash-dev libcmocka-dev libpcre2-dev libutf8proc-dev nodejs npm parallel libxml2-utils clang valgrind"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
# node/npm may come from elsewhere (nodesource, nvm): accept working binaries.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
missing=$(echo "$missing" | xargs)
[ -z "$missing" ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing: $missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
