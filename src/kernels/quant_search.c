/*
 * quant_search.c - the error-minimizing scale search (scalar reference).
 *
 * REDUCTION ORDER (every SIMD path must mirror this exactly):
 *   Every sum over the elements of a group (sw, sx, sxq, sqq, sq, the errors)
 *   is accumulated in binary32 into 8 partial sums acc[i % 8], where i is the
 *   element's index within the group (0-based; a partial last group simply
 *   has fewer terms in its high lanes), in increasing i.  The total is
 *       ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
 *   (mx_lanes_sum).  An AVX2 loop keeps one __m256 per sum (lane j = acc[j]);
 *   a NEON loop two float32x4_t (lanes 0-3 and 4-7).  Each term is formed
 *   exactly as written in mx_search_ops (quant_search.h): plain multiplies
 *   and adds, never a fused multiply-add (build with -ffp-contract=off).
 *   min / max / max |x| are order-independent.  asym_pass_multi and
 *   sym_pass_multi keep 8 partial sums per candidate and sum, in the same
 *   order as asym_pass / sym_pass: the candidates may be interleaved in one
 *   loop, but never share a sum.
 *
 * Everything after the passes (least squares, candidate generation, the
 * decisions) is scalar code in this file and in kernel_dq.c that a SIMD path
 * calls unchanged through its own mx_search_ops.
 */
#include <math.h>
#include "common/half.h"
#include "kernels/kernels.h"
#include "kernels/quant_search.h"

/* ---------------------------------------------------------------------- */
/* Scalar passes                                                           */
/* ---------------------------------------------------------------------- */

static void zero8(float a[MX_LANES])
{
    for (int j = 0; j < MX_LANES; j++)
        a[j] = 0.0f;
}

/* t clamped to [lo, hi] with NaN going to `nan_to`, then rounded half to even. */
static inline int clamp_round(float t, float lo, float hi, float nan_to)
{
    if (t != t)
        t = nan_to;
    t = t < lo ? lo : t;
    t = t > hi ? hi : t;
    return mx_round_half_even(t);
}

static void s_stats(const float *x, const float *w, size_t n, mx_gstats *out)
{
    float sw[MX_LANES], sx[MX_LANES];
    float lo = n ? x[0] : 0.0f, hi = lo, amax = 0.0f;
    zero8(sw);
    zero8(sx);
    for (size_t i = 0; i < n; i++) {
        float v = x[i], a = v < 0.0f ? -v : v;
        float wi = w ? w[i] : 1.0f;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        amax = a > amax ? a : amax;
        sw[i % MX_LANES] += wi;
        sx[i % MX_LANES] += wi * v;
    }
    out->lo = lo;
    out->hi = hi;
    out->amax = amax;
    out->sw = mx_lanes_sum(sw);
    out->sx = mx_lanes_sum(sx);
}

static void s_sym_pass(const float *x, const float *w, size_t n, int qlo, int qhi, float id, float *sxq,
                       float *sqq)
{
    float a[MX_LANES], b[MX_LANES];
    zero8(a);
    zero8(b);
    for (size_t i = 0; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float q = (float)clamp_round(x[i] * id, (float)qlo, (float)qhi, (float)qhi);
        a[i % MX_LANES] += (wi * x[i]) * q;
        b[i % MX_LANES] += (wi * q) * q;
    }
    *sxq = mx_lanes_sum(a);
    *sqq = mx_lanes_sum(b);
}

static float s_sym_err(const float *x, const float *w, size_t n, int qlo, int qhi, float d)
{
    float a[MX_LANES];
    zero8(a);
    for (size_t i = 0; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float q = d != 0.0f ? (float)clamp_round(x[i] / d, (float)qlo, (float)qhi, (float)qhi) : 0.0f;
        float e = x[i] - q * d;
        a[i % MX_LANES] += wi * (e * e);
    }
    return mx_lanes_sum(a);
}

static void s_asym_pass(const float *x, const float *w, size_t n, int L, float m, float id, float *sq,
                        float *sqq, float *sxq)
{
    float a[MX_LANES], b[MX_LANES], c[MX_LANES];
    zero8(a);
    zero8(b);
    zero8(c);
    for (size_t i = 0; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float q = (float)clamp_round((x[i] - m) * id, 0.0f, (float)L, 0.0f);
        float wq = wi * q;
        a[i % MX_LANES] += wq;
        b[i % MX_LANES] += wq * q;
        c[i % MX_LANES] += wq * x[i];
    }
    *sq = mx_lanes_sum(a);
    *sqq = mx_lanes_sum(b);
    *sxq = mx_lanes_sum(c);
}

static float s_asym_err(const float *x, const float *w, size_t n, int L, float s, float m)
{
    float a[MX_LANES];
    zero8(a);
    for (size_t i = 0; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float q = s > 0.0f ? (float)clamp_round((x[i] - m) / s, 0.0f, (float)L, 0.0f) : 0.0f;
        float e = x[i] - (q * s + m);
        a[i % MX_LANES] += wi * (e * e);
    }
    return mx_lanes_sum(a);
}

/* The reference multi-candidate pass is, by definition, one asym_pass per candidate. */
static void s_asym_pass_multi(const float *x, const float *w, size_t n, int L, size_t K, const float *m,
                              const float *id, float *sq, float *sqq, float *sxq)
{
    for (size_t k = 0; k < K; k++)
        s_asym_pass(x, w, n, L, m[k], id[k], &sq[k], &sqq[k], &sxq[k]);
}

/* The reference multi-candidate symmetric pass: one sym_pass per candidate. */
static void s_sym_pass_multi(const float *x, const float *w, size_t n, int qlo, int qhi, size_t K,
                             const float *id, float *sxq, float *sqq)
{
    for (size_t k = 0; k < K; k++)
        s_sym_pass(x, w, n, qlo, qhi, id[k], &sxq[k], &sqq[k]);
}

const mx_search_ops mx_search_ops_scalar = {
    .stats = s_stats,
    .sym_pass = s_sym_pass,
    .sym_err = s_sym_err,
    .asym_pass = s_asym_pass,
    .asym_err = s_asym_err,
    .asym_pass_multi = s_asym_pass_multi,
    .sym_pass_multi = s_sym_pass_multi,
};

/* ---------------------------------------------------------------------- */
/* Shared scalar helpers                                                   */
/* ---------------------------------------------------------------------- */

float mx_round_param_slow(float f)
{
    uint16_t h = mx_f32_to_f16(f);
    if (h == 0x8000u)
        h = 0; /* zeros are stored as +0 */
    return mx_f16_to_f32(h);
}

/*
 * The drivers use these static copies: the exported functions below may be
 * interposed in a shared library, so calls to them are not inlined.
 */
static inline double ls_sym_rel_err(double d, double sxq, double sqq)
{
    return d * d * sqq - 2.0 * d * sxq;
}

static inline double ls_asym_rel_err(double s, double m, double sw, double sx, double sq, double sqq,
                                     double sxq)
{
    return s * s * sqq + m * m * sw - 2.0 * s * sxq - 2.0 * m * sx + 2.0 * s * m * sq;
}

double mx_ls_sym_rel_err(double d, double sxq, double sqq)
{
    return ls_sym_rel_err(d, sxq, sqq);
}

double mx_ls_asym_rel_err(double s, double m, double sw, double sx, double sq, double sqq, double sxq)
{
    return ls_asym_rel_err(s, m, sw, sx, sq, sqq, sxq);
}

static bool finite_f(float v) { return v - v == 0.0f; }

/* ---------------------------------------------------------------------- */
/* Symmetric driver                                                        */
/* ---------------------------------------------------------------------- */

/*
 * Where the group's largest-magnitude element xm is sent: the code value
 * t = t0 + sgn(t0) * delta for the offsets below, t0 = qlo (the long side,
 * e.g. -8 for codes -8..7, when qlo < -qhi) or qhi; delta > 0 clips the
 * extreme, delta < 0 leaves headroom.  With qlo < -qhi also t = qhi + delta
 * for the short-side offsets (xm on the short side: the scale's sign flips).
 * Each candidate's codes are refit by least squares, so the offsets only
 * have to reach different code assignments; a fraction of a code moves the
 * rounding boundaries of every element.  (Chosen by greedy selection on real
 * checkpoints among offsets of -0.75 ... 3 codes.)
 */
static const float sym_long[] = {0.0f, -0.75f, 0.5f, -0.25f};
#define N_SYM_LONG (sizeof sym_long / sizeof sym_long[0])
static const float sym_short[] = {-0.5f, 0.0f};
#define N_SYM_SHORT (sizeof sym_short / sizeof sym_short[0])
/* Least-squares refinements of the best candidate. */
#define SYM_REFINE 2

typedef struct sym_best {
    float d;
    double rel;
} sym_best;

/*
 * The least-squares scale of one candidate's codes (sums sxq, sqq of its
 * pass), rounded as rnd says, into *d with its error estimate *rel; *rel =
 * +INFINITY if the candidate is unusable (never wins the strict comparison,
 * the same as skipping it).  q is the unrounded quotient sxq / sqq.
 */
static inline void sym_finish(float sxq, float sqq, double q, mx_pround rnd, bool positive, float *d,
                              double *rel)
{
    float dd;
    *d = 0.0f;
    *rel = INFINITY;
    if (!(sqq > 0.0f))
        return;
    dd = mx_round_param(q, rnd);
    if (!finite_f(dd) || dd == 0.0f || (positive && dd < 0.0f))
        return;
    *d = dd;
    *rel = ls_sym_rel_err(dd, sxq, sqq);
}

/* best := (d, rel) if rel is strictly smaller. */
static inline void sym_keep(sym_best *best, float d, double rel)
{
    if (rel < best->rel) {
        best->rel = rel;
        best->d = d;
    }
}

/* A usable starting code scale: finite and nonzero (sym_try's first test). */
static inline bool sym_id_ok(float id) { return finite_f(id) && id != 0.0f; }

/* One candidate (a refinement): codes from x * id, the least-squares scale for them, rounded. */
static void sym_try(const mx_search_ops *ops, const float *x, const float *w, size_t n, int qlo, int qhi,
                    mx_pround rnd, bool positive, float id, sym_best *best)
{
    float sxq, sqq, d;
    double rel;
    if (!sym_id_ok(id))
        return;
    ops->sym_pass(x, w, n, qlo, qhi, id, &sxq, &sqq);
    sym_finish(sxq, sqq, (double)sxq / (double)sqq, rnd, positive, &d, &rel);
    sym_keep(best, d, rel);
}

/*
 * The starting candidates (sym_long, then sym_short when qlo < -qhi), all in
 * one multi-candidate sweep; their scales are solved afterwards (the
 * divisions branch-free, so they overlap) and compared in candidate order,
 * which chooses as trying them one by one would.
 */
static void sym_candidates(const mx_search_ops *ops, const float *x, const float *w, size_t n, int qlo,
                           int qhi, mx_pround rnd, bool positive, float xm, sym_best *best)
{
    enum { NC = N_SYM_LONG + N_SYM_SHORT };
    float id[NC], sxq[NC], sqq[NC], d[NC];
    double q[NC], rel[NC];
    float t0 = qlo < -qhi ? (float)qlo : (float)qhi;
    size_t K = 0;
    for (size_t k = 0; k < N_SYM_LONG; k++) {
        float t = t0 < 0.0f ? t0 - sym_long[k] : t0 + sym_long[k];
        float idk = t / xm;
        if (sym_id_ok(idk))
            id[K++] = idk;
    }
    if (qlo < -qhi)
        for (size_t k = 0; k < N_SYM_SHORT; k++) {
            float idk = ((float)qhi + sym_short[k]) / xm;
            if (sym_id_ok(idk))
                id[K++] = idk;
        }
    if (ops->sym_pass_multi != NULL) {
        ops->sym_pass_multi(x, w, n, qlo, qhi, K, id, sxq, sqq);
    } else {
        for (size_t k = 0; k < K; k++)
            ops->sym_pass(x, w, n, qlo, qhi, id[k], &sxq[k], &sqq[k]);
    }
    for (size_t k = 0; k < K; k++) /* branch-free, so the divisions vectorize */
        q[k] = (double)sxq[k] / (double)sqq[k];
    for (size_t k = 0; k < K; k++)
        sym_finish(sxq[k], sqq[k], q[k], rnd, positive, &d[k], &rel[k]);
    for (size_t k = 0; k < K; k++)
        sym_keep(best, d[k], rel[k]);
}

float mx_search_sym(const mx_search_ops *ops, const float *x, const float *w, size_t n, int qlo, int qhi,
                    mx_pround rnd, bool positive, float d_rtn, float xm)
{
    sym_best best = {0.0f, INFINITY};
    float e0, e1;
    if (n == 0 || xm == 0.0f || !finite_f(xm))
        return d_rtn;
    e0 = rnd == MX_ROUND_F32 ? 1.0f : ops->sym_err(x, w, n, qlo, qhi, d_rtn);
    if (!(e0 > 0.0f))
        return d_rtn; /* exact already (or a non-finite sum: keep the plain choice) */

    sym_candidates(ops, x, w, n, qlo, qhi, rnd, positive, xm, &best);
    for (int it = 0; it < (rnd == MX_ROUND_F32 ? 1 : SYM_REFINE) && best.d != 0.0f; it++) {
        float before = best.d;
        sym_try(ops, x, w, n, qlo, qhi, rnd, positive, 1.0f / best.d, &best);
        if (best.d == before)
            break;
    }
    if (best.d == 0.0f || best.d == d_rtn)
        return d_rtn;
    if (rnd == MX_ROUND_F32)
        return best.d; /* first level of a double-quantized search: no check here */
    e1 = ops->sym_err(x, w, n, qlo, qhi, best.d);
    return e1 < e0 * (1.0f - MX_SEARCH_MARGIN) ? best.d : d_rtn;
}

/* ---------------------------------------------------------------------- */
/* Asymmetric driver                                                       */
/* ---------------------------------------------------------------------- */

/*
 * Candidate ranges [lo + a s0, hi - b s0] with s0 = R / L the plain step
 * (R = hi - lo), as (a, b) pairs: the min/max range, and ranges shifted or
 * shrunk by a quarter or half step at either end.  Each candidate's codes
 * (the nearest points of its grid of L + 1 levels) are refit by least
 * squares; the candidates differ mainly in where the code boundaries fall,
 * which the refit alone cannot move far.  (Chosen by greedy selection on real
 * checkpoints among a's and b's of 0 ... 1.5 steps; 6 candidates reach
 * within ~0.2 % of 81.)
 */
static const float asym_cuts[][2] = {
    {0.0f, 0.0f}, {0.25f, 0.5f}, {0.5f, 0.25f}, {0.0f, 0.5f}, {0.5f, 0.0f}, {0.5f, 0.5f},
};
#define N_ASYM_CUTS (sizeof asym_cuts / sizeof asym_cuts[0])
#define ASYM_REFINE 2

typedef struct asym_best {
    float s, m;
    double rel;
} asym_best;

/*
 * The least-squares fit of one candidate's codes (sums sq, sqq, sxq of its
 * pass), in two steps: asym_quot forms the determinant D and the unrounded
 * solution *qs, *qm (meaningless unless D > 0); asym_finish rounds them as
 * rnd says into *s, *m and gives their error estimate *rel, or +INFINITY in
 * *rel if the fit is unusable (an estimate of +INFINITY never wins the strict
 * comparison, so this is the same as skipping the candidate).
 */
static inline void asym_quot(double sw, double sx, float sq, float sqq, float sxq, double *D, double *qs,
                             double *qm)
{
    double d = sw * (double)sqq - (double)sq * (double)sq;
    *D = d;
    *qs = (sw * (double)sxq - (double)sq * sx) / d;
    *qm = ((double)sqq * sx - (double)sq * (double)sxq) / d;
}

static inline void asym_finish(double sw, double sx, float sq, float sqq, float sxq, mx_pround rnd, double D,
                               double qs, double qm, float *s, float *m, double *rel)
{
    *s = *m = 0.0f;
    *rel = INFINITY;
    if (!(D > 0.0))
        return;
    *s = mx_round_param(qs, rnd);
    *m = mx_round_param(qm, rnd);
    if (!finite_f(*s) || !(*s > 0.0f) || !finite_f(*m))
        return;
    *rel = ls_asym_rel_err(*s, *m, sw, sx, sq, sqq, sxq);
}

/* best := (s, m, rel) if rel is strictly smaller. */
static inline void asym_keep(asym_best *best, float s, float m, double rel)
{
    if (rel < best->rel) {
        best->rel = rel;
        best->s = s;
        best->m = m;
    }
}

/* One candidate (a refinement): codes from fl(x - m0) * id, refit by least squares. */
static void asym_try(const mx_search_ops *ops, const float *x, const float *w, size_t n, int L, mx_pround rnd,
                     const mx_gstats *st, float m0, float id, asym_best *best)
{
    float sq, sqq, sxq, s, m;
    double D, qs, qm, rel;
    if (!finite_f(id) || !(id > 0.0f) || !finite_f(m0))
        return;
    ops->asym_pass(x, w, n, L, m0, id, &sq, &sqq, &sxq);
    asym_quot(st->sw, st->sx, sq, sqq, sxq, &D, &qs, &qm);
    asym_finish(st->sw, st->sx, sq, sqq, sxq, rnd, D, qs, qm, &s, &m, &rel);
    asym_keep(best, s, m, rel);
}

/*
 * The initial candidates (asym_cuts), all in one multi-candidate sweep; the
 * fits are independent of each other (so they overlap) and are compared in
 * candidate order afterwards, which chooses as trying them one by one would.
 */
static void asym_candidates(const mx_search_ops *ops, const float *x, const float *w, size_t n, int L,
                            mx_pround rnd, const mx_gstats *st, asym_best *best)
{
    float m0[N_ASYM_CUTS], id[N_ASYM_CUTS], sq[N_ASYM_CUTS], sqq[N_ASYM_CUTS], sxq[N_ASYM_CUTS];
    float s[N_ASYM_CUTS], m[N_ASYM_CUTS];
    double rel[N_ASYM_CUTS], D[N_ASYM_CUTS], qs[N_ASYM_CUTS], qm[N_ASYM_CUTS];
    float step = (st->hi - st->lo) / (float)L;
    size_t K = 0;
    for (size_t k = 0; k < N_ASYM_CUTS; k++) {
        float a = st->lo + asym_cuts[k][0] * step;
        float b = st->hi - asym_cuts[k][1] * step;
        float idk = (float)L / (b - a);
        if (!finite_f(idk) || !(idk > 0.0f) || !finite_f(a))
            continue; /* skipped, as asym_try does */
        m0[K] = a;
        id[K] = idk;
        K++;
    }
    if (ops->asym_pass_multi != NULL) {
        ops->asym_pass_multi(x, w, n, L, K, m0, id, sq, sqq, sxq);
    } else {
        for (size_t k = 0; k < K; k++)
            ops->asym_pass(x, w, n, L, m0[k], id[k], &sq[k], &sqq[k], &sxq[k]);
    }
    for (size_t k = 0; k < K; k++) /* branch-free, so the divisions vectorize */
        asym_quot(st->sw, st->sx, sq[k], sqq[k], sxq[k], &D[k], &qs[k], &qm[k]);
    for (size_t k = 0; k < K; k++)
        asym_finish(st->sw, st->sx, sq[k], sqq[k], sxq[k], rnd, D[k], qs[k], qm[k], &s[k], &m[k], &rel[k]);
    for (size_t k = 0; k < K; k++)
        asym_keep(best, s[k], m[k], rel[k]);
}

void mx_search_asym(const mx_search_ops *ops, const float *x, const float *w, size_t n, int L, mx_pround rnd,
                    const mx_gstats *st, float s_rtn, float m_rtn, float *s, float *m)
{
    asym_best best = {0.0f, 0.0f, INFINITY};
    float e0, e1, R = st->hi - st->lo;
    *s = s_rtn;
    *m = m_rtn;
    if (n == 0 || !(R > 0.0f) || !finite_f(R))
        return;
    e0 = rnd == MX_ROUND_F32 ? 1.0f : ops->asym_err(x, w, n, L, s_rtn, m_rtn);
    if (!(e0 > 0.0f))
        return;
    asym_candidates(ops, x, w, n, L, rnd, st, &best);
    for (int it = 0; it < (rnd == MX_ROUND_F32 ? 1 : ASYM_REFINE) && best.s != 0.0f; it++) {
        float bs = best.s, bm = best.m;
        asym_try(ops, x, w, n, L, rnd, st, bm, 1.0f / bs, &best);
        if (best.s == bs && best.m == bm)
            break;
    }
    if (best.s == 0.0f || (best.s == s_rtn && best.m == m_rtn))
        return;
    if (rnd == MX_ROUND_F32) { /* first level of a double-quantized search: no check here */
        *s = best.s;
        *m = best.m;
        return;
    }
    e1 = ops->asym_err(x, w, n, L, best.s, best.m);
    if (e1 < e0 * (1.0f - MX_SEARCH_MARGIN)) {
        *s = best.s;
        *m = best.m;
    }
}
