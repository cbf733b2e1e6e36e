/* cmd_calibrate.c - `mixq calibrate MODEL -o FILE`: the importance matrix in llama.cpp's formats. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli_model.h"
#include "cli_util.h"
#include "commands.h"
#include "common/error.h"
#include "runtime/calibrate.h"

static const char usage[] =
    "Usage: mixq calibrate MODEL (--text FILE | --tokens FILE) -o OUT [--ctx N] [--chunks N]\n"
    "\n"
    "Computes the importance matrix of MODEL (a container or a safetensors\n"
    "checkpoint of the LLaMA family) on calibration text, as llama.cpp's imatrix\n"
    "tool does: for the input of every linear layer of the blocks, the sum over\n"
    "all tokens of x^2 per input column, and the token count.  The text is cut\n"
    "into chunks of --ctx tokens, each starting with BOS.  OUT's extension picks\n"
    "the format: .gguf writes llama.cpp's GGUF imatrix, any other name the\n"
    "legacy .dat format.  Tensors get their GGUF names (blk.N.attn_q.weight, ...).\n"
    "\n"
    "Options:\n"
    "  --text FILE         the text (UTF-8), tokenized by the model's tokenizer\n"
    "                      (tokenizer.json or tokenizer.model beside config.json)\n"
    "  --tokens FILE       the calibration text as token ids (decimal numbers\n"
    "                      separated by white space; BOS is put in front)\n"
    "  -o, --output OUT    the file to write (.gguf or .dat)\n"
    "  --ctx N             tokens per chunk (default 512, or max_position_embeddings\n"
    "                      if smaller)\n"
    "  --chunks N          use at most N chunks (default: every whole chunk)\n"
    "  --process-output    also record lm_head's input, as output.weight\n"
    "  --config DIR        where MODEL's config.json is (default: beside MODEL)\n"
    "  -f, --force         replace OUT if it exists\n"
    "  -j, --threads N     worker threads (default: online CPUs)\n"
    "  -q, --quiet         print nothing on success\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed input; 2 usage error; 3 I/O error,\n"
    "OUT exists or out of memory; 130/143 interrupted (nothing is written).\n";

enum { OPT_TOKENS = 256, OPT_TEXT, OPT_CTX, OPT_CHUNKS, OPT_CONFIG, OPT_PROCESS_OUTPUT };

static void on_progress(void *ctx, size_t done, size_t total)
{
    (void)ctx;
    fprintf(stderr, "\r\033[K[%zu/%zu] calibrating", done, total);
    if (done == total) fputs("\r\033[K", stderr);
}

int cmd_calibrate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tokens", required_argument, NULL, OPT_TOKENS}, {"text", required_argument, NULL, OPT_TEXT},
        {"output", required_argument, NULL, 'o'},        {"ctx", required_argument, NULL, OPT_CTX},
        {"chunks", required_argument, NULL, OPT_CHUNKS}, {"config", required_argument, NULL, OPT_CONFIG},
        {"process-output", no_argument, NULL, OPT_PROCESS_OUTPUT},
        {"force", no_argument, NULL, 'f'},               {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},               {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *tokens_path = NULL, *text_path = NULL, *out_path = NULL, *config = NULL;
    unsigned long long ctx = 0, chunks = 0;
    unsigned threads = 0;
    int force = 0, quiet = 0, process_output = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:fj:q", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return EXIT_OK;
        case OPT_TOKENS: tokens_path = optarg; break;
        case OPT_TEXT: text_path = optarg; break;
        case 'o': out_path = optarg; break;
        case OPT_CONFIG: config = optarg; break;
        case OPT_PROCESS_OUTPUT: process_output = 1; break;
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case OPT_CTX:
            if (cli_parse_uint(optarg, 1u << 20, &ctx) || ctx == 0)
                return cli_usage_error("calibrate", "--ctx takes a number from 1 to 1048576, not '%s'", optarg);
            break;
        case OPT_CHUNKS:
            if (cli_parse_uint(optarg, 1ull << 32, &chunks) || chunks == 0)
                return cli_usage_error("calibrate", "--chunks takes a positive number, not '%s'", optarg);
            break;
        case 'j':
            if (cli_parse_threads("calibrate", optarg, &threads)) return EXIT_USAGE;
            break;
        default: return cli_usage_error("calibrate", "unknown option");
        }
    }
    if (argc - optind != 1) return cli_usage_error("calibrate", "expected exactly one MODEL");
    if (!tokens_path == !text_path) return cli_usage_error("calibrate", "give the input with either --text FILE or --tokens FILE");
    if (!out_path) return cli_usage_error("calibrate", "missing -o OUT");
    if (!force && access(out_path, F_OK) == 0) {
        char b[MX_SHOWN_BUF];
        cli_error("calibrate", "%s exists; use --force to replace it", mx_shown(out_path, b));
        return EXIT_SYSTEM;
    }
    volatile sig_atomic_t *cancel = cli_catch_signals();
    rt_model *m = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    mx_pool *pool = NULL;
    mx_imatrix *im = NULL;
    int rc = cli_open_model("calibrate", argv[optind], config, &m);
    if (!rc) rc = cli_input_tokens("calibrate", m, tokens_path, text_path, 1, &ids, &n);
    if (rc) goto done;
    if (!ctx) ctx = m->cfg.max_pos > 0 && m->cfg.max_pos < 512 ? (unsigned long long)m->cfg.max_pos : 512;
    if (!(pool = mx_pool_create(threads))) {
        cli_error("calibrate", "cannot start worker threads");
        rc = EXIT_SYSTEM;
        goto done;
    }
    int tty = isatty(STDERR_FILENO) && !quiet;
    rt_calibrate_options o = {.ctx = (size_t)ctx, .max_chunks = (size_t)chunks, .process_output = process_output,
                              .dataset = tokens_path ? tokens_path : text_path, .pool = pool, .cancel = cancel,
                              .progress = tty ? on_progress : NULL};
    mixq_error err;
    char b[MX_SHOWN_BUF];
    mixq_status s = rt_calibrate(m, ids, n, &o, &im, &err);
    if (!s && *cancel) s = mx_err(&err, MIXQ_E_CANCELLED, "cancelled");
    if (!s) s = mx_imatrix_write(im, out_path, force, &err);
    if (s == MIXQ_E_CANCELLED) {
        if (tty) fputs("\r\033[K", stderr);
        rc = 128 + (int)*cancel;
        goto done;
    }
    if (s) {
        if (tty) fputs("\r\033[K", stderr);
        cli_error("calibrate", "%s", err.message);
        rc = s == MIXQ_E_INVALID_ARG ? EXIT_USAGE : cli_exit_code(s);
        goto done;
    }
    if (!quiet)
        printf("%s: %zu tensors, %u chunks of %u tokens\n", mx_shown(out_path, b), im->n_entries, im->chunk_count,
               im->chunk_size);
done:
    mx_imatrix_free(im);
    mx_pool_destroy(pool);
    free(ids);
    rt_model_close(m);
    return rc;
}
