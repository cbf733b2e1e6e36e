/*
 * eval.h - perplexity and, against a base model, the KL divergence of the
 * next-token distributions, with llama.cpp's conventions: the tokens are cut
 * into chunks of ctx tokens, the first token of each chunk is replaced by BOS
 * (when the model has one), and only the second half of each chunk is scored
 * (the logits at positions ctx/2 .. ctx-2 predict the tokens after them).
 * Both models run on each chunk and are compared on the fly: no logits file.
 */
#ifndef MIXQ_RUNTIME_EVAL_H
#define MIXQ_RUNTIME_EVAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/model.h"

/* Called after each chunk: chunks done, total, perplexity so far. */
typedef void (*rt_eval_progress)(void *ctx, size_t done, size_t total, double ppl);

typedef struct rt_eval_options {
    size_t ctx;                     /* tokens per chunk (>= 4) */
    size_t max_chunks;              /* 0 = every whole chunk */
    mx_pool *pool;                  /* may be NULL */
    volatile sig_atomic_t *cancel;  /* checked between chunks */
    rt_eval_progress progress;
    void *progress_ctx;
    double *chunk_kld;              /* optional, with a base: each chunk's mean KLD, room for
                                       rt_eval_chunk_count() values */
} rt_eval_options;

typedef struct rt_eval_result {
    size_t chunks, ctx, n_scored;   /* n_scored: predictions scored */
    double nll;                     /* mean negative log-likelihood (nats) */
    double ppl;                     /* exp(nll) */
    int has_base;
    double base_nll, base_ppl;
    double kld_mean, kld_median, kld_p99, kld_max; /* KL(base || model) per prediction, nats */
    double kld_stderr;              /* standard error of kld_mean from the per-chunk means (0 for one chunk) */
    double same_top1;               /* fraction of predictions with the same most likely token */
    double rms_dp;                  /* sqrt(mean((p_model(next) - p_base(next))^2)) */
} rt_eval_result;

/*
 * Evaluates model (and base, which may be NULL) on tokens[0..n).  Fails with
 * MIXQ_E_INVALID_ARG if there is not one whole chunk, MIXQ_E_FORMAT if base
 * has another vocabulary, MIXQ_E_RANGE for a token outside the vocabulary,
 * MIXQ_E_CANCELLED if the cancel flag was raised.
 */
mixq_status rt_eval(const rt_model *model, const rt_model *base, const int32_t *tokens, size_t n,
                    const rt_eval_options *opts, rt_eval_result *out, mixq_error *err);

/* Chunks rt_eval scores from n tokens with these options (0 if not one whole chunk). */
size_t rt_eval_chunk_count(size_t n, const rt_eval_options *opts);

/* Linear-interpolated percentile (fraction in [0, 1]) of sorted values (llama.cpp's rule). */
double rt_percentile(const double *sorted, size_t n, double fraction);

/*
 * Parses a token file: decimal ids separated by white space.  `name` is used
 * in messages.  An empty file gives n = 0.
 */
mixq_status rt_tokens_parse(const char *name, const char *text, size_t len, int32_t **out, size_t *n,
                            mixq_error *err);

/* Reads and parses a token file. */
mixq_status rt_tokens_load(const char *path, int32_t **out, size_t *n, mixq_error *err);

/* MIXQ_E_RANGE naming `name` and the position if any id is outside [0, vocab). */
mixq_status rt_tokens_check(const char *name, const int32_t *ids, size_t n, int64_t vocab, mixq_error *err);

#endif
