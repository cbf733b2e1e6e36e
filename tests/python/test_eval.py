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

    if SLOW:
        r = ev(model, "--tokens", tok, "--ctx", "256", "--chunks", "150")
        expect(abs(r["perplexity"] - 84.555) <= 0.01,
               "ctx 256 x 150 perplexity %.4f vs anchor 84.555 (+-0.01)" % r["perplexity"])
finally:
    shutil.rmtree(tmp, ignore_errors=True)
if failures:
    sys.exit(1)
print("OK")
