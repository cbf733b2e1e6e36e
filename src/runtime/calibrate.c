/* calibrate.c - collecting the importance matrix (see calibrate.h). */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "runtime/calibrate.h"
#include "runtime/eval.h"
#include "runtime/forward.h"

typedef struct collector {
    const rt_weight **w;    /* the weights observed ... */
    size_t *e;              /* ... and the indices of their entries */
    size_t n;
    mx_imatrix *im;
} collector;

static void observe(void *ctx, const rt_weight *w, const float *x, size_t n_tokens)
{
    collector *c = ctx;
    for (size_t i = 0; i < c->n; i++) {
        if (c->w[i] != w) continue;
        mx_imatrix_entry *e = &c->im->entries[c->e[i]];
        for (size_t t = 0; t < n_tokens; t++) {
            const float *xt = x + t * e->n;
            for (size_t j = 0; j < e->n; j++) e->sum2[j] += (double)xt[j] * xt[j];
        }
        e->count += (double)n_tokens;
        return;
    }
}

static mixq_status add(collector *c, mx_imatrix *im, const rt_weight *w, const char *gguf_name, mixq_error *err)
{
    char b[160];
    const char *name = gguf_name ? gguf_name : rt_gguf_name(w->name, b, sizeof b);
    if (!name) return mx_err(err, MIXQ_E_INVALID_ARG, "no GGUF name for tensor '%s'", w->name);
    mx_imatrix_entry *e = mx_imatrix_add(im, name, (size_t)w->cols);
    if (!e) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    c->w[c->n] = w;
    c->e[c->n] = (size_t)(e - im->entries);
    c->n++;
    return MIXQ_OK;
}

mixq_status rt_calibrate(const rt_model *m, const int32_t *tokens, size_t n, const rt_calibrate_options *o,
                         mx_imatrix **out, mixq_error *err)
{
    *out = NULL;
    size_t ctx = o->ctx;
    if (ctx < 1) return mx_err(err, MIXQ_E_INVALID_ARG, "a context of 0 tokens");
    size_t chunks = n / ctx;
    if (o->max_chunks && chunks > o->max_chunks) chunks = o->max_chunks;
    if (chunks == 0) return mx_err(err, MIXQ_E_INVALID_ARG, "%zu tokens do not make one chunk of %zu", n, ctx);
    mixq_status s = rt_tokens_check("the input", tokens, chunks * ctx, m->cfg.vocab, err);
    if (s) return s;
    if (ctx > UINT32_MAX || chunks > UINT32_MAX) return mx_err(err, MIXQ_E_INVALID_ARG, "too many tokens");

    size_t L = (size_t)m->cfg.n_layers, nw = 7 * L + 1;
    collector c = {.w = malloc(nw * sizeof *c.w), .e = malloc(nw * sizeof *c.e)};
    mx_imatrix *im = mx_imatrix_new();
    rt_state *st = NULL;
    int32_t *chunk = malloc(ctx * sizeof *chunk);
    float *logits = o->process_output ? malloc(ctx * (size_t)m->cfg.vocab * sizeof *logits) : NULL;
    c.im = im;
    if (!c.w || !c.e || !im || !chunk || (o->process_output && !logits)) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t l = 0; l < L && !s; l++) {
        const rt_layer *ly = &m->layers[l];
        const rt_weight *ws[7] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
        for (int k = 0; k < 7 && !s; k++) s = add(&c, im, ws[k], NULL, err);
    }
    if (!s && o->process_output) s = add(&c, im, &m->lm_head, "output.weight", err);
    if (!s && o->dataset) s = mx_imatrix_add_dataset(im, o->dataset, err);
    if (!s) s = rt_state_create(m, ctx, ctx, o->pool, &st, err);
    if (s) goto done;
    rt_state_set_observer(st, observe, &c);
    for (size_t ch = 0; ch < chunks; ch++) {
        if (o->cancel && *o->cancel) {
            s = mx_err(err, MIXQ_E_CANCELLED, "cancelled");
            goto done;
        }
        memcpy(chunk, tokens + ch * ctx, ctx * sizeof *chunk);
        if (m->cfg.bos_id >= 0 && m->cfg.bos_id < m->cfg.vocab) chunk[0] = (int32_t)m->cfg.bos_id;
        if ((s = rt_forward(st, chunk, ctx, 0, o->process_output ? 0 : ctx, logits, err))) goto done;
        if (o->progress) o->progress(o->progress_ctx, ch + 1, chunks);
    }
    im->chunk_count = (uint32_t)chunks;
    im->chunk_size = (uint32_t)ctx;
    *out = im;
    im = NULL;
done:
    rt_state_free(st);
    mx_imatrix_free(im);
    free(c.w);
    free(c.e);
    free(chunk);
    free(logits);
    return s;
}
