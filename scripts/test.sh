#!/usr/bin/env bash
# The whole test suite: release build with every test (oracle checks on the
# full texts, llama.cpp interop), then an ASan+UBSan build running the
# tests labelled "fast" (small inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
echo "== release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
tests/interop/setup.sh || true
echo "== release tests"
(cd build && ctest --output-on-failure -j "$jobs")
echo "== sanitizer build (ASan+UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQP_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
echo "== sanitizer tests (label fast)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j "$jobs" -L fast)
echo "== extra checks: ThreadSanitizer, valgrind, fuzz regressions"
QP_BUILD=build QP_ASAN_BUILD=build-asan scripts/ci_extra.sh
