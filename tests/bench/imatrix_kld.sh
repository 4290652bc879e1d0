#!/bin/sh
# imatrix_kld.sh - the quality table of docs/calibration.md ("Quality"):
# KLD on eval.txt of qwen3-moe-tiny for Q4_K_M, Q3_K_M and Q2_K with
#   (a) no importance matrix
#   (b) our routed imatrix, experts under 256 tokens uniform (llama.cpp's way)
#   (c) our imatrix with the coverage pass (qpack calibrate's default)
#   (d) (c) + covariance error feedback (convert --covariance)
#   (e) llama.cpp's own imatrix file (tests/fixtures/ggml-vectors/imatrix-calib-moe.gguf)
#   (f) (b) + covariance from routed tokens only (no coverage fill anywhere)
# plus paired per-token differences (tests/bench/paired_kld.c) and file sizes.
# Calibration uses calib.txt only; evaluation eval.txt only (243 chunks).
#
#   tests/bench/imatrix_kld.sh BUILD_DIR [WORK_DIR] [PRESETS...]
# Takes about 30 minutes on 2 threads. A benchmark, not a test.
set -eu
BUILD=${1:?usage: imatrix_kld.sh BUILD_DIR [WORK_DIR] [PRESETS...]}
WORK=${2:-/tmp/qpack-imatrix-kld}
shift; [ $# -gt 0 ] && shift
PRESETS=${*:-Q4_K_M Q3_K_M Q2_K}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
Q=$BUILD/qpack
M=$ROOT/tests/fixtures/models/qwen3-moe-tiny
CAL=$ROOT/tests/fixtures/text/calib.txt
EVAL=$ROOT/tests/fixtures/text/eval.txt
LLAMA_IMAT=$ROOT/tests/fixtures/ggml-vectors/imatrix-calib-moe.gguf
T=${THREADS:-2}
mkdir -p "$WORK"

# llama.cpp's mean KLD with its own imatrix (the issue's reference numbers)
ref() { case $1 in Q4_K_M) echo 0.01686;; Q3_K_M) echo 0.04296;; Q2_K) echo 0.16647;; *) echo nan;; esac; }

[ -f "$WORK/imat.gguf" ] || "$Q" calibrate "$M" --text "$CAL" -o "$WORK/imat.gguf" --covariance "$WORK/cov.gguf" -t "$T" -q >/dev/null
[ -f "$WORK/imat-routed.gguf" ] || "$Q" calibrate "$M" --text "$CAL" -o "$WORK/imat-routed.gguf" --covariance "$WORK/cov-routed.gguf" --min-expert-tokens 0 -t "$T" -q >/dev/null
[ -f "$WORK/imat-uniform.gguf" ] || "$BUILD/tests/bench/imatrix_uniform" "$WORK/imat-routed.gguf" "$WORK/imat-uniform.gguf" 256 >/dev/null

run() { # preset row convert-args...
    p=$1 r=$2; shift 2
    out=$WORK/$p-$r.gguf
    "$Q" convert "$M" -o "$out" --type "$p" -t "$T" -q --force "$@" >/dev/null 2>&1
    "$Q" ppl "$out" --base "$M" --text "$EVAL" -t "$T" -q --save-token-kld "$WORK/$p-$r.kld" 2>/dev/null |
        awk '/^Mean    KLD/ {print $3, $5}' > "$WORK/$p-$r.mean"
    stat -c %s "$out" > "$WORK/$p-$r.size"
}

for p in $PRESETS; do
    run "$p" a
    run "$p" b --imatrix "$WORK/imat-uniform.gguf"
    run "$p" c --imatrix "$WORK/imat.gguf"
    run "$p" d --imatrix "$WORK/imat.gguf" --covariance "$WORK/cov.gguf"
    run "$p" e --imatrix "$LLAMA_IMAT"
    run "$p" f --imatrix "$WORK/imat-uniform.gguf" --covariance "$WORK/cov-routed.gguf"
done

PK=$BUILD/tests/bench/paired_kld
echo "| preset | (a) none | (b) uniform experts | (c) coverage | (d) (c)+covariance | (e) llama.cpp imatrix | llama.cpp | (d)/llama.cpp | bytes (a..e) |"
echo "|---|---|---|---|---|---|---|---|---|"
for p in $PRESETS; do
    line="| $p"
    for r in a b c d e; do line="$line | $(awk '{printf "%.5f ± %.5f", $1, $2}' "$WORK/$p-$r.mean")"; done
    d=$(awk '{print $1}' "$WORK/$p-d.mean")
    sizes=$(for r in a b c d e; do cat "$WORK/$p-$r.size"; done | sort -u | tr '\n' ' ')
    echo "$line | $(ref "$p") | $(awk -v d="$d" -v r="$(ref "$p")" 'BEGIN {printf "%.3f", d / r}') | $sizes|"
done
echo
echo "Paired per-token differences (mean ± standard error of the mean difference):"
for p in $PRESETS; do
    for pair in "d a" "d b" "d c" "c b" "d e" "d f"; do
        set -- $pair
        printf '%s %s-%s: ' "$p" "$1" "$2"
        "$PK" "$WORK/$p-$1.kld" "$WORK/$p-$2.kld" "$1" "$2" | tail -n 1
    done
done
