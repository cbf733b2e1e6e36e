#!/usr/bin/env python3
"""Converts the bundled example and the shared models with every type and the
budget strategy, and checks each output's SHA-256 against
tests/golden-outputs.txt (written by an earlier mixq, so a refactoring that
changes a single output byte fails here).

usage: check_golden_outputs.py MIXQ SOURCE_ROOT [--write FILE]
Exit 77 (skip) only if nothing could be checked; lines whose model is absent
(../shared/models on a machine without it) are counted and reported as skipped.
"""
import hashlib, os, subprocess, sys, tempfile

TYPES = ["int8", "int4", "int4s", "int2", "int6_dq", "int4_dq", "int3_dq", "int2_dq",
         "fp8_e4m3", "fp8_e5m2", "f16", "bf16", "f32", "nl4", "nl4_dq", "cb4_dq", "cb3_dq", "cb2_dq"]
MODELS = ["testdata/tiny-llama-bf16", "../shared/models/tiny-llama-6l",
          "../shared/models/baby-llama-105", "../shared/models/stories260k"]
# (label, extra options) of every conversion per model
RUNS = [("type=" + t, ["--type", t]) for t in TYPES] + [
    ("type=int4 rtn", ["--type", "int4", "--rtn"]),
    ("type=int8 g=row 1d", ["--type", "int8", "--group-size", "row", "--quantize-1d"]),
    ("budget bpw=4.5", ["--target-bpw", "4.5"]),
    ("budget bpw=3 flat", ["--target-bpw", "3", "--weights", "flat"]),
]


def run_all(mixq, root):
    out, skipped = {}, 0
    with tempfile.TemporaryDirectory() as tmp:
        for model in MODELS:
            src = os.path.normpath(os.path.join(root, model))
            if not os.path.isdir(src):
                skipped += len(RUNS)
                continue
            for label, opts in RUNS:
                dst = os.path.join(tmp, "out.mxq")
                r = subprocess.run([mixq, "convert", src, "-o", dst, "--force", "--quiet", "-j", "2"] + opts,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    sys.exit("convert %s %s failed: %s" % (model, label, r.stderr.strip()))
                with open(dst, "rb") as f:
                    out["%s | %s" % (model, label)] = hashlib.sha256(f.read()).hexdigest()
    return out, skipped


def main():
    mixq, root = sys.argv[1], sys.argv[2]
    got, skipped = run_all(mixq, root)
    if len(sys.argv) > 4 and sys.argv[3] == "--write":
        with open(sys.argv[4], "w") as f:
            for k in sorted(got):
                f.write("%s | %s\n" % (k, got[k]))
        return 0
    want = {}
    with open(os.path.join(root, "tests", "golden-outputs.txt")) as f:
        for line in f:
            k, _, h = line.strip().rpartition(" | ")
            want[k] = h
    bad = [k for k in got if want.get(k) != got[k]]
    for k in bad:
        print("DIFFERS: %s (want %s, got %s)" % (k, want.get(k, "no golden line"), got[k]))
    print("golden outputs: %d identical, %d differ, %d skipped (model absent)" %
          (len(got) - len(bad), len(bad), skipped))
    if bad:
        return 1
    return 77 if not got else 0


if __name__ == "__main__":
    sys.exit(main())
