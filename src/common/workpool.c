/* workpool.c - fixed worker pool for parallel-for jobs (see workpool.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/workpool.h"

struct mx_pool {
    unsigned nthreads;          /* including the caller */
    pthread_t *workers;         /* nthreads - 1 of them */
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long generation;   /* bumped for each job */
    int quit;
    /* the current job */
    void (*fn)(void *, size_t);
    void *ctx;
    size_t n;
    atomic_size_t next;         /* next index to hand out */
    unsigned busy;              /* workers still inside the current job */
};

unsigned mx_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

/* Takes indices until none are left. */
static void drain(mx_pool *p)
{
    size_t i;
    while ((i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed)) < p->n) p->fn(p->ctx, i);
}

static void *worker(void *arg)
{
    mx_pool *p = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->start, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        drain(p);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

mx_pool *mx_pool_create(unsigned nthreads)
{
    if (nthreads == 0) nthreads = mx_online_cpus();
    mx_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->nthreads = 1;
    atomic_init(&p->next, 0);
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    if (nthreads > 1) {
        p->workers = calloc(nthreads - 1, sizeof *p->workers);
        if (!p->workers) {
            mx_pool_destroy(p);
            return NULL;
        }
        for (unsigned i = 0; i + 1 < nthreads; i++) {
            if (pthread_create(&p->workers[i], NULL, worker, p)) {
                mx_pool_destroy(p);
                return NULL;
            }
            p->nthreads++;
        }
    }
    return p;
}

void mx_pool_destroy(mx_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i + 1 < p->nthreads; i++) pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

unsigned mx_pool_threads(const mx_pool *p)
{
    return p ? p->nthreads : 1;
}

void mx_pool_run(mx_pool *p, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
    if (!p || p->nthreads == 1 || n <= 1) {
        for (size_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->busy = p->nthreads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    drain(p);
    pthread_mutex_lock(&p->mu);
    while (p->busy) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
