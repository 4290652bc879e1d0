#!/bin/sh
# render_report.sh - render the quantization report of the MoE fixture in
# headless Chromium to a PNG (docs/report.png by default).
#
#   tests/render_report.sh [OUT.png]
#
# Steps: convert tests/fixtures/models/qwen3-moe-tiny to Q4_K_M with the
# fixture's importance matrix (and to Q8_0 for comparison), run
# `qpack ppl --base --json` on both (PPL_CHUNKS chunks of text/eval.txt),
# write the report (`qpack report --model --source --imatrix --ppl --ppl`)
# and take a screenshot. Skips with a message (exit 0) when Chromium is not
# installed (Debian: apt-get install chromium).
#
# Environment: QPACK (the qpack binary; default build/qpack, else the first
# build-*/qpack found), PPL_CHUNKS (default 8; 0 skips the perplexity runs),
# REPORT_WIDTH / REPORT_HEIGHT (window size, default 1200 x 4000: the whole
# page), KEEP=1 keeps the work directory (report.html is there).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/docs/report.png}
case "$OUT" in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
PPL_CHUNKS=${PPL_CHUNKS:-8}
WIDTH=${REPORT_WIDTH:-1200}
HEIGHT=${REPORT_HEIGHT:-4000}

CHROME=""
for c in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$c" >/dev/null 2>&1; then
        CHROME=$c
        break
    fi
done
if [ -z "$CHROME" ]; then
    echo "render_report: Chromium not found (apt-get install chromium); skipping the screenshot"
    exit 0
fi

if [ -z "${QPACK:-}" ]; then
    QPACK=$ROOT/build/qpack
    if [ ! -x "$QPACK" ]; then
        for q in "$ROOT"/build-*/qpack; do
            if [ -x "$q" ]; then
                QPACK=$q
                break
            fi
        done
    fi
fi
if [ ! -x "$QPACK" ]; then
    echo "render_report: no qpack binary (build it, or set QPACK=path/to/qpack)" >&2
    exit 1
fi

# Inputs by paths relative to the repository: that is how the report shows them.
cd "$ROOT"
FIX=tests/fixtures
SRC=$FIX/models/qwen3-moe-tiny
IMATRIX=$FIX/ggml-vectors/imatrix-calib-moe.gguf
WORK=$(mktemp -d)
PROFILE=$(mktemp -d)
cleanup() {
    rm -rf "$PROFILE"
    if [ "${KEEP:-0}" = 1 ]; then
        echo "render_report: work files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT INT TERM

echo "render_report: converting $SRC (Q4_K_M with the importance matrix, and Q8_0)"
"$QPACK" convert "$SRC" -o "$WORK/qwen3-moe-tiny-Q4_K_M.gguf" --type Q4_K_M --imatrix "$IMATRIX" -q
"$QPACK" convert "$SRC" -o "$WORK/qwen3-moe-tiny-Q8_0.gguf" --type Q8_0 -q

PPL_ARGS=""
if [ "$PPL_CHUNKS" -gt 0 ]; then
    for t in Q4_K_M Q8_0; do
        echo "render_report: perplexity of $t against the bf16 base ($PPL_CHUNKS chunks of eval.txt)"
        "$QPACK" ppl "$WORK/qwen3-moe-tiny-$t.gguf" --text "$FIX/text/eval.txt" --base "$SRC" \
            --chunks "$PPL_CHUNKS" --json -q >"$WORK/ppl-$t.json"
        PPL_ARGS="$PPL_ARGS --ppl $WORK/ppl-$t.json"
    done
fi

# shellcheck disable=SC2086 # PPL_ARGS is a list of options
"$QPACK" report -o "$WORK/report.html" --model "$WORK/qwen3-moe-tiny-Q4_K_M.gguf" --source "$SRC" \
    --imatrix "$IMATRIX" $PPL_ARGS -q

if command -v xmllint >/dev/null 2>&1; then
    xmllint --noout "$WORK/report.html"
fi

mkdir -p "$(dirname "$OUT")"
echo "render_report: screenshot with $CHROME (${WIDTH}x${HEIGHT})"
"$CHROME" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --disable-sync --no-first-run --hide-scrollbars --user-data-dir="$PROFILE" --screenshot="$OUT" \
    --window-size="$WIDTH,$HEIGHT" "file://$WORK/report.html" >"$WORK/chromium.log" 2>&1 || {
    cat "$WORK/chromium.log" >&2
    echo "render_report: Chromium failed" >&2
    exit 1
}
if [ ! -s "$OUT" ]; then
    cat "$WORK/chromium.log" >&2
    echo "render_report: Chromium wrote no screenshot" >&2
    exit 1
fi
echo "render_report: wrote $OUT"
