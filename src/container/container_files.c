/*
 * container_files.c - the model's own files stored in a container
 * (FORMAT.md §3.3): the "files" array validated at open (names, sizes, the
 * encoding's lengths), and read, decompressed and checked on demand.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zlib.h>

#include "common/base64.h"
#include "common/error.h"
#include "common/json_fast.h"
#include "format/stored_files.h"
#include "container/container_internal.h"

/* Largest stored (compressed) size accepted: a zlib stream of incompressible data is barely larger. */
#define MAX_STORED_SIZE ((uint64_t)MXC_FILE_MAX_SIZE + MXC_FILE_MAX_SIZE / 64 + 4096)

static bool hex64(const char *s, size_t len, uint64_t *out)
{
    if (len != 16) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v << 4 | (uint64_t)(c - 'a' + 10);
        else return false;
    }
    *out = v;
    return true;
}

static bool uint_field(const jf_value *o, const char *key, uint64_t *out)
{
    const jf_value *v = jf_obj_get(o, key);
    if (!v || !jf_is_int(v) || v->u.i < 0) return false;
    *out = (uint64_t)v->u.i;
    return true;
}

static const char *str_field(const jf_value *o, const char *key, size_t *len)
{
    const jf_value *v = jf_obj_get(o, key);
    if (!v || jf_type(v) != JF_STRING) return NULL;
    return jf_str(v, len);
}

mixq_status mx_cr_parse_files(mixq_file *f, const jf_value *files, mixq_error *err)
{
    const char *fn = f->shown;
    size_t n = jf_arr_len(files);
    if (n > MXC_FILES_MAX)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header: %zu stored files; at most %u are allowed", fn, n, MXC_FILES_MAX);
    f->stored = calloc(n ? n : 1, sizeof *f->stored);
    if (!f->stored) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", fn);
    for (size_t i = 0; i < n; i++) {
        const jf_value *e = jf_arr_at(files, i);
        mx_stored *sf = &f->stored[i];
        char b[MX_SHOWN_BUF];
        if (jf_type(e) != JF_OBJECT)
            return mx_err(err, MIXQ_E_FORMAT, "%s: header: files[%zu] must be an object", fn, i);
        sf->name = str_field(e, "name", &sf->name_len);
        if (!sf->name) return mx_err(err, MIXQ_E_FORMAT, "%s: header: files[%zu]: \"name\" must be a string", fn, i);
        if (!mxf_stored_name_ok(sf->name, sf->name_len))
            return mx_err(err, MIXQ_E_FORMAT,
                          "%s: header: files[%zu]: name \"%s\" is not a plain file name (1 to %u bytes, no '/', "
                          "'\\\\' or control characters, not \".\" or \"..\")", fn, i,
                          mx_shown_n(sf->name, sf->name_len, b), MXC_FILE_NAME_MAX);
        const char *nm = mx_shown_n(sf->name, sf->name_len, b);
        for (size_t j = 0; j < i; j++)
            if (f->stored[j].name_len == sf->name_len && memcmp(f->stored[j].name, sf->name, sf->name_len) == 0)
                return mx_err(err, MIXQ_E_FORMAT, "%s: stored file \"%s\": name used by files[%zu] and files[%zu]",
                              fn, nm, j, i);
        if (!uint_field(e, "size", &sf->size))
            return mx_err(err, MIXQ_E_FORMAT, "%s: stored file \"%s\": \"size\" must be an integer >= 0", fn, nm);
        if (sf->size > MXC_FILE_MAX_SIZE)
            return mx_err(err, MIXQ_E_FORMAT, "%s: stored file \"%s\": size %" PRIu64 " exceeds the limit of %u bytes",
                          fn, nm, sf->size, MXC_FILE_MAX_SIZE);
        size_t cl = 0;
        const char *comp = str_field(e, "compression", &cl);
        if (!comp)
            return mx_err(err, MIXQ_E_FORMAT, "%s: stored file \"%s\": \"compression\" must be a string", fn, nm);
        if (cl == 4 && memcmp(comp, "zlib", 4) == 0) sf->zlib = 1;
        else if (cl == 4 && memcmp(comp, "none", 4) == 0) sf->zlib = 0;
        else {
            char c[MX_SHOWN_BUF];
            return mx_err(err, MIXQ_E_UNSUPPORTED, "%s: stored file \"%s\": unsupported compression \"%s\"", fn, nm,
                          mx_shown_n(comp, cl, c));
        }
        if (!uint_field(e, "stored_size", &sf->stored_size))
            return mx_err(err, MIXQ_E_FORMAT, "%s: stored file \"%s\": \"stored_size\" must be an integer >= 0", fn,
                          nm);
        if (sf->zlib ? sf->stored_size > MAX_STORED_SIZE : sf->stored_size != sf->size)
            return mx_err(err, MIXQ_E_FORMAT, "%s: stored file \"%s\": stored_size %" PRIu64 " is impossible for size %"
                          PRIu64, fn, nm, sf->stored_size, sf->size);
        size_t hl = 0;
        const char *hx = str_field(e, "xxh3", &hl);
        if (!hx || !hex64(hx, hl, &sf->xxh3))
            return mx_err(err, MIXQ_E_FORMAT, "%s: stored file \"%s\": \"xxh3\" must be 16 lowercase hex digits", fn,
                          nm);
        sf->data = str_field(e, "data", &sf->data_len);
        size_t want = 0, got = 0;
        if (!sf->data || !mx_b64_encoded_len((size_t)sf->stored_size, &want) || want != sf->data_len ||
            !mx_b64_decoded_len(sf->data, sf->data_len, &got) || got != sf->stored_size ||
            !mx_b64_decode(sf->data, sf->data_len, NULL))
            return mx_err(err, MIXQ_E_FORMAT,
                          "%s: stored file \"%s\": \"data\" must be the base64 text of stored_size (%" PRIu64
                          ") bytes", fn, nm, sf->stored_size);
    }
    f->nstored = n;
    return MIXQ_OK;
}

mixq_status mx_cr_read_stored(const mixq_file *f, size_t i, uint8_t **out, mixq_error *err)
{
    const mx_stored *sf = &f->stored[i];
    char b[MX_SHOWN_BUF];
    const char *nm = mx_shown_n(sf->name, sf->name_len, b);
    *out = NULL;
    /* sizes are capped at open (MXC_FILE_MAX_SIZE), so these fit size_t */
    uint8_t *z = malloc((size_t)sf->stored_size + 1), *raw = malloc((size_t)sf->size + 1);
    mixq_status s = MIXQ_OK;
    if (!z || !raw) {
        s = mx_err(err, MIXQ_E_NOMEM, "%s: stored file \"%s\": out of memory", f->shown, nm);
        goto out;
    }
    if (!mx_b64_decode(sf->data, sf->data_len, z)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: stored file \"%s\": \"data\" is not canonical base64", f->shown,
                   nm); /* checked at open: unreachable */
        goto out;
    }
    if (sf->zlib) {
        /* room for size + 1 bytes, so that a stream longer than declared is told apart */
        uLongf dl = (uLongf)sf->size + 1;
        uLong sl = (uLong)sf->stored_size;
        int zr = uncompress2(raw, &dl, z, &sl);
        if (zr != Z_OK || dl != sf->size || sl != sf->stored_size) {
            s = mx_err(err, MIXQ_E_CHECKSUM,
                       "%s: stored file \"%s\": the zlib data does not decompress to exactly %" PRIu64
                       " bytes: the file is corrupt; re-create it", f->shown, nm, sf->size);
            goto out;
        }
    } else if (sf->size) {
        memcpy(raw, z, (size_t)sf->size);
    }
    uint64_t h = XXH3_64bits(raw, (size_t)sf->size);
    if (h != sf->xxh3) {
        s = mx_err(err, MIXQ_E_CHECKSUM,
                   "%s: stored file \"%s\": checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                   "): the file is corrupt; re-create it", f->shown, nm, sf->xxh3, h);
        goto out;
    }
    raw[sf->size] = 0;
    *out = raw;
    raw = NULL;
out:
    free(z);
    free(raw);
    return s;
}

static void fill(const mx_stored *sf, mixq_stored_file *out)
{
    if (!out) return;
    out->name = sf->name;
    out->size = sf->size;
    out->stored_size = sf->stored_size;
    out->compression = sf->zlib ? "zlib" : "none";
    out->checksum = sf->xxh3;
}

size_t mixq_file_count(const mixq_file *f) { return f ? f->nstored : 0; }

mixq_status mixq_file_at(const mixq_file *f, size_t i, mixq_stored_file *out)
{
    if (!f || i >= f->nstored) return MIXQ_E_RANGE;
    fill(&f->stored[i], out);
    return MIXQ_OK;
}

static size_t find(const mixq_file *f, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < f->nstored; i++)
        if (f->stored[i].name_len == n && memcmp(f->stored[i].name, name, n) == 0) return i;
    return SIZE_MAX;
}

mixq_status mixq_file_find(const mixq_file *f, const char *name, mixq_stored_file *out)
{
    if (!f || !name) return MIXQ_E_INVALID_ARG;
    size_t i = find(f, name);
    if (i == SIZE_MAX) return MIXQ_E_NOT_FOUND;
    fill(&f->stored[i], out);
    return MIXQ_OK;
}

mixq_status mixq_file_read(const mixq_file *f, const char *name, void **buf, size_t *len, mixq_error *err)
{
    mx_err_clear(err);
    if (!f || !name || !buf || !len) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_file_read: NULL argument");
    *buf = NULL;
    *len = 0;
    size_t i = find(f, name);
    char b[MX_SHOWN_BUF];
    if (i == SIZE_MAX)
        return mx_err(err, MIXQ_E_NOT_FOUND, "%s: no stored file \"%s\"", f->shown, mx_shown(name, b));
    uint8_t *raw;
    mixq_status s = mx_cr_read_stored(f, i, &raw, err);
    if (s) return s;
    *buf = raw;
    *len = (size_t)f->stored[i].size;
    return MIXQ_OK;
}

void mixq_free(void *p) { free(p); }
