#!/usr/bin/env bash
# Runs the whole mixq pipeline under valgrind memcheck and fails on any
# memory error or leak (of any kind, "still reachable" included):
#
#   convert (int4 and int8, sharded input) -> verify -> dump (table, --json,
#   --tensor) -> export and compare (when this mixq has them)
#
# then a few error paths (existing output, corrupt container, malformed
# input), which must fail with their documented exit codes and also be
# leak-free.
#
# Usage: scripts/valgrind-roundtrip.sh BUILD_DIR
# BUILD_DIR must hold a mixq built without sanitizers (valgrind and
# AddressSanitizer do not mix). Exit status: 0 clean, 1 a failure, 77 skipped
# (valgrind is not installed).
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mixq=$build/mixq
[ -x "$mixq" ] || { echo "valgrind-roundtrip: $mixq not found; build first" >&2; exit 1; }
if ! command -v valgrind >/dev/null; then
  echo "valgrind-roundtrip: valgrind is not installed; skipped" >&2
  exit 77
fi
if nm -an "$mixq" 2>/dev/null | grep -q '__asan_init'; then
  echo "valgrind-roundtrip: $mixq is built with AddressSanitizer; use a build without sanitizers" >&2
  exit 1
fi

input=$root/testdata/tiny-llama-sharded
work=$(mktemp -d "${TMPDIR:-/tmp}/mixq-valgrind-XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

# vg EXPECTED_EXIT LABEL ARGS... : runs mixq under memcheck. In the round
# trip (expected exit 0) a memcheck error or leak makes valgrind exit 1; on
# the error paths mixq's own exit codes include 1, so there valgrind exits 99.
# The ERROR SUMMARY line of the log is checked as well.
vg() {
  local want=$1 label=$2; shift 2
  local log=$work/vg-$(echo "$label" | tr -c 'a-zA-Z0-9' '_').log
  local rc=0 vgexit=1
  [ "$want" = 0 ] || vgexit=99
  valgrind --tool=memcheck --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
    --track-origins=yes --error-exitcode=$vgexit --log-file="$log" \
    "$mixq" "$@" >"$work/stdout" 2>"$work/stderr" || rc=$?
  local errors
  errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
  if { [ "$want" != 0 ] && [ "$rc" = 99 ]; } || [ "${errors:-1}" != 0 ]; then
    local kept=${TMPDIR:-/tmp}/$(basename "$log")
    cp "$log" "$kept" 2>/dev/null || kept=$log
    echo "FAIL  $label: memcheck found ${errors:-?} error(s); full log: $kept" >&2
    sed -n '/ERROR SUMMARY\|definitely\|indirectly\|possibly\|still reachable\|Invalid\|uninitialised/p' "$log" >&2
    failures=$((failures + 1))
  elif [ "$rc" != "$want" ]; then
    echo "FAIL  $label: exit $rc, expected $want" >&2
    cat "$work/stderr" >&2
    failures=$((failures + 1))
  else
    echo "ok    $label (exit $rc, 0 errors, 0 leaks)"
  fi
}

has_command() { "$mixq" "$1" --help >/dev/null 2>&1; }

# the round trip: exit 0 and a clean memcheck report required
for type in int4 int8; do
  out=$work/tiny-$type.mxq
  vg 0 "convert --type $type" convert "$input" -o "$out" --type "$type"
  vg 0 "verify ($type)" verify "$out"
  vg 0 "dump ($type)" dump "$out"
  vg 0 "dump --json ($type)" dump "$out" --json
  vg 0 "dump --tensor ($type)" dump "$out" --tensor model.layers.0.mlp.up_proj.weight
  if has_command export; then
    vg 0 "export ($type)" export "$out" -o "$work/back-$type.safetensors"
    vg 0 "convert the export back ($type)" convert "$work/back-$type.safetensors" -o "$work/again-$type.mxq" --type f32
  fi
  if has_command compare; then
    vg 0 "compare ($type)" compare "$input" "$out"
  fi
done

# error paths must free everything too
vg 3 "convert onto an existing output" convert "$input" -o "$work/tiny-int4.mxq"
cp "$work/tiny-int4.mxq" "$work/corrupt.mxq"
printf '\xff' | dd of="$work/corrupt.mxq" bs=1 seek=200 conv=notrunc status=none
vg 1 "verify a corrupt container" verify "$work/corrupt.mxq"
head -c 300 "$input/model-00001-of-00002.safetensors" >"$work/truncated.safetensors"
vg 1 "convert a truncated checkpoint" convert "$work/truncated.safetensors" -o "$work/never.mxq"
vg 2 "usage error" convert "$input" --type nonsense -o "$work/never.mxq"
if has_command export; then
  vg 1 "export a corrupt container" export "$work/corrupt.mxq" -o "$work/never.safetensors"
fi

if [ "$failures" != 0 ]; then
  echo "valgrind-roundtrip: $failures failure(s)" >&2
  exit 1
fi
echo "valgrind-roundtrip: all clean"
