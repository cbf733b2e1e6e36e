/*
 * test_kernels.c - the scalar int8 / int4 kernels against FORMAT.md §4.1/§4.2:
 * scale and min choice (smallest / largest f16 satisfying the rule), codes
 * against an independent double-precision computation, the error bounds, and
 * exact bytes for hand-computed examples.
 *
 * Bounds checked (computed in double, where x - x^ of two floats is exact):
 *   int8: |x - x^| <= s/2, no tolerance (FORMAT.md §4.1 proves it exact);
 *   int4: |x - x^| <= s/2 + 2^-23 (|m| + 32 s), the binary32 rounding
 *         allowance stated in FORMAT.md §4.2.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_scale_rules.h"
#include "kernels/kernels.h"
#include "kernels/qtype.h"
#include "test_rng.h"
#include "test_support.h"

/* ---- helpers ---- */

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static double f16v(uint16_t h) { return (double)mx_f16_to_f32(h); }

/* One row's worth of sections, allocated to the exact size (ASan catches overruns). */
typedef struct qrow {
    const qtype_desc *qt;
    size_t n, g, ng;
    uint8_t *codes, *scales, *mins;
    float *out;
} qrow;

static qrow qrow_new(mixq_qtype t, size_t n, unsigned group)
{
    qrow r;
    qlayout l;
    memset(&r, 0, sizeof r);
    r.qt = qtype_get(t);
    r.n = n;
    r.g = group ? group : n;
    /* The layout of a one-row tensor gives the per-row sizes (group = n is per row). */
    cr_assert(qtype_layout(r.qt, ST_F32, 1, n, qtype_group_ok(r.qt, group) ? group : 0, &l));
    r.ng = (size_t)l.groups_per_row;
    cr_assert_eq(r.ng, (n + r.g - 1) / r.g);
    r.codes = malloc(l.row_bytes[MIXQ_SEC_CODES]);
    r.scales = malloc(l.row_bytes[MIXQ_SEC_SCALES]);
    r.mins = r.qt->symmetric ? NULL : malloc(l.row_bytes[MIXQ_SEC_MINS]);
    r.out = malloc(n * sizeof(float));
    cr_assert(r.codes && r.scales && r.out && (r.qt->symmetric || r.mins));
    memset(r.codes, 0xEE, l.row_bytes[MIXQ_SEC_CODES]); /* garbage the kernel must overwrite */
    memset(r.scales, 0xEE, l.row_bytes[MIXQ_SEC_SCALES]);
    if (r.mins)
        memset(r.mins, 0xEE, l.row_bytes[MIXQ_SEC_MINS]);
    return r;
}

static void qrow_free(qrow *r)
{
    free(r->codes);
    free(r->scales);
    free(r->mins);
    free(r->out);
}

/* Quantizes x through the type table and dequantizes into r->out. */
static void qrow_run(qrow *r, const float *x, unsigned group)
{
    mx_rowptrs o;
    mx_crowptrs i;
    memset(&o, 0, sizeof o);
    memset(&i, 0, sizeof i);
    o.sec[MIXQ_SEC_CODES] = r->codes;
    o.sec[MIXQ_SEC_SCALES] = r->scales;
    o.sec[MIXQ_SEC_MINS] = r->mins;
    i.sec[MIXQ_SEC_CODES] = r->codes;
    i.sec[MIXQ_SEC_SCALES] = r->scales;
    i.sec[MIXQ_SEC_MINS] = r->mins;
    r->qt->quantize_row(x, r->n, group, NULL, o);
    r->qt->dequantize_row(i, r->n, group, r->out);
}

/* Checks every FORMAT.md §4.1 property of an int8 row. */
static void check_int8_row(const float *x, size_t n, unsigned group, const char *what)
{
    qrow r = qrow_new(MIXQ_QT_INT8, n, group);
    qrow_run(&r, x, group);
    for (size_t j = 0; j < r.ng; j++) {
        size_t start = j * r.g, len = n - start < r.g ? n - start : r.g;
        uint16_t sb = ld16(r.scales + 2 * j);
        double s = f16v(sb), amax = 0;
        for (size_t i = 0; i < len; i++)
            amax = fmax(amax, fabs((double)x[start + i]));
        CHECK(sb < 0x7C00u, "%s n=%zu g=%u j=%zu: scale %04x not finite/non-negative", what, n,
              group, j, sb);
        if (amax == 0) {
            CHECK(sb == 0, "%s: all-zero group has scale %04x", what, sb);
        } else {
            /* Smallest f16 with 127 s >= amax: s works, the previous f16 does not. */
            CHECK(127 * s >= amax && 127 * f16v((uint16_t)(sb - 1)) < amax,
                  "%s n=%zu g=%u j=%zu: scale %04x (%g) not the smallest for amax %g", what, n,
                  group, j, sb, s, amax);
        }
        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            int q = r.codes[k] >= 128 ? r.codes[k] - 256 : r.codes[k];
            double want = s == 0 ? 0 : fmax(-127, fmin(127, nearbyint((double)x[k] / s)));
            CHECK(r.codes[k] != 0x80, "%s: code -128 written", what);
            CHECK(q == (int)want, "%s n=%zu g=%u k=%zu x=%a s=%a: code %d want %d", what, n,
                  group, k, (double)x[k], s, q, (int)want);
            CHECK(r.out[k] == (float)q * (float)s, "%s: dequant formula at %zu", what, k);
            CHECK(fabs((double)x[k] - (double)r.out[k]) <= s / 2,
                  "%s n=%zu g=%u k=%zu: |%a - %a| > s/2 = %a", what, n, group, k, (double)x[k],
                  (double)r.out[k], s / 2);
        }
    }
    qrow_free(&r);
}

/* FORMAT.md §4.2 scale test, in binary32 exactly as specified. */
static int int4_covers(float m, float s, float hi)
{
    volatile float t = 15.0f * s;
    volatile float sum = m + t;
    return sum >= hi;
}

/* The f16 just above h in value (h finite, not -0). */
static double f16_above(uint16_t h)
{
    if (h == 0x8001u)
        return 0.0;
    return f16v((h & 0x8000u) ? (uint16_t)(h - 1u) : (uint16_t)(h + 1u));
}

/* Checks every FORMAT.md §4.2 property of an int4 row. */
static void check_int4_row(const float *x, size_t n, unsigned group, const char *what)
{
    qrow r = qrow_new(MIXQ_QT_INT4, n, group);
    qrow_run(&r, x, group);
    for (size_t j = 0; j < r.ng; j++) {
        size_t start = j * r.g, len = n - start < r.g ? n - start : r.g;
        uint16_t sb = ld16(r.scales + 2 * j), mb = ld16(r.mins + 2 * j);
        float s = mx_f16_to_f32(sb), m = mx_f16_to_f32(mb);
        float lo = x[start], hi = x[start];
        for (size_t i = 1; i < len; i++) {
            lo = fminf(lo, x[start + i]);
            hi = fmaxf(hi, x[start + i]);
        }
        /* m: the largest f16 <= min, +0 for zero. */
        CHECK(mb != 0x8000u && (mb & 0x7C00u) != 0x7C00u, "%s: min bits %04x", what, mb);
        CHECK(m <= lo && f16_above(mb) > lo, "%s n=%zu g=%u j=%zu: min %04x not largest <= %a",
              what, n, group, j, mb, (double)lo);
        /* s: the smallest f16 >= 0 with fl(m + 15 s) >= max. */
        CHECK(sb < 0x7C00u, "%s: scale bits %04x", what, sb);
        CHECK(int4_covers(m, s, hi), "%s: scale %04x does not cover", what, sb);
        if (sb != 0)
            CHECK(!int4_covers(m, mx_f16_to_f32((uint16_t)(sb - 1u)), hi),
                  "%s n=%zu g=%u j=%zu: scale %04x not the smallest", what, n, group, j, sb);
        CHECK((sb == 0) == (m == hi), "%s: s = 0 iff m == max", what);
        double tol = (double)s / 2 + 0x1p-23 * (fabs((double)m) + 32 * (double)s);
        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            unsigned q = (k % 2 == 0) ? (r.codes[k / 2] & 0xFu) : (r.codes[k / 2] >> 4);
            unsigned want = 0;
            if (s != 0) {
                volatile float d = x[k] - m;
                volatile float t = d / s;
                want = (unsigned)fmax(0, fmin(15, nearbyint((double)t)));
            }
            CHECK(q == want, "%s n=%zu g=%u k=%zu: code %u want %u", what, n, group, k, q, want);
            volatile float p = (float)q * s;
            volatile float xr = p + m;
            CHECK(r.out[k] == xr, "%s: dequant formula at %zu", what, k);
            CHECK(fabs((double)x[k] - (double)r.out[k]) <= tol,
                  "%s n=%zu g=%u k=%zu: |%a - %a| > %a (s=%a m=%a)", what, n, group, k,
                  (double)x[k], (double)r.out[k], tol, (double)s, (double)m);
        }
    }
    if (n % 2 == 1)
        CHECK((r.codes[n / 2] >> 4) == 0, "%s: odd row's last high nibble not zero", what);
    qrow_free(&r);
}

static const size_t extra_sizes[] = {301, 383, 384, 385, 511, 512, 513, 640, 777, 999, 1000};
#define N_SIZES (300 + sizeof extra_sizes / sizeof extra_sizes[0])
static size_t size_at(size_t i) { return i < 300 ? i + 1 : extra_sizes[i - 300]; }

/* ---- int8 ---- */

Test(int8, gaussian_rows_all_sizes_and_groups)
{
    static const unsigned groups[] = {32, 64, 128, 256, 0};
    static const double sigmas[] = {1e-3, 0.02, 1.0, 300.0};
    float *x = malloc(1000 * sizeof *x);
    uint64_t seed = 1;
    cr_assert(x);
    for (size_t si = 0; si < N_SIZES; si++) {
        size_t n = size_at(si);
        for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
            for (size_t k = 0; k < sizeof sigmas / sizeof sigmas[0]; k++) {
                rng_fill_gauss(x, n, &seed, 0.0, sigmas[k]);
                check_int8_row(x, n, groups[gi], "gauss");
                /* A per-row group passed as group = n must equal group 0. */
                if (groups[gi] == 0 && n >= 1)
                    check_int8_row(x, n, (unsigned)n, "gauss g=n");
            }
        }
    }
    free(x);
}

Test(int8, special_groups)
{
    float x[300];
    /* All zero (including -0) and constant groups. */
    for (int i = 0; i < 300; i++)
        x[i] = (i % 3 == 0) ? -0.0f : 0.0f;
    check_int8_row(x, 300, 64, "zeros");
    {
        qrow r = qrow_new(MIXQ_QT_INT8, 300, 64);
        qrow_run(&r, x, 64);
        for (int i = 0; i < 300; i++)
            cr_assert(r.codes[i] == 0 && r.out[i] == 0.0f);
        for (size_t j = 0; j < r.ng; j++)
            cr_assert_eq(ld16(r.scales + 2 * j), 0);
        qrow_free(&r);
    }
    for (int i = 0; i < 300; i++)
        x[i] = -3.25f;
    check_int8_row(x, 300, 32, "constant");
    /* Tiny magnitudes: the scale is a subnormal f16 or the smallest one. */
    const double mags[] = {1e-4, 1e-5, 1e-6, 3e-8, 1e-12, 1e-40};
    uint64_t seed = 5;
    for (size_t k = 0; k < sizeof mags / sizeof mags[0]; k++) {
        for (int i = 0; i < 300; i++)
            x[i] = (float)(mags[k] * rng_gauss(&seed));
        check_int8_row(x, 300, 128, "tiny");
    }
    for (int i = 0; i < 300; i++)
        x[i] = (float)(1e-6 * rng_gauss(&seed));
    {
        qrow r = qrow_new(MIXQ_QT_INT8, 300, 128);
        qrow_run(&r, x, 128);
        for (size_t j = 0; j < r.ng; j++)
            cr_assert_eq(ld16(r.scales + 2 * j), 0x0001, "amax < 127 * 2^-24: smallest f16");
        qrow_free(&r);
    }
    /* Mixed magnitudes in one row: each group gets its own scale. */
    for (int i = 0; i < 300; i++)
        x[i] = (float)(rng_gauss(&seed) * (i < 100 ? 1e-5 : i < 200 ? 1.0 : 1e4));
    check_int8_row(x, 300, 32, "mixed");
}

Test(int8, f16_range_extremes)
{
    float x[6] = {65504.0f, -65504.0f, 0.0f, 1.0f, 258.0f, -774.0f};
    qrow r = qrow_new(MIXQ_QT_INT8, 6, 32);
    qrow_run(&r, x, 32);
    cr_assert_eq(ld16(r.scales), 0x6008, "516 = smallest f16 with 127 s >= 65504");
    cr_assert_eq(r.codes[0], 0x7F);
    cr_assert_eq(r.codes[1], 0x81);
    cr_assert_eq(r.out[0], 65532.0f);
    cr_assert_eq(r.out[1], -65532.0f);
    cr_assert_eq(r.codes[4], 0, "258 / 516 = 0.5: tie to even 0");
    cr_assert_eq(r.codes[5], 0xFE, "-774 / 516 = -1.5: tie to even -2");
    qrow_free(&r);
    check_int8_row(x, 6, 32, "extremes");
}

Test(int8, scale_is_rounded_up)
{
    /* amax = 1: 1/127 lies between f16 0x2008 and 0x2009. */
    float x[1] = {1.0f};
    qrow r = qrow_new(MIXQ_QT_INT8, 1, 32);
    qrow_run(&r, x, 32);
    cr_assert_eq(ld16(r.scales), 0x2009);
    cr_assert(127.0 * f16v(0x2008) < 1.0 && 127.0 * f16v(0x2009) >= 1.0);
    cr_assert_eq(r.codes[0], 127);
    qrow_free(&r);
    /* amax = 127 * f16 exactly: the scale is that f16, not the next. */
    x[0] = -127.0f * 0.375f;
    r = qrow_new(MIXQ_QT_INT8, 1, 32);
    qrow_run(&r, x, 32);
    cr_assert_eq(ld16(r.scales), mx_f32_to_f16(0.375f));
    cr_assert_eq(r.codes[0], 0x81);
    qrow_free(&r);
}

Test(int8, hand_computed_bytes)
{
    /* Group 0: max 127 -> s = 1 (0x3C00); ties go to even. Group 1 (elements 32..33): max 2 ->
     * s = smallest f16 >= 2/127, = 0x2409 (1033 * 2^-16); 2/s = 126.88 -> 127, -1/s -> -63. */
    float x[34] = {1, -2, 127, -0.5f, 0.5f, 1.5f, 2.5f, -2.5f, 126.5f, -126.5f};
    x[32] = 2.0f;
    x[33] = -1.0f;
    qrow r = qrow_new(MIXQ_QT_INT8, 34, 32);
    qrow_run(&r, x, 32);
    static const uint8_t want[10] = {0x01, 0xFE, 0x7F, 0x00, 0x00, 0x02, 0x02, 0xFE, 0x7E, 0x82};
    cr_assert_arr_eq(r.codes, want, 10);
    for (int i = 10; i < 32; i++)
        cr_assert_eq(r.codes[i], 0);
    static const uint8_t want_scales[4] = {0x00, 0x3C, 0x09, 0x24};
    cr_assert_arr_eq(r.scales, want_scales, 4);
    cr_assert_eq(r.codes[32], 127);
    cr_assert_eq(r.codes[33], (uint8_t)(256 - 63));
    cr_assert_eq(r.out[2], 127.0f);
    cr_assert_eq(r.out[6], 2.0f);
    qrow_free(&r);
}

Test(int8, deterministic)
{
    float x[777];
    uint64_t seed = 42;
    rng_fill_gauss(x, 777, &seed, 0.5, 2.0);
    qrow a = qrow_new(MIXQ_QT_INT8, 777, 64), b = qrow_new(MIXQ_QT_INT8, 777, 64);
    qrow_run(&a, x, 64);
    qrow_run(&b, x, 64);
    cr_assert_arr_eq(a.codes, b.codes, 777);
    cr_assert_arr_eq(a.scales, b.scales, 2 * a.ng);
    qrow_free(&a);
    qrow_free(&b);
}

/* ---- int4 ---- */

Test(int4, gaussian_rows_all_sizes_and_groups)
{
    static const unsigned groups[] = {16, 32, 64, 128, 256};
    static const double sigmas[] = {1e-3, 0.02, 1.0, 300.0};
    static const double means[] = {0.0, 3.0, -0.5};
    float *x = malloc(1000 * sizeof *x);
    uint64_t seed = 2;
    cr_assert(x);
    for (size_t si = 0; si < N_SIZES; si++) {
        size_t n = size_at(si);
        for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
            for (size_t k = 0; k < sizeof sigmas / sizeof sigmas[0]; k++) {
                double mean = means[(si + k) % 3] * sigmas[k];
                rng_fill_gauss(x, n, &seed, mean, sigmas[k]);
                check_int4_row(x, n, groups[gi], "gauss");
            }
        }
    }
    free(x);
}

Test(int4, special_groups)
{
    float x[300];
    uint64_t seed = 9;
    /* Constant groups of an f16 value: s = 0, codes 0, exact reconstruction. */
    const float consts[] = {0.0f, -0.0f, 3.5f, -7.0f, 65504.0f, -65504.0f, 0x1p-24f};
    for (size_t c = 0; c < sizeof consts / sizeof consts[0]; c++) {
        for (int i = 0; i < 37; i++)
            x[i] = consts[c];
        qrow r = qrow_new(MIXQ_QT_INT4, 37, 16);
        qrow_run(&r, x, 16);
        for (size_t j = 0; j < r.ng; j++) {
            cr_assert_eq(ld16(r.scales + 2 * j), 0);
            cr_assert_eq(ld16(r.mins + 2 * j), consts[c] == 0 ? 0 : mx_f32_to_f16(consts[c]));
        }
        for (int i = 0; i < 37; i++)
            cr_assert(r.out[i] == consts[c], "constant %a: got %a", (double)consts[c],
                      (double)r.out[i]);
        for (int i = 0; i < 19; i++)
            cr_assert_eq(r.codes[i], 0);
        qrow_free(&r);
        check_int4_row(x, 37, 16, "constant");
    }
    /* A constant that is not an f16 value needs s > 0 (and is still within the bound). */
    for (int i = 0; i < 64; i++)
        x[i] = 0.1f;
    check_int4_row(x, 64, 64, "constant 0.1");
    /* Tiny magnitudes, positive offsets, float subnormals. */
    const double mags[] = {1e-4, 1e-5, 1e-6, 1e-8, 1e-40};
    for (size_t k = 0; k < sizeof mags / sizeof mags[0]; k++) {
        for (int i = 0; i < 300; i++)
            x[i] = (float)(mags[k] * (rng_gauss(&seed) + (k % 2 ? 3.0 : 0.0)));
        check_int4_row(x, 300, 64, "tiny");
    }
    /* Large offset, narrow range: float rounding near |m| dominates (covered by the tolerance). */
    for (int i = 0; i < 300; i++)
        x[i] = (float)(-60000.0 + 0.01 * rng_unit(&seed));
    check_int4_row(x, 300, 32, "offset");
    for (int i = 0; i < 300; i++)
        x[i] = (float)(40000.0 + 100.0 * rng_gauss(&seed));
    check_int4_row(x, 300, 256, "offset2");
    /* All negative, all positive, mixed magnitudes. */
    for (int i = 0; i < 300; i++)
        x[i] = (float)(rng_gauss(&seed) * (i < 100 ? 1e-5 : i < 200 ? 1.0 : 1e4));
    check_int4_row(x, 300, 16, "mixed");
}

Test(int4, f16_range_extremes)
{
    float x[4] = {-65504.0f, 65504.0f, 0.0f, 65504.0f};
    qrow r = qrow_new(MIXQ_QT_INT4, 3, 16);
    qrow_run(&r, x, 16);
    cr_assert_eq(ld16(r.mins), 0xFBFF);
    cr_assert_eq(ld16(r.scales), 0x7044, "8736 = smallest f16 with 15 s >= 131008");
    cr_assert_eq(r.codes[0], 0xF0);
    cr_assert_eq(r.codes[1], 0x07, "0 -> 65504/8736 = 7.498 -> 7");
    cr_assert_eq(r.out[0], -65504.0f);
    cr_assert_eq(r.out[1], 65536.0f);
    qrow_free(&r);
    check_int4_row(x, 3, 16, "extremes");
    check_int4_row(x + 1, 3, 16, "extremes2");
}

Test(int4, min_rounded_down_scale_rounded_up)
{
    /* min 0.1 is not an f16: m is the f16 just below; max 1.0. */
    float x[2] = {0.1f, 1.0f};
    qrow r = qrow_new(MIXQ_QT_INT4, 2, 16);
    qrow_run(&r, x, 16);
    uint16_t mb = ld16(r.mins), sb = ld16(r.scales);
    cr_assert_eq(mb, 0x2E66, "0.0999755859375, the f16 below 0.1");
    cr_assert(f16v(mb) < 0.1f && f16v(0x2E67) > 0.1f);
    cr_assert(int4_covers(mx_f16_to_f32(mb), mx_f16_to_f32(sb), 1.0f));
    cr_assert(!int4_covers(mx_f16_to_f32(mb), mx_f16_to_f32((uint16_t)(sb - 1)), 1.0f));
    cr_assert_eq(r.codes[0], 0xF0);
    qrow_free(&r);
    /* Negative min: rounded towards -inf. */
    x[0] = -0.1f;
    r = qrow_new(MIXQ_QT_INT4, 2, 16);
    qrow_run(&r, x, 16);
    cr_assert_eq(ld16(r.mins), 0xAE67, "-0.10003662109375, the f16 below -0.1");
    qrow_free(&r);
}

Test(int4, hand_computed_bytes)
{
    /* m = 1 (0x3C00); s = smallest f16 with 1 + 15 s >= 5: 1093 * 2^-12 (0x3445), since
     * 1 + 15 * 1092 * 2^-12 = 4.999 < 5.  Codes (x - 1)/s = 0, 3.75, 7.50, 11.24, 14.99
     * -> 0, 4, 7, 11, 15: element 2i in the low nibble of byte i, odd tail high nibble 0. */
    float x[5] = {1, 2, 3, 4, 5};
    qrow r = qrow_new(MIXQ_QT_INT4, 5, 16);
    qrow_run(&r, x, 16);
    static const uint8_t want_codes[3] = {0x40, 0xB7, 0x0F};
    static const uint8_t want_scale[2] = {0x45, 0x34};
    static const uint8_t want_min[2] = {0x00, 0x3C};
    cr_assert_arr_eq(r.codes, want_codes, 3);
    cr_assert_arr_eq(r.scales, want_scale, 2);
    cr_assert_arr_eq(r.mins, want_min, 2);
    qrow_free(&r);

    /* Two groups of a 19-element row (16 + 3): group 1 continues the nibble stream. */
    float y[19];
    for (int i = 0; i < 16; i++)
        y[i] = (float)i; /* m = 0, s = 1: codes = values */
    y[16] = 10;
    y[17] = 12;
    y[18] = 13; /* m = 10, s = smallest with 10 + 15 s >= 13: 0.2 -> 0x3267 */
    r = qrow_new(MIXQ_QT_INT4, 19, 16);
    qrow_run(&r, y, 16);
    static const uint8_t want2[10] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE, 0xA0, 0x0F};
    cr_assert_arr_eq(r.codes, want2, 10);
    static const uint8_t want2_scales[4] = {0x00, 0x3C, 0x67, 0x32};
    static const uint8_t want2_mins[4] = {0x00, 0x00, 0x00, 0x49};
    cr_assert_arr_eq(r.scales, want2_scales, 4);
    cr_assert_arr_eq(r.mins, want2_mins, 4);
    qrow_free(&r);
}

/* ---- exact ties and rounding-path pins ---- */

/* Positive normal f16 scales spread over the range (every 37th pattern) with 127 s <= 65504. */
Test(int8, exact_ties_go_to_even)
{
    float x[128];
    for (uint32_t sb = 0x0400u; sb <= 0x6008u; sb += 37u) {
        float s = mx_f16_to_f32((uint16_t)sb);
        if (127.0f * s > 65504.0f)
            break;
        x[0] = 127.0f * s; /* max: makes s the scale exactly */
        for (int k = 0; k < 127; k++)
            x[k + 1] = (k % 2 ? -1.0f : 1.0f) * ((float)k + 0.5f) * s; /* exact ties */
        qrow r = qrow_new(MIXQ_QT_INT8, 128, 128);
        qrow_run(&r, x, 128);
        cr_assert_eq(ld16(r.scales), sb);
        for (int k = 0; k < 127; k++) {
            int want = (k % 2 == 0 ? k : k + 1) * (k % 2 ? -1 : 1);
            cr_assert_eq(r.codes[k + 1], (uint8_t)(want < 0 ? want + 256 : want),
                         "s=%04x tie %d.5", sb, k);
        }
        qrow_free(&r);
        check_int8_row(x, 128, 128, "ties");
    }
}

Test(int8, float_subnormal_group)
{
    /* amax / 127 underflows to 0 in binary32: the scale is still the smallest f16. */
    float x[3] = {0x1p-149f, -0x1p-148f, 0.0f};
    qrow r = qrow_new(MIXQ_QT_INT8, 3, 32);
    qrow_run(&r, x, 32);
    cr_assert_eq(ld16(r.scales), 0x0001);
    cr_assert(r.codes[0] == 0 && r.codes[1] == 0 && r.out[1] == 0.0f);
    qrow_free(&r);
    check_int8_row(x, 3, 32, "float subnormal");
}

Test(int4, exact_ties_go_to_even)
{
    float x[17];
    for (uint32_t sb = 0x0001u; sb < 0x7C00u; sb += 37u) {
        float s = mx_f16_to_f32((uint16_t)sb);
        if (15.0f * s > 65504.0f)
            break;
        x[0] = 0.0f;       /* m = 0 */
        x[1] = 15.0f * s;  /* max: s is the smallest f16 with 15 s >= max */
        for (int k = 0; k < 15; k++)
            x[k + 2] = ((float)k + 0.5f) * s; /* exact ties (k + 0.5) * s */
        qrow r = qrow_new(MIXQ_QT_INT4, 17, 32);
        qrow_run(&r, x, 32);
        cr_assert_eq(ld16(r.scales), sb);
        cr_assert_eq(ld16(r.mins), 0);
        for (int k = 0; k < 15; k++) {
            size_t e = (size_t)k + 2;
            unsigned q = (e % 2 == 0) ? (r.codes[e / 2] & 0xFu) : (r.codes[e / 2] >> 4);
            cr_assert_eq(q, (unsigned)(k % 2 == 0 ? k : k + 1), "s=%04x tie %d.5", sb, k);
        }
        qrow_free(&r);
        check_int4_row(x, 17, 32, "ties");
    }
}

/*
 * kernel_scale_rules.h's plain-choice scale rules against the definitions,
 * by search over every non-negative finite f16 (and +inf): the smallest
 * passing value, with the predecessor failing.
 */
static uint16_t smallest_f16(int (*pass)(const float *, uint16_t), const float *a)
{
    for (unsigned h = 0; h < 0x7C00u; h++)
        if (pass(a, (uint16_t)h))
            return (uint16_t)h;
    return 0x7C00u;
}

static int sym_pass(const float *a, uint16_t h) { return a[1] * mx_f16_to_f32(h) >= a[0]; }

static int asym_pass(const float *a, uint16_t h)
{
    float top = a[1] * mx_f16_to_f32(h);
    float sum = a[0] + top;
    return sum >= a[2];
}

Test(scale_rules, cover_scales_are_the_smallest_passing_f16)
{
    static const float tops[] = {127.0f, 8.0f, 63.0f, 3.0f, 15.0f, 1.0f};
    static const float mags[] = {1e-9f, 3e-7f, 1e-4f, 1.0f, 300.0f, 65504.0f, 1e7f};
    uint64_t seed = 0x5CA1Eu;
    for (int r = 0; r < 120; r++) {
        float top = tops[r % 6], mag = mags[(r / 6) % 7];
        float amax = (float)(rng_unit(&seed) * mag);
        float sym[2] = {amax, top};
        uint16_t hs = mx_sym_cover_scale(amax, top);
        CHECK(hs == smallest_f16(sym_pass, sym), "sym amax=%a top=%g: got %04x", (double)amax, (double)top, hs);

        float lo = (float)(rng_gauss(&seed) * mag), hi = lo + (float)(rng_unit(&seed) * mag);
        float m = mx_f16_to_f32(mx_f16_round_down(lo));
        float asym[3] = {m, top, hi};
        uint16_t ha = mx_asym_cover_scale(m, top, hi);
        CHECK(ha == smallest_f16(asym_pass, asym), "asym m=%a hi=%a L=%g: got %04x", (double)m, (double)hi,
              (double)top, ha);
    }
    CHECK(mx_sym_cover_scale(0.0f, 127.0f) == 0, "zero amax");
    CHECK(mx_asym_cover_scale(1.0f, 15.0f, 1.0f) == 0, "m >= hi");
}

Test(scale_rules, fp8_rtn_scale_is_the_smallest_float_keeping_amax_in_range)
{
    static const float fmaxes[] = {448.0f, 57344.0f};
    uint64_t seed = 0xF8u;
    for (int r = 0; r < 20000; r++) {
        float fmax = fmaxes[r % 2];
        float amax = (float)(rng_unit(&seed) * ldexp(1.0, (int)rng_below(&seed, 60) - 40));
        float s = mx_fp8_rtn_scale(amax, fmax);
        float below = mx_bits_f32(mx_f32_bits(s) - 1u);
        CHECK(s > 0.0f && amax / s <= fmax, "amax=%a: s=%a does not keep amax in range", (double)amax, (double)s);
        CHECK(!(below > 0.0f && amax / below <= fmax), "amax=%a: s=%a not the smallest", (double)amax, (double)s);
    }
    CHECK(mx_fp8_rtn_scale(0.0f, 448.0f) == 0.0f, "zero amax");
}
