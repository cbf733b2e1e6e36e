/*
 * kernel_nl4.c - scalar reference kernels of the lookup-table types
 * (FORMAT.md §4.12, §4.13): nl4 (an f16 scale per group) and nl4_dq (6-bit
 * signed group scale codes under an f16 scale per 256-weight super-block).
 * An element is the index of one of 16 fixed levels (kernel_nl4.h), its
 * value L[q] * scale.
 *
 * Plain choice (no search): the scale sends the group's element of largest
 * magnitude to the extreme level -127 (the smallest covering f16, as int4s;
 * for nl4_dq the int3_dq rule with 127 in place of 4), every element takes
 * its nearest level.
 *
 * Search (FORMAT.md §4.9): per group, candidate scales that send xm to
 * several targets around the extreme levels (nl4_targets); for each the
 * nearest levels are assigned, the scale is refit by weighted least squares
 * for that assignment and rounded (f16 for nl4, binary32 for the first level
 * of nl4_dq), and kept if its direct weighted error (levels re-assigned for
 * the rounded scale) is strictly the lowest so far; then up to NL4_REFINE
 * refits from the best.  nl4_dq quantizes the binary32 group scales to codes
 * under an f16 super scale (mx_search_sym with the groups' sum w L^2 as
 * weights), refits the super scale by least squares, moves each code by one
 * if that lowers its group's error, and keeps the result only if the
 * super-block's error is below the plain choice's by MX_SEARCH_MARGIN.
 * Sums are binary32 in 8 lanes (quant_search.c's order), no contraction.
 */
#include <math.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_dq_plain.h"
#include "kernels/kernel_nl4.h"
#include "kernels/kernel_scale_rules.h"
#include "kernels/kernels.h"

#define NL4_REFINE 2
#define NL4_SC_LO (-32) /* nl4_dq scale codes */
#define NL4_SC_HI 31
#define NL4_SC_BIAS 32

/* Targets (in level units) for the group's largest-magnitude element xm: near -127 and near +110. */
static const float nl4_targets[] = {-127.0f, -131.0f, -123.0f, -119.0f, -115.0f, -111.0f, -105.0f,
                                    -99.0f,  110.0f,  104.0f,  98.0f};
#define N_TARGETS (sizeof nl4_targets / sizeof nl4_targets[0])

static bool finite_f(float v) { return v - v == 0.0f; }

static void zero8(float a[MX_LANES])
{
    for (int j = 0; j < MX_LANES; j++)
        a[j] = 0.0f;
}

/* Weighted squared error of a group at scale s (levels by mx_nl4_code): sum fl(w fl(e * e)), e = x - fl(L[q] s). */
static float s_nl4_err(const float *x, const float *w, size_t n, float s)
{
    float a[MX_LANES];
    zero8(a);
    for (size_t i = 0; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float e = x[i] - (float)mx_nl4_level[mx_nl4_code(x[i], s)] * s;
        a[i % MX_LANES] += wi * (e * e);
    }
    return mx_lanes_sum(a);
}

/* Least-squares sums of the levels of fl(x * id): sxq = sum fl(fl(w x) L), sqq = sum fl(fl(w L) L). */
static void s_nl4_pass(const float *x, const float *w, size_t n, float id, float *sxq, float *sqq)
{
    float a[MX_LANES], b[MX_LANES];
    zero8(a);
    zero8(b);
    for (size_t i = 0; i < n; i++) {
        float wi = w ? w[i] : 1.0f;
        float l = (float)mx_nl4_level[mx_nl4_index(x[i] * id)];
        a[i % MX_LANES] += (wi * x[i]) * l;
        b[i % MX_LANES] += (wi * l) * l;
    }
    *sxq = mx_lanes_sum(a);
    *sqq = mx_lanes_sum(b);
}

const mx_nl4_ops mx_nl4_ops_scalar = {.err = s_nl4_err, .pass = s_nl4_pass};

/* The drivers below call the passes only through ops, so that a SIMD path reuses them unchanged. */

typedef struct nl4_best {
    float s, err;
} nl4_best;

/* One candidate: levels of fl(x * id), the least-squares scale rounded as rnd says, kept if strictly better. */
static void nl4_try(const mx_nl4_ops *ops, const float *x, const float *w, size_t n, float id, mx_pround rnd, nl4_best *best)
{
    float sxq, sqq, s, e;
    if (!finite_f(id) || id == 0.0f)
        return;
    ops->pass(x, w, n, id, &sxq, &sqq);
    if (!(sqq > 0.0f))
        return;
    s = mx_round_param((double)sxq / (double)sqq, rnd);
    if (!finite_f(s) || s == 0.0f || s == best->s)
        return;
    e = ops->err(x, w, n, s);
    if (e < best->err) {
        best->err = e;
        best->s = s;
    }
}

/*
 * The search of one group (xm: its element of largest magnitude, nonzero):
 * returns the best scale found, starting from s0 with error e0 (rounded as
 * rnd says; s0 wins ties).
 */
static float nl4_search_group(const mx_nl4_ops *ops, const float *x, const float *w, size_t n, float xm, mx_pround rnd, float s0, float e0)
{
    nl4_best best = {s0, e0};
    if (!(e0 > 0.0f) || !(xm != 0.0f) || !finite_f(xm))
        return s0;
    for (size_t k = 0; k < N_TARGETS; k++)
        nl4_try(ops, x, w, n, nl4_targets[k] / xm, rnd, &best);
    for (int it = 0; it < NL4_REFINE && best.s != 0.0f; it++) {
        float before = best.s;
        nl4_try(ops, x, w, n, 1.0f / best.s, rnd, &best);
        if (best.s == before)
            break;
    }
    return best.s;
}

/* max |x| and the element of largest magnitude (+amax if max(x) == amax, else -amax). */
static void nl4_extreme(const float *x, size_t n, float *amax, float *xm)
{
    float a = 0.0f, hi = n ? x[0] : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float v = x[i] < 0.0f ? -x[i] : x[i];
        a = v > a ? v : a;
        hi = x[i] > hi ? x[i] : hi;
    }
    *amax = a;
    *xm = hi == a ? a : -a;
}

/* Packs the 4-bit level indices of elements [k0, k0 + len) (the nibbles start zeroed). */
static void nl4_put_codes(uint8_t *codes, size_t k0, const float *x, size_t len, float s)
{
    for (size_t i = 0; i < len; i++) {
        size_t k = k0 + i;
        codes[k / 2u] |= (uint8_t)(mx_nl4_code(x[i], s) << (4u * (k % 2u)));
    }
}

/* ---------------------------------------------------------------------- */
/* nl4                                                                     */
/* ---------------------------------------------------------------------- */

/* The plain scale of a group: |d| the smallest f16 with 127 |d| >= amax, negative when xm > 0 (xm -> -127). */
static uint16_t nl4_plain_scale(float amax, float xm)
{
    uint16_t h = mx_sym_cover_scale(amax, MX_NL4_EXTREME);
    if (xm > 0.0f && h != 0)
        h |= 0x8000u;
    return h;
}

void kernel_nl4_quantize_row_ops(const mx_nl4_ops *ops, const float *x, size_t n, unsigned group, const mx_qparams *p,
                                 mx_rowptrs out)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    bool search = p != NULL && p->search;

    memset(codes, 0, (n + 1u) / 2u);
    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        const float *wg = search && p->importance ? p->importance + start : NULL;
        float amax, xm, s;
        uint16_t h;
        nl4_extreme(xg, len, &amax, &xm);
        h = nl4_plain_scale(amax, xm);
        s = mx_f16_to_f32(h);
        if (search && h != 0) {
            float e0 = ops->err(xg, wg, len, s);
            float s2 = nl4_search_group(ops, xg, wg, len, xm, MX_ROUND_F16, s, e0);
            if (s2 != s && ops->err(xg, wg, len, s2) < e0 * (1.0f - MX_SEARCH_MARGIN)) {
                s = s2;
                h = mx_f32_to_f16(s); /* exact: an f16 value, not zero */
            }
        }
        mx_st16le(scales + 2 * j, h);
        nl4_put_codes(codes, start, xg, len, s);
    }
}

void kernel_nl4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;

    for (size_t start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t h = mx_ld16le(scales + 2 * j);
        float s = mx_f16_to_f32(h);
        if (!mx_f16_bits_finite(h)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            unsigned q = (codes[k / 2u] >> (4u * (k % 2u))) & 15u;
            out[k] = (float)mx_nl4_level[q] * s; /* exact */
        }
    }
}

/* ---------------------------------------------------------------------- */
/* nl4_dq                                                                  */
/* ---------------------------------------------------------------------- */

#define NL4_DQ_GROUP 32u
#define NL4_DQ_MAX_GROUPS (MX_DQ_SUPER / NL4_DQ_GROUP)

typedef struct nl4_sb {
    uint16_t dh;
    int sc[NL4_DQ_MAX_GROUPS];
} nl4_sb;

static float sb_group_scale(const nl4_sb *r, int j) { return mx_f16_to_f32(r->dh) * (float)r->sc[j]; }

/* Error of a super-block of len elements (groups of 32 in order). */
static float nl4_sb_err(const mx_nl4_ops *ops, const float *x, const float *w, size_t len, const nl4_sb *r)
{
    float e = 0.0f;
    int j = 0;
    for (size_t g0 = 0; g0 < len; g0 += NL4_DQ_GROUP, j++) {
        size_t gl = len - g0 < NL4_DQ_GROUP ? len - g0 : NL4_DQ_GROUP;
        e += ops->err(x + g0, w ? w + g0 : NULL, gl, sb_group_scale(r, j));
    }
    return e;
}

/* The plain choice: int3_dq's rule (kernel_dq_plain_sym) with the extreme level 127 and codes up to 31 in size. */
static void nl4_dq_plain(const float *amax, const float *hi, int ng, nl4_sb *r)
{
    mx_dq_sb t;
    memset(&t, 0, sizeof t);
    kernel_dq_plain_sym(-127, NL4_SC_HI, amax, hi, ng, &t);
    r->dh = t.dh;
    for (int j = 0; j < ng; j++)
        r->sc[j] = t.sc[j];
}

/* The search of one super-block (ng groups); *r gets its result, the return value its error. */
static float nl4_dq_search(const mx_nl4_ops *ops, const float *x, const float *w, size_t len, int ng, const float *xmv, nl4_sb *r)
{
    float sv[NL4_DQ_MAX_GROUPS] = {0}, W[NL4_DQ_MAX_GROUPS] = {0};
    float amax = 0.0f, hi, vxm, d, e;
    uint16_t h;

    /* 1. each group's binary32 scale, and its weight for the scale codes: sum w L^2 at that scale */
    for (int j = 0; j < ng; j++) {
        size_t g0 = (size_t)j * NL4_DQ_GROUP, gl = len - g0 < NL4_DQ_GROUP ? len - g0 : NL4_DQ_GROUP;
        const float *wg = w ? w + g0 : NULL;
        float s0 = xmv[j] / -MX_NL4_EXTREME, sxq = 0.0f, sqq = 0.0f;
        if (xmv[j] != 0.0f) {
            sv[j] = nl4_search_group(ops, x + g0, wg, gl, xmv[j], MX_ROUND_F32, s0, ops->err(x + g0, wg, gl, s0));
            ops->pass(x + g0, wg, gl, 1.0f / sv[j], &sxq, &sqq);
        }
        W[j] = sqq;
    }

    /* 2. the group scales as codes under an f16 super scale (int3_dq's parameter search) */
    hi = sv[0];
    for (int j = 0; j < ng; j++) {
        float a = sv[j] < 0.0f ? -sv[j] : sv[j];
        amax = a > amax ? a : amax;
        hi = sv[j] > hi ? sv[j] : hi;
    }
    memset(r, 0, sizeof *r);
    if (!(amax > 0.0f) || !finite_f(amax))
        return nl4_sb_err(ops, x, w, len, r);
    vxm = hi == amax ? amax : -amax;
    h = mx_sym_cover_scale(amax, (float)-NL4_SC_LO);
    if (vxm > 0.0f)
        h |= 0x8000u; /* the largest group scale on code -32 */
    d = mx_search_sym(&mx_search_ops_scalar, sv, W, (size_t)ng, NL4_SC_LO, NL4_SC_HI, MX_ROUND_F16, false,
                      mx_f16_to_f32(h), vxm);
    r->dh = d != mx_f16_to_f32(h) ? mx_f32_to_f16(d) : h;
    d = mx_f16_to_f32(r->dh);
    for (int j = 0; j < ng; j++)
        r->sc[j] = d != 0.0f ? mx_round_half_even(mx_dqp_clampf(sv[j] / d, (float)NL4_SC_LO, (float)NL4_SC_HI,
                                                                (float)NL4_SC_HI))
                             : 0;
    e = nl4_sb_err(ops, x, w, len, r);

    /* 3. least-squares refit of the super scale for these levels and codes, kept if the error drops */
    {
        double A = 0.0, B = 0.0;
        for (int j = 0; j < ng; j++) {
            size_t g0 = (size_t)j * NL4_DQ_GROUP, gl = len - g0 < NL4_DQ_GROUP ? len - g0 : NL4_DQ_GROUP;
            float s = sb_group_scale(r, j), sxq = 0.0f, sqq = 0.0f;
            if (s != 0.0f)
                ops->pass(x + g0, w ? w + g0 : NULL, gl, 1.0f / s, &sxq, &sqq);
            A += (double)r->sc[j] * r->sc[j] * sqq;
            B += (double)r->sc[j] * sxq;
        }
        if (A > 0.0) {
            float df = mx_round_param(B / A, MX_ROUND_F16);
            if (finite_f(df) && df != 0.0f && df != d) {
                nl4_sb t = *r;
                float e2;
                t.dh = mx_f32_to_f16(df);
                e2 = nl4_sb_err(ops, x, w, len, &t);
                if (e2 < e) {
                    *r = t;
                    e = e2;
                }
            }
        }
    }

    /* 4. each group's code moved by one step if that lowers its error */
    e = 0.0f;
    for (int j = 0; j < ng; j++) {
        size_t g0 = (size_t)j * NL4_DQ_GROUP, gl = len - g0 < NL4_DQ_GROUP ? len - g0 : NL4_DQ_GROUP;
        const float *wg = w ? w + g0 : NULL;
        float dd = mx_f16_to_f32(r->dh);
        int c0 = r->sc[j], bc = c0;
        float be = ops->err(x + g0, wg, gl, dd * (float)c0);
        for (int dc = -1; dc <= 1; dc += 2) {
            int c = c0 + dc;
            float ec;
            if (c < NL4_SC_LO || c > NL4_SC_HI)
                continue;
            ec = ops->err(x + g0, wg, gl, dd * (float)c);
            if (ec < be) {
                be = ec;
                bc = c;
            }
        }
        r->sc[j] = bc;
        e += be; /* the groups' errors in order: nl4_sb_err of the result */
    }
    return e;
}

void kernel_nl4_dq_quantize_row_ops(const mx_nl4_ops *ops, const float *x, size_t n, unsigned group,
                                    const mx_qparams *p, mx_rowptrs out)
{
    const qtype_desc *qt = &mx_qtypes[MIXQ_QT_NL4_DQ];
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    uint8_t *sups = out.sec[MIXQ_SEC_SUPER_SCALES];
    size_t ng = (n + NL4_DQ_GROUP - 1) / NL4_DQ_GROUP;
    size_t soff[QT_MAX_PLANES];
    bool search = p != NULL && p->search;

    (void)group; /* always 32 (the row's group rule) */
    mx_planes_offsets(qt->scale_planes, ng, soff);
    memset(codes, 0, (n + 1u) / 2u);
    memset(scales, 0, mx_planes_bytes(qt->scale_planes, ng));
    for (size_t b = 0, s0 = 0; s0 < n; b++, s0 += MX_DQ_SUPER) {
        size_t len = n - s0 < MX_DQ_SUPER ? n - s0 : MX_DQ_SUPER;
        const float *xs = x + s0;
        const float *ws = search && p->importance ? p->importance + s0 : NULL;
        float amax[NL4_DQ_MAX_GROUPS], hi[NL4_DQ_MAX_GROUPS], xmv[NL4_DQ_MAX_GROUPS];
        int ngb = 0;
        nl4_sb r;

        for (size_t g0 = 0; g0 < len; g0 += NL4_DQ_GROUP, ngb++) {
            size_t gl = len - g0 < NL4_DQ_GROUP ? len - g0 : NL4_DQ_GROUP;
            nl4_extreme(xs + g0, gl, &amax[ngb], &xmv[ngb]);
            hi[ngb] = xmv[ngb] > 0.0f ? amax[ngb] : -amax[ngb]; /* kernel_dq_plain_sym: hi == amax iff xm > 0 */
        }
        memset(&r, 0, sizeof r);
        nl4_dq_plain(amax, hi, ngb, &r);
        if (search) {
            float e0 = nl4_sb_err(ops, xs, ws, len, &r);
            if (e0 > 0.0f) {
                nl4_sb t;
                if (nl4_dq_search(ops, xs, ws, len, ngb, xmv, &t) < e0 * (1.0f - MX_SEARCH_MARGIN))
                    r = t;
            }
        }
        mx_st16le(sups + 2 * b, r.dh);
        for (int j = 0; j < ngb; j++) {
            size_t g0 = (size_t)j * NL4_DQ_GROUP, gl = len - g0 < NL4_DQ_GROUP ? len - g0 : NL4_DQ_GROUP;
            mx_planes_put(scales, qt->scale_planes, soff, s0 / NL4_DQ_GROUP + (size_t)j,
                          (unsigned)(r.sc[j] + NL4_SC_BIAS));
            nl4_put_codes(codes, s0 + g0, xs + g0, gl, sb_group_scale(&r, j));
        }
    }
}

void kernel_nl4_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const qtype_desc *qt = &mx_qtypes[MIXQ_QT_NL4_DQ];
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *sups = in.sec[MIXQ_SEC_SUPER_SCALES];
    size_t ng = (n + NL4_DQ_GROUP - 1) / NL4_DQ_GROUP;
    size_t soff[QT_MAX_PLANES];

    (void)group;
    mx_planes_offsets(qt->scale_planes, ng, soff);
    for (size_t j = 0, g0 = 0; g0 < n; j++, g0 += NL4_DQ_GROUP) {
        size_t gl = n - g0 < NL4_DQ_GROUP ? n - g0 : NL4_DQ_GROUP;
        uint16_t dh = mx_ld16le(sups + 2 * (g0 / MX_DQ_SUPER));
        if (!mx_f16_bits_finite(dh)) { /* kernels.h: the super-block's groups all take this branch */
            mx_fill_canonical_nan(out + g0, gl);
            continue;
        }
        float s = mx_f16_to_f32(dh) * (float)((int)mx_planes_get(scales, qt->scale_planes, soff, j) - NL4_SC_BIAS);
        for (size_t i = 0; i < gl; i++) {
            size_t k = g0 + i;
            unsigned q = (codes[k / 2u] >> (4u * (k % 2u))) & 15u;
            out[k] = (float)mx_nl4_level[q] * s; /* exact */
        }
    }
}

void kernel_nl4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    kernel_nl4_quantize_row_ops(&mx_nl4_ops_scalar, x, n, group, p, out);
}

void kernel_nl4_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    kernel_nl4_dq_quantize_row_ops(&mx_nl4_ops_scalar, x, n, group, p, out);
}
