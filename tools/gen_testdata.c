/*
 * gen_testdata.c - writes mixq's deterministic test checkpoints.
 *
 * Usage: gen_testdata OUTDIR
 *
 * Writes, under OUTDIR (created if needed):
 *   tiny-llama-f32/     model.safetensors, config.json      (F32)
 *   tiny-llama-f16/     model.safetensors, config.json      (F16)
 *   tiny-llama-bf16/    model.safetensors, config.json      (BF16)
 *   tiny-llama-sharded/ model-0000{1,2}-of-00002.safetensors,
 *                       model.safetensors.index.json, config.json (BF16)
 *
 * Every model holds the same tensors with the same values: a value depends
 * only on the tensor's name, so the F16 and BF16 models are exactly the F32
 * model rounded (nearest, ties to even), and the sharded model is the BF16
 * model split over two files.
 *
 * The output is byte-for-byte identical on every platform: the generator uses
 * only an integer PRNG (splitmix64) and integer arithmetic; each float value
 * comes from one exact integer-to-double conversion, an exact multiplication
 * by a power of two, and a single rounding to binary32.  F16 and BF16 are
 * produced by bit manipulation (round to nearest even), and every multi-byte
 * value is written little-endian explicitly.  No libm function is used.
 *
 * Safetensors files are written as the reference (Rust) writer does:
 * tensors ordered by dtype (larger alignment first) then by name, the header
 * keys in data order after "__metadata__", no whitespace, and the header
 * padded with spaces to a multiple of 8 bytes.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#ifdef _WIN32
#include <direct.h>
#endif

/* ------------------------------------------------------------------ */
/* Architecture of the tiny model                                      */

enum {
    HIDDEN = 64,
    INTERMEDIATE = 160, /* not a multiple of 64 or 128 */
    LAYERS = 2,
    HEADS = 4,
    KV_HEADS = 2,
    HEAD_DIM = HIDDEN / HEADS,
    KV_DIM = KV_HEADS * HEAD_DIM,
    VOCAB = 96,
    EXPERTS = 2,
    EXPERT_ROW = 100,   /* row length not divisible by 8, 16, 32, 64, 128 */
    PATCH_CH = 16,
    PATCH_K = 7,        /* odd row length for 4-bit packing */
    POSITIONS = 17,     /* 16 patches + class token */
    MASK_N = 9
};

/* Seed shared by every model (values depend only on the tensor name). */
#define GEN_SEED UINT64_C(0x6d6978712d746431) /* "mixq-td1" */

/* ------------------------------------------------------------------ */
/* PRNG and value generation (integer arithmetic only)                 */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/*
 * An approximately Gaussian integer: the Irwin-Hall sum of 12 uniform
 * 24-bit integers minus its mean.  In units of 2^-24 it has mean 0 and
 * standard deviation 1, range (-6, 6): |result| < 6 * 2^24 < 2^27.
 */
static int64_t gauss24(uint64_t *s)
{
    int64_t sum = 0;
    for (int i = 0; i < 12; i++) sum += (int64_t)(splitmix64(s) >> 40);
    return sum - INT64_C(6) * (INT64_C(1) << 24);
}

/* Uniform integer in [0, n) (n small; the modulo bias is irrelevant here). */
static uint32_t urand(uint64_t *s, uint32_t n)
{
    return (uint32_t)((splitmix64(s) >> 32) % n);
}

/*
 * Standard deviations are multiples of 2^-12 (SIGMA(x) ~ x), so that
 * gauss24 * sigma_num * multiplier is an exact integer below 2^40 and the
 * value 2^-36 times it is exact in double; converting to float is the one
 * rounding step, identical everywhere.
 */
#define SIGMA_SHIFT 12
#define TWO_M36 (1.0 / 68719476736.0) /* 2^-36, exact */

static float scaled(int64_t n) /* n * 2^-36, |n| < 2^53 */
{
    double d = (double)n * TWO_M36;
    return (float)d;
}

/* ------------------------------------------------------------------ */
/* Rounding binary32 to binary16 and bfloat16 (nearest, ties to even)  */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign, force quiet */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static uint16_t f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* normal f16 (>= 2^-14) */
        uint32_t r = a + 0x0fffu + ((a >> 13) & 1u);
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    if (a < 0x33000000u) /* < 2^-25: rounds to zero (2^-25 ties to even 0) */
        return sign;
    /* subnormal f16: value = m * 2^-24 */
    uint32_t e = a >> 23;                 /* biased f32 exponent, 102..112 */
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e;            /* 14..24 */
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

/* ------------------------------------------------------------------ */
/* Tensors                                                             */

typedef enum dtype { DT_BOOL, DT_F16, DT_BF16, DT_F32, DT_I64 } dtype;

static const struct {
    const char *name;
    unsigned size;
    int rank; /* order of the reference writer's Dtype enum */
} dtypes[] = {
    [DT_BOOL] = {"BOOL", 1, 0},
    [DT_F16] = {"F16", 2, 11},
    [DT_BF16] = {"BF16", 2, 12},
    [DT_F32] = {"F32", 4, 15},
    [DT_I64] = {"I64", 8, 17},
};

typedef enum kind {
    K_WEIGHT,   /* N(0, sigma) with outlier columns along the last dimension */
    K_PLAIN,    /* N(0, sigma), no outliers */
    K_NORM,     /* 1 + N(0, sigma) */
    K_CONST,    /* the constant sigma_num * 2^-12 */
    K_POSITION, /* integers 0, 1, 2, ... */
    K_CAUSAL    /* lower-triangular boolean mask over the last two dims */
} kind;

#define MAX_DIMS 4

typedef struct tensor {
    char name[96];
    dtype dt;
    unsigned ndim;
    uint64_t shape[MAX_DIMS];
    int shard; /* 1 or 2 in the sharded model */
    uint64_t nbytes;
    uint8_t *data;
} tensor;

typedef struct spec {
    char name[96];
    kind k;
    int is_float; /* uses the model's float dtype; else dt below */
    dtype dt;
    unsigned ndim;
    uint64_t shape[MAX_DIMS];
    int64_t sigma_num; /* sigma = sigma_num * 2^-12 */
    int outliers;      /* K_WEIGHT: use outlier columns */
    int shard;
} spec;

#define MAX_SPECS 64
static spec specs[MAX_SPECS];
static size_t nspecs;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gen_testdata: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static void add(const char *name, kind k, int is_float, dtype dt, int64_t sigma_num,
                int shard, unsigned ndim, uint64_t d0, uint64_t d1, uint64_t d2, uint64_t d3)
{
    if (nspecs == MAX_SPECS) die("too many tensors");
    spec *s = &specs[nspecs++];
    memset(s, 0, sizeof *s);
    if (strlen(name) >= sizeof s->name) die("name too long: %s", name);
    strcpy(s->name, name);
    s->k = k;
    s->is_float = is_float;
    s->dt = dt;
    s->sigma_num = sigma_num;
    s->outliers = (k == K_WEIGHT);
    s->shard = shard;
    s->ndim = ndim;
    uint64_t d[MAX_DIMS] = {d0, d1, d2, d3};
    for (unsigned i = 0; i < ndim; i++) s->shape[i] = d[i];
}

#define F 1 /* float tensor in the model's dtype */

/* The tensor list, in the model's module order (= state_dict order). */
static void build_specs(void)
{
    char n[96];
    nspecs = 0;
    /* shard 1: embeddings, the vision stem, layer 0 */
    add("model.embed_tokens.weight", K_WEIGHT, F, DT_F32, 82, 1, 2, VOCAB, HIDDEN, 0, 0);
    add("model.vision_embed.patch_embedding.weight", K_PLAIN, F, DT_F32, 205, 1, 4,
        PATCH_CH, 3, PATCH_K, PATCH_K);
    add("model.vision_embed.patch_embedding.bias", K_PLAIN, F, DT_F32, 41, 1, 1, PATCH_CH, 0, 0, 0);
    add("model.vision_embed.position_ids", K_POSITION, 0, DT_I64, 0, 1, 2, 1, POSITIONS, 0, 0);
    for (int l = 0; l < LAYERS; l++) {
        int sh = l == 0 ? 1 : 2;
        static const struct { const char *p; uint64_t out, in; int64_t sig; } attn[] = {
            {"q_proj", HIDDEN, HIDDEN, 123}, {"k_proj", KV_DIM, HIDDEN, 123},
            {"v_proj", KV_DIM, HIDDEN, 82},  {"o_proj", HIDDEN, HIDDEN, 82},
        };
        static const struct { const char *p; uint64_t out, in; int64_t sig; } mlp[] = {
            {"gate_proj", INTERMEDIATE, HIDDEN, 123}, {"up_proj", INTERMEDIATE, HIDDEN, 123},
            {"down_proj", HIDDEN, INTERMEDIATE, 82},
        };
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
        add(n, K_NORM, F, DT_F32, 205, sh, 1, HIDDEN, 0, 0, 0);
        for (size_t i = 0; i < sizeof attn / sizeof attn[0]; i++) {
            snprintf(n, sizeof n, "model.layers.%d.self_attn.%s.weight", l, attn[i].p);
            add(n, K_WEIGHT, F, DT_F32, attn[i].sig, sh, 2, attn[i].out, attn[i].in, 0, 0);
            snprintf(n, sizeof n, "model.layers.%d.self_attn.%s.bias", l, attn[i].p);
            add(n, K_PLAIN, F, DT_F32, 41, sh, 1, attn[i].out, 0, 0, 0);
        }
        if (l == 0) {
            snprintf(n, sizeof n, "model.layers.%d.self_attn.causal_mask", l);
            add(n, K_CAUSAL, 0, DT_BOOL, 0, sh, 4, 1, 1, MASK_N, MASK_N);
        }
        snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
        add(n, K_NORM, F, DT_F32, 205, sh, 1, HIDDEN, 0, 0, 0);
        for (size_t i = 0; i < sizeof mlp / sizeof mlp[0]; i++) {
            snprintf(n, sizeof n, "model.layers.%d.mlp.%s.weight", l, mlp[i].p);
            add(n, K_WEIGHT, F, DT_F32, mlp[i].sig, sh, 2, mlp[i].out, mlp[i].in, 0, 0);
        }
        if (l == 1) {
            snprintf(n, sizeof n, "model.layers.%d.mlp.experts.gate_up_proj", l);
            add(n, K_WEIGHT, F, DT_F32, 123, sh, 3, EXPERTS, HIDDEN, EXPERT_ROW, 0);
        }
    }
    /* shard 2 also: final norm, head, scalar */
    add("model.norm.weight", K_NORM, F, DT_F32, 205, 2, 1, HIDDEN, 0, 0, 0);
    add("lm_head.weight", K_WEIGHT, F, DT_F32, 82, 2, 2, VOCAB, HIDDEN, 0, 0);
    /* 4.60522 ~ ln(100) as in CLIP: 18863 * 2^-12 = 4.605224609375 */
    add("logit_scale", K_CONST, F, DT_F32, 18863, 2, 0, 0, 0, 0, 0);
}

static uint64_t numel(const spec *s)
{
    uint64_t n = 1;
    for (unsigned i = 0; i < s->ndim; i++) n *= s->shape[i];
    return n;
}

/* Float values of a float tensor (before rounding to the model dtype). */
static float *gen_values(const spec *s)
{
    uint64_t n = numel(s);
    float *v = xmalloc((size_t)n * sizeof *v);
    uint64_t st = fnv1a64(s->name) ^ GEN_SEED;
    uint64_t row = s->ndim ? s->shape[s->ndim - 1] : 1;
    int64_t mult[256];
    for (uint64_t j = 0; j < row && j < 256; j++) mult[j] = 1;
    if (s->k == K_WEIGHT) {
        if (row > 256) die("row too long for outliers: %s", s->name);
        /* 2-4 outlier columns scaled 10-30x, as seen in LLM weights */
        int nout = 2 + (int)urand(&st, 3);
        for (int i = 0; i < nout;) {
            uint32_t c = urand(&st, (uint32_t)row);
            if (mult[c] != 1) continue;
            mult[c] = 10 + (int64_t)urand(&st, 21);
            i++;
        }
    }
    for (uint64_t i = 0; i < n; i++) {
        switch (s->k) {
        case K_WEIGHT:
            v[i] = scaled(gauss24(&st) * s->sigma_num * mult[i % row]);
            break;
        case K_PLAIN:
            v[i] = scaled(gauss24(&st) * s->sigma_num);
            break;
        case K_NORM:
            v[i] = scaled((INT64_C(1) << 36) + gauss24(&st) * s->sigma_num);
            break;
        case K_CONST:
            v[i] = scaled(s->sigma_num * (INT64_C(1) << (36 - SIGMA_SHIFT)));
            break;
        default:
            die("not a float tensor: %s", s->name);
        }
    }
    return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static tensor make_tensor(const spec *s, dtype float_dt)
{
    tensor t;
    memset(&t, 0, sizeof t);
    strcpy(t.name, s->name);
    t.dt = s->is_float ? float_dt : s->dt;
    t.ndim = s->ndim;
    memcpy(t.shape, s->shape, sizeof t.shape);
    t.shard = s->shard;
    uint64_t n = numel(s);
    unsigned es = dtypes[t.dt].size;
    t.nbytes = n * es;
    t.data = xmalloc((size_t)t.nbytes);
    if (s->is_float) {
        float *v = gen_values(s);
        for (uint64_t i = 0; i < n; i++) {
            uint8_t *p = t.data + i * es;
            switch (t.dt) {
            case DT_F32: put_le(p, f32_bits(v[i]), 4); break;
            case DT_F16: put_le(p, f32_to_f16(v[i]), 2); break;
            case DT_BF16: put_le(p, f32_to_bf16(v[i]), 2); break;
            default: die("bad float dtype");
            }
        }
        free(v);
    } else if (s->k == K_POSITION) {
        for (uint64_t i = 0; i < n; i++) put_le(t.data + i * es, i % s->shape[s->ndim - 1], es);
    } else if (s->k == K_CAUSAL) {
        uint64_t c = s->shape[s->ndim - 1], r = s->shape[s->ndim - 2];
        for (uint64_t i = 0; i < n; i++) t.data[i] = ((i % c) <= (i / c) % r) ? 1 : 0;
    } else {
        die("unknown tensor kind: %s", s->name);
    }
    return t;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) die("formatting failed");
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        char *q = realloc(b->p, b->cap);
        if (!q) die("out of memory");
        b->p = q;
    }
}

static const char *g_outdir;

static char *out_path(const char *rel)
{
    size_t n = strlen(g_outdir) + strlen(rel) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", g_outdir, rel);
    return p;
}

static void make_dir(const char *rel)
{
    char *p = rel ? out_path(rel) : strcpy(xmalloc(strlen(g_outdir) + 1), g_outdir);
#ifdef _WIN32
    int rc = _mkdir(p);
#else
    int rc = mkdir(p, 0755);
#endif
    if (rc != 0 && errno != EEXIST) die("cannot create directory %s: %s", p, strerror(errno));
    free(p);
}

static FILE *open_out(const char *rel, char **path_out)
{
    char *p = out_path(rel);
    FILE *f = fopen(p, "wb");
    if (!f) die("cannot create %s: %s", p, strerror(errno));
    *path_out = p;
    return f;
}

static void close_out(FILE *f, char *path)
{
    if (ferror(f) || fclose(f) != 0) die("error writing %s", path);
    free(path);
}

static void write_text(const char *rel, const char *text, size_t len)
{
    char *path;
    FILE *f = open_out(rel, &path);
    if (len && fwrite(text, 1, len, f) != len) die("error writing %s", path);
    close_out(f, path);
}

/* Reference writer order: dtype rank descending, then name (bytewise). */
static int cmp_tensor(const void *a, const void *b)
{
    const tensor *x = *(const tensor *const *)a, *y = *(const tensor *const *)b;
    int rx = dtypes[x->dt].rank, ry = dtypes[y->dt].rank;
    if (rx != ry) return rx > ry ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Writes a safetensors file holding the tensors whose shard matches (0 = all). */
static void write_safetensors(const char *rel, tensor *ts, size_t nt, int shard)
{
    tensor **sel = xmalloc(nt * sizeof *sel);
    size_t ns = 0;
    for (size_t i = 0; i < nt; i++)
        if (shard == 0 || ts[i].shard == shard) sel[ns++] = &ts[i];
    qsort(sel, ns, sizeof *sel, cmp_tensor);

    sbuf h = {0};
    sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < ns; i++) {
        const tensor *t = sel[i];
        sb_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, dtypes[t->dt].name);
        for (unsigned d = 0; d < t->ndim; d++)
            sb_printf(&h, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + t->nbytes));
        off += t->nbytes;
    }
    sb_printf(&h, "}");
    while (h.len % 8) sb_printf(&h, " ");

    char *path;
    FILE *f = open_out(rel, &path);
    uint8_t len8[8];
    put_le(len8, h.len, 8);
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(h.p, 1, h.len, f) != h.len)
        die("error writing %s", path);
    for (size_t i = 0; i < ns; i++)
        if (sel[i]->nbytes && fwrite(sel[i]->data, 1, (size_t)sel[i]->nbytes, f) != sel[i]->nbytes)
            die("error writing %s", path);
    close_out(f, path);
    free(h.p);
    free(sel);
}

/* config.json as transformers writes it (json.dumps(indent=2, sort_keys=True) + "\n"). */
static void write_config(const char *dir, const char *torch_dtype)
{
    sbuf b = {0};
    sb_printf(&b,
              "{\n"
              "  \"architectures\": [\n"
              "    \"LlamaForCausalLM\"\n"
              "  ],\n"
              "  \"attention_bias\": true,\n"
              "  \"attention_dropout\": 0.0,\n"
              "  \"bos_token_id\": 1,\n"
              "  \"eos_token_id\": 2,\n"
              "  \"head_dim\": %d,\n"
              "  \"hidden_act\": \"silu\",\n"
              "  \"hidden_size\": %d,\n"
              "  \"initializer_range\": 0.02,\n"
              "  \"intermediate_size\": %d,\n"
              "  \"max_position_embeddings\": 128,\n"
              "  \"mlp_bias\": false,\n"
              "  \"model_type\": \"llama\",\n"
              "  \"num_attention_heads\": %d,\n"
              "  \"num_hidden_layers\": %d,\n"
              "  \"num_key_value_heads\": %d,\n"
              "  \"pretraining_tp\": 1,\n"
              "  \"rms_norm_eps\": 1e-06,\n"
              "  \"rope_scaling\": null,\n"
              "  \"rope_theta\": 10000.0,\n"
              "  \"tie_word_embeddings\": false,\n"
              "  \"torch_dtype\": \"%s\",\n"
              "  \"transformers_version\": \"4.46.3\",\n"
              "  \"use_cache\": true,\n"
              "  \"vocab_size\": %d\n"
              "}\n",
              HEAD_DIM, HIDDEN, INTERMEDIATE, HEADS, LAYERS, KV_HEADS, torch_dtype, VOCAB);
    sbuf p = {0};
    sb_printf(&p, "%s/config.json", dir);
    write_text(p.p, b.p, b.len);
    free(p.p);
    free(b.p);
}

static int cmp_name(const void *a, const void *b)
{
    const tensor *x = *(const tensor *const *)a, *y = *(const tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* model.safetensors.index.json as transformers writes it. */
static void write_index(const char *dir, tensor *ts, size_t nt, const char *const shard_names[2])
{
    tensor **sel = xmalloc(nt * sizeof *sel);
    uint64_t total = 0;
    for (size_t i = 0; i < nt; i++) {
        sel[i] = &ts[i];
        total += ts[i].nbytes;
    }
    qsort(sel, nt, sizeof *sel, cmp_name);
    sbuf b = {0};
    sb_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
              (unsigned long long)total);
    for (size_t i = 0; i < nt; i++)
        sb_printf(&b, "    \"%s\": \"%s\"%s\n", sel[i]->name, shard_names[sel[i]->shard - 1],
                  i + 1 < nt ? "," : "");
    sb_printf(&b, "  }\n}\n");
    sbuf p = {0};
    sb_printf(&p, "%s/model.safetensors.index.json", dir);
    write_text(p.p, b.p, b.len);
    free(p.p);
    free(b.p);
    free(sel);
}

static void gen_model(const char *dir, dtype float_dt, const char *torch_dtype, int sharded)
{
    tensor *ts = xmalloc(nspecs * sizeof *ts);
    for (size_t i = 0; i < nspecs; i++) ts[i] = make_tensor(&specs[i], float_dt);
    make_dir(dir);
    sbuf p = {0};
    if (!sharded) {
        sb_printf(&p, "%s/model.safetensors", dir);
        write_safetensors(p.p, ts, nspecs, 0);
    } else {
        static const char *const names[2] = {"model-00001-of-00002.safetensors",
                                             "model-00002-of-00002.safetensors"};
        for (int s = 1; s <= 2; s++) {
            p.len = 0;
            sb_printf(&p, "%s/%s", dir, names[s - 1]);
            write_safetensors(p.p, ts, nspecs, s);
        }
        write_index(dir, ts, nspecs, names);
    }
    write_config(dir, torch_dtype);
    free(p.p);
    for (size_t i = 0; i < nspecs; i++) free(ts[i].data);
    free(ts);
}

int main(int argc, char **argv)
{
    if (argc != 2 || !argv[1][0]) {
        fprintf(stderr, "usage: %s OUTDIR\n", argc > 0 ? argv[0] : "gen_testdata");
        return 2;
    }
    g_outdir = argv[1];
    make_dir(NULL);
    build_specs();
    gen_model("tiny-llama-f32", DT_F32, "float32", 0);
    gen_model("tiny-llama-f16", DT_F16, "float16", 0);
    gen_model("tiny-llama-bf16", DT_BF16, "bfloat16", 0);
    gen_model("tiny-llama-sharded", DT_BF16, "bfloat16", 1);
    return 0;
}
