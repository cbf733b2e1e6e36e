#!/usr/bin/env bash
# make_eval_tokens.sh - the evaluation token files of bench_budget_kld.py
# (docs/QUALITY.md, "Monotonicity and the default weighting").  Never run by
# the test suite.
#
#   bash bench/make_eval_tokens.sh OUT_DIR [BUILD_DIR] [SAMPLES]
#
# Writes into OUT_DIR:
#   tiny-llama-6l.tok   ../shared/models/eval-text.txt tokenized with
#                       tiny-llama-6l's tokenizer.model (sentencepiece, no BOS;
#                       needs /usr/bin/python3 with sentencepiece); evaluate at
#                       --ctx 256.
#   baby-llama-105.tok  the same text with baby-llama-105's tokenizer (105
#                       pieces; characters it lacks map to its unknown id);
#                       evaluate at --ctx 256 (its max_position_embeddings).
#                       `mixq eval --text eval-text.txt` gives the same tokens.
#   stories260k.tok     stories260k has no tokenizer, so its text is its own:
#                       SAMPLES (default 200) continuations of a BOS-only
#                       prompt sampled from the F32 checkpoint with
#                       `mixq run --temp 1 --seed S --ignore-eos --print-ids`,
#                       S = 1..SAMPLES; each stops at max_position_embeddings
#                       (512 positions).  Each sample is written as BOS (id 1)
#                       followed by its first 511 tokens, so that with
#                       --ctx 512 every eval chunk is exactly one sample in the
#                       context it was drawn in.
set -euo pipefail
out=${1:?usage: make_eval_tokens.sh OUT_DIR [BUILD_DIR] [SAMPLES]}
cd "$(dirname "$0")/.."
build=${2:-build}
samples=${3:-200}
models=../shared/models
mkdir -p "$out"
for m in tiny-llama-6l baby-llama-105; do
    /usr/bin/python3 - "$models/$m/tokenizer.model" "$models/eval-text.txt" "$out/$m.tok" <<'PY'
import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
ids = sp.encode(open(sys.argv[2], encoding="utf-8").read())
open(sys.argv[3], "w").write(" ".join(map(str, ids)))
print("%s: %d tokens" % (sys.argv[3], len(ids)))
PY
done
s=$models/stories260k
: > "$out/stories260k.tok.part"
prompt=$(mktemp "${TMPDIR:-/tmp}/mixq-bos.XXXXXX")
trap 'rm -f "$prompt"' EXIT
: > "$prompt"
for seed in $(seq 1 "$samples"); do
    ids=$("$build/mixq" run "$s/model.safetensors" --tokens "$prompt" --temp 1 --seed "$seed" \
              --ignore-eos --print-ids -n 512 -j 1)
    set -- $ids
    if [ $# -lt 511 ]; then echo "seed $seed: only $# tokens" >&2; exit 1; fi
    echo "1 ${*:1:511}" >> "$out/stories260k.tok.part"
done
mv "$out/stories260k.tok.part" "$out/stories260k.tok"
echo "$out/stories260k.tok: $samples samples, $(wc -w < "$out/stories260k.tok") tokens"
