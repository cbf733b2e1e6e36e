#!/usr/bin/env bash
# Installs what mixq needs (as root on Debian 12), builds it, converts the
# bundled example checkpoint in testdata/ to int4 and dumps the result.
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
