#!/usr/bin/env bash
# Writes the golden containers of format v1 into testdata/golden/.  They were
# made once, by mixq 0.1.0; later versions must keep loading them
# (tests/test_golden.c), so do not regenerate them unless the format's major
# version changes.
set -euo pipefail
cd "$(dirname "$0")/.."
mixq=${1:-build/mixq}
"$mixq" convert testdata/tiny-llama-bf16 -o testdata/golden/v1-int4-g64.mxq --type int4 --group-size 64 --force --quiet
"$mixq" convert testdata/tiny-llama-f16 -o testdata/golden/v1-int8-row.mxq --type int8 --group-size row \
  --quantize-1d --force --quiet
