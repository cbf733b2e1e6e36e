/*
 * simd_avx2_nl4.c - AVX2 dequantizers of the lookup-table types nl4 and
 * nl4_dq (FORMAT.md §4.12, §4.13; scalar reference kernel_nl4.c).  The 16
 * level bytes sit in one register; pshufb turns 16 nibble indices into 16
 * levels at a time, which are widened to int32, converted (exactly) and
 * multiplied by the group's scale: the same single exact product per
 * element as the reference, so the bits are identical.  A group whose
 * stored scale (nl4) or super-block scale (nl4_dq) is not finite gets the
 * canonical NaN first (kernels.h).  Quantization stays the scalar kernel
 * (its search is scalar code; the element rule is shared through
 * kernel_nl4.h).
 */
#include <immintrin.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernel_nl4.h"
#include "kernels/kernels.h"
#include "kernels/simd.h"

/* The level table as 16 signed bytes, for pshufb. */
static inline __m128i level_bytes(void)
{
    return _mm_loadu_si128((const __m128i *)(const void *)mx_nl4_level);
}

/* Levels of the 8 indices in the low 8 bytes of q, as floats. */
static inline __m256 lv8(__m128i tbl, __m128i q)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_shuffle_epi8(tbl, q)));
}

/*
 * out[i] = L[code of element start + i] * s for i < len: 32 elements from 16
 * code bytes at a time, then 8 from 4, then the reference's loop body.
 */
static inline void nl4_group(const uint8_t *codes, size_t start, size_t len, float s, __m128i tbl, float *out)
{
    const __m128i low4 = _mm_set1_epi8(0x0F);
    const __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    if ((start & 1u) == 0) {
        const uint8_t *cb = codes + start / 2u;
        for (; i + 32 <= len; i += 32, cb += 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)cb);
            __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
            __m128i q0 = _mm_unpacklo_epi8(lo, hi), q1 = _mm_unpackhi_epi8(lo, hi);
            _mm256_storeu_ps(out + i, _mm256_mul_ps(lv8(tbl, q0), vs));
            _mm256_storeu_ps(out + i + 8, _mm256_mul_ps(lv8(tbl, _mm_unpackhi_epi64(q0, q0)), vs));
            _mm256_storeu_ps(out + i + 16, _mm256_mul_ps(lv8(tbl, q1), vs));
            _mm256_storeu_ps(out + i + 24, _mm256_mul_ps(lv8(tbl, _mm_unpackhi_epi64(q1, q1)), vs));
        }
        for (; i + 8 <= len; i += 8, cb += 4) {
            int v;
            memcpy(&v, cb, 4);
            __m128i b = _mm_cvtsi32_si128(v);
            __m128i q = _mm_unpacklo_epi8(_mm_and_si128(b, low4), _mm_and_si128(_mm_srli_epi16(b, 4), low4));
            _mm256_storeu_ps(out + i, _mm256_mul_ps(lv8(tbl, q), vs));
        }
    }
    for (; i < len; i++) {
        size_t k = start + i;
        unsigned q = (codes[k / 2u] >> (4u * (k % 2u))) & 15u;
        out[i] = (float)mx_nl4_level[q] * s;
    }
}

static void avx2_nl4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const __m128i tbl = level_bytes();
    size_t g = group != 0 ? group : n;

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t h = mx_ld16le(scales + 2 * j);
        if (!mx_f16_bits_finite(h)) {
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        nl4_group(codes, start, len, _cvtsh_ss(h), tbl, out + start);
    }
}

static void avx2_nl4_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const qtype_desc *qt = &mx_qtypes[MIXQ_QT_NL4_DQ];
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *sups = in.sec[MIXQ_SEC_SUPER_SCALES];
    const unsigned G = 32u;
    const __m128i tbl = level_bytes();
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
        nl4_group(codes, g0, gl, _cvtsh_ss(dh) * (float)c, tbl, out + g0);
    }
}

/* Installed only while the table still holds the scalar kernels these mirror (as mx_simd_fill_avx2). */
void mx_simd_fill_avx2_nl4(mx_kernel_set *set)
{
    if (mx_qtypes[MIXQ_QT_NL4].dequantize_row == kernel_nl4_dequantize_row &&
        set->dequantize_row[MIXQ_QT_NL4] == kernel_nl4_dequantize_row && mx_qtypes[MIXQ_QT_NL4].code_planes[0] == 4)
        set->dequantize_row[MIXQ_QT_NL4] = avx2_nl4_dequantize_row;
    if (mx_qtypes[MIXQ_QT_NL4_DQ].dequantize_row == kernel_nl4_dq_dequantize_row &&
        set->dequantize_row[MIXQ_QT_NL4_DQ] == kernel_nl4_dq_dequantize_row &&
        mx_qtypes[MIXQ_QT_NL4_DQ].code_planes[0] == 4)
        set->dequantize_row[MIXQ_QT_NL4_DQ] = avx2_nl4_dq_dequantize_row;
}
