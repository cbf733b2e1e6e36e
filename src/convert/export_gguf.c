/*
 * export_gguf.c - container -> llama.cpp GGUF (version 3) for the LLaMA
 * family.  Tensors whose mixq type has an exact llama.cpp counterpart are
 * transcoded block by block (the codes and scale parameters move, nothing is
 * re-rounded); the q and k projections' rows are reordered from Hugging
 * Face's rotate-half RoPE layout to llama.cpp's interleaved one (whole rows
 * move, so this is exact too).  The block layouts are llama.cpp's
 * (ggml-common.h: block_q8_0, block_q4_0, block_q4_1, block_q2_K,
 * block_q3_K, block_q4_K, block_q6_K); the correspondence of each mixq type
 * is worked out in docs/CLI.md ("mixq export --gguf").
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/half.h"
#include "common/options.h"
#include "format/gguf.h"
#include "convert/gguf_vocab.h"

static void gguf_defaults(mixq_export_gguf_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->verify = 1;
}

void mixq_export_gguf_options_init_sized(mixq_export_gguf_options *opts, size_t struct_size)
{
    mixq_export_gguf_options d;
    gguf_defaults(&d);
    mx_options_init_sized(opts, struct_size, &d, sizeof d);
}

/* ---------------------------------------------------------------- config.json */

typedef struct gcfg {
    uint64_t hidden, ffn, layers, heads, kv_heads, head_dim, ctx, vocab;
    double eps, rope_base;
    int head_dim_explicit;
    double rope_linear;    /* 0 = none */
} gcfg;

static bool cfg_uint(json_t *root, const char *key, uint64_t *out, uint64_t max)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || (uint64_t)json_integer_value(v) > max) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static mixq_status parse_config(const char *cpath, const char *text, size_t len, gcfg *c, mixq_error *err)
{
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return mx_err(err, MIXQ_E_FORMAT, "%s: config.json is not a JSON object", cpath);
    }
    mixq_status s = MIXQ_OK;
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    if (!mt || (strcmp(mt, "llama") && strcmp(mt, "mistral"))) {
        s = mx_err(err, MIXQ_E_UNSUPPORTED, "%s: config.json: model_type \"%s\"; GGUF export supports the LLaMA "
                   "family (llama, mistral)", cpath, mt ? mt : "(none)");
        goto out;
    }
    const uint64_t big = (uint64_t)1 << 31;
    if (!cfg_uint(root, "hidden_size", &c->hidden, big) || !cfg_uint(root, "intermediate_size", &c->ffn, big) ||
        !cfg_uint(root, "num_hidden_layers", &c->layers, 100000) ||
        !cfg_uint(root, "num_attention_heads", &c->heads, 100000) || !cfg_uint(root, "vocab_size", &c->vocab, big)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: config.json: hidden_size, intermediate_size, num_hidden_layers, "
                   "num_attention_heads and vocab_size must be positive integers", cpath);
        goto out;
    }
    if (!json_object_get(root, "num_key_value_heads")) c->kv_heads = c->heads;
    else if (!cfg_uint(root, "num_key_value_heads", &c->kv_heads, c->heads) || c->heads % c->kv_heads) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: config.json: num_key_value_heads must divide num_attention_heads", cpath);
        goto out;
    }
    if (json_object_get(root, "head_dim") && !json_is_null(json_object_get(root, "head_dim"))) {
        if (!cfg_uint(root, "head_dim", &c->head_dim, 1u << 16)) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: config.json: bad head_dim", cpath);
            goto out;
        }
        c->head_dim_explicit = c->head_dim != c->hidden / c->heads;
    } else if (c->hidden % c->heads == 0) {
        c->head_dim = c->hidden / c->heads;
    } else {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: config.json: num_attention_heads does not divide hidden_size", cpath);
        goto out;
    }
    if (c->head_dim % 2) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: config.json: the head dimension %llu is odd", cpath,
                   (unsigned long long)c->head_dim);
        goto out;
    }
    if (!cfg_uint(root, "max_position_embeddings", &c->ctx, big)) c->ctx = 2048;
    json_t *e = json_object_get(root, "rms_norm_eps"), *t = json_object_get(root, "rope_theta");
    c->eps = json_is_number(e) ? json_number_value(e) : 1e-6;
    c->rope_base = json_is_number(t) ? json_number_value(t) : 10000.0;
    if (!(c->eps > 0 && c->eps < 1) || !(c->rope_base > 0 && c->rope_base < 1e12)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: config.json: bad rms_norm_eps or rope_theta", cpath);
        goto out;
    }
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        const char *rt = json_string_value(json_object_get(rs, "rope_type"));
        if (!rt) rt = json_string_value(json_object_get(rs, "type"));
        json_t *fac = json_object_get(rs, "factor");
        if (rt && !strcmp(rt, "linear") && json_is_number(fac) && json_number_value(fac) > 0) {
            c->rope_linear = json_number_value(fac);
        } else if (!(rt && !strcmp(rt, "default"))) {
            s = mx_err(err, MIXQ_E_UNSUPPORTED, "%s: config.json: rope_scaling of type \"%s\" is not supported by "
                       "the GGUF export (only linear)", cpath, rt ? rt : "?");
            goto out;
        }
    }
out:
    json_decref(root);
    return s;
}

/* ---------------------------------------------------------------- tensor names */

/* The llama.cpp name of a Hugging Face LLaMA tensor, and which projection it is (1 = q, 2 = k). */
static bool map_name(const char *hf, char *out, size_t cap, int *proj, bool *skip)
{
    static const struct {
        const char *hf, *gg;
        int proj;
    } tail[] = {
        {"self_attn.q_proj.weight", "attn_q.weight", 1},  {"self_attn.k_proj.weight", "attn_k.weight", 2},
        {"self_attn.v_proj.weight", "attn_v.weight", 0},  {"self_attn.o_proj.weight", "attn_output.weight", 0},
        {"mlp.gate_proj.weight", "ffn_gate.weight", 0},   {"mlp.up_proj.weight", "ffn_up.weight", 0},
        {"mlp.down_proj.weight", "ffn_down.weight", 0},   {"input_layernorm.weight", "attn_norm.weight", 0},
        {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
    };
    *proj = 0;
    *skip = false;
    if (!strcmp(hf, "model.embed_tokens.weight")) return snprintf(out, cap, "token_embd.weight") > 0;
    if (!strcmp(hf, "model.norm.weight")) return snprintf(out, cap, "output_norm.weight") > 0;
    if (!strcmp(hf, "lm_head.weight")) return snprintf(out, cap, "output.weight") > 0;
    unsigned layer;
    int pos = 0;
    if (sscanf(hf, "model.layers.%u.%n", &layer, &pos) == 1 && pos > 0 && layer < 100000) {
        const char *rest = hf + pos;
        if (!strcmp(rest, "self_attn.rotary_emb.inv_freq")) {
            *skip = true; /* recomputed by llama.cpp */
            return true;
        }
        for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
            if (!strcmp(rest, tail[i].hf)) {
                *proj = tail[i].proj;
                int n = snprintf(out, cap, "blk.%u.%s", layer, tail[i].gg);
                return n > 0 && (size_t)n < cap;
            }
    }
    return false;
}

/* ---------------------------------------------------------------- types */

enum { TR_EXACT, TR_DEQUANT }; /* transcode the stored blocks, or go through the f32 values */

typedef struct gt {
    const mixq_tensor *t;
    mixq_tensor_info in;
    char name[MXG_MAX_NAME];
    uint64_t permute_heads;  /* 0, or the heads whose rows are reordered */
    uint32_t gtype;          /* MXG_T_* */
    int mode;
    uint64_t rows, cols;     /* of the output: a 1-D tensor is one row */
    uint64_t row_bytes, nbytes, offset;
} gt;

/* Bytes of one row of k weights of a ggml type (k a multiple of its block). */
static uint64_t ggml_row_bytes(uint32_t type, uint64_t k)
{
    switch (type) {
    case MXG_T_F32: return 4 * k;
    case MXG_T_F16:
    case MXG_T_BF16: return 2 * k;
    case MXG_T_Q8_0: return k / 32 * 34;
    case MXG_T_Q4_0: return k / 32 * 18;
    case MXG_T_Q4_1: return k / 32 * 20;
    case MXG_T_Q2_K: return k / 256 * 84;
    case MXG_T_Q3_K: return k / 256 * 110;
    case MXG_T_Q4_K: return k / 256 * 144;
    case MXG_T_Q6_K: return k / 256 * 210;
    default: return 0;
    }
}

/* The ggml type holding a 2-D tensor's stored values exactly, or UINT32_MAX. */
static uint32_t exact_type(const mixq_tensor_info *in)
{
    uint64_t k = in->row_length;
    unsigned g = in->group_size;
    switch (in->qtype) {
    case MIXQ_QT_F32: return MXG_T_F32;
    case MIXQ_QT_F16: return MXG_T_F16;
    case MIXQ_QT_BF16: return MXG_T_BF16;
    case MIXQ_QT_RAW:
        if (!strcmp(in->source_dtype, "F32")) return MXG_T_F32;
        if (!strcmp(in->source_dtype, "F16")) return MXG_T_F16;
        if (!strcmp(in->source_dtype, "BF16")) return MXG_T_BF16;
        return UINT32_MAX;
    case MIXQ_QT_INT8: return g == 32 && k % 32 == 0 ? MXG_T_Q8_0 : UINT32_MAX;
    case MIXQ_QT_INT4S: return g == 32 && k % 32 == 0 ? MXG_T_Q4_0 : UINT32_MAX;
    case MIXQ_QT_INT4: return g == 32 && k % 32 == 0 ? MXG_T_Q4_1 : UINT32_MAX;
    case MIXQ_QT_INT4_DQ: return g == 32 && k % 256 == 0 ? MXG_T_Q4_K : UINT32_MAX;
    case MIXQ_QT_INT2_DQ: return g == 16 && k % 256 == 0 ? MXG_T_Q2_K : UINT32_MAX;
    case MIXQ_QT_INT3_DQ: return g == 16 && k % 256 == 0 ? MXG_T_Q3_K : UINT32_MAX;
    case MIXQ_QT_INT6_DQ: return g == 16 && k % 256 == 0 ? MXG_T_Q6_K : UINT32_MAX;
    default: return UINT32_MAX;
    }
}

/* ---------------------------------------------------------------- block transcoders */

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline bool fin16(uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

/*
 * Value k of a field of `count` values stored as bit planes of the given
 * widths (FORMAT.md §5.1): plane p holds bits s_p.. of every value, LSB
 * first, and starts where plane p - 1 ends.
 */
static unsigned field(const uint8_t *base, uint64_t count, const unsigned *widths, int np, uint64_t k)
{
    unsigned v = 0, shift = 0;
    uint64_t off = 0;
    for (int p = 0; p < np; p++) {
        unsigned w = widths[p];
        uint64_t bit = k * w;
        v |= (unsigned)((base[off + bit / 8] >> (bit % 8)) & ((1u << w) - 1)) << shift;
        shift += w;
        off += (count * w + 7) / 8;
    }
    return v;
}

static const unsigned W4[] = {4}, W2[] = {2}, W21[] = {2, 1}, W42[] = {4, 2}, W8[] = {8};

/* The row parts of one source row: codes, scales, mins, super_scales, super_mins. */
typedef struct rowsrc {
    const uint8_t *codes, *scales, *mins, *sup, *supm;
    uint64_t k;
} rowsrc;

/* Transcodes one row into ggml blocks at dst; false if a scale parameter is not finite. */
static bool transcode_row(uint32_t type, const rowsrc *s, uint8_t *dst)
{
    uint64_t k = s->k;
    switch (type) {
    case MXG_T_Q8_0: /* int8 g32: {f16 d, int8 q[32]}, x = q d */
        for (uint64_t b = 0; b < k / 32; b++, dst += 34) {
            uint16_t d = rd16(s->scales + 2 * b);
            if (!fin16(d)) return false;
            wr16(dst, d);
            memcpy(dst + 2, s->codes + 32 * b, 32);
        }
        return true;
    case MXG_T_Q4_0: /* int4s g32: {f16 d, nibbles: element i low, i + 16 high of byte i}, x = (u - 8) d */
    case MXG_T_Q4_1: /* int4 g32: {f16 d, f16 m, nibbles as Q4_0}, x = u d + m */
        for (uint64_t b = 0; b < k / 32; b++) {
            uint16_t d = rd16(s->scales + 2 * b);
            if (!fin16(d)) return false;
            wr16(dst, d);
            uint8_t *qs = dst + 2;
            if (type == MXG_T_Q4_1) {
                uint16_t m = rd16(s->mins + 2 * b);
                if (!fin16(m)) return false;
                wr16(dst + 2, m);
                qs = dst + 4;
            }
            for (unsigned i = 0; i < 16; i++) {
                unsigned lo = field(s->codes, k, W4, 1, 32 * b + i), hi = field(s->codes, k, W4, 1, 32 * b + i + 16);
                qs[i] = (uint8_t)(lo | hi << 4);
            }
            dst = qs + 16;
        }
        return true;
    case MXG_T_Q4_K: { /* int4_dq g32: {f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles} */
        uint64_t ng = k / 32;
        for (uint64_t b = 0; b < k / 256; b++, dst += 144) {
            uint16_t d = rd16(s->sup + 2 * b), dm = rd16(s->supm + 2 * b);
            if (!fin16(d) || !fin16(dm)) return false;
            wr16(dst, d);
            wr16(dst + 2, dm ^ 0x8000u); /* x = d sc q - dmin m: mixq adds dm_b m, so dmin = -dm_b (exact) */
            unsigned sc[8], mn[8];
            for (unsigned j = 0; j < 8; j++) {
                sc[j] = field(s->scales, ng, W42, 2, 8 * b + j);
                mn[j] = field(s->mins, ng, W42, 2, 8 * b + j);
            }
            uint8_t *q = dst + 4;
            for (unsigned j = 0; j < 4; j++) {
                q[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
                q[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
                q[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
            }
            uint8_t *qs = dst + 16;
            memset(qs, 0, 128);
            for (unsigned e = 0; e < 256; e++) /* 64-element chunks: elements l and l + 32 share byte l */
                qs[32 * (e / 64) + e % 32] |= (uint8_t)(field(s->codes, k, W4, 1, 256 * b + e) << (4 * ((e % 64) / 32)));
        }
        return true;
    }
    case MXG_T_Q2_K: { /* int2_dq g16: {16 bytes scale | min << 4, 64 bytes of 2-bit codes, f16 d, f16 dmin} */
        uint64_t ng = k / 16;
        for (uint64_t b = 0; b < k / 256; b++, dst += 84) {
            uint16_t d = rd16(s->sup + 2 * b), dm = rd16(s->supm + 2 * b);
            if (!fin16(d) || !fin16(dm)) return false;
            for (unsigned j = 0; j < 16; j++)
                dst[j] = (uint8_t)(field(s->scales, ng, W4, 1, 16 * b + j) | field(s->mins, ng, W4, 1, 16 * b + j) << 4);
            uint8_t *qs = dst + 16;
            memset(qs, 0, 64);
            for (unsigned e = 0; e < 256; e++) /* byte 32 (e / 128) + e % 32, bits 2 ((e / 32) % 4) */
                qs[32 * (e / 128) + e % 32] |= (uint8_t)(field(s->codes, k, W2, 1, 256 * b + e) << (2 * ((e / 32) % 4)));
            wr16(dst + 80, d);
            wr16(dst + 82, dm ^ 0x8000u);
        }
        return true;
    }
    case MXG_T_Q3_K: { /* int3_dq g16: {32 bytes high bits, 64 bytes low 2 bits, 12 bytes 6-bit scales, f16 d} */
        uint64_t ng = k / 16;
        for (uint64_t b = 0; b < k / 256; b++, dst += 110) {
            uint16_t d = rd16(s->sup + 2 * b);
            if (!fin16(d)) return false;
            uint8_t *hm = dst, *qs = dst + 32, *sc = dst + 96;
            memset(dst, 0, 108);
            for (unsigned e = 0; e < 256; e++) {
                unsigned u = field(s->codes, k, W21, 2, 256 * b + e); /* q + 4 */
                qs[32 * (e / 128) + e % 32] |= (uint8_t)((u & 3) << (2 * ((e / 32) % 4)));
                hm[e % 32] |= (uint8_t)(((u >> 2) & 1) << (e / 32));
            }
            for (unsigned j = 0; j < 16; j++) { /* c + 32: low 4 bits in bytes 0-7, high 2 bits in bytes 8-11 */
                unsigned c = field(s->scales, ng, W42, 2, 16 * b + j);
                sc[j % 8] |= (uint8_t)((c & 15) << (4 * (j / 8)));
                sc[8 + j % 4] |= (uint8_t)((c >> 4) << (2 * (j / 4)));
            }
            wr16(dst + 108, d);
        }
        return true;
    }
    case MXG_T_Q6_K: { /* int6_dq g16: {128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, f16 d} */
        uint64_t ng = k / 16;
        for (uint64_t b = 0; b < k / 256; b++, dst += 210) {
            uint16_t d = rd16(s->sup + 2 * b);
            if (!fin16(d)) return false;
            uint8_t *ql = dst, *qh = dst + 128, *sc = dst + 192;
            memset(dst, 0, 208);
            for (unsigned e = 0; e < 256; e++) {
                unsigned u = field(s->codes, k, W42, 2, 256 * b + e); /* q + 32 */
                unsigned h = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
                ql[64 * h + l + 32 * (quarter & 1)] |= (uint8_t)((u & 15) << (4 * (quarter >> 1)));
                qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * quarter));
            }
            for (unsigned j = 0; j < 16; j++) sc[j] = (uint8_t)(field(s->scales, ng, W8, 1, 16 * b + j) - 128u);
            wr16(dst + 208, d);
        }
        return true;
    }
    default: return false;
    }
}

/* Re-quantizes k values (k a multiple of 32) to Q8_0: d the smallest f16 with 127 d >= max|x|, q = round(x / d). */
static void requant_q8_0(const float *x, uint64_t k, uint8_t *dst)
{
    for (uint64_t b = 0; b < k / 32; b++, dst += 34) {
        float amax = 0;
        for (unsigned i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * b + i]));
        uint16_t dh = mx_f16_round_up(amax / 127.0f);
        float d = mx_f16_to_f32(dh);
        while (d * 127.0f < amax) d = mx_f16_to_f32(++dh); /* the division rounded down */
        wr16(dst, dh);
        for (unsigned i = 0; i < 32; i++) {
            float q = d > 0 ? nearbyintf(x[32 * b + i] / d) : 0.0f;
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            dst[2 + i] = (uint8_t)(int8_t)q;
        }
    }
}

/* ---------------------------------------------------------------- the export */

typedef struct gctx {
    const char *c_path;
    mixq_file *f;
    gt *ts;
    size_t n;
    float *fbuf;
    uint8_t *obuf;
    uint64_t fcap, ocap;
} gctx;

static int grow(void **p, uint64_t *cap, uint64_t need)
{
    if (need <= *cap) return 0;
    if (need > SIZE_MAX) return -1;
    void *np = realloc(*p, (size_t)need);
    if (!np) return -1;
    *p = np;
    *cap = need;
    return 0;
}

/* The source row of output row r: llama.cpp's RoPE order for q/k (whole rows move). */
static uint64_t src_row(const gt *g, uint64_t r)
{
    if (!g->permute_heads) return r;
    uint64_t hd = g->rows / g->permute_heads, half = hd / 2;
    uint64_t h = r / hd, i = (r % hd) / 2, t = r % 2;
    return h * hd + t * half + i;
}

/* Writes the bytes of one output row of g into c->obuf. */
static mixq_status make_row(gctx *c, const gt *g, uint64_t r, const mixq_section *sec, mixq_error *err)
{
    char nb[MX_SHOWN_BUF];
    uint64_t sr = src_row(g, r), k = g->cols;
    if (g->mode == TR_EXACT && g->in.quantized) {
        rowsrc s = {.k = k};
        const uint8_t **slot[] = {NULL, &s.codes, &s.scales, &s.mins, &s.sup, &s.supm};
        for (int kind = MIXQ_SEC_CODES; kind <= MIXQ_SEC_SUPER_MINS; kind++)
            if (sec[kind].data) *slot[kind] = (const uint8_t *)sec[kind].data + sr * sec[kind].row_stride;
        if (!transcode_row(g->gtype, &s, c->obuf))
            return mx_err(err, MIXQ_E_DATA, "%s: tensor \"%s\": row %llu has a non-finite scale, which llama.cpp "
                          "would not decode as mixq does", c->c_path, mx_shown(g->in.name, nb), (unsigned long long)sr);
        return MIXQ_OK;
    }
    if (g->mode == TR_EXACT) { /* plain values of the same type: the bytes */
        memcpy(c->obuf, (const uint8_t *)sec[MIXQ_SEC_DATA].data + sr * sec[MIXQ_SEC_DATA].row_stride,
               (size_t)g->row_bytes);
        return MIXQ_OK;
    }
    mixq_status s;
    if (g->in.ndim <= 1) s = mixq_dequantize_f32(c->f, g->t, 0, 1, c->fbuf, err);
    else s = mixq_dequantize_f32(c->f, g->t, sr, sr + 1, c->fbuf, err);
    if (s) return s;
    const float *x = c->fbuf;
    switch (g->gtype) {
    case MXG_T_F32: memcpy(c->obuf, x, (size_t)(4 * k)); break;
    case MXG_T_F16:
        for (uint64_t i = 0; i < k; i++) {
            uint16_t h = mx_f32_to_f16(x[i]);
            if ((h & 0x7C00u) == 0x7C00u && isfinite(x[i]))
                return mx_err(err, MIXQ_E_DATA, "%s: tensor \"%s\": row %llu holds %g, beyond F16; use "
                              "--requantize f32", c->c_path, mx_shown(g->in.name, nb), (unsigned long long)sr,
                              (double)x[i]);
            wr16(c->obuf + 2 * i, h);
        }
        break;
    case MXG_T_Q8_0:
        for (uint64_t i = 0; i < k; i++)
            if (!isfinite(x[i]) || fabsf(x[i]) > 65504.0f * 127.0f)
                return mx_err(err, MIXQ_E_DATA, "%s: tensor \"%s\": row %llu holds %g, which Q8_0 cannot hold",
                              c->c_path, mx_shown(g->in.name, nb), (unsigned long long)sr, (double)x[i]);
        requant_q8_0(x, k, c->obuf);
        break;
    default: return mx_err(err, MIXQ_E_INVALID_ARG, "%s: internal: bad type", c->c_path);
    }
    return MIXQ_OK;
}

/* llama_ftype of the most common quantized type among the matrices (by weights). */
static uint32_t file_type(const gctx *c)
{
    static const struct {
        uint32_t gtype, ftype;
    } map[] = {{MXG_T_F32, 0},  {MXG_T_F16, 1},  {MXG_T_Q4_0, 2},  {MXG_T_Q4_1, 3},  {MXG_T_Q8_0, 7},
               {MXG_T_Q2_K, 10}, {MXG_T_Q3_K, 12}, {MXG_T_Q4_K, 15}, {MXG_T_Q6_K, 18}, {MXG_T_BF16, 32}};
    uint64_t weight[sizeof map / sizeof map[0]] = {0};
    for (size_t i = 0; i < c->n; i++) {
        if (c->ts[i].rows < 2) continue;
        for (size_t m = 0; m < sizeof map / sizeof map[0]; m++)
            if (map[m].gtype == c->ts[i].gtype) weight[m] += c->ts[i].in.n_elements;
    }
    size_t best = 0;
    for (size_t m = 1; m < sizeof map / sizeof map[0]; m++)
        if (weight[m] > weight[best] || (weight[best] && weight[m] == weight[best] && m > best)) best = m;
    return map[best].ftype;
}

/* The architecture and tokenizer keys; *count gets their number. */
static void put_kvs(mxg_buf *b, const gcfg *cf, const gv_vocab *v, const char *name, uint32_t ftype, uint64_t *count)
{
    uint64_t n = 0;
#define KV(call) (call, n++)
    KV(mxg_kv_str(b, "general.architecture", "llama"));
    KV(mxg_kv_str(b, "general.name", name));
    KV(mxg_kv_u32(b, "general.file_type", ftype));
    KV(mxg_kv_u32(b, "general.quantization_version", 2));
    KV(mxg_kv_u32(b, "llama.vocab_size", (uint32_t)cf->vocab));
    KV(mxg_kv_u32(b, "llama.context_length", (uint32_t)cf->ctx));
    KV(mxg_kv_u32(b, "llama.embedding_length", (uint32_t)cf->hidden));
    KV(mxg_kv_u32(b, "llama.block_count", (uint32_t)cf->layers));
    KV(mxg_kv_u32(b, "llama.feed_forward_length", (uint32_t)cf->ffn));
    KV(mxg_kv_u32(b, "llama.attention.head_count", (uint32_t)cf->heads));
    KV(mxg_kv_u32(b, "llama.attention.head_count_kv", (uint32_t)cf->kv_heads));
    KV(mxg_kv_f32(b, "llama.attention.layer_norm_rms_epsilon", (float)cf->eps));
    KV(mxg_kv_f32(b, "llama.rope.freq_base", (float)cf->rope_base));
    KV(mxg_kv_u32(b, "llama.rope.dimension_count", (uint32_t)cf->head_dim));
    if (cf->head_dim_explicit) {
        KV(mxg_kv_u32(b, "llama.attention.key_length", (uint32_t)cf->head_dim));
        KV(mxg_kv_u32(b, "llama.attention.value_length", (uint32_t)cf->head_dim));
    }
    if (cf->rope_linear > 0) {
        KV(mxg_kv_str(b, "llama.rope.scaling.type", "linear"));
        KV(mxg_kv_f32(b, "llama.rope.scaling.factor", (float)cf->rope_linear));
    }
    if (v) {
        KV(mxg_kv_str(b, "tokenizer.ggml.model", v->model));
        if (v->pre) KV(mxg_kv_str(b, "tokenizer.ggml.pre", v->pre));
        mxg_kv_array(b, "tokenizer.ggml.tokens", MXG_STRING, v->n), n++;
        for (size_t i = 0; i < v->n; i++) mxg_put_strn(b, v->tokens[i], v->token_len[i]);
        if (v->scores) {
            mxg_kv_array(b, "tokenizer.ggml.scores", MXG_F32, v->n), n++;
            for (size_t i = 0; i < v->n; i++) mxg_put_f32(b, v->scores[i]);
        }
        mxg_kv_array(b, "tokenizer.ggml.token_type", MXG_I32, v->n), n++;
        for (size_t i = 0; i < v->n; i++) mxg_put_i32(b, v->types[i]);
        if (v->merges) {
            mxg_kv_array(b, "tokenizer.ggml.merges", MXG_STRING, v->n_merges), n++;
            for (size_t i = 0; i < v->n_merges; i++) mxg_put_str(b, v->merges[i]);
        }
        if (v->bos >= 0 && (uint64_t)v->bos < v->n) KV(mxg_kv_u32(b, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos));
        if (v->eos >= 0 && (uint64_t)v->eos < v->n) KV(mxg_kv_u32(b, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos));
        if (v->unk >= 0 && (uint64_t)v->unk < v->n) KV(mxg_kv_u32(b, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk));
        if (v->pad >= 0 && (uint64_t)v->pad < v->n) KV(mxg_kv_u32(b, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad));
        if (v->add_bos >= 0) KV(mxg_kv_bool(b, "tokenizer.ggml.add_bos_token", v->add_bos));
        if (v->add_eos >= 0) KV(mxg_kv_bool(b, "tokenizer.ggml.add_eos_token", v->add_eos));
    }
#undef KV
    *count = n;
}

/* Reads a stored file; MIXQ_E_NOT_FOUND without a message if absent. */
static mixq_status stored(const mixq_file *f, const char *name, void **buf, size_t *len, mixq_error *err)
{
    *buf = NULL;
    *len = 0;
    if (mixq_file_find(f, name, NULL) != MIXQ_OK) return MIXQ_E_NOT_FOUND;
    return mixq_file_read(f, name, buf, len, err);
}

/* Appends ", name" to a bounded list for a one-line message. */
static void list_add(char *list, size_t cap, size_t *count, const char *name)
{
    char b[MX_SHOWN_BUF];
    size_t l = strlen(list);
    if (*count < 6 && l + strlen(name) + 4 < cap) snprintf(list + l, cap - l, "%s%s", *count ? ", " : "", mx_shown(name, b));
    (*count)++;
}

/* Decides the output of every tensor: name, type, mode, shape. */
static mixq_status plan_tensors(gctx *c, const gcfg *cf, mixq_gguf_requantize rq, mixq_error *err)
{
    size_t n = mixq_tensor_count(c->f);
    c->ts = calloc(n ? n : 1, sizeof *c->ts);
    if (!c->ts) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    char unknown[400] = "", inexact[400] = "";
    size_t n_unknown = 0, n_inexact = 0;
    char nb[MX_SHOWN_BUF];
    for (size_t i = 0; i < n; i++) {
        gt *g = &c->ts[c->n];
        g->t = mixq_tensor_at(c->f, i);
        mixq_tensor_get_info(g->t, &g->in);
        int proj;
        bool skip;
        if (!map_name(g->in.name, g->name, sizeof g->name, &proj, &skip)) {
            list_add(unknown, sizeof unknown, &n_unknown, g->in.name);
            continue;
        }
        if (skip) continue;
        st_dtype src;
        if (!st_dtype_parse(g->in.source_dtype, &src) || !st_dtypes[src].is_float)
            return mx_err(err, MIXQ_E_UNSUPPORTED, "%s: tensor \"%s\": source dtype %s is not a floating type",
                          c->c_path, mx_shown(g->in.name, nb), g->in.source_dtype);
        if (g->in.ndim == 1) {
            g->rows = 1;
            g->cols = g->in.n_elements;
            g->gtype = MXG_T_F32;
            g->mode = g->in.qtype == MIXQ_QT_F32 || (g->in.qtype == MIXQ_QT_RAW && src == ST_F32) ? TR_EXACT : TR_DEQUANT;
        } else if (g->in.ndim == 2) {
            g->rows = g->in.shape[0];
            g->cols = g->in.shape[1];
            uint32_t et = exact_type(&g->in);
            if (et != UINT32_MAX) {
                g->gtype = et;
                g->mode = TR_EXACT;
            } else if (rq == MIXQ_GGUF_EXACT_ONLY || (rq == MIXQ_GGUF_TO_Q8_0 && g->cols % 32)) {
                char what[MX_SHOWN_BUF + 48];
                snprintf(what, sizeof what, "%s (%s:%u)", g->in.name, g->in.quant_type, g->in.group_size);
                list_add(inexact, sizeof inexact, &n_inexact, what);
                continue;
            } else {
                g->gtype = rq == MIXQ_GGUF_TO_Q8_0 ? MXG_T_Q8_0 : rq == MIXQ_GGUF_TO_F16 ? MXG_T_F16 : MXG_T_F32;
                g->mode = TR_DEQUANT;
            }
        } else {
            return mx_err(err, MIXQ_E_UNSUPPORTED, "%s: tensor \"%s\" has %u dimensions; a LLaMA GGUF holds 1-D and "
                          "2-D tensors", c->c_path, mx_shown(g->in.name, nb), g->in.ndim);
        }
        if (proj) {
            uint64_t heads = proj == 1 ? cf->heads : cf->kv_heads;
            if (g->rows != heads * cf->head_dim)
                return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\" has %llu rows; config.json implies %llu heads of "
                              "%llu", c->c_path, mx_shown(g->in.name, nb), (unsigned long long)g->rows,
                              (unsigned long long)heads, (unsigned long long)cf->head_dim);
            g->permute_heads = heads;
        }
        g->row_bytes = ggml_row_bytes(g->gtype, g->cols);
        if (!ck_mul(g->row_bytes, g->rows, &g->nbytes))
            return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": size overflows", c->c_path, mx_shown(g->in.name, nb));
        c->n++;
    }
    if (n_unknown)
        return mx_err(err, MIXQ_E_UNSUPPORTED, "%s: %zu tensor(s) have no llama.cpp name in the LLaMA architecture: "
                      "%s%s", c->c_path, n_unknown, unknown, n_unknown > 6 ? ", ..." : "");
    if (n_inexact)
        return mx_err(err, MIXQ_E_UNSUPPORTED, "%s: %zu tensor(s) have no exact llama.cpp type: %s%s; convert with "
                      "--candidates gguf, or export with --requantize q8_0|f16|f32", c->c_path, n_inexact, inexact,
                      n_inexact > 6 ? ", ..." : "");
    return MIXQ_OK;
}

/* The base name of path without its extension, into buf. */
static void default_name(const char *path, char *buf, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, cap, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = '\0';
}

mixq_status mixq_export_gguf(const char *container_path, const char *out_path, const mixq_export_gguf_options *opts_in,
                             mixq_error *err)
{
    mixq_error local_err;
    if (!err) err = &local_err;
    mx_err_clear(err);
    mixq_export_gguf_options local;
    gguf_defaults(&local);
    mixq_status so = mx_options_take(&local, sizeof local, opts_in, MX_FIELD_END(mixq_export_gguf_options, name),
                                     "export_gguf_options", err);
    if (so != MIXQ_OK) return so;
    const mixq_export_gguf_options *opts = &local;
    if (!container_path || !out_path)
        return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_export_gguf: input and output paths are required");
    if ((unsigned)opts->requantize > MIXQ_GGUF_TO_F32)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: bad requantize option %d", out_path, (int)opts->requantize);
    gctx c = {.c_path = container_path};
    c.f = mixq_open(container_path, opts->verify ? MIXQ_OPEN_VERIFY : 0, err);
    if (!c.f) return err->code;
    void *text = NULL;
    size_t len = 0;
    gcfg cf;
    gv_vocab vocab;
    memset(&vocab, 0, sizeof vocab);
    bool have_vocab = false;
    mxg_buf kv = {0}, hdr = {0};
    afile out;
    bool opened = false;
    mixq_status s = stored(c.f, "config.json", &text, &len, err);
    if (s == MIXQ_E_NOT_FOUND)
        s = mx_err(err, MIXQ_E_NOT_FOUND, "%s: stores no config.json (convert from a directory that holds it)",
                   container_path);
    if (s == MIXQ_OK) s = parse_config(container_path, text, len, &cf, err);
    mixq_free(text);
    if (s == MIXQ_OK) s = plan_tensors(&c, &cf, opts->requantize, err);

    /* the vocabulary: tokenizer.model, else tokenizer.json; then tokenizer_config.json */
    if (s == MIXQ_OK) {
        char where[MX_SHOWN_BUF + 32];
        mixq_status t = stored(c.f, "tokenizer.model", &text, &len, err);
        if (t == MIXQ_OK) {
            snprintf(where, sizeof where, "%s: tokenizer.model", container_path);
            s = gv_from_sentencepiece(where, text, len, cf.vocab, &vocab, err);
            have_vocab = s == MIXQ_OK;
        } else if (t == MIXQ_E_NOT_FOUND) {
            t = stored(c.f, "tokenizer.json", &text, &len, err);
            if (t == MIXQ_OK) {
                snprintf(where, sizeof where, "%s: tokenizer.json", container_path);
                s = gv_from_tokenizer_json(where, text, len, cf.vocab, &vocab, err);
                have_vocab = s == MIXQ_OK;
            } else if (t != MIXQ_E_NOT_FOUND) {
                s = t;
            }
        } else {
            s = t;
        }
        mixq_free(text);
        text = NULL;
        if (have_vocab && stored(c.f, "tokenizer_config.json", &text, &len, err) == MIXQ_OK)
            gv_apply_tokenizer_config(&vocab, text, len);
        mixq_free(text);
    }

    /* the header: key-values, tensor infos, padding */
    if (s == MIXQ_OK) {
        char name[256];
        if (opts->name) snprintf(name, sizeof name, "%s", opts->name);
        else default_name(container_path, name, sizeof name);
        uint64_t nkv = 0, off = 0;
        put_kvs(&kv, &cf, have_vocab ? &vocab : NULL, name, file_type(&c), &nkv);
        mxg_put(&hdr, "GGUF", 4);
        mxg_put_u32(&hdr, MXG_VERSION);
        mxg_put_u64(&hdr, c.n);
        mxg_put_u64(&hdr, nkv);
        mxg_put(&hdr, kv.p, kv.len);
        if (kv.fail) hdr.fail = 1;
        for (size_t i = 0; i < c.n && s == MIXQ_OK; i++) {
            gt *g = &c.ts[i];
            mxg_put_str(&hdr, g->name);
            mxg_put_u32(&hdr, g->in.ndim <= 1 ? 1 : 2);
            mxg_put_u64(&hdr, g->cols); /* ne[0]: the row length */
            if (g->in.ndim == 2) mxg_put_u64(&hdr, g->rows);
            mxg_put_u32(&hdr, g->gtype);
            mxg_put_u64(&hdr, off);
            g->offset = off;
            if (!ck_add(off, g->nbytes, &off) || !ck_align(off, MXG_ALIGN, &off))
                s = mx_err(err, MIXQ_E_RANGE, "%s: the GGUF's size overflows", out_path);
        }
        mxg_pad(&hdr, MXG_ALIGN);
        if (s == MIXQ_OK && hdr.fail) s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory for the GGUF header", out_path);
    }
    if (s == MIXQ_OK) {
        s = afile_open(&out, out_path, opts->force, err);
        opened = s == MIXQ_OK;
        if (opened) out.cancel = opts->cancel;
    }
    if (s == MIXQ_OK) s = afile_pwrite(&out, hdr.p, hdr.len, 0, err);

    /* the tensors, row by row */
    static const uint8_t zeros[MXG_ALIGN];
    for (size_t i = 0; i < c.n && s == MIXQ_OK; i++) {
        gt *g = &c.ts[i];
        if (opts->cancel && *opts->cancel) {
            s = mx_err(err, MIXQ_E_CANCELLED, "%s: export interrupted", container_path);
            break;
        }
        mixq_section sec[MIXQ_SECTION_COUNT];
        memset(sec, 0, sizeof sec);
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
            if (mixq_tensor_section(g->t, (mixq_section_kind)k, &sec[k]) != MIXQ_OK) memset(&sec[k], 0, sizeof sec[k]);
        uint64_t fneed;
        if (!ck_mul(g->cols, 4, &fneed) || fneed > UINT64_MAX - 4 || g->row_bytes > UINT64_MAX - 4 ||
            grow((void **)&c.fbuf, &c.fcap, fneed + 4) || grow((void **)&c.obuf, &c.ocap, g->row_bytes + 4)) {
            s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", container_path);
            break;
        }
        uint64_t pos = hdr.len + g->offset;
        for (uint64_t r = 0; r < g->rows && s == MIXQ_OK; r++) {
            s = make_row(&c, g, r, sec, err);
            if (s == MIXQ_OK) s = afile_pwrite(&out, c.obuf, (size_t)g->row_bytes, pos, err);
            pos += g->row_bytes;
        }
        uint64_t padded = (g->nbytes + MXG_ALIGN - 1) / MXG_ALIGN * MXG_ALIGN;
        if (s == MIXQ_OK && padded > g->nbytes)
            s = afile_pwrite(&out, zeros, (size_t)(padded - g->nbytes), pos, err);
        if (s == MIXQ_OK && opts->progress) opts->progress(opts->progress_ctx, i + 1, c.n, g->name);
    }
    if (s == MIXQ_OK && opts->cancel && *opts->cancel)
        s = mx_err(err, MIXQ_E_CANCELLED, "%s: export interrupted", container_path);
    if (s == MIXQ_OK) s = afile_commit(&out, err);
    else if (opened) afile_abort(&out);
    free(kv.p);
    free(hdr.p);
    gv_free(&vocab);
    free(c.ts);
    free(c.fbuf);
    free(c.obuf);
    mixq_close(c.f);
    return s;
}
