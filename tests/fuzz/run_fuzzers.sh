#!/usr/bin/env bash
# Run the libFuzzer targets one after another, each for SECONDS, at the
# lowest CPU priority and with one job (the machine is shared).
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS [target...]
# BUILD_DIR is a build configured with CC=clang -DQP_FUZZ=ON -DQP_SANITIZE=ON.
# Corpora grow in BUILD_DIR/fuzz-corpus/<target> (seeded by make_seeds.sh),
# crashes land in BUILD_DIR/fuzz-artifacts/<target>/, logs and the final
# exec counts in BUILD_DIR/fuzz-logs/<target>.log.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS [target...]}"
secs="${2:?usage: run_fuzzers.sh BUILD_DIR SECONDS [target...]}"
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(st_header st_index gguf gguf_vocab tok_spec hf_config tokenizer imatrix)
fi
"$here/make_seeds.sh" "$build" "$build/fuzz-seeds" >/dev/null || exit 1
mkdir -p "$build/fuzz-logs"
status=0
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t"
  art="$build/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$art"
  cp -n "$build/fuzz-seeds/$t"/* "$corpus/" 2>/dev/null || true
  maxlen=()
  # Inputs the size of the fixture vocabularies make each run slow: mutate
  # smaller ones (libFuzzer truncates larger seeds to the limit).
  case "$t" in
    gguf_vocab|tokenizer) maxlen=(-max_len=65536) ;;
    tok_spec) maxlen=(-max_len=16384) ;;
  esac
  echo "== fuzz_$t for ${secs}s"
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    nice -n 19 "$build/tests/fuzz/fuzz_$t" "$corpus" "${maxlen[@]}" \
      -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$art/" >"$build/fuzz-logs/$t.log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$build/fuzz-logs/$t.log" | awk '{print $2}')
  echo "   exit $rc, ${runs:-?} executions, corpus $(ls "$corpus" | wc -l) files"
  [ $rc -eq 0 ] || status=1
done
exit $status
