"""Reading mixq containers (format/FORMAT.md): open, list, verify, dequantize."""
import base64
import json
import mmap
import operator
import os
import stat
import struct
import zlib

import numpy as np

from . import _dequant
from ._format import (ALIGN, FILE_MAX_SIZE, FILE_NAME_MAX, FILES_MAX, FORMAT_MAJOR, MAGIC, MAX_DIMS, MAX_HEADER,
                      MAX_JSON_DEPTH, PREAMBLE_LEN, QTYPES, SECTION_ORDER, SOURCE_DTYPES, U32_MAX, U63_MAX, U64_MAX, Layout, align_up)
from ._xxh3 import xxh3_64

# Elements dequantized per numpy pass (bounds the temporary arrays of a large tensor).
_CHUNK_ELEMENTS = 1 << 20


class MixqError(Exception):
    """A mixq container could not be read.  The message is one line naming the file (and the
    tensor, where there is one); `code` is one of "io", "format", "unsupported", "checksum",
    "not_found", "range", "closed"."""

    code = "format"

    def __init__(self, message, path=None, tensor=None):
        Exception.__init__(self, message)
        self.message = message
        self.path = path
        self.tensor = tensor

    def __str__(self):
        return self.message


class FormatError(MixqError):
    """The file is not a well-formed mixq container."""
    code = "format"


class UnsupportedError(MixqError):
    """A valid container this reader cannot read (newer major version, flags, unknown quant_type)."""
    code = "unsupported"


class ChecksumError(MixqError):
    """A checksum does not match or a padding byte is not zero: the file is corrupt."""
    code = "checksum"


class MixqIOError(MixqError):
    code = "io"


class NotFoundError(MixqError, KeyError):
    code = "not_found"


class RangeError(MixqError, ValueError):
    code = "range"


def _shown(s, limit=200):
    """A string for a one-line message: control and unprintable characters escaped, shortened."""
    if isinstance(s, bytes):
        s = s.decode("utf-8", "backslashreplace")
    s = str(s)
    out = []
    for ch in s:
        if ch.isprintable() and ch not in "\\\"":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii") if ch not in "\\\"" else "\\" + ch)
    r = "".join(out)
    return r if len(r) <= limit else r[:limit] + "..."


def _is_uint(v):
    return type(v) is int and 0 <= v <= U63_MAX


class Section:
    """Where one section of a tensor is stored (FORMAT.md §5)."""

    __slots__ = ("name", "offset", "rel_offset", "length", "row_stride")

    def __init__(self, name, offset, rel_offset, length, row_stride):
        self.name = name
        self.offset = offset          # absolute file offset
        self.rel_offset = rel_offset  # relative to the tensor's offset, as in the header
        self.length = length          # bytes
        self.row_stride = row_stride  # bytes per tensor row (0: the one per-tensor fp8 scale)

    def __repr__(self):
        return "Section(%r, offset=%d, length=%d, row_stride=%d)" % (self.name, self.offset, self.length,
                                                                     self.row_stride)


class Tensor:
    """One stored tensor.  Obtain from File.tensors() / File[name]."""

    def __init__(self, file, index, entry, qt, layout, shape, xxh3):
        self._file = file
        self.index = index
        self.name = entry["name"]
        self.shape = shape
        self.quant_type = qt.name
        self.source_dtype = entry["source_dtype"]
        self.group_size = entry["group_size"]
        self.symmetric = entry["symmetric"]
        self.quantized = qt.quantized
        self.offset = entry["offset"]
        self.length = entry["length"]
        self.xxh3 = xxh3
        self.estimated_error = entry.get("estimated_error")
        self.rows = layout.rows
        self.row_length = layout.row_length
        self.n_elements = layout.rows * layout.row_length
        self._qt = qt
        self._layout = layout
        self.sections = {name: Section(name, self.offset + o, o, ln, rs)
                         for name, (o, ln, rs) in layout.sections.items()}
        self.entry = entry  # the header entry as parsed (unknown keys included)

    @property
    def bits_per_weight(self):
        return self.length * 8.0 / self.n_elements if self.n_elements else 0.0

    def __repr__(self):
        return "Tensor(%r, shape=%r, quant_type=%r, group_size=%d)" % (self.name, self.shape, self.quant_type,
                                                                       self.group_size)

    def _err(self, cls, msg):
        return cls("%s: tensor \"%s\": %s" % (self._file._shown, _shown(self.name), msg),
                   self._file.path, self.name)

    def section(self, name):
        """Zero-copy read-only uint8 view of one section's bytes over the file's memory map."""
        sec = self.sections.get(name)
        if sec is None:
            raise self._err(NotFoundError, "no section \"%s\" (quant_type %s stores %s)"
                            % (_shown(name), self.quant_type, ", ".join(self.sections)))
        return self._file._bytes(sec.offset, sec.length)

    def section_rows(self, name):
        """The section as a zero-copy (rows, row_stride) uint8 view (the per-tensor fp8 scale:
        its 4 bytes, 1-D)."""
        sec = self.sections.get(name)
        v = self.section(name)
        if sec.row_stride == 0:
            return v
        return v.reshape(self.rows, sec.row_stride)

    def stored_array(self):
        """For a plain tensor (raw, f32, f16, bf16): its elements as a zero-copy numpy view of
        the tensor's shape in the stored type (bf16 as uint16 bit patterns, F8 as uint8 codes,
        BOOL as uint8)."""
        if self.quantized:
            raise self._err(UnsupportedError, "stored_array() needs a plain tensor; quant_type %s is quantized"
                            % self.quant_type)
        if self.quant_type == "raw":
            dt = SOURCE_DTYPES[self.source_dtype][1]
        else:
            dt = {"f32": "<f4", "f16": "<f2", "bf16": "<u2"}[self.quant_type]
        v = self.section("data").view(dt)
        return v.reshape(self.shape)

    def dequantize(self, row_begin=None, row_end=None):
        """The values as float32, bit-identical to the C library's mixq_dequantize_f32.

        Without arguments: the whole tensor in its shape.  With a row range [row_begin,
        row_end) (rows are all dimensions but the last, FORMAT.md §3.1): an array of shape
        (row_end - row_begin, row_length)."""
        whole = row_begin is None and row_end is None
        try:
            rb = 0 if row_begin is None else operator.index(row_begin)
            re_ = self.rows if row_end is None else operator.index(row_end)
        except TypeError:
            rb, re_ = row_begin, row_end
        if not (type(rb) is int and type(re_) is int) or not 0 <= rb <= re_ <= self.rows:
            raise self._err(RangeError, "rows %s..%s are out of range (the tensor has %d rows)"
                            % (rb, re_, self.rows))
        f = self._file
        f._check_open()
        k = self.row_length
        n = re_ - rb
        out = np.empty((n, k), dtype=np.float32)
        if n and k:
            if not self.quantized:
                sec = self.sections["data"]
                es = sec.row_stride // k
                data = f._bytes(sec.offset + rb * sec.row_stride, n * sec.row_stride)
                step = max(1, _CHUNK_ELEMENTS // k) * k
                flat = out.reshape(-1)
                for e0 in range(0, n * k, step):
                    e1 = min(n * k, e0 + step)
                    flat[e0:e1] = _dequant.plain_to_f32(self.quant_type, self.source_dtype,
                                                        data[e0 * es:e1 * es])
            else:
                lay = self._layout
                secs = {name: self.section_rows(name) for name in self.sections}
                step = max(1, _CHUNK_ELEMENTS // k)
                for r0 in range(rb, re_, step):
                    r1 = min(re_, r0 + step)
                    part = {name: (v if v.ndim == 1 else v[r0:r1]) for name, v in secs.items()}
                    out[r0 - rb:r1 - rb] = _dequant.dequantize_rows(self._qt, lay, part, r1 - r0)
        return out.reshape(self.shape) if whole else out


class StoredFile:
    """A model file stored inside the container (config.json, tokenizer, ...; FORMAT.md §3.3,
    format 1.1).  Obtain from File.files() / File.file(name); read() returns the decompressed
    bytes, checked against the recorded size and xxh3."""

    def __init__(self, name, size, stored_size, compression, xxh3, reader):
        self.name = name
        self.size = size
        self.stored_size = stored_size
        self.compression = compression
        self.xxh3 = xxh3
        self._reader = reader

    def read(self):
        return self._reader()

    def __repr__(self):
        return "StoredFile(%r, size=%d)" % (self.name, self.size)


class File:
    """An open mixq container (read-only memory map).

    >>> with mixq.open("model.mxq") as f:
    ...     w = f["lm_head.weight"].dequantize()
    """

    def __init__(self, path, verify=False):
        self.path = os.fspath(path)
        self._shown = _shown(self.path)
        self._mm = None
        self._u8 = None
        self._tensors = []
        self._by_name = {}
        self._open()
        try:
            self._check_preamble()
            self._parse_header()
            if verify:
                self.verify()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening

    def _fail(self, cls, msg, tensor=None):
        return cls("%s: %s" % (self._shown, msg), self.path, tensor)

    def _open(self):
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_BINARY", 0))
        except OSError as e:
            raise self._fail(MixqIOError, "cannot open: %s" % (e.strerror or e)) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise self._fail(MixqIOError, "not a regular file")
            self.size = st.st_size
            if self.size < PREAMBLE_LEN:
                if self.size == 0:
                    raise self._fail(FormatError, "the file is empty; not a mixq container")
                raise self._fail(FormatError, "the file is %d bytes, too small for a mixq container (at least %d)"
                                 % (self.size, PREAMBLE_LEN))
            try:
                self._mm = mmap.mmap(fd, self.size, access=mmap.ACCESS_READ)
            except (OSError, ValueError, OverflowError) as e:
                raise self._fail(MixqIOError, "cannot map: %s" % e) from None
        finally:
            os.close(fd)
        self._u8 = np.frombuffer(self._mm, dtype=np.uint8)

    def _bytes(self, offset, length):
        """Zero-copy uint8 view of [offset, offset + length) of the file (bounds-checked)."""
        self._check_open()
        if offset < 0 or length < 0 or offset + length > self.size:
            raise self._fail(FormatError, "bytes %d..%d are outside the file (%d bytes)"
                             % (offset, offset + length, self.size))
        return self._u8[offset:offset + length]

    def _check_preamble(self):
        p = bytes(self._u8[:PREAMBLE_LEN])
        (magic, major, minor, flags, data_offset, data_length, header_offset, header_length,
         header_xxh3, preamble_xxh3) = struct.unpack("<8sHHIQQQQQQ", p)
        if magic != MAGIC:
            raise self._fail(FormatError, "not a mixq container (bad magic bytes)")
        if major > FORMAT_MAJOR:
            raise self._fail(UnsupportedError, "format version %d is newer than this reader supports; "
                             "upgrade mixq" % major)
        if major != FORMAT_MAJOR:
            raise self._fail(FormatError, "invalid format version %d (expected %d)" % (major, FORMAT_MAJOR))
        computed = xxh3_64(p[:56])
        if computed != preamble_xxh3:
            raise self._fail(ChecksumError, "preamble: checksum mismatch (stored %016x, computed %016x): the "
                             "file is corrupt; re-create it" % (preamble_xxh3, computed))
        if flags:
            raise self._fail(UnsupportedError, "preamble flags 0x%08x are set; this reader knows no flags "
                             "(written by a newer mixq?)" % flags)
        if data_offset != PREAMBLE_LEN:
            raise self._fail(FormatError, "data_offset is %d; it must be %d" % (data_offset, PREAMBLE_LEN))
        if data_length % ALIGN:
            raise self._fail(FormatError, "data_length %d is not a multiple of %d" % (data_length, ALIGN))
        if header_offset != data_offset + data_length:
            raise self._fail(FormatError, "header_offset %d is not data_offset + data_length (%d + %d)"
                             % (header_offset, data_offset, data_length))
        if not 1 <= header_length <= MAX_HEADER:
            raise self._fail(FormatError, "header_length %d is outside 1..%d" % (header_length, MAX_HEADER))
        end = header_offset + header_length
        if end > self.size:
            raise self._fail(FormatError, "the header (bytes %d..%d) extends beyond the end of the file (%d "
                             "bytes): the file is truncated or corrupt" % (header_offset, end, self.size))
        if end != self.size:
            raise self._fail(FormatError, "%d unexpected byte(s) after the header (the file should end at %d)"
                             % (self.size - end, end))
        computed = xxh3_64(self._u8[header_offset:end])
        if computed != header_xxh3:
            raise self._fail(ChecksumError, "header (bytes %d..%d): checksum mismatch (stored %016x, computed "
                             "%016x): the file is corrupt; re-create it" % (header_offset, end, header_xxh3,
                                                                           computed))
        self.format_version = (major, minor)
        self.data_length = data_length
        self.header_offset = header_offset
        self.header_length = header_length
        self.header_xxh3 = header_xxh3
        self.preamble_xxh3 = preamble_xxh3

    # ------------------------------------------------------------------ header

    def _load_json(self):
        raw = bytes(self._u8[self.header_offset:self.header_offset + self.header_length])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self._fail(FormatError, "header is not valid UTF-8 (at header byte %d)" % e.start) from None
        if text.startswith("\ufeff"):
            raise self._fail(FormatError, "header starts with a byte-order mark")

        def pairs(items):
            d = {}
            for k, v in items:
                if k in d:
                    raise _JsonReject("duplicate key \"%s\"" % _shown(k))
                d[k] = v
            return d

        def constant(name):
            raise _JsonReject("%s is not JSON" % name)

        try:
            root = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
        except _JsonReject as e:
            raise self._fail(FormatError, "header is not valid JSON: %s" % e) from None
        except ValueError as e:
            raise self._fail(FormatError, "header is not valid JSON: %s" % _shown(str(e))) from None
        except RecursionError:
            raise self._fail(FormatError, "header is not valid JSON: nested deeper than %d levels"
                             % MAX_JSON_DEPTH) from None
        # Depth and string rules (§3), iteratively.
        stack = [(root, 1)]
        while stack:
            v, depth = stack.pop()
            if isinstance(v, (dict, list)):
                if depth > MAX_JSON_DEPTH:
                    raise self._fail(FormatError, "header is not valid JSON: nested deeper than %d levels"
                                     % MAX_JSON_DEPTH)
                items = v.items() if isinstance(v, dict) else enumerate(v)
                for k, x in items:
                    if isinstance(k, str):
                        self._check_string(k)
                    stack.append((x, depth + 1))
            elif isinstance(v, str):
                self._check_string(v)
            elif isinstance(v, int) and not isinstance(v, bool) and not -(1 << 63) <= v <= U64_MAX:
                raise self._fail(FormatError, "header: an integer is out of range")
        return raw, root

    def _check_string(self, s):
        if "\x00" in s:
            raise self._fail(FormatError, "header: a string contains U+0000")
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise self._fail(FormatError, "header: a string contains an unpaired surrogate escape") from None

    def _field(self, where, obj, key, kind, optional=False, tensor=None):
        if key not in obj:
            if optional:
                return None
            raise self._fail(FormatError, "%s: \"%s\" is missing" % (where, key), tensor)
        v = obj[key]
        ok = {"string": lambda x: isinstance(x, str),
              "an integer >= 0": _is_uint,
              "a boolean": lambda x: isinstance(x, bool),
              "an object": lambda x: isinstance(x, dict),
              "an array": lambda x: isinstance(x, list),
              "a number": lambda x: type(x) in (int, float)}[kind](v)
        if not ok:
            raise self._fail(FormatError, "%s: \"%s\" must be %s" % (where, key, "a string" if kind == "string"
                                                                        else kind), tensor)
        return v

    def _parse_header(self):
        raw, root = self._load_json()
        self.header_json = raw
        if not isinstance(root, dict):
            raise self._fail(FormatError, "header is not a JSON object")
        w = "header"
        if self._field(w, root, "format", "string") != "mixq":
            raise self._fail(FormatError, "header: \"format\" must be \"mixq\"")
        v = self._field(w, root, "format_version", "an integer >= 0")
        if v != FORMAT_MAJOR:
            raise self._fail(FormatError, "header: format_version %d does not match the preamble's %d"
                             % (v, FORMAT_MAJOR))
        v = self._field(w, root, "alignment", "an integer >= 0")
        if v != ALIGN:
            raise self._fail(FormatError, "header: alignment %d is not %d" % (v, ALIGN))
        meta = self._field(w, root, "metadata", "an object")
        self._parse_metadata(meta)
        entries = self._field(w, root, "tensors", "an array")
        expect = PREAMBLE_LEN
        for i, e in enumerate(entries):
            t = self._parse_entry(i, e, expect)
            self._tensors.append(t)
            expect = align_up(t.offset + t.length)
        data_end = expect if entries else PREAMBLE_LEN
        if data_end != self.header_offset:
            raise self._fail(FormatError, "data_length is %d but the tensors need %d (the data region must end "
                             "at the last tensor rounded up to %d)" % (self.data_length, data_end - PREAMBLE_LEN,
                                                                       ALIGN))
        self.header = root
        self.metadata = meta
        self._files = self._parse_stored_files(root)

    def _parse_metadata(self, meta):
        w = "header metadata"
        self._field(w, meta, "mixq_version", "string", True)
        sm = self._field(w, meta, "source_metadata", "an object", True)
        for k, v in (sm or {}).items():
            if not isinstance(v, str):
                raise self._fail(FormatError, "header metadata: source_metadata[\"%s\"] must be a string"
                                 % _shown(k))
        files = self._field(w, meta, "source_files", "an array", True)
        for i, e in enumerate(files or []):
            if not isinstance(e, dict):
                raise self._fail(FormatError, "header metadata: source_files[%d] must be an object" % i)
            self._field("header metadata source_files entry", e, "name", "string")
            self._field("header metadata source_files entry", e, "size", "an integer >= 0")
        opts = self._field(w, meta, "options", "an object", True)
        if opts is not None:
            wo = "header metadata options"
            self._field(wo, opts, "type", "string", True)
            self._field(wo, opts, "group_size", "an integer >= 0", True)
            self._field(wo, opts, "quantize_1d", "a boolean", True)
            self._field(wo, opts, "search", "a boolean", True)
        self._field(w, meta, "plan", "an object", True)

    def _parse_entry(self, i, e, expect):
        if not isinstance(e, dict):
            raise self._fail(FormatError, "tensor #%d: entry must be an object" % i)
        w = "tensor #%d" % i
        name = self._field(w, e, "name", "string")
        if not name:
            raise self._fail(FormatError, "tensor #%d: \"name\" is empty" % i)
        w = "tensor \"%s\"" % _shown(name)
        if name in self._by_name:
            raise self._fail(FormatError, "%s: name used by tensors #%d and #%d; names must be unique"
                             % (w, self._by_name[name].index, i), name)
        shape = self._field(w, e, "shape", "an array", tensor=name)
        if len(shape) > MAX_DIMS:
            raise self._fail(FormatError, "%s: shape has %d dims; at most %d are allowed"
                             % (w, len(shape), MAX_DIMS), name)
        for d, x in enumerate(shape):
            if not _is_uint(x):
                raise self._fail(FormatError, "%s: shape[%d] must be an integer >= 0" % (w, d), name)
        rows, row_length = 1, (shape[-1] if shape else 1)
        for x in shape[:-1]:
            rows *= x
            if rows > U64_MAX:
                raise self._fail(FormatError, "%s: the element count of the shape overflows 64 bits" % w, name)
        if rows * row_length > U64_MAX:
            raise self._fail(FormatError, "%s: the element count of the shape overflows 64 bits" % w, name)
        src = self._field(w, e, "source_dtype", "string", tensor=name)
        if src not in SOURCE_DTYPES:
            raise self._fail(FormatError, "%s: unknown source_dtype \"%s\"" % (w, _shown(src)), name)
        qname = self._field(w, e, "quant_type", "string", tensor=name)
        qt = QTYPES.get(qname)
        if qt is None:
            raise self._fail(UnsupportedError, "%s: unsupported quant_type \"%s\" (written by a newer mixq?)"
                             % (w, _shown(qname)), name)
        gs = self._field(w, e, "group_size", "an integer >= 0", tensor=name)
        if gs > U32_MAX or not qt.group_ok(gs):
            raise self._fail(FormatError, "%s: group_size %d is not allowed for quant_type %s" % (w, gs, qname),
                             name)
        sym = self._field(w, e, "symmetric", "a boolean", tensor=name)
        if sym != qt.symmetric:
            raise self._fail(FormatError, "%s: \"symmetric\" is %s but quant_type %s is %s"
                             % (w, "true" if sym else "false", qname,
                                "symmetric" if qt.symmetric else "asymmetric"), name)
        if qt.quantized and gs == 0 and row_length > U32_MAX:
            raise self._fail(UnsupportedError, "%s: rows of %d elements in one quantization group are not "
                             "supported" % (w, row_length), name)
        layout = Layout(qt, src, rows, row_length, gs)
        if not layout.fits_u64():
            raise self._fail(FormatError, "%s: the stored size of this shape overflows 64 bits" % w, name)
        offset = self._field(w, e, "offset", "an integer >= 0", tensor=name)
        length = self._field(w, e, "length", "an integer >= 0", tensor=name)
        secs = self._field(w, e, "sections", "an object", tensor=name)
        hx = self._field(w, e, "xxh3", "string", tensor=name)
        if len(hx) != 16 or any(c not in "0123456789abcdef" for c in hx):
            raise self._fail(FormatError, "%s: \"xxh3\" must be 16 lowercase hex digits" % w, name)
        if length != layout.total:
            raise self._fail(FormatError, "%s: \"length\" is %d but quant_type %s needs %d bytes for this shape"
                             % (w, length, qname, layout.total), name)
        for sn, (so, sl, _) in layout.sections.items():
            if sn not in secs:
                raise self._fail(FormatError, "%s: section \"%s\" is missing (quant_type %s stores it)"
                                 % (w, sn, qname), name)
            sec = secs[sn]
            if not isinstance(sec, dict):
                raise self._fail(FormatError, "%s: section \"%s\" must be an object" % (w, sn), name)
            ws = "%s section \"%s\"" % (w, sn)
            o = self._field(ws, sec, "offset", "an integer >= 0", tensor=name)
            ln = self._field(ws, sec, "length", "an integer >= 0", tensor=name)
            if o != so or ln != sl:
                raise self._fail(FormatError, "%s has offset %d, length %d; the layout of this shape and type "
                                 "needs offset %d, length %d" % (ws, o, ln, so, sl), name)
        for sn in secs:
            if sn not in layout.sections:
                raise self._fail(FormatError, "%s: unexpected section \"%s\" for quant_type %s"
                                 % (w, _shown(sn), qname), name)
        if offset != expect:
            raise self._fail(FormatError, "%s: \"offset\" is %d but must be %d (tensors follow each other, each "
                             "aligned to %d)" % (w, offset, expect, ALIGN), name)
        if offset + length > self.header_offset:
            raise self._fail(FormatError, "%s: bytes %d..%d extend beyond the data region (which ends at %d)"
                             % (w, offset, offset + length, self.header_offset), name)
        t = Tensor(self, i, e, qt, layout, tuple(shape), int(hx, 16))
        self._by_name[name] = t
        return t

    def _parse_stored_files(self, root):
        """The optional top-level "files" array (FORMAT.md §3.3): validated here as mixq's
        loader does; the data is decoded and checked only when read."""
        files = root.get("files")
        if files is None:
            return []
        if not isinstance(files, list):
            raise self._fail(FormatError, "header: \"files\" must be an array")
        if len(files) > FILES_MAX:
            raise self._fail(FormatError, "header: %d stored files; at most %d are allowed" % (len(files), FILES_MAX))
        out, seen = [], {}
        for i, e in enumerate(files):
            if not isinstance(e, dict):
                raise self._fail(FormatError, "header: files[%d] must be an object" % i)
            name = e.get("name")
            if not isinstance(name, str):
                raise self._fail(FormatError, "header: files[%d]: \"name\" must be a string" % i)
            nb = name.encode("utf-8", "surrogatepass")
            if (not 1 <= len(nb) <= FILE_NAME_MAX or name in (".", "..")
                    or any(c < 0x20 or c == 0x7F or c in (0x2F, 0x5C) for c in nb)):
                raise self._fail(FormatError, "header: files[%d]: name \"%s\" is not a plain file name" % (i, _shown(name)))
            if name in seen:
                raise self._fail(FormatError, "stored file \"%s\": name used by files[%d] and files[%d]"
                                 % (_shown(name), seen[name], i))
            seen[name] = i
            w = "stored file \"%s\"" % _shown(name)

            def uint(key):
                v = e.get(key)
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise self._fail(FormatError, "%s: \"%s\" must be an integer >= 0" % (w, key))
                return v
            size = uint("size")
            if size > FILE_MAX_SIZE:
                raise self._fail(FormatError, "%s: size %d exceeds the limit of %d bytes" % (w, size, FILE_MAX_SIZE))
            comp = e.get("compression")
            if not isinstance(comp, str):
                raise self._fail(FormatError, "%s: \"compression\" must be a string" % w)
            if comp not in ("zlib", "none"):
                raise self._fail(UnsupportedError, "%s: unsupported compression \"%s\"" % (w, _shown(comp)))
            stored = uint("stored_size")
            if (stored > FILE_MAX_SIZE + FILE_MAX_SIZE // 64 + 4096) if comp == "zlib" else stored != size:
                raise self._fail(FormatError, "%s: stored_size %d is impossible for size %d" % (w, stored, size))
            hx = e.get("xxh3")
            if not isinstance(hx, str) or len(hx) != 16 or any(c not in "0123456789abcdef" for c in hx):
                raise self._fail(FormatError, "%s: \"xxh3\" must be 16 lowercase hex digits" % w)
            data = e.get("data")
            n4 = (stored + 2) // 3 * 4
            pad = 0
            if isinstance(data, str) and data.endswith("="):
                pad = 2 if data.endswith("==") else 1
            if not isinstance(data, str) or len(data) != n4 or n4 // 4 * 3 - pad != stored:
                raise self._fail(FormatError, "%s: \"data\" must be the base64 text of stored_size (%d) bytes"
                                 % (w, stored))
            out.append(StoredFile(name, size, stored, comp, int(hx, 16),
                                  (lambda n=name, d=data, c=comp, sz=size, st=stored, h=int(hx, 16):
                                   self._read_stored(n, d, c, sz, st, h))))
        return out

    def _read_stored(self, name, data, comp, size, stored, hx):
        w = "stored file \"%s\"" % _shown(name)
        try:
            z = base64.b64decode(data.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise self._fail(FormatError, "%s: \"data\" is not canonical base64" % w) from None
        if len(z) != stored or base64.b64encode(z).decode("ascii") != data:
            raise self._fail(FormatError, "%s: \"data\" is not canonical base64" % w)
        if comp == "zlib":
            d = zlib.decompressobj()
            try:
                raw = d.decompress(z, size + 1)
            except zlib.error:
                raw = None
            if raw is None or len(raw) != size or not d.eof or d.unused_data or d.unconsumed_tail:
                raise self._fail(ChecksumError, "%s: the zlib data does not decompress to exactly %d bytes: the "
                                 "file is corrupt; re-create it" % (w, size))
        else:
            raw = z
        h = xxh3_64(np.frombuffer(raw, dtype=np.uint8))
        if h != hx:
            raise self._fail(ChecksumError, "%s: checksum mismatch (stored %016x, computed %016x): the file is "
                             "corrupt; re-create it" % (w, hx, h))
        return raw

    # ------------------------------------------------------------------ public API

    def _check_open(self):
        if self._u8 is None:
            raise MixqError("%s: the file is closed" % self._shown, self.path)

    def tensors(self):
        """Every tensor in file order."""
        return list(self._tensors)

    def names(self):
        return [t.name for t in self._tensors]

    def files(self):
        """Model files stored in the container (StoredFile objects); empty for format 1.0."""
        return list(self._files)

    def file(self, name):
        """The stored file of this name (StoredFile); NotFoundError if there is none."""
        for sf in self._files:
            if sf.name == name:
                return sf
        raise NotFoundError("%s: no stored file \"%s\"" % (self._shown, _shown(name)), self.path)

    def read_file(self, name):
        """The decompressed, checked bytes of a stored file."""
        return self.file(name).read()

    def tensor(self, name):
        t = self._by_name.get(name)
        if t is None:
            raise NotFoundError("%s: no tensor named \"%s\"" % (self._shown, _shown(name)), self.path, name)
        return t

    __getitem__ = tensor

    def __contains__(self, name):
        return name in self._by_name

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self):
        return len(self._tensors)

    def dequantize(self, name, row_begin=None, row_end=None):
        return self.tensor(name).dequantize(row_begin, row_end)

    @property
    def source_metadata(self):
        return dict(self.metadata.get("source_metadata", {}))

    @property
    def mixq_version(self):
        return self.metadata.get("mixq_version")

    def verify(self):
        """Checks every checksum and that every padding byte is zero, in the order `mixq verify`
        does; raises ChecksumError naming the first bad region (preamble, header, a tensor, or a
        padding offset)."""
        self._check_open()
        u8 = self._u8
        stored = self.preamble_xxh3
        computed = xxh3_64(u8[:56])
        if computed != stored:
            raise self._fail(ChecksumError, "preamble: checksum mismatch (stored %016x, computed %016x): the "
                             "file is corrupt; re-create it" % (stored, computed))
        end = self.header_offset + self.header_length
        computed = xxh3_64(u8[self.header_offset:end])
        if computed != self.header_xxh3:
            raise self._fail(ChecksumError, "header: checksum mismatch (stored %016x, computed %016x): the file "
                             "is corrupt; re-create it" % (self.header_xxh3, computed))
        for t in self._tensors:
            computed = xxh3_64(u8[t.offset:t.offset + t.length])
            if computed != t.xxh3:
                raise self._fail(ChecksumError, "tensor \"%s\" (bytes %d..%d): checksum mismatch (stored %016x, "
                                 "computed %016x): the file is corrupt; re-create it"
                                 % (_shown(t.name), t.offset, t.offset + t.length, t.xxh3, computed), t.name)
        pos = PREAMBLE_LEN
        for t in self._tensors:
            self._check_zero(pos, t.offset)
            cur = 0
            for sn in SECTION_ORDER:
                sec = t.sections.get(sn)
                if sec is None:
                    continue
                if sec.rel_offset > cur:
                    self._check_zero(t.offset + cur, sec.offset)
                cur = max(cur, sec.rel_offset + sec.length)
            self._check_zero(t.offset + cur, t.offset + t.length)
            pos = t.offset + t.length
        self._check_zero(pos, self.header_offset)
        for sf in self._files:
            sf.read()

    def _check_zero(self, a, b):
        if b > a:
            nz = np.flatnonzero(self._u8[a:b])
            if nz.size:
                raise self._fail(ChecksumError, "padding at offset %d is not zero: the file is corrupt; "
                                 "re-create it" % (a + int(nz[0])))

    def close(self):
        """Releases the memory map.  Arrays returned by section() keep it alive until they go."""
        self._u8 = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass  # zero-copy views still exist; the map is released when they are collected
            self._mm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<mixq.File %r, %d tensors>" % (self.path, len(self._tensors))


class _JsonReject(ValueError):
    pass


def open(path, verify=False):  # noqa: A001 - mirrors the built-in's role for containers
    """Opens a mixq container read-only; with verify=True every checksum is checked first."""
    return File(path, verify=verify)
