#!/usr/bin/env bash
# Fuzz smoke run (docs/FUZZING.md): builds the libFuzzer targets with clang
# (ASan + UBSan) in build-fuzz/ and runs each one for FUZZ_SECONDS (default
# 30; the three tokenizer targets 20: about 210 s in all) on a copy of its checked-in seed corpus.  Exits non-zero on any crash,
# leak, sanitizer report, timeout or out-of-memory; the reproducer is left in
# the printed directory.  The checked-in corpus is never modified.
#
#   bash scripts/fuzz-smoke.sh            # all targets
#   FUZZ_SECONDS=5 bash scripts/fuzz-smoke.sh st_index
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(st_header st_index container plan_file json_fast tok_spm tok_json tok_ids)

# Largest input per target (the seeds fit; see docs/FUZZING.md); a target not
# listed gets 16384.
declare -A max_len=([st_header]=16384 [st_index]=4096 [container]=8192 [plan_file]=4096 [json_fast]=16384
  [tok_spm]=8192 [tok_json]=8192 [tok_ids]=1024)
# Seconds per target when FUZZ_SECONDS is not set (the tokenizer targets are shorter).
declare -A default_seconds=([tok_spm]=20 [tok_json]=20 [tok_ids]=20)

if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing clang and libclang-rt-14-dev"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
  else
    echo "fuzz-smoke: clang with the libFuzzer runtime is missing (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
  fi
fi

echo "== building the fuzz targets (clang, libFuzzer, ASan + UBSan) in build-fuzz"
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
else
  meson configure build-fuzz -Dfuzz=true >/dev/null
fi
ninja -C build-fuzz "${targets[@]/#/tests/fuzz/fuzz_}" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/mixq-fuzz-smoke.XXXXXX")
status=0
for t in "${targets[@]}"; do
  seconds=${FUZZ_SECONDS:-${default_seconds[$t]:-30}}
  mkdir -p "$work/$t/artifacts"
  cp -r "tests/fuzz/corpus/$t" "$work/$t/corpus"
  echo "== fuzz_$t: ${seconds} s on a copy of tests/fuzz/corpus/$t"
  extra=()
  [ -f "tests/fuzz/dict/$t.dict" ] && extra+=(-dict="$root/tests/fuzz/dict/$t.dict")
  rc=0
  (cd "$work/$t" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$root/build-fuzz/tests/fuzz/fuzz_$t" corpus \
      -max_total_time="$seconds" -max_len="${max_len[$t]:-16384}" -timeout=10 -rss_limit_mb=2048 \
      "${extra[@]}" -print_final_stats=1 -artifact_prefix=artifacts/ \
      >log.txt 2>&1) || rc=$?
  # The last status line: "#N DONE cov: C ft: F corp: K/S exec/s: R rss: M".
  last=$(grep -E '^#[0-9]+' "$work/$t/log.txt" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log.txt")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t/log.txt")
  echo "   execs: ${execs:-?}  exec/s: ${rate:-?}  ${last#* }"
  if [ "$rc" != 0 ] || ls "$work/$t/artifacts/"* >/dev/null 2>&1; then
    echo "fuzz_$t FAILED (exit $rc); log and reproducer in $work/$t:" >&2
    grep -E 'ERROR|SUMMARY|runtime error|check failed|Test unit written' "$work/$t/log.txt" | head -n 20 >&2 || true
    echo "   turn it into a regression input: see docs/FUZZING.md" >&2
    status=1
  fi
done
if [ "$status" = 0 ]; then
  rm -rf "$work"
  echo "== fuzz smoke: no findings"
fi
exit "$status"
