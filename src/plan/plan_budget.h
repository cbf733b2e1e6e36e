/*
 * plan_budget.h - the multiple-choice knapsack behind `--strategy budget`:
 * pick one choice per group (one storage type per tensor) minimising the
 * total error subject to the total cost (bytes) staying within a budget.
 *
 * Small instances are solved exactly by dynamic programming over costs
 * (divided by their greatest common divisor, above each group's cheapest
 * choice).  Larger ones get the LP relaxation (each group's lower convex
 * hull, segments taken in order of error saved per byte), whose value is a
 * proven lower bound, and the best of: its greedy integer rounding and a
 * dynamic program over costs rounded up to a coarser unit; both then improved
 * by single and pairwise moves.  The returned solution never exceeds the
 * budget.
 */
#ifndef MIXQ_PLAN_BUDGET_H
#define MIXQ_PLAN_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MX_MCK_UNAVAILABLE UINT64_MAX

typedef struct mx_mck {
    size_t n_groups;
    const size_t *first;  /* group g's choices are [first[g], first[g+1]); n_groups + 1 entries */
    const uint64_t *cost; /* per choice; MX_MCK_UNAVAILABLE if the choice may not be taken */
    const double *err;    /* per choice; finite, >= 0 */
    uint64_t budget;      /* largest allowed total cost */
} mx_mck;

typedef enum mx_mck_status {
    MX_MCK_OK = 0,
    MX_MCK_INFEASIBLE,  /* even the cheapest choices exceed the budget (min_cost says by how much) */
    MX_MCK_NO_CHOICE,   /* a group has no available choice */
    MX_MCK_NOMEM
} mx_mck_status;

typedef struct mx_mck_result {
    uint64_t min_cost;  /* the cheapest achievable total (sum of each group's cheapest choice) */
    uint64_t cost;      /* total cost of the solution */
    double err;         /* total error of the solution */
    double lower_bound; /* no assignment within the budget has a smaller total error */
    bool optimal;       /* err is proven minimal (exact DP, or equal to the bound) */
    const char *method; /* "dp" (exact) or "lagrangian" (bounded) */
} mx_mck_result;

/*
 * Solves p; on MX_MCK_OK choice[g] is the chosen index within group g
 * (0-based, relative to first[g]).  max_dp_cells bounds the exact DP's table
 * (groups x cost units); 0 means a default of 2^24.  On MX_MCK_INFEASIBLE,
 * choice gets the cheapest assignment and res->min_cost its cost.
 */
mx_mck_status mx_mck_solve(const mx_mck *p, size_t max_dp_cells, size_t *choice, mx_mck_result *res);

/* Total cost (saturating) and error of an assignment. */
void mx_mck_eval(const mx_mck *p, const size_t *choice, uint64_t *cost, double *err);

#endif
