/*
 * test_types.c - the kernels of int4s, int2 and the double-quantized types
 * (FORMAT.md §4.3-§4.8) with the plain choice (no search): the parameter
 * rules, codes against an independent computation, the stated error bounds,
 * exact bytes of hand-computed examples (pinning the bit order of every
 * packing), partial groups and super-blocks, special groups (all zero,
 * constant, tiny, +-65504) and NaN-free output.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernels.h"
#include "kernels/qtype.h"
#include "test_rng.h"
#include "test_support.h"

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static float f16(uint16_t h) { return mx_f16_to_f32(h); }

/* One row's sections, each allocated to its exact size (ASan catches overruns). */
typedef struct row {
    const qtype_desc *qt;
    size_t n;
    unsigned g;
    qlayout l;
    uint8_t *sec[MIXQ_SECTION_COUNT];
    float *out;
} row;

static row row_new(mixq_qtype t, size_t n, unsigned g)
{
    row r;
    memset(&r, 0, sizeof r);
    r.qt = qtype_get(t);
    cr_assert_not_null(r.qt);
    r.n = n;
    r.g = g;
    cr_assert(qtype_layout(r.qt, ST_F32, 1, n, g, &r.l));
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!qtype_has_section(r.qt, (mixq_section_kind)k))
            continue;
        r.sec[k] = malloc(r.l.row_bytes[k] ? r.l.row_bytes[k] : 1);
        cr_assert(r.sec[k]);
        memset(r.sec[k], 0xEE, r.l.row_bytes[k]); /* garbage the kernel must overwrite */
    }
    r.out = malloc((n ? n : 1) * sizeof(float));
    return r;
}

static void row_free(row *r)
{
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        free(r->sec[k]);
    free(r->out);
}

static void row_run(row *r, const float *x, const mx_qparams *p)
{
    mx_rowptrs o;
    mx_crowptrs i;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        o.sec[k] = r->sec[k];
        i.sec[k] = r->sec[k];
    }
    r->qt->quantize_row(x, r->n, r->l.group, p, o);
    r->qt->dequantize_row(i, r->n, r->l.group, r->out);
    for (size_t k = 0; k < r->n; k++)
        CHECK(isfinite(r->out[k]), "%s n=%zu: output %zu not finite", r->qt->name, r->n, k);
}

/* Code (unsigned stored value) of element k / group j of a field with the type's planes. */
static unsigned code_at(const row *r, size_t k)
{
    size_t off[QT_MAX_PLANES];
    mx_planes_offsets(r->qt->code_planes, r->n, off);
    return mx_planes_get(r->sec[MIXQ_SEC_CODES], r->qt->code_planes, off, k);
}
static unsigned pcode_at(const row *r, mixq_section_kind kind, size_t j)
{
    size_t off[QT_MAX_PLANES];
    mx_planes_offsets(r->qt->scale_planes, r->l.groups_per_row, off);
    return mx_planes_get(r->sec[kind], r->qt->scale_planes, off, j);
}

static void check_padding_bits(const row *r)
{
    /* the unused high bits of every plane's last byte are zero */
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *planes = pass == 0 ? r->qt->code_planes : r->qt->scale_planes;
        size_t count = pass == 0 ? r->n : r->l.groups_per_row;
        if (pass == 1 && r->qt->scale_kind != QS_CODE)
            continue;
        mixq_section_kind kinds[2] = {pass == 0 ? MIXQ_SEC_CODES : MIXQ_SEC_SCALES, MIXQ_SEC_MINS};
        for (int kk = 0; kk < (pass == 1 && !r->qt->symmetric ? 2 : 1); kk++) {
            size_t off[QT_MAX_PLANES];
            mx_planes_offsets(planes, count, off);
            for (int p = 0; p < QT_MAX_PLANES && planes[p]; p++) {
                size_t bits = count * planes[p];
                if (bits % 8 == 0)
                    continue;
                uint8_t last = r->sec[kinds[kk]][off[p] + bits / 8];
                CHECK((last >> (bits % 8)) == 0, "%s n=%zu: plane %d padding bits set (%02x)", r->qt->name, r->n, p,
                      last);
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* int4s                                                                   */
/* ---------------------------------------------------------------------- */

static void check_int4s_row(const float *x, size_t n, unsigned g, const char *what)
{
    row r = row_new(MIXQ_QT_INT4S, n, g);
    row_run(&r, x, NULL);
    check_padding_bits(&r);
    for (size_t j = 0; j < r.l.groups_per_row; j++) {
        size_t s0 = j * g, len = n - s0 < g ? n - s0 : g;
        uint16_t h = ld16(r.sec[MIXQ_SEC_SCALES] + 2 * j);
        double d = f16(h), amax = 0, hi = x[s0];
        for (size_t i = 0; i < len; i++) {
            amax = fmax(amax, fabs((double)x[s0 + i]));
            hi = fmax(hi, (double)x[s0 + i]);
        }
        double xm = hi == amax ? amax : -amax;
        if (amax == 0) {
            CHECK(h == 0, "%s: zero group scale %04x", what, h);
        } else {
            uint16_t mag = h & 0x7FFFu;
            CHECK(8 * f16(mag) >= amax && 8 * f16((uint16_t)(mag - 1)) < amax, "%s: |d| %04x not smallest", what, h);
            CHECK((xm > 0) == ((h & 0x8000u) != 0), "%s: sign of d %04x, xm %g", what, h, xm);
        }
        for (size_t i = 0; i < len; i++) {
            size_t k = s0 + i;
            int q = (int)code_at(&r, k) - 8;
            double want = d == 0 ? 0 : fmax(-8, fmin(7, nearbyint((double)(x[k] / (float)d))));
            CHECK(q == (int)want, "%s n=%zu k=%zu: code %d want %g", what, n, k, q, want);
            CHECK(r.out[k] == (float)q * (float)d, "%s: reconstruction at %zu", what, k);
            double e = fabs((double)x[k] - r.out[k]);
            CHECK(e <= fabs(d), "%s k=%zu: error %g > |d| %g", what, k, e, fabs(d));
            if ((double)x[k] * xm >= 0)
                CHECK(e <= fabs(d) / 2, "%s k=%zu: error %g > |d|/2 on xm's side", what, k, e);
        }
    }
    row_free(&r);
}

Test(int4s, hand_computed_bytes)
{
    /* amax 8 = max -> xm = +8, d = -1 (0xBC00); x/d = -x; -8 -> 8 clamps to 7; -0.5 ties to 0. */
    float x[8] = {1, -2, 3, -4, 0.5f, 7, -8, 8};
    row r = row_new(MIXQ_QT_INT4S, 8, 16);
    row_run(&r, x, NULL);
    static const uint8_t codes[4] = {0xA7, 0xC5, 0x18, 0x0F}, scales[2] = {0x00, 0xBC};
    cr_assert_arr_eq(r.sec[MIXQ_SEC_CODES], codes, 4);
    cr_assert_arr_eq(r.sec[MIXQ_SEC_SCALES], scales, 2);
    cr_assert_eq(r.out[6], -7.0f);
    cr_assert_eq(r.out[7], 8.0f);
    cr_assert_eq(r.out[4], 0.0f);
    row_free(&r);
    /* negative extreme: d > 0, -amax gets -8; odd length leaves the high nibble 0 */
    float y[3] = {-16, 4, 15};
    r = row_new(MIXQ_QT_INT4S, 3, 16);
    row_run(&r, y, NULL);
    static const uint8_t codes2[2] = {0xA0, 0x0F}, scales2[2] = {0x00, 0x40}; /* d = 2: -8, 2, 7.5 -> 8 -> 7 */
    cr_assert_arr_eq(r.sec[MIXQ_SEC_CODES], codes2, 2);
    cr_assert_arr_eq(r.sec[MIXQ_SEC_SCALES], scales2, 2);
    row_free(&r);
}

Test(int4s, gaussian_rows)
{
    static const unsigned groups[] = {16, 32, 64, 128, 256};
    static const size_t sizes[] = {1, 2, 7, 31, 32, 33, 100, 257, 300, 777};
    float *x = malloc(777 * sizeof *x);
    uint64_t seed = 11;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (size_t gi = 0; gi < 5; gi++)
            for (int k = 0; k < 4; k++) {
                rng_fill_gauss(x, sizes[si], &seed, k == 3 ? 2.0 : 0.0, k == 0 ? 1e-3 : k == 1 ? 1.0 : 300.0);
                check_int4s_row(x, sizes[si], groups[gi], "gauss");
            }
    free(x);
}

Test(int4s, special_groups)
{
    float x[300];
    for (int i = 0; i < 300; i++) x[i] = (i % 3) ? 0.0f : -0.0f;
    check_int4s_row(x, 300, 32, "zeros");
    row r = row_new(MIXQ_QT_INT4S, 300, 32);
    row_run(&r, x, NULL);
    for (int i = 0; i < 150; i++) cr_assert_eq(r.sec[MIXQ_SEC_CODES][i], 0x88, "zero codes are 8");
    row_free(&r);
    for (int i = 0; i < 300; i++) x[i] = -3.25f;
    check_int4s_row(x, 300, 64, "constant");
    for (int i = 0; i < 300; i++) x[i] = 1e-7f * (float)((i * 7) % 13 - 6);
    check_int4s_row(x, 300, 16, "tiny");
    for (int i = 0; i < 300; i++) x[i] = i % 2 ? 65504.0f : -65504.0f;
    check_int4s_row(x, 300, 16, "extremes");
}

/* ---------------------------------------------------------------------- */
/* int2                                                                    */
/* ---------------------------------------------------------------------- */

static void check_int2_row(const float *x, size_t n, unsigned g, const char *what)
{
    row r = row_new(MIXQ_QT_INT2, n, g);
    row_run(&r, x, NULL);
    check_padding_bits(&r);
    for (size_t j = 0; j < r.l.groups_per_row; j++) {
        size_t s0 = j * g, len = n - s0 < g ? n - s0 : g;
        uint16_t sh = ld16(r.sec[MIXQ_SEC_SCALES] + 2 * j), mh = ld16(r.sec[MIXQ_SEC_MINS] + 2 * j);
        float s = f16(sh), m = f16(mh), lo = x[s0], hi = x[s0];
        for (size_t i = 1; i < len; i++) {
            lo = fminf(lo, x[s0 + i]);
            hi = fmaxf(hi, x[s0 + i]);
        }
        CHECK(mh != 0x8000u && m <= lo, "%s: min %04x > %g", what, mh, (double)lo);
        CHECK(mh == 0x7BFF || mh == 0xFBFF || (mh & 0x8000u ? f16((uint16_t)(mh - 1)) : f16((uint16_t)(mh + 1))) > lo ||
                  (mh == 0 && f16(1) > lo),
              "%s: min %04x not the largest <= %g", what, mh, (double)lo);
        volatile float top = 3.0f * s, sum = m + top;
        CHECK(sum >= hi, "%s: scale %04x does not cover", what, sh);
        if (sh) {
            volatile float t2 = 3.0f * f16((uint16_t)(sh - 1)), s2 = m + t2;
            CHECK(s2 < hi, "%s: scale %04x not the smallest", what, sh);
        }
        double tol = (double)s / 2 + 0x1p-23 * (fabs((double)m) + 8 * (double)s);
        for (size_t i = 0; i < len; i++) {
            size_t k = s0 + i;
            unsigned q = code_at(&r, k), want = 0;
            if (s != 0) {
                volatile float dd = x[k] - m, t = dd / s;
                want = (unsigned)fmax(0, fmin(3, nearbyint((double)t)));
            }
            CHECK(q == want, "%s n=%zu k=%zu: code %u want %u", what, n, k, q, want);
            volatile float p = (float)q * s, xr = p + m;
            CHECK(r.out[k] == xr, "%s: reconstruction at %zu", what, k);
            CHECK(fabs((double)x[k] - r.out[k]) <= tol, "%s k=%zu: error %g > %g", what, k,
                  fabs((double)x[k] - r.out[k]), tol);
        }
    }
    row_free(&r);
}

Test(int2, hand_computed_bytes)
{
    /* lo 0 -> m = +0; smallest s with 3 s >= 3 is 1; 1.5 ties to 2. */
    float x[5] = {0, 1, 2, 3, 1.5f};
    row r = row_new(MIXQ_QT_INT2, 5, 16);
    row_run(&r, x, NULL);
    static const uint8_t codes[2] = {0xE4, 0x02}, scales[2] = {0x00, 0x3C}, mins[2] = {0x00, 0x00};
    cr_assert_arr_eq(r.sec[MIXQ_SEC_CODES], codes, 2);
    cr_assert_arr_eq(r.sec[MIXQ_SEC_SCALES], scales, 2);
    cr_assert_arr_eq(r.sec[MIXQ_SEC_MINS], mins, 2);
    cr_assert_eq(r.out[4], 2.0f);
    row_free(&r);
    /* two groups of 16: the second group's codes start at byte 4; min -1 (0xBC00), s = 0.5 */
    float y[20] = {0};
    y[16] = -1;
    y[17] = 0.5f;
    y[18] = -0.25f; /* 0.75 / 0.5 = 1.5 -> 2 */
    y[19] = 0.0f;
    r = row_new(MIXQ_QT_INT2, 20, 16);
    row_run(&r, y, NULL);
    cr_assert_eq(r.sec[MIXQ_SEC_CODES][4], 0 | 3 << 2 | 2 << 4 | 2 << 6);
    cr_assert_eq(ld16(r.sec[MIXQ_SEC_MINS] + 2), 0xBC00);
    cr_assert_eq(ld16(r.sec[MIXQ_SEC_SCALES] + 2), 0x3800);
    cr_assert_eq(ld16(r.sec[MIXQ_SEC_SCALES]), 0, "constant zero group: s = 0");
    row_free(&r);
}

Test(int2, gaussian_rows)
{
    static const unsigned groups[] = {16, 32, 64, 128};
    static const size_t sizes[] = {1, 3, 5, 7, 31, 33, 100, 257, 300, 513};
    float *x = malloc(513 * sizeof *x);
    uint64_t seed = 12;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (size_t gi = 0; gi < 4; gi++)
            for (int k = 0; k < 4; k++) {
                rng_fill_gauss(x, sizes[si], &seed, k == 3 ? -5.0 : 0.0, k == 0 ? 1e-3 : k == 1 ? 1.0 : 300.0);
                check_int2_row(x, sizes[si], groups[gi], "gauss");
            }
    free(x);
}

Test(int2, special_groups)
{
    float x[200];
    for (int i = 0; i < 200; i++) x[i] = 0.0f;
    check_int2_row(x, 200, 32, "zeros");
    for (int i = 0; i < 200; i++) x[i] = 0.1f; /* not an f16 value: s > 0 */
    check_int2_row(x, 200, 32, "constant");
    for (int i = 0; i < 200; i++) x[i] = i % 2 ? 65504.0f : -65504.0f;
    check_int2_row(x, 200, 16, "extremes");
    for (int i = 0; i < 200; i++) x[i] = 3e-8f * (float)(i % 5);
    check_int2_row(x, 200, 128, "tiny");
}

/* ---------------------------------------------------------------------- */
/* double-quantized types                                                  */
/* ---------------------------------------------------------------------- */

typedef struct dq_info {
    bool asym;
    int L, SC;      /* asym: codes 0..L, scale/min codes 0..SC */
    int Q, C;       /* sym: codes -Q..Q-1, scale codes -(C+1)..C (plain choice uses |c| <= C) */
    unsigned qbias, cbias;
} dq_info;

static dq_info dq_of(mixq_qtype t)
{
    switch (t) {
    case MIXQ_QT_INT4_DQ: return (dq_info){true, 15, 63, 0, 0, 0, 0};
    case MIXQ_QT_INT2_DQ: return (dq_info){true, 3, 15, 0, 0, 0, 0};
    case MIXQ_QT_INT3_DQ: return (dq_info){false, 0, 0, 4, 31, 4, 32};
    default: return (dq_info){false, 0, 0, 32, 127, 32, 128};
    }
}

/* The group's scale and min as the reader computes them. */
static void dq_params(const row *r, const dq_info *D, size_t j, float *s, float *m)
{
    size_t b = j * r->l.group / 256;
    float d = f16(ld16(r->sec[MIXQ_SEC_SUPER_SCALES] + 2 * b));
    int c = (int)pcode_at(r, MIXQ_SEC_SCALES, j) - (int)D->cbias;
    *s = d * (float)c;
    *m = 0.0f;
    if (D->asym)
        *m = f16(ld16(r->sec[MIXQ_SEC_SUPER_MINS] + 2 * b)) * (float)pcode_at(r, MIXQ_SEC_MINS, j);
}

static void check_dq_row(mixq_qtype t, const float *x, size_t n, unsigned g, const char *what)
{
    dq_info D = dq_of(t);
    row r = row_new(t, n, g);
    row_run(&r, x, NULL);
    check_padding_bits(&r);
    cr_assert_eq(r.l.supers_per_row, (n + 255) / 256);
    for (size_t b = 0; b < r.l.supers_per_row; b++) {
        uint16_t dh = ld16(r.sec[MIXQ_SEC_SUPER_SCALES] + 2 * b);
        CHECK((dh & 0x7C00u) != 0x7C00u, "%s: super scale %04x not finite", what, dh);
        if (D.asym) {
            CHECK(!(dh & 0x8000u), "%s: negative d %04x", what, dh);
            uint16_t mh = ld16(r.sec[MIXQ_SEC_SUPER_MINS] + 2 * b);
            CHECK((mh & 0x7C00u) != 0x7C00u, "%s: super min %04x not finite", what, mh);
        }
    }
    for (size_t j = 0; j < r.l.groups_per_row; j++) {
        size_t s0 = j * g, len = n - s0 < g ? n - s0 : g;
        float s, m, lo = x[s0], hi = x[s0], amax = 0;
        dq_params(&r, &D, j, &s, &m);
        for (size_t i = 0; i < len; i++) {
            lo = fminf(lo, x[s0 + i]);
            hi = fmaxf(hi, x[s0 + i]);
            amax = fmaxf(amax, fabsf(x[s0 + i]));
        }
        if (D.asym) {
            CHECK(m <= lo, "%s n=%zu j=%zu: min %g > lo %g", what, n, j, (double)m, (double)lo);
            volatile float top = (float)D.L * s, sum = m + top;
            CHECK(sum >= hi, "%s n=%zu j=%zu: range not covered (s %g m %g hi %g)", what, n, j, (double)s, (double)m,
                  (double)hi);
            double tol = (double)s / 2 + 0x1p-23 * (fabs((double)m) + 32 * (double)s);
            for (size_t i = 0; i < len; i++) {
                size_t k = s0 + i;
                unsigned q = code_at(&r, k), want = 0;
                if (s > 0) {
                    volatile float dd = x[k] - m, tt = dd / s;
                    want = (unsigned)fmax(0, fmin(D.L, nearbyint((double)tt)));
                }
                CHECK(q == want, "%s n=%zu k=%zu: code %u want %u", what, n, k, q, want);
                volatile float p = (float)q * s, xr = p + m;
                CHECK(r.out[k] == xr, "%s: reconstruction at %zu", what, k);
                CHECK(fabs((double)x[k] - r.out[k]) <= tol, "%s n=%zu k=%zu: error %g > %g", what, n, k,
                      fabs((double)x[k] - r.out[k]), tol);
            }
        } else {
            double xm = hi == amax ? amax : -amax;
            CHECK((double)D.Q * fabs((double)s) >= amax, "%s j=%zu: |s| %g too small for %g", what, j, (double)s,
                  (double)amax);
            if (amax > 0)
                CHECK((s < 0) == (xm > 0), "%s j=%zu: sign of s", what, j);
            for (size_t i = 0; i < len; i++) {
                size_t k = s0 + i;
                int q = (int)code_at(&r, k) - (int)D.qbias;
                double want = s == 0 ? 0 : fmax(-D.Q, fmin(D.Q - 1, nearbyint((double)(x[k] / s))));
                CHECK(q == (int)want, "%s n=%zu k=%zu: code %d want %g", what, n, k, q, want);
                volatile float xr = (float)q * s;
                CHECK(r.out[k] == xr, "%s: reconstruction at %zu", what, k);
                double e = fabs((double)x[k] - r.out[k]), tol = fabs((double)s) * (1 + 0x1p-20);
                CHECK(e <= tol, "%s k=%zu: error %g > |s| %g", what, k, e, fabs((double)s));
                if ((double)x[k] * xm >= 0)
                    CHECK(e <= tol / 2 + 0x1p-24 * fabs((double)r.out[k]), "%s k=%zu: error %g > |s|/2", what, k, e);
            }
        }
    }
    row_free(&r);
}

static const mixq_qtype dq_types[4] = {MIXQ_QT_INT4_DQ, MIXQ_QT_INT2_DQ, MIXQ_QT_INT3_DQ, MIXQ_QT_INT6_DQ};

Test(dq, gaussian_rows_partial_super_blocks)
{
    static const size_t sizes[] = {1, 7, 15, 16, 17, 100, 255, 256, 257, 300, 511, 513, 1000};
    float *x = malloc(1000 * sizeof *x);
    uint64_t seed = 13;
    for (int t = 0; t < 4; t++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (unsigned g = 16; g <= 64; g *= 2) {
                if (!qtype_group_ok(qtype_get(dq_types[t]), g))
                    continue;
                for (int k = 0; k < 5; k++) {
                    double mean = k == 3 ? 4.0 : k == 4 ? -1.0 : 0.0, sigma = k == 0 ? 1e-3 : k == 2 ? 300.0 : 1.0;
                    rng_fill_gauss(x, sizes[si], &seed, mean, sigma);
                    check_dq_row(dq_types[t], x, sizes[si], g, mixq_qtype_name(dq_types[t]));
                }
            }
    free(x);
}

Test(dq, special_groups)
{
    float x[600];
    for (int t = 0; t < 4; t++) {
        const char *nm = mixq_qtype_name(dq_types[t]);
        for (int i = 0; i < 600; i++) x[i] = 0.0f;
        check_dq_row(dq_types[t], x, 600, 16, nm);
        for (int i = 0; i < 600; i++) x[i] = -0.1f; /* constant, not an f16 value */
        check_dq_row(dq_types[t], x, 600, 16, nm);
        for (int i = 0; i < 600; i++) x[i] = 7.0f;
        check_dq_row(dq_types[t], x, 600, 16, nm);
        for (int i = 0; i < 600; i++) x[i] = i % 2 ? 65504.0f : -65504.0f;
        check_dq_row(dq_types[t], x, 600, 16, nm);
        for (int i = 0; i < 600; i++) x[i] = i % 3 ? 65504.0f : 65000.0f; /* all positive: dm > 0 */
        check_dq_row(dq_types[t], x, 600, 16, nm);
        for (int i = 0; i < 600; i++) x[i] = 2e-8f * (float)(i % 7 - 3);
        check_dq_row(dq_types[t], x, 600, 16, nm);
        /* mixed magnitudes: a loud group next to quiet ones in one super-block */
        for (int i = 0; i < 600; i++) x[i] = (float)((i / 16) % 4 == 0 ? 1000.0 : 1e-3) * (float)((i * 37) % 11 - 5);
        check_dq_row(dq_types[t], x, 600, 16, nm);
        for (int i = 0; i < 600; i++) x[i] = 1.0f + 1e-3f * (float)(i % 9); /* all groups positive */
        check_dq_row(dq_types[t], x, 600, 16, nm);
    }
}

Test(dq, int4_dq_hand_computed_bytes)
{
    /*
     * 40 elements, G = 32: group 0 = 32 elements, group 1 = 8, one super-block.
     * lo = (-0.984375, -0.5): dm = -1/64 (63/64 covers 0.984375; f16 0xA400), mc = (63, 32).
     * d = 1/256 (0x1C00): group 0 needs m + 15 * 63 d >= 2.70703125 exactly; sc = (63, 26).
     * s = (63/256, 26/256), m = (-63/64, -1/2).
     */
    float x[40];
    for (int i = 0; i < 32; i++) x[i] = -0.984375f;
    x[1] = 2.70703125f; /* q 15 */
    x[2] = 0.0f;        /* 0.984375 / 0.24609375 = 4 */
    for (int i = 32; i < 40; i++) x[i] = -0.5f;
    x[33] = 1.0f;   /* 1.5 / 0.1015625 = 14.77 -> 15 */
    x[34] = 0.0f;   /* 4.92 -> 5 */
    x[35] = 0.25f;  /* 7.38 -> 7 */
    row r = row_new(MIXQ_QT_INT4_DQ, 40, 32);
    row_run(&r, x, NULL);
    uint8_t codes[20] = {0};
    codes[0] = 0xF0; /* elements 0 (q 0), 1 (q 15) */
    codes[1] = 0x04; /* element 2 (q 4), 3 (q 0) */
    codes[16] = 0xF0; /* elements 32 (q 0), 33 (q 15) */
    codes[17] = 0x75; /* elements 34 (q 5), 35 (q 7) */
    cr_assert_arr_eq(r.sec[MIXQ_SEC_CODES], codes, 20);
    static const uint8_t scales[2] = {0xAF, 0x07}; /* low nibbles 15 | 10 << 4, high bits 3 | 1 << 2 */
    static const uint8_t mins[2] = {0x0F, 0x0B};   /* 15 | 0 << 4, 3 | 2 << 2 */
    static const uint8_t sups[2] = {0x00, 0x1C}, supm[2] = {0x00, 0xA4};
    cr_assert_arr_eq(r.sec[MIXQ_SEC_SCALES], scales, 2);
    cr_assert_arr_eq(r.sec[MIXQ_SEC_MINS], mins, 2);
    cr_assert_arr_eq(r.sec[MIXQ_SEC_SUPER_SCALES], sups, 2);
    cr_assert_arr_eq(r.sec[MIXQ_SEC_SUPER_MINS], supm, 2);
    cr_assert_eq(r.out[1], 2.70703125f);
    cr_assert_eq(r.out[2], 0.0f);
    cr_assert_eq(r.out[33], 1.0234375f);
    row_free(&r);
}

Test(dq, int2_dq_hand_computed_bytes)
{
    /*
     * 20 elements: groups of 16 and 4 in one super-block.  lo = (-1.875, 0.5):
     * dm = -1/8 (15/8 covers 1.875; 0xB000), mc = (15, 0); m = (-1.875, 0).
     * d: group 0 needs -1.875 + 3 * 15 d >= 1.875 -> d = 1/12 rounded up to f16
     * ... keep it exact: hi0 = -1.875 + 45/16 = 0.9375, d = 1/16 (0x2C00), sc0 = 15;
     * group 1: hi = 1.25 from m = 0: 3 * c / 16 >= 1.25 -> c = 7 (21/16).
     */
    float x[20];
    for (int i = 0; i < 16; i++) x[i] = -1.875f;
    x[1] = 0.9375f; /* q 3 */
    x[2] = 0.0f;    /* 1.875 / 0.9375 = 2 */
    x[16] = 0.5f;   /* 0.5 / 0.4375 = 1.14 -> 1 */
    x[17] = 1.25f;  /* 2.86 -> 3 */
    x[18] = 0.75f;  /* 1.71 -> 2 */
    x[19] = 0.5f;
    row r = row_new(MIXQ_QT_INT2_DQ, 20, 16);
    row_run(&r, x, NULL);
    uint8_t codes[5] = {0 | 3 << 2 | 2 << 4, 0, 0, 0, 1 | 3 << 2 | 2 << 4 | 1 << 6};
    cr_assert_arr_eq(r.sec[MIXQ_SEC_CODES], codes, 5);
    cr_assert_eq(r.sec[MIXQ_SEC_SCALES][0], 15 | 7 << 4);
    cr_assert_eq(r.sec[MIXQ_SEC_MINS][0], 15 | 0 << 4);
    cr_assert_eq(ld16(r.sec[MIXQ_SEC_SUPER_SCALES]), 0x2C00);
    cr_assert_eq(ld16(r.sec[MIXQ_SEC_SUPER_MINS]), 0xB000);
    row_free(&r);
}

Test(dq, int3_dq_hand_computed_bytes)
{
    /*
     * 18 elements: groups of 16 and 2.  amax = (4, 1): d = the smallest f16 with 4 * 31 d >= 4
     * = 1/31 rounded up; keep exact instead with amax0 = 4 * 31 / 32 = 3.875: d = 1/32 (0x2800),
     * |c0| = 31, xm0 = +3.875 -> c0 = -31, s0 = -31/32; group 1: amax 0.5, xm -0.5 ->
     * |c1| = smallest with 4 c / 32 >= 0.5 = 4, c1 = +4, s1 = 1/8.
     * Codes (q + 4): 3.875 / -0.96875 = -4 -> 0; -0.96875 -> 1 -> 5; 0 -> 4; 1.5 -> -1.55 -> -2 -> 2.
     * group 1: -0.5 / 0.125 = -4 -> 0; 0.375 -> 3 -> 7.
     */
    float x[18] = {3.875f, -0.96875f, 0.0f, 1.5f};
    for (int i = 4; i < 16; i++) x[i] = 0.0f;
    x[16] = -0.5f;
    x[17] = 0.375f;
    row r = row_new(MIXQ_QT_INT3_DQ, 18, 16);
    row_run(&r, x, NULL);
    /* u = 0, 5, 4, 2, 4 x 12, 0, 7: plane 0 (low 2 bits, 5 bytes), plane 1 (bit 2, 3 bytes) */
    unsigned u[18] = {0, 5, 4, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0, 7};
    uint8_t want[8] = {0};
    for (int k = 0; k < 18; k++) {
        want[k / 4] |= (uint8_t)((u[k] & 3u) << (2 * (k % 4)));
        want[5 + k / 8] |= (uint8_t)(((u[k] >> 2) & 1u) << (k % 8));
    }
    cr_assert_eq(want[0], 0x84); /* low bits of u 0, 5, 4, 2: 0 | 1 << 2 | 0 << 4 | 2 << 6 */
    cr_assert_eq(want[5], 0xF6); /* bit 2 of u 0, 5, 4, 2, 4, 4, 4, 4 */
    cr_assert_arr_eq(r.sec[MIXQ_SEC_CODES], want, 8);
    /* scale codes c + 32 = 1, 36: plane 0 nibbles 1 | 4 << 4 = 0x41; plane 1 bits 0 | 2 << 2 = 0x08 */
    static const uint8_t scales[2] = {0x41, 0x08};
    cr_assert_arr_eq(r.sec[MIXQ_SEC_SCALES], scales, 2);
    cr_assert_eq(ld16(r.sec[MIXQ_SEC_SUPER_SCALES]), 0x2800);
    cr_assert_eq(r.out[0], 3.875f);
    cr_assert_eq(r.out[3], 1.9375f);
    row_free(&r);
}

Test(dq, int6_dq_hand_computed_bytes)
{
    /*
     * 17 elements: groups 16 + 1.  amax0 = 32 * 127 / 128 = 31.75 -> d = 1/128 (0x2000), xm0 = -31.75 ->
     * c0 = +127 (s0 = 127/128), q(-31.75) = -32 -> u 0; 10 -> 10.08 -> 10 -> u 42; 0 -> u 32.
     * group 1: x = 1: xm +1 -> |c1| smallest with 32 c / 128 >= 1 = 4, c1 = -4, s1 = -1/32;
     * q = -32 -> u 0.
     */
    float x[17] = {-31.75f, 10.0f};
    x[16] = 1.0f;
    row r = row_new(MIXQ_QT_INT6_DQ, 17, 16);
    row_run(&r, x, NULL);
    unsigned u[17];
    for (int k = 0; k < 17; k++) u[k] = 32;
    u[0] = 0;
    u[1] = 42;
    u[16] = 0;
    uint8_t want[9 + 5] = {0};
    for (int k = 0; k < 17; k++) {
        want[k / 2] |= (uint8_t)((u[k] & 15u) << (4 * (k % 2)));
        want[9 + k / 4] |= (uint8_t)(((u[k] >> 4) & 3u) << (2 * (k % 4)));
    }
    cr_assert_eq(want[0], 0xA0);
    cr_assert_eq(want[9], 0xA8); /* bits 4-5 of u 0, 42, 32, 32 */
    cr_assert_arr_eq(r.sec[MIXQ_SEC_CODES], want, 14);
    static const uint8_t scales[2] = {255, 124}; /* c + 128 */
    cr_assert_arr_eq(r.sec[MIXQ_SEC_SCALES], scales, 2);
    cr_assert_eq(ld16(r.sec[MIXQ_SEC_SUPER_SCALES]), 0x2000);
    cr_assert_eq(r.out[0], -31.75f);
    cr_assert_eq(r.out[16], 1.0f);
    row_free(&r);
}

Test(dq, dequantize_reads_only_its_bytes)
{
    /* Random section bytes of every DQ type dequantize without reading out of bounds and
     * give the reader's formula (NaN only from non-finite super-block scales). */
    uint64_t seed = 99;
    for (int t = 0; t < 4; t++) {
        row r = row_new(dq_types[t], 300, 16);
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
            for (uint64_t i = 0; i < r.l.row_bytes[k]; i++) r.sec[k][i] = (uint8_t)rng_next(&seed);
        /* keep the super-block scales finite */
        for (uint64_t i = 1; i < r.l.row_bytes[MIXQ_SEC_SUPER_SCALES]; i += 2) r.sec[MIXQ_SEC_SUPER_SCALES][i] &= 0x3F;
        if (r.sec[MIXQ_SEC_SUPER_MINS])
            for (uint64_t i = 1; i < r.l.row_bytes[MIXQ_SEC_SUPER_MINS]; i += 2) r.sec[MIXQ_SEC_SUPER_MINS][i] &= 0xBF;
        mx_crowptrs in;
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++) in.sec[k] = r.sec[k];
        r.qt->dequantize_row(in, 300, 16, r.out);
        dq_info D = dq_of(dq_types[t]);
        for (size_t k = 0; k < 300; k++) {
            float s, m;
            dq_params(&r, &D, k / 16, &s, &m);
            int q = (int)code_at(&r, k) - (int)D.qbias;
            volatile float p = (float)q * s, want = D.asym ? p + m : p;
            cr_assert_eq(r.out[k], want, "%s k=%zu", mixq_qtype_name(dq_types[t]), k);
        }
        row_free(&r);
    }
}
