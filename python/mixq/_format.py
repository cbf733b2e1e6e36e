"""Constants of the mixq container format version 1 (format/FORMAT.md): quant
types, source dtypes and the section layout of a tensor (§4, §5)."""

MAGIC = b"\x89MXQ\r\n\x1a\n"
FORMAT_MAJOR = 1
PREAMBLE_LEN = 64
ALIGN = 64
# Stored model files (FORMAT.md §3.3): at most this many, each at most this large once
# decompressed, names of at most this many bytes.
FILES_MAX = 64
FILE_MAX_SIZE = 64 * 1024 * 1024
FILE_NAME_MAX = 255
MAX_HEADER = 1 << 28
MAX_DIMS = 8
MAX_JSON_DEPTH = 64
U63_MAX = (1 << 63) - 1
U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1
SUPER_BLOCK = 256

# Section names in storage order (§5).
SECTION_ORDER = ("data", "codes", "scales", "mins", "super_scales", "super_mins", "codebook")

# safetensors dtype -> (element size in bytes, numpy little-endian dtype of the stored bytes)
SOURCE_DTYPES = {
    "BOOL": (1, "u1"), "U8": (1, "u1"), "I8": (1, "i1"), "U16": (2, "<u2"), "I16": (2, "<i2"),
    "U32": (4, "<u4"), "I32": (4, "<i4"), "U64": (8, "<u8"), "I64": (8, "<i8"),
    "F8_E4M3": (1, "u1"), "F8_E5M2": (1, "u1"), "F16": (2, "<f2"), "BF16": (2, "<u2"),
    "F32": (4, "<f4"), "F64": (8, "<f8"),
}


class QType:
    """One quant type of §4: which sections it stores and how they are laid out."""

    __slots__ = ("name", "quantized", "symmetric", "elem_bits", "code_planes", "scale_planes",
                 "group_min", "group_max", "group_default", "allow_row", "tensor_scale", "super_block",
                 "sections", "qbias", "cbias", "levels", "cb_levels")

    def __init__(self, name, quantized, symmetric, elem_bits=0, code_planes=(), scale_planes=(),
                 groups=(0, 0, 0), allow_row=False, tensor_scale=False, super_block=0, sections=("data",),
                 qbias=0, cbias=0, levels=None, cb_levels=0):
        self.name = name
        self.quantized = quantized
        self.symmetric = symmetric
        self.elem_bits = elem_bits
        self.code_planes = code_planes
        self.scale_planes = scale_planes
        self.group_min, self.group_max, self.group_default = groups
        self.allow_row = allow_row
        self.tensor_scale = tensor_scale
        self.super_block = super_block
        self.sections = sections
        self.qbias = qbias  # stored element code = q + qbias
        self.cbias = cbias  # stored scale code = c + cbias
        self.levels = levels  # lookup-table types: element value = levels[code] * scale
        self.cb_levels = cb_levels  # codebook types: int8 levels in the per-tensor codebook section

    def group_ok(self, g):
        """Whether group_size g is allowed for this type (§4 table)."""
        if not self.quantized:
            return g == 0
        if g == 0:
            return self.allow_row
        return g & (g - 1) == 0 and self.group_min <= g <= self.group_max

    def __repr__(self):
        return "QType(%r)" % self.name


_CS = ("codes", "scales")

# The level table of nl4 and nl4_dq (FORMAT.md §4.12).
NL4_LEVELS = (-127, -101, -80, -63, -47, -33, -21, -9, 2, 14, 26, 40, 54, 70, 88, 110)
_CSM = ("codes", "scales", "mins")

QTYPES = {q.name: q for q in [
    QType("raw", False, True, allow_row=True),
    QType("f32", False, True, 32, allow_row=True),
    QType("f16", False, True, 16, allow_row=True),
    QType("bf16", False, True, 16, allow_row=True),
    QType("int8", True, True, 8, (8,), (16,), (32, 256, 128), allow_row=True, sections=_CS),
    QType("int4", True, False, 4, (4,), (16,), (16, 256, 64), sections=_CSM),
    QType("int4s", True, True, 4, (4,), (16,), (16, 256, 32), sections=_CS, qbias=8),
    QType("int2", True, False, 2, (2,), (16,), (16, 128, 32), sections=_CSM),
    QType("fp8_e4m3", True, True, 8, (8,), (32,), (32, 256, 0), allow_row=True, tensor_scale=True,
          sections=_CS),
    QType("fp8_e5m2", True, True, 8, (8,), (32,), (32, 256, 0), allow_row=True, tensor_scale=True,
          sections=_CS),
    QType("int4_dq", True, False, 4, (4,), (4, 2), (16, 64, 32), super_block=SUPER_BLOCK,
          sections=_CSM + ("super_scales", "super_mins")),
    QType("int2_dq", True, False, 2, (2,), (4,), (16, 16, 16), super_block=SUPER_BLOCK,
          sections=_CSM + ("super_scales", "super_mins")),
    QType("int3_dq", True, True, 3, (2, 1), (4, 2), (16, 16, 16), super_block=SUPER_BLOCK,
          sections=_CS + ("super_scales",), qbias=4, cbias=32),
    QType("int6_dq", True, True, 6, (4, 2), (8,), (16, 16, 16), super_block=SUPER_BLOCK,
          sections=_CS + ("super_scales",), qbias=32, cbias=128),
    QType("nl4", True, True, 4, (4,), (16,), (16, 256, 32), sections=_CS, levels=NL4_LEVELS),
    QType("nl4_dq", True, True, 4, (4,), (4, 2), (32, 32, 32), super_block=SUPER_BLOCK,
          sections=_CS + ("super_scales",), cbias=32, levels=NL4_LEVELS),
    QType("cb4_dq", True, True, 4, (4,), (4, 2), (32, 32, 32), super_block=SUPER_BLOCK,
          sections=_CS + ("super_scales", "codebook"), cbias=32, cb_levels=16),
    QType("cb3_dq", True, True, 3, (2, 1), (4, 2), (16, 16, 16), super_block=SUPER_BLOCK,
          sections=_CS + ("super_scales", "codebook"), cbias=32, cb_levels=8),
    QType("cb2_dq", True, True, 2, (2,), (4, 2), (16, 16, 16), super_block=SUPER_BLOCK,
          sections=_CS + ("super_scales", "codebook"), cbias=32, cb_levels=4),
]}


def ceil_div(a, b):
    return -(-a // b)


def align_up(x, a=ALIGN):
    return ceil_div(x, a) * a


def plane_bytes(planes, count):
    """Bytes of a field of `count` values stored as bit planes of the given widths (§5.1)."""
    return sum(ceil_div(count * w, 8) for w in planes)


class Layout:
    """The §5 layout of a tensor: per section (relative offset, length, bytes per row)."""

    __slots__ = ("rows", "row_length", "group", "groups_per_row", "supers_per_row", "per_tensor",
                 "sections", "total")

    def __init__(self, qt, src_dtype, rows, row_length, group_size):
        self.rows = rows
        self.row_length = row_length
        n = rows * row_length
        row_bytes = {}
        self.group = 0
        self.groups_per_row = 0
        self.supers_per_row = 0
        self.per_tensor = False
        if qt.quantized:
            g = group_size if group_size else row_length
            self.group = g
            self.groups_per_row = ceil_div(row_length, g) if row_length else 0
            self.per_tensor = qt.tensor_scale and group_size == 0
            row_bytes["codes"] = plane_bytes(qt.code_planes, row_length)
            row_bytes["scales"] = 0 if self.per_tensor else plane_bytes(qt.scale_planes, self.groups_per_row)
            if not qt.symmetric:
                row_bytes["mins"] = row_bytes["scales"]
            if qt.super_block:
                self.supers_per_row = ceil_div(row_length, qt.super_block)
                row_bytes["super_scales"] = 2 * self.supers_per_row
                if not qt.symmetric:
                    row_bytes["super_mins"] = row_bytes["super_scales"]
            row_bytes["codebook"] = 0  # one per tensor (row stride 0)
        else:
            size = SOURCE_DTYPES[src_dtype][0] if qt.name == "raw" else qt.elem_bits // 8
            row_bytes["data"] = row_length * size
        self.sections = {}
        end = 0
        for name in SECTION_ORDER:
            if name not in qt.sections:
                continue
            if name == "scales" and self.per_tensor:
                length = 4 if n else 0
            elif name == "codebook":
                length = qt.cb_levels if n else 0
            else:
                length = rows * row_bytes[name]
            off = align_up(end)
            self.sections[name] = (off, length, row_bytes[name])
            end = off + length
        self.total = end

    def fits_u64(self):
        return all(o + ln <= U64_MAX for o, ln, _ in self.sections.values())
