/*
 * st_file.c - one safetensors file: its header parsed and validated.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/checked.h"
#include "common/error.h"
#include "format/jansson_util.h"
#include "common/guard.h"
#include "reader/st_internal.h"

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
const char *mx_st_describe(char *buf, size_t cap, const json_t *v)
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

void mx_st_free_meta(st_meta *meta, size_t n)
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
                      fn, mx_st_describe(nb, sizeof nb, v));
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (!json_is_string(val)) {
            char db[64];
            return mx_err(err, MIXQ_E_FORMAT, "%s: __metadata__ value of \"%s\" must be a string, not %s",
                          fn, disp(nb, sizeof nb, key), mx_st_describe(db, sizeof db, val));
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
            mx_st_free_meta(meta, i);
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
                      fn, tn, mx_st_describe(db, sizeof db, v));
    json_t *dt = json_object_get(v, "dtype");
    json_t *sh = json_object_get(v, "shape");
    json_t *off = json_object_get(v, "data_offsets");
    if (!dt || !sh || !off)
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": missing \"%s\"", fn, tn,
                      !dt ? "dtype" : !sh ? "shape" : "data_offsets");

    /* dtype */
    if (!json_is_string(dt))
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": dtype must be a string, not %s", fn, tn,
                      mx_st_describe(db, sizeof db, dt));
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
                      mx_st_describe(db, sizeof db, sh));
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
                          fn, tn, i, mx_st_describe(db, sizeof db, d));
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
                          tn, i ? "end" : "begin", mx_st_describe(db, sizeof db, o));
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
mixq_status mx_st_parse_file(st_model *m, size_t fi, mixq_error *err)
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
    uint8_t prefix[8];
    if (mx_guarded_copy(prefix, f->map, 8) != MX_GUARD_OK)
        return mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read (it shrank); nothing was written", fn);
    for (int i = 7; i >= 0; i--) n = (n << 8) | prefix[i];
    if (n > ST_MAX_HEADER)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header length %llu exceeds the limit of %u bytes (not a safetensors file?)",
                      fn, (unsigned long long)n, ST_MAX_HEADER);
    if (n > f->size - 8)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header length %llu exceeds the file size %llu", fn,
                      (unsigned long long)n, (unsigned long long)f->size);
    f->header_len = n;
    const uint8_t *hdr = f->map + 8;
    uint8_t *copy = NULL; /* a file we mapped may shrink under us: parse a copy taken under the SIGBUS guard */
    if (f->owns_map) {
        copy = malloc(n ? (size_t)n : 1);
        if (!copy) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory for a header of %llu bytes", fn,
                                 (unsigned long long)n);
        if (mx_guarded_copy(copy, hdr, (size_t)n) != MX_GUARD_OK) {
            free(copy);
            return mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read (it shrank); nothing was written",
                          fn);
        }
        hdr = copy;
    }
    size_t bad = utf8_invalid_at(hdr, (size_t)n);
    if (bad != n) {
        free(copy);
        return mx_err(err, MIXQ_E_FORMAT, "%s: header is not valid UTF-8 (byte %zu of the header)", fn, bad);
    }

    json_error_t je;
    json_t *root = json_loadb((const char *)hdr, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    bool oom = !root && mx_json_oom(&je, (const char *)hdr, (size_t)n);
    free(copy);
    if (oom)
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory parsing a header of %llu bytes", fn,
                      (unsigned long long)n);
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
        if (!*key) { /* the container format cannot name it, and no tool could select it */
            st = mx_err(err, MIXQ_E_FORMAT, "%s: a tensor has an empty name (\"\"); tensor names must not be empty", fn);
            goto out;
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
    mixq_status st = mx_st_parse_file(m, 0, err);
    if (!st) st = mx_st_build_name_index(m, err);
    if (st) {
        st_close(m);
        return st;
    }
    *out = m;
    return MIXQ_OK;
}
