/* cli_model.c - opening models and reading input tokens for eval, calibrate and run. */
#include <stdio.h>
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

/*
 * The tokenizer stored in m's container (tokenizer.json with
 * tokenizer_config.json, else tokenizer.model), or NULL with err->code
 * MIXQ_E_NOT_FOUND if it stores neither.
 */
static mx_tok *stored_tokenizer(const rt_model *m, mixq_error *err)
{
    static const char *const names[] = {"tokenizer.json", "tokenizer.model"};
    for (int k = 0; k < 2; k++) {
        if (mixq_file_find(m->mf, names[k], NULL) != MIXQ_OK) continue;
        void *data = NULL, *cfg = NULL;
        size_t n = 0, cn = 0;
        mx_tok *tok = NULL;
        if (mixq_file_read(m->mf, names[k], &data, &n, err) == MIXQ_OK &&
            (k == 1 || mixq_file_find(m->mf, "tokenizer_config.json", NULL) != MIXQ_OK ||
             mixq_file_read(m->mf, "tokenizer_config.json", &cfg, &cn, err) == MIXQ_OK)) {
            size_t pl = strlen(m->path) + strlen(names[k]) + 2;
            char *name = malloc(pl);
            if (name) {
                snprintf(name, pl, "%s:%s", m->path, names[k]);
                tok = mx_tok_load(k == 0 ? MX_TOK_HF_JSON : MX_TOK_SPM_MODEL, data, n, cfg, cn, name, err);
                free(name);
            } else {
                mx_err(err, MIXQ_E_NOMEM, "out of memory");
            }
        }
        mixq_free(data);
        mixq_free(cfg);
        return tok;
    }
    err->code = MIXQ_E_NOT_FOUND;
    return NULL;
}

int cli_open_tokenizer(const char *cmd, const rt_model *m, mx_tok **out)
{
    mixq_error err;
    *out = NULL;
    if (m->mf && m->config_stored) { /* the config came from the container: so does the tokenizer, if stored */
        mx_tok *tok = stored_tokenizer(m, &err);
        if (!tok && err.code != MIXQ_E_NOT_FOUND) {
            cli_error(cmd, "%s", err.message);
            return cli_exit_code(err.code);
        }
        if (tok) {
            *out = tok;
            goto check;
        }
    }
    if (!m->config_path) {
        cli_error(cmd, "%s: no directory to find the tokenizer in; give the token ids with --tokens FILE", m->path);
        return EXIT_USAGE;
    }
    char *dir = strdup(m->config_path);
    if (!dir) {
        cli_error(cmd, "out of memory");
        return EXIT_SYSTEM;
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    mx_tok *tok = mx_tok_load_dir(dir, &err);
    free(dir);
    if (!tok) {
        cli_error(cmd, "%s", err.message);
        return cli_exit_code(err.code);
    }
    *out = tok;
check:
    tok = *out;
    /* an embedding may have more rows than the tokenizer has ids (padding), never fewer */
    if (mx_tok_vocab_size(tok) > (size_t)m->cfg.vocab) {
        char b[MX_SHOWN_BUF];
        cli_error(cmd, "%s: the tokenizer has %zu tokens but the model's embedding has %lld rows: they do not belong "
                       "together",
                  mx_shown(m->path, b), mx_tok_vocab_size(tok), (long long)m->cfg.vocab);
        mx_tok_free(tok);
        *out = NULL;
        return EXIT_BAD_DATA;
    }
    return EXIT_OK;
}

int cli_tokenize(const char *cmd, const rt_model *m, const char *name, const char *text, size_t len, int add_bos,
                 int32_t **ids, size_t *n)
{
    mx_tok *tok = NULL;
    int rc = cli_open_tokenizer(cmd, m, &tok);
    if (rc) return rc;
    mixq_error err;
    mixq_status s = mx_tok_encode(tok, text, len, add_bos, ids, n, &err);
    mx_tok_free(tok);
    if (s) {
        char b[MX_SHOWN_BUF];
        cli_error(cmd, "%s: %s", mx_shown(name, b), err.message);
        return cli_exit_code(s);
    }
    return EXIT_OK;
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
        int rc = cli_tokenize(cmd, m, text_path, text, len, add_bos, ids, n);
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
