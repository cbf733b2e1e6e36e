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
 *     scalar code (shared, never copied: kernel_scale_rules.h,
 *     kernel_dq_plain.h, kernel_dq.c's and quant_search.c's drivers), only the reductions
 *     feeding them vectorised: min / max / max |x| (order-independent; the
 *     sign of a zero result is fixed up to the reference's), and the search
 *     passes' sums in the reference's 8 partial sums (two float32x4_t per
 *     sum: lanes i % 8 = 0-3 and 4-7), combined by mx_lanes_sum;
 *   - f16 <-> f32 by the FCVTL/FCVTN instructions, which round to nearest
 *     even, keep subnormals and quiet a NaN keeping its sign and top payload
 *     bits exactly as half.c does (with the default FPCR: no flush to zero,
 *     no default-NaN mode, round to nearest - the Linux default).
 * Row heads and tails that do not fill a vector use the reference's scalar
 * code.  A group (DQ: super-block) with a non-finite stored scale, min,
 * super-scale or super-min is filled with the canonical NaN before any
 * arithmetic, as in the reference (kernels.h).
 */
#include <arm_neon.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/kernel_fp8.h"
#include "common/half.h"
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernel_scale_rules.h"
#include "kernels/kernels.h"
#include "kernels/quant_search.h"
#include "kernels/simd.h"

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

/* The kernels' clamp "t = t <= hi ? t : hi; t = t >= lo ? t : lo" (NaN -> hi). */
static inline float32x4_t clamp_ref(float32x4_t t, float32x4_t lo, float32x4_t hi)
{
    t = vbslq_f32(vcleq_f32(t, hi), t, hi);
    return vbslq_f32(vcgeq_f32(t, lo), t, lo);
}

/*
 * quant_search.c's clamp_round before the rounding: NaN -> nan_to, then
 * "t < lo ? lo : t", "t > hi ? hi : t" (for non-NaN t these are FMAX/FMIN,
 * -0 included: -0 < lo is false for lo <= 0, as FMAX(-0, lo) = -0).
 */
static inline float32x4_t clamp_search(float32x4_t t, float32x4_t lo, float32x4_t hi, float32x4_t nan_to)
{
    t = vbslq_f32(vceqq_f32(t, t), t, nan_to);
    return vminq_f32(vmaxq_f32(t, lo), hi);
}

/* round_half_even of clamped values as a float (+0 for zero, like (float)mx_round_half_even). */
static inline float32x4_t rhe_f32(float32x4_t t)
{
    return vcvtq_f32_s32(vcvtnq_s32_f32(t));
}

/* Scalar copy of quant_search.c's clamp_round, for the tails. */
static inline int clamp_round1(float t, float lo, float hi, float nan_to)
{
    if (t != t)
        t = nan_to;
    t = t < lo ? lo : t;
    t = t > hi ? hi : t;
    return mx_round_half_even(t);
}

/* The reference's "keep x[i] if strictly below / above": a zero result is the first zero in order. */
static float first_zero(const float *x, size_t len, float z)
{
    for (size_t i = 0; i < len; i++)
        if (x[i] == 0.0f)
            return x[i];
    return z;
}

/* max |x| over xg[0..len) as the reference computes it (start +0, keep a > amax). */
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

/*
 * min and max of xg[0..len) (len >= 1) as the reference's loops "lo = x[0];
 * if (x[i] < lo) lo = x[i]" find them, including which zero (+0 / -0) when
 * the extreme is zero.
 */
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
    if (lo == 0.0f)
        lo = first_zero(xg, len, lo);
    if (hi == 0.0f)
        hi = first_zero(xg, len, hi);
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

/*
 * 16 codes of `bits` bits (8, 4, 2, 1; each < 2^bits) stored at p, element k
 * of the chunk in bits (k bits) mod 8 of byte k bits / 8 (16 bits / 8 bytes).
 */
static inline void pack16(uint8x16_t u, unsigned bits, uint8_t *p)
{
    switch (bits) {
    case 8:
        vst1q_u8(p, u);
        break;
    case 4: {
        uint16x8_t v = vreinterpretq_u16_u8(u);
        vst1_u8(p, vmovn_u16(vsraq_n_u16(v, v, 4)));
        break;
    }
    case 2: {
        uint32x4_t v = vreinterpretq_u32_u8(u);
        v = vsraq_n_u32(v, v, 6);  /* q1 << 2 into byte 0, q3 << 18 into byte 2 */
        v = vsraq_n_u32(v, v, 12); /* q2 << 4, q3 << 6 into byte 0 */
        uint32_t b = vget_lane_u32(vreinterpret_u32_u8(vmovn_u16(vcombine_u16(vmovn_u32(v), vdup_n_u16(0)))), 0);
        memcpy(p, &b, 4);
        break;
    }
    default: { /* 1 */
        static const int8_t sh[16] = {0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7};
        uint8x16_t v = vshlq_u8(u, vld1q_s8(sh));
        p[0] = vaddv_u8(vget_low_u8(v));
        p[1] = vaddv_u8(vget_high_u8(v));
        break;
    }
    }
}

/* The inverse: 16 codes of `bits` bits from p. */
static inline uint8x16_t unpack16(const uint8_t *p, unsigned bits)
{
    switch (bits) {
    case 8:
        return vld1q_u8(p);
    case 4: {
        uint8x8_t b = vld1_u8(p);
        uint8x8_t lo = vand_u8(b, vdup_n_u8(0x0Fu)), hi = vshr_n_u8(b, 4);
        return vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
    }
    case 2: {
        static const uint8_t idx[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
        static const int8_t sh[16] = {0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6};
        uint32_t w;
        memcpy(&w, p, 4);
        uint8x16_t b = vqtbl1q_u8(vreinterpretq_u8_u32(vdupq_n_u32(w)), vld1q_u8(idx));
        return vandq_u8(vshlq_u8(b, vld1q_s8(sh)), vdupq_n_u8(3u));
    }
    default: { /* 1 */
        static const uint8_t idx[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
        static const int8_t sh[16] = {0, -1, -2, -3, -4, -5, -6, -7, 0, -1, -2, -3, -4, -5, -6, -7};
        uint16_t w;
        memcpy(&w, p, 2);
        uint8x16_t b = vqtbl1q_u8(vreinterpretq_u8_u16(vdupq_n_u16(w)), vld1q_u8(idx));
        return vandq_u8(vshlq_u8(b, vld1q_s8(sh)), vdupq_n_u8(1u));
    }
    }
}

/* 16 bytes to four float vectors (unsigned values). */
static inline void u8x16_to_f32(uint8x16_t u, float32x4_t f[4])
{
    uint16x8_t a = vmovl_u8(vget_low_u8(u)), b = vmovl_high_u8(u);
    f[0] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(a)));
    f[1] = vcvtq_f32_u32(vmovl_high_u16(a));
    f[2] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(b)));
    f[3] = vcvtq_f32_u32(vmovl_high_u16(b));
}

/* ORs code u of element k into a zeroed field of `bits`-bit codes (the reference's store). */
static inline void put_code(uint8_t *codes, unsigned bits, size_t k, unsigned u)
{
    if (bits == 8)
        codes[k] = (uint8_t)u;
    else
        codes[k * bits / 8u] |= (uint8_t)(u << (k * bits % 8u));
}

static inline unsigned get_code(const uint8_t *codes, unsigned bits, size_t k)
{
    if (bits == 8)
        return codes[k];
    return (unsigned)(codes[k * bits / 8u] >> (k * bits % 8u)) & ((1u << bits) - 1u);
}

/* ------------------------------------------------------------------------ */
/* Search passes (quant_search.h), the reference's reduction order           */
/* ------------------------------------------------------------------------ */

/*
 * Every pass keeps the reference's 8 partial sums acc[i % 8] in two
 * vectors (lanes 0-3, 4-7), 8 elements per iteration, then continues the
 * same partial sums in scalar code for the last len % 8 elements and
 * combines them with mx_lanes_sum.  With w == NULL the reference multiplies
 * by 1.0f, which is exact, so the vector code skips those products.
 */
static inline void lanes_finish(float32x4_t a0, float32x4_t a1, float acc[MX_LANES])
{
    vst1q_f32(acc, a0);
    vst1q_f32(acc + 4, a1);
}

static void n_stats(const float *x, const float *w, size_t n, mx_gstats *out)
{
    float32x4_t sw0 = vdupq_n_f32(0.0f), sw1 = sw0, sx0 = sw0, sx1 = sw0;
    const float32x4_t one = vdupq_n_f32(1.0f);
    float sw[MX_LANES], sx[MX_LANES];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4);
        if (w) {
            float32x4_t w0 = vld1q_f32(w + i), w1 = vld1q_f32(w + i + 4);
            sw0 = vaddq_f32(sw0, w0);
            sw1 = vaddq_f32(sw1, w1);
            sx0 = vaddq_f32(sx0, vmulq_f32(w0, x0));
            sx1 = vaddq_f32(sx1, vmulq_f32(w1, x1));
        } else {
            sw0 = vaddq_f32(sw0, one);
            sw1 = vaddq_f32(sw1, one);
            sx0 = vaddq_f32(sx0, x0);
            sx1 = vaddq_f32(sx1, x1);
        }
    }
    lanes_finish(sw0, sw1, sw);
    lanes_finish(sx0, sx1, sx);
    for (; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        sw[i % MX_LANES] += wi;
        sx[i % MX_LANES] += wi * x[i];
    }
    if (n) {
        minmax_ref(x, n, &out->lo, &out->hi);
    } else {
        out->lo = out->hi = 0.0f;
    }
    out->amax = absmax_ref(x, n);
    out->sw = mx_lanes_sum(sw);
    out->sx = mx_lanes_sum(sx);
}

static void n_sym_pass(const float *x, const float *w, size_t n, int qlo, int qhi, float id, float *sxq,
                       float *sqq)
{
    const float32x4_t vid = vdupq_n_f32(id), vlo = vdupq_n_f32((float)qlo), vhi = vdupq_n_f32((float)qhi);
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, b0 = a0, b1 = a0;
    float a[MX_LANES], b[MX_LANES];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4);
        float32x4_t q0 = rhe_f32(clamp_search(vmulq_f32(x0, vid), vlo, vhi, vhi));
        float32x4_t q1 = rhe_f32(clamp_search(vmulq_f32(x1, vid), vlo, vhi, vhi));
        float32x4_t wx0 = x0, wx1 = x1, wq0 = q0, wq1 = q1;
        if (w) {
            float32x4_t w0 = vld1q_f32(w + i), w1 = vld1q_f32(w + i + 4);
            wx0 = vmulq_f32(w0, x0);
            wx1 = vmulq_f32(w1, x1);
            wq0 = vmulq_f32(w0, q0);
            wq1 = vmulq_f32(w1, q1);
        }
        a0 = vaddq_f32(a0, vmulq_f32(wx0, q0));
        a1 = vaddq_f32(a1, vmulq_f32(wx1, q1));
        b0 = vaddq_f32(b0, vmulq_f32(wq0, q0));
        b1 = vaddq_f32(b1, vmulq_f32(wq1, q1));
    }
    lanes_finish(a0, a1, a);
    lanes_finish(b0, b1, b);
    for (; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float q = (float)clamp_round1(x[i] * id, (float)qlo, (float)qhi, (float)qhi);
        a[i % MX_LANES] += (wi * x[i]) * q;
        b[i % MX_LANES] += (wi * q) * q;
    }
    *sxq = mx_lanes_sum(a);
    *sqq = mx_lanes_sum(b);
}

/* K candidate passes (quant_search.h sym_pass_multi): n_sym_pass for each, inlined into one call. */
static void n_sym_pass_multi(const float *x, const float *w, size_t n, int qlo, int qhi, size_t K,
                             const float *id, float *sxq, float *sqq)
{
    for (size_t k = 0; k < K; k++)
        n_sym_pass(x, w, n, qlo, qhi, id[k], &sxq[k], &sqq[k]);
}

static float n_sym_err(const float *x, const float *w, size_t n, int qlo, int qhi, float d)
{
    const float32x4_t vd = vdupq_n_f32(d), vlo = vdupq_n_f32((float)qlo), vhi = vdupq_n_f32((float)qhi);
    const int dz = d == 0.0f;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    float a[MX_LANES];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4), q0, q1, e0, e1;
        if (dz) {
            q0 = q1 = vdupq_n_f32(0.0f);
        } else {
            q0 = rhe_f32(clamp_search(vdivq_f32(x0, vd), vlo, vhi, vhi));
            q1 = rhe_f32(clamp_search(vdivq_f32(x1, vd), vlo, vhi, vhi));
        }
        e0 = vsubq_f32(x0, vmulq_f32(q0, vd));
        e1 = vsubq_f32(x1, vmulq_f32(q1, vd));
        e0 = vmulq_f32(e0, e0);
        e1 = vmulq_f32(e1, e1);
        if (w) {
            e0 = vmulq_f32(vld1q_f32(w + i), e0);
            e1 = vmulq_f32(vld1q_f32(w + i + 4), e1);
        }
        a0 = vaddq_f32(a0, e0);
        a1 = vaddq_f32(a1, e1);
    }
    lanes_finish(a0, a1, a);
    for (; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float q = d != 0.0f ? (float)clamp_round1(x[i] / d, (float)qlo, (float)qhi, (float)qhi) : 0.0f;
        float e = x[i] - q * d;
        a[i % MX_LANES] += wi * (e * e);
    }
    return mx_lanes_sum(a);
}

static void n_asym_pass(const float *x, const float *w, size_t n, int L, float m, float id, float *sq,
                        float *sqq, float *sxq)
{
    const float32x4_t vm = vdupq_n_f32(m), vid = vdupq_n_f32(id), vL = vdupq_n_f32((float)L);
    const float32x4_t zero = vdupq_n_f32(0.0f);
    float32x4_t a0 = zero, a1 = zero, b0 = zero, b1 = zero, c0 = zero, c1 = zero;
    float a[MX_LANES], b[MX_LANES], c[MX_LANES];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4);
        float32x4_t q0 = rhe_f32(clamp_search(vmulq_f32(vsubq_f32(x0, vm), vid), zero, vL, zero));
        float32x4_t q1 = rhe_f32(clamp_search(vmulq_f32(vsubq_f32(x1, vm), vid), zero, vL, zero));
        float32x4_t wq0 = q0, wq1 = q1;
        if (w) {
            wq0 = vmulq_f32(vld1q_f32(w + i), q0);
            wq1 = vmulq_f32(vld1q_f32(w + i + 4), q1);
        }
        a0 = vaddq_f32(a0, wq0);
        a1 = vaddq_f32(a1, wq1);
        b0 = vaddq_f32(b0, vmulq_f32(wq0, q0));
        b1 = vaddq_f32(b1, vmulq_f32(wq1, q1));
        c0 = vaddq_f32(c0, vmulq_f32(wq0, x0));
        c1 = vaddq_f32(c1, vmulq_f32(wq1, x1));
    }
    lanes_finish(a0, a1, a);
    lanes_finish(b0, b1, b);
    lanes_finish(c0, c1, c);
    for (; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float q = (float)clamp_round1((x[i] - m) * id, 0.0f, (float)L, 0.0f);
        float wq = wi * q;
        a[i % MX_LANES] += wq;
        b[i % MX_LANES] += wq * q;
        c[i % MX_LANES] += wq * x[i];
    }
    *sq = mx_lanes_sum(a);
    *sqq = mx_lanes_sum(b);
    *sxq = mx_lanes_sum(c);
}

/* K candidate passes (quant_search.h asym_pass_multi): n_asym_pass for each, inlined into one call. */
static void n_asym_pass_multi(const float *x, const float *w, size_t n, int L, size_t K, const float *m,
                              const float *id, float *sq, float *sqq, float *sxq)
{
    for (size_t k = 0; k < K; k++)
        n_asym_pass(x, w, n, L, m[k], id[k], &sq[k], &sqq[k], &sxq[k]);
}

static float n_asym_err(const float *x, const float *w, size_t n, int L, float s, float m)
{
    const float32x4_t vs = vdupq_n_f32(s), vm = vdupq_n_f32(m), vL = vdupq_n_f32((float)L);
    const float32x4_t zero = vdupq_n_f32(0.0f);
    const int spos = s > 0.0f;
    float32x4_t a0 = zero, a1 = zero;
    float a[MX_LANES];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4), q0 = zero, q1 = zero, e0, e1;
        if (spos) {
            q0 = rhe_f32(clamp_search(vdivq_f32(vsubq_f32(x0, vm), vs), zero, vL, zero));
            q1 = rhe_f32(clamp_search(vdivq_f32(vsubq_f32(x1, vm), vs), zero, vL, zero));
        }
        e0 = vsubq_f32(x0, vaddq_f32(vmulq_f32(q0, vs), vm));
        e1 = vsubq_f32(x1, vaddq_f32(vmulq_f32(q1, vs), vm));
        e0 = vmulq_f32(e0, e0);
        e1 = vmulq_f32(e1, e1);
        if (w) {
            e0 = vmulq_f32(vld1q_f32(w + i), e0);
            e1 = vmulq_f32(vld1q_f32(w + i + 4), e1);
        }
        a0 = vaddq_f32(a0, e0);
        a1 = vaddq_f32(a1, e1);
    }
    lanes_finish(a0, a1, a);
    for (; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float q = s > 0.0f ? (float)clamp_round1((x[i] - m) / s, 0.0f, (float)L, 0.0f) : 0.0f;
        float e = x[i] - (q * s + m);
        a[i % MX_LANES] += wi * (e * e);
    }
    return mx_lanes_sum(a);
}

/* The NEON search passes (also reachable by tests/kernel_check.c, which compares them directly). */
const mx_search_ops mx_search_ops_neon = {
    .stats = n_stats,
    .sym_pass = n_sym_pass,
    .sym_err = n_sym_err,
    .asym_pass = n_asym_pass,
    .asym_err = n_asym_err,
    .asym_pass_multi = n_asym_pass_multi,
    .sym_pass_multi = n_sym_pass_multi,
};

/* ------------------------------------------------------------------------ */
/* Symmetric f16-scale types: int8 (FORMAT.md §4.1), int4s (§4.3)            */
/* ------------------------------------------------------------------------ */

/* As kernel_int8.c's symf16_type. */
typedef struct sym_type {
    int qlo, qhi;
    float top;
    bool positive;
    unsigned bits, bias;
} sym_type;

static const sym_type S_INT8 = {-127, 127, 127.0f, true, 8, 256};
static const sym_type S_INT4S = {-8, 7, 8.0f, false, 4, 8};

/* Stored codes (q + bias) mod 2^bits of four elements, q = rhe(clamp(x / d, qlo, qhi)). */
static inline uint32x4_t sym_codes4(float32x4_t x, float32x4_t vd, float32x4_t vlo, float32x4_t vhi,
                                    int32x4_t vbias, uint32x4_t vmask)
{
    int32x4_t q = vcvtnq_s32_f32(clamp_ref(vdivq_f32(x, vd), vlo, vhi));
    return vandq_u32(vreinterpretq_u32_s32(vaddq_s32(q, vbias)), vmask);
}

static inline unsigned sym_code1(const sym_type *T, float x, float d)
{
    int q = 0;
    if (d != 0.0f) {
        float t = x / d;
        t = t <= (float)T->qhi ? t : (float)T->qhi;
        t = t >= (float)T->qlo ? t : (float)T->qlo;
        q = mx_round_half_even(t);
    }
    return (unsigned)(q + (int)T->bias) & ((1u << T->bits) - 1u);
}

static void sym_quantize(const sym_type *T, const float *x, size_t n, unsigned group, const mx_qparams *p,
                         mx_rowptrs out)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    bool search = p != NULL && p->search;
    const size_t per_byte = 8u / T->bits;
    size_t start, j;

    if (T->bits < 8)
        memset(codes, 0, (n * T->bits + 7u) / 8u);
    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float amax = absmax_ref(xg, len), lo, hi, d;
        uint16_t h;
        size_t i = 0;

        minmax_ref(xg, len, &lo, &hi);
        h = mx_sym_group_scale(search ? &mx_search_ops_neon : NULL, xg,
                               search && p->importance ? p->importance + start : NULL, len, T->qlo, T->qhi, T->top,
                               T->positive, amax, hi, &d);
        mx_st16le(scales + 2 * j, h);

        /* head up to a byte boundary, 16 at a time, tail */
        for (; i < len && (start + i) % per_byte != 0; i++)
            put_code(codes, T->bits, start + i, sym_code1(T, xg[i], d));
        if (d != 0.0f) {
            const float32x4_t vd = vdupq_n_f32(d), vlo = vdupq_n_f32((float)T->qlo), vhi = vdupq_n_f32((float)T->qhi);
            const int32x4_t vb = vdupq_n_s32((int32_t)T->bias);
            const uint32x4_t vmask = vdupq_n_u32((1u << T->bits) - 1u);
            for (; i + 16 <= len; i += 16) {
                const float *xi = xg + i;
                uint8x16_t u = narrow16_u32(sym_codes4(vld1q_f32(xi), vd, vlo, vhi, vb, vmask),
                                            sym_codes4(vld1q_f32(xi + 4), vd, vlo, vhi, vb, vmask),
                                            sym_codes4(vld1q_f32(xi + 8), vd, vlo, vhi, vb, vmask),
                                            sym_codes4(vld1q_f32(xi + 12), vd, vlo, vhi, vb, vmask));
                pack16(u, T->bits, codes + (start + i) * T->bits / 8u);
            }
        } else {
            uint8x16_t u = vdupq_n_u8((uint8_t)(T->bias & ((1u << T->bits) - 1u)));
            for (; i + 16 <= len; i += 16)
                pack16(u, T->bits, codes + (start + i) * T->bits / 8u);
        }
        for (; i < len; i++)
            put_code(codes, T->bits, start + i, sym_code1(T, xg[i], d));
    }
}

/* The reference's reconstruction of element k. */
static inline float sym_dec1(const sym_type *T, const uint8_t *codes, size_t k, float d)
{
    int q = (int)get_code(codes, T->bits, k) - (int)T->bias;
    if (T->bits == 8 && q < -128)
        q += 256;
    return (float)q * d;
}

/*
 * True if the count little-endian f16 at p are all finite (mx_f16_bits_finite),
 * tested on their high bytes (sign, exponent, top two mantissa bits): one pass
 * over a row's scales (or mins) before the dequantize loop, so that a row
 * without a non-finite parameter (every valid row) runs a loop without the
 * per-group test of kernels.h's rule.
 */
static inline bool f16_all_finite(const uint8_t *p, size_t count)
{
    const uint8x16_t e = vdupq_n_u8(0x7C);
    uint8x16_t acc = vdupq_n_u8(0);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        uint8x16x2_t v = vld2q_u8(p + 2 * i); /* val[1]: the high bytes */
        acc = vorrq_u8(acc, vceqq_u8(vandq_u8(v.val[1], e), e));
    }
    bool ok = vmaxvq_u8(acc) == 0;
    for (; i < count; i++)
        ok = ok && mx_f16_bits_finite(mx_ld16le(p + 2 * i));
    return ok;
}

/* Groups of a row: ceil(n / g), g = group or n. */
static inline size_t row_groups(size_t n, unsigned group)
{
    size_t g = group != 0 ? group : n;
    return g != 0 ? (n + g - 1) / g : 0;
}

/* checked: apply kernels.h's per-group test (needed only if f16_all_finite fails for the row). */
static inline __attribute__((always_inline)) void sym_dequantize(const sym_type *T, mx_crowptrs in, size_t n,
                                                                 unsigned group, float *out, bool checked)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    const size_t per_byte = 8u / T->bits;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t h = mx_ld16le(scales + 2 * j);
        if (checked && !mx_f16_bits_finite(h)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        float d = mx_f16_to_f32(h);
        const float32x4_t vd = vdupq_n_f32(d);
        size_t i = 0;
        for (; i < len && (start + i) % per_byte != 0; i++)
            out[start + i] = sym_dec1(T, codes, start + i, d);
        for (; i + 16 <= len; i += 16) {
            size_t k = start + i;
            uint8x16_t u = unpack16(codes + k * T->bits / 8u, T->bits);
            int16x8_t lo, hi;
            if (T->bits == 8) { /* two's complement bytes */
                int8x16_t sb = vreinterpretq_s8_u8(u);
                lo = vmovl_s8(vget_low_s8(sb));
                hi = vmovl_high_s8(sb);
            } else {
                int16x8_t b = vdupq_n_s16((int16_t)T->bias);
                lo = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(u))), b);
                hi = vsubq_s16(vreinterpretq_s16_u16(vmovl_high_u8(u)), b);
            }
            vst1q_f32(out + k, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vd));
            vst1q_f32(out + k + 4, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), vd));
            vst1q_f32(out + k + 8, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vd));
            vst1q_f32(out + k + 12, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), vd));
        }
        for (; i < len; i++)
            out[start + i] = sym_dec1(T, codes, start + i, d);
    }
}

static void neon_int8_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    sym_quantize(&S_INT8, x, n, group, p, out);
}
static void neon_int8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    if (f16_all_finite(in.sec[MIXQ_SEC_SCALES], row_groups(n, group)))
        sym_dequantize(&S_INT8, in, n, group, out, false);
    else
        sym_dequantize(&S_INT8, in, n, group, out, true);
}
static void neon_int4s_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    sym_quantize(&S_INT4S, x, n, group, p, out);
}
static void neon_int4s_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    if (f16_all_finite(in.sec[MIXQ_SEC_SCALES], row_groups(n, group)))
        sym_dequantize(&S_INT4S, in, n, group, out, false);
    else
        sym_dequantize(&S_INT4S, in, n, group, out, true);
}

/* ------------------------------------------------------------------------ */
/* Asymmetric f16-scale types: int4 (FORMAT.md §4.2), int2 (§4.4)            */
/* ------------------------------------------------------------------------ */

/* Codes rhe(clamp(fl(fl(x - m) / s), 0, L)) of four elements. */
static inline uint32x4_t asym_codes4(float32x4_t x, float32x4_t vm, float32x4_t vs, float32x4_t vL)
{
    float32x4_t t = vdivq_f32(vsubq_f32(x, vm), vs);
    return vcvtnq_u32_f32(clamp_ref(t, vdupq_n_f32(0.0f), vL));
}

static inline unsigned asym_code1(float x, float m, float s, float L)
{
    int q = 0;
    if (s > 0.0f) {
        float d = x - m;
        float t = d / s;
        t = t <= L ? t : L;
        t = t >= 0.0f ? t : 0.0f;
        q = mx_round_half_even(t);
    }
    return (unsigned)q;
}

static void asym_quantize(int L, unsigned bits, const float *x, size_t n, unsigned group, const mx_qparams *p,
                          mx_rowptrs out)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    uint8_t *mins = out.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    bool search = p != NULL && p->search;
    const size_t per_byte = 8u / bits;
    const float Lf = (float)L;
    size_t start, j;

    memset(codes, 0, (n * bits + 7u) / 8u);
    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        const float *w = search && p->importance ? p->importance + start : NULL;
        float m, s;
        uint16_t mh, sh;
        mx_gstats st;
        size_t i = 0;

        if (search)
            n_stats(xg, w, len, &st);
        else
            minmax_ref(xg, len, &st.lo, &st.hi);
        mx_asym_group_scale(search ? &mx_search_ops_neon : NULL, xg, w, len, L, &st, &sh, &mh, &s, &m);
        mx_st16le(scales + 2 * j, sh);
        mx_st16le(mins + 2 * j, mh);

        for (; i < len && (start + i) % per_byte != 0; i++)
            put_code(codes, bits, start + i, asym_code1(xg[i], m, s, Lf));
        if (s > 0.0f) {
            const float32x4_t vm = vdupq_n_f32(m), vs = vdupq_n_f32(s), vL = vdupq_n_f32(Lf);
            for (; i + 16 <= len; i += 16) {
                const float *xi = xg + i;
                uint8x16_t u = narrow16_u32(asym_codes4(vld1q_f32(xi), vm, vs, vL),
                                            asym_codes4(vld1q_f32(xi + 4), vm, vs, vL),
                                            asym_codes4(vld1q_f32(xi + 8), vm, vs, vL),
                                            asym_codes4(vld1q_f32(xi + 12), vm, vs, vL));
                pack16(u, bits, codes + (start + i) * bits / 8u);
            }
        } else {
            i = len; /* codes stay 0 */
        }
        for (; i < len; i++)
            put_code(codes, bits, start + i, asym_code1(xg[i], m, s, Lf));
    }
}

/* checked: as sym_dequantize. */
static inline __attribute__((always_inline)) void asym_dequantize(unsigned bits, mx_crowptrs in, size_t n,
                                                                  unsigned group, float *out, bool checked)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *mins = in.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    const size_t per_byte = 8u / bits;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t sh = mx_ld16le(scales + 2 * j), mh = mx_ld16le(mins + 2 * j);
        if (checked && (!mx_f16_bits_finite(sh) || !mx_f16_bits_finite(mh))) { /* kernels.h: non-finite parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        float s = mx_f16_to_f32(sh);
        float m = mx_f16_to_f32(mh);
        const float32x4_t vs = vdupq_n_f32(s), vm = vdupq_n_f32(m);
        size_t i = 0;
        for (; i < len && (start + i) % per_byte != 0; i++) {
            float pr = (float)get_code(codes, bits, start + i) * s;
            out[start + i] = pr + m;
        }
        for (; i + 16 <= len; i += 16) {
            size_t k = start + i;
            float32x4_t f[4];
            u8x16_to_f32(unpack16(codes + k * bits / 8u, bits), f);
            vst1q_f32(out + k, vaddq_f32(vmulq_f32(f[0], vs), vm));
            vst1q_f32(out + k + 4, vaddq_f32(vmulq_f32(f[1], vs), vm));
            vst1q_f32(out + k + 8, vaddq_f32(vmulq_f32(f[2], vs), vm));
            vst1q_f32(out + k + 12, vaddq_f32(vmulq_f32(f[3], vs), vm));
        }
        for (; i < len; i++) {
            float pr = (float)get_code(codes, bits, start + i) * s;
            out[start + i] = pr + m;
        }
    }
}

static void neon_int4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    asym_quantize(15, 4, x, n, group, p, out);
}
static void neon_int4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    size_t ng = row_groups(n, group);
    if (f16_all_finite(in.sec[MIXQ_SEC_SCALES], ng) && f16_all_finite(in.sec[MIXQ_SEC_MINS], ng))
        asym_dequantize(4, in, n, group, out, false);
    else
        asym_dequantize(4, in, n, group, out, true);
}
static void neon_int2_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    asym_quantize(3, 2, x, n, group, p, out);
}
static void neon_int2_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    size_t ng = row_groups(n, group);
    if (f16_all_finite(in.sec[MIXQ_SEC_SCALES], ng) && f16_all_finite(in.sec[MIXQ_SEC_MINS], ng))
        asym_dequantize(2, in, n, group, out, false);
    else
        asym_dequantize(2, in, n, group, out, true);
}

/* ------------------------------------------------------------------------ */
/* Double-quantized types: int4_dq, int2_dq, int3_dq, int6_dq (§4.5-§4.8)    */
/* ------------------------------------------------------------------------ */

/*
 * Quantize: without search, the group min / max vectorised, the plain
 * choice of kernel_dq_plain.h and vectorised element codes; with search,
 * kernel_dq.c's driver itself (two-level search, then its scalar encoding)
 * with the NEON search passes, which dominate its cost.  Dequantize: 16 codes at a time from their bit planes (FORMAT.md §5.1),
 * x^ = fl(q * s) (+ m), with the group's s = fl(d * c) and m = fl(dm * mc)
 * as the reference computes them.
 */
/* As kernel_dq.c's dq_type. */
typedef struct dq_desc {
    mixq_qtype id;
    bool asym;
    int qlo, qhi;          /* element code range ([0, L] if asymmetric) */
    int clo, chi;          /* scale code range ([0, SC] if asymmetric; min codes too) */
    unsigned qbias, cbias; /* stored code = q + qbias, stored scale code = c + cbias */
} dq_desc;

static const dq_desc D_INT4_DQ = {MIXQ_QT_INT4_DQ, true, 0, 15, 0, 63, 0, 0};
static const dq_desc D_INT2_DQ = {MIXQ_QT_INT2_DQ, true, 0, 3, 0, 15, 0, 0};
static const dq_desc D_INT3_DQ = {MIXQ_QT_INT3_DQ, false, -4, 3, -32, 31, 4, 32};
static const dq_desc D_INT6_DQ = {MIXQ_QT_INT6_DQ, false, -32, 31, -128, 127, 32, 128};


/* The group statistics as the reference computes them (vectorised), then kernel_dq_plain.h's plain choice. */
static void dq_rtn_neon(const dq_desc *T, const float *x, size_t len, unsigned G, mx_dq_sb *r)
{
    float lo[MX_DQ_MAX_GROUPS] = {0}, hi[MX_DQ_MAX_GROUPS] = {0}, amax[MX_DQ_MAX_GROUPS] = {0};
    int ng = 0;

    for (size_t s0 = 0; s0 < len; s0 += G, ng++) {
        size_t gl = len - s0 < G ? len - s0 : G;
        minmax_ref(x + s0, gl, &lo[ng], &hi[ng]);
        if (!T->asym)
            amax[ng] = absmax_ref(x + s0, gl);
    }
    if (T->asym)
        kernel_dq_plain_asym(T->qhi, T->chi, lo, hi, ng, r);
    else
        kernel_dq_plain_sym(T->qlo, T->chi, amax, hi, ng, r);
}

/* kernel_dq.c's elem_code plus the bias: the stored code of x. */
static inline unsigned dq_code1(const dq_desc *T, float x, float s, float m)
{
    int q = 0;
    if (s != 0.0f) {
        if (T->asym)
            q = s > 0.0f ? mx_round_half_even(mx_dqp_clampf((x - m) / s, 0.0f, (float)T->qhi, 0.0f)) : 0;
        else
            q = mx_round_half_even(mx_dqp_clampf(x / s, (float)T->qlo, (float)T->qhi, (float)T->qhi));
    }
    return (unsigned)(q + (int)T->qbias);
}

/* Stored codes of four elements (the group's s != 0; s > 0 if asymmetric). */
static inline uint32x4_t dq_codes4(const dq_desc *T, float32x4_t x, float32x4_t vs, float32x4_t vm,
                                   float32x4_t vlo, float32x4_t vhi, float32x4_t vnan, int32x4_t vb)
{
    float32x4_t t = T->asym ? vdivq_f32(vsubq_f32(x, vm), vs) : vdivq_f32(x, vs);
    int32x4_t q = vcvtnq_s32_f32(clamp_search(t, vlo, vhi, vnan));
    return vreinterpretq_u32_s32(vaddq_s32(q, vb));
}

/* Stores 16 codes (elements k..k+15, k a multiple of 16) into their bit planes (zeroed bytes). */
static inline void planes_put16(uint8_t *base, const uint8_t planes[QT_MAX_PLANES], const size_t off[QT_MAX_PLANES],
                                size_t k, uint8x16_t u)
{
    unsigned shift = 0;
    for (int pl = 0; pl < QT_MAX_PLANES && planes[pl] != 0; pl++) {
        unsigned w = planes[pl];
        uint8x16_t v = vandq_u8(vshlq_u8(u, vdupq_n_s8((int8_t)-(int)shift)), vdupq_n_u8((uint8_t)((1u << w) - 1u)));
        pack16(v, w, base + off[pl] + k * w / 8u);
        shift += w;
    }
}

/*
 * Plain-choice rows (no search): kernel_dq.c's dq_quantize with the NEON
 * group statistics and element codes around kernel_dq_plain.h's choice;
 * with search, kernel_dq.c's driver with the NEON passes.
 */
static void dq_quantize_neon(const dq_desc *T, const float *x, size_t n, unsigned group, const mx_qparams *p,
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
    size_t coff[QT_MAX_PLANES], soff[QT_MAX_PLANES];
    const float32x4_t vlo = vdupq_n_f32((float)T->qlo), vhi = vdupq_n_f32((float)T->qhi);
    const float32x4_t vnan = T->asym ? vdupq_n_f32(0.0f) : vhi;
    const int32x4_t vb = vdupq_n_s32((int32_t)T->qbias);

    if (p != NULL && p->search) {
        kernel_dq_quantize_row_ops(&mx_search_ops_neon, T->id, x, n, group, p, out);
        return;
    }
    mx_planes_offsets(qt->code_planes, n, coff);
    mx_planes_offsets(qt->scale_planes, ng, soff);
    memset(codes, 0, mx_planes_bytes(qt->code_planes, n));
    memset(scales, 0, mx_planes_bytes(qt->scale_planes, ng));
    if (T->asym)
        memset(mins, 0, mx_planes_bytes(qt->scale_planes, ng));

    for (size_t b = 0, s0 = 0; s0 < n; b++, s0 += MX_DQ_SUPER) {
        size_t len = n - s0 < MX_DQ_SUPER ? n - s0 : MX_DQ_SUPER;
        const float *xs = x + s0;
        size_t j0 = s0 / G;
        mx_dq_sb r;
        int j = 0;

        memset(&r, 0, sizeof r);
        dq_rtn_neon(T, xs, len, G, &r);
        mx_st16le(sups + 2 * b, r.dh);
        if (T->asym)
            mx_st16le(supm + 2 * b, r.mh);
        for (size_t g0 = 0; g0 < len; g0 += G, j++) {
            size_t gl = len - g0 < G ? len - g0 : G, i = 0;
            float s = mx_f16_to_f32(r.dh) * (float)r.sc[j];
            float m = T->asym ? mx_f16_to_f32(r.mh) * (float)r.mc[j] : 0.0f;
            bool vec = T->asym ? s > 0.0f : s != 0.0f;
            const float32x4_t vs = vdupq_n_f32(s), vm = vdupq_n_f32(m);
            mx_planes_put(scales, qt->scale_planes, soff, j0 + (size_t)j, (unsigned)(r.sc[j] + (int)T->cbias));
            if (T->asym)
                mx_planes_put(mins, qt->scale_planes, soff, j0 + (size_t)j, (unsigned)r.mc[j]);
            for (;;) {
                size_t k = s0 + g0 + i;
                if (i + 16 <= gl && k % 16 == 0) {
                    const float *xi = xs + g0 + i;
                    uint8x16_t u;
                    if (vec)
                        u = narrow16_u32(dq_codes4(T, vld1q_f32(xi), vs, vm, vlo, vhi, vnan, vb),
                                         dq_codes4(T, vld1q_f32(xi + 4), vs, vm, vlo, vhi, vnan, vb),
                                         dq_codes4(T, vld1q_f32(xi + 8), vs, vm, vlo, vhi, vnan, vb),
                                         dq_codes4(T, vld1q_f32(xi + 12), vs, vm, vlo, vhi, vnan, vb));
                    else
                        u = vdupq_n_u8((uint8_t)T->qbias);
                    planes_put16(codes, qt->code_planes, coff, k, u);
                    i += 16;
                } else if (i < gl) {
                    mx_planes_put(codes, qt->code_planes, coff, k, dq_code1(T, xs[g0 + i], s, m));
                    i++;
                } else {
                    break;
                }
            }
        }
    }
}

/* 16 codes of elements k..k+15 (k a multiple of 16) from their planes. */
static inline uint8x16_t planes_get16(const uint8_t *base, const uint8_t planes[QT_MAX_PLANES],
                                      const size_t off[QT_MAX_PLANES], size_t k)
{
    uint8x16_t u = vdupq_n_u8(0);
    unsigned shift = 0;
    for (int pl = 0; pl < QT_MAX_PLANES && planes[pl] != 0; pl++) {
        unsigned w = planes[pl];
        uint8x16_t v = unpack16(base + off[pl] + k * w / 8u, w);
        u = vorrq_u8(u, vshlq_u8(v, vdupq_n_s8((int8_t)shift)));
        shift += w;
    }
    return u;
}

static void dq_dequantize_neon(const dq_desc *T, mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const qtype_desc *qt = &mx_qtypes[T->id];
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *mins = in.sec[MIXQ_SEC_MINS];
    const uint8_t *sups = in.sec[MIXQ_SEC_SUPER_SCALES];
    const uint8_t *supm = in.sec[MIXQ_SEC_SUPER_MINS];
    unsigned G = mx_dq_group(group);
    size_t ng = (n + G - 1) / G;
    size_t coff[QT_MAX_PLANES], soff[QT_MAX_PLANES];
    const int16x8_t qb = vdupq_n_s16((int16_t)T->qbias);

    mx_planes_offsets(qt->code_planes, n, coff);
    mx_planes_offsets(qt->scale_planes, ng, soff);
    for (size_t j = 0, g0 = 0; g0 < n; j++, g0 += G) {
        size_t gl = n - g0 < G ? n - g0 : G, b = g0 / MX_DQ_SUPER, i = 0;
        uint16_t dh = mx_ld16le(sups + 2 * b);
        if (!mx_f16_bits_finite(dh) || (T->asym && !mx_f16_bits_finite(mx_ld16le(supm + 2 * b)))) {
            /* kernels.h: non-finite scale parameters (the super-block's groups all take this branch) */
            mx_fill_canonical_nan(out + g0, gl);
            continue;
        }
        float d = mx_f16_to_f32(dh);
        int c = (int)mx_planes_get(scales, qt->scale_planes, soff, j) - (int)T->cbias;
        float s = d * (float)c;
        float m = 0.0f;
        if (T->asym)
            m = mx_f16_to_f32(mx_ld16le(supm + 2 * b)) * (float)mx_planes_get(mins, qt->scale_planes, soff, j);
        const float32x4_t vs = vdupq_n_f32(s), vm = vdupq_n_f32(m);

        for (;;) {
            size_t k = g0 + i;
            if (i + 16 <= gl && k % 16 == 0) {
                uint8x16_t u = planes_get16(codes, qt->code_planes, coff, k);
                int16x8_t lo = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(u))), qb);
                int16x8_t hi = vsubq_s16(vreinterpretq_s16_u16(vmovl_high_u8(u)), qb);
                float32x4_t v[4];
                v[0] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vs);
                v[1] = vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), vs);
                v[2] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vs);
                v[3] = vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), vs);
                for (int t = 0; t < 4; t++)
                    vst1q_f32(out + k + 4 * t, T->asym ? vaddq_f32(v[t], vm) : v[t]);
                i += 16;
            } else if (i < gl) {
                int q = (int)mx_planes_get(codes, qt->code_planes, coff, k) - (int)T->qbias;
                float v = (float)q * s;
                out[k] = T->asym ? v + m : v;
                i++;
            } else {
                break;
            }
        }
    }
}

#define NEON_DQ(NAME, D)                                                                                   \
    static void neon_##NAME##_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,   \
                                           mx_rowptrs out)                                                   \
    {                                                                                                        \
        dq_quantize_neon(&(D), x, n, group, p, out);                                                         \
    }                                                                                                        \
    static void neon_##NAME##_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)           \
    {                                                                                                        \
        dq_dequantize_neon(&(D), in, n, group, out);                                                         \
    }

NEON_DQ(int4_dq, D_INT4_DQ)
NEON_DQ(int2_dq, D_INT2_DQ)
NEON_DQ(int3_dq, D_INT3_DQ)
NEON_DQ(int6_dq, D_INT6_DQ)

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
        float s = mx_fp8_rtn_scale(p->tensor_absmax, fmax);
        mx_fp8_st_f32le(scales, s);
        fp8_encode_group(x, n, s, e4m3, codes);
        return;
    }
    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float amax = absmax_ref(xg, len);
        float s = mx_fp8_rtn_scale(amax, fmax);
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
        if (!mx_f32_finite(s)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
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
    install(set, MIXQ_QT_INT4S, neon_int4s_quantize_row, neon_int4s_dequantize_row);
    install(set, MIXQ_QT_INT2, neon_int2_quantize_row, neon_int2_dequantize_row);
    install(set, MIXQ_QT_INT4_DQ, neon_int4_dq_quantize_row, neon_int4_dq_dequantize_row);
    install(set, MIXQ_QT_INT2_DQ, neon_int2_dq_quantize_row, neon_int2_dq_dequantize_row);
    install(set, MIXQ_QT_INT3_DQ, neon_int3_dq_quantize_row, neon_int3_dq_dequantize_row);
    install(set, MIXQ_QT_INT6_DQ, neon_int6_dq_quantize_row, neon_int6_dq_dequantize_row);
    install(set, MIXQ_QT_FP8_E4M3, neon_fp8_e4m3_quantize_row, neon_fp8_e4m3_dequantize_row);
    install(set, MIXQ_QT_FP8_E5M2, neon_fp8_e5m2_quantize_row, neon_fp8_e5m2_dequantize_row);
}
