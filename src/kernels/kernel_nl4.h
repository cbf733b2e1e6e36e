/*
 * kernel_nl4.h - the level table of the lookup-table types nl4 and nl4_dq
 * (FORMAT.md §4.12, §4.13) and the nearest-level rule every path shares.
 *
 * An element stores the index q (0..15) of a level; its value is
 * fl(L[q] * s) with s the group's scale (an f16 for nl4, fl(d * c) for
 * nl4_dq), exact in binary32 (L[q] has at most 7 significant bits, s at
 * most 17).  The table was derived by tools/nl4_levels.py (Lloyd-Max on
 * group-normalized weights of the three shared checkpoints).
 */
#ifndef MIXQ_KERNEL_NL4_H
#define MIXQ_KERNEL_NL4_H

#include <stddef.h>
#include <stdint.h>

#define MX_NL4_LEVELS 16
#define MX_NL4_EXTREME 127.0f /* |L[0]|: the level of largest magnitude (negative) */

/* The levels, ascending; L[0] = -127 is the extreme one. */
static const int8_t mx_nl4_level[MX_NL4_LEVELS] = {-127, -101, -80, -63, -47, -33, -21, -9,
                                                   2,    14,   26,  40,  54,  70,  88,  110};

/* Midpoints between neighbouring levels ((L[i] + L[i + 1]) / 2, exact halves). */
static const float mx_nl4_mid[MX_NL4_LEVELS - 1] = {-114.0f, -90.5f, -71.5f, -55.0f, -40.0f, -27.0f, -15.0f, -3.5f,
                                                    8.0f,    20.0f,  33.0f,  47.0f,  62.0f,  79.0f,  99.0f};

/*
 * The index of the level nearest to t (in level units): the number of
 * midpoints strictly below t, so a t exactly on a midpoint takes the lower
 * level and NaN takes 0.  Every path computes this same count.
 */
static inline unsigned mx_nl4_index(float t)
{
    /* the count by bisection over the ascending midpoints: 4 comparisons instead of 15 (NaN fails each) */
    unsigned q = t > mx_nl4_mid[7] ? 8u : 0u;
    q += t > mx_nl4_mid[q + 3] ? 4u : 0u;
    q += t > mx_nl4_mid[q + 1] ? 2u : 0u;
    q += t > mx_nl4_mid[q] ? 1u : 0u;
    return q;
}

/* The index of element x for scale s (FORMAT.md §4.12): nearest level of fl(x / s); s == 0 gives index 8 (t = 0). */
static inline unsigned mx_nl4_code(float x, float s)
{
    return mx_nl4_index(s != 0.0f ? x / s : 0.0f);
}

/*
 * The two passes of the nl4 search over one group (kernel_nl4.c), the only
 * parts a SIMD path replaces; each must return the scalar bits (8 lane sums
 * indexed by element mod 8 combined by mx_lanes_sum, no contraction):
 *   err:  sum fl(w_i fl(e * e)), e = x_i - fl(L[mx_nl4_code(x_i, s)] * s);
 *   pass: q = mx_nl4_index(fl(x_i * id)), sxq = sum fl(fl(w_i x_i) L[q]),
 *         sqq = sum fl(fl(w_i L[q]) L[q]).
 * w NULL = every weight 1.
 */
typedef struct mx_nl4_ops {
    float (*err)(const float *x, const float *w, size_t n, float s);
    void (*pass)(const float *x, const float *w, size_t n, float id, float *sxq, float *sqq);
} mx_nl4_ops;

#endif
