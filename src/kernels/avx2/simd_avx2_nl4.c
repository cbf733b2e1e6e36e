/*
 * simd_avx2_nl4.c - AVX2 dequantizers of the lookup-table types nl4 and
 * nl4_dq (FORMAT.md §4.12, §4.13; scalar reference kernel_nl4.c).  The 16
 * level bytes sit in one register; pshufb turns 16 nibble indices into 16
 * levels at a time, which are widened to int32, converted (exactly) and
 * multiplied by the group's scale: the same single exact product per
 * element as the reference, so the bits are identical.  A group whose
 * stored scale (nl4) or super-block scale (nl4_dq) is not finite gets the
 * canonical NaN first (kernels.h).  Quantization runs the scalar drivers
 * of kernel_nl4.c with the two search passes vectorized here (kernel_nl4.h
 * mx_nl4_ops): the same binary32 operations per element, lane j of each
 * accumulator holding the reference's partial sum j (elements j mod 8),
 * combined by mx_lanes_sum, so the sums and hence the bytes are the same.
 */
#include <immintrin.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernel_nl4.h"
#include "kernels/kernels.h"
#include "kernels/quant_search.h"
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

/* The level index of each lane of t (kernel_nl4.h mx_nl4_index: the count of midpoints below t; NaN -> 0). */
static inline __m256i index8(__m256 t)
{
    __m256i q = _mm256_setzero_si256();
    for (int i = 0; i < MX_NL4_LEVELS - 1; i++) /* a true compare is -1: subtract it */
        q = _mm256_sub_epi32(q, _mm256_castps_si256(_mm256_cmp_ps(t, _mm256_set1_ps(mx_nl4_mid[i]), _CMP_GT_OQ)));
    return q;
}

/* The levels of indices q as floats: two 8-entry permutes and a blend. */
static inline __m256 level8(__m256i q)
{
    const __m256 l0 = _mm256_setr_ps(mx_nl4_level[0], mx_nl4_level[1], mx_nl4_level[2], mx_nl4_level[3],
                                     mx_nl4_level[4], mx_nl4_level[5], mx_nl4_level[6], mx_nl4_level[7]);
    const __m256 l1 = _mm256_setr_ps(mx_nl4_level[8], mx_nl4_level[9], mx_nl4_level[10], mx_nl4_level[11],
                                     mx_nl4_level[12], mx_nl4_level[13], mx_nl4_level[14], mx_nl4_level[15]);
    __m256 hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(q, _mm256_set1_epi32(7)));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(l0, q), _mm256_permutevar8x32_ps(l1, q), hi);
}

/*
 * Elements i..i+7 of x and w (w NULL: ones), the lanes past n zero (their
 * terms are then +0, which leaves a lane sum unchanged: it is never -0).
 */
static inline void load8(const float *x, const float *w, size_t n, size_t i, __m256 *xv, __m256 *wv)
{
    if (i + 8 <= n) {
        *xv = _mm256_loadu_ps(x + i);
        *wv = w ? _mm256_loadu_ps(w + i) : _mm256_set1_ps(1.0f);
    } else {
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        *xv = _mm256_maskload_ps(x + i, m);
        *wv = w ? _mm256_maskload_ps(w + i, m) : _mm256_and_ps(_mm256_set1_ps(1.0f), _mm256_castsi256_ps(m));
    }
}

static inline float lanes(__m256 v)
{
    _Alignas(32) float a[MX_LANES];
    _mm256_store_ps(a, v);
    return mx_lanes_sum(a);
}

/* mx_nl4_ops.err: t = fl(x / s) (0 if s == 0), e = x - fl(L s), sum fl(w fl(e e)). */
static float v_nl4_err(const float *x, const float *w, size_t n, float s)
{
    const __m256 vs = _mm256_set1_ps(s);
    __m256 acc = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 8) {
        __m256 xv, wv;
        load8(x, w, n, i, &xv, &wv);
        __m256 t = s != 0.0f ? _mm256_div_ps(xv, vs) : _mm256_setzero_ps();
        __m256 e = _mm256_sub_ps(xv, _mm256_mul_ps(level8(index8(t)), vs));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(wv, _mm256_mul_ps(e, e)));
    }
    return lanes(acc);
}

/* mx_nl4_ops.pass: q = index of fl(x id), sxq = sum fl(fl(w x) L), sqq = sum fl(fl(w L) L). */
static void v_nl4_pass(const float *x, const float *w, size_t n, float id, float *sxq, float *sqq)
{
    const __m256 vid = _mm256_set1_ps(id);
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 8) {
        __m256 xv, wv;
        load8(x, w, n, i, &xv, &wv);
        __m256 l = level8(index8(_mm256_mul_ps(xv, vid)));
        a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_mul_ps(wv, xv), l));
        b = _mm256_add_ps(b, _mm256_mul_ps(_mm256_mul_ps(wv, l), l));
    }
    *sxq = lanes(a);
    *sqq = lanes(b);
}

static const mx_nl4_ops avx2_nl4_ops = {.err = v_nl4_err, .pass = v_nl4_pass};

static void avx2_nl4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    kernel_nl4_quantize_row_ops(&avx2_nl4_ops, x, n, group, p, out);
}

static void avx2_nl4_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    kernel_nl4_dq_quantize_row_ops(&avx2_nl4_ops, x, n, group, p, out);
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
    if (mx_qtypes[MIXQ_QT_NL4].quantize_row == kernel_nl4_quantize_row &&
        set->quantize_row[MIXQ_QT_NL4] == kernel_nl4_quantize_row)
        set->quantize_row[MIXQ_QT_NL4] = avx2_nl4_quantize_row;
    if (mx_qtypes[MIXQ_QT_NL4_DQ].quantize_row == kernel_nl4_dq_quantize_row &&
        set->quantize_row[MIXQ_QT_NL4_DQ] == kernel_nl4_dq_quantize_row)
        set->quantize_row[MIXQ_QT_NL4_DQ] = avx2_nl4_dq_quantize_row;
}
