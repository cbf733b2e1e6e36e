/*
 * kernel_dq_plain.h - the plain choice (no search) of one double-quantized
 * super-block's scale / min codes from its group statistics, shared by the
 * SIMD paths (simd_avx2.c, simd_neon.c), which vectorise the statistics and
 * the element codes.  Same rules and results as kernel_dq.c's dq_rtn_asym /
 * dq_rtn_sym, which stay the independent reference (FORMAT.md §4.5-§4.8)
 * for the scales; the mins rule (mx_dq_plain_mins) is the same computation
 * there and is shared (kernel_dq.c calls it).  Where those bisect for the smallest covering f16 scale or code, the
 * rounded-up quotient is tried first (the tests are monotone, so the
 * smallest passing value is unique and found either way).
 *
 * static inline: compiled into each SIMD translation unit, inlined into its
 * row loop (a call into another translation unit made --rtn DQ conversions
 * some 15% slower).
 */
#ifndef MIXQ_KERNEL_DQ_PLAIN_H
#define MIXQ_KERNEL_DQ_PLAIN_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/half.h"
#include "kernels/kernel_scale_rules.h" /* MX_K_F16_*: the f16 conversions used below */

#define MX_DQ_SUPER 256u      /* weights per super-block */
#define MX_DQ_MAX_GROUPS 16u /* groups per super-block: 256 / the smallest group (16) */

/* The group size a DQ row uses: group if it divides a super-block, else 16. */
static inline unsigned mx_dq_group(unsigned group)
{
    return group != 0 && group <= MX_DQ_SUPER && MX_DQ_SUPER % group == 0 ? group : 16u;
}

/* One super-block's parameters (also kernel_dq.c's dq_sb). */
typedef struct mx_dq_sb {
    uint16_t dh, mh;          /* f16 super-block scale (and min scale; 0 if symmetric) */
    int sc[MX_DQ_MAX_GROUPS]; /* scale codes (negative: symmetric group whose max |x| is its max) */
    int mc[MX_DQ_MAX_GROUPS]; /* min codes (asymmetric) */
} mx_dq_sb;

/* t clamped to [lo, hi], NaN to nan_to (kernel_dq.c's clampf; the SIMD element codes use it too). */
static inline float mx_dqp_clampf(float t, float lo, float hi, float nan_to)
{
    if (t != t)
        t = nan_to;
    t = t < lo ? lo : t;
    return t > hi ? hi : t;
}

/* fl(m + fl(L * fl(d * c))) >= hi: every product is exact (at most 21 significant bits). */
static inline bool mx_dqp_asym_covers(float m, float d, int c, int L, float hi)
{
    float top = (float)L * (d * (float)c);
    float sum = m + top;
    return sum >= hi;
}

/* |qlo| * fl(d * c) >= amax (exact products). */
static inline bool mx_dqp_sym_covers(float d, int c, int qlo, float amax)
{
    return (float)(-qlo) * (d * (float)c) >= amax;
}

/* Every group covered at scale code SC under super-block scale d. */
static inline bool mx_dqp_asym_all(const float *m, const float *hi, int ng, float d, int SC, int L)
{
    bool all = true;
    for (int j = 0; j < ng && all; j++)
        all = mx_dqp_asym_covers(m[j], d, SC, L, hi[j]);
    return all;
}

/*
 * The smallest code c in (c0, c1] passing a test that is monotone in c and
 * holds at c1 (the reference bisects): the candidate `guess` (clamped) is
 * checked first.
 */
#define MX_DQP_SMALLEST_CODE(c0_, c1_, guess, test, out)                                                    \
    do {                                                                                                    \
        int lo_ = (c0_), hi_ = (c1_), g_ = (guess);                                                         \
        g_ = g_ <= lo_ ? lo_ + 1 : g_ > hi_ ? hi_ : g_;                                                     \
        { int c = g_; if (test) { c = g_ - 1; if (g_ - 1 == lo_ || !(test)) { lo_ = g_ - 1; hi_ = g_; } } } \
        while (hi_ - lo_ > 1) {                                                                             \
            int c = (lo_ + hi_) / 2;                                                                        \
            if (test)                                                                                       \
                hi_ = c;                                                                                    \
            else                                                                                            \
                lo_ = c;                                                                                    \
        }                                                                                                   \
        (out) = hi_;                                                                                        \
    } while (0)

/*
 * The smallest f16 h in (0, 0x7C00] passing a test that is monotone in h and
 * fails at 0 (0x7C00 if none below passes; the reference bisects): the
 * candidate `guess` is the answer if it passes and its predecessor fails.
 */
#define MX_DQP_SMALLEST_F16(guess, test, out)                                                               \
    do {                                                                                                    \
        unsigned a_ = 0, b_ = 0x7C00u, h = (guess);                                                         \
        if (h > 0u && h <= 0x7C00u && (test)) {                                                             \
            h--;                                                                                            \
            if (!(test))                                                                                    \
                a_ = h, b_ = h + 1u;                                                                        \
        }                                                                                                   \
        while (b_ - a_ > 1u) { /* a_ fails, b_ passes */                                                    \
            h = a_ + (b_ - a_) / 2u;                                                                        \
            if (test)                                                                                       \
                b_ = h;                                                                                     \
            else                                                                                            \
                a_ = h;                                                                                     \
        }                                                                                                   \
        (out) = (uint16_t)b_;                                                                               \
    } while (0)

/*
 * The mins of an asymmetric super-block (FORMAT.md §4.5-§4.8), one rule for
 * the SIMD paths and kernel_dq.c's reference: the f16 min scale *mh and the
 * codes mc[] of the ng groups with minima lo[] (m_j = dm * mc_j <= lo_j),
 * and the mins m[] themselves.
 */
static inline void mx_dq_plain_mins(int SC, const float *lo, int ng, uint16_t *mh, int *mc, float *m)
{
    float minlo, maxlo, dm;

    minlo = maxlo = lo[0];
    for (int j = 1; j < ng; j++) {
        minlo = lo[j] < minlo ? lo[j] : minlo;
        maxlo = lo[j] > maxlo ? lo[j] : maxlo;
    }
    /* Mins: m_j = dm * mc_j <= lo_j. */
    if (minlo < 0.0f) {
        /* dm = -(the smallest f16 h with SC * h >= -minlo); mc_j the smallest code with dm * mc_j <= lo_j. */
        uint16_t h = mx_sym_cover_scale(-minlo, (float)SC);
        *mh = (uint16_t)(h | 0x8000u);
        dm = -MX_K_F16_TO_F32(h);
        for (int j = 0; j < ng; j++) {
            int c = 0;
            if (lo[j] < 0.0f) {
                c = (int)mx_dqp_clampf(ceilf(lo[j] / dm), 0.0f, (float)SC, (float)SC);
                while (c > 0 && dm * (float)(c - 1) <= lo[j])
                    c--;
                while (c < SC && dm * (float)c > lo[j])
                    c++;
            }
            mc[j] = c;
        }
    } else {
        /* dm = the largest f16 h with SC * h <= maxlo; mc_j the largest code with dm * mc_j <= lo_j. */
        uint16_t h = MX_K_F16_DOWN(maxlo / (float)SC);
        while (h > 0 && (float)SC * MX_K_F16_TO_F32(h) > maxlo)
            h--;
        while (h < 0x7BFFu && (float)SC * MX_K_F16_TO_F32((uint16_t)(h + 1u)) <= maxlo)
            h++;
        *mh = h;
        dm = MX_K_F16_TO_F32(h);
        for (int j = 0; j < ng; j++) {
            int c = 0;
            if (dm > 0.0f) {
                c = (int)mx_dqp_clampf(floorf(lo[j] / dm), 0.0f, (float)SC, 0.0f);
                while (c < SC && dm * (float)(c + 1) <= lo[j])
                    c++;
                while (c > 0 && dm * (float)c > lo[j])
                    c--;
            }
            mc[j] = c;
        }
    }
    for (int j = 0; j < ng; j++)
        m[j] = dm * (float)mc[j];
}

/*
 * Asymmetric types (element codes 0..L, scale and min codes 0..SC): r->mh,
 * r->mc, r->dh, r->sc of the ng (1..16) groups with minima lo[] and maxima hi[].
 */
static inline void kernel_dq_plain_asym(int L, int SC, const float *lo, const float *hi, int ng, mx_dq_sb *r)
{
    float m[MX_DQ_MAX_GROUPS] = {0};
    float d;
    bool zero = true; /* d = 0 covers every group */

    mx_dq_plain_mins(SC, lo, ng, &r->mh, r->mc, m);

    /* d = the smallest f16 with every group covered at code SC; sc_j the smallest covering code. */
    for (int j = 0; j < ng; j++)
        zero = zero && mx_dqp_asym_covers(m[j], 0.0f, SC, L, hi[j]);
    if (!zero) {
        /* Try the rounded-up quotient of the widest range first: the answer if it passes and its predecessor fails. */
        float need = 0.0f;
        for (int j = 0; j < ng; j++) {
            float w = hi[j] - m[j];
            need = w > need ? w : need;
        }
        MX_DQP_SMALLEST_F16(MX_K_F16_UP(need / ((float)L * (float)SC)),
                            mx_dqp_asym_all(m, hi, ng, MX_K_F16_TO_F32((uint16_t)h), SC, L), r->dh);
    } else {
        r->dh = 0;
    }
    d = MX_K_F16_TO_F32(r->dh);
    for (int j = 0; j < ng; j++) {
        if (mx_dqp_asym_covers(m[j], d, 0, L, hi[j])) {
            r->sc[j] = 0;
            continue;
        }
        float gq = ceilf((hi[j] - m[j]) / ((float)L * d));
        int guess = gq >= 1.0f && gq <= (float)SC ? (int)gq : SC;
        MX_DQP_SMALLEST_CODE(0, SC, guess, mx_dqp_asym_covers(m[j], d, c, L, hi[j]), r->sc[j]);
    }
}

/*
 * Symmetric types (element codes qlo..-qlo-1, scale codes -C..C): r->dh, r->sc
 * (r->mh = 0) of the ng (1..16) groups with max |x| amax[] and maxima hi[].
 */
static inline void kernel_dq_plain_sym(int qlo, int C, const float *amax, const float *hi, int ng, mx_dq_sb *r)
{
    float A = 0.0f, d;

    for (int j = 0; j < ng; j++)
        A = amax[j] > A ? amax[j] : A;
    r->mh = 0;
    if (!(A > 0.0f)) {
        r->dh = 0;
        for (int j = 0; j < ng; j++)
            r->sc[j] = 0;
        return;
    }
    /* d = the smallest f16 with |qlo| * C * d >= A (the rounded-up quotient first); |c_j| likewise for amax_j. */
    MX_DQP_SMALLEST_F16(MX_K_F16_UP(A / ((float)(-qlo) * (float)C)),
                        mx_dqp_sym_covers(MX_K_F16_TO_F32((uint16_t)h), C, qlo, A), r->dh);
    d = MX_K_F16_TO_F32(r->dh);
    for (int j = 0; j < ng; j++) {
        int c1;
        if (!(amax[j] > 0.0f)) {
            r->sc[j] = 0;
            continue;
        }
        float gq = ceilf(amax[j] / ((float)(-qlo) * d));
        int guess = gq >= 1.0f && gq <= (float)C ? (int)gq : C;
        MX_DQP_SMALLEST_CODE(0, C, guess, mx_dqp_sym_covers(d, c, qlo, amax[j]), c1);
        r->sc[j] = hi[j] == amax[j] ? -c1 : c1; /* xm = +amax: code qlo with a negative scale */
    }
}

#endif
