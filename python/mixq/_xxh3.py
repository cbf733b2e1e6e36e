"""XXH3-64 (xxHash 0.8, seed 0, the default secret): the checksum of mixq containers.

``xxh3_64(data)`` uses the ``xxhash`` module when it is installed (Debian:
python3-xxhash) and otherwise ``xxh3_64_pure``, an implementation written
from the published algorithm.  Inputs up to 240 bytes are hashed with
Python integers; longer inputs with numpy uint64 arithmetic (wrapping modulo
2**64), the stripes of every 1 KiB block accumulated at once.
"""
import numpy as np

_M64 = (1 << 64) - 1

_P32_1 = 0x9E3779B1
_P32_2 = 0x85EBCA77
_P32_3 = 0xC2B2AE3D
_P64_1 = 0x9E3779B185EBCA87
_P64_2 = 0xC2B2AE3D27D4EB4F
_P64_3 = 0x165667B19E3779F9
_P64_4 = 0x85EBCA77C2B2AE63
_P64_5 = 0x27D4EB2F165667C5

# The 192-byte default secret of XXH3 (xxHash specification, "kSecret").
_SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e")
assert len(_SECRET) == 192

_STRIPE = 64
_STRIPES_PER_BLOCK = (len(_SECRET) - _STRIPE) // 8  # 16
_BLOCK = _STRIPE * _STRIPES_PER_BLOCK                # 1024 bytes


def _r64(b, o):
    return int.from_bytes(b[o:o + 8], "little")


def _r32(b, o):
    return int.from_bytes(b[o:o + 4], "little")


def _rotl64(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _swap64(x):
    return int.from_bytes(x.to_bytes(8, "little"), "big")


def _mul128_fold64(a, b):
    p = a * b
    return (p ^ (p >> 64)) & _M64


def _xxh64_avalanche(h):
    h ^= h >> 33
    h = (h * _P64_2) & _M64
    h ^= h >> 29
    h = (h * _P64_3) & _M64
    return h ^ (h >> 32)


def _avalanche(h):
    h ^= h >> 37
    h = (h * 0x165667919E3779F9) & _M64
    return h ^ (h >> 32)


def _rrmxmx(h, n):
    h ^= _rotl64(h, 49) ^ _rotl64(h, 24)
    h = (h * 0x9FB21C651E98DF25) & _M64
    h ^= ((h >> 35) + n) & _M64
    h = (h * 0x9FB21C651E98DF25) & _M64
    return h ^ (h >> 28)


def _mix16(b, o, so):
    lo = _r64(b, o) ^ _r64(_SECRET, so)
    hi = _r64(b, o + 8) ^ _r64(_SECRET, so + 8)
    return _mul128_fold64(lo, hi)


def _short(b):
    """Lengths 0 ... 240 (seed 0)."""
    n = len(b)
    s = _SECRET
    if n == 0:
        return _xxh64_avalanche(_r64(s, 56) ^ _r64(s, 64))
    if n <= 3:
        combined = (b[0] << 16) | (b[n >> 1] << 24) | b[n - 1] | (n << 8)
        return _xxh64_avalanche(combined ^ (_r32(s, 0) ^ _r32(s, 4)))
    if n <= 8:
        inp = (_r32(b, n - 4) + (_r32(b, 0) << 32)) & _M64
        return _rrmxmx(inp ^ (_r64(s, 8) ^ _r64(s, 16)), n)
    if n <= 16:
        lo = _r64(b, 0) ^ (_r64(s, 24) ^ _r64(s, 32))
        hi = _r64(b, n - 8) ^ (_r64(s, 40) ^ _r64(s, 48))
        return _avalanche((n + _swap64(lo) + hi + _mul128_fold64(lo, hi)) & _M64)
    acc = (n * _P64_1) & _M64
    if n <= 128:
        if n > 32:
            if n > 64:
                if n > 96:
                    acc += _mix16(b, 48, 96) + _mix16(b, n - 64, 112)
                acc += _mix16(b, 32, 64) + _mix16(b, n - 48, 80)
            acc += _mix16(b, 16, 32) + _mix16(b, n - 32, 48)
        acc += _mix16(b, 0, 0) + _mix16(b, n - 16, 16)
        return _avalanche(acc & _M64)
    for i in range(8):
        acc += _mix16(b, 16 * i, 16 * i)
    acc = _avalanche(acc & _M64)
    for i in range(8, n // 16):
        acc += _mix16(b, 16 * i, 16 * (i - 8) + 3)
    acc += _mix16(b, n - 16, 136 - 17)
    return _avalanche(acc & _M64)


_U32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_SH47 = np.uint64(47)
_SWAP = np.array([1, 0, 3, 2, 5, 4, 7, 6])
# Secret words of each stripe of a block: stripe s uses secret bytes 8s .. 8s+63.
_SECRET_W = np.frombuffer(_SECRET, dtype="<u8").astype(np.uint64)
_STRIPE_KEYS = np.stack([_SECRET_W[s:s + 8] for s in range(_STRIPES_PER_BLOCK)])
_SCRAMBLE_KEY = np.frombuffer(_SECRET[len(_SECRET) - _STRIPE:], dtype="<u8").astype(np.uint64)
_LAST_KEY = np.frombuffer(_SECRET[len(_SECRET) - _STRIPE - 7:len(_SECRET) - 7], dtype="<u8").astype(np.uint64)


def _stripe_sums(words, keys):
    """Sum over stripes of one accumulation: words (..., S, 8), keys (S, 8) -> (..., 8)."""
    dk = words ^ keys
    prod = (dk & _U32) * (dk >> _SH32)
    return prod.sum(axis=-2, dtype=np.uint64) + words[..., _SWAP].sum(axis=-2, dtype=np.uint64)


def _long(buf):
    """Lengths above 240: numpy view of the input as little-endian uint64 words."""
    n = len(buf)
    acc = np.array([_P32_3, _P64_1, _P64_2, _P64_3, _P64_4, _P32_2, _P64_5, _P32_1], dtype=np.uint64)
    nb_blocks = (n - 1) // _BLOCK
    p32 = np.uint64(_P32_1)
    chunk = 1024  # blocks per numpy pass: bounded temporary memory (1 MiB of input)
    with np.errstate(over="ignore"):
        for c0 in range(0, nb_blocks, chunk):
            c1 = min(nb_blocks, c0 + chunk)
            w = np.frombuffer(buf, dtype="<u8", count=(c1 - c0) * _BLOCK // 8, offset=c0 * _BLOCK)
            sums = _stripe_sums(w.reshape(c1 - c0, _STRIPES_PER_BLOCK, 8).astype(np.uint64, copy=False),
                                _STRIPE_KEYS)
            for b in range(c1 - c0):
                acc += sums[b]
                acc ^= acc >> _SH47
                acc ^= _SCRAMBLE_KEY
                acc *= p32
        start = nb_blocks * _BLOCK
        nstripes = ((n - 1) - start) // _STRIPE
        if nstripes:
            w = np.frombuffer(buf, dtype="<u8", count=nstripes * 8, offset=start)
            acc += _stripe_sums(w.reshape(nstripes, 8).astype(np.uint64, copy=False), _STRIPE_KEYS[:nstripes])
        w = np.frombuffer(buf, dtype="<u8", count=8, offset=n - _STRIPE)
        acc += _stripe_sums(w.reshape(1, 8).astype(np.uint64, copy=False), _LAST_KEY.reshape(1, 8))
    a = [int(x) for x in acc]
    r = (n * _P64_1) & _M64
    for i in range(4):
        r += _mul128_fold64(a[2 * i] ^ _r64(_SECRET, 11 + 16 * i), a[2 * i + 1] ^ _r64(_SECRET, 19 + 16 * i))
    return _avalanche(r & _M64)


def xxh3_64_pure(data):
    """XXH3-64 of a bytes-like object (seed 0), without the xxhash module."""
    mv = memoryview(data).cast("B")
    if len(mv) <= 240:
        return _short(bytes(mv))
    return _long(mv)


try:
    import xxhash as _xxhash

    def xxh3_64(data):
        """XXH3-64 of a bytes-like object (seed 0), by the xxhash module."""
        return _xxhash.xxh3_64_intdigest(data)

    HAVE_XXHASH_MODULE = True
except ImportError:  # pragma: no cover - depends on the installation
    xxh3_64 = xxh3_64_pure
    HAVE_XXHASH_MODULE = False
