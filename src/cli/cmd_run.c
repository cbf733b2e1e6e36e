/* cmd_run.c - `mixq run MODEL`: stream a continuation of a prompt. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_model.h"
#include "cli_util.h"
#include "commands.h"
#include "common/error.h"
#include "runtime/forward.h"

static const char usage[] =
    "Usage: mixq run MODEL (--prompt TEXT | --tokens FILE) [-n N] [--temp T] [--seed S]\n"
    "\n"
    "Continues a prompt with MODEL (a container or a safetensors checkpoint of the\n"
    "LLaMA family), printing each new token as it is chosen: the most likely one\n"
    "(greedy, the default) or, with --temp T > 0, one drawn from the distribution\n"
    "softmax(logits / T) with a seeded generator (the same seed gives the same\n"
    "continuation).  Stops after N tokens, at an end-of-sequence token, or at the\n"
    "model's max_position_embeddings.\n"
    "\n"
    "The text goes through the model's tokenizer (tokenizer.json or\n"
    "tokenizer.model beside its config.json); the continuation is printed as\n"
    "text as it is made (control characters shown as '?' on a terminal).\n"
    "\n"
    "Options:\n"
    "  -p, --prompt TEXT   the prompt (UTF-8 text; BOS is put in front when the\n"
    "                      model has one)\n"
    "  --tokens FILE       the prompt as token ids (decimal numbers separated by\n"
    "                      white space; BOS is put in front when the model has one)\n"
    "  --print-ids         print the new token ids (space separated) instead of text\n"
    "                      (needs no tokenizer with --tokens)\n"
    "  -n, --n-predict N   tokens to generate (default 128)\n"
    "  --temp T            sampling temperature (default 0: greedy)\n"
    "  --seed S            seed of the sampler (default 1)\n"
    "  --ignore-eos        do not stop at an end-of-sequence token\n"
    "  --config DIR        where MODEL's config.json is (default: beside MODEL)\n"
    "  -j, --threads N     worker threads (default: online CPUs)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed input; 2 usage error; 3 I/O error or\n"
    "out of memory; 130/143 interrupted.\n";

enum { OPT_TOKENS = 256, OPT_PRINT_IDS, OPT_TEMP, OPT_SEED, OPT_IGNORE_EOS, OPT_CONFIG };

/* splitmix64: a small, fully specified generator, so a seed means the same draws everywhere. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int32_t pick(const float *logits, size_t V, double temp, uint64_t *rng)
{
    size_t best = 0;
    for (size_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (temp <= 0) return (int32_t)best;
    double sum = 0;
    for (size_t i = 0; i < V; i++) sum += exp(((double)logits[i] - logits[best]) / temp);
    double u = (double)(next_u64(rng) >> 11) * 0x1.0p-53 * sum, acc = 0;
    for (size_t i = 0; i < V; i++) {
        acc += exp(((double)logits[i] - logits[best]) / temp);
        if (u < acc) return (int32_t)i;
    }
    return (int32_t)best;
}

/* Prints the text of one token; on a terminal, control bytes other than newline and tab become '?'. */
static void print_piece(const mx_tok *tok, int32_t id, int tty)
{
    size_t len = 0;
    const char *p = mx_tok_decode_piece(tok, id, &len);
    for (size_t i = 0; p && i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        putchar(tty && (ch < 0x20 || ch == 0x7f) && ch != '\n' && ch != '\t' ? '?' : ch);
    }
}

int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tokens", required_argument, NULL, OPT_TOKENS}, {"prompt", required_argument, NULL, 'p'},
        {"print-ids", no_argument, NULL, OPT_PRINT_IDS}, {"n-predict", required_argument, NULL, 'n'},
        {"temp", required_argument, NULL, OPT_TEMP},     {"seed", required_argument, NULL, OPT_SEED},
        {"ignore-eos", no_argument, NULL, OPT_IGNORE_EOS}, {"config", required_argument, NULL, OPT_CONFIG},
        {"threads", required_argument, NULL, 'j'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *tokens_path = NULL, *prompt = NULL, *config = NULL;
    unsigned long long n_predict = 128, seed = 1;
    double temp = 0;
    unsigned threads = 0;
    int print_ids = 0, ignore_eos = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hn:j:p:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return EXIT_OK;
        case OPT_TOKENS: tokens_path = optarg; break;
        case 'p': prompt = optarg; break;
        case OPT_PRINT_IDS: print_ids = 1; break;
        case OPT_IGNORE_EOS: ignore_eos = 1; break;
        case OPT_CONFIG: config = optarg; break;
        case 'n':
            if (cli_parse_uint(optarg, 1u << 24, &n_predict))
                return cli_usage_error("run", "-n takes a number from 0 to 16777216, not '%s'", optarg);
            break;
        case OPT_SEED:
            if (cli_parse_uint(optarg, UINT64_MAX, &seed))
                return cli_usage_error("run", "--seed takes a non-negative integer, not '%s'", optarg);
            break;
        case OPT_TEMP: {
            char *end;
            temp = strtod(optarg, &end);
            if (*end || end == optarg || !(temp >= 0 && temp <= 100))
                return cli_usage_error("run", "--temp takes a number from 0 to 100, not '%s'", optarg);
            break;
        }
        case 'j':
            if (cli_parse_threads("run", optarg, &threads)) return EXIT_USAGE;
            break;
        default: return cli_usage_error("run", "unknown option");
        }
    }
    if (argc - optind != 1) return cli_usage_error("run", "expected exactly one MODEL");
    if (!tokens_path == !prompt) return cli_usage_error("run", "give the prompt with either --prompt TEXT or --tokens FILE");
    volatile sig_atomic_t *cancel = cli_catch_signals();
    rt_model *m = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    mx_pool *pool = NULL;
    rt_state *st = NULL;
    float *logits = NULL;
    mx_tok *tok = NULL;
    int rc = cli_open_model("run", argv[optind], config, &m);
    if (rc) goto done;
    if (!prompt) rc = cli_input_tokens("run", m, tokens_path, NULL, 1, &ids, &n);
    else if (!(rc = cli_open_tokenizer("run", m, &tok))) {
        mixq_error e;
        mixq_status ts = mx_tok_encode(tok, prompt, strlen(prompt), 1, &ids, &n, &e);
        if (ts) {
            cli_error("run", "--prompt: %s", e.message);
            rc = cli_exit_code(ts);
        }
    }
    if (rc) goto done;
    if (!print_ids && !tok && (rc = cli_open_tokenizer("run", m, &tok))) goto done;
    if (n == 0) {
        rc = cli_usage_error("run", "the prompt is empty and the model has no BOS token");
        goto done;
    }
    size_t ctx = n + (size_t)n_predict;
    if (m->cfg.max_pos > 0 && ctx > (size_t)m->cfg.max_pos) ctx = (size_t)m->cfg.max_pos;
    if (n > ctx) {
        char b[MX_SHOWN_BUF];
        cli_error("run", "%s: the prompt has %zu tokens, more than the model's %lld positions",
                  mx_shown(tokens_path, b), n, (long long)m->cfg.max_pos);
        rc = EXIT_BAD_DATA;
        goto done;
    }
    mixq_error err;
    mixq_status s;
    size_t V = (size_t)m->cfg.vocab;
    if (!(pool = mx_pool_create(threads)) || !(logits = malloc(V * sizeof *logits))) {
        cli_error("run", "out of memory");
        rc = EXIT_SYSTEM;
        goto done;
    }
    if ((s = rt_state_create(m, ctx, n, pool, &st, &err))) {
        cli_error("run", "%s", err.message);
        rc = cli_exit_code(s);
        goto done;
    }
    uint64_t rng = seed;
    int tty = isatty(STDOUT_FILENO);
    if (prompt && !print_ids)
        for (const char *q = prompt; *q; q++) {
            unsigned char ch = (unsigned char)*q;
            putchar(tty && (ch < 0x20 || ch == 0x7f) && ch != '\n' && ch != '\t' ? '?' : ch);
        }
    /* the prompt in one batch, then one token at a time */
    s = rt_forward(st, ids, n, 0, n - 1, logits, &err);
    for (size_t pos = n, made = 0; !s && made < n_predict; made++) {
        if (*cancel) {
            rc = 128 + (int)*cancel;
            goto done;
        }
        int32_t next = pick(logits, V, temp, &rng);
        if (print_ids) printf("%s%ld", made ? " " : "", (long)next);
        else print_piece(tok, next, tty);
        fflush(stdout);
        int eos = 0;
        for (int e = 0; e < m->cfg.n_eos; e++) eos |= next == m->cfg.eos_ids[e];
        if ((eos && !ignore_eos) || pos >= ctx) break;
        s = rt_forward(st, &next, 1, pos++, 0, logits, &err);
    }
    if (s) {
        cli_error("run", "%s", err.message);
        rc = cli_exit_code(s);
        goto done;
    }
    putchar('\n');
done:
    rt_state_free(st);
    mx_tok_free(tok);
    free(logits);
    mx_pool_destroy(pool);
    free(ids);
    rt_model_close(m);
    return rc;
}
