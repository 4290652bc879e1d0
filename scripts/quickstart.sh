#!/usr/bin/env bash
# Install dependencies, build qpack, convert the bundled tiny Qwen3 model to
# Q4_K_M and print its perplexity on the bundled evaluation text.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build >/dev/null
mkdir -p out
build/qpack convert tests/fixtures/models/qwen3-tiny -o out/qwen3-tiny-Q4_K_M.gguf --type Q4_K_M --force
build/qpack inspect out/qwen3-tiny-Q4_K_M.gguf | tail -n 1
build/qpack verify out/qwen3-tiny-Q4_K_M.gguf
build/qpack ppl out/qwen3-tiny-Q4_K_M.gguf --text tests/fixtures/text/eval.txt --chunks 20
