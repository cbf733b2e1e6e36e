#!/usr/bin/env bash
# Installs what mixq needs (as root on Debian 12), builds it, converts the
# bundled example checkpoint in testdata/ to int4, dumps the result and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    build-essential meson ninja-build pkg-config zlib1g-dev libjansson-dev libxxhash-dev libpcre2-dev libcriterion-dev >/dev/null
fi
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
out=build/tiny-llama-int4.mxq
./build/mixq convert testdata/tiny-llama-bf16 -o "$out" --type int4 --force
./build/mixq verify "$out"
./build/mixq dump "$out"
# Run the converted example (its weights are random and it has no tokenizer:
# the prompt is given as token ids): KL divergence against the source, then a
# greedy continuation.
printf '1 5 9 13 17 21 25 29 33 37 41 45 49 53 57 61 65 69 73 77 81 85 89 93\n' > build/demo-prompt.tok
./build/mixq eval "$out" --config testdata/tiny-llama-bf16 --tokens build/demo-prompt.tok --ctx 8 \
  --base testdata/tiny-llama-bf16
./build/mixq run "$out" --config testdata/tiny-llama-bf16 --tokens build/demo-prompt.tok --print-ids -n 16
# With the shared models beside the project, a real model and its tokenizer.
if [ -d ../shared/models/tiny-llama-6l ]; then
  ./build/mixq convert ../shared/models/tiny-llama-6l -o build/tiny-llama-6l-int4_dq.mxq --type int4_dq --force --quiet
  ./build/mixq run build/tiny-llama-6l-int4_dq.mxq --config ../shared/models/tiny-llama-6l \
    --prompt "The quick brown fox" -n 32
fi
