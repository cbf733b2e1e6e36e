"""test_logits.py - the C forward pass (tests/rt_logits) against the torch
reference (llama_ref.py) on the shared models and on synthetic qwen2 / llama3
rope-scaling checkpoints generated here.

  /usr/bin/python3 test_logits.py RT_LOGITS SOURCE_ROOT

Tolerance: max |logit - reference| <= 1e-4 * max(1, max |reference|) (the C
side runs in f32, the reference in float64).  Also checked: the same logits
bit for bit with 1 or 2 threads and with the prompt in one batch or in
batches of 5 (the KV cache path), and a container of f32 weights gives the
checkpoint's logits bit for bit.  Exit 77 (skipped) without torch.
"""
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    print("SKIP: torch/numpy not available for", sys.executable)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

RT, ROOT = sys.argv[1], sys.argv[2]
TOL = 1e-4
failures = []
report = []


def run_c(model, tokens, threads, batch, vocab, tmp):
    out = os.path.join(tmp, "logits.f32")
    r = subprocess.run([RT, model, out, str(threads), str(batch)] + [str(t) for t in tokens],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("rt_logits failed on %s: %s" % (model, r.stderr.strip()))
    return np.fromfile(out, dtype="<f4").reshape(len(tokens), vocab)


def check(label, model_dir, model_path, tmp, n=40):
    cfg, w = llama_ref.load_model(model_dir)
    V = cfg["vocab_size"]
    rng = np.random.default_rng(1234)
    tokens = [int(t) for t in rng.integers(0, V, size=n)]
    ref = llama_ref.forward(cfg, w, tokens).numpy()
    a = run_c(model_path, tokens, 2, n, V, tmp)
    b = run_c(model_path, tokens, 1, 5, V, tmp)
    diff = float(np.max(np.abs(a.astype(np.float64) - ref)))
    scale = max(1.0, float(np.max(np.abs(ref))))
    report.append("%-28s max|diff| %.3g (max|logit| %.3g)" % (label, diff, scale))
    if not np.array_equal(a, b):
        failures.append("%s: 2 threads/one batch and 1 thread/batches of 5 differ" % label)
    if not diff <= TOL * scale:
        failures.append("%s: max |logit diff| %.3g > %.3g" % (label, diff, TOL * scale))
    return tokens, a


def synthetic(tmp, name, cfg, seed):
    """A random checkpoint for cfg in tmp/name (float32 safetensors + config.json)."""
    g = torch.Generator().manual_seed(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]

    def r(*shape, s=0.15):
        return torch.randn(*shape, generator=g) * s

    t = {"model.embed_tokens.weight": r(V, H, s=1.0), "model.norm.weight": 1 + r(H)}
    if not cfg["tie_word_embeddings"]:
        t["lm_head.weight"] = r(V, H)
    bias = cfg["model_type"] == "qwen2"
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        t[p + "input_layernorm.weight"] = 1 + r(H)
        t[p + "post_attention_layernorm.weight"] = 1 + r(H)
        for nm, rows, cols in (("self_attn.q_proj", nh * hd, H), ("self_attn.k_proj", nkv * hd, H),
                               ("self_attn.v_proj", nkv * hd, H), ("self_attn.o_proj", H, nh * hd),
                               ("mlp.gate_proj", I, H), ("mlp.up_proj", I, H), ("mlp.down_proj", H, I)):
            t[p + nm + ".weight"] = r(rows, cols)
            if bias and nm in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                t[p + nm + ".bias"] = r(rows, s=0.5)
    d = os.path.join(tmp, name)
    os.makedirs(d)
    llama_ref.write_safetensors(os.path.join(d, "model.safetensors"), t)
    import json
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    return d


def run_checks(exe, d, tmp):
    """mixq run: greedy ids equal the reference's greedy ids; seeded sampling is reproducible."""
    cfg, w = llama_ref.load_model(d)
    prompt = [1467, 322, 734, 264, 261, 750]
    tok = os.path.join(tmp, "prompt.tok")
    with open(tok, "w") as f:
        f.write(" ".join(map(str, prompt)))
    r = subprocess.run([exe, "run", d, "--tokens", tok, "--print-ids", "-n", "12", "--ignore-eos"],
                       capture_output=True, text=True, check=True)
    got = [int(x) for x in r.stdout.split()]
    seq = [cfg["bos_token_id"]] + prompt
    want = []
    for _ in range(12):
        nxt = int(torch.argmax(llama_ref.forward(cfg, w, seq)[-1]))
        want.append(nxt)
        seq.append(nxt)
    report.append("mixq run greedy (12 tokens): %s" % ("same as reference" if got == want else "DIFFERENT"))
    if got != want:
        failures.append("mixq run greedy ids %s != reference %s" % (got, want))

    def sample(seed, threads):
        return subprocess.run([exe, "run", d, "--tokens", tok, "--print-ids", "-n", "16", "--temp", "0.9",
                               "--seed", str(seed), "-j", str(threads), "--ignore-eos"],
                              capture_output=True, text=True, check=True).stdout
    a, b, c = sample(3, 1), sample(3, 2), sample(4, 2)
    if a != b or a == c or len(a.split()) != 16:
        failures.append("mixq run sampling: seed 3 gave %r and %r, seed 4 %r" % (a, b, c))


def calibrate_check(exe, d, tmp):
    """mixq calibrate on a synthetic model: the GGUF (read by an independent parser) holds the
    reference's sums of x^2 per input column and the token counts."""
    cfg, w = llama_ref.load_model(d)
    ctx, chunks = 16, 3
    rng = np.random.default_rng(11)
    tokens = [int(t) for t in rng.integers(0, cfg["vocab_size"], size=ctx * chunks + 5)]
    tok = os.path.join(tmp, "calib.tok")
    with open(tok, "w") as f:
        f.write(" ".join(map(str, tokens)))
    out = os.path.join(tmp, "im.gguf")
    subprocess.run([exe, "calibrate", d, "--tokens", tok, "--ctx", str(ctx), "-o", out, "--process-output",
                    "--quiet"], check=True)
    keys, tensors = llama_ref.read_gguf_imatrix(out)
    sums = {}

    def observe(name, x):
        sums[name] = sums.get(name, 0) + (x * x).sum(0)
    for c in range(chunks):  # the synthetic config has no BOS: chunks are taken as they are
        llama_ref.forward(cfg, w, tokens[c * ctx:(c + 1) * ctx], observe)
    ok = keys.get("general.type") == "imatrix" and keys.get("imatrix.chunk_count") == chunks and \
        keys.get("imatrix.chunk_size") == ctx and keys.get("imatrix.datasets") == [tok] and \
        len(tensors) == 2 * len(sums)
    worst = 0.0
    for hf, ref in sums.items():
        g = llama_ref.gguf_name(hf)
        got, cnt = tensors.get(g + ".in_sum2"), tensors.get(g + ".counts")
        if got is None or cnt is None or got.shape != ref.shape or cnt[0] != ctx * chunks:
            ok = False
            continue
        worst = max(worst, float(np.max(np.abs(got - ref.numpy()) / np.maximum(ref.numpy(), 1e-6))))
    report.append("mixq calibrate vs reference sums: max rel diff %.3g" % worst)
    if not ok or worst > 1e-4:
        failures.append("mixq calibrate: GGUF keys/tensors/sums differ from the reference (max rel %.3g)" % worst)


def main():
    tmp = tempfile.mkdtemp(prefix="mixq_logits_")
    try:
        qwen = synthetic(tmp, "qwen2", {
            "model_type": "qwen2", "hidden_size": 48, "intermediate_size": 80, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 97,
            "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": False,
            "max_position_embeddings": 128, "hidden_act": "silu"}, 1)
        check("synthetic qwen2 (biases)", qwen, qwen, tmp)
        l3 = synthetic(tmp, "llama3", {
            "model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 61,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True,
            "max_position_embeddings": 256, "hidden_act": "silu",
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}, 2)
        check("synthetic llama3 rope", l3, l3, tmp)
        if os.environ.get("MIXQ_EXE"):
            calibrate_check(os.environ["MIXQ_EXE"], qwen, tmp)

        models = os.path.normpath(os.path.join(ROOT, "..", "shared", "models"))
        if not os.path.isdir(models):
            print("SKIP (partly): %s is absent; shared-model comparisons not run" % models)
        else:
            for m in ("tiny-llama-6l", "baby-llama-105", "stories260k"):
                d = os.path.join(models, m)
                if os.path.isfile(os.path.join(d, "model.safetensors")):
                    check(m, d, d, tmp)
            exe = os.environ.get("MIXQ_EXE")
            d = os.path.join(models, "tiny-llama-6l")
            if exe and os.path.isdir(d):
                # a container of exact f32 weights reproduces the checkpoint bit for bit
                cfg, _ = llama_ref.load_model(d)
                rng = np.random.default_rng(7)
                tokens = [int(t) for t in rng.integers(0, cfg["vocab_size"], size=24)]
                mxq = os.path.join(tmp, "tiny-f32.mxq")
                subprocess.run([exe, "convert", d, "-o", mxq, "--type", "f32", "--quiet"], check=True)
                shutil.copy(os.path.join(d, "config.json"), tmp)
                a = run_c(d, tokens, 2, 24, cfg["vocab_size"], tmp)
                b = run_c(mxq, tokens, 2, 24, cfg["vocab_size"], tmp)
                if not np.array_equal(a, b):
                    failures.append("tiny-llama-6l: f32 container logits differ from the checkpoint's")
                report.append("tiny-llama-6l f32 container: %s" %
                              ("bit-identical" if np.array_equal(a, b) else "DIFFERENT"))
                run_checks(exe, d, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(report))
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("OK")


main()
