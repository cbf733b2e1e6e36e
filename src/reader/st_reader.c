/*
 * st_reader.c - reading and validating safetensors checkpoints.
 *
 * Validation follows the reference implementation (huggingface/safetensors,
 * safetensors/src/tensor.rs: read_metadata and Metadata::validate):
 *  - the file holds at least the 8-byte little-endian header length N;
 *  - N <= ST_MAX_HEADER and 8 + N <= file size;
 *  - the header is UTF-8 JSON holding one object; whitespace around it (the
 *    space padding writers add) is allowed;
 *  - "__metadata__", if present and not null, maps strings to strings;
 *  - every other key is a tensor: an object with "dtype" (a known name),
 *    "shape" (non-negative integers) and "data_offsets" ([begin, end],
 *    begin <= end); other keys inside it are ignored, as serde does for the
 *    reference's TensorInfo;
 *  - end - begin == product(shape) * dtype size, computed without overflow;
 *  - sorted by offsets the tensors cover the data section from 0 with no gap
 *    or overlap, and the data section ends exactly where the last one ends.
 * Stricter than the reference: duplicate keys, "\u0000" in strings and more
 * than MIXQ_MAX_DIMS dimensions are rejected.
 */
#include "reader/st_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/checked.h"
#include "common/error.h"
#include "format/header_meta.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
/* Largest index.json the reader loads into memory. */
#define ST_MAX_INDEX ((uint64_t)ST_MAX_HEADER)

/* Sizes of the buffers that hold printable copies of names and paths. */
enum { NAME_BUF = 128, PATH_BUF = 200, SHAPE_BUF = 128 };

/*
 * Copies s into buf as a printable one-line string: control characters (and,
 * if quoted, quotes and backslashes) are escaped; overlong text ends in "...".
 */
static const char *disp_text(char *buf, size_t cap, const char *s, int quoted)
{
    return mx_printable(buf, cap, s, quoted);
}

/* A name or path made printable for a message where it stands in quotes. */
static const char *disp(char *buf, size_t cap, const char *s)
{
    return disp_text(buf, cap, s, 1);
}

/* Formats a shape as "[2, 3]" (truncated with "..." if it does not fit). */
static const char *fmt_shape(char *buf, size_t cap, const uint64_t *shape, unsigned ndim)
{
    size_t o = 0;
    buf[o++] = '[';
    for (unsigned i = 0; i < ndim; i++) {
        int n = snprintf(buf + o, cap - o, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
        if (n < 0 || (size_t)n + 5 > cap - o) {
            snprintf(buf + o, cap - o, "...]");
            return buf;
        }
        o += (size_t)n;
    }
    buf[o++] = ']';
    buf[o] = '\0';
    return buf;
}

/* Describes a JSON value that should have been a non-negative integer: "-1", "a string", ... */
static const char *describe(char *buf, size_t cap, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL: {
        int n = snprintf(buf, cap, "the real number %.17g", json_real_value(v));
        if (n > 0 && (size_t)n + 3 <= cap && !strpbrk(buf + 16, ".eEni")) memcpy(buf + n, ".0", 3);
        break;
    }
    case JSON_STRING: snprintf(buf, cap, "a string"); break;
    case JSON_OBJECT: snprintf(buf, cap, "an object"); break;
    case JSON_ARRAY: snprintf(buf, cap, "an array"); break;
    case JSON_TRUE:
    case JSON_FALSE: snprintf(buf, cap, "a boolean"); break;
    default: snprintf(buf, cap, "null"); break;
    }
    return buf;
}

/* Returns the byte offset of the first invalid UTF-8 sequence in s, or len if all is valid. */
static size_t utf8_invalid_at(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
        else return i;
        if (len - i <= n) return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return i;
        i += n + 1;
    }
    return len;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Joins a directory and a file name into a malloc'd path ("name" alone if dir is empty). */
static char *join_path(const char *dir, size_t dir_len, const char *name)
{
    size_t nl = strlen(name);
    int slash = dir_len > 0 && dir[dir_len - 1] != '/';
    char *p = malloc(dir_len + (size_t)slash + nl + 1);
    if (!p) return NULL;
    memcpy(p, dir, dir_len);
    if (slash) p[dir_len] = '/';
    memcpy(p + dir_len + (size_t)slash, name, nl + 1);
    return p;
}

/* ---------------------------------------------------------------------- */
/* One safetensors file                                                    */
/* ---------------------------------------------------------------------- */

/* A tensor while its file is being parsed: begin/end are relative to the data section. */
typedef struct pending {
    st_tensor t;
    uint64_t begin, end;
} pending;

static int cmp_pending(const void *a, const void *b)
{
    const pending *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

static void free_meta(st_meta *meta, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(meta[i].key);
        free(meta[i].value);
    }
    free(meta);
}

/*
 * Validates "__metadata__" (null, or an object of string values); if out is
 * non-NULL stores a copy sorted by key.
 */
static mixq_status parse_meta(const char *fn, json_t *v, st_meta **out, size_t *nout,
                              mixq_error *err)
{
    char nb[NAME_BUF];
    if (json_is_null(v)) return MIXQ_OK;
    if (!json_is_object(v))
        return mx_err(err, MIXQ_E_FORMAT, "%s: __metadata__ must be an object of strings, not %s",
                      fn, describe(nb, sizeof nb, v));
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (!json_is_string(val)) {
            char db[64];
            return mx_err(err, MIXQ_E_FORMAT, "%s: __metadata__ value of \"%s\" must be a string, not %s",
                          fn, disp(nb, sizeof nb, key), describe(db, sizeof db, val));
        }
    }
    if (!out) return MIXQ_OK;
    size_t n = json_object_size(v);
    st_meta *meta = calloc(n ? n : 1, sizeof *meta);
    if (!meta) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory reading __metadata__", fn);
    size_t i = 0;
    json_object_foreach(v, key, val) {
        meta[i].key = xstrdup(key);
        meta[i].value = xstrdup(json_string_value(val));
        i++;
        if (!meta[i - 1].key || !meta[i - 1].value) {
            free_meta(meta, i);
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory reading __metadata__", fn);
        }
    }
    qsort(meta, n, sizeof *meta, cmp_meta);
    *out = meta;
    *nout = n;
    return MIXQ_OK;
}

/* Reads a non-negative JSON integer; 0 if v is anything else. */
static int get_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* Validates one tensor entry of a header and fills p (p->t.name is set by the caller). */
static mixq_status parse_tensor(const char *fn, const char *tn, json_t *v, pending *p,
                                mixq_error *err)
{
    char db[64], sb[SHAPE_BUF];
    if (!json_is_object(v))
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: tensor \"%s\": expected an object with dtype, shape and data_offsets, not %s",
                      fn, tn, describe(db, sizeof db, v));
    json_t *dt = json_object_get(v, "dtype");
    json_t *sh = json_object_get(v, "shape");
    json_t *off = json_object_get(v, "data_offsets");
    if (!dt || !sh || !off)
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": missing \"%s\"", fn, tn,
                      !dt ? "dtype" : !sh ? "shape" : "data_offsets");

    /* dtype */
    if (!json_is_string(dt))
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": dtype must be a string, not %s", fn, tn,
                      describe(db, sizeof db, dt));
    if (!st_dtype_parse(json_string_value(dt), &p->t.dtype)) {
        char nb[NAME_BUF];
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "%s: tensor \"%s\": unsupported dtype \"%s\" (supported: BOOL, U8, I8, U16, I16, "
                      "U32, I32, U64, I64, F8_E4M3, F8_E5M2, F16, BF16, F32, F64)",
                      fn, tn, disp(nb, sizeof nb, json_string_value(dt)));
    }
    const st_dtype_info *di = &st_dtypes[p->t.dtype];

    /* shape */
    if (!json_is_array(sh))
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: tensor \"%s\": shape must be an array of non-negative integers, not %s", fn, tn,
                      describe(db, sizeof db, sh));
    size_t nd = json_array_size(sh);
    if (nd > MIXQ_MAX_DIMS)
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "%s: tensor \"%s\": shape has %zu dimensions; at most %d are supported", fn, tn, nd,
                      MIXQ_MAX_DIMS);
    p->t.ndim = (unsigned)nd;
    uint64_t nel = 1;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(sh, i);
        if (!get_uint(d, &p->t.shape[i]))
            return mx_err(err, MIXQ_E_FORMAT,
                          "%s: tensor \"%s\": shape dimension %zu is %s; dimensions must be non-negative integers",
                          fn, tn, i, describe(db, sizeof db, d));
        if (!ck_mul(nel, p->t.shape[i], &nel)) overflow = 1;
    }
    /* A zero dimension makes the product 0 even if a partial product overflowed. */
    for (size_t i = 0; i < nd; i++)
        if (p->t.shape[i] == 0) { overflow = 0; nel = 0; }
    uint64_t nbytes;
    if (overflow || !ck_mul(nel, di->size, &nbytes))
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": shape %s of %s is too large (its size overflows 64 bits)",
                      fn, tn, fmt_shape(sb, sizeof sb, p->t.shape, p->t.ndim), di->name);
    p->t.n_elements = nel;
    p->t.nbytes = nbytes;

    /* data_offsets */
    if (!json_is_array(off) || json_array_size(off) != 2)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: tensor \"%s\": data_offsets must be an array [begin, end] of two non-negative integers",
                      fn, tn);
    for (size_t i = 0; i < 2; i++) {
        json_t *o = json_array_get(off, i);
        if (!get_uint(o, i ? &p->end : &p->begin))
            return mx_err(err, MIXQ_E_FORMAT,
                          "%s: tensor \"%s\": data_offsets %s is %s; offsets must be non-negative integers", fn,
                          tn, i ? "end" : "begin", describe(db, sizeof db, o));
    }
    if (p->end < p->begin)
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] end before they begin", fn, tn,
                      (unsigned long long)p->begin, (unsigned long long)p->end);
    if (p->end - p->begin != nbytes)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: tensor \"%s\": data_offsets [%llu, %llu] hold %llu bytes but shape %s of %s needs %llu",
                      fn, tn, (unsigned long long)p->begin, (unsigned long long)p->end,
                      (unsigned long long)(p->end - p->begin), fmt_shape(sb, sizeof sb, p->t.shape, p->t.ndim),
                      di->name, (unsigned long long)nbytes);
    return MIXQ_OK;
}

/*
 * Parses and validates files[fi] (already mapped) and appends its tensors to
 * the model in data-offset order.  Stores __metadata__ when fi is 0.
 */
static mixq_status parse_file(st_model *m, size_t fi, mixq_error *err)
{
    st_file *f = &m->files[fi];
    char fb[PATH_BUF], nb[NAME_BUF], nb2[NAME_BUF];
    const char *fn = disp_text(fb, sizeof fb, f->path, 0);

    if (f->size == 0)
        return mx_err(err, MIXQ_E_FORMAT, "%s: file is empty; a safetensors file starts with an 8-byte header length", fn);
    if (f->size < 8)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: file is only %llu bytes, too short for the 8-byte header length of a safetensors file", fn,
                      (unsigned long long)f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->map[i];
    if (n > ST_MAX_HEADER)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header length %llu exceeds the limit of %u bytes (not a safetensors file?)",
                      fn, (unsigned long long)n, ST_MAX_HEADER);
    if (n > f->size - 8)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header length %llu exceeds the file size %llu", fn,
                      (unsigned long long)n, (unsigned long long)f->size);
    f->header_len = n;
    const uint8_t *hdr = f->map + 8;
    size_t bad = utf8_invalid_at(hdr, (size_t)n);
    if (bad != n)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header is not valid UTF-8 (byte %zu of the header)", fn, bad);

    json_error_t je;
    json_t *root = json_loadb((const char *)hdr, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        char tb[160];
        return mx_err(err, MIXQ_E_FORMAT, "%s: header is not valid JSON: %s (byte %d of the header)", fn,
                      disp_text(tb, sizeof tb, je.text, 0), je.position);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return mx_err(err, MIXQ_E_FORMAT, "%s: header must be a JSON object, not an array", fn);
    }

    mixq_status st = MIXQ_OK;
    size_t cap = json_object_size(root), np = 0;
    pending *ps = calloc(cap ? cap : 1, sizeof *ps);
    if (!ps) {
        json_decref(root);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory reading the header", fn);
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            st = parse_meta(fn, val, fi == 0 ? &m->meta : NULL, &m->nmeta, err);
            if (st) goto out;
            continue;
        }
        pending *p = &ps[np];
        st = parse_tensor(fn, disp(nb, sizeof nb, key), val, p, err);
        if (st) goto out;
        p->t.name = xstrdup(key);
        if (!p->t.name) {
            st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory reading the header", fn);
            goto out;
        }
        p->t.file_index = fi;
        np++;
    }

    /* Sorted by offsets the tensors must tile the data section exactly. */
    qsort(ps, np, sizeof *ps, cmp_pending);
    uint64_t pos = 0;
    for (size_t i = 0; i < np; i++) {
        pending *p = &ps[i], *q = i ? &ps[i - 1] : NULL;
        if (p->begin < pos) {
            st = mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] overlap tensor \"%s\" at [%llu, %llu]",
                        fn, disp(nb, sizeof nb, p->t.name), (unsigned long long)p->begin,
                        (unsigned long long)p->end, disp(nb2, sizeof nb2, q->t.name),
                        (unsigned long long)q->begin, (unsigned long long)q->end);
            goto out;
        }
        if (p->begin > pos) {
            if (q)
                st = mx_err(err, MIXQ_E_FORMAT,
                            "%s: tensor \"%s\": data_offsets [%llu, %llu] leave a gap of %llu unused bytes after tensor \"%s\" (ends at %llu)",
                            fn, disp(nb, sizeof nb, p->t.name), (unsigned long long)p->begin,
                            (unsigned long long)p->end, (unsigned long long)(p->begin - pos),
                            disp(nb2, sizeof nb2, q->t.name), (unsigned long long)pos);
            else
                st = mx_err(err, MIXQ_E_FORMAT,
                            "%s: tensor \"%s\": data_offsets [%llu, %llu] leave a gap of %llu unused bytes at the start of the data section",
                            fn, disp(nb, sizeof nb, p->t.name), (unsigned long long)p->begin,
                            (unsigned long long)p->end, (unsigned long long)p->begin);
            goto out;
        }
        pos = p->end;
    }
    uint64_t data_start = 8 + n, data_len = f->size - data_start;
    if (pos > data_len) {
        pending *p = &ps[np - 1];
        st = mx_err(err, MIXQ_E_FORMAT,
                    "%s: tensor \"%s\": data_offsets [%llu, %llu] extend past the end of the file: the data section holds only %llu bytes (truncated file?)",
                    fn, disp(nb, sizeof nb, p->t.name), (unsigned long long)p->begin, (unsigned long long)p->end,
                    (unsigned long long)data_len);
        goto out;
    }
    if (pos < data_len) {
        st = mx_err(err, MIXQ_E_FORMAT,
                    "%s: the data section holds %llu bytes but the tensors end at %llu (%llu trailing bytes belong to no tensor)",
                    fn, (unsigned long long)data_len, (unsigned long long)pos, (unsigned long long)(data_len - pos));
        goto out;
    }

    /* Append to the model. */
    uint64_t total, bytes;
    if (!ck_add(m->ntensors, np, &total) || !ck_mul(total ? total : 1, sizeof *m->tensors, &bytes) ||
        bytes > SIZE_MAX) {
        st = mx_err(err, MIXQ_E_NOMEM, "%s: too many tensors", fn);
        goto out;
    }
    st_tensor *nt = realloc(m->tensors, (size_t)bytes);
    if (!nt) {
        st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory reading the header", fn);
        goto out;
    }
    m->tensors = nt;
    for (size_t i = 0; i < np; i++) {
        st_tensor *t = &m->tensors[m->ntensors++];
        *t = ps[i].t;
        t->file_offset = data_start + ps[i].begin;
        t->data = f->map + t->file_offset;
        ps[i].t.name = NULL; /* now owned by the model */
    }
    np = 0;

out:
    for (size_t i = 0; i < np; i++) free(ps[i].t.name);
    free(ps);
    json_decref(root);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Files and the model                                                     */
/* ---------------------------------------------------------------------- */

/*
 * Maps path read-only into *f.  On failure fills err and, if errno_out is
 * non-NULL, stores the errno of the failed call (0 for non-system errors).
 */
static mixq_status map_file(const char *path, st_file *f, int *errno_out, mixq_error *err)
{
    char fb[PATH_BUF];
    const char *fn = disp_text(fb, sizeof fb, path, 0);
    if (errno_out) *errno_out = 0;
    f->path = xstrdup(path);
    if (!f->path) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", fn);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0) {
        int e = errno;
        if (errno_out) *errno_out = e;
        return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", fn, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        if (errno_out) *errno_out = e;
        close(fd);
        return mx_err(err, MIXQ_E_IO, "%s: cannot stat: %s", fn, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return mx_err(err, MIXQ_E_IO, "%s: not a regular file", fn);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return mx_err(err, MIXQ_E_IO, "%s: file of %lld bytes is too large to map", fn, (long long)sb.st_size);
    }
    f->size = (uint64_t)sb.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            if (errno_out) *errno_out = e;
            close(fd);
            return mx_err(err, MIXQ_E_IO, "%s: cannot map %llu bytes: %s", fn, (unsigned long long)f->size,
                          strerror(e));
        }
        f->map = p;
        f->owns_map = 1;
    }
    close(fd);
    return MIXQ_OK;
}

static int cmp_tensor_ptr(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x->file_index < y->file_index ? -1 : x->file_index > y->file_index;
}

/* Builds the name-sorted index used by st_find; duplicates end up adjacent. */
static mixq_status build_name_index(st_model *m, mixq_error *err)
{
    m->by_name = calloc(m->ntensors ? m->ntensors : 1, sizeof *m->by_name);
    if (!m->by_name) return mx_err(err, MIXQ_E_NOMEM, "out of memory indexing %zu tensors", m->ntensors);
    for (size_t i = 0; i < m->ntensors; i++) m->by_name[i] = &m->tensors[i];
    qsort(m->by_name, m->ntensors, sizeof *m->by_name, cmp_tensor_ptr);
    return MIXQ_OK;
}

void st_close(st_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nfiles; i++) {
        if (m->files[i].owns_map && m->files[i].map) munmap((void *)m->files[i].map, (size_t)m->files[i].size);
        free(m->files[i].path);
    }
    free(m->files);
    for (size_t i = 0; i < m->ntensors; i++) free(m->tensors[i].name);
    free(m->tensors);
    free(m->by_name);
    free_meta(m->meta, m->nmeta);
    free(m->index_path);
    free(m);
}

mixq_status st_open_buffer(const char *name, const uint8_t *buf, uint64_t len, st_model **out,
                           mixq_error *err)
{
    mx_err_clear(err);
    if (!out) return mx_err(err, MIXQ_E_INVALID_ARG, "st_open_buffer: out is NULL");
    *out = NULL;
    if (!name) name = "<buffer>";
    if (!buf && len) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: buffer is NULL", name);
    st_model *m = calloc(1, sizeof *m);
    if (!m) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
    m->files = calloc(1, sizeof *m->files);
    if (!m->files || !(m->files[0].path = xstrdup(name))) {
        st_close(m);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
    }
    m->nfiles = 1;
    m->files[0].map = buf;
    m->files[0].size = len;
    mixq_status st = parse_file(m, 0, err);
    if (!st) st = build_name_index(m, err);
    if (st) {
        st_close(m);
        return st;
    }
    *out = m;
    return MIXQ_OK;
}

/* Opens a single .safetensors file. */
static mixq_status open_single(const char *path, st_model **out, mixq_error *err)
{
    st_model *m = calloc(1, sizeof *m);
    if (!m || !(m->files = calloc(1, sizeof *m->files))) {
        free(m);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    m->nfiles = 1;
    mixq_status st = map_file(path, &m->files[0], NULL, err);
    if (!st) st = parse_file(m, 0, err);
    if (!st) st = build_name_index(m, err);
    if (st) {
        st_close(m);
        return st;
    }
    *out = m;
    return MIXQ_OK;
}

/* Reads a whole (small) file into a malloc'd buffer. */
static mixq_status read_small_file(const char *path, uint64_t limit, char **out, size_t *len, mixq_error *err)
{
    char fb[PATH_BUF];
    const char *fn = disp_text(fb, sizeof fb, path, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0) return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", fn, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mx_err(err, MIXQ_E_IO, "%s: not a regular file", fn);
    }
    if ((uint64_t)sb.st_size > limit) {
        close(fd);
        return mx_err(err, MIXQ_E_FORMAT, "%s: index file of %lld bytes exceeds the limit of %llu bytes", fn,
                      (long long)sb.st_size, (unsigned long long)limit);
    }
    size_t cap = (size_t)sb.st_size, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", fn);
    }
    while (n < cap) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return mx_err(err, MIXQ_E_IO, "%s: read failed: %s", fn, strerror(e));
        }
        if (got == 0) break; /* shrank while reading: parse what is there */
        n += (size_t)got;
    }
    close(fd);
    *out = buf;
    *len = n;
    return MIXQ_OK;
}

/* Finds a weight_map entry by name (names are sorted); returns its index or nnames. */
static size_t index_lookup(const st_index *idx, const char *name)
{
    size_t lo = 0, hi = idx->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(idx->names[mid], name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return idx->nnames;
}

/* Checks that the shards hold exactly the tensors weight_map assigns to them. */
static mixq_status cross_check(const st_model *m, const st_index *idx, const char *in, mixq_error *err)
{
    char nb[NAME_BUF], s1[NAME_BUF], s2[NAME_BUF];
    for (size_t i = 0; i + 1 < m->ntensors; i++) {
        const st_tensor *a = m->by_name[i], *b = m->by_name[i + 1];
        if (strcmp(a->name, b->name) == 0)
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\" appears in two shards, \"%s\" and \"%s\"", in,
                          disp(nb, sizeof nb, a->name), disp(s1, sizeof s1, idx->shards[a->file_index]),
                          disp(s2, sizeof s2, idx->shards[b->file_index]));
    }
    for (size_t i = 0; i < m->ntensors; i++) {
        const st_tensor *t = &m->tensors[i];
        size_t k = index_lookup(idx, t->name);
        if (k == idx->nnames)
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\" in shard \"%s\" is not listed in weight_map", in,
                          disp(nb, sizeof nb, t->name), disp(s1, sizeof s1, idx->shards[t->file_index]));
        if (idx->shard_of[k] != t->file_index)
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\" is in shard \"%s\" but weight_map maps it to \"%s\"", in,
                          disp(nb, sizeof nb, t->name), disp(s1, sizeof s1, idx->shards[t->file_index]),
                          disp(s2, sizeof s2, idx->shards[idx->shard_of[k]]));
    }
    for (size_t k = 0; k < idx->nnames; k++) {
        if (!st_find(m, idx->names[k]))
            return mx_err(err, MIXQ_E_FORMAT, "%s: weight_map maps tensor \"%s\" to shard \"%s\", which does not contain it",
                          in, disp(nb, sizeof nb, idx->names[k]), disp(s1, sizeof s1, idx->shards[idx->shard_of[k]]));
    }
    return MIXQ_OK;
}

/* Opens a sharded checkpoint through its index file. */
static mixq_status open_index(const char *path, st_model **out, mixq_error *err)
{
    char fb[PATH_BUF], sb[NAME_BUF], nb[NAME_BUF];
    const char *in = disp_text(fb, sizeof fb, path, 0);
    char *text = NULL;
    size_t len = 0;
    mixq_status st = read_small_file(path, ST_MAX_INDEX, &text, &len, err);
    if (st) return st;
    st_index idx;
    st = st_index_parse(path, text, len, &idx, err);
    free(text);
    if (st) return st;

    st_model *m = calloc(1, sizeof *m);
    if (!m || !(m->index_path = xstrdup(path)) ||
        !(m->files = calloc(idx.nshards ? idx.nshards : 1, sizeof *m->files))) {
        st_close(m);
        st_index_free(&idx);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in);
    }
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    for (size_t i = 0; i < idx.nshards && !st; i++) {
        char *sp = join_path(path, dir_len, idx.shards[i]);
        if (!sp) {
            st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in);
            break;
        }
        m->nfiles++;
        int e;
        st = map_file(sp, &m->files[i], &e, err);
        if (st && e == ENOENT) {
            size_t k = 0;
            while (k < idx.nnames && idx.shard_of[k] != i) k++;
            st = mx_err(err, MIXQ_E_IO, "%s: shard \"%s\" (holding tensor \"%s\") does not exist", in,
                        disp(sb, sizeof sb, idx.shards[i]), k < idx.nnames ? disp(nb, sizeof nb, idx.names[k]) : "");
        }
        free(sp);
    }
    for (size_t i = 0; i < m->nfiles && !st; i++) st = parse_file(m, i, err);
    if (!st) st = build_name_index(m, err);
    if (!st) st = cross_check(m, &idx, in, err);
    st_index_free(&idx);
    if (st) {
        st_close(m);
        return st;
    }
    *out = m;
    return MIXQ_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

mixq_status st_open(const char *path, st_model **out, mixq_error *err)
{
    mx_err_clear(err);
    if (!out) return mx_err(err, MIXQ_E_INVALID_ARG, "st_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return mx_err(err, MIXQ_E_INVALID_ARG, "st_open: no input path given");
    char fb[PATH_BUF];
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", disp_text(fb, sizeof fb, path, 0), strerror(e));
    }
    if (!S_ISDIR(sb.st_mode))
        return ends_with(path, ".json") ? open_index(path, out, err) : open_single(path, out, err);

    char *p = join_path(path, strlen(path), INDEX_NAME);
    if (!p) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    mixq_status st;
    if (stat(p, &sb) == 0) {
        st = open_index(p, out, err);
        free(p);
        return st;
    }
    free(p);
    p = join_path(path, strlen(path), SINGLE_NAME);
    if (!p) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    if (stat(p, &sb) == 0) {
        st = open_single(p, out, err);
        free(p);
        return st;
    }
    free(p);
    return mx_err(err, MIXQ_E_IO, "%s: directory holds neither " INDEX_NAME " nor " SINGLE_NAME,
                  disp_text(fb, sizeof fb, path, 0));
}

const st_tensor *st_find(const st_model *m, const char *name)
{
    if (!m || !name || !m->by_name) return NULL;
    size_t lo = 0, hi = m->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->by_name[mid]->name, name);
        if (c == 0) return m->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *st_meta_get(const st_model *m, const char *key)
{
    if (!m || !key) return NULL;
    size_t lo = 0, hi = m->nmeta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->meta[mid].key, key);
        if (c == 0) return m->meta[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* index.json                                                              */
/* ---------------------------------------------------------------------- */

void st_index_free(st_index *idx)
{
    if (!idx) return;
    for (size_t i = 0; i < idx->nshards; i++) free(idx->shards[i]);
    free(idx->shards);
    for (size_t i = 0; i < idx->nnames; i++) free(idx->names[i]);
    free(idx->names);
    free(idx->shard_of);
    memset(idx, 0, sizeof *idx);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A weight_map entry while the index is being parsed. */
typedef struct wm_entry {
    const char *name, *shard;
} wm_entry;

static int cmp_wm(const void *a, const void *b)
{
    return strcmp(((const wm_entry *)a)->name, ((const wm_entry *)b)->name);
}

/* True if a shard name is a plain file name (no directory part, not "." or ".."). */
static int plain_file_name(const char *s)
{
    return *s && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

mixq_status st_index_parse(const char *name, const char *text, size_t len, st_index *out,
                           mixq_error *err)
{
    mx_err_clear(err);
    if (!out) return mx_err(err, MIXQ_E_INVALID_ARG, "st_index_parse: out is NULL");
    memset(out, 0, sizeof *out);
    char fb[PATH_BUF], nb[NAME_BUF], db[64];
    const char *in = disp_text(fb, sizeof fb, name ? name : "<index>", 0);
    if (!text && len) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: text is NULL", in);

    json_error_t je;
    json_t *root = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        char tb[160];
        return mx_err(err, MIXQ_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", in,
                      disp_text(tb, sizeof tb, je.text, 0), je.line, je.column);
    }
    mixq_status st = MIXQ_OK;
    wm_entry *es = NULL;
    json_t *wm = json_object_get(root, "weight_map");
    json_t *md = json_object_get(root, "metadata");
    if (!json_is_object(root)) {
        st = mx_err(err, MIXQ_E_FORMAT, "%s: index must be a JSON object, not an array", in);
        goto out;
    }
    if (md && !json_is_object(md)) {
        st = mx_err(err, MIXQ_E_FORMAT, "%s: \"metadata\" must be an object, not %s", in, describe(db, sizeof db, md));
        goto out;
    }
    if (!wm) {
        st = mx_err(err, MIXQ_E_FORMAT, "%s: index has no \"weight_map\"", in);
        goto out;
    }
    if (!json_is_object(wm)) {
        st = mx_err(err, MIXQ_E_FORMAT, "%s: \"weight_map\" must be an object, not %s", in, describe(db, sizeof db, wm));
        goto out;
    }
    size_t n = json_object_size(wm);
    if (n == 0) {
        st = mx_err(err, MIXQ_E_FORMAT, "%s: \"weight_map\" lists no tensors", in);
        goto out;
    }
    es = calloc(n, sizeof *es);
    out->names = calloc(n, sizeof *out->names);
    out->shard_of = calloc(n, sizeof *out->shard_of);
    out->shards = calloc(n, sizeof *out->shards);
    if (!es || !out->names || !out->shard_of || !out->shards) {
        st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in);
        goto out;
    }
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val)) {
            st = mx_err(err, MIXQ_E_FORMAT, "%s: weight_map value of tensor \"%s\" must be a shard file name, not %s", in,
                        disp(nb, sizeof nb, key), describe(db, sizeof db, val));
            goto out;
        }
        const char *s = json_string_value(val);
        if (!plain_file_name(s)) {
            char sb[NAME_BUF];
            st = mx_err(err, MIXQ_E_FORMAT,
                        "%s: weight_map maps tensor \"%s\" to \"%s\", which is not a plain file name in the index's directory",
                        in, disp(nb, sizeof nb, key), disp(sb, sizeof sb, s));
            goto out;
        }
        es[i].name = key;
        es[i].shard = s;
        i++;
    }
    qsort(es, n, sizeof *es, cmp_wm);

    /* Unique sorted shard names. */
    const char **sh = (const char **)calloc(n, sizeof *sh);
    if (!sh) {
        st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in);
        goto out;
    }
    for (i = 0; i < n; i++) sh[i] = es[i].shard;
    qsort(sh, n, sizeof *sh, cmp_str_ptr);
    for (i = 0; i < n; i++) {
        if (i && strcmp(sh[i], sh[i - 1]) == 0) continue;
        if (!(out->shards[out->nshards] = xstrdup(sh[i]))) {
            free(sh);
            st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in);
            goto out;
        }
        out->nshards++;
    }
    free(sh);
    for (i = 0; i < n; i++) {
        if (!(out->names[i] = xstrdup(es[i].name))) {
            st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in);
            goto out;
        }
        out->nnames++;
        size_t lo = 0, hi = out->nshards;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(out->shards[mid], es[i].shard) < 0) lo = mid + 1;
            else hi = mid;
        }
        out->shard_of[i] = lo;
    }

out:
    free(es);
    json_decref(root);
    if (st) st_index_free(out);
    return st;
}

/*
 * Drops the pages of t's bytes [off, off + len) from this process: every page
 * they touch if outward, else only the pages wholly inside.  Only for files
 * this reader mapped itself (never a caller's buffer, which MADV_DONTNEED
 * would zero).
 */
static void release_bytes(const st_model *model, const st_tensor *t, uint64_t off, uint64_t len, bool outward)
{
    const st_file *f = &model->files[t->file_index];
    if (!f->owns_map || !f->map || off >= t->nbytes) return;
    if (len > t->nbytes - off) len = t->nbytes - off;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t first = (uintptr_t)t->data + (uintptr_t)off, last = first + (uintptr_t)len, start, end;
    if (outward) {
        start = first & ~(page - 1);
        end = (last + page - 1) & ~(page - 1);
        if (start < (uintptr_t)f->map) start = (uintptr_t)f->map; /* the mapping itself starts on a page */
    } else {
        start = (first + page - 1) & ~(page - 1);
        end = last & ~(page - 1);
    }
    if (end > start) (void)madvise((void *)start, end - start, MADV_DONTNEED); /* advice only */
}

void st_release(const st_model *model, const st_tensor *t) { release_bytes(model, t, 0, t->nbytes, true); }

void st_release_range(const st_model *model, const st_tensor *t, uint64_t off, uint64_t len)
{
    release_bytes(model, t, off, len, false);
}

json_t *st_header_meta(const st_model *m, mixq_qtype type, unsigned group_size, bool quantize_1d, bool search)
{
    json_t *meta = mxf_header_meta_new(type, group_size, quantize_1d, search);
    if (!meta) return NULL;
    for (size_t i = 0; i < m->nmeta; i++)
        if (mxf_header_meta_add_source_metadata(meta, m->meta[i].key, m->meta[i].value)) goto fail;
    if (m->index_path) {
        struct stat st;
        if (stat(m->index_path, &st) != 0 || mxf_header_meta_add_source_file(meta, m->index_path, (uint64_t)st.st_size))
            goto fail;
    }
    for (size_t i = 0; i < m->nfiles; i++)
        if (mxf_header_meta_add_source_file(meta, m->files[i].path, m->files[i].size)) goto fail;
    return meta;
fail:
    json_decref(meta);
    return NULL;
}
