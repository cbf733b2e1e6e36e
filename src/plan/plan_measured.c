/*
 * plan_measured.c - error weights from a measurement file (--measurement,
 * docs/PLANNER.md §10): w_i = kld_i / e_i(T), so that w_i e_i(c) predicts
 * the KL divergence tensor i adds as candidate c.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "plan/plan_internal.h"
#include "plan/plan_measurement.h"

mixq_status mx_planner_load_measurement(planner *pl, mixq_error *err)
{
    const char *path = pl->o->measurement_path;
    if (!path) return MIXQ_OK;
    char b[MX_SHOWN_BUF];
    const char *shown = mx_shown(path, b);
    mx_measurement *ms = NULL;
    mixq_status s = mx_measurement_read(path, &ms, err);
    if (s != MIXQ_OK) return s;
    pl->meas = ms;
    const st_model *m = pl->m;
    /* every tensor it names must be one of this checkpoint's, and the whole header the one measured */
    for (size_t k = 0; k < ms->n; k++)
        if (!st_find(m, ms->t[k].name)) {
            char nb[MX_SHOWN_BUF];
            return mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\" is not in this checkpoint (a measurement of another model)",
                          shown, mx_shown(ms->t[k].name, nb));
        }
    char id[17];
    mx_model_identity(m, id);
    if (strcmp(id, ms->model_xxh3))
        return mx_err(err, MIXQ_E_INVALID_ARG,
                      "%s: measured on another model (its tensors' names, shapes and dtypes hash to %s, this "
                      "checkpoint's to %s)", shown, ms->model_xxh3, id);
    char norm[48];
    s = mx_measure_reference(ms->reference, &pl->meas_ref, norm, sizeof norm, err);
    if (s != MIXQ_OK) {
        char *msg = strdup(err ? err->message : "");
        s = mx_err(err, s, "%s: %s", shown, msg ? msg : "bad reference type");
        free(msg);
        return s;
    }
    if (ms->rtn != (pl->o->rtn != 0))
        mx_warn(pl->o->warning, pl->o->warning_ctx, "%s was measured with%s plain min/max scales, this plan %s them",
                shown, ms->rtn ? "" : "out", pl->o->rtn ? "uses" : "does not use");
    bool im_here = pl->im_record != NULL, im_there = ms->imatrix_xxh3[0] != 0;
    if (im_here != im_there)
        mx_warn(pl->o->warning, pl->o->warning_ctx,
                "%s was measured %s an importance matrix and this plan is made %s one: the predicted KLD is less exact",
                shown, im_there ? "with" : "without", im_here ? "with" : "without");
    const char *base = strrchr(path, '/');
    if (!mx_plan_set_str(&pl->p->meas_file, base ? base + 1 : path)) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    snprintf(pl->p->meas_xxh3, sizeof pl->p->meas_xxh3, "%016" PRIx64, ms->file_xxh3);
    return MIXQ_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The planner's error of tensor i as the reference type (a candidate's measurement if it is one). */
static mixq_status reference_error(planner *pl, size_t i, double *out, mixq_error *err)
{
    for (size_t c = 0; c < pl->nc; c++)
        if (pl->cands[c].qt == pl->meas_ref.qt && pl->cands[c].group_size == pl->meas_ref.group_size) {
            mixq_status s = mx_planner_measure(pl, i, c, err);
            *out = pl->sse[i * pl->nc + c];
            return s;
        }
    return mx_planner_measure_fixed(pl, i, &pl->meas_ref, out, err);
}

mixq_status mx_planner_measured_weights(planner *pl, mixq_error *err)
{
    if (!pl->meas || pl->mw) return MIXQ_OK;
    size_t n = pl->m->ntensors, nr = 0;
    double *mw = malloc((n ? n : 1) * sizeof *mw), *ratio = malloc((n ? n : 1) * sizeof *ratio);
    if (!mw || !ratio) {
        free(mw);
        free(ratio);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    mixq_status s = MIXQ_OK;
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        mw[i] = NAN;
        if (!pl->eligible[i]) continue;
        const mx_meas_tensor *mt = mx_measurement_find(pl->meas, pl->m->tensors[i].name);
        if (!mt) continue;
        double e = 0;
        s = reference_error(pl, i, &e, err);
        if (s != MIXQ_OK || !(e > 0) || !isfinite(e)) continue; /* stored exactly as the reference: no scale */
        mw[i] = mt->kld / e;
        double rw = mx_planner_role_weight(pl, i);
        if (rw > 0 && isfinite(rw)) ratio[nr++] = mw[i] / rw;
    }
    if (s == MIXQ_OK) {
        qsort(ratio, nr, sizeof *ratio, cmp_double);
        pl->mw_scale = nr ? (nr % 2 ? ratio[nr / 2] : 0.5 * (ratio[nr / 2 - 1] + ratio[nr / 2])) : 1.0;
        char b[MX_SHOWN_BUF];
        for (size_t i = 0; i < n; i++)
            if (pl->eligible[i] && isnan(mw[i]))
                mx_warn(pl->o->warning, pl->o->warning_ctx,
                        "%s has no measurement for tensor \"%s\": its weight is its %s weight times %.4g (the median "
                        "ratio of measured to %s weights)",
                        mx_shown(pl->o->measurement_path, b), pl->m->tensors[i].name,
                        pl->o->weights == MIXQ_WEIGHTS_FLAT ? "flat" : "role", pl->mw_scale,
                        pl->o->weights == MIXQ_WEIGHTS_FLAT ? "flat" : "role");
        pl->mw = mw;
        mw = NULL;
    }
    free(mw);
    free(ratio);
    return s;
}
