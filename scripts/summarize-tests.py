#!/usr/bin/env python3
"""Prints one closing line "N passed, N failed, N skipped" for meson test logs.

Counts individual Criterion tests (from each test program's "Synthesis" line)
and, for programs that print none, the program itself.
"""
import json
import re
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            m = re.search(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)",
                          rec.get("stdout", "") + (rec.get("stderr") or ""))
            if m:
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
