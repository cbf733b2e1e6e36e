/*
 * kernel_dq.c - scalar reference kernels of the double-quantized types
 * (FORMAT.md §4.5-§4.8): int4_dq, int2_dq (asymmetric) and int3_dq,
 * int6_dq (symmetric).  A row is cut into super-blocks of 256 weights (the
 * last one partial), each into groups of `group` weights (the last one
 * partial).  Each group has an integer scale code (and min code); each
 * super-block an f16 scale of the scale codes (and of the min codes).
 *
 * Plain choice (no search): every group's range is covered, so the error
 * is at most half a step (FORMAT.md gives the exact rules).  Search
 * (FORMAT.md §4.9): each group's float scale (and min) is searched first;
 * the vector of group scales (and of mins) of the super-block is then
 * quantized to codes by the same symmetric search, with the group weights
 * as importance; the element codes are recomputed with the rounded scales,
 * the super-block scales are refit by least squares, and the result is kept
 * only if its error over the super-block is below the plain choice's.
 */
#include <math.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernel_scale_rules.h"
#include "kernels/kernels.h"

#define DQ_MAX_GROUPS MX_DQ_MAX_GROUPS
#define DQ_REFIT 1        /* least-squares refits of the super-block scales */

typedef struct dq_type {
    mixq_qtype id;
    bool asym;
    int qlo, qhi;   /* element code range ([0, L] if asymmetric) */
    int clo, chi;   /* scale code range ([0, SC] if asymmetric; min codes too) */
    unsigned qbias; /* stored element code = q + qbias */
    unsigned cbias; /* stored scale code = c + cbias */
} dq_type;

static const dq_type T_INT4_DQ = {MIXQ_QT_INT4_DQ, true, 0, 15, 0, 63, 0, 0};
static const dq_type T_INT2_DQ = {MIXQ_QT_INT2_DQ, true, 0, 3, 0, 15, 0, 0};
static const dq_type T_INT3_DQ = {MIXQ_QT_INT3_DQ, false, -4, 3, -32, 31, 4, 32};
static const dq_type T_INT6_DQ = {MIXQ_QT_INT6_DQ, false, -32, 31, -128, 127, 32, 128};

/* One super-block's parameters (kernel_dq_plain.h). */
typedef mx_dq_sb dq_sb;

static bool finite_f(float v) { return v - v == 0.0f; }

/* The group's reconstruction parameters: scale fl(d * sc), min fl(dm * mc) (both exact). */
static float sb_scale(const dq_sb *r, int j) { return mx_f16_to_f32(r->dh) * (float)r->sc[j]; }
static float sb_min(const dq_sb *r, int j) { return mx_f16_to_f32(r->mh) * (float)r->mc[j]; }

static float clampf(float t, float lo, float hi, float nan_to)
{
    if (t != t)
        t = nan_to;
    t = t < lo ? lo : t;
    return t > hi ? hi : t;
}

/* Element code of x (FORMAT.md §4.5/§4.7): rhe(clamp(fl(fl(x - m) / s))) or rhe(clamp(fl(x / s))). */
static int elem_code(const dq_type *T, float x, float s, float m)
{
    if (s == 0.0f)
        return 0;
    if (T->asym) {
        if (!(s > 0.0f))
            return 0;
        return mx_round_half_even(clampf((x - m) / s, 0.0f, (float)T->qhi, 0.0f));
    }
    return mx_round_half_even(clampf(x / s, (float)T->qlo, (float)T->qhi, (float)T->qhi));
}

/* Weighted error of the super-block with parameters r, summed over its groups in order. */
static float sb_error(const mx_search_ops *ops, const dq_type *T, const float *x, const float *w, size_t len,
                      unsigned G, const dq_sb *r)
{
    float e = 0.0f;
    int j = 0;
    for (size_t s0 = 0; s0 < len; s0 += G, j++) {
        size_t gl = len - s0 < G ? len - s0 : G;
        const float *wg = w ? w + s0 : NULL;
        if (T->asym)
            e += ops->asym_err(x + s0, wg, gl, T->qhi, sb_scale(r, j), sb_min(r, j));
        else
            e += ops->sym_err(x + s0, wg, gl, T->qlo, T->qhi, sb_scale(r, j));
    }
    return e;
}

/* ---------------------------------------------------------------------- */
/* Plain choice                                                            */
/* ---------------------------------------------------------------------- */

/* fl(m + fl(L * fl(d * c))) >= hi: every product is exact (at most 21 significant bits). */
static bool asym_covers(float m, float d, int c, int L, float hi)
{
    float top = (float)L * (d * (float)c);
    float sum = m + top;
    return sum >= hi;
}

/* |qlo| * fl(d * c) >= amax (exact products). */
static bool sym_covers(float d, int c, int qlo, float amax)
{
    return (float)(-qlo) * (d * (float)c) >= amax;
}

static void dq_rtn_asym(const dq_type *T, const mx_gstats *st, int ng, dq_sb *r)
{
    float lo[DQ_MAX_GROUPS] = {0}, hi[DQ_MAX_GROUPS] = {0}, m[DQ_MAX_GROUPS] = {0};
    float d;
    int SC = T->chi, L = T->qhi;
    unsigned a, b;

    for (int j = 0; j < ng; j++) {
        lo[j] = st[j].lo;
        hi[j] = st[j].hi;
    }
    mx_dq_plain_mins(SC, lo, ng, &r->mh, r->mc, m);

    /* d = the smallest f16 with every group covered at code SC; sc_j the smallest covering code. */
    a = 0;
    b = 0x7C00u;
    {
        bool all = true;
        for (int j = 0; j < ng; j++)
            all = all && asym_covers(m[j], 0.0f, SC, L, hi[j]);
        if (all)
            b = 0;
    }
    if (b != 0) {
        while (b - a > 1u) { /* a fails, b passes */
            unsigned mid = a + (b - a) / 2u;
            bool all = true;
            float dd = mx_f16_to_f32((uint16_t)mid);
            for (int j = 0; j < ng && all; j++)
                all = asym_covers(m[j], dd, SC, L, hi[j]);
            if (all)
                b = mid;
            else
                a = mid;
        }
    }
    r->dh = (uint16_t)b;
    d = mx_f16_to_f32(r->dh);
    for (int j = 0; j < ng; j++) {
        int c0 = 0, c1 = SC; /* smallest covering code: c1 covers (d was chosen so) */
        if (asym_covers(m[j], d, 0, L, hi[j])) {
            r->sc[j] = 0;
            continue;
        }
        while (c1 - c0 > 1) {
            int mid = (c0 + c1) / 2;
            if (asym_covers(m[j], d, mid, L, hi[j]))
                c1 = mid;
            else
                c0 = mid;
        }
        r->sc[j] = c1;
    }
}

static void dq_rtn_sym(const dq_type *T, const mx_gstats *st, int ng, dq_sb *r)
{
    float A = 0.0f, d;
    int C = T->chi;
    unsigned a = 0, b = 0x7C00u;

    for (int j = 0; j < ng; j++)
        A = st[j].amax > A ? st[j].amax : A;
    r->mh = 0;
    if (!(A > 0.0f)) {
        r->dh = 0;
        for (int j = 0; j < ng; j++)
            r->sc[j] = 0;
        return;
    }
    /* d = the smallest f16 with |qlo| * C * d >= A; |c_j| the smallest code with |qlo| * d * |c_j| >= amax_j. */
    while (b - a > 1u) {
        unsigned mid = a + (b - a) / 2u;
        if (sym_covers(mx_f16_to_f32((uint16_t)mid), C, T->qlo, A))
            b = mid;
        else
            a = mid;
    }
    r->dh = (uint16_t)b;
    d = mx_f16_to_f32(r->dh);
    for (int j = 0; j < ng; j++) {
        int c0 = 0, c1 = C;
        if (!(st[j].amax > 0.0f)) {
            r->sc[j] = 0;
            continue;
        }
        while (c1 - c0 > 1) {
            int mid = (c0 + c1) / 2;
            if (sym_covers(d, mid, T->qlo, st[j].amax))
                c1 = mid;
            else
                c0 = mid;
        }
        r->sc[j] = st[j].hi == st[j].amax ? -c1 : c1; /* xm = +amax: code qlo with a negative scale */
    }
}

/* ---------------------------------------------------------------------- */
/* Search                                                                  */
/* ---------------------------------------------------------------------- */

/*
 * Quantizes a vector v[0..k) of group parameters to codes in [clo, chi]
 * under one f16 scale with weights W, by the symmetric search; returns the
 * f16 bits of the scale and fills codes.  Zero vector: scale +0, codes 0.
 */
static uint16_t quantize_params(const mx_search_ops *ops, const float *v, const float *W, int k, int clo, int chi,
                                int *codes)
{
    float amax = 0.0f, hi = v[0], xm, d;
    uint16_t h;
    for (int j = 0; j < k; j++) {
        float a = v[j] < 0.0f ? -v[j] : v[j];
        amax = a > amax ? a : amax;
        hi = v[j] > hi ? v[j] : hi;
    }
    if (!(amax > 0.0f) || !finite_f(amax)) {
        for (int j = 0; j < k; j++)
            codes[j] = 0;
        return 0;
    }
    xm = hi == amax ? amax : -amax;
    /* plain choice: |xm| lands on the longer end of the code range */
    if (clo < -chi) {
        h = mx_sym_cover_scale(amax, (float)-clo);
        if (xm > 0.0f)
            h |= 0x8000u;
    } else {
        h = mx_sym_cover_scale(amax, (float)chi);
        if (xm < 0.0f)
            h |= 0x8000u;
    }
    d = mx_search_sym(ops, v, W, (size_t)k, clo, chi, MX_ROUND_F16, false, mx_f16_to_f32(h), xm);
    if (d != mx_f16_to_f32(h))
        h = mx_f32_to_f16(d);
    for (int j = 0; j < k; j++)
        codes[j] = d != 0.0f ? mx_round_half_even(clampf(v[j] / d, (float)clo, (float)chi, (float)chi)) : 0;
    return h;
}

/* The search of one super-block; *r gets its result (not compared with the plain choice), the return value its error. */
static float dq_search(const mx_search_ops *ops, const dq_type *T, const float *x, const float *w, size_t len,
                      unsigned G, const mx_gstats *stats, dq_sb *r)
{
    float sv[DQ_MAX_GROUPS] = {0}, mv[DQ_MAX_GROUPS] = {0}, W[DQ_MAX_GROUPS] = {0}, sx[DQ_MAX_GROUPS] = {0};
    int ng = 0;

    /* 1. each group's own (binary32) scale and min */
    for (size_t s0 = 0; s0 < len; s0 += G, ng++) {
        size_t gl = len - s0 < G ? len - s0 : G;
        const float *wg = w ? w + s0 : NULL;
        mx_gstats st = stats[ng];
        W[ng] = st.sw;
        sx[ng] = st.sx;
        if (T->asym) {
            float s0f = (st.hi - st.lo) / (float)T->qhi;
            sv[ng] = s0f;
            mv[ng] = st.lo;
            if (s0f > 0.0f)
                mx_search_asym(ops, x + s0, wg, gl, T->qhi, MX_ROUND_F32, &st, s0f, st.lo, &sv[ng], &mv[ng]);
        } else {
            float xm = st.hi == st.amax ? st.amax : -st.amax;
            float d0 = xm / (float)T->qlo;
            sv[ng] = d0;
            if (st.amax > 0.0f)
                sv[ng] = mx_search_sym(ops, x + s0, wg, gl, T->qlo, T->qhi, MX_ROUND_F32, false, d0, xm);
        }
    }

    /* 2. the vectors of group scales (and mins) quantized under f16 super-block scales */
    r->dh = quantize_params(ops, sv, W, ng, T->clo, T->chi, r->sc);
    r->mh = 0;
    if (T->asym)
        r->mh = quantize_params(ops, mv, W, ng, T->clo, T->chi, r->mc);

    /*
     * 3. least-squares refit of the super-block scale(s) for the element and
     * scale codes these parameters give (one pass per group for the sums);
     * accepted if, rounded to f16, it lowers the error of those codes (the
     * codes recomputed for it can only lower the error further).
     */
    float gsq[DQ_MAX_GROUPS] = {0}, gsqq[DQ_MAX_GROUPS] = {0}, gsxq[DQ_MAX_GROUPS] = {0};
    bool have_sums = false;
    for (int it = 0; it < DQ_REFIT; it++) {
        double A = 0, B = 0, C = 0, bx = 0, cx = 0, dn, mn;
        dq_sb t = *r;
        int j = 0;
        have_sums = true;
        for (size_t s0 = 0; s0 < len; s0 += G, j++) {
            size_t gl = len - s0 < G ? len - s0 : G;
            const float *wg = w ? w + s0 : NULL;
            float s = sb_scale(r, j), sq = 0.0f, sqq = 0.0f, sxq = 0.0f;
            if (T->asym) {
                if (s > 0.0f)
                    ops->asym_pass(x + s0, wg, gl, T->qhi, sb_min(r, j), 1.0f / s, &sq, &sqq, &sxq);
                A += (double)r->sc[j] * r->sc[j] * sqq;
                B += (double)r->sc[j] * r->mc[j] * sq;
                C += (double)r->mc[j] * r->mc[j] * W[j];
                bx += (double)r->sc[j] * sxq;
                cx += (double)r->mc[j] * sx[j];
            } else {
                if (s != 0.0f)
                    ops->sym_pass(x + s0, wg, gl, T->qlo, T->qhi, 1.0f / s, &sxq, &sqq);
                A += (double)r->sc[j] * r->sc[j] * sqq;
                bx += (double)r->sc[j] * sxq;
            }
            gsq[j] = sq;
            gsqq[j] = sqq;
            gsxq[j] = sxq;
        }
        if (T->asym && A * C - B * B > 0.0) {
            double det = A * C - B * B;
            dn = (bx * C - cx * B) / det;
            mn = (A * cx - B * bx) / det;
        } else if (A > 0.0) {
            dn = bx / A;
            mn = mx_f16_to_f32(r->mh);
        } else {
            break;
        }
        {
            float df = mx_round_param(dn, MX_ROUND_F16), mf = mx_round_param(mn, MX_ROUND_F16);
            double d0 = mx_f16_to_f32(r->dh), m0 = mx_f16_to_f32(r->mh), e_old, e_new;
            if (!finite_f(df) || !finite_f(mf) || (T->asym && df < 0.0f))
                break;
            t.dh = mx_f32_to_f16(df);
            t.mh = T->asym ? mx_f32_to_f16(mf) : 0;
            if (t.dh == r->dh && t.mh == r->mh)
                break;
            /* sum w (x - x^)^2 - sum w x^2 for the fixed codes, as a function of (d, dm) */
            e_old = d0 * d0 * A + m0 * m0 * C + 2.0 * d0 * m0 * B - 2.0 * d0 * bx - 2.0 * m0 * cx;
            e_new = (double)df * df * A + (double)mf * mf * C + 2.0 * df * mf * B - 2.0 * df * bx - 2.0 * mf * cx;
            if (!T->asym)
                e_new = (double)df * df * A - 2.0 * df * bx, e_old = d0 * d0 * A - 2.0 * d0 * bx;
            if (!(e_new < e_old))
                break;
            *r = t;
        }
    }

    /*
     * 4. each group's scale (and min) code moved by one step if that lowers
     * its error for the same element codes (the sums of step 3; no pass).
     */
    if (have_sums) {
        double d = mx_f16_to_f32(r->dh), dm = mx_f16_to_f32(r->mh);
        for (int j = 0; j < ng; j++) {
            int bs = r->sc[j], bm = T->asym ? r->mc[j] : 0;
            double best = INFINITY;
            int c0 = r->sc[j], m0 = T->asym ? r->mc[j] : 0;
            for (int dc = -1; dc <= 1; dc++) {
                int c = c0 + dc;
                if (c < T->clo || c > T->chi)
                    continue;
                for (int dmc = T->asym ? -1 : 0; dmc <= (T->asym ? 1 : 0); dmc++) {
                    int mc = m0 + dmc;
                    double sj = d * c, mj = dm * mc, e;
                    if (T->asym && (mc < T->clo || mc > T->chi))
                        continue;
                    e = sj * sj * gsqq[j] - 2.0 * sj * gsxq[j];
                    if (T->asym)
                        e += mj * mj * W[j] - 2.0 * mj * sx[j] + 2.0 * sj * mj * gsq[j];
                    if (e < best) {
                        best = e;
                        bs = c;
                        bm = mc;
                    }
                }
            }
            r->sc[j] = bs;
            if (T->asym)
                r->mc[j] = bm;
        }
    }
    return sb_error(ops, T, x, w, len, G, r);
}

/* ---------------------------------------------------------------------- */
/* Row kernels                                                             */
/* ---------------------------------------------------------------------- */

/* ORs the values u[0..count) of elements k0.. into their planes (which start zeroed). */
static void pack_codes(uint8_t *base, const uint8_t planes[QT_MAX_PLANES], const size_t off[QT_MAX_PLANES], size_t k0,
                       const uint8_t *u, size_t count)
{
    unsigned shift = 0;
    for (int p = 0; p < QT_MAX_PLANES && planes[p] != 0; p++) {
        unsigned w = planes[p], mask = (1u << w) - 1u;
        uint8_t *pl = base + off[p];
        for (size_t i = 0; i < count; i++) {
            size_t bit = (k0 + i) * w;
            pl[bit / 8u] |= (uint8_t)(((u[i] >> shift) & mask) << (bit % 8u));
        }
        shift += w;
    }
}

static void dq_quantize(const dq_type *T, const mx_search_ops *ops, const float *x, size_t n, unsigned group,
                        const mx_qparams *p, mx_rowptrs out)
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
    bool search = p != NULL && p->search;

    mx_planes_offsets(qt->code_planes, n, coff);
    mx_planes_offsets(qt->scale_planes, ng, soff);
    memset(codes, 0, mx_planes_bytes(qt->code_planes, n));
    memset(scales, 0, mx_planes_bytes(qt->scale_planes, ng));
    if (T->asym)
        memset(mins, 0, mx_planes_bytes(qt->scale_planes, ng));

    for (size_t b = 0, s0 = 0; s0 < n; b++, s0 += MX_DQ_SUPER) {
        size_t len = n - s0 < MX_DQ_SUPER ? n - s0 : MX_DQ_SUPER;
        const float *xs = x + s0;
        const float *ws = search && p->importance ? p->importance + s0 : NULL;
        size_t j0 = s0 / G;
        dq_sb r;
        uint8_t u[MX_DQ_SUPER];
        int j = 0;

        mx_gstats st[DQ_MAX_GROUPS];
        int ngb = 0;

        /* per-group min, max, max |x| (and, for the search, the weight sums) */
        for (size_t g0 = 0; g0 < len; g0 += G, ngb++) {
            size_t gl = len - g0 < G ? len - g0 : G;
            if (search) {
                ops->stats(xs + g0, ws ? ws + g0 : NULL, gl, &st[ngb]);
                continue;
            }
            st[ngb].lo = st[ngb].hi = xs[g0];
            st[ngb].amax = 0.0f;
            for (size_t i = 0; i < gl; i++) {
                float v = xs[g0 + i], a = v < 0.0f ? -v : v;
                st[ngb].lo = v < st[ngb].lo ? v : st[ngb].lo;
                st[ngb].hi = v > st[ngb].hi ? v : st[ngb].hi;
                st[ngb].amax = a > st[ngb].amax ? a : st[ngb].amax;
            }
        }
        memset(&r, 0, sizeof r);
        if (T->asym)
            dq_rtn_asym(T, st, ngb, &r);
        else
            dq_rtn_sym(T, st, ngb, &r);
        if (search) {
            float e0 = sb_error(ops, T, xs, ws, len, G, &r);
            if (e0 > 0.0f) {
                dq_sb t;
                memset(&t, 0, sizeof t);
                if (dq_search(ops, T, xs, ws, len, G, st, &t) < e0 * (1.0f - MX_SEARCH_MARGIN))
                    r = t;
            }
        }

        mx_st16le(sups + 2 * b, r.dh);
        if (T->asym)
            mx_st16le(supm + 2 * b, r.mh);
        for (size_t g0 = 0; g0 < len; g0 += G, j++) {
            size_t gl = len - g0 < G ? len - g0 : G;
            float s = sb_scale(&r, j), m = T->asym ? sb_min(&r, j) : 0.0f;
            mx_planes_put(scales, qt->scale_planes, soff, j0 + (size_t)j, (unsigned)(r.sc[j] + (int)T->cbias));
            if (T->asym)
                mx_planes_put(mins, qt->scale_planes, soff, j0 + (size_t)j, (unsigned)r.mc[j]);
            if (ops->codes != NULL)
                ops->codes(xs + g0, gl, T->qlo, T->qhi, s, m, (int)T->qbias, u + g0);
            else
                for (size_t i = 0; i < gl; i++)
                    u[g0 + i] = (uint8_t)(elem_code(T, xs[g0 + i], s, m) + (int)T->qbias);
        }
        pack_codes(codes, qt->code_planes, coff, s0, u, len);
    }
}

static void dq_dequantize(const dq_type *T, mx_crowptrs in, size_t n, unsigned group, float *out)
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

    mx_planes_offsets(qt->code_planes, n, coff);
    mx_planes_offsets(qt->scale_planes, ng, soff);
    for (size_t j = 0, g0 = 0; g0 < n; j++, g0 += G) {
        size_t gl = n - g0 < G ? n - g0 : G, b = g0 / MX_DQ_SUPER;
        uint16_t dh = mx_ld16le(sups + 2 * b);
        float d = mx_f16_to_f32(dh);
        if (!mx_f16_bits_finite(dh) || (T->asym && !mx_f16_bits_finite(mx_ld16le(supm + 2 * b)))) {
            /* kernels.h: non-finite scale parameters (the super-block's groups all take this branch) */
            mx_fill_canonical_nan(out + g0, gl);
            continue;
        }
        int c = (int)mx_planes_get(scales, qt->scale_planes, soff, j) - (int)T->cbias;
        float s = d * (float)c; /* exact */
        float m = 0.0f;
        if (T->asym)
            m = mx_f16_to_f32(mx_ld16le(supm + 2 * b)) * (float)mx_planes_get(mins, qt->scale_planes, soff, j);
        for (size_t i = 0; i < gl; i++) {
            int q = (int)mx_planes_get(codes, qt->code_planes, coff, g0 + i) - (int)T->qbias;
            float v = (float)q * s; /* then add: no FMA */
            out[g0 + i] = T->asym ? v + m : v;
        }
    }
}

void kernel_dq_quantize_row_ops(const mx_search_ops *ops, mixq_qtype type, const float *x, size_t n,
                                unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    switch (type) {
    case MIXQ_QT_INT4_DQ: dq_quantize(&T_INT4_DQ, ops, x, n, group, p, out); break;
    case MIXQ_QT_INT2_DQ: dq_quantize(&T_INT2_DQ, ops, x, n, group, p, out); break;
    case MIXQ_QT_INT3_DQ: dq_quantize(&T_INT3_DQ, ops, x, n, group, p, out); break;
    case MIXQ_QT_INT6_DQ: dq_quantize(&T_INT6_DQ, ops, x, n, group, p, out); break;
    default: break;
    }
}

#define DQ_KERNELS(NAME, T)                                                                                \
    void kernel_##NAME##_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,         \
                                      mx_rowptrs out)                                                        \
    {                                                                                                        \
        dq_quantize(&T, &mx_search_ops_scalar, x, n, group, p, out);                                         \
    }                                                                                                        \
    void kernel_##NAME##_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)                \
    {                                                                                                        \
        dq_dequantize(&T, in, n, group, out);                                                                \
    }

DQ_KERNELS(int4_dq, T_INT4_DQ)
DQ_KERNELS(int2_dq, T_INT2_DQ)
DQ_KERNELS(int3_dq, T_INT3_DQ)
DQ_KERNELS(int6_dq, T_INT6_DQ)
