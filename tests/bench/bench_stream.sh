#!/usr/bin/env bash
# bench_stream.sh - in-memory vs layer-streamed `qpack ppl` and `qpack
# calibrate`: wall time and peak RSS (/usr/bin/time -v), and whether the
# results agree. Prints a markdown table (docs/perplexity.md and
# docs/calibration.md quote it). Not a test.
#
#   tests/bench/bench_stream.sh [BUILD_DIR] [WORK_DIR]
#
# Environment: THREADS=2, CHUNKS=40 (ppl on eval.txt, -c 512), SYNTH=1 also
# runs a synthetic Qwen3-30B-A3B-shaped model (4 layers x 16 experts, vocab
# 8192, from tests/bench/gen_checkpoint; ~0.8 GB, converted to a bf16 GGUF).
# WORK_DIR (default /tmp/qpack-bench-stream) is removed at the end.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
WORK=${2:-/tmp/qpack-bench-stream}
THREADS=${THREADS:-2}
CHUNKS=${CHUNKS:-40}
SYNTH=${SYNTH:-1}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
QPACK=$BUILD/qpack
FIX=$SRC/tests/fixtures

[ -x "$QPACK" ] || { echo "build qpack in $BUILD first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

# run LABEL OUTFILE CMD...: one table row; stdout of CMD goes to OUTFILE
run() {
    local label=$1 out=$2
    shift 2
    /usr/bin/time -v "$@" >"$out" 2>"$WORK/time.txt"
    local wall rss
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
    printf '| %s | %s | %d MiB |\n' "$label" "$wall" $((rss / 1024))
}

same() { cmp -s "$1" "$2" && echo "identical" || echo "DIFFERENT"; }

echo "| run | wall | peak RSS |"
echo "| --- | --- | --- |"
M=$FIX/models/qwen3-moe-tiny
P="ppl $M --text $FIX/text/eval.txt --chunks $CHUNKS -t $THREADS -q"
run "moe-tiny ppl, in memory" "$WORK/p0" $QPACK $P
run "moe-tiny ppl --stream" "$WORK/p1" $QPACK $P --stream
run "moe-tiny ppl --stream --spill-limit 0" "$WORK/p2" $QPACK $P --stream --spill-limit 0 --tmpdir "$WORK"
C="calibrate $M --text $FIX/text/calib.txt -t $THREADS -q"
run "moe-tiny calibrate, in memory" /dev/null $QPACK $C -o "$WORK/c0.gguf"
run "moe-tiny calibrate --stream" /dev/null $QPACK $C -o "$WORK/c1.gguf" --stream
run "moe-tiny calibrate --stream --spill-limit 0" /dev/null $QPACK $C -o "$WORK/c2.gguf" --stream --spill-limit 0 \
    --tmpdir "$WORK"
echo
echo "ppl output: stream $(same "$WORK/p0" "$WORK/p1"), spilled $(same "$WORK/p0" "$WORK/p2");" \
     "imatrix: stream $(same "$WORK/c0.gguf" "$WORK/c1.gguf"), spilled $(same "$WORK/c0.gguf" "$WORK/c2.gguf")"

if [ "$SYNTH" = 1 ]; then
    "$BUILD/tests/bench/gen_checkpoint" --preset qwen3-30b-a3b --layers 4 --experts 16 --vocab 8192 \
        --out "$WORK/syn" -t "$THREADS" >/dev/null
    $QPACK convert "$WORK/syn" -o "$WORK/syn.gguf" --type bf16 -t "$THREADS" -q >/dev/null
    echo
    echo "| run (synthetic 30B-A3B shape, 4 layers x 16 experts) | wall | peak RSS |"
    echo "| --- | --- | --- |"
    S="ppl $WORK/syn.gguf --text $FIX/text/eval.txt -c 256 --chunks 4 -t $THREADS -q"
    run "bf16 GGUF ppl, in memory" "$WORK/s0" $QPACK $S
    run "bf16 GGUF ppl --stream" "$WORK/s1" $QPACK $S --stream
    K="calibrate $WORK/syn --text $FIX/text/calib.txt -c 256 --chunks 8 -t $THREADS -q"
    run "HF dir calibrate, in memory" /dev/null $QPACK $K -o "$WORK/k0.gguf"
    run "HF dir calibrate --stream" /dev/null $QPACK $K -o "$WORK/k1.gguf" --stream
    echo
    echo "ppl output: $(same "$WORK/s0" "$WORK/s1"); imatrix: $(same "$WORK/k0.gguf" "$WORK/k1.gguf")"
fi
