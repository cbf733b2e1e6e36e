/* tok_internal.h - what the tokenizer's files share: the vocabulary, the merge engine, the loaded tokenizer. */
#ifndef MIXQ_TOK_INTERNAL_H
#define MIXQ_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

/* SentencePiece piece types (ModelProto.SentencePiece.Type); a tokenizer.json uses NORMAL and CONTROL. */
enum { SPT_NORMAL = 1, SPT_UNKNOWN = 2, SPT_CONTROL = 3, SPT_USER = 4, SPT_UNUSED = 5, SPT_BYTE = 6 };

/* ---- UTF-8 (tok_utf8.c) ---- */

/* Length of the valid UTF-8 character at s[0..n) (1..4), or 0 if invalid; *cp gets the code point. */
size_t tu_char(const char *s, size_t n, uint32_t *cp);
/* Offset of the first invalid byte of s[0..n), or n if all of it is valid UTF-8. */
size_t tu_invalid_at(const char *s, size_t n);
/* Writes cp as UTF-8 into out (4 bytes of room); returns its length. */
size_t tu_put(uint32_t cp, char *out);

/* ---- growable byte and id buffers (tok_buf.c) ---- */

typedef struct tok_buf {
    char *p;
    size_t len, cap;
} tok_buf;

typedef struct tok_ids {
    int32_t *p;
    size_t n, cap;
} tok_ids;

/* Each returns 0 on success, -1 on overflow or out of memory. */
int tb_add(tok_buf *b, const void *s, size_t n);
int ti_add(tok_ids *v, int32_t id);

/* ---- vocabulary: id -> piece, piece -> id (tok_vocab.c) ---- */

typedef struct tok_vocab {
    uint32_t n;           /* ids 0..n-1 */
    tok_buf text;         /* the pieces, each followed by a NUL */
    uint64_t *off;        /* piece i at text.p + off[i] */
    uint32_t *len;        /* its length; UINT32_MAX: no piece with this id (a hole) */
    uint32_t *slot;       /* open-addressed index: id + 1, 0 free */
    size_t nslot;         /* a power of two */
} tok_vocab;

/* Allocates n empty entries; 0 or -1 (out of memory). */
int tv_init(tok_vocab *v, uint32_t n);
/* Sets the piece of id (copied); 0 or -1 (out of memory, too large). */
int tv_set(tok_vocab *v, uint32_t id, const char *s, size_t n);
/* Builds the piece -> id index; returns -1 when done, else the id of a second piece already present (a duplicate), or -2 out of memory. */
int64_t tv_index(tok_vocab *v);
/* Id of piece s[0..n), or -1. */
int32_t tv_find(const tok_vocab *v, const char *s, size_t n);
void tv_free(tok_vocab *v);

/* ---- pair table for HF merges: (left id, right id) -> (rank, merged id) (tok_vocab.c) ---- */

typedef struct tok_pairs {
    uint64_t *key;   /* (left << 32 | right) + 1, 0 free */
    uint32_t *rank;
    int32_t *merged;
    size_t nslot, n;
} tok_pairs;

/* Adds a merge unless the pair is already there (the first, lowest rank, wins); 0 or -1 (out of memory). */
int tp_add(tok_pairs *t, int32_t a, int32_t b, uint32_t rank, int32_t merged);
/* 1 and the rank and merged id if (a, b) merges, else 0. */
int tp_find(const tok_pairs *t, int32_t a, int32_t b, uint32_t *rank, int32_t *merged);
void tp_free(tok_pairs *t);

/* ---- the BPE merge engine shared by both kinds (tok_bpe.c) ---- */

typedef struct tok_sym {
    uint32_t start, len; /* bytes of the word */
    int32_t id;          /* vocabulary id, -1 if none */
    int32_t prev, next;  /* neighbours, -1 at the ends */
    uint8_t frozen;      /* never merged (a user-defined piece) */
} tok_sym;

/*
 * Whether symbols a and b (adjacent) may merge: returns 1 and sets *prio
 * (larger merges first; ties go to the leftmost pair) and *id (the merged
 * symbol's id), else 0.
 */
typedef int (*tok_pair_fn)(const void *ctx, const char *word, const tok_sym *a, const tok_sym *b, double *prio,
                           int32_t *id);

/* Merges syms[0..n) (a chain 0 -> 1 -> ... in order) until no pair merges; symbol 0 stays the head. 0 or -1 (out of memory). */
int tok_bpe_merge(tok_sym *syms, size_t n, const char *word, tok_pair_fn fn, const void *ctx);

/* ---- HF tokenizer.json parts (tok_hf_*.c) ---- */

enum { TN_PREPEND = 1, TN_REPLACE, TN_NFC, TN_NFD, TN_NFKC, TN_NFKD };
typedef struct tok_norm {
    int kind;
    char *a, *b; /* Prepend: a; Replace: a -> b */
    size_t alen, blen;
} tok_norm;

enum { TP_BYTELEVEL = 1, TP_SPLIT, TP_METASPACE };
enum { TP_ISOLATED = 1, TP_REMOVED, TP_MERGED_PREV, TP_MERGED_NEXT };
enum { TP_PREPEND_NEVER = 0, TP_PREPEND_ALWAYS, TP_PREPEND_FIRST };
typedef struct tok_pre {
    int kind;
    int add_prefix_space, use_regex; /* ByteLevel */
    void *re;                        /* Split (a pcre2_code, or NULL with a literal in lit) */
    char *lit;
    size_t lit_len;
    int behavior;
    char *repl;                      /* Metaspace: replacement (UTF-8), prepend scheme, split */
    size_t repl_len;
    int prepend, split;
} tok_pre;

typedef struct tok_added {
    int32_t id;
    uint8_t lstrip, rstrip, special;
} tok_added;

typedef struct tok_hf {
    tok_norm *norm;
    size_t n_norm;
    tok_pre *pre;
    size_t n_pre;
    tok_pairs merges;
    int ignore_merges, byte_fallback, fuse_unk, byte_level;
    tok_added *added; /* sorted by content length, longest first */
    size_t n_added;
} tok_hf;

struct mx_tok {
    mx_tok_kind kind;
    char name[MX_SHOWN_BUF];
    tok_vocab v;
    float *score;
    uint8_t *type;
    int32_t bos, eos, unk;
    int32_t byte_id[256];   /* id of <0xHH>, or -1 */
    tok_buf dec;            /* decoded piece bytes */
    uint64_t *dec_off;
    uint32_t *dec_len;
    int strip_first_space;  /* tokenizer.json: full decode drops a leading space */
    /* SentencePiece */
    int spm_unigram, byte_fallback, add_dummy_prefix, remove_extra_ws, escape_ws, has_unused;
    float min_score, max_score;
    uint32_t max_piece_chars; /* longest segmenting piece, in characters (unigram lattice width) */
    char unk_surface[64];     /* what <unk> decodes to (trainer_spec.unk_surface) */
    int32_t *user;          /* USER_DEFINED ids, longest first */
    size_t n_user;
    /* tokenizer.json */
    tok_hf *hf;
};

/* Fills tok (zeroed, name set) from a tokenizer.model / tokenizer.json. */
mixq_status tok_spm_load(mx_tok *tok, const uint8_t *data, size_t len, mixq_error *err);
mixq_status tok_hf_load(mx_tok *tok, const char *data, size_t len, const char *config, size_t config_len,
                        mixq_error *err);
void tok_hf_free(tok_hf *hf);
/* Encodes valid UTF-8 text, appending to out. */
mixq_status tok_spm_encode(const mx_tok *tok, const char *text, size_t len, tok_ids *out, mixq_error *err);
mixq_status tok_hf_encode(const mx_tok *tok, const char *text, size_t len, tok_ids *out, mixq_error *err);
/* Sets byte_id[] from the "<0xHH>" pieces and builds the decoded bytes of every piece (dec*). */
mixq_status tok_finish(mx_tok *tok, mixq_error *err);

#endif
