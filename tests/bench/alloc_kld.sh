#!/usr/bin/env bash
# alloc_kld.sh - KL divergence versus size: every K preset (with the
# importance matrix) against size-targeted allocation (--target-bpw) at each
# preset's bits per weight and a few more budgets, on the fixture models.
# Prints a markdown table (docs/quantization.md, "Size-targeted
# allocation", has the results). Not a test; rerun it after quantizer changes.
#
#   tests/bench/alloc_kld.sh [BUILD_DIR] [WORK_DIR]
#
# Environment: MODELS="qwen3-tiny qwen3-moe-tiny", CHUNKS=60 (eval chunks of
# 512 per ppl run; eval.txt has 243), THREADS=2, EXTRA_BPW="3.0 3.5 4.0 4.5"
# (budgets besides the presets'), PRESETS (default the eight below),
# KEEP=1 keeps WORK_DIR (default a temporary directory).
#
# Per model: `qpack calibrate --sensitivity` once on text/calib.txt (never on
# eval.txt), then convert and `qpack ppl OUT --base MODEL --text eval.txt`.
# bytes is the file size; bpw = 8 * tensor bytes / elements (all tensors,
# as llama.cpp reports); KLD is mean KLD(base || quantized) ± its standard
# error over the scored tokens. The last lines say, per preset, whether the
# allocation at that preset's bpw has the lower KLD.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
WORK=${2:-$(mktemp -d /tmp/alloc-kld.XXXXXX)}
MODELS=${MODELS:-"qwen3-tiny qwen3-moe-tiny"}
CHUNKS=${CHUNKS:-60}
THREADS=${THREADS:-2}
EXTRA_BPW=${EXTRA_BPW:-"3.0 3.5 4.0 4.5"}
PRESETS=${PRESETS:-"Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_M Q6_K"}
QPACK="$BUILD/qpack"
CALIB="$SRC/tests/fixtures/text/calib.txt"
EVAL="$SRC/tests/fixtures/text/eval.txt"
mkdir -p "$WORK"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

# bpw of a conversion (dry run): "total: N tensor bytes, X MB, B bits per weight"
dry_bpw() { "$QPACK" convert "$@" --dry-run 2>/dev/null | sed -n 's/^total: .*, \([0-9.]*\) bits per weight$/\1/p'; }

# "PPL|KLD|ERR" of a GGUF against the model
measure() {
    "$QPACK" ppl "$1" --base "$2" --text "$EVAL" -t "$THREADS" --chunks "$CHUNKS" --json -q 2>/dev/null |
        python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.4f|%.6f|%.6f" % (j["ppl"], j["kld_mean"]["value"], j["kld_mean"]["stderr"]))'
}

ROWS="$WORK/rows.txt"
: > "$ROWS"
echo "| model | recipe | bytes | bpw | PPL | mean KLD ± err |"
echo "|---|---|---:|---:|---:|---|"
for m in $MODELS; do
    MODEL="$SRC/tests/fixtures/models/$m"
    IMAT="$WORK/$m-imatrix.gguf"
    "$QPACK" calibrate "$MODEL" --text "$CALIB" -o "$IMAT" -t "$THREADS" --sensitivity -q > "$WORK/$m-calib.txt"
    declare -A PBPW=()
    run() { # recipe-label out.gguf convert-args...
        local label=$1 out=$2
        shift 2
        "$QPACK" convert "$MODEL" -o "$out" --imatrix "$IMAT" -t "$THREADS" -q --force "$@" > /dev/null 2>&1
        local bpw bytes r
        bpw=$(dry_bpw "$MODEL" --imatrix "$IMAT" "$@")
        bytes=$(stat -c %s "$out")
        r=$(measure "$out" "$MODEL")
        IFS='|' read -r ppl kld err <<< "$r"
        echo "| $m | $label | $bytes | $bpw | $ppl | $kld ± $err |"
        echo "$m|$label|$bpw|$kld" >> "$ROWS"
        rm -f "$out"
    }
    for p in $PRESETS; do
        run "$p" "$WORK/$m-$p.gguf" --type "$p"
        PBPW[$p]=$(dry_bpw "$MODEL" --imatrix "$IMAT" --type "$p")
    done
    for b in $(for p in $PRESETS; do echo "${PBPW[$p]}"; done; echo $EXTRA_BPW); do
        run "target-bpw $b" "$WORK/$m-t$b.gguf" --target-bpw "$b"
    done
    unset PBPW
done
echo
# A preset's point is beaten when the allocation at its bpw has lower KLD.
python3 - "$ROWS" <<'PY'
import sys
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
for m in dict.fromkeys(r[0] for r in rows):
    pre = [r for r in rows if r[0] == m and not r[1].startswith("target")]
    tgt = {r[1].split()[1]: float(r[3]) for r in rows if r[0] == m and r[1].startswith("target")}
    out = []
    for _, name, bpw, kld in pre:
        t = tgt.get(bpw)
        out.append("%s %s" % (name, "beaten" if t is not None and t < float(kld) else "NOT beaten"))
    print("%s: %s" % (m, ", ".join(out)))
PY
