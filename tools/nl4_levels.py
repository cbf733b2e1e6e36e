#!/usr/bin/python3
"""nl4_levels.py - derives the 16-entry int8 level table of the nl4 types.

Usage: /usr/bin/python3 tools/nl4_levels.py MODEL.safetensors [MODEL.safetensors ...]

Method (FORMAT.md §4.12 states the result and repeats this description):
  1. Every 2-D tensor of every checkpoint (F32, F16 or BF16) is cut into
     groups of 32 consecutive elements of a row (rows whose length is not a
     multiple of 32 contribute only their whole groups).
  2. Each group is normalized by its element of largest magnitude xm
     (signed): y = -x / xm, so xm itself lands on -1 (the extreme level) and
     every other element lies in [-1, 1].  All-zero groups are skipped.
  3. Each normalized value gets the weight xm^2 (the squared error in the
     original units is xm^2 times the normalized one), and the weights of
     each checkpoint are scaled to sum to 1, so that every model counts the
     same.
  4. Weighted Lloyd-Max in 1-D (k-means with 16 centres): start at the
     weighted 1/32, 3/32, ... quantiles, then alternately assign every value
     to its nearest centre (boundaries at the midpoints) and move every
     centre to the weighted mean of its values, until no centre moves by
     more than 1e-9 (at most 1000 iterations).
  5. The centres are scaled by 127 / max|centre| and rounded to the nearest
     integer (the extreme centre is -1 up to the tolerance, hence -127).

Prints the table and the weighted normalized MSE of the float and the
rounded table.  Needs only numpy; reads safetensors directly.
"""
import json
import struct
import sys

import numpy as np

GROUP = 32
K = 16


def load_tensors(path):
    """Yields the 2-D tensors of a safetensors file as float64 arrays."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        for name, info in sorted(header.items()):
            if name == "__metadata__" or len(info["shape"]) != 2:
                continue
            a, b = info["data_offsets"]
            f.seek(base + a)
            raw = f.read(b - a)
            dt = info["dtype"]
            if dt == "F32":
                v = np.frombuffer(raw, dtype="<f4").astype(np.float64)
            elif dt == "F16":
                v = np.frombuffer(raw, dtype="<f2").astype(np.float64)
            elif dt == "BF16":
                u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                v = u.view(np.float32).astype(np.float64)
            else:
                continue
            yield name, v.reshape(info["shape"])


def normalized_groups(path):
    """Normalized values y and weights w of one checkpoint (weights summing to 1)."""
    ys, ws = [], []
    for _, t in load_tensors(path):
        rows, cols = t.shape
        whole = cols // GROUP * GROUP
        if whole == 0:
            continue
        g = t[:, :whole].reshape(-1, GROUP)
        idx = np.argmax(np.abs(g), axis=1)
        xm = g[np.arange(g.shape[0]), idx]
        keep = xm != 0
        g, xm = g[keep], xm[keep]
        ys.append((-g / xm[:, None]).ravel())
        ws.append(np.repeat(xm * xm, GROUP))
    y = np.concatenate(ys)
    w = np.concatenate(ws)
    return y, w / w.sum()


def weighted_quantile(y, w, qs):
    order = np.argsort(y, kind="stable")
    cw = np.cumsum(w[order])
    cw /= cw[-1]
    return y[order][np.searchsorted(cw, qs)]


def lloyd(y, w):
    c = weighted_quantile(y, w, (np.arange(K) + 0.5) / K)
    for _ in range(1000):
        edges = (c[1:] + c[:-1]) / 2
        a = np.searchsorted(edges, y)
        sw = np.bincount(a, weights=w, minlength=K)
        sy = np.bincount(a, weights=w * y, minlength=K)
        nc = np.where(sw > 0, sy / np.where(sw > 0, sw, 1), c)
        nc.sort()
        moved = np.max(np.abs(nc - c))
        c = nc
        if moved < 1e-9:
            break
    return c


def mse(y, w, levels):
    levels = np.sort(levels)
    edges = (levels[1:] + levels[:-1]) / 2
    q = levels[np.searchsorted(edges, y)]
    return float(np.sum(w * (y - q) ** 2))


def main(paths):
    ys, ws = [], []
    for p in paths:
        y, w = normalized_groups(p)
        ys.append(y)
        ws.append(w)
    y = np.concatenate(ys)
    w = np.concatenate(ws)
    c = lloyd(y, w)
    table = np.rint(c * 127.0 / np.max(np.abs(c))).astype(int)
    print("float centres:", " ".join(f"{v:.6f}" for v in c))
    print("table:", ", ".join(str(v) for v in table))
    print(f"weighted normalized MSE: float {mse(y, w, c):.6e}, table {mse(y, w, table / 127.0):.6e}")
    uni = np.arange(-8, 8) / 8.0
    print(f"(uniform -8..7 grid, same normalization: {mse(y, w, uni):.6e})")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: nl4_levels.py MODEL.safetensors [...]")
    main(sys.argv[1:])
