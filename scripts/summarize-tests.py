#!/usr/bin/env python3
"""Prints one closing line "N passed, N failed, N skipped" for meson test logs.

Counts individual Criterion tests (from each test program's "Synthesis" line),
the checks of plain-C test programs that end with a "NAME: N passed, M failed"
line (tests/kernel_check.c), and, for programs that print neither, the program
itself.
"""
import json
import re
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
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
                skipped += tested - ok - fail - crash
                if rec["result"] not in ("OK", "SKIP") and fail + crash == 0:
                    failed += 1
            elif rec["result"] == "OK":
                passed += 1
            elif rec["result"] == "SKIP":
                skipped += 1
            else:
                failed += 1
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
