/*
 * test_imatrix.c - importance matrices applied by convert and plan
 * (--imatrix): GGUF name mapping, the length-mismatch error, the
 * missing-entry warning, importance changing the searched scales and
 * lowering the importance-weighted error for every quantized type, the
 * planner's importance-weighted errors, the header record, and the SIMD
 * kernels bit for bit with the weights the converter passes.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "mixq_tools.h"
#include "format/imatrix.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "plan/plan_measure.h"
#include "test_support.h"

static void fini(void) { ts_remove_tracked(); }
TestSuite(imatrix, .fini = fini);

#define H 128  /* hidden size: columns of q_proj, lm_head, embed_tokens */
#define I 256  /* columns of down_proj */
#define V 64   /* vocabulary rows */

/* Deterministic pseudo-random numbers. */
static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static double unit(uint64_t *s) { return ((double)(rng(s) >> 11) + 0.5) * 0x1p-53; }
static double gauss(uint64_t *s) { return sqrt(-2.0 * log(unit(s))) * cos(6.283185307179586 * unit(s)); }

static const struct {
    const char *name;
    int rows, cols;
} tensors[] = {
    {"model.embed_tokens.weight", V, H},
    {"model.layers.0.self_attn.q_proj.weight", 64, H},
    {"model.layers.0.mlp.down_proj.weight", H, I},
    {"model.norm.weight", H, 0},
    {"lm_head.weight", V, H},
};
#define NT (sizeof tensors / sizeof tensors[0])

/* A small LLaMA-named checkpoint in dir/model.safetensors (F32, Gaussian with a few outliers). */
static char *write_checkpoint(const char *dir)
{
    char hdr[4096];
    size_t hl = 0, off = 0;
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "{");
    for (size_t i = 0; i < NT; i++) {
        size_t n = (size_t)tensors[i].rows * (size_t)(tensors[i].cols ? tensors[i].cols : 1);
        if (tensors[i].cols)
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl,
                                   "%s\"%s\": {\"dtype\": \"F32\", \"shape\": [%d, %d], \"data_offsets\": [%zu, %zu]}",
                                   i ? ", " : "", tensors[i].name, tensors[i].rows, tensors[i].cols, off, off + 4 * n);
        else
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl,
                                   "%s\"%s\": {\"dtype\": \"F32\", \"shape\": [%d], \"data_offsets\": [%zu, %zu]}",
                                   i ? ", " : "", tensors[i].name, tensors[i].rows, off, off + 4 * n);
        off += 4 * n;
    }
    snprintf(hdr + hl, sizeof hdr - hl, "}");
    float *data = malloc(off);
    uint64_t s = 7;
    for (size_t i = 0; i < off / 4; i++) data[i] = (float)(0.02 * gauss(&s) * (unit(&s) < 0.01 ? 8.0 : 1.0));
    size_t len;
    uint8_t *st = ts_safetensors(hdr, data, off, &len);
    char *p = ts_path(dir, "model.safetensors");
    ts_write_file(p, st, len);
    free(st);
    free(data);
    return p;
}

/* Column importance: a few columns far more active than the rest (as real activations are). */
static void fill_sums(mx_imatrix_entry *e, uint64_t seed)
{
    uint64_t s = seed;
    e->count = 1000;
    for (size_t j = 0; j < e->n; j++) {
        double a = 0.05 + unit(&s);
        if (j % 17 == 3) a *= 200.0;
        e->sum2[j] = a * e->count;
    }
}

/*
 * An imatrix file in dir (GGUF): entries for q_proj, down_proj and the
 * output head under their GGUF names, none for the embedding; q_cols
 * columns for q_proj (H for a matching one).
 */
static char *write_imatrix(const char *dir, const char *name, size_t q_cols)
{
    mx_imatrix *im = mx_imatrix_new();
    cr_assert(im);
    fill_sums(mx_imatrix_add(im, "blk.0.attn_q.weight", q_cols), 1);
    fill_sums(mx_imatrix_add(im, "blk.0.ffn_down.weight", I), 2);
    fill_sums(mx_imatrix_add(im, "output.weight", H), 3);
    im->chunk_count = 12;
    im->chunk_size = 256;
    mixq_error err;
    cr_assert_eq(mx_imatrix_add_dataset(im, "licences.txt", &err), MIXQ_OK);
    char *p = ts_path(dir, name);
    cr_assert_eq(mx_imatrix_write(im, p, 1, &err), MIXQ_OK, "%s", err.message);
    mx_imatrix_free(im);
    return p;
}

/* The a_j of entry `gguf` of the file at path (sum2 / count, as the library floors them). */
static float *importance_of(const char *path, const char *gguf, size_t n, mixq_imatrix_weighting mode)
{
    mx_imatrix *im;
    mixq_error err;
    cr_assert_eq(mx_imatrix_read(path, &im, &err), MIXQ_OK, "%s", err.message);
    const mx_imatrix_entry *e = mx_imatrix_get(im, gguf);
    cr_assert(e && e->n == n);
    mx_importance imp;
    cr_assert_eq(mx_importance_init(&imp, e->sum2, e->n, e->count, mode, &err), MIXQ_OK);
    mx_imatrix_free(im);
    return imp.a;
}

typedef struct warnings {
    char msg[8][512];
    int n;
} warnings;

static void collect(void *ctx, const char *m)
{
    warnings *w = ctx;
    cr_assert(m && *m && !strchr(m, '\n'), "a warning is one line");
    if (w->n < 8) snprintf(w->msg[w->n], sizeof w->msg[0], "%s", m);
    w->n++;
}

/* The dequantized values of tensor `name` of the container at path (malloc'd). */
static float *dequant(const char *path, const char *name, int rows, int cols)
{
    mixq_error err;
    mixq_file *f = mixq_open(path, 0, &err);
    cr_assert(f, "%s", err.message);
    const mixq_tensor *t = mixq_find(f, name);
    cr_assert(t);
    float *y = malloc((size_t)rows * cols * sizeof *y);
    cr_assert_eq(mixq_dequantize_f32(f, t, 0, (uint64_t)rows, y, &err), MIXQ_OK, "%s", err.message);
    mixq_close(f);
    return y;
}

/* The source values of tensor k of the checkpoint (float, row-major). */
static float *source_of(const char *st_path, size_t k)
{
    size_t len;
    uint8_t *b = ts_read_file(st_path, &len);
    cr_assert(b);
    uint64_t hl;
    memcpy(&hl, b, 8);
    size_t off = 0;
    for (size_t i = 0; i < k; i++) off += 4 * (size_t)tensors[i].rows * (size_t)(tensors[i].cols ? tensors[i].cols : 1);
    size_t n = (size_t)tensors[k].rows * (size_t)tensors[k].cols;
    float *x = malloc(n * sizeof *x);
    memcpy(x, b + 8 + hl + off, n * sizeof *x);
    free(b);
    return x;
}

static double weighted_err(const float *x, const float *y, const float *a, int rows, int cols)
{
    double e = 0;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            double d = (double)x[(size_t)r * cols + j] - (double)y[(size_t)r * cols + j];
            e += (double)a[j] * d * d;
        }
    return e;
}

Test(imatrix, gguf_names)
{
    static const struct {
        const char *hf, *gguf;
        int expert;
    } map[] = {
        {"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", -1},
        {"model.layers.11.self_attn.k_proj.weight", "blk.11.attn_k.weight", -1},
        {"model.layers.2.self_attn.v_proj.weight", "blk.2.attn_v.weight", -1},
        {"model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight", -1},
        {"model.layers.4.mlp.gate_proj.weight", "blk.4.ffn_gate.weight", -1},
        {"model.layers.5.mlp.up_proj.weight", "blk.5.ffn_up.weight", -1},
        {"model.layers.6.mlp.down_proj.weight", "blk.6.ffn_down.weight", -1},
        {"model.layers.7.self_attn.qkv_proj.weight", "blk.7.attn_qkv.weight", -1},
        {"model.layers.8.mlp.gate_up_proj.weight", "blk.8.ffn_up.weight", -1},
        {"model.layers.1.block_sparse_moe.gate.weight", "blk.1.ffn_gate_inp.weight", -1},
        {"model.layers.1.block_sparse_moe.experts.7.w1.weight", "blk.1.ffn_gate_exps.weight", 7},
        {"model.layers.1.block_sparse_moe.experts.0.w3.weight", "blk.1.ffn_up_exps.weight", 0},
        {"model.layers.1.block_sparse_moe.experts.12.w2.weight", "blk.1.ffn_down_exps.weight", 12},
        {"model.layers.2.mlp.experts.3.gate_proj.weight", "blk.2.ffn_gate_exps.weight", 3},
        {"model.layers.2.mlp.experts.3.down_proj.weight", "blk.2.ffn_down_exps.weight", 3},
        {"model.layers.2.mlp.shared_expert.up_proj.weight", "blk.2.ffn_up_shexp.weight", -1},
        {"lm_head.weight", "output.weight", -1},
        {"model.embed_tokens.weight", "token_embd.weight", -1},
    };
    char g[128];
    int ex;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        cr_assert(mx_imatrix_gguf_name(map[i].hf, g, sizeof g, &ex), "%s", map[i].hf);
        cr_assert_str_eq(g, map[i].gguf);
        cr_assert_eq(ex, map[i].expert, "%s", map[i].hf);
    }
    static const char *const none[] = {"model.layers.0.input_layernorm.weight", "model.layers..self_attn.q_proj.weight",
                                       "model.layers.01.self_attn.q_proj.weight", "model.layers.x.mlp.up_proj.weight",
                                       "model.layers.0.self_attn.q_proj.bias", "model.norm.weight", "layers.0.mlp.up_proj.weight",
                                       "model.layers.1.block_sparse_moe.experts.x.w1.weight",
                                       "model.layers.1.block_sparse_moe.experts.1.w4.weight"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        cr_assert(!mx_imatrix_gguf_name(none[i], g, sizeof g, &ex), "%s", none[i]);
    cr_assert(!mx_imatrix_gguf_name("model.layers.0.self_attn.q_proj.weight", g, 8, &ex), "too small a buffer");

    /* lookup: an exact (GGUF-named checkpoint) entry, the mapped one, and output.weight for a tied embedding */
    mx_imatrix *im = mx_imatrix_new();
    mx_imatrix_add(im, "blk.0.attn_q.weight", 4);
    mx_imatrix_add(im, "output.weight", 4);
    mx_imatrix_add(im, "custom.proj", 4);
    mx_imatrix_add(im, "blk.0.ffn_down_exps.weight", 12);   /* a .dat: 3 experts x 4 */
    mx_imatrix_add(im, "blk.0.ffn_gate_exps.weight#1", 4); /* a GGUF file, split */
    const mx_imatrix_entry *merged = &im->entries[3];     /* (an add may move the entries: taken after the last) */
    mx_imatrix_view v;
    cr_assert(mx_imatrix_find(im, "model.layers.0.self_attn.q_proj.weight", false, 4, &v));
    cr_assert_eq(v.sum2, im->entries[0].sum2);
    cr_assert(mx_imatrix_find(im, "custom.proj", false, 4, &v) && v.sum2 == im->entries[2].sum2);
    cr_assert(!mx_imatrix_find(im, "model.embed_tokens.weight", false, 4, &v));
    cr_assert(mx_imatrix_find(im, "model.embed_tokens.weight", true, 4, &v) && v.sum2 == im->entries[1].sum2);
    cr_assert(!mx_imatrix_find(im, "model.layers.1.self_attn.q_proj.weight", false, 4, &v));
    cr_assert(mx_imatrix_find(im, "model.layers.0.block_sparse_moe.experts.2.w2.weight", false, 4, &v));
    cr_assert(v.sum2 == merged->sum2 + 8 && v.n == 4, "expert 2's slice of the merged entry");
    cr_assert(mx_imatrix_find(im, "model.layers.0.block_sparse_moe.experts.3.w2.weight", false, 4, &v) && v.n == 12,
              "no expert 3: the whole entry, whose length the caller reports");
    cr_assert(mx_imatrix_find(im, "model.layers.0.mlp.experts.1.gate_proj.weight", false, 4, &v));
    cr_assert_eq(v.sum2, im->entries[4].sum2);
    cr_assert(!mx_imatrix_find(im, "model.layers.0.mlp.experts.0.gate_proj.weight", false, 4, &v));
    mx_imatrix_free(im);
}

/* A llama.cpp GGUF imatrix holding one per-expert entry: in_sum2 [n, K] and counts [1, K]. */
static uint8_t *expert_gguf(size_t n, size_t K, size_t *len)
{
    uint8_t *b = calloc(1, 4096);
    size_t p = 0;
#define PUT(v, sz) (memcpy(b + p, &(v), sz), p += sz)
#define PUTS(s) do { uint64_t l_ = strlen(s); PUT(l_, 8); memcpy(b + p, s, l_); p += l_; } while (0)
    uint32_t u32 = 3;
    uint64_t u64;
    memcpy(b, "GGUF", 4);
    p = 4;
    PUT(u32, 4);
    u64 = 2;
    PUT(u64, 8);
    u64 = 1;
    PUT(u64, 8);
    PUTS("general.type");
    u32 = 8;
    PUT(u32, 4);
    PUTS("imatrix");
    const char *names[2] = {"blk.0.ffn_up_exps.weight.in_sum2", "blk.0.ffn_up_exps.weight.counts"};
    uint64_t off[2] = {0, (n * K * 4 + 31) / 32 * 32};
    int64_t ne[2][2] = {{(int64_t)n, (int64_t)K}, {1, (int64_t)K}};
    for (int t = 0; t < 2; t++) {
        PUTS(names[t]);
        u32 = 2;
        PUT(u32, 4);
        PUT(ne[t][0], 8);
        PUT(ne[t][1], 8);
        u32 = 0;
        PUT(u32, 4);
        PUT(off[t], 8);
    }
    p = (p + 31) / 32 * 32;
    for (size_t k = 0; k < K; k++)
        for (size_t j = 0; j < n; j++) {
            float v = (float)(100 * k + j);
            PUT(v, 4);
        }
    p = (p + 31) / 32 * 32;
    for (size_t k = 0; k < K; k++) {
        float c = (float)(10 + k);
        PUT(c, 4);
    }
#undef PUT
#undef PUTS
    *len = p;
    return b;
}

Test(imatrix, per_expert_gguf_entries)
{
    size_t len;
    uint8_t *b = expert_gguf(4, 3, &len);
    mx_imatrix *im;
    mixq_error err;
    cr_assert_eq(mx_imatrix_parse("experts.gguf", b, len, &im, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(im->n_entries, 3);
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "model.layers.0.mlp.experts.%d.up_proj.weight", k);
        mx_imatrix_view v;
        cr_assert(mx_imatrix_find(im, name, false, 4, &v), "%s", name);
        cr_assert_eq(v.n, 4);
        cr_assert_eq(v.count, 10 + k);
        for (int j = 0; j < 4; j++) cr_assert_eq(v.sum2[j], 100 * k + j);
    }
    mx_imatrix_free(im);
    free(b);
}

Test(imatrix, length_mismatch_names_the_tensor)
{
    char *dir = ts_tmpdir_tracked(), *st = write_checkpoint(dir), *imf = write_imatrix(dir, "bad.gguf", H - 8);
    char *out = ts_path(dir, "out.mixq");
    mixq_convert_options co;
    mixq_convert_options_init(&co);
    co.type = MIXQ_QT_INT4;
    co.imatrix_path = imf;
    mixq_error err;
    cr_assert_eq(mixq_convert(st, out, &co, &err), MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "model.layers.0.self_attn.q_proj.weight") && strstr(err.message, "bad.gguf") &&
                  strstr(err.message, "120"),
              "%s", err.message);
    cr_assert(!ts_exists(out), "no output after the error");

    mixq_plan_options po;
    mixq_plan_options_init(&po);
    po.imatrix_path = imf;
    mixq_plan *plan = NULL;
    cr_assert_eq(mixq_plan_create(st, &po, &plan, &err), MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "model.layers.0.self_attn.q_proj.weight"), "%s", err.message);
    cr_assert_null(plan);

    /* a file that is not there */
    co.imatrix_path = out;
    cr_assert_eq(mixq_convert(st, out, &co, &err), MIXQ_E_IO);
    free(out);
    free(imf);
    free(st);
    free(dir);
}

Test(imatrix, missing_entry_warns_and_stays_unweighted)
{
    char *dir = ts_tmpdir_tracked(), *st = write_checkpoint(dir), *imf = write_imatrix(dir, "im.gguf", H);
    char *a = ts_path(dir, "a.mixq"), *b = ts_path(dir, "b.mixq");
    warnings w = {.n = 0};
    mixq_convert_options co;
    mixq_convert_options_init(&co);
    co.type = MIXQ_QT_INT4;
    mixq_error err;
    cr_assert_eq(mixq_convert(st, a, &co, &err), MIXQ_OK, "%s", err.message);
    co.imatrix_path = imf;
    co.warning = collect;
    co.warning_ctx = &w;
    cr_assert_eq(mixq_convert(st, b, &co, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(w.n, 1, "one tensor has no entry, got %d warnings", w.n);
    cr_assert(strstr(w.msg[0], "model.embed_tokens.weight") && strstr(w.msg[0], "no entry"), "%s", w.msg[0]);
    /* that tensor is stored exactly as without the imatrix; a weighted one is not */
    float *ea = dequant(a, "model.embed_tokens.weight", V, H), *eb = dequant(b, "model.embed_tokens.weight", V, H);
    cr_assert(!memcmp(ea, eb, sizeof(float) * V * H));
    float *qa = dequant(a, "lm_head.weight", V, H), *qb = dequant(b, "lm_head.weight", V, H);
    cr_assert(memcmp(qa, qb, sizeof(float) * V * H), "lm_head takes output.weight's importance");

    /* the planner warns the same way (the embedding's error counts per token) */
    mixq_plan_options po;
    mixq_plan_options_init(&po);
    po.imatrix_path = imf;
    po.warning = collect;
    po.warning_ctx = &w;
    po.strategy = MIXQ_STRATEGY_BUDGET;
    po.target_bpw = 5.0;
    w.n = 0;
    mixq_plan *plan = NULL;
    cr_assert_eq(mixq_plan_create(st, &po, &plan, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(w.n, 1);
    cr_assert(strstr(w.msg[0], "model.embed_tokens.weight") && strstr(w.msg[0], "per token"), "%s", w.msg[0]);
    mixq_plan_free(plan);
    /* without a callback nothing is printed or called */
    po.warning = NULL;
    cr_assert_eq(mixq_plan_create(st, &po, &plan, &err), MIXQ_OK, "%s", err.message);
    mixq_plan_free(plan);
    free(ea);
    free(eb);
    free(qa);
    free(qb);
    free(a);
    free(b);
    free(imf);
    free(st);
    free(dir);
}

Test(imatrix, importance_changes_scales_and_lowers_the_weighted_error)
{
    char *dir = ts_tmpdir_tracked(), *st = write_checkpoint(dir), *imf = write_imatrix(dir, "im.gguf", H);
    char *a = ts_path(dir, "a.mixq"), *b = ts_path(dir, "b.mixq");
    float *x = source_of(st, 1);
    const char *q = "model.layers.0.self_attn.q_proj.weight";
    int n_types = 0;
    for (int id = 0; id < MIXQ_QT_COUNT; id++) {
        const qtype_desc *qt = qtype_get((mixq_qtype)id);
        if (!qt || !qt->name || !qt->quantized || !qt->quantize_row) continue;
        for (int mode = 0; mode < 2; mode++) {
            mixq_convert_options co;
            mixq_convert_options_init(&co);
            co.type = (mixq_qtype)id;
            if (qt->tensor_scale) co.group_size = 32; /* a per-tensor scale is plain min/max: nothing to search */
            co.force = 1;
            mixq_error err;
            cr_assert_eq(mixq_convert(st, a, &co, &err), MIXQ_OK, "%s: %s", qt->name, err.message);
            co.imatrix_path = imf;
            co.imatrix_weighting = (mixq_imatrix_weighting)mode;
            co.force = 1;
            cr_assert_eq(mixq_convert(st, b, &co, &err), MIXQ_OK, "%s: %s", qt->name, err.message);
            float *imp = importance_of(imf, "blk.0.attn_q.weight", H, MIXQ_IMATRIX_PLAIN);
            float *ya = dequant(a, q, 64, H), *yb = dequant(b, q, 64, H);
            double e_plain = weighted_err(x, ya, imp, 64, H), e_imp = weighted_err(x, yb, imp, 64, H);
            cr_log_info("%s (%s): importance-weighted error %.6g with the imatrix, %.6g without", qt->name,
                        mode ? "plain" : "sigma", e_imp, e_plain);
            cr_assert(memcmp(ya, yb, sizeof(float) * 64 * H), "%s: the importance did not change the scales", qt->name);
            cr_assert_lt(e_imp, 0.98 * e_plain, "%s (%s): the weighted error did not drop", qt->name,
                         mode ? "plain" : "sigma");
            free(imp);
            free(ya);
            free(yb);
        }
        n_types++;
    }
    cr_assert_geq(n_types, 9, "every quantized type (int8, int4, int4s, int2, the DQ types, fp8)");
    free(x);
    free(a);
    free(b);
    free(imf);
    free(st);
    free(dir);
}

Test(imatrix, planner_measures_the_weighted_error)
{
    char *dir = ts_tmpdir_tracked(), *st = write_checkpoint(dir), *imf = write_imatrix(dir, "im.gguf", H);
    char *a = ts_path(dir, "a.mixq");
    for (int mode = 0; mode < 2; mode++) {
        mixq_plan_options po;
        mixq_plan_options_init(&po);
        po.type = MIXQ_QT_INT4;
        po.imatrix_path = imf;
        po.imatrix_weighting = (mixq_imatrix_weighting)mode;
        po.measure_sample = 0;
        mixq_plan *plan = NULL;
        mixq_error err;
        cr_assert_eq(mixq_plan_create(st, &po, &plan, &err), MIXQ_OK, "%s", err.message);
        /* the converter with the same imatrix gives the tensors the planner measured */
        mixq_convert_options co;
        mixq_convert_options_init(&co);
        co.plan = plan;
        co.imatrix_path = imf;
        co.imatrix_weighting = (mixq_imatrix_weighting)mode;
        co.force = 1;
        cr_assert_eq(mixq_convert(st, a, &co, &err), MIXQ_OK, "%s", err.message);
        for (size_t k = 0; k < NT; k++) {
            if (!tensors[k].cols) continue;
            mixq_plan_tensor pt;
            cr_assert_eq(mixq_plan_tensor_get(plan, k, &pt), MIXQ_OK);
            cr_assert_str_eq(pt.name, tensors[k].name);
            float *x = source_of(st, k), *y = dequant(a, tensors[k].name, tensors[k].rows, tensors[k].cols);
            const char *g = k == 1 ? "blk.0.attn_q.weight" : k == 2 ? "blk.0.ffn_down.weight" : k == 4 ? "output.weight" : NULL;
            float *imp;
            double scale = 1.0;
            if (g) {
                imp = importance_of(imf, g, (size_t)tensors[k].cols, MIXQ_IMATRIX_PLAIN);
            } else { /* the embedding: no entry, its plain error per token */
                imp = malloc((size_t)tensors[k].cols * sizeof *imp);
                for (int j = 0; j < tensors[k].cols; j++) imp[j] = 1.0f;
                scale = 1.0 / tensors[k].rows;
            }
            double want = scale * weighted_err(x, y, imp, tensors[k].rows, tensors[k].cols);
            cr_assert(fabs(pt.estimated_error - want) <= 1e-9 * want, "%s: planned %.17g, measured %.17g",
                      tensors[k].name, pt.estimated_error, want);
            free(imp);
            free(x);
            free(y);
        }
        mixq_plan_free(plan);
    }
    free(a);
    free(imf);
    free(st);
    free(dir);
}

Test(imatrix, plan_records_the_imatrix)
{
    char *dir = ts_tmpdir_tracked(), *st = write_checkpoint(dir), *imf = write_imatrix(dir, "im.gguf", H);
    char *pf = ts_path(dir, "plan.json"), *a = ts_path(dir, "a.mixq");
    mixq_plan_options po;
    mixq_plan_options_init(&po);
    po.strategy = MIXQ_STRATEGY_BUDGET;
    po.target_bpw = 5.0;
    po.imatrix_path = imf;
    mixq_plan *plan = NULL;
    mixq_error err;
    cr_assert_eq(mixq_plan_create(st, &po, &plan, &err), MIXQ_OK, "%s", err.message);
    mixq_plan_summary sum;
    mixq_plan_get_summary(plan, &sum);
    cr_assert_str_eq(sum.weights, "role+imatrix");
    cr_assert_eq(mixq_plan_save(plan, pf, 0, &err), MIXQ_OK, "%s", err.message);
    mixq_plan_free(plan);
    cr_assert_eq(mixq_plan_load(pf, &plan, &err), MIXQ_OK, "%s", err.message);
    /* converting it without the imatrix warns; with it, not */
    warnings w = {.n = 0};
    mixq_convert_options co;
    mixq_convert_options_init(&co);
    co.plan = plan;
    co.warning = collect;
    co.warning_ctx = &w;
    cr_assert_eq(mixq_convert(st, a, &co, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(w.n, 1);
    cr_assert(strstr(w.msg[0], "importance matrix") && strstr(w.msg[0], "plan.json"), "%s", w.msg[0]);
    w.n = 0;
    co.imatrix_path = imf;
    co.force = 1;
    cr_assert_eq(mixq_convert(st, a, &co, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(w.n, 1, "only the embedding's missing entry");
    cr_assert(strstr(w.msg[0], "model.embed_tokens.weight"), "%s", w.msg[0]);
    mixq_plan_free(plan);
    po.imatrix_path = NULL;
    cr_assert_eq(mixq_plan_create(st, &po, &plan, &err), MIXQ_OK, "%s", err.message);
    mixq_plan_get_summary(plan, &sum);
    cr_assert_str_eq(sum.weights, "share", "the default weighting without an imatrix");
    mixq_plan_free(plan);
    free(a);
    free(pf);
    free(imf);
    free(st);
    free(dir);
}

Test(imatrix, header_records_the_imatrix)
{
    char *dir = ts_tmpdir_tracked(), *st = write_checkpoint(dir), *imf = write_imatrix(dir, "calib.gguf", H);
    char *a = ts_path(dir, "a.mixq");
    size_t flen;
    uint8_t *fbytes = ts_read_file(imf, &flen);
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, (uint64_t)XXH3_64bits(fbytes, flen));
    free(fbytes);
    /* a budget plan made by the converter: the header bound counts the record, the file fits */
    mixq_plan_options po;
    mixq_plan_options_init(&po);
    po.strategy = MIXQ_STRATEGY_BUDGET;
    uint64_t target = 60000;
    po.target_size = target;
    mixq_convert_options co;
    mixq_convert_options_init(&co);
    co.plan_options = &po;
    co.imatrix_path = imf;
    co.imatrix_weighting = MIXQ_IMATRIX_PLAIN;
    mixq_error err;
    cr_assert_eq(mixq_convert(st, a, &co, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(a, 0, &err);
    cr_assert(f, "%s", err.message);
    cr_assert_leq(mixq_file_size(f), target);
    size_t hl;
    const char *h = mixq_header_json(f, &hl);
    json_t *root = json_loadb(h, hl, 0, NULL);
    json_t *im = json_object_get(json_object_get(root, "metadata"), "imatrix");
    cr_assert(json_is_object(im));
    cr_assert_str_eq(json_string_value(json_object_get(im, "file")), "calib.gguf");
    cr_assert_str_eq(json_string_value(json_object_get(im, "xxh3")), hex);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(im, "datasets"), 0)), "licences.txt");
    cr_assert_eq(json_integer_value(json_object_get(im, "chunk_count")), 12);
    cr_assert_eq(json_integer_value(json_object_get(im, "chunk_size")), 256);
    cr_assert_eq(json_integer_value(json_object_get(im, "entries")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(im, "weighting")), "plain");
    json_decref(root);
    mixq_close(f);

    /* dump shows it; a conversion without an imatrix has no record */
    const char *args[] = {"dump", a, NULL};
    char *out = NULL, *e = NULL;
    cr_assert_eq(ts_run_cli(args, &out, &e), 0, "%s", e);
    cr_assert(strstr(out, "imatrix: calib.gguf") && strstr(out, hex) && strstr(out, "12 chunks of 256 tokens") &&
                  strstr(out, "licences.txt"),
              "%s", out);
    free(out);
    free(e);
    co.imatrix_path = NULL;
    co.force = 1;
    cr_assert_eq(mixq_convert(st, a, &co, &err), MIXQ_OK, "%s", err.message);
    f = mixq_open(a, 0, &err);
    h = mixq_header_json(f, &hl);
    root = json_loadb(h, hl, 0, NULL);
    cr_assert_null(json_object_get(json_object_get(root, "metadata"), "imatrix"));
    json_decref(root);
    mixq_close(f);
    free(a);
    free(imf);
    free(st);
    free(dir);
}

Test(imatrix, cli_convert_and_plan)
{
    char *dir = ts_tmpdir_tracked(), *st = write_checkpoint(dir), *imf = write_imatrix(dir, "im.gguf", H);
    char *a = ts_path(dir, "a.mixq"), *bad = write_imatrix(dir, "bad.gguf", 100);
    char *out = NULL, *e = NULL;
    const char *conv[] = {"convert", st, "-o", a, "--type", "int4", "--imatrix", imf, NULL};
    cr_assert_eq(ts_run_cli(conv, &out, &e), 0, "%s", e);
    cr_assert(strstr(e, "warning") && strstr(e, "model.embed_tokens.weight"), "%s", e);
    free(out);
    free(e);
    const char *plan[] = {"plan", st, "--target-bpw", "5", "--imatrix", imf, "--imatrix-weighting", "plain", NULL};
    cr_assert_eq(ts_run_cli(plan, &out, &e), 0, "%s", e);
    cr_assert(strstr(e, "model.embed_tokens.weight"), "%s", e);
    free(out);
    free(e);
    const char *wbad[] = {"plan", st, "--imatrix", imf, "--imatrix-weighting", "cubic", NULL};
    cr_assert_eq(ts_run_cli(wbad, &out, &e), 2, "%s", e);
    free(out);
    free(e);
    const char *mism[] = {"convert", st, "-o", a, "-f", "--type", "int4", "--imatrix", bad, NULL};
    cr_assert_eq(ts_run_cli(mism, &out, &e), 2, "%s", e);
    cr_assert(strstr(e, "model.layers.0.self_attn.q_proj.weight"), "%s", e);
    free(out);
    free(e);
    free(bad);
    free(a);
    free(imf);
    free(st);
    free(dir);
}

Test(imatrix, simd_bit_exact_with_converter_weights)
{
    uint64_t s = 99;
    size_t n = 1024;
    float *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w);
    double *sum2 = malloc(n * sizeof *sum2);
    for (size_t j = 0; j < n; j++) sum2[j] = (0.01 + unit(&s)) * (j % 13 == 0 ? 300.0 : 1.0);
    int paths = 0;
    for (int path = 1; path < MX_SIMD_COUNT; path++) {
        const mx_kernel_set *simd = mx_kernels_for((mx_simd)path), *ref = mx_kernels_for(MX_SIMD_SCALAR);
        if (!simd || simd == ref) continue;
        paths++;
        for (int id = 0; id < MIXQ_QT_COUNT; id++) {
            const qtype_desc *qt = qtype_get((mixq_qtype)id);
            if (!qt || !qt->name || !qt->quantized || !qt->quantize_row || !simd->quantize_row[id]) continue;
            unsigned g = qt->group_default ? qt->group_default : 32;
            qlayout lay;
            cr_assert(qtype_layout(qt, ST_F32, 1, n, g, &lay));
            for (int mode = 0; mode < 2; mode++) {
                mx_importance imp;
                mixq_error err;
                cr_assert_eq(mx_importance_init(&imp, sum2, n, 7.0, (mixq_imatrix_weighting)mode, &err), MIXQ_OK);
                for (int trial = 0; trial < 8; trial++) {
                    for (size_t j = 0; j < n; j++) x[j] = (float)(gauss(&s) * (unit(&s) < 0.02 ? 10.0 : 1.0));
                    mx_importance_row(&imp, x, mx_importance_block(qt, lay.group), w);
                    mx_qparams p = {.importance = w, .search = true, .tensor_absmax = -1.0f};
                    uint8_t *b1 = calloc(1, lay.total + 64), *b2 = calloc(1, lay.total + 64);
                    mx_rowptrs p1 = {{NULL}}, p2 = {{NULL}};
                    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                        if (qtype_has_section(qt, (mixq_section_kind)k)) {
                            p1.sec[k] = b1 + lay.offset[k];
                            p2.sec[k] = b2 + lay.offset[k];
                        }
                    ref->quantize_row[id](x, n, lay.group, &p, p1);
                    simd->quantize_row[id](x, n, lay.group, &p, p2);
                    cr_assert(!memcmp(b1, b2, lay.total), "%s (path %d, weighting %d): SIMD differs from scalar",
                              qt->name, path, mode);
                    free(b1);
                    free(b2);
                }
                mx_importance_free(&imp);
            }
        }
    }
    if (!paths) cr_skip_test("no SIMD path on this CPU");
    free(x);
    free(w);
    free(sum2);
}
