/*
 * kernel_scale_rules.h - the per-group scale rules of the plain choice (no
 * search) that are one scalar computation per group, shared by the scalar
 * reference kernels (kernel_int8.c, kernel_int4.c, kernel_fp8.c,
 * kernel_dq.c), and both SIMD paths (simd_avx2.c, simd_neon.c), which only
 * vectorise the statistics feeding them and the element codes:
 *   - mx_sym_cover_scale: int8 / int4s (FORMAT.md §4.1, §4.3), and the DQ
 *     search's parameter scales; mx_sym_group_scale: a whole int8 / int4s
 *     group's scale (plain choice, then the search);
 *   - mx_asym_cover_scale: int4 / int2 (§4.2, §4.4); mx_asym_group_scale: a
 *     whole int4 / int2 group's scale and min;
 *   - mx_fp8_rtn_scale: fp8_e4m3 / fp8_e5m2 (common/fp8.h).
 * The DQ super-block rules are kernel_dq_plain.h's (SIMD) and kernel_dq.c's
 * (reference).  The tests check these rules against an exhaustive search
 * (test_kernels.c).
 *
 * static inline: compiled into each translation unit and inlined into its row
 * loop.
 */
#ifndef MIXQ_KERNEL_SCALE_RULES_H
#define MIXQ_KERNEL_SCALE_RULES_H

#include <float.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/half.h"
#include "kernels/quant_search.h"

/*
 * The f16 conversions used by these rules and kernel_dq_plain.h; a SIMD file
 * may define its own (identical for every input, e.g. F16C instructions)
 * before including either header.
 */
#ifndef MX_K_F16_TO_F32
#define MX_K_F16_TO_F32 mx_f16_to_f32
#endif
#ifndef MX_K_F16_UP
#define MX_K_F16_UP mx_f16_round_up
#endif
#ifndef MX_K_F16_DOWN
#define MX_K_F16_DOWN mx_f16_round_down
#endif
#ifndef MX_K_F32_TO_F16
#define MX_K_F32_TO_F16 mx_f32_to_f16
#endif

/*
 * The smallest f16 h >= 0 with top * h >= amax (0 for amax = 0 or NaN; top >
 * 0, at most 2^11 so that top * h is exact in binary32 for every finite f16):
 * the tests are exact and the candidate from the rounded-up quotient is at
 * most a step off either way.
 */
static inline uint16_t mx_sym_cover_scale(float amax, float top)
{
    uint16_t h;
    if (!(amax > 0.0f))
        return 0;
    h = MX_K_F16_UP(amax / top);
    while (h > 0 && top * MX_K_F16_TO_F32((uint16_t)(h - 1u)) >= amax)
        h--;
    while (h < 0x7C00u && top * MX_K_F16_TO_F32(h) < amax)
        h++;
    return h;
}

/* The asymmetric plain-choice test for a scale candidate h: fl(m + fl(L * s)) >= hi (L * s exact). */
static inline int mx_asym_covers(float m, uint16_t h, float L, float hi)
{
    float top = L * MX_K_F16_TO_F32(h);
    float sum = m + top;
    return sum >= hi;
}

/*
 * The smallest f16 s >= 0 with mx_asym_covers (0 if m >= hi).  The test is
 * monotone in s and the bit patterns of non-negative f16 are ordered like
 * their values, so that value is unique and a bisection over [0, +inf] finds
 * it.  The rounded-up quotient is tried first and accepted only if it passes
 * and its predecessor fails, which proves it is that smallest value;
 * otherwise the bisection runs.
 */
static inline uint16_t mx_asym_cover_scale(float m, float L, float hi)
{
    unsigned lo = 0, up = 0x7C00u;
    uint16_t c;
    if (mx_asym_covers(m, 0, L, hi))
        return 0;
    c = MX_K_F16_UP((hi - m) / L);
    if (c > 0 && c <= 0x7C00u && mx_asym_covers(m, c, L, hi) && !mx_asym_covers(m, (uint16_t)(c - 1u), L, hi))
        return c;
    while (up - lo > 1u) { /* invariant: lo fails, up passes */
        unsigned mid = lo + (up - lo) / 2u;
        if (mx_asym_covers(m, (uint16_t)mid, L, hi))
            up = mid;
        else
            lo = mid;
    }
    return (uint16_t)up;
}

/*
 * A symmetric group's f16 scale (int8, int4s): the plain choice from its
 * max |x| amax and max hi (the element of largest magnitude, xm, goes to
 * +-top; with positive false, d takes the sign that sends xm to qlo), then,
 * with ops (NULL: plain only), mx_search_sym over xg[0..len) with weights w
 * (may be NULL).  Returns the stored f16 bits; *d_out gets the scale.
 */
static inline uint16_t mx_sym_group_scale(const mx_search_ops *ops, const float *xg, const float *w, size_t len,
                                          int qlo, int qhi, float top, bool positive, float amax, float hi,
                                          float *d_out)
{
    float xm = positive || hi == amax ? amax : -amax;
    uint16_t h = mx_sym_cover_scale(amax, top);
    float d;
    if (!positive && xm > 0.0f && h != 0)
        h |= 0x8000u; /* negative d: xm -> -top */
    d = MX_K_F16_TO_F32(h);
    if (ops != NULL) {
        float ds = mx_search_sym(ops, xg, w, len, qlo, qhi, MX_ROUND_F16, positive, d, xm);
        if (ds != d) {
            d = ds;
            h = MX_K_F32_TO_F16(d); /* exact: d is an f16 value, never zero */
        }
    }
    *d_out = d;
    return h;
}

/*
 * An asymmetric group's f16 scale and min (int4, int2; codes 0..L) from its
 * statistics st (lo, hi; with ops, everything mx_search_asym reads): the
 * plain choice m = lo rounded down, s = mx_asym_cover_scale, then, with ops
 * (NULL: plain only), mx_search_asym over xg[0..len) with weights w.  The
 * stored bits go to *sh, *mh, the values to *s_out, *m_out.
 */
static inline void mx_asym_group_scale(const mx_search_ops *ops, const float *xg, const float *w, size_t len, int L,
                                       const mx_gstats *st, uint16_t *sh, uint16_t *mh, float *s_out, float *m_out)
{
    float m, s;
    *mh = MX_K_F16_DOWN(st->lo);
    m = MX_K_F16_TO_F32(*mh);
    *sh = mx_asym_cover_scale(m, (float)L, st->hi);
    s = MX_K_F16_TO_F32(*sh);
    if (ops != NULL) {
        float s2, m2;
        mx_search_asym(ops, xg, w, len, L, MX_ROUND_F16, st, s, m, &s2, &m2);
        if (s2 != s || m2 != m) {
            s = s2;
            m = m2;
            *sh = MX_K_F32_TO_F16(s); /* exact: f16 values, zero min as +0 */
            *mh = MX_K_F32_TO_F16(m);
        }
    }
    *s_out = s;
    *m_out = m;
}

/*
 * The fp8 RTN scale (common/fp8.h): 0 for amax = 0, else fl(amax / fmax)
 * raised to the smallest positive float on underflow and then step by step
 * (to the next binary32 up) until fl(amax / s) <= fmax.  fl(amax / fmax) is
 * within half an ulp of the exact quotient, so at most a couple of steps are
 * taken.  amax outside the kernels' contract (Inf, NaN) gives a meaningless
 * scale without looping.
 */
static inline float mx_fp8_rtn_scale(float amax, float fmax)
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
        s = mx_bits_f32(mx_f32_bits(s) + 1u);
    return s;
}

#endif
