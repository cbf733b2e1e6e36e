/* measure.c - per-tensor KL divergence with one tensor quantized (see measure.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/checked.h"
#include "common/error.h"
#include "format/imatrix.h"
#include "plan/plan_importance.h"
#include "plan/plan_measurement.h"
#include "plan/plan_roles.h"
#include "runtime/eval.h"
#include "runtime/forward.h"
#include "runtime/measure.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The base model's distribution at the scored positions of one chunk: logits, max and log-sum-exp. */
typedef struct base_chunk {
    float *logits;  /* [n_pos, V] */
    double *mx, *lse;
} base_chunk;

typedef struct kld_job {
    const float *logits;
    const base_chunk *b;
    size_t V;
    double *kld;    /* per position */
    const int32_t *targets;
    double *nll;    /* base nll per position (when computing the base), else NULL */
} kld_job;

/* Max and log-sum-exp of V logits (as eval.c forms them). */
static void lse_of(const float *l, size_t V, double *mx_out, double *lse_out)
{
    float mx = l[0];
    for (size_t i = 1; i < V; i++)
        if (l[i] > mx) mx = l[i];
    double s = 0;
    for (size_t i = 0; i < V; i++) s += exp((double)l[i] - mx);
    *mx_out = mx;
    *lse_out = log(s);
}

/* The base statistics of position i (nll of the target too). */
static void base_pos(void *ctx, size_t i)
{
    kld_job *j = ctx;
    base_chunk *b = (base_chunk *)j->b;
    const float *l = b->logits + i * j->V;
    lse_of(l, j->V, &b->mx[i], &b->lse[i]);
    j->nll[i] = -((double)l[j->targets[i]] - b->mx[i] - b->lse[i]);
}

/* KL(base || model) at position i. */
static void kld_pos(void *ctx, size_t i)
{
    kld_job *j = ctx;
    const float *l = j->logits + i * j->V, *bl = j->b->logits + i * j->V;
    double mx, lse;
    lse_of(l, j->V, &mx, &lse);
    double bmx = j->b->mx[i], blse = j->b->lse[i], kl = 0;
    for (size_t k = 0; k < j->V; k++) {
        double lb = (double)bl[k] - bmx - blse, lm = (double)l[k] - mx - lse;
        kl += exp(lb) * (lb - lm);
    }
    j->kld[i] = kl;
}

/* Everything one run holds. */
typedef struct run {
    rt_model *m;
    const rt_measure_options *o;
    const int32_t *tokens;
    size_t ctx, chunks, first, n_pos, V;
    rt_state *st;
    int32_t *chunk;
    float *logits;             /* [n_pos + 1, V] of the model (rt_forward gives the last position's too) */
    base_chunk *base;          /* [chunks] when kept, else [1] */
    bool kept;
    double *kld;               /* [n_pos] */
    size_t forwards, base_forwards;
} run;

/* The chunk c's tokens, BOS first. */
static void chunk_tokens(run *r, size_t c)
{
    memcpy(r->chunk, r->tokens + c * r->ctx, r->ctx * sizeof *r->chunk);
    if (r->m->cfg.bos_id >= 0) r->chunk[0] = (int32_t)r->m->cfg.bos_id;
}

/* Runs the (unsubstituted) model on chunk c into base chunk b; *nll_sum gets the base nll summed. */
static mixq_status base_forward(run *r, size_t c, base_chunk *b, double *nll_sum, mixq_error *err)
{
    chunk_tokens(r, c);
    mixq_status s = rt_forward(r->st, r->chunk, r->ctx, 0, r->first, b->logits, err);
    if (s) return s;
    r->forwards++;
    r->base_forwards++;
    double *nll = malloc(r->n_pos * sizeof *nll);
    if (!nll) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    kld_job j = {.b = b, .V = r->V, .targets = r->tokens + c * r->ctx + r->first + 1, .nll = nll};
    mx_pool_run(r->o->pool, r->n_pos, base_pos, &j);
    double sum = 0;
    for (size_t i = 0; i < r->n_pos; i++) sum += nll[i];
    free(nll);
    if (nll_sum) *nll_sum = sum;
    return MIXQ_OK;
}

static bool base_alloc(base_chunk *b, size_t n_pos, size_t V)
{
    b->logits = malloc((n_pos + 1) * V * sizeof *b->logits); /* rt_forward writes the last position's too */
    b->mx = malloc(n_pos * sizeof *b->mx);
    b->lse = malloc(n_pos * sizeof *b->lse);
    return b->logits && b->mx && b->lse;
}

static void base_free(base_chunk *b)
{
    free(b->logits);
    free(b->mx);
    free(b->lse);
}

/*
 * Mean KLD over every scored prediction of the model as it is bound now
 * (name's values substituted) against the base: chunk by chunk, the sums in
 * position then chunk order.
 */
static mixq_status kld_of(run *r, const char *name, const float *values, double *out, mixq_error *err)
{
    double total = 0;
    for (size_t c = 0; c < r->chunks; c++) {
        if (r->o->cancel && *r->o->cancel) return mx_err(err, MIXQ_E_CANCELLED, "cancelled");
        const base_chunk *b = &r->base[r->kept ? c : 0];
        mixq_status s;
        if (!r->kept) { /* the base again, with the stored weights */
            rt_model_substitute(r->m, name, NULL);
            s = base_forward(r, c, &r->base[0], NULL, err);
            rt_model_substitute(r->m, name, values);
            if (s) return s;
        }
        chunk_tokens(r, c);
        if ((s = rt_forward(r->st, r->chunk, r->ctx, 0, r->first, r->logits, err))) return s;
        r->forwards++;
        kld_job j = {.logits = r->logits, .b = b, .V = r->V, .kld = r->kld};
        mx_pool_run(r->o->pool, r->n_pos, kld_pos, &j);
        double sum = 0;
        for (size_t i = 0; i < r->n_pos; i++) sum += r->kld[i];
        total += sum;
    }
    *out = total / (double)(r->chunks * r->n_pos);
    return MIXQ_OK;
}

/* The settings this run records (and a resumed file must have). */
static mixq_status settings(run *r, const char *ref_norm, const mx_imatrix *im, mx_measurement *ms, mixq_error *err)
{
    mx_model_identity(r->m->sm, ms->model_xxh3);
    ms->model_tensors = r->m->sm->ntensors;
    ms->rtn = r->o->rtn;
    ms->ctx = r->ctx;
    ms->chunks = r->chunks;
    /* the token ids used, as little-endian int32 */
    XXH3_state_t *h = XXH3_createState();
    if (!h || XXH3_64bits_reset(h) != XXH_OK) {
        XXH3_freeState(h);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < r->chunks * r->ctx; i++) {
        uint32_t v = (uint32_t)r->tokens[i];
        uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
        XXH3_64bits_update(h, b, 4);
    }
    snprintf(ms->tokens_xxh3, sizeof ms->tokens_xxh3, "%016" PRIx64, (uint64_t)XXH3_64bits_digest(h));
    XXH3_freeState(h);
    if (!(ms->reference = strdup(ref_norm))) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    if (im) {
        const char *p = r->o->imatrix_path, *base = strrchr(p, '/');
        snprintf(ms->imatrix_xxh3, sizeof ms->imatrix_xxh3, "%016" PRIx64, im->hash);
        ms->imatrix_file = strdup(base ? base + 1 : p);
        ms->imatrix_weighting = strdup(mx_imatrix_weighting_name(r->o->imatrix_weighting));
        if (!ms->imatrix_file || !ms->imatrix_weighting) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    return MIXQ_OK;
}

/* Measures tensor i of the checkpoint (its values as the converter stores them as `ref`) into *kld. */
static mixq_status measure_tensor(run *r, const st_tensor *t, const mx_role_info *role, const mx_tstats *stats,
                                  const mx_cand *ref, const mx_imatrix *im, double *kld, mixq_error *err)
{
    const st_model *sm = r->m->sm;
    char b[MX_SHOWN_BUF];
    if (t->n_elements > SIZE_MAX / sizeof(float))
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": too large for this machine", t->name);
    mx_importance imp = {0};
    mixq_status s = MIXQ_OK;
    if (im && !r->o->rtn) {
        bool missing;
        s = mx_importance_for(im, mx_shown(r->o->imatrix_path, b), t, role, r->o->imatrix_weighting, &imp, &missing,
                              err);
        if (s) return s;
    }
    float *values = malloc((size_t)t->n_elements * sizeof *values);
    if (!values) {
        mx_importance_free(&imp);
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": out of memory for its values", t->name);
    }
    s = mx_reconstruct_tensor(sm, t, ref, stats, r->o->rtn, imp.a ? &imp : NULL, values, err);
    mx_importance_free(&imp);
    st_release(sm, t);
    if (s == MIXQ_OK) {
        *kld = 0; /* a tensor the forward pass does not use cannot move the output */
        if (rt_model_substitute(r->m, t->name, values) > 0) s = kld_of(r, t->name, values, kld, err);
        rt_model_substitute(r->m, t->name, NULL);
    }
    free(values);
    return s;
}

mixq_status rt_measure(rt_model *m, const int32_t *tokens, size_t n, const rt_measure_options *o,
                       rt_measure_result *res, mixq_error *err)
{
    memset(res, 0, sizeof *res);
    char b[MX_SHOWN_BUF];
    if (!m->sm)
        return mx_err(err, MIXQ_E_INVALID_ARG,
                      "%s is a container: measure the safetensors checkpoint (the unquantized weights are the reference)",
                      mx_shown(m->path, b));
    if (o->ctx < 4) return mx_err(err, MIXQ_E_INVALID_ARG, "a context of %zu tokens is too small (at least 4)", o->ctx);
    run r = {.m = m, .o = o, .tokens = tokens, .ctx = o->ctx, .V = (size_t)m->cfg.vocab};
    r.chunks = n / o->ctx;
    if (o->max_chunks && r.chunks > o->max_chunks) r.chunks = o->max_chunks;
    if (r.chunks == 0) return mx_err(err, MIXQ_E_INVALID_ARG, "%zu tokens do not make one chunk of %zu", n, o->ctx);
    r.first = o->ctx / 2;
    r.n_pos = o->ctx - 1 - r.first;
    mixq_status s = rt_tokens_check("the input", tokens, r.chunks * r.ctx, m->cfg.vocab, err);
    if (s) return s;
    mx_cand ref;
    if ((s = mx_measure_reference(o->reference ? o->reference : "int3_dq", &ref, res->reference, sizeof res->reference,
                                  err)))
        return s;

    const st_model *sm = m->sm;
    size_t nt = sm->ntensors;
    mx_imatrix *im = NULL;
    mx_measurement *ms = mx_measurement_new(), *have = NULL;
    mx_role_info *roles = calloc(nt ? nt : 1, sizeof *roles);
    mx_tstats *stats = calloc(nt ? nt : 1, sizeof *stats);
    bool *eligible = calloc(nt ? nt : 1, sizeof *eligible);
    if (!ms || !roles || !stats || !eligible) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        goto done;
    }
    if (o->imatrix_path && (s = mx_imatrix_read(o->imatrix_path, &im, err))) goto done;
    if ((s = settings(&r, res->reference, im, ms, err))) goto done;
    if (access(o->out_path, F_OK) == 0) { /* resume: the same settings, the tensors done are kept */
        if ((s = mx_measurement_read(o->out_path, &have, err))) goto done;
        if ((s = mx_measurement_same_settings(have, ms, o->out_path, err))) goto done;
    }
    /* which tensors the planner plans: roles (tied embeddings) and the statistics */
    for (size_t i = 0; i < nt; i++) {
        const st_tensor *t = &sm->tensors[i];
        mx_role_classify(t->name, t->ndim, t->shape, &roles[i]);
    }
    mx_roles_finish(roles, nt);
    for (size_t i = 0; i < nt && s == MIXQ_OK; i++) {
        const st_tensor *t = &sm->tensors[i];
        s = mx_measure_stats(sm, t, false, &stats[i], err);
        st_release(sm, t);
        if (s == MIXQ_OK && !mx_plan_fixed_reason(t, &roles[i], &stats[i], false)) {
            eligible[i] = true;
            res->tensors++;
        }
    }
    if (s) goto done;

    /* the base model on every chunk, kept if it fits */
    uint64_t cap = o->max_base_bytes ? o->max_base_bytes : (uint64_t)1 << 30, per = 0, need = 0;
    r.kept = ck_mul((uint64_t)(r.n_pos + 1), sizeof(float) * r.V + 2 * sizeof(double), &per) &&
             ck_mul(per, r.chunks, &need) && need <= cap;
    r.chunk = malloc(r.ctx * sizeof *r.chunk);
    r.logits = malloc((r.ctx - r.first) * r.V * sizeof *r.logits);
    r.kld = malloc(r.n_pos * sizeof *r.kld);
    r.base = calloc(r.kept ? r.chunks : 1, sizeof *r.base);
    if (!r.chunk || !r.logits || !r.kld || !r.base) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    if (!s) s = rt_state_create(m, r.ctx, r.ctx, o->pool, &r.st, err);
    double nll = 0;
    for (size_t c = 0; !s && c < (r.kept ? r.chunks : 1); c++)
        if (!base_alloc(&r.base[c], r.n_pos, r.V)) s = mx_err(err, MIXQ_E_NOMEM, "out of memory for the base logits");
    for (size_t c = 0; !s && c < r.chunks; c++) { /* the base perplexity (and the kept logits) */
        double sum = 0;
        if (o->cancel && *o->cancel) s = mx_err(err, MIXQ_E_CANCELLED, "cancelled");
        if (!s) s = base_forward(&r, c, &r.base[r.kept ? c : 0], &sum, err);
        nll += sum;
    }
    res->base_ppl = exp(nll / (double)(r.chunks * r.n_pos));
    ms->base_perplexity = res->base_ppl;
    res->chunks = r.chunks;
    res->ctx = r.ctx;
    res->base_kept = r.kept;

    /* each tensor: the ones in the file as they are, the others measured and the file rewritten */
    size_t done_count = 0;
    for (size_t i = 0; i < nt && !s; i++) {
        if (!eligible[i]) continue;
        const st_tensor *t = &sm->tensors[i];
        const mx_meas_tensor *prev = have ? mx_measurement_find(have, t->name) : NULL;
        if (prev) {
            s = mx_measurement_add(ms, t->name, prev->kld, prev->seconds, err);
            res->resumed++;
            done_count++;
            if (!s && o->progress) o->progress(o->progress_ctx, done_count, res->tensors, t->name, prev->kld, true);
            continue;
        }
        if (o->max_tensors && res->measured >= o->max_tensors) {
            res->remaining++;
            continue;
        }
        double t0 = now_s(), kld = 0;
        s = measure_tensor(&r, t, &roles[i], &stats[i], &ref, im, &kld, err);
        if (!s) s = mx_measurement_add(ms, t->name, kld, now_s() - t0, err);
        if (!s) s = mx_measurement_write(ms, o->out_path, err);
        if (!s) {
            res->measured++;
            done_count++;
            if (o->progress) o->progress(o->progress_ctx, done_count, res->tensors, t->name, kld, false);
        }
    }
    /* a file that had every tensor already (or none to measure) is still written: it holds the settings */
    if (!s && res->measured == 0) s = mx_measurement_write(ms, o->out_path, err);
done:
    res->forwards = r.forwards;
    res->base_forwards = r.base_forwards;
    free(eligible);
    if (r.base)
        for (size_t c = 0; c < (r.kept ? r.chunks : 1); c++) base_free(&r.base[c]);
    free(r.base);
    free(r.chunk);
    free(r.logits);
    free(r.kld);
    rt_state_free(r.st);
    mx_imatrix_free(im);
    mx_measurement_free(ms);
    mx_measurement_free(have);
    free(roles);
    free(stats);
    return s;
}
