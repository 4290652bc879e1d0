#!/bin/sh
# setup.sh - install the interop test dependency (llama.cpp through the npm
# package node-llama-cpp, prebuilt CPU binaries only) into
# tests/interop/node_modules.
#
# Contract with the tests (tests/support/interop.c):
#   - always exits 0 and prints one line saying what happened;
#   - on success leaves .setup-ok (content: fingerprint of package.json and
#     package-lock.json, so a changed pin triggers a reinstall);
#   - when node/npm is missing or the install fails leaves .setup-unavailable
#     whose first line is the reason, so the tests skip instead of failing.
# Idempotent: a second run with nothing changed is a no-op (~50 ms).
#
# Why these npm flags:
#   --ignore-scripts  node-llama-cpp's postinstall would probe the machine and
#                     may try to download llama.cpp sources or build with cmake;
#                     we only ever use the prebuilt binary (build: "never").
#   --omit=optional   node-llama-cpp lists every platform's prebuilt (CUDA and
#                     Vulkan ones are hundreds of MB) as optional; we pin the
#                     CPU linux-x64 one as a regular dependency instead.
set -u

here=$(cd "$(dirname "$0")" && pwd)
ok="$here/.setup-ok"
unavail="$here/.setup-unavailable"

unavailable() {
    rm -f "$ok"
    printf '%s\n' "$1" > "$unavail" 2>/dev/null || true
    echo "interop setup: unavailable: $1"
    exit 0
}

command -v node >/dev/null 2>&1 || unavailable "node not found in PATH"
command -v npm >/dev/null 2>&1 || unavailable "npm not found in PATH"

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "${node_major:-0}" -ge 20 ] 2>/dev/null ||
    unavailable "node >= 20 required (found $(node --version 2>/dev/null || echo none))"

# Serialize concurrent runs (ctest -j starts several interop tests at once).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$here/.setup.lock" || unavailable "cannot create $here/.setup.lock"
    flock 9
fi

fingerprint=$(cat "$here/package.json" "$here/package-lock.json" 2>/dev/null | cksum | cut -d' ' -f1)
addon="$here/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node"

if [ -f "$ok" ] && [ "$(cat "$ok")" = "$fingerprint" ] && [ -f "$addon" ] &&
   [ -f "$here/node_modules/node-llama-cpp/package.json" ]; then
    echo "interop setup: up to date"
    exit 0
fi

rm -f "$ok" "$unavail"
log="$here/.npm-install.log"
start=$(date +%s)
# `npm install --no-save` rather than `npm ci`: it takes the versions from the
# committed package-lock.json without rewriting it, and unlike `npm ci` it does
# not insist that the lock lists every other platform's optional prebuilt
# (npm 11 leaves those out of a lock written on Linux, and `npm ci` then
# refuses with EUSAGE "Missing: @node-llama-cpp/mac-x64@ from lock file").
# NODE_LLAMA_CPP_SKIP_DOWNLOAD: belt and braces should scripts run anyway.
# Bounded time: without a registry npm would otherwise retry every package
# with back-off for many minutes (a cold install takes ~10 s).
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout 600"
if ! (cd "$here" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true $limit npm install --no-save \
        --ignore-scripts --omit=optional --no-audit --no-fund --prefer-offline \
        --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000 \
        --fetch-timeout=60000 --loglevel=error) > "$log" 2>&1; then
    reason=$(grep -v 'Unknown user config' "$log" | grep -m1 -i 'err' || true)
    unavailable "npm install failed (${reason:-see $log})"
fi
[ -f "$addon" ] || unavailable "npm install succeeded but $addon is missing"
rm -f "$log"
printf '%s\n' "$fingerprint" > "$ok"
echo "interop setup: installed node-llama-cpp in $(( $(date +%s) - start )) s"
exit 0
