/*
 * quant_search.h - error-minimizing scale search shared by the integer
 * kernels (FORMAT.md §4.9 describes what it chooses; the stored format does
 * not depend on it).
 *
 * The search is split into
 *   - "passes": loops over the elements of one group that return a few sums
 *     (mx_search_ops).  These are the only parts worth vectorizing; a SIMD
 *     path supplies its own mx_search_ops that must return bit-identical
 *     results (the reduction order is fixed: see quant_search.c);
 *   - "drivers" (mx_search_sym, mx_search_asym, the two-level DQ search in
 *     kernel_dq.c): scalar code that generates candidates, solves the least
 *     squares problems and decides.  They call the passes only through an
 *     mx_search_ops, so a SIMD path reuses them unchanged and gets the same
 *     bytes as the scalar reference by construction.
 *
 * Conventions of every pass: w is the group's importance (NULL = every
 * weight 1; multiplying by 1 is exact, so NULL and all-ones give the same
 * bits); all arithmetic is binary32 with no contraction; each sum is kept
 * in 8 partial sums indexed by (element index within the group) mod 8 and
 * combined by mx_lanes_sum.  rhe = mx_round_half_even (kernels.h).
 */
#ifndef MIXQ_QUANT_SEARCH_H
#define MIXQ_QUANT_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/half.h"

#define MX_LANES 8

/* The fixed combination of the 8 partial sums: ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7)). */
static inline float mx_lanes_sum(const float a[MX_LANES])
{
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* Order-independent statistics of a group. */
typedef struct mx_gstats {
    float lo, hi;   /* min and max of x */
    float amax;     /* max |x| */
    float sw, sx;   /* sum of w, sum of w*x (lane sums) */
} mx_gstats;

typedef struct mx_search_ops {
    /*
     * lo, hi, amax; sw = sum w_i, sx = sum fl(w_i * x_i).
     */
    void (*stats)(const float *x, const float *w, size_t n, mx_gstats *out);
    /*
     * Symmetric candidate pass: t = fl(x_i * id) clamped to [qlo, qhi]
     * (NaN -> qhi), q = rhe(t); sxq = sum fl(fl(w_i * x_i) * q),
     * sqq = sum fl(fl(w_i * q) * q).
     */
    void (*sym_pass)(const float *x, const float *w, size_t n, int qlo, int qhi, float id, float *sxq,
                     float *sqq);
    /*
     * Symmetric error: q = d != 0 ? rhe(clamp(fl(x_i / d), qlo, qhi)) : 0,
     * e = x_i - fl(q * d); returns sum fl(w_i * fl(e * e)).
     */
    float (*sym_err)(const float *x, const float *w, size_t n, int qlo, int qhi, float d);
    /*
     * Asymmetric candidate pass: t = fl(fl(x_i - m) * id) clamped to [0, L]
     * (NaN -> 0), q = rhe(t); wq = fl(w_i * q); sq = sum wq,
     * sqq = sum fl(wq * q), sxq = sum fl(wq * x_i).
     */
    void (*asym_pass)(const float *x, const float *w, size_t n, int L, float m, float id, float *sq,
                      float *sqq, float *sxq);
    /*
     * Asymmetric error: q = s > 0 ? rhe(clamp(fl(fl(x_i - m) / s), 0, L)) : 0,
     * e = x_i - fl(fl(q * s) + m); returns sum fl(w_i * fl(e * e)).
     */
    float (*asym_err)(const float *x, const float *w, size_t n, int L, float s, float m);
    /*
     * Optional (NULL: one asym_pass per candidate): K asymmetric candidate
     * passes in one sweep over the group, so that a SIMD path shares the
     * loads and overlaps the candidates' accumulations.  For each k < K the
     * same three sums, bit for bit, as asym_pass(x, w, n, L, m[k], id[k],
     * &sq[k], &sqq[k], &sxq[k]) (each candidate keeps its own 8 partial sums).
     */
    void (*asym_pass_multi)(const float *x, const float *w, size_t n, int L, size_t K, const float *m,
                            const float *id, float *sq, float *sqq, float *sxq);
    /*
     * Optional (NULL: one sym_pass per candidate): K symmetric candidate
     * passes in one sweep, as asym_pass_multi.  For each k < K the same two
     * sums, bit for bit, as sym_pass(x, w, n, qlo, qhi, id[k], &sxq[k],
     * &sqq[k]) (each candidate keeps its own 8 partial sums).
     */
    void (*sym_pass_multi)(const float *x, const float *w, size_t n, int qlo, int qhi, size_t K,
                           const float *id, float *sxq, float *sqq);
    /*
     * Optional (NULL: the scalar loop is used): the stored element codes of
     * one group for its final parameters, as the kernels define them.
     * Asymmetric (qlo == 0): q = s > 0 ? rhe(clamp(fl(fl(x_i - m) / s), 0, qhi))
     * : 0; symmetric (qlo < 0): q = s != 0 ? rhe(clamp(fl(x_i / s), qlo, qhi))
     * : 0 (m unused); u[i] = q + bias.  Used by the double-quantized kernels
     * (kernel_dq_quantize_row_ops) for both the plain choice and the search.
     */
    void (*codes)(const float *x, size_t n, int qlo, int qhi, float s, float m, int bias, uint8_t *u);
} mx_search_ops;

/* The scalar reference passes. */
extern const mx_search_ops mx_search_ops_scalar;

/* How a driver rounds the parameters it evaluates: to f16 values, or not at all (binary32). */
typedef enum mx_pround { MX_ROUND_F16, MX_ROUND_F32 } mx_pround;

/*
 * A candidate is accepted over the plain (RTN) solution only if its direct
 * error is below E_rtn * (1 - 2^-12); with at most 32 + 3 roundings per
 * binary32 error sum this makes the exact (real-number) error of the result
 * strictly smaller than RTN's whenever the search changes anything.
 */
#define MX_SEARCH_MARGIN 0x1p-12f

/*
 * Symmetric search (x^ = q * d, q in [qlo, qhi]) for one group: returns the
 * scale to store, d_rtn if no candidate is strictly better (see
 * MX_SEARCH_MARGIN).  d_rtn is the plain choice (already rounded as `rnd`
 * says); xm is the group's element of largest magnitude (+amax if max(x) ==
 * amax, else -amax).  positive: only d > 0 is allowed (int8).
 * With rnd == MX_ROUND_F32 (the first level of the double-quantized search)
 * there is no direct-error check: the best candidate by its least-squares
 * estimate is returned (d_rtn only if no candidate is usable); the
 * super-block level makes the never-worse decision instead.
 * Passes used: sym_err for d_rtn (not with MX_ROUND_F32), one
 * sym_pass_multi for the starting candidates (up to 6 with qlo < -qhi, else
 * up to 4; sym_pass per candidate if it is NULL), one sym_pass per
 * refinement (up to 2, 1 with MX_ROUND_F32), sym_err for the winner (not
 * with MX_ROUND_F32).  The starting candidates' scales are solved after the
 * sweep and compared in their fixed order (the first strictly smallest
 * estimate wins), as trying them one by one would choose.
 */
float mx_search_sym(const mx_search_ops *ops, const float *x, const float *w, size_t n, int qlo, int qhi,
                    mx_pround rnd, bool positive, float d_rtn, float xm);

/*
 * Asymmetric search (x^ = q * s + m, q in [0, L]) for one group: *s, *m get
 * the parameters to store (s_rtn, m_rtn if no candidate is strictly better;
 * MX_ROUND_F32: no direct-error check, as for mx_search_sym).  st: the
 * group's statistics (ops->stats).  Passes: asym_err for the plain choice,
 * one asym_pass_multi for the (up to 6) candidates (asym_pass per candidate
 * if it is NULL), one asym_pass per refinement (up to 2, 1 with
 * MX_ROUND_F32), asym_err for the winner.  The candidates' least-squares
 * fits are solved after the sweep, independently of each other, and then
 * compared in their fixed order (the first strictly smallest estimate wins).
 */
void mx_search_asym(const mx_search_ops *ops, const float *x, const float *w, size_t n, int L, mx_pround rnd,
                    const mx_gstats *st, float s_rtn, float m_rtn, float *s, float *m);

/*
 * Least-squares helpers shared by the drivers (so SIMD builds that call the
 * drivers get them too): the scale minimizing sum w (x - q d)^2 given the
 * sums, and its error relative to sum w x^2 (which cancels out of every
 * comparison): d^2 sqq - 2 d sxq, in double.
 */
double mx_ls_sym_rel_err(double d, double sxq, double sqq);
double mx_ls_asym_rel_err(double s, double m, double sw, double sx, double sq, double sqq, double sxq);

/* The nearest f16 value of f as a float (+0 for a zero), by conversion: mx_round_param's general case. */
float mx_round_param_slow(float f);

/* v rounded as rnd says (nearest f16 value, or the binary32 value); +-Inf if out of f16 range. */
static inline float mx_round_param(double v, mx_pround rnd)
{
    float f = (float)v;
    if (rnd == MX_ROUND_F16) {
        uint32_t u = mx_f32_bits(f), a = u & 0x7FFFFFFFu;
        if (a >= 0x38800000u && a < 0x477FF000u) {
            /* a normal f16 result (2^-14 <= |f| < 65520): round the binary32 significand to 10 bits, ties
               to even, in place; the same value as the conversion (a carry moves into the exponent) */
            a = (a + 0x0FFFu + ((a >> 13) & 1u)) & ~0x1FFFu;
            return mx_bits_f32((u & 0x80000000u) | a);
        }
        return mx_round_param_slow(f);
    }
    return f;
}

#endif
