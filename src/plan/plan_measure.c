/* plan_measure.c - exact stored bytes and squared error of each candidate type (plan_measure.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "common/error.h"
#include "common/guard.h"
#include "plan/plan_measure.h"
#include "plan/plan_measurement.h"
#include "kernels/simd.h"

bool mx_shape_rows(unsigned ndim, const uint64_t *shape, uint64_t n_elements, uint64_t *rows, uint64_t *row_length)
{
    if (ndim <= 1) {
        *rows = 1;
        *row_length = n_elements;
        return true;
    }
    uint64_t r = 1;
    for (unsigned i = 0; i + 1 < ndim; i++)
        if (!ck_mul(r, shape[i], &r)) {
            if (n_elements != 0) return false;
            r = 0; /* a zero dimension further on: no rows, whatever the product before it */
            break;
        }
    *rows = r;
    *row_length = shape[ndim - 1];
    return true;
}

typedef struct load_args {
    st_dtype dt;
    const uint8_t *src;
    size_t n;
    float *out;
} load_args;

static void load_guarded(void *ctx)
{
    const load_args *a = ctx;
    st_to_f32(a->dt, a->src, a->n, a->out);
}

/*
 * n values of t from byte offset off, as f32, read from the mapping under the
 * SIGBUS guard: false if the file shrank under it.
 */
static bool load_f32(const st_tensor *t, uint64_t off, size_t n, float *out)
{
    load_args a = {t->dtype, t->data + off, n, out};
    return mx_guarded(load_guarded, &a) == MX_GUARD_OK;
}

static mixq_status shrank(const st_model *m, const st_tensor *t, mixq_error *err)
{
    char fb[200], nb[MX_SHOWN_BUF];
    return mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read (it shrank), at tensor \"%s\"",
                  mx_printable(fb, sizeof fb, m ? m->files[t->file_index].path : "the checkpoint", 0),
                  mx_shown(t->name, nb));
}

bool mx_layout_of(const qtype_desc *qt, st_dtype src, uint64_t n_elements, uint64_t rows, uint64_t row_length,
                  unsigned group, qlayout *out)
{
    if (qtype_layout(qt, src, rows, row_length, group, out)) return true;
    /* a tensor without elements stores nothing, whatever its shape: [0, 2^62] as [2^62, 0] (#16) */
    return n_elements == 0 && qtype_layout(qt, src, rows, 0, group, out);
}

bool mx_tensor_rows(const st_tensor *t, uint64_t *rows, uint64_t *row_length)
{
    return mx_shape_rows(t->ndim, t->shape, t->n_elements, rows, row_length);
}

bool mx_cand_layout(const mx_cand *c, const st_tensor *t, qlayout *out)
{
    uint64_t rows, row_length;
    if (!mx_tensor_rows(t, &rows, &row_length)) return false;
    return mx_layout_of(c->qt, t->dtype, t->n_elements, rows, row_length, c->qt->quantized ? c->group_size : 0, out);
}

mx_qparams mx_convert_qparams(bool rtn, const qlayout *lay, float tensor_absmax)
{
    mx_qparams p;
    memset(&p, 0, sizeof p);
    p.importance = NULL;
    p.search = !rtn;
    p.tensor_absmax = lay->per_tensor ? tensor_absmax : -1.0f;
    return p;
}

/* ---------------------------------------------------------------------- */
/* Importance                                                              */
/* ---------------------------------------------------------------------- */

mixq_status mx_importance_init(mx_importance *imp, const double *sum2, size_t n, double count,
                               mixq_imatrix_weighting mode, mixq_error *err)
{
    imp->n = n;
    imp->mode = mode;
    imp->a = malloc((n ? n : 1) * sizeof *imp->a);
    if (!imp->a) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    double mean = 0;
    for (size_t j = 0; j < n; j++) {
        double v = count > 0 && sum2[j] > 0 ? sum2[j] / count : 0.0;
        mean += v;
    }
    mean = n ? mean / (double)n : 0.0;
    bool ok = isfinite(mean) && mean > 0 && mean < 1e30;
    for (size_t j = 0; j < n; j++) {
        double v = count > 0 && sum2[j] > 0 ? sum2[j] / count : 0.0;
        if (!ok) v = 1.0;
        else if (!(v >= 1e-6 * mean)) v = 1e-6 * mean;
        else if (v > 1e30) v = 1e30;
        imp->a[j] = (float)v;
    }
    return MIXQ_OK;
}

void mx_importance_free(mx_importance *imp)
{
    free(imp->a);
    imp->a = NULL;
}

unsigned mx_importance_block(const qtype_desc *qt, unsigned group)
{
    return qt->super_block ? qt->super_block : group;
}

void mx_importance_row(const mx_importance *imp, const float *x, unsigned block, float *w)
{
    size_t n = imp->n;
    if (imp->mode == MIXQ_IMATRIX_PLAIN) {
        memcpy(w, imp->a, n * sizeof *w);
        return;
    }
    size_t b = block ? block : n;
    for (size_t j0 = 0; j0 < n; j0 += b) {
        size_t len = n - j0 < b ? n - j0 : b;
        double s2 = 0;
        for (size_t j = 0; j < len; j++) s2 += (double)x[j0 + j] * x[j0 + j];
        s2 /= (double)len;
        for (size_t j = 0; j < len; j++) {
            double v = (double)x[j0 + j];
            w[j0 + j] = (float)((double)imp->a[j0 + j] * sqrt(s2 + v * v));
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Statistics                                                              */
/* ---------------------------------------------------------------------- */

/* Rows converted and summed together in the first statistics pass (independent sums: more in flight). */
#define STAT_ROWS 4

/* One row's share of the first pass: its own sums, in element order, exactly as a single running sum per row. */
typedef struct row_acc {
    double rs, rq;
    float absmax;
    bool finite;
} row_acc;

static inline void acc_value(row_acc *a, float v)
{
    if (!(fabsf(v) <= MX_QUANT_ABS_MAX)) {
        a->finite = false;
        if (!isfinite(v)) return;
    }
    if (fabsf(v) > a->absmax) a->absmax = fabsf(v);
    a->rs += v;
    a->rq += (double)v * v;
}

/* Input pages of a tensor consumed so far, released every MX_RELEASE_STEP bytes (m == NULL: never). */
#define MX_RELEASE_STEP ((uint64_t)8 << 20)
typedef struct releaser {
    const st_model *m;
    const st_tensor *t;
    uint64_t done;
} releaser;

/* Releases the pages of t's bytes [done, upto) once they add up to MX_RELEASE_STEP. */
static void release_upto(releaser *rl, uint64_t upto)
{
    if (!rl->m || upto < rl->done || upto - rl->done < MX_RELEASE_STEP) return;
    st_release_range(rl->m, rl->t, rl->done, upto - rl->done);
    rl->done = upto;
}

mixq_status mx_measure_stats(const st_model *m, const st_tensor *t, bool moments, mx_tstats *st, mixq_error *err)
{
    memset(st, 0, sizeof *st);
    st->n = t->n_elements;
    st->quantizable = true;
    if (!moments) st->std = st->kurtosis = st->outlier_frac = NAN;
    if (!st_dtypes[t->dtype].is_float || t->n_elements == 0) {
        st->quantizable = st_dtypes[t->dtype].is_float;
        return MIXQ_OK;
    }
    uint64_t rows, row_length;
    if (!mx_tensor_rows(t, &rows, &row_length))
        return mx_err(err, MIXQ_E_RANGE, "tensor \"%s\": size overflows", t->name);
    size_t nr = rows < STAT_ROWS ? (size_t)rows : STAT_ROWS;
    if (row_length > SIZE_MAX / sizeof(float) / 2 / nr)
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": rows too long for this machine", t->name);
    float *buf = malloc((row_length ? (size_t)row_length : 1) * nr * sizeof *buf);
    if (!buf) return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
    size_t esize = st_dtypes[t->dtype].size, len = (size_t)row_length;
    double sum = 0, sumsq = 0;
    float absmax = 0;
    bool finite = true;
    /*
     * Pass 1: per row, the sum and the sum of squares of its finite values in
     * element order, added to the totals in row order; STAT_ROWS rows at a
     * time, each with its own accumulators (the same additions as one row at
     * a time, so the same bits).
     */
    uint64_t r = 0;
    releaser rl = {m, t, 0};
    for (; r + STAT_ROWS <= rows; r += STAT_ROWS) {
        if (!load_f32(t, r * row_length * esize, len * STAT_ROWS, buf)) goto shrunk;
        release_upto(&rl, (r + STAT_ROWS) * row_length * esize);
        row_acc a[STAT_ROWS];
        for (int k = 0; k < STAT_ROWS; k++) a[k] = (row_acc){0, 0, 0, true};
        const float *x0 = buf, *x1 = buf + len, *x2 = buf + 2 * len, *x3 = buf + 3 * len;
        for (size_t i = 0; i < len; i++) {
            acc_value(&a[0], x0[i]);
            acc_value(&a[1], x1[i]);
            acc_value(&a[2], x2[i]);
            acc_value(&a[3], x3[i]);
        }
        for (int k = 0; k < STAT_ROWS; k++) {
            sum += a[k].rs;
            sumsq += a[k].rq;
            if (a[k].absmax > absmax) absmax = a[k].absmax;
            finite &= a[k].finite;
        }
    }
    for (; r < rows; r++) {
        if (!load_f32(t, r * row_length * esize, len, buf)) goto shrunk;
        release_upto(&rl, (r + 1) * row_length * esize);
        row_acc a = {0, 0, 0, true};
        for (size_t i = 0; i < len; i++) acc_value(&a, buf[i]);
        sum += a.rs;
        sumsq += a.rq;
        if (a.absmax > absmax) absmax = a.absmax;
        finite &= a.finite;
    }
    st->quantizable = finite;
    st->absmax = absmax;
    st->sumsq = sumsq;
    double n = (double)t->n_elements;
    st->mean = sum / n;
    if (!moments) {
        free(buf);
        return MIXQ_OK;
    }
    /* pass 2: central moments (one running sum over the whole tensor) */
    double m2 = 0, m4 = 0;
    for (r = 0, rl.done = 0; r < rows; r++) {
        if (!load_f32(t, r * row_length * esize, len, buf)) goto shrunk;
        release_upto(&rl, (r + 1) * row_length * esize);
        for (size_t i = 0; i < len; i++) {
            if (!isfinite(buf[i])) continue;
            double d = (double)buf[i] - st->mean, d2 = d * d;
            m2 += d2;
            m4 += d2 * d2;
        }
    }
    m2 /= n;
    m4 /= n;
    st->std = sqrt(m2);
    st->kurtosis = m2 > 0 ? m4 / (m2 * m2) : 0.0;
    /* pass 3: values beyond 3 standard deviations */
    uint64_t outliers = 0;
    if (st->std > 0) {
        double lim = 3.0 * st->std;
        for (r = 0, rl.done = 0; r < rows; r++) {
            if (!load_f32(t, r * row_length * esize, len, buf)) goto shrunk;
            release_upto(&rl, (r + 1) * row_length * esize);
            for (size_t i = 0; i < len; i++)
                if (isfinite(buf[i]) && fabs((double)buf[i] - st->mean) > lim) outliers++;
        }
    }
    st->outlier_frac = (double)outliers / n;
    free(buf);
    return MIXQ_OK;
shrunk:
    free(buf);
    return shrank(m, t, err);
}

/* ---------------------------------------------------------------------- */
/* Squared errors                                                          */
/* ---------------------------------------------------------------------- */

/*
 * Reconstructs a row stored as a plain type into y through store (n
 * elements of it); raw holds the float values exactly.
 */
static void plain_roundtrip(const qtype_desc *qt, const float *x, size_t n, void *store, float *y)
{
    if (!qtype_store_plain(qt, x, n, store) || !qtype_load_plain(qt, store, n, y))
        memcpy(y, x, n * sizeof *x);
}

void mx_sample_init(mx_sample *smp, uint64_t rows, uint64_t row_length, uint64_t sample)
{
    uint64_t k = rows, n;
    /* whole rows holding at least `sample` elements; every row if that is over half of them */
    if (sample > 0 && row_length > 0 && ck_mul(rows, row_length, &n) && n > sample) {
        k = ck_div_ceil(sample, row_length);
        uint64_t sq;
        /* j * (rows % k) + rows / 2 in mx_sample_row stays below k * k + rows */
        if (k > rows / 2 || !ck_mul(k, k, &sq) || !ck_add(sq, rows, &sq)) k = rows;
    }
    smp->total = rows;
    smp->rows = k;
    smp->step = k ? rows / k : 0;
    smp->rem = k ? rows % k : 0;
    smp->scale = k == rows ? 1.0 : (double)rows / (double)k;
}

uint64_t mx_sample_row(const mx_sample *smp, uint64_t j)
{
    if (smp->rows == smp->total) return j;
    /* floor((j rows + floor(rows / 2)) / k), without forming j rows */
    uint64_t k = smp->rows;
    return j * smp->step + (j * smp->rem + smp->total / 2) / k;
}

mixq_status mx_fit_codebook(const st_model *m, bool via_read, const st_tensor *t, const qtype_desc *qt, unsigned group,
                            const mx_importance *imp, int8_t *levels, mixq_error *err)
{
    uint64_t rows = 0, row_length = 0;
    mx_sample smp;
    if (!mx_tensor_rows(t, &rows, &row_length))
        return mx_err(err, MIXQ_E_RANGE, "tensor \"%s\": size overflows", t->name);
    mx_sample_init(&smp, rows, row_length, MX_CODEBOOK_SAMPLE);
    size_t len = (size_t)row_length, esize = st_dtypes[t->dtype].size, k = (size_t)smp.rows, nk;
    if (!ck_mul(k, len ? len : 1, &nk) || nk > SIZE_MAX / (2 * sizeof(float)))
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": rows too long for this machine", t->name);
    float *x = malloc((nk ? nk : 1) * sizeof *x), *w = imp ? malloc((nk ? nk : 1) * sizeof *w) : NULL;
    uint8_t *src = via_read ? malloc((len ? len : 1) * (esize ? esize : 1)) : NULL;
    mixq_status s = MIXQ_OK;
    if (!x || (imp && !w) || (via_read && !src)) {
        s = mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
        goto out;
    }
    for (size_t j = 0; j < k && s == MIXQ_OK; j++) {
        uint64_t r = mx_sample_row(&smp, j);
        float *xr = x + j * len;
        if (via_read) {
            s = st_read(m, t, r * row_length * esize, src, len * esize, err);
            if (s == MIXQ_OK) st_to_f32(t->dtype, src, len, xr);
        } else if (!load_f32(t, r * row_length * esize, len, xr)) {
            s = shrank(m, t, err);
        }
        for (size_t i = 0; i < len && s == MIXQ_OK; i++)
            if (!(fabsf(xr[i]) <= MX_QUANT_ABS_MAX)) xr[i] = 0.0f;
        if (s == MIXQ_OK && imp) mx_importance_row(imp, xr, mx_importance_block(qt, group), w + j * len);
    }
    if (s == MIXQ_OK) qt->fit_codebook(x, w, k, len, group, levels);
out:
    free(x);
    free(w);
    free(src);
    return s;
}

/* Memory for the candidates measured in one pass over the rows (at least one candidate per pass). */
size_t mx_measure_batch_bytes = (size_t)64 << 20;
/* Elements of a row whose squared differences are formed at once, before they are summed. */
#define SSE_BLOCK 256

/* One candidate being measured: its row buffers (as the converter points into them) and its sums. */
typedef struct cand_run {
    const mx_cand *c;
    size_t slot;            /* index into the caller's arrays */
    mx_qparams qp;
    unsigned group;
    uint64_t sec_bytes[MIXQ_SECTION_COUNT]; /* one row of each section */
    size_t store_bytes;     /* the row's sections back to back, with slack */
    size_t bytes;           /* memory run_alloc takes */
    uint8_t *store;
    size_t off;             /* bytes of store the sections use */
    mx_rowptrs p;
    mx_crowptrs cp;
    float *y;               /* the reconstructed row */
    float *w;               /* the row's search weights (with importance) */
    double total;           /* the tensor's sum */
    int8_t levels[16];      /* codebook types: the tensor's fitted levels */
} cand_run;

/* Checks that tensor t can be stored as candidate c and sizes its buffers. */
static mixq_status run_init(const st_tensor *t, const mx_cand *c, const mx_tstats *st, bool rtn, cand_run *cr,
                            mixq_error *err)
{
    cr->c = c;
    qlayout lay;
    if (!mx_cand_layout(c, t, &lay))
        return mx_err(err, MIXQ_E_RANGE, "tensor \"%s\": cannot be stored as %s (size or group size)", t->name,
                      c->qt->name);
    if (c->qt->quantized && !st->quantizable)
        return mx_err(err, MIXQ_E_DATA, "tensor \"%s\": holds values %s cannot store", t->name, c->qt->name);
    uint64_t row_length = lay.row_length;
    /* one row of every section; a per-tensor scale (row stride 0) is shared by every row */
    uint64_t row_total = 0;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!qtype_has_section(c->qt, (mixq_section_kind)k)) continue;
        cr->sec_bytes[k] = lay.row_bytes[k] ? lay.row_bytes[k] : lay.length[k];
        row_total += cr->sec_bytes[k] + 1;
    }
    if (row_length > SIZE_MAX / 8 || row_total > SIZE_MAX / 2)
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": rows too long for this machine", t->name);
    cr->store_bytes = (size_t)row_total + 2 * (size_t)row_length + 16;
    cr->bytes = cr->store_bytes + (size_t)row_length * sizeof(float) + SSE_BLOCK * sizeof(double);
    cr->qp = mx_convert_qparams(rtn, &lay, st->absmax);
    cr->group = lay.group;
    return MIXQ_OK;
}

/* Allocates the buffers of a run for rows of len values. */
static bool run_alloc(cand_run *cr, size_t len, bool weights)
{
    cr->y = malloc((len ? len : 1) * sizeof *cr->y);
    cr->store = calloc(1, cr->store_bytes);
    if (weights && !(cr->w = malloc((len ? len : 1) * sizeof *cr->w))) return false;
    if (!cr->y || !cr->store) return false;
    /* the sections back to back (2-byte aligned for the f16 scales), as the converter points into them */
    size_t off = 0;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!qtype_has_section(cr->c->qt, (mixq_section_kind)k)) continue;
        cr->p.sec[k] = cr->store + off;
        cr->cp.sec[k] = cr->store + off;
        off += (size_t)cr->sec_bytes[k];
        off += off & 1u;
    }
    cr->off = off;
    if (cr->c->qt->codebook_levels) { /* the levels fitted by run_fit, shared by every row */
        cr->qp.codebook = cr->levels;
        cr->cp.sec[MIXQ_SEC_CODEBOOK] = (const uint8_t *)cr->levels;
    }
    return true;
}

static void run_free(cand_run *cr)
{
    free(cr->y);
    free(cr->store);
    free(cr->w);
    cr->y = NULL;
    cr->store = NULL;
    cr->w = NULL;
}

/*
 * sum_G adds the n squared differences of G runs (run c's at a + c *
 * SSE_BLOCK) to their row sums r[c], each in element order: the G sums are
 * independent, so they are interleaved (more additions in flight, the same
 * bits as one at a time).
 */
#define DEFINE_SUM(G)                                                           \
    static void sum_##G(const double *a, double *r, size_t n)                   \
    {                                                                           \
        double acc[G];                                                          \
        for (int c = 0; c < G; c++) acc[c] = r[c];                              \
        for (size_t i = 0; i < n; i++)                                          \
            for (int c = 0; c < G; c++) acc[c] += a[i + (size_t)c * SSE_BLOCK]; \
        for (int c = 0; c < G; c++) r[c] = acc[c];                              \
    }
DEFINE_SUM(2)
DEFINE_SUM(3)
DEFINE_SUM(4)
DEFINE_SUM(5)
DEFINE_SUM(6)
DEFINE_SUM(7)
DEFINE_SUM(8)
#undef DEFINE_SUM

/* Adds the blocks of k >= 2 runs (run j's at d2 + j * SSE_BLOCK) to rs[j], in groups of 2 to 8. */
static void add_blocks(const double *d2, double *rs, size_t k, size_t n)
{
    static void (*const sum[9])(const double *, double *, size_t) = {NULL, NULL, sum_2, sum_3, sum_4,
                                                                      sum_5, sum_6, sum_7, sum_8};
    for (size_t j = 0; j < k;) {
        size_t rest = k - j, g = rest <= 8 ? rest : rest - 8 >= 2 ? 8 : rest - 2; /* never a group of 1 */
        sum[g](d2 + j * SSE_BLOCK, rs + j, n);
        j += g;
    }
}

/*
 * Measures the runs over every row of t: each row is converted to float
 * once, then stored and reconstructed as each candidate; each candidate's
 * sum is formed exactly as one candidate at a time would (per row in element
 * order, skipping NaN differences, then added to the total in row order).
 */
static mixq_status run_rows(const st_model *m, const st_tensor *t, cand_run *const *runs, size_t k,
                            const mx_importance *imp, double *wsq, const mx_sample *smp,
                            volatile sig_atomic_t *cancel, mixq_error *err)
{
    releaser rl = {m, t, 0};
    uint64_t rows = 0, row_length = 0;
    mx_tensor_rows(t, &rows, &row_length); /* checked by run_init */
    size_t len = (size_t)row_length, esize = st_dtypes[t->dtype].size;
    float *x = malloc((len ? len : 1) * sizeof *x);
    double *xd = malloc(SSE_BLOCK * sizeof *xd), *d2 = malloc(k * SSE_BLOCK * sizeof *d2);
    double *rs = malloc(k * sizeof *rs);
    mixq_status s = MIXQ_OK;
    if (!x || !xd || !d2 || !rs) {
        s = mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
        goto out;
    }
    const mx_kernel_set *ks = mx_kernels();
    for (uint64_t j = 0; j < smp->rows; j++) {
        uint64_t r = mx_sample_row(smp, j);
        if (cancel && *cancel) {
            s = mx_err(err, MIXQ_E_CANCELLED, "tensor \"%s\": planning interrupted", t->name);
            break;
        }
        if (!load_f32(t, r * row_length * esize, len, x)) {
            s = shrank(m, t, err);
            break;
        }
        release_upto(&rl, (r + 1) * row_length * esize);
        for (size_t j = 0; j < k; j++) {
            cand_run *cr = runs[j];
            const qtype_desc *qt = cr->c->qt;
            if (qt->quantized) {
                memset(cr->store, 0, cr->off);
                if (imp) {
                    mx_importance_row(imp, x, mx_importance_block(qt, cr->group), cr->w);
                    cr->qp.importance = cr->w;
                }
                ks->quantize_row[qt->id](x, len, cr->group, &cr->qp, cr->p);
                ks->dequantize_row[qt->id](cr->cp, len, cr->group, cr->y);
            } else {
                plain_roundtrip(qt, x, len, cr->store, cr->y);
            }
            rs[j] = 0;
        }
        if (imp) { /* the importance-weighted error: sum_j a_j d_j^2 (and sum_j a_j x_j^2) */
            const float *a = imp->a;
            if (wsq) {
                double r = 0;
                for (size_t i = 0; i < len; i++) r += (double)a[i] * ((double)x[i] * x[i]);
                *wsq += r;
            }
            for (size_t j = 0; j < k; j++) {
                const float *y = runs[j]->y;
                double r = 0;
                for (size_t i = 0; i < len; i++) {
                    double d = (double)x[i] - (double)y[i];
                    if (isnan(d)) continue;
                    r += (double)a[i] * (d * d);
                }
                rs[j] = r;
            }
        } else if (k == 1) { /* one sum: the plain loop (the chain of additions is the bound either way) */
            const float *y = runs[0]->y;
            double r0 = 0;
            for (size_t i = 0; i < len; i++) {
                double d = (double)x[i] - (double)y[i];
                if (isnan(d)) continue; /* NaN kept as NaN by a plain type */
                r0 += d * d;
            }
            rs[0] = r0;
        } else {
            for (size_t i0 = 0; i0 < len; i0 += SSE_BLOCK) {
                size_t n = len - i0 < SSE_BLOCK ? len - i0 : SSE_BLOCK;
                for (size_t i = 0; i < n; i++) xd[i] = (double)x[i0 + i];
                for (size_t j = 0; j < k; j++) {
                    const float *y = runs[j]->y + i0;
                    double *dj = d2 + j * SSE_BLOCK;
                    for (size_t i = 0; i < n; i++) { /* a NaN difference (a plain type keeps NaN) adds +0: no change */
                        double d = xd[i] - (double)y[i], q = d * d;
                        dj[i] = q == q ? q : 0.0;
                    }
                }
                add_blocks(d2, rs, k, n);
            }
        }
        for (size_t j = 0; j < k; j++) runs[j]->total += rs[j];
    }
out:
    free(x);
    free(xd);
    free(d2);
    free(rs);
    return s;
}

mixq_status mx_measure_errors(const st_model *m, const st_tensor *t, const mx_cand *cands, size_t nc, const bool *want,
                              const mx_tstats *st, bool rtn, uint64_t sample, volatile sig_atomic_t *cancel,
                              double *sse, mixq_error *err)
{
    return mx_measure_errors_imp(m, t, cands, nc, want, st, rtn, NULL, sample, cancel, sse, NULL, err);
}

mixq_status mx_measure_errors_imp(const st_model *m, const st_tensor *t, const mx_cand *cands, size_t nc,
                                  const bool *want, const mx_tstats *st, bool rtn, const mx_importance *imp,
                                  uint64_t sample, volatile sig_atomic_t *cancel, double *sse, double *wsumsq,
                                  mixq_error *err)
{
    if (wsumsq) *wsumsq = 0;
    size_t nw = 0;
    for (size_t c = 0; c < nc; c++) nw += want[c];
    if (nw == 0) return MIXQ_OK;
    if (!st_dtypes[t->dtype].is_float || t->n_elements == 0) {
        for (size_t c = 0; c < nc; c++)
            if (want[c]) sse[c] = 0;
        return MIXQ_OK;
    }
    cand_run *runs = calloc(nw, sizeof *runs);
    cand_run **batch = malloc(nw * sizeof *batch);
    if (!runs || !batch) {
        free(runs);
        free(batch);
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
    }
    mixq_status s = MIXQ_OK;
    size_t k = 0;
    for (size_t c = 0; c < nc && s == MIXQ_OK; c++) {
        if (!want[c]) continue;
        runs[k].slot = c;
        s = run_init(t, &cands[c], st, rtn, &runs[k], err);
        k++;
    }
    uint64_t rows = 0, row_length = 0;
    mx_tensor_rows(t, &rows, &row_length); /* run_init checked it */
    if (s == MIXQ_OK && imp && imp->n != row_length)
        s = mx_err(err, MIXQ_E_INVALID_ARG, "tensor \"%s\": the importance matrix has %zu values for rows of %llu",
                   t->name, imp->n, (unsigned long long)row_length);
    for (size_t j = 0; j < k && s == MIXQ_OK; j++) /* codebooks first, fitted as the converter fits them */
        if (runs[j].c->qt->codebook_levels)
            s = mx_fit_codebook(m, false, t, runs[j].c->qt, runs[j].group, rtn ? NULL : imp, runs[j].levels, err);
    double wsq = 0;
    bool first = true;
    mx_sample smp;
    mx_sample_init(&smp, rows, row_length, sample);
    /* the candidates in batches of bounded memory (one at a time if a row is huge) */
    for (size_t j0 = 0; j0 < k && s == MIXQ_OK;) {
        size_t nb = 0, bytes = 0;
        while (j0 + nb < k && (nb == 0 || bytes + runs[j0 + nb].bytes <= mx_measure_batch_bytes)) {
            bytes += runs[j0 + nb].bytes;
            batch[nb] = &runs[j0 + nb];
            nb++;
        }
        for (size_t j = 0; j < nb && s == MIXQ_OK; j++)
            if (!run_alloc(batch[j], (size_t)row_length, imp != NULL))
                s = mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
        if (s == MIXQ_OK) s = run_rows(m, t, batch, nb, imp, first ? &wsq : NULL, &smp, cancel, err);
        first = false;
        for (size_t j = 0; j < nb; j++) run_free(batch[j]);
        j0 += nb;
    }
    if (s == MIXQ_OK)
        for (size_t j = 0; j < k; j++) sse[runs[j].slot] = runs[j].total * smp.scale;
    if (s == MIXQ_OK && wsumsq && imp) *wsumsq = wsq * smp.scale;
    free(runs);
    free(batch);
    return s;
}

mixq_status mx_measure_error(const st_tensor *t, const mx_cand *c, const mx_tstats *st, bool rtn, uint64_t sample,
                             volatile sig_atomic_t *cancel, double *sse, mixq_error *err)
{
    bool want = true;
    *sse = 0;
    return mx_measure_errors(NULL, t, c, 1, &want, st, rtn, sample, cancel, sse, err);
}

/* ---------------------------------------------------------------------- */
/* Reconstruction (mixq measure)                                           */
/* ---------------------------------------------------------------------- */

mixq_status mx_reconstruct_tensor(const st_model *m, const st_tensor *t, const mx_cand *c, const mx_tstats *st,
                                  bool rtn, const mx_importance *imp, float *out, mixq_error *err)
{
    if (!st_dtypes[t->dtype].is_float)
        return mx_err(err, MIXQ_E_INVALID_ARG, "tensor \"%s\": not a floating tensor", t->name);
    if (t->n_elements == 0) return MIXQ_OK;
    cand_run cr;
    memset(&cr, 0, sizeof cr);
    mixq_status s = run_init(t, c, st, rtn, &cr, err);
    if (s != MIXQ_OK) return s;
    uint64_t rows = 0, row_length = 0;
    mx_tensor_rows(t, &rows, &row_length); /* checked by run_init */
    if (rtn || !c->qt->quantized) imp = NULL; /* as the converter: no importance with plain min/max scales */
    if (imp && imp->n != row_length)
        return mx_err(err, MIXQ_E_INVALID_ARG, "tensor \"%s\": the importance matrix has %zu values for rows of %llu",
                      t->name, imp->n, (unsigned long long)row_length);
    size_t len = (size_t)row_length, esize = st_dtypes[t->dtype].size;
    if (!run_alloc(&cr, len, imp != NULL)) {
        run_free(&cr);
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
    }
    const mx_kernel_set *ks = mx_kernels();
    releaser rl = {m, t, 0};
    for (uint64_t r = 0; r < rows && s == MIXQ_OK; r++) {
        float *x = out + r * len;
        if (!load_f32(t, r * row_length * esize, len, x)) {
            s = shrank(m, t, err);
            break;
        }
        release_upto(&rl, (r + 1) * row_length * esize);
        if (c->qt->quantized) {
            memset(cr.store, 0, cr.off);
            if (imp) {
                mx_importance_row(imp, x, mx_importance_block(c->qt, cr.group), cr.w);
                cr.qp.importance = cr.w;
            }
            ks->quantize_row[c->qt->id](x, len, cr.group, &cr.qp, cr.p);
            ks->dequantize_row[c->qt->id](cr.cp, len, cr.group, cr.y);
        } else {
            plain_roundtrip(c->qt, x, len, cr.store, cr.y);
        }
        memcpy(x, cr.y, len * sizeof *x);
    }
    run_free(&cr);
    return s;
}
