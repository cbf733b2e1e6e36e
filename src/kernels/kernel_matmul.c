/*
 * kernel_matmul.c - the scalar reference matmul row kernels and the chunk
 * decoder every path shares (matmul_kernels.h).
 */
#include <string.h>

#include "kernels/kernel_fp8.h"
#include "kernels/kernels.h"
#include "kernels/matmul_kernels.h"

/* The DQ kernels' group rule (kernel_dq.c): an invalid group is read as 16. */
static unsigned dq_group(unsigned group)
{
    return group != 0 && group <= 256u && 256u % group == 0 ? group : 16u;
}

/*
 * The part [first, first + cnt) of a bit-plane field of `count` fields
 * (kernels.h mx_planes_*), as a field of cnt fields on its own: with one
 * plane just the shifted pointer, else every plane's part copied into
 * scratch at the offsets of a cnt-field layout.  first * w must be a
 * multiple of 8 for every plane width w (it is for chunks starting at
 * multiples of 256, matmul_kernels.h).
 */
static const uint8_t *field_part(const uint8_t *base, const uint8_t planes[QT_MAX_PLANES], size_t count,
                                 size_t first, size_t cnt, uint8_t *scratch)
{
    size_t off[QT_MAX_PLANES], soff[QT_MAX_PLANES];
    if (planes[1] == 0)
        return base + first * planes[0] / 8u;
    mx_planes_offsets(planes, count, off);
    mx_planes_offsets(planes, cnt, soff);
    for (int p = 0; p < QT_MAX_PLANES && planes[p] != 0; p++)
        memcpy(scratch + soff[p], base + off[p] + first * planes[p] / 8u, (cnt * planes[p] + 7u) / 8u);
    return scratch;
}

/* A uint16_t view of 2-byte elements at p (copied into tmp if p is not 2-aligned, e.g. in a safetensors file). */
static const uint16_t *u16_view(const uint8_t *p, size_t len, uint16_t *tmp)
{
    if ((uintptr_t)p % 2u == 0)
        return (const uint16_t *)(const void *)p;
    memcpy(tmp, p, 2 * len);
    return tmp;
}

void mx_mm_decode(const mx_mm_path *P, mixq_qtype t, mx_crowptrs w, size_t n, unsigned group, size_t k0,
                  size_t len, float *out)
{
    const qtype_desc *qt = &mx_qtypes[t];
    uint16_t tmp[MX_MM_CHUNK];
    uint8_t cbuf[MX_MM_CHUNK + 8], sbuf[64], mbuf[64];
    mx_crowptrs c = {{0}};
    const uint8_t *data = w.sec[MIXQ_SEC_DATA];

    switch (t) {
    case MIXQ_QT_F32:
        memcpy(out, data + 4 * k0, 4 * len);
        return;
    case MIXQ_QT_F16:
        P->f16_to_f32(u16_view(data + 2 * k0, len, tmp), len, out);
        return;
    case MIXQ_QT_BF16:
        P->bf16_to_f32(u16_view(data + 2 * k0, len, tmp), len, out);
        return;
    default:
        break;
    }

    /* quantized: the chunk as a row of its own (sections shifted, multi-plane fields repacked) */
    size_t G = qt->super_block != 0 ? dq_group(group) : (group != 0 ? group : n);
    size_t ng = (n + G - 1) / G, g0 = k0 / G, gc = (len + G - 1) / G;
    unsigned pass_group = group;
    if (qt->super_block == 0 && G > len)
        pass_group = (unsigned)len; /* the chunk lies inside one group (per-row group, or the row's last chunk) */
    c.sec[MIXQ_SEC_CODES] = field_part(w.sec[MIXQ_SEC_CODES], qt->code_planes, n, k0, len, cbuf);
    c.sec[MIXQ_SEC_SCALES] = field_part(w.sec[MIXQ_SEC_SCALES], qt->scale_planes, ng, g0, gc, sbuf);
    if (!qt->symmetric)
        c.sec[MIXQ_SEC_MINS] = field_part(w.sec[MIXQ_SEC_MINS], qt->scale_planes, ng, g0, gc, mbuf);
    if (qt->super_block != 0) {
        size_t b = k0 / qt->super_block;
        c.sec[MIXQ_SEC_SUPER_SCALES] = w.sec[MIXQ_SEC_SUPER_SCALES] + 2 * b;
        if (!qt->symmetric)
            c.sec[MIXQ_SEC_SUPER_MINS] = w.sec[MIXQ_SEC_SUPER_MINS] + 2 * b;
    }
    c.sec[MIXQ_SEC_CODEBOOK] = w.sec[MIXQ_SEC_CODEBOOK]; /* codebook types: the tensor's levels (else NULL) */
    P->dequantize_row[t](c, len, pass_group, out);
}

/* Fields first..first+cnt-1 of a bit-plane field (mx_planes_get, one plane at a time). */
static void fields_run(const uint8_t *base, const uint8_t planes[QT_MAX_PLANES], const size_t off[QT_MAX_PLANES],
                       size_t first, size_t cnt, int *out)
{
    unsigned shift = 0;
    for (size_t i = 0; i < cnt; i++)
        out[i] = 0;
    for (int p = 0; p < QT_MAX_PLANES && planes[p] != 0; p++) {
        unsigned w = planes[p], mask = (1u << w) - 1u;
        const uint8_t *pb = base + off[p];
        for (size_t i = 0; i < cnt; i++) {
            size_t bit = (first + i) * w;
            out[i] |= (int)(((unsigned)(pb[bit / 8u] >> (bit % 8u)) & mask) << shift);
        }
        shift += w;
    }
}

unsigned mx_mm_chunk_params(const qtype_desc *qt, mx_crowptrs w, size_t n, unsigned group, size_t k0, float *sg,
                            float *mg)
{
    const uint8_t *sc = w.sec[MIXQ_SEC_SCALES], *mn = w.sec[MIXQ_SEC_MINS];
    const float qnan = mx_canonical_nan();
    bool dq = qt->super_block != 0;
    size_t G = dq ? dq_group(group) : (group != 0 ? group : n);
    size_t per = G >= MX_MM_CHUNK ? MX_MM_CHUNK / 8u : G / 8u, cnt = MX_MM_CHUNK / 8u / per, g = k0 / G;
    unsigned sh = 0;
    while ((1u << sh) < per)
        sh++;
    if (dq) {
        size_t b = k0 / qt->super_block, ng = (n + G - 1) / G, soff[QT_MAX_PLANES];
        uint16_t dh = mx_ld16le(w.sec[MIXQ_SEC_SUPER_SCALES] + 2 * b);
        uint16_t dmh = qt->symmetric ? 0 : mx_ld16le(w.sec[MIXQ_SEC_SUPER_MINS] + 2 * b);
        int cbias = (int)qt->scale_code_bias;
        int scode[MX_MM_CHUNK / 8u], mcode[MX_MM_CHUNK / 8u];
        bool ok = mx_f16_bits_finite(dh) && mx_f16_bits_finite(dmh);
        float d = mx_f16_to_f32(dh), dm = mx_f16_to_f32(dmh);
        mx_planes_offsets(qt->scale_planes, ng, soff);
        fields_run(sc, qt->scale_planes, soff, g, cnt, scode);
        if (!qt->symmetric)
            fields_run(mn, qt->scale_planes, soff, g, cnt, mcode);
        for (size_t j = 0; j < cnt; j++) {
            sg[j] = ok ? d * (float)(scode[j] - cbias) : qnan;
            mg[j] = ok ? (qt->symmetric ? 0.0f : dm * (float)mcode[j]) : qnan;
        }
        return sh;
    }
    for (size_t j = 0; j < cnt; j++) {
        float s, m = 0.0f;
        bool ok;
        if (qt->scale_kind == QS_F32) {
            s = mx_fp8_ld_f32le(sc + 4 * (g + j));
            ok = mx_f32_finite(s);
        } else {
            uint16_t h = mx_ld16le(sc + 2 * (g + j)), hm = qt->symmetric ? 0 : mx_ld16le(mn + 2 * (g + j));
            s = mx_f16_to_f32(h);
            m = mx_f16_to_f32(hm);
            ok = mx_f16_bits_finite(h) && mx_f16_bits_finite(hm);
        }
        sg[j] = ok ? s : qnan;
        mg[j] = ok ? m : qnan;
    }
    return sh;
}

/* acc->d[0] += sum of (double)w[i] * (double)x[i] in index order (each product exact). */
static void scalar_acc_chunk(mx_mm_acc *acc, const float *w, const float *x, size_t len)
{
    double s = acc->d[0];
    for (size_t i = 0; i < len; i++)
        s += (double)w[i] * (double)x[i];
    acc->d[0] = s;
}

static float scalar_acc_result(const mx_mm_acc *acc) { return (float)acc->d[0]; }

static const mx_dequantize_row_fn scalar_deq[MIXQ_QT_COUNT] = {
    [MIXQ_QT_INT8] = kernel_int8_dequantize_row,
    [MIXQ_QT_INT4] = kernel_int4_dequantize_row,
    [MIXQ_QT_INT4S] = kernel_int4s_dequantize_row,
    [MIXQ_QT_INT2] = kernel_int2_dequantize_row,
    [MIXQ_QT_FP8_E4M3] = kernel_fp8_e4m3_dequantize_row,
    [MIXQ_QT_FP8_E5M2] = kernel_fp8_e5m2_dequantize_row,
    [MIXQ_QT_INT4_DQ] = kernel_int4_dq_dequantize_row,
    [MIXQ_QT_INT2_DQ] = kernel_int2_dq_dequantize_row,
    [MIXQ_QT_INT3_DQ] = kernel_int3_dq_dequantize_row,
    [MIXQ_QT_INT6_DQ] = kernel_int6_dq_dequantize_row,
    [MIXQ_QT_NL4] = kernel_nl4_dequantize_row,
    [MIXQ_QT_NL4_DQ] = kernel_nl4_dq_dequantize_row,
    [MIXQ_QT_CB4_DQ] = kernel_cb4_dq_dequantize_row,
    [MIXQ_QT_CB3_DQ] = kernel_cb3_dq_dequantize_row,
    [MIXQ_QT_CB2_DQ] = kernel_cb2_dq_dequantize_row,
};

static const mx_mm_path scalar_path = {
    .dequantize_row = scalar_deq,
    .f16_to_f32 = mx_f16_to_f32_array,
    .bf16_to_f32 = mx_bf16_to_f32_array,
    .acc_chunk = scalar_acc_chunk,
    .acc_result = scalar_acc_result,
};

#define SCALAR_ROWS(NAME, ID) MX_MM_ROWS_FN(scalar, scalar_path, NAME, ID)
MX_MM_TYPES(SCALAR_ROWS)
#undef SCALAR_ROWS

#define SCALAR_ENTRY(NAME, ID) [ID] = scalar_dot_rows_##NAME,
const mx_dot_rows_fn mx_dot_rows_scalar[MIXQ_QT_COUNT] = {MX_MM_TYPES(SCALAR_ENTRY)};
#undef SCALAR_ENTRY
