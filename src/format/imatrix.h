/*
 * imatrix.h - importance matrices in llama.cpp's two file formats (written
 * and read; format/FORMAT.md "Importance matrix files").
 *
 * An entry is one linear layer's weight, named as in GGUF
 * ("blk.0.attn_q.weight"): for each input column j, sum2[j] = the sum over
 * the calibration tokens of x_j^2, and count = the number of tokens, so that
 * sum2[j] / count is the mean of x_j^2.
 *
 *  - GGUF (v3, general.type = "imatrix"): per entry the F32 tensors
 *    <name>.in_sum2 (ne = [n]) and <name>.counts (ne = [1]); metadata
 *    imatrix.datasets (array of strings), imatrix.chunk_count and
 *    imatrix.chunk_size (uint32).
 *  - legacy .dat: int32 entry count; per entry int32 name length, the name,
 *    int32 ncall, int32 nval, nval float32 values = mean * ncall; then int32
 *    last_call (chunks) and the dataset: int32 length and its bytes.  ncall =
 *    ceil(count / chunk_size).  A .dat does not store the token count: read
 *    back, count = ncall and sum2 = mean * ncall (the mean is what survives).
 */
#ifndef MIXQ_FORMAT_IMATRIX_H
#define MIXQ_FORMAT_IMATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

typedef struct mx_imatrix_entry {
    char *name;
    size_t n;          /* input columns */
    double *sum2;      /* [n] */
    double count;      /* tokens (GGUF) or calls (read from a .dat) */
} mx_imatrix_entry;

typedef struct mx_imatrix {
    mx_imatrix_entry *entries;
    size_t n_entries;
    uint32_t chunk_count, chunk_size;  /* a GGUF file's per-expert entry (counts of K > 1 experts) is read as K
                                          entries "<name>#<k>", k = 0 .. K-1 */
    char **datasets;
    size_t n_datasets;
    uint64_t hash;     /* xxh3-64 of the file's bytes (set by mx_imatrix_parse / mx_imatrix_read) */
} mx_imatrix;

/* An empty matrix; entries are added with mx_imatrix_add.  NULL if out of memory. */
mx_imatrix *mx_imatrix_new(void);
void mx_imatrix_free(mx_imatrix *im);

/* Adds an entry of n zero sums (count 0) and returns it (valid until the next add), or NULL if out of memory. */
mx_imatrix_entry *mx_imatrix_add(mx_imatrix *im, const char *name, size_t n);

/* Adds a dataset name (copied); MIXQ_E_NOMEM on failure. */
mixq_status mx_imatrix_add_dataset(mx_imatrix *im, const char *name, mixq_error *err);

/* The file bytes of each format (malloc'd), entries in name order. */
mixq_status mx_imatrix_gguf_bytes(const mx_imatrix *im, uint8_t **out, size_t *len, mixq_error *err);
mixq_status mx_imatrix_dat_bytes(const mx_imatrix *im, uint8_t **out, size_t *len, mixq_error *err);

/* Writes path atomically: GGUF if it ends in ".gguf", else the legacy format. */
mixq_status mx_imatrix_write(const mx_imatrix *im, const char *path, int force, mixq_error *err);

/* Parses either format from memory (GGUF if it starts with "GGUF"); `name` is used in messages. */
mixq_status mx_imatrix_parse(const char *name, const uint8_t *buf, size_t len, mx_imatrix **out, mixq_error *err);

/* Reads a file of either format. */
mixq_status mx_imatrix_read(const char *path, mx_imatrix **out, mixq_error *err);

/* The entry named exactly `name`, or NULL. */
const mx_imatrix_entry *mx_imatrix_get(const mx_imatrix *im, const char *name);

/*
 * The GGUF name llama.cpp gives a checkpoint tensor of the LLaMA family
 * ("model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight",
 * mlp.{gate,up,down}_proj -> ffn_{gate,up,down}, lm_head.weight ->
 * output.weight, model.embed_tokens.weight -> token_embd.weight; the fused
 * self_attn.qkv_proj -> attn_qkv and mlp.gate_up_proj -> ffn_up; routers
 * -> ffn_gate_inp, shared experts -> ffn_*_shexp; the experts of Mixtral
 * (block_sparse_moe.experts.E.w1/w3/w2) and of Qwen-MoE and the like
 * (mlp.experts.E.gate_proj/up_proj/down_proj) -> ffn_{gate,up,down}_exps
 * with *expert = E, else -1) into out; false if the name is not one of
 * these (or does not fit in cap bytes).
 */
bool mx_imatrix_gguf_name(const char *hf_name, char *out, size_t cap, int *expert);

/* The importance of one checkpoint tensor: n sums of x^2 (pointing into an entry) and their count. */
typedef struct mx_imatrix_view {
    const char *name;  /* the entry's name */
    const double *sum2;
    size_t n;
    double count;
} mx_imatrix_view;

/*
 * The importance of checkpoint tensor `name` (rows of row_length): an entry
 * of that exact name (a checkpoint with GGUF names), else the one of its
 * GGUF name; for a tied embedding (tied: it is also the output head)
 * output.weight first.  An expert's is entry "<gguf>#E" (a GGUF file's
 * per-expert counts, as the reader splits them), else expert E's
 * row_length values of a merged entry of K * row_length (a legacy .dat).
 * false if the file has none; out->n may differ from row_length (the caller
 * reports it).
 */
bool mx_imatrix_find(const mx_imatrix *im, const char *name, bool tied, size_t row_length, mx_imatrix_view *out);

#endif
