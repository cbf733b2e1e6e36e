/*
 * compare.c - how far a container is from the checkpoint it was converted
 * from: per-tensor and pooled error statistics in double precision, computed
 * block by block so that memory stays bounded whatever the model size.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "convert/convert_options.h"
#include "kernels/qtype.h"
#include "reader/st_reader.h"

/* Elements per block (a quantized tensor is read in whole rows: at least one). */
#define BLOCK_ELEMS (1u << 16)

void mx_compare_options_defaults(mixq_compare_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->verify = 1;
}

/* ---------------------------------------------------------------------- */
/* Compensated sums                                                        */
/* ---------------------------------------------------------------------- */

/* A Neumaier-compensated sum: accurate over billions of terms. */
typedef struct ksum {
    double s, c;
} ksum;

static void kadd(ksum *k, double v)
{
    double t = k->s + v;
    if (!isfinite(t)) {
        k->s = t;
        return;
    }
    if (fabs(k->s) >= fabs(v)) k->c += (k->s - t) + v;
    else k->c += (v - t) + k->s;
    k->s = t;
}

static double kval(const ksum *k) { return isfinite(k->s) ? k->s + k->c : k->s; }

/* The running sums of a tensor or a group. */
typedef struct acc {
    uint64_t n, mismatches, nonfinite;
    ksum src2, out2, err2, dot;
    double max_abs;
} acc;

static void acc_merge(acc *a, const acc *b)
{
    a->n += b->n;
    a->mismatches += b->mismatches;
    a->nonfinite += b->nonfinite;
    kadd(&a->src2, kval(&b->src2));
    kadd(&a->out2, kval(&b->out2));
    kadd(&a->err2, kval(&b->err2));
    kadd(&a->dot, kval(&b->dot));
    if (b->max_abs > a->max_abs) a->max_abs = b->max_abs;
}

/* The metrics of mixq.h derived from the sums. */
static void acc_finish(const acc *a, mixq_compare_stats *st)
{
    memset(st, 0, sizeof *st);
    st->n_elements = a->n;
    st->mismatches = a->mismatches;
    st->nonfinite = a->nonfinite;
    st->sum_sq_source = kval(&a->src2);
    st->sum_sq_output = kval(&a->out2);
    st->sum_sq_error = kval(&a->err2);
    st->dot = kval(&a->dot);
    st->max_abs_error = a->max_abs;
    if (a->nonfinite) {
        st->rmse = st->rel_error = st->max_abs_error = INFINITY;
        st->sqnr_db = -INFINITY;
        st->cosine = NAN;
        return;
    }
    double e = st->sum_sq_error, x = st->sum_sq_source, y = st->sum_sq_output;
    st->rmse = a->n ? sqrt(e / (double)a->n) : 0.0;
    if (e == 0.0) {
        st->rel_error = 0.0;
        st->sqnr_db = INFINITY;
    } else if (x == 0.0) {
        st->rel_error = INFINITY;
        st->sqnr_db = -INFINITY;
    } else {
        st->rel_error = sqrt(e / x);
        st->sqnr_db = 10.0 * log10(x / e);
    }
    if (x == 0.0 && y == 0.0) st->cosine = 1.0;
    else if (x == 0.0 || y == 0.0) st->cosine = 0.0;
    else {
        double c = st->dot / sqrt(x * y);
        st->cosine = c > 1.0 ? 1.0 : c < -1.0 ? -1.0 : c;
    }
}

/* ---------------------------------------------------------------------- */
/* Reading values as double                                                */
/* ---------------------------------------------------------------------- */

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * n little-endian elements of dtype at src to double: exact for every dtype
 * but 64-bit integers beyond 2^53.  scratch holds n floats.
 */
static void to_f64(st_dtype dt, const uint8_t *src, size_t n, double *dst, float *scratch)
{
    switch (dt) {
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = ld64(src + 8 * i);
            memcpy(&dst[i], &u, sizeof u);
        }
        return;
    case ST_U32:
        for (size_t i = 0; i < n; i++) dst[i] = (double)ld32(src + 4 * i);
        return;
    case ST_I32:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = ld32(src + 4 * i);
            dst[i] = u < 0x80000000u ? (double)u : (double)u - 4294967296.0;
        }
        return;
    case ST_U64:
        for (size_t i = 0; i < n; i++) dst[i] = (double)ld64(src + 8 * i);
        return;
    case ST_I64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = ld64(src + 8 * i);
            dst[i] = u < 0x8000000000000000u ? (double)u : -(double)(~u) - 1.0;
        }
        return;
    default:
        st_to_f32(dt, src, n, scratch); /* exact for every other dtype (at most 16-bit integers) */
        for (size_t i = 0; i < n; i++) dst[i] = (double)scratch[i];
        return;
    }
}

/* Adds n element pairs to a. */
static void acc_block(acc *a, const double *x, const double *y, size_t n)
{
    double src2 = 0, out2 = 0, err2 = 0, dot = 0, mx = a->max_abs;
    uint64_t mism = 0, nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        double xi = x[i], yi = y[i];
        if (!isfinite(xi) || !isfinite(yi)) {
            if ((isnan(xi) && isnan(yi)) || xi == yi) continue; /* equal non-finite values */
            mism++;
            nonfinite++;
            continue;
        }
        double d = xi - yi;
        if (d != 0.0) mism++;
        src2 += xi * xi;
        out2 += yi * yi;
        err2 += d * d;
        dot += xi * yi;
        if (fabs(d) > mx) mx = fabs(d);
    }
    a->n += n;
    a->mismatches += mism;
    a->nonfinite += nonfinite;
    kadd(&a->src2, src2);
    kadd(&a->out2, out2);
    kadd(&a->err2, err2);
    kadd(&a->dot, dot);
    a->max_abs = mx;
}

/* Per-call working buffers. */
typedef struct bufs {
    double *x, *y;
    float *f, *scratch;
    size_t cap;
} bufs;

static int bufs_reserve(bufs *b, size_t n)
{
    if (n <= b->cap) return 0;
    if (n > SIZE_MAX / sizeof(double)) return -1;
    double *x = realloc(b->x, n * sizeof *x);
    if (x) b->x = x;
    double *y = realloc(b->y, n * sizeof *y);
    if (y) b->y = y;
    float *f = realloc(b->f, n * sizeof *f);
    if (f) b->f = f;
    float *s = realloc(b->scratch, n * sizeof *s);
    if (s) b->scratch = s;
    if (!x || !y || !f || !s) return -1;
    b->cap = n;
    return 0;
}

static void bufs_free(bufs *b)
{
    free(b->x);
    free(b->y);
    free(b->f);
    free(b->scratch);
}

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

/* ---------------------------------------------------------------------- */
/* The comparison                                                          */
/* ---------------------------------------------------------------------- */

/* Checks that both sides hold the same tensor names with the same shapes. */
static mixq_status match_tensors(const st_model *m, const mixq_file *f, const char *src_path, const char *c_path,
                                 mixq_error *err)
{
    char nb[MX_SHOWN_BUF];
    size_t n = mixq_tensor_count(f);
    for (size_t i = 0; i < n; i++) {
        mixq_tensor_info in;
        mixq_tensor_get_info(mixq_tensor_at(f, i), &in);
        const st_tensor *t = st_find(m, in.name);
        if (!t)
            return mx_err(err, MIXQ_E_NOT_FOUND,
                          "tensor \"%s\" is in %s but not in %s: the container was not converted from this "
                          "checkpoint", mx_shown(in.name, nb), c_path, src_path);
        bool same = t->ndim == in.ndim;
        for (unsigned d = 0; same && d < in.ndim; d++) same = t->shape[d] == in.shape[d];
        if (!same) {
            char a[160], b[160];
            size_t pa = 0, pb = 0;
            a[0] = b[0] = '\0';
            for (unsigned d = 0; d < t->ndim && pa < sizeof a; d++)
                pa += (size_t)snprintf(a + pa, sizeof a - pa, "%s%llu", d ? ", " : "",
                                       (unsigned long long)t->shape[d]);
            for (unsigned d = 0; d < in.ndim && pb < sizeof b; d++)
                pb += (size_t)snprintf(b + pb, sizeof b - pb, "%s%llu", d ? ", " : "",
                                       (unsigned long long)in.shape[d]);
            return mx_err(err, MIXQ_E_FORMAT,
                          "tensor \"%s\": shape [%s] in %s but [%s] in %s: the container was not converted "
                          "from this checkpoint", mx_shown(in.name, nb), a, src_path, b, c_path);
        }
    }
    for (size_t i = 0; i < m->ntensors; i++)
        if (!mixq_find(f, m->tensors[i].name))
            return mx_err(err, MIXQ_E_NOT_FOUND,
                          "tensor \"%s\" is in %s but not in %s: the container was not converted from this "
                          "checkpoint", mx_shown(m->tensors[i].name, nb), src_path, c_path);
    return MIXQ_OK;
}

/* Compares one tensor into *a. */
static mixq_status compare_tensor(const mixq_file *f, const mixq_tensor *ct, const mixq_tensor_info *in,
                                  const st_tensor *t, bufs *b, const mixq_compare_options *o,
                                  const char *c_path, acc *a, mixq_error *err)
{
    char nb[MX_SHOWN_BUF];
    uint64_t n = in->n_elements;
    if (n == 0) return MIXQ_OK;
    size_t esrc = st_dtypes[t->dtype].size;
    if (!is_plain(in->qtype)) { /* any coded type: through the loader, in whole rows */
        uint64_t k = in->row_length;
        uint64_t rows_per = k >= BLOCK_ELEMS ? 1 : BLOCK_ELEMS / k;
        if (rows_per > in->rows) rows_per = in->rows;
        if (k > SIZE_MAX / sizeof(double) || bufs_reserve(b, (size_t)(rows_per * k)))
            return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory for a block of rows", c_path,
                          mx_shown(in->name, nb));
        for (uint64_t r = 0; r < in->rows; r += rows_per) {
            if (o->cancel && *o->cancel) return mx_err(err, MIXQ_E_CANCELLED, "%s: comparison interrupted", c_path);
            uint64_t re = r + rows_per > in->rows ? in->rows : r + rows_per;
            size_t cnt = (size_t)((re - r) * k);
            mixq_status s = mixq_dequantize_f32(f, ct, r, re, b->f, err);
            if (s != MIXQ_OK) return s;
            for (size_t i = 0; i < cnt; i++) b->y[i] = (double)b->f[i];
            to_f64(t->dtype, t->data + r * k * esrc, cnt, b->x, b->scratch);
            acc_block(a, b->x, b->y, cnt);
        }
        return MIXQ_OK;
    }
    /* plain: read the data section directly, any element range */
    st_dtype cdt = plain_dtype(in, t->dtype);
    st_dtype rec;
    if (in->qtype == MIXQ_QT_RAW) {
        if (!st_dtype_parse(in->source_dtype, &rec))
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": unknown source dtype %s", c_path, mx_shown(in->name, nb),
                          in->source_dtype);
        cdt = rec;
    }
    mixq_section sec;
    if (mixq_tensor_section(ct, MIXQ_SEC_DATA, &sec) != MIXQ_OK)
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\" has no data section", c_path, mx_shown(in->name, nb));
    size_t ec = st_dtypes[cdt].size;
    bool bytewise = in->qtype == MIXQ_QT_RAW && cdt == t->dtype;
    size_t blk = n < BLOCK_ELEMS ? (size_t)n : BLOCK_ELEMS;
    if (bufs_reserve(b, blk))
        return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory", c_path, mx_shown(in->name, nb));
    const uint8_t *cp = sec.data;
    for (uint64_t e = 0; e < n; e += blk) {
        if (o->cancel && *o->cancel) return mx_err(err, MIXQ_E_CANCELLED, "%s: comparison interrupted", c_path);
        size_t cnt = n - e < blk ? (size_t)(n - e) : blk;
        to_f64(t->dtype, t->data + e * esrc, cnt, b->x, b->scratch);
        to_f64(cdt, cp + e * ec, cnt, b->y, b->scratch);
        uint64_t before = a->mismatches;
        acc_block(a, b->x, b->y, cnt);
        if (bytewise) { /* raw: a mismatch is a byte difference, whatever the values say */
            a->mismatches = before;
            for (size_t i = 0; i < cnt; i++)
                if (memcmp(t->data + (e + i) * esrc, cp + (e + i) * ec, esrc) != 0) a->mismatches++;
        }
    }
    return MIXQ_OK;
}

/* Allocates the result; the tensor names are copied right after the array, in the same block. */
static mixq_compare_result *result_new(const mixq_file *f)
{
    size_t n = mixq_tensor_count(f), names = 0;
    for (size_t i = 0; i < n; i++) {
        mixq_tensor_info in;
        mixq_tensor_get_info(mixq_tensor_at(f, i), &in);
        names += strlen(in.name) + 1;
    }
    if (n > (SIZE_MAX - names - 1) / sizeof(mixq_compare_tensor)) return NULL;
    mixq_compare_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->tensors = calloc(1, n * sizeof *r->tensors + names + 1);
    if (!r->tensors) {
        free(r);
        return NULL;
    }
    r->n_tensors = n;
    char *arena = (char *)(r->tensors + n);
    for (size_t i = 0; i < n; i++) {
        mixq_tensor_info in;
        mixq_tensor_get_info(mixq_tensor_at(f, i), &in);
        size_t l = strlen(in.name) + 1;
        memcpy(arena, in.name, l);
        r->tensors[i].name = arena;
        arena += l;
    }
    return r;
}

void mixq_compare_free(mixq_compare_result *r)
{
    if (!r) return;
    free(r->tensors);
    free(r);
}

mixq_status mixq_compare(const char *source_path, const char *container_path, const mixq_compare_options *opts,
                         mixq_compare_result **out, mixq_error *err)
{
    mixq_error local;
    if (!err) err = &local;
    mx_err_clear(err);
    mixq_compare_options defaults;
    mixq_status so = mx_compare_options_take(&opts, &defaults, err);
    if (so != MIXQ_OK) return so;
    if (!source_path || !container_path || !out)
        return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_compare: source, container and result are required");
    *out = NULL;
    mixq_file *f = mixq_open(container_path, opts->verify ? MIXQ_OPEN_VERIFY : 0, err);
    if (!f) return err->code;
    st_model *m = NULL;
    mixq_status s = st_open(source_path, &m, err);
    if (s != MIXQ_OK) {
        mixq_close(f);
        return s;
    }
    s = match_tensors(m, f, source_path, container_path, err);
    mixq_compare_result *r = NULL;
    if (s == MIXQ_OK && !(r = result_new(f)))
        s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", container_path);
    bufs b = {0};
    acc g_float = {0}, g_quant = {0}, g_mat = {0};
    for (size_t i = 0; s == MIXQ_OK && i < mixq_tensor_count(f); i++) {
        if (opts->cancel && *opts->cancel) {
            s = mx_err(err, MIXQ_E_CANCELLED, "%s: comparison interrupted", container_path);
            break;
        }
        const mixq_tensor *ct = mixq_tensor_at(f, i);
        mixq_tensor_info in;
        mixq_tensor_get_info(ct, &in);
        const st_tensor *t = st_find(m, in.name);
        mixq_compare_tensor *rt = &r->tensors[i];
        rt->quant_type = in.quant_type;
        rt->source_dtype = st_dtypes[t->dtype].name;
        rt->qtype = in.qtype;
        rt->ndim = in.ndim;
        memcpy(rt->shape, in.shape, sizeof rt->shape);
        rt->is_float = st_dtypes[t->dtype].is_float;
        acc a = {0};
        s = compare_tensor(f, ct, &in, t, &b, opts, container_path, &a, err);
        if (s != MIXQ_OK) break;
        acc_finish(&a, &rt->stats);
        if (a.mismatches == 0) r->n_exact++;
        if (rt->is_float) {
            acc_merge(&g_float, &a);
            r->n_float++;
            if (in.ndim >= 2) {
                acc_merge(&g_mat, &a);
                r->n_matrices++;
            }
        } else if (a.mismatches) {
            r->n_nonfloat_mismatched++;
        }
        if (in.quantized) {
            acc_merge(&g_quant, &a);
            r->n_quantized++;
        }
        if (opts->progress) opts->progress(opts->progress_ctx, i + 1, mixq_tensor_count(f), in.name);
    }
    bufs_free(&b);
    st_close(m);
    mixq_close(f);
    if (s != MIXQ_OK) {
        mixq_compare_free(r);
        return s;
    }
    acc_finish(&g_float, &r->all_float);
    acc_finish(&g_quant, &r->quantized);
    acc_finish(&g_mat, &r->matrices);
    *out = r;
    return MIXQ_OK;
}
