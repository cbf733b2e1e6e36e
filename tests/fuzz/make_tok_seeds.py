#!/usr/bin/env python3
"""Writes the seed corpora of the tokenizer fuzz targets (tests/fuzz/corpus/tok_*):
small SentencePiece models (copies of tests/data/tokenizer/ and hand-built
protobufs), small tokenizer.json files covering each supported normalizer and
pre-tokenizer, and token files.  python3 tests/fuzz/make_tok_seeds.py"""
import json
import os
import shutil
import struct

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
corpus = os.path.join(root, "tests", "fuzz", "corpus")


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def field(num, wire, payload):
    if wire == 2:
        return varint(num << 3 | 2) + varint(len(payload)) + payload
    if wire == 5:
        return varint(num << 3 | 5) + payload
    return varint(num << 3) + varint(payload)


def piece(s, score, typ):
    return field(1, 2, field(1, 2, s.encode()) + field(2, 5, struct.pack("<f", score)) + field(3, 0, typ))


def model(pieces, model_type, extra_trainer=b"", normalizer=b""):
    m = b"".join(piece(*p) for p in pieces)
    m += field(2, 2, field(3, 0, model_type) + extra_trainer)
    if normalizer:
        m += field(3, 2, normalizer)
    return m


def write(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


base = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3), ("a", -1, 1), ("b", -2, 1), ("ab", -0.5, 1),
        ("\u2581", -3, 1), ("\u2581a", -0.25, 1), ("<sep>", 0, 4), ("x", -5, 5)]
bytes_ = [("<0x%02X>" % i, 0, 6) for i in range(256)]
write("tok_spm", "bpe-small.model", model(base, 2))
write("tok_spm", "unigram-small.model", model(base, 1))
write("tok_spm", "bpe-bytes.model", model(base + bytes_, 2, field(35, 0, 1)))
write("tok_spm", "norm-flags.model",
      model(base, 2, field(41, 0, 3) + field(42, 0, 4), field(1, 2, b"identity") + field(3, 0, 0) + field(4, 0, 0)))
for f in ("unigram.model", "bpe-user.model"):
    shutil.copy(os.path.join(root, "tests", "data", "tokenizer", f), os.path.join(corpus, "tok_spm", f))

bl_vocab = {c: i for i, c in enumerate(["!", "a", "b", "c", "\u0120", "\u0120a", "ab", "\u0120ab", "\u010a"])}
bl_model = {"type": "BPE", "vocab": bl_vocab, "merges": ["\u0120 a", "a b", "\u0120a b"], "ignore_merges": True}
added = [{"id": 9, "content": "<|x|>", "special": True, "lstrip": False, "rstrip": True, "normalized": False,
          "single_word": False}]
llama3_re = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
             "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
write("tok_json", "bytelevel-split.json", json.dumps({
    "added_tokens": added, "normalizer": None,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": llama3_re}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]},
    "model": bl_model}))
write("tok_json", "bytelevel-gpt2.json", json.dumps({
    "normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True},
    "model": dict(bl_model, merges=[["\u0120", "a"], ["a", "b"]])}))
sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4, "b": 5, "\u2581a": 6, "ab": 7}
sp_vocab.update({"<0x%02X>" % i: 8 + i for i in range(256)})
write("tok_json", "prepend-replace.json", json.dumps({
    "added_tokens": [{"id": 1, "content": "<s>", "special": True}],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": None,
    "model": {"type": "BPE", "vocab": sp_vocab, "merges": ["\u2581 a", "a b"], "unk_token": "<unk>",
              "byte_fallback": True, "fuse_unk": True}}))
write("tok_json", "metaspace.json", json.dumps({
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
    "model": {"type": "BPE", "vocab": sp_vocab, "merges": ["\u2581 a"], "unk_token": "<unk>", "fuse_unk": False}}))
write("tok_json", "split-string.json", json.dumps({
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": "b"}, "behavior": "MergedWithNext"},
        {"type": "Split", "pattern": {"String": "a"}, "behavior": "Removed"},
        {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "MergedWithPrevious"}]},
    "model": {"type": "BPE", "vocab": sp_vocab, "merges": [], "unk_token": "<unk>"}}))

write("tok_ids", "ok", b"\x00\x01" + b"1 2 3\n255\t0\r\n")
write("tok_ids", "range", b"\x10\x00" + b"1 15 16")
write("tok_ids", "word", b"\xff\xff" + b"12 abc 4")
write("tok_ids", "big", b"\xff\xff" + b"99999999999999999999 1")
