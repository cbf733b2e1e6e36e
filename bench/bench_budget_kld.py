#!/usr/bin/env python3
"""bench_budget_kld.py - KL divergence of budget plans across targets and weightings.

Never run by the test suite (docs/QUALITY.md, "Monotonicity and the default
weighting").  For one model it converts a budget plan
(`mixq convert --strategy budget`) at every target and for every variant
(a planner weighting or any set of convert options), evaluates each with
`mixq eval --base <checkpoint> --json`, and prints

  - per variant: target, file bytes, KLD and its standard error, and every
    inversion (a larger budget with a higher KLD) that exceeds the noise;
  - the variants side by side, with the geometric mean of each one's KLD
    ratio to the first variant and its count of wins;
  - optionally uniform types (`--uniform int8,int4_dq,...`) at their own file
    sizes, and (`--at-uniform`) every variant's budget plan with the uniform
    file's size as its target.

Noise.  All files are evaluated on the same tokens, so two of them are
compared chunk by chunk: d_c = KLD_c(A) - KLD_c(B) for each chunk c (the
per-chunk means `mixq eval --json` lists), and the difference of the means
is significant when |mean(d)| > SIGMA * sd(d) / sqrt(chunks) (default
SIGMA 2).  This paired error is much smaller than either mean's own
standard error (chunk-to-chunk variation of the text cancels out).  An
inversion is flagged for every pair of targets t1 < t2 (not only
neighbours) with KLD(t2) > KLD(t1) beyond that bound; inversions within the
noise are counted separately.

Examples (eval token files: bench/make_eval_tokens.sh):

  bench/bench_budget_kld.py ../shared/models/tiny-llama-6l --tokens tok/tiny-llama-6l.tok \\
      --ctx 256 --chunks 40 --variant role='--weights role' --variant flat='--weights flat'
  bench/bench_budget_kld.py ../shared/models/stories260k --tokens tok/stories260k.tok --ctx 512 \\
      --chunks 40 --bpw 2.75:8.5:0.5 --uniform int8,int6_dq,int4_dq,int4,int3_dq,int2_dq --at-uniform

Results are cached in --cache (default bench-budget-kld.json in the current
directory), keyed by the exact convert and eval command lines, so an
interrupted run resumes and a second report costs nothing.  The cache does
not notice a rebuilt mixq: delete it after changing the planner.
"""
import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile


def frange(spec):
    a, b, s = (float(x) for x in spec.split(":"))
    out, i = [], 0
    while a + i * s <= b + 1e-9:
        out.append(round(a + i * s, 6))
        i += 1
    return out


class Bench:
    def __init__(self, args):
        self.a = args
        self.model = args.model.rstrip("/")
        self.ckpt = os.path.join(self.model, "model.safetensors")
        self.cache_path = args.cache
        self.cache = {}
        if os.path.exists(self.cache_path):
            with open(self.cache_path) as f:
                self.cache = json.load(f)
        self.tmp = tempfile.mkdtemp(prefix="mixq-bkld.")

    def save(self):
        part = self.cache_path + ".part"
        with open(part, "w") as f:
            json.dump(self.cache, f, indent=0, sort_keys=True)
        os.replace(part, self.cache_path)

    def eval_args(self):
        a = self.a
        src = ["--tokens", a.tokens] if a.tokens else ["--text", a.text]
        return src + ["--ctx", str(a.ctx), "--chunks", str(a.chunks)]

    def run(self, convert_opts):
        """Converts with convert_opts and evaluates; returns {bytes, kld, stderr, chunks} (cached)."""
        conv = [self.a.mixq, "convert", self.ckpt, "-o", "OUT", "--quiet", "-j", str(self.a.jobs)] + convert_opts
        ev = [self.a.mixq, "eval", "OUT", "--config", self.model, "--base", self.ckpt, "--json",
              "-j", str(self.a.jobs)] + self.eval_args()
        key = " ".join(map(shlex.quote, conv)) + " | " + " ".join(map(shlex.quote, ev))
        if key in self.cache:
            return self.cache[key]
        out = os.path.join(self.tmp, "x.mxq")
        sub = lambda c: [out if x == "OUT" else x for x in c]
        r = subprocess.run(sub(conv), capture_output=True, text=True)
        if r.returncode != 0:
            res = {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "exit %d" % r.returncode}
        else:
            size = os.path.getsize(out)
            r = subprocess.run(sub(ev), capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit("eval failed: %s\n%s" % (" ".join(sub(ev)), r.stderr))
            j = json.loads(r.stdout)
            res = {"bytes": size, "kld": j["kld"]["mean"], "stderr": j["kld"]["stderr"],
                   "chunks": j["kld"]["chunks"], "ppl": j["perplexity"]}
            os.remove(out)
        self.cache[key] = res
        self.save()
        if not self.a.quiet:
            print("  %-60s %s" % (" ".join(convert_opts)[:60],
                                  res.get("error") or "%d B  KLD %.6g" % (res["bytes"], res["kld"])),
                  file=sys.stderr, flush=True)
        return res


def paired(x, y):
    """Mean and standard error of the per-chunk differences x - y."""
    d = [a - b for a, b in zip(x["chunks"], y["chunks"])]
    n = len(d)
    m = sum(d) / n
    se = math.sqrt(sum((v - m) ** 2 for v in d) / (n - 1) / n) if n > 1 else 0.0
    return m, se


def fmt_k(v):
    return "%.4g" % v if v >= 1e-4 else "%.3e" % v


def target_label(t):
    kind, v = t
    return ("%g bpw" % v) if kind == "bpw" else ("%d B" % v)


def target_opts(t):
    kind, v = t
    return ["--target-bpw", "%g" % v] if kind == "bpw" else ["--target-size", "%d" % v]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="checkpoint folder (model.safetensors, config.json)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--tokens", help="eval token file")
    g.add_argument("--text", help="eval text (the model's tokenizer)")
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--chunks", type=int, default=40)
    p.add_argument("--variant", action="append", default=[], metavar="LABEL='OPTIONS'",
                   help="convert options of a variant, e.g. flat='--weights flat' (repeatable; "
                        "default: role and flat); the first is the reference of the ratios")
    p.add_argument("--bpw", default=None, help="FROM:TO:STEP of --target-bpw (default 2.5:8.5:0.25)")
    p.add_argument("--sizes", default=None, help="comma-separated --target-size values (bytes)")
    p.add_argument("--uniform", default="", help="comma-separated uniform types (--type T) to compare")
    p.add_argument("--at-uniform", action="store_true",
                   help="also plan every variant at each uniform type's file size")
    p.add_argument("--sigma", type=float, default=2.0, help="inversion threshold in paired standard errors")
    p.add_argument("--mixq", default="build/mixq")
    p.add_argument("-j", "--jobs", type=int, default=2, help="threads of convert and eval (default 2)")
    p.add_argument("--cache", default="bench-budget-kld.json")
    p.add_argument("--json", help="write every result here")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()

    variants = []
    for v in a.variant or ["role=--weights role", "flat=--weights flat"]:
        label, _, opts = v.partition("=")
        variants.append((label, shlex.split(opts)))
    targets = []
    if a.bpw or not a.sizes:
        targets += [("bpw", x) for x in frange(a.bpw or "2.5:8.5:0.25")]
    if a.sizes:
        targets += [("size", int(x)) for x in a.sizes.split(",")]
    uniform = [t for t in a.uniform.split(",") if t]

    b = Bench(a)
    res = {}  # (variant label, target) -> result
    uni = {}
    for t in uniform:
        uni[t] = b.run(["--type", t])
    if a.at_uniform:
        targets += [("size", uni[t]["bytes"]) for t in uniform if "bytes" in uni[t]]
    for label, opts in variants:
        for t in targets:
            res[(label, t)] = b.run(["--strategy", "budget"] + target_opts(t) + opts)

    name = os.path.basename(b.model)
    print("# %s: eval %s, ctx %d, %d chunks; inversions beyond %g paired standard errors"
          % (name, a.tokens or a.text, a.ctx, a.chunks, a.sigma))
    report = {"model": name, "ctx": a.ctx, "chunks": a.chunks, "variants": {}, "uniform": {}}
    for label, opts in variants:
        print("\n## variant %s: %s" % (label, " ".join(opts)))
        print("| target | file bytes | KLD | ± stderr |")
        print("|---:|---:|---:|---:|")
        pts = []
        for t in targets:
            r = res[(label, t)]
            if "error" in r:
                print("| %s | — | %s | |" % (target_label(t), r["error"][:60]))
                continue
            print("| %s | %s | %s | %.2g |" % (target_label(t), format(r["bytes"], ","), fmt_k(r["kld"]), r["stderr"]))
            pts.append((t, r))
        report["variants"][label] = [{"target": target_label(t), "bytes": r["bytes"], "kld": r["kld"],
                                      "stderr": r["stderr"]} for t, r in pts]
        pts.sort(key=lambda x: x[1]["bytes"])
        sig, noise = [], 0
        for i in range(len(pts)):
            for j in range(i + 1, len(pts)):
                (t1, r1), (t2, r2) = pts[i], pts[j]
                if r2["bytes"] <= r1["bytes"] or r2["kld"] <= r1["kld"]:
                    continue
                m, se = paired(r2, r1)
                if m > a.sigma * se:
                    sig.append((t1, r1, t2, r2, m, se))
                else:
                    noise += 1
        print("\ninversions of %s beyond the noise: %d (within the noise: %d)" % (label, len(sig), noise))
        for t1, r1, t2, r2, m, se in sig:
            print("  INVERSION %s (%s B, KLD %s) -> %s (%s B, KLD %s): +%.3g ± %.2g (%.1f se)"
                  % (target_label(t1), format(r1["bytes"], ","), fmt_k(r1["kld"]), target_label(t2),
                     format(r2["bytes"], ","), fmt_k(r2["kld"]), m, se, m / se if se else float("inf")))
        report["variants"][label + ":inversions"] = [
            {"from": target_label(x[0]), "to": target_label(x[2]), "delta": x[4], "se": x[5]} for x in sig]

    if len(variants) > 1:
        ref = variants[0][0]
        print("\n## side by side (KLD; * = lowest; (s) = differs from %s beyond the noise)" % ref)
        print("| target | " + " | ".join("%s bytes | %s KLD" % (l, l) for l, _ in variants) + " |")
        print("|---:|" + "---:|---:|" * len(variants))
        logr = {l: [] for l, _ in variants}
        wins = {l: 0 for l, _ in variants}
        for t in targets:
            rs = [res[(l, t)] for l, _ in variants]
            if any("error" in r for r in rs):
                continue
            best = min(r["kld"] for r in rs)
            cells = []
            for (l, _), r in zip(variants, rs):
                mark = "*" if r["kld"] == best else ""
                if l != ref:
                    m, se = paired(r, res[(ref, t)])
                    mark += " (s)" if abs(m) > a.sigma * se else ""
                cells.append("%s | %s%s" % (format(r["bytes"], ","), fmt_k(r["kld"]), mark))
                logr[l].append(math.log(r["kld"] / res[(ref, t)]["kld"]))
                wins[l] += r["kld"] == best
            print("| %s | %s |" % (target_label(t), " | ".join(cells)))
        print("\n| variant | points | geometric mean KLD ratio to %s | wins |" % ref)
        print("|---|---:|---:|---:|")
        for l, _ in variants:
            n = len(logr[l])
            print("| %s | %d | %.4f | %d |" % (l, n, math.exp(sum(logr[l]) / n) if n else float("nan"), wins[l]))

    if uniform:
        print("\n## uniform types at their own file sizes")
        print("| type | file bytes | KLD | ± stderr | " + " | ".join("%s budget at that size" % l for l, _ in variants) + " |")
        print("|---|---:|---:|---:|" + "---:|" * len(variants))
        for t in uniform:
            u = uni[t]
            if "error" in u:
                print("| %s | — | %s |" % (t, u["error"][:60]))
                continue
            cells = []
            for l, _ in variants:
                r = res.get((l, ("size", u["bytes"])))
                if not r or "error" in r:
                    cells.append("—")
                    continue
                m, se = paired(r, u)
                verdict = "better" if m < -a.sigma * se else "worse" if m > a.sigma * se else "same"
                cells.append("%s (%s B, %s)" % (fmt_k(r["kld"]), format(r["bytes"], ","), verdict))
            print("| %s | %s | %s | %.2g | %s |" % (t, format(u["bytes"], ","), fmt_k(u["kld"]), u["stderr"],
                                                 " | ".join(cells)))
            report["uniform"][t] = {"bytes": u["bytes"], "kld": u["kld"], "stderr": u["stderr"]}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    os.rmdir(b.tmp)


if __name__ == "__main__":
    main()
