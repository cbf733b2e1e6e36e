/*
 * container_internal.h - what the loader's files share: the file and tensor
 * objects.  container_read.c opens a file (preamble, name index,
 * accessors), container_header.c parses and validates its JSON header,
 * container_verify.c checks every byte (mixq_verify) and
 * container_dequant.c turns tensors back into floats.  Not for use outside
 * src/container/.
 */
#ifndef MIXQ_CONTAINER_INTERNAL_H
#define MIXQ_CONTAINER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixq.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/json_fast.h"
#include "kernels/qtype.h"

struct mixq_tensor {
    const mixq_file *file;
    const char *name;              /* NUL-terminated, in file->doc's arena */
    size_t name_len;
    uint64_t name_hash;
    unsigned ndim;
    uint64_t shape[MIXQ_MAX_DIMS];
    uint64_t n_elements;
    const qtype_desc *qt;
    st_dtype src;
    unsigned group_size;           /* as recorded */
    uint64_t offset, length;       /* absolute */
    uint64_t xxh3;
    qlayout lay;
    bool has[MIXQ_SECTION_COUNT];
};

/* One stored file (FORMAT.md §3.3); strings point into file->doc. */
typedef struct mx_stored {
    const char *name;
    size_t name_len;
    uint64_t size, stored_size, xxh3;
    int zlib;                      /* 1 = zlib, 0 = none */
    const char *data;              /* base64 text */
    size_t data_len;
} mx_stored;

struct mixq_file {
    char shown[MX_SHOWN_BUF];     /* the path, sanitised for messages */
    const uint8_t *map;
    uint64_t size;
    uint64_t data_length, header_offset, header_length;
    jf_doc *doc;                   /* the parsed header, kept alive: names and metadata point into it */
    const jf_value *source_meta;   /* inside doc; NULL if absent */
    mixq_tensor *tensors;
    size_t ntensors;
    uint64_t *slots;               /* open addressing: 0 = empty, else (hash >> 32) << 32 | (tensor index + 1) */
    size_t nslots;                 /* power of two, > 2 * ntensors */
    uint64_t seed;                 /* of the name hash, per file */
    mx_stored *stored;             /* the stored files, header order */
    size_t nstored;
};

/* A fresh seed for the name hash of f (container_read.c). */
uint64_t mx_cr_pick_seed(const mixq_file *f);

/* Inserts tensor i by name; returns the index of an earlier tensor of the same name, or SIZE_MAX (container_read.c). */
size_t mx_cr_table_insert(mixq_file *f, size_t i);

/* Parses and validates the whole header (FORMAT.md §3) and builds the tensor table (container_header.c). */
mixq_status mx_cr_parse_header(mixq_file *f, mixq_error *err);

/* Parses and validates the optional top-level "files" array (container_files.c). */
mixq_status mx_cr_parse_files(mixq_file *f, const jf_value *files, mixq_error *err);

/* Decodes, decompresses and checks stored file i; *out gets size bytes + NUL (container_files.c). */
mixq_status mx_cr_read_stored(const mixq_file *f, size_t i, uint8_t **out, mixq_error *err);

#endif
