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
 *     reference loop body;
 *   - a group (DQ: super-block) with a non-finite stored scale, min,
 *     super-scale or super-min is filled with the canonical NaN before any
 *     arithmetic, as in the reference (kernels.h); everything else is then
 *     finite or a NaN with one NaN operand, whose bits do not depend on the
 *     operand order.
 * F16C conversions (vcvtph2ps / vcvtps2ph with round-to-nearest-even) are
 * the hardware definition the scalar half.c conversions were written to
 * match, including NaN payloads and subnormals.
 */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kernel_fp8.h"
#include "common/half.h"
#include "kernels/kernels.h"
#include "kernels/quant_search.h"
#include "kernels/simd.h"

#define RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* f16 bits -> float with F16C: identical to mx_f16_to_f32 for all 65536 inputs. */
static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* mx_f32_to_f16 (round to nearest even) with F16C, identical for every input (checked on all 2^32). */
static inline uint16_t f2h(float f) { return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

/*
 * mx_f16_round_up / mx_f16_round_down with F16C's directed rounding, a zero
 * result made +0: identical to half.c for every non-NaN float (checked on all
 * 2^32 inputs); NaN goes to the reference.
 */
static inline uint16_t f16_up(float f)
{
    if (f != f)
        return mx_f16_round_up(f);
    uint16_t h = (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    return (h & 0x7FFFu) == 0 ? 0 : h;
}

static inline uint16_t f16_down(float f)
{
    if (f != f)
        return mx_f16_round_down(f);
    uint16_t h = (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    return (h & 0x7FFFu) == 0 ? 0 : h;
}

/* The shared plain choice of a DQ super-block, with these F16C conversions. */
#define MX_K_F16_TO_F32 h2f
#define MX_K_F16_UP f16_up
#define MX_K_F16_DOWN f16_down
#define MX_K_F32_TO_F16 f2h
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernel_scale_rules.h"

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

/*
 * mx_lanes_sum of the 8 lanes: ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7)).  b = lo + hi
 * gives b_j = a_j + a_{j+4}; then (b0+b2) + (b1+b3).  IEEE addition is
 * commutative, so the operand order inside each add does not matter.
 */
static inline float lanes_sum(__m256 v)
{
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b)); /* c0 = b0+b2, c1 = b1+b3 */
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

/*
 * The last r (1..7) elements of a group as a vector block: x and w padded
 * with zeros (w = 1 when w is NULL) and a mask of the r live lanes.  Lane j
 * is element base + j, so the lane of an element is still its index mod 8.
 * Terms of dead lanes are and-ed to +0 before they are added; adding +0 does
 * not change a partial sum (a sum started at +0 is never -0).
 */
typedef struct tail8 {
    __m256 x, w, live;
} tail8;

static inline tail8 load_tail(const float *x, const float *w, size_t r)
{
    float bx[8] = {0}, bw[8] = {0};
    int32_t bm[8] = {0};
    tail8 t;
    for (size_t j = 0; j < r; j++) {
        bx[j] = x[j];
        bw[j] = w ? w[j] : 1.0f;
        bm[j] = -1;
    }
    t.x = _mm256_loadu_ps(bx);
    t.w = _mm256_loadu_ps(bw);
    t.live = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(const void *)bm));
    return t;
}

/* 32 int32 codes (4 vectors, each in [-128, 127]) -> 32 signed bytes in element order. */
static inline __m256i pack32_epi8(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_packs_epi32(a, b);  /* a0-3 b0-3 | a4-7 b4-7 */
    __m256i cd = _mm256_packs_epi32(c, d);  /* c0-3 d0-3 | c4-7 d4-7 */
    __m256i v = _mm256_packs_epi16(ab, cd); /* a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 */
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Same for codes in [0, 255]. */
static inline __m256i pack32_epu8(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_packs_epi32(a, b);
    __m256i cd = _mm256_packs_epi32(c, d);
    __m256i v = _mm256_packus_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/*
 * Packs 32 codes held one per byte (element order, each < 2^w) into a bit
 * plane of width w at dst, whose first element starts a byte (FORMAT.md
 * §5.1: element k in bits (k w) mod 8 .. of byte k w / 8).
 */
static inline void pack_plane32(uint8_t *dst, __m256i u8, unsigned w)
{
    if (w == 8) {
        _mm256_storeu_si256((__m256i *)(void *)dst, u8);
    } else if (w == 4) { /* byte pairs (lo, hi) -> lo + 16 hi */
        __m256i v = _mm256_maddubs_epi16(u8, _mm256_set1_epi16(0x1001));
        _mm_storeu_si128((__m128i *)(void *)dst,
                         _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
    } else if (w == 2) { /* bytes q0..q3 -> q0 + 4 q1 + 16 q2 + 64 q3 */
        __m256i v = _mm256_maddubs_epi16(u8, _mm256_set1_epi16(0x0401));
        v = _mm256_madd_epi16(v, _mm256_set1_epi32(0x00100001));
        v = _mm256_packs_epi32(v, v);
        v = _mm256_packus_epi16(v, v);
        v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
        _mm_storel_epi64((__m128i *)(void *)dst, _mm256_castsi256_si128(v));
    } else { /* w == 1: bit k = element k */
        uint32_t bits = (uint32_t)_mm256_movemask_epi8(_mm256_slli_epi16(u8, 7));
        memcpy(dst, &bits, 4);
    }
}

/*
 * Stores 32 codes (4 x 8 int32, element order) of width `bits` (8, 4 or 2)
 * whose first element starts a byte.  bits 8: two's complement bytes (values
 * in [-128, 127]); 4 and 2: values in [0, 2^bits).
 */
static inline void store_codes32(uint8_t *dst, unsigned bits, __m256i a, __m256i b, __m256i c, __m256i d)
{
    if (bits == 8)
        _mm256_storeu_si256((__m256i *)(void *)dst, pack32_epi8(a, b, c, d));
    else
        pack_plane32(dst, pack32_epu8(a, b, c, d), bits);
}

/* rhe(clamp(t, lo, hi)) with NaN -> hi (min first: vminps(NaN, c) = c), as an int32 vector. */
static inline __m256i clamp_rhe_hi(__m256 t, __m256 lo, __m256 hi)
{
    t = _mm256_max_ps(_mm256_min_ps(t, hi), lo);
    return _mm256_cvtps_epi32(_mm256_round_ps(t, RNE));
}

/* rhe(clamp(t, lo, hi)) with NaN -> lo (max first), as an int32 vector. */
static inline __m256i clamp_rhe_lo(__m256 t, __m256 lo, __m256 hi)
{
    t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
    return _mm256_cvtps_epi32(_mm256_round_ps(t, RNE));
}

/* Same, as float.  "+ 0" turns the -0 that vroundps gives for t in (-0.5, 0) into the +0 of (float)int. */
static inline __m256 clamp_rhe_hi_f(__m256 t, __m256 lo, __m256 hi)
{
    t = _mm256_max_ps(_mm256_min_ps(t, hi), lo);
    return _mm256_add_ps(_mm256_round_ps(t, RNE), _mm256_setzero_ps());
}

/* ------------------------------------------------------------------------ */
/* search passes (quant_search.h): same terms, lane j = index mod 8         */
/* ------------------------------------------------------------------------ */

static void v_stats(const float *x, const float *w, size_t n, mx_gstats *out)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    float lo = n ? x[0] : 0.0f, hi = lo, amax = 0.0f;
    __m256 vlo = _mm256_set1_ps(lo), vhi = vlo, vam = _mm256_setzero_ps();
    __m256 sw = _mm256_setzero_ps(), sx = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        vlo = _mm256_min_ps(vlo, v);
        vhi = _mm256_max_ps(vhi, v);
        vam = _mm256_max_ps(vam, _mm256_and_ps(v, absm));
        if (w) {
            __m256 wi = _mm256_loadu_ps(w + i);
            sw = _mm256_add_ps(sw, wi);
            sx = _mm256_add_ps(sx, _mm256_mul_ps(wi, v));
        } else {
            sw = _mm256_add_ps(sw, _mm256_set1_ps(1.0f));
            sx = _mm256_add_ps(sx, v); /* 1 * v is exact */
        }
    }
    if (i < n) {
        tail8 t = load_tail(x + i, w ? w + i : NULL, n - i);
        sw = _mm256_add_ps(sw, _mm256_and_ps(t.w, t.live));
        sx = _mm256_add_ps(sx, _mm256_and_ps(_mm256_mul_ps(t.w, t.x), t.live));
        for (; i < n; i++) {
            float v = x[i], a = v < 0.0f ? -v : v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            amax = a > amax ? a : amax;
        }
    }
    if (n >= 8) {
        float l = hmin8(vlo), h = hmax8(vhi), a = hmax8(vam);
        lo = l < lo ? l : lo;
        hi = h > hi ? h : hi;
        amax = a > amax ? a : amax;
    }
    out->lo = lo;
    out->hi = hi;
    out->amax = amax;
    out->sw = lanes_sum(sw);
    out->sx = lanes_sum(sx);
}

static void v_sym_pass(const float *x, const float *w, size_t n, int qlo, int qhi, float id, float *sxq,
                       float *sqq)
{
    const __m256 vid = _mm256_set1_ps(id), vlo = _mm256_set1_ps((float)qlo), vhi = _mm256_set1_ps((float)qhi);
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 q = clamp_rhe_hi_f(_mm256_mul_ps(v, vid), vlo, vhi);
        if (w) {
            __m256 wi = _mm256_loadu_ps(w + i);
            a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_mul_ps(wi, v), q));
            b = _mm256_add_ps(b, _mm256_mul_ps(_mm256_mul_ps(wi, q), q));
        } else {
            a = _mm256_add_ps(a, _mm256_mul_ps(v, q));
            b = _mm256_add_ps(b, _mm256_mul_ps(q, q));
        }
    }
    if (i < n) {
        tail8 t = load_tail(x + i, w ? w + i : NULL, n - i);
        __m256 q = clamp_rhe_hi_f(_mm256_mul_ps(t.x, vid), vlo, vhi);
        a = _mm256_add_ps(a, _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(t.w, t.x), q), t.live));
        b = _mm256_add_ps(b, _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(t.w, q), q), t.live));
    }
    *sxq = lanes_sum(a);
    *sqq = lanes_sum(b);
}

/*
 * Two symmetric candidate passes (id[0], id[1]) in one sweep, interleaved:
 * each candidate's two sums are formed exactly as in v_sym_pass (same terms,
 * same lanes, same order; fl(w * x) is computed once for both).
 */
static void v_sym_pass2(const float *x, const float *w, size_t n, int qlo, int qhi, const float *id,
                        float *sxq, float *sqq)
{
    const __m256 vid0 = _mm256_set1_ps(id[0]), vid1 = _mm256_set1_ps(id[1]);
    const __m256 vlo = _mm256_set1_ps((float)qlo), vhi = _mm256_set1_ps((float)qhi);
    __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 q0 = clamp_rhe_hi_f(_mm256_mul_ps(v, vid0), vlo, vhi);
        __m256 q1 = clamp_rhe_hi_f(_mm256_mul_ps(v, vid1), vlo, vhi);
        __m256 wx = v, wq0 = q0, wq1 = q1;
        if (w) {
            __m256 wi = _mm256_loadu_ps(w + i);
            wx = _mm256_mul_ps(wi, v);
            wq0 = _mm256_mul_ps(wi, q0);
            wq1 = _mm256_mul_ps(wi, q1);
        }
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(wx, q0));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(wx, q1));
        b0 = _mm256_add_ps(b0, _mm256_mul_ps(wq0, q0));
        b1 = _mm256_add_ps(b1, _mm256_mul_ps(wq1, q1));
    }
    if (i < n) {
        tail8 t = load_tail(x + i, w ? w + i : NULL, n - i);
        __m256 q0 = clamp_rhe_hi_f(_mm256_mul_ps(t.x, vid0), vlo, vhi);
        __m256 q1 = clamp_rhe_hi_f(_mm256_mul_ps(t.x, vid1), vlo, vhi);
        __m256 wx = _mm256_mul_ps(t.w, t.x);
        a0 = _mm256_add_ps(a0, _mm256_and_ps(_mm256_mul_ps(wx, q0), t.live));
        a1 = _mm256_add_ps(a1, _mm256_and_ps(_mm256_mul_ps(wx, q1), t.live));
        b0 = _mm256_add_ps(b0, _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(t.w, q0), q0), t.live));
        b1 = _mm256_add_ps(b1, _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(t.w, q1), q1), t.live));
    }
    sxq[0] = lanes_sum(a0);
    sqq[0] = lanes_sum(b0);
    sxq[1] = lanes_sum(a1);
    sqq[1] = lanes_sum(b1);
}

/* K candidate passes (quant_search.h sym_pass_multi): pairs through v_sym_pass2, an odd last one alone. */
static void v_sym_pass_multi(const float *x, const float *w, size_t n, int qlo, int qhi, size_t K,
                             const float *id, float *sxq, float *sqq)
{
    size_t k = 0;
    for (; k + 2 <= K; k += 2)
        v_sym_pass2(x, w, n, qlo, qhi, id + k, sxq + k, sqq + k);
    if (k < K)
        v_sym_pass(x, w, n, qlo, qhi, id[k], &sxq[k], &sqq[k]);
}

static float v_sym_err(const float *x, const float *w, size_t n, int qlo, int qhi, float d)
{
    const __m256 vd = _mm256_set1_ps(d), vlo = _mm256_set1_ps((float)qlo), vhi = _mm256_set1_ps((float)qhi);
    const bool dz = d == 0.0f;
    __m256 a = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 q = dz ? _mm256_setzero_ps() : clamp_rhe_hi_f(_mm256_div_ps(v, vd), vlo, vhi);
        __m256 e = _mm256_sub_ps(v, _mm256_mul_ps(q, vd));
        e = _mm256_mul_ps(e, e);
        a = _mm256_add_ps(a, w ? _mm256_mul_ps(_mm256_loadu_ps(w + i), e) : e);
    }
    if (i < n) {
        tail8 t = load_tail(x + i, w ? w + i : NULL, n - i);
        __m256 q = dz ? _mm256_setzero_ps() : clamp_rhe_hi_f(_mm256_div_ps(t.x, vd), vlo, vhi);
        __m256 e = _mm256_sub_ps(t.x, _mm256_mul_ps(q, vd));
        a = _mm256_add_ps(a, _mm256_and_ps(_mm256_mul_ps(t.w, _mm256_mul_ps(e, e)), t.live));
    }
    return lanes_sum(a);
}

/*
 * rhe(clamp(t, +0, hi)) with NaN -> +0, as float.  No "+ 0" is needed (as in
 * clamp_rhe_hi_f): after vmaxps(t, +0), which gives +0 for -0 and NaN, t has
 * its sign bit clear, so vroundps cannot give -0.
 */
static inline __m256 clamp_rhe_pos_f(__m256 t, __m256 z, __m256 hi)
{
    return _mm256_round_ps(_mm256_min_ps(_mm256_max_ps(t, z), hi), RNE);
}

/* The codes of an asymmetric candidate pass as float: rhe(clamp(fl(fl(v - m) * id), 0, L)). */
static inline __m256 asym_q(__m256 v, __m256 vm, __m256 vid, __m256 z, __m256 vL)
{
    return clamp_rhe_pos_f(_mm256_mul_ps(_mm256_sub_ps(v, vm), vid), z, vL);
}

static void v_asym_pass(const float *x, const float *w, size_t n, int L, float m, float id, float *sq,
                        float *sqq, float *sxq)
{
    const __m256 vm = _mm256_set1_ps(m), vid = _mm256_set1_ps(id), vL = _mm256_set1_ps((float)L);
    const __m256 z = _mm256_setzero_ps();
    __m256 a = z, b = z, c = z;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 q = asym_q(v, vm, vid, z, vL);
        __m256 wq = w ? _mm256_mul_ps(_mm256_loadu_ps(w + i), q) : q;
        a = _mm256_add_ps(a, wq);
        b = _mm256_add_ps(b, _mm256_mul_ps(wq, q));
        c = _mm256_add_ps(c, _mm256_mul_ps(wq, v));
    }
    if (i < n) {
        tail8 t = load_tail(x + i, w ? w + i : NULL, n - i);
        __m256 q = asym_q(t.x, vm, vid, z, vL);
        __m256 wq = _mm256_and_ps(_mm256_mul_ps(t.w, q), t.live);
        a = _mm256_add_ps(a, wq);
        b = _mm256_add_ps(b, _mm256_mul_ps(wq, q));
        c = _mm256_add_ps(c, _mm256_mul_ps(wq, t.x));
    }
    *sq = lanes_sum(a);
    *sqq = lanes_sum(b);
    *sxq = lanes_sum(c);
}

/*
 * Two asymmetric candidate passes (m0, id0) and (m1, id1) in one sweep,
 * interleaved: each candidate's three sums are formed exactly as in
 * v_asym_pass (same terms, same lanes, same order), six chains in flight.
 */
static void v_asym_pass2(const float *x, const float *w, size_t n, int L, const float *m, const float *id,
                         float *sq, float *sqq, float *sxq)
{
    const __m256 vm0 = _mm256_set1_ps(m[0]), vid0 = _mm256_set1_ps(id[0]);
    const __m256 vm1 = _mm256_set1_ps(m[1]), vid1 = _mm256_set1_ps(id[1]);
    const __m256 vL = _mm256_set1_ps((float)L), z = _mm256_setzero_ps();
    __m256 a0 = z, b0 = z, c0 = z, a1 = z, b1 = z, c1 = z;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 q0 = asym_q(v, vm0, vid0, z, vL), q1 = asym_q(v, vm1, vid1, z, vL);
        __m256 wq0 = q0, wq1 = q1;
        if (w) {
            __m256 wi = _mm256_loadu_ps(w + i);
            wq0 = _mm256_mul_ps(wi, q0);
            wq1 = _mm256_mul_ps(wi, q1);
        }
        a0 = _mm256_add_ps(a0, wq0);
        a1 = _mm256_add_ps(a1, wq1);
        b0 = _mm256_add_ps(b0, _mm256_mul_ps(wq0, q0));
        b1 = _mm256_add_ps(b1, _mm256_mul_ps(wq1, q1));
        c0 = _mm256_add_ps(c0, _mm256_mul_ps(wq0, v));
        c1 = _mm256_add_ps(c1, _mm256_mul_ps(wq1, v));
    }
    if (i < n) {
        tail8 t = load_tail(x + i, w ? w + i : NULL, n - i);
        __m256 q0 = asym_q(t.x, vm0, vid0, z, vL), q1 = asym_q(t.x, vm1, vid1, z, vL);
        __m256 wq0 = _mm256_and_ps(_mm256_mul_ps(t.w, q0), t.live);
        __m256 wq1 = _mm256_and_ps(_mm256_mul_ps(t.w, q1), t.live);
        a0 = _mm256_add_ps(a0, wq0);
        a1 = _mm256_add_ps(a1, wq1);
        b0 = _mm256_add_ps(b0, _mm256_mul_ps(wq0, q0));
        b1 = _mm256_add_ps(b1, _mm256_mul_ps(wq1, q1));
        c0 = _mm256_add_ps(c0, _mm256_mul_ps(wq0, t.x));
        c1 = _mm256_add_ps(c1, _mm256_mul_ps(wq1, t.x));
    }
    sq[0] = lanes_sum(a0);
    sqq[0] = lanes_sum(b0);
    sxq[0] = lanes_sum(c0);
    sq[1] = lanes_sum(a1);
    sqq[1] = lanes_sum(b1);
    sxq[1] = lanes_sum(c1);
}

/* K candidate passes (quant_search.h asym_pass_multi): pairs through v_asym_pass2, an odd last one alone. */
static void v_asym_pass_multi(const float *x, const float *w, size_t n, int L, size_t K, const float *m,
                              const float *id, float *sq, float *sqq, float *sxq)
{
    size_t k = 0;
    for (; k + 2 <= K; k += 2)
        v_asym_pass2(x, w, n, L, m + k, id + k, sq + k, sqq + k, sxq + k);
    if (k < K)
        v_asym_pass(x, w, n, L, m[k], id[k], &sq[k], &sqq[k], &sxq[k]);
}

static float v_asym_err(const float *x, const float *w, size_t n, int L, float s, float m)
{
    const __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m), vL = _mm256_set1_ps((float)L);
    const __m256 z = _mm256_setzero_ps();
    const bool sp = s > 0.0f;
    __m256 a = z;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 q = sp ? clamp_rhe_pos_f(_mm256_div_ps(_mm256_sub_ps(v, vm), vs), z, vL) : z;
        __m256 e = _mm256_sub_ps(v, _mm256_add_ps(_mm256_mul_ps(q, vs), vm));
        e = _mm256_mul_ps(e, e);
        a = _mm256_add_ps(a, w ? _mm256_mul_ps(_mm256_loadu_ps(w + i), e) : e);
    }
    if (i < n) {
        tail8 t = load_tail(x + i, w ? w + i : NULL, n - i);
        __m256 q = sp ? clamp_rhe_pos_f(_mm256_div_ps(_mm256_sub_ps(t.x, vm), vs), z, vL) : z;
        __m256 e = _mm256_sub_ps(t.x, _mm256_add_ps(_mm256_mul_ps(q, vs), vm));
        a = _mm256_add_ps(a, _mm256_and_ps(_mm256_mul_ps(t.w, _mm256_mul_ps(e, e)), t.live));
    }
    return lanes_sum(a);
}

/*
 * Element codes of one group (quant_search.h): asymmetric (qlo == 0)
 * rhe(clamp(fl(fl(x - m) / s), 0, qhi)), NaN -> 0, all 0 unless s > 0;
 * symmetric rhe(clamp(fl(x / s), qlo, qhi)), NaN -> qhi, all 0 if s == 0;
 * u[i] = q + bias.
 */
static void v_codes(const float *x, size_t n, int qlo, int qhi, float s, float m, int bias, uint8_t *u)
{
    const bool asym = qlo == 0;
    size_t i = 0;
    if (asym ? !(s > 0.0f) : s == 0.0f) {
        memset(u, bias, n);
        return;
    }
    const __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m);
    const __m256 vlo = _mm256_set1_ps((float)qlo), vhi = _mm256_set1_ps((float)qhi);
    const __m256i vb = _mm256_set1_epi32(bias);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256i q = asym ? clamp_rhe_lo(_mm256_div_ps(_mm256_sub_ps(v, vm), vs), vlo, vhi)
                         : clamp_rhe_hi(_mm256_div_ps(v, vs), vlo, vhi);
        q = _mm256_add_epi32(q, vb);
        __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(void *)(u + i), _mm_packus_epi16(w16, w16));
    }
    for (; i < n; i++) {
        float t = asym ? (x[i] - m) / s : x[i] / s;
        float nan_to = asym ? 0.0f : (float)qhi;
        if (t != t)
            t = nan_to;
        t = t < (float)qlo ? (float)qlo : t;
        t = t > (float)qhi ? (float)qhi : t;
        u[i] = (uint8_t)(mx_round_half_even(t) + bias);
    }
}

/*
 * Exported (not in a header) so that tests/test_simd.c can compare every pass
 * with mx_search_ops_scalar directly, through a weak declaration.
 */
extern const mx_search_ops mx_search_ops_avx2;
const mx_search_ops mx_search_ops_avx2 = {
    .stats = v_stats,
    .sym_pass = v_sym_pass,
    .sym_err = v_sym_err,
    .asym_pass = v_asym_pass,
    .asym_err = v_asym_err,
    .asym_pass_multi = v_asym_pass_multi,
    .sym_pass_multi = v_sym_pass_multi,
    .codes = v_codes,
};

/* ------------------------------------------------------------------------ */
/* symmetric f16-scale types: int8 (FORMAT.md §4.1), int4s (§4.3)           */
/* ------------------------------------------------------------------------ */

typedef struct symf16_type {
    int qlo, qhi;  /* code range */
    float top;     /* |code| of the largest-magnitude element in the plain choice */
    bool positive; /* d >= 0 (int8); else d's sign sends xm to qlo (int4s) */
    unsigned bits; /* 8 or 4 */
    int bias;      /* stored code = (q + bias) mod 2^bits */
} symf16_type;

static const symf16_type T_INT8 = {-127, 127, 127.0f, true, 8, 256};
static const symf16_type T_INT4S = {-8, 7, 8.0f, false, 4, 8};

/* Codes of 8 elements as int32 q + (bits == 8 ? 0 : bias). */
static inline __m256i sym_codes8(__m256 x, __m256 vd, __m256 vlo, __m256 vhi, __m256i vbias)
{
    return _mm256_add_epi32(clamp_rhe_hi(_mm256_div_ps(x, vd), vlo, vhi), vbias);
}

static void sym_quantize(const symf16_type *T, const float *x, size_t n, unsigned group, const mx_qparams *p,
                         mx_rowptrs out)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    bool search = p != NULL && p->search;
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 vlo = _mm256_set1_ps((float)T->qlo), vhi = _mm256_set1_ps((float)T->qhi);
    const __m256i vbias = _mm256_set1_epi32(T->bits == 8 ? 0 : T->bias);
    const unsigned mask = (1u << T->bits) - 1u;

    if (T->bits < 8)
        memset(codes, 0, (n * T->bits + 7u) / 8u);
    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float amax = 0.0f, hi = xg[0], d;
        size_t i = 0;
        uint16_t h;

        if (len >= 8) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, h0 = _mm256_loadu_ps(xg), h1 = h0;
            for (; i + 16 <= len; i += 16) {
                __m256 u = _mm256_loadu_ps(xg + i), v = _mm256_loadu_ps(xg + i + 8);
                a0 = _mm256_max_ps(a0, _mm256_and_ps(u, absm));
                a1 = _mm256_max_ps(a1, _mm256_and_ps(v, absm));
                h0 = _mm256_max_ps(h0, u);
                h1 = _mm256_max_ps(h1, v);
            }
            for (; i + 8 <= len; i += 8) {
                __m256 u = _mm256_loadu_ps(xg + i);
                a0 = _mm256_max_ps(a0, _mm256_and_ps(u, absm));
                h0 = _mm256_max_ps(h0, u);
            }
            amax = hmax8(_mm256_max_ps(a0, a1));
            hi = hmax8(_mm256_max_ps(h0, h1));
        }
        for (; i < len; i++) {
            float a = xg[i] < 0.0f ? -xg[i] : xg[i];
            if (a > amax)
                amax = a;
            if (xg[i] > hi)
                hi = xg[i];
        }
        h = mx_sym_group_scale(search ? &mx_search_ops_avx2 : NULL, xg,
                               search && p->importance ? p->importance + start : NULL, len, T->qlo, T->qhi, T->top,
                               T->positive, amax, hi, &d);
        mx_st16le(scales + 2 * j, h);

        if (d == 0.0f) { /* all codes 0, stored as bias */
            if (T->bits == 8)
                memset(codes + start, 0, len);
            else
                for (i = 0; i < len; i++) {
                    size_t k = start + i;
                    codes[k * T->bits / 8u] |= (uint8_t)(((unsigned)T->bias & mask) << (k * T->bits % 8u));
                }
            continue;
        }
        const __m256 vd = _mm256_set1_ps(d);
        i = 0;
        if ((start * T->bits) % 8u == 0) {
            for (; i + 32 <= len; i += 32) {
                __m256i a = sym_codes8(_mm256_loadu_ps(xg + i), vd, vlo, vhi, vbias);
                __m256i b = sym_codes8(_mm256_loadu_ps(xg + i + 8), vd, vlo, vhi, vbias);
                __m256i c = sym_codes8(_mm256_loadu_ps(xg + i + 16), vd, vlo, vhi, vbias);
                __m256i e = sym_codes8(_mm256_loadu_ps(xg + i + 24), vd, vlo, vhi, vbias);
                store_codes32(codes + (start + i) * T->bits / 8u, T->bits, a, b, c, e);
            }
        }
        for (; i < len; i++) {
            size_t k = start + i;
            float t = xg[i] / d;
            t = t <= (float)T->qhi ? t : (float)T->qhi;
            t = t >= (float)T->qlo ? t : (float)T->qlo;
            unsigned u = (unsigned)(mx_round_half_even(t) + T->bias) & mask;
            if (T->bits == 8)
                codes[k] = (uint8_t)u;
            else
                codes[k * T->bits / 8u] |= (uint8_t)(u << (k * T->bits % 8u));
        }
    }
}

static void avx2_int8_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    sym_quantize(&T_INT8, x, n, group, p, out);
}

static void avx2_int4s_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    sym_quantize(&T_INT4S, x, n, group, p, out);
}

/*
 * True if the count little-endian f16 at p are all finite (mx_f16_bits_finite):
 * one pass over a row's scales (or mins) before the dequantize loop, so that
 * a row without a non-finite parameter (every valid row) runs a loop without
 * the per-group test of kernels.h's rule (with it, groups of 16-32 measured
 * up to ~20% slower in cache).
 */
static inline bool f16_all_finite(const uint8_t *p, size_t count)
{
    const __m256i e = _mm256_set1_epi16(0x7C00);
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 2 * i));
        acc = _mm256_or_si256(acc, _mm256_cmpeq_epi16(_mm256_and_si256(v, e), e));
    }
    bool ok = _mm256_testz_si256(acc, acc) != 0;
    for (; i < count; i++)
        ok = ok && mx_f16_bits_finite(mx_ld16le(p + 2 * i));
    return ok;
}

static inline __attribute__((always_inline)) void int8_dequantize(mx_crowptrs in, size_t n, unsigned group, float *out,
                                                                  bool checked)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t h = mx_ld16le(scales + 2 * j);
        if (checked && !mx_f16_bits_finite(h)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        float s = h2f(h);
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

/* 32 nibbles from 16 bytes, element order, as two 16-byte vectors of codes 0..15. */
static inline void unpack_nibbles32(const uint8_t *cb, __m128i *q0, __m128i *q1)
{
    const __m128i low4 = _mm_set1_epi8(0x0F);
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)cb);
    __m128i lo = _mm_and_si128(b, low4);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
    *q0 = _mm_unpacklo_epi8(lo, hi);
    *q1 = _mm_unpackhi_epi8(lo, hi);
}

/* 8 nibbles from 4 bytes. */
static inline __m128i unpack_nibbles8(const uint8_t *cb)
{
    const __m128i low4 = _mm_set1_epi8(0x0F);
    int v;
    memcpy(&v, cb, 4);
    __m128i b = _mm_cvtsi32_si128(v);
    return _mm_unpacklo_epi8(_mm_and_si128(b, low4), _mm_and_si128(_mm_srli_epi16(b, 4), low4));
}

/* Codes 0..15 in the low 8 bytes of q -> floats of (code - bias). */
static inline __m256 nib_to_f(__m128i q, __m256i vbias)
{
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(q), vbias));
}

static inline __attribute__((always_inline)) void int4s_dequantize(mx_crowptrs in, size_t n, unsigned group, float *out,
                                                                   bool checked)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    const __m256i vb = _mm256_set1_epi32(8);

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t h = mx_ld16le(scales + 2 * j);
        if (checked && !mx_f16_bits_finite(h)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        float d = h2f(h);
        const __m256 vd = _mm256_set1_ps(d);
        size_t i = 0;
        if ((start & 1u) == 0) {
            const uint8_t *cb = codes + start / 2;
            float *og = out + start;
            for (; i + 32 <= len; i += 32, cb += 16) {
                __m128i q0, q1;
                unpack_nibbles32(cb, &q0, &q1);
                _mm256_storeu_ps(og + i, _mm256_mul_ps(nib_to_f(q0, vb), vd));
                _mm256_storeu_ps(og + i + 8, _mm256_mul_ps(nib_to_f(_mm_unpackhi_epi64(q0, q0), vb), vd));
                _mm256_storeu_ps(og + i + 16, _mm256_mul_ps(nib_to_f(q1, vb), vd));
                _mm256_storeu_ps(og + i + 24, _mm256_mul_ps(nib_to_f(_mm_unpackhi_epi64(q1, q1), vb), vd));
            }
            for (; i + 8 <= len; i += 8, cb += 4)
                _mm256_storeu_ps(og + i, _mm256_mul_ps(nib_to_f(unpack_nibbles8(cb), vb), vd));
        }
        for (; i < len; i++) {
            size_t k = start + i;
            unsigned u = (unsigned)(codes[k / 2u] >> (k * 4u % 8u)) & 0xFu;
            out[k] = (float)((int)u - 8) * d;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* asymmetric f16-scale types: int4 (FORMAT.md §4.2), int2 (§4.4)           */
/* ------------------------------------------------------------------------ */

static inline __m256i asym_codes8(__m256 x, __m256 vm, __m256 vs, __m256 vL)
{
    return clamp_rhe_hi(_mm256_div_ps(_mm256_sub_ps(x, vm), vs), _mm256_setzero_ps(), vL);
}

static void asym_quantize(int L, unsigned bits, const float *x, size_t n, unsigned group, const mx_qparams *p,
                          mx_rowptrs out)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    uint8_t *mins = out.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    bool search = p != NULL && p->search;
    const __m256 vL = _mm256_set1_ps((float)L);

    memset(codes, 0, (n * bits + 7u) / 8u);
    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        const float *w = search && p->importance ? p->importance + start : NULL;
        float m, s;
        size_t i = 0;
        uint16_t mh, sh;
        mx_gstats st;

        if (search) {
            v_stats(xg, w, len, &st);
        } else {
            st.lo = st.hi = xg[0];
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
                st.lo = hmin8(_mm256_min_ps(l0, l1));
                st.hi = hmax8(_mm256_max_ps(h0, h1));
            }
            for (; i < len; i++) {
                if (xg[i] < st.lo)
                    st.lo = xg[i];
                if (xg[i] > st.hi)
                    st.hi = xg[i];
            }
        }
        mx_asym_group_scale(search ? &mx_search_ops_avx2 : NULL, xg, w, len, L, &st, &sh, &mh, &s, &m);
        mx_st16le(scales + 2 * j, sh);
        mx_st16le(mins + 2 * j, mh);

        if (!(s > 0.0f))
            continue; /* codes stay 0 */
        const __m256 vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(s);
        i = 0;
        if ((start * bits) % 8u == 0) {
            for (; i + 32 <= len; i += 32) {
                __m256i a = asym_codes8(_mm256_loadu_ps(xg + i), vm, vs, vL);
                __m256i b = asym_codes8(_mm256_loadu_ps(xg + i + 8), vm, vs, vL);
                __m256i c = asym_codes8(_mm256_loadu_ps(xg + i + 16), vm, vs, vL);
                __m256i d = asym_codes8(_mm256_loadu_ps(xg + i + 24), vm, vs, vL);
                store_codes32(codes + (start + i) * bits / 8u, bits, a, b, c, d);
            }
        }
        for (; i < len; i++) {
            size_t k = start + i;
            float t = (xg[i] - m) / s;
            t = t <= (float)L ? t : (float)L;
            t = t >= 0.0f ? t : 0.0f;
            codes[k * bits / 8u] |= (uint8_t)((unsigned)mx_round_half_even(t) << (k * bits % 8u));
        }
    }
}

static void avx2_int4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    asym_quantize(15, 4, x, n, group, p, out);
}

static void avx2_int2_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    asym_quantize(3, 2, x, n, group, p, out);
}

/* fl(fl(q * s) + m): separate multiply and add as in the reference (the product is exact). */
static inline __m256 qsm(__m256 q, __m256 vs, __m256 vm) { return _mm256_add_ps(_mm256_mul_ps(q, vs), vm); }

static inline __attribute__((always_inline)) void int4_dequantize(mx_crowptrs in, size_t n, unsigned group, float *out,
                                                                  bool checked)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *mins = in.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    const __m256i z = _mm256_setzero_si256();

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t sh = mx_ld16le(scales + 2 * j), mh = mx_ld16le(mins + 2 * j);
        if (checked && (!mx_f16_bits_finite(sh) || !mx_f16_bits_finite(mh))) { /* kernels.h: non-finite parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        float s = h2f(sh);
        float m = h2f(mh);
        const __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m);
        size_t i = 0;
        if ((start & 1u) == 0) {
            const uint8_t *cb = codes + start / 2;
            float *og = out + start;
            for (; i + 32 <= len; i += 32, cb += 16) {
                __m128i q0, q1;
                unpack_nibbles32(cb, &q0, &q1);
                _mm256_storeu_ps(og + i, qsm(nib_to_f(q0, z), vs, vm));
                _mm256_storeu_ps(og + i + 8, qsm(nib_to_f(_mm_unpackhi_epi64(q0, q0), z), vs, vm));
                _mm256_storeu_ps(og + i + 16, qsm(nib_to_f(q1, z), vs, vm));
                _mm256_storeu_ps(og + i + 24, qsm(nib_to_f(_mm_unpackhi_epi64(q1, q1), z), vs, vm));
            }
            for (; i + 8 <= len; i += 8, cb += 4)
                _mm256_storeu_ps(og + i, qsm(nib_to_f(unpack_nibbles8(cb), z), vs, vm));
        }
        for (; i < len; i++) {
            size_t k = start + i;
            unsigned q = (unsigned)(codes[k / 2u] >> (k * 4u % 8u)) & 0xFu;
            float pr = (float)q * s;
            out[k] = pr + m;
        }
    }
}

static inline __attribute__((always_inline)) void int2_dequantize(mx_crowptrs in, size_t n, unsigned group, float *out,
                                                                  bool checked)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *mins = in.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    const __m256i shifts = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), three = _mm256_set1_epi32(3);

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t sh = mx_ld16le(scales + 2 * j), mh = mx_ld16le(mins + 2 * j);
        if (checked && (!mx_f16_bits_finite(sh) || !mx_f16_bits_finite(mh))) { /* kernels.h: non-finite parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        float s = h2f(sh);
        float m = h2f(mh);
        const __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m);
        size_t i = 0;
        if ((start & 3u) == 0) {
            const uint8_t *cb = codes + start / 4;
            float *og = out + start;
            for (; i + 8 <= len; i += 8, cb += 2) {
                __m256i v = _mm256_set1_epi32(cb[0] | cb[1] << 8);
                __m256i q = _mm256_and_si256(_mm256_srlv_epi32(v, shifts), three);
                _mm256_storeu_ps(og + i, qsm(_mm256_cvtepi32_ps(q), vs, vm));
            }
        }
        for (; i < len; i++) {
            size_t k = start + i;
            unsigned q = (unsigned)(codes[k / 4u] >> (k * 2u % 8u)) & 3u;
            float pr = (float)q * s;
            out[k] = pr + m;
        }
    }
}

/* Groups of a row: ceil(n / g), g = group or n. */
static inline size_t row_groups(size_t n, unsigned group)
{
    size_t g = group != 0 ? group : n;
    return g != 0 ? (n + g - 1) / g : 0;
}

/*
 * The f16-parameter dequantizers: the loop without kernels.h's per-group
 * test when f16_all_finite finds every scale (and min) of the row finite,
 * else the loop with it (the same results either way).
 */
static void avx2_int8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    if (f16_all_finite(in.sec[MIXQ_SEC_SCALES], row_groups(n, group)))
        int8_dequantize(in, n, group, out, false);
    else
        int8_dequantize(in, n, group, out, true);
}

static void avx2_int4s_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    if (f16_all_finite(in.sec[MIXQ_SEC_SCALES], row_groups(n, group)))
        int4s_dequantize(in, n, group, out, false);
    else
        int4s_dequantize(in, n, group, out, true);
}

static void avx2_int4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    size_t ng = row_groups(n, group);
    if (f16_all_finite(in.sec[MIXQ_SEC_SCALES], ng) && f16_all_finite(in.sec[MIXQ_SEC_MINS], ng))
        int4_dequantize(in, n, group, out, false);
    else
        int4_dequantize(in, n, group, out, true);
}

static void avx2_int2_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    size_t ng = row_groups(n, group);
    if (f16_all_finite(in.sec[MIXQ_SEC_SCALES], ng) && f16_all_finite(in.sec[MIXQ_SEC_MINS], ng))
        int2_dequantize(in, n, group, out, false);
    else
        int2_dequantize(in, n, group, out, true);
}

/* ------------------------------------------------------------------------ */
/* fp8_e4m3 / fp8_e5m2 (fp8.h)                                              */
/* ------------------------------------------------------------------------ */

/* half.c fp8_round_mag on 8 magnitudes a (sign clear, finite, below the largest finite value). */
static inline __m256i fp8_round_mag8(__m256i a, int mbits, int bias)
{
    const int drop = 23 - mbits;
    const __m256i one = _mm256_set1_epi32(1);
    /* normal: rebias, round at bit `drop` */
    __m256i r = _mm256_sub_epi32(a, _mm256_set1_epi32((127 - bias) << 23));
    r = _mm256_add_epi32(r, _mm256_add_epi32(_mm256_set1_epi32((1 << (drop - 1)) - 1),
                                             _mm256_and_si256(_mm256_srli_epi32(r, drop), one)));
    r = _mm256_srli_epi32(r, drop);
    /* subnormal: round mant >> shift, shift = 151 - bias - mbits - e */
    __m256i e = _mm256_srli_epi32(a, 23);
    __m256i mant = _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi32(0x7FFFFF)), _mm256_set1_epi32(0x800000));
    __m256i sh = _mm256_sub_epi32(_mm256_set1_epi32(151 - bias - mbits), e);
    __m256i rs = _mm256_srlv_epi32(mant, sh);
    __m256i rem = _mm256_sub_epi32(mant, _mm256_sllv_epi32(rs, sh));
    __m256i half = _mm256_sllv_epi32(one, _mm256_sub_epi32(sh, one));
    __m256i up = _mm256_or_si256(_mm256_cmpgt_epi32(rem, half),
                                 _mm256_and_si256(_mm256_cmpeq_epi32(rem, half),
                                                  _mm256_cmpeq_epi32(_mm256_and_si256(rs, one), one)));
    rs = _mm256_sub_epi32(rs, up); /* up is -1 where rounding up */
    /* e < 127 - bias - mbits: zero */
    rs = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(127 - bias - mbits), e), rs);
    __m256i normal = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(((128 - bias) << 23) - 1));
    return _mm256_blendv_epi8(rs, r, normal);
}

/* mx_f32_to_e4m3 on 8 floats, codes as int32. */
static inline __m256i e4m3_enc8(__m256 f)
{
    __m256i u = _mm256_castps_si256(f);
    __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
    __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
    __m256i r = fp8_round_mag8(a, 3, 7);
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7E), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x43E00000 - 1)));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7F), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7F800000)));
    return _mm256_or_si256(r, sign);
}

/* mx_f32_to_e5m2 on 8 floats, codes as int32. */
static inline __m256i e5m2_enc8(__m256 f)
{
    __m256i u = _mm256_castps_si256(f);
    __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
    __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
    __m256i r = fp8_round_mag8(a, 2, 15);
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7B), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x47600000 - 1)));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7C), _mm256_cmpeq_epi32(a, _mm256_set1_epi32(0x7F800000)));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7E), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7F800000)));
    return _mm256_or_si256(r, sign);
}

/*
 * mx_e4m3_to_f32 on 8 codes (int32 0..255): the magnitude bits placed as an
 * f16 (bits << 7) read 2^8 too small, both for normals and subnormals, so
 * the value is that f16 times 256 (exact); S.1111.111 is the quiet NaN.
 */
static inline __m256 e4m3_dec8(__m256i c)
{
    __m256i mag = _mm256_and_si256(c, _mm256_set1_epi32(0x7F));
    __m256i hb = _mm256_or_si256(_mm256_slli_epi32(mag, 7), _mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x80)), 8));
    /* 8 halves -> the low 128 bits in order */
    __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(hb), _mm256_extracti128_si256(hb, 1));
    __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
    __m256i nan = _mm256_cmpeq_epi32(mag, _mm256_set1_epi32(0x7F));
    __m256i qn = _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x80)), 24),
                                 _mm256_set1_epi32(0x7FC00000));
    return _mm256_blendv_ps(v, _mm256_castsi256_ps(qn), _mm256_castsi256_ps(nan));
}

/* mx_e5m2_to_f32 on 8 codes: the f16 with bits code << 8. */
static inline __m256 e5m2_dec8(__m256i c)
{
    __m256i hb = _mm256_slli_epi32(c, 8);
    __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(hb), _mm256_extracti128_si256(hb, 1));
    return _mm256_cvtph_ps(h);
}

/*
 * dec(enc(t)) as a float without forming the code (the search error needs
 * only the value), same bits as mx_e4m3_to_f32(mx_f32_to_e4m3(t)) /
 * mx_e5m2_to_f32(mx_f32_to_e5m2(t)) for every input (checked on all 2^32):
 *   normal range: round the binary32 significand at bit 23 - mbits, ties to
 *     even (the integer rounding of half.c, without the rebias, which does
 *     not touch those bits); a carry into the exponent is the next binade;
 *   subnormal range (quantum u = 2^(1 - bias - mbits)): rhe(|t| / u) * u,
 *     both scalings exact powers of two, vroundps with an explicit
 *     round-to-nearest-even (so MXCSR's mode does not matter);
 *   saturation, infinity (E5M2) and NaN as the encoders; the sign of t is
 *     kept, also on a zero result (enc gives the -0 code, dec -0).
 */
static inline __m256 fp8_rt8(__m256 t, bool e4m3)
{
    const int mbits = e4m3 ? 3 : 2, bias = e4m3 ? 7 : 15, drop = 23 - mbits;
    __m256i u = _mm256_castps_si256(t);
    __m256i sign = _mm256_and_si256(u, _mm256_set1_epi32((int)0x80000000u));
    __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
    /* normal */
    __m256i r = _mm256_add_epi32(a, _mm256_add_epi32(_mm256_set1_epi32((1 << (drop - 1)) - 1),
                                                     _mm256_and_si256(_mm256_srli_epi32(a, drop), _mm256_set1_epi32(1))));
    r = _mm256_and_si256(r, _mm256_set1_epi32(~((1 << drop) - 1)));
    /* subnormal: u = 2^(1 - bias - mbits) */
    const float inv_q = e4m3 ? 0x1p9f : 0x1p16f, q = e4m3 ? 0x1p-9f : 0x1p-16f;
    __m256 sub = _mm256_mul_ps(_mm256_round_ps(_mm256_mul_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(inv_q)), RNE),
                               _mm256_set1_ps(q));
    __m256i normal = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(((128 - bias) << 23) - 1));
    __m256i v = _mm256_blendv_epi8(_mm256_castps_si256(sub), r, normal);
    if (e4m3) {
        v = _mm256_blendv_epi8(v, _mm256_set1_epi32(0x43E00000), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x43E00000 - 1)));
        v = _mm256_blendv_epi8(v, _mm256_set1_epi32(0x7FC00000), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7F800000)));
    } else {
        __m256i fin_sat = _mm256_and_si256(_mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x47600000 - 1)),
                                           _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7F800000), a));
        v = _mm256_blendv_epi8(v, _mm256_set1_epi32(0x47600000), fin_sat);
        v = _mm256_blendv_epi8(v, _mm256_set1_epi32(0x7F800000), _mm256_cmpeq_epi32(a, _mm256_set1_epi32(0x7F800000)));
        v = _mm256_blendv_epi8(v, _mm256_set1_epi32(0x7FC00000), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7F800000)));
    }
    return _mm256_castsi256_ps(_mm256_or_si256(v, sign));
}

typedef struct fp8_kind {
    float fmax;
    bool e4m3;
    uint8_t (*enc)(float);
    float (*dec)(uint8_t);
} fp8_kind;

static const fp8_kind K_E4M3 = {MX_FP8_E4M3_MAX, true, mx_f32_to_e4m3, mx_e4m3_to_f32};
static const fp8_kind K_E5M2 = {MX_FP8_E5M2_MAX, false, mx_f32_to_e5m2, mx_e5m2_to_f32};

static inline __m256i fp8_enc8(const fp8_kind *K, __m256 f) { return K->e4m3 ? e4m3_enc8(f) : e5m2_enc8(f); }
static inline __m256 fp8_dec8(const fp8_kind *K, __m256i c) { return K->e4m3 ? e4m3_dec8(c) : e5m2_dec8(c); }

/* As kernel_fp8.c fp8_encode_group: enc(fl(x / s)), all 0 for s == 0 (s > 0 otherwise). */
static void fp8_encode(const fp8_kind *K, const float *x, size_t len, float s, uint8_t *codes)
{
    size_t i = 0;
    if (!(s > 0.0f)) {
        memset(codes, 0, len);
        return;
    }
    const __m256 vs = _mm256_set1_ps(s);
    for (; i + 32 <= len; i += 32) {
        __m256i a = fp8_enc8(K, _mm256_div_ps(_mm256_loadu_ps(x + i), vs));
        __m256i b = fp8_enc8(K, _mm256_div_ps(_mm256_loadu_ps(x + i + 8), vs));
        __m256i c = fp8_enc8(K, _mm256_div_ps(_mm256_loadu_ps(x + i + 16), vs));
        __m256i d = fp8_enc8(K, _mm256_div_ps(_mm256_loadu_ps(x + i + 24), vs));
        _mm256_storeu_si256((__m256i *)(void *)(codes + i), pack32_epu8(a, b, c, d));
    }
    for (; i < len; i++) codes[i] = K->enc(x[i] / s);
}

/* kernel_fp8.c fp8_group_error: sum w (x - dec(enc(x / s)) s)^2 in lanes by index mod 8. */
static float fp8_group_error(const fp8_kind *K, const float *x, const float *w, size_t len, float s)
{
    const __m256 vs = _mm256_set1_ps(s);
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 xh = _mm256_mul_ps(fp8_rt8(_mm256_div_ps(v, vs), K->e4m3), vs);
        __m256 d = _mm256_sub_ps(v, xh);
        __m256 e = _mm256_mul_ps(d, d);
        if (w)
            e = _mm256_mul_ps(_mm256_loadu_ps(w + i), e);
        acc = _mm256_add_ps(acc, e);
    }
    if (i < len) {
        tail8 t = load_tail(x + i, w ? w + i : NULL, len - i);
        __m256 xh = _mm256_mul_ps(fp8_rt8(_mm256_div_ps(t.x, vs), K->e4m3), vs);
        __m256 d = _mm256_sub_ps(t.x, xh);
        __m256 e = _mm256_mul_ps(d, d);
        if (w)
            e = _mm256_mul_ps(t.w, e);
        acc = _mm256_add_ps(acc, _mm256_and_ps(e, t.live));
    }
    return lanes_sum(acc);
}

static void fp8_quantize(const fp8_kind *K, const float *x, size_t n, unsigned group, const mx_qparams *p,
                         mx_rowptrs out)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));

    if (n == 0)
        return;
    if (p != NULL && p->tensor_absmax >= 0.0f) {
        float s = mx_fp8_rtn_scale(p->tensor_absmax, K->fmax);
        mx_fp8_st_f32le(scales, s);
        fp8_encode(K, x, n, s, codes);
        return;
    }
    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float amax = 0.0f, s;
        size_t i = 0;
        if (len >= 8) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;
            for (; i + 16 <= len; i += 16) {
                a0 = _mm256_max_ps(a0, _mm256_and_ps(_mm256_loadu_ps(xg + i), absm));
                a1 = _mm256_max_ps(a1, _mm256_and_ps(_mm256_loadu_ps(xg + i + 8), absm));
            }
            for (; i + 8 <= len; i += 8)
                a0 = _mm256_max_ps(a0, _mm256_and_ps(_mm256_loadu_ps(xg + i), absm));
            amax = hmax8(_mm256_max_ps(a0, a1));
        }
        for (; i < len; i++) {
            float a = xg[i] < 0.0f ? -xg[i] : xg[i];
            if (a > amax)
                amax = a;
        }
        s = mx_fp8_rtn_scale(amax, K->fmax);
        if (p != NULL && p->search && s > 0.0f && amax <= FLT_MAX) {
            const float *w = p->importance ? p->importance + start : NULL;
            float best = fp8_group_error(K, xg, w, len, s);
            float s0 = s;
            for (int k = 1; k < MX_FP8_SEARCH_CANDIDATES; k++) {
                float sk = s0 * mx_fp8_search_mult[k];
                float err = fp8_group_error(K, xg, w, len, sk);
                if (err < best) {
                    best = err;
                    s = sk;
                }
            }
        }
        mx_fp8_st_f32le(scales + 4 * j, s);
        fp8_encode(K, xg, len, s, codes + start);
    }
}

static void fp8_dequantize(const fp8_kind *K, mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        float s = mx_fp8_ld_f32le(scales + 4 * j);
        if (!mx_f32_finite(s)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        const __m256 vs = _mm256_set1_ps(s);
        const uint8_t *cg = codes + start;
        float *og = out + start;
        size_t i = 0;
        for (; i + 16 <= len; i += 16) {
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(cg + i));
            _mm256_storeu_ps(og + i, _mm256_mul_ps(fp8_dec8(K, _mm256_cvtepu8_epi32(b)), vs));
            _mm256_storeu_ps(og + i + 8, _mm256_mul_ps(fp8_dec8(K, _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(b, b))), vs));
        }
        for (; i < len; i++) og[i] = K->dec(cg[i]) * s;
    }
}

static void avx2_e4m3_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    fp8_quantize(&K_E4M3, x, n, group, p, out);
}

static void avx2_e4m3_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    fp8_dequantize(&K_E4M3, in, n, group, out);
}

static void avx2_e5m2_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    fp8_quantize(&K_E5M2, x, n, group, p, out);
}

static void avx2_e5m2_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    fp8_dequantize(&K_E5M2, in, n, group, out);
}

/* ------------------------------------------------------------------------ */
/* double-quantized types: int4_dq, int2_dq, int3_dq, int6_dq (kernel_dq.c) */
/* ------------------------------------------------------------------------ */

#define DQ_MAX_GROUPS MX_DQ_MAX_GROUPS

typedef struct dq_type {
    mixq_qtype id;
    bool asym;
    int qlo, qhi;
    int clo, chi;
    unsigned qbias, cbias;
    mx_quantize_row_fn scalar_q; /* the reference (rows the vector code does not take) */
    mx_dequantize_row_fn scalar_d;
} dq_type;

static const dq_type D_INT4_DQ = {MIXQ_QT_INT4_DQ, true, 0, 15, 0, 63, 0, 0, kernel_int4_dq_quantize_row,
                                  kernel_int4_dq_dequantize_row};
static const dq_type D_INT2_DQ = {MIXQ_QT_INT2_DQ, true, 0, 3, 0, 15, 0, 0, kernel_int2_dq_quantize_row,
                                  kernel_int2_dq_dequantize_row};
static const dq_type D_INT3_DQ = {MIXQ_QT_INT3_DQ, false, -4, 3, -32, 31, 4, 32, kernel_int3_dq_quantize_row,
                                  kernel_int3_dq_dequantize_row};
static const dq_type D_INT6_DQ = {MIXQ_QT_INT6_DQ, false, -32, 31, -128, 127, 32, 128, kernel_int6_dq_quantize_row,
                                  kernel_int6_dq_dequantize_row};

/* Min, max and max |x| of x[0..n) (n >= 1), order-independent. */
static void minmax_abs(const float *x, size_t n, float *lo, float *hi, float *amax)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    float l = x[0], h = x[0], a = 0.0f;
    size_t i = 0;
    if (n >= 8) {
        __m256 vl = _mm256_loadu_ps(x), vh = vl, va = _mm256_and_ps(vl, absm);
        for (i = 8; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            vl = _mm256_min_ps(vl, v);
            vh = _mm256_max_ps(vh, v);
            va = _mm256_max_ps(va, _mm256_and_ps(v, absm));
        }
        l = hmin8(vl);
        h = hmax8(vh);
        a = hmax8(va);
    }
    for (; i < n; i++) {
        float v = x[i], av = v < 0.0f ? -v : v;
        l = v < l ? v : l;
        h = v > h ? v : h;
        a = av > a ? av : a;
    }
    *lo = l;
    *hi = h;
    *amax = a;
}

/* Bit-plane widths and offsets of a field (kernels.h mx_planes_*). */
typedef struct planes {
    unsigned np, w[QT_MAX_PLANES];
    size_t off[QT_MAX_PLANES];
    const uint8_t *spec;
} planes;

static void planes_init(planes *P, const uint8_t spec[QT_MAX_PLANES], size_t count)
{
    P->spec = spec;
    P->np = 0;
    for (int p = 0; p < QT_MAX_PLANES && spec[p] != 0; p++)
        P->w[P->np++] = spec[p];
    mx_planes_offsets(spec, count, P->off);
}

/*
 * ORs the codes u[0..len) of elements k0.. into the zeroed planes: whole
 * blocks of 32 (byte-aligned in every plane when k0 % 32 == 0) by vector
 * stores, the rest as the reference does.
 */
static void put_codes(uint8_t *base, const planes *P, size_t k0, const uint8_t *u, size_t len)
{
    size_t i = 0;
    if (k0 % 32 == 0) {
        for (; i + 32 <= len; i += 32) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(u + i));
            unsigned shift = 0;
            for (unsigned p = 0; p < P->np; p++) {
                unsigned w = P->w[p];
                /* bits shift .. shift + w - 1 of each byte (shift + w <= 8: no bits from the next byte) */
                __m256i part = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128((int)shift)),
                                                _mm256_set1_epi8((char)((1u << w) - 1u)));
                pack_plane32(base + P->off[p] + (k0 + i) * w / 8u, part, w);
                shift += w;
            }
        }
    }
    for (; i < len; i++) mx_planes_put(base, P->spec, P->off, k0 + i, u[i]);
}

/* The 8 fields of width w (1, 2, 4 or 8 bits) starting at byte b, as int32. */
static inline __m256i plane8(const uint8_t *b, unsigned w)
{
    uint32_t bits;
    switch (w) {
    case 8: return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)b));
    case 4: memcpy(&bits, b, 4);
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)bits), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                _mm256_set1_epi32(0xF));
    case 2: bits = (uint32_t)b[0] | (uint32_t)b[1] << 8;
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)bits), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                _mm256_set1_epi32(3));
    default: bits = b[0];
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)bits), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                                _mm256_set1_epi32(1));
    }
}

/* The codes of elements k..k+7 (k % 8 == 0) of a field of plane widths w0, w1 (0: none) at offsets o0, o1. */
static inline __attribute__((always_inline)) __m256i codes8_w(const uint8_t *base, size_t o0, size_t o1, unsigned w0,
                                                               unsigned w1, size_t k)
{
    __m256i u = plane8(base + o0 + k * w0 / 8u, w0);
    if (w1 != 0)
        u = _mm256_or_si256(u, _mm256_slli_epi32(plane8(base + o1 + k * w1 / 8u, w1), (int)w0));
    return u;
}

/* The codes of elements k..k+7 (k % 8 == 0) as int32. */
static inline __m256i get_codes8(const uint8_t *base, const planes *P, size_t k)
{
    __m256i u = plane8(base + P->off[0] + k * P->w[0] / 8u, P->w[0]);
    if (P->np > 1)
        u = _mm256_or_si256(u, _mm256_sll_epi32(plane8(base + P->off[1] + k * P->w[1] / 8u, P->w[1]),
                                                _mm_cvtsi32_si128((int)P->w[0])));
    if (P->np > 2)
        u = _mm256_or_si256(u, _mm256_sll_epi32(plane8(base + P->off[2] + k * P->w[2] / 8u, P->w[2]),
                                                _mm_cvtsi32_si128((int)(P->w[0] + P->w[1]))));
    return u;
}

static void dq_quantize(const dq_type *T, const float *x, size_t n, unsigned group, const mx_qparams *p,
                        mx_rowptrs out)
{
    const qtype_desc *qt = &mx_qtypes[T->id];
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    uint8_t *mins = out.sec[MIXQ_SEC_MINS];
    uint8_t *sups = out.sec[MIXQ_SEC_SUPER_SCALES];
    uint8_t *supm = out.sec[MIXQ_SEC_SUPER_MINS];
    unsigned G = mx_dq_group(group);
    size_t ng = (n + G - 1) / G;
    planes CP, SP;
    uint8_t u[MX_DQ_SUPER];

    if (p != NULL && p->search) {
        /* the reference drivers (two-level search), with the AVX2 passes */
        kernel_dq_quantize_row_ops(&mx_search_ops_avx2, T->id, x, n, group, p, out);
        return;
    }
    if (G % 8u != 0) { /* groups shorter than a vector: not worth it */
        T->scalar_q(x, n, group, p, out);
        return;
    }
    planes_init(&CP, qt->code_planes, n);
    planes_init(&SP, qt->scale_planes, ng);
    memset(codes, 0, mx_planes_bytes(qt->code_planes, n));
    memset(scales, 0, mx_planes_bytes(qt->scale_planes, ng));
    if (T->asym)
        memset(mins, 0, mx_planes_bytes(qt->scale_planes, ng));

    const __m256 vqlo = _mm256_set1_ps((float)T->qlo), vqhi = _mm256_set1_ps((float)T->qhi);
    const __m256i vqb = _mm256_set1_epi32((int)T->qbias);
    for (size_t b = 0, s0 = 0; s0 < n; b++, s0 += MX_DQ_SUPER) {
        size_t len = n - s0 < MX_DQ_SUPER ? n - s0 : MX_DQ_SUPER;
        const float *xs = x + s0;
        size_t j0 = s0 / G;
        float lo[DQ_MAX_GROUPS] = {0}, hi[DQ_MAX_GROUPS] = {0}, am[DQ_MAX_GROUPS] = {0};
        int ng_sb = 0;
        mx_dq_sb r;

        memset(&r, 0, sizeof r);
        for (size_t g0 = 0; g0 < len; g0 += G, ng_sb++) {
            size_t gl = len - g0 < G ? len - g0 : G;
            minmax_abs(xs + g0, gl, &lo[ng_sb], &hi[ng_sb], &am[ng_sb]);
        }
        if (T->asym)
            kernel_dq_plain_asym(T->qhi, T->chi, lo, hi, ng_sb, &r);
        else
            kernel_dq_plain_sym(T->qlo, T->chi, am, hi, ng_sb, &r);

        mx_st16le(sups + 2 * b, r.dh);
        if (T->asym)
            mx_st16le(supm + 2 * b, r.mh);
        int j = 0;
        for (size_t g0 = 0; g0 < len; g0 += G, j++) {
            size_t gl = len - g0 < G ? len - g0 : G, i = 0;
            float s = h2f(r.dh) * (float)r.sc[j];
            float m = T->asym ? h2f(r.mh) * (float)r.mc[j] : 0.0f;
            const float *xg = xs + g0;
            mx_planes_put(scales, SP.spec, SP.off, j0 + (size_t)j, (unsigned)(r.sc[j] + (int)T->cbias));
            if (T->asym)
                mx_planes_put(mins, SP.spec, SP.off, j0 + (size_t)j, (unsigned)r.mc[j]);
            /* element codes into u[] (q + qbias); q = 0 where the reference's elem_code gives 0 */
            bool zero = s == 0.0f || (T->asym && !(s > 0.0f));
            if (zero) {
                memset(u + g0, (int)T->qbias, gl);
                continue;
            }
            const __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m);
            for (; i + 8 <= gl; i += 8) {
                __m256 v = _mm256_loadu_ps(xg + i);
                __m256i q = T->asym ? clamp_rhe_lo(_mm256_div_ps(_mm256_sub_ps(v, vm), vs), _mm256_setzero_ps(), vqhi)
                                    : clamp_rhe_hi(_mm256_div_ps(v, vs), vqlo, vqhi);
                q = _mm256_add_epi32(q, vqb);
                __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
                _mm_storel_epi64((__m128i *)(void *)(u + g0 + i), _mm_packus_epi16(w16, w16));
            }
            for (; i < gl; i++) {
                int q = T->asym ? mx_round_half_even(mx_dqp_clampf((xg[i] - m) / s, 0.0f, (float)T->qhi, 0.0f))
                                : mx_round_half_even(mx_dqp_clampf(xg[i] / s, (float)T->qlo, (float)T->qhi, (float)T->qhi));
                u[g0 + i] = (uint8_t)(q + (int)T->qbias);
            }
        }
        put_codes(codes, &CP, s0, u, len);
    }
}

/*
 * Specialized by the wrappers for each type's code planes (w0, w1 compile-time
 * constants, so plane8's switch folds away); the code planes of every DQ type
 * have at most two planes.
 */
static inline __attribute__((always_inline)) void dq_dequantize(const dq_type *T, mx_crowptrs in, size_t n,
                                                                unsigned group, float *out, unsigned w0, unsigned w1)
{
    const qtype_desc *qt = &mx_qtypes[T->id];
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *mins = in.sec[MIXQ_SEC_MINS];
    const uint8_t *sups = in.sec[MIXQ_SEC_SUPER_SCALES];
    const uint8_t *supm = in.sec[MIXQ_SEC_SUPER_MINS];
    unsigned G = mx_dq_group(group);
    size_t ng = (n + G - 1) / G;
    planes CP, SP;

    if (G % 8u != 0) {
        T->scalar_d(in, n, group, out);
        return;
    }
    planes_init(&CP, qt->code_planes, n);
    planes_init(&SP, qt->scale_planes, ng);
    const __m256i vqb = _mm256_set1_epi32((int)T->qbias), vcb = _mm256_set1_epi32((int)T->cbias);
    for (size_t b = 0, s0 = 0; s0 < n; b++, s0 += MX_DQ_SUPER) {
        size_t len = n - s0 < MX_DQ_SUPER ? n - s0 : MX_DQ_SUPER;
        size_t j0 = s0 / G, nsb = (len + G - 1) / G, j = 0;
        uint16_t dh = mx_ld16le(sups + 2 * b), dmh = T->asym ? mx_ld16le(supm + 2 * b) : 0;
        if (!mx_f16_bits_finite(dh) || !mx_f16_bits_finite(dmh)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + s0, len);
            continue;
        }
        float d = h2f(dh), dm = h2f(dmh);
        float sj[DQ_MAX_GROUPS], mj[DQ_MAX_GROUPS];
        /* group scales fl(d * c) and mins fl(dm * mc) (exact products), 8 groups at a time */
        if (j0 % 8u == 0)
            for (; j + 8 <= nsb; j += 8) {
                __m256 c = _mm256_cvtepi32_ps(_mm256_sub_epi32(get_codes8(scales, &SP, j0 + j), vcb));
                _mm256_storeu_ps(sj + j, _mm256_mul_ps(_mm256_set1_ps(d), c));
                if (T->asym)
                    _mm256_storeu_ps(mj + j, _mm256_mul_ps(_mm256_set1_ps(dm), _mm256_cvtepi32_ps(get_codes8(mins, &SP, j0 + j))));
            }
        for (; j < nsb; j++) {
            sj[j] = d * (float)((int)mx_planes_get(scales, SP.spec, SP.off, j0 + j) - (int)T->cbias);
            mj[j] = T->asym ? dm * (float)mx_planes_get(mins, SP.spec, SP.off, j0 + j) : 0.0f;
        }
        j = 0;
        for (size_t g0 = s0; g0 < s0 + len; g0 += G, j++) {
            size_t gl = s0 + len - g0 < G ? s0 + len - g0 : G, i = 0;
            float s = sj[j], m = mj[j];
            const __m256 vs = _mm256_set1_ps(s), vm = _mm256_set1_ps(m);
            for (; i + 8 <= gl; i += 8) {
                __m256 q = _mm256_cvtepi32_ps(_mm256_sub_epi32(codes8_w(codes, CP.off[0], CP.off[1], w0, w1, g0 + i), vqb));
                __m256 v = _mm256_mul_ps(q, vs);
                _mm256_storeu_ps(out + g0 + i, T->asym ? _mm256_add_ps(v, vm) : v);
            }
            for (; i < gl; i++) {
                int q = (int)mx_planes_get(codes, CP.spec, CP.off, g0 + i) - (int)T->qbias;
                float v = (float)q * s;
                out[g0 + i] = T->asym ? v + m : v;
            }
        }
    }
}

/* W0, W1: the type's code planes (must equal the table's code_planes; checked in mx_simd_fill_avx2). */
#define DQ_WRAPPERS(NAME, T, W0, W1)                                                                        \
    static void avx2_##NAME##_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,    \
                                           mx_rowptrs out)                                                  \
    {                                                                                                       \
        dq_quantize(&T, x, n, group, p, out);                                                               \
    }                                                                                                       \
    static void avx2_##NAME##_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)          \
    {                                                                                                       \
        dq_dequantize(&T, in, n, group, out, W0, W1);                                                       \
    }

DQ_WRAPPERS(int4_dq, D_INT4_DQ, 4, 0)
DQ_WRAPPERS(int2_dq, D_INT2_DQ, 2, 0)
DQ_WRAPPERS(int3_dq, D_INT3_DQ, 2, 1)
DQ_WRAPPERS(int6_dq, D_INT6_DQ, 4, 2)

/* ------------------------------------------------------------------------ */

/* The DQ dequantizers are specialized for these code planes (DQ_WRAPPERS). */
static bool planes_match(mixq_qtype id)
{
    static const struct {
        mixq_qtype id;
        uint8_t w0, w1;
    } pl[] = {{MIXQ_QT_INT4_DQ, 4, 0}, {MIXQ_QT_INT2_DQ, 2, 0}, {MIXQ_QT_INT3_DQ, 2, 1}, {MIXQ_QT_INT6_DQ, 4, 2}};
    for (size_t i = 0; i < sizeof pl / sizeof pl[0]; i++)
        if (pl[i].id == id)
            return mx_qtypes[id].code_planes[0] == pl[i].w0 && mx_qtypes[id].code_planes[1] == pl[i].w1 &&
                   (pl[i].w1 == 0 || mx_qtypes[id].code_planes[2] == 0);
    return true;
}

/*
 * Each kernel is installed only while the table still holds the scalar
 * kernel it mirrors, so a table change never silently pairs new scalar
 * semantics with an old SIMD copy (the entry then stays scalar).
 */
void mx_simd_fill_avx2(mx_kernel_set *set)
{
    static const struct {
        mixq_qtype id;
        mx_quantize_row_fn ref_q, q;
        mx_dequantize_row_fn ref_d, d;
    } k[] = {
        {MIXQ_QT_INT8, kernel_int8_quantize_row, avx2_int8_quantize_row, kernel_int8_dequantize_row,
         avx2_int8_dequantize_row},
        {MIXQ_QT_INT4S, kernel_int4s_quantize_row, avx2_int4s_quantize_row, kernel_int4s_dequantize_row,
         avx2_int4s_dequantize_row},
        {MIXQ_QT_INT4, kernel_int4_quantize_row, avx2_int4_quantize_row, kernel_int4_dequantize_row,
         avx2_int4_dequantize_row},
        {MIXQ_QT_INT2, kernel_int2_quantize_row, avx2_int2_quantize_row, kernel_int2_dequantize_row,
         avx2_int2_dequantize_row},
        {MIXQ_QT_FP8_E4M3, kernel_fp8_e4m3_quantize_row, avx2_e4m3_quantize_row, kernel_fp8_e4m3_dequantize_row,
         avx2_e4m3_dequantize_row},
        {MIXQ_QT_FP8_E5M2, kernel_fp8_e5m2_quantize_row, avx2_e5m2_quantize_row, kernel_fp8_e5m2_dequantize_row,
         avx2_e5m2_dequantize_row},
#define DQ_ENTRY(ID, NAME)                                                                                  \
    {ID, kernel_##NAME##_quantize_row, avx2_##NAME##_quantize_row, kernel_##NAME##_dequantize_row,          \
     avx2_##NAME##_dequantize_row}
        DQ_ENTRY(MIXQ_QT_INT4_DQ, int4_dq),
        DQ_ENTRY(MIXQ_QT_INT2_DQ, int2_dq),
        DQ_ENTRY(MIXQ_QT_INT3_DQ, int3_dq),
        DQ_ENTRY(MIXQ_QT_INT6_DQ, int6_dq),
#undef DQ_ENTRY
    };
    set->f32_to_f16 = avx2_f32_to_f16;
    set->f16_to_f32 = avx2_f16_to_f32;
    set->f32_to_bf16 = avx2_f32_to_bf16;
    set->bf16_to_f32 = avx2_bf16_to_f32;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (mx_qtypes[k[i].id].quantize_row == k[i].ref_q && set->quantize_row[k[i].id] == k[i].ref_q)
            set->quantize_row[k[i].id] = k[i].q;
        if (mx_qtypes[k[i].id].dequantize_row == k[i].ref_d && set->dequantize_row[k[i].id] == k[i].ref_d &&
            planes_match(k[i].id))
            set->dequantize_row[k[i].id] = k[i].d;
    }
}
