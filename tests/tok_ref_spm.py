#!/usr/bin/python3
"""Reference ids from python3-sentencepiece for tests/test_tokenizer_spm.c.

    tok_ref_spm.py MODEL STRINGS   STRINGS holds UTF-8 texts separated by NUL bytes;
                                   prints one line per text: the space-separated ids, a tab,
                                   and the hex UTF-8 bytes of decoding those ids.
    tok_ref_spm.py --check         exits 0 if the sentencepiece module loads, 77 if not.
"""
import sys

try:
    import sentencepiece as spm
except ImportError:
    sys.exit(77)

if sys.argv[1] == "--check":
    sys.exit(0)
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2], "rb") as f:
    texts = f.read().split(b"\0")
out = []
for t in texts:
    ids = sp.encode(t.decode("utf-8"))
    out.append(" ".join(str(i) for i in ids) + "\t" + sp.decode(ids).encode("utf-8").hex())
sys.stdout.write("\n".join(out) + "\n")
