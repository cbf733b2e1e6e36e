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
#ifndef MIXQ_RUNTIME_IMATRIX_H
#define MIXQ_RUNTIME_IMATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

typedef struct rt_imatrix_entry {
    char *name;
    size_t n;          /* input columns */
    double *sum2;      /* [n] */
    double count;      /* tokens (GGUF) or calls (read from a .dat) */
} rt_imatrix_entry;

typedef struct rt_imatrix {
    rt_imatrix_entry *entries;
    size_t n_entries;
    uint32_t chunk_count, chunk_size;
    char **datasets;
    size_t n_datasets;
} rt_imatrix;

/* An empty matrix; entries are added with rt_imatrix_add.  NULL if out of memory. */
rt_imatrix *rt_imatrix_new(void);
void rt_imatrix_free(rt_imatrix *im);

/* Adds an entry of n zero sums (count 0) and returns it, or NULL if out of memory. */
rt_imatrix_entry *rt_imatrix_add(rt_imatrix *im, const char *name, size_t n);

/* Adds a dataset name (copied); MIXQ_E_NOMEM on failure. */
mixq_status rt_imatrix_add_dataset(rt_imatrix *im, const char *name, mixq_error *err);

/* The file bytes of each format (malloc'd), entries in name order. */
mixq_status rt_imatrix_gguf_bytes(const rt_imatrix *im, uint8_t **out, size_t *len, mixq_error *err);
mixq_status rt_imatrix_dat_bytes(const rt_imatrix *im, uint8_t **out, size_t *len, mixq_error *err);

/* Writes path atomically: GGUF if it ends in ".gguf", else the legacy format. */
mixq_status rt_imatrix_write(const rt_imatrix *im, const char *path, int force, mixq_error *err);

/* Parses either format from memory (GGUF if it starts with "GGUF"); `name` is used in messages. */
mixq_status rt_imatrix_parse(const char *name, const uint8_t *buf, size_t len, rt_imatrix **out, mixq_error *err);

/* Reads a file of either format. */
mixq_status rt_imatrix_read(const char *path, rt_imatrix **out, mixq_error *err);

#endif
