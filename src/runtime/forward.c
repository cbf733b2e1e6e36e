/* forward.c - the LLaMA-family forward pass (see forward.h). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "runtime/forward.h"

struct rt_state {
    const rt_model *m;
    size_t max_ctx, max_batch;
    mx_pool *pool;
    rt_observer observer;
    void *observer_ctx;
    size_t qd, kvd;                 /* widths of q and of k/v */
    float *x, *xn, *q, *k, *v, *att, *o, *gate, *up; /* [max_batch, ...] */
    float *kcache, *vcache;         /* [layer][max_ctx][kvd] */
    float *rope_cos, *rope_sin;     /* [max_ctx][head_dim / 2] */
};

/* The rotation frequencies of RoPE, with the llama3 rescaling when configured. */
static void rope_frequencies(const rt_config *c, double *inv_freq)
{
    size_t half = (size_t)c->head_dim / 2;
    for (size_t i = 0; i < half; i++) {
        double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->head_dim);
        if (c->rope_llama3) {
            double old = (double)c->rope_orig_max_pos;
            double low_wavelen = old / c->rope_low_freq_factor, high_wavelen = old / c->rope_high_freq_factor;
            double wavelen = 2 * M_PI / f;
            if (wavelen > low_wavelen) {
                f = f / c->rope_factor;
            } else if (wavelen >= high_wavelen) {
                double smooth = (old / wavelen - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

void rt_state_free(rt_state *s)
{
    if (!s) return;
    free(s->x);
    free(s->xn);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->att);
    free(s->o);
    free(s->gate);
    free(s->up);
    free(s->kcache);
    free(s->vcache);
    free(s->rope_cos);
    free(s->rope_sin);
    free(s);
}

static float *alloc_f(size_t a, size_t b, int *fail)
{
    if (b && a > SIZE_MAX / sizeof(float) / b) {
        *fail = 1;
        return NULL;
    }
    size_t count = a * b;
    float *p = calloc(count ? count : 1, sizeof(float));
    if (!p) *fail = 1;
    return p;
}

mixq_status rt_state_create(const rt_model *m, size_t max_ctx, size_t max_batch, mx_pool *pool, rt_state **out,
                            mixq_error *err)
{
    *out = NULL;
    const rt_config *c = &m->cfg;
    if (max_ctx == 0 || max_batch == 0 || max_batch > max_ctx)
        return mx_err(err, MIXQ_E_INVALID_ARG, "bad context (%zu) or batch (%zu) size", max_ctx, max_batch);
    if (c->sliding_window > 0 && max_ctx > (size_t)c->sliding_window)
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "a context of %zu tokens exceeds the model's sliding_window %lld (not supported)", max_ctx,
                      (long long)c->sliding_window);
    rt_state *s = calloc(1, sizeof *s);
    if (!s) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    s->m = m;
    s->max_ctx = max_ctx;
    s->max_batch = max_batch;
    s->pool = pool;
    s->qd = (size_t)(c->n_heads * c->head_dim);
    s->kvd = (size_t)(c->n_kv_heads * c->head_dim);
    size_t H = (size_t)c->hidden, I = (size_t)c->intermediate, half = (size_t)c->head_dim / 2;
    int fail = 0;
    s->x = alloc_f(max_batch, H, &fail);
    s->xn = alloc_f(max_batch, H, &fail);
    s->q = alloc_f(max_batch, s->qd, &fail);
    s->k = alloc_f(max_batch, s->kvd, &fail);
    s->v = alloc_f(max_batch, s->kvd, &fail);
    s->att = alloc_f(max_batch, s->qd, &fail);
    s->o = alloc_f(max_batch, H, &fail);
    s->gate = alloc_f(max_batch, I, &fail);
    s->up = alloc_f(max_batch, I, &fail);
    s->kcache = alloc_f((size_t)c->n_layers * max_ctx, s->kvd, &fail);
    s->vcache = alloc_f((size_t)c->n_layers * max_ctx, s->kvd, &fail);
    s->rope_cos = alloc_f(max_ctx, half, &fail);
    s->rope_sin = alloc_f(max_ctx, half, &fail);
    double *inv_freq = malloc(half * sizeof *inv_freq);
    if (fail || !inv_freq) {
        free(inv_freq);
        rt_state_free(s);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory for a context of %zu tokens", max_ctx);
    }
    rope_frequencies(c, inv_freq);
    for (size_t p = 0; p < max_ctx; p++)
        for (size_t i = 0; i < half; i++) {
            /* the angle as the reference computes it: an f32 frequency times an f32 position */
            float angle = (float)p * (float)inv_freq[i];
            s->rope_cos[p * half + i] = (float)cos((double)angle);
            s->rope_sin[p * half + i] = (float)sin((double)angle);
        }
    free(inv_freq);
    *out = s;
    return MIXQ_OK;
}

void rt_state_set_observer(rt_state *s, rt_observer fn, void *ctx)
{
    s->observer = fn;
    s->observer_ctx = ctx;
}

/* out = x / rms(x) * w over n values. */
static void rmsnorm(float *out, const float *x, const float *w, size_t n, double eps)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (size_t i = 0; i < n; i++) out[i] = w[i] * (x[i] * r);
}

/* Rotates each head_dim-wide head of v (n_heads of them) by position p (rotate-half layout). */
static void rope(const rt_state *s, float *v, size_t n_heads, size_t p)
{
    size_t hd = (size_t)s->m->cfg.head_dim, half = hd / 2;
    const float *cs = s->rope_cos + p * half, *sn = s->rope_sin + p * half;
    for (size_t h = 0; h < n_heads; h++) {
        float *x = v + h * hd;
        for (size_t i = 0; i < half; i++) {
            float a = x[i], b = x[i + half];
            x[i] = a * cs[i] - b * sn[i];
            x[i + half] = b * cs[i] + a * sn[i];
        }
    }
}

static mixq_status linear(rt_state *s, const rt_weight *w, const float *bias, const float *x, size_t n, float *y,
                          mixq_error *err)
{
    if (s->observer) s->observer(s->observer_ctx, w, x, n);
    mixq_status st = rt_linear(w, x, n, y, s->pool, err);
    if (st || !bias) return st;
    for (size_t t = 0; t < n; t++)
        for (uint64_t r = 0; r < w->rows; r++) y[t * w->rows + r] += bias[r];
    return MIXQ_OK;
}

typedef struct attn_job {
    rt_state *s;
    size_t layer, pos;
    atomic_int failed;
} attn_job;

/* Attention of token t of the batch over the cache: every head. */
static void attn_token(void *ctx, size_t t)
{
    attn_job *j = ctx;
    rt_state *s = j->s;
    const rt_config *c = &s->m->cfg;
    size_t hd = (size_t)c->head_dim, p = j->pos + t, group = (size_t)(c->n_heads / c->n_kv_heads);
    const float *kc = s->kcache + j->layer * s->max_ctx * s->kvd, *vc = s->vcache + j->layer * s->max_ctx * s->kvd;
    float *scores = malloc((p + 1) * sizeof *scores);
    if (!scores) {
        atomic_store(&j->failed, 1);
        return;
    }
    float scale = 1.0f / sqrtf((float)hd);
    for (size_t h = 0; h < (size_t)c->n_heads; h++) {
        const float *q = s->q + t * s->qd + h * hd;
        size_t kvh = h / group;
        float mx = -INFINITY;
        for (size_t i = 0; i <= p; i++) {
            const float *k = kc + i * s->kvd + kvh * hd;
            float d = 0;
            for (size_t e = 0; e < hd; e++) d += q[e] * k[e];
            scores[i] = d * scale;
            if (scores[i] > mx) mx = scores[i];
        }
        float sum = 0;
        for (size_t i = 0; i <= p; i++) {
            scores[i] = expf(scores[i] - mx);
            sum += scores[i];
        }
        float *out = s->att + t * s->qd + h * hd;
        memset(out, 0, hd * sizeof *out);
        for (size_t i = 0; i <= p; i++) {
            const float *v = vc + i * s->kvd + kvh * hd;
            float a = scores[i] / sum;
            for (size_t e = 0; e < hd; e++) out[e] += a * v[e];
        }
    }
    free(scores);
}

mixq_status rt_forward(rt_state *s, const int32_t *tokens, size_t n, size_t pos, size_t logits_from, float *logits,
                       mixq_error *err)
{
    const rt_model *m = s->m;
    const rt_config *c = &m->cfg;
    if (n == 0 || n > s->max_batch || pos > s->max_ctx || n > s->max_ctx - pos || logits_from > n)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%zu tokens at position %zu do not fit a context of %zu (batch %zu)",
                      n, pos, s->max_ctx, s->max_batch);
    size_t H = (size_t)c->hidden, I = (size_t)c->intermediate;
    mixq_status st;
    for (size_t t = 0; t < n; t++) {
        if (tokens[t] < 0 || tokens[t] >= c->vocab)
            return mx_err(err, MIXQ_E_RANGE, "token id %ld is out of range (the vocabulary has %lld)",
                          (long)tokens[t], (long long)c->vocab);
        if ((st = rt_weight_rows(&m->embed, (uint64_t)tokens[t], (uint64_t)tokens[t] + 1, s->x + t * H, err)))
            return st;
    }
    for (size_t l = 0; l < (size_t)c->n_layers; l++) {
        const rt_layer *L = &m->layers[l];
        /* attention */
        for (size_t t = 0; t < n; t++) rmsnorm(s->xn + t * H, s->x + t * H, L->attn_norm, H, c->norm_eps);
        if ((st = linear(s, &L->wq, L->bq, s->xn, n, s->q, err)) ||
            (st = linear(s, &L->wk, L->bk, s->xn, n, s->k, err)) ||
            (st = linear(s, &L->wv, L->bv, s->xn, n, s->v, err)))
            return st;
        float *kc = s->kcache + l * s->max_ctx * s->kvd, *vc = s->vcache + l * s->max_ctx * s->kvd;
        for (size_t t = 0; t < n; t++) {
            rope(s, s->q + t * s->qd, (size_t)c->n_heads, pos + t);
            rope(s, s->k + t * s->kvd, (size_t)c->n_kv_heads, pos + t);
            memcpy(kc + (pos + t) * s->kvd, s->k + t * s->kvd, s->kvd * sizeof(float));
            memcpy(vc + (pos + t) * s->kvd, s->v + t * s->kvd, s->kvd * sizeof(float));
        }
        attn_job aj = {.s = s, .layer = l, .pos = pos};
        atomic_init(&aj.failed, 0);
        mx_pool_run(s->pool, n, attn_token, &aj);
        if (atomic_load(&aj.failed)) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
        if ((st = linear(s, &L->wo, L->bo, s->att, n, s->o, err))) return st;
        for (size_t i = 0; i < n * H; i++) s->x[i] += s->o[i];
        /* MLP */
        for (size_t t = 0; t < n; t++) rmsnorm(s->xn + t * H, s->x + t * H, L->ffn_norm, H, c->norm_eps);
        if ((st = linear(s, &L->w_gate, NULL, s->xn, n, s->gate, err)) ||
            (st = linear(s, &L->w_up, NULL, s->xn, n, s->up, err)))
            return st;
        for (size_t i = 0; i < n * I; i++) {
            float g = s->gate[i];
            s->gate[i] = g / (1.0f + expf(-g)) * s->up[i];
        }
        if ((st = linear(s, &L->w_down, NULL, s->gate, n, s->o, err))) return st;
        for (size_t i = 0; i < n * H; i++) s->x[i] += s->o[i];
    }
    if (logits_from == n) return MIXQ_OK;
    for (size_t t = logits_from; t < n; t++) rmsnorm(s->xn + t * H, s->x + t * H, m->final_norm, H, c->norm_eps);
    return linear(s, &m->lm_head, NULL, s->xn + logits_from * H, n - logits_from, logits, err);
}
