"""Vectorized reconstruction of every quant type (FORMAT.md §4) to binary32.

All arithmetic is numpy float32 (IEEE binary32, round to nearest even, no
fused multiply-add: each product and sum is a separate ufunc call), in the
order the format prescribes, so the results are bit-identical to the C
library's.  Functions take the rows' part of each section as a 2-D uint8
array (rows, bytes per row) and return a float32 array (rows, row_length).
"""
import numpy as np

from ._format import SUPER_BLOCK

CANONICAL_NAN = np.uint32(0x7FC00000)

_tables = {}


def _f16_table():
    """binary16 bit pattern -> binary32 bit pattern, for all 65536 patterns."""
    t = _tables.get("f16")
    if t is None:
        h = np.arange(1 << 16, dtype=np.uint32)
        sign = (h & 0x8000) << 16
        exp = (h >> 10) & 0x1F
        man = h & 0x3FF
        t = sign | ((exp + 112) << 23) | (man << 13)
        sub = (man.astype(np.float32) * np.float32(2.0 ** -24)).view(np.uint32)
        t = np.where(exp == 0, sign | sub, t)
        # infinity; NaN keeps its sign and top payload bits, quiet bit set
        t = np.where(exp == 0x1F, np.where(man == 0, sign | 0x7F800000, sign | 0x7FC00000 | (man << 13)), t)
        t = t.astype(np.uint32)
        _tables["f16"] = t
    return t


def _e4m3_table():
    t = _tables.get("e4m3")
    if t is None:
        v = np.arange(256, dtype=np.uint32)
        sign = (v & 0x80) << 24
        exp = (v >> 3) & 0xF
        man = v & 0x7
        t = sign | ((exp + 120) << 23) | (man << 20)
        sub = (man.astype(np.float32) * np.float32(2.0 ** -9)).view(np.uint32)
        t = np.where(exp == 0, sign | sub, t)
        t = np.where((exp == 0xF) & (man == 0x7), sign | 0x7FC00000, t).astype(np.uint32)
        _tables["e4m3"] = t
    return t


def _e5m2_table():
    t = _tables.get("e5m2")
    if t is None:  # E5M2 is the top byte of a binary16
        t = _f16_table()[np.arange(256, dtype=np.uint32) << 8].copy()
        _tables["e5m2"] = t
    return t


def f16_to_f32(bits):
    """binary16 bit patterns (any unsigned integer array) -> float32 values."""
    return _f16_table()[bits].view(np.float32)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def fp8_to_f32(codes, kind):
    table = _e4m3_table() if kind in ("fp8_e4m3", "F8_E4M3") else _e5m2_table()
    return table[codes].view(np.float32)


def f16_finite(bits):
    return (bits & 0x7C00) != 0x7C00


def unpack_planes(b, start, count, planes):
    """Unsigned values (at most 8 bits), `count` per row, from bit planes starting at byte `start`
    of each row of b (§5.1): value k of a plane of width w is bits (k*w) mod 8 .. +w-1 of byte
    floor(k*w / 8); planes hold the value's bits from the low end up.  Returns uint8 (rows, count)."""
    n = b.shape[0]
    out = None
    off, shift = start, 0
    for w in planes:
        nb = -(-(count * w) // 8)
        part = b[:, off:off + nb]
        if w == 8:
            v = part[:, :count]
        elif w == 4:
            v = np.empty((n, 2 * nb), dtype=np.uint8)
            np.bitwise_and(part, np.uint8(15), out=v[:, 0::2])
            np.right_shift(part, np.uint8(4), out=v[:, 1::2])
            v = v[:, :count]
        else:
            shifts = np.arange(0, 8, w, dtype=np.uint8)
            v = ((part[:, :, None] >> shifts) & np.uint8((1 << w) - 1)).reshape(n, nb * (8 // w))[:, :count]
        if shift:
            v = v << np.uint8(shift)
        out = v if out is None else out | v
        shift += w
        off += nb
    if out is None:
        out = np.zeros((n, count), dtype=np.uint8)
    return out


def _le(b, dtype):
    """A (rows, bytes) uint8 block as little-endian values of dtype, native order."""
    return np.ascontiguousarray(b).view(dtype).astype(np.dtype(dtype).newbyteorder("="))


def _spread(per_group, group, k):
    """(rows, groups) -> (rows, k): each group's value repeated over its elements."""
    return np.repeat(per_group, group, axis=1)[:, :k]


def _per_group(op, x, p, group):
    """op(x, p spread over each group's elements) for x (rows, k) and p (rows, groups), through
    broadcasting (no spread copy of p): the full groups as (rows, groups, group), then the tail."""
    n, k = x.shape
    ngf = k // group
    full = ngf * group
    if full == k:
        return op(x.reshape(n, ngf, group), p[:, :ngf, None]).reshape(n, k)
    out = np.empty(x.shape, dtype=np.float32)
    if ngf:
        out[:, :full] = op(x[:, :full].reshape(n, ngf, group), p[:, :ngf, None]).reshape(n, full)
    out[:, full:] = op(x[:, full:], p[:, ngf:ngf + 1])
    return out


def _set_nan(out, bad_groups, group, k):
    if bad_groups.any():
        out.view(np.uint32)[_spread(bad_groups, group, k)] = CANONICAL_NAN


def _codes(qt, sec, k):
    """Element values before the scale: the integer code, or a lookup-table type's level (§4.12)."""
    u = unpack_planes(sec["codes"], 0, k, qt.code_planes)
    if qt.levels is not None:
        return np.asarray(qt.levels, dtype=np.float32)[u]
    return (u.astype(np.int16) - qt.qbias).astype(np.float32)


def _symf16(qt, sec, k, g):
    codes = sec["codes"]
    if qt.name == "int8":
        q = codes[:, :k].view(np.int8).astype(np.float32)
    elif qt.levels is not None:
        q = _codes(qt, sec, k)
    else:
        q = (unpack_planes(codes, 0, k, qt.code_planes).astype(np.int16) - qt.qbias).astype(np.float32)
    sh = _le(sec["scales"], "<u2")
    out = _per_group(np.multiply, q, f16_to_f32(sh), g)
    _set_nan(out, ~f16_finite(sh), g, k)
    return out


def _asymf16(qt, sec, k, g):
    q = unpack_planes(sec["codes"], 0, k, qt.code_planes).astype(np.float32)
    sh = _le(sec["scales"], "<u2")
    mh = _le(sec["mins"], "<u2")
    out = _per_group(np.multiply, q, f16_to_f32(sh), g)  # then add: no fused multiply-add
    out = _per_group(np.add, out, f16_to_f32(mh), g)
    _set_nan(out, ~(f16_finite(sh) & f16_finite(mh)), g, k)
    return out


def _fp8(qt, sec, k, g, per_tensor, scale_all):
    dec = fp8_to_f32(sec["codes"][:, :k], qt.name)
    if per_tensor:
        s = scale_all
        out = dec * s
        if not np.isfinite(s):
            out.view(np.uint32)[...] = CANONICAL_NAN
        return out
    s = _le(sec["scales"], "<f4")
    out = _per_group(np.multiply, dec, s, g)
    _set_nan(out, ~np.isfinite(s), g, k)
    return out


def _dq(qt, sec, k, g, ng):
    gb = (np.arange(ng) * g) // SUPER_BLOCK  # super-block of each group
    dh = _le(sec["super_scales"], "<u2")
    c = unpack_planes(sec["scales"], 0, ng, qt.scale_planes).astype(np.int32) - qt.cbias
    s = f16_to_f32(dh)[:, gb] * c.astype(np.float32)  # exact
    if qt.cb_levels:  # codebook types: the index into the tensor's int8 levels (§4.14)
        u = unpack_planes(sec["codes"], 0, k, qt.code_planes)
        levels = np.frombuffer(bytes(sec["codebook"][:qt.cb_levels]), dtype=np.int8).astype(np.float32)
        q = levels[u]
    else:
        q = _codes(qt, sec, k)
    out = _per_group(np.multiply, q, s, g)
    bad = ~f16_finite(dh)
    if not qt.symmetric:
        mh = _le(sec["super_mins"], "<u2")
        mc = unpack_planes(sec["mins"], 0, ng, qt.scale_planes).astype(np.float32)
        out = _per_group(np.add, out, f16_to_f32(mh)[:, gb] * mc, g)
        bad = bad | ~f16_finite(mh)
    _set_nan(out, bad[:, gb], g, k)
    return out


def dequantize_rows(qt, layout, sec, n):
    """Rows of a quantized tensor: sec maps section name -> (n, bytes per row) uint8 (the
    per-tensor fp8 scale: a 4-byte array)."""
    k = layout.row_length
    g = layout.group
    with np.errstate(all="ignore"):
        if qt.name in ("int8", "int4s", "nl4"):
            return _symf16(qt, sec, k, g)
        if qt.name in ("int4", "int2"):
            return _asymf16(qt, sec, k, g)
        if qt.name in ("fp8_e4m3", "fp8_e5m2"):
            scale_all = None
            if layout.per_tensor:
                scale_all = np.frombuffer(bytes(sec["scales"]), dtype="<f4")[0].astype(np.float32)
            return _fp8(qt, sec, k, g, layout.per_tensor, scale_all)
        if qt.super_block:
            return _dq(qt, sec, k, g, layout.groups_per_row)
    raise AssertionError("not a quantized type: %s" % qt.name)


def plain_to_f32(quant_type, source_dtype, data):
    """Elements of a plain tensor (a flat uint8 array of whole elements) -> float32."""
    dt = {"f32": "F32", "f16": "F16", "bf16": "BF16"}.get(quant_type, source_dtype)
    with np.errstate(all="ignore"):
        if dt == "F32":
            return _le(data[None, :], "<u4")[0].view(np.float32)
        if dt == "F16":
            return f16_to_f32(_le(data[None, :], "<u2")[0])
        if dt == "BF16":
            return bf16_to_f32(_le(data[None, :], "<u2")[0])
        if dt in ("F8_E4M3", "F8_E5M2"):
            return fp8_to_f32(data, dt).copy()
        if dt == "BOOL":
            return (data != 0).astype(np.float32)
        if dt in ("U64", "I64"):
            return _int64_to_f32(_le(data[None, :], "<u8")[0], dt == "I64")
        from ._format import SOURCE_DTYPES
        return _le(data[None, :], SOURCE_DTYPES[dt][1])[0].astype(np.float32)


def _int64_to_f32(u, signed):
    """64-bit integers -> float32 rounded once to nearest, ties to even (as a C cast).

    Converting through float64 would round twice; instead the magnitude is
    rounded to 24 significant bits in integer arithmetic."""
    u = u.astype(np.uint64)
    neg = np.zeros(u.shape, dtype=bool)
    if signed:
        neg = u >= np.uint64(1 << 63)
        u = np.where(neg, (~u) + np.uint64(1), u)  # magnitude; -2^63 stays 2^63 as unsigned
    # bit length of each magnitude (frexp of the float64 value may be one too high after rounding up)
    e = np.frexp(u.astype(np.float64))[1].astype(np.int64)
    e = np.where((e > 0) & ((u >> np.maximum(e - 1, 0).astype(np.uint64)) == 0), e - 1, e)
    shift = np.maximum(e - 24, 0).astype(np.uint64)
    q = u >> shift
    rem = u - (q << shift)
    half = np.where(shift > 0, np.uint64(1) << (shift - np.uint64(1)), np.uint64(0))
    up = (shift > 0) & ((rem > half) | ((rem == half) & ((q & np.uint64(1)) == 1)))
    q = q + up.astype(np.uint64)
    mag = np.ldexp(q.astype(np.float32), shift.astype(np.int32))  # q <= 2^24: exact
    return np.where(neg, -mag, mag).astype(np.float32)
