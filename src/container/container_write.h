/*
 * container_write.h - streaming writer of container files: tensors are
 * appended in order, the JSON header goes last, the preamble is patched,
 * and the whole is committed atomically (atomic_file.h).
 */
#ifndef MIXQ_CONTAINER_WRITE_H
#define MIXQ_CONTAINER_WRITE_H

#include <signal.h>

#include <jansson.h>

#include "mixq.h"
#include "kernels/qtype.h"

typedef struct cwriter cwriter;

/* What the writer records for one tensor besides its bytes. */
typedef struct cw_tensor {
    const char *name;
    unsigned ndim;
    const uint64_t *shape;
    const char *source_dtype;    /* safetensors dtype name */
    const qtype_desc *qt;
    unsigned group_size;         /* as requested: 0 = per row (or not quantized) */
    json_t *extra;               /* optional object of extra entry keys (borrowed) */
} cw_tensor;

/* Starts a container at path (temporary file until cw_finish). */
mixq_status cw_open(cwriter **out, const char *path, int force, mixq_error *err);

/*
 * Appends one tensor whose stored bytes (layout->total of them, section
 * padding zeroed) are `bytes`.  Computes the checksum and the entry.
 */
mixq_status cw_add_tensor(cwriter *w, const cw_tensor *t, const qlayout *layout,
                          const uint8_t *bytes, mixq_error *err);

/* Writes header and preamble, fsyncs and renames; metadata is borrowed. Frees w. */
mixq_status cw_finish(cwriter *w, json_t *metadata, mixq_error *err);

/* Exact bytes of t's entry in the header when the tensor starts at offset; 0 if out of memory. */
size_t cw_entry_bytes(const cw_tensor *t, const qlayout *layout, uint64_t offset);

/*
 * Upper bound of the bytes t's entry takes in the header when the tensor
 * starts at an offset of at most max_offset (sections are relative to the
 * tensor, so only the offset varies; extra included as given).  0 if out of
 * memory.
 */
size_t cw_entry_bound(const cw_tensor *t, const qlayout *layout, uint64_t max_offset);

/*
 * Exact header length with this metadata and n_entries tensor entries of
 * entry_bytes bytes in all (commas between them added).  0 if out of memory.
 */
size_t cw_header_bytes(json_t *metadata, size_t n_entries, uint64_t entry_bytes);

/* Makes cw_finish abort (MIXQ_E_CANCELLED, no output) if *cancel is non-zero before the rename. */
void cw_set_cancel(cwriter *w, volatile sig_atomic_t *cancel);

/* Discards everything written; frees w (NULL allowed). */
void cw_abort(cwriter *w);

#endif
