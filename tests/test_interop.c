/* test_interop.c - exports to other tools' formats: what the Python tests (tests/python/test_interop.py) cannot reach. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "mixq.h"
#include "mixq_tools.h"
#include "test_support.h"

static char *tiny_container(const char *dir, mixq_qtype type)
{
    char *src = ts_source_path("testdata/tiny-llama-f32"), *out = ts_path(dir, "in.mxq");
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = type;
    mixq_error err;
    cr_assert_eq(mixq_convert(src, out, &o, &err), MIXQ_OK, "%s", err.message);
    free(src);
    return out;
}

typedef struct stop_after {
    volatile sig_atomic_t flag;
    size_t calls, limit;
} stop_after;

static void progress_stop(void *ctx, size_t done, size_t total, const char *name)
{
    (void)done, (void)total, (void)name;
    stop_after *s = ctx;
    if (++s->calls >= s->limit) s->flag = 1;
}

/* Cancelled after k tensors (k = 1 .. all): no directory, and nothing beside it. */
Test(export_hf, cancel_leaves_nothing)
{
    char *dir = ts_tmpdir_tracked();
    char *in = tiny_container(dir, MIXQ_QT_INT8), *out = ts_path(dir, "hf");
    for (size_t limit = 1; limit <= 36; limit += 5) { /* 35 tensors: the last one ends the export */
        stop_after st = {0, 0, limit};
        mixq_export_hf_options o;
        mixq_export_hf_options_init(&o);
        o.shard_size = 50000;
        o.cancel = &st.flag;
        o.progress = progress_stop;
        o.progress_ctx = &st;
        mixq_error err;
        mixq_status s = mixq_export_hf(in, out, &o, &err);
        if (limit > 35) {
            cr_assert_eq(s, MIXQ_OK, "%s", err.message);
            cr_assert_eq(ts_dir_count(dir), 2);
            ts_rmtree(out);
            continue;
        }
        cr_assert_eq(s, MIXQ_E_CANCELLED, "limit %zu: %s", limit, err.message);
        cr_assert(!ts_exists(out));
        cr_assert_eq(ts_dir_count(dir), 1, "limit %zu: something was left beside the export", limit);
    }
    /* not cancelled: the directory, alone beside the container */
    mixq_error err;
    cr_assert_eq(mixq_export_hf(in, out, NULL, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(ts_dir_count(dir), 2);
    cr_assert_eq(mixq_export_hf(in, out, NULL, &err), MIXQ_E_EXISTS);
    cr_assert(strstr(err.message, "hf") && !strchr(err.message, '\n'));
    mixq_export_hf_options o;
    mixq_export_hf_options_init(&o);
    o.dtype = MIXQ_QT_INT8;
    cr_assert_eq(mixq_export_hf(in, out, &o, &err), MIXQ_E_INVALID_ARG);
    free(in);
    free(out);
    free(dir);
}

/* ---------------------------------------------------------------- GGUF vocabularies, hostile input */

#include "convert/gguf_vocab.h"

/* Every prefix and many bit flips of a real tokenizer.model: a vocabulary or a one-line error, never a crash. */
Test(gguf_vocab, sentencepiece_hostile)
{
    char *models = ts_models_dir();
    char *path = models ? ts_path(models, "tiny-llama-6l/tokenizer.model") : NULL;
    if (!path || !ts_exists(path)) {
        free(path);
        free(models);
        cr_skip_test("no ../shared/models/tiny-llama-6l/tokenizer.model");
    }
    size_t len;
    uint8_t *b = ts_read_file(path, &len);
    gv_vocab v;
    mixq_error err;
    cr_assert_eq(gv_from_sentencepiece("t.model", b, len, 0, &v, &err), MIXQ_OK, "%s", err.message);
    size_t n = v.n;
    cr_assert(n > 3 && !strcmp(v.tokens[1], "<s>") && v.bos == 1 && v.eos == 2 && v.types[0] == GV_UNKNOWN);
    gv_free(&v);
    cr_assert_eq(gv_from_sentencepiece("t.model", b, len, n + 5, &v, &err), MIXQ_OK);
    cr_assert(v.n == n + 5 && v.types[n] == GV_UNUSED && !strcmp(v.tokens[n + 4], "[PAD2052]") == (n == 2048));
    gv_free(&v);
    uint8_t *c = malloc(len);
    for (size_t cut = 0; cut < len; cut += cut < 512 ? 1 : 97) {
        mixq_status s = gv_from_sentencepiece("t.model", b, cut, 0, &v, &err);
        if (s == MIXQ_OK) gv_free(&v);
        else cr_assert(!strchr(err.message, '\n') && strstr(err.message, "t.model"));
    }
    uint64_t seed = 7;
    for (int i = 0; i < 3000; i++) {
        memcpy(c, b, len);
        for (int k = 0; k < 4; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            c[(seed >> 33) % len] ^= (uint8_t)(1u << ((seed >> 20) & 7));
        }
        mixq_status s = gv_from_sentencepiece("t.model", c, len, 0, &v, &err);
        if (s == MIXQ_OK) gv_free(&v);
        else cr_assert(!strchr(err.message, '\n'));
    }
    free(c);
    free(b);
    free(path);
    free(models);
}

Test(gguf_vocab, tokenizer_json)
{
    static const char good[] =
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\\u0120x\":3},"
        "\"merges\":[\"a b\",[\"ab\",\"b\"]]},"
        "\"added_tokens\":[{\"id\":5,\"content\":\"<|end|>\",\"special\":true},{\"id\":3,\"content\":\"\\u0120x\","
        "\"special\":false}],\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
        "\"use_regex\":true}}";
    gv_vocab v;
    mixq_error err;
    cr_assert_eq(gv_from_tokenizer_json("t.json", good, strlen(good), 8, &v, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(v.n, 8);
    cr_assert_str_eq(v.model, "gpt2");
    cr_assert(v.pre && !strcmp(v.pre, "gpt2"));
    cr_assert_str_eq(v.tokens[2], "ab");
    cr_assert_str_eq(v.tokens[5], "<|end|>");
    cr_assert_eq(v.types[5], GV_CONTROL);
    cr_assert_eq(v.types[3], GV_USER_DEFINED);
    cr_assert_eq(v.types[4], GV_UNUSED);
    cr_assert_str_eq(v.tokens[4], "[PAD4]");
    cr_assert(v.n_merges == 2 && !strcmp(v.merges[0], "a b") && !strcmp(v.merges[1], "ab b"));
    static const char cfg[] = "{\"add_bos_token\":false,\"eos_token\":{\"content\":\"<|end|>\"}}";
    gv_apply_tokenizer_config(&v, cfg, strlen(cfg));
    cr_assert(v.add_bos == 0 && v.eos == 5 && v.add_eos == -1);
    gv_free(&v);
    static const char *const bad[] = {
        "", "[]", "{\"model\":{\"type\":\"Unigram\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999999},\"merges\":[]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[1]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"id\":1}]}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\\u0000\":0},\"merges\":[]},\"added_tokens\":[{\"id\":0,\"content\":\"x\\u0000\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mixq_status s = gv_from_tokenizer_json("t.json", bad[i], strlen(bad[i]), 0, &v, &err);
        if (s == MIXQ_OK) gv_free(&v);
        cr_assert_neq(s, MIXQ_OK, "bad[%zu] accepted", i);
        cr_assert(!strchr(err.message, '\n') && strstr(err.message, "t.json"), "%s", err.message);
    }
}

/* GGUF export failures leave no output: no config.json stored, an unknown output type. */
Test(export_gguf, failures_leave_nothing)
{
    char *dir = ts_tmpdir_tracked();
    char *src = ts_source_path("testdata/tiny-llama-f32/model.safetensors"), *bare = ts_path(dir, "bare");
    char *in = ts_path(dir, "in.mxq"), *out = ts_path(dir, "out.gguf");
    mixq_error err;
    /* a copy of the checkpoint without its config.json: the container stores nothing */
    cr_assert_eq(mkdir(bare, 0755), 0);
    char *copy = ts_path(bare, "model.safetensors");
    size_t len;
    uint8_t *b = ts_read_file(src, &len);
    ts_write_file(copy, b, len);
    free(b);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = MIXQ_QT_F32;
    cr_assert_eq(mixq_convert(copy, in, &o, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(mixq_export_gguf(in, out, NULL, &err), MIXQ_E_NOT_FOUND);
    cr_assert(strstr(err.message, "config.json") && !strchr(err.message, '\n'));
    cr_assert(!ts_exists(out));
    mixq_export_gguf_options g;
    mixq_export_gguf_options_init(&g);
    g.requantize = (mixq_gguf_requantize)9;
    cr_assert_eq(mixq_export_gguf(in, out, &g, &err), MIXQ_E_INVALID_ARG);
    cr_assert_eq(ts_dir_count(dir), 2); /* bare/ and in.mxq */
    free(copy);
    free(src);
    free(bare);
    free(in);
    free(out);
    free(dir);
}
