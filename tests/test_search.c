/*
 * test_search.c - the error-minimizing scale search (FORMAT.md §4.9,
 * src/quant_search.c): never worse than the plain choice on any group (f16
 * types) or super-block (double-quantized types), with and without
 * importance weights, including outliers and special groups; importance
 * weights change the choice where they should; the passes follow the
 * documented lane order; the quality goals on the real checkpoints in
 * ../shared/models (skipped when absent).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/dtype.h"
#include "common/half.h"
#include "kernels/kernels.h"
#include "kernels/qtype.h"
#include "kernels/quant_search.h"
#include "reader/st_reader.h"
#include "test_support.h"
#include "test_rng.h"

static const mixq_qtype int_types[] = {MIXQ_QT_INT8,    MIXQ_QT_INT4,    MIXQ_QT_INT4S,   MIXQ_QT_INT2,
                                       MIXQ_QT_INT4_DQ, MIXQ_QT_INT2_DQ, MIXQ_QT_INT3_DQ, MIXQ_QT_INT6_DQ,
                                       MIXQ_QT_NL4,     MIXQ_QT_NL4_DQ};
#define N_INT_TYPES (sizeof int_types / sizeof int_types[0])

/* One row quantized and dequantized (sections of exact size). */
typedef struct qrun {
    qlayout l;
    uint8_t *sec[MIXQ_SECTION_COUNT];
    float *y;
} qrun;

static void qrun_do(const qtype_desc *qt, const float *x, size_t n, unsigned g, const mx_qparams *p, qrun *r)
{
    mx_rowptrs o;
    mx_crowptrs in;
    cr_assert(qtype_layout(qt, ST_F32, 1, n, g, &r->l));
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        r->sec[k] = NULL;
        if (qtype_has_section(qt, (mixq_section_kind)k)) {
            r->sec[k] = malloc(r->l.row_bytes[k] + 1);
            memset(r->sec[k], 0xA5, r->l.row_bytes[k] + 1);
        }
        o.sec[k] = r->sec[k];
        in.sec[k] = r->sec[k];
    }
    r->y = malloc(n * sizeof(float));
    qt->quantize_row(x, n, r->l.group, p, o);
    qt->dequantize_row(in, n, r->l.group, r->y);
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (r->sec[k])
            cr_assert_eq(r->sec[k][r->l.row_bytes[k]], 0xA5, "%s wrote past section %d", qt->name, k);
    for (size_t i = 0; i < n; i++)
        cr_assert(isfinite(r->y[i]), "%s: output %zu is %g", qt->name, i, (double)r->y[i]);
}

static void qrun_free(qrun *r)
{
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) free(r->sec[k]);
    free(r->y);
}

/* Weighted squared error of x[a..b) in double. */
static double werr(const float *x, const float *y, const float *w, size_t a, size_t b)
{
    double e = 0;
    for (size_t i = a; i < b; i++) {
        double d = (double)x[i] - (double)y[i];
        e += (w ? (double)w[i] : 1.0) * d * d;
    }
    return e;
}

/* Fills a row: gaussian groups with varying means, outliers, zero runs and constant runs. */
static void fill_row(float *x, size_t n, uint64_t *seed, int kind)
{
    double sigma = kind == 0 ? 1.0 : kind == 1 ? 1e-3 : kind == 2 ? 200.0 : 0.02;
    double mean = (kind == 3) ? 0.05 : 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = rng_gauss(seed) * sigma + mean;
        uint64_t r = rng_next(seed) % 100;
        if (r < 3)
            v *= 10 + 50 * rng_unit(seed); /* outlier */
        if (kind == 4 && (i / 16) % 3 == 1)
            v = 0; /* zero groups */
        if (kind == 4 && (i / 16) % 3 == 2)
            v = 0.3; /* constant groups */
        x[i] = (float)fmax(-65504.0, fmin(65504.0, v));
    }
}

static void fill_weights(float *w, size_t n, uint64_t *seed, int mode)
{
    for (size_t i = 0; i < n; i++) {
        double u = rng_unit(seed);
        w[i] = mode == 1 ? (float)(0.1 + 3 * u) : (float)(u < 0.2 ? 0.0 : u < 0.3 ? 100.0 * u : u);
    }
}

/*
 * For one row: quantize with the plain choice and with the search; per unit
 * (group, or super-block for DQ types) the search's error must not exceed
 * the plain one's, and must be strictly lower where the unit's bytes differ.
 */
static void compare_row(const qtype_desc *qt, const float *x, size_t n, unsigned g, const float *w, int *changed,
                        int *units)
{
    mx_qparams prtn = {.importance = w, .search = false, .tensor_absmax = -1.0f};
    mx_qparams psrc = {.importance = w, .search = true, .tensor_absmax = -1.0f};
    qrun a, b;
    qrun_do(qt, x, n, g, &prtn, &a);
    qrun_do(qt, x, n, g, &psrc, &b);
    size_t unit = qt->super_block ? qt->super_block : a.l.group;
    for (size_t s0 = 0; s0 < n; s0 += unit) {
        size_t e = s0 + unit < n ? s0 + unit : n;
        double ea = werr(x, a.y, w, s0, e), eb = werr(x, b.y, w, s0, e);
        bool same = memcmp(a.y + s0, b.y + s0, (e - s0) * sizeof(float)) == 0;
        cr_assert(eb <= ea, "%s n=%zu g=%u unit at %zu: search error %.17g > plain %.17g", qt->name, n, g, s0, eb, ea);
        if (!same) {
            cr_assert(eb < ea, "%s n=%zu g=%u unit at %zu: changed but not better (%.17g vs %.17g)", qt->name, n, g,
                      s0, eb, ea);
            (*changed)++;
        }
        (*units)++;
    }
    qrun_free(&a);
    qrun_free(&b);
}

Test(search, never_worse_than_plain_choice)
{
    static const size_t sizes[] = {1, 2, 7, 16, 33, 100, 256, 257, 300, 512, 700};
    float *x = malloc(700 * sizeof *x), *w = malloc(700 * sizeof *w);
    uint64_t seed = 0x5EA5C4;
    for (size_t t = 0; t < N_INT_TYPES; t++) {
        const qtype_desc *qt = qtype_get(int_types[t]);
        int changed = 0, units = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (unsigned g = qt->group_min; g <= qt->group_max; g *= 2)
                for (int kind = 0; kind < 5; kind++)
                    for (int wm = 0; wm < 3; wm++) {
                        fill_row(x, sizes[si], &seed, kind);
                        if (wm)
                            fill_weights(w, sizes[si], &seed, wm);
                        compare_row(qt, x, sizes[si], g, wm ? w : NULL, &changed, &units);
                    }
        cr_log_info("%s: search changed %d of %d units", qt->name, changed, units);
        cr_assert_gt(changed, units / 3, "%s: the search changed only %d of %d units", qt->name, changed, units);
    }
    free(x);
    free(w);
}

Test(search, special_groups_keep_plain_bytes_or_improve)
{
    float x[512];
    const float consts[] = {0.0f, -0.0f, 1.0f, -3.25f, 0.1f, 65504.0f, -65504.0f, 1e-7f};
    for (size_t t = 0; t < N_INT_TYPES; t++) {
        const qtype_desc *qt = qtype_get(int_types[t]);
        int changed = 0, units = 0;
        for (size_t c = 0; c < sizeof consts / sizeof consts[0]; c++) {
            for (int i = 0; i < 512; i++) x[i] = consts[c];
            compare_row(qt, x, 512, qt->group_default, NULL, &changed, &units);
        }
        /* exact groups (zero error) are never changed */
        for (int i = 0; i < 512; i++) x[i] = 0.0f;
        mx_qparams pr = {NULL, false, -1.0f, NULL}, ps = {NULL, true, -1.0f, NULL};
        qrun a, b;
        qrun_do(qt, x, 512, qt->group_default, &pr, &a);
        qrun_do(qt, x, 512, qt->group_default, &ps, &b);
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
            if (a.sec[k])
                cr_assert(!memcmp(a.sec[k], b.sec[k], a.l.row_bytes[k]), "%s: zero row changed", qt->name);
        qrun_free(&a);
        qrun_free(&b);
        /* alternating extremes, tiny values, one outlier in zeros */
        for (int i = 0; i < 512; i++) x[i] = i % 2 ? 65504.0f : -65504.0f;
        compare_row(qt, x, 512, qt->group_default, NULL, &changed, &units);
        for (int i = 0; i < 512; i++) x[i] = 3e-8f * (float)(i % 9 - 4);
        compare_row(qt, x, 512, qt->group_default, NULL, &changed, &units);
        for (int i = 0; i < 512; i++) x[i] = i == 77 ? 1000.0f : 1e-3f * (float)(i % 5);
        compare_row(qt, x, 512, qt->group_default, NULL, &changed, &units);
    }
}

Test(search, zero_importance_keeps_plain_choice)
{
    /* All weights 0: every error is 0, nothing is strictly better, so the bytes are the plain choice. */
    float x[300], w[300];
    uint64_t seed = 7;
    fill_row(x, 300, &seed, 0);
    for (int i = 0; i < 300; i++) w[i] = 0.0f;
    for (size_t t = 0; t < N_INT_TYPES; t++) {
        const qtype_desc *qt = qtype_get(int_types[t]);
        mx_qparams pr = {NULL, false, -1.0f, NULL}, ps = {w, true, -1.0f, NULL};
        qrun a, b;
        qrun_do(qt, x, 300, qt->group_default, &pr, &a);
        qrun_do(qt, x, 300, qt->group_default, &ps, &b);
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
            if (a.sec[k])
                cr_assert(!memcmp(a.sec[k], b.sec[k], a.l.row_bytes[k]), "%s section %d", qt->name, k);
        qrun_free(&a);
        qrun_free(&b);
    }
}

Test(search, importance_changes_the_choice)
{
    /*
     * Groups where a few columns carry almost all the weight: the weighted
     * search must fit those columns better than the unweighted search does
     * (lower weighted error), and its choice must differ in most groups.
     */
    enum { N = 4096 };
    float *x = malloc(N * sizeof *x), *w = malloc(N * sizeof *w);
    uint64_t seed = 0x1A9;
    for (size_t t = 0; t < N_INT_TYPES; t++) {
        const qtype_desc *qt = qtype_get(int_types[t]);
        double e_plain = 0, e_weighted = 0;
        int differ = 0, better = 0, units = 0;
        fill_row(x, N, &seed, 0);
        for (size_t i = 0; i < N; i++) w[i] = (rng_next(&seed) % 8 == 0) ? 1000.0f : 0.01f;
        mx_qparams pu = {NULL, true, -1.0f, NULL}, pw = {w, true, -1.0f, NULL};
        qrun a, b;
        qrun_do(qt, x, N, qt->group_default, &pu, &a);
        qrun_do(qt, x, N, qt->group_default, &pw, &b);
        size_t unit = qt->super_block ? qt->super_block : a.l.group;
        for (size_t s0 = 0; s0 < N; s0 += unit) {
            double ea = werr(x, a.y, w, s0, s0 + unit), eb = werr(x, b.y, w, s0, s0 + unit);
            e_plain += ea;
            e_weighted += eb;
            differ += memcmp(a.y + s0, b.y + s0, unit * sizeof(float)) != 0;
            better += eb < ea;
            units++;
        }
        cr_log_info("%s: weighted error %.4g with importance, %.4g without; %d of %d units differ, %d better",
                    qt->name, e_weighted, e_plain, differ, units, better);
        cr_assert_lt(e_weighted, 0.9 * e_plain, "%s: importance did not lower the weighted error", qt->name);
        cr_assert_gt(differ, units / 2, "%s: importance changed only %d of %d units", qt->name, differ, units);
        cr_assert_gt(better, units / 2, "%s", qt->name);
        qrun_free(&a);
        qrun_free(&b);
    }
    /* One heavy column in an int4 group: reconstructed (nearly) exactly with its weight. */
    float g[64], wg[64];
    for (int i = 0; i < 64; i++) {
        g[i] = (float)rng_gauss(&seed);
        wg[i] = 1.0f;
    }
    g[5] = 0.123456f;
    wg[5] = 1e6f;
    mx_qparams pu = {NULL, true, -1.0f, NULL}, pw = {wg, true, -1.0f, NULL};
    qrun a, b;
    qrun_do(qtype_get(MIXQ_QT_INT4), g, 64, 64, &pu, &a);
    qrun_do(qtype_get(MIXQ_QT_INT4), g, 64, 64, &pw, &b);
    cr_assert_lt(fabs((double)b.y[5] - g[5]), fabs((double)a.y[5] - g[5]), "heavy column not fit better");
    qrun_free(&a);
    qrun_free(&b);
    free(x);
    free(w);
}

Test(search, deterministic)
{
    float x[1000], w[1000];
    uint64_t seed = 3;
    fill_row(x, 1000, &seed, 0);
    fill_weights(w, 1000, &seed, 1);
    for (size_t t = 0; t < N_INT_TYPES; t++) {
        const qtype_desc *qt = qtype_get(int_types[t]);
        mx_qparams p = {w, true, -1.0f, NULL};
        qrun a, b;
        qrun_do(qt, x, 1000, qt->group_default, &p, &a);
        qrun_do(qt, x, 1000, qt->group_default, &p, &b);
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
            if (a.sec[k]) cr_assert(!memcmp(a.sec[k], b.sec[k], a.l.row_bytes[k]));
        qrun_free(&a);
        qrun_free(&b);
    }
}

/* ---- the passes follow the documented lane order exactly ---- */

static float lanes(const double *unused, const float acc[8])
{
    (void)unused;
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

Test(search, passes_use_the_documented_lane_order)
{
    float x[203], w[203];
    uint64_t seed = 0xACC;
    for (int i = 0; i < 203; i++) {
        x[i] = (float)(rng_gauss(&seed) * (i % 17 == 0 ? 100.0 : 1.0));
        w[i] = (float)rng_unit(&seed);
    }
    const mx_search_ops *ops = &mx_search_ops_scalar;
    for (int wi = 0; wi < 2; wi++) {
        const float *ww = wi ? w : NULL;
        float a[8] = {0}, b[8] = {0}, c[8] = {0};
        float id = 3.7f, m = -1.25f, s = 0.4f, d = -0.3f;
        /* sym_pass */
        for (int i = 0; i < 203; i++) {
            float wv = ww ? ww[i] : 1.0f, t = x[i] * id;
            t = t < -8.0f ? -8.0f : t > 7.0f ? 7.0f : t;
            float q = (float)mx_round_half_even(t);
            volatile float wx = wv * x[i], wq = wv * q, p1 = wx * q, p2 = wq * q;
            a[i % 8] += p1;
            b[i % 8] += p2;
        }
        float sxq, sqq;
        ops->sym_pass(x, ww, 203, -8, 7, id, &sxq, &sqq);
        cr_assert_eq(mx_f32_bits(sxq), mx_f32_bits(lanes(NULL, a)));
        cr_assert_eq(mx_f32_bits(sqq), mx_f32_bits(lanes(NULL, b)));
        /* sym_pass_multi: candidate k's sums are sym_pass's for id[k] */
        {
            const float idk[4] = {-2.5f, id, 0.75f, 11.0f};
            float xq4[4], qq4[4];
            cr_assert(ops->sym_pass_multi != NULL);
            ops->sym_pass_multi(x, ww, 203, -8, 7, 4, idk, xq4, qq4);
            for (int k = 0; k < 4; k++) {
                float e1, e2;
                ops->sym_pass(x, ww, 203, -8, 7, idk[k], &e1, &e2);
                cr_assert_eq(mx_f32_bits(xq4[k]), mx_f32_bits(e1), "candidate %d", k);
                cr_assert_eq(mx_f32_bits(qq4[k]), mx_f32_bits(e2), "candidate %d", k);
            }
            cr_assert_eq(mx_f32_bits(xq4[1]), mx_f32_bits(lanes(NULL, a)));
            cr_assert_eq(mx_f32_bits(qq4[1]), mx_f32_bits(lanes(NULL, b)));
        }
        /* sym_err */
        memset(a, 0, sizeof a);
        for (int i = 0; i < 203; i++) {
            float wv = ww ? ww[i] : 1.0f, t = x[i] / d;
            t = t < -8.0f ? -8.0f : t > 7.0f ? 7.0f : t;
            volatile float q = (float)mx_round_half_even(t), r = q * d, e = x[i] - r, e2 = e * e, we = wv * e2;
            a[i % 8] += we;
        }
        cr_assert_eq(mx_f32_bits(ops->sym_err(x, ww, 203, -8, 7, d)), mx_f32_bits(lanes(NULL, a)));
        /* asym_pass */
        memset(a, 0, sizeof a);
        memset(b, 0, sizeof b);
        for (int i = 0; i < 203; i++) {
            float wv = ww ? ww[i] : 1.0f;
            volatile float dx = x[i] - m, t = dx * id;
            float tc = t < 0.0f ? 0.0f : t > 15.0f ? 15.0f : t;
            volatile float q = (float)mx_round_half_even(tc), wq = wv * q, p1 = wq * q, p2 = wq * x[i];
            a[i % 8] += wq;
            b[i % 8] += p1;
            c[i % 8] += p2;
        }
        float sq, sqq2, sxq2;
        ops->asym_pass(x, ww, 203, 15, m, id, &sq, &sqq2, &sxq2);
        cr_assert_eq(mx_f32_bits(sq), mx_f32_bits(lanes(NULL, a)));
        cr_assert_eq(mx_f32_bits(sqq2), mx_f32_bits(lanes(NULL, b)));
        cr_assert_eq(mx_f32_bits(sxq2), mx_f32_bits(lanes(NULL, c)));
        /* asym_pass_multi: candidate k's sums are asym_pass's for (m[k], id[k]) */
        {
            const float mk[3] = {-1.25f, m, 0.5f}, idk[3] = {2.0f, id, 5.5f};
            float q3[3], qq3[3], xq3[3];
            cr_assert(ops->asym_pass_multi != NULL);
            ops->asym_pass_multi(x, ww, 203, 15, 3, mk, idk, q3, qq3, xq3);
            for (int k = 0; k < 3; k++) {
                float e1, e2, e3;
                ops->asym_pass(x, ww, 203, 15, mk[k], idk[k], &e1, &e2, &e3);
                cr_assert_eq(mx_f32_bits(q3[k]), mx_f32_bits(e1), "candidate %d", k);
                cr_assert_eq(mx_f32_bits(qq3[k]), mx_f32_bits(e2), "candidate %d", k);
                cr_assert_eq(mx_f32_bits(xq3[k]), mx_f32_bits(e3), "candidate %d", k);
            }
            cr_assert_eq(mx_f32_bits(q3[1]), mx_f32_bits(sq));
            cr_assert_eq(mx_f32_bits(qq3[1]), mx_f32_bits(sqq2));
            cr_assert_eq(mx_f32_bits(xq3[1]), mx_f32_bits(sxq2));
        }
        /* asym_err */
        memset(a, 0, sizeof a);
        for (int i = 0; i < 203; i++) {
            float wv = ww ? ww[i] : 1.0f;
            volatile float dx = x[i] - m, t = dx / s;
            float tc = t < 0.0f ? 0.0f : t > 15.0f ? 15.0f : t;
            volatile float q = (float)mx_round_half_even(tc), p = q * s, r = p + m, e = x[i] - r, e2 = e * e,
                           we = wv * e2;
            a[i % 8] += we;
        }
        cr_assert_eq(mx_f32_bits(ops->asym_err(x, ww, 203, 15, s, m)), mx_f32_bits(lanes(NULL, a)));
        /* stats */
        mx_gstats st;
        ops->stats(x, ww, 203, &st);
        memset(a, 0, sizeof a);
        memset(b, 0, sizeof b);
        float lo = x[0], hi = x[0], amax = 0;
        for (int i = 0; i < 203; i++) {
            float wv = ww ? ww[i] : 1.0f;
            volatile float wx = wv * x[i];
            a[i % 8] += wv;
            b[i % 8] += wx;
            lo = fminf(lo, x[i]);
            hi = fmaxf(hi, x[i]);
            amax = fmaxf(amax, fabsf(x[i]));
        }
        cr_assert_eq(mx_f32_bits(st.sw), mx_f32_bits(lanes(NULL, a)));
        cr_assert_eq(mx_f32_bits(st.sx), mx_f32_bits(lanes(NULL, b)));
        cr_assert(st.lo == lo && st.hi == hi && st.amax == amax);
    }
    /* NULL weights and all-ones weights give the same bits */
    float ones[203];
    for (int i = 0; i < 203; i++) ones[i] = 1.0f;
    cr_assert_eq(mx_f32_bits(ops->sym_err(x, NULL, 203, -8, 7, 0.3f)), mx_f32_bits(ops->sym_err(x, ones, 203, -8, 7, 0.3f)));
}

/* ---- the asymmetric driver chooses as the plain one-candidate-at-a-time search ---- */

/*
 * mx_search_asym as first written: every candidate tried by its own
 * asym_pass, solved and compared at once.  The driver evaluates the initial
 * candidates in one multi-candidate pass and solves them before comparing;
 * its results must be the same bits.
 */
static const float ref_cuts[][2] = {{0.0f, 0.0f}, {0.25f, 0.5f}, {0.5f, 0.25f}, {0.0f, 0.5f}, {0.5f, 0.0f}, {0.5f, 0.5f}};

typedef struct ref_best {
    float s, m;
    double rel;
} ref_best;

static bool ref_finite(float v) { return v - v == 0.0f; }

static void ref_try(const mx_search_ops *ops, const float *x, const float *w, size_t n, int L, mx_pround rnd,
                    const mx_gstats *st, float m0, float id, ref_best *best)
{
    float sq, sqq, sxq, s, m;
    double D, sw = st->sw, sx = st->sx, rel;
    if (!ref_finite(id) || !(id > 0.0f) || !ref_finite(m0))
        return;
    ops->asym_pass(x, w, n, L, m0, id, &sq, &sqq, &sxq);
    D = sw * (double)sqq - (double)sq * (double)sq;
    if (!(D > 0.0))
        return;
    s = mx_round_param((sw * (double)sxq - (double)sq * sx) / D, rnd);
    m = mx_round_param(((double)sqq * sx - (double)sq * (double)sxq) / D, rnd);
    if (!ref_finite(s) || !(s > 0.0f) || !ref_finite(m))
        return;
    rel = mx_ls_asym_rel_err(s, m, sw, sx, sq, sqq, sxq);
    if (rel < best->rel) {
        best->rel = rel;
        best->s = s;
        best->m = m;
    }
}

static void ref_search_asym(const mx_search_ops *ops, const float *x, const float *w, size_t n, int L,
                            mx_pround rnd, const mx_gstats *st, float s_rtn, float m_rtn, float *s, float *m)
{
    ref_best best = {0.0f, 0.0f, INFINITY};
    float e0, e1, R = st->hi - st->lo, step = R / (float)L;
    *s = s_rtn;
    *m = m_rtn;
    if (n == 0 || !(R > 0.0f) || !ref_finite(R))
        return;
    e0 = rnd == MX_ROUND_F32 ? 1.0f : ops->asym_err(x, w, n, L, s_rtn, m_rtn);
    if (!(e0 > 0.0f))
        return;
    for (size_t k = 0; k < sizeof ref_cuts / sizeof ref_cuts[0]; k++) {
        float a = st->lo + ref_cuts[k][0] * step;
        float b = st->hi - ref_cuts[k][1] * step;
        ref_try(ops, x, w, n, L, rnd, st, a, (float)L / (b - a), &best);
    }
    for (int it = 0; it < (rnd == MX_ROUND_F32 ? 1 : 2) && best.s != 0.0f; it++) {
        float bs = best.s, bm = best.m;
        ref_try(ops, x, w, n, L, rnd, st, bm, 1.0f / bs, &best);
        if (best.s == bs && best.m == bm)
            break;
    }
    if (best.s == 0.0f || (best.s == s_rtn && best.m == m_rtn))
        return;
    if (rnd == MX_ROUND_F32) {
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

/* Groups of every shape the drivers meet: gaussian, few levels (ties, exact fits), outliers, constant. */
static void fill_group(float *x, size_t n, uint64_t *seed, int kind)
{
    for (size_t i = 0; i < n; i++) {
        double v = rng_gauss(seed);
        if (kind == 1)
            v = (double)(rng_next(seed) % 4) * 0.25; /* 4 levels: exact fits, D = 0, ties */
        else if (kind == 2)
            v = (double)(rng_next(seed) % 16) * 0.125 - 1.0; /* 16 levels */
        else if (kind == 3 && rng_next(seed) % 10 == 0)
            v *= 100.0;
        else if (kind == 4)
            v = i == 0 ? 1.0 : 0.0; /* one spike */
        else if (kind == 5)
            v = 0.75; /* constant */
        else if (kind == 6)
            v *= 1e-4;
        x[i] = (float)v;
    }
}

Test(search, asym_driver_matches_one_candidate_at_a_time)
{
    enum { NMAX = 300 };
    static const int Ls[] = {15, 3, 7, 63};
    float x[NMAX], w[NMAX];
    mx_search_ops nomulti = mx_search_ops_scalar;
    const mx_search_ops *opsets[2] = {&mx_search_ops_scalar, &nomulti};
    uint64_t seed = 0xA5A5;
    int changed = 0;
    nomulti.asym_pass_multi = NULL; /* the driver's fallback: one asym_pass per candidate */
    for (int c = 0; c < 20000; c++) {
        size_t n = 1 + rng_next(&seed) % (c % 3 == 0 ? 40 : NMAX);
        int kind = (int)(rng_next(&seed) % 7), L = Ls[rng_next(&seed) % 4];
        const float *wp = NULL;
        mx_pround rnd = rng_next(&seed) % 2 ? MX_ROUND_F16 : MX_ROUND_F32;
        fill_group(x, n, &seed, kind);
        if (rng_next(&seed) % 2) {
            fill_weights(w, n, &seed, (int)(rng_next(&seed) % 2) + 1);
            wp = w;
        }
        mx_gstats st;
        mx_search_ops_scalar.stats(x, wp, n, &st);
        float m0 = mx_f16_to_f32(mx_f16_round_down(st.lo));
        float s0 = mx_f16_to_f32(mx_f32_to_f16((st.hi - st.lo) / (float)L * 1.0625f));
        if (rnd == MX_ROUND_F32) {
            m0 = st.lo;
            s0 = (st.hi - st.lo) / (float)L;
        }
        float rs, rm;
        ref_search_asym(&mx_search_ops_scalar, x, wp, n, L, rnd, &st, s0, m0, &rs, &rm);
        changed += rs != s0 || rm != m0;
        for (int o = 0; o < 2; o++) {
            float gs, gm;
            mx_search_asym(opsets[o], x, wp, n, L, rnd, &st, s0, m0, &gs, &gm);
            cr_assert(mx_f32_bits(gs) == mx_f32_bits(rs) && mx_f32_bits(gm) == mx_f32_bits(rm),
                      "case %d (%s) n=%zu kind=%d L=%d w=%s rnd=%s: s %a m %a, one at a time s %a m %a", c,
                      o ? "no multi pass" : "multi pass", n, kind, L, wp ? "yes" : "NULL",
                      rnd == MX_ROUND_F16 ? "f16" : "f32", (double)gs, (double)gm, (double)rs, (double)rm);
        }
    }
    cr_assert(changed > 1000, "the search changed only %d of 20000 groups: the test does not exercise it", changed);
}

/* ---- the symmetric driver chooses as the plain one-candidate-at-a-time search ---- */

/*
 * mx_search_sym as first written: every candidate tried by its own sym_pass,
 * solved and compared at once.  The driver evaluates the starting candidates
 * in one multi-candidate pass and solves them before comparing; its results
 * must be the same bits.
 */
static const float ref_sym_long[] = {0.0f, -0.75f, 0.5f, -0.25f};
static const float ref_sym_short[] = {-0.5f, 0.0f};

static void ref_sym_try(const mx_search_ops *ops, const float *x, const float *w, size_t n, int qlo, int qhi,
                        mx_pround rnd, bool positive, float id, float *best_d, double *best_rel)
{
    float sxq, sqq, d;
    double rel;
    if (!ref_finite(id) || id == 0.0f)
        return;
    ops->sym_pass(x, w, n, qlo, qhi, id, &sxq, &sqq);
    if (!(sqq > 0.0f))
        return;
    d = mx_round_param((double)sxq / (double)sqq, rnd);
    if (!ref_finite(d) || d == 0.0f || (positive && d < 0.0f))
        return;
    rel = mx_ls_sym_rel_err(d, sxq, sqq);
    if (rel < *best_rel) {
        *best_rel = rel;
        *best_d = d;
    }
}

static float ref_search_sym(const mx_search_ops *ops, const float *x, const float *w, size_t n, int qlo, int qhi,
                            mx_pround rnd, bool positive, float d_rtn, float xm)
{
    float bd = 0.0f, e0, e1;
    double brel = INFINITY;
    if (n == 0 || xm == 0.0f || !ref_finite(xm))
        return d_rtn;
    e0 = rnd == MX_ROUND_F32 ? 1.0f : ops->sym_err(x, w, n, qlo, qhi, d_rtn);
    if (!(e0 > 0.0f))
        return d_rtn;
    float t0 = qlo < -qhi ? (float)qlo : (float)qhi;
    for (size_t k = 0; k < sizeof ref_sym_long / sizeof ref_sym_long[0]; k++) {
        float t = t0 < 0.0f ? t0 - ref_sym_long[k] : t0 + ref_sym_long[k];
        ref_sym_try(ops, x, w, n, qlo, qhi, rnd, positive, t / xm, &bd, &brel);
    }
    if (qlo < -qhi)
        for (size_t k = 0; k < sizeof ref_sym_short / sizeof ref_sym_short[0]; k++)
            ref_sym_try(ops, x, w, n, qlo, qhi, rnd, positive, ((float)qhi + ref_sym_short[k]) / xm, &bd, &brel);
    for (int it = 0; it < (rnd == MX_ROUND_F32 ? 1 : 2) && bd != 0.0f; it++) {
        float before = bd;
        ref_sym_try(ops, x, w, n, qlo, qhi, rnd, positive, 1.0f / bd, &bd, &brel);
        if (bd == before)
            break;
    }
    if (bd == 0.0f || bd == d_rtn)
        return d_rtn;
    if (rnd == MX_ROUND_F32)
        return bd;
    e1 = ops->sym_err(x, w, n, qlo, qhi, bd);
    return e1 < e0 * (1.0f - MX_SEARCH_MARGIN) ? bd : d_rtn;
}

Test(search, sym_driver_matches_one_candidate_at_a_time)
{
    enum { NMAX = 300 };
    static const int ranges[][2] = {{-8, 7}, {-128, 127}, {-4, 3}, {-32, 31}, {-7, 7}, {-127, 127}};
    float x[NMAX], w[NMAX];
    mx_search_ops nomulti = mx_search_ops_scalar;
    const mx_search_ops *opsets[2] = {&mx_search_ops_scalar, &nomulti};
    uint64_t seed = 0x5A5A;
    int changed = 0;
    nomulti.sym_pass_multi = NULL; /* the driver's fallback: one sym_pass per candidate */
    for (int c = 0; c < 20000; c++) {
        size_t n = 1 + rng_next(&seed) % (c % 3 == 0 ? 40 : NMAX);
        int kind = (int)(rng_next(&seed) % 10), r = (int)(rng_next(&seed) % 6);
        int qlo = ranges[r][0], qhi = ranges[r][1];
        bool positive = rng_next(&seed) % 2;
        const float *wp = NULL;
        mx_pround rnd = rng_next(&seed) % 2 ? MX_ROUND_F16 : MX_ROUND_F32;
        fill_group(x, n, &seed, kind < 7 ? kind : 0);
        for (size_t i = 0; kind >= 7 && i < n; i++) /* scales rounding to f16 0, huge, or xm subnormal (id = Inf) */
            x[i] *= kind == 7 ? 1e-7f : kind == 8 ? 1e4f : 1e-39f;
        if (rng_next(&seed) % 2) {
            fill_weights(w, n, &seed, (int)(rng_next(&seed) % 2) + 1);
            wp = w;
        }
        mx_gstats st;
        mx_search_ops_scalar.stats(x, wp, n, &st);
        float xm = st.hi == st.amax ? st.amax : -st.amax;
        float t0 = qlo < -qhi ? (float)qlo : (float)qhi;
        float d0 = positive ? st.amax / (float)qhi : xm / t0;
        if (rnd == MX_ROUND_F16)
            d0 = mx_f16_to_f32(mx_f32_to_f16(d0 * (rng_next(&seed) % 4 ? 1.0f : 1.0625f)));
        float rd = ref_search_sym(&mx_search_ops_scalar, x, wp, n, qlo, qhi, rnd, positive, d0, xm);
        changed += rd != d0;
        for (int o = 0; o < 2; o++) {
            float gd = mx_search_sym(opsets[o], x, wp, n, qlo, qhi, rnd, positive, d0, xm);
            cr_assert(mx_f32_bits(gd) == mx_f32_bits(rd),
                      "case %d (%s) n=%zu kind=%d q=[%d,%d] positive=%d w=%s rnd=%s: d %a, one at a time d %a",
                      c, o ? "no multi pass" : "multi pass", n, kind, qlo, qhi, (int)positive, wp ? "yes" : "NULL",
                      rnd == MX_ROUND_F16 ? "f16" : "f32", (double)gd, (double)rd);
        }
    }
    cr_assert(changed > 1000, "the search changed only %d of 20000 groups: the test does not exercise it", changed);
}

Test(search, round_param)
{
    cr_assert_eq(mx_round_param(1.0 / 3.0, MX_ROUND_F16), mx_f16_to_f32(mx_f32_to_f16(1.0f / 3.0f)));
    cr_assert_eq(mx_f32_bits(mx_round_param(-1e-9, MX_ROUND_F16)), 0u, "a zero result is +0");
    cr_assert(isinf(mx_round_param(70000.0, MX_ROUND_F16)));
    cr_assert_eq(mx_round_param(1.0 / 3.0, MX_ROUND_F32), (float)(1.0 / 3.0));
}

/* One binary32 pattern: mx_round_param's f16 rounding against the conversion round trip. */
static void round_param_check(uint32_t u, uint64_t *bad)
{
    float f = mx_bits_f32(u);
    if (f != f) return; /* NaN parameters never reach the rounding */
    uint16_t h = mx_f32_to_f16(f);
    if (h == 0x8000u) h = 0;
    uint32_t want = mx_f32_bits(mx_f16_to_f32(h)), got = mx_f32_bits(mx_round_param((double)f, MX_ROUND_F16));
    if (want != got && (*bad)++ < 5) cr_log_error("0x%08x: got 0x%08x, want 0x%08x", (unsigned)u, got, want);
}

/*
 * The fast in-place rounding of mx_round_param equals the f16 conversion
 * round trip: every pattern of both signs in the binades at the ends of its
 * fast path (2^-15 ... 2^-13, 2^15 ... 2^17), and every 61st pattern elsewhere.
 */
Test(search, round_param_f16_matches_conversion, .timeout = 300)
{
    uint64_t bad = 0;
    for (uint64_t u = 0; u <= 0xFFFFFFFFu; u += 61) round_param_check((uint32_t)u, &bad);
    for (uint32_t a = 0x38000000u; a < 0x39000000u; a++) {
        round_param_check(a, &bad);
        round_param_check(a | 0x80000000u, &bad);
    }
    for (uint32_t a = 0x47000000u; a < 0x48000000u; a++) {
        round_param_check(a, &bad);
        round_param_check(a | 0x80000000u, &bad);
    }
    cr_assert_eq(bad, 0, "%llu binary32 values round differently", (unsigned long long)bad);
}

/* ---- quality goals on real checkpoints ---- */

typedef struct qsum {
    double se, n;
} qsum;

/* Pooled squared error of every floating 2-D tensor of a model quantized as qt/g. */
static qsum model_error(const st_model *m, const qtype_desc *qt, unsigned g, bool search)
{
    qsum r = {0, 0};
    for (size_t ti = 0; ti < m->ntensors; ti++) {
        const st_tensor *t = &m->tensors[ti];
        if (t->ndim != 2 || !st_dtypes[t->dtype].is_float || t->n_elements == 0) continue;
        size_t rows = (size_t)t->shape[0], K = (size_t)t->shape[1];
        float *x = malloc(t->n_elements * sizeof *x);
        st_to_f32(t->dtype, t->data, t->n_elements, x);
        mx_qparams p = {NULL, search, -1.0f, NULL};
        for (size_t rr = 0; rr < rows; rr++) {
            qrun q;
            qrun_do(qt, x + rr * K, K, g, &p, &q);
            r.se += werr(x + rr * K, q.y, NULL, 0, K);
            qrun_free(&q);
        }
        r.n += (double)t->n_elements;
        free(x);
    }
    return r;
}

Test(search, quality_goals_on_real_models, .timeout = 600)
{
    char *models = ts_models_dir();
    if (!models) cr_skip_test("../shared/models is absent");
    DIR *d = opendir(models);
    cr_assert(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *dir = ts_path(models, e->d_name), *path = ts_path(dir, "model.safetensors");
        struct stat sb;
        if (stat(path, &sb) != 0) {
            free(dir);
            free(path);
            continue;
        }
        st_model *m = NULL;
        mixq_error err;
        cr_assert_eq(st_open(path, &m, &err), MIXQ_OK, "%s", err.message);
        static const struct { mixq_qtype t; unsigned g; double min_gain; } goals[] = {
            {MIXQ_QT_INT4, 64, 0.08},
            {MIXQ_QT_INT2, 32, 0.20},
            {MIXQ_QT_NL4, 32, 0.05},
            {MIXQ_QT_NL4_DQ, 32, 0.05},
        };
        for (size_t k = 0; k < sizeof goals / sizeof goals[0]; k++) {
            const qtype_desc *qt = qtype_get(goals[k].t);
            qsum a = model_error(m, qt, goals[k].g, false), b = model_error(m, qt, goals[k].g, true);
            double ra = sqrt(a.se / a.n), rb = sqrt(b.se / b.n), gain = 1.0 - rb / ra;
            cr_log_info("%s %s g%u: RMSE %.6g plain, %.6g search (%.2f %% lower)", e->d_name, qt->name, goals[k].g, ra,
                        rb, 100 * gain);
            cr_assert_geq(gain, goals[k].min_gain, "%s %s: search only %.2f %% below plain", e->d_name, qt->name,
                          100 * gain);
        }
        st_close(m);
        free(dir);
        free(path);
        n++;
    }
    closedir(d);
    free(models);
    cr_assert_gt(n, 0);
}
