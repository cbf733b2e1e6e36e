#!/usr/bin/env python3
"""Validates real container headers against format/header.schema.json.

Usage: check_header_schema.py MIXQ_EXE SOURCE_ROOT

Converts every model of SOURCE_ROOT/testdata with --type int8, int4 and f16,
reads each container's preamble (FORMAT.md §2), extracts its JSON header,
validates it with the Draft 2020-12 schema, and checks the rules the schema
cannot express (FORMAT.md §3.1, §5: offsets, alignment, section layout,
unique names; and what the writer must record in the metadata).

A self-check runs first: a hand-made header must pass, and mutated headers
(bad xxh3, negative dimension, misaligned offset, ...) must fail, so the test
cannot pass vacuously. Prints one line per file; exits 1 on any failure,
77 (meson's "skip") if the jsonschema module is missing, 2 on usage errors.
"""
import copy
import importlib.metadata
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:
    print("SKIP: the Python module jsonschema is not installed "
          "(Debian: apt-get install python3-jsonschema)")
    sys.exit(77)

MODELS = ["tiny-llama-f32", "tiny-llama-f16", "tiny-llama-bf16", "tiny-llama-sharded"]
TYPES = ["int8", "int4", "f16"]

MAGIC = b"\x89MXQ\r\n\x1a\n"
PREAMBLE = struct.Struct("<8sHHIQQQQQQ")  # FORMAT.md §2, 64 bytes
assert PREAMBLE.size == 64
ALIGN = 64
MAX_HEADER = 268435456
MAX_INT = 2**63 - 1

DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "U32": 4, "I32": 4, "U64": 8,
              "I64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "F16": 2, "BF16": 2, "F32": 4, "F64": 8}
# The quant types and their section layouts (FORMAT.md §4, §5) come from
# python/mixq/_format.py, an independent pure-Python implementation of the
# layout (not the C code under test); main() loads it from SOURCE_ROOT.
FMT = None


def load_format(root):
    """Loads python/mixq/_format.py by path (the package's __init__ needs numpy; this file does not)."""
    global FMT
    path = os.path.join(root, "python", "mixq", "_format.py")
    spec = importlib.util.spec_from_file_location("mixq_format_rules", path)
    FMT = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(FMT)
    return FMT


class Invalid(Exception):
    pass


def align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def ceil_div(a, b):
    return (a + b - 1) // b


# ---------------------------------------------------------------- reading

def _unique_keys(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise Invalid("duplicate key %r in the header" % k)
        obj[k] = v
    return obj


def _no_constant(name):
    raise Invalid("non-JSON constant %s in the header" % name)


def read_container(path):
    """Returns (preamble dict, header object) after checking FORMAT.md §2."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(64)
        if len(raw) < 64:
            raise Invalid("file of %d bytes is shorter than the 64-byte preamble" % size)
        (magic, major, minor, flags, data_offset, data_length, header_offset, header_length,
         header_xxh3, preamble_xxh3) = PREAMBLE.unpack(raw)
        if magic != MAGIC:
            raise Invalid("bad magic %r" % magic)
        if major != 1:
            raise Invalid("format_major %d, expected 1" % major)
        if flags != 0:
            raise Invalid("flags 0x%x, expected 0" % flags)
        if data_offset != 64:
            raise Invalid("data_offset %d, expected 64" % data_offset)
        if data_length % ALIGN:
            raise Invalid("data_length %d is not a multiple of 64" % data_length)
        if header_offset != data_offset + data_length:
            raise Invalid("header_offset %d != data_offset + data_length (%d)"
                          % (header_offset, data_offset + data_length))
        if not 1 <= header_length <= MAX_HEADER:
            raise Invalid("header_length %d out of range" % header_length)
        if size != header_offset + header_length:
            raise Invalid("file size %d != header_offset + header_length (%d)"
                          % (size, header_offset + header_length))
        f.seek(header_offset)
        text = f.read(header_length)
    pre = dict(major=major, minor=minor, data_offset=data_offset, data_length=data_length,
               header_offset=header_offset, header_length=header_length)
    return pre, parse_header(text)


def parse_header(text):
    if text.startswith(b"\xef\xbb\xbf"):
        raise Invalid("header starts with a byte-order mark")
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid("header is not UTF-8: %s" % e)
    try:
        return json.loads(s, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise Invalid("header is not JSON: %s" % e)


# ---------------------------------------------------------------- checks

def schema_errors(validator, header):
    out = []
    for e in sorted(validator.iter_errors(header), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        out.append("schema: %s: %s" % (where, e.message))
    return out


def expected_layout(t):
    """FORMAT.md §5 for a known quant_type: ({section: (offset, length)}, total)."""
    qt, shape, g = FMT.QTYPES[t["quant_type"]], t["shape"], t["group_size"]
    if len(shape) >= 2:
        rows, k = 1, shape[-1]
        for d in shape[:-1]:
            rows *= d
    elif len(shape) == 1:
        rows, k = 1, shape[0]
    else:
        rows, k = 1, 1
    lay = FMT.Layout(qt, t["source_dtype"], rows, k, g)
    return {name: (off, ln) for name, (off, ln, _) in lay.sections.items()}, lay.total


def semantic_errors(header, pre):
    """Rules of FORMAT.md §3.1 and §5 that the schema cannot express.

    Assumes the header passed the schema (types are right)."""
    errs = []
    names = set()
    expect = pre["data_offset"]
    end = pre["data_offset"]
    for i, t in enumerate(header["tensors"]):
        w = "tensors/%d (%s)" % (i, t["name"])
        if t["name"] in names:
            errs.append("%s: duplicate name" % w)
        names.add(t["name"])
        off, ln = t["offset"], t["length"]
        if off % ALIGN:
            errs.append("%s: offset %d is not a multiple of 64" % (w, off))
        if off != expect:
            errs.append("%s: offset %d, expected %d (previous end rounded up to 64)" % (w, off, expect))
        if off + ln > MAX_INT:
            errs.append("%s: offset + length overflows" % w)
        end = off + ln
        expect = align(end)
        # Sections: inside the tensor, each 64-aligned, first at 0, each next at
        # the previous end rounded up to 64, length = end of the last one.
        secs = sorted(t["sections"].items(), key=lambda kv: (kv[1]["offset"], kv[1]["length"]))
        pos = None
        for name, s in secs:
            so, sl = s["offset"], s["length"]
            if so % ALIGN:
                errs.append("%s: section %s: offset %d is not a multiple of 64" % (w, name, so))
            if so + sl > ln:
                errs.append("%s: section %s: %d+%d is outside the tensor's length %d" % (w, name, so, sl, ln))
            want = 0 if pos is None else align(pos)
            if so != want:
                errs.append("%s: section %s: offset %d, expected %d" % (w, name, so, want))
            pos = so + sl
        if secs and pos != ln:
            errs.append("%s: length %d is not the end of the last section (%d)" % (w, ln, pos))
        qt = t["quant_type"]
        if qt not in FMT.QTYPES:
            errs.append("%s: unknown quant_type %r (a 1.0 writer emits only %s)"
                        % (w, qt, ", ".join(FMT.QTYPES)))
            continue
        q = FMT.QTYPES[qt]
        if set(t["sections"]) != set(q.sections):
            errs.append("%s: sections %s, %s stores %s" % (w, sorted(t["sections"]), qt, list(q.sections)))
        if t["symmetric"] != q.symmetric:
            errs.append("%s: symmetric %s for %s" % (w, t["symmetric"], qt))
        if not q.group_ok(t["group_size"]):
            errs.append("%s: group_size %d not allowed for %s" % (w, t["group_size"], qt))
            continue
        lay, total = expected_layout(t)
        got = {k: (v["offset"], v["length"]) for k, v in t["sections"].items()}
        if got != lay or ln != total:
            errs.append("%s: layout %s length %d, §5 gives %s length %d" % (w, got, ln, lay, total))
    data_end = pre["data_offset"] + pre["data_length"]
    want_len = align(end) - pre["data_offset"] if header["tensors"] else 0
    if pre["data_length"] != want_len:
        errs.append("data_length %d, expected %d (last tensor's end rounded up to 64)"
                    % (pre["data_length"], want_len))
    if end > data_end:
        errs.append("last tensor ends at %d, past the data region's end %d" % (end, data_end))
    return errs


def writer_errors(header, model_dir, qtype):
    """What this writer must record (FORMAT.md §3.2) for `convert MODEL -t qtype`."""
    errs = []
    meta = header["metadata"]
    for k in ("mixq_version", "source_metadata", "source_files", "options"):
        if k not in meta:
            errs.append("metadata: the writer did not emit %r" % k)
    opts = meta.get("options", {})
    if opts.get("type") != qtype:
        errs.append("metadata/options/type %r, converted with %r" % (opts.get("type"), qtype))
    files = sorted(f for f in os.listdir(model_dir)
                   if f.endswith(".safetensors") or f.endswith(".safetensors.index.json"))
    index = [f for f in files if f.endswith(".index.json")]
    got = [(e["name"], e["size"]) for e in meta.get("source_files", [])]
    want = sorted((f, os.path.getsize(os.path.join(model_dir, f))) for f in files)
    if sorted(got) != want:
        errs.append("metadata/source_files %s, the model has %s" % (got, want))
    elif index and got[0][0] != index[0]:
        errs.append("metadata/source_files: the index file is not first: %s" % got)
    if not any(t["quant_type"] == qtype for t in header["tensors"]):
        errs.append("no tensor has quant_type %r" % qtype)
    return errs


def check(validator, header, pre):
    """All errors: schema first; semantic rules only on a schema-valid header."""
    errs = schema_errors(validator, header)
    return errs if errs else semantic_errors(header, pre)


# ---------------------------------------------------------------- self-check

def sample_header():
    """A hand-made, valid header (int8 2x40 g32, a raw 1-D tensor, an int4 empty tensor)."""
    tensors = [
        {"name": "w", "shape": [2, 40], "source_dtype": "F32", "quant_type": "int8", "group_size": 32,
         "symmetric": True, "offset": 64, "length": 136,
         "sections": {"codes": {"offset": 0, "length": 80}, "scales": {"offset": 128, "length": 8}},
         "xxh3": "0123456789abcdef"},
        {"name": "b", "shape": [3], "source_dtype": "BF16", "quant_type": "raw", "group_size": 0,
         "symmetric": True, "offset": 256, "length": 6, "sections": {"data": {"offset": 0, "length": 6}},
         "xxh3": "fedcba9876543210"},
        {"name": "e", "shape": [0, 7], "source_dtype": "F16", "quant_type": "int4", "group_size": 64,
         "symmetric": False, "offset": 320, "length": 0,
         "sections": {"codes": {"offset": 0, "length": 0}, "scales": {"offset": 0, "length": 0},
                      "mins": {"offset": 0, "length": 0}},
         "xxh3": "2d06800538d394c2"},
    ]
    header = {"format": "mixq", "format_version": 1, "alignment": 64,
              "metadata": {"mixq_version": "0.1.0", "source_metadata": {"format": "pt"},
                           "source_files": [{"name": "model.safetensors", "size": 1234}],
                           "options": {"type": "int8", "group_size": 0, "quantize_1d": False}},
              "tensors": tensors}
    pre = {"data_offset": 64, "data_length": 256, "header_offset": 320, "header_length": 1}
    return header, pre


def _set(path, value):
    def f(h):
        obj = h
        for p in path[:-1]:
            obj = obj[p]
        obj[path[-1]] = value
    return f


def _del(path):
    def f(h):
        obj = h
        for p in path[:-1]:
            obj = obj[p]
        del obj[path[-1]]
    return f


# Mutations that the schema must reject.
SCHEMA_BAD = [
    ("xxh3 \"XYZ\"", _set(["tensors", 0, "xxh3"], "XYZ")),
    ("xxh3 uppercase", _set(["tensors", 0, "xxh3"], "0123456789ABCDEF")),
    ("xxh3 17 digits", _set(["tensors", 0, "xxh3"], "0123456789abcdef0")),
    ("shape [-1]", _set(["tensors", 0, "shape"], [-1])),
    ("shape of 9 dims", _set(["tensors", 0, "shape"], [1] * 9)),
    ("shape [2.5]", _set(["tensors", 0, "shape"], [2.5])),
    ("shape [2^63]", _set(["tensors", 0, "shape"], [2**63])),
    ("empty name", _set(["tensors", 0, "name"], "")),
    ("source_dtype F12", _set(["tensors", 0, "source_dtype"], "F12")),
    ("quant_type 8", _set(["tensors", 0, "quant_type"], 8)),
    ("group_size -1", _set(["tensors", 0, "group_size"], -1)),
    ("symmetric \"yes\"", _set(["tensors", 0, "symmetric"], "yes")),
    ("offset -64", _set(["tensors", 0, "offset"], -64)),
    ("missing xxh3", _del(["tensors", 0, "xxh3"])),
    ("section length -1", _set(["tensors", 0, "sections", "codes", "length"], -1)),
    ("section without offset", _del(["tensors", 0, "sections", "scales", "offset"])),
    ("unknown section not an object", _set(["tensors", 0, "sections", "lut"], 5)),
    ("sections is an array", _set(["tensors", 0, "sections"], [])),
    ("format \"gguf\"", _set(["format"], "gguf")),
    ("format_version 2", _set(["format_version"], 2)),
    ("format_version true", _set(["format_version"], True)),
    ("alignment 32", _set(["alignment"], 32)),
    ("missing tensors", _del(["tensors"])),
    ("missing metadata", _del(["metadata"])),
    ("tensors is an object", _set(["tensors"], {})),
    ("source_metadata value 1", _set(["metadata", "source_metadata", "format"], 1)),
    ("source_files entry without size", _del(["metadata", "source_files", 0, "size"])),
    ("source_files size -1", _set(["metadata", "source_files", 0, "size"], -1)),
    ("options.quantize_1d 0", _set(["metadata", "options", "quantize_1d"], 0)),
    ("mixq_version 1", _set(["metadata", "mixq_version"], 1)),
    ("header is an array", lambda h: None),  # replaced below
]

# Forward-compatible additions that the schema must accept.
SCHEMA_OK = [
    ("unchanged", lambda h: None),
    ("unknown top-level key", _set(["x_future"], {"a": [1]})),
    ("unknown tensor key", _set(["tensors", 0, "x_future"], True)),
    ("unknown metadata key", _set(["metadata", "x_future"], 1)),
    ("unknown option", _set(["metadata", "options", "x_future"], "v")),
    ("unknown section name", _set(["tensors", 0, "sections", "lut"], {"offset": 192, "length": 0})),
    ("unknown quant_type", _set(["tensors", 0, "quant_type"], "int3")),
    ("no optional metadata keys", _set(["metadata"], {})),
]

# Schema-valid mutations that the semantic checks must reject.
SEMANTIC_BAD = [
    ("first offset 128", _set(["tensors", 0, "offset"], 128)),
    ("offset not 64-aligned", _set(["tensors", 1, "offset"], 260)),
    ("offsets decreasing", _set(["tensors", 1, "offset"], 64)),
    ("section outside length", _set(["tensors", 0, "sections", "scales", "length"], 100)),
    ("section misaligned", _set(["tensors", 0, "sections", "scales", "offset"], 100)),
    ("length not the last section's end", _set(["tensors", 1, "length"], 7)),
    ("duplicate name", _set(["tensors", 1, "name"], "w")),
    ("int8 without scales", _del(["tensors", 0, "sections", "scales"])),
    ("int8 group_size 48", _set(["tensors", 0, "group_size"], 48)),
    ("int4 symmetric", _set(["tensors", 2, "symmetric"], True)),
]


def self_check(validator):
    errs = []
    base, pre = sample_header()
    for what, mut in SCHEMA_OK:
        h = copy.deepcopy(base)
        mut(h)
        e = schema_errors(validator, h)
        if e:
            errs.append("self-check: %s must be schema-valid: %s" % (what, "; ".join(e)))
    if semantic_errors(base, pre):
        errs.append("self-check: the sample header fails the semantic checks: %s"
                    % "; ".join(semantic_errors(base, pre)))
    for what, mut in SCHEMA_BAD:
        h = copy.deepcopy(base)
        mut(h)
        if what == "header is an array":
            h = [h]
        if validator.is_valid(h):
            errs.append("self-check: %s passed the schema" % what)
    for what, mut in SEMANTIC_BAD:
        h = copy.deepcopy(base)
        mut(h)
        if schema_errors(validator, h):
            errs.append("self-check: %s should be schema-valid (a semantic case)" % what)
        elif not semantic_errors(h, pre):
            errs.append("self-check: %s passed the semantic checks" % what)
    # Preamble parsing: a corrupt magic and a wrong header_offset must be caught.
    with tempfile.TemporaryDirectory(prefix="mixq-schema-self-") as d:
        def blob(text):
            return PREAMBLE.pack(MAGIC, 1, 0, 0, 64, 256, 320, len(text), 0, 0) + bytes(256) + text
        text = json.dumps(base, separators=(",", ":")).encode()
        good = blob(text)
        cases = [("valid", good, True),
                 ("bad magic", b"\x89MXP" + good[4:], False),
                 ("wrong header_offset", good[:32] + struct.pack("<Q", 384) + good[40:], False),
                 ("truncated", good[:-1], False),
                 ("duplicate key", blob(b'{"format":"mixq",' + text[1:]), False),
                 ("NaN in the header", blob(text[:-1] + b',"x":NaN}'), False)]
        for what, blob, ok in cases:
            p = os.path.join(d, "c.mxq")
            with open(p, "wb") as f:
                f.write(blob)
            try:
                rpre, h = read_container(p)
                e = check(validator, h, rpre)
                if ok and e:
                    errs.append("self-check: container %s: %s" % (what, "; ".join(e)))
                elif not ok and not e:
                    errs.append("self-check: container %s was accepted" % what)
            except Invalid as ex:
                if ok:
                    errs.append("self-check: container %s rejected: %s" % (what, ex))
    return errs, len(SCHEMA_OK) + len(SCHEMA_BAD) + len(SEMANTIC_BAD) + len(cases)


# ---------------------------------------------------------------- main

def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    exe, root = argv[1], argv[2]
    load_format(root)
    with open(os.path.join(root, "format", "header.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    failures = 0

    errs, n = self_check(validator)
    if errs:
        failures += 1
        for e in errs:
            print("FAIL " + e)
    else:
        print("ok   self-check: %d hand-made headers accepted or rejected as expected (jsonschema %s)"
              % (n, importlib.metadata.version("jsonschema")))

    with tempfile.TemporaryDirectory(prefix="mixq-schema-") as tmp:
        real = None
        # every model with the common types; one model with every type of the format
        runs = [(m, q) for m in MODELS for q in TYPES]
        runs += [(MODELS[0], q) for q in FMT.QTYPES if q not in TYPES and q != "raw"]
        for model, qtype in runs:
            model_dir = os.path.join(root, "testdata", model)
            if True:
                label = "%s --type %s" % (model, qtype)
                out = os.path.join(tmp, "%s-%s.mxq" % (model, qtype))
                r = subprocess.run([exe, "convert", model_dir, "-o", out, "--type", qtype, "--quiet"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                if r.returncode == 2 and "unknown type" in r.stderr and qtype not in TYPES:
                    print("skip %s: this mixq does not convert to it" % label)
                    continue
                if r.returncode != 0:
                    failures += 1
                    print("FAIL %s: mixq convert exited %d: %s" % (label, r.returncode,
                                                                   (r.stderr or r.stdout).strip()))
                    continue
                try:
                    pre, header = read_container(out)
                except Invalid as e:
                    failures += 1
                    print("FAIL %s: %s" % (label, e))
                    continue
                e = check(validator, header, pre)
                if not e:
                    e = writer_errors(header, model_dir, qtype)
                if e:
                    failures += 1
                    print("FAIL %s: %d problem(s)" % (label, len(e)))
                    for line in e[:10]:
                        print("       " + line)
                    continue
                real = real or (header, pre)
                print("ok   %s: %d tensors, header %d bytes, data %d bytes"
                      % (label, len(header["tensors"]), pre["header_length"], pre["data_length"]))

        # A planned conversion (docs/PLANNER.md): metadata.plan and per-tensor estimated_error.
        planned = None
        model_dir = os.path.join(root, "testdata", "tiny-llama-f32")
        out = os.path.join(tmp, "planned.mxq")
        label = "tiny-llama-f32 --target-bpw 6 --candidates int4,int8,f16"
        r = subprocess.run([exe, "convert", model_dir, "-o", out, "--target-bpw", "6",
                            "--candidates", "int4,int8,f16", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            failures += 1
            print("FAIL %s: mixq convert exited %d: %s" % (label, r.returncode, (r.stderr or r.stdout).strip()))
        else:
            try:
                pre, header = read_container(out)
                e = check(validator, header, pre)
            except Invalid as ex:
                e = [str(ex)]
            plan = header["metadata"].get("plan", {}) if not e else {}
            if not e and plan.get("strategy") != "budget":
                e.append("metadata/plan/strategy %r, expected 'budget'" % plan.get("strategy"))
            if not e and not all(isinstance(t.get("estimated_error"), (int, float)) for t in header["tensors"]):
                e.append("a planned tensor lacks estimated_error")
            if e:
                failures += 1
                print("FAIL %s: %d problem(s)" % (label, len(e)))
                for line in e[:10]:
                    print("       " + line)
            else:
                planned = header
                print("ok   %s: %d tensors, plan %s" % (label, len(header["tensors"]), plan.get("strategy")))
        if planned is not None:
            for what, mut in [("estimated_error -1", _set(["tensors", 0, "estimated_error"], -1)),
                              ("plan without strategy", lambda h: h["metadata"]["plan"].pop("strategy"))]:
                h = copy.deepcopy(planned)
                mut(h)
                if validator.is_valid(h):
                    failures += 1
                    print("FAIL negative check: a planned header with %s passed the schema" % what)
                else:
                    print("ok   negative check: a planned header with %s is rejected" % what)

        # The same negative check on a real header.
        if real is not None:
            for what, mut in [("xxh3 \"XYZ\"", _set(["tensors", 0, "xxh3"], "XYZ")),
                              ("shape [-1]", _set(["tensors", 0, "shape"], [-1]))]:
                h = copy.deepcopy(real[0])
                mut(h)
                if validator.is_valid(h):
                    failures += 1
                    print("FAIL negative check: a real header with %s passed the schema" % what)
                else:
                    print("ok   negative check: a real header with %s is rejected" % what)

    print("%s: %d failure(s)" % ("FAIL" if failures else "PASS", failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
