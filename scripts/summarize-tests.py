#!/usr/bin/env python3
"""Prints one closing line "N passed, N failed, N skipped" for meson test logs.

usage: summarize-tests.py [--expect-models] TESTLOG.json...

Counts individual Criterion tests (the tests run with --verbose, so each test
prints a [PASS]/[FAIL]/[SKIP] line; the "Synthesis" line gives passing and
failing counts, and skipped tests are the [SKIP] lines, which "Tested" does not
include), the checks of plain-C test programs that end with a
"NAME: N passed, M failed" line (tests/kernel_check.c), and, for programs that
print neither, the program itself (meson's SKIP result, exit 77, is a skip).
Every skip is listed with its reason.  With --expect-models (CI, where
../shared/models exists), a test skipped because the shared models are absent
is a failure: those tests must run there.
"""
import json
import re
import sys

args = sys.argv[1:]
expect_models = "--expect-models" in args
args = [a for a in args if a != "--expect-models"]
passed = failed = skipped = 0
skips = []
for path in args:
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            out = rec.get("stdout", "") + (rec.get("stderr") or "")
            m = re.search(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)", out)
            # plain-C checkers (tests/kernel_check.c) end with "NAME: N passed, M failed"
            p = re.search(r"^[\w.-]+: (\d+) passed, (\d+) failed$", out, re.M)
            if not m and p:
                ok, fail = map(int, p.groups())
                passed += ok
                failed += fail
                if rec["result"] not in ("OK", "SKIP") and fail == 0:
                    failed += 1
            elif m:
                tested, ok, fail, crash = map(int, m.groups())
                passed += ok
                failed += fail + crash
                for s in re.findall(r"^\[SKIP\] (.*)$", out, re.M):
                    skipped += 1
                    skips.append(s.strip())
                if rec["result"] not in ("OK", "SKIP") and fail + crash == 0:
                    failed += 1
            elif rec["result"] == "OK":
                passed += 1
                for s in re.findall(r"^golden outputs: .*?(\d+) skipped", out, re.M):
                    if int(s):
                        skips.append("%s: %s model runs skipped" % (rec["name"], s))
            elif rec["result"] == "SKIP":
                skipped += 1
                skips.append("%s: %s" % (rec["name"], (out.strip().splitlines() or ["exit 77"])[-1]))
            else:
                failed += 1
for s in skips:
    print("skipped:", s)
if expect_models:
    missing = [s for s in skips if "shared/models" in s or "model runs skipped" in s]
    for s in missing:
        print("FAIL: the shared models are present but this test skipped:", s)
    failed += len(missing)
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
