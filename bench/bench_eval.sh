#!/usr/bin/env bash
# bench_eval.sh - prompt throughput of `mixq eval` (docs/PERFORMANCE.md, "Running models").
# Never run by the test suite.
#
#   bash bench/bench_eval.sh [BUILD_DIR] [THREADS]
#
# For tiny-llama-6l (../shared/models; BF16 source, int8 and int4_dq
# containers) and the generated 0.72 GB LLaMA-shaped BF16 checkpoint (built by
# bench_convert --generate-only; F16/BF16 source, int8, int4_dq), runs
# `mixq eval --ctx 256` with THREADS threads (default 2) and prints tokens per
# second of wall time (every token of every chunk is processed, as llama.cpp's
# perplexity tool counts them), the CPU time and the peak RSS, and the size of
# the weights, so that the memory beyond the mapped weights can be read off.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
threads=${2:-2}
mixq=$build/mixq
models=../shared/models
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mixq-bench-eval.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
text=$models/eval-text.txt

row() { # label model chunks [eval args...]
    local label=$1 model=$2 chunks=$3
    shift 3
    local out
    out=$( { /usr/bin/time -f '%e %U %S %M' "$mixq" eval "$model" --ctx 256 --chunks "$chunks" -j "$threads" \
               --json "$@" >/dev/null; } 2>&1 | tail -1)
    read -r wall user sys rss <<<"$out"
    local size
    size=$(du -sbL "$model" | cut -f1)
    awk -v l="$label" -v c="$chunks" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v sz="$size" 'BEGIN {
        t = c * 256; printf "%-34s %7d %8.2f %9.0f %8.2f %9.1f %9.1f\n", l, t, w, t / w, u + s, r / 1024, sz / 1048576 }'
}

printf '%-34s %7s %8s %9s %8s %9s %9s\n' "model" "tokens" "wall s" "tokens/s" "CPU s" "RSS MiB" "size MiB"
if [ -f "$models/tiny-llama-6l/model.safetensors" ]; then
    m=$models/tiny-llama-6l
    "$mixq" convert "$m" -o "$tmp/tl-int8.mxq" --type int8 --quiet
    "$mixq" convert "$m" -o "$tmp/tl-int4_dq.mxq" --type int4_dq --quiet
    row "tiny-llama-6l BF16 (checkpoint)" "$m" 60 --text "$text"
    row "tiny-llama-6l int8" "$tmp/tl-int8.mxq" 60 --text "$text" --config "$m"
    row "tiny-llama-6l int4_dq" "$tmp/tl-int4_dq.mxq" 60 --text "$text" --config "$m"
fi
"$build/bench/bench_convert" --generate-only "$tmp/gen" >/dev/null
# random token ids inside the generated checkpoint's vocabulary (it has no tokenizer)
vocab=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$tmp/gen/config.json")
python3 -c "import random,sys; random.seed(1); print(' '.join(str(random.randrange(int(sys.argv[1]))) for _ in range(256*8)))" \
    "$vocab" > "$tmp/gen.tok"
"$mixq" convert "$tmp/gen" -o "$tmp/gen-f16.mxq" --type f16 --quiet
"$mixq" convert "$tmp/gen" -o "$tmp/gen-int8.mxq" --type int8 --quiet
"$mixq" convert "$tmp/gen" -o "$tmp/gen-int4_dq.mxq" --type int4_dq --quiet
row "generated 0.72 GB BF16 (checkpoint)" "$tmp/gen" 4 --tokens "$tmp/gen.tok"
row "generated f16" "$tmp/gen-f16.mxq" 4 --tokens "$tmp/gen.tok" --config "$tmp/gen"
row "generated int8" "$tmp/gen-int8.mxq" 4 --tokens "$tmp/gen.tok" --config "$tmp/gen"
row "generated int4_dq" "$tmp/gen-int4_dq.mxq" 4 --tokens "$tmp/gen.tok" --config "$tmp/gen"
