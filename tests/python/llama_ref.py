"""llama_ref.py - an independent, minimal LLaMA-family forward pass in torch
(float64), the reference the C runtime is tested against.

Reads config.json and the safetensors file(s) itself (no transformers, no
safetensors package): llama, mistral and qwen2 (q/k/v biases), grouped-query
attention, RoPE in the Hugging Face rotate-half layout with rope_theta and
llama3 rope_scaling, RMSNorm, SwiGLU, tied or untied lm_head.
"""
import json
import math
import os
import struct

import numpy as np
import torch

_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """All tensors of one .safetensors file as float64 torch tensors."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[a:b]
        if t["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(_NP[t["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(np.float64).reshape(t["shape"]))
    return out


def write_safetensors(path, tensors):
    """Writes float32 tensors (a dict name -> torch tensor) as a .safetensors file."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    weights = {}
    for fn in sorted(os.listdir(model_dir)):
        if fn.endswith(".safetensors"):
            weights.update(read_safetensors(os.path.join(model_dir, fn)))
    return cfg, weights


def inv_frequencies(cfg, head_dim):
    theta = cfg.get("rope_theta", 10000.0)
    inv = [1.0 / theta ** (2 * i / head_dim) for i in range(head_dim // 2)]
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        out = []
        for f in inv:
            wavelen = 2 * math.pi / f
            if wavelen < old / hi:
                out.append(f)
            elif wavelen > old / lo:
                out.append(f / factor)
            else:
                s = (old / wavelen - lo) / (hi - lo)
                out.append((1 - s) * f / factor + s * f)
        inv = out
    return torch.tensor(inv, dtype=torch.float64)


def forward(cfg, w, tokens, observe=None):
    """Logits [len(tokens), vocab] (float64) of a causal pass over tokens.
    observe(name, x), if given, sees the input x [n, cols] of every linear layer."""
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    n = len(tokens)

    def norm(x, g):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * g

    def lin(x, name, bias=False):
        if observe:
            observe(name + ".weight", x)
        y = x @ w[name + ".weight"].T
        if bias:
            y = y + w[name + ".bias"]
        return y

    inv = inv_frequencies(cfg, hd)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)

    def rot(x):  # x: [heads, n, hd]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    o_bias = cfg["model_type"] != "qwen2" and cfg.get("attention_bias", False)
    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    mask = torch.full((n, n), float("-inf"), dtype=torch.float64).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        h = norm(x, w[p + "input_layernorm.weight"])
        q = lin(h, p + "self_attn.q_proj", qkv_bias).view(n, nh, hd).transpose(0, 1)
        k = lin(h, p + "self_attn.k_proj", qkv_bias).view(n, nkv, hd).transpose(0, 1)
        v = lin(h, p + "self_attn.v_proj", qkv_bias).view(n, nkv, hd).transpose(0, 1)
        q, k = rot(q), rot(k)
        k = k.repeat_interleave(nh // nkv, 0)
        v = v.repeat_interleave(nh // nkv, 0)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, -1) @ v
        x = x + lin(a.transpose(0, 1).reshape(n, nh * hd), p + "self_attn.o_proj", o_bias)
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        g = lin(h, p + "mlp.gate_proj")
        x = x + lin(torch.nn.functional.silu(g) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = norm(x, w["model.norm.weight"])
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else w["lm_head.weight"]
    if observe:
        observe("lm_head.weight", x)
    return x @ head.T


def read_gguf_imatrix(path):
    """An independent reader of a GGUF imatrix: (keys, {tensor name: float64 array})."""
    with open(path, "rb") as f:
        b = f.read()
    pos = [0]

    def take(fmt):
        v = struct.unpack_from("<" + fmt, b, pos[0])
        pos[0] += struct.calcsize("<" + fmt)
        return v[0]

    def gstr():
        n = take("Q")
        s = b[pos[0]:pos[0] + n].decode()
        pos[0] += n
        return s

    assert b[:4] == b"GGUF"
    pos[0] = 4
    version, n_t, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3
    keys = {}
    for _ in range(n_kv):
        k, t = gstr(), take("I")
        if t == 8:
            keys[k] = gstr()
        elif t == 4:
            keys[k] = take("I")
        elif t == 9:
            et, n = take("I"), take("Q")
            assert et == 8
            keys[k] = [gstr() for _ in range(n)]
        else:
            raise ValueError("unexpected key type %d" % t)
    infos = []
    for _ in range(n_t):
        name, nd = gstr(), take("I")
        ne = [take("Q") for _ in range(nd)]
        typ, off = take("I"), take("Q")
        assert typ == 0
        infos.append((name, ne, off))
    data = (pos[0] + 31) // 32 * 32
    tensors = {}
    for name, ne, off in infos:
        n = int(np.prod(ne))
        tensors[name] = np.frombuffer(b, dtype="<f4", count=n, offset=data + off).astype(np.float64)
    return keys, tensors


GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down"}


def gguf_name(hf):
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")  # model.layers.N.<group>.<proj>.weight
    return "blk.%s.%s.weight" % (parts[2], GGUF_NAMES[parts[3] + "." + parts[4]])
