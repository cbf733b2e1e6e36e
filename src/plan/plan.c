/*
 * plan.c - the planner: which storage type each tensor gets (docs/PLANNER.md).
 *
 * Every tensor is classified (plan_roles.c); rules (--override/--keep) and
 * the fixed cases (integer tensors, 1-D tensors, buffers) are settled first;
 * the rest are measured (plan_measure.c: exact bytes and squared error of
 * each candidate with the converter's kernels) and assigned by the strategy:
 * uniform, sensitivity (score -> thresholds -> a step on the candidate
 * ladder) or budget (multiple-choice knapsack, plan_budget.c).
 *
 * This file runs the planning (mx_plan_build, mixq_plan_create); the steps
 * live in plan_spec.c, plan_sensitivity_file.c, plan_steps.c and
 * plan_strategy.c, the plan object in plan_object.c (plan_internal.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "plan/plan.h"
#include "plan/plan_measure.h"
#include "kernels/simd.h"
#include "common/workpool.h"
#include "plan/plan_internal.h"
#include "plan/plan_options.h"

/* Header slack when the converter's exact options are not known (standalone planning). */
#define META_SLACK 512u

void mx_plan_options_defaults(mixq_plan_options *o)
{
    memset(o, 0, sizeof *o);
    o->strategy = MIXQ_STRATEGY_UNIFORM;
    o->type = MIXQ_QT_RAW;
    o->weights = MIXQ_WEIGHTS_DEFAULT;
    o->thresholds[0] = 0.5;
    o->thresholds[1] = 2.0;
    o->thresholds[2] = 4.0;
    o->measure_sample = MIXQ_MEASURE_SAMPLE_DEFAULT;
}


/*
 * The plan's "weights": role, flat or share, measured with a measurement file
 * (which replaces them), "+file" with a sensitivity file, "+imatrix" with an
 * importance matrix.
 */
static const char *const weights_names[4][2][2] = {
    {{"role", "role+imatrix"}, {"role+file", "role+file+imatrix"}},
    {{"flat", "flat+imatrix"}, {"flat+file", "flat+file+imatrix"}},
    {{"share", "share+imatrix"}, {"share+file", "share+file+imatrix"}},
    {{"measured", "measured+imatrix"}, {"measured+file", "measured+file+imatrix"}}};

static const char *weights_name(mixq_plan_weights w, bool measured, bool file, bool imatrix)
{
    return weights_names[measured ? 3 : w][file][imatrix];
}

bool mx_plan_weights_known(const char *v)
{
    for (size_t i = 0; i < sizeof weights_names / sizeof weights_names[0][0][0]; i++)
        if (!strcmp((&weights_names[0][0][0])[i], v)) return true;
    return false;
}

/* Joins the candidates into p->candidates. */
static bool record_candidates(planner *pl)
{
    size_t cap = pl->nc * 32 + 1, pos = 0;
    char *s = malloc(cap);
    if (!s) return false;
    s[0] = '\0';
    for (size_t c = 0; c < pl->nc; c++) {
        char b[32];
        mx_spec_string(&pl->cands[c], b, sizeof b);
        pos += (size_t)snprintf(s + pos, cap - pos, "%s%s", c ? "," : "", b);
    }
    free(pl->p->candidates);
    pl->p->candidates = s;
    return true;
}

static const char *const strategy_names[] = {"uniform", "sensitivity", "budget"};

mixq_status mx_plan_build(const st_model *m, const char *in_path, const mixq_plan_options *o, json_t *meta,
                          mixq_plan **out, mixq_error *err)
{
    *out = NULL;
    if ((unsigned)o->strategy > MIXQ_STRATEGY_BUDGET)
        return mx_err(err, MIXQ_E_INVALID_ARG, "unknown strategy %d", (int)o->strategy);
    if ((unsigned)o->weights > MIXQ_WEIGHTS_DEFAULT)
        return mx_err(err, MIXQ_E_INVALID_ARG, "unknown weights %d", (int)o->weights);
    bool budget = o->strategy == MIXQ_STRATEGY_BUDGET;
    if (budget && (o->target_bpw > 0) == (o->target_size > 0))
        return mx_err(err, MIXQ_E_INVALID_ARG, "the budget strategy needs exactly one of plan_options.target_bpw and plan_options.target_size");
    if (!budget && (o->target_bpw > 0 || o->target_size > 0))
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.target_bpw and plan_options.target_size need plan_options.strategy budget");
    if (budget && o->target_bpw > 0 && !(o->target_bpw <= 64))
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.target_bpw %g is out of range (0 to 64)", o->target_bpw);
    if (o->measure_sample > (uint64_t)INT64_MAX)
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.measure_sample %llu is too large (0 measures every row)",
                      (unsigned long long)o->measure_sample);
    if (o->target_bpw < 0 || isnan(o->target_bpw))
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.target_bpw must be positive");
    const double *th = o->thresholds;
    if (!(th[0] > 0 && th[0] <= th[1] && th[1] <= th[2] && isfinite(th[2])))
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.thresholds must be positive and increasing (low,medium,high)");
    if (o->group_size != 0 && o->group_size != MIXQ_GROUP_PER_ROW && (o->group_size & (o->group_size - 1)) != 0)
        return mx_err(err, MIXQ_E_INVALID_ARG, "group size %u is not a power of two", o->group_size);

    planner pl;
    memset(&pl, 0, sizeof pl);
    pl.m = m;
    pl.o = o;
    size_t n = m->ntensors;
    mixq_status s = mx_plan_parse_candidates(o, &pl.cands, &pl.nc, err);
    if (s == MIXQ_OK) s = mx_plan_parse_rules(o, &pl.rules, err);
    pl.nrules = o->n_rules;
    if (s == MIXQ_OK && o->min_type) {
        pl.has_min = true;
        s = mx_spec_parse(o->min_type, strlen(o->min_type), o->group_size, "plan_options.min_type", &pl.min_c, err);
    }
    if (s == MIXQ_OK && o->max_type) {
        pl.has_max = true;
        s = mx_spec_parse(o->max_type, strlen(o->max_type), o->group_size, "plan_options.max_type", &pl.max_c, err);
    }
    if (s == MIXQ_OK && o->strategy != MIXQ_STRATEGY_BUDGET) {
        mixq_qtype bt = o->type != MIXQ_QT_RAW ? o->type
                        : o->strategy == MIXQ_STRATEGY_UNIFORM ? MIXQ_QT_INT8 : MIXQ_QT_INT4;
        const qtype_desc *qt = qtype_get(bt);
        if (!qt || !mx_qtype_has_kernels(qt)) {
            s = mx_err(err, MIXQ_E_INVALID_ARG, "type %d is not available in this build", (int)bt);
        } else {
            pl.base = (mx_cand){qt, mx_spec_default_group(qt, o->group_size)};
            if (qt->quantized && o->group_size != 0 && o->group_size != MIXQ_GROUP_PER_ROW &&
                !qtype_group_ok(qt, o->group_size))
                s = mx_err(err, MIXQ_E_INVALID_ARG, "group size %u is not allowed for %s: use a power of two from %u to %u",
                           o->group_size, qt->name, qt->group_min, qt->group_max);
            /* the base type is always on the ladder (and measured like a candidate) */
            bool found = false;
            for (size_t c = 0; c < pl.nc; c++)
                found |= pl.cands[c].qt == pl.base.qt && pl.cands[c].group_size == pl.base.group_size;
            if (!found) pl.cands[pl.nc++] = pl.base;
        }
    }
    if (s == MIXQ_OK) {
        pl.p = mx_plan_alloc(n);
        pl.stats = calloc(n ? n : 1, sizeof *pl.stats);
        pl.eligible = calloc(n ? n : 1, sizeof *pl.eligible);
        pl.allowed = calloc(n * pl.nc + 1, sizeof *pl.allowed);
        pl.len = calloc(n * pl.nc + 1, sizeof *pl.len);
        pl.sse = malloc((n * pl.nc + 1) * sizeof *pl.sse);
        pl.entry = calloc(n * pl.nc + 1, sizeof *pl.entry);
        if (!pl.p || !pl.stats || !pl.eligible || !pl.allowed || !pl.len || !pl.sse || !pl.entry)
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        else
            for (size_t k = 0; k < n * pl.nc; k++) pl.sse[k] = NAN;
    }
    if (s == MIXQ_OK) { /* the statistics and measuring threads (o->threads, 0 = online CPUs) */
        unsigned nt = o->threads > 0 ? (unsigned)o->threads : mx_online_cpus();
        if (nt > n) nt = n ? (unsigned)n : 1;
        pl.pool = nt > 1 ? mx_pool_create(nt) : NULL; /* NULL (or no resources): inline */
    }
    mixq_plan *p = pl.p;
    /* names, shapes, roles; then the statistics of every tensor (in parallel) */
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        const st_tensor *t = &m->tensors[i];
        mx_plan_entry *e = &p->t[i];
        e->name = strdup(t->name);
        if (!e->name) {
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
            break;
        }
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof e->shape);
        e->n_elements = t->n_elements;
        e->dtype = (int)t->dtype;
        mx_role_classify(t->name, t->ndim, t->shape, &e->role);
    }
    if (s == MIXQ_OK) s = mx_planner_stats_all(&pl, in_path, err);
    for (size_t i = 0; i < n && s == MIXQ_OK; i++)
        p->t[i].sumsq = st_dtypes[m->tensors[i].dtype].is_float ? pl.stats[i].sumsq : NAN;
    if (s == MIXQ_OK) {
        mx_role_info *infos = malloc((n ? n : 1) * sizeof *infos);
        if (!infos) {
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < n; i++) infos[i] = p->t[i].role;
            mx_roles_finish(infos, n);
            for (size_t i = 0; i < n; i++) p->t[i].role = infos[i];
            free(infos);
        }
    }
    if (s == MIXQ_OK && o->sensitivity_path) {
        pl.ext = malloc((n ? n : 1) * sizeof *pl.ext);
        if (!pl.ext) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        else s = mx_plan_load_sensitivity(o->sensitivity_path, p->t, n, pl.ext, err);
    }
    if (s == MIXQ_OK) s = mx_planner_settle_fixed(&pl, err);
    if (s == MIXQ_OK) s = mx_planner_importance(&pl, err);
    /* the default weighting: the one measured best for this case (PLANNER.md §11) */
    pl.weights = o->weights != MIXQ_WEIGHTS_DEFAULT ? o->weights
                 : budget && !pl.imp                ? MIXQ_WEIGHTS_SHARE
                                                    : MIXQ_WEIGHTS_ROLE;
    if (s == MIXQ_OK) s = mx_planner_layouts(&pl, err);
    if (s == MIXQ_OK) s = mx_planner_load_measurement(&pl, err);
    if (s == MIXQ_OK && (!mx_plan_set_str(&p->strategy, strategy_names[o->strategy]) ||
                         !mx_plan_set_str(&p->weights, weights_name(pl.weights, pl.meas != NULL, pl.ext != NULL,
                                                                    pl.imp != NULL)) ||
                         (o->strategy != MIXQ_STRATEGY_UNIFORM && !record_candidates(&pl))))
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    if (s == MIXQ_OK) {
        p->target_bpw = budget ? o->target_bpw : 0;
        p->target_size = budget ? o->target_size : 0;
        p->rtn = o->rtn != 0;
        p->measure_sample = o->measure_sample;
    }

    /* the metadata the converter will write, for the header bound */
    json_t *meta_base = meta ? json_incref(meta) : NULL;
    uint64_t slack = 0;
    if (s == MIXQ_OK && !meta_base) {
        /* as the converter's defaults (mixq_convert_options_init): int8, the search */
        meta_base = st_header_meta(m, MIXQ_QT_INT8, o->group_size, o->quantize_1d != 0, true);
        slack = META_SLACK;
        /* the converter given the same importance matrix records it */
        if (meta_base && pl.im_record && json_object_set(meta_base, "imatrix", pl.im_record)) {
            json_decref(meta_base);
            meta_base = NULL;
        }
        if (!meta_base) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }

    if (s == MIXQ_OK) {
        switch (o->strategy) {
        case MIXQ_STRATEGY_UNIFORM: {
            size_t bc = 0;
            for (size_t c = 0; c < pl.nc; c++)
                if (pl.cands[c].qt == pl.base.qt && pl.cands[c].group_size == pl.base.group_size) bc = c;
            bool *need = calloc(n * pl.nc + 1, sizeof *need);
            if (!need) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
            for (size_t i = 0; s == MIXQ_OK && i < n; i++) need[i * pl.nc + bc] = true;
            if (s == MIXQ_OK) s = mx_planner_measure_all(&pl, need, err);
            free(need);
            for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
                if (!pl.eligible[i]) continue;
                s = mx_planner_assign(&pl, i, pl.base.qt, pl.base.group_size, "strategy", err);
                p->t[i].est_error = pl.sse[i * pl.nc + bc];
            }
            break;
        }
        case MIXQ_STRATEGY_SENSITIVITY: s = mx_plan_run_sensitivity(&pl, err); break;
        case MIXQ_STRATEGY_BUDGET: s = mx_plan_run_budget(&pl, meta_base, slack, err); break;
        }
    }
    if (s == MIXQ_OK) s = mx_planner_measured_weights(&pl, err); /* (uniform: not yet) */
    /* errors of the fixed tensors, weights, totals */
    double werr = 0, pred = 0;
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        mx_plan_entry *e = &p->t[i];
        if (!pl.eligible[i]) {
            mx_cand c = {e->qt, e->group_size};
            s = mx_planner_measure_fixed(&pl, i, &c, &e->est_error, err);
        }
        if (pl.escale && pl.eligible[i]) /* relative errors in the units of the importance-weighted errors */
            e->sumsq = (pl.wsumsq && !isnan(pl.wsumsq[i]) ? pl.wsumsq[i] : e->sumsq) * pl.escale[i];
        if (isnan(e->weight)) e->weight = st_dtypes[m->tensors[i].dtype].is_float ? mx_planner_weight_of(&pl, i) : 0.0;
        if (pl.eligible[i]) werr += e->weight * e->est_error;
        double pk = e->weight * e->est_error; /* every tensor's predicted KLD, fixed ones included */
        if (isfinite(pk)) pred += pk;
    }
    if (s == MIXQ_OK && !budget) p->weighted_error = werr;
    if (s == MIXQ_OK && pl.meas) p->predicted_kld = pred;
    if (s == MIXQ_OK) {
        json_t *full = json_deep_copy(meta_base);
        json_t *pm = mx_plan_header_meta(p, false);
        if (!full || !pm || json_object_set_new(full, "plan", pm)) {
            json_decref(full);
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        } else {
            uint64_t fs = mx_plan_file_size(p, m, NULL, full);
            json_decref(full);
            p->file_bytes = fs ? fs + slack : 0;
            if (budget && o->target_size > 0 && p->file_bytes > o->target_size)
                s = mx_err(err, MIXQ_E_RANGE, "internal error: the plan's file size %llu exceeds the target %llu",
                           (unsigned long long)p->file_bytes, (unsigned long long)o->target_size);
        }
    }
    json_decref(meta_base);
    mx_planner_free(&pl);
    if (s != MIXQ_OK) {
        mixq_plan_free(p);
        return s;
    }
    *out = p;
    return MIXQ_OK;
}

mixq_status mixq_plan_create(const char *in_path, const mixq_plan_options *opts, mixq_plan **out,
                             mixq_error *err)
{
    mixq_plan_options defaults;
    if (!out) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_plan_create: out is required");
    *out = NULL;
    mixq_status so = mx_plan_options_take(&opts, &defaults, err);
    if (so != MIXQ_OK) return so;
    if (!in_path) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_plan_create: an input path is required");
    st_model *m = NULL;
    mixq_status s = st_open(in_path, &m, err);
    if (s != MIXQ_OK) return s;
    s = st_stored_files(m, err); /* the converter stores them: the header bound counts them */
    if (s == MIXQ_OK) s = mx_plan_build(m, in_path, opts, NULL, out, err);
    if (s == MIXQ_OK) { /* what mixq_plan_save must never write over */
        mixq_plan *p = *out;
        p->inputs = calloc(m->nfiles + 2, sizeof *p->inputs);
        if (!p->inputs) {
            s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", in_path);
            mixq_plan_free(p);
            *out = NULL;
        } else {
            const char *extra[2] = {m->index_path, opts->sensitivity_path};
            for (size_t i = 0; i < m->nfiles + 2; i++)
                if (mx_file_key_of(i < m->nfiles ? m->files[i].path : extra[i - m->nfiles],
                                   &p->inputs[p->ninputs]) == 0)
                    p->ninputs++;
        }
    }
    if (s != MIXQ_OK && err && !strstr(err->message, in_path)) {
        char *msg = strdup(err->message);
        if (msg) mx_err(err, s, "%s: %s", in_path, msg);
        free(msg);
    }
    st_close(m);
    return s;
}
