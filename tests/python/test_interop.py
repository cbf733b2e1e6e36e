#!/usr/bin/env python3
"""Interop exports checked with independent readers.

usage: test_interop.py MIXQ SOURCE_ROOT [unittest args]

- `mixq export --hf`: the directory is parsed here (index, shards, stored files) and
  compared bit for bit with the container as the pure-Python reader (python/mixq)
  dequantizes it; `mixq convert` of the directory gives back the same values.
- `mixq export --gguf` (test_gguf.py has the block decoders): see there.
Skipped (77) without numpy.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipped")
    sys.exit(77)

MIXQ = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(sys.argv[2])
del sys.argv[1:3]
sys.path.insert(0, os.path.join(ROOT, "python"))
import mixq  # noqa: E402

TINY_F32 = os.path.join(ROOT, "testdata", "tiny-llama-f32")
SHARED = os.path.join(ROOT, "..", "shared", "models")


def run(*args, ok=True):
    r = subprocess.run([MIXQ] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if ok and r.returncode != 0:
        raise AssertionError("mixq %s failed (%d): %s" % (" ".join(map(str, args)), r.returncode, r.stderr))
    return r


def read_safetensors(path):
    """{name: (dtype, shape, bytes)} and __metadata__ of a safetensors file, parsed here."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack_from("<Q", raw)[0]
    hdr = json.loads(raw[8:8 + n])
    meta = hdr.pop("__metadata__", None)
    out, end = {}, 0
    for k, v in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = v["data_offsets"]
        assert b == end, "%s: gap or overlap at %s" % (path, k)
        end = e
        out[k] = (v["dtype"], tuple(v["shape"]), raw[8 + n + b:8 + n + e])
    assert 8 + n + end == len(raw), "%s: trailing bytes" % path
    return out, meta


def to_bf16_bits(x):
    """binary32 -> bfloat16 bit patterns, round to nearest even (NaN kept NaN)."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


class TestExportHF(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mixq-interop-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.tmp, name)

    def leftovers(self):
        return [n for n in os.listdir(self.tmp) if ".mixq-" in n]

    def check_dir(self, container, d, dtype):
        """The exported directory holds exactly the container's tensors (dequantized, in dtype) and files."""
        with open(os.path.join(d, "model.safetensors.index.json")) as fh:
            index = json.load(fh)
        wmap = index["weight_map"]
        shards = sorted(set(wmap.values()))
        self.assertEqual(sorted(n for n in os.listdir(d) if n.endswith(".safetensors")), shards)
        got, total = {}, 0
        for s in shards:
            tensors, meta = read_safetensors(os.path.join(d, s))
            self.assertEqual(meta.get("format"), "pt")
            for k, v in tensors.items():
                self.assertEqual(wmap[k], s)
                total += len(v[2])
            got.update(tensors)
        self.assertEqual(index["metadata"]["total_size"], total)
        with mixq.open(container, verify=True) as f:
            self.assertEqual(sorted(got), sorted(f.names()))
            self.assertEqual(sorted(wmap), sorted(f.names()))
            for t in f.tensors():
                dt, shape, data = got[t.name]
                self.assertEqual(shape, t.shape)
                if t.quant_type == "raw" and t.source_dtype not in ("F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"):
                    self.assertEqual((dt, data), (t.source_dtype, bytes(t.section("data"))), t.name)
                    continue
                x = t.dequantize()
                if dtype == "f32":
                    self.assertEqual(dt, "F32")
                    self.assertEqual(np.frombuffer(data, "<u4").tobytes(), x.view(np.uint32).tobytes(), t.name)
                else:
                    self.assertEqual(dt, "BF16")
                    self.assertEqual(data, to_bf16_bits(x.ravel()).astype("<u2").tobytes(), t.name)
            names = [sf.name for sf in f.files()]
            self.assertTrue(names)
            for sf in f.files():
                with open(os.path.join(d, sf.name), "rb") as fh:
                    self.assertEqual(fh.read(), sf.read())
        self.assertEqual(sorted(os.listdir(d)), sorted(shards + ["model.safetensors.index.json"] + names))

    def test_f32_round_trip_is_exact(self):
        c = self.p("f32.mxq")
        run("convert", TINY_F32, "-o", c, "-t", "f32", "-q")
        d = self.p("hf")
        run("export", c, "--hf", d, "--dtype", "f32", "--shard-size", "100kB", "-q")
        self.check_dir(c, d, "f32")
        with open(os.path.join(d, "model.safetensors.index.json")) as fh:
            self.assertGreater(len(set(json.load(fh)["weight_map"].values())), 2)
        # the exported directory converts again, to exactly the same values and files
        c2 = self.p("again.mxq")
        run("convert", d, "-o", c2, "-t", "f32", "-q")
        with mixq.open(c, verify=True) as a, mixq.open(c2, verify=True) as b:
            self.assertEqual(sorted(a.names()), sorted(b.names()))
            for t in a.tensors():
                self.assertEqual(t.dequantize().tobytes(), b[t.name].dequantize().tobytes(), t.name)
            self.assertEqual([(sf.name, sf.read()) for sf in a.files()], [(sf.name, sf.read()) for sf in b.files()])
        self.assertEqual(self.leftovers(), [])

    def test_bf16_default_of_a_quantized_container(self):
        c = self.p("q.mxq")
        run("convert", TINY_F32, "-o", c, "-t", "int4_dq", "-q")
        d = self.p("hf")
        run("export", c, "--hf", d, "-q")
        self.check_dir(c, d, "bf16")
        self.assertEqual(len([n for n in os.listdir(d) if n.endswith(".safetensors")]), 1)

    def test_existing_failures_and_force(self):
        c = self.p("q.mxq")
        run("convert", TINY_F32, "-o", c, "-t", "int8", "-q")
        d = self.p("hf")
        run("export", c, "--hf", d, "-q")
        before = {n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)}
        r = run("export", c, "--hf", d, ok=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("exists", r.stderr)
        self.assertEqual({n: os.path.getmtime(os.path.join(d, n)) for n in os.listdir(d)}, before)
        run("export", c, "--hf", d, "--dtype", "f32", "-f", "-q")  # replaces a previous export
        self.check_dir(c, d, "f32")
        with open(os.path.join(d, "notes.txt"), "w") as fh:
            fh.write("mine")
        r = run("export", c, "--hf", d, "-f", ok=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("notes.txt", r.stderr)
        self.assertTrue(os.path.exists(os.path.join(d, "notes.txt")))
        # a corrupt container: nothing is created, nothing is left behind
        with open(c, "r+b") as fh:
            fh.seek(100)
            b = fh.read(1)
            fh.seek(100)
            fh.write(bytes([b[0] ^ 1]))
        r = run("export", c, "--hf", self.p("new"), ok=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertFalse(os.path.exists(self.p("new")))
        self.assertEqual(self.leftovers(), [])
        self.assertEqual(run("export", c, "--hf", d, "-o", self.p("x"), ok=False).returncode, 2)
        self.assertEqual(run("export", c, "-o", self.p("x"), "--shard-size", "1MB", ok=False).returncode, 2)

    def test_shared_model(self):
        src = os.path.join(SHARED, "tiny-llama-6l")
        if not os.path.isdir(src):
            self.skipTest("no " + src)
        c = self.p("6l.mxq")
        run("convert", src, "-o", c, "-t", "int4_dq", "-q")
        d = self.p("hf6l")
        run("export", c, "--hf", d, "--shard-size", "4MB", "-q")
        self.check_dir(c, d, "bf16")


# ---------------------------------------------------------------------------- GGUF

GGUF_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q", 11: "<q", 12: "<d"}
# ggml type -> (block elements, block bytes)
GGML_BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 8: (32, 34), 10: (256, 84), 11: (256, 110),
              12: (256, 144), 14: (256, 210)}


def read_gguf(path):
    """(metadata dict, [(name, ne, type, offset)], data start, raw bytes): GGUF v3 parsed here from the
    format's description (magic, version, counts, key-values, tensor infos, alignment)."""
    with open(path, "rb") as f:
        raw = f.read()
    pos = [0]

    def take(fmt):
        v = struct.unpack_from(fmt, raw, pos[0])
        pos[0] += struct.calcsize(fmt)
        return v[0]

    def string():
        n = take("<Q")
        b = raw[pos[0]:pos[0] + n]
        assert len(b) == n
        pos[0] += n
        return b.decode("utf-8")

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        v = take(GGUF_SCALAR[t])
        return bool(v) if t == 7 else v

    assert raw[:4] == b"GGUF"
    pos[0] = 4
    assert take("<I") == 3
    nt, nkv = take("<Q"), take("<Q")
    meta = {}
    for _ in range(nkv):
        k = string()
        assert k not in meta, k
        meta[k] = value(take("<I"))
    infos = []
    for _ in range(nt):
        name = string()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        infos.append((name, ne, take("<I"), take("<Q")))
    align = meta.get("general.alignment", 32)
    start = (pos[0] + align - 1) // align * align
    return meta, infos, start, raw


def f16(b):
    return np.frombuffer(b, "<f2").astype(np.float32)


def decode_blocks(t, data, n):
    """Dequantizes n weights of ggml type t exactly as llama.cpp's dequantize_row_* define them
    (ggml-quants.c), in binary32 arithmetic: each product and sum rounded once, in their order."""
    f32 = np.float32
    if t == 0:
        return np.frombuffer(data, "<f4").copy()
    if t == 1:
        return np.frombuffer(data, "<f2").astype(f32)
    if t == 30:
        return (np.frombuffer(data, "<u2").astype(np.uint32) << 16).view(f32)
    be, bb = GGML_BLOCK[t]
    nb = n // be
    B = np.frombuffer(data, np.uint8)[:nb * bb].reshape(nb, bb)
    if t == 8:  # Q8_0: d, q[32]; y = q d
        d = f16(B[:, :2].tobytes())[:, None]
        return (B[:, 2:].view(np.int8).astype(f32) * d).ravel()
    if t in (2, 3):  # Q4_0: d, qs[16]; Q4_1: d, m, qs[16]; element j low nibble, j + 16 high nibble
        d = f16(B[:, :2].tobytes())[:, None]
        qs = B[:, 4:] if t == 3 else B[:, 2:]
        q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(f32)
        if t == 2:
            return ((q - f32(8)) * d).ravel()
        m = f16(B[:, 2:4].tobytes())[:, None]
        return (q * d + m).ravel()
    if t == 10:  # Q2_K: scales[16], qs[64], d, dmin
        sc = B[:, :16]
        qs = B[:, 16:80]
        d = f16(B[:, 80:82].tobytes())[:, None]
        dmin = f16(B[:, 82:84].tobytes())[:, None]
        y = np.empty((nb, 256), f32)
        for e in range(256):
            q = (qs[:, 32 * (e // 128) + e % 32] >> (2 * ((e // 32) % 4))) & 3
            s = sc[:, e // 16]
            dl = d[:, 0] * (s & 15).astype(f32)
            ml = dmin[:, 0] * (s >> 4).astype(f32)
            y[:, e] = dl * q.astype(f32) - ml
        return y.ravel()
    if t == 11:  # Q3_K: hmask[32], qs[64], scales[12], d
        hm, qs, sc12 = B[:, :32], B[:, 32:96], B[:, 96:108]
        d = f16(B[:, 108:110].tobytes())
        scales = np.empty((nb, 16), np.int32)
        for k in range(16):  # 4 low bits in bytes 0-7 (low, then high nibbles), 2 high bits in bytes 8-11
            low = (sc12[:, k] & 15) if k < 8 else (sc12[:, k - 8] >> 4)
            high = (sc12[:, 8 + k % 4] >> (2 * (k // 4))) & 3
            scales[:, k] = (low | (high << 4)).astype(np.int32) - 32
        y = np.empty((nb, 256), f32)
        for e in range(256):
            low = (qs[:, 32 * (e // 128) + e % 32] >> (2 * ((e // 32) % 4))) & 3
            hbit = (hm[:, e % 32] >> (e // 32)) & 1
            q = low.astype(np.int32) - np.where(hbit == 1, 0, 4)
            dl = d * scales[:, e // 16].astype(f32)
            y[:, e] = dl * q.astype(f32)
        return y.ravel()
    if t == 12:  # Q4_K: d, dmin, scales[12], qs[128]
        d = f16(B[:, :2].tobytes())
        dmin = f16(B[:, 2:4].tobytes())
        q12, qs = B[:, 4:16], B[:, 16:]
        sc = np.empty((nb, 8), np.int32)
        mn = np.empty((nb, 8), np.int32)
        for j in range(8):
            if j < 4:
                sc[:, j] = q12[:, j] & 63
                mn[:, j] = q12[:, j + 4] & 63
            else:
                sc[:, j] = (q12[:, j + 4] & 15) | ((q12[:, j - 4] >> 6) << 4)
                mn[:, j] = (q12[:, j + 4] >> 4) | ((q12[:, j] >> 6) << 4)
        y = np.empty((nb, 256), f32)
        for e in range(256):
            q = (qs[:, 32 * (e // 64) + e % 32] >> (4 * ((e % 64) // 32))) & 15
            d1 = d * sc[:, e // 32].astype(f32)
            m1 = dmin * mn[:, e // 32].astype(f32)
            y[:, e] = d1 * q.astype(f32) - m1
        return y.ravel()
    if t == 14:  # Q6_K: ql[128], qh[64], scales[16] (int8), d
        ql, qh = B[:, :128], B[:, 128:192]
        sc = B[:, 192:208].view(np.int8)
        d = f16(B[:, 208:210].tobytes())
        y = np.empty((nb, 256), f32)
        for e in range(256):
            h, r = divmod(e, 128)
            quarter, l = divmod(r, 32)
            lo = (ql[:, 64 * h + l + 32 * (quarter & 1)] >> (4 * (quarter >> 1))) & 15
            hi = (qh[:, 32 * h + l] >> (2 * quarter)) & 3
            q = (lo | (hi << 4)).astype(np.int32) - 32
            y[:, e] = (d * sc[:, e // 16].astype(f32)) * q.astype(f32)
        return y.ravel()
    raise AssertionError("type %d" % t)


def rope_order(w, heads):
    """llama.cpp's row order of a q/k projection: within each head, the rows of the two halves
    (rotate-half pairs i and i + d/2) interleaved."""
    rows = w.shape[0]
    hd = rows // heads
    return w.reshape(heads, 2, hd // 2, -1).swapaxes(1, 2).reshape(w.shape)


HF_TO_GGUF = {"self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
              "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
              "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
              "mlp.down_proj.weight": "ffn_down.weight", "input_layernorm.weight": "attn_norm.weight",
              "post_attention_layernorm.weight": "ffn_norm.weight"}
EXACT = {"int8": 8, "int4s": 2, "int4": 3, "int4_dq": 12, "int6_dq": 14, "int3_dq": 11, "int2_dq": 10,
         "f16": 1, "bf16": 30, "f32": 0}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".", 3)
    return "blk.%s.%s" % (parts[2], HF_TO_GGUF[parts[3]])


NPM_DIR = os.path.join(ROOT, "tests", "npm")
_npm_ready = []


def npm_ready():
    """True once tests/npm/node_modules holds @huggingface/gguf (installed here with `npm install` on first
    use, as scripts/test.sh does); False without node and npm or when the install fails."""
    if not _npm_ready:
        ok = os.path.isdir(os.path.join(NPM_DIR, "node_modules", "@huggingface", "gguf"))
        if not ok and shutil.which("node") and shutil.which("npm"):
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=NPM_DIR,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
            ok = r.returncode == 0
            if not ok:
                print("npm install failed; the @huggingface/gguf check is skipped:\n" + r.stdout[-2000:], file=sys.stderr)
        _npm_ready.append(ok and shutil.which("node") is not None)
    return _npm_ready[0]


def node_meta(path):
    """The metadata and tensor infos as @huggingface/gguf parses them, or None without node or the package."""
    script = os.path.join(NPM_DIR, "gguf_meta.mjs")
    if not npm_ready():
        return None
    r = subprocess.run(["node", script, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise AssertionError("@huggingface/gguf failed on %s: %s" % (path, r.stderr))
    return json.loads(r.stdout)


class TestExportGGUF(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mixq-gguf-")
        self.src = os.path.join(SHARED, "tiny-llama-6l")
        if not os.path.isdir(self.src):
            self.skipTest("no %s (rows of a multiple of 256 weights are needed for the K types)" % self.src)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.tmp, name)

    def check_gguf(self, container, path, expect_types=None):
        """Every tensor of the GGUF decodes (with llama.cpp's block formulas) to exactly the container's
        values, q/k rows in llama.cpp's order; the metadata matches config.json and the tokenizer;
        the npm reader agrees with this parser.  Returns {ggml type: count}."""
        meta, infos, start, raw = read_gguf(path)
        with open(os.path.join(self.src, "config.json")) as fh:
            cfg = json.load(fh)
        heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
        want = {"general.architecture": "llama", "general.quantization_version": 2,
                "llama.context_length": cfg["max_position_embeddings"], "llama.embedding_length": cfg["hidden_size"],
                "llama.block_count": cfg["num_hidden_layers"], "llama.feed_forward_length": cfg["intermediate_size"],
                "llama.attention.head_count": heads, "llama.attention.head_count_kv": kv,
                "llama.rope.dimension_count": cfg["hidden_size"] // heads, "llama.vocab_size": cfg["vocab_size"],
                "tokenizer.ggml.model": "llama"}
        for k, v in want.items():
            self.assertEqual(meta[k], v, k)
        self.assertEqual(np.float32(meta["llama.attention.layer_norm_rms_epsilon"]), np.float32(cfg["rms_norm_eps"]))
        self.assertEqual(np.float32(meta["llama.rope.freq_base"]), np.float32(cfg.get("rope_theta", 10000.0)))
        toks = meta["tokenizer.ggml.tokens"]
        self.assertEqual(len(toks), cfg["vocab_size"])
        self.assertEqual(len(meta["tokenizer.ggml.scores"]), len(toks))
        self.assertEqual(len(meta["tokenizer.ggml.token_type"]), len(toks))
        self.assertEqual(toks[meta["tokenizer.ggml.bos_token_id"]], "<s>")
        self.assertEqual(toks[meta["tokenizer.ggml.eos_token_id"]], "</s>")
        self.assertEqual(meta["tokenizer.ggml.token_type"][meta["tokenizer.ggml.unknown_token_id"]], 2)
        self.assertIn("\u2581the", toks)  # a SentencePiece word piece
        seen = {}
        with mixq.open(container, verify=True) as f:
            by_name = {gguf_name(t.name): t for t in f.tensors()}
            self.assertEqual(sorted(by_name), sorted(i[0] for i in infos))
            for name, ne, t, off in infos:
                ct = by_name[name]
                self.assertEqual(off % 32, 0)
                self.assertEqual(tuple(reversed(ne)), ct.shape, name)
                n = int(np.prod(ne))
                be, bb = GGML_BLOCK[t]
                data = raw[start + off:start + off + n // be * bb]
                got = decode_blocks(t, data, n).reshape(ct.shape)
                x = ct.dequantize()
                if name.endswith("attn_q.weight"):
                    x = rope_order(x, heads)
                elif name.endswith("attn_k.weight"):
                    x = rope_order(x, kv)
                if len(ne) == 1:
                    self.assertEqual(t, 0, name)
                elif expect_types is not None:
                    self.assertEqual(t, EXACT[ct.quant_type], name)
                if not np.array_equal(got.view(np.uint32), x.view(np.uint32)):
                    bad = np.flatnonzero(got.view(np.uint32).ravel() != x.view(np.uint32).ravel())
                    self.fail("%s: %s (%s:%d as ggml type %d): %d of %d values differ, first %r vs %r"
                              % (path, name, ct.quant_type, ct.group_size, t, bad.size, n, got.ravel()[bad[0]],
                                 x.ravel()[bad[0]]))
                seen[t] = seen.get(t, 0) + 1
        nm = node_meta(path)
        if nm is not None:
            for k, v in meta.items():
                w = nm["metadata"][k]
                if isinstance(v, float):
                    self.assertEqual(np.float32(w), np.float32(v), k)
                else:
                    self.assertEqual(w, v, k)
            self.assertEqual(nm["tensorDataOffset"], start)
            self.assertEqual([(i["name"], i["shape"], i["dtype"], i["offset"]) for i in nm["tensorInfos"]],
                             [(a, b, c, d) for a, b, c, d in infos])
        return seen

    def test_every_exact_type(self):
        """Each mixq type with a llama.cpp counterpart, alone: decoded bit for bit."""
        for qt, g in (("int8", 32), ("int4s", 32), ("int4", 32), ("int4_dq", 32), ("int6_dq", 16), ("int3_dq", 16),
                      ("int2_dq", 16), ("f16", None), ("bf16", None), ("f32", None)):
            c = self.p("%s.mxq" % qt)
            args = ["convert", self.src, "-o", c, "-t", qt, "-q"] + (["-g", str(g)] if g else [])
            run(*args)
            out = self.p("%s.gguf" % qt)
            run("export", c, "--gguf", out, "-q")
            seen = self.check_gguf(c, out, expect_types=True)
            self.assertIn(EXACT[qt], seen, qt)
            os.unlink(c)
            os.unlink(out)

    def test_budget_plan_with_gguf_candidates(self):
        c = self.p("budget.mxq")
        run("convert", self.src, "-o", c, "--candidates", "gguf", "--target-bpw", "4", "-q")
        out = self.p("budget.gguf")
        run("export", c, "--gguf", out, "--name", "tiny budget", "-q")
        seen = self.check_gguf(c, out, expect_types=True)
        self.assertGreaterEqual(len([t for t in seen if t not in (0, 1, 30)]), 2, seen)  # a real mix
        meta = read_gguf(out)[0]
        self.assertEqual(meta["general.name"], "tiny budget")
        with mixq.open(c) as f:  # the quantized tensors take the same bytes in both files
            q_bytes = sum(t.length for t in f.tensors() if t.quantized)
        _, infos, _, _ = read_gguf(out)
        g_bytes = sum(int(np.prod(ne)) // GGML_BLOCK[t][0] * GGML_BLOCK[t][1] for _, ne, t, _ in infos
                      if t not in (0, 1, 30))
        self.assertEqual(q_bytes, g_bytes)

    def test_bpe_vocabulary(self):
        """A byte-level BPE tokenizer.json (no tokenizer.model): gpt2 model, tokens, merges, token types,
        the pre-tokenizer name, and tokenizer_config.json's flags."""
        d = self.p("bpe-model")
        os.makedirs(d)
        for n in ("model.safetensors", "config.json"):
            shutil.copy(os.path.join(self.src, n), d)
        with open(os.path.join(self.src, "config.json")) as fh:
            vocab_size = json.load(fh)["vocab_size"]
        vocab = {"a": 0, "b": 1, "ab": 2, "\u0120the": 3}
        tok = {"model": {"type": "BPE", "vocab": vocab, "merges": ["a b", ["ab", "b"]]},
               "added_tokens": [{"id": 4, "content": "<|begin_of_text|>", "special": True},
                                {"id": 5, "content": "<|end_of_text|>", "special": True}],
               "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                 "use_regex": True}}
        with open(os.path.join(d, "tokenizer.json"), "w") as fh:
            json.dump(tok, fh)
        with open(os.path.join(d, "tokenizer_config.json"), "w") as fh:
            json.dump({"add_bos_token": True, "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}, fh)
        c = self.p("bpe.mxq")
        run("convert", d, "-o", c, "-t", "int8", "-g", "32", "-q")
        out = self.p("bpe.gguf")
        run("export", c, "--gguf", out, "-q")
        meta = read_gguf(out)[0]
        self.assertEqual(meta["tokenizer.ggml.model"], "gpt2")
        self.assertEqual(meta["tokenizer.ggml.pre"], "gpt2")
        toks = meta["tokenizer.ggml.tokens"]
        self.assertEqual(len(toks), vocab_size)
        self.assertEqual(toks[:6], ["a", "b", "ab", "\u0120the", "<|begin_of_text|>", "<|end_of_text|>"])
        self.assertEqual(meta["tokenizer.ggml.token_type"][:7], [1, 1, 1, 1, 3, 3, 5])
        self.assertEqual(meta["tokenizer.ggml.merges"], ["a b", "ab b"])
        self.assertNotIn("tokenizer.ggml.scores", meta)
        self.assertEqual((meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"]), (4, 5))
        self.assertIs(meta["tokenizer.ggml.add_bos_token"], True)
        nm = node_meta(out)
        if nm is not None:
            self.assertEqual(nm["metadata"]["tokenizer.ggml.merges"], ["a b", "ab b"])
            self.assertEqual(nm["metadata"]["tokenizer.ggml.tokens"][:6], toks[:6])

    def test_inexact_types_and_requantize(self):
        c = self.p("int8g128.mxq")
        run("convert", self.src, "-o", c, "-t", "int8", "-q")  # default group 128: no exact counterpart
        out = self.p("x.gguf")
        r = run("export", c, "--gguf", out, ok=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("no exact llama.cpp type", r.stderr)
        self.assertIn("int8:128", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        self.assertFalse(os.path.exists(out))
        run("export", c, "--gguf", out, "--requantize", "f32", "-q")
        self.check_gguf(c, out)  # F32 holds every value exactly
        run("export", c, "--gguf", out, "--requantize", "q8_0", "-f", "-q")
        meta, infos, start, raw = read_gguf(out)
        with mixq.open(c) as f:
            for name, ne, t, off in infos:
                if len(ne) != 2:
                    continue
                self.assertEqual(t, 8)
                hf = [x for x in f.tensors() if gguf_name(x.name) == name][0]
                n = int(np.prod(ne))
                got = decode_blocks(8, raw[start + off:start + off + n // 32 * 34], n).reshape(hf.shape)
                x = hf.dequantize()
                if name.endswith("attn_q.weight") or name.endswith("attn_k.weight"):
                    continue
                d = np.abs(x).reshape(-1, 32).max(axis=1) / 127
                err = np.abs(got - x).reshape(-1, 32).max(axis=1)
                self.assertTrue(np.all(err <= d * 0.5 * 1.01 + 1e-12), name)


    def test_lookup_table_types_are_refused_or_requantized(self):
        """nl4 / nl4_dq have no llama.cpp counterpart with mixq's own level table: the export names them
        and refuses, and --requantize f32 holds their values exactly."""
        for qt in ("nl4", "nl4_dq"):
            c = self.p("%s.mxq" % qt)
            run("convert", self.src, "-o", c, "-t", qt, "-q")
            out = self.p("%s.gguf" % qt)
            r = run("export", c, "--gguf", out, ok=False)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("no exact llama.cpp type", r.stderr)
            self.assertIn("%s:32" % qt, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1)
            self.assertFalse(os.path.exists(out))
            run("export", c, "--gguf", out, "--requantize", "f32", "-q")
            seen = self.check_gguf(c, out)
            self.assertIn(0, seen)  # GGML_TYPE_F32


class TestContainerAlone(unittest.TestCase):
    def test_eval_needs_nothing_beside_the_container(self):
        """config.json and the tokenizer come from the container: the same perplexity as with the
        checkpoint directory's files."""
        src = os.path.join(SHARED, "tiny-llama-6l")
        text = os.path.join(SHARED, "eval-text.txt")
        if not os.path.isdir(src) or not os.path.isfile(text):
            self.skipTest("no shared tiny-llama-6l")
        tmp = tempfile.mkdtemp(prefix="mixq-alone-")
        try:
            c = os.path.join(tmp, "m.mxq")
            run("convert", src, "-o", c, "-t", "int8", "-q")
            self.assertEqual(os.listdir(tmp), ["m.mxq"])
            a = json.loads(run("eval", c, "--text", text, "--ctx", "64", "--chunks", "4", "--json").stdout)
            b = json.loads(run("eval", c, "--config", src, "--text", text, "--ctx", "64", "--chunks", "4",
                               "--json").stdout)
            self.assertEqual(a["perplexity"], b["perplexity"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
