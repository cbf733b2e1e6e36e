#!/usr/bin/env python3
"""Tests of the pure-Python reader (python/mixq) against the C library.

Usage: test_reader.py MIXQ_EXE LIBMIXQ_SO|- SOURCE_ROOT

Containers of every quant type and group size are written by the mixq CLI;
every tensor is dequantized by libmixq (ctypes: mixq_open, mixq_find,
mixq_dequantize_f32) and by the Python reader, and the binary32 bit patterns
must be identical.  With "-" instead of the library (sanitizer builds, whose
libmixq.so cannot be loaded into Python) the same checks go through the mixq
program: `mixq export` to F32 safetensors for the values, `mixq verify` and
`mixq dump` for what is accepted.  Exit status 77 (skipped) when numpy is
missing.
"""
import ctypes
import base64
import json
import os
import random
import shutil
import struct
import zlib
import subprocess
import sys
import tempfile
import unittest

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipped")
    sys.exit(77)

if len(sys.argv) < 4:
    print(__doc__)
    sys.exit(2)
MIXQ_EXE, LIBMIXQ, SOURCE_ROOT = (a if a == "-" else os.path.abspath(a) for a in sys.argv[1:4])
del sys.argv[1:4]
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(SOURCE_ROOT, "python"))
import mixq  # noqa: E402
from mixq import _xxh3  # noqa: E402

TINY = os.path.join(SOURCE_ROOT, "testdata", "tiny-llama-bf16")
TINY_F32 = os.path.join(SOURCE_ROOT, "testdata", "tiny-llama-f32")
# Containers are written with fsync; on tmpfs that costs nothing.
TMP_BASE = os.environ.get("MIXQ_TEST_TMPDIR") or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
SHARED_MODELS = os.environ.get("MIXQ_SHARED_MODELS", os.path.join(SOURCE_ROOT, "..", "shared", "models"))

# Every quant type with every group size the format allows ("row" = 0: per row, for fp8 per tensor).
TYPE_GROUPS = {
    "int8": ["row", 32, 64, 128, 256],
    "int4": [16, 32, 64, 128, 256],
    "int4s": [16, 32, 64, 128, 256],
    "int2": [16, 32, 64, 128],
    "int4_dq": [16, 32, 64],
    "int2_dq": [16],
    "int3_dq": [16],
    "int6_dq": [16],
    "cb4_dq": [32],
    "cb3_dq": [16],
    "cb2_dq": [16],
    "fp8_e4m3": ["tensor", 32, 64, 128, 256],
    "fp8_e5m2": ["tensor", 32, 64, 128, 256],
    "nl4": [16, 32, 64, 128, 256],
    "nl4_dq": [32],
}
PLAIN_TYPES = ["f32", "f16", "bf16"]


# ---------------------------------------------------------------------------- the C library

class CError(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 512)]


class CInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("ndim", ctypes.c_uint), ("shape", ctypes.c_uint64 * 8),
                ("n_elements", ctypes.c_uint64), ("rows", ctypes.c_uint64), ("row_length", ctypes.c_uint64),
                ("qtype", ctypes.c_int), ("quant_type", ctypes.c_char_p), ("source_dtype", ctypes.c_char_p),
                ("group_size", ctypes.c_uint), ("quantized", ctypes.c_int), ("symmetric", ctypes.c_int),
                ("offset", ctypes.c_uint64), ("nbytes", ctypes.c_uint64), ("bits_per_weight", ctypes.c_double),
                ("checksum", ctypes.c_uint64)]


class CLib:
    def __init__(self, path):
        L = ctypes.CDLL(path)
        L.mixq_open.restype = ctypes.c_void_p
        L.mixq_open.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.POINTER(CError)]
        L.mixq_close.argtypes = [ctypes.c_void_p]
        L.mixq_find.restype = ctypes.c_void_p
        L.mixq_find.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        L.mixq_tensor_count.restype = ctypes.c_size_t
        L.mixq_tensor_count.argtypes = [ctypes.c_void_p]
        L.mixq_tensor_at.restype = ctypes.c_void_p
        L.mixq_tensor_at.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        L.mixq_tensor_get_info.argtypes = [ctypes.c_void_p, ctypes.POINTER(CInfo)]
        L.mixq_dequantize_f32.restype = ctypes.c_int
        L.mixq_dequantize_f32.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                                          ctypes.c_void_p, ctypes.POINTER(CError)]
        L.mixq_verify.restype = ctypes.c_int
        L.mixq_verify.argtypes = [ctypes.c_void_p, ctypes.POINTER(CError)]
        self.L = L

    def open(self, path, verify=False):
        """(handle, None) or (None, message)."""
        err = CError()
        h = self.L.mixq_open(path.encode(), 1 if verify else 0, ctypes.byref(err))
        return (h, None) if h else (None, err.message.decode("utf-8", "replace"))

    def close(self, h):
        self.L.mixq_close(h)

    def tensors(self, h):
        out = []
        for i in range(self.L.mixq_tensor_count(h)):
            t = self.L.mixq_tensor_at(h, i)
            info = CInfo()
            self.L.mixq_tensor_get_info(t, ctypes.byref(info))
            out.append((t, info))
        return out

    def dequantize(self, h, t, rb, re_, k):
        out = np.empty((re_ - rb) * k, dtype=np.float32)
        err = CError()
        s = self.L.mixq_dequantize_f32(h, t, rb, re_, out.ctypes.data, ctypes.byref(err))
        if s:
            raise AssertionError("mixq_dequantize_f32: " + err.message.decode())
        return out

    def verify(self, h):
        err = CError()
        s = self.L.mixq_verify(h, ctypes.byref(err))
        return None if s == 0 else err.message.decode("utf-8", "replace")


class CliBackend:
    """libmixq through the mixq program: open = `mixq dump` (or `mixq verify`), verify = `mixq verify`;
    handles are paths.  Messages are the program's stderr."""

    def open(self, path, verify=False):
        r = subprocess.run([MIXQ_EXE, "verify" if verify else "dump", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        return (path, None) if r.returncode == 0 else (None, r.stderr.decode("utf-8", "replace").strip())

    def close(self, h):
        pass

    def verify(self, h):
        return self.open(h, verify=True)[1]

    def dump(self, path):
        r = subprocess.run([MIXQ_EXE, "dump", path, "--json"], stdout=subprocess.PIPE, check=True)
        return json.loads(r.stdout)

    def export(self, path, out):
        """{name: (dtype, shape, bytes)} of `mixq export path` (F32 for the floating tensors)."""
        run_mixq("export", path, "-o", out, "-f", "-q")
        with open(out, "rb") as f:
            raw = f.read()
        os.unlink(out)
        n = struct.unpack_from("<Q", raw)[0]
        hdr = json.loads(raw[8:8 + n])
        hdr.pop("__metadata__", None)
        return {k: (v["dtype"], tuple(v["shape"]), raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
                for k, v in hdr.items()}


CLIB = CliBackend() if LIBMIXQ == "-" or os.environ.get("MIXQ_PYTEST_BACKEND") == "cli" else CLib(LIBMIXQ)
CLI_MODE = isinstance(CLIB, CliBackend)


# ---------------------------------------------------------------------------- helpers

def run_mixq(*args):
    r = subprocess.run([MIXQ_EXE] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise AssertionError("mixq %s failed: %s" % (" ".join(map(str, args)), r.stderr.decode()))


def convert(src, out, qtype, group=None, extra=()):
    """A container of `src` with every floating tensor (1-D too) stored as qtype:group."""
    if qtype.startswith("fp8"):
        spec = qtype if group in (None, "tensor") else "%s:%s" % (qtype, group)
        run_mixq("convert", src, "-o", out, "--override", "*=" + spec, "-f", "-q", *extra)
    elif qtype == "raw":
        run_mixq("convert", src, "-o", out, "--keep", "*", "-f", "-q", *extra)
    else:
        args = ["convert", src, "-o", out, "--type", qtype, "--quantize-1d", "-f", "-q"]
        if group is not None:
            args += ["--group-size", group]
        run_mixq(*args, *extra)
    return out


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).reshape(-1).view(np.uint32)


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw bytes)."""
    header, off, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_odd_checkpoint(path, seed=7):
    """Odd shapes (rows not a multiple of any group or super-block, odd lengths, 1-D, scalar, empty),
    values that exercise the scale rules, and every safetensors dtype (kept raw)."""
    rng = np.random.default_rng(seed)
    t = []

    def f32(name, shape, values=None):
        v = rng.standard_normal(shape).astype(np.float32) if values is None else values.astype(np.float32)
        t.append((name, "F32", shape, v.astype("<f4").tobytes()))

    f32("w.k37", (3, 37))
    f32("w.k300", (5, 300))
    f32("w.k513", (2, 3, 513))
    f32("w.k1000", (1, 1000), rng.standard_normal(1000) * np.exp(rng.uniform(-20, 10, 1000)))
    f32("w.k17", (4, 17))
    f32("w.k1", (6, 1))
    f32("w.k2", (2, 2))
    special = np.zeros((4, 256), dtype=np.float32)
    special[1] = 3.25                                    # constant group
    special[2] = -np.abs(rng.standard_normal(256)) - 1   # all negative
    special[3, ::3] = 65504.0                            # the f16 limit
    special[3, 1::3] = 1e-7                              # f16 subnormal range
    f32("w.special", (4, 256), special)
    f32("w.pos", (3, 96), np.abs(rng.standard_normal((3, 96))) + 0.5)  # positive minimums
    f32("w.empty_rows", (0, 64))
    f32("w.empty_cols", (4, 0))
    f32("v.one_d", (77,))
    f32("v.scalar", ())
    t.append(("w.f64", "F64", (3, 40), rng.standard_normal((3, 40)).astype("<f8").tobytes()))
    t.append(("w.f16", "F16", (2, 70), rng.standard_normal((2, 70)).astype("<f2").tobytes()))
    # 1-D tensors of every dtype with awkward values; kept raw unless --quantize-1d (the float ones are
    # only given to conversions that keep them: non-finite values cannot be quantized).
    ints = {
        "BOOL": np.array([0, 1, 2, 255, 7], dtype=np.uint8),
        "U8": np.arange(256, dtype=np.uint8),
        "I8": np.arange(-128, 128, dtype=np.int8),
        "U16": np.array([0, 1, 65535, 12345], dtype="<u2"),
        "I16": np.array([-32768, 32767, -1, 0], dtype="<i2"),
        "U32": np.array([0, 1, 2**32 - 1, 2**24 + 1, 2**25 + 3, 16777217, 0x80000080, 0xFFFFFF7F], dtype="<u4"),
        "I32": np.array([-2**31, 2**31 - 1, -(2**24 + 1), 2**24 + 3, -1], dtype="<i4"),
        "U64": np.array([0, 2**64 - 1, 2**63, 2**53 + 1, (1 << 40) + (1 << 16) + 1, (1 << 40) + (1 << 16),
                         (1 << 40) + (3 << 16), 0x8000008000000001, 0xFFFFFF8000000000, 0xFFFFFF7FFFFFFFFF,
                         (1 << 24) + 1, 3], dtype="<u8"),
        "I64": np.array([-2**63, 2**63 - 1, -(2**53 + 1), -((1 << 40) + (1 << 16)), (1 << 40) + (3 << 16),
                         -((1 << 40) + (1 << 16) + 1), 0x7FFFFF8000000000, -1, 0], dtype="<i8"),
    }
    for dt, arr in ints.items():
        t.append(("i." + dt.lower(), dt, (1, arr.size) if dt in ("U64", "I64") else arr.shape,
                  arr.tobytes()))
    return t, special


def nonfinite_vectors(rng):
    """1-D float tensors holding NaN payloads, infinities, signed zeros, subnormals (kept raw)."""
    f16 = np.concatenate([np.array([0x7C00, 0xFC00, 0x7C01, 0xFE00, 0x7E55, 0x8000, 0x0001, 0x83FF],
                                   dtype=np.uint16), rng.integers(0, 65536, 500, dtype=np.uint16)])
    bf16 = np.concatenate([np.array([0x7F80, 0xFF80, 0x7F81, 0xFFC1, 0x8000, 0x0001], dtype=np.uint16),
                           rng.integers(0, 65536, 500, dtype=np.uint16)])
    f32 = np.array([0x7F800000, 0xFF800000, 0x7F800001, 0xFFC00123, 0x80000000, 1, 0x7F7FFFFF],
                   dtype=np.uint32)
    f64 = [np.inf, -np.inf, np.nan, -0.0, 1e-300, 1 + 2**-24, 1 + 2**-24 + 2**-52, 3.4028234663852886e38]
    if not CLI_MODE:  # finite values that overflow binary32 (mixq export refuses them)
        f64 += [1e300, 3.4028235677973366e38]
    f64 = np.array(f64, dtype="<f8")
    return [("x.f16", "F16", (f16.size,), f16.astype("<u2").tobytes()),
            ("x.bf16", "BF16", (bf16.size,), bf16.astype("<u2").tobytes()),
            ("x.f32", "F32", (f32.size,), f32.astype("<u4").tobytes()),
            ("x.f64", "F64", (f64.size,), f64.tobytes()),
            ("x.e4m3", "F8_E4M3", (256,), np.arange(256, dtype=np.uint8).tobytes()),
            ("x.e5m2", "F8_E5M2", (256,), np.arange(256, dtype=np.uint8).tobytes())]


def patch_file(path, edits):
    """Applies byte edits {offset: bytes} to a container and rewrites every checksum so that the
    file stays valid: each tensor's xxh3 in the header (same length), the header's and the
    preamble's."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    for off, b in edits.items():
        data[off:off + len(b)] = b
    ho, hl = struct.unpack_from("<QQ", data, 32)
    header = json.loads(bytes(data[ho:ho + hl]))
    hdr = bytes(data[ho:ho + hl])
    for e in header["tensors"]:
        new = "%016x" % _xxh3.xxh3_64_pure(bytes(data[e["offset"]:e["offset"] + e["length"]]))
        hdr = hdr.replace(('"xxh3":"%s"' % e["xxh3"]).encode(), ('"xxh3":"%s"' % new).encode())
    data[ho:ho + hl] = hdr
    struct.pack_into("<Q", data, 48, _xxh3.xxh3_64_pure(hdr))
    struct.pack_into("<Q", data, 56, _xxh3.xxh3_64_pure(bytes(data[:56])))
    with open(path, "wb") as f:
        f.write(data)


def build_container(path, header, data=b"", raw_header=None, preamble=None):
    """A container with the given header object (or raw header bytes) after `data`, with correct
    checksums unless `preamble` overrides fields: dict of struct field -> value."""
    hdr = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    data = data + b"\0" * (-len(data) % 64)
    fields = {"magic": b"\x89MXQ\r\n\x1a\n", "major": 1, "minor": 0, "flags": 0, "data_offset": 64,
              "data_length": len(data), "header_offset": 64 + len(data), "header_length": len(hdr),
              "header_xxh3": _xxh3.xxh3_64_pure(hdr)}
    fields.update(preamble or {})
    p = struct.pack("<8sHHIQQQQQ", fields["magic"], fields["major"], fields["minor"], fields["flags"],
                    fields["data_offset"], fields["data_length"], fields["header_offset"], fields["header_length"],
                    fields["header_xxh3"])
    p += struct.pack("<Q", fields.get("preamble_xxh3", _xxh3.xxh3_64_pure(p)))
    with open(path, "wb") as f:
        f.write(p + data + hdr)
    return path


# ---------------------------------------------------------------------------- tests

class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mixq-pytest-", dir=TMP_BASE)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def compare_with_c(self, path, row_ranges=True):
        """Every tensor of `path`: the same listing and bit-identical dequantization as libmixq.
        Returns the set of quant types seen."""
        if CLI_MODE:
            return self.compare_with_export(path, row_ranges)
        h, msg = CLIB.open(path, verify=True)
        self.assertIsNotNone(h, msg)
        seen = set()
        try:
            with mixq.open(path, verify=True) as f:
                ct = CLIB.tensors(h)
                self.assertEqual(len(ct), len(f))
                for (tp, info), t in zip(ct, f.tensors()):
                    self.assertEqual(info.name.decode(), t.name)
                    self.assertEqual(tuple(info.shape[:info.ndim]), t.shape)
                    self.assertEqual(info.quant_type.decode(), t.quant_type)
                    self.assertEqual(info.source_dtype.decode(), t.source_dtype)
                    self.assertEqual(info.group_size, t.group_size)
                    self.assertEqual((info.rows, info.row_length, info.n_elements),
                                     (t.rows, t.row_length, t.n_elements))
                    self.assertEqual((info.offset, info.nbytes, info.checksum), (t.offset, t.length, t.xxh3))
                    self.assertEqual(bool(info.quantized), t.quantized)
                    self.assertEqual(CLIB.L.mixq_find(h, t.name.encode()), tp)
                    want = CLIB.dequantize(h, tp, 0, t.rows, t.row_length)
                    got = t.dequantize()
                    self.assertEqual(got.shape, t.shape)
                    self.assertEqual(got.dtype, np.float32)
                    if not np.array_equal(bits(got), bits(want)):
                        bad = np.flatnonzero(bits(got) != bits(want))
                        self.fail("%s: tensor %s (%s:%d): %d elements differ, first at %d: %08x vs C %08x"
                                  % (path, t.name, t.quant_type, t.group_size, bad.size, bad[0],
                                     bits(got)[bad[0]], bits(want)[bad[0]]))
                    if row_ranges and t.rows >= 3:
                        rb, re_ = 1, t.rows - 1
                        part = t.dequantize(rb, re_)
                        self.assertEqual(part.shape, (re_ - rb, t.row_length))
                        self.assertTrue(np.array_equal(bits(part), bits(CLIB.dequantize(h, tp, rb, re_,
                                                                                         t.row_length))))
                    seen.add((t.quant_type, t.group_size))
        finally:
            CLIB.close(h)
        return seen

    def compare_with_export(self, path, row_ranges=True):
        """compare_with_c through the mixq program: the listing of `mixq dump --json`, the values of
        `mixq export` (F32, bit for bit; integer and bool tensors: their bytes)."""
        dump = CLIB.dump(path)
        exported = CLIB.export(path, path + ".export.safetensors")
        seen = set()
        with mixq.open(path, verify=True) as f:
            self.assertEqual([d["name"] for d in dump["tensors"]], f.names())
            for d, t in zip(dump["tensors"], f.tensors()):
                self.assertEqual((tuple(d["shape"]), d["quant_type"], d["source_dtype"], d["group_size"]),
                                 (t.shape, t.quant_type, t.source_dtype, t.group_size))
                self.assertEqual((d["file_offset"], d["bytes"], int(d["xxh3"], 16)), (t.offset, t.length, t.xxh3))
                dtype, shape, data = exported[t.name]
                self.assertEqual(shape, t.shape)
                seen.add((t.quant_type, t.group_size))
                if dtype != "F32":  # integer and bool tensors keep their bytes
                    self.assertEqual(dtype, t.source_dtype)
                    self.assertEqual(bytes(t.section("data")), data)
                    continue
                want = np.frombuffer(data, dtype="<u4")
                got = bits(t.dequantize())
                if not np.array_equal(got, want):
                    bad = np.flatnonzero(got != want)
                    self.fail("%s: tensor %s (%s:%d): %d elements differ, first at %d: %08x vs export %08x"
                              % (path, t.name, t.quant_type, t.group_size, bad.size, bad[0], got[bad[0]],
                                 want[bad[0]]))
                if row_ranges and t.rows >= 3:
                    part = t.dequantize(1, t.rows - 1)
                    self.assertTrue(np.array_equal(bits(part), want[t.row_length:(t.rows - 1) * t.row_length]))
        return seen


class TestXxh3(unittest.TestCase):
    def test_pure_against_module(self):
        try:
            import xxhash
        except ImportError:
            self.skipTest("the xxhash module is not installed")
        rng = random.Random(1)
        lengths = list(range(0, 300)) + [rng.randrange(300, 5000) for _ in range(60)] + \
            [1023, 1024, 1025, 2047, 2048, 2049, 16 * 1024, 1 << 20, (1 << 20) + 63, 3 * 1024 * 1024 + 1]
        for n in lengths:
            b = bytes(rng.getrandbits(8) for _ in range(min(n, 4096))) * (n // 4096 + 1)
            b = b[:n]
            self.assertEqual(_xxh3.xxh3_64_pure(b), xxhash.xxh3_64_intdigest(b), "length %d" % n)

    def test_known_values(self):
        # XXH3_64bits of "" and of b"a" from the reference implementation
        self.assertEqual(_xxh3.xxh3_64_pure(b""), 0x2D06800538D394C2)
        self.assertEqual(_xxh3.xxh3_64_pure(b"a"), 0xE6C632B61E964E1F)


class TestTypes(Base):
    def test_every_type_and_group_size(self):
        seen = set()
        for qtype, groups in TYPE_GROUPS.items():
            for g in groups:
                p = convert(TINY, self.path("t-%s-%s.mxq" % (qtype, g)), qtype, g)
                seen |= self.compare_with_c(p)
        for qtype in PLAIN_TYPES + ["raw"]:
            for src in (TINY, TINY_F32):
                p = convert(src, self.path("t-%s-%s.mxq" % (qtype, os.path.basename(src))), qtype)
                seen |= self.compare_with_c(p)
        types = {q for q, _ in seen}
        self.assertEqual(types, set(TYPE_GROUPS) | set(PLAIN_TYPES) | {"raw"})
        for qtype, groups in TYPE_GROUPS.items():
            for g in groups:
                self.assertIn((qtype, 0 if isinstance(g, str) else g), seen)

    def test_golden_and_planned(self):
        for g in ("v1-int4-g64.mxq", "v1-int8-row.mxq"):
            self.compare_with_c(os.path.join(SOURCE_ROOT, "testdata", "golden", g))
        p = self.path("planned.mxq")
        run_mixq("convert", TINY, "-o", p, "--target-bpw", "5", "-f", "-q")
        seen = self.compare_with_c(p)
        self.assertGreater(len({q for q, _ in seen}), 2)  # a mixed-precision file
        with mixq.open(p) as f:
            self.assertEqual(f.metadata["plan"]["strategy"], "budget")
            self.assertTrue(all(t.estimated_error is not None for t in f))

    def test_rtn_and_default_group(self):
        for qtype in ["int8", "int4", "int4s", "int2", "int4_dq", "int2_dq", "int3_dq", "int6_dq", "nl4", "nl4_dq"]:
            self.compare_with_c(convert(TINY, self.path("rtn-%s.mxq" % qtype), qtype, None, ["--rtn"]))

    def test_odd_shapes_and_all_dtypes(self):
        src = self.path("odd.safetensors")
        t, _ = make_odd_checkpoint(src)
        write_safetensors(src, t, {"format": "pt", "note": "odd"})
        for qtype, groups in TYPE_GROUPS.items():
            for g in groups:
                self.compare_with_c(convert(src, self.path("odd-%s-%s.mxq" % (qtype, g)), qtype, g))
        for qtype in PLAIN_TYPES + ["raw"]:
            self.compare_with_c(convert(src, self.path("odd-%s.mxq" % qtype), qtype))
        with mixq.open(self.path("odd-int8-row.mxq")) as f:
            self.assertEqual(f.source_metadata, {"format": "pt", "note": "odd"})
            self.assertEqual(f["v.scalar"].dequantize().shape, ())
            self.assertEqual(f["w.empty_rows"].dequantize().shape, (0, 64))
            self.assertEqual(f["w.empty_cols"].dequantize().shape, (4, 0))
            # integer tensors keep their exact values where binary32 holds them
            self.assertTrue(np.array_equal(f["i.i16"].dequantize(), [-32768, 32767, -1, 0]))
            self.assertEqual(f["i.u64"].dequantize()[0, 1], np.float32(2.0 ** 64))
            self.assertTrue(np.array_equal(f["i.bool"].dequantize(), [0, 1, 1, 1, 1]))
            self.assertTrue(np.array_equal(f["i.u32"].stored_array()[:3], [0, 1, 2**32 - 1]))

    def test_nonfinite_plain_values(self):
        rng = np.random.default_rng(3)
        src = self.path("nonfinite.safetensors")
        write_safetensors(src, nonfinite_vectors(rng) + [("w.m", "F32", (2, 64), np.ones(128, "<f4").tobytes())])
        p = self.path("nonfinite.mxq")
        run_mixq("convert", src, "-o", p, "--type", "int4", "-f", "-q")
        self.compare_with_c(p)
        with mixq.open(p) as f:
            self.assertEqual(f["x.e4m3"].quant_type, "raw")
            self.assertEqual(bits(f["x.f32"].dequantize())[2], 0x7F800001)  # F32 bits are kept exactly


class TestCraftedParameters(Base):
    """Section bytes rewritten (checksums fixed up): non-finite scales, random codes and scales."""

    def test_nonfinite_scales_give_canonical_nan(self):
        src = self.path("nan-src.safetensors")
        write_safetensors(src, make_odd_checkpoint(src)[0])
        name = "w.k513"  # [2, 3, 513]: 6 rows of 3 super-blocks, the last one partial
        cases = [("int8", 32, "scales", 2, b"\x00\x7c"), ("int8", "row", "scales", 0, b"\x00\x7e"),
                 ("int4s", 16, "scales", 2, b"\x01\xfc"),
                 ("int4", 64, "scales", 2, b"\x00\xfc"), ("int4", 64, "mins", 2, b"\x00\x7e"),
                 ("int2", 32, "mins", 2, b"\x00\x7c"), ("fp8_e4m3", 32, "scales", 4, b"\x00\x00\x80\x7f"),
                 ("fp8_e5m2", "tensor", "scales", 4, b"\x01\x00\xc0\xff"),
                 ("int4_dq", 32, "super_scales", 2, b"\x00\x7c"), ("int4_dq", 16, "super_mins", 2, b"\x00\xfc"),
                 ("int2_dq", 16, "super_mins", 2, b"\x00\x7d"), ("int3_dq", 16, "super_scales", 2, b"\x00\x7c"),
                 ("int6_dq", 16, "super_scales", 2, b"\x00\xfe"), ("nl4", 32, "scales", 2, b"\x00\xfc"),
                 ("nl4_dq", 32, "super_scales", 2, b"\x01\x7c"),
                 ("cb3_dq", 16, "super_scales", 2, b"\x00\x7c")]
        for qtype, g, sec, width, value in cases:
            p = convert(src, self.path("nan-%s-%s-%s.mxq" % (qtype, g, sec)), qtype, g)
            with mixq.open(p) as f:
                t = f[name]
                s = t.sections[sec]
                # row 4, group (or super-block) 1; the one per-tensor fp8 scale
                rel = s.row_stride * 4 + width if s.row_stride else 0
            patch_file(p, {s.offset + rel: value})
            self.compare_with_c(p)
            with mixq.open(p, verify=True) as f:
                t = f[name]
                out = bits(t.dequantize()).reshape(t.rows, t.row_length)
            if s.row_stride == 0:
                self.assertTrue(np.all(out == 0x7FC00000))
                continue
            span = 256 if sec.startswith("super") else (t.group_size or t.row_length)
            lo, hi = (span, min(2 * span, t.row_length)) if width else (0, t.row_length)
            self.assertGreater(hi, lo)
            nan = np.isnan(out.view(np.float32))
            self.assertTrue(np.all(out[4, lo:hi] == 0x7FC00000), (qtype, g, sec))
            self.assertEqual(int(nan.sum()), hi - lo, (qtype, g, sec))  # nothing else

    def test_random_section_bytes(self):
        """Every code and parameter pattern: sections filled with random bytes (NaN/Inf codes and
        scales included), C and Python must agree bit for bit."""
        rng = np.random.default_rng(11)
        for qtype, groups in TYPE_GROUPS.items():
            for g in groups[:2]:
                p = convert(TINY, self.path("rnd-%s-%s.mxq" % (qtype, g)), qtype, g)
                edits = {}
                with mixq.open(p) as f:
                    for t in f.tensors():
                        for s in t.sections.values():
                            if s.length:
                                edits[s.offset] = rng.integers(0, 256, s.length, dtype=np.uint8).tobytes()
                patch_file(p, edits)
                self.compare_with_c(p)


class TestVerify(Base):
    def test_flipped_byte_in_every_section_and_padding(self):
        src = convert(TINY, self.path("v-int4_dq.mxq"), "int4_dq", 32)
        raw_src = convert(TINY, self.path("v-int8.mxq"), "int8", 64)
        regions = []
        for p in (src, raw_src):
            with mixq.open(p) as f:
                ts = f.tensors()
                for t in [ts[i] for i in (0, 1, 5, 19, -2, -1)]:  # raw, 2-D, 1-D, 3-D ones
                    for s in t.sections.values():
                        if s.length:
                            regions.append((p, t, s))
        kinds = {s.name for _, _, s in regions}
        self.assertEqual(kinds, {"data", "codes", "scales", "mins", "super_scales", "super_mins"})
        for i, (p, t, s) in enumerate(regions):
            bad = self.path("flip%d.mxq" % i)
            shutil.copy(p, bad)
            with open(bad, "r+b") as fh:
                fh.seek(s.offset + s.length // 2)
                b = fh.read(1)
                fh.seek(s.offset + s.length // 2)
                fh.write(bytes([b[0] ^ 0x10]))
            with mixq.open(bad) as f:  # opens (tensor data is not read at open)...
                with self.assertRaises(mixq.ChecksumError) as cm:
                    f.verify()         # ...but verification names the tensor
            msg = str(cm.exception)
            self.assertIn('tensor "%s"' % t.name, msg)
            self.assertIn(bad, msg)
            self.assertNotIn("\n", msg)
            self.assertEqual(cm.exception.tensor, t.name)
            with self.assertRaises(mixq.ChecksumError):
                mixq.open(bad, verify=True)
            h, _ = CLIB.open(bad)
            self.assertIn('tensor "%s"' % t.name, CLIB.verify(h))
            CLIB.close(h)
            os.unlink(bad)

    def test_padding_preamble_header(self):
        p = convert(TINY, self.path("pad.mxq"), "int4", 64)
        with mixq.open(p) as f:
            size, ho = f.size, f.header_offset
            gaps = {}  # the first padding byte between sections, between tensors, at the end of the data
            ts = f.tensors()
            for t in ts:
                secs = list(t.sections.values())
                for a, b in zip(secs, secs[1:]):
                    if b.offset > a.offset + a.length:
                        gaps.setdefault("inner", a.offset + a.length)
            for a, b in zip(ts, ts[1:]):
                if b.offset > a.offset + a.length:
                    gaps.setdefault("between", a.offset + a.length)
            if ts[-1].offset + ts[-1].length < ho:
                gaps["end"] = ts[-1].offset + ts[-1].length
        self.assertEqual(set(gaps), {"inner", "between", "end"})
        for off in gaps.values():
            self.assertLess(off, ho)
            bad = self.path("padbad.mxq")
            shutil.copy(p, bad)
            patch_file(bad, {off: b"\x01"})  # tensor checksums fixed: only the padding rule fails
            with mixq.open(bad) as f, self.assertRaises(mixq.ChecksumError) as cm:
                f.verify()
            self.assertIn("padding at offset %d is not zero" % off, str(cm.exception))
            h, _ = CLIB.open(bad)
            self.assertIn("padding at offset %d is not zero" % off, CLIB.verify(h))
            CLIB.close(h)
        for off, what in ((20, "preamble"), (ho + 5, "header")):  # data_offset byte; inside the header
            bad = self.path("hdrbad.mxq")
            shutil.copy(p, bad)
            with open(bad, "r+b") as fh:
                fh.seek(off)
                b = fh.read(1)
                fh.seek(off)
                fh.write(bytes([b[0] ^ 1]))
            with self.assertRaises(mixq.ChecksumError) as cm:
                mixq.open(bad)
            self.assertIn(": %s" % what, str(cm.exception))
            self.assertIn("checksum mismatch", str(cm.exception))
            self.assertIsNone(CLIB.open(bad)[0])
        self.assertEqual(size, os.path.getsize(p))

    def test_pure_xxh3_verify(self):
        from mixq import reader
        p = convert(TINY, self.path("pure.mxq"), "int6_dq", 16)
        saved = reader.xxh3_64
        reader.xxh3_64 = _xxh3.xxh3_64_pure
        try:
            with mixq.open(p, verify=True) as f:
                t = f.tensors()[3]
            patch = self.path("pure-bad.mxq")
            shutil.copy(p, patch)
            with open(patch, "r+b") as fh:
                fh.seek(t.offset)
                b = fh.read(1)
                fh.seek(t.offset)
                fh.write(bytes([b[0] ^ 0x80]))
            with self.assertRaises(mixq.ChecksumError):
                mixq.open(patch, verify=True)
        finally:
            reader.xxh3_64 = saved


def good_header():
    """A valid one-tensor header (f32 [2, 3]) and its data."""
    data = np.arange(6, dtype="<f4").tobytes()
    return {"format": "mixq", "format_version": 1, "alignment": 64,
            "metadata": {"mixq_version": "0.1.0", "source_metadata": {}, "source_files": [],
                         "options": {"type": "f32", "group_size": 0, "quantize_1d": False, "search": True}},
            "tensors": [{"name": "w", "shape": [2, 3], "source_dtype": "F32", "quant_type": "f32",
                         "group_size": 0, "symmetric": True, "offset": 64, "length": 24,
                         "sections": {"data": {"offset": 0, "length": 24}},
                         "xxh3": "%016x" % _xxh3.xxh3_64_pure(data)}]}, data


class TestHostile(Base):
    def expect_reject(self, path, cls=mixq.MixqError, c_too=True):
        with self.assertRaises(cls) as cm:
            mixq.open(path, verify=True)
        msg = str(cm.exception)
        self.assertNotIn("\n", msg)
        self.assertTrue(msg.startswith(path), msg)
        if c_too:
            h, cmsg = CLIB.open(path, verify=True)
            self.assertIsNone(h, "libmixq accepts what Python rejects: %s" % msg)
        return msg

    def test_good_crafted(self):
        hd, data = good_header()
        p = build_container(self.path("good.mxq"), hd, data)
        with mixq.open(p, verify=True) as f:
            self.assertTrue(np.array_equal(f["w"].dequantize(), np.arange(6, dtype=np.float32).reshape(2, 3)))
            self.assertEqual(f.files(), [])
        self.compare_with_c(p)

    def test_bad_headers(self):
        hd, data = good_header()
        t0 = hd["tensors"][0]

        def variant(**changes):
            h = json.loads(json.dumps(hd))
            for k, v in changes.items():
                where, key = k.split("__") if "__" in k else ("top", k)
                obj = {"top": h, "t": h["tensors"][0] if h["tensors"] else None, "meta": h["metadata"],
                       "sec": h["tensors"][0]["sections"]["data"]}[where]
                if v is KeyError:
                    del obj[key]
                else:
                    obj[key] = v
            return h

        cases = [
            ("no format", variant(format=KeyError), "\"format\" is missing"),
            ("format", variant(format="mixx"), "\"format\" must be"),
            ("version", variant(format_version=2), "format_version"),
            ("version float", variant(format_version=1.0), "format_version"),
            ("alignment", variant(alignment=32), "alignment"),
            ("metadata type", variant(metadata=[]), "metadata"),
            ("tensors type", variant(tensors={}), "tensors"),
            ("source_metadata value", variant(meta__source_metadata={"a": 1}), "source_metadata"),
            ("options.group_size", variant(meta__options={"group_size": -1}), "group_size"),
            ("entry type", variant(tensors=[5]), "entry must be an object"),
            ("empty name", variant(t__name=""), "is empty"),
            ("name type", variant(t__name=5), "\"name\" must be a string"),
            ("shape dims", variant(t__shape=[1] * 9), "dims"),
            ("shape negative", variant(t__shape=[-2, 3]), "shape[0]"),
            ("shape bool", variant(t__shape=[True, 3]), "shape[0]"),
            ("shape overflow", variant(t__shape=[2**62, 2**62, 0]), "overflows"),
            ("shape huge", variant(t__shape=[2**62, 3]), "overflows"),
            ("shape big", variant(t__shape=[2**40, 3]), "\"length\""),
            ("source_dtype", variant(t__source_dtype="F128"), "unknown source_dtype"),
            ("group_size", variant(t__group_size=32), "group_size 32 is not allowed"),
            ("group_size huge", variant(t__group_size=2**63 - 1), "is not allowed"),
            ("symmetric", variant(t__symmetric=False), "symmetric"),
            ("symmetric type", variant(t__symmetric=1), "must be a boolean"),
            ("offset", variant(t__offset=128), "\"offset\" is 128"),
            ("offset huge", variant(t__offset=2**63 - 1), "\"offset\""),
            ("offset too big", variant(t__offset=2**64), "integer"),
            ("length", variant(t__length=2**63 - 1), "\"length\""),
            ("xxh3 case", variant(t__xxh3=t0["xxh3"].upper() if t0["xxh3"].upper() != t0["xxh3"] else "A" * 16),
             "xxh3"),
            ("xxh3 short", variant(t__xxh3="abc"), "xxh3"),
            ("sections missing", variant(t__sections={}), "section \"data\" is missing"),
            ("section extra", variant(t__sections={"data": {"offset": 0, "length": 24}, "codes": {}}),
             "unexpected section"),
            ("section offset", variant(sec__offset=64), "needs offset 0"),
            ("section length", variant(sec__length=2**63 - 1), "needs offset 0"),
            ("section type", variant(t__sections={"data": []}), "must be an object"),
            ("no tensors but data", variant(tensors=[]), "data_length"),
        ]
        for label, h, needle in cases:
            p = build_container(self.path("bad.mxq"), h, data)
            msg = self.expect_reject(p)
            self.assertIn(needle, msg, label)
        dup = variant()
        dup["tensors"].append(dict(dup["tensors"][0], offset=128))
        p = build_container(self.path("dup.mxq"), dup, data + b"\0" * 40 + data)
        self.assertIn("names must be unique", self.expect_reject(p))
        # an unknown quant_type is "unsupported", naming the tensor
        p = build_container(self.path("uq.mxq"), variant(t__quant_type="int5"), data)
        msg = self.expect_reject(p, mixq.UnsupportedError)
        self.assertIn('tensor "w": unsupported quant_type "int5"', msg)

    def test_bad_json(self):
        hd, data = good_header()
        good = json.dumps(hd).encode()
        raws = [b"{", b"[]", b"null", b'{"format":"mixq","format":"mixq"}', b"\xef\xbb\xbf" + good,
                b"\xff" + good, good.replace(b'"w"', b'"w\\u0000"'), good.replace(b'"w"', b'"\\ud800"'),
                good.replace(b'"mixq_version": "0.1.0"', b'"mixq_version": NaN'),
                good.replace(b'"mixq_version": "0.1.0"', b'"mixq_version": -Infinity'),
                b'{"a":' + b"[" * 100 + b"]" * 100 + b"}", b"[" * 100000 + b"]" * 100000,
                good.replace(b'"length": 24', b'"length": 24.0', 1), good.replace(b'"alignment": 64',
                                                                                     b'"alignment": 64e0'),
                good + b" x"]
        for raw in raws:
            p = build_container(self.path("json.mxq"), None, data, raw_header=raw)
            self.expect_reject(p, mixq.FormatError)

    def test_bad_preambles(self):
        hd, data = good_header()
        h = json.dumps(hd, separators=(",", ":")).encode()
        cases = [({"magic": b"\x89MXQ\r\n\x1a\x0b"}, "bad magic", mixq.FormatError),
                 ({"major": 2}, "newer", mixq.UnsupportedError),
                 ({"major": 0}, "invalid format version", mixq.FormatError),
                 ({"preamble_xxh3": 5}, "preamble: checksum", mixq.ChecksumError),
                 ({"flags": 1}, "flags", mixq.UnsupportedError),
                 ({"data_offset": 128}, "data_offset", mixq.FormatError),
                 ({"data_length": 65}, "multiple of 64", mixq.FormatError),
                 ({"data_length": 2**64 - 64}, "header_offset", mixq.FormatError),
                 ({"header_offset": 2**64 - 1}, "header_offset", mixq.FormatError),
                 ({"header_length": 0}, "header_length", mixq.FormatError),
                 ({"header_length": 2**28 + 1}, "header_length", mixq.FormatError),
                 ({"header_length": 2**64 - 1}, "header_length", mixq.FormatError),
                 ({"header_length": len(h) + 1}, "extends beyond", mixq.FormatError),
                 ({"header_length": len(h) - 1}, "unexpected byte", mixq.FormatError),
                 ({"header_xxh3": 1}, "header (bytes", mixq.ChecksumError)]
        for fields, needle, cls in cases:
            p = build_container(self.path("pre.mxq"), hd, data, preamble=fields)
            self.assertIn(needle, self.expect_reject(p, cls))
        # data_length consistent with the preamble but not with the tensors
        p = build_container(self.path("dl.mxq"), hd, data + b"\0" * 100)
        self.assertIn("data_length", self.expect_reject(p))
        # the tensor entry points beyond the data region
        big = json.loads(json.dumps(hd))
        big["tensors"][0]["shape"] = [2, 300]
        big["tensors"][0]["length"] = big["tensors"][0]["sections"]["data"]["length"] = 2400
        p = build_container(self.path("beyond.mxq"), big, data)
        self.assertIn("beyond the data region", self.expect_reject(p))

    def test_files_that_are_not_containers(self):
        empty = self.path("empty.mxq")
        open(empty, "wb").close()
        self.assertIn("empty", self.expect_reject(empty, mixq.FormatError))
        short = self.path("short.mxq")
        with open(short, "wb") as f:
            f.write(b"\x89MXQ\r\n\x1a\n" + b"\0" * 20)
        self.assertIn("too small", self.expect_reject(short, mixq.FormatError))
        self.expect_reject(self.path("does-not-exist.mxq"), mixq.MixqIOError)
        self.expect_reject(self.tmp, mixq.MixqIOError)
        fifo = self.path("fifo.mxq")
        if hasattr(os, "mkfifo"):
            os.mkfifo(fifo)
            self.assertIn("not a regular file", self.expect_reject(fifo, mixq.MixqIOError))
        with open(os.path.join(SOURCE_ROOT, "testdata", "golden", "v1-int4-g64.mxq"), "rb") as f:
            full = f.read()
        for cut in (63, 64, 1000, len(full) - 1):
            p = self.path("trunc.mxq")
            with open(p, "wb") as f:
                f.write(full[:cut])
            self.expect_reject(p)

    def test_header_mutations_agree_with_c(self):
        """Random edits of a valid header (checksums fixed up): Python raises MixqError or opens,
        never anything else, and accepts exactly what libmixq accepts."""
        p = convert(TINY, self.path("mut-src.mxq"), "int4_dq", 32)
        with open(p, "rb") as f:
            full = f.read()
        ho, hl = struct.unpack_from("<QQ", full, 32)
        hdr = full[ho:ho + hl]
        rng = random.Random(5)
        alphabet = b'{}[]",:0123456789-.eE truefalsnul\\'
        accepted = 0
        count = 100 if CLI_MODE else 300
        for i in range(count):
            h = bytearray(hdr)
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(len(h))
                op = rng.randrange(3)
                if op == 0:
                    h[pos] = rng.choice(alphabet)
                elif op == 1:
                    del h[pos]
                else:
                    h.insert(pos, rng.choice(alphabet))
            q = self.path("mut.mxq")
            data = full[64:ho]
            build_container(q, None, data, raw_header=bytes(h))
            try:
                with mixq.open(q, verify=True) as f:
                    for t in f.tensors():
                        t.dequantize()
                py_ok = True
            except mixq.MixqError as e:
                self.assertNotIn("\n", str(e))
                py_ok = False
            hc, cmsg = CLIB.open(q, verify=True)
            if hc:
                CLIB.close(hc)
            self.assertEqual(py_ok, bool(hc), "mutation %d: python %s, C %s" % (i, py_ok, cmsg))
            accepted += py_ok
        self.assertLess(accepted, count)


class TestStoredFiles(Base):
    expect_reject = TestHostile.expect_reject

    """Model files stored in the container (FORMAT.md §3.3): read back exactly, listed as
    `mixq dump` lists them, and every hostile variant rejected by both readers."""

    def listing(self, path):
        r = subprocess.run([MIXQ_EXE, "dump", path, "--json"], stdout=subprocess.PIPE, check=True)
        return json.loads(r.stdout)["files"]

    def test_files_travel(self):
        p = convert(TINY, self.path("files.mxq"), "int8")
        with open(os.path.join(TINY, "config.json"), "rb") as fh:
            want = fh.read()
        with mixq.open(p, verify=True) as f:
            self.assertEqual([sf.name for sf in f.files()], ["config.json"])
            self.assertEqual(f.read_file("config.json"), want)
            sf = f.file("config.json")
            self.assertEqual((sf.size, sf.compression), (len(want), "zlib"))
            self.assertEqual([(d["name"], d["size"], d["stored_size"], int(d["xxh3"], 16)) for d in self.listing(p)],
                             [(sf.name, sf.size, sf.stored_size, sf.xxh3)])
            with self.assertRaises(mixq.NotFoundError):
                f.file("tokenizer.json")
        with open(p, "rb") as fh:
            self.assertEqual(struct.unpack_from("<H", fh.read(12), 10)[0], 1)  # format minor 1
        self.compare_with_c(p)

    def test_shared_model_files(self):
        src = os.path.join(SHARED_MODELS, "tiny-llama-6l")
        if not os.path.isdir(src):
            self.skipTest("no %s" % src)
        p = convert(src, self.path("6l.mxq"), "int4_dq", 32)
        names = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer.model",
                 "tokenizer_config.json", "special_tokens_map.json"]
        present = [n for n in names if os.path.isfile(os.path.join(src, n))]
        with mixq.open(p, verify=True) as f:
            self.assertEqual([sf.name for sf in f.files()], present)
            for n in present:
                with open(os.path.join(src, n), "rb") as fh:
                    self.assertEqual(f.read_file(n), fh.read(), n)

    def crafted(self, name, files, cls=mixq.MixqError):
        hd, data = good_header()
        hd["files"] = files
        p = build_container(self.path(name), hd, data, preamble={"minor": 1})
        return self.expect_reject(p, cls)

    @staticmethod
    def entry(raw=b'{"a":1}', name="config.json", comp="zlib", **over):
        z = zlib.compress(raw, 9) if comp == "zlib" else raw
        e = {"name": name, "size": len(raw), "compression": comp, "stored_size": len(z),
             "xxh3": "%016x" % _xxh3.xxh3_64_pure(raw), "data": base64.b64encode(z).decode()}
        e.update(over)
        return e

    def test_good_crafted_files(self):
        hd, data = good_header()
        hd["files"] = [self.entry(), self.entry(b"", name="empty"), self.entry(b"xyz" * 50, name="plain", comp="none")]
        p = build_container(self.path("good-files.mxq"), hd, data, preamble={"minor": 1})
        with mixq.open(p, verify=True) as f:
            self.assertEqual([(sf.name, sf.read()) for sf in f.files()],
                             [("config.json", b'{"a":1}'), ("empty", b""), ("plain", b"xyz" * 50)])
        h, msg = CLIB.open(p, verify=True)
        self.assertIsNotNone(h, msg)
        CLIB.close(h)
        self.assertEqual([d["name"] for d in self.listing(p)], ["config.json", "empty", "plain"])

    def test_hostile_files(self):
        e = self.entry
        bomb = zlib.compress(b"\0" * (3 << 20), 9)
        cases = {
            "not-array": ({"x": 1}, "must be an array"),
            "not-object": ([1], "must be an object"),
            "slash": ([e(name="../config.json")], "not a plain file name"),
            "dot": ([e(name="..")], "not a plain file name"),
            "empty-name": ([e(name="")], "not a plain file name"),
            "ctrl": ([e(name="a\u0001")], "not a plain file name"),
            "long-name": ([e(name="x" * 256)], "not a plain file name"),
            "dup": ([e(), e()], "name used by"),
            "size-neg": ([e(size=-1)], "\"size\""),
            "size-huge": ([e(size=(64 << 20) + 1)], "exceeds the limit"),
            "size-float": ([e(size=7.0)], "\"size\""),
            "comp": ([e(compression="gzip")], "unsupported compression"),
            "stored-huge": ([e(stored_size=1 << 40)], "impossible"),
            "none-mismatch": ([e(comp="none", stored_size=3)], "impossible"),
            "xxh3-upper": ([e(xxh3="ABCDEF0123456789")], "xxh3"),
            "b64-len": ([e(data="AAAA")], "base64"),
            "b64-bad": ([e(raw=b"abc", comp="none", data="a*c=")], "base64"),
            "b64-noncanon": ([e(raw=b"a", comp="none", data="YR==")], "base64"),
            "xxh3-wrong": ([e(xxh3="0123456789abcdef")], "checksum mismatch"),
            "size-short": ([e(raw=b"hello world", size=5)], "decompress"),
            "size-long": ([e(raw=b"hello", size=11)], "decompress"),
            "not-zlib": ([e(raw=b"12345678", comp="none", compression="zlib")], "decompress"),
            "bomb": ([{"name": "b", "size": 100, "compression": "zlib", "stored_size": len(bomb),
                       "xxh3": "%016x" % _xxh3.xxh3_64_pure(b"\0" * 100),
                       "data": base64.b64encode(bomb).decode()}], "decompress"),
            "too-many": ([e(name="f%d" % i) for i in range(65)], "at most 64"),
        }
        for name, (files, text) in cases.items():
            msg = self.crafted("hostile-%s.mxq" % name, files)
            self.assertIn(text, msg, name)

    def test_corrupt_stored_bytes_fail_verify_in_c(self):
        """A flipped bit in the compressed data: opening works (the header checksum is fixed up),
        verify and read fail in both readers."""
        hd, data = good_header()
        ent = self.entry(b"config " * 100)
        z = bytearray(base64.b64decode(ent["data"]))
        z[len(z) // 2] ^= 0x10
        ent["data"] = base64.b64encode(bytes(z)).decode()
        hd["files"] = [ent]
        p = build_container(self.path("flip.mxq"), hd, data, preamble={"minor": 1})
        with mixq.open(p) as f:
            with self.assertRaises(mixq.ChecksumError):
                f.read_file("config.json")
        self.expect_reject(p, mixq.ChecksumError)


class TestApi(Base):
    def test_small_passes(self):
        """Dequantization in many passes (a few rows each) gives the same bits."""
        from mixq import reader
        saved = reader._CHUNK_ELEMENTS
        reader._CHUNK_ELEMENTS = 150
        try:
            for qtype, g in (("int4_dq", 32), ("int8", 64), ("fp8_e4m3", "tensor"), ("bf16", None), ("raw", None)):
                self.compare_with_c(convert(TINY, self.path("chunks-%s.mxq" % qtype), qtype, g))
        finally:
            reader._CHUNK_ELEMENTS = saved

    def test_listing_sections_zero_copy(self):
        p = convert(TINY, self.path("api.mxq"), "int4_dq", 32)
        with mixq.open(p) as f:
            self.assertEqual(len(f), 35)
            self.assertIn("lm_head.weight", f)
            self.assertNotIn("nope", f)
            with self.assertRaises(mixq.NotFoundError) as cm:
                f["nope"]
            self.assertIn('no tensor named "nope"', str(cm.exception))
            self.assertIsInstance(cm.exception, KeyError)
            self.assertEqual([sf.name for sf in f.files()], ["config.json"])  # stored from TINY (format 1.1)
            self.assertEqual(f.metadata["options"]["type"], "int4_dq")
            self.assertEqual(f.format_version, (1, 1))
            t = f["model.layers.0.mlp.down_proj.weight"]
            self.assertEqual((t.quant_type, t.group_size, t.shape), ("int4_dq", 32, (64, 160)))
            self.assertEqual(list(t.sections), ["codes", "scales", "mins", "super_scales", "super_mins"])
            base = f._u8.__array_interface__["data"][0]
            for s in t.sections.values():
                v = t.section(s.name)
                self.assertEqual(v.__array_interface__["data"][0], base + s.offset)  # a view, not a copy
                self.assertFalse(v.flags.writeable)
                self.assertEqual(v.size, s.length)
                self.assertEqual(s.offset, t.offset + s.rel_offset)
                self.assertEqual(t.section_rows(s.name).shape, (64, s.row_stride))
            self.assertEqual(t.sections["codes"].row_stride, 80)
            self.assertEqual(t.sections["scales"].row_stride, 3 + 2)  # 5 groups of 6 bits: planes 4 + 2
            with self.assertRaises(mixq.NotFoundError):
                t.section("data")
            for rb, re_ in ((-1, 2), (3, 2), (0, 65), (0.5, 2)):
                with self.assertRaises(mixq.RangeError):
                    t.dequantize(rb, re_)
            self.assertEqual(t.dequantize(7, 7).shape, (0, 160))
            self.assertEqual(t.dequantize(np.int64(2), np.uint32(4)).shape, (2, 160))
            self.assertTrue(np.array_equal(t.dequantize(10, 20), t.dequantize()[10:20]))
            bias = f["model.layers.0.self_attn.k_proj.bias"]
            self.assertEqual(bias.dequantize(0, 1).shape, (1, 32))
            keep = t.section("codes")
        # the file is closed; a view taken before stays usable, new reads fail cleanly
        self.assertEqual(keep.size, 64 * 80)
        with self.assertRaises(mixq.MixqError):
            t.dequantize()
        with mixq.open(convert(TINY, self.path("api-raw.mxq"), "raw")) as f:
            a = f["model.embed_tokens.weight"].stored_array()
            self.assertEqual((a.dtype, a.shape), (np.dtype("<u2"), (96, 64)))
            pos = f["model.vision_embed.position_ids"].stored_array()
            self.assertTrue(np.array_equal(pos, np.arange(17).reshape(1, 17)))
            with self.assertRaises(mixq.UnsupportedError):
                mixq.open(p)["lm_head.weight"].stored_array()


class TestSharedModels(Base):
    def test_shared_models(self):
        if not os.path.isdir(SHARED_MODELS):
            self.skipTest("no shared models at %s" % SHARED_MODELS)
        models = sorted(m for m in os.listdir(SHARED_MODELS)
                        if os.path.isfile(os.path.join(SHARED_MODELS, m, "model.safetensors")))
        if not models:
            self.skipTest("no shared models at %s" % SHARED_MODELS)
        combos = [("int4", 64), ("int8", "row"), ("int4_dq", 32), ("int3_dq", 16), ("fp8_e4m3", "tensor"),
                  ("int2_dq", 16), ("int6_dq", 16), ("int4s", 32), ("fp8_e5m2", 64), ("int2", 32), ("bf16", None)]
        for i, m in enumerate(models):
            src = os.path.join(SHARED_MODELS, m, "model.safetensors")
            # every model gets four of the types, rotating so that all are covered
            for j in range(4):
                qtype, g = combos[(4 * i + j) % len(combos)]
                out = convert(src, self.path("%s-%s.mxq" % (m, qtype)), qtype, g)
                self.compare_with_c(out, row_ranges=(j == 0))
                os.unlink(out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
