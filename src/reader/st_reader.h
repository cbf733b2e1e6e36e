/*
 * st_reader.h - reading safetensors checkpoints through mmap: a single file,
 * or shards listed by a model.safetensors.index.json.  Every header byte is
 * validated as the reference implementation does; see st_file.c (one file),
 * st_model.c (opening, lookups) and st_index.c (index and shards).
 */
#ifndef MIXQ_ST_READER_H
#define MIXQ_ST_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mixq.h"
#include "common/dtype.h"

/* Largest header the reader accepts (as the reference implementation). */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    unsigned ndim;
    uint64_t shape[MIXQ_MAX_DIMS];
    uint64_t n_elements;      /* product of shape; 1 for a scalar */
    uint64_t nbytes;          /* n_elements * dtype size */
    const uint8_t *data;      /* into the file's mapping (any alignment) */
    size_t file_index;        /* index into st_model.files */
    uint64_t file_offset;     /* absolute offset of data in that file */
} st_tensor;

/* What identifies a file's contents cheaply: compared before and after a run. */
typedef struct st_file_id {
    uint64_t dev, ino, size;
    int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
} st_file_id;

typedef struct st_file {
    char *path;               /* as opened */
    const uint8_t *map;       /* whole file mapped read-only (NULL if size 0) */
    uint64_t size;
    uint64_t header_len;      /* N: the JSON length after the 8-byte prefix */
    int owns_map;             /* 1 if st_close must munmap */
    int has_fd;               /* 1 if fd is open (files opened from a path; not st_open_buffer) */
    int fd;                   /* tensor data is read through pread on it (st_read) */
    st_file_id id;            /* what the file was when opened (st_check_unchanged) */
} st_file;

typedef struct st_meta {
    char *key, *value;
} st_meta;

typedef struct st_model {
    st_file *files;   size_t nfiles;   /* shards sorted by file name */
    st_tensor *tensors; size_t ntensors; /* file order, then data offset order */
    st_meta *meta;    size_t nmeta;    /* __metadata__ of the first file, key order */
    char *index_path;                  /* the index.json path, NULL for a single file */
    st_file_id index_id;               /* the index file when it was read */
    const st_tensor **by_name;         /* the tensors sorted by name, for st_find */
    json_t *stored_files;              /* NULL until st_stored_files: the header's "files" array */
} st_model;

/*
 * Opens a checkpoint: a .safetensors file, a directory holding
 * model.safetensors.index.json or model.safetensors, or an index file.
 * Returns MIXQ_OK and *out, or an error naming the file and tensor.
 */
mixq_status st_open(const char *path, st_model **out, mixq_error *err);

/*
 * Parses and validates one safetensors file held in memory (buf stays owned
 * by the caller and must outlive the model).  `name` is used in messages.
 * This is the entry point of the header fuzzer.
 */
mixq_status st_open_buffer(const char *name, const uint8_t *buf, uint64_t len,
                           st_model **out, mixq_error *err);

/*
 * Parses an index.json text (the fuzzer's entry point): fills the sorted,
 * de-duplicated list of shard file names and the weight_map pairs.
 */
typedef struct st_index {
    char **shards; size_t nshards;          /* sorted, unique */
    char **names; size_t *shard_of; size_t nnames; /* weight_map, sorted by name */
} st_index;
mixq_status st_index_parse(const char *name, const char *text, size_t len, st_index *out,
                           mixq_error *err);
void st_index_free(st_index *idx);

/* Frees everything and unmaps the files; NULL is allowed. */
void st_close(st_model *model);

/* The tensor with this name, or NULL (binary search over a sorted index). */
const st_tensor *st_find(const st_model *model, const char *name);

/*
 * Tells the kernel that the pages holding t's data will not be read soon
 * (madvise MADV_DONTNEED on a read-only file mapping: they are dropped from
 * this process and read again from the file if touched).  Keeps resident
 * memory bounded while a large checkpoint is converted tensor by tensor.
 */
void st_release(const st_model *model, const st_tensor *t);

/*
 * The same for the bytes [off, off + len) of t's data, but only for the pages
 * lying wholly inside that range, so that threads releasing neighbouring
 * ranges never drop a page another is still reading.
 */
void st_release_range(const st_model *model, const st_tensor *t, uint64_t off, uint64_t len);

/*
 * Reads len bytes of t's data from offset off into dst: through pread on the
 * file (never through the mapping, so a file that shrinks gives an error,
 * not SIGBUS), or from the caller's buffer for st_open_buffer.  A short read
 * is "the file changed while it was read" (MIXQ_E_IO).
 */
mixq_status st_read(const st_model *model, const st_tensor *t, uint64_t off, void *dst, size_t len,
                    mixq_error *err);

/*
 * Checks that every file of the model (shards and index) is still the one
 * that was opened: same device and inode (through the path and the open
 * descriptor), size, modification and change time.  MIXQ_E_IO "changed
 * while it was read" naming the file if not.
 */
mixq_status st_check_unchanged(const st_model *model, mixq_error *err);

/* Fills id from a stat result. */
void st_file_id_of(const void *stat_buf, st_file_id *id);

/* Value of a __metadata__ key, or NULL. */
const char *st_meta_get(const st_model *model, const char *key);

/*
 * The container header's file-level metadata object (format/header_meta.h,
 * FORMAT.md §3.2, without "plan") for converting this checkpoint to `type`:
 * its __metadata__ and its files (the index first).  NULL if out of memory
 * or the index file cannot be stat'ed.
 */
/*
 * Reads the model's own files next to the checkpoint (format/stored_files.h:
 * config.json, tokenizer, ...; those present) into model->stored_files, the
 * container header's "files" array (FORMAT.md §3.3); once, later calls do
 * nothing.  st_header_meta includes them from then on.
 */
mixq_status st_stored_files(st_model *model, mixq_error *err);

json_t *st_header_meta(const st_model *model, mixq_qtype type, unsigned group_size, bool quantize_1d, bool search);

#endif
