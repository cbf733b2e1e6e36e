/*
 * plan_strategy.c - the sensitivity strategy (score -> thresholds -> a step
 * on the candidate ladder) and the budget strategy (multiple-choice
 * knapsack, plan_budget.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "format/container.h"
#include "container/container_write.h"
#include "common/error.h"
#include "plan/plan.h"
#include "plan/plan_budget.h"
#include "plan/plan_measure.h"
#include "kernels/simd.h"
#include "plan/plan_internal.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}



static const mx_cand *sort_cands;

static int ladder_cmp(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    double x = mx_cand_nominal_bits(&sort_cands[i]), y = mx_cand_nominal_bits(&sort_cands[j]);
    if (x != y) return x < y ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Sensitivity: score each eligible tensor, then step along the candidate ladder. */
mixq_status mx_plan_run_sensitivity(planner *pl, mixq_error *err)
{
    const st_model *m = pl->m;
    size_t nc = pl->nc, n = m->ntensors;
    /* the ladder: candidates by nominal bits; the base type's rung */
    size_t *ladder = malloc(nc * sizeof *ladder);
    double *rel = malloc((n ? n : 1) * sizeof *rel);
    if (!ladder || !rel) {
        free(ladder);
        free(rel);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    for (size_t c = 0; c < nc; c++) ladder[c] = c;
    sort_cands = pl->cands;
    qsort(ladder, nc, sizeof *ladder, ladder_cmp);
    size_t base_c = SIZE_MAX, rung = 0;
    for (size_t c = 0; c < nc; c++)
        if (pl->cands[c].qt == pl->base.qt && pl->cands[c].group_size == pl->base.group_size) base_c = c;
    for (size_t r = 0; r < nc; r++)
        if (ladder[r] == base_c) rung = r;
    mixq_status s = MIXQ_OK;
    /* every rung of the ladder (and the base type) in parallel, then the relative error at the base */
    bool *need = malloc((n * nc + 1) * sizeof *need);
    if (!need) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (size_t k = 0; s == MIXQ_OK && k < n * nc; k++) need[k] = pl->allowed[k] || k % nc == base_c;
    if (s == MIXQ_OK) s = mx_planner_measure_all(pl, need, err);
    if (s == MIXQ_OK) s = mx_planner_measured_weights(pl, err);
    free(need);
    size_t nr = 0;
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        if (!pl->eligible[i]) continue;
        double e = pl->sse[i * nc + base_c];
        rel[i] = pl->stats[i].sumsq > 0 ? e / pl->stats[i].sumsq : 0.0;
    }
    /* each statistic relative to its median over the planned tensors: a typical tensor scores 1 */
    double *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (s == MIXQ_OK && !sorted) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    double med[3] = {0, 0, 0};
    for (int k = 0; k < 3 && s == MIXQ_OK; k++) {
        nr = 0;
        for (size_t i = 0; i < n; i++)
            if (pl->eligible[i])
                sorted[nr++] = k == 0 ? rel[i] : k == 1 ? pl->stats[i].kurtosis : pl->stats[i].outlier_frac;
        qsort(sorted, nr, sizeof *sorted, cmp_double);
        med[k] = nr ? sorted[nr / 2] : 0;
    }
    double med_pred = 0; /* with a measurement: the median predicted KLD at the base type */
    if (s == MIXQ_OK && pl->mw) {
        nr = 0;
        for (size_t i = 0; i < n; i++)
            if (pl->eligible[i]) sorted[nr++] = mx_planner_weight_of(pl, i) * pl->sse[i * nc + base_c];
        qsort(sorted, nr, sizeof *sorted, cmp_double);
        med_pred = nr ? sorted[nr / 2] : 0;
    }
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        if (!pl->eligible[i]) continue;
        const mx_tstats *st = &pl->stats[i];
        double q = med[0] > 0 ? rel[i] / med[0] : 1.0;
        double ku = med[1] > 0 ? st->kurtosis / med[1] : 1.0;
        double ou = med[2] > 0 ? st->outlier_frac / med[2] : 1.0;
        double stat = 0.5 * q + 0.25 * ku + 0.25 * ou;
        double score = mx_role_prior(&pl->p->t[i].role) * stat * (pl->ext ? pl->ext[i] : 1.0);
        if (pl->mw) /* measured: the predicted KLD at the base type, relative to its median */
            score = med_pred > 0 ? mx_planner_weight_of(pl, i) * pl->sse[i * nc + base_c] / med_pred : 1.0;
        const double *th = pl->o->thresholds;
        long step = score < th[0] ? -1 : score < th[1] ? 0 : score < th[2] ? 1 : 2;
        long r = (long)rung + step;
        if (r < 0) r = 0;
        if (r >= (long)nc) r = (long)nc - 1;
        /* the nearest allowed rung (--min-type / --max-type), the wider one first */
        size_t pick = SIZE_MAX;
        for (long d = 0; d < (long)nc && pick == SIZE_MAX; d++) {
            if (r + d < (long)nc && pl->allowed[i * nc + ladder[r + d]]) pick = ladder[r + d];
            else if (r - d >= 0 && pl->allowed[i * nc + ladder[r - d]]) pick = ladder[r - d];
        }
        s = mx_planner_measure(pl, i, pick, err);
        if (s != MIXQ_OK) break;
        s = mx_planner_assign(pl, i, pl->cands[pick].qt, pl->cands[pick].group_size, "strategy", err);
        pl->p->t[i].score = score;
        pl->p->t[i].est_error = pl->sse[i * nc + pick];
    }
    free(sorted);
    free(ladder);
    free(rel);
    return s;
}

/* Budget: measure everything allowed, then solve the knapsack. */
mixq_status mx_plan_run_budget(planner *pl, json_t *meta_base, uint64_t slack, mixq_error *err)
{
    const st_model *m = pl->m;
    mixq_plan *p = pl->p;
    size_t nc = pl->nc, n = m->ntensors, ng = 0;
    for (size_t i = 0; i < n; i++) ng += pl->eligible[i];
    mixq_status ms0 = mx_planner_measure_all(pl, pl->allowed, err);
    if (ms0 == MIXQ_OK) ms0 = mx_planner_measured_weights(pl, err);
    if (ms0 != MIXQ_OK) return ms0;
    bool by_size = pl->o->target_size > 0;
    /* fixed part of the budget: tensors not planned, preamble and header (target size) */
    uint64_t fixed = 0, n_elements = 0, entries = 0;
    uint64_t maxv = by_size ? pl->o->target_size : 0;
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = &m->tensors[i];
        n_elements += t->n_elements;
        uint64_t b = 0, eb = 0;
        if (!pl->eligible[i]) {
            b = p->t[i].nbytes;
            if (by_size) {
                mx_cand c = {p->t[i].qt, p->t[i].group_size};
                qlayout lay;
                mx_cand_layout(&c, t, &lay);
                json_t *x = json_pack("{s:f}", "estimated_error", WIDEST_REAL);
                cw_tensor ct = mx_plan_entry_of(&p->t[i], t, c.qt, c.group_size, x);
                eb = cw_entry_bound(&ct, &lay, maxv);
                json_decref(x);
                if (!eb) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
            }
        } else if (by_size) { /* each candidate's header entry is part of its cost */
            for (size_t c = 0; c < nc; c++) {
                if (!pl->allowed[i * nc + c]) continue;
                qlayout lay;
                mx_cand_layout(&pl->cands[c], t, &lay);
                json_t *x = json_pack("{s:f}", "estimated_error", WIDEST_REAL);
                cw_tensor ct = mx_plan_entry_of(&p->t[i], t, pl->cands[c].qt, pl->cands[c].group_size, x);
                size_t v = cw_entry_bound(&ct, &lay, maxv);
                json_decref(x);
                if (!v) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
                pl->entry[i * nc + c] = v;
            }
        }
        if (by_size && !ck_align(b, MX_ALIGN, &b)) return mx_err(err, MIXQ_E_RANGE, "size overflows");
        fixed += b;
        entries += eb;
    }
    uint64_t budget;
    if (by_size) {
        json_t *meta = json_deep_copy(meta_base);
        json_t *pm = mx_plan_header_meta(p, true);
        if (!meta || !pm || json_object_set_new(meta, "plan", pm)) {
            json_decref(meta);
            return mx_err(err, MIXQ_E_NOMEM, "out of memory");
        }
        size_t h = cw_header_bytes(meta, n, entries);
        json_decref(meta);
        if (!h) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
        uint64_t overhead = MXC_PREAMBLE_LEN + h + slack; /* tensors' costs include their alignment padding */
        fixed += overhead;
        budget = pl->o->target_size > fixed ? pl->o->target_size - fixed : 0;
        p->budget_bytes = pl->o->target_size;
    } else {
        double b = floor(pl->o->target_bpw * (double)n_elements / 8.0);
        budget = b >= 1.8e19 ? UINT64_MAX : (uint64_t)b;
        p->budget_bytes = budget;
        budget = budget > fixed ? budget - fixed : 0;
    }
    /* the knapsack over eligible tensors */
    size_t *first = malloc((ng + 1) * sizeof *first), *map = malloc((ng ? ng : 1) * sizeof *map);
    size_t *choice = malloc((ng ? ng : 1) * sizeof *choice);
    uint64_t *cost = malloc((ng * nc + 1) * sizeof *cost);
    double *werr = malloc((ng * nc + 1) * sizeof *werr);
    mixq_status s = MIXQ_OK;
    if (!first || !map || !choice || !cost || !werr) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        goto out;
    }
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pl->eligible[i]) continue;
        first[g] = g * nc;
        map[g] = i;
        double w = mx_planner_weight_of(pl, i);
        p->t[i].weight = w;
        for (size_t c = 0; c < nc; c++) {
            size_t k = g * nc + c;
            uint64_t b = pl->len[i * nc + c];
            if (!pl->allowed[i * nc + c]) {
                cost[k] = MX_MCK_UNAVAILABLE;
                werr[k] = 0;
                continue;
            }
            if (by_size && (!ck_align(b, MX_ALIGN, &b) || !ck_add(b, pl->entry[i * nc + c], &b))) b = MX_MCK_UNAVAILABLE;
            cost[k] = b;
            werr[k] = w * pl->sse[i * nc + c];
            if (!isfinite(werr[k])) cost[k] = MX_MCK_UNAVAILABLE; /* e.g. f16 overflow */
        }
        g++;
    }
    first[ng] = ng * nc;
    mx_mck prob = {ng, first, cost, werr, budget};
    mx_mck_result res;
    mx_mck_status ms = mx_mck_solve(&prob, 0, choice, &res);
    if (ms == MX_MCK_NOMEM) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory in the budget solver");
        goto out;
    }
    if (ms == MX_MCK_NO_CHOICE) {
        s = mx_err(err, MIXQ_E_INVALID_ARG, "no candidate type can store some tensor; widen plan_options.candidates");
        goto out;
    }
    p->min_bytes = res.min_cost + fixed;
    if (ms == MX_MCK_INFEASIBLE) {
        uint64_t min_total = res.min_cost + fixed;
        if (by_size)
            s = mx_err(err, MIXQ_E_RANGE,
                       "target size %llu bytes is below the smallest achievable output: %llu bytes "
                       "(every tensor at its smallest candidate, header included)",
                       (unsigned long long)pl->o->target_size, (unsigned long long)min_total);
        else
            s = mx_err(err, MIXQ_E_RANGE,
                       "target %.4g bits per weight is below the smallest achievable: %.4f bits per weight "
                       "(%llu bytes of tensors, every tensor at its smallest candidate)",
                       pl->o->target_bpw, n_elements ? (double)min_total * 8.0 / (double)n_elements : 0.0,
                       (unsigned long long)min_total);
        goto out;
    }
    for (size_t k = 0; k < ng; k++) {
        size_t i = map[k], c = choice[k];
        s = mx_planner_assign(pl, i, pl->cands[c].qt, pl->cands[c].group_size, "strategy", err);
        if (s != MIXQ_OK) goto out;
        p->t[i].est_error = pl->sse[i * nc + c];
    }
    p->weighted_error = res.err;
    p->lower_bound = res.lower_bound;
    p->optimal = res.optimal;
    p->solver = res.method;
out:
    free(first);
    free(map);
    free(choice);
    free(cost);
    free(werr);
    return s;
}

