/*
 * convert.c - safetensors checkpoint -> container: picks each tensor's type,
 * converts or quantizes it row by row, and streams it to the writer.
 */
#include <errno.h>
#include <float.h>
#include <pthread.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/checked.h"
#include "container/container_write.h"
#include "common/error.h"
#include "common/half.h"
#include "common/same_file.h"
#include "format/container.h"
#include "plan/plan.h"
#include "plan/plan_importance.h"
#include "plan/plan_measure.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "reader/st_reader.h"
#include "common/workpool.h"
#include "convert/convert_internal.h"
#include "convert/convert_options.h"
#include "plan/plan_options.h"

void mx_convert_options_defaults(mixq_convert_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->type = MIXQ_QT_INT8;
    opts->group_size = 0;
}

/*
 * Checks that a row converted to f16/bf16 keeps every finite value finite
 * (NaN and infinities are carried as they are); names the element if not.
 */
static mixq_status check_plain_overflow(const char *fname, const char *tname, const qtype_desc *qt, const float *x,
                                        size_t n, uint64_t r, mixq_error *err)
{
    st_dtype dt = qtype_data_dtype(qt, ST_DTYPE_COUNT);
    if (dt != ST_F16 && dt != ST_BF16) return MIXQ_OK;
    int big = 0; /* as in check_row: a vectorizable pass, then the slow loop only if some |x| > 65504 */
    for (size_t i = 0; i < n; i++) big |= fabsf(x[i]) > 65504.0f;
    if (!big) return MIXQ_OK;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || fabsf(x[i]) <= 65504.0f) continue; /* fits both types */
        int inf = dt == ST_F16 ? (mx_f32_to_f16(x[i]) & 0x7c00u) == 0x7c00u
                                    : (mx_f32_to_bf16(x[i]) & 0x7f80u) == 0x7f80u;
        if (inf)
            return mx_err(err, MIXQ_E_DATA,
                          "%s: tensor \"%s\": row %llu, column %zu holds %g, beyond the range of %s; "
                          "use convert_options.type f32 or a wider type for this checkpoint",
                          fname, tname, (unsigned long long)r, i, (double)x[i], qt->name);
    }
    return MIXQ_OK;
}

typedef struct conv_ctx {
    const char *in_path;
    const mixq_convert_options *opts;
    const st_model *model;
    cwriter *writer;
    mx_pool *pool;       /* worker threads (NULL: run inline) */
    const mx_imatrix *im;  /* the importance matrix, or NULL */
    mx_role_info *roles;   /* with im: every tensor's role (tied embeddings) */
} conv_ctx;

/* Checks that a row can be quantized; names the tensor and element if not. */
static mixq_status check_row(const char *fname, const char *tname, mixq_qtype type, const float *x, size_t n,
                             uint64_t r, mixq_error *err)
{
    int bad = 0; /* a branch-free pass first (vectorized by the compiler); the loop below names the element */
    for (size_t i = 0; i < n; i++) bad |= !(fabsf(x[i]) <= MX_QUANT_ABS_MAX);
    if (!bad) return MIXQ_OK;
    for (size_t i = 0; i < n; i++) {
        if (!(fabsf(x[i]) <= MX_QUANT_ABS_MAX)) {
            const char *what = isnan(x[i]) ? "NaN" : isinf(x[i]) ? "an infinity" : "a value beyond ±65504";
            return mx_err(err, MIXQ_E_DATA,
                          "%s: tensor \"%s\": row %llu, column %zu holds %s (%g), which %s cannot store; "
                          "keep this tensor at source precision (convert_options.type f32/f16/bf16) or fix the checkpoint",
                          fname, tname, (unsigned long long)r, i, what, (double)x[i], mixq_qtype_name(type));
        }
    }
    return MIXQ_OK;
}

/*
 * Checks that an F64 row holds no finite value beyond the f32 range (every
 * type is reached through f32: such a value would become an infinity);
 * names the element if it does.  NaN and infinities are left to the checks
 * of the target type.
 */
static mixq_status check_f64_row(const char *fname, const char *tname, mixq_qtype type, const uint8_t *src, size_t n,
                                 uint64_t r, mixq_error *err)
{
    for (size_t i = 0; i < n; i++) {
        double d;
        memcpy(&d, src + 8 * i, sizeof d); /* little-endian host, as st_to_f32 */
        if (isfinite(d) && fabs(d) > (double)FLT_MAX)
            return mx_err(err, MIXQ_E_DATA,
                          "%s: tensor \"%s\": row %llu, column %zu holds %g, beyond the range of f32 (and so of %s); "
                          "fix the checkpoint, or keep this tensor as it is (1-D tensors and non-float types keep "
                          "their source bytes)", fname, tname, (unsigned long long)r, i, d, mixq_qtype_name(type));
    }
    return MIXQ_OK;
}

/*
 * One tensor's rows, cut into blocks that the pool's threads convert
 * independently.  Every block writes only its own rows, so the bytes do not
 * depend on the thread count; an error is reported from the lowest failing
 * block (blocks above a known failure are skipped), so the message does not
 * either.
 */
typedef struct rows_job {
    const char *fname, *tname, *in_path; /* printable file and tensor names for messages */
    const st_model *model;
    const st_tensor *t;
    const qtype_desc *qt;
    const qlayout *lay;
    uint8_t *buf;
    mx_qparams qp;
    const mx_importance *imp; /* the tensor's importance, or NULL */
    const mixq_convert_options *o;
    uint64_t rows, row_length, block_rows, nblocks;
    int prepass;            /* 1: only check rows and find the tensor's max |x| */
    float *block_amax;      /* prepass result per block */
    pthread_mutex_t mu;
    uint64_t fail_block;    /* lowest failing block (nblocks if none) */
    mixq_error fail;        /* its error */
} rows_job;

/* Records block b's failure if it is the lowest so far. */
static void job_fail(rows_job *j, uint64_t b, const mixq_error *e)
{
    pthread_mutex_lock(&j->mu);
    if (b < j->fail_block) {
        j->fail_block = b;
        j->fail = *e;
    }
    pthread_mutex_unlock(&j->mu);
}

static int job_skip(rows_job *j, uint64_t b)
{
    pthread_mutex_lock(&j->mu);
    int skip = j->fail_block < b;
    pthread_mutex_unlock(&j->mu);
    return skip;
}

/* Converts (or, in the prepass, checks) the rows of block b. */
static void convert_block(void *ctx, size_t b)
{
    rows_job *j = ctx;
    if (job_skip(j, b)) return;
    mixq_error e;
    if (j->o->cancel && *j->o->cancel) {
        mx_err(&e, MIXQ_E_CANCELLED, "%s: conversion interrupted", j->in_path);
        job_fail(j, b, &e);
        return;
    }
    size_t k = (size_t)j->row_length, esize = st_dtypes[j->t->dtype].size;
    uint8_t scale_scratch[16]; /* a per-tensor scale: every row writes the same value; block 0 keeps it */
    uint64_t r0 = b * j->block_rows, r1 = r0 + j->block_rows < j->rows ? r0 + j->block_rows : j->rows;
    /* the block's source bytes are read (pread) into this block's own buffer, never through the mapping */
    size_t src_len = (size_t)((r1 - r0) * k * esize);
    float *row = malloc((k ? k : 1) * sizeof *row);
    uint8_t *src = malloc(src_len ? src_len : 1);
    float *w = j->imp && !j->prepass ? malloc((k ? k : 1) * sizeof *w) : NULL;
    mx_qparams qp = j->qp;
    if (!row || !src || (j->imp && !j->prepass && !w)) {
        free(row);
        free(src);
        free(w);
        mx_err(&e, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory", j->fname, j->tname);
        job_fail(j, b, &e);
        return;
    }
    float amax = 0.0f;
    mixq_status s = st_read(j->model, j->t, r0 * k * esize, src, src_len, &e);
    for (uint64_t r = r0; r < r1 && s == MIXQ_OK; r++) {
        if (j->t->dtype == ST_F64) {
            s = check_f64_row(j->fname, j->tname, j->qt->id, src + (r - r0) * k * esize, k, r, &e);
            if (s != MIXQ_OK) break;
        }
        st_to_f32(j->t->dtype, src + (r - r0) * k * esize, k, row);
        if (j->prepass) {
            s = check_row(j->fname, j->tname, j->qt->id, row, k, r, &e);
            for (size_t i = 0; i < k && s == MIXQ_OK; i++)
                if (fabsf(row[i]) > amax) amax = fabsf(row[i]);
        } else if (j->qt->quantized) {
            if (!j->lay->per_tensor) s = check_row(j->fname, j->tname, j->qt->id, row, k, r, &e);
            if (s != MIXQ_OK) break;
            mx_rowptrs p = {{NULL}};
            for (int sec = 0; sec < MIXQ_SECTION_COUNT; sec++) /* row stride 0 for a per-tensor scale */
                if (qtype_has_section(j->qt, (mixq_section_kind)sec))
                    p.sec[sec] = j->buf + j->lay->offset[sec] + r * j->lay->row_bytes[sec];
            if (j->lay->per_tensor && b != 0) p.sec[MIXQ_SEC_SCALES] = scale_scratch;
            if (w) { /* the search minimizes the importance-weighted error (as the planner measured it) */
                mx_importance_row(j->imp, row, mx_importance_block(j->qt, j->lay->group), w);
                qp.importance = w;
            }
            mx_kernels()->quantize_row[j->qt->id](row, k, j->lay->group, &qp, p);
        } else {
            s = check_plain_overflow(j->fname, j->tname, j->qt, row, k, r, &e);
            if (s == MIXQ_OK)
                qtype_store_plain(j->qt, row, k,
                                  j->buf + j->lay->offset[MIXQ_SEC_DATA] + r * j->lay->row_bytes[MIXQ_SEC_DATA]);
        }
    }
    free(row);
    free(src);
    free(w);
    if (j->prepass) j->block_amax[b] = amax;
    if (s != MIXQ_OK) job_fail(j, b, &e);
}

/* Runs convert_block over every block of the job; returns the lowest block's error. */
static mixq_status run_rows(conv_ctx *c, rows_job *j, mixq_error *err)
{
    j->fail_block = j->nblocks;
    mx_pool_run(c->pool, (size_t)j->nblocks, convert_block, j);
    if (j->fail_block < j->nblocks) {
        if (err) *err = j->fail;
        return j->fail.code;
    }
    return MIXQ_OK;
}

/* A tensor stored exactly: its source bytes, read through st_read (cw_add_tensor_from). */
typedef struct exact_src {
    const st_model *model;
    const st_tensor *t;
} exact_src;

static mixq_status read_exact(void *ctx, uint64_t off, void *dst, size_t len, mixq_error *err)
{
    const exact_src *e = ctx;
    return st_read(e->model, e->t, off, dst, len, err);
}

/* Converts one tensor (as planned by pe, if not NULL) into a freshly allocated buffer and hands it to the writer. */
static mixq_status convert_tensor(conv_ctx *c, const st_tensor *t, const mx_plan_entry *pe, mixq_error *err)
{
    const mixq_convert_options *o = c->opts;
    char fbuf[256], nbuf[256]; /* names from the file are printed escaped */
    const char *fname = mx_printable(fbuf, sizeof fbuf, c->model->files[t->file_index].path, 0);
    const char *tname = mx_printable(nbuf, sizeof nbuf, t->name, 1);
    const qtype_desc *qt = qtype_for_plain_dtype(t->dtype);
    bool eligible = st_dtypes[t->dtype].is_float && t->n_elements > 0 &&
                    (t->ndim >= 2 || (t->ndim == 1 && o->quantize_1d));
    if (eligible) qt = qtype_get(o->type);

    unsigned group_req = 0, group = 0; /* as recorded; as passed to the layout (0 = per row) */
    if (qt->quantized) {
        group_req = o->group_size == 0 ? qt->group_default : o->group_size;
        if (group_req == MIXQ_GROUP_PER_ROW) group_req = 0;
        group = group_req;
    }
    if (pe) { /* the plan's type and group (checked against this tensor by mx_plan_match) */
        qt = pe->qt;
        group_req = group = qt->quantized ? pe->group_size : 0;
    }
    uint64_t rows, row_length;
    qlayout lay;
    if (!mx_tensor_rows(t, &rows, &row_length) || !mx_layout_of(qt, t->dtype, t->n_elements, rows, row_length, group, &lay))
        return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": stored size overflows 64 bits", fname, tname);
    if (lay.total > SIZE_MAX)
        return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": too large for this machine", fname, tname);
    /* stored exactly as in the source: read in chunks and written as read */
    bool exact = qt == qtype_for_plain_dtype(t->dtype) || qt->id == MIXQ_QT_RAW;
    if (exact && lay.total != t->nbytes) /* a plain layout is the source bytes, no more, no less */
        return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": %llu bytes do not fill its %llu-byte layout", fname,
                      tname, (unsigned long long)t->nbytes, (unsigned long long)lay.total);
    uint8_t *buf = exact ? NULL : calloc(1, lay.total ? (size_t)lay.total : 1);
    if (!exact && !buf)
        return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory for %llu bytes", fname, tname,
                      (unsigned long long)lay.total);

    mixq_status s = MIXQ_OK;
    mx_importance imp = {0};
    if (!exact && c->im && qt->quantized && !o->rtn) {
        bool missing;
        size_t ti = (size_t)(t - c->model->tensors);
        s = mx_importance_for(c->im, o->imatrix_path, t, &c->roles[ti], o->imatrix_weighting, &imp, &missing, err);
        if (s == MIXQ_OK && missing)
            mx_warn(o->warning, o->warning_ctx, "%s has no entry for tensor \"%s\": its scales are unweighted",
                    o->imatrix_path, tname);
    }
    if (!exact && s == MIXQ_OK) {
        rows_job j = {.fname = fname, .tname = tname, .in_path = c->in_path, .model = c->model, .t = t, .qt = qt,
                      .lay = &lay, .buf = buf,
                      .qp = {.importance = NULL, .search = o->rtn == 0, .tensor_absmax = -1.0f}, .o = o,
                      .imp = imp.a ? &imp : NULL,
                      .rows = rows, .row_length = row_length};
        /* blocks of about 64 Ki elements: enough work per block, enough blocks per tensor */
        j.block_rows = row_length >= 65536 ? 1 : 65536 / (row_length ? row_length : 1);
        j.nblocks = rows ? ck_div_ceil(rows, j.block_rows) : 0;
        pthread_mutex_init(&j.mu, NULL);
        if (lay.per_tensor) { /* one scale for the whole tensor: max |x| first */
            j.prepass = 1;
            j.block_amax = calloc(j.nblocks ? (size_t)j.nblocks : 1, sizeof *j.block_amax);
            if (!j.block_amax) s = mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory", fname, tname);
            if (s == MIXQ_OK) s = run_rows(c, &j, err);
            for (uint64_t b = 0; b < j.nblocks && s == MIXQ_OK; b++)
                if (j.block_amax[b] > j.qp.tensor_absmax) j.qp.tensor_absmax = j.block_amax[b];
            if (j.qp.tensor_absmax < 0.0f) j.qp.tensor_absmax = 0.0f;
            free(j.block_amax);
            j.prepass = 0;
        }
        if (s == MIXQ_OK && qt->codebook_levels && lay.length[MIXQ_SEC_CODEBOOK]) {
            /* the tensor's codebook, fitted once before the rows (as the planner fitted it) */
            int8_t *levels = (int8_t *)(buf + lay.offset[MIXQ_SEC_CODEBOOK]);
            s = mx_fit_codebook(c->model, true, t, qt, lay.group, j.imp, levels, err);
            j.qp.codebook = levels;
        }
        if (s == MIXQ_OK) s = run_rows(c, &j, err);
        pthread_mutex_destroy(&j.mu);
    }
    mx_importance_free(&imp);
    if (s == MIXQ_OK) {
        json_t *extra = pe ? mx_plan_entry_extra(pe) : NULL; /* "estimated_error" */
        cw_tensor ct = {.name = t->name, .ndim = t->ndim, .shape = t->shape,
                        .source_dtype = st_dtypes[t->dtype].name, .qt = qt, .group_size = group_req, .extra = extra};
        if (exact) { /* copied through the writer's buffer: hashed exactly as written */
            exact_src es = {c->model, t};
            s = cw_add_tensor_from(c->writer, &ct, &lay, read_exact, &es, err);
        } else {
            s = cw_add_tensor(c->writer, &ct, &lay, buf, err);
        }
        json_decref(extra);
    }
    free(buf);
    return s;
}

/* The file-level metadata object of FORMAT.md §3.2 for converting m with o, without "plan". */
static json_t *header_meta(const st_model *m, const mixq_convert_options *o, const mx_imatrix *im)
{
    json_t *meta = st_header_meta(m, o->type, o->group_size, o->quantize_1d != 0, o->rtn == 0);
    if (meta && im && !o->rtn) {
        json_t *rec = mx_imatrix_record(im, o->imatrix_path, o->imatrix_weighting);
        if (!rec || json_object_set_new(meta, "imatrix", rec)) {
            json_decref(meta);
            return NULL;
        }
    }
    return meta;
}

/* Reads o->imatrix_path (if set and the search is on) and classifies every tensor (tied embeddings). */
static mixq_status load_imatrix(const st_model *m, const mixq_convert_options *o, mx_imatrix **im,
                                mx_role_info **roles, mixq_error *err)
{
    if (!o->imatrix_path || o->rtn || *im) return MIXQ_OK;
    mixq_status s = mx_imatrix_read(o->imatrix_path, im, err);
    if (s != MIXQ_OK) return s;
    *roles = malloc((m->ntensors ? m->ntensors : 1) * sizeof **roles);
    if (!*roles) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < m->ntensors; i++)
        mx_role_classify(m->tensors[i].name, m->tensors[i].ndim, m->tensors[i].shape, &(*roles)[i]);
    mx_roles_finish(*roles, m->ntensors);
    return MIXQ_OK;
}

/*
 * Refuses an output path that names one of the input files: a shard, the
 * index, the plan file applied, the sensitivity file (any spelling: device
 * and inode are compared).
 */
static mixq_status check_not_input(const st_model *m, const mixq_convert_options *o, const char *out_path,
                                   mixq_error *err)
{
    size_t n = m->nfiles + 3;
    const char **in = calloc(n, sizeof *in);
    if (!in) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", out_path);
    for (size_t i = 0; i < m->nfiles; i++) in[i] = m->files[i].path;
    in[m->nfiles] = m->index_path;
    in[m->nfiles + 1] = o->plan ? o->plan->origin : NULL;
    in[m->nfiles + 2] = o->plan_options ? o->plan_options->sensitivity_path : NULL;
    mixq_status s = mx_check_output_not_input(out_path, in, n, NULL, 0, NULL, err);
    free(in);
    return s;
}

/*
 * Refuses, before anything is converted, a checkpoint whose container header
 * would exceed the format's limit (MXC_MAX_HEADER): every entry is at least
 * the smallest possible entry plus its name, so a lower bound of the header
 * is known from the names alone.  (cw_finish still checks the exact size.)
 */
mixq_status mx_convert_check_header_limit(const st_model *m, const mixq_convert_options *o, mixq_error *err)
{
    if (m->ntensors == 0) return MIXQ_OK;
    uint64_t names = 0;
    for (size_t i = 0; i < m->ntensors; i++) names += strlen(m->tensors[i].name);
    if (names + (uint64_t)m->ntensors * 64 <= MXC_MAX_HEADER) return MIXQ_OK; /* far below: no need to measure */
    qlayout lay;
    memset(&lay, 0, sizeof lay);
    cw_tensor small = {.name = "", .ndim = 0, .source_dtype = "U8", .qt = qtype_get(MIXQ_QT_RAW)};
    size_t least = cw_entry_bytes(&small, &lay, MX_ALIGN); /* "name":"" and every other key at its shortest */
    json_t *meta = header_meta(m, o, NULL); /* without the imatrix record: still a lower bound */
    size_t bound = meta ? cw_header_bytes(meta, m->ntensors, names + (uint64_t)m->ntensors * least) : 0;
    json_decref(meta);
    if (!least || !bound) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", m->files[0].path);
    if (bound > MXC_MAX_HEADER) {
        char fb[256];
        return mx_err(err, MIXQ_E_RANGE,
                      "%s: %zu tensors need a container header of at least %zu bytes, above the format's limit of "
                      "%u bytes; nothing was converted", mx_printable(fb, sizeof fb, m->index_path ? m->index_path
                                                                                     : m->files[0].path, 0),
                      m->ntensors, bound, (unsigned)MXC_MAX_HEADER);
    }
    return MIXQ_OK;
}

/* Passes a planner warning on to the converter's callback (ctx: the options), except the imatrix ones. */
static void forward_plan_warning(void *ctx, const char *msg)
{
    const mixq_convert_options *o = ctx;
    if (strstr(msg, " has no entry for tensor ")) return; /* the converter says it for each tensor it converts */
    o->warning(o->warning_ctx, msg);
}

/*
 * Plans with o->plan_options, or checks o->plan against the checkpoint:
 * o->plan gets the plan to apply (*owned if made here), *map the plan entry
 * of each tensor, o->rtn the plan's quantizer setting.
 */
static mixq_status setup_plan(const char *in_path, const st_model *m, mixq_convert_options *o, mixq_plan **owned,
                              size_t **map, mx_imatrix **im, mx_role_info **roles, mixq_error *err)
{
    if (!o->plan && !o->plan_options) return MIXQ_OK;
    if (o->plan && o->plan_options)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: give either a plan or planning options, not both", in_path);
    *map = malloc((m->ntensors ? m->ntensors : 1) * sizeof **map);
    if (!*map) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in_path);
    mixq_status s;
    if (o->plan_options) {
        mixq_plan_options po;
        const mixq_plan_options *pin = o->plan_options;
        if ((s = mx_plan_options_take(&pin, &po, err)) != MIXQ_OK) return s;
        po.rtn = o->rtn;
        po.cancel = o->cancel;
        if (o->threads) po.threads = o->threads;
        /* one importance matrix for planning and converting: the converter's, else the planner's */
        if (o->imatrix_path) {
            po.imatrix_path = o->imatrix_path;
            po.imatrix_weighting = o->imatrix_weighting;
        } else if (po.imatrix_path) {
            o->imatrix_path = po.imatrix_path;
            o->imatrix_weighting = po.imatrix_weighting;
        }
        /* the converter warns about each tensor's imatrix entry itself; the planner's other warnings
           (a measurement file's missing tensors) are passed on */
        po.warning = o->warning ? forward_plan_warning : NULL;
        po.warning_ctx = o;
        if ((s = load_imatrix(m, o, im, roles, err)) != MIXQ_OK) return s;
        json_t *meta = header_meta(m, o, *im);
        if (!meta) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in_path);
        s = mx_plan_build(m, in_path, &po, meta, owned, err);
        json_decref(meta);
        if (s != MIXQ_OK) return s;
        o->plan = *owned;
        for (size_t i = 0; i < m->ntensors; i++) (*map)[i] = i;
        return MIXQ_OK;
    }
    const mixq_plan *p = o->plan;
    s = mx_plan_match(p, m, p->origin ? p->origin : "the plan", *map, err);
    if (s != MIXQ_OK) return s;
    o->rtn = p->rtn;
    if (p->weights && strstr(p->weights, "imatrix") && !o->imatrix_path && !o->rtn)
        mx_warn(o->warning, o->warning_ctx,
                "%s was measured with an importance matrix; without --imatrix the scales are not the ones it planned",
                p->origin ? p->origin : "the plan");
    if ((s = load_imatrix(m, o, im, roles, err)) != MIXQ_OK) return s;
    if (p->target_size > 0) { /* a saved plan's file budget still holds with this converter's header */
        json_t *meta = header_meta(m, o, *im), *pm = mx_plan_header_meta(p, false);
        if (!meta || !pm || json_object_set_new(meta, "plan", pm)) {
            json_decref(meta);
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in_path);
        }
        uint64_t size = mx_plan_file_size(p, m, *map, meta);
        json_decref(meta);
        if (size == 0 || size > p->target_size)
            return mx_err(err, MIXQ_E_RANGE, "%s: this plan gives a %llu-byte file, above its target size of %llu bytes",
                          p->origin ? p->origin : "the plan", (unsigned long long)size,
                          (unsigned long long)p->target_size);
    }
    return MIXQ_OK;
}

mixq_status mixq_convert(const char *in_path, const char *out_path, const mixq_convert_options *opts_in,
                         mixq_error *err)
{
    mixq_convert_options defaults, eff;
    const mixq_convert_options *opts = opts_in;
    mixq_status so = mx_convert_options_take(&opts, &defaults, err);
    if (so != MIXQ_OK) return so;
    if (!in_path || !out_path) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_convert: input and output paths are required");
    const qtype_desc *qt = qtype_get(opts->type);
    if ((unsigned)opts->type >= MIXQ_QT_COUNT || !qt || opts->type == MIXQ_QT_RAW)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: cannot convert to type %d", in_path, (int)opts->type);
    if (qt->quantized && opts->group_size != 0 && !opts->plan && !opts->plan_options) {
        unsigned g = opts->group_size == MIXQ_GROUP_PER_ROW ? 0 : opts->group_size;
        if (!qtype_group_ok(qt, g))
            return mx_err(err, MIXQ_E_INVALID_ARG,
                          "group size %u is not allowed for %s: use a power of two from %u to %u%s", opts->group_size,
                          qt->name, qt->group_min, qt->group_max, qt->allow_row_group ? " (or per row)" : "");
    }

    /* from here on every exit goes through `done`, which frees what is set */
    st_model *model = NULL;
    mixq_plan *owned_plan = NULL;
    size_t *plan_map = NULL;
    mx_imatrix *im = NULL;
    mx_role_info *roles = NULL;
    conv_ctx c = {.in_path = in_path, .opts = NULL, .model = NULL};
    eff = *opts; /* with a plan: its rtn setting */
    opts = &eff;
    mixq_status s = st_open(in_path, &model, err);
    if (s == MIXQ_OK) s = st_stored_files(model, err); /* config.json, tokenizer, ...: into the header */
    if (s != MIXQ_OK) goto done;
    s = check_not_input(model, opts, out_path, err);
    if (s == MIXQ_OK) s = mx_convert_check_header_limit(model, opts, err);
    if (s == MIXQ_OK) s = setup_plan(in_path, model, &eff, &owned_plan, &plan_map, &im, &roles, err);
    if (s == MIXQ_OK) s = load_imatrix(model, &eff, &im, &roles, err);
    if (s != MIXQ_OK) goto done;
    c.opts = opts;
    c.model = model;
    c.im = im;
    c.roles = roles;
    c.pool = mx_pool_create(opts->threads);
    if (!c.pool) s = mx_err(err, MIXQ_E_NOMEM, "%s: cannot start %u threads", in_path, opts->threads);
    if (s == MIXQ_OK) s = cw_open(&c.writer, out_path, opts->force, err);
    if (s != MIXQ_OK) goto done;
    cw_set_cancel(c.writer, opts->cancel);
    for (size_t i = 0; i < model->ntensors && s == MIXQ_OK; i++) {
        if (opts->cancel && *opts->cancel) {
            s = mx_err(err, MIXQ_E_CANCELLED, "%s: conversion interrupted", in_path);
            break;
        }
        s = convert_tensor(&c, &model->tensors[i], opts->plan ? &opts->plan->t[plan_map[i]] : NULL, err);
        st_release(model, &model->tensors[i]); /* its input pages are no longer needed */
        if (s == MIXQ_OK && opts->progress) opts->progress(opts->progress_ctx, i + 1, model->ntensors, model->tensors[i].name);
    }
    /* an input that changed under us gave bytes of no one version: refuse to commit them */
    if (s == MIXQ_OK) s = st_check_unchanged(model, err);
    if (s == MIXQ_OK) {
        json_t *meta = header_meta(model, opts, im);
        if (meta && opts->plan && json_object_set_new(meta, "plan", mx_plan_header_meta(opts->plan, false))) {
            json_decref(meta);
            meta = NULL;
        }
        if (!meta) {
            s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", out_path);
        } else {
            s = cw_finish(c.writer, meta, err);
            c.writer = NULL;
            json_decref(meta);
        }
    }
done:
    if (c.writer) cw_abort(c.writer);
    mx_pool_destroy(c.pool);
    mixq_plan_free(owned_plan);
    free(plan_map);
    mx_imatrix_free(im);
    free(roles);
    st_close(model);
    return s;
}
