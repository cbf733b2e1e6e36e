/*
 * tokenizer.h - text <-> token ids for the runtime (mixq eval/run/calibrate).
 *
 * Two file kinds, both loaded from bytes in memory (a container may carry
 * them): a SentencePiece tokenizer.model (BPE or unigram) and a Hugging Face
 * tokenizer.json with a BPE model (byte-level as GPT-2, Llama 3, Qwen2/3, or
 * SentencePiece-style with byte fallback).  Every file is untrusted: a bad
 * one gives a one-line mixq_error naming it; nothing prints or exits.
 * A loaded tokenizer is read-only: several threads may encode at once.
 */
#ifndef MIXQ_TOKENIZER_H
#define MIXQ_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

typedef struct mx_tok mx_tok;

typedef enum mx_tok_kind {
    MX_TOK_SPM_MODEL = 1, /* SentencePiece tokenizer.model (protobuf) */
    MX_TOK_HF_JSON = 2    /* Hugging Face tokenizer.json */
} mx_tok_kind;

/* Largest tokenizer file accepted (a tokenizer.json of 200k tokens is ~12 MB). */
#define MX_TOK_MAX_FILE (256u << 20)
/* Largest vocabulary accepted. */
#define MX_TOK_MAX_VOCAB (1u << 22)

/*
 * Loads a tokenizer from the bytes of a file of the given kind.  name names
 * the file in messages (e.g. "model/tokenizer.json").  config/config_len are
 * the bytes of tokenizer_config.json or NULL/0 (only read for bos/eos token
 * names of a tokenizer.json).  Returns NULL and fills err on failure.
 */
mx_tok *mx_tok_load(mx_tok_kind kind, const void *data, size_t len, const void *config, size_t config_len,
                    const char *name, mixq_error *err);

/* Loads dir/tokenizer.json (with dir/tokenizer_config.json if present), else dir/tokenizer.model. */
mx_tok *mx_tok_load_dir(const char *dir, mixq_error *err);

void mx_tok_free(mx_tok *tok);

/*
 * Encodes len bytes of UTF-8 text (not NUL-terminated; text that is not
 * valid UTF-8 is an error naming the byte offset).  Special tokens written
 * in the text (e.g. "<|im_start|>" of a tokenizer.json) become their ids;
 * with add_bos the BOS id (if the tokenizer has one) comes first.  *ids gets
 * a malloc'd array (free() it) of *n ids.
 */
mixq_status mx_tok_encode(const mx_tok *tok, const char *text, size_t len, int add_bos, int32_t **ids,
                          size_t *n, mixq_error *err);

/*
 * The bytes one token stands for in output text, for streaming: "▁" becomes
 * a space, a byte piece (<0x0A>, or a byte-level character) its byte, a
 * control/special token nothing, a SentencePiece <unk> the model's
 * unk_surface (default " \u2047 ").  The bytes may be part of one UTF-8
 * character (the printer joins them).  *len gets their count; the pointer
 * stays valid until mx_tok_free.  NULL for an id out of range.
 */
const char *mx_tok_decode_piece(const mx_tok *tok, int32_t id, size_t *len);

/*
 * Decodes ids to text into a malloc'd NUL-terminated string (*len its
 * length): the pieces' bytes joined, with the leading space of the text
 * dropped as the reference decoders do (sentencepiece 0.1.97's DecodeIds:
 * pieces lose one leading U+2581 until something is written, <unk> is the
 * model's unk_surface; tokenizer.json: one leading space when the
 * normalizer prepends U+2581 or Metaspace does).  Special tokens of a
 * tokenizer.json are skipped.  Ids out of range are an error.
 */
mixq_status mx_tok_decode(const mx_tok *tok, const int32_t *ids, size_t n, char **text, size_t *len,
                          mixq_error *err);

size_t mx_tok_vocab_size(const mx_tok *tok);
/* BOS/EOS ids, or -1 when the tokenizer has none. */
int32_t mx_tok_bos(const mx_tok *tok);
int32_t mx_tok_eos(const mx_tok *tok);
/* The vocabulary entry of an id (as stored: "▁the", "Ġthe", "<0x0A>"), NUL-terminated; NULL if out of range. */
const char *mx_tok_piece(const mx_tok *tok, int32_t id, size_t *len);
/* The id of a vocabulary entry, or -1. */
int32_t mx_tok_piece_id(const mx_tok *tok, const char *piece, size_t len);
mx_tok_kind mx_tok_get_kind(const mx_tok *tok);

/*
 * Parses a token file: decimal ids separated by whitespace, each below
 * vocab_size.  name names the file in messages, which give the byte offset
 * and the ordinal of a bad entry.  *ids gets a malloc'd array of *n ids.
 */
mixq_status mx_tok_parse_ids(const char *data, size_t len, size_t vocab_size, const char *name, int32_t **ids,
                             size_t *n, mixq_error *err);

/* Reads and parses a token file from disk (at most MX_TOK_MAX_FILE bytes). */
mixq_status mx_tok_read_ids(const char *path, size_t vocab_size, int32_t **ids, size_t *n, mixq_error *err);

#endif
