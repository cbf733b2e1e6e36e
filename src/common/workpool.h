/*
 * workpool.h - a fixed pool of worker threads running parallel-for jobs.
 * The caller's thread takes part, so a pool of 1 runs everything inline.
 * Results never depend on the thread count when each index writes only its
 * own output: the pool only decides who computes what, never what.
 */
#ifndef MIXQ_WORKPOOL_H
#define MIXQ_WORKPOOL_H

#include <stddef.h>

typedef struct mx_pool mx_pool;

/* Creates a pool of nthreads (>= 1; 0 = online CPUs) or NULL if out of resources. */
mx_pool *mx_pool_create(unsigned nthreads);

/* Joins the workers and frees the pool; NULL is allowed. */
void mx_pool_destroy(mx_pool *pool);

/* Threads in the pool, the caller included. */
unsigned mx_pool_threads(const mx_pool *pool);

/*
 * Runs fn(ctx, i) for every i in [0, n) on the pool's threads (the caller
 * included) and returns when all calls have returned.  Not reentrant: fn must
 * not call mx_pool_run on the same pool.  pool may be NULL (runs inline).
 */
void mx_pool_run(mx_pool *pool, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);

/* Number of online CPUs (at least 1). */
unsigned mx_online_cpus(void);

#endif
