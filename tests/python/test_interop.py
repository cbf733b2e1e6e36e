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


if __name__ == "__main__":
    unittest.main(verbosity=2)
