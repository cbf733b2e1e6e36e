/*
 * test_plan_budget.c - the multiple-choice knapsack solver: never over
 * budget on many random instances; equal to brute force on small ones (exact
 * path) and within its reported bound (bounded path); infeasible budgets
 * report the smallest achievable cost; at equal budget it beats uniform
 * assignment and the seed's greedy rule.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "plan/plan_budget.h"

/* xorshift64*: deterministic across platforms */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static double rndu(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

typedef struct inst {
    size_t G, n;
    size_t first[64];
    uint64_t cost[64 * 16];
    double err[64 * 16];
} inst;

/* A random instance: G groups of 1..maxc choices with random costs and errors (some unavailable). */
static void random_inst(inst *I, size_t G, size_t maxc, uint64_t maxcost, int unavailable)
{
    I->G = G;
    size_t k = 0;
    for (size_t g = 0; g < G; g++) {
        I->first[g] = k;
        size_t c = 1 + rnd() % maxc;
        for (size_t j = 0; j < c; j++, k++) {
            I->cost[k] = 1 + rnd() % maxcost;
            I->err[k] = rndu() * 100.0;
            if (unavailable && j > 0 && rnd() % 7 == 0) I->cost[k] = MX_MCK_UNAVAILABLE;
        }
    }
    I->first[G] = k;
    I->n = k;
}

/* Exhaustive optimum: least error with cost <= budget; returns false if none fits. */
static bool brute(const inst *I, uint64_t budget, double *best_err, uint64_t *min_cost)
{
    size_t idx[64] = {0};
    bool found = false;
    *best_err = INFINITY;
    *min_cost = UINT64_MAX;
    for (;;) {
        uint64_t c = 0;
        double e = 0;
        bool ok = true;
        for (size_t g = 0; g < I->G; g++) {
            size_t i = I->first[g] + idx[g];
            if (I->cost[i] == MX_MCK_UNAVAILABLE) {
                ok = false;
                break;
            }
            c += I->cost[i];
            e += I->err[i];
        }
        if (ok) {
            if (c < *min_cost) *min_cost = c;
            if (c <= budget && e < *best_err) {
                *best_err = e;
                found = true;
            }
        }
        size_t g = 0;
        while (g < I->G) {
            if (++idx[g] < I->first[g + 1] - I->first[g]) break;
            idx[g++] = 0;
        }
        if (g == I->G) break;
    }
    return found;
}

static mx_mck prob_of(const inst *I, uint64_t budget)
{
    mx_mck p = {I->G, I->first, I->cost, I->err, budget};
    return p;
}

Test(budget, equals_brute_force_on_small_instances)
{
    rng_state = 0x9E3779B97F4A7C15ull;
    int infeasible = 0;
    for (int it = 0; it < 3000; it++) {
        inst I;
        random_inst(&I, 1 + rnd() % 7, 4, 1 + rnd() % 200, 1);
        uint64_t total_max = 0;
        for (size_t i = 0; i < I.n; i++)
            if (I.cost[i] != MX_MCK_UNAVAILABLE) total_max += I.cost[i];
        uint64_t budget = rnd() % (total_max + 1);
        double best;
        uint64_t minc;
        bool feasible = brute(&I, budget, &best, &minc);
        mx_mck p = prob_of(&I, budget);
        size_t choice[64];
        mx_mck_result res;
        mx_mck_status st = mx_mck_solve(&p, 0, choice, &res);
        if (!feasible) {
            cr_assert_eq(st, MX_MCK_INFEASIBLE, "iteration %d", it);
            cr_assert_eq(res.min_cost, minc, "iteration %d: smallest achievable", it);
            infeasible++;
            continue;
        }
        cr_assert_eq(st, MX_MCK_OK, "iteration %d", it);
        uint64_t c;
        double e;
        mx_mck_eval(&p, choice, &c, &e);
        cr_assert_leq(c, budget, "iteration %d: over budget", it);
        cr_assert_eq(c, res.cost);
        cr_assert(res.optimal);
        cr_assert_str_eq(res.method, "dp");
        cr_assert(fabs(e - best) <= 1e-9 * (1 + best), "iteration %d: %.17g vs brute force %.17g", it, e, best);
    }
    cr_assert_gt(infeasible, 10, "the random budgets should include infeasible ones");
}

Test(budget, bounded_path_is_feasible_and_within_its_bound)
{
    rng_state = 12345;
    int exact_hits = 0, runs = 0;
    for (int it = 0; it < 2000; it++) {
        inst I;
        random_inst(&I, 2 + rnd() % 6, 4, 1000, 1);
        uint64_t total_max = 0;
        for (size_t i = 0; i < I.n; i++)
            if (I.cost[i] != MX_MCK_UNAVAILABLE) total_max += I.cost[i];
        uint64_t budget = rnd() % (total_max + 1);
        double best;
        uint64_t minc;
        if (!brute(&I, budget, &best, &minc)) continue;
        mx_mck p = prob_of(&I, budget);
        size_t choice[64];
        mx_mck_result res;
        /* a table of 2 cells forces the LP bound + rounding + local search path */
        cr_assert_eq(mx_mck_solve(&p, 2, choice, &res), MX_MCK_OK);
        uint64_t c;
        double e;
        mx_mck_eval(&p, choice, &c, &e);
        cr_assert_leq(c, budget, "iteration %d: over budget", it);
        cr_assert(e >= best - 1e-9 * (1 + best), "iteration %d: better than optimal?", it);
        cr_assert(res.lower_bound <= best + 1e-9 * (1 + best), "iteration %d: bound %.17g above optimum %.17g", it,
                  res.lower_bound, best);
        if (res.optimal) cr_assert(fabs(e - best) <= 1e-9 * (1 + best), "iteration %d: claimed optimal", it);
        exact_hits += fabs(e - best) <= 1e-9 * (1 + best);
        runs++;
    }
    cr_log_info("bounded path found the optimum in %d of %d instances", exact_hits, runs);
    cr_assert_gt(exact_hits * 10, runs * 9, "local search should find the optimum in most small instances");
}

/* Large random instances on both paths: never over budget, error between the bound and uniform. */
Test(budget, never_exceeds_budget_on_many_instances)
{
    rng_state = 777;
    for (int it = 0; it < 300; it++) {
        inst I;
        random_inst(&I, 10 + rnd() % 54, 1 + rnd() % 16, 1 + rnd() % 100000, it % 2);
        uint64_t lo = 0, hi = 0;
        for (size_t g = 0; g < I.G; g++) {
            uint64_t mn = UINT64_MAX, mx = 0;
            for (size_t i = I.first[g]; i < I.first[g + 1]; i++) {
                if (I.cost[i] == MX_MCK_UNAVAILABLE) continue;
                if (I.cost[i] < mn) mn = I.cost[i];
                if (I.cost[i] > mx) mx = I.cost[i];
            }
            lo += mn;
            hi += mx;
        }
        uint64_t budget = lo + rnd() % (hi - lo + 1);
        for (int path = 0; path < 2; path++) {
            mx_mck p = prob_of(&I, budget);
            size_t choice[64];
            mx_mck_result res;
            cr_assert_eq(mx_mck_solve(&p, path ? 64 : (size_t)1 << 18, choice, &res), MX_MCK_OK);
            uint64_t c;
            double e;
            mx_mck_eval(&p, choice, &c, &e);
            cr_assert_leq(c, budget, "iteration %d path %d: %llu > %llu", it, path, (unsigned long long)c,
                          (unsigned long long)budget);
            cr_assert_leq(res.lower_bound, e + 1e-9 * (1 + e));
            cr_assert_eq(res.min_cost, lo);
        }
        /* one byte under the minimum is infeasible and says so */
        if (lo > 0) {
            mx_mck p = prob_of(&I, lo - 1);
            size_t choice[64];
            mx_mck_result res;
            cr_assert_eq(mx_mck_solve(&p, 0, choice, &res), MX_MCK_INFEASIBLE);
            cr_assert_eq(res.min_cost, lo);
        }
    }
}

/*
 * A quantization-like instance: G tensors of n_g weights, types of b bits
 * (cost n*b/8 plus scale overhead), error w_g * n_g * sigma_g^2 * 4^-b with
 * per-tensor difficulty; weights (sensitivities) vary by tensor.
 */
/* bits per weight of the type ladder (int2_dq, int3_dq, int4:256, int4_dq, int4:32, int6_dq, int8, f16) */
static const double type_bits[] = {2.625, 3.4375, 4.125, 4.5, 5.0, 6.5625, 8.125, 16};
#define NT (sizeof type_bits / sizeof *type_bits)

static void quant_inst(inst *I, size_t G, double *sens)
{
    I->G = G;
    size_t k = 0;
    for (size_t g = 0; g < G; g++) {
        I->first[g] = k;
        uint64_t n = 4096u << (rnd() % 6);
        double difficulty = 0.5 + 2.0 * rndu(), w = 0.2 + 5.0 * rndu() * rndu();
        sens[g] = w * difficulty;
        for (size_t t = 0; t < NT; t++, k++) {
            I->cost[k] = (uint64_t)ceil((double)n * type_bits[t] / 8.0);
            I->err[k] = w * (double)n * difficulty * pow(4.0, -type_bits[t]) * (0.8 + 0.4 * rndu());
        }
    }
    I->first[G] = k;
    I->n = k;
}

/* The seed's rule: everyone at the minimum width; repeatedly upgrade the most sensitive tensor that still fits. */
static void seed_greedy(const inst *I, const double *sens, uint64_t budget, size_t *choice)
{
    size_t order[64];
    for (size_t g = 0; g < I->G; g++) {
        order[g] = g;
        choice[g] = 0;
    }
    for (size_t a = 0; a < I->G; a++) /* by descending sensitivity */
        for (size_t b = a + 1; b < I->G; b++)
            if (sens[order[b]] > sens[order[a]]) {
                size_t t = order[a];
                order[a] = order[b];
                order[b] = t;
            }
    uint64_t total = 0;
    for (size_t g = 0; g < I->G; g++) total += I->cost[I->first[g]];
    for (;;) {
        bool up = false;
        for (size_t k = 0; k < I->G && !up; k++) {
            size_t g = order[k];
            if (choice[g] + 1 >= I->first[g + 1] - I->first[g]) continue;
            uint64_t nt = total - I->cost[I->first[g] + choice[g]] + I->cost[I->first[g] + choice[g] + 1];
            if (nt <= budget) {
                choice[g]++;
                total = nt;
                up = true;
            }
        }
        if (!up) break;
    }
}

Test(budget, beats_uniform_and_seed_greedy)
{
    rng_state = 4242;
    int strictly_better_uniform = 0, strictly_better_greedy = 0, trials = 0;
    for (int it = 0; it < 200; it++) {
        inst I;
        double sens[64];
        quant_inst(&I, 8 + rnd() % 40, sens);
        for (size_t t = 1; t + 1 < NT; t++) { /* budget = uniform type t's exact size (t = 0 leaves no choice) */
            uint64_t budget = 0;
            double uerr = 0;
            for (size_t g = 0; g < I.G; g++) {
                budget += I.cost[I.first[g] + t];
                uerr += I.err[I.first[g] + t];
            }
            mx_mck p = prob_of(&I, budget);
            size_t choice[64], greedy[64];
            mx_mck_result res;
            cr_assert_eq(mx_mck_solve(&p, 0, choice, &res), MX_MCK_OK);
            uint64_t c, gc;
            double e, ge;
            mx_mck_eval(&p, choice, &c, &e);
            seed_greedy(&I, sens, budget, greedy);
            mx_mck_eval(&p, greedy, &gc, &ge);
            cr_assert_leq(c, budget);
            cr_assert_leq(gc, budget);
            cr_assert_leq(e, uerr * (1 + 1e-12), "iteration %d type %zu: worse than uniform", it, t);
            cr_assert_leq(e, ge * (1 + 1e-12), "iteration %d type %zu: worse than the seed greedy", it, t);
            strictly_better_uniform += e < uerr * (1 - 1e-9);
            strictly_better_greedy += e < ge * (1 - 1e-9);
            trials++;
        }
    }
    fprintf(stderr, "strictly better than uniform in %d/%d, than the seed greedy in %d/%d\n", strictly_better_uniform, trials,
                strictly_better_greedy, trials);
    cr_assert_gt(strictly_better_uniform * 4, trials * 3);
    cr_assert_gt(strictly_better_greedy * 10, trials * 9);
}

Test(budget, degenerate_inputs)
{
    mx_mck_result res;
    size_t choice[4];
    size_t first0[1] = {0};
    mx_mck p0 = {0, first0, NULL, NULL, 0};
    cr_assert_eq(mx_mck_solve(&p0, 0, choice, &res), MX_MCK_OK);
    cr_assert_eq(res.cost, 0);
    /* a group with no available choice */
    size_t first[3] = {0, 1, 2};
    uint64_t cost[2] = {5, MX_MCK_UNAVAILABLE};
    double err[2] = {1, 1};
    mx_mck p1 = {2, first, cost, err, 100};
    cr_assert_eq(mx_mck_solve(&p1, 0, choice, &res), MX_MCK_NO_CHOICE);
    /* an unlimited budget picks each group's least error */
    size_t f2[3] = {0, 3, 5};
    uint64_t c2[5] = {1, 10, 100, 7, 3};
    double e2[5] = {9, 5, 6, 1, 2};
    mx_mck p2 = {2, f2, c2, e2, UINT64_MAX};
    cr_assert_eq(mx_mck_solve(&p2, 0, choice, &res), MX_MCK_OK);
    cr_assert_eq(choice[0], 1);
    cr_assert_eq(choice[1], 0);
    cr_assert_float_eq(res.err, 6.0, 1e-12);
    /* equal errors: the cheaper choice */
    uint64_t c3[5] = {4, 2, 8, 1, 1};
    double e3[5] = {1, 1, 1, 0, 0};
    mx_mck p3 = {2, f2, c3, e3, 100};
    cr_assert_eq(mx_mck_solve(&p3, 0, choice, &res), MX_MCK_OK);
    cr_assert_float_eq(res.err, 1.0, 1e-12);
}
