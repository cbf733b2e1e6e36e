/* plan_budget.c - multiple-choice knapsack: exact DP, or LP bound + rounding + local search (plan_budget.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_budget.h"

#define DEFAULT_DP_CELLS ((size_t)1 << 24)
#define MAX_GROUP_CHOICES 65535u

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void mx_mck_eval(const mx_mck *p, const size_t *choice, uint64_t *cost, double *err)
{
    uint64_t c = 0;
    double e = 0;
    for (size_t g = 0; g < p->n_groups; g++) {
        size_t i = p->first[g] + choice[g];
        c = sat_add(c, p->cost[i]);
        e += p->err[i];
    }
    *cost = c;
    *err = e;
}

/* Each group's cheapest available choice (lowest error among equals); false if a group has none. */
static bool cheapest(const mx_mck *p, size_t *choice, uint64_t *base)
{
    for (size_t g = 0; g < p->n_groups; g++) {
        size_t best = SIZE_MAX;
        for (size_t i = p->first[g]; i < p->first[g + 1]; i++) {
            if (p->cost[i] == MX_MCK_UNAVAILABLE) continue;
            if (best == SIZE_MAX || p->cost[i] < p->cost[best] ||
                (p->cost[i] == p->cost[best] && p->err[i] < p->err[best]))
                best = i;
        }
        if (best == SIZE_MAX) return false;
        choice[g] = best - p->first[g];
        base[g] = p->cost[best];
    }
    return true;
}

/* Cost units of choice i of group g above the group's cheapest: exact (unit divides) or rounded up. */
static uint64_t units(const mx_mck *p, const uint64_t *base, size_t g, size_t i, uint64_t unit)
{
    uint64_t extra = p->cost[i] - base[g];
    return extra / unit + (extra % unit != 0);
}

/*
 * DP over cost units: best[c] = least error of the groups so far with at
 * most c units above their cheapest choices.  Fills choice; false if out of
 * memory.
 */
static bool dp_solve(const mx_mck *p, const uint64_t *base, uint64_t unit, uint64_t cap, size_t *choice)
{
    size_t G = p->n_groups, W = (size_t)cap + 1;
    double *dp = malloc(W * sizeof *dp), *nd = malloc(W * sizeof *nd);
    uint16_t *arg = malloc(G * W * sizeof *arg);
    if (!dp || !nd || !arg) {
        free(dp);
        free(nd);
        free(arg);
        return false;
    }
    for (size_t c = 0; c < W; c++) dp[c] = 0.0;
    for (size_t g = 0; g < G; g++) {
        uint16_t *ag = arg + g * W;
        for (size_t c = 0; c < W; c++) {
            nd[c] = INFINITY;
            ag[c] = 0;
        }
        for (size_t i = p->first[g]; i < p->first[g + 1]; i++) {
            if (p->cost[i] == MX_MCK_UNAVAILABLE) continue;
            uint64_t w = units(p, base, g, i, unit);
            if (w > cap) continue;
            double e = p->err[i];
            for (size_t c = (size_t)w; c < W; c++) {
                double v = dp[c - w] + e;
                if (v < nd[c]) {
                    nd[c] = v;
                    ag[c] = (uint16_t)(i - p->first[g]);
                }
            }
        }
        double *t = dp;
        dp = nd;
        nd = t;
    }
    size_t c = W - 1;
    for (size_t g = G; g-- > 0;) {
        size_t j = arg[g * W + c];
        choice[g] = j;
        c -= (size_t)units(p, base, g, p->first[g] + j, unit);
    }
    free(dp);
    free(nd);
    free(arg);
    return true;
}

typedef struct seg {
    size_t g, k;  /* from hull point k to k + 1 of group g */
    double slope; /* error saved per cost unit */
} seg;

static int seg_cmp(const void *a, const void *b)
{
    const seg *x = a, *y = b;
    if (x->slope != y->slope) return x->slope > y->slope ? -1 : 1;
    if (x->g != y->g) return x->g < y->g ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

static const mx_mck *sort_ctx; /* qsort has no context argument in C11 */

static int choice_cmp(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const mx_mck *p = sort_ctx;
    if (p->cost[i] != p->cost[j]) return p->cost[i] < p->cost[j] ? -1 : 1;
    if (p->err[i] != p->err[j]) return p->err[i] < p->err[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

/*
 * LP relaxation over each group's lower convex hull: the bound, and the
 * greedy integer solution (segments in order of slope while they fit).
 */
static bool lp_greedy(const mx_mck *p, uint64_t min_cost, size_t *choice, double *bound)
{
    size_t G = p->n_groups, n = p->first[G];
    size_t *hull = malloc((n ? n : 1) * sizeof *hull), *hstart = malloc((G + 1) * sizeof *hstart);
    size_t *pos = calloc(G ? G : 1, sizeof *pos);
    seg *segs = malloc((n ? n : 1) * sizeof *segs);
    if (!hull || !hstart || !pos || !segs) {
        free(hull);
        free(hstart);
        free(pos);
        free(segs);
        return false;
    }
    size_t h = 0, ns = 0;
    sort_ctx = p;
    for (size_t g = 0; g < G; g++) {
        hstart[g] = h;
        size_t *idx = hull + h, m = 0;
        for (size_t i = p->first[g]; i < p->first[g + 1]; i++)
            if (p->cost[i] != MX_MCK_UNAVAILABLE) idx[m++] = i;
        qsort(idx, m, sizeof *idx, choice_cmp);
        size_t k = 0; /* undominated points, then their lower convex hull, in place */
        for (size_t t = 0; t < m; t++) {
            size_t c = idx[t];
            if (k && !(p->err[c] < p->err[idx[k - 1]])) continue;
            while (k >= 2) {
                size_t a = idx[k - 2], b = idx[k - 1];
                double lhs = (p->err[a] - p->err[b]) * (double)(p->cost[c] - p->cost[b]);
                double rhs = (p->err[b] - p->err[c]) * (double)(p->cost[b] - p->cost[a]);
                if (lhs > rhs) break;
                k--;
            }
            idx[k++] = c;
        }
        for (size_t t = 0; t + 1 < k; t++)
            segs[ns++] = (seg){g, t, (p->err[idx[t]] - p->err[idx[t + 1]]) / (double)(p->cost[idx[t + 1]] - p->cost[idx[t]])};
        h += k;
    }
    hstart[G] = h;
    qsort(segs, ns, sizeof *segs, seg_cmp);

    uint64_t rem = p->budget - min_cost;
    double cur = 0;
    for (size_t g = 0; g < G; g++) cur += p->err[hull[hstart[g]]];
    double lp = cur;
    bool broken = false;
    for (size_t s = 0; s < ns; s++) {
        size_t g = segs[s].g, k = segs[s].k;
        if (pos[g] != k) continue;
        size_t a = hull[hstart[g] + k], b = hull[hstart[g] + k + 1];
        uint64_t dc = p->cost[b] - p->cost[a];
        double de = p->err[a] - p->err[b];
        if (dc <= rem) {
            rem -= dc;
            pos[g]++;
            if (!broken) lp -= de;
        } else if (!broken) {
            lp -= de * ((double)rem / (double)dc);
            broken = true;
        }
    }
    for (size_t g = 0; g < G; g++) choice[g] = hull[hstart[g] + pos[g]] - p->first[g];
    *bound = lp > 0 ? lp : 0;
    free(hull);
    free(hstart);
    free(pos);
    free(segs);
    return true;
}

/* Improves a feasible assignment by single moves into the free budget, then pairwise exchanges. */
static void local_search(const mx_mck *p, size_t *choice)
{
    size_t G = p->n_groups, n = p->first[G];
    uint64_t total;
    double err;
    mx_mck_eval(p, choice, &total, &err);
    bool pairs = n <= 3000;
    int pair_rounds = 0;
    for (int round = 0; round < 200; round++) {
        double tol = 1e-12 * (fabs(err) + 1e-300);
        /* single moves */
        double best = tol;
        size_t bg = SIZE_MAX, bj = 0;
        for (size_t g = 0; g < G; g++) {
            size_t cur = p->first[g] + choice[g];
            uint64_t rest = total - p->cost[cur];
            for (size_t i = p->first[g]; i < p->first[g + 1]; i++) {
                if (p->cost[i] == MX_MCK_UNAVAILABLE || p->cost[i] > p->budget - rest) continue;
                double gain = p->err[cur] - p->err[i];
                if (gain > best) {
                    best = gain;
                    bg = g;
                    bj = i - p->first[g];
                }
            }
        }
        if (bg != SIZE_MAX) {
            choice[bg] = bj;
            mx_mck_eval(p, choice, &total, &err);
            continue;
        }
        if (!pairs || ++pair_rounds > 25) break;
        /* pairwise: change g1 to i1 and g2 to i2 together */
        size_t g1b = SIZE_MAX, i1b = 0, g2b = 0, i2b = 0;
        best = tol;
        for (size_t g1 = 0; g1 < G; g1++) {
            size_t c1 = p->first[g1] + choice[g1];
            for (size_t i1 = p->first[g1]; i1 < p->first[g1 + 1]; i1++) {
                if (i1 == c1 || p->cost[i1] == MX_MCK_UNAVAILABLE) continue;
                uint64_t t1 = total - p->cost[c1]; /* still includes g2's current */
                if (p->cost[i1] > UINT64_MAX - t1) continue;
                t1 += p->cost[i1];
                double d1 = p->err[c1] - p->err[i1];
                for (size_t g2 = g1 + 1; g2 < G; g2++) {
                    size_t c2 = p->first[g2] + choice[g2];
                    uint64_t rest = t1 - p->cost[c2];
                    for (size_t i2 = p->first[g2]; i2 < p->first[g2 + 1]; i2++) {
                        if (i2 == c2 || p->cost[i2] == MX_MCK_UNAVAILABLE || rest > p->budget ||
                            p->cost[i2] > p->budget - rest)
                            continue;
                        double gain = d1 + (p->err[c2] - p->err[i2]);
                        if (gain > best) {
                            best = gain;
                            g1b = g1;
                            i1b = i1 - p->first[g1];
                            g2b = g2;
                            i2b = i2 - p->first[g2];
                        }
                    }
                }
            }
        }
        if (g1b == SIZE_MAX) break;
        choice[g1b] = i1b;
        choice[g2b] = i2b;
        mx_mck_eval(p, choice, &total, &err);
    }
}

mx_mck_status mx_mck_solve(const mx_mck *p, size_t max_dp_cells, size_t *choice, mx_mck_result *res)
{
    memset(res, 0, sizeof *res);
    res->method = "dp";
    size_t G = p->n_groups;
    if (max_dp_cells == 0) max_dp_cells = DEFAULT_DP_CELLS;
    for (size_t g = 0; g < G; g++)
        if (p->first[g + 1] - p->first[g] > MAX_GROUP_CHOICES) return MX_MCK_NO_CHOICE;
    uint64_t *base = malloc((G ? G : 1) * sizeof *base);
    size_t *alt = malloc((G ? G : 1) * sizeof *alt);
    if (!base || !alt) {
        free(base);
        free(alt);
        return MX_MCK_NOMEM;
    }
    mx_mck_status st = MX_MCK_OK;
    if (!cheapest(p, choice, base)) {
        st = MX_MCK_NO_CHOICE;
        goto out;
    }
    uint64_t min_cost = 0, unit = 0, max_units = 0;
    for (size_t g = 0; g < G; g++) min_cost = sat_add(min_cost, base[g]);
    res->min_cost = min_cost;
    if (min_cost > p->budget) {
        mx_mck_eval(p, choice, &res->cost, &res->err);
        st = MX_MCK_INFEASIBLE;
        goto out;
    }
    uint64_t room = p->budget - min_cost;
    for (size_t g = 0; g < G; g++) {
        uint64_t gmax = 0;
        for (size_t i = p->first[g]; i < p->first[g + 1]; i++) {
            if (p->cost[i] == MX_MCK_UNAVAILABLE) continue;
            uint64_t extra = p->cost[i] - base[g];
            if (extra > room) continue; /* can never be taken */
            unit = gcd64(unit, extra);
            if (extra > gmax) gmax = extra;
        }
        max_units = sat_add(max_units, gmax);
    }
    if (unit == 0) unit = 1;
    uint64_t cap = room / unit, need = max_units / unit;
    if (cap > need) cap = need;
    if (G == 0 || cap == 0 || (double)G * ((double)cap + 1) <= (double)max_dp_cells) {
        /* exact */
        if (cap > 0 && !dp_solve(p, base, unit, cap, choice)) {
            st = MX_MCK_NOMEM;
            goto out;
        }
        if (cap == 0) { /* only zero-extra choices fit: each group's best of them is cheapest() already */
            for (size_t g = 0; g < G; g++) {
                size_t best = p->first[g] + choice[g];
                for (size_t i = p->first[g]; i < p->first[g + 1]; i++)
                    if (p->cost[i] == base[g] && p->err[i] < p->err[best]) best = i;
                choice[g] = best - p->first[g];
            }
        }
        mx_mck_eval(p, choice, &res->cost, &res->err);
        res->lower_bound = res->err;
        res->optimal = true;
        goto out;
    }
    /* bounded: LP bound; best of greedy rounding and a coarser DP, both improved */
    res->method = "lagrangian";
    double bound;
    if (!lp_greedy(p, min_cost, choice, &bound)) {
        st = MX_MCK_NOMEM;
        goto out;
    }
    local_search(p, choice);
    uint64_t c1, c2;
    double e1, e2;
    mx_mck_eval(p, choice, &c1, &e1);
    uint64_t cells_per_group = max_dp_cells / G;
    if (cells_per_group >= 2) {
        uint64_t q = room / (cells_per_group - 1) + 1;
        if (q < unit) q = unit;
        uint64_t qcap = room / q;
        if (qcap > 0 && dp_solve(p, base, q, qcap, alt)) {
            local_search(p, alt);
            mx_mck_eval(p, alt, &c2, &e2);
            if (c2 <= p->budget && e2 < e1) {
                memcpy(choice, alt, G * sizeof *choice);
                c1 = c2;
                e1 = e2;
            }
        }
    }
    res->cost = c1;
    res->err = e1;
    res->lower_bound = bound < e1 ? bound : e1;
    res->optimal = e1 <= bound * (1 + 1e-12);
out:
    free(base);
    free(alt);
    return st;
}
