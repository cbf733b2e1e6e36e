"""test_eval.py - `mixq eval` against the perplexity anchor and its own invariants.

  /usr/bin/python3 test_eval.py MIXQ_EXE SOURCE_ROOT [--slow]

The anchor: unquantized tiny-llama-6l on eval-text.txt, tokenized whole by
SentencePiece (python sentencepiece; mixq eval puts BOS in front, as
llama.cpp's perplexity does), perplexity 67.9302 at ctx 128 x 16 chunks
(measured with llama.cpp and an independent torch pass), to +-0.01.  With
--slow also 84.555 at ctx 256 x 150 chunks.  Also: --base with the model
itself gives KLD 0 and the same top-1 everywhere; an int8 container against
its checkpoint gives a small positive KLD; the JSON is the same with 1 and 2
threads.  Exit 77 (skipped) without sentencepiece or ../shared/models.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import sentencepiece as spm
except ImportError:
    print("SKIP: python sentencepiece not available for", sys.executable)
    sys.exit(77)

EXE, ROOT = sys.argv[1], sys.argv[2]
SLOW = "--slow" in sys.argv
models = os.path.normpath(os.path.join(ROOT, "..", "shared", "models"))
model = os.path.join(models, "tiny-llama-6l")
text = os.path.join(models, "eval-text.txt")
if not (os.path.isfile(os.path.join(model, "model.safetensors")) and os.path.isfile(text)):
    print("SKIP: %s (tiny-llama-6l, eval-text.txt) is absent" % models)
    sys.exit(77)

failures = []


def ev(*args):
    r = subprocess.run([EXE, "eval"] + list(args) + ["--json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("mixq eval %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return json.loads(r.stdout)


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


tmp = tempfile.mkdtemp(prefix="mixq_eval_")
try:
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model, "tokenizer.model"))
    with open(text, encoding="utf-8") as f:
        ids = sp.encode(f.read())
    tok = os.path.join(tmp, "eval.tok")
    with open(tok, "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")

    r2 = ev(model, "--tokens", tok, "--ctx", "128", "--chunks", "16", "-j", "2")
    expect(abs(r2["perplexity"] - 67.9302) <= 0.01,
           "ctx 128 x 16 perplexity %.4f vs anchor 67.9302 (+-0.01)" % r2["perplexity"])
    expect(r2["chunks"] == 16 and r2["scored"] == 16 * 63, "16 chunks, 63 predictions scored in each")
    r1 = ev(model, "--tokens", tok, "--ctx", "128", "--chunks", "16", "-j", "1")
    expect(r1 == r2, "the same results with 1 and 2 threads")

    rt = ev(model, "--text", text, "--ctx", "128", "--chunks", "16", "-j", "2")
    expect(rt == r2, "--text through mixq's own tokenizer gives the same results as the sentencepiece ids")

    # mixq run: the prompt through the tokenizer, greedy ids equal to the same prompt given as ids,
    # and the streamed text equal to sentencepiece's decoding of those ids
    prompt = "The quick brown fox"
    ptok = os.path.join(tmp, "prompt.tok")
    with open(ptok, "w") as f:
        f.write(" ".join(map(str, sp.encode(prompt))) + "\n")
    run = lambda *a: subprocess.run([EXE, "run", model, "-n", "24"] + list(a), capture_output=True, text=True)
    a, b, c = run("--prompt", prompt, "--print-ids"), run("--tokens", ptok, "--print-ids"), run("--prompt", prompt)
    gen = [int(x) for x in a.stdout.split()] if a.returncode == 0 else None
    expect(a.returncode == 0 and b.returncode == 0 and a.stdout == b.stdout and len(gen) == 24,
           "run --prompt and run --tokens generate the same 24 ids")
    expect(c.returncode == 0 and gen is not None and c.stdout.rstrip("\n") == sp.decode(sp.encode(prompt) + gen),
           "run --prompt prints the prompt and the continuation as sentencepiece decodes them: %r" % c.stdout[:80])

    # bad inputs: a text that is not UTF-8, a tokenizer that does not match the embedding
    bad = os.path.join(tmp, "bad.txt")
    with open(bad, "wb") as f:
        f.write(b"valid start \xff\xfe then junk")
    r = subprocess.run([EXE, "eval", model, "--text", bad], capture_output=True, text=True)
    expect(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "UTF-8" in r.stderr
           and "12" in r.stderr and "bad.txt" in r.stderr, "a text that is not UTF-8: exit 1, one line naming the byte offset: %r" % r.stderr)
    baby = os.path.join(models, "baby-llama-105")
    mixed = os.path.join(tmp, "mixed")
    os.mkdir(mixed)
    for name in ("model.safetensors", "config.json"):
        shutil.copyfile(os.path.join(baby, name), os.path.join(mixed, name))
    shutil.copyfile(os.path.join(model, "tokenizer.model"), os.path.join(mixed, "tokenizer.model"))
    r = subprocess.run([EXE, "run", mixed, "--prompt", "hello", "-n", "2"], capture_output=True, text=True)
    expect(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "2048" in r.stderr and "105" in r.stderr,
           "a tokenizer of 2048 tokens with a 105-row embedding: exit 1, one line: %r" % r.stderr)

    rs = ev(model, "--tokens", tok, "--ctx", "64", "--chunks", "4", "--base", model)
    expect(rs["kld"]["mean"] == 0 and rs["kld"]["max"] == 0 and rs["same_top1"] == 1 and rs["rms_delta_p"] == 0
           and rs["base_perplexity"] == rs["perplexity"], "the model against itself: KLD 0, same top-1 100 %")

    mxq = os.path.join(tmp, "tiny-int4.mxq")
    subprocess.run([EXE, "convert", model, "-o", mxq, "--type", "int4", "--quiet"], check=True)
    rq = ev(mxq, "--config", model, "--tokens", tok, "--ctx", "64", "--chunks", "4", "--base", model)
    k = rq["kld"]
    expect(0 < k["mean"] < 0.5 and k["median"] <= k["p99"] <= k["max"] and 0.5 < rq["same_top1"] < 1
           and 0 < rq["rms_delta_p"] < 0.2 and rq["base_perplexity"] == rs["perplexity"],
           "int4 container vs checkpoint: KLD mean %.5f median %.5f p99 %.5f, same top-1 %.4f, RMS dp %.4f"
           % (k["mean"], k["median"], k["p99"], rq["same_top1"], rq["rms_delta_p"]))
    ch = k["chunks"]
    cm = sum(ch) / len(ch)
    se = (sum((x - cm) ** 2 for x in ch) / (len(ch) - 1) / len(ch)) ** 0.5
    expect(len(ch) == 4 and len(set(ch)) > 1 and abs(cm - k["mean"]) <= 1e-9 * k["mean"]
           and 0 < k["stderr"] and abs(k["stderr"] - se) <= 1e-6 * se,
           "per-chunk KLD means average to the mean, stderr %.3g is their standard error %.3g" % (k["stderr"], se))
    expect(rs["kld"]["stderr"] == 0 and rs["kld"]["chunks"] == [0, 0, 0, 0], "the model against itself: stderr 0")

    if SLOW:
        r = ev(model, "--tokens", tok, "--ctx", "256", "--chunks", "150")
        expect(abs(r["perplexity"] - 84.555) <= 0.01,
               "ctx 256 x 150 perplexity %.4f vs anchor 84.555 (+-0.01)" % r["perplexity"])
finally:
    shutil.rmtree(tmp, ignore_errors=True)
if failures:
    sys.exit(1)
print("OK")
