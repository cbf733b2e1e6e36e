/*
 * measure.h - how much each tensor's quantization moves the model's output:
 * for every tensor the planner plans, only that tensor is stored as a
 * reference type (exactly as the converter stores it) and the mean KL
 * divergence of the next-token distribution from the unquantized model's is
 * read on calibration chunks (eval.h's conventions: BOS first, the second
 * half of each chunk scored).  The results go to a measurement file
 * (plan/plan_measurement.h), rewritten atomically after every tensor, so an
 * interrupted run resumes where it stopped.  docs/PLANNER.md §10.
 */
#ifndef MIXQ_RUNTIME_MEASURE_H
#define MIXQ_RUNTIME_MEASURE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixq_tools.h"
#include "runtime/model.h"

/* After each tensor: tensors done (measured now or before), total, its name and KLD; resumed: it was in the file. */
typedef void (*rt_measure_progress)(void *ctx, size_t done, size_t total, const char *name, double kld, bool resumed);

typedef struct rt_measure_options {
    size_t ctx;                     /* tokens per chunk (>= 4) */
    size_t max_chunks;              /* 0 = every whole chunk */
    const char *reference;          /* the reference type spec (e.g. "int3_dq") */
    bool rtn;                       /* plain min/max scales, as convert --rtn */
    const char *imatrix_path;       /* NULL, or the importance matrix the converter would be given */
    mixq_imatrix_weighting imatrix_weighting;
    const char *out_path;           /* the measurement file: resumed if it exists with the same settings */
    size_t max_tensors;             /* 0 = all; else measure at most this many new tensors and stop */
    size_t max_base_bytes;          /* the base logits are kept if they fit (0 = 1 GiB), else recomputed */
    mx_pool *pool;                  /* may be NULL */
    volatile sig_atomic_t *cancel;  /* checked between chunks */
    rt_measure_progress progress;
    void *progress_ctx;
} rt_measure_options;

typedef struct rt_measure_result {
    size_t tensors;                 /* tensors the planner plans */
    size_t measured;                /* measured by this run */
    size_t resumed;                 /* already in the file */
    size_t remaining;               /* still to measure (max_tensors reached) */
    size_t forwards;                /* forward passes of chunks this run (base included) */
    size_t base_forwards;           /* of them, the unquantized model's */
    size_t chunks, ctx;
    bool base_kept;                 /* base logits kept in memory (else recomputed per chunk) */
    double base_ppl;                /* perplexity of the unquantized model on the chunks */
    char reference[48];             /* the reference type as recorded */
} rt_measure_result;

/*
 * Measures model m (opened from a safetensors checkpoint: the unquantized
 * weights are the reference) on tokens[0..n).  Errors: MIXQ_E_INVALID_ARG
 * (a container, not one whole chunk, a bad reference type, an existing file
 * measured with other settings), MIXQ_E_RANGE (a token outside the
 * vocabulary), MIXQ_E_CANCELLED, I/O and format errors of the files.
 * m's weights are restored before it returns.
 */
mixq_status rt_measure(rt_model *m, const int32_t *tokens, size_t n, const rt_measure_options *o,
                       rt_measure_result *r, mixq_error *err);

#endif
