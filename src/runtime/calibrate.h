/*
 * calibrate.h - the importance matrix of a model on calibration tokens, as
 * llama.cpp's imatrix tool computes it: chunks of ctx tokens (the first
 * replaced by BOS when the model has one), every token of every chunk
 * counted, and for the input x of every linear layer of the blocks (and,
 * optionally, of lm_head) the per-column sum of x^2 and the token count.
 */
#ifndef MIXQ_RUNTIME_CALIBRATE_H
#define MIXQ_RUNTIME_CALIBRATE_H

#include <signal.h>

#include "format/imatrix.h"
#include "runtime/model.h"

typedef struct rt_calibrate_options {
    size_t ctx;                     /* tokens per chunk (>= 1) */
    size_t max_chunks;              /* 0 = every whole chunk */
    int process_output;             /* also lm_head, as "output.weight" (llama.cpp --process-output) */
    const char *dataset;            /* recorded in the file (imatrix.datasets); may be NULL */
    mx_pool *pool;
    volatile sig_atomic_t *cancel;
    void (*progress)(void *ctx, size_t done, size_t total);
    void *progress_ctx;
} rt_calibrate_options;

mixq_status rt_calibrate(const rt_model *m, const int32_t *tokens, size_t n, const rt_calibrate_options *o,
                         mx_imatrix **out, mixq_error *err);

#endif
