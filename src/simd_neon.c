/*
 * simd_neon.c - AArch64 NEON kernels.  Every function here gives results
 * bit-identical to the scalar reference (kernel_*.c, half.c, simd.c) for
 * every input the reference accepts; tests/kernel_check.c compares them.
 *
 * Rules that keep them identical:
 *   - the same binary32 operations in the same order: vdivq_f32 where the
 *     reference divides, vmulq_f32 then vaddq_f32 where it multiplies then
 *     adds (never vfmaq/vmlaq, which may be fused); the build also passes
 *     -ffp-contract=off;
 *   - vcvtnq (round to nearest, ties to even) where the reference calls
 *     mx_round_half_even on a clamped value (|t| <= 2^24: the same integer);
 *   - clamps written as compare + select in the reference's order, so even a
 *     NaN quotient ends where the reference puts it;
 *   - per-group parameters (scale and min choice) computed by the same
 *     scalar code, only the reductions feeding them vectorised where the
 *     result does not depend on order (min, max);
 *   - f16 <-> f32 by the FCVTL/FCVTN instructions, which round to nearest
 *     even, keep subnormals and quiet a NaN keeping its sign and top payload
 *     bits exactly as half.c does (with the default FPCR: no flush to zero,
 *     no default-NaN mode, round to nearest - the Linux default).
 * Row heads and tails that do not fill a vector use the reference's scalar
 * code.
 */
#include <arm_neon.h>
#include <float.h>
#include <string.h>

#include "fp8.h"
#include "half.h"
#include "kernels.h"
#include "simd.h"

/* ------------------------------------------------------------------------ */
/* Array conversions                                                         */
/* ------------------------------------------------------------------------ */

static void neon_f16_to_f32(const uint16_t *src, size_t n, float *dst)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t h = vld1q_u16(src + i);
        float16x8_t hf = vreinterpretq_f16_u16(h);
        vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(hf)));
        vst1q_f32(dst + i + 4, vcvt_high_f32_f16(hf));
    }
    for (; i < n; i++)
        dst[i] = mx_f16_to_f32(src[i]);
}

static void neon_f32_to_f16(const float *src, size_t n, uint16_t *dst)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x4_t lo = vcvt_f16_f32(vld1q_f32(src + i));
        float16x8_t h = vcvt_high_f16_f32(lo, vld1q_f32(src + i + 4));
        vst1q_u16(dst + i, vreinterpretq_u16_f16(h));
    }
    for (; i < n; i++)
        dst[i] = mx_f32_to_f16(src[i]);
}

static void neon_bf16_to_f32(const uint16_t *src, size_t n, float *dst)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t h = vld1q_u16(src + i);
        vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
        vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
    }
    for (; i < n; i++)
        dst[i] = mx_bf16_to_f32(src[i]);
}

/* Four floats to bf16 exactly as mx_f32_to_bf16 (integer rounding, NaN quieted). */
static inline uint16x4_t bf16_round4(uint32x4_t u)
{
    uint32x4_t is_nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7FFFFFFFu)), vdupq_n_u32(0x7F800000u));
    uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1u));
    uint32x4_t r = vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7FFFu)), lsb);
    uint16x4_t rounded = vshrn_n_u32(r, 16);
    uint16x4_t quiet = vorr_u16(vshrn_n_u32(u, 16), vdup_n_u16(0x0040u));
    return vbsl_u16(vmovn_u32(is_nan), quiet, rounded);
}

static void neon_f32_to_bf16(const float *src, size_t n, uint16_t *dst)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x4_t lo = bf16_round4(vreinterpretq_u32_f32(vld1q_f32(src + i)));
        uint16x4_t hi = bf16_round4(vreinterpretq_u32_f32(vld1q_f32(src + i + 4)));
        vst1q_u16(dst + i, vcombine_u16(lo, hi));
    }
    for (; i < n; i++)
        dst[i] = mx_f32_to_bf16(src[i]);
}

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                            */
/* ------------------------------------------------------------------------ */

/* The reference's clamp "t = t <= hi ? t : hi; t = t >= lo ? t : lo" (NaN -> hi). */
static inline float32x4_t clamp_ref(float32x4_t t, float32x4_t lo, float32x4_t hi)
{
    t = vbslq_f32(vcleq_f32(t, hi), t, hi);
    return vbslq_f32(vcgeq_f32(t, lo), t, lo);
}

/* max |x| over xg[0..len) as the reference computes it (start 0, keep a > amax). */
static float absmax_ref(const float *xg, size_t len)
{
    float amax = 0.0f;
    size_t i = 0;
    if (len >= 4) {
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (; i + 4 <= len; i += 4)
            acc = vmaxnmq_f32(acc, vabsq_f32(vld1q_f32(xg + i)));
        amax = vmaxnmvq_f32(acc);
    }
    for (; i < len; i++) {
        float a = xg[i] < 0.0f ? -xg[i] : xg[i];
        if (a > amax)
            amax = a;
    }
    return amax;
}

/* min and max of xg[0..len) (len >= 1); +0 and -0 may come out either way, which no caller tells apart. */
static void minmax_ref(const float *xg, size_t len, float *lo_out, float *hi_out)
{
    float lo = xg[0], hi = xg[0];
    size_t i = 1;
    if (len >= 5) {
        float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
        for (; i + 4 <= len; i += 4) {
            float32x4_t v = vld1q_f32(xg + i);
            vlo = vminnmq_f32(vlo, v);
            vhi = vmaxnmq_f32(vhi, v);
        }
        lo = vminnmvq_f32(vlo);
        hi = vmaxnmvq_f32(vhi);
    }
    for (; i < len; i++) {
        if (xg[i] < lo)
            lo = xg[i];
        if (xg[i] > hi)
            hi = xg[i];
    }
    *lo_out = lo;
    *hi_out = hi;
}

/* 16 small non-negative int32 (4 vectors) to 16 bytes. */
static inline uint8x16_t narrow16_u32(uint32x4_t a, uint32x4_t b, uint32x4_t c, uint32x4_t d)
{
    uint16x8_t ab = vcombine_u16(vmovn_u32(a), vmovn_u32(b));
    uint16x8_t cd = vcombine_u16(vmovn_u32(c), vmovn_u32(d));
    return vcombine_u8(vmovn_u16(ab), vmovn_u16(cd));
}

/* 16 nibble codes (each <= 15) to 8 bytes, element 2i low, 2i+1 high. */
static inline uint8x8_t pack_nibbles(uint8x16_t q)
{
    uint16x8_t v = vreinterpretq_u16_u8(q);
    return vmovn_u16(vsraq_n_u16(v, v, 4));
}

/* The reference's nibble store: even k assigns the byte, odd k ORs the high nibble. */
static inline void put_nibble(uint8_t *codes, size_t k, int q)
{
    if (k % 2 == 0)
        codes[k / 2] = (uint8_t)q;
    else
        codes[k / 2] = (uint8_t)(codes[k / 2] | q << 4);
}

/* ------------------------------------------------------------------------ */
/* int8 (FORMAT.md §4.1, kernel_int8.c)                                      */
/* ------------------------------------------------------------------------ */

/* Same as kernel_int8.c: the smallest f16 s >= 0 with 127 * s >= amax. */
static uint16_t int8_scale(float amax)
{
    uint16_t h;
    if (!(amax > 0.0f))
        return 0;
    h = mx_f16_round_up(amax / 127.0f);
    while (h > 0 && 127.0f * mx_f16_to_f32((uint16_t)(h - 1u)) >= amax)
        h--;
    while (h < 0x7C00u && 127.0f * mx_f16_to_f32(h) < amax)
        h++;
    return h;
}

static inline int8x8_t int8_codes4x2(float32x4_t a, float32x4_t b, float32x4_t vs)
{
    const float32x4_t lo = vdupq_n_f32(-127.0f), hi = vdupq_n_f32(127.0f);
    int32x4_t qa = vcvtnq_s32_f32(clamp_ref(vdivq_f32(a, vs), lo, hi));
    int32x4_t qb = vcvtnq_s32_f32(clamp_ref(vdivq_f32(b, vs), lo, hi));
    return vmovn_s16(vcombine_s16(vmovn_s32(qa), vmovn_s32(qb)));
}

static void neon_int8_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                   mx_rowptrs out)
{
    (void)p;
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        uint8_t *cg = codes + start;
        uint16_t h = int8_scale(absmax_ref(xg, len));
        float s = mx_f16_to_f32(h);
        size_t i = 0;

        mx_st16le(scales + 2 * j, h);
        if (!(s > 0.0f)) {
            memset(cg, 0, len);
            continue;
        }
        float32x4_t vs = vdupq_n_f32(s);
        for (; i + 16 <= len; i += 16) {
            int8x8_t c0 = int8_codes4x2(vld1q_f32(xg + i), vld1q_f32(xg + i + 4), vs);
            int8x8_t c1 = int8_codes4x2(vld1q_f32(xg + i + 8), vld1q_f32(xg + i + 12), vs);
            vst1q_u8(cg + i, vreinterpretq_u8_s8(vcombine_s8(c0, c1)));
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

static void neon_int8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        float s = mx_f16_to_f32(mx_ld16le(scales + 2 * j));
        float32x4_t vs = vdupq_n_f32(s);
        const uint8_t *cg = codes + start;
        float *og = out + start;
        size_t i = 0;
        for (; i + 16 <= len; i += 16) {
            int8x16_t c = vreinterpretq_s8_u8(vld1q_u8(cg + i));
            int16x8_t lo = vmovl_s8(vget_low_s8(c)), hi = vmovl_high_s8(c);
            vst1q_f32(og + i, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vs));
            vst1q_f32(og + i + 4, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), vs));
            vst1q_f32(og + i + 8, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vs));
            vst1q_f32(og + i + 12, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), vs));
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
/* int4 (FORMAT.md §4.2, kernel_int4.c)                                      */
/* ------------------------------------------------------------------------ */

/* Same as kernel_int4.c: fl(m + 15 * s) >= hi. */
static int int4_covers(float m, uint16_t h, float hi)
{
    float top = 15.0f * mx_f16_to_f32(h);
    float sum = m + top;
    return sum >= hi;
}

/* Same as kernel_int4.c: the smallest f16 s >= 0 with fl(m + 15 * s) >= hi. */
static uint16_t int4_scale(float m, float hi)
{
    unsigned lo = 0, up = 0x7C00u;
    if (int4_covers(m, 0, hi))
        return 0;
    while (up - lo > 1u) {
        unsigned mid = lo + (up - lo) / 2u;
        if (int4_covers(m, (uint16_t)mid, hi))
            up = mid;
        else
            lo = mid;
    }
    return (uint16_t)up;
}

/* Codes round_half_even(clamp(fl(fl(x - m) / s), 0, max)) of four elements. */
static inline uint32x4_t asym_codes4(float32x4_t x, float32x4_t vm, float32x4_t vs, float32x4_t vmax)
{
    float32x4_t t = vdivq_f32(vsubq_f32(x, vm), vs);
    return vcvtnq_u32_f32(clamp_ref(t, vdupq_n_f32(0.0f), vmax));
}

/* The reference's scalar code of one element (asymmetric types). */
static inline int asym_code1(float x, float m, float s, float qmax)
{
    float d = x - m;
    float t = d / s;
    t = t <= qmax ? t : qmax;
    t = t >= 0.0f ? t : 0.0f;
    return mx_round_half_even(t);
}

static void neon_int4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                   mx_rowptrs out)
{
    (void)p;
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    uint8_t *mins = out.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float lo, hi, m, s;
        uint16_t mh, sh;
        size_t i = 0;

        minmax_ref(xg, len, &lo, &hi);
        mh = mx_f16_round_down(lo);
        m = mx_f16_to_f32(mh);
        sh = int4_scale(m, hi);
        s = mx_f16_to_f32(sh);
        mx_st16le(scales + 2 * j, sh);
        mx_st16le(mins + 2 * j, mh);

        if (!(s > 0.0f)) {
            for (i = 0; i < len; i++)
                put_nibble(codes, start + i, 0);
            continue;
        }
        if (start % 2 != 0) { /* odd group start (only with odd group sizes) */
            put_nibble(codes, start, asym_code1(xg[0], m, s, 15.0f));
            i = 1;
        }
        {
            float32x4_t vm = vdupq_n_f32(m), vs = vdupq_n_f32(s), vmax = vdupq_n_f32(15.0f);
            for (; i + 16 <= len; i += 16) {
                const float *xi = xg + i;
                uint8x16_t q = narrow16_u32(asym_codes4(vld1q_f32(xi), vm, vs, vmax),
                                            asym_codes4(vld1q_f32(xi + 4), vm, vs, vmax),
                                            asym_codes4(vld1q_f32(xi + 8), vm, vs, vmax),
                                            asym_codes4(vld1q_f32(xi + 12), vm, vs, vmax));
                vst1_u8(codes + (start + i) / 2, pack_nibbles(q));
            }
        }
        for (; i < len; i++)
            put_nibble(codes, start + i, asym_code1(xg[i], m, s, 15.0f));
    }
}

static void neon_int4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *mins = in.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        float s = mx_f16_to_f32(mx_ld16le(scales + 2 * j));
        float m = mx_f16_to_f32(mx_ld16le(mins + 2 * j));
        float32x4_t vs = vdupq_n_f32(s), vm = vdupq_n_f32(m);
        size_t i = 0;

        if (start % 2 != 0) {
            out[start] = (float)(codes[start / 2] >> 4) * s + m;
            i = 1;
        }
        for (; i + 16 <= len; i += 16) {
            size_t k = start + i; /* even */
            uint8x8_t b = vld1_u8(codes + k / 2);
            uint8x8_t lo = vand_u8(b, vdup_n_u8(0x0Fu)), hi = vshr_n_u8(b, 4);
            uint8x16_t q = vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
            uint16x8_t q0 = vmovl_u8(vget_low_u8(q)), q1 = vmovl_high_u8(q);
            float32x4_t f0 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(q0)));
            float32x4_t f1 = vcvtq_f32_u32(vmovl_high_u16(q0));
            float32x4_t f2 = vcvtq_f32_u32(vmovl_u16(vget_low_u16(q1)));
            float32x4_t f3 = vcvtq_f32_u32(vmovl_high_u16(q1));
            vst1q_f32(out + k, vaddq_f32(vmulq_f32(f0, vs), vm));
            vst1q_f32(out + k + 4, vfmaq_f32(vm, f1, vs));
            vst1q_f32(out + k + 8, vaddq_f32(vmulq_f32(f2, vs), vm));
            vst1q_f32(out + k + 12, vaddq_f32(vmulq_f32(f3, vs), vm));
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
/* fp8_e4m3 / fp8_e5m2 (fp8.h, kernel_fp8.c)                                 */
/* ------------------------------------------------------------------------ */

/*
 * float -> E4M3 code of four lanes (in u32 lanes), as mx_f32_to_e4m3: normal
 * results by the integer rebias-and-round of half.c; subnormal results
 * (|f| < 2^-6) are round_half_even(|f| / 2^-9), computed as the exact
 * product |f| * 2^9 rounded by FCVTNU (ties to even, as the reference's
 * remainder test; a carry gives the smallest normal code, as there).
 */
static inline uint32x4_t e4m3_enc4(float32x4_t f)
{
    uint32x4_t u = vreinterpretq_u32_f32(f);
    uint32x4_t a = vandq_u32(u, vdupq_n_u32(0x7FFFFFFFu));
    uint32x4_t sign = vandq_u32(vshrq_n_u32(u, 24), vdupq_n_u32(0x80u));
    uint32x4_t r = vsubq_u32(a, vdupq_n_u32(120u << 23));
    r = vaddq_u32(vaddq_u32(r, vdupq_n_u32((1u << 19) - 1u)), vandq_u32(vshrq_n_u32(r, 20), vdupq_n_u32(1u)));
    uint32x4_t normal = vshrq_n_u32(r, 20);
    uint32x4_t sub = vcvtnq_u32_f32(vmulq_f32(vabsq_f32(f), vdupq_n_f32(0x1p9f)));
    uint32x4_t mag = vbslq_u32(vcgeq_u32(a, vdupq_n_u32(121u << 23)), normal, sub);
    mag = vbslq_u32(vcgeq_u32(a, vdupq_n_u32(0x43E00000u)), vdupq_n_u32(0x7Eu), mag); /* >= 448, Inf */
    mag = vbslq_u32(vcgtq_u32(a, vdupq_n_u32(0x7F800000u)), vdupq_n_u32(0x7Fu), mag); /* NaN */
    return vorrq_u32(sign, mag);
}

/* float -> E5M2 code of four lanes, as mx_f32_to_e5m2 (subnormal unit 2^-16). */
static inline uint32x4_t e5m2_enc4(float32x4_t f)
{
    uint32x4_t u = vreinterpretq_u32_f32(f);
    uint32x4_t a = vandq_u32(u, vdupq_n_u32(0x7FFFFFFFu));
    uint32x4_t sign = vandq_u32(vshrq_n_u32(u, 24), vdupq_n_u32(0x80u));
    uint32x4_t r = vsubq_u32(a, vdupq_n_u32(112u << 23));
    r = vaddq_u32(vaddq_u32(r, vdupq_n_u32((1u << 20) - 1u)), vandq_u32(vshrq_n_u32(r, 21), vdupq_n_u32(1u)));
    uint32x4_t normal = vshrq_n_u32(r, 21);
    uint32x4_t sub = vcvtnq_u32_f32(vmulq_f32(vabsq_f32(f), vdupq_n_f32(0x1p16f)));
    uint32x4_t mag = vbslq_u32(vcgeq_u32(a, vdupq_n_u32(113u << 23)), normal, sub);
    mag = vbslq_u32(vcgeq_u32(a, vdupq_n_u32(0x47600000u)), vdupq_n_u32(0x7Bu), mag); /* >= 57344 */
    mag = vbslq_u32(vceqq_u32(a, vdupq_n_u32(0x7F800000u)), vdupq_n_u32(0x7Cu), mag); /* Inf */
    mag = vbslq_u32(vcgtq_u32(a, vdupq_n_u32(0x7F800000u)), vdupq_n_u32(0x7Eu), mag); /* NaN */
    return vorrq_u32(sign, mag);
}

/*
 * Codes (in the low byte of u16 lanes) -> floats, as mx_e5m2_to_f32 (the f16
 * c << 8, FCVTL) and mx_e4m3_to_f32: (c & 0x7F) << 7 is an f16 whose value
 * is exactly 2^-8 times the E4M3 magnitude (normal and subnormal alike), so
 * FCVTL and an exact multiply by 256 give it; then the sign bit, and the
 * quiet NaN with that sign for S.1111.111.
 */
static inline void e5m2_dec8(uint16x8_t c, float32x4_t *lo, float32x4_t *hi)
{
    float16x8_t h = vreinterpretq_f16_u16(vshlq_n_u16(c, 8));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
}

static inline void e4m3_dec8(uint16x8_t c, float32x4_t *lo, float32x4_t *hi)
{
    const float32x4_t k256 = vdupq_n_f32(256.0f);
    uint16x8_t mag = vandq_u16(c, vdupq_n_u16(0x7Fu));
    float16x8_t h = vreinterpretq_f16_u16(vshlq_n_u16(mag, 7));
    uint16x8_t is_nan = vceqq_u16(mag, vdupq_n_u16(0x7Fu));
    uint16x8_t sign = vandq_u16(c, vdupq_n_u16(0x80u));
    uint32x4_t slo = vshlq_n_u32(vmovl_u16(vget_low_u16(sign)), 24), shi = vshlq_n_u32(vmovl_high_u16(sign), 24);
    uint32x4_t nlo = vreinterpretq_u32_s32(vmovl_s16(vget_low_s16(vreinterpretq_s16_u16(is_nan))));
    uint32x4_t nhi = vreinterpretq_u32_s32(vmovl_high_s16(vreinterpretq_s16_u16(is_nan)));
    uint32x4_t blo = vorrq_u32(vreinterpretq_u32_f32(vmulq_f32(vcvt_f32_f16(vget_low_f16(h)), k256)), slo);
    uint32x4_t bhi = vorrq_u32(vreinterpretq_u32_f32(vmulq_f32(vcvt_high_f32_f16(h), k256)), shi);
    blo = vbslq_u32(nlo, vorrq_u32(slo, vdupq_n_u32(0x7FC00000u)), blo);
    bhi = vbslq_u32(nhi, vorrq_u32(shi, vdupq_n_u32(0x7FC00000u)), bhi);
    *lo = vreinterpretq_f32_u32(blo);
    *hi = vreinterpretq_f32_u32(bhi);
}

static inline uint32x4_t fp8_enc4(float32x4_t f, int e4m3)
{
    return e4m3 ? e4m3_enc4(f) : e5m2_enc4(f);
}

/* Codes of 8 lanes (two u32 vectors) back to floats. */
static inline void fp8_dec_u32x8(uint32x4_t c0, uint32x4_t c1, int e4m3, float32x4_t *lo, float32x4_t *hi)
{
    uint16x8_t c = vcombine_u16(vmovn_u32(c0), vmovn_u32(c1));
    if (e4m3)
        e4m3_dec8(c, lo, hi);
    else
        e5m2_dec8(c, lo, hi);
}

static inline uint8_t fp8_enc1(float f, int e4m3) { return e4m3 ? mx_f32_to_e4m3(f) : mx_f32_to_e5m2(f); }
static inline float fp8_dec1(uint8_t c, int e4m3) { return e4m3 ? mx_e4m3_to_f32(c) : mx_e5m2_to_f32(c); }

/* Same as kernel_fp8.c: the next binary32 above a finite s >= 0. */
static float next_up_f32(float s) { return mx_bits_f32(mx_f32_bits(s) + 1u); }

/* Same as kernel_fp8.c: the RTN scale for amax (fp8.h). */
static float fp8_rtn_scale(float amax, float fmax)
{
    float s;
    if (!(amax > 0.0f))
        return 0.0f;
    s = amax / fmax;
    if (!(amax <= FLT_MAX))
        return s;
    if (s == 0.0f)
        s = mx_bits_f32(1u);
    while (amax / s > fmax)
        s = next_up_f32(s);
    return s;
}

/* Codes enc(fl(x / s)) of x[0..len), all 0 if s == 0 (not > 0). */
static void fp8_encode_group(const float *x, size_t len, float s, int e4m3, uint8_t *codes)
{
    size_t i = 0;
    if (!(s > 0.0f)) {
        memset(codes, 0, len);
        return;
    }
    float32x4_t vs = vdupq_n_f32(s);
    for (; i + 16 <= len; i += 16) {
        uint8x16_t q = narrow16_u32(fp8_enc4(vdivq_f32(vld1q_f32(x + i), vs), e4m3),
                                    fp8_enc4(vdivq_f32(vld1q_f32(x + i + 4), vs), e4m3),
                                    fp8_enc4(vdivq_f32(vld1q_f32(x + i + 8), vs), e4m3),
                                    fp8_enc4(vdivq_f32(vld1q_f32(x + i + 12), vs), e4m3));
        vst1q_u8(codes + i, q);
    }
    for (; i < len; i++)
        codes[i] = fp8_enc1(x[i] / s, e4m3);
}

/*
 * The search error of scale s (fp8.h): lane k of acc0 / acc1 is the
 * reference's partial sum k / k + 4 (index mod 8), each summing its
 * elements in the same order; the tail continues in the same sums and the
 * combination is the reference's tree.
 */
static float fp8_group_error(const float *x, const float *w, size_t len, float s, int e4m3)
{
    float32x4_t vs = vdupq_n_f32(s), acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    float acc[8];
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4), d0, d1, e0, e1;
        uint32x4_t c0 = fp8_enc4(vdivq_f32(x0, vs), e4m3), c1 = fp8_enc4(vdivq_f32(x1, vs), e4m3);
        fp8_dec_u32x8(c0, c1, e4m3, &d0, &d1);
        d0 = vsubq_f32(x0, vmulq_f32(d0, vs));
        d1 = vsubq_f32(x1, vmulq_f32(d1, vs));
        e0 = vmulq_f32(d0, d0);
        e1 = vmulq_f32(d1, d1);
        if (w) {
            e0 = vmulq_f32(vld1q_f32(w + i), e0);
            e1 = vmulq_f32(vld1q_f32(w + i + 4), e1);
        }
        acc0 = vaddq_f32(acc0, e0);
        acc1 = vaddq_f32(acc1, e1);
    }
    vst1q_f32(acc, acc0);
    vst1q_f32(acc + 4, acc1);
    for (; i < len; i++) {
        float xh = fp8_dec1(fp8_enc1(x[i] / s, e4m3), e4m3) * s;
        float d = x[i] - xh;
        float e = d * d;
        if (w)
            e = w[i] * e;
        acc[i % 8] += e;
    }
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

static void neon_fp8_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                  mx_rowptrs out, float fmax, int e4m3)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    if (n == 0)
        return;
    if (p != NULL && p->tensor_absmax >= 0.0f) { /* per tensor: one scale, RTN */
        float s = fp8_rtn_scale(p->tensor_absmax, fmax);
        mx_fp8_st_f32le(scales, s);
        fp8_encode_group(x, n, s, e4m3, codes);
        return;
    }
    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float amax = absmax_ref(xg, len);
        float s = fp8_rtn_scale(amax, fmax);
        if (p != NULL && p->search && s > 0.0f && amax <= FLT_MAX) {
            const float *w = p->importance ? p->importance + start : NULL;
            float best = fp8_group_error(xg, w, len, s, e4m3);
            float s0 = s;
            for (int k = 1; k < MX_FP8_SEARCH_CANDIDATES; k++) {
                float sk = s0 * mx_fp8_search_mult[k];
                float err = fp8_group_error(xg, w, len, sk, e4m3);
                if (err < best) {
                    best = err;
                    s = sk;
                }
            }
        }
        mx_fp8_st_f32le(scales + 4 * j, s);
        fp8_encode_group(xg, len, s, e4m3, codes + start);
    }
}

static void neon_fp8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out, int e4m3)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        float s = mx_fp8_ld_f32le(scales + 4 * j);
        float32x4_t vs = vdupq_n_f32(s);
        const uint8_t *cg = codes + start;
        float *og = out + start;
        size_t i = 0;
        for (; i + 16 <= len; i += 16) {
            uint8x16_t c = vld1q_u8(cg + i);
            float32x4_t f0, f1, f2, f3;
            if (e4m3) {
                e4m3_dec8(vmovl_u8(vget_low_u8(c)), &f0, &f1);
                e4m3_dec8(vmovl_high_u8(c), &f2, &f3);
            } else {
                e5m2_dec8(vmovl_u8(vget_low_u8(c)), &f0, &f1);
                e5m2_dec8(vmovl_high_u8(c), &f2, &f3);
            }
            vst1q_f32(og + i, vmulq_f32(f0, vs));
            vst1q_f32(og + i + 4, vmulq_f32(f1, vs));
            vst1q_f32(og + i + 8, vmulq_f32(f2, vs));
            vst1q_f32(og + i + 12, vmulq_f32(f3, vs));
        }
        for (; i < len; i++)
            og[i] = fp8_dec1(cg[i], e4m3) * s;
    }
}

static void neon_fp8_e4m3_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                       mx_rowptrs out)
{
    neon_fp8_quantize_row(x, n, group, p, out, MX_FP8_E4M3_MAX, 1);
}
static void neon_fp8_e4m3_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    neon_fp8_dequantize_row(in, n, group, out, 1);
}
static void neon_fp8_e5m2_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                       mx_rowptrs out)
{
    neon_fp8_quantize_row(x, n, group, p, out, MX_FP8_E5M2_MAX, 0);
}
static void neon_fp8_e5m2_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    neon_fp8_dequantize_row(in, n, group, out, 0);
}

/* ------------------------------------------------------------------------ */

/* Installs a type's kernels if the type table has it in this build. */
static void install(mx_kernel_set *set, mixq_qtype t, mx_quantize_row_fn q, mx_dequantize_row_fn d)
{
    if (mx_qtypes[t].quantize_row == NULL || mx_qtypes[t].dequantize_row == NULL)
        return;
    set->quantize_row[t] = q;
    set->dequantize_row[t] = d;
}

void mx_simd_fill_neon(mx_kernel_set *set)
{
    set->f32_to_f16 = neon_f32_to_f16;
    set->f16_to_f32 = neon_f16_to_f32;
    set->f32_to_bf16 = neon_f32_to_bf16;
    set->bf16_to_f32 = neon_bf16_to_f32;

    install(set, MIXQ_QT_INT8, neon_int8_quantize_row, neon_int8_dequantize_row);
    install(set, MIXQ_QT_INT4, neon_int4_quantize_row, neon_int4_dequantize_row);
    install(set, MIXQ_QT_FP8_E4M3, neon_fp8_e4m3_quantize_row, neon_fp8_e4m3_dequantize_row);
    install(set, MIXQ_QT_FP8_E5M2, neon_fp8_e5m2_quantize_row, neon_fp8_e5m2_dequantize_row);
}
