/*
 * simd_avx2_cb.c - AVX2 dequantizers of the codebook types (FORMAT.md §4.14),
 * bit-identical to kernel_cb.c: x^ = fl(fl(d * c) * L[q]) with the same two
 * products.  cb4_dq looks its 16 int8 levels up with pshufb on the nibbles;
 * cb3_dq and cb2_dq (8 and 4 levels) shift the indices out of 32-bit words
 * and look the levels up as floats with vpermps.  A row's last, partial
 * group and groups of a non-finite super scale take the scalar rules.
 */
#include <immintrin.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernels.h"
#include "kernels/simd.h"

static uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v; /* little-endian host (x86) */
}

/* The scale of group j (d * c, exact) or NaN for a non-finite super scale. */
static float group_scale(const qtype_desc *qt, const uint8_t *scales, const uint8_t *sups, const size_t soff[],
                         size_t j, size_t g0, bool *finite)
{
    uint16_t dh = mx_ld16le(sups + 2 * (g0 / MX_DQ_SUPER));
    *finite = mx_f16_bits_finite(dh);
    int c = (int)mx_planes_get(scales, qt->scale_planes, soff, j) - 32;
    return mx_f16_to_f32(dh) * (float)c;
}

/* Elements of a partial group (or one of a non-finite scale) as the scalar kernel computes them. */
static void tail_group(const qtype_desc *qt, const uint8_t *codes, const size_t coff[], const int8_t *cb, size_t g0,
                       size_t gl, float s, bool finite, float *out)
{
    if (!finite) {
        mx_fill_canonical_nan(out + g0, gl);
        return;
    }
    for (size_t i = 0; i < gl; i++) out[g0 + i] = s * (float)cb[mx_planes_get(codes, qt->code_planes, coff, g0 + i)];
}

static void avx2_cb4_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const qtype_desc *qt = &mx_qtypes[MIXQ_QT_CB4_DQ];
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES], *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *sups = in.sec[MIXQ_SEC_SUPER_SCALES];
    const int8_t *cb = (const int8_t *)in.sec[MIXQ_SEC_CODEBOOK];
    unsigned G = mx_dq_group(group);
    size_t ng = (n + G - 1) / G, coff[QT_MAX_PLANES], soff[QT_MAX_PLANES];
    mx_planes_offsets(qt->code_planes, n, coff);
    mx_planes_offsets(qt->scale_planes, ng, soff);
    const __m128i tab = _mm_loadu_si128((const __m128i *)(const void *)cb), nib = _mm_set1_epi8(0x0F);
    for (size_t j = 0, g0 = 0; g0 < n; j++, g0 += G) {
        size_t gl = n - g0 < G ? n - g0 : G;
        bool finite;
        float s = group_scale(qt, scales, sups, soff, j, g0, &finite);
        if (gl % 32u != 0 || !finite) {
            tail_group(qt, codes, coff, cb, g0, gl, s, finite, out);
            continue;
        }
        const __m256 vs = _mm256_set1_ps(s);
        for (size_t k = 0; k < gl; k += 32) {
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(codes + (g0 + k) / 2));
            __m128i lo = _mm_and_si128(b, nib), hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib);
            __m128i l0 = _mm_shuffle_epi8(tab, _mm_unpacklo_epi8(lo, hi)); /* elements 0..15 */
            __m128i l1 = _mm_shuffle_epi8(tab, _mm_unpackhi_epi8(lo, hi)); /* 16..31 */
            float *o = out + g0 + k;
            _mm256_storeu_ps(o, _mm256_mul_ps(vs, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(l0))));
            _mm256_storeu_ps(o + 8, _mm256_mul_ps(vs, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(l0, 8)))));
            _mm256_storeu_ps(o + 16, _mm256_mul_ps(vs, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(l1))));
            _mm256_storeu_ps(o + 24, _mm256_mul_ps(vs, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(l1, 8)))));
        }
    }
}

/* cb3_dq (planes 2 + 1) and cb2_dq (plane 2): groups of 16, indices from 32-bit words, levels by vpermps. */
static void avx2_cb_small_dequantize_row(mixq_qtype id, mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const qtype_desc *qt = &mx_qtypes[id];
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES], *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *sups = in.sec[MIXQ_SEC_SUPER_SCALES];
    const int8_t *cb = (const int8_t *)in.sec[MIXQ_SEC_CODEBOOK];
    unsigned G = mx_dq_group(group), K = qt->codebook_levels;
    size_t ng = (n + G - 1) / G, coff[QT_MAX_PLANES], soff[QT_MAX_PLANES];
    bool three = qt->code_planes[1] != 0;
    mx_planes_offsets(qt->code_planes, n, coff);
    mx_planes_offsets(qt->scale_planes, ng, soff);
    float lv[8] = {0};
    for (unsigned k = 0; k < K; k++) lv[k] = (float)cb[k];
    const __m256 tab = _mm256_loadu_ps(lv);
    const __m256i sh2lo = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), sh2hi = _mm256_setr_epi32(16, 18, 20, 22, 24, 26, 28, 30);
    const __m256i sh1lo = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), sh1hi = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    const __m256i m3 = _mm256_set1_epi32(3), m1 = _mm256_set1_epi32(1);
    for (size_t j = 0, g0 = 0; g0 < n; j++, g0 += G) {
        size_t gl = n - g0 < G ? n - g0 : G;
        bool finite;
        float s = group_scale(qt, scales, sups, soff, j, g0, &finite);
        if (gl % 16u != 0 || !finite) {
            tail_group(qt, codes, coff, cb, g0, gl, s, finite, out);
            continue;
        }
        const __m256 vs = _mm256_set1_ps(s);
        for (size_t k = 0; k < gl; k += 16) {
            size_t e = g0 + k;
            __m256i u0 = _mm256_set1_epi32((int)ld32(codes + coff[0] + e / 4));
            __m256i i0 = _mm256_and_si256(_mm256_srlv_epi32(u0, sh2lo), m3);
            __m256i i1 = _mm256_and_si256(_mm256_srlv_epi32(u0, sh2hi), m3);
            if (three) {
                const uint8_t *p1 = codes + coff[1] + e / 8;
                __m256i u1 = _mm256_set1_epi32((int)(p1[0] | (unsigned)p1[1] << 8));
                i0 = _mm256_or_si256(i0, _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(u1, sh1lo), m1), 2));
                i1 = _mm256_or_si256(i1, _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(u1, sh1hi), m1), 2));
            }
            _mm256_storeu_ps(out + e, _mm256_mul_ps(vs, _mm256_permutevar8x32_ps(tab, i0)));
            _mm256_storeu_ps(out + e + 8, _mm256_mul_ps(vs, _mm256_permutevar8x32_ps(tab, i1)));
        }
    }
}

static void avx2_cb3_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    avx2_cb_small_dequantize_row(MIXQ_QT_CB3_DQ, in, n, group, out);
}

static void avx2_cb2_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    avx2_cb_small_dequantize_row(MIXQ_QT_CB2_DQ, in, n, group, out);
}

void mx_simd_fill_avx2_cb(mx_kernel_set *set)
{
    set->dequantize_row[MIXQ_QT_CB4_DQ] = avx2_cb4_dq_dequantize_row;
    set->dequantize_row[MIXQ_QT_CB3_DQ] = avx2_cb3_dq_dequantize_row;
    set->dequantize_row[MIXQ_QT_CB2_DQ] = avx2_cb2_dq_dequantize_row;
}
