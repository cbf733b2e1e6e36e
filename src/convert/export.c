/*
 * export.c - container -> dequantized safetensors checkpoint: the original
 * names, shapes and __metadata__, floating tensors in one chosen dtype,
 * integer and bool tensors byte for byte.  Streams block by block through
 * the atomic writer, so the output appears whole or not at all.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/error.h"
#include "convert/convert_options.h"
#include "common/guard.h"
#include "common/half.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "reader/st_reader.h"
#include "convert/export_internal.h"

/* Elements per block (a quantized tensor is read in whole rows: at least one). */
#define BLOCK_ELEMS (1u << 16)

void mx_export_options_defaults(mixq_export_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->dtype = MIXQ_QT_F32;
    opts->verify = 1;
}

/* How one tensor is written. */
typedef struct plan {
    st_dtype out;        /* dtype in the output */
    bool copy;           /* integer/bool kept raw: bytes copied unchanged */
    st_dtype data;       /* dtype of the container's data section (plain tensors) */
    uint64_t begin, end; /* data_offsets */
} plan;

typedef struct ex_ctx {
    const char *c_path;
    const mixq_export_options *opts;
    const mixq_file *f;
    afile out;
    uint64_t data_start; /* 8 + N */
    float *fbuf;         /* a block of values */
    uint8_t *obuf;       /* the block in the output dtype */
    size_t cap;          /* elements both hold */
    size_t first, count; /* the tensors written: [first, first + count) in container order */
    int hf;              /* 1: __metadata__ gets "format": "pt" (what Hugging Face loaders check) */
} ex_ctx;

/* Types whose data section holds plain values (read directly, in any element range). */
static bool is_plain(mixq_qtype q)
{
    const qtype_desc *qt = qtype_get(q);
    return qt != NULL && qt->plain;
}

/* The element dtype of a plain container tensor's data section (raw: the source dtype). */
static st_dtype plain_dtype(const mixq_tensor_info *in, st_dtype src)
{
    return qtype_data_dtype(qtype_get(in->qtype), src);
}

static int reserve(ex_ctx *c, size_t n)
{
    if (n <= c->cap) return 0;
    if (n > SIZE_MAX / sizeof(double)) return -1;
    float *f = realloc(c->fbuf, n * sizeof *f);
    if (f) c->fbuf = f;
    uint8_t *o = realloc(c->obuf, n * sizeof(float));
    if (o) c->obuf = o;
    if (!f || !o) return -1;
    c->cap = n;
    return 0;
}

/*
 * Converts cnt floats (elements first.. of tensor `name`) to the output dtype
 * in c->obuf; a finite value that becomes infinite fails with MIXQ_E_DATA.
 */
static mixq_status store_block(ex_ctx *c, const mixq_tensor_info *in, st_dtype out, uint64_t first, size_t cnt,
                               mixq_error *err)
{
    char nb[MX_SHOWN_BUF];
    const float *x = c->fbuf;
    if (out == ST_F32) {
        memcpy(c->obuf, x, cnt * sizeof(float));
        return MIXQ_OK;
    }
    uint16_t *h = (uint16_t *)(void *)c->obuf;
    if (out == ST_F16) mx_kernels()->f32_to_f16(x, cnt, h);
    else mx_kernels()->f32_to_bf16(x, cnt, h);
    for (size_t i = 0; i < cnt; i++) {
        bool inf = out == ST_F16 ? (h[i] & 0x7fffu) == 0x7c00u : (h[i] & 0x7fffu) == 0x7f80u;
        if (inf && isfinite(x[i])) {
            uint64_t e = first + i, col = in->row_length ? e % in->row_length : 0;
            uint64_t row = in->row_length ? e / in->row_length : 0;
            return mx_err(err, MIXQ_E_DATA,
                          "%s: tensor \"%s\": row %llu, column %llu holds %g, beyond the range of %s; "
                          "export with export_options.dtype f32", c->c_path, mx_shown(in->name, nb), (unsigned long long)row,
                          (unsigned long long)col, (double)x[i], st_dtypes[out].name);
        }
    }
    return MIXQ_OK;
}

/* Finite F64 values that overflow float (they would silently become infinities). */
static mixq_status check_f64(ex_ctx *c, const mixq_tensor_info *in, const uint8_t *src, uint64_t first, size_t cnt,
                             mixq_error *err)
{
    char nb[MX_SHOWN_BUF];
    for (size_t i = 0; i < cnt; i++) {
        uint64_t u = 0;
        for (int b = 7; b >= 0; b--) u = (u << 8) | src[8 * i + (size_t)b];
        double d;
        memcpy(&d, &u, sizeof d);
        if (isfinite(d) && isinf((float)d))
            return mx_err(err, MIXQ_E_DATA,
                          "%s: tensor \"%s\": element %llu holds %g, beyond the range of F32 (and of any "
                          "export dtype)", c->c_path, mx_shown(in->name, nb), (unsigned long long)(first + i), d);
    }
    return MIXQ_OK;
}

static mixq_status write_tensor(ex_ctx *c, const mixq_tensor *t, const mixq_tensor_info *in, const plan *p,
                                mixq_error *err)
{
    char nb[MX_SHOWN_BUF];
    uint64_t n = in->n_elements;
    if (n == 0) return MIXQ_OK;
    const mixq_export_options *o = c->opts;
    size_t osize = st_dtypes[p->out].size;
    uint64_t pos = c->data_start + p->begin;
    mixq_status s;
    if (!is_plain(in->qtype)) { /* any coded type: through the loader, in whole rows */
        uint64_t k = in->row_length;
        uint64_t rows_per = k >= BLOCK_ELEMS ? 1 : BLOCK_ELEMS / k;
        if (rows_per > in->rows) rows_per = in->rows;
        if (k > SIZE_MAX / sizeof(double) || reserve(c, (size_t)(rows_per * k)))
            return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory for a block of rows", c->c_path,
                          mx_shown(in->name, nb));
        for (uint64_t r = 0; r < in->rows; r += rows_per) {
            if (o->cancel && *o->cancel) return mx_err(err, MIXQ_E_CANCELLED, "%s: export interrupted", c->c_path);
            uint64_t re = r + rows_per > in->rows ? in->rows : r + rows_per;
            size_t cnt = (size_t)((re - r) * k);
            if ((s = mixq_dequantize_f32(c->f, t, r, re, c->fbuf, err))) return s;
            if ((s = store_block(c, in, p->out, r * k, cnt, err))) return s;
            if ((s = afile_pwrite(&c->out, c->obuf, cnt * osize, pos, err))) return s;
            pos += cnt * osize;
        }
        return MIXQ_OK;
    }
    mixq_section sec;
    if (mixq_tensor_section(t, MIXQ_SEC_DATA, &sec) != MIXQ_OK)
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\" has no data section", c->c_path, mx_shown(in->name, nb));
    const uint8_t *src = sec.data;
    size_t dsize = st_dtypes[p->data].size;
    size_t blk = n < BLOCK_ELEMS ? (size_t)n : BLOCK_ELEMS;
    if (reserve(c, blk))
        return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory", c->c_path, mx_shown(in->name, nb));
    if (p->copy || p->data == p->out) { /* the bytes are already what the output holds: copied through obuf */
        size_t bb = blk * sizeof(float) / dsize * dsize; /* whole elements that fit obuf */
        uint64_t total = n * dsize;
        for (uint64_t off = 0; off < total; off += bb) {
            size_t cnt = total - off < bb ? (size_t)(total - off) : bb;
            memcpy(c->obuf, src + off, cnt); /* a fault here is caught by the guard around write_tensor */
            if ((s = afile_pwrite(&c->out, c->obuf, cnt, pos + off, err))) return s;
        }
        return MIXQ_OK;
    }
    for (uint64_t e = 0; e < n; e += blk) {
        if (o->cancel && *o->cancel) return mx_err(err, MIXQ_E_CANCELLED, "%s: export interrupted", c->c_path);
        size_t cnt = n - e < blk ? (size_t)(n - e) : blk;
        if (p->data == ST_F64 && (s = check_f64(c, in, src + e * dsize, e, cnt, err))) return s;
        st_to_f32(p->data, src + e * dsize, cnt, c->fbuf);
        if ((s = store_block(c, in, p->out, e, cnt, err))) return s;
        if ((s = afile_pwrite(&c->out, c->obuf, cnt * osize, pos, err))) return s;
        pos += cnt * osize;
    }
    return MIXQ_OK;
}

typedef struct write_args {
    ex_ctx *c;
    const mixq_tensor *t;
    const mixq_tensor_info *in;
    const plan *p;
    mixq_error *err;
    mixq_status s;
} write_args;

static void write_guarded(void *ctx)
{
    write_args *a = ctx;
    a->s = write_tensor(a->c, a->t, a->in, a->p, a->err);
}

/* write_tensor under the SIGBUS guard: a container that shrinks gives an error naming it, not a crash. */
static mixq_status write_tensor_guarded(ex_ctx *c, const mixq_tensor *t, const mixq_tensor_info *in, const plan *p,
                                        mixq_error *err)
{
    write_args a = {c, t, in, p, err, MIXQ_OK};
    if (mx_guarded(write_guarded, &a) != MX_GUARD_OK) {
        char fb[MX_SHOWN_BUF];
        return mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read (it shrank); nothing was written",
                      mx_shown(c->c_path, fb));
    }
    return a.s;
}

/*
 * The source checkpoint's __metadata__ as recorded in the container (*out a
 * new reference, or NULL if there is none); -1 if out of memory (the header
 * was validated when opened, so nothing else can fail).
 */
static int source_metadata(const mixq_file *f, json_t **out)
{
    size_t len;
    const char *text = mixq_header_json(f, &len);
    *out = NULL;
    json_t *root = json_loadb(text, len, 0, NULL);
    if (!root) return -1;
    json_t *sm = json_object_get(json_object_get(root, "metadata"), "source_metadata");
    if (json_is_object(sm) && json_object_size(sm)) *out = json_deep_copy(sm);
    int bad = json_is_object(sm) && json_object_size(sm) && !*out;
    json_decref(root);
    return bad ? -1 : 0;
}

/* Plans every tensor and builds the header text (padded with spaces so 8 + N is a multiple of 8). */
static mixq_status build_header(ex_ctx *c, plan *plans, char **text, size_t *len, mixq_error *err)
{
    char nb[MX_SHOWN_BUF];
    const mixq_file *f = c->f;
    size_t n = c->count;
    json_t *root = json_object();
    if (!root) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", c->c_path);
    json_t *meta;
    if (source_metadata(f, &meta) != 0) goto nomem;
    if (c->hf && !meta) meta = json_object();
    if (c->hf && meta && !json_object_get(meta, "format") && json_object_set_new(meta, "format", json_string("pt")))
        goto nomem;
    if (meta && json_object_set_new(root, "__metadata__", meta)) goto nomem;
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        mixq_tensor_info in;
        mixq_tensor_get_info(mixq_tensor_at(f, c->first + i), &in);
        st_dtype src;
        if (!st_dtype_parse(in.source_dtype, &src)) {
            json_decref(root);
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": unknown source dtype %s", c->c_path,
                          mx_shown(in.name, nb), in.source_dtype);
        }
        if (!strcmp(in.name, "__metadata__") || json_object_get(root, in.name)) {
            json_decref(root);
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor name \"%s\" cannot be written to safetensors%s",
                          c->c_path, mx_shown(in.name, nb), strcmp(in.name, "__metadata__") ? " twice" : "");
        }
        plan *p = &plans[i];
        p->copy = in.qtype == MIXQ_QT_RAW && !st_dtypes[src].is_float;
        p->out = p->copy ? src : qtype_get(c->opts->dtype)->plain_dtype;
        p->data = plain_dtype(&in, src);
        uint64_t bytes;
        if (!ck_mul(in.n_elements, st_dtypes[p->out].size, &bytes) || !ck_add(off, bytes, &p->end)) {
            json_decref(root);
            return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": the output size overflows 64 bits", c->c_path,
                          mx_shown(in.name, nb));
        }
        p->begin = off;
        off = p->end;
        json_t *shape = json_array();
        if (!shape) goto nomem;
        for (unsigned d = 0; d < in.ndim; d++)
            if (json_array_append_new(shape, json_integer((json_int_t)in.shape[d]))) {
                json_decref(shape);
                goto nomem;
            }
        json_t *e = json_pack("{s:s,s:o,s:[I,I]}", "dtype", st_dtypes[p->out].name, "shape", shape, "data_offsets",
                              (json_int_t)p->begin, (json_int_t)p->end);
        if (!e || json_object_set_new(root, in.name, e)) goto nomem;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", c->c_path);
    size_t l = strlen(s), padded = (l + 8 + 7) / 8 * 8 - 8;
    if (padded > ST_MAX_HEADER) {
        free(s);
        return mx_err(err, MIXQ_E_RANGE, "%s: the safetensors header would be %zu bytes, more than readers accept",
                      c->c_path, padded);
    }
    char *t = realloc(s, padded + 1);
    if (!t) {
        free(s);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", c->c_path);
    }
    memset(t + l, ' ', padded - l);
    t[padded] = '\0';
    *text = t;
    *len = padded;
    return MIXQ_OK;
nomem:
    json_decref(root);
    return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", c->c_path);
}

/* True if path is still the file `before` describes: device, inode, size, modification and change time. */
static bool same_file_state(const char *path, const struct stat *before)
{
    struct stat now;
    return stat(path, &now) == 0 && now.st_dev == before->st_dev && now.st_ino == before->st_ino &&
           now.st_size == before->st_size && now.st_mtim.tv_sec == before->st_mtim.tv_sec &&
           now.st_mtim.tv_nsec == before->st_mtim.tv_nsec && now.st_ctim.tv_sec == before->st_ctim.tv_sec &&
           now.st_ctim.tv_nsec == before->st_ctim.tv_nsec;
}

/* Refuses an output path that names the container itself. */
static mixq_status check_not_input(const char *c_path, const char *out_path, mixq_error *err)
{
    struct stat so, si;
    if (stat(out_path, &so) == 0 && stat(c_path, &si) == 0 && so.st_dev == si.st_dev && so.st_ino == si.st_ino)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: the output is the input container; choose another output path",
                      out_path);
    return MIXQ_OK;
}

mixq_status mixq_export(const char *container_path, const char *out_path, const mixq_export_options *opts,
                        mixq_error *err)
{
    mixq_error local;
    if (!err) err = &local;
    mx_err_clear(err);
    mixq_export_options defaults;
    mixq_status so = mx_export_options_take(&opts, &defaults, err);
    if (so != MIXQ_OK) return so;
    if (!container_path || !out_path)
        return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_export: input and output paths are required");
    const qtype_desc *oqt = qtype_get(opts->dtype);
    if (!oqt || !oqt->plain || oqt->plain_dtype == ST_DTYPE_COUNT) /* f32, f16 or bf16 */
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: cannot export to type %d (choose f32, f16 or bf16)", out_path,
                      (int)opts->dtype);
    mixq_status s = check_not_input(container_path, out_path, err);
    if (s != MIXQ_OK) return s;
    mixq_file *f = mixq_open(container_path, opts->verify ? MIXQ_OPEN_VERIFY : 0, err);
    if (!f) return err->code;
    s = mx_export_st(f, container_path, 0, mixq_tensor_count(f), out_path, opts, 0, err);
    mixq_close(f);
    return s;
}

mixq_status mx_export_st(const mixq_file *f, const char *container_path, size_t first, size_t n, const char *out_path,
                         const mixq_export_options *opts, int hf, mixq_error *err)
{
    mixq_status s = MIXQ_OK;
    struct stat before; /* what the container is as it is read: compared again before the commit */
    if (stat(container_path, &before) != 0) before.st_ino = 0;
    ex_ctx c = {.c_path = container_path, .opts = opts, .f = f, .first = first, .count = n, .hf = hf};
    plan *plans = calloc(n ? n : 1, sizeof *plans);
    char *header = NULL;
    size_t hlen = 0;
    if (!plans) s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", container_path);
    else s = build_header(&c, plans, &header, &hlen, err);
    bool opened = false;
    if (s == MIXQ_OK) {
        s = afile_open(&c.out, out_path, opts->force, err);
        opened = s == MIXQ_OK;
        if (opened) c.out.cancel = opts->cancel; /* a late interrupt still leaves no output */
    }
    if (s == MIXQ_OK) {
        uint8_t prefix[8];
        for (int i = 0; i < 8; i++) prefix[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        c.data_start = 8 + (uint64_t)hlen;
        s = afile_pwrite(&c.out, prefix, 8, 0, err);
        if (s == MIXQ_OK) s = afile_pwrite(&c.out, header, hlen, 8, err);
    }
    for (size_t i = 0; s == MIXQ_OK && i < n; i++) {
        if (opts->cancel && *opts->cancel) {
            s = mx_err(err, MIXQ_E_CANCELLED, "%s: export interrupted", container_path);
            break;
        }
        const mixq_tensor *t = mixq_tensor_at(f, first + i);
        mixq_tensor_info in;
        mixq_tensor_get_info(t, &in);
        s = write_tensor_guarded(&c, t, &in, &plans[i], err);
        if (s == MIXQ_OK && opts->progress) opts->progress(opts->progress_ctx, i + 1, n, in.name);
    }
    if (s == MIXQ_OK && opts->cancel && *opts->cancel)
        s = mx_err(err, MIXQ_E_CANCELLED, "%s: export interrupted", container_path);
    if (s == MIXQ_OK && !same_file_state(container_path, &before)) {
        char fb[MX_SHOWN_BUF];
        s = mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read; nothing was written",
                   mx_shown(container_path, fb));
    }
    if (s == MIXQ_OK) s = afile_commit(&c.out, err); /* aborts the temporary itself on failure */
    else if (opened) afile_abort(&c.out);
    free(header);
    free(plans);
    free(c.fbuf);
    free(c.obuf);
    return s;
}
