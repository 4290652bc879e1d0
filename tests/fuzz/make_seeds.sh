#!/usr/bin/env bash
# Write the fuzz seed corpora, one directory per target, from the fixtures
# and the crafting helpers (tests/support/fuzz_seeds.c).
#   tests/fuzz/make_seeds.sh BUILD_DIR [OUT_DIR]    (default OUT_DIR: BUILD_DIR/fuzz-seeds)
# BUILD_DIR is a fuzz build (CC=clang -DQP_FUZZ=ON); its qp_fuzz_seedgen is
# rebuilt first.
set -euo pipefail
build="${1:?usage: make_seeds.sh BUILD_DIR [OUT_DIR]}"
out="${2:-$build/fuzz-seeds}"
gen="$build/tests/fuzz/qp_fuzz_seedgen"
if ! cmake --build "$build" --target qp_fuzz_seedgen >/dev/null 2>&1; then
  [ -x "$gen" ] || { echo "make_seeds.sh: cannot build qp_fuzz_seedgen in $build" >&2; exit 1; }
  echo "make_seeds.sh: rebuild failed, using the existing qp_fuzz_seedgen" >&2
fi
"$gen" "$out"
