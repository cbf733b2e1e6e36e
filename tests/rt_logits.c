/*
 * rt_logits.c - test helper: runs the forward pass on a model and writes the
 * logits of every position as little-endian f32 to a file, for comparison
 * with the torch reference (tests/python/test_logits.py).
 *   rt_logits MODEL OUT.f32 THREADS BATCH TOKEN...
 * BATCH is how many tokens go through the model at once (the rest follow in
 * batches of that size, exercising the KV cache).
 */
#include <stdio.h>
#include <stdlib.h>

#include "runtime/forward.h"

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: rt_logits MODEL OUT.f32 THREADS BATCH TOKEN...\n");
        return 2;
    }
    mixq_error err;
    rt_model *m;
    if (rt_model_open(argv[1], NULL, &m, &err)) {
        fprintf(stderr, "rt_logits: %s\n", err.message);
        return 1;
    }
    unsigned threads = (unsigned)atoi(argv[3]);
    size_t batch = (size_t)atoi(argv[4]), n = (size_t)(argc - 5);
    int32_t *tok = malloc(n * sizeof *tok);
    for (size_t i = 0; i < n; i++) tok[i] = (int32_t)atol(argv[5 + i]);
    mx_pool *pool = mx_pool_create(threads);
    rt_state *s;
    if (rt_state_create(m, n, batch < n ? batch : n, pool, &s, &err)) {
        fprintf(stderr, "rt_logits: %s\n", err.message);
        return 1;
    }
    size_t V = (size_t)m->cfg.vocab;
    float *logits = malloc(n * V * sizeof *logits);
    for (size_t p = 0; p < n; p += batch) {
        size_t k = n - p < batch ? n - p : batch;
        if (rt_forward(s, tok + p, k, p, 0, logits + p * V, &err)) {
            fprintf(stderr, "rt_logits: %s\n", err.message);
            return 1;
        }
    }
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(logits, sizeof(float), n * V, f) != n * V || fclose(f)) {
        fprintf(stderr, "rt_logits: cannot write %s\n", argv[2]);
        return 1;
    }
    free(logits);
    free(tok);
    rt_state_free(s);
    mx_pool_destroy(pool);
    rt_model_close(m);
    return 0;
}
