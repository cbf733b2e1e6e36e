/*
 * simd_neon_cb.c - NEON dequantizers of the codebook types (FORMAT.md
 * §4.14), bit-identical to kernel_cb.c: x^ = fl(fl(d * c) * L[q]) with the
 * same two products.  The int8 levels are looked up with vqtbl1q_s8: cb4_dq
 * on the nibbles of 16 bytes, cb3_dq and cb2_dq on indices shifted out of
 * 32-bit words.  A row's last, partial group and groups of a non-finite
 * super scale take the scalar rules.
 */
#include <arm_neon.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernels.h"
#include "kernels/simd.h"

static uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v; /* little-endian host */
}

/* The scale of group j (d * c, exact); *finite false for a non-finite super scale. */
static float group_scale(const qtype_desc *qt, const uint8_t *scales, const uint8_t *sups, const size_t soff[],
                         size_t j, size_t g0, bool *finite)
{
    uint16_t dh = mx_ld16le(sups + 2 * (g0 / MX_DQ_SUPER));
    *finite = mx_f16_bits_finite(dh);
    int c = (int)mx_planes_get(scales, qt->scale_planes, soff, j) - 32;
    return mx_f16_to_f32(dh) * (float)c;
}

static void tail_group(const qtype_desc *qt, const uint8_t *codes, const size_t coff[], const int8_t *cb, size_t g0,
                       size_t gl, float s, bool finite, float *out)
{
    if (!finite) {
        mx_fill_canonical_nan(out + g0, gl);
        return;
    }
    for (size_t i = 0; i < gl; i++) out[g0 + i] = s * (float)cb[mx_planes_get(codes, qt->code_planes, coff, g0 + i)];
}

/* 16 looked-up int8 levels times s into o[0..16). */
static void store16(int8x16_t l, float s, float *o)
{
    int16x8_t a = vmovl_s8(vget_low_s8(l)), b = vmovl_s8(vget_high_s8(l));
    vst1q_f32(o, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(a))), s));
    vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(a))), s));
    vst1q_f32(o + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(b))), s));
    vst1q_f32(o + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(b))), s));
}

static void neon_cb_dequantize_row(mixq_qtype id, mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const qtype_desc *qt = &mx_qtypes[id];
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES], *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *sups = in.sec[MIXQ_SEC_SUPER_SCALES];
    const int8_t *cb = (const int8_t *)in.sec[MIXQ_SEC_CODEBOOK];
    unsigned G = mx_dq_group(group), K = qt->codebook_levels;
    size_t ng = (n + G - 1) / G, coff[QT_MAX_PLANES], soff[QT_MAX_PLANES];
    mx_planes_offsets(qt->code_planes, n, coff);
    mx_planes_offsets(qt->scale_planes, ng, soff);
    int8_t lv[16] = {0};
    memcpy(lv, cb, K);
    const int8x16_t tab = vld1q_s8(lv);
    const int32x4_t sh2[4] = {{0, -2, -4, -6}, {-8, -10, -12, -14}, {-16, -18, -20, -22}, {-24, -26, -28, -30}};
    const int32x4_t sh1[4] = {{0, -1, -2, -3}, {-4, -5, -6, -7}, {-8, -9, -10, -11}, {-12, -13, -14, -15}};
    for (size_t j = 0, g0 = 0; g0 < n; j++, g0 += G) {
        size_t gl = n - g0 < G ? n - g0 : G;
        bool finite;
        float s = group_scale(qt, scales, sups, soff, j, g0, &finite);
        if (gl % 16u != 0 || !finite) {
            tail_group(qt, codes, coff, cb, g0, gl, s, finite, out);
            continue;
        }
        for (size_t k = 0; k < gl; k += 16) {
            size_t e = g0 + k;
            uint8x16_t idx;
            if (K == 16) { /* 8 bytes, low nibble first */
                uint8x8_t b = vld1_u8(codes + e / 2);
                uint8x8x2_t z = vzip_u8(vand_u8(b, vdup_n_u8(0x0F)), vshr_n_u8(b, 4));
                idx = vcombine_u8(z.val[0], z.val[1]);
            } else {
                uint32x4_t u0 = vdupq_n_u32(ld32(codes + coff[0] + e / 4)), q[4];
                for (int h = 0; h < 4; h++) q[h] = vandq_u32(vshlq_u32(u0, sh2[h]), vdupq_n_u32(3));
                if (K == 8) {
                    const uint8_t *p1 = codes + coff[1] + e / 8;
                    uint32x4_t u1 = vdupq_n_u32(p1[0] | (uint32_t)p1[1] << 8);
                    for (int h = 0; h < 4; h++)
                        q[h] = vorrq_u32(q[h], vshlq_n_u32(vandq_u32(vshlq_u32(u1, sh1[h]), vdupq_n_u32(1)), 2));
                }
                uint16x8_t a = vcombine_u16(vmovn_u32(q[0]), vmovn_u32(q[1]));
                uint16x8_t b = vcombine_u16(vmovn_u32(q[2]), vmovn_u32(q[3]));
                idx = vcombine_u8(vmovn_u16(a), vmovn_u16(b));
            }
            store16(vqtbl1q_s8(tab, idx), s, out + e);
        }
    }
}

static void neon_cb4_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    neon_cb_dequantize_row(MIXQ_QT_CB4_DQ, in, n, group, out);
}

static void neon_cb3_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    neon_cb_dequantize_row(MIXQ_QT_CB3_DQ, in, n, group, out);
}

static void neon_cb2_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    neon_cb_dequantize_row(MIXQ_QT_CB2_DQ, in, n, group, out);
}

void mx_simd_fill_neon_cb(mx_kernel_set *set)
{
    set->dequantize_row[MIXQ_QT_CB4_DQ] = neon_cb4_dq_dequantize_row;
    set->dequantize_row[MIXQ_QT_CB3_DQ] = neon_cb3_dq_dequantize_row;
    set->dequantize_row[MIXQ_QT_CB2_DQ] = neon_cb2_dq_dequantize_row;
}
