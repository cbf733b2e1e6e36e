/*
 * gguf_vocab.h - a model's vocabulary as llama.cpp's GGUF keys want it
 * (tokenizer.ggml.*), read from a SentencePiece tokenizer.model or a
 * byte-level BPE tokenizer.json.  Every input is treated as hostile.
 */
#ifndef MIXQ_GGUF_VOCAB_H
#define MIXQ_GGUF_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

/* Token types, as llama.cpp numbers them (llama_token_type). */
enum { GV_NORMAL = 1, GV_UNKNOWN = 2, GV_CONTROL = 3, GV_USER_DEFINED = 4, GV_UNUSED = 5, GV_BYTE = 6 };

typedef struct gv_vocab {
    const char *model;      /* "llama" (SentencePiece) or "gpt2" (byte-level BPE) */
    const char *pre;        /* tokenizer.ggml.pre, or NULL */
    size_t n;
    char **tokens;          /* n NUL-terminated UTF-8 strings */
    size_t *token_len;
    float *scores;          /* n, or NULL (BPE) */
    int32_t *types;         /* n */
    size_t n_merges;
    char **merges;          /* "a b", BPE only */
    int64_t bos, eos, unk, pad; /* -1 if none */
    int add_bos, add_eos;   /* -1 if unknown */
} gv_vocab;

/* Largest vocabulary accepted. */
#define GV_MAX_TOKENS (1u << 22)

/*
 * Parses a SentencePiece ModelProto (tokenizer.model); `name` is used in
 * messages.  pad_to: the model's vocab_size (0 = as many as the file has);
 * extra entries become "[PADn]" tokens of type UNUSED, as llama.cpp does.
 */
mixq_status gv_from_sentencepiece(const char *name, const uint8_t *p, size_t len, uint64_t pad_to, gv_vocab *out,
                                  mixq_error *err);

/* Parses a Hugging Face tokenizer.json holding a byte-level BPE model. */
mixq_status gv_from_tokenizer_json(const char *name, const char *text, size_t len, uint64_t pad_to, gv_vocab *out,
                                   mixq_error *err);

/* Reads add_bos_token / add_eos_token and the special tokens' ids from tokenizer_config.json (optional). */
void gv_apply_tokenizer_config(gv_vocab *v, const char *text, size_t len);

void gv_free(gv_vocab *v);

#endif
