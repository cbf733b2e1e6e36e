/*
 * st_files.c - the model's own files next to a checkpoint (config.json,
 * tokenizer, ...), read, zlib-compressed and described as the container
 * header's "files" array (FORMAT.md §3.3).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>
#include <zlib.h>

#include "common/base64.h"
#include "common/error.h"
#include "format/stored_files.h"
#include "reader/st_reader.h"

/* The directory the checkpoint's files are in (malloc'd), from its index or first shard. */
static char *model_dir(const st_model *m)
{
    const char *p = m->index_path ? m->index_path : m->nfiles ? m->files[0].path : ".";
    const char *slash = strrchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : 1;
    if (slash && n == 0) n = 1; /* "/x" */
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, slash ? p : ".", n);
    d[n] = '\0';
    return d;
}

/* Reads the whole regular file at path (at most MXC_FILE_MAX_SIZE bytes). */
static mixq_status read_small(const char *path, uint8_t **out, size_t *len, mixq_error *err)
{
    char b[MX_SHOWN_BUF];
    FILE *fp = fopen(path, "rb");
    if (!fp) return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", mx_shown(path, b), strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return mx_err(err, MIXQ_E_IO, "%s: not a regular file", mx_shown(path, b));
    }
    if ((uint64_t)st.st_size > MXC_FILE_MAX_SIZE) {
        fclose(fp);
        return mx_err(err, MIXQ_E_RANGE, "%s: %lld bytes; a stored model file may have at most %u",
                      mx_shown(path, b), (long long)st.st_size, MXC_FILE_MAX_SIZE);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(fp);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", mx_shown(path, b));
    }
    size_t got = n ? fread(buf, 1, n, fp) : 0;
    int bad = got != n || ferror(fp) || fgetc(fp) != EOF; /* changed while read */
    fclose(fp);
    if (bad) {
        free(buf);
        return mx_err(err, MIXQ_E_IO, "%s: read failed or the file changed while read", mx_shown(path, b));
    }
    *out = buf;
    *len = n;
    return MIXQ_OK;
}

/* The header entry of one stored file (keys in the fixed order of FORMAT.md §3.3). */
static mixq_status make_entry(const char *name, const char *path, const uint8_t *raw, size_t n, json_t **out,
                              mixq_error *err)
{
    char b[MX_SHOWN_BUF];
    uLongf clen = compressBound((uLong)n);
    uint8_t *z = malloc(clen);
    if (!z) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", mx_shown(path, b));
    if (compress2(z, &clen, raw, (uLong)n, 9) != Z_OK) {
        free(z);
        return mx_err(err, MIXQ_E_NOMEM, "%s: zlib compression failed", mx_shown(path, b));
    }
    size_t elen;
    char *text = NULL;
    if (mx_b64_encoded_len((size_t)clen, &elen)) text = malloc(elen + 1);
    if (!text) {
        free(z);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", mx_shown(path, b));
    }
    mx_b64_encode(z, (size_t)clen, text);
    free(z);
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, (uint64_t)XXH3_64bits(raw, n));
    json_t *e = json_pack("{s:s,s:I,s:s,s:I,s:s,s:s}", "name", name, "size", (json_int_t)n, "compression", "zlib",
                          "stored_size", (json_int_t)clen, "xxh3", hex, "data", text);
    free(text);
    if (!e) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", mx_shown(path, b));
    *out = e;
    return MIXQ_OK;
}

mixq_status st_stored_files(st_model *m, mixq_error *err)
{
    if (m->stored_files) return MIXQ_OK;
    char *dir = model_dir(m);
    json_t *arr = json_array();
    mixq_status s = MIXQ_OK;
    if (!dir || !arr) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; s == MIXQ_OK && i < MXF_MODEL_FILE_COUNT; i++) {
        size_t dl = strlen(dir), nl = strlen(mxf_model_files[i]);
        char *path = malloc(dl + nl + 2);
        if (!path) {
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
            break;
        }
        memcpy(path, dir, dl);
        path[dl] = '/';
        memcpy(path + dl + 1, mxf_model_files[i], nl + 1);
        struct stat st;
        if (stat(path, &st) == 0) {
            uint8_t *raw = NULL;
            size_t n = 0;
            json_t *e = NULL;
            s = read_small(path, &raw, &n, err);
            if (s == MIXQ_OK) s = make_entry(mxf_model_files[i], path, raw, n, &e, err);
            if (s == MIXQ_OK && json_array_append_new(arr, e)) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
            free(raw);
        }
        free(path);
    }
    free(dir);
    if (s != MIXQ_OK) {
        json_decref(arr);
        return s;
    }
    m->stored_files = arr;
    return MIXQ_OK;
}
