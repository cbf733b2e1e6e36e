/* test_workpool.c - the worker pool runs every index exactly once, for any thread count. */
#include <stdatomic.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "common/workpool.h"

typedef struct job {
    atomic_int *hits;
    double *out;
} job;

/* The value job i computes. */
static double value_of(size_t i)
{
    double v = 0;
    for (size_t k = 0; k < 1000 + i % 97; k++) v += (double)(k ^ i) * 1e-3;
    return v;
}

static void work(void *ctx, size_t i)
{
    job *j = ctx;
    atomic_fetch_add(&j->hits[i], 1);
    j->out[i] = value_of(i);
}

Test(workpool, every_index_once_and_same_result_for_any_thread_count)
{
    enum { N = 5000 };
    double *ref = calloc(N, sizeof *ref);
    for (size_t i = 0; i < N; i++) ref[i] = value_of(i); /* computed without the pool */
    for (unsigned t = 1; t <= 5; t++) {
        mx_pool *p = mx_pool_create(t);
        cr_assert(p);
        cr_assert_eq(mx_pool_threads(p), t);
        for (int rep = 0; rep < 20; rep++) {
            atomic_int *hits = calloc(N, sizeof *hits);
            double *out = calloc(N, sizeof *out);
            job j = {hits, out};
            size_t n = rep == 0 ? N : (size_t)(rep * 37 % N);
            mx_pool_run(p, n, work, &j);
            for (size_t i = 0; i < N; i++) cr_assert_eq(atomic_load(&hits[i]), i < n ? 1 : 0, "t=%u i=%zu", t, i);
            for (size_t i = 0; i < n; i++) cr_assert_eq(out[i], ref[i], "t=%u i=%zu", t, i);
            free(hits);
            free(out);
        }
        mx_pool_destroy(p);
    }
    free(ref);
}

Test(workpool, null_pool_and_zero_jobs)
{
    atomic_int hits[3] = {0};
    double out[3];
    job j = {hits, out};
    mx_pool_run(NULL, 3, work, &j);
    cr_assert(hits[0] == 1 && hits[1] == 1 && hits[2] == 1);
    mx_pool *p = mx_pool_create(0);
    cr_assert(p && mx_pool_threads(p) >= 1);
    mx_pool_run(p, 0, work, &j);
    mx_pool_destroy(p);
    mx_pool_destroy(NULL);
}
