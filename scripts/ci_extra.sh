#!/usr/bin/env bash
# Extra checks run by scripts/test.sh after the release and ASan builds:
#   1. ThreadSanitizer build, tests labelled "threads" (not the "slow" ones:
#      full-text oracle runs take too long under TSan);
#   2. valgrind memcheck of one small convert (qwen3-tiny -> Q8_0) and of a
#      2-chunk perplexity run on it (skipped when `qpack ppl` is missing);
#   3. the fuzz regression inputs and seed corpora replayed under ASan+UBSan.
# Each step fails the script on any report. About 5-8 minutes on 2 cores
# (the valgrind ppl run is ~70 s of CPU: 1024 tokens through the forward pass).
#   QP_BUILD=build QP_ASAN_BUILD=build-asan scripts/ci_extra.sh
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
rel="${QP_BUILD:-build}"
asan="${QP_ASAN_BUILD:-build-asan}"
tsan="${QP_TSAN_BUILD:-build-tsan}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qpack-ci-extra.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "== ThreadSanitizer build"
cmake -S . -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQP_TSAN=ON >/dev/null
cmake --build "$tsan" -j "$jobs"
echo "== ThreadSanitizer tests (label threads, not slow)"
(cd "$tsan" && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
   ctest --output-on-failure -j "$jobs" -L threads -LE slow)

echo "== valgrind memcheck: convert qwen3-tiny -> Q8_0"
command -v valgrind >/dev/null || { echo "valgrind is not installed (scripts/deps.sh)" >&2; exit 1; }
cmake -S . -B "$rel" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$rel" -j "$jobs" --target qpack
# (add --track-origins=yes by hand to see where an uninitialised value came
# from; it slows the ppl run by a third)
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --quiet)
"${vg[@]}" "$rel/qpack" convert tests/fixtures/models/qwen3-tiny -o "$tmp/q8.gguf" --type Q8_0 -q
"$rel/qpack" verify "$tmp/q8.gguf" -q
if "$rel/qpack" ppl --help >/dev/null 2>&1; then
  echo "== valgrind memcheck: 2-chunk perplexity"
  "${vg[@]}" "$rel/qpack" ppl "$tmp/q8.gguf" --text tests/fixtures/text/eval.txt --chunks 2
else
  echo "== valgrind memcheck: qpack ppl not available, skipped"
fi

echo "== fuzz regression replay under ASan+UBSan"
cmake -S . -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQP_SANITIZE=ON >/dev/null
cmake --build "$asan" -j "$jobs" --target fuzz_replay_test_fuzz_replay
(cd "$asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -R '^fuzz_replay_')
echo "== ci_extra: all passed"
