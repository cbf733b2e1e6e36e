/*
 * st_index.c - sharded checkpoints: model.safetensors.index.json parsed and
 * validated, its shards opened and checked against its weight_map.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/error.h"
#include "format/jansson_util.h"
#include "common/small_file.h"
#include "reader/st_internal.h"

/* Largest index.json the reader loads into memory. */
#define ST_MAX_INDEX ((uint64_t)ST_MAX_HEADER)

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
mixq_status mx_st_open_index(const char *path, st_model **out, mixq_error *err)
{
    char fb[PATH_BUF], sb[NAME_BUF], nb[NAME_BUF];
    const char *in = disp_text(fb, sizeof fb, path, 0);
    char *text = NULL;
    size_t len = 0;
    struct stat isb; /* what the index was when read (st_check_unchanged compares) */
    if (stat(path, &isb) != 0) return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", in, strerror(errno));
    mixq_status st = mx_read_small_file(path, "index file", ST_MAX_INDEX, &text, &len, err);
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
    st_file_id_of(&isb, &m->index_id);
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    for (size_t i = 0; i < idx.nshards && !st; i++) {
        char *sp = mx_st_join_path(path, dir_len, idx.shards[i]);
        if (!sp) {
            st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in);
            break;
        }
        m->nfiles++;
        int e;
        st = mx_st_map_file(sp, &m->files[i], &e, err);
        if (st && e == ENOENT) {
            size_t k = 0;
            while (k < idx.nnames && idx.shard_of[k] != i) k++;
            st = mx_err(err, MIXQ_E_IO, "%s: shard \"%s\" (holding tensor \"%s\") does not exist", in,
                        disp(sb, sizeof sb, idx.shards[i]), k < idx.nnames ? disp(nb, sizeof nb, idx.names[k]) : "");
        }
        free(sp);
    }
    for (size_t i = 0; i < m->nfiles && !st; i++) st = mx_st_parse_file(m, i, err);
    if (!st) st = mx_st_build_name_index(m, err);
    if (!st) st = cross_check(m, &idx, in, err);
    st_index_free(&idx);
    if (st) {
        st_close(m);
        return st;
    }
    *out = m;
    return MIXQ_OK;
}

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
    if (!root && mx_json_oom(&je, text ? text : "", len))
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory parsing the index", in);
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
        st = mx_err(err, MIXQ_E_FORMAT, "%s: \"metadata\" must be an object, not %s", in, mx_st_describe(db, sizeof db, md));
        goto out;
    }
    if (!wm) {
        st = mx_err(err, MIXQ_E_FORMAT, "%s: index has no \"weight_map\"", in);
        goto out;
    }
    if (!json_is_object(wm)) {
        st = mx_err(err, MIXQ_E_FORMAT, "%s: \"weight_map\" must be an object, not %s", in, mx_st_describe(db, sizeof db, wm));
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
                        disp(nb, sizeof nb, key), mx_st_describe(db, sizeof db, val));
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
