#!/usr/bin/python3
"""Regenerates the small SentencePiece models of tests/data/tokenizer/ (used by
tests/test_tokenizer_spm.c) with python3-sentencepiece, trained on
../shared/models/eval-text.txt:

    /usr/bin/python3 tests/make_tok_models.py

  unigram.model      unigram, identity normalization (remove_extra_whitespaces on),
                     user-defined symbols <sep> and "ab", no byte fallback
  unigram-bf.model   unigram with byte fallback
  bpe-user.model     BPE, identity normalization, user-defined symbols, no dummy prefix
"""
import os
import sentencepiece as spm

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
text = os.path.join(root, "..", "shared", "models", "eval-text.txt")
out = os.path.join(root, "tests", "data", "tokenizer")
common = dict(input=text, normalization_rule_name="identity", minloglevel=2, num_threads=1)
spm.SentencePieceTrainer.train(model_prefix=os.path.join(out, "unigram"), vocab_size=400, model_type="unigram",
                               user_defined_symbols=["<sep>", "ab"], **common)
spm.SentencePieceTrainer.train(model_prefix=os.path.join(out, "unigram-bf"), vocab_size=500, model_type="unigram",
                               byte_fallback=True, **common)
spm.SentencePieceTrainer.train(model_prefix=os.path.join(out, "bpe-user"), vocab_size=400, model_type="bpe",
                               user_defined_symbols=["<sep>", "ab", "the end"], add_dummy_prefix=False, **common)
for f in os.listdir(out):
    if f.endswith(".vocab"):
        os.remove(os.path.join(out, f))
