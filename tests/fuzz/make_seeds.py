#!/usr/bin/env python3
"""Regenerates the seed corpora of the fuzz targets (tests/fuzz/corpus/).

    python3 tests/fuzz/make_seeds.py build/mixq

Writes small, deterministic inputs:
  corpus/st_header/  safetensors files: a shrunken copy of the tiny-llama
                     layout (same names, dtypes and ranks, small shapes), every
                     dtype, edge cases (scalar, empty, 8 dims, metadata forms)
                     and a few invalid files that reach the error paths;
  corpus/st_index/   model.safetensors.index.json variants (the testdata one
                     and small ones);
  corpus/container/  containers converted by `mixq convert` from the seeds
                     above (and an eight-tensor subset of the tiny-llama
                     layout) with every type and several group sizes, all
                     under 8 KiB; header variants breaking one rule each; and
                     byte edits of the data region.
Files named cov-* are not generated: they are small inputs a fuzzing campaign
found that add coverage (docs/FUZZING.md); the script leaves them alone.
The golden containers of testdata/golden/ are not copied (too large to fuzz
fast); the replay test reads them in place.  Seed names are stable: rerunning
the script rewrites the same files (outputs are byte-for-byte deterministic).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")

DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "U32": 4, "I32": 4,
              "U64": 8, "I64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "F16": 2, "BF16": 2,
              "F32": 4, "F64": 8}


class Rng:
    """splitmix64: deterministic everywhere."""

    def __init__(self, seed):
        self.s = seed & (2**64 - 1)

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & (2**64 - 1)
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        return z ^ (z >> 31)

    def value(self):
        """A float in [-1, 1) with an occasional outlier (x 12), exact in binary32."""
        v = ((self.next() >> 40) - (1 << 23)) / float(1 << 23)
        if self.next() % 29 == 0:
            v *= 12
        return v


def name_seed(name):
    h = 1469598103934665603
    for c in name.encode():
        h = ((h ^ c) * 1099511628211) & (2**64 - 1)
    return h


def encode(dtype, n, rng):
    out = bytearray()
    for i in range(n):
        if dtype == "BOOL":
            out += bytes([rng.next() & 1])
        elif dtype in ("U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64"):
            size = DTYPE_SIZE[dtype]
            out += (i % 100).to_bytes(size, "little")
        elif dtype == "F8_E4M3":
            out += bytes([0x20 + rng.next() % 0x30 | (0x80 if rng.next() & 1 else 0)])
        elif dtype == "F8_E5M2":
            out += bytes([0x20 + rng.next() % 0x30 | (0x80 if rng.next() & 1 else 0)])
        elif dtype == "F16":
            out += struct.pack("<e", rng.value())
        elif dtype == "BF16":
            out += struct.pack("<f", rng.value())[2:]
        elif dtype == "F32":
            out += struct.pack("<f", rng.value())
        elif dtype == "F64":
            out += struct.pack("<d", rng.value())
        else:
            raise ValueError(dtype)
    return bytes(out)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def safetensors(tensors, metadata=None, pad=True, meta_last=False, indent=None, trailer=b""):
    """tensors: list of (name, dtype, shape) in data order."""
    header = {}
    if metadata is not None and not meta_last:
        header["__metadata__"] = metadata
    data = bytearray()
    for name, dtype, shape in tensors:
        blob = encode(dtype, numel(shape), Rng(name_seed(name)))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    if metadata is not None and meta_last:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=None if indent else (",", ":"), indent=indent,
                      ensure_ascii=False).encode()
    if pad:
        text += b" " * ((-(8 + len(text))) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(data) + trailer


def raw_safetensors(header_text, data):
    text = header_text.encode() if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(text)) + text + data


def small_llama(dtype="BF16"):
    """The 35 tensors of testdata/tiny-llama-*, shrunk: same names, dtypes and ranks."""
    last = {64: 40, 160: 70, 100: 37}
    t = []
    def w(name, shape, dt=dtype):
        if len(shape) >= 1:
            shape = [max(1, d // 48) for d in shape[:-1]] + [last.get(shape[-1], shape[-1] // 2 or 1)]
        t.append((name, dt, shape))
    t.append(("model.vision_embed.position_ids", "I64", [1, 17]))
    w("lm_head.weight", [96, 64])
    t.append(("logit_scale", dtype, []))
    w("model.embed_tokens.weight", [96, 64])
    for l in (0, 1):
        p = "model.layers.%d." % l
        w(p + "input_layernorm.weight", [64])
        w(p + "mlp.down_proj.weight", [64, 160])
        if l == 1:
            t.append((p + "mlp.experts.gate_up_proj", dtype, [2, 1, 37]))
        w(p + "mlp.gate_proj.weight", [160, 64])
        w(p + "mlp.up_proj.weight", [160, 64])
        w(p + "post_attention_layernorm.weight", [64])
        for proj, rows in (("k", 32), ("o", 64), ("q", 64), ("v", 32)):
            w(p + "self_attn.%s_proj.bias" % proj, [rows])
            w(p + "self_attn.%s_proj.weight" % proj, [rows, 64])
    w("model.norm.weight", [64])
    w("model.vision_embed.patch_embedding.bias", [16])
    t.append(("model.vision_embed.patch_embedding.weight", dtype, [1, 3, 7, 7]))
    t.append(("model.layers.0.self_attn.causal_mask", "BOOL", [1, 1, 9, 9]))
    return t


MINI = ("model.vision_embed.position_ids", "logit_scale", "model.embed_tokens.weight",
        "model.layers.0.input_layernorm.weight", "model.layers.0.mlp.down_proj.weight",
        "model.layers.1.mlp.experts.gate_up_proj", "model.vision_embed.patch_embedding.weight",
        "model.layers.0.self_attn.causal_mask")


def mini_llama(dtype="BF16"):
    """Eight tensors of small_llama, one of each kind: the container seeds stay under 8 KiB."""
    return [t for t in small_llama(dtype) if t[0] in MINI]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def header_variants(src, outdir):
    """Containers whose JSON header breaks one rule each (FORMAT.md section 3).

    They are written with the source's preamble, so header_length and both
    checksums are stale: fuzz_container restamps them on its second run, which
    is where these inputs reach the header validator.
    """
    with open(src, "rb") as f:
        blob = f.read()
    ho = struct.unpack("<Q", blob[32:40])[0]
    base = json.loads(blob[ho:])

    def variant(name, edit):
        h = json.loads(json.dumps(base))
        edit(h)
        write(os.path.join(outdir, "hdr-" + name + ".mxq"),
              blob[:ho] + json.dumps(h, separators=(",", ":"), ensure_ascii=False).encode())

    t0 = lambda h: h["tensors"][0]
    t1 = lambda h: h["tensors"][1]
    variant("nine-dims", lambda h: t1(h).update(shape=[1] * 8 + [3]))
    variant("count-overflow", lambda h: t1(h).update(shape=[2**32, 2**32, 2**32]))
    variant("row-group-too-long", lambda h: t0(h).update(shape=[1, 2**32], group_size=0))
    variant("layout-overflow", lambda h: t0(h).update(shape=[2**62, 3]))
    variant("past-data-region", lambda h: t0(h).update(
        shape=[1000, 3], length=5008,
        sections={"codes": {"offset": 0, "length": 3000}, "scales": {"offset": 3008, "length": 2000}}))
    variant("section-not-object", lambda h: t0(h)["sections"].update(codes=4))
    variant("section-unexpected", lambda h: t1(h)["sections"].update(mins={"offset": 0, "length": 0}))
    variant("source-files-entry", lambda h: h["metadata"].update(source_files=[1]))
    variant("meta-types", lambda h: h["metadata"].update(source_metadata={"k": 1}))
    variant("name-duplicate", lambda h: t1(h).update(name="a"))
    variant("xxh3-upper", lambda h: t1(h).update(xxh3=t1(h)["xxh3"].upper()))
    variant("xxh3-long", lambda h: t1(h).update(xxh3=t1(h)["xxh3"] + "0"))
    variant("quant-type-new", lambda h: t1(h).update(quant_type="int3"))
    variant("group-not-pow2", lambda h: t0(h).update(group_size=96))
    variant("tensors-object", lambda h: h.update(tensors={}))
    variant("no-tensors-left", lambda h: h.update(tensors=[]))
    variant("unknown-keys", lambda h: (h.update(future={"x": [1.5, None]}), t0(h).update(future=True)))

    # byte edits of the data region (header and its checksum intact)
    def patched(name, offset, value):
        b = bytearray(blob)
        b[offset] = value
        write(os.path.join(outdir, "data-" + name + ".mxq"), bytes(b))
    a = base["tensors"][0]
    patched("code-changed", a["offset"], blob[a["offset"]] ^ 0x55)                      # tensor xxh3 mismatch
    patched("inner-padding", a["offset"] + a["sections"]["codes"]["length"], 1)         # between two sections
    patched("gap-padding", a["offset"] + a["length"], 1)                                # between two tensors


def json_seeds(ct, ix, outdir):
    """JSON texts for fuzz_json_fast: real headers and index files, and edge cases of RFC 8259."""
    for name in ("mini-llama-int4-g64.mxq", "wide-rows-int4_dq-g16.mxq", "two-tensors-int8-1d.mxq"):
        with open(os.path.join(ct, name), "rb") as f:
            blob = f.read()
        ho = struct.unpack("<Q", blob[32:40])[0]
        write(os.path.join(outdir, "header-" + name[:-4] + ".json"), blob[ho:])
    shutil.copy(os.path.join(ix, "three-shards.json"), os.path.join(outdir, "index-three-shards.json"))
    members = ",".join('"k%02d":%d' % (i, i) for i in range(20))
    texts = {
        "numbers.json": r"[0,-0,1,-1,9223372036854775807,-9223372036854775808,1.5,-2.5e-10,1E+2,1e-400,0.0,"
                        r"-0.0,123456789012345678901234567890.5,4.9e-324,1.7976931348623157e308]",
        "strings.json": r'["\u00e9\u6743\ud83d\ude00","\"\\\/\b\f\n\r\t","' + "caf\u00e9 \u6743\u91cd \U0001f600" + r'",""]',
        "keys.json": r'{"a":{"\u0062":[],"c":{}},"\n":null,"' + "\u00e9" + r'":true,"":false}',
        "scalar-string.json": ' "x" ',
        "scalar-number.json": "\t12\r\n",
        "scalar-true.json": "true",
        "many-members.json": "{" + members + "}",
        "deep-64.json": "[" * 64 + "]" * 64,
        "bad-deep-65.json": "[" * 65 + "]" * 65,
        "bad-dup-many.json": "{" + members + ',"k07":0}',
        "bad-dup-escaped.json": r'{"a":1,"\u0061":2}',
        "bad-trailing-comma.json": '{"a":[1,2,],}',
        "bad-bom.json": "\ufeff{}",
        "bad-nan.json": "[NaN,Infinity]",
        "bad-leading-zero.json": "[01]",
        "bad-lone-surrogate.json": r'["\ud800x"]',
        "bad-nul-escape.json": r'{"a\u0000":1}',
        "bad-control.json": '["a\tb"]',
        "bad-int-range.json": "[9223372036854775808]",
        "bad-real-range.json": "[1e400]",
        "bad-after-value.json": "{} {}",
        "bad-empty.json": "",
        "bad-dup-long-key.json": '{"%s":1,"%s":2}' % (("\u00e9" * 3 + "\u6743k") * 20, ("\u00e9" * 3 + "\u6743k") * 20),
    }
    for name, text in texts.items():
        write(os.path.join(outdir, name), text.encode())
    write(os.path.join(outdir, "bad-utf8-truncated.json"), b'["\xe6\x9d"]')
    write(os.path.join(outdir, "bad-utf8-overlong.json"), b'["\xc0\xaf"]')


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py PATH/TO/mixq")
    mixq = os.path.abspath(sys.argv[1])
    st = os.path.join(CORPUS, "st_header")
    ix = os.path.join(CORPUS, "st_index")
    ct = os.path.join(CORPUS, "container")
    jf = os.path.join(CORPUS, "json_fast")
    for d in (st, ix, ct, jf):
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):  # keep the cov-* inputs found by fuzzing campaigns
            if not f.startswith("cov-"):
                os.remove(os.path.join(d, f))

    # --- safetensors headers -------------------------------------------
    seeds = {}
    seeds["small-llama-bf16.safetensors"] = safetensors(small_llama("BF16"), {"format": "pt"})
    seeds["small-llama-f32.safetensors"] = safetensors(small_llama("F32"), {"format": "pt"})
    seeds["all-dtypes.safetensors"] = safetensors(
        [("t." + dt.lower(), dt, [2, 3]) for dt in DTYPE_SIZE], {"format": "pt", "note": "every dtype"})
    seeds["edge-shapes.safetensors"] = safetensors(
        [("scalar", "F32", []), ("empty", "F16", [0]), ("empty_rows", "BF16", [4, 0]),
         ("zero_dim", "F32", [0, 3]), ("one", "F64", [1]), ("eight_dims", "F16", [1, 2, 1, 2, 1, 1, 2, 3]),
         ("odd_row", "BF16", [3, 33]), ("caf\u00e9.\u6743\u91cd", "I8", [5])],
        {"format": "pt", "k\u00e9y": "v\u00e4lue", "": ""}, meta_last=True)
    seeds["wide-rows.safetensors"] = safetensors(
        [("w.two_supers", "F32", [2, 300]), ("w.three_supers", "BF16", [1, 513]), ("w.short", "F16", [3, 20]),
         ("w.long_row", "F16", [1, 1100])],  # a row over 1024: the f16 output's heap row buffer
        {"format": "pt"})
    seeds["meta-null-indent.safetensors"] = safetensors(
        [("a", "F32", [2, 2]), ("b", "U16", [3])], None, pad=False, indent=1)
    seeds["no-tensors.safetensors"] = raw_safetensors("{}", b"")
    seeds["meta-only.safetensors"] = raw_safetensors('{"__metadata__":{"format":"pt"}}      ', b"")
    seeds["meta-null.safetensors"] = raw_safetensors(
        '{"__metadata__":null,"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4],"extra":[1,{}]}}', b"\1\2\3\4")
    seeds["unordered-offsets.safetensors"] = raw_safetensors(
        '{"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},'
        '"c":{"dtype":"BOOL","shape":[0,5],"data_offsets":[8,8]}}', b"\0\0\0\1\0\x3c\0\xbc")
    # invalid inputs, each failing one rule
    seeds["bad-overlap.safetensors"] = raw_safetensors(
        '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}',
        b"abcd")
    seeds["bad-gap.safetensors"] = raw_safetensors(
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}', b"abcd")
    seeds["bad-size.safetensors"] = raw_safetensors(
        '{"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,4]}}', b"abcd")
    seeds["bad-utf8.safetensors"] = raw_safetensors(b'{"\xc3\x28":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
                                                    b"a")
    seeds["bad-trailing.safetensors"] = safetensors([("a", "I16", [3])], {"format": "pt"}, trailer=b"xx")
    seeds["bad-dup-key.safetensors"] = raw_safetensors(
        '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
        b"ab")
    seeds["bad-header-len.safetensors"] = struct.pack("<Q", 2**40) + b"{}"
    seeds["bad-empty-file.safetensors"] = b""
    # messages that must cut a long name / shape short (disp_text, fmt_shape)
    seeds["bad-long-name.safetensors"] = raw_safetensors(
        json.dumps({"q\"\\\t\u007f" + "n" * 300: {"dtype": "X" * 200, "shape": [1], "data_offsets": [0, 1]}}), b"a")
    seeds["bad-shape-overflow-8d.safetensors"] = raw_safetensors(
        '{"t":{"dtype":"F64","shape":[%s],"data_offsets":[0,8]}}' % ",".join(["9223372036854775807"] * 8), b"\0" * 8)
    seeds["bad-real-offset.safetensors"] = raw_safetensors(
        '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1.5e300]}}', b"a")
    for name, data in seeds.items():
        write(os.path.join(st, name), data)

    # --- index.json -------------------------------------------------------
    shutil.copy(os.path.join(ROOT, "testdata", "tiny-llama-sharded", "model.safetensors.index.json"),
                os.path.join(ix, "tiny-llama-sharded.index.json"))
    idx = {}
    idx["minimal.json"] = '{"weight_map":{"a":"model.safetensors"}}'
    idx["three-shards.json"] = json.dumps({
        "metadata": {"total_size": 123, "format": "pt"},
        "weight_map": {"z.weight": "s-3.safetensors", "a.bias": "s-1.safetensors", "m.w": "s-2.safetensors",
                       "b.\u00e9": "s-1.safetensors", "esc\"ape\\\t": "s-2.safetensors",
                       "m.v": "s-3.safetensors"}}, indent=2, ensure_ascii=True)
    idx["unicode.json"] = json.dumps({"weight_map": {"\u6743\u91cd": "\u5206\u7247.safetensors",
                                                     "x": "\u5206\u7247.safetensors"}}, ensure_ascii=False)
    idx["bad-path.json"] = '{"metadata":{},"weight_map":{"a":"../evil.safetensors","b":"."}}'
    idx["bad-empty.json"] = '{"weight_map":{}}'
    idx["bad-types.json"] = '{"metadata":[],"weight_map":{"a":1}}'
    idx["bad-real.json"] = '{"weight_map":-2.5e-7}'
    idx["bad-long-name.json"] = json.dumps({"weight_map": {"\t\"" + "n" * 300: 1.0}})
    for name, text in idx.items():
        write(os.path.join(ix, name), text.encode())

    # --- containers -------------------------------------------------------
    tmp = tempfile.mkdtemp(prefix="mixq-seeds-")
    try:
        sources = dict(seeds)
        sources["mini-llama-bf16.safetensors"] = safetensors(mini_llama("BF16"), {"format": "pt"})
        sources["mini-llama-f32.safetensors"] = safetensors(mini_llama("F32"), {"format": "pt"})

        def convert(src_seed, out, *opts):
            src = os.path.join(tmp, src_seed)
            write(src, sources[src_seed])
            dst = os.path.join(ct, out)
            subprocess.run([mixq, "convert", src, "-o", dst, "--force", "--quiet"] + list(opts), check=True)
        convert("mini-llama-bf16.safetensors", "mini-llama-int4-g64.mxq", "--type", "int4")
        convert("mini-llama-bf16.safetensors", "mini-llama-int4-g16-1d.mxq", "--type", "int4", "--group-size", "16",
                "--quantize-1d")
        convert("mini-llama-bf16.safetensors", "mini-llama-int8-g128.mxq", "--type", "int8")
        convert("mini-llama-f32.safetensors", "mini-llama-int8-row-1d.mxq", "--type", "int8", "--group-size", "row",
                "--quantize-1d")
        convert("mini-llama-f32.safetensors", "mini-llama-int8-g32.mxq", "--type", "int8", "--group-size", "32")
        convert("mini-llama-f32.safetensors", "mini-llama-f16.mxq", "--type", "f16")
        convert("mini-llama-bf16.safetensors", "mini-llama-f32-1d.mxq", "--type", "f32", "--quantize-1d")
        convert("all-dtypes.safetensors", "all-dtypes-int4-g256.mxq", "--type", "int4", "--group-size", "256")
        convert("all-dtypes.safetensors", "all-dtypes-bf16-1d.mxq", "--type", "bf16", "--quantize-1d")
        convert("edge-shapes.safetensors", "edge-shapes-int4-g32-1d.mxq", "--type", "int4", "--group-size", "32",
                "--quantize-1d")
        convert("edge-shapes.safetensors", "edge-shapes-int8-row.mxq", "--type", "int8", "--group-size", "row")
        convert("no-tensors.safetensors", "no-tensors.mxq")
        convert("mini-llama-bf16.safetensors", "mini-llama-int4s-g16.mxq", "--type", "int4s", "--group-size", "16")
        convert("mini-llama-f32.safetensors", "mini-llama-int2-1d.mxq", "--type", "int2", "--quantize-1d")
        for qt, gs in (("int4_dq", "16"), ("int4_dq", "64"), ("int2_dq", "16"), ("int3_dq", "16"),
                       ("int6_dq", "16"), ("int4s", "256"), ("int2", "128"), ("nl4", "16"), ("nl4_dq", "32"),
                       ("cb4_dq", "32"), ("cb3_dq", "16"), ("cb2_dq", "16")):
            convert("wide-rows.safetensors", "wide-rows-%s-g%s.mxq" % (qt, gs), "--type", qt, "--group-size", gs)
        # fp8: one f32 scale per tensor (the default: scales section of row stride 0) or per group
        convert("wide-rows.safetensors", "wide-rows-fp8_e4m3-tensor.mxq", "--type", "fp8_e4m3")
        convert("wide-rows.safetensors", "wide-rows-fp8_e5m2-g32.mxq", "--type", "fp8_e5m2", "--group-size", "32")
        convert("mini-llama-bf16.safetensors", "mini-llama-fp8_e5m2-1d.mxq", "--type", "fp8_e5m2", "--quantize-1d")
        convert("meta-null-indent.safetensors", "two-tensors-int8-1d.mxq", "--quantize-1d")
        stored_files_seeds(mixq, sources["mini-llama-bf16.safetensors"], tmp, ct)
    finally:
        shutil.rmtree(tmp)
    header_variants(os.path.join(ct, "two-tensors-int8-1d.mxq"), ct)
    codebook_variants(os.path.join(ct, "wide-rows-cb3_dq-g16.mxq"), ct)
    json_seeds(ct, ix, jf)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(CORPUS) for f in fs)
    print("corpus: %d bytes" % total)


def codebook_variants(src, outdir):
    """Codebook containers (FORMAT.md 4.12, format 1.2) whose codebook section breaks the layout:
    wrong length, wrong offset, missing; stale checksums, restamped by fuzz_container."""
    with open(src, "rb") as f:
        blob = f.read()
    ho = struct.unpack("<Q", blob[32:40])[0]
    base = json.loads(blob[ho:])

    def variant(name, edit):
        h = json.loads(json.dumps(base))
        edit(h["tensors"][0]["sections"])
        write(os.path.join(outdir, "hdr-codebook-" + name + ".mxq"),
              blob[:ho] + json.dumps(h, separators=(",", ":"), ensure_ascii=False).encode())

    variant("length", lambda s: s["codebook"].update(length=s["codebook"]["length"] + 1))
    variant("offset", lambda s: s["codebook"].update(offset=s["codebook"]["offset"] - 64))
    variant("missing", lambda s: s.pop("codebook"))


def stored_files_seeds(mixq, model, tmp, ct):
    """Containers with stored model files (FORMAT.md §3.3, format 1.1): a checkpoint directory
    with config.json and friends, and variants of its "files" entries (stale checksums are
    restamped by fuzz_container)."""
    d = os.path.join(tmp, "with-files")
    os.makedirs(d)
    write(os.path.join(d, "model.safetensors"), model)
    write(os.path.join(d, "config.json"), b'{"architectures":["LlamaForCausalLM"],"model_type":"llama",'
          b'"hidden_size":8,"num_hidden_layers":1}')
    write(os.path.join(d, "tokenizer_config.json"), b'{"add_bos_token":true,"bos_token":"<s>"}')
    write(os.path.join(d, "generation_config.json"), b"")
    out = os.path.join(ct, "files-int8.mxq")
    subprocess.run([mixq, "convert", d, "-o", out, "--force", "--quiet"], check=True)
    with open(out, "rb") as f:
        full = f.read()
    ho, hl = struct.unpack_from("<QQ", full, 32)
    hdr = json.loads(full[ho:ho + hl])

    def variant(name, edit):
        h = json.loads(json.dumps(hdr))
        edit(h["files"])
        text = json.dumps(h, separators=(",", ":")).encode()
        pre = bytearray(full[:64])
        struct.pack_into("<Q", pre, 40, len(text))
        write(os.path.join(ct, name), bytes(pre) + full[64:ho] + text)

    def corrupt_data(fs):
        fs[0]["data"] = fs[0]["data"][:8] + ("A" if fs[0]["data"][8] != "A" else "B") + fs[0]["data"][9:]
    variant("files-bad-zlib.mxq", corrupt_data)
    variant("files-dup-name.mxq", lambda fs: fs.append(dict(fs[0])))
    variant("files-size-lie.mxq", lambda fs: fs[0].update(size=fs[0]["size"] + 1))
    variant("files-path-name.mxq", lambda fs: fs[0].update(name="../config.json"))
    variant("files-none.mxq", lambda fs: fs[:] and fs.__setitem__(slice(None), [
        {"name": "a", "size": 3, "compression": "none", "stored_size": 3, "xxh3": "0" * 16, "data": "YWJj"}]))


if __name__ == "__main__":
    main()
