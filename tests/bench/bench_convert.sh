#!/usr/bin/env bash
# bench_convert.sh - how fast `qpack convert` streams big checkpoints, and how
# much memory it needs. Prints markdown tables (docs/scale.md has results).
# Not a test.
#
#   tests/bench/bench_convert.sh [BUILD_DIR] [WORK_DIR]
#
# Environment: LAYERS="2 4" (layers of the Qwen3-235B-A22B-shaped synthetic
# checkpoints), TYPES="bf16 Q8_0 Q4_K_M", THREADS=2, PRESET=qwen3-235b-a22b,
# DTYPE=bf16 (or fp8: F8_E4M3 + block scales, as the Hub's -FP8 repos),
# FIXTURE_TYPES (default TYPES), SKIP_FIXTURE=1, SKIP_BIG=1.
#
# For each checkpoint: generate it (tests/bench/gen_checkpoint), read it
# cold with cat and with O_DIRECT dd (the disk's sequential speed), then
# convert it cold to every type with /usr/bin/time -v: wall, CPU, peak RSS,
# and the peak growth of the page cache (sampled from /proc/meminfo) while
# converting. Caches are dropped before each cold run when root may write
# /proc/sys/vm/drop_caches; otherwise the table says "warm?".
# WORK_DIR (default /work/qpack-bench) is removed at the end.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
WORK=${2:-/work/qpack-bench}
LAYERS=${LAYERS:-"2 4"}
TYPES=${TYPES:-"bf16 Q8_0 Q4_K_M"}
FIXTURE_TYPES=${FIXTURE_TYPES:-$TYPES}
THREADS=${THREADS:-2}
PRESET=${PRESET:-qwen3-235b-a22b}
DTYPE=${DTYPE:-bf16}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
QPACK=$BUILD/qpack
GEN=$BUILD/tests/bench/gen_checkpoint

[ -x "$QPACK" ] && [ -x "$GEN" ] || { echo "build qpack and gen_checkpoint in $BUILD first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
mkdir -p "$WORK"
trap 'kill "${SAMPLER:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

drop_caches() {
    sync
    if (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then COLD=cold; else COLD="warm?"; fi
}

cached_kb() { awk '/^Cached:/ {print $2}' /proc/meminfo; }

# Peak of (Cached - base) in KB while a command runs, into $WORK/cache.peak.
start_sampler() {
    local base=$1
    ( peak=0
      while :; do
          c=$(( $(cached_kb) - base ))
          [ $c -gt $peak ] && peak=$c && echo $peak > "$WORK/cache.peak"
          sleep 0.5
      done ) &
    SAMPLER=$!
}

stop_sampler() { kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=; }

# run_convert IN OUT TYPE THREADS BYTES -> one table row
run_convert() {
    local in=$1 out=$2 type=$3 thr=$4 bytes=$5
    drop_caches
    echo 0 > "$WORK/cache.peak"
    start_sampler "$(cached_kb)"
    /usr/bin/time -v -o "$WORK/time.txt" "$QPACK" convert "$in" -o "$out" --type "$type" -t "$thr" -q --force \
        > "$WORK/convert.out" 2>&1 || { stop_sampler; cat "$WORK/convert.out" >&2; return 1; }
    stop_sampler
    local wall user sys rss osize
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/time.txt")
    user=$(awk -F': ' '/User time/ {print $2}' "$WORK/time.txt")
    sys=$(awk -F': ' '/System time/ {print $2}' "$WORK/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
    osize=$(stat -c %s "$out")
    wall=$(echo "if ($wall < 0.01) 0.01 else $wall" | bc -l)
    printf '| %s | %s | %d | %.2f | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f | %s |\n' \
        "$(basename "$in")" "$type" "$thr" "$wall" "$user" "$sys" \
        "$(echo "$bytes / 1000000 / $wall" | bc -l)" "$(echo "$rss / 1024" | bc -l)" \
        "$(echo "$(cat "$WORK/cache.peak") / 1024" | bc -l)" "$(echo "$osize / 1000000" | bc -l)" "$COLD"
    rm -f "$out"
}

HEADER='| checkpoint | type | threads | wall s | user s | sys s | MB/s of input | peak RSS MB | peak page-cache growth MB | output MB | caches |
|---|---|---|---|---|---|---|---|---|---|---|'

echo "# qpack convert benchmark  ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo) RAM)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# Is Q4_K there yet? (quant/q4_k.c is written by another helper.)
if ! "$QPACK" convert "$SRC/tests/fixtures/models/qwen3-tiny" -o "$WORK/probe.gguf" --type Q4_K_M -q --force \
        > /dev/null 2>&1; then
    echo "Q4_K_M does not convert yet: measuring bf16 and Q8_0 only"
    TYPES=$(echo "$TYPES" | tr ' ' '\n' | grep -v Q4_K | tr '\n' ' ')
    FIXTURE_TYPES=$(echo "$FIXTURE_TYPES" | tr ' ' '\n' | grep -v Q4_K | tr '\n' ' ')
fi
rm -f "$WORK/probe.gguf"

if [ -z "${SKIP_FIXTURE:-}" ]; then
    FIX=$SRC/tests/fixtures/models/qwen3-moe-tiny
    FBYTES=$(cat "$FIX"/*.safetensors | wc -c)
    echo "## MoE fixture (qwen3-moe-tiny, $(echo "$FBYTES / 1000000" | bc) MB bf16) end to end"
    echo
    echo "$HEADER"
    for type in $FIXTURE_TYPES; do
        for thr in 1 2; do
            run_convert "$FIX" "$WORK/fixture.gguf" "$type" "$thr" "$FBYTES"
        done
    done
    echo
fi

[ -n "${SKIP_BIG:-}" ] && exit 0
for L in $LAYERS; do
    CK=$WORK/${PRESET}-${L}L-$DTYPE
    echo "## $PRESET shape, $L layers, $DTYPE (synthetic, tests/bench/gen_checkpoint)"
    echo
    echo '```'
    echo "df before: $(df -h "$WORK" | awk 'NR==2 {print $4 " free of " $2}')"
    "$GEN" --preset "$PRESET" --layers "$L" --dtype "$DTYPE" --shard-size 5G -t "$THREADS" --out "$CK"
    BYTES=$(cat "$CK"/*.safetensors | wc -c)
    drop_caches
    t0=$(date +%s.%N); cat "$CK"/*.safetensors > /dev/null; t1=$(date +%s.%N)
    printf 'cat > /dev/null (%s): %.1f s, %.0f MB/s\n' "$COLD" "$(echo "$t1 - $t0" | bc -l)" \
        "$(echo "$BYTES / 1000000 / ($t1 - $t0)" | bc -l)"
    t0=$(date +%s.%N)
    for f in "$CK"/*.safetensors; do dd if="$f" of=/dev/null bs=16M iflag=direct status=none; done
    t1=$(date +%s.%N)
    printf 'dd iflag=direct bs=16M: %.1f s, %.0f MB/s\n' "$(echo "$t1 - $t0" | bc -l)" \
        "$(echo "$BYTES / 1000000 / ($t1 - $t0)" | bc -l)"
    echo '```'
    echo
    echo "$HEADER"
    for type in $TYPES; do
        run_convert "$CK" "$WORK/big.gguf" "$type" "$THREADS" "$BYTES"
    done
    echo
    rm -rf "$CK"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
