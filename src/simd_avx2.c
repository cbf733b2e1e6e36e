/*
 * simd_avx2.c - AVX2 (+FMA, F16C) versions of the kernels in the type table
 * and of the f32 <-> f16 / bf16 array conversions.  Built with -mavx2 -mfma
 * -mf16c (meson.build) and installed by mx_simd_fill_avx2 only when cpuid
 * reports all three (simd.c).
 *
 * Every function here is bit-identical to its scalar reference (half.c,
 * simd.c, kernel_*.c) for every input the reference defines, which
 * tests/test_simd.c checks.  How that is kept:
 *   - the same binary32 operations in the same order per element: real
 *     divisions (vdivps) where the reference divides, a multiply then a
 *     separate add where it does mul + add (no FMA anywhere in this file;
 *     the project builds with -ffp-contract=off so the compiler cannot fuse
 *     either);
 *   - mx_round_half_even == vroundps(_MM_FROUND_TO_NEAREST_INT), exact for
 *     the |t| <= 2^24 values it is applied to;
 *   - clamps written as vminps / vmaxps, which give the same value as the
 *     reference's conditional selects (also for NaN, where vminps(t, c)
 *     returns c just as "t <= c ? t : c" does);
 *   - min / max reductions are order-independent for finite values (a -0
 *     versus +0 difference in a group min or max never reaches the output:
 *     the f16 directed roundings return +0 for both, and the comparisons
 *     treat them as equal);
 *   - per-group scale / min choice is done in scalar code with the same
 *     definition (the smallest / largest f16 meeting the FORMAT.md rule,
 *     which is unique, so a faster search for it gives the same value);
 *   - elements that do not fill a vector go through a scalar copy of the
 *     reference loop body.
 * F16C conversions (vcvtph2ps / vcvtps2ph with round-to-nearest-even) are
 * the hardware definition the scalar half.c conversions were written to
 * match, including NaN payloads and subnormals.
 */
#include <immintrin.h>
#include <string.h>

#include "half.h"
#include "kernels.h"
#include "simd.h"

#define RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* f16 bits -> float with F16C: identical to mx_f16_to_f32 for all 65536 inputs. */
static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* ------------------------------------------------------------------------ */
/* f32 <-> f16 / bf16 arrays                                                */
/* ------------------------------------------------------------------------ */

static void avx2_f16_to_f32(const uint16_t *src, size_t n, float *dst)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i)));
        __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i + 8)));
        __m256 c = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i + 16)));
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i + 24)));
        _mm256_storeu_ps(dst + i, a);
        _mm256_storeu_ps(dst + i + 8, b);
        _mm256_storeu_ps(dst + i + 16, c);
        _mm256_storeu_ps(dst + i + 24, d);
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    for (; i < n; i++) dst[i] = mx_f16_to_f32(src[i]);
}

static void avx2_f32_to_f16(const float *src, size_t n, uint16_t *dst)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m128i a = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        __m128i b = _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 8), _MM_FROUND_TO_NEAREST_INT);
        __m128i c = _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 16), _MM_FROUND_TO_NEAREST_INT);
        __m128i d = _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 24), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), a);
        _mm_storeu_si128((__m128i *)(void *)(dst + i + 8), b);
        _mm_storeu_si128((__m128i *)(void *)(dst + i + 16), c);
        _mm_storeu_si128((__m128i *)(void *)(dst + i + 24), d);
    }
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = mx_f32_to_f16(src[i]);
}

static void avx2_bf16_to_f32(const uint16_t *src, size_t n, float *dst)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(src + i));
        /* interleave a zero half below each element: (u32)h << 16, in order per 128-bit lane */
        __m256i lo = _mm256_unpacklo_epi16(_mm256_setzero_si256(), v); /* elements 0-3, 8-11 */
        __m256i hi = _mm256_unpackhi_epi16(_mm256_setzero_si256(), v); /* elements 4-7, 12-15 */
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256((__m256i *)(void *)(dst + i + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
    for (; i < n; i++) dst[i] = mx_bf16_to_f32(src[i]);
}

/* mx_f32_to_bf16 on 8 floats, result as 8 u32 (each <= 0xFFFF). */
static inline __m256i bf16_round8(__m256i u)
{
    const __m256i absm = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i inf = _mm256_set1_epi32(0x7F800000);
    /* NaN: (u >> 16) | 0x0040; both sides of the compare are non-negative int32 */
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absm), inf);
    __m256i qn = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x0040));
    /* u + 0x7FFF + ((u >> 16) & 1), wrapping like the uint32_t reference */
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), odd);
    r = _mm256_srli_epi32(r, 16);
    return _mm256_blendv_epi8(r, qn, nan);
}

static void avx2_f32_to_bf16(const float *src, size_t n, uint16_t *dst)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = bf16_round8(_mm256_loadu_si256((const __m256i *)(const void *)(src + i)));
        __m256i b = bf16_round8(_mm256_loadu_si256((const __m256i *)(const void *)(src + i + 8)));
        /* packus works per 128-bit lane (no saturation: values <= 0xFFFF): a0-3 b0-3 a4-7 b4-7 */
        __m256i p = _mm256_packus_epi32(a, b);
        p = _mm256_permute4x64_epi64(p, _MM_SHUFFLE(3, 1, 2, 0));
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), p);
    }
    for (; i < n; i++) dst[i] = mx_f32_to_bf16(src[i]);
}

/* ------------------------------------------------------------------------ */
/* shared helpers                                                           */
/* ------------------------------------------------------------------------ */

static inline float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline float hmin8(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 int32 codes (4 vectors, each in [-128, 255] as needed) -> 32 bytes in element order. */
static inline __m256i pack32_epi8(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_packs_epi32(a, b);  /* a0-3 b0-3 | a4-7 b4-7 */
    __m256i cd = _mm256_packs_epi32(c, d);  /* c0-3 d0-3 | c4-7 d4-7 */
    __m256i v = _mm256_packs_epi16(ab, cd); /* a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 */
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Same for codes in [0, 255] (unsigned saturation at the byte step). */
static inline __m256i pack32_epu8(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_packs_epi32(a, b);
    __m256i cd = _mm256_packs_epi32(c, d);
    __m256i v = _mm256_packus_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 32 codes in [0, 15], one per byte in element order -> 16 bytes, element 2i in the low nibble of byte i. */
static inline __m128i nibbles32(__m256i q8)
{
    /* each u16 pair (lo, hi) -> lo + 16 * hi */
    __m256i w = _mm256_maddubs_epi16(q8, _mm256_set1_epi16(0x1001));
    __m128i a = _mm256_castsi256_si128(w), b = _mm256_extracti128_si256(w, 1);
    return _mm_packus_epi16(a, b);
}

/* ------------------------------------------------------------------------ */
/* int8 (FORMAT.md §4.1)                                                    */
/* ------------------------------------------------------------------------ */

/* Same definition as kernel_int8.c int8_scale: the smallest f16 s with 127 * s >= amax. */
static uint16_t int8_scale(float amax)
{
    uint16_t h;
    if (!(amax > 0.0f))
        return 0;
    h = mx_f16_round_up(amax / 127.0f);
    while (h > 0 && 127.0f * h2f((uint16_t)(h - 1u)) >= amax)
        h--;
    while (h < 0x7C00u && 127.0f * h2f(h) < amax)
        h++;
    return h;
}

static inline __m256i int8_q8(__m256 x, __m256 vs)
{
    __m256 t = _mm256_div_ps(x, vs);
    t = _mm256_min_ps(t, _mm256_set1_ps(127.0f));
    t = _mm256_max_ps(t, _mm256_set1_ps(-127.0f));
    return _mm256_cvtps_epi32(_mm256_round_ps(t, RNE));
}

static void avx2_int8_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                   mx_rowptrs out)
{
    (void)p;
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        uint8_t *cg = codes + start;
        float amax = 0.0f, s;
        size_t i = 0;
        uint16_t h;

        if (len >= 8) {
            __m256 m0 = _mm256_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
            for (; i + 32 <= len; i += 32) {
                m0 = _mm256_max_ps(m0, _mm256_and_ps(_mm256_loadu_ps(xg + i), absm));
                m1 = _mm256_max_ps(m1, _mm256_and_ps(_mm256_loadu_ps(xg + i + 8), absm));
                m2 = _mm256_max_ps(m2, _mm256_and_ps(_mm256_loadu_ps(xg + i + 16), absm));
                m3 = _mm256_max_ps(m3, _mm256_and_ps(_mm256_loadu_ps(xg + i + 24), absm));
            }
            for (; i + 8 <= len; i += 8)
                m0 = _mm256_max_ps(m0, _mm256_and_ps(_mm256_loadu_ps(xg + i), absm));
            amax = hmax8(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
        }
        for (; i < len; i++) {
            float a = xg[i] < 0.0f ? -xg[i] : xg[i];
            if (a > amax)
                amax = a;
        }
        h = int8_scale(amax);
        mx_st16le(scales + 2 * j, h);
        s = h2f(h);
        if (!(s > 0.0f)) {
            memset(cg, 0, len);
            continue;
        }

        const __m256 vs = _mm256_set1_ps(s);
        for (i = 0; i + 32 <= len; i += 32) {
            __m256i a = int8_q8(_mm256_loadu_ps(xg + i), vs);
            __m256i b = int8_q8(_mm256_loadu_ps(xg + i + 8), vs);
            __m256i c = int8_q8(_mm256_loadu_ps(xg + i + 16), vs);
            __m256i d = int8_q8(_mm256_loadu_ps(xg + i + 24), vs);
            _mm256_storeu_si256((__m256i *)(void *)(cg + i), pack32_epi8(a, b, c, d));
        }
        for (; i + 8 <= len; i += 8) {
            __m256i a = int8_q8(_mm256_loadu_ps(xg + i), vs);
            __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
            _mm_storel_epi64((__m128i *)(void *)(cg + i), _mm_packs_epi16(w, w));
        }
        for (; i < len; i++) {
            float t = xg[i] / s;
            t = t <= 127.0f ? t : 127.0f;
            t = t >= -127.0f ? t : -127.0f;
            int q = mx_round_half_even(t);
            cg[i] = (uint8_t)(q < 0 ? q + 256 : q);
        }
    }
}

static void avx2_int8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        float s = h2f(mx_ld16le(scales + 2 * j));
        const uint8_t *cg = codes + start;
        float *og = out + start;
        const __m256 vs = _mm256_set1_ps(s);
        size_t i = 0;
        for (; i + 16 <= len; i += 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(cg + i));
            __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
            __m256 c = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(b, b)));
            _mm256_storeu_ps(og + i, _mm256_mul_ps(a, vs));
            _mm256_storeu_ps(og + i + 8, _mm256_mul_ps(c, vs));
        }
        for (; i + 8 <= len; i += 8) {
            __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(cg + i));
            _mm256_storeu_ps(og + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), vs));
        }
        for (; i < len; i++) {
            int q = cg[i];
            if (q >= 128)
                q -= 256;
            og[i] = (float)q * s;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* int4 (FORMAT.md §4.2)                                                    */
/* ------------------------------------------------------------------------ */

/* fl(m + fl(15 * s)) >= hi, as kernel_int4.c int4_covers. */
static inline int int4_covers(float m, uint16_t h, float hi)
{
    float top = 15.0f * h2f(h);
    float sum = m + top;
    return sum >= hi;
}

/*
 * The smallest f16 s >= 0 with int4_covers (the test is monotone in s, so it
 * is unique).  kernel_int4.c finds it by bisection over [0, +inf]; here the
 * rounded-up quotient is tried first and accepted only if it passes and its
 * predecessor fails, which proves it is that smallest value; otherwise the
 * same bisection runs.
 */
static uint16_t int4_scale(float m, float hi)
{
    unsigned lo = 0, up = 0x7C00u;
    if (int4_covers(m, 0, hi))
        return 0;
    uint16_t c = mx_f16_round_up((hi - m) / 15.0f);
    if (c > 0 && c <= 0x7C00u && int4_covers(m, c, hi) && !int4_covers(m, (uint16_t)(c - 1u), hi))
        return c;
    while (up - lo > 1u) {
        unsigned mid = lo + (up - lo) / 2u;
        if (int4_covers(m, (uint16_t)mid, hi))
            up = mid;
        else
            lo = mid;
    }
    return (uint16_t)up;
}

static inline __m256i int4_q8(__m256 x, __m256 vm, __m256 vs)
{
    __m256 t = _mm256_div_ps(_mm256_sub_ps(x, vm), vs);
    t = _mm256_min_ps(t, _mm256_set1_ps(15.0f));
    t = _mm256_max_ps(t, _mm256_setzero_ps());
    return _mm256_cvtps_epi32(_mm256_round_ps(t, RNE));
}

/* One element of the reference loop (code k of the row, into the packed codes). */
static inline void int4_put(uint8_t *codes, size_t k, int q)
{
    if (k % 2 == 0)
        codes[k / 2] = (uint8_t)q;
    else
        codes[k / 2] = (uint8_t)(codes[k / 2] | q << 4);
}

static void avx2_int4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                   mx_rowptrs out)
{
    (void)p;
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    uint8_t *mins = out.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float lo = xg[0], hi = xg[0], m, s;
        size_t i = 0;
        uint16_t mh, sh;

        if (len >= 8) {
            __m256 l0 = _mm256_loadu_ps(xg), h0 = l0, l1 = l0, h1 = l0;
            for (i = 8; i + 16 <= len; i += 16) {
                __m256 a = _mm256_loadu_ps(xg + i), b = _mm256_loadu_ps(xg + i + 8);
                l0 = _mm256_min_ps(l0, a);
                h0 = _mm256_max_ps(h0, a);
                l1 = _mm256_min_ps(l1, b);
                h1 = _mm256_max_ps(h1, b);
            }
            for (; i + 8 <= len; i += 8) {
                __m256 a = _mm256_loadu_ps(xg + i);
                l0 = _mm256_min_ps(l0, a);
                h0 = _mm256_max_ps(h0, a);
            }
            lo = hmin8(_mm256_min_ps(l0, l1));
            hi = hmax8(_mm256_max_ps(h0, h1));
        }
        for (; i < len; i++) {
            if (xg[i] < lo)
                lo = xg[i];
            if (xg[i] > hi)
                hi = xg[i];
        }
        mh = mx_f16_round_down(lo);
        m = h2f(mh);
        sh = int4_scale(m, hi);
        s = h2f(sh);
        mx_st16le(scales + 2 * j, sh);
        mx_st16le(mins + 2 * j, mh);

        if (!(s > 0.0f)) {
            for (i = 0; i < len; i++) int4_put(codes, start + i, 0);
            continue;
        }
        const __m256 vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(s);
        i = 0;
        if ((start & 1u) != 0) { /* odd group start (odd group sizes only): one element to even */
            float t = (xg[0] - m) / s;
            t = t <= 15.0f ? t : 15.0f;
            t = t >= 0.0f ? t : 0.0f;
            int4_put(codes, start, mx_round_half_even(t));
            i = 1;
        }
        uint8_t *cb = codes + (start + i) / 2;
        for (; i + 32 <= len; i += 32, cb += 16) {
            __m256i a = int4_q8(_mm256_loadu_ps(xg + i), vm, vs);
            __m256i b = int4_q8(_mm256_loadu_ps(xg + i + 8), vm, vs);
            __m256i c = int4_q8(_mm256_loadu_ps(xg + i + 16), vm, vs);
            __m256i d = int4_q8(_mm256_loadu_ps(xg + i + 24), vm, vs);
            _mm_storeu_si128((__m128i *)(void *)cb, nibbles32(pack32_epu8(a, b, c, d)));
        }
        for (; i + 8 <= len; i += 8, cb += 4) {
            __m256i a = int4_q8(_mm256_loadu_ps(xg + i), vm, vs);
            /* 8 codes: pairs lo + 16 * hi through 16-bit lanes */
            __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
            w = _mm_or_si128(w, _mm_srli_epi32(w, 12)); /* lo | hi << 4 in the low 16 bits of each u32 */
            w = _mm_and_si128(w, _mm_set1_epi32(0xFF));
            w = _mm_packs_epi32(w, w);
            w = _mm_packus_epi16(w, w);
            int v = _mm_cvtsi128_si32(w);
            memcpy(cb, &v, 4);
        }
        for (; i < len; i++) {
            float t = (xg[i] - m) / s;
            t = t <= 15.0f ? t : 15.0f;
            t = t >= 0.0f ? t : 0.0f;
            int4_put(codes, start + i, mx_round_half_even(t));
        }
    }
}

static void avx2_int4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *mins = in.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    const __m128i low4 = _mm_set1_epi8(0x0F);

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        float s = h2f(mx_ld16le(scales + 2 * j));
        float m = h2f(mx_ld16le(mins + 2 * j));
        const __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m);
        size_t i = 0;
        if ((start & 1u) != 0) {
            out[start] = (float)(codes[start / 2] >> 4) * s + m;
            i = 1;
        }
        const uint8_t *cb = codes + (start + i) / 2;
        float *og = out + start;
        for (; i + 32 <= len; i += 32, cb += 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)cb);
            __m128i lo = _mm_and_si128(b, low4);
            __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
            __m128i q0 = _mm_unpacklo_epi8(lo, hi); /* codes 0..15 */
            __m128i q1 = _mm_unpackhi_epi8(lo, hi); /* codes 16..31 */
            __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q0));
            __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(q0, q0)));
            __m256 f2 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q1));
            __m256 f3 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(q1, q1)));
            _mm256_storeu_ps(og + i, _mm256_add_ps(_mm256_mul_ps(f0, vs), vm));
            _mm256_storeu_ps(og + i + 8, _mm256_add_ps(_mm256_mul_ps(f1, vs), vm));
            _mm256_storeu_ps(og + i + 16, _mm256_add_ps(_mm256_mul_ps(f2, vs), vm));
            _mm256_storeu_ps(og + i + 24, _mm256_add_ps(_mm256_mul_ps(f3, vs), vm));
        }
        for (; i + 8 <= len; i += 8, cb += 4) {
            int v;
            memcpy(&v, cb, 4);
            __m128i b = _mm_cvtsi32_si128(v);
            __m128i q = _mm_unpacklo_epi8(_mm_and_si128(b, low4), _mm_and_si128(_mm_srli_epi16(b, 4), low4));
            __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q));
            _mm256_storeu_ps(og + i, _mm256_add_ps(_mm256_mul_ps(f, vs), vm));
        }
        for (; i < len; i++) {
            size_t k = start + i;
            unsigned b = codes[k / 2];
            unsigned q = k % 2 == 0 ? (b & 0xFu) : (b >> 4);
            float pr = (float)q * s;
            out[k] = pr + m;
        }
    }
}

/* ------------------------------------------------------------------------ */

void mx_simd_fill_avx2(mx_kernel_set *set)
{
    set->f32_to_f16 = avx2_f32_to_f16;
    set->f16_to_f32 = avx2_f16_to_f32;
    set->f32_to_bf16 = avx2_f32_to_bf16;
    set->bf16_to_f32 = avx2_bf16_to_f32;
    if (mx_qtypes[MIXQ_QT_INT8].quantize_row == kernel_int8_quantize_row) {
        set->quantize_row[MIXQ_QT_INT8] = avx2_int8_quantize_row;
        set->dequantize_row[MIXQ_QT_INT8] = avx2_int8_dequantize_row;
    }
    if (mx_qtypes[MIXQ_QT_INT4].quantize_row == kernel_int4_quantize_row) {
        set->quantize_row[MIXQ_QT_INT4] = avx2_int4_quantize_row;
        set->dequantize_row[MIXQ_QT_INT4] = avx2_int4_dequantize_row;
    }
}
