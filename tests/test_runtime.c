/*
 * test_runtime.c - the runtime's parsers and file formats: config.json,
 * binding against tensor shapes, token files, the importance-matrix files
 * (round trips, byte layout, truncated and hostile files), calibration and
 * evaluation invariants on a generated tiny model, and the CLI's one-line
 * errors for bad inputs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "runtime/calibrate.h"
#include "runtime/eval.h"
#include "runtime/forward.h"
#include "format/imatrix.h"
#include "runtime/model.h"
#include "mixq_tools.h"
#include "test_support.h"

static void fini(void) { ts_remove_tracked(); }
TestSuite(runtime, .fini = fini);

static int one_line(const char *s) { return s && *s && !strchr(s, '\n'); }

/* ---------------------------------------------------------------- config.json */

static const char llama_cfg[] =
    "{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 2,"
    " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 10, \"rms_norm_eps\": 1e-5,"
    " \"rope_theta\": 500000.0, \"tie_word_embeddings\": true, \"bos_token_id\": 1, \"eos_token_id\": [2, 7],"
    " \"max_position_embeddings\": 64, \"hidden_act\": \"silu\","
    " \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
    " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 32}}";

Test(runtime, config_llama)
{
    rt_config c;
    mixq_error err;
    cr_assert_eq(rt_config_parse("config.json", llama_cfg, strlen(llama_cfg), &c, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(c.arch, RT_ARCH_LLAMA);
    cr_assert_eq(c.hidden, 8);
    cr_assert_eq(c.head_dim, 2); /* hidden / heads when head_dim is absent */
    cr_assert_eq(c.n_kv_heads, 2);
    cr_assert(c.rope_llama3 && c.rope_factor == 8.0 && c.rope_orig_max_pos == 32);
    cr_assert(c.tie_embeddings && !c.qkv_bias);
    cr_assert_eq(c.bos_id, 1);
    cr_assert(c.n_eos == 2 && c.eos_ids[0] == 2 && c.eos_ids[1] == 7);
    cr_assert_eq(c.rope_theta, 500000.0);
}

Test(runtime, config_qwen2_has_biases)
{
    const char *j = "{\"model_type\": \"qwen2\", \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1,"
                    " \"num_attention_heads\": 2, \"vocab_size\": 10, \"bos_token_id\": null, \"eos_token_id\": 3}";
    rt_config c;
    mixq_error err;
    cr_assert_eq(rt_config_parse("config.json", j, strlen(j), &c, &err), MIXQ_OK, "%s", err.message);
    cr_assert(c.qkv_bias && !c.o_bias && c.bos_id == -1 && c.n_kv_heads == 2 && !c.tie_embeddings);
}

static void bad_config(const char *json, mixq_status want, const char *needle)
{
    rt_config c;
    mixq_error err;
    mixq_status s = rt_config_parse("cfg.json", json, strlen(json), &c, &err);
    cr_assert_eq(s, want, "%s -> %d (%s)", json, s, err.message);
    cr_assert(one_line(err.message));
    cr_assert(strstr(err.message, "cfg.json"), "%s", err.message);
    cr_assert(strstr(err.message, needle), "'%s' lacks '%s'", err.message, needle);
}

Test(runtime, config_bad_inputs)
{
    bad_config("{\"model_type\": \"gpt2\"}", MIXQ_E_UNSUPPORTED,
               "model_type 'gpt2' is not supported for eval/calibrate/run; supported: llama, mistral, qwen2");
    bad_config("{\"model_type\": \"llama\"}", MIXQ_E_FORMAT, "missing \"hidden_size\"");
    bad_config("{\"model_type\": \"llama\", \"hidden_size\": 10, \"intermediate_size\": 4, \"num_hidden_layers\": 1,"
               " \"num_attention_heads\": 3, \"vocab_size\": 5}", MIXQ_E_FORMAT, "not a multiple");
    bad_config("{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 4, \"num_hidden_layers\": 1,"
               " \"num_attention_heads\": 4, \"num_key_value_heads\": 3, \"vocab_size\": 5}", MIXQ_E_FORMAT,
               "num_key_value_heads");
    bad_config("{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 4, \"num_hidden_layers\": 1,"
               " \"num_attention_heads\": 4, \"vocab_size\": 5, \"rope_scaling\": {\"type\": \"yarn\"}}",
               MIXQ_E_UNSUPPORTED, "rope_scaling of type 'yarn'");
    bad_config("{\"model_type\": \"llama\", \"hidden_size\": -8}", MIXQ_E_FORMAT, "hidden_size");
    bad_config("{\"model_type\": \"llama\", \"hidden_size\": \"8\"}", MIXQ_E_FORMAT, "must be an integer");
    bad_config("{\"model_type\": \"llama\",", MIXQ_E_FORMAT, "not valid JSON");
    bad_config("[1]", MIXQ_E_FORMAT, "not a JSON object");
    bad_config("{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 4, \"num_hidden_layers\": 1,"
               " \"num_attention_heads\": 4, \"vocab_size\": 5, \"hidden_act\": \"gelu\"}",
               MIXQ_E_UNSUPPORTED, "silu");
}

/* ---------------------------------------------------------------- a generated tiny model */

/* A checkpoint of tensors with the shapes of (H, I, L, heads, kv heads, V), values from an LCG (test_support.c). */
static void write_model(const char *dir, int H, int I, int L, int nh, int nkv, int V, const char *cfg_json)
{
    ts_write_llama(dir, H, I, L, nh, nkv, V, cfg_json);
}

static const char tiny_cfg[] =
    "{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 2,"
    " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 10, \"tie_word_embeddings\": true,"
    " \"bos_token_id\": 1, \"eos_token_id\": 2, \"max_position_embeddings\": 64}";

Test(runtime, shape_mismatch_names_tensor_and_shapes)
{
    char *dir = ts_tmpdir_tracked();
    write_model(dir, 8, 16, 2, 4, 2, 10, tiny_cfg); /* the tensors have intermediate 16, the config 12 */
    rt_model *m = NULL;
    mixq_error err;
    cr_assert_eq(rt_model_open(dir, NULL, &m, &err), MIXQ_E_FORMAT);
    cr_assert(one_line(err.message));
    cr_assert(strstr(err.message, "config.json disagrees with"), "%s", err.message);
    cr_assert(strstr(err.message, "'model.layers.0.mlp.gate_proj.weight' has shape [16, 8], expected [12, 8]"), "%s",
              err.message);
    /* untied config without lm_head */
    char *dir2 = ts_tmpdir_tracked();
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", tiny_cfg);
    char *tie = strstr(cfg, "true");
    memcpy(tie, "0   ", 4); /* "tie_word_embeddings": 0 is not a boolean: the default, untied */
    write_model(dir2, 8, 12, 2, 4, 2, 10, cfg);
    cr_assert_eq(rt_model_open(dir2, NULL, &m, &err), MIXQ_E_FORMAT);
    cr_assert(strstr(err.message, "no tensor 'lm_head.weight'"), "%s", err.message);
    /* a missing layer */
    char *dir3 = ts_tmpdir_tracked();
    write_model(dir3, 8, 12, 1, 4, 2, 10, tiny_cfg);
    cr_assert_eq(rt_model_open(dir3, NULL, &m, &err), MIXQ_E_FORMAT);
    cr_assert(strstr(err.message, "no tensor 'model.layers.1.input_layernorm.weight'"), "%s", err.message);
    free(dir);
    free(dir2);
    free(dir3);
}

/* ---------------------------------------------------------------- token files */

Test(runtime, token_files)
{
    int32_t *ids;
    size_t n;
    mixq_error err;
    const char *ok = " 1 2\n\t30  \r\n4";
    cr_assert_eq(rt_tokens_parse("t", ok, strlen(ok), &ids, &n, &err), MIXQ_OK);
    cr_assert(n == 4 && ids[0] == 1 && ids[2] == 30 && ids[3] == 4);
    cr_assert_eq(rt_tokens_check("t", ids, n, 31, &err), MIXQ_OK);
    cr_assert_eq(rt_tokens_check("t", ids, n, 30, &err), MIXQ_E_RANGE);
    cr_assert(strstr(err.message, "token id 30 at position 2 is out of range"), "%s", err.message);
    free(ids);
    cr_assert_eq(rt_tokens_parse("t", "", 0, &ids, &n, &err), MIXQ_OK);
    cr_assert_eq(n, 0);
    free(ids);
    const char *bad[] = {"1 x", "12a 3", "-1", "99999999999", "1,2", "3.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_neq(rt_tokens_parse("t.tok", bad[i], strlen(bad[i]), &ids, &n, &err), MIXQ_OK, "%s", bad[i]);
        cr_assert(one_line(err.message) && strstr(err.message, "t.tok"), "%s", err.message);
    }
}

/* ---------------------------------------------------------------- importance matrices */

static mx_imatrix *sample_imatrix(void)
{
    mx_imatrix *im = mx_imatrix_new();
    mx_imatrix_entry *e = mx_imatrix_add(im, "blk.1.ffn_down.weight", 3);
    e->sum2[0] = 1.5;
    e->sum2[1] = 0;
    e->sum2[2] = 1024.25;
    e->count = 256;
    e = mx_imatrix_add(im, "blk.0.attn_q.weight", 2);
    e->sum2[0] = 3;
    e->sum2[1] = 0.5;
    e->count = 256;
    im->chunk_count = 2;
    im->chunk_size = 128;
    mx_imatrix_add_dataset(im, "calib.txt", NULL);
    return im;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static float rdf(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }

/* Reads a GGUF string at *pos and checks it equals s. */
static void expect_gstr(const uint8_t *b, size_t *pos, const char *s)
{
    uint64_t n = rd64(b + *pos);
    cr_assert_eq(n, strlen(s), "string at %zu", *pos);
    cr_assert(!memcmp(b + *pos + 8, s, n), "string at %zu is not %s", *pos, s);
    *pos += 8 + n;
}

Test(runtime, imatrix_gguf_layout)
{
    mx_imatrix *im = sample_imatrix();
    uint8_t *b;
    size_t len;
    cr_assert_eq(mx_imatrix_gguf_bytes(im, &b, &len, NULL), MIXQ_OK);
    cr_assert(!memcmp(b, "GGUF", 4));
    cr_assert_eq(rd32(b + 4), 3);
    cr_assert_eq(rd64(b + 8), 4); /* tensors: in_sum2 and counts of 2 entries */
    cr_assert_eq(rd64(b + 16), 4); /* keys */
    size_t pos = 24;
    expect_gstr(b, &pos, "general.type");
    cr_assert_eq(rd32(b + pos), 8); /* GGUF_TYPE_STRING */
    pos += 4;
    expect_gstr(b, &pos, "imatrix");
    expect_gstr(b, &pos, "imatrix.datasets");
    cr_assert_eq(rd32(b + pos), 9); /* ARRAY */
    cr_assert_eq(rd32(b + pos + 4), 8); /* of STRING */
    cr_assert_eq(rd64(b + pos + 8), 1);
    pos += 16;
    expect_gstr(b, &pos, "calib.txt");
    expect_gstr(b, &pos, "imatrix.chunk_count");
    cr_assert_eq(rd32(b + pos), 4); /* UINT32 */
    cr_assert_eq(rd32(b + pos + 4), 2);
    pos += 8;
    expect_gstr(b, &pos, "imatrix.chunk_size");
    cr_assert_eq(rd32(b + pos), 4);
    cr_assert_eq(rd32(b + pos + 4), 128);
    pos += 8;
    /* tensor infos in name order: blk.0.attn_q before blk.1.ffn_down; in_sum2 then counts */
    const char *names[4] = {"blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts",
                            "blk.1.ffn_down.weight.in_sum2", "blk.1.ffn_down.weight.counts"};
    uint64_t ne[4] = {2, 1, 3, 1}, offs[4];
    for (int i = 0; i < 4; i++) {
        expect_gstr(b, &pos, names[i]);
        cr_assert_eq(rd32(b + pos), 1, "n_dims of %s", names[i]);
        cr_assert_eq(rd64(b + pos + 4), ne[i]);
        cr_assert_eq(rd32(b + pos + 12), 0); /* GGML_TYPE_F32 */
        offs[i] = rd64(b + pos + 16);
        cr_assert_eq(offs[i] % 32, 0);
        pos += 24;
    }
    cr_assert_eq(offs[0], 0);
    cr_assert_eq(offs[1], 32);
    cr_assert_eq(offs[2], 64);
    cr_assert_eq(offs[3], 96);
    size_t data = (pos + 31) / 32 * 32;
    for (size_t i = pos; i < data; i++) cr_assert_eq(b[i], 0);
    cr_assert_eq(len, data + 128);
    cr_assert_eq(rdf(b + data + offs[0]), 3.0f);
    cr_assert_eq(rdf(b + data + offs[0] + 4), 0.5f);
    cr_assert_eq(rdf(b + data + offs[1]), 256.0f);
    cr_assert_eq(rdf(b + data + offs[2] + 8), 1024.25f);
    cr_assert_eq(rdf(b + data + offs[3]), 256.0f);
    free(b);
    mx_imatrix_free(im);
}

Test(runtime, imatrix_dat_layout)
{
    mx_imatrix *im = sample_imatrix();
    uint8_t *b;
    size_t len;
    cr_assert_eq(mx_imatrix_dat_bytes(im, &b, &len, NULL), MIXQ_OK);
    size_t pos = 0;
    cr_assert_eq(rd32(b), 2);
    pos = 4;
    const char *n0 = "blk.0.attn_q.weight";
    cr_assert_eq(rd32(b + pos), strlen(n0));
    cr_assert(!memcmp(b + pos + 4, n0, strlen(n0)));
    pos += 4 + strlen(n0);
    cr_assert_eq(rd32(b + pos), 2);     /* ncall = ceil(256 / 128) */
    cr_assert_eq(rd32(b + pos + 4), 2); /* nval */
    cr_assert_eq(rdf(b + pos + 8), 3.0f / 256 * 2); /* mean * ncall */
    cr_assert_eq(rdf(b + pos + 12), 0.5f / 256 * 2);
    pos += 16;
    const char *n1 = "blk.1.ffn_down.weight";
    cr_assert_eq(rd32(b + pos), strlen(n1));
    pos += 4 + strlen(n1) + 8 + 12;
    cr_assert_eq(rd32(b + pos), 2); /* last_call: the chunk count */
    cr_assert_eq(rd32(b + pos + 4), strlen("calib.txt"));
    cr_assert(!memcmp(b + pos + 8, "calib.txt", 9));
    cr_assert_eq(len, pos + 8 + 9);
    free(b);
    mx_imatrix_free(im);
}

static const mx_imatrix_entry *find_entry(const mx_imatrix *im, const char *name)
{
    for (size_t i = 0; i < im->n_entries; i++)
        if (!strcmp(im->entries[i].name, name)) return &im->entries[i];
    return NULL;
}

Test(runtime, imatrix_round_trips)
{
    mx_imatrix *im = sample_imatrix();
    char *dir = ts_tmpdir_tracked();
    for (int f = 0; f < 2; f++) {
        char *path = ts_path(dir, f ? "im.dat" : "im.gguf");
        mixq_error err;
        cr_assert_eq(mx_imatrix_write(im, path, 0, &err), MIXQ_OK, "%s", err.message);
        cr_assert_eq(mx_imatrix_write(im, path, 0, &err), MIXQ_E_EXISTS);
        mx_imatrix *back = NULL;
        cr_assert_eq(mx_imatrix_read(path, &back, &err), MIXQ_OK, "%s", err.message);
        cr_assert_eq(back->n_entries, 2);
        cr_assert_eq(back->chunk_count, 2);
        if (!f) cr_assert_eq(back->chunk_size, 128);
        cr_assert(back->n_datasets == 1 && !strcmp(back->datasets[0], "calib.txt"));
        for (size_t i = 0; i < im->n_entries; i++) {
            const mx_imatrix_entry *a = &im->entries[i], *e = find_entry(back, a->name);
            cr_assert(e && e->n == a->n, "%s", a->name);
            for (size_t j = 0; j < a->n; j++) {
                double ma = a->sum2[j] / a->count, mb = e->sum2[j] / e->count; /* the mean survives both */
                cr_assert(fabs(ma - mb) <= 1e-6 * fabs(ma), "%s[%zu]: %g vs %g", a->name, j, ma, mb);
                if (!f) cr_assert_eq(e->sum2[j], a->sum2[j]);
            }
            cr_assert_eq(e->count, f ? 2.0 : 256.0); /* a .dat keeps the calls, not the tokens */
        }
        mx_imatrix_free(back);
        free(path);
    }
    mx_imatrix_free(im);
    free(dir);
}

/* Every prefix and many corrupted copies of a file: an error with one line, or a whole valid result. */
static void hostile(const uint8_t *b, size_t len, int gguf)
{
    uint8_t *c = malloc(len);
    for (size_t cut = 0; cut < len; cut++) {
        mx_imatrix *im = NULL;
        mixq_error err;
        memcpy(c, b, cut);
        mixq_status s = mx_imatrix_parse("x.imatrix", c, cut, &im, &err);
        if (s) {
            cr_assert(one_line(err.message) && strstr(err.message, "x.imatrix"), "cut %zu: %s", cut, err.message);
        } else {
            /* only where the format allows an end: the .dat without its trailer, GGUF padding */
            cr_assert_eq(im->n_entries, 2, "cut %zu", cut);
            mx_imatrix_free(im);
        }
    }
    uint32_t x = 99;
    for (int it = 0; it < 3000; it++) {
        memcpy(c, b, len);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            x = x * 1664525u + 1013904223u;
            c[(x >> 8) % len] ^= (uint8_t)(1u << (x % 8) | (it % 7 == 0 ? 0x80 : 0));
        }
        mx_imatrix *im = NULL;
        mixq_error err;
        if (mx_imatrix_parse("x.imatrix", c, len, &im, &err)) cr_assert(one_line(err.message));
        mx_imatrix_free(im);
    }
    (void)gguf;
    free(c);
}

Test(runtime, imatrix_truncated_and_corrupt)
{
    mx_imatrix *im = sample_imatrix();
    uint8_t *b;
    size_t len;
    cr_assert_eq(mx_imatrix_gguf_bytes(im, &b, &len, NULL), MIXQ_OK);
    hostile(b, len, 1);
    /* a GGUF cut inside the tensor data fails and says so */
    mx_imatrix *out;
    mixq_error err;
    cr_assert_eq(mx_imatrix_parse("x.gguf", b, len - 40, &out, &err), MIXQ_E_FORMAT);
    cr_assert(strstr(err.message, "outside the file"), "%s", err.message);
    /* a huge tensor count */
    uint8_t *h = malloc(len);
    memcpy(h, b, len);
    uint64_t big = (uint64_t)1 << 60;
    memcpy(h + 8, &big, 8);
    cr_assert_eq(mx_imatrix_parse("x.gguf", h, len, &out, &err), MIXQ_E_FORMAT);
    free(h);
    free(b);
    cr_assert_eq(mx_imatrix_dat_bytes(im, &b, &len, NULL), MIXQ_OK);
    hostile(b, len, 0);
    cr_assert_eq(mx_imatrix_parse("x.dat", b, 30, &out, &err), MIXQ_E_FORMAT);
    cr_assert(strstr(err.message, "x.dat") && strstr(err.message, "truncated"), "%s", err.message);
    int32_t neg = -1;
    memcpy(b, &neg, 4);
    cr_assert_eq(mx_imatrix_parse("x.dat", b, len, &out, &err), MIXQ_E_FORMAT);
    free(b);
    mx_imatrix_free(im);
}

Test(runtime, imatrix_not_an_imatrix)
{
    /* a GGUF whose general.type is "model" */
    uint8_t b[64] = "GGUF";
    uint32_t v = 3, t = 8;
    uint64_t nt = 0, nkv = 1, kl = 12, vl = 5;
    size_t p = 4;
    memcpy(b + p, &v, 4), p += 4;
    memcpy(b + p, &nt, 8), p += 8;
    memcpy(b + p, &nkv, 8), p += 8;
    memcpy(b + p, &kl, 8), p += 8;
    memcpy(b + p, "general.type", 12), p += 12;
    memcpy(b + p, &t, 4), p += 4;
    memcpy(b + p, &vl, 8), p += 8;
    memcpy(b + p, "model", 5), p += 5;
    mx_imatrix *out;
    mixq_error err;
    cr_assert_eq(mx_imatrix_parse("m.gguf", b, p, &out, &err), MIXQ_E_FORMAT);
    cr_assert(strstr(err.message, "not an importance matrix (general.type is 'model')"), "%s", err.message);
}

/* ---------------------------------------------------------------- calibrate and eval on the tiny model */

Test(runtime, calibrate_and_eval_invariants)
{
    char *dir = ts_tmpdir_tracked();
    write_model(dir, 8, 12, 2, 4, 2, 10, tiny_cfg);
    rt_model *m;
    mixq_error err;
    cr_assert_eq(rt_model_open(dir, NULL, &m, &err), MIXQ_OK, "%s", err.message);
    int32_t tok[64];
    for (int i = 0; i < 64; i++) tok[i] = (i * 7 + 3) % 10;
    mx_pool *pool = mx_pool_create(2);
    rt_calibrate_options o = {.ctx = 16, .pool = pool, .dataset = "d"};
    mx_imatrix *im;
    cr_assert_eq(rt_calibrate(m, tok, 60, &o, &im, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(im->n_entries, 14);
    cr_assert(im->chunk_count == 3 && im->chunk_size == 16);
    const mx_imatrix_entry *q = find_entry(im, "blk.1.attn_q.weight"), *k = find_entry(im, "blk.1.attn_k.weight"),
                           *d = find_entry(im, "blk.0.ffn_down.weight");
    cr_assert(q && k && d && find_entry(im, "blk.0.attn_output.weight") && find_entry(im, "blk.1.ffn_gate.weight"));
    cr_assert(!find_entry(im, "output.weight"));
    cr_assert(q->count == 48 && d->count == 48 && d->n == 12 && q->n == 8);
    for (size_t j = 0; j < q->n; j++) {
        cr_assert_eq(q->sum2[j], k->sum2[j]); /* q and k see the same input */
        cr_assert(q->sum2[j] > 0);
    }
    mx_imatrix_free(im);
    o.process_output = 1;
    cr_assert_eq(rt_calibrate(m, tok, 60, &o, &im, &err), MIXQ_OK, "%s", err.message);
    cr_assert(find_entry(im, "output.weight") && im->n_entries == 15);
    mx_imatrix_free(im);

    double chunk_kld[5] = {-1, -1, -1, -1, -1};
    rt_eval_options eo = {.ctx = 16, .pool = pool, .chunk_kld = chunk_kld};
    cr_assert(rt_eval_chunk_count(64, &eo) == 4 && rt_eval_chunk_count(15, &eo) == 0);
    rt_eval_result r;
    cr_assert_eq(rt_eval(m, m, tok, 64, &eo, &r, &err), MIXQ_OK, "%s", err.message);
    cr_assert(r.chunks == 4 && r.n_scored == 4 * 7);
    cr_assert(r.kld_mean == 0 && r.same_top1 == 1 && r.rms_dp == 0 && r.ppl == r.base_ppl && r.ppl > 1);
    cr_assert(r.kld_stderr == 0 && chunk_kld[0] == 0 && chunk_kld[3] == 0 && chunk_kld[4] == -1);
    eo.max_chunks = 3;
    cr_assert(rt_eval_chunk_count(64, &eo) == 3);
    eo.max_chunks = 0;
    eo.chunk_kld = NULL;
    tok[5] = 10;
    cr_assert_eq(rt_eval(m, NULL, tok, 64, &eo, &r, &err), MIXQ_E_RANGE);
    cr_assert(strstr(err.message, "token id 10 at position 5"), "%s", err.message);
    cr_assert_eq(rt_eval(m, NULL, tok, 15, &eo, &r, &err), MIXQ_E_INVALID_ARG);
    mx_pool_destroy(pool);
    rt_model_close(m);
    free(dir);
}

Test(runtime, percentile)
{
    double v[5] = {1, 2, 3, 4, 10};
    cr_assert_eq(rt_percentile(v, 5, 0.5), 3);
    cr_assert_eq(rt_percentile(v, 5, 0), 1);
    cr_assert_eq(rt_percentile(v, 5, 1), 10);
    cr_assert(fabs(rt_percentile(v, 5, 0.99) - (0.04 * 4 + 0.96 * 10)) < 1e-12);
}

/* ---------------------------------------------------------------- the CLI's errors */

static void cli_fails(const char *const *args, int code, const char *needle)
{
    char *out = NULL, *err = NULL;
    int rc = ts_run_cli(args, &out, &err);
    cr_assert_eq(rc, code, "exit %d (stderr: %s)", rc, err);
    /* one line ending in a newline; usage errors add the "Try 'mixq CMD --help'" line */
    char *nl = err ? strchr(err, '\n') : NULL;
    cr_assert(nl, "no message");
    if (code == 2 && nl[1]) cr_assert(strstr(nl + 1, "--help"), "%s", err);
    else cr_assert(nl[1] == 0, "not one line: %s", err);
    cr_assert(strstr(err, needle), "'%s' lacks '%s'", err, needle);
    free(out);
    free(err);
}

Test(runtime, cli_bad_inputs)
{
    char *dir = ts_tmpdir_tracked();
    write_model(dir, 8, 12, 2, 4, 2, 10, tiny_cfg);
    char *tok = ts_path(dir, "in.tok"), *bad = ts_path(dir, "bad.tok"), *garbage = ts_path(dir, "garbage.tok");
    char *im = ts_path(dir, "im.gguf"), *trunc = ts_path(dir, "trunc.gguf");
    char text[400] = "";
    for (int i = 0; i < 100; i++) sprintf(text + strlen(text), "%d ", (i * 3) % 10);
    ts_write_file(tok, text, strlen(text));
    ts_write_file(bad, "1 2 3 10 4", 10);
    ts_write_file(garbage, "1 2 three", 9);
    cli_fails((const char *const[]){"eval", dir, "--tokens", bad, "--ctx", "4", NULL}, 1,
              "token id 10 at position 3 is out of range");
    cli_fails((const char *const[]){"eval", dir, "--tokens", garbage, NULL}, 1, "garbage.tok");
    cli_fails((const char *const[]){"run", dir, "--tokens", bad, "--print-ids", NULL}, 1, "bad.tok");
    cli_fails((const char *const[]){"calibrate", dir, "--tokens", bad, "-o", im, NULL}, 1, "out of range");
    cli_fails((const char *const[]){"eval", dir, "--tokens", tok, "--ctx", "999", NULL}, 2, "do not make one chunk");
    cli_fails((const char *const[]){"eval", dir, NULL}, 2, "--tokens");
    cli_fails((const char *const[]){"eval", dir, "--tokens", tok, "--ctx", "x", NULL}, 2, "--ctx");

    /* a config that disagrees with the tensors */
    char *dir2 = ts_tmpdir_tracked();
    write_model(dir2, 8, 16, 2, 4, 2, 10, tiny_cfg);
    cli_fails((const char *const[]){"eval", dir2, "--tokens", tok, NULL}, 1, "has shape [16, 8], expected [12, 8]");
    char *gcfg = ts_path(dir2, "config.json");
    ts_write_file(gcfg, "{\"model_type\": \"gpt2\"}", 22);
    cli_fails((const char *const[]){"calibrate", dir2, "--tokens", tok, "-o", im, NULL}, 1,
              "not supported for eval/calibrate/run; supported: llama, mistral, qwen2");

    /* calibrate writes a file its reader takes back; a truncated copy is a one-line error */
    char *out = NULL;
    int rc = ts_run_cli((const char *const[]){"calibrate", dir, "--tokens", tok, "-o", im, "--ctx", "16", NULL}, &out,
                        NULL);
    cr_assert_eq(rc, 0);
    cr_assert(strstr(out, "14 tensors, 6 chunks of 16 tokens"), "%s", out);
    free(out);
    size_t len;
    uint8_t *b = ts_read_file(im, &len);
    mx_imatrix *back;
    mixq_error err;
    cr_assert_eq(mx_imatrix_parse("im", b, len, &back, &err), MIXQ_OK, "%s", err.message);
    cr_assert(back->n_entries == 14 && back->chunk_count == 6 && find_entry(back, "blk.1.ffn_up.weight")->count == 96);
    mx_imatrix_free(back);
    ts_write_file(trunc, b, len / 2);
    cr_assert_eq(mx_imatrix_read(trunc, &back, &err), MIXQ_E_FORMAT);
    cr_assert(strstr(err.message, "trunc.gguf") && one_line(err.message), "%s", err.message);
    free(b);
    cli_fails((const char *const[]){"calibrate", dir, "--tokens", tok, "-o", im, NULL}, 3, "exists");
    free(tok), free(bad), free(garbage), free(im), free(trunc), free(gcfg), free(dir), free(dir2);
}

/* ---------------------------------------------------------------- config.json stored in the container */

Test(runtime, container_alone_carries_its_config)
{
    char *dir = ts_tmpdir_tracked(), *other = ts_tmpdir_tracked();
    write_model(dir, 8, 12, 2, 4, 2, 10, tiny_cfg);
    char *out = ts_path(other, "m.mxq"), *cfg = ts_path(dir, "config.json");
    mixq_convert_options co;
    mixq_convert_options_init(&co);
    co.type = MIXQ_QT_F32;
    mixq_error err;
    cr_assert_eq(mixq_convert(dir, out, &co, &err), MIXQ_OK, "%s", err.message);
    /* nothing but the container in its directory: config.json comes from inside */
    cr_assert_eq(ts_dir_count(other), 1);
    rt_model *m, *ref;
    cr_assert_eq(rt_model_open(out, NULL, &m, &err), MIXQ_OK, "%s", err.message);
    cr_assert(strstr(m->config_path, "m.mxq:config.json"), "%s", m->config_path);
    cr_assert_eq(rt_model_open(dir, NULL, &ref, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(memcmp(&m->cfg, &ref->cfg, sizeof m->cfg), 0);
    rt_model_close(m);
    rt_model_close(ref);
    /* the stored bytes are the file's */
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    size_t want_len, len;
    uint8_t *want = ts_read_file(cfg, &want_len);
    void *buf;
    cr_assert_eq(mixq_file_count(f), 1);
    cr_assert_eq(mixq_file_read(f, "config.json", &buf, &len, &err), MIXQ_OK, "%s", err.message);
    cr_assert(len == want_len && !memcmp(buf, want, len));
    mixq_free(buf);
    cr_assert_eq(mixq_file_read(f, "tokenizer.json", &buf, &len, &err), MIXQ_E_NOT_FOUND);
    cr_assert(buf == NULL && strstr(err.message, "tokenizer.json"));
    mixq_close(f);
    free(want);
    /* --config DIR still wins: a broken config there is what is read */
    ts_write_file(cfg, "{}", 2);
    cr_assert_eq(rt_model_open(out, dir, &m, &err), MIXQ_E_FORMAT);
    free(out);
    free(cfg);
    free(dir);
    free(other);
}
