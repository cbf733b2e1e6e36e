/*
 * plan_steps.c - the planner's steps shared by the strategies: role priors
 * and error weights, statistics and measuring on the worker pool, rules and
 * fixed tensors, candidate layouts.
 */
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "plan/plan.h"
#include "plan/plan_measure.h"
#include "kernels/simd.h"
#include "common/workpool.h"
#include "plan/plan_internal.h"
#include "plan/plan_measurement.h"

/* How much a unit of relative squared error costs, per role (docs/PLANNER.md). */
static const double role_prior[MX_ROLE_COUNT] = {
    [MX_ROLE_OTHER] = 1.0,    [MX_ROLE_EMBEDDING] = 2.0, [MX_ROLE_NORM] = 4.0,     [MX_ROLE_OUTPUT] = 2.0,
    [MX_ROLE_ATTN_Q] = 1.0,   [MX_ROLE_ATTN_K] = 1.0,    [MX_ROLE_ATTN_V] = 1.5,   [MX_ROLE_ATTN_QKV] = 1.25,
    [MX_ROLE_ATTN_OUT] = 1.25, [MX_ROLE_MLP_UP] = 1.0,   [MX_ROLE_MLP_GATE] = 1.0, [MX_ROLE_MLP_DOWN] = 1.5,
    [MX_ROLE_ROUTER] = 4.0,   [MX_ROLE_MODULATION] = 2.0,
};
#define TIED_PRIOR 3.0

/* Role prior times the depth factor 1 + 0.25 (1 - 2d)^2 (1.25 at the first and last block, 1 in the middle). */
double mx_role_prior(const mx_role_info *r)
{
    double p = (unsigned)r->role < MX_ROLE_COUNT ? role_prior[r->role] : 1.0;
    if (r->tied) p = TIED_PRIOR;
    if (r->layer >= 0) {
        double u = 1.0 - 2.0 * r->depth;
        p *= 1.0 + 0.25 * u * u;
    }
    return p;
}



void mx_planner_free(planner *pl)
{
    free(pl->cands);
    mx_rules_free(pl->rules, pl->nrules);
    free(pl->stats);
    free(pl->eligible);
    free(pl->allowed);
    free(pl->len);
    free(pl->sse);
    free(pl->entry);
    free(pl->ext);
    if (pl->imp)
        for (size_t i = 0; i < pl->m->ntensors; i++) mx_importance_free(&pl->imp[i]);
    free(pl->imp);
    free(pl->escale);
    free(pl->wsumsq);
    json_decref(pl->im_record);
    mx_measurement_free(pl->meas);
    free(pl->mw);
    mx_pool_destroy(pl->pool);
}

mixq_status mx_planner_importance(planner *pl, mixq_error *err)
{
    const mixq_plan_options *o = pl->o;
    if (!o->imatrix_path) return MIXQ_OK;
    size_t n = pl->m->ntensors;
    mx_imatrix *im = NULL;
    mixq_status s = mx_imatrix_read(o->imatrix_path, &im, err);
    if (s != MIXQ_OK) return s;
    pl->imp = calloc(n ? n : 1, sizeof *pl->imp);
    pl->escale = malloc((n ? n : 1) * sizeof *pl->escale);
    pl->wsumsq = malloc((n ? n : 1) * sizeof *pl->wsumsq);
    pl->im_record = mx_imatrix_record(im, o->imatrix_path, o->imatrix_weighting);
    if (!pl->imp || !pl->escale || !pl->wsumsq || !pl->im_record) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    char b[MX_SHOWN_BUF];
    const char *shown = mx_shown(o->imatrix_path, b);
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        pl->escale[i] = 1.0;
        pl->wsumsq[i] = NAN;
        if (!pl->eligible[i]) continue;
        const st_tensor *t = &pl->m->tensors[i];
        const mx_role_info *r = &pl->p->t[i].role;
        bool missing;
        s = mx_importance_for(im, shown, t, r, o->imatrix_weighting, &pl->imp[i], &missing, err);
        if (s != MIXQ_OK || !missing) continue;
        uint64_t rows = 1, row_length;
        mx_tensor_rows(t, &rows, &row_length);
        if (r->token_embedding && !r->tied) { /* its error reaches the model one row per token */
            pl->escale[i] = rows ? 1.0 / (double)rows : 1.0;
            mx_warn(o->warning, o->warning_ctx,
                    "%s has no entry for tensor \"%s\": its scales are unweighted and its error counts per token "
                    "(/ %llu rows)", shown, t->name, (unsigned long long)rows);
        } else {
            mx_warn(o->warning, o->warning_ctx, "%s has no entry for tensor \"%s\": its scales and error are unweighted",
                    shown, t->name);
        }
    }
    mx_imatrix_free(im);
    return s;
}

/* Measures the wanted candidates of tensor i (sse: its row of pl->sse, or any array of nc), with its importance. */
static mixq_status measure_tensor(planner *pl, size_t i, const mx_cand *cands, size_t nc, const bool *want, double *sse,
                                  mixq_error *err)
{
    const st_tensor *t = &pl->m->tensors[i];
    const mx_importance *imp = pl->imp && pl->imp[i].a ? &pl->imp[i] : NULL;
    double wsq = 0;
    mixq_status s = mx_measure_errors_imp(pl->m, t, cands, nc, want, &pl->stats[i], pl->o->rtn != 0, imp,
                                          pl->o->measure_sample, pl->o->cancel, sse, &wsq, err);
    if (s != MIXQ_OK || !pl->imp) return s;
    for (size_t c = 0; c < nc; c++)
        if (want[c]) sse[c] *= pl->escale[i];
    if (imp && wsq > 0) pl->wsumsq[i] = wsq;
    return s;
}

/* Measures (once) the squared error of tensor i as candidate c. */
mixq_status mx_planner_measure(planner *pl, size_t i, size_t c, mixq_error *err)
{
    double *slot = &pl->sse[i * pl->nc + c];
    if (!isnan(*slot)) return MIXQ_OK;
    const st_tensor *t = &pl->m->tensors[i];
    double v;
    bool want = true;
    mixq_status s = measure_tensor(pl, i, &pl->cands[c], 1, &want, &v, err);
    st_release(pl->m, t);
    if (s != MIXQ_OK) return s;
    *slot = v;
    return MIXQ_OK;
}

/* Work shared by the measuring threads. */
typedef struct measure_job {
    planner *pl;
    const bool *need;     /* [tensor * nc + c] */
    const size_t *list;   /* the eligible tensors */
    mixq_status *status;  /* per list entry */
    mixq_error *errs;     /* per list entry */
    pthread_mutex_t mu;   /* progress */
    size_t done, total;
} measure_job;

/*
 * Measures every needed candidate of tensor list[k] in one pass over its rows
 * (the same sums as one candidate at a time); each call writes only its own
 * slots, then lets the tensor's pages go.
 */
static void measure_one(void *ctx, size_t k)
{
    measure_job *mj = ctx;
    planner *pl = mj->pl;
    size_t nc = pl->nc, i = mj->list[k];
    const st_tensor *t = &pl->m->tensors[i];
    mixq_status s = MIXQ_OK;
    bool *want = malloc(nc * sizeof *want);
    if (!want) {
        s = mx_err(&mj->errs[k], MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
    } else {
        for (size_t c = 0; c < nc; c++) want[c] = mj->need[i * nc + c] && isnan(pl->sse[i * nc + c]);
        s = measure_tensor(pl, i, pl->cands, nc, want, &pl->sse[i * nc], &mj->errs[k]);
        free(want);
    }
    st_release(pl->m, t); /* planning keeps only the tensors in flight resident */
    mj->status[k] = s;
    if (s == MIXQ_OK && pl->o->progress) {
        pthread_mutex_lock(&mj->mu);
        mj->done++;
        pl->o->progress(pl->o->progress_ctx, mj->done, mj->total, t->name);
        pthread_mutex_unlock(&mj->mu);
    }
}

/*
 * Measures every needed (tensor, candidate) of the eligible tensors on the
 * worker pool (o->threads, 0 = online CPUs); results do not depend on the
 * thread count, and the error reported is the first tensor's in file order.
 */
mixq_status mx_planner_measure_all(planner *pl, const bool *need, mixq_error *err)
{
    size_t n = pl->m->ntensors, total = 0;
    for (size_t i = 0; i < n; i++) total += pl->eligible[i];
    measure_job mj = {.pl = pl, .need = need, .total = total};
    size_t *list = malloc((total ? total : 1) * sizeof *list);
    mj.status = calloc(total ? total : 1, sizeof *mj.status);
    mj.errs = calloc(total ? total : 1, sizeof *mj.errs);
    if (!list || !mj.status || !mj.errs) {
        free(list);
        free(mj.status);
        free(mj.errs);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    for (size_t i = 0, k = 0; i < n; i++)
        if (pl->eligible[i]) list[k++] = i;
    mj.list = list;
    pthread_mutex_init(&mj.mu, NULL);
    mx_pool_run(pl->pool, total, measure_one, &mj);
    pthread_mutex_destroy(&mj.mu);
    mixq_status s = MIXQ_OK;
    for (size_t k = 0; k < total && s == MIXQ_OK; k++)
        if (mj.status[k] != MIXQ_OK) {
            s = mj.status[k];
            if (err) *err = mj.errs[k];
        }
    free(list);
    free(mj.status);
    free(mj.errs);
    return s;
}

/* Work of the statistics threads. */
typedef struct stats_job {
    planner *pl;
    const char *in_path;
    bool moments;         /* std, kurtosis and outliers too (sensitivity) */
    mixq_status *status;  /* per tensor */
    mixq_error *errs;     /* per tensor */
} stats_job;

/* Statistics of tensor i (one task computes all of them, as inline), then lets its pages go. */
static void stats_one(void *ctx, size_t i)
{
    stats_job *sj = ctx;
    planner *pl = sj->pl;
    const st_tensor *t = &pl->m->tensors[i];
    if (pl->o->cancel && *pl->o->cancel) {
        sj->status[i] = mx_err(&sj->errs[i], MIXQ_E_CANCELLED, "%s: planning interrupted", sj->in_path);
        return;
    }
    sj->status[i] = mx_measure_stats(pl->m, t, sj->moments, &pl->stats[i], &sj->errs[i]);
    st_release(pl->m, t);
}

/* The statistics of every tensor on the pool; the error reported is the first tensor's in file order. */
mixq_status mx_planner_stats_all(planner *pl, const char *in_path, mixq_error *err)
{
    size_t n = pl->m->ntensors;
    stats_job sj = {.pl = pl, .in_path = in_path, .moments = pl->o->strategy == MIXQ_STRATEGY_SENSITIVITY};
    sj.status = calloc(n ? n : 1, sizeof *sj.status);
    sj.errs = calloc(n ? n : 1, sizeof *sj.errs);
    mixq_status s = MIXQ_OK;
    if (!sj.status || !sj.errs) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    } else {
        mx_pool_run(pl->pool, n, stats_one, &sj);
        for (size_t i = 0; i < n && s == MIXQ_OK; i++)
            if (sj.status[i] != MIXQ_OK) {
                s = sj.status[i];
                if (err) *err = sj.errs[i];
            }
    }
    free(sj.status);
    free(sj.errs);
    return s;
}

/* Squared error of a tensor stored as an arbitrary (qt, group) (rules). */
mixq_status mx_planner_measure_fixed(planner *pl, size_t i, const mx_cand *c, double *out, mixq_error *err)
{
    const st_tensor *t = &pl->m->tensors[i];
    if (c->qt == qtype_for_plain_dtype(t->dtype) || c->qt->id == MIXQ_QT_RAW || !st_dtypes[t->dtype].is_float) {
        *out = 0.0; /* stored exactly */
        return MIXQ_OK;
    }
    for (size_t k = 0; k < pl->nc; k++)
        if (pl->cands[k].qt == c->qt && pl->cands[k].group_size == c->group_size) {
            mixq_status s = mx_planner_measure(pl, i, k, err);
            *out = pl->sse[i * pl->nc + k];
            return s;
        }
    bool want = true;
    *out = 0;
    mixq_status s = measure_tensor(pl, i, c, 1, &want, out, err);
    st_release(pl->m, t);
    return s;
}

/* Sets entry i to (qt, group) and its stored bytes; errors if the layout is impossible. */
mixq_status mx_planner_assign(planner *pl, size_t i, const qtype_desc *qt, unsigned group, const char *reason,
                              mixq_error *err)
{
    const st_tensor *t = &pl->m->tensors[i];
    mx_plan_entry *e = &pl->p->t[i];
    mx_cand c = {qt, qt->quantized ? group : 0};
    qlayout lay;
    if (!mx_cand_layout(&c, t, &lay))
        return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": cannot be stored as %s (size overflows)", file_of(pl->m, t),
                      t->name, qt->name);
    e->qt = qt;
    e->group_size = c.group_size;
    e->nbytes = lay.total;
    e->reason = reason;
    return MIXQ_OK;
}

/* What a quantized type cannot hold, for messages. */
static const char *values_problem(const mx_tstats *st)
{
    return st->quantizable ? NULL : "NaN, infinities or values beyond ±65504";
}

const char *mx_plan_fixed_reason(const st_tensor *t, const mx_role_info *r, const mx_tstats *st, bool quantize_1d)
{
    if (!st_dtypes[t->dtype].is_float) return "non-float";
    if (t->n_elements == 0) return "empty";
    if (r->buffer) return "buffer";
    if (t->ndim == 0) return "scalar";
    if (t->ndim == 1 && !quantize_1d) return "1-D";
    if (values_problem(st)) return "values";
    return NULL;
}

/* Step 1: rules and fixed tensors; marks the rest eligible. */
mixq_status mx_planner_settle_fixed(planner *pl, mixq_error *err)
{
    const st_model *m = pl->m;
    const mixq_plan_options *o = pl->o;
    for (size_t i = 0; i < m->ntensors; i++) {
        const st_tensor *t = &m->tensors[i];
        mx_plan_entry *e = &pl->p->t[i];
        const qtype_desc *keep = qtype_for_plain_dtype(t->dtype);
        bool is_float = st_dtypes[t->dtype].is_float;
        /* the last matching rule; a wildcard rule skips tensors its type cannot store (integer, empty,
           non-finite), a rule naming one tensor exactly is an error there */
        const rule *r = NULL;
        for (size_t k = pl->nrules; k-- > 0 && !r;) {
            const rule *c = &pl->rules[k];
            if (fnmatch(c->glob, t->name, 0) != 0) continue;
            bool wild = strpbrk(c->glob, "*?[") != NULL;
            if (wild && !c->keep && ((!is_float && c->cand.qt != keep) ||
                                     (c->cand.qt->quantized && (t->n_elements == 0 || values_problem(&pl->stats[i])))))
                continue;
            r = c;
        }
        mixq_status s;
        if (r) {
            if (r->keep) {
                s = mx_planner_assign(pl, i, keep, 0, "keep", err);
            } else {
                const qtype_desc *qt = r->cand.qt;
                if (!is_float && qt != keep)
                    return mx_err(err, MIXQ_E_INVALID_ARG,
                                  "%s: tensor \"%s\" has dtype %s; plan_options.rules '%s' asks for %s but only its source "
                                  "type can store it (use keep)", file_of(m, t), t->name, st_dtypes[t->dtype].name,
                                  r->glob, qt->name);
                if (qt->quantized && t->n_elements == 0)
                    return mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\" has no elements; plan_options.rules '%s' cannot "
                                  "make it %s", file_of(m, t), t->name, r->glob, qt->name);
                if (qt->quantized && values_problem(&pl->stats[i]))
                    return mx_err(err, MIXQ_E_DATA, "%s: tensor \"%s\" holds %s, which %s cannot store (plan_options.rules '%s')",
                                  file_of(m, t), t->name, values_problem(&pl->stats[i]), qt->name, r->glob);
                s = mx_planner_assign(pl, i, qt, r->cand.group_size, "rule", err);
            }
            if (s != MIXQ_OK) return s;
            continue;
        }
        const char *why = mx_plan_fixed_reason(t, &e->role, &pl->stats[i], o->quantize_1d != 0);
        if (why) {
            s = mx_planner_assign(pl, i, keep, 0, why, err);
            if (s != MIXQ_OK) return s;
            continue;
        }
        pl->eligible[i] = true;
    }
    return MIXQ_OK;
}



/* Bytes of tensor i as a spec; UINT64_MAX if impossible. */
static uint64_t bytes_as(const planner *pl, size_t i, const mx_cand *c)
{
    qlayout lay;
    return mx_cand_layout(c, &pl->m->tensors[i], &lay) ? lay.total : UINT64_MAX;
}

/* Step 2: layouts of every candidate for eligible tensors, and which are allowed (min/max by nominal bits). */
mixq_status mx_planner_layouts(planner *pl, mixq_error *err)
{
    for (size_t i = 0; i < pl->m->ntensors; i++) {
        if (!pl->eligible[i]) continue;
        double lo = pl->has_min ? mx_cand_nominal_bits(&pl->min_c) : 0;
        double hi = pl->has_max ? mx_cand_nominal_bits(&pl->max_c) : INFINITY;
        bool any = false;
        for (size_t c = 0; c < pl->nc; c++) {
            uint64_t b = bytes_as(pl, i, &pl->cands[c]);
            pl->len[i * pl->nc + c] = b;
            double nb = mx_cand_nominal_bits(&pl->cands[c]);
            bool ok = b != UINT64_MAX && nb >= lo && nb <= hi;
            pl->allowed[i * pl->nc + c] = ok;
            any |= ok;
        }
        if (!any && pl->o->strategy != MIXQ_STRATEGY_UNIFORM) {
            const st_tensor *t = &pl->m->tensors[i];
            return mx_err(err, MIXQ_E_INVALID_ARG,
                          "%s: tensor \"%s\": no candidate type lies between plan_options.min_type and plan_options.max_type "
                          "(%.4g to %.4g nominal bits per weight)", file_of(pl->m, t), t->name, lo, hi);
        }
    }
    return MIXQ_OK;
}

/*
 * The share of the model's output error that a relative error of tensor r
 * makes (--weights share): the vocabulary head's error lands in the logits
 * whole, and the token embedding's in the whole residual stream that every
 * block reads (its row is all of it before the first block); any other
 * matrix's lands in the residual stream as one of its 2 x blocks + 1 writes
 * (each block's attention and MLP outputs; a block's inner matrices reach it
 * through those).
 */
double mx_output_share(const mx_role_info *r)
{
    bool whole = r->role == MX_ROLE_OUTPUT || r->token_embedding || r->tied;
    return whole ? 2.0 * (r->blocks > 0 ? r->blocks : 0) + 1.0 : 1.0;
}

/* The weight of tensor i's squared error in the objective. */
double mx_planner_weight_of(const planner *pl, size_t i)
{
    double w = mx_planner_role_weight(pl, i);
    if (pl->mw) w = isfinite(pl->mw[i]) ? pl->mw[i] : w * pl->mw_scale;
    if (pl->ext) w *= pl->ext[i];
    return w;
}

/* The role (or flat) weight of tensor i, without the sensitivity file or a measurement. */
double mx_planner_role_weight(const planner *pl, size_t i)
{
    double w = 1.0;
    mixq_plan_weights wt = pl->weights;
    if (wt == MIXQ_WEIGHTS_ROLE || wt == MIXQ_WEIGHTS_SHARE) {
        const mx_tstats *st = &pl->stats[i];
        const mx_role_info *r = &pl->p->t[i].role;
        /* role: prior per weight (x n) of the relative error; share: output share of the relative error */
        w = wt == MIXQ_WEIGHTS_ROLE ? mx_role_prior(r) : mx_output_share(r);
        double n = wt == MIXQ_WEIGHTS_ROLE ? (double)st->n : 1.0;
        /* per unit of the tensor's squared sum; with importance, of its importance-weighted one */
        double ms = pl->wsumsq && !isnan(pl->wsumsq[i]) ? pl->wsumsq[i] : st->sumsq;
        if (pl->escale) ms *= pl->escale[i];
        if (ms > 0) w *= n / ms;
    }
    return w;
}


/* Nominal bits per weight of a candidate, for ordering the ladder. */
double mx_cand_nominal_bits(const mx_cand *c)
{
    if (!c->qt->quantized) return c->qt->code_bits;
    return qtype_nominal_bpw(c->qt, c->group_size ? c->group_size : 4096);
}
