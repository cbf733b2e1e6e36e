/*
 * simd_neon_nl4.c - NEON dequantizers of the lookup-table types nl4 and
 * nl4_dq (FORMAT.md §4.12, §4.13; scalar reference kernel_nl4.c).  The 16
 * level bytes sit in one register; vqtbl1q_s8 turns 16 nibble indices into
 * 16 levels at a time, which are widened to int32, converted (exactly) and
 * multiplied by the group's scale: the same single exact product per
 * element as the reference, so the bits are identical.  A group whose
 * stored scale (nl4) or super-block scale (nl4_dq) is not finite gets the
 * canonical NaN first (kernels.h).  Quantization stays the scalar kernel.
 */
#include <arm_neon.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernel_nl4.h"
#include "kernels/kernels.h"
#include "kernels/simd.h"

/* out[0..16) = levels of the 16 indices in q, times vs. */
static inline void lv16(int8x16_t tbl, uint8x16_t q, float32x4_t vs, float *out)
{
    int8x16_t l = vqtbl1q_s8(tbl, q);
    int16x8_t a = vmovl_s8(vget_low_s8(l)), b = vmovl_s8(vget_high_s8(l));
    vst1q_f32(out, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(a))), vs));
    vst1q_f32(out + 4, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(a))), vs));
    vst1q_f32(out + 8, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(b))), vs));
    vst1q_f32(out + 12, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(b))), vs));
}

/* out[i] = L[code of element start + i] * s for i < len: 16 elements from 8 code bytes at a time, then scalar. */
static inline void nl4_group(const uint8_t *codes, size_t start, size_t len, float s, int8x16_t tbl, float *out)
{
    const uint8x8_t low4 = vdup_n_u8(0x0F);
    const float32x4_t vs = vdupq_n_f32(s);
    size_t i = 0;
    if ((start & 1u) == 0) {
        const uint8_t *cb = codes + start / 2u;
        for (; i + 16 <= len; i += 16, cb += 8) {
            uint8x8_t b = vld1_u8(cb);
            uint8x8x2_t z = vzip_u8(vand_u8(b, low4), vshr_n_u8(b, 4)); /* element order */
            lv16(tbl, vcombine_u8(z.val[0], z.val[1]), vs, out + i);
        }
    }
    for (; i < len; i++) {
        size_t k = start + i;
        unsigned q = (codes[k / 2u] >> (4u * (k % 2u))) & 15u;
        out[i] = (float)mx_nl4_level[q] * s;
    }
}

static void neon_nl4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const int8x16_t tbl = vld1q_s8(mx_nl4_level);
    size_t g = group != 0 ? group : n;

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t h = mx_ld16le(scales + 2 * j);
        if (!mx_f16_bits_finite(h)) {
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        nl4_group(codes, start, len, mx_f16_to_f32(h), tbl, out + start);
    }
}

static void neon_nl4_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const qtype_desc *qt = &mx_qtypes[MIXQ_QT_NL4_DQ];
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *sups = in.sec[MIXQ_SEC_SUPER_SCALES];
    const unsigned G = 32u;
    const int8x16_t tbl = vld1q_s8(mx_nl4_level);
    size_t ng = (n + G - 1) / G, soff[QT_MAX_PLANES];

    (void)group; /* always 32 */
    mx_planes_offsets(qt->scale_planes, ng, soff);
    for (size_t j = 0, g0 = 0; g0 < n; j++, g0 += G) {
        size_t gl = n - g0 < G ? n - g0 : G;
        uint16_t dh = mx_ld16le(sups + 2 * (g0 / MX_DQ_SUPER));
        if (!mx_f16_bits_finite(dh)) {
            mx_fill_canonical_nan(out + g0, gl);
            continue;
        }
        int c = (int)mx_planes_get(scales, qt->scale_planes, soff, j) - (int)qt->scale_code_bias;
        nl4_group(codes, g0, gl, mx_f16_to_f32(dh) * (float)c, tbl, out + g0);
    }
}

/* Installed only while the table still holds the scalar kernels these mirror (as mx_simd_fill_neon). */
void mx_simd_fill_neon_nl4(mx_kernel_set *set)
{
    if (mx_qtypes[MIXQ_QT_NL4].dequantize_row == kernel_nl4_dequantize_row &&
        set->dequantize_row[MIXQ_QT_NL4] == kernel_nl4_dequantize_row && mx_qtypes[MIXQ_QT_NL4].code_planes[0] == 4)
        set->dequantize_row[MIXQ_QT_NL4] = neon_nl4_dequantize_row;
    if (mx_qtypes[MIXQ_QT_NL4_DQ].dequantize_row == kernel_nl4_dq_dequantize_row &&
        set->dequantize_row[MIXQ_QT_NL4_DQ] == kernel_nl4_dq_dequantize_row &&
        mx_qtypes[MIXQ_QT_NL4_DQ].code_planes[0] == 4)
        set->dequantize_row[MIXQ_QT_NL4_DQ] = neon_nl4_dq_dequantize_row;
}
