/*
 * st_internal.h - what the reader's files share (st_file.c: one
 * .safetensors header; st_model.c: opening a checkpoint, lookups;
 * st_index.c: model.safetensors.index.json and shards).  Not for use
 * outside src/reader/.
 */
#ifndef MIXQ_ST_INTERNAL_H
#define MIXQ_ST_INTERNAL_H

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error.h"
#include "reader/st_reader.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

/* Sizes of the buffers that hold printable copies of names and paths. */
enum { NAME_BUF = 128, PATH_BUF = 200, SHAPE_BUF = 128 };

/*
 * Copies s into buf as a printable one-line string: control characters (and,
 * if quoted, quotes and backslashes) are escaped; overlong text ends in "...".
 */
static inline const char *disp_text(char *buf, size_t cap, const char *s, int quoted)
{
    return mx_printable(buf, cap, s, quoted);
}

/* A name or path made printable for a message where it stands in quotes. */
static inline const char *disp(char *buf, size_t cap, const char *s)
{
    return disp_text(buf, cap, s, 1);
}

static inline char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* st_file.c */

/* Describes a JSON value that should have been a non-negative integer: "-1", "a string", ... */
const char *mx_st_describe(char *buf, size_t cap, const json_t *v);

/*
 * Parses and validates the header of m->files[fi] (mapped or given) and
 * appends its tensors to m (the first file also gives m's __metadata__).
 */
mixq_status mx_st_parse_file(st_model *m, size_t fi, mixq_error *err);

/* Frees n metadata pairs and the array. */
void mx_st_free_meta(st_meta *meta, size_t n);

/* st_model.c */

/* Joins a directory and a file name into a malloc'd path ("name" alone if dir is empty). */
char *mx_st_join_path(const char *dir, size_t dir_len, const char *name);

/*
 * Maps path read-only into *f.  On failure fills err and, if errno_out is
 * non-NULL, stores the errno of the failed call (0 for non-system errors).
 */
mixq_status mx_st_map_file(const char *path, st_file *f, int *errno_out, mixq_error *err);

/* Builds the name-sorted index used by st_find; duplicates end up adjacent. */
mixq_status mx_st_build_name_index(st_model *m, mixq_error *err);

/* st_index.c */

/* Opens a sharded checkpoint through its index file. */
mixq_status mx_st_open_index(const char *path, st_model **out, mixq_error *err);

#endif
