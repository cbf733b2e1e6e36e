/* cmd_measure.c - `mixq measure MODEL -o FILE.json`: each tensor's effect on the output (KLD), for the planner. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli_model.h"
#include "cli_util.h"
#include "commands.h"
#include "common/error.h"
#include "runtime/measure.h"

static const char usage[] =
    "Usage: mixq measure MODEL (--text FILE | --tokens FILE) -o FILE.json [--type T]\n"
    "                    [--ctx N] [--chunks N] [--imatrix F] [-j N]\n"
    "\n"
    "Measures how much each tensor's quantization moves the output of MODEL (a\n"
    "safetensors checkpoint of the LLaMA family): for every tensor the planner\n"
    "plans, only that tensor is stored as the reference type T, exactly as\n"
    "`mixq convert` stores it, and the mean KL divergence of the next-token\n"
    "distribution from the unquantized model's is read on the calibration chunks\n"
    "(BOS first, the second half of each chunk scored, as `mixq eval`).  The\n"
    "file is rewritten after every tensor: run the same command again to resume\n"
    "an interrupted measurement.  `mixq plan` / `mixq convert --measurement FILE`\n"
    "turn it into error weights (docs/PLANNER.md).  Cost: tensors x chunks\n"
    "forward passes.\n"
    "\n"
    "Options:\n"
    "  --text FILE         the calibration text (UTF-8), tokenized by the model's tokenizer\n"
    "  --tokens FILE       the calibration text as token ids (decimal, white-space separated)\n"
    "  -o, --output FILE   the measurement file (JSON); resumed if it exists with the\n"
    "                      same settings, an error if its settings differ\n"
    "  -t, --type T        the reference type (default int3_dq), TYPE[:GROUP]\n"
    "  --ctx N             tokens per chunk (default 512, or max_position_embeddings\n"
    "                      if smaller)\n"
    "  --chunks N          use at most N chunks (default: every whole chunk)\n"
    "  --imatrix F         quantize as `mixq convert --imatrix F` would\n"
    "  --imatrix-weighting W  sigma (default) or plain, as for convert\n"
    "  --rtn               plain min/max scales, as `mixq convert --rtn`\n"
    "  --max-tensors N     measure at most N more tensors, then stop (resume later)\n"
    "  --config DIR        where MODEL's config.json is (default: beside MODEL)\n"
    "  -j, --threads N     worker threads (default: online CPUs); results do not\n"
    "                      depend on it\n"
    "  -q, --quiet         print nothing on success\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed input; 2 usage error (also a FILE measured\n"
    "with other settings); 3 I/O error or out of memory; 130/143 interrupted (the\n"
    "tensors measured so far are in FILE).\n";

enum { OPT_TOKENS = 256, OPT_TEXT, OPT_CTX, OPT_CHUNKS, OPT_CONFIG, OPT_IMATRIX, OPT_IMATRIX_WEIGHTING, OPT_RTN,
       OPT_MAX_TENSORS };

static void on_progress(void *ctx, size_t done, size_t total, const char *name, double kld, bool resumed)
{
    (void)ctx;
    char b[MX_SHOWN_BUF];
    fprintf(stderr, "[%zu/%zu] %s: KLD %.6g%s\n", done, total, mx_shown(name, b), kld, resumed ? " (in the file)" : "");
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_measure(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tokens", required_argument, NULL, OPT_TOKENS}, {"text", required_argument, NULL, OPT_TEXT},
        {"output", required_argument, NULL, 'o'},        {"type", required_argument, NULL, 't'},
        {"ctx", required_argument, NULL, OPT_CTX},       {"chunks", required_argument, NULL, OPT_CHUNKS},
        {"config", required_argument, NULL, OPT_CONFIG}, {"imatrix", required_argument, NULL, OPT_IMATRIX},
        {"imatrix-weighting", required_argument, NULL, OPT_IMATRIX_WEIGHTING},
        {"rtn", no_argument, NULL, OPT_RTN},             {"max-tensors", required_argument, NULL, OPT_MAX_TENSORS},
        {"threads", required_argument, NULL, 'j'},       {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},                {NULL, 0, NULL, 0}};
    const char *tokens_path = NULL, *text_path = NULL, *out_path = NULL, *config = NULL, *type = "int3_dq";
    const char *imatrix = NULL;
    mixq_imatrix_weighting weighting = MIXQ_IMATRIX_SIGMA;
    unsigned long long ctx = 0, chunks = 0, max_tensors = 0;
    unsigned threads = 0;
    int quiet = 0, rtn = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:t:j:q", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return EXIT_OK;
        case OPT_TOKENS: tokens_path = optarg; break;
        case OPT_TEXT: text_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 't': type = optarg; break;
        case OPT_CONFIG: config = optarg; break;
        case OPT_IMATRIX: imatrix = optarg; break;
        case OPT_IMATRIX_WEIGHTING:
            if (!strcmp(optarg, "sigma")) weighting = MIXQ_IMATRIX_SIGMA;
            else if (!strcmp(optarg, "plain")) weighting = MIXQ_IMATRIX_PLAIN;
            else return cli_usage_error("measure", "--imatrix-weighting takes sigma or plain, not '%s'", optarg);
            break;
        case OPT_RTN: rtn = 1; break;
        case 'q': quiet = 1; break;
        case OPT_CTX:
            if (cli_parse_uint(optarg, 1u << 20, &ctx) || ctx < 4)
                return cli_usage_error("measure", "--ctx takes a number from 4 to 1048576, not '%s'", optarg);
            break;
        case OPT_CHUNKS:
            if (cli_parse_uint(optarg, 1ull << 32, &chunks) || chunks == 0)
                return cli_usage_error("measure", "--chunks takes a positive number, not '%s'", optarg);
            break;
        case OPT_MAX_TENSORS:
            if (cli_parse_uint(optarg, 1ull << 32, &max_tensors) || max_tensors == 0)
                return cli_usage_error("measure", "--max-tensors takes a positive number, not '%s'", optarg);
            break;
        case 'j':
            if (cli_parse_threads("measure", optarg, &threads)) return EXIT_USAGE;
            break;
        default: return cli_usage_error("measure", "unknown option");
        }
    }
    if (argc - optind != 1) return cli_usage_error("measure", "expected exactly one MODEL");
    if (!tokens_path == !text_path) return cli_usage_error("measure", "give the input with either --text FILE or --tokens FILE");
    if (!out_path) return cli_usage_error("measure", "missing -o FILE");
    volatile sig_atomic_t *cancel = cli_catch_signals();
    double w0 = wall_seconds(), c0 = cpu_seconds();
    rt_model *m = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    mx_pool *pool = NULL;
    int rc = cli_open_model("measure", argv[optind], config, &m);
    if (!rc) rc = cli_input_tokens("measure", m, tokens_path, text_path, 1, &ids, &n);
    if (rc) goto done;
    if (!ctx) ctx = m->cfg.max_pos > 0 && m->cfg.max_pos < 512 ? (unsigned long long)m->cfg.max_pos : 512;
    if (!(pool = mx_pool_create(threads))) {
        cli_error("measure", "cannot start worker threads");
        rc = EXIT_SYSTEM;
        goto done;
    }
    rt_measure_options o = {.ctx = (size_t)ctx, .max_chunks = (size_t)chunks, .reference = type, .rtn = rtn != 0,
                            .imatrix_path = imatrix, .imatrix_weighting = weighting, .out_path = out_path,
                            .max_tensors = (size_t)max_tensors, .pool = pool, .cancel = cancel,
                            .progress = quiet ? NULL : on_progress};
    rt_measure_result r;
    mixq_error err;
    mixq_status s = rt_measure(m, ids, n, &o, &r, &err);
    if (s == MIXQ_E_CANCELLED) {
        rc = 128 + (int)*cancel;
        goto done;
    }
    if (s) {
        cli_error("measure", "%s", err.message);
        rc = s == MIXQ_E_INVALID_ARG ? EXIT_USAGE : cli_exit_code(s);
        goto done;
    }
    if (!quiet) {
        char b[MX_SHOWN_BUF];
        fprintf(stderr,
                "%s: %zu tensors as %s (%zu measured now, %zu from the file%s), %zu chunks of %zu tokens, base "
                "perplexity %.4f\n",
                mx_shown(out_path, b), r.tensors, r.reference, r.measured, r.resumed,
                r.remaining ? ", the rest left for later" : "", r.chunks, r.ctx, r.base_ppl);
        if (r.remaining) fprintf(stderr, "%zu tensors left: run the same command again to measure them\n", r.remaining);
        fprintf(stderr, "cost: %zu forward passes of %zu tokens (%zu tensors x %zu chunks + %zu of the base), %.1f s "
                        "wall, %.1f s CPU%s\n",
                r.forwards, r.ctx, r.measured, r.chunks, r.base_forwards, wall_seconds() - w0, cpu_seconds() - c0,
                r.base_kept ? "" : " (base logits recomputed per chunk: too large to keep)");
    }
done:
    mx_pool_destroy(pool);
    free(ids);
    rt_model_close(m);
    return rc;
}
