/*
 * test_tokenizer_spm.c - SentencePiece tokenizer.model encoding against
 * python3-sentencepiece (/usr/bin/python3), on the shared models
 * (../shared/models: tiny-llama-6l BPE with byte fallback, baby-llama-105 BPE
 * without) and the small models of tests/data/tokenizer/ (unigram, unigram with
 * byte fallback, BPE with user-defined symbols), over handcrafted strings,
 * every line of eval-text.txt and the whole text.  Skipped (visibly) when
 * the models or the Python module are missing.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "tok_ref_common.h"

/* 1 if /usr/bin/python3 has the sentencepiece module. */
static int have_python_spm(void)
{
    char *script = ts_source_path("tests/tok_ref_spm.py"), cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' --check 2>/dev/null", script);
    free(script);
    int st;
    char *out = tref_run(cmd, &st);
    free(out);
    return out != NULL;
}

static mx_tok *load_file(const char *path)
{
    size_t len;
    uint8_t *data = ts_read_file(path, &len);
    cr_assert(data, "cannot read %s", path);
    mixq_error err;
    mx_tok *tok = mx_tok_load(MX_TOK_SPM_MODEL, data, len, NULL, 0, path, &err);
    free(data);
    cr_assert(tok, "%s", err.message);
    return tok;
}

/* Compares a model with the reference on the handcrafted strings and, when present, eval-text.txt. */
static void compare_model(const char *model, const char *what)
{
    if (!have_python_spm()) cr_skip_test("/usr/bin/python3 has no sentencepiece module (apt-get install python3-sentencepiece)");
    char *models = ts_models_dir(), *eval = models ? ts_path(models, "eval-text.txt") : NULL;
    tref_texts t;
    tref_texts_build(&t, eval && ts_exists(eval) ? eval : NULL, SIZE_MAX);
    char *dir = ts_tmpdir(), *texts = tref_write(&t, dir), *script = ts_source_path("tests/tok_ref_spm.py");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s'", script, model, texts);
    int st;
    char *ref = tref_run(cmd, &st);
    cr_assert(ref, "the reference failed (exit %d): %s", st, cmd);
    mx_tok *tok = load_file(model);
    size_t n = tref_compare(tok, &t, ref, what);
    cr_assert_gt(n, 0);
    mx_tok_free(tok);
    free(ref);
    ts_rmtree(dir);
    free(dir);
    free(texts);
    free(script);
    free(eval);
    free(models);
    tref_texts_free(&t);
}

/* The path of a shared model's tokenizer.model, or skips the test. */
static char *shared_model(const char *name)
{
    char *models = ts_models_dir();
    if (!models) cr_skip_test("../shared/models is absent");
    char *dir = ts_path(models, name), *p = ts_path(dir, "tokenizer.model");
    free(dir);
    free(models);
    if (!ts_exists(p)) cr_skip_test("%s is absent", p);
    return p;
}

Test(spm_reference, tiny_llama_bpe_byte_fallback, .timeout = 120)
{
    char *p = shared_model("tiny-llama-6l");
    compare_model(p, "tiny-llama-6l");
    free(p);
}

Test(spm_reference, baby_llama_bpe_no_byte_fallback, .timeout = 120)
{
    char *p = shared_model("baby-llama-105");
    compare_model(p, "baby-llama-105");
    free(p);
}

Test(spm_reference, unigram, .timeout = 120)
{
    char *p = ts_source_path("tests/data/tokenizer/unigram.model");
    compare_model(p, "unigram");
    free(p);
}

Test(spm_reference, unigram_byte_fallback, .timeout = 120)
{
    char *p = ts_source_path("tests/data/tokenizer/unigram-bf.model");
    compare_model(p, "unigram-bf");
    free(p);
}

Test(spm_reference, bpe_user_defined_symbols, .timeout = 120)
{
    char *p = ts_source_path("tests/data/tokenizer/bpe-user.model");
    compare_model(p, "bpe-user");
    free(p);
}
