/* imatrix.c - llama.cpp's importance-matrix files, GGUF and legacy .dat (see imatrix.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/error.h"
#include <errno.h>

#include <xxhash.h>

#include "format/gguf.h"
#include "format/imatrix.h"

#define GGUF_ALIGN MXG_ALIGN
#define GGUF_MAX_NAME MXG_MAX_NAME /* GGUF's limit on tensor names (GGML_MAX_NAME), terminator included */
enum { GT_U8 = MXG_U8, GT_I8 = MXG_I8, GT_U16 = MXG_U16, GT_I16 = MXG_I16, GT_U32 = MXG_U32, GT_I32 = MXG_I32,
       GT_F32 = MXG_F32, GT_BOOL = MXG_BOOL, GT_STRING = MXG_STRING, GT_ARRAY = MXG_ARRAY, GT_U64 = MXG_U64,
       GT_I64 = MXG_I64, GT_F64 = MXG_F64, GT_COUNT = MXG_TYPE_COUNT };
#define GGML_TYPE_F32 ((uint32_t)MXG_T_F32)

/* ---------------------------------------------------------------- model */

mx_imatrix *mx_imatrix_new(void) { return calloc(1, sizeof(mx_imatrix)); }

void mx_imatrix_free(mx_imatrix *im)
{
    if (!im) return;
    for (size_t i = 0; i < im->n_entries; i++) {
        free(im->entries[i].name);
        free(im->entries[i].sum2);
    }
    free(im->entries);
    for (size_t i = 0; i < im->n_datasets; i++) free(im->datasets[i]);
    free(im->datasets);
    free(im);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

mx_imatrix_entry *mx_imatrix_add(mx_imatrix *im, const char *name, size_t n)
{
    mx_imatrix_entry *ne = realloc(im->entries, (im->n_entries + 1) * sizeof *ne);
    if (!ne) return NULL;
    im->entries = ne;
    mx_imatrix_entry *e = &ne[im->n_entries];
    e->name = dup_n(name, strlen(name));
    e->sum2 = calloc(n ? n : 1, sizeof *e->sum2);
    e->n = n;
    e->count = 0;
    if (!e->name || !e->sum2) {
        free(e->name);
        free(e->sum2);
        return NULL;
    }
    im->n_entries++;
    return e;
}

mixq_status mx_imatrix_add_dataset(mx_imatrix *im, const char *name, mixq_error *err)
{
    char **nd = realloc(im->datasets, (im->n_datasets + 1) * sizeof *nd);
    if (!nd) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    im->datasets = nd;
    if (!(nd[im->n_datasets] = dup_n(name, strlen(name)))) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    im->n_datasets++;
    return MIXQ_OK;
}

static int cmp_entry_ptr(const void *a, const void *b)
{
    return strcmp((*(const mx_imatrix_entry *const *)a)->name, (*(const mx_imatrix_entry *const *)b)->name);
}

/* The entries in name order (byte order, as llama.cpp's std::sort of the names). */
static const mx_imatrix_entry **sorted_entries(const mx_imatrix *im)
{
    const mx_imatrix_entry **v = malloc((im->n_entries ? im->n_entries : 1) * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < im->n_entries; i++) v[i] = &im->entries[i];
    qsort(v, im->n_entries, sizeof *v, cmp_entry_ptr);
    return v;
}

/* ---------------------------------------------------------------- byte buffer (format/gguf.h) */

typedef mxg_buf buf;

static mixq_status finish(buf *b, uint8_t **out, size_t *len, mixq_error *err)
{
    if (b->fail) {
        free(b->p);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    *out = b->p;
    *len = b->len;
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- writers */

mixq_status mx_imatrix_gguf_bytes(const mx_imatrix *im, uint8_t **out, size_t *len, mixq_error *err)
{
    const mx_imatrix_entry **v = sorted_entries(im);
    if (!v) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < im->n_entries; i++)
        if (strlen(v[i]->name) + sizeof ".in_sum2" > GGUF_MAX_NAME) {
            char b[MX_SHOWN_BUF];
            mixq_status s = mx_err(err, MIXQ_E_INVALID_ARG, "tensor name '%s' is too long for GGUF",
                                   mx_shown(v[i]->name, b));
            free(v);
            return s;
        }
    buf b = {0};
    mxg_put(&b, "GGUF", 4);
    mxg_put_u32(&b, 3);
    mxg_put_u64(&b, 2 * (uint64_t)im->n_entries);
    mxg_put_u64(&b, 4);
    mxg_put_str(&b, "general.type");
    mxg_put_u32(&b, GT_STRING);
    mxg_put_str(&b, "imatrix");
    mxg_put_str(&b, "imatrix.datasets");
    mxg_put_u32(&b, GT_ARRAY);
    mxg_put_u32(&b, GT_STRING);
    mxg_put_u64(&b, im->n_datasets);
    for (size_t i = 0; i < im->n_datasets; i++) mxg_put_str(&b, im->datasets[i]);
    mxg_put_str(&b, "imatrix.chunk_count");
    mxg_put_u32(&b, GT_U32);
    mxg_put_u32(&b, im->chunk_count);
    mxg_put_str(&b, "imatrix.chunk_size");
    mxg_put_u32(&b, GT_U32);
    mxg_put_u32(&b, im->chunk_size);
    /* tensor infos: <name>.in_sum2 [n] then <name>.counts [1], data offsets aligned to 32 */
    uint64_t off = 0;
    char name[GGUF_MAX_NAME + 16];
    for (size_t i = 0; i < im->n_entries; i++) {
        for (int k = 0; k < 2; k++) {
            uint64_t ne = k ? 1 : v[i]->n;
            snprintf(name, sizeof name, "%s%s", v[i]->name, k ? ".counts" : ".in_sum2");
            mxg_put_str(&b, name);
            mxg_put_u32(&b, 1);
            mxg_put_u64(&b, ne);
            mxg_put_u32(&b, GGML_TYPE_F32);
            mxg_put_u64(&b, off);
            off += (ne * 4 + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
        }
    }
    mxg_pad(&b, GGUF_ALIGN);
    for (size_t i = 0; i < im->n_entries; i++) {
        for (size_t j = 0; j < v[i]->n; j++) mxg_put_f32(&b, (float)v[i]->sum2[j]);
        mxg_pad(&b, GGUF_ALIGN);
        mxg_put_f32(&b, (float)v[i]->count);
        mxg_pad(&b, GGUF_ALIGN);
    }
    free(v);
    return finish(&b, out, len, err);
}

mixq_status mx_imatrix_dat_bytes(const mx_imatrix *im, uint8_t **out, size_t *len, mixq_error *err)
{
    if (im->n_entries > INT32_MAX) return mx_err(err, MIXQ_E_INVALID_ARG, "too many entries for the .dat format");
    if (im->chunk_size == 0) return mx_err(err, MIXQ_E_INVALID_ARG, "the .dat format needs a chunk size");
    const mx_imatrix_entry **v = sorted_entries(im);
    if (!v) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    buf b = {0};
    mxg_put_i32(&b, (int32_t)im->n_entries);
    for (size_t i = 0; i < im->n_entries; i++) {
        const mx_imatrix_entry *e = v[i];
        mxg_put_i32(&b, (int32_t)strlen(e->name));
        mxg_put(&b, e->name, strlen(e->name));
        /* ncall = ceil(count / chunk_size): the chunks this entry saw */
        double ncall = ceil(e->count / im->chunk_size);
        mxg_put_i32(&b, (int32_t)ncall);
        mxg_put_i32(&b, (int32_t)e->n);
        for (size_t j = 0; j < e->n; j++)
            mxg_put_f32(&b, e->count > 0 ? (float)(e->sum2[j] / e->count * ncall) : 1.0f);
    }
    mxg_put_i32(&b, (int32_t)im->chunk_count);
    const char *ds = im->n_datasets ? im->datasets[im->n_datasets - 1] : "";
    mxg_put_i32(&b, (int32_t)strlen(ds));
    mxg_put(&b, ds, strlen(ds));
    free(v);
    return finish(&b, out, len, err);
}

mixq_status mx_imatrix_write(const mx_imatrix *im, const char *path, int force, mixq_error *err)
{
    size_t n = strlen(path);
    int gguf = n >= 5 && !strcmp(path + n - 5, ".gguf");
    uint8_t *bytes = NULL;
    size_t len = 0;
    mixq_status s = gguf ? mx_imatrix_gguf_bytes(im, &bytes, &len, err) : mx_imatrix_dat_bytes(im, &bytes, &len, err);
    if (s) return s;
    afile f;
    if ((s = afile_open(&f, path, force, err))) {
        free(bytes);
        return s;
    }
    s = afile_pwrite(&f, bytes, len, 0, err);
    if (!s) s = afile_commit(&f, err);
    afile_abort(&f);
    free(bytes);
    return s;
}

/* ---------------------------------------------------------------- readers */

typedef struct rd {
    const uint8_t *p;
    size_t len, pos;
    const char *name;
    mixq_error *err;
} rd;

static int need(rd *r, size_t n, const char *what)
{
    if (r->len - r->pos >= n) return 1;
    mx_err(r->err, MIXQ_E_FORMAT, "%s: truncated at byte %zu (reading %s)", r->name, r->pos, what);
    return 0;
}
static int get(rd *r, void *d, size_t n, const char *what)
{
    if (!need(r, n, what)) return 0;
    memcpy(d, r->p + r->pos, n);
    r->pos += n;
    return 1;
}

/* A GGUF string: u64 length and bytes (no NUL inside). Sets *s to point into the buffer. */
static int get_gstr(rd *r, const char **s, size_t *n, const char *what)
{
    uint64_t l;
    if (!get(r, &l, 8, what)) return 0;
    if (l > r->len - r->pos) {
        mx_err(r->err, MIXQ_E_FORMAT, "%s: truncated at byte %zu (a string of %llu bytes for %s)", r->name, r->pos,
               (unsigned long long)l, what);
        return 0;
    }
    *s = (const char *)r->p + r->pos;
    *n = (size_t)l;
    if (memchr(*s, 0, *n)) {
        mx_err(r->err, MIXQ_E_FORMAT, "%s: byte %zu: NUL inside a string (%s)", r->name, r->pos, what);
        return 0;
    }
    r->pos += (size_t)l;
    return 1;
}

static const unsigned gt_size[GT_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* Skips (or, for imatrix.datasets, records) a value of type t. */
static int skip_value(rd *r, uint32_t t, mx_imatrix *im, int datasets)
{
    if (t == GT_STRING) {
        const char *s;
        size_t n;
        return get_gstr(r, &s, &n, "a string value");
    }
    if (t == GT_ARRAY) {
        uint32_t et;
        uint64_t cnt;
        if (!get(r, &et, 4, "an array type") || !get(r, &cnt, 8, "an array length")) return 0;
        if (et >= GT_COUNT || et == GT_ARRAY) {
            mx_err(r->err, MIXQ_E_FORMAT, "%s: byte %zu: bad array element type %u", r->name, r->pos, et);
            return 0;
        }
        if (et != GT_STRING) {
            if (cnt > (r->len - r->pos) / gt_size[et]) return need(r, r->len - r->pos + 1, "an array");
            r->pos += (size_t)cnt * gt_size[et];
            return 1;
        }
        if (cnt > (r->len - r->pos) / 8) return need(r, r->len - r->pos + 1, "an array of strings");
        for (uint64_t i = 0; i < cnt; i++) {
            const char *s;
            size_t n;
            if (!get_gstr(r, &s, &n, "an array string")) return 0;
            if (datasets) {
                char **nd = realloc(im->datasets, (im->n_datasets + 1) * sizeof *nd);
                if (!nd || !(nd[im->n_datasets] = dup_n(s, n))) {
                    if (nd) im->datasets = nd;
                    mx_err(r->err, MIXQ_E_NOMEM, "%s: out of memory", r->name);
                    return 0;
                }
                im->datasets = nd;
                im->n_datasets++;
            }
        }
        return 1;
    }
    if (t >= GT_COUNT) {
        mx_err(r->err, MIXQ_E_FORMAT, "%s: byte %zu: bad value type %u", r->name, r->pos, t);
        return 0;
    }
    if (!need(r, gt_size[t], "a value")) return 0;
    r->pos += gt_size[t];
    return 1;
}

typedef struct tinfo {
    const char *name;
    size_t name_len;
    uint64_t ne;       /* elements */
    uint32_t type;
    uint64_t offset;
} tinfo;

static int cmp_tinfo(const void *a, const void *b)
{
    const tinfo *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int has_suffix(const tinfo *t, const char *suf, size_t *base_len)
{
    size_t s = strlen(suf);
    if (t->name_len <= s || memcmp(t->name + t->name_len - s, suf, s)) return 0;
    *base_len = t->name_len - s;
    return 1;
}

static mixq_status parse_gguf(rd *r, mx_imatrix *im)
{
    const char *nm = r->name;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    r->pos = 4;
    if (!get(r, &version, 4, "the version") || !get(r, &n_tensors, 8, "the tensor count") ||
        !get(r, &n_kv, 8, "the key count"))
        return r->err ? r->err->code : MIXQ_E_FORMAT;
    if (version != 2 && version != 3)
        return mx_err(r->err, MIXQ_E_UNSUPPORTED, "%s: GGUF version %u is not supported (2 or 3)", nm, version);
    /* each key takes at least 12 bytes and each tensor info at least 24 */
    if (n_kv > r->len / 12 || n_tensors > r->len / 24)
        return mx_err(r->err, MIXQ_E_FORMAT, "%s: %llu keys and %llu tensors cannot fit in %zu bytes", nm,
                      (unsigned long long)n_kv, (unsigned long long)n_tensors, r->len);
    uint64_t alignment = GGUF_ALIGN;
    for (uint64_t i = 0; i < n_kv; i++) {
        const char *key;
        size_t klen;
        uint32_t t;
        if (!get_gstr(r, &key, &klen, "a key") || !get(r, &t, 4, "a value type")) return r->err ? r->err->code : MIXQ_E_FORMAT;
#define KEY_IS(s) (klen == strlen(s) && !memcmp(key, s, klen))
        if (KEY_IS("general.type")) {
            const char *v;
            size_t vl;
            if (t != GT_STRING) return mx_err(r->err, MIXQ_E_FORMAT, "%s: general.type is not a string", nm);
            if (!get_gstr(r, &v, &vl, "general.type")) return MIXQ_E_FORMAT;
            if (!(vl == 7 && !memcmp(v, "imatrix", 7))) {
                char b[MX_SHOWN_BUF];
                return mx_err(r->err, MIXQ_E_FORMAT, "%s: not an importance matrix (general.type is '%s')", nm,
                              mx_shown_n(v, vl, b));
            }
        } else if (KEY_IS("imatrix.chunk_count") || KEY_IS("imatrix.chunk_size") || KEY_IS("general.alignment")) {
            uint32_t v;
            if (t != GT_U32) {
                char b[MX_SHOWN_BUF];
                return mx_err(r->err, MIXQ_E_FORMAT, "%s: %s is not a uint32", nm, mx_shown_n(key, klen, b));
            }
            if (!get(r, &v, 4, "a uint32")) return MIXQ_E_FORMAT;
            if (KEY_IS("imatrix.chunk_count")) im->chunk_count = v;
            else if (KEY_IS("imatrix.chunk_size")) im->chunk_size = v;
            else if (v == 0 || (v & (v - 1)))
                return mx_err(r->err, MIXQ_E_FORMAT, "%s: general.alignment %u is not a power of two", nm, v);
            else alignment = v;
        } else if (!skip_value(r, t, im, KEY_IS("imatrix.datasets") && t == GT_ARRAY)) {
            return r->err ? r->err->code : MIXQ_E_FORMAT;
        }
#undef KEY_IS
    }
    tinfo *ti = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *ti);
    if (!ti) return mx_err(r->err, MIXQ_E_NOMEM, "%s: out of memory", nm);
    mixq_status s = MIXQ_OK;
    char b[MX_SHOWN_BUF];
    for (uint64_t i = 0; i < n_tensors; i++) {
        tinfo *t = &ti[i];
        uint32_t nd;
        if (!get_gstr(r, &t->name, &t->name_len, "a tensor name") || !get(r, &nd, 4, "a dimension count")) goto bad;
        if (nd < 1 || nd > 4) {
            s = mx_err(r->err, MIXQ_E_FORMAT, "%s: tensor '%s' has %u dimensions", nm,
                       mx_shown_n(t->name, t->name_len, b), nd);
            goto out;
        }
        t->ne = 1;
        for (uint32_t d = 0; d < nd; d++) {
            int64_t ne;
            if (!get(r, &ne, 8, "a dimension")) goto bad;
            if (ne < 0 || !ck_mul(t->ne, (uint64_t)ne, &t->ne) || t->ne > ((uint64_t)1 << 40)) {
                s = mx_err(r->err, MIXQ_E_FORMAT, "%s: tensor '%s' has a bad shape", nm,
                           mx_shown_n(t->name, t->name_len, b));
                goto out;
            }
        }
        if (!get(r, &t->type, 4, "a tensor type") || !get(r, &t->offset, 8, "a tensor offset")) goto bad;
    }
    uint64_t data_start;
    if (!ck_align(r->pos, alignment, &data_start)) goto bad;
    /* the tensors this reader uses must be F32, aligned, and inside the file */
    size_t base_len;
    for (uint64_t i = 0; i < n_tensors; i++) {
        tinfo *t = &ti[i];
        if (!has_suffix(t, ".in_sum2", &base_len) && !has_suffix(t, ".counts", &base_len)) continue;
        uint64_t end;
        if (t->type != GGML_TYPE_F32) {
            s = mx_err(r->err, MIXQ_E_FORMAT, "%s: tensor '%s' is not F32", nm, mx_shown_n(t->name, t->name_len, b));
            goto out;
        }
        if (t->offset % alignment || !ck_add(data_start, t->offset, &end) || !ck_add(end, t->ne * 4, &end) ||
            end > r->len) {
            s = mx_err(r->err, MIXQ_E_FORMAT, "%s: the data of tensor '%s' lies outside the file (truncated?)", nm,
                       mx_shown_n(t->name, t->name_len, b));
            goto out;
        }
    }
    qsort(ti, (size_t)n_tensors, sizeof *ti, cmp_tinfo);
    /* pair each <base>.in_sum2 with <base>.counts (binary search in name order) */
    char key[GGUF_MAX_NAME * 4 + 16];
    for (uint64_t i = 0; i < n_tensors; i++) {
        tinfo *t = &ti[i];
        if (!has_suffix(t, ".in_sum2", &base_len)) continue;
        tinfo *c = NULL;
        if (base_len + sizeof ".counts" <= sizeof key) {
            memcpy(key, t->name, base_len);
            memcpy(key + base_len, ".counts", sizeof ".counts");
            tinfo probe = {.name = key, .name_len = base_len + sizeof ".counts" - 1};
            c = bsearch(&probe, ti, (size_t)n_tensors, sizeof *ti, cmp_tinfo);
        }
        if (!c) {
            s = mx_err(r->err, MIXQ_E_FORMAT, "%s: tensor '%s' has no matching .counts", nm,
                       mx_shown_n(t->name, t->name_len, b));
            goto out;
        }
        if (i > 0 && !cmp_tinfo(&ti[i - 1], t)) {
            s = mx_err(r->err, MIXQ_E_FORMAT, "%s: tensor '%s' appears twice", nm, mx_shown_n(t->name, t->name_len, b));
            goto out;
        }
        /* per-expert matrices (llama.cpp: in_sum2 [n, K], counts [1, K]) become K entries "<base>#<k>" */
        uint64_t K = c->ne;
        if (t->ne == 0) {
            s = mx_err(r->err, MIXQ_E_FORMAT, "%s: '%s' holds no values", nm, mx_shown_n(t->name, t->name_len, b));
            goto out;
        }
        if (K == 0 || t->ne % K) {
            s = mx_err(r->err, MIXQ_E_FORMAT, "%s: '%s' holds %llu values, not a multiple of its %llu counts", nm,
                       mx_shown_n(t->name, t->name_len, b), (unsigned long long)t->ne, (unsigned long long)K);
            goto out;
        }
        uint64_t per = t->ne / K;
        for (uint64_t k = 0; k < K; k++) {
            float cnt;
            memcpy(&cnt, r->p + data_start + c->offset + 4 * k, 4);
            if (!isfinite(cnt) || cnt < 0) {
                s = mx_err(r->err, MIXQ_E_FORMAT, "%s: '%s' is not a count", nm, mx_shown_n(c->name, c->name_len, b));
                goto out;
            }
            char name[GGUF_MAX_NAME * 4 + 32];
            if (K == 1) snprintf(name, sizeof name, "%.*s", (int)base_len, t->name);
            else snprintf(name, sizeof name, "%.*s#%llu", (int)base_len, t->name, (unsigned long long)k);
            mx_imatrix_entry *e = mx_imatrix_add(im, name, (size_t)per);
            if (!e) {
                s = mx_err(r->err, MIXQ_E_NOMEM, "%s: out of memory", nm);
                goto out;
            }
            e->count = cnt;
            for (uint64_t j = 0; j < per; j++) {
                float v;
                memcpy(&v, r->p + data_start + t->offset + 4 * (k * per + j), 4);
                e->sum2[j] = v;
            }
        }
    }
    /* and every .counts has its .in_sum2 */
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (!has_suffix(&ti[i], ".counts", &base_len)) continue;
        tinfo *m = NULL;
        if (base_len + sizeof ".in_sum2" <= sizeof key) {
            memcpy(key, ti[i].name, base_len);
            memcpy(key + base_len, ".in_sum2", sizeof ".in_sum2");
            tinfo probe = {.name = key, .name_len = base_len + sizeof ".in_sum2" - 1};
            m = bsearch(&probe, ti, (size_t)n_tensors, sizeof *ti, cmp_tinfo);
        }
        if (!m) {
            s = mx_err(r->err, MIXQ_E_FORMAT, "%s: tensor '%s' has no matching .in_sum2", nm,
                       mx_shown_n(ti[i].name, ti[i].name_len, b));
            goto out;
        }
    }
    if (im->n_entries == 0) s = mx_err(r->err, MIXQ_E_FORMAT, "%s: no .in_sum2/.counts tensors", nm);
    goto out;
bad:
    s = r->err ? r->err->code : MIXQ_E_FORMAT;
    if (!s) s = mx_err(r->err, MIXQ_E_FORMAT, "%s: malformed", nm);
out:
    free(ti);
    return s;
}

static mixq_status parse_dat(rd *r, mx_imatrix *im)
{
    const char *nm = r->name;
    char b[MX_SHOWN_BUF];
    int32_t n;
    if (!get(r, &n, 4, "the entry count")) return MIXQ_E_FORMAT;
    if (n < 1) return mx_err(r->err, MIXQ_E_FORMAT, "%s: %d entries (not an importance matrix?)", nm, n);
    if ((size_t)n > r->len / 16)
        return mx_err(r->err, MIXQ_E_FORMAT, "%s: %d entries cannot fit in %zu bytes (truncated?)", nm, n, r->len);
    for (int32_t i = 0; i < n; i++) {
        int32_t len, ncall, nval;
        if (!get(r, &len, 4, "a name length")) return MIXQ_E_FORMAT;
        if (len < 1 || (size_t)len > r->len - r->pos)
            return mx_err(r->err, MIXQ_E_FORMAT, "%s: entry %d: bad name length %d (truncated?)", nm, i, len);
        const char *name = (const char *)r->p + r->pos;
        if (memchr(name, 0, (size_t)len))
            return mx_err(r->err, MIXQ_E_FORMAT, "%s: entry %d: NUL inside the name", nm, i);
        r->pos += (size_t)len;
        if (!get(r, &ncall, 4, "ncall") || !get(r, &nval, 4, "nval")) return MIXQ_E_FORMAT;
        if (ncall < 1) return mx_err(r->err, MIXQ_E_FORMAT, "%s: entry '%s': ncall %d", nm, mx_shown_n(name, (size_t)len, b), ncall);
        if (nval < 1 || (size_t)nval > (r->len - r->pos) / 4)
            return mx_err(r->err, MIXQ_E_FORMAT, "%s: entry '%s': %d values do not fit (truncated?)", nm,
                          mx_shown_n(name, (size_t)len, b), nval);
        for (size_t k = 0; k < im->n_entries; k++)
            if (strlen(im->entries[k].name) == (size_t)len && !memcmp(im->entries[k].name, name, (size_t)len))
                return mx_err(r->err, MIXQ_E_FORMAT, "%s: entry '%s' appears twice", nm, mx_shown_n(name, (size_t)len, b));
        char *nz = dup_n(name, (size_t)len);
        mx_imatrix_entry *e = nz ? mx_imatrix_add(im, nz, (size_t)nval) : NULL;
        free(nz);
        if (!e) return mx_err(r->err, MIXQ_E_NOMEM, "%s: out of memory", nm);
        e->count = ncall;
        for (int32_t j = 0; j < nval; j++) {
            float v;
            get(r, &v, 4, "a value");
            if (!isfinite(v)) return mx_err(r->err, MIXQ_E_FORMAT, "%s: entry '%s': a value is not finite", nm, e->name);
            e->sum2[j] = v;
        }
    }
    /* the trailer: int32 last_call, then the dataset (int32 length and bytes); older files stop earlier */
    if (r->pos == r->len) return MIXQ_OK;
    int32_t last_call, dlen;
    if (!get(r, &last_call, 4, "the chunk count")) return MIXQ_E_FORMAT;
    if (last_call < 0) return mx_err(r->err, MIXQ_E_FORMAT, "%s: negative chunk count %d", nm, last_call);
    im->chunk_count = (uint32_t)last_call;
    if (r->pos == r->len) return MIXQ_OK;
    if (!get(r, &dlen, 4, "the dataset name length")) return MIXQ_E_FORMAT;
    if (dlen < 0 || (size_t)dlen != r->len - r->pos)
        return mx_err(r->err, MIXQ_E_FORMAT, "%s: the dataset name length %d does not match the %zu bytes left", nm,
                      dlen, r->len - r->pos);
    char *ds = dup_n((const char *)r->p + r->pos, (size_t)dlen);
    if (!ds) return mx_err(r->err, MIXQ_E_NOMEM, "%s: out of memory", nm);
    mixq_status s = mx_imatrix_add_dataset(im, ds, r->err);
    free(ds);
    r->pos = r->len;
    return s;
}

mixq_status mx_imatrix_parse(const char *name, const uint8_t *p, size_t len, mx_imatrix **out, mixq_error *err)
{
    *out = NULL;
    mx_imatrix *im = mx_imatrix_new();
    if (!im) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    mixq_error local;
    if (!err) err = &local;
    mx_err_clear(err);
    rd r = {.p = p, .len = len, .pos = 0, .name = name, .err = err};
    mixq_status s = len >= 4 && !memcmp(p, "GGUF", 4) ? parse_gguf(&r, im) : parse_dat(&r, im);
    if (s && err->code == MIXQ_OK) s = mx_err(err, s, "%s: malformed importance matrix", name);
    if (s) {
        mx_imatrix_free(im);
        return s;
    }
    im->hash = XXH3_64bits(p, len);
    *out = im;
    return MIXQ_OK;
}

/* Reads a whole file of at most max bytes into a malloc'd buffer. */
static mixq_status read_all(const char *path, size_t max, uint8_t **out, size_t *len, mixq_error *err)
{
    char b[MX_SHOWN_BUF];
    FILE *f = fopen(path, "rb");
    if (!f) return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", mx_shown(path, b), strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *p = malloc(cap);
    for (;;) {
        if (!p) break;
        n += fread(p + n, 1, cap - n, f);
        if (n < cap) break;
        if (cap > max) {
            fclose(f);
            free(p);
            return mx_err(err, MIXQ_E_FORMAT, "%s: larger than %zu bytes", mx_shown(path, b), max);
        }
        uint8_t *np = realloc(p, cap * 2);
        if (!np) free(p);
        p = np;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!p) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", mx_shown(path, b));
    if (bad) {
        free(p);
        return mx_err(err, MIXQ_E_IO, "%s: read error", mx_shown(path, b));
    }
    *out = p;
    *len = n;
    return MIXQ_OK;
}

mixq_status mx_imatrix_read(const char *path, mx_imatrix **out, mixq_error *err)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    mixq_status s = read_all(path, (size_t)1 << 34, &bytes, &len, err);
    if (s) return s;
    char b[MX_SHOWN_BUF];
    s = mx_imatrix_parse(mx_shown(path, b), bytes, len, out, err);
    free(bytes);
    return s;
}

/* ---------------------------------------------------------------- checkpoint names */

const mx_imatrix_entry *mx_imatrix_get(const mx_imatrix *im, const char *name)
{
    for (size_t i = 0; i < im->n_entries; i++)
        if (!strcmp(im->entries[i].name, name)) return &im->entries[i];
    return NULL;
}

/* HF module paths (after "model.layers.N.") and the GGUF tensor each becomes (after "blk.N."). */
static const struct {
    const char *hf, *gguf;
} layer_names[] = {
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.qkv_proj.weight", "attn_qkv.weight"}, /* fused (Phi-3) */
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate_up_proj.weight", "ffn_up.weight"},     /* fused gate+up: llama.cpp keeps it as ffn_up */
    {"mlp.gate.weight", "ffn_gate_inp.weight"},       /* mixture-of-experts routers */
    {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"},
    {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"},
    {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"},
};

/* Expert weights (after "model.layers.N.<prefix>E."): one merged GGUF tensor per kind. */
static const struct {
    const char *prefix, *hf, *gguf;
} expert_names[] = {
    {"block_sparse_moe.experts.", "w1.weight", "ffn_gate_exps.weight"}, /* Mixtral */
    {"block_sparse_moe.experts.", "w3.weight", "ffn_up_exps.weight"},
    {"block_sparse_moe.experts.", "w2.weight", "ffn_down_exps.weight"},
    {"mlp.experts.", "gate_proj.weight", "ffn_gate_exps.weight"},       /* Qwen-MoE, OLMoE, DeepSeek */
    {"mlp.experts.", "up_proj.weight", "ffn_up_exps.weight"},
    {"mlp.experts.", "down_proj.weight", "ffn_down_exps.weight"},
};

/* A decimal index without leading zeros at p (up to 9 digits) followed by '.'; its end, or NULL. */
static const char *index_end(const char *p)
{
    const char *q = p;
    while (*q >= '0' && *q <= '9') q++;
    if (q == p || q - p > 9 || *q != '.' || (q - p > 1 && *p == '0')) return NULL;
    return q;
}

bool mx_imatrix_gguf_name(const char *hf, char *out, size_t cap, int *expert)
{
    *expert = -1;
    const char *direct = NULL;
    if (!strcmp(hf, "lm_head.weight")) direct = "output.weight";
    else if (!strcmp(hf, "model.embed_tokens.weight")) direct = "token_embd.weight";
    if (direct) return (size_t)snprintf(out, cap, "%s", direct) < cap;
    static const char prefix[] = "model.layers.";
    if (strncmp(hf, prefix, sizeof prefix - 1)) return false;
    const char *p = hf + sizeof prefix - 1, *q = index_end(p);
    if (!q) return false;
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
        if (!strcmp(q + 1, layer_names[i].hf))
            return (size_t)snprintf(out, cap, "blk.%.*s.%s", (int)(q - p), p, layer_names[i].gguf) < cap;
    for (size_t i = 0; i < sizeof expert_names / sizeof expert_names[0]; i++) {
        size_t pl = strlen(expert_names[i].prefix);
        if (strncmp(q + 1, expert_names[i].prefix, pl)) continue;
        const char *e = q + 1 + pl, *ee = index_end(e);
        if (!ee || strcmp(ee + 1, expert_names[i].hf)) continue;
        *expert = atoi(e);
        return (size_t)snprintf(out, cap, "blk.%.*s.%s", (int)(q - p), p, expert_names[i].gguf) < cap;
    }
    return false;
}

/* The entry `name` (or `name#expert`) as a view of n values. */
static bool view_of(const mx_imatrix *im, const char *name, int expert, size_t row_length, mx_imatrix_view *v)
{
    const mx_imatrix_entry *e;
    if (expert >= 0) {
        char k[160];
        snprintf(k, sizeof k, "%s#%d", name, expert);
        if ((e = mx_imatrix_get(im, k))) {
            *v = (mx_imatrix_view){e->name, e->sum2, e->n, e->count};
            return true;
        }
        /* a legacy .dat keeps the experts' columns back to back in one entry of K * row_length values */
        if (!(e = mx_imatrix_get(im, name))) return false;
        if (row_length && e->n % row_length == 0 && (size_t)expert < e->n / row_length) {
            *v = (mx_imatrix_view){e->name, e->sum2 + (size_t)expert * row_length, row_length, e->count};
            return true;
        }
        *v = (mx_imatrix_view){e->name, e->sum2, e->n, e->count}; /* a length the caller reports */
        return true;
    }
    if (!(e = mx_imatrix_get(im, name))) return false;
    *v = (mx_imatrix_view){e->name, e->sum2, e->n, e->count};
    return true;
}

bool mx_imatrix_find(const mx_imatrix *im, const char *name, bool tied, size_t row_length, mx_imatrix_view *out)
{
    if (view_of(im, name, -1, row_length, out)) return true;
    char g[128];
    int expert;
    if (!mx_imatrix_gguf_name(name, g, sizeof g, &expert)) return false;
    /* a tied embedding is also the output head: the head's activations are the ones that matter */
    if (tied && !strcmp(g, "token_embd.weight") && view_of(im, "output.weight", -1, row_length, out)) return true;
    return view_of(im, g, expert, row_length, out);
}
