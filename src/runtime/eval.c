/* eval.c - perplexity and KL divergence against a base model (see eval.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "runtime/eval.h"
#include "runtime/forward.h"

/* ---------------------------------------------------------------- token files */

mixq_status rt_tokens_parse(const char *name, const char *text, size_t len, int32_t **out, size_t *n,
                            mixq_error *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0, cnt = 0;
    int32_t *ids = NULL;
    size_t i = 0;
    while (i < len) {
        char ch = text[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v') {
            i++;
            continue;
        }
        if (ch < '0' || ch > '9') {
            free(ids);
            return mx_err(err, MIXQ_E_FORMAT, "%s: byte %zu: expected a decimal token id, found '%c'", name, i,
                          (ch >= 32 && ch < 127) ? ch : '?');
        }
        int64_t v = 0;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            v = v * 10 + (text[i] - '0');
            if (v > INT32_MAX) {
                free(ids);
                return mx_err(err, MIXQ_E_RANGE, "%s: byte %zu: token id too large", name, i);
            }
            i++;
        }
        if (i < len && !(text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r' ||
                         text[i] == '\f' || text[i] == '\v')) {
            free(ids);
            return mx_err(err, MIXQ_E_FORMAT, "%s: byte %zu: expected white space after a token id", name, i);
        }
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            int32_t *nb = realloc(ids, nc * sizeof *nb);
            if (!nb) {
                free(ids);
                return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
            }
            ids = nb;
            cap = nc;
        }
        ids[cnt++] = (int32_t)v;
    }
    *out = ids;
    *n = cnt;
    return MIXQ_OK;
}

mixq_status rt_tokens_load(const char *path, int32_t **out, size_t *n, mixq_error *err)
{
    char *text = NULL;
    size_t len = 0;
    mixq_status s = rt_read_file(path, (size_t)1 << 32, &text, &len, err);
    if (s) return s;
    char b[MX_SHOWN_BUF];
    s = rt_tokens_parse(mx_shown(path, b), text, len, out, n, err);
    free(text);
    return s;
}

mixq_status rt_tokens_check(const char *name, const int32_t *ids, size_t n, int64_t vocab, mixq_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return mx_err(err, MIXQ_E_RANGE, "%s: token id %ld at position %zu is out of range (the vocabulary has %lld)",
                          name, (long)ids[i], i, (long long)vocab);
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- scoring */

double rt_percentile(const double *v, size_t n, double fraction)
{
    if (n == 0) return 0;
    if (fraction <= 0) return v[0];
    if (fraction >= 1) return v[n - 1];
    double p = fraction * (double)(n - 1);
    size_t ip = (size_t)p;
    p -= (double)ip;
    return ip + 1 < n ? (1 - p) * v[ip] + p * v[ip + 1] : v[ip];
}

/* Per scored position: log-softmax of the model (and of the base) and the statistics. */
typedef struct score_job {
    const float *logits, *base_logits; /* [n_pos, V] */
    const int32_t *targets;
    size_t V;
    double *nll, *base_nll, *kld, *dp;
    unsigned char *same;
} score_job;

static double log_sum_exp(const float *l, size_t V, float *max_out, size_t *arg)
{
    float mx = l[0];
    size_t am = 0;
    for (size_t i = 1; i < V; i++)
        if (l[i] > mx) {
            mx = l[i];
            am = i;
        }
    double s = 0;
    for (size_t i = 0; i < V; i++) s += exp((double)l[i] - mx);
    *max_out = mx;
    *arg = am;
    return log(s);
}

static void score_pos(void *ctx, size_t i)
{
    score_job *j = ctx;
    const float *l = j->logits + i * j->V;
    size_t tgt = (size_t)j->targets[i], am;
    float mx;
    double lse = log_sum_exp(l, j->V, &mx, &am);
    double lp = (double)l[tgt] - mx - lse;
    j->nll[i] = -lp;
    if (!j->base_logits) return;
    const float *b = j->base_logits + i * j->V;
    float bmx;
    size_t bam;
    double blse = log_sum_exp(b, j->V, &bmx, &bam);
    double blp = (double)b[tgt] - bmx - blse;
    j->base_nll[i] = -blp;
    double kl = 0;
    for (size_t k = 0; k < j->V; k++) {
        double lb = (double)b[k] - bmx - blse, lm = (double)l[k] - mx - lse;
        kl += exp(lb) * (lb - lm);
    }
    j->kld[i] = kl;
    j->dp[i] = exp(lp) - exp(blp);
    j->same[i] = am == bam;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

size_t rt_eval_chunk_count(size_t n, const rt_eval_options *o)
{
    if (o->ctx < 4) return 0;
    size_t chunks = n / o->ctx;
    return o->max_chunks && chunks > o->max_chunks ? o->max_chunks : chunks;
}

/*
 * Standard error of the mean KLD, from the chunks' means (every chunk scores
 * the same number of predictions, so their mean is the overall mean).  The
 * chunks, not the predictions, are taken as the independent samples: the
 * predictions of one chunk share their context and are correlated.
 */
static double chunk_stderr(const double *kld, size_t chunks, size_t n_pos, double mean, double *chunk_out)
{
    double ss = 0;
    for (size_t c = 0; c < chunks; c++) {
        double m = 0;
        for (size_t i = 0; i < n_pos; i++) m += kld[c * n_pos + i];
        m /= (double)n_pos;
        if (chunk_out) chunk_out[c] = m;
        ss += (m - mean) * (m - mean);
    }
    return chunks > 1 ? sqrt(ss / (double)(chunks - 1) / (double)chunks) : 0;
}

mixq_status rt_eval(const rt_model *model, const rt_model *base, const int32_t *tokens, size_t n,
                    const rt_eval_options *o, rt_eval_result *r, mixq_error *err)
{
    memset(r, 0, sizeof *r);
    size_t ctx = o->ctx;
    if (ctx < 4) return mx_err(err, MIXQ_E_INVALID_ARG, "a context of %zu tokens is too small (at least 4)", ctx);
    size_t chunks = rt_eval_chunk_count(n, o);
    if (chunks == 0)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%zu tokens do not make one chunk of %zu", n, ctx);
    size_t V = (size_t)model->cfg.vocab;
    if (base && base->cfg.vocab != model->cfg.vocab)
        return mx_err(err, MIXQ_E_FORMAT, "the base model has a vocabulary of %lld, the model %lld",
                      (long long)base->cfg.vocab, (long long)model->cfg.vocab);
    mixq_status s = rt_tokens_check("the input", tokens, chunks * ctx, model->cfg.vocab, err);
    if (s) return s;

    size_t first = ctx / 2, n_pos = ctx - 1 - first, total = chunks * n_pos;
    rt_state *st = NULL, *bst = NULL;
    float *logits = NULL, *blogits = NULL;
    int32_t *chunk = malloc(ctx * sizeof *chunk);
    double *nll = malloc(total * sizeof *nll), *bnll = NULL, *kld = NULL, *dp = NULL;
    unsigned char *same = NULL;
    logits = malloc((ctx - first) * V * sizeof *logits);
    if (base) {
        blogits = malloc((ctx - first) * V * sizeof *blogits);
        bnll = malloc(total * sizeof *bnll);
        kld = malloc(total * sizeof *kld);
        dp = malloc(total * sizeof *dp);
        same = malloc(total);
    }
    if (!chunk || !nll || !logits || (base && (!blogits || !bnll || !kld || !dp || !same))) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        goto done;
    }
    if ((s = rt_state_create(model, ctx, ctx, o->pool, &st, err))) goto done;
    if (base && (s = rt_state_create(base, ctx, ctx, o->pool, &bst, err))) goto done;

    double sum = 0;
    for (size_t c = 0; c < chunks; c++) {
        if (o->cancel && *o->cancel) {
            s = mx_err(err, MIXQ_E_CANCELLED, "cancelled");
            goto done;
        }
        memcpy(chunk, tokens + c * ctx, ctx * sizeof *chunk);
        if (model->cfg.bos_id >= 0) chunk[0] = (int32_t)model->cfg.bos_id;
        if (chunk[0] >= model->cfg.vocab) {
            s = mx_err(err, MIXQ_E_FORMAT, "the BOS id %ld is outside the vocabulary", (long)chunk[0]);
            goto done;
        }
        if ((s = rt_forward(st, chunk, ctx, 0, first, logits, err))) goto done;
        if (base && (s = rt_forward(bst, chunk, ctx, 0, first, blogits, err))) goto done;
        score_job j = {.logits = logits, .base_logits = blogits, .targets = tokens + c * ctx + first + 1, .V = V,
                       .nll = nll + c * n_pos, .base_nll = base ? bnll + c * n_pos : NULL,
                       .kld = base ? kld + c * n_pos : NULL, .dp = base ? dp + c * n_pos : NULL,
                       .same = base ? same + c * n_pos : NULL};
        mx_pool_run(o->pool, n_pos, score_pos, &j);
        for (size_t i = 0; i < n_pos; i++) sum += nll[c * n_pos + i];
        if (o->progress) o->progress(o->progress_ctx, c + 1, chunks, exp(sum / (double)((c + 1) * n_pos)));
    }
    r->chunks = chunks;
    r->ctx = ctx;
    r->n_scored = total;
    r->nll = sum / (double)total;
    r->ppl = exp(r->nll);
    if (base) {
        double bs = 0, ks = 0, d2 = 0, sm = 0;
        for (size_t i = 0; i < total; i++) {
            bs += bnll[i];
            ks += kld[i];
            d2 += dp[i] * dp[i];
            sm += same[i];
        }
        r->has_base = 1;
        r->base_nll = bs / (double)total;
        r->base_ppl = exp(r->base_nll);
        r->kld_mean = ks / (double)total;
        r->rms_dp = sqrt(d2 / (double)total);
        r->same_top1 = sm / (double)total;
        r->kld_stderr = chunk_stderr(kld, chunks, n_pos, r->kld_mean, o->chunk_kld);
        qsort(kld, total, sizeof *kld, cmp_double);
        r->kld_median = rt_percentile(kld, total, 0.5);
        r->kld_p99 = rt_percentile(kld, total, 0.99);
        r->kld_max = kld[total - 1];
    }
done:
    rt_state_free(st);
    rt_state_free(bst);
    free(chunk);
    free(nll);
    free(bnll);
    free(kld);
    free(dp);
    free(same);
    free(logits);
    free(blogits);
    return s;
}
