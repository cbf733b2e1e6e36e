/* cli_model.c - opening models and reading input tokens for eval, calibrate and run. */
#include <stdlib.h>
#include <string.h>

#include "cli_model.h"
#include "cli_util.h"
#include "common/error.h"
#include "runtime/eval.h"

int cli_open_model(const char *cmd, const char *path, const char *config_dir, rt_model **out)
{
    mixq_error err;
    mixq_status s = rt_model_open(path, config_dir, out, &err);
    if (s) {
        cli_error(cmd, "%s", err.message);
        return cli_exit_code(s);
    }
    return EXIT_OK;
}

int cli_tokenize(const char *cmd, const rt_model *m, const char *text, size_t len, int add_bos, int32_t **ids,
                 size_t *n)
{
    /* The tokenizers (src/tokenizer/, mx_tok_*) connect here: load the model's
       tokenizer.model or tokenizer.json, encode(text, add_bos). */
    (void)m;
    (void)text;
    (void)len;
    (void)add_bos;
    (void)ids;
    (void)n;
    cli_error(cmd, "text input needs a tokenizer, which this build does not have yet; give the token ids with "
                   "--tokens FILE");
    return EXIT_USAGE;
}

int cli_input_tokens(const char *cmd, const rt_model *m, const char *tokens_path, const char *text_path,
                     int add_bos, int32_t **ids, size_t *n)
{
    mixq_error err;
    char b[MX_SHOWN_BUF];
    *ids = NULL;
    *n = 0;
    if (text_path) {
        char *text = NULL;
        size_t len = 0;
        mixq_status s = rt_read_file(text_path, (size_t)1 << 32, &text, &len, &err);
        if (s) {
            cli_error(cmd, "%s", err.message);
            return cli_exit_code(s);
        }
        int rc = cli_tokenize(cmd, m, text, len, add_bos, ids, n);
        free(text);
        return rc;
    }
    mixq_status s = rt_tokens_load(tokens_path, ids, n, &err);
    if (!s) s = rt_tokens_check(mx_shown(tokens_path, b), *ids, *n, m->cfg.vocab, &err);
    if (s) {
        free(*ids);
        *ids = NULL;
        cli_error(cmd, "%s", err.message);
        return cli_exit_code(s);
    }
    if (add_bos && m->cfg.bos_id >= 0) {
        int32_t *nb = malloc((*n + 1) * sizeof *nb);
        if (!nb) {
            free(*ids);
            cli_error(cmd, "out of memory");
            return EXIT_SYSTEM;
        }
        nb[0] = (int32_t)m->cfg.bos_id;
        if (*n) memcpy(nb + 1, *ids, *n * sizeof *nb);
        free(*ids);
        *ids = nb;
        (*n)++;
    }
    return EXIT_OK;
}

int cli_parse_threads(const char *cmd, const char *arg, unsigned *out)
{
    unsigned long long v;
    if (cli_parse_uint(arg, 1024, &v) || v == 0)
        return cli_usage_error(cmd, "--threads takes a number from 1 to 1024, not '%s'", arg);
    *out = (unsigned)v;
    return EXIT_OK;
}
