/* cmd_eval.c - `mixq eval MODEL`: perplexity, and KL divergence against a base model. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_model.h"
#include "cli_util.h"
#include "commands.h"
#include "common/error.h"
#include "runtime/eval.h"

static const char usage[] =
    "Usage: mixq eval MODEL (--text FILE | --tokens FILE) [--base SOURCE] [--ctx N] [--chunks N] [--json]\n"
    "\n"
    "Perplexity of MODEL (a container or a safetensors checkpoint of the LLaMA\n"
    "family: llama, mistral, qwen2) on a text, with llama.cpp's convention: the\n"
    "tokens are cut into chunks of --ctx tokens, the first token of each chunk is\n"
    "replaced by BOS and the second half of each chunk is scored.  With --base,\n"
    "also the KL divergence of MODEL's next-token distribution from the base's\n"
    "(mean and its standard error over the chunks' means, median, 99th\n"
    "percentile, max), the rate at which both rank the same token first and the\n"
    "RMS of the change in the probability of the actual next token; both models\n"
    "run on each chunk (no logits file).  --json adds each chunk's mean KLD\n"
    "(\"kld\": {\"chunks\": [...]}) for paired comparisons of two models.  A\n"
    "container planned with --measurement also shows the KLD its plan predicted.\n"
    "\n"
    "Options:\n"
    "  --text FILE         the text (UTF-8), tokenized by the model's tokenizer\n"
    "                      (tokenizer.json or tokenizer.model beside config.json)\n"
    "  --tokens FILE       the text as token ids: decimal numbers separated by white\n"
    "                      space, as the model's tokenizer makes them; BOS is put\n"
    "                      in front when the model has one (as llama.cpp does)\n"
    "  --base SOURCE       the reference model (e.g. the source checkpoint)\n"
    "  --ctx N             tokens per chunk (default 512, or max_position_embeddings\n"
    "                      if smaller)\n"
    "  --chunks N          evaluate at most N chunks (default: every whole chunk)\n"
    "  --config DIR        where MODEL's config.json is (default: beside MODEL)\n"
    "  --base-config DIR   where the base's config.json is (default: beside SOURCE)\n"
    "  -j, --threads N     worker threads (default: online CPUs); results do not\n"
    "                      depend on it\n"
    "  --json              print the results as one JSON object\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed input (config, tensors, token file);\n"
    "2 usage error; 3 I/O error or out of memory; 130/143 interrupted.\n";

enum { OPT_TOKENS = 256, OPT_TEXT, OPT_BASE, OPT_CTX, OPT_CHUNKS, OPT_CONFIG, OPT_BASE_CONFIG, OPT_JSON };

typedef struct progress_ctx {
    char name[MX_SHOWN_BUF];
} progress_ctx;

static void on_progress(void *ctx, size_t done, size_t total, double ppl)
{
    progress_ctx *p = ctx;
    fprintf(stderr, "\r\033[K[%zu/%zu] %s: perplexity %.4f", done, total, p->name, ppl);
    if (done == total) fputs("\r\033[K", stderr);
}

/*
 * The KLD the container's plan predicted (metadata.plan.predicted_kld: a
 * plan made with --measurement), or NAN; *file gets the measurement's name
 * (into buf) or NULL.
 */
static double predicted_kld(const rt_model *m, char *buf, size_t cap, const char **file)
{
    *file = NULL;
    if (!m->mf) return NAN;
    size_t len = 0;
    const char *h = mixq_header_json(m->mf, &len);
    json_t *root = h ? json_loadb(h, len, 0, NULL) : NULL;
    json_t *plan = json_object_get(json_object_get(root, "metadata"), "plan");
    json_t *v = json_object_get(plan, "predicted_kld");
    double k = json_is_number(v) ? json_number_value(v) : NAN;
    const char *f = json_string_value(json_object_get(json_object_get(plan, "measurement"), "file"));
    if (f && isfinite(k)) {
        snprintf(buf, cap, "%s", f);
        *file = buf;
    }
    json_decref(root);
    return k;
}

static void print_table(const char *model, const char *base, const rt_eval_result *r, double pk, const char *pfile)
{
    char b[MX_SHOWN_BUF];
    printf("model             %s\n", mx_shown(model, b));
    printf("chunks            %zu of %zu tokens (%zu predictions scored)\n", r->chunks, r->ctx, r->n_scored);
    printf("perplexity        %.4f\n", r->ppl);
    if (!r->has_base) return;
    printf("base              %s\n", mx_shown(base, b));
    printf("base perplexity   %.4f\n", r->base_ppl);
    printf("KLD mean          %.6f +- %.6f\n", r->kld_mean, r->kld_stderr);
    if (isfinite(pk)) printf("KLD predicted     %.6f (the plan's, from %s)\n", pk, pfile ? cli_safe(pfile) : "?");
    printf("KLD median        %.6f\n", r->kld_median);
    printf("KLD p99           %.6f\n", r->kld_p99);
    printf("KLD max           %.6f\n", r->kld_max);
    printf("same top-1        %.4f %%\n", 100 * r->same_top1);
    printf("RMS delta p       %.4f %%\n", 100 * r->rms_dp);
}

static int print_json(const char *model, const char *base, const rt_eval_result *r, const double *chunk_kld,
                      double pk)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "ctx", json_integer((json_int_t)r->ctx));
    json_object_set_new(o, "chunks", json_integer((json_int_t)r->chunks));
    json_object_set_new(o, "scored", json_integer((json_int_t)r->n_scored));
    json_object_set_new(o, "nll", json_real(r->nll));
    json_object_set_new(o, "perplexity", json_real(r->ppl));
    if (r->has_base) {
        json_object_set_new(o, "base", json_string(base));
        json_object_set_new(o, "base_perplexity", json_real(r->base_ppl));
        json_t *k = json_object();
        json_object_set_new(k, "mean", json_real(r->kld_mean));
        json_object_set_new(k, "stderr", json_real(r->kld_stderr));
        json_object_set_new(k, "median", json_real(r->kld_median));
        json_object_set_new(k, "p99", json_real(r->kld_p99));
        json_object_set_new(k, "max", json_real(r->kld_max));
        json_t *a = json_array();
        for (size_t c = 0; c < r->chunks; c++) json_array_append_new(a, json_real(chunk_kld[c]));
        json_object_set_new(k, "chunks", a);
        json_object_set_new(o, "kld", k);
        if (isfinite(pk)) json_object_set_new(o, "predicted_kld", json_real(pk));
        json_object_set_new(o, "same_top1", json_real(r->same_top1));
        json_object_set_new(o, "rms_delta_p", json_real(r->rms_dp));
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!s) {
        cli_error("eval", "out of memory");
        return EXIT_SYSTEM;
    }
    puts(s);
    free(s);
    return EXIT_OK;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tokens", required_argument, NULL, OPT_TOKENS}, {"text", required_argument, NULL, OPT_TEXT},
        {"base", required_argument, NULL, OPT_BASE},     {"ctx", required_argument, NULL, OPT_CTX},
        {"chunks", required_argument, NULL, OPT_CHUNKS}, {"config", required_argument, NULL, OPT_CONFIG},
        {"base-config", required_argument, NULL, OPT_BASE_CONFIG}, {"json", no_argument, NULL, OPT_JSON},
        {"threads", required_argument, NULL, 'j'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *tokens_path = NULL, *text_path = NULL, *base_path = NULL, *config = NULL, *base_config = NULL;
    unsigned long long ctx = 0, chunks = 0;
    unsigned threads = 0;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hj:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return EXIT_OK;
        case OPT_TOKENS: tokens_path = optarg; break;
        case OPT_TEXT: text_path = optarg; break;
        case OPT_BASE: base_path = optarg; break;
        case OPT_CONFIG: config = optarg; break;
        case OPT_BASE_CONFIG: base_config = optarg; break;
        case OPT_JSON: json = 1; break;
        case OPT_CTX:
            if (cli_parse_uint(optarg, 1u << 20, &ctx) || ctx < 4)
                return cli_usage_error("eval", "--ctx takes a number from 4 to 1048576, not '%s'", optarg);
            break;
        case OPT_CHUNKS:
            if (cli_parse_uint(optarg, 1ull << 32, &chunks) || chunks == 0)
                return cli_usage_error("eval", "--chunks takes a positive number, not '%s'", optarg);
            break;
        case 'j':
            if (cli_parse_threads("eval", optarg, &threads)) return EXIT_USAGE;
            break;
        default: return cli_usage_error("eval", "unknown option");
        }
    }
    if (argc - optind != 1) return cli_usage_error("eval", "expected exactly one MODEL");
    if (!tokens_path == !text_path) return cli_usage_error("eval", "give the input with either --text FILE or --tokens FILE");
    const char *model_path = argv[optind];
    volatile sig_atomic_t *cancel = cli_catch_signals();

    rt_model *m = NULL, *base = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    mx_pool *pool = NULL;
    double *chunk_kld = NULL;
    int rc = cli_open_model("eval", model_path, config, &m);
    if (!rc && base_path) rc = cli_open_model("eval", base_path, base_config, &base);
    if (!rc) rc = cli_input_tokens("eval", m, tokens_path, text_path, 1, &ids, &n);
    if (rc) goto done;
    if (!ctx) ctx = m->cfg.max_pos > 0 && m->cfg.max_pos < 512 ? (unsigned long long)m->cfg.max_pos : 512;
    pool = mx_pool_create(threads);
    if (!pool) {
        cli_error("eval", "cannot start worker threads");
        rc = EXIT_SYSTEM;
        goto done;
    }
    progress_ctx pc;
    mx_shown(model_path, pc.name);
    rt_eval_options o = {.ctx = (size_t)ctx, .max_chunks = (size_t)chunks, .pool = pool, .cancel = cancel,
                         .progress = isatty(STDERR_FILENO) ? on_progress : NULL, .progress_ctx = &pc};
    if (base && json && !(chunk_kld = calloc(rt_eval_chunk_count(n, &o) + 1, sizeof *chunk_kld))) {
        cli_error("eval", "out of memory");
        rc = EXIT_SYSTEM;
        goto done;
    }
    o.chunk_kld = chunk_kld;
    rt_eval_result r;
    mixq_error err;
    mixq_status s = rt_eval(m, base, ids, n, &o, &r, &err);
    if (s == MIXQ_E_CANCELLED) {
        if (o.progress) fputs("\r\033[K", stderr);
        rc = 128 + (int)*cancel;
        goto done;
    }
    if (s) {
        if (o.progress) fputs("\r\033[K", stderr);
        char b[MX_SHOWN_BUF];
        cli_error("eval", "%s: %s", mx_shown(tokens_path ? tokens_path : text_path, b), err.message);
        rc = s == MIXQ_E_INVALID_ARG ? EXIT_USAGE : cli_exit_code(s);
        goto done;
    }
    char pbuf[256];
    const char *pfile;
    double pk = predicted_kld(m, pbuf, sizeof pbuf, &pfile);
    if (json) rc = print_json(model_path, base_path, &r, chunk_kld, pk);
    else print_table(model_path, base_path, &r, pk, pfile);
done:
    mx_pool_destroy(pool);
    free(chunk_kld);
    free(ids);
    rt_model_close(m);
    rt_model_close(base);
    return rc;
}
