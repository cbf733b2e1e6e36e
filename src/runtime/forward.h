/*
 * forward.h - the forward pass of a LLaMA-family model (llama2.c style,
 * clarity first): embedding lookup, per layer RMSNorm, attention with RoPE
 * (Hugging Face rotate-half layout, rope_theta, llama3 scaling), grouped-query
 * attention with a causal mask over a KV cache, RMSNorm, SwiGLU MLP; then the
 * final norm and lm_head.  f32 activations.  n tokens go through each linear
 * layer at once (a GEMM); work is spread over the pool and the results do not
 * depend on the thread count.
 */
#ifndef MIXQ_RUNTIME_FORWARD_H
#define MIXQ_RUNTIME_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/model.h"

/*
 * Called with the input of every linear layer before it is applied:
 * x is [n_tokens, w->cols].  Used by calibration (the importance matrix).
 */
typedef void (*rt_observer)(void *ctx, const rt_weight *w, const float *x, size_t n_tokens);

typedef struct rt_state rt_state;

/*
 * Buffers for up to max_ctx positions (the KV cache) and batches of up to
 * max_batch tokens.  pool may be NULL (one thread); it is not owned.
 */
mixq_status rt_state_create(const rt_model *m, size_t max_ctx, size_t max_batch, mx_pool *pool, rt_state **out,
                            mixq_error *err);
void rt_state_free(rt_state *s);

/* Sets (or clears, fn NULL) the observer of linear-layer inputs. */
void rt_state_set_observer(rt_state *s, rt_observer fn, void *ctx);

/*
 * Runs tokens[0..n) at positions pos..pos+n-1 (positions before pos must
 * already be in the cache: pos = 0 starts a new sequence).  n <= max_batch,
 * pos + n <= max_ctx.  Writes the logits of tokens [logits_from, n) to
 * logits ((n - logits_from) * vocab floats); logits may be NULL if
 * logits_from == n.  A token id outside the vocabulary is MIXQ_E_RANGE.
 */
mixq_status rt_forward(rt_state *s, const int32_t *tokens, size_t n, size_t pos, size_t logits_from,
                       float *logits, mixq_error *err);

#endif
