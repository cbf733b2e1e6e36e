/*
 * test_fp8.c - float -> OCP FP8 encoders and the fp8_e4m3 / fp8_e5m2 kernels
 * against independent references written differently from src/: decoders
 * from the bit fields with ldexp, a brute-force nearest-value encoder (scan
 * every finite code, ties to the even code), and a threshold walk over every
 * non-negative float.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel_fp8.h"
#include "common/half.h"
#include "test_rng.h"
#include "test_support.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SLOW_BUILD 1
#else
#define SLOW_BUILD 0
#endif
#define EXHAUSTIVE_STRIDE (SLOW_BUILD ? 61u : 1u) /* sanitizers are slow: every 61st float */
#define RANDOM_COUNT (SLOW_BUILD ? 300000 : 3000000)

static uint32_t fbits(float f) { return mx_f32_bits(f); }
static float bitsf(uint32_t u) { return mx_bits_f32(u); }

/* ---- independent references ---- */

typedef struct fmt {
    const char *name;
    uint8_t max_code;     /* largest finite magnitude code */
    double max;           /* its value */
    double next_virtual;  /* the value code max_code + 1 would have as a plain float (480, 2^16) */
    int has_inf;          /* E5M2: 0x7C is infinity */
    uint8_t nan_code;     /* the encoders' NaN (without sign) */
    uint8_t (*enc)(float);
    float (*dec)(uint8_t);
    double (*ref)(uint8_t);
    mx_quantize_row_fn quantize;
    mx_dequantize_row_fn dequantize;
} fmt;

static const fmt E4M3 = {"e4m3", 0x7E, 448.0, 480.0, 0, 0x7F, mx_f32_to_e4m3, mx_e4m3_to_f32,
                         ts_ref_e4m3, kernel_fp8_e4m3_quantize_row, kernel_fp8_e4m3_dequantize_row};
static const fmt E5M2 = {"e5m2", 0x7B, 57344.0, 65536.0, 1, 0x7E, mx_f32_to_e5m2, mx_e5m2_to_f32,
                         ts_ref_e5m2, kernel_fp8_e5m2_quantize_row, kernel_fp8_e5m2_dequantize_row};
static const fmt *const FMTS[2] = {&E4M3, &E5M2};

/*
 * Brute force: the finite code nearest to |f| by scanning every finite
 * magnitude code in double arithmetic, ties to the even code (= even
 * mantissa); beyond the largest finite value: saturate.  Infinity saturates
 * (E4M3) or stays infinity (E5M2); NaN gives the canonical NaN.  The sign
 * bit is copied (so -0 and negative values that round to 0 give 0x80).
 */
static uint8_t brute_encode(const fmt *F, float f)
{
    uint8_t sign = signbit(f) ? 0x80u : 0u;
    double x = fabs((double)f), bd = INFINITY;
    unsigned best = 0;
    if (isnan(f))
        return (uint8_t)(sign | F->nan_code);
    if (isinf(f))
        return (uint8_t)(sign | (F->has_inf ? 0x7Cu : F->max_code));
    if (x > F->max)
        return (uint8_t)(sign | F->max_code);
    for (unsigned c = 0; c <= F->max_code; c++) {
        double d = fabs(x - F->ref((uint8_t)c));
        if (d < bd || (d == bd && (c & 1u) == 0)) {
            bd = d;
            best = c;
        }
    }
    return (uint8_t)(sign | best);
}

static void check_enc(const fmt *F, float f, uint8_t want)
{
    uint8_t got = F->enc(f);
    CHECK(got == want, "%s: f=%a (%08x) got %02x want %02x", F->name, (double)f, fbits(f), got,
          want);
    CHECK(brute_encode(F, f) == want, "%s: brute force disagrees at %a: %02x", F->name, (double)f,
          brute_encode(F, f));
}

/* ---- encoders ---- */

/* Every code decodes and re-encodes to itself; E5M2 NaNs become the canonical 0x7E/0xFE. */
Test(fp8_encode, decode_encode_identity)
{
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        for (unsigned c = 0; c < 256; c++) {
            float v = F->dec((uint8_t)c);
            uint8_t want = (uint8_t)c;
            if (isnan(v))
                want = (uint8_t)((c & 0x80u) | F->nan_code);
            CHECK(F->enc(v) == want, "%s: code %02x -> %a -> %02x", F->name, c, (double)v,
                  F->enc(v));
        }
    }
    /* E4M3's only NaN pattern survives unchanged. */
    cr_assert_eq(mx_f32_to_e4m3(mx_e4m3_to_f32(0x7F)), 0x7F);
    cr_assert_eq(mx_f32_to_e4m3(mx_e4m3_to_f32(0xFF)), 0xFF);
    cr_assert_eq(mx_f32_to_e5m2(mx_e5m2_to_f32(0x7D)), 0x7E);
    cr_assert_eq(mx_f32_to_e5m2(mx_e5m2_to_f32(0xFF)), 0xFE);
}

/*
 * Every pair of neighbouring finite codes (both signs): the midpoint (exact in
 * binary32) rounds to the even code, the floats just above and below it to
 * the upper and lower code.  Past the largest value, its midpoint with the
 * virtual next value, that value and beyond saturate.
 */
Test(fp8_encode, midpoints)
{
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        for (unsigned sign = 0; sign <= 0x80u; sign += 0x80u) {
            double sg = sign ? -1.0 : 1.0;
            for (unsigned c = 0; c < F->max_code; c++) {
                uint8_t lo = (uint8_t)(sign | c), hi = (uint8_t)(sign | (c + 1));
                double a = fabs(F->ref(lo)), b = fabs(F->ref(hi));
                float mid = (float)(sg * (a + b) / 2);
                CHECK((double)mid == sg * (a + b) / 2, "midpoint not exact");
                check_enc(F, mid, (c & 1u) ? hi : lo);
                check_enc(F, nextafterf(mid, sign ? -INFINITY : INFINITY), hi);
                check_enc(F, nextafterf(mid, 0.0f), lo);
                /* The values themselves and their float neighbours. */
                check_enc(F, (float)(sg * b), hi);
                check_enc(F, nextafterf((float)(sg * b), 0.0f), hi);
                check_enc(F, nextafterf((float)(sg * b), sign ? -INFINITY : INFINITY), hi);
            }
            uint8_t top = (uint8_t)(sign | F->max_code);
            float vmax = (float)(sg * F->max), vnext = (float)(sg * F->next_virtual);
            float mid = (float)(sg * (F->max + F->next_virtual) / 2);
            check_enc(F, vmax, top);
            check_enc(F, nextafterf(vmax, sign ? -INFINITY : INFINITY), top);
            check_enc(F, nextafterf(mid, 0.0f), top);
            check_enc(F, mid, top);
            check_enc(F, nextafterf(mid, sign ? -INFINITY : INFINITY), top);
            check_enc(F, vnext, top);
            check_enc(F, (float)(sg * 2 * F->max), top);
            check_enc(F, (float)(sg * 65504.0), top);
            check_enc(F, (float)(sg * 1e30), top);
            check_enc(F, (float)sg * FLT_MAX, top);
        }
    }
}

Test(fp8_encode, e4m3_specials)
{
    const fmt *F = &E4M3;
    check_enc(F, 0.0f, 0x00);
    check_enc(F, -0.0f, 0x80);
    check_enc(F, INFINITY, 0x7E); /* no infinity: saturate */
    check_enc(F, -INFINITY, 0xFE);
    check_enc(F, 448.0f, 0x7E);
    check_enc(F, 464.0f, 0x7E); /* tie 448 / 480: even = 448 */
    check_enc(F, 464.00003f, 0x7E); /* nearest is 480 (0x7F, the NaN pattern): saturates */
    check_enc(F, 449.0f, 0x7E);
    check_enc(F, 480.0f, 0x7E);
    check_enc(F, -1000.0f, 0xFE);
    check_enc(F, 432.0f, 0x7E);    /* tie 416 (odd mantissa) / 448: even */
    check_enc(F, 431.99997f, 0x7D);
    check_enc(F, 1.0f, 0x38);
    check_enc(F, -2.0f, 0xC0);
    check_enc(F, 0.0625f, 0x18);
    check_enc(F, 1.0625f, 0x38);  /* tie 1 / 1.125: even */
    check_enc(F, 1.1875f, 0x3A);  /* tie 1.125 / 1.25: even */
    /* Subnormals (units of 2^-9) and underflow. */
    check_enc(F, 0x1p-9f, 0x01);
    check_enc(F, 0x1p-10f, 0x00); /* half the smallest: tie -> 0 */
    check_enc(F, -0x1p-10f, 0x80);
    check_enc(F, nextafterf(0x1p-10f, 1.0f), 0x01);
    check_enc(F, 0x1.8p-9f, 0x02); /* 1.5 units: tie -> 2 */
    check_enc(F, 0x1.4p-8f, 0x02); /* 2.5 units: tie -> 2 */
    check_enc(F, 0x1.cp-8f, 0x04); /* 3.5 units: tie -> 4 */
    check_enc(F, 0x1.ep-7f, 0x08); /* 7.5 units: tie 7 / 8 (smallest normal 2^-6): even */
    check_enc(F, nextafterf(0x1.ep-7f, 0.0f), 0x07);
    check_enc(F, 0x1p-6f, 0x08);
    check_enc(F, 0x1.cp-7f, 0x07);
    check_enc(F, 1e-30f, 0x00);
    check_enc(F, -1e-30f, 0x80);
    check_enc(F, bitsf(1u), 0x00); /* float subnormals */
    check_enc(F, bitsf(0x807FFFFFu), 0x80);
    check_enc(F, FLT_MIN, 0x00);
    /* NaN: the only E4M3 NaN with the input's sign, whatever the payload. */
    uint32_t nans[] = {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FBFFFFFu,
                       0x7FFFFFFFu, 0xFFFFFFFFu, 0x7FA55555u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
        check_enc(F, bitsf(nans[i]), (uint8_t)(((nans[i] >> 24) & 0x80u) | 0x7Fu));
}

Test(fp8_encode, e5m2_specials)
{
    const fmt *F = &E5M2;
    check_enc(F, 0.0f, 0x00);
    check_enc(F, -0.0f, 0x80);
    check_enc(F, INFINITY, 0x7C);
    check_enc(F, -INFINITY, 0xFC);
    check_enc(F, 57344.0f, 0x7B);
    check_enc(F, 59392.0f, 0x7B);
    check_enc(F, 61439.996f, 0x7B);
    check_enc(F, 61440.0f, 0x7B); /* tie 57344 / 2^16: IEEE would round to infinity; saturates */
    check_enc(F, 61440.004f, 0x7B);
    check_enc(F, 65504.0f, 0x7B);
    check_enc(F, 65536.0f, 0x7B);
    check_enc(F, -1e10f, 0xFB);
    check_enc(F, 53248.0f, 0x7A); /* tie 49152 (0x7A, even) / 57344 (0x7B) */
    check_enc(F, 1.0f, 0x3C);
    check_enc(F, -2.0f, 0xC0);
    check_enc(F, 1.125f, 0x3C);   /* tie 1 / 1.25: even */
    check_enc(F, 1.375f, 0x3E);   /* tie 1.25 / 1.5: even */
    check_enc(F, 0x1p-16f, 0x01);
    check_enc(F, 0x1p-17f, 0x00);
    check_enc(F, -0x1p-17f, 0x80);
    check_enc(F, nextafterf(0x1p-17f, 1.0f), 0x01);
    check_enc(F, 0x1.8p-16f, 0x02);
    check_enc(F, 0x1.cp-15f, 0x04); /* 3.5 units: tie 3 / 4 (smallest normal 2^-14): even */
    check_enc(F, 0x1p-14f, 0x04);
    check_enc(F, 1e-30f, 0x00);
    check_enc(F, bitsf(0x80000001u), 0x80);
    uint32_t nans[] = {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FBFFFFFu,
                       0x7FFFFFFFu, 0xFFFFFFFFu, 0x7FA55555u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
        check_enc(F, bitsf(nans[i]), (uint8_t)(((nans[i] >> 24) & 0x80u) | 0x7Eu));
}

/*
 * E5M2 is the top byte of an f16, so for an exact f16 input (below the
 * saturation threshold) round-to-nearest-even is integer rounding of the f16
 * bits at bit 8 - a third, independent reference, over every f16 value.
 */
Test(fp8_encode, e5m2_vs_f16_bits)
{
    for (uint32_t h = 0; h < 0x10000u; h++) {
        uint32_t mag = h & 0x7FFFu;
        if (mag >= 0x7B00u) /* >= 57344: saturation / inf / NaN, covered elsewhere */
            continue;
        float v = mx_f16_to_f32((uint16_t)h);
        uint8_t want = (uint8_t)(((h >> 8) & 0x80u) | ((mag + 0x7Fu + ((mag >> 8) & 1u)) >> 8));
        CHECK(mx_f32_to_e5m2(v) == want, "f16 %04x (%a) got %02x want %02x", h, (double)v,
              mx_f32_to_e5m2(v), want);
    }
}

/*
 * Every non-negative finite float in increasing order (every 61st under
 * sanitizers) against a threshold walk: the expected code c advances while
 * the value is past the decision point between c and c + 1 (the midpoint,
 * which belongs to the even code); past the largest finite value nothing
 * changes (saturation).  The negative twin must give the same code with the
 * sign bit.  Infinity and NaN are checked after the loop.
 */
static void walk_all_floats(const fmt *F)
{
    unsigned c = 0;
    double mid = (F->ref(0) + F->ref(1)) / 2;
    for (uint64_t u = 0; u < 0x7F800000u; u += EXHAUSTIVE_STRIDE) {
        float f = bitsf((uint32_t)u);
        double x = (double)f;
        while (c < F->max_code && (x > mid || (x == mid && ((c + 1) & 1u) == 0))) {
            c++;
            mid = c < F->max_code ? (F->ref((uint8_t)c) + F->ref((uint8_t)(c + 1))) / 2 : INFINITY;
        }
        uint8_t got = F->enc(f), gneg = F->enc(-f);
        if (got != c || gneg != (0x80u | c))
            cr_assert_fail("%s: u=%08x (%a) got %02x / -: %02x want %02x", F->name, (unsigned)u,
                           x, got, gneg, c);
    }
    cr_assert_eq(c, F->max_code);
    cr_assert_eq(F->enc(INFINITY), F->has_inf ? 0x7C : F->max_code);
    for (uint64_t u = 0x7F800001u; u <= 0x7FFFFFFFu; u += 4099u * EXHAUSTIVE_STRIDE) {
        cr_assert_eq(F->enc(bitsf((uint32_t)u)), F->nan_code);
        cr_assert_eq(F->enc(bitsf((uint32_t)u | 0x80000000u)), 0x80u | F->nan_code);
    }
}

Test(fp8_encode, e4m3_every_float, .timeout = 280) { walk_all_floats(&E4M3); }
Test(fp8_encode, e5m2_every_float, .timeout = 280) { walk_all_floats(&E5M2); }

/* Random floats (all bit patterns, patterns near the fp8 range, exact ties) against brute force. */
Test(fp8_encode, random_vs_brute_force, .timeout = 280)
{
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        uint64_t seed = 4242 + (uint64_t)k;
        for (int i = 0; i < RANDOM_COUNT; i++) {
            uint64_t r = rng_next(&seed);
            uint32_t u = (uint32_t)r;
            float f;
            switch (i % 4) {
            case 0: /* any pattern */
                f = bitsf(u);
                break;
            case 1: /* exponent in 2^-20 .. 2^17 */
                f = bitsf((u & 0x807FFFFFu) | (uint32_t)((107u + (r >> 40) % 38u) << 23));
                break;
            case 2: { /* an exact midpoint between random neighbouring codes, or a float next to it */
                unsigned c = (unsigned)((r >> 32) % F->max_code);
                double m = (F->ref((uint8_t)c) + F->ref((uint8_t)(c + 1))) / 2;
                f = (float)m;
                if ((r >> 50) % 3 == 1)
                    f = nextafterf(f, INFINITY);
                else if ((r >> 50) % 3 == 2)
                    f = nextafterf(f, 0.0f);
                if (u & 1u)
                    f = -f;
                break;
            }
            default: /* few significant bits: many exact values and ties */
                f = bitsf((u & 0x80000000u) | (u & 0x00700000u) |
                          (uint32_t)((100u + (r >> 40) % 50u) << 23));
                break;
            }
            uint8_t got = F->enc(f), want = brute_encode(F, f);
            CHECK(got == want, "%s: u=%08x (%a) got %02x want %02x", F->name, fbits(f), (double)f,
                  got, want);
        }
    }
}

/* ---- kernels ---- */

/* Quantizes and dequantizes one row into caller buffers (exact sizes, so ASan sees overruns). */
static void run_row(const fmt *F, const float *x, size_t n, unsigned group, const mx_qparams *p,
                    uint8_t *codes, uint8_t *scales, float *out)
{
    mx_rowptrs o = {{NULL}};
    mx_crowptrs in = {{NULL}};
    o.sec[MIXQ_SEC_CODES] = codes;
    o.sec[MIXQ_SEC_SCALES] = scales;
    F->quantize(x, n, group, p, o);
    in.sec[MIXQ_SEC_CODES] = codes;
    in.sec[MIXQ_SEC_SCALES] = scales;
    F->dequantize(in, n, group, out);
}

static float ld_scale(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return bitsf(v);
}

static float div_f(float a, float b)
{
    volatile float q = a / b; /* one binary32 division */
    return q;
}

/*
 * s is the RTN scale of amax: +0 for amax 0, else the smallest float s >=
 * max(fl(amax / FMAX), smallest subnormal) with fl(amax / s) <= FMAX.
 */
static void check_rtn_scale(const fmt *F, float amax, float s)
{
    float fmax = (float)F->max;
    if (amax == 0.0f) {
        CHECK(fbits(s) == 0, "%s: zero group scale %a", F->name, (double)s);
        return;
    }
    float s0 = div_f(amax, fmax);
    if (s0 == 0.0f)
        s0 = bitsf(1u);
    CHECK(s >= s0 && div_f(amax, s) <= fmax, "%s: amax %a scale %a", F->name, (double)amax,
          (double)s);
    CHECK(s == s0 || div_f(amax, bitsf(fbits(s) - 1u)) > fmax, "%s: amax %a scale %a not minimal",
          F->name, (double)amax, (double)s);
}

/*
 * Per element: code = brute-force encoding of fl(x / s), x^ = fl(ref(code) * s)
 * (the double product is exact, so one rounding to float), and |x - x^| <=
 * s * (half the fp8 gap around fl(x / s)) + binary32 rounding of the
 * division and of the product.
 */
static void check_elements(const fmt *F, const float *x, size_t len, float s, const uint8_t *codes,
                           const float *out)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t want = s > 0.0f ? brute_encode(F, div_f(x[i], s)) : 0u;
        CHECK(codes[i] == want, "%s: x=%a s=%a code %02x want %02x", F->name, (double)x[i],
              (double)s, codes[i], want);
        float xh = (float)(F->ref(codes[i]) * (double)s);
        CHECK(fbits(out[i]) == fbits(xh), "%s: dequant %a want %a", F->name, (double)out[i],
              (double)xh);
        if (s > 0.0f) {
            double t = fabs((double)div_f(x[i], s)), lo = 0.0, hi = F->max;
            for (unsigned c = 0; c <= F->max_code; c++) {
                double v = F->ref((uint8_t)c);
                if (v <= t && v > lo)
                    lo = v;
                if (v >= t && v < hi)
                    hi = v;
            }
            double bound = (double)s * (hi - lo) / 2 + 0x1p-23 * (fabs(x[i]) + fabs(xh)) + 0x1p-149;
            CHECK(fabs((double)x[i] - (double)out[i]) <= bound, "%s: x=%a x^=%a s=%a err > %g",
                  F->name, (double)x[i], (double)out[i], (double)s, bound);
        }
    }
}

static float group_amax(const float *x, size_t len)
{
    float m = 0.0f;
    for (size_t i = 0; i < len; i++)
        m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* Fills x with one of several test distributions. */
static void fill(float *x, size_t n, int dist, uint64_t *seed)
{
    for (size_t i = 0; i < n; i++) {
        double v = rng_gauss(seed);
        switch (dist % 8) {
        case 0: v *= 0.02; break;
        case 1: v *= 300.0; break;                                   /* beyond E4M3 range */
        case 2: v = (rng_unit(seed) < 0.02 ? 50.0 : 0.01) * v; break; /* outliers */
        case 3: v = ldexp(v, -60); break;                             /* tiny */
        case 4: v = (rng_unit(seed) - 0.5) * 131000.0; break;         /* up to ~65500 */
        case 5: v = rng_unit(seed) < 0.5 ? 0.0 : v; break;            /* many zeros */
        case 6: v = ldexp(v, -135); break;                            /* float subnormals */
        default: v = (rng_unit(seed) < 0.5 ? -1.0 : 1.0) * exp(rng_gauss(seed) * 4.0); break;
        }
        if (v > 65504.0) v = 65504.0;
        if (v < -65504.0) v = -65504.0;
        x[i] = (float)v;
    }
}

/* Hand-checked bytes: E4M3, two groups whose RTN scales are powers of two. */
Test(fp8_kernel, e4m3_exact_bytes)
{
    const float x[7] = {7.0f, -3.5f, 0.1f, 1.0f, 0.0703125f, 0.06640625f, -0.875f};
    /* group 0: amax 7, s = 7/448 = 2^-6, x/s = 448, -224, 6.4000001, 64, 4.5, 4.25 (tie -> 4);
     * group 1: amax 0.875, s = 2^-9, x/s = -448. */
    const uint8_t want_codes[7] = {0x7E, 0xF6, 0x4D, 0x68, 0x49, 0x48, 0xFE};
    const uint8_t want_scales[8] = {0x00, 0x00, 0x80, 0x3C, 0x00, 0x00, 0x00, 0x3B};
    const float want_out[7] = {7.0f, -3.5f, 0.1015625f, 1.0f, 0.0703125f, 0.0625f, -0.875f};
    uint8_t codes[7], scales[8];
    float out[7];
    run_row(&E4M3, x, 7, 6, NULL, codes, scales, out);
    cr_assert_arr_eq(codes, want_codes, 7);
    cr_assert_arr_eq(scales, want_scales, 8);
    for (int i = 0; i < 7; i++)
        cr_assert_eq(fbits(out[i]), fbits(want_out[i]), "element %d: %a", i, (double)out[i]);
}

/* Hand-checked bytes: E5M2, one group per row (group 0 = n), s = 7/57344 = 2^-13. */
Test(fp8_kernel, e5m2_exact_bytes)
{
    const float x[5] = {7.0f, -1.0f, 0.1f, 5 * 0x1p-13f, 4.5f * 0x1p-13f};
    /* x/s = 57344, -8192, 819.2 (-> 768), 5, 4.5 (tie -> 4). */
    const uint8_t want_codes[5] = {0x7B, 0xF0, 0x62, 0x45, 0x44};
    const uint8_t want_scales[4] = {0x00, 0x00, 0x00, 0x39};
    const float want_out[5] = {7.0f, -1.0f, 0.09375f, 5 * 0x1p-13f, 4 * 0x1p-13f};
    uint8_t codes[5], scales[4];
    float out[5];
    run_row(&E5M2, x, 5, 0, NULL, codes, scales, out);
    cr_assert_arr_eq(codes, want_codes, 5);
    cr_assert_arr_eq(scales, want_scales, 4);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(fbits(out[i]), fbits(want_out[i]), "element %d: %a", i, (double)out[i]);
}

/* RTN round trip over many distributions, row lengths and group sizes (partial last groups). */
Test(fp8_kernel, rtn_round_trip, .timeout = 280)
{
    const size_t ns[] = {1, 2, 5, 8, 31, 64, 100, 257};
    const unsigned groups[] = {0, 1, 2, 3, 7, 8, 16, 32, 64, 128};
    uint64_t seed = 7;
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
            for (size_t b = 0; b < sizeof groups / sizeof groups[0]; b++) {
                for (int dist = 0; dist < 8; dist++) {
                    size_t n = ns[a];
                    size_t g = groups[b] ? groups[b] : n;
                    size_t ng = (n + g - 1) / g;
                    float *x = malloc(n * sizeof *x), *out = malloc(n * sizeof *out);
                    uint8_t *codes = malloc(n), *scales = malloc(4 * ng);
                    mx_qparams per_group = {NULL, false, -1.0f, NULL};
                    cr_assert(x && out && codes && scales);
                    fill(x, n, dist, &seed);
                    run_row(F, x, n, groups[b], dist & 1 ? &per_group : NULL, codes, scales, out);
                    for (size_t j = 0; j < ng; j++) {
                        size_t st = j * g, len = n - st < g ? n - st : g;
                        float s = ld_scale(scales + 4 * j);
                        check_rtn_scale(F, group_amax(x + st, len), s);
                        check_elements(F, x + st, len, s, codes + st, out + st);
                    }
                    free(x);
                    free(out);
                    free(codes);
                    free(scales);
                }
            }
        }
    }
}

/* An all-zero group (zeros of both signs): scale +0, codes 0x00, output +0; other groups unaffected. */
Test(fp8_kernel, zero_groups)
{
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        const float x[10] = {0.0f, -0.0f, 0.0f, -0.0f, 1.0f, -2.0f, 3.0f, 0.25f, -0.0f, 0.0f};
        uint8_t codes[10], scales[12];
        float out[10];
        mx_qparams srch = {NULL, true, -1.0f, NULL};
        for (int pass = 0; pass < 2; pass++) {
            memset(codes, 0xAA, sizeof codes);
            memset(scales, 0xAA, sizeof scales);
            run_row(F, x, 10, 4, pass ? &srch : NULL, codes, scales, out);
            for (int i = 0; i < 4; i++)
                cr_assert(codes[i] == 0 && fbits(out[i]) == 0, "%s: element %d", F->name, i);
            cr_assert(codes[8] == 0 && codes[9] == 0 && fbits(out[8]) == 0 && fbits(out[9]) == 0);
            cr_assert_eq(fbits(ld_scale(scales)), 0u);
            cr_assert_eq(fbits(ld_scale(scales + 8)), 0u);
            cr_assert(ld_scale(scales + 4) > 0.0f);
        }
        /* -0 with a non-zero scale keeps its sign. */
        const float y[2] = {-0.0f, 1.0f};
        uint8_t c2[2], s2[4];
        float o2[2];
        run_row(F, y, 2, 2, NULL, c2, s2, o2);
        cr_assert_eq(c2[0], 0x80);
        cr_assert(o2[0] == 0.0f && signbit(o2[0]));
    }
}

/*
 * Per-tensor mode (tensor_absmax >= 0): every row writes the same single
 * scale (the RTN scale of the tensor's max), search or not; dequantizing
 * with group = n reads it back.  A negative or NaN tensor_absmax is per-group
 * mode, exactly like p == NULL.
 */
Test(fp8_kernel, per_tensor)
{
    enum { R = 6, K = 37 };
    uint64_t seed = 99;
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        float x[R][K], out[R][K];
        uint8_t codes[R][K], codes2[R][K], scale[4], scale2[4];
        fill(&x[0][0], R * K, k ? 4 : 2, &seed);
        for (int c = 0; c < K; c++)
            x[3][c] = 0.0f; /* an all-zero row still uses the tensor scale */
        float amax = group_amax(&x[0][0], R * K);
        mx_qparams pt = {NULL, false, amax, NULL}, pts = {NULL, true, amax, NULL};
        for (int r = 0; r < R; r++) {
            run_row(F, x[r], K, K, &pt, codes[r], scale, out[r]);
            run_row(F, x[r], K, K, &pts, codes2[r], scale2, out[r]);
        }
        float s = ld_scale(scale);
        check_rtn_scale(F, amax, s);
        cr_assert_arr_eq(scale, scale2, 4);
        cr_assert_arr_eq(codes, codes2, sizeof codes);
        for (int r = 0; r < R; r++)
            check_elements(F, x[r], K, s, codes[r], out[r]);

        /* A zero tensor: scale +0 and zero codes. */
        float z[K] = {0};
        mx_qparams pz = {NULL, false, 0.0f, NULL};
        run_row(F, z, K, K, &pz, codes[0], scale, out[0]);
        cr_assert_eq(fbits(ld_scale(scale)), 0u);
        for (int c = 0; c < K; c++)
            cr_assert(codes[0][c] == 0 && fbits(out[0][c]) == 0);

        /* Per-group conventions: NULL, -1, any negative value, NaN give identical bytes. */
        float neg[3] = {-1.0f, -0.5f, NAN};
        uint8_t cn[K], sn[4 * 5], cr_[K], sr[4 * 5];
        float on[K];
        run_row(F, x[0], K, 8, NULL, cr_, sr, on);
        for (int i = 0; i < 3; i++) {
            mx_qparams pg = {NULL, false, neg[i], NULL};
            run_row(F, x[0], K, 8, &pg, cn, sn, on);
            cr_assert_arr_eq(cn, cr_, K);
            cr_assert_arr_eq(sn, sr, sizeof sr);
        }
    }
}

/* A group split equals quantizing each group as its own row. */
Test(fp8_kernel, groups_are_independent)
{
    uint64_t seed = 5;
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        float x[10], out[10], o1[4];
        uint8_t codes[10], scales[12], c1[4], s1[4];
        fill(x, 10, 7, &seed);
        run_row(F, x, 10, 4, NULL, codes, scales, out);
        for (int j = 0; j < 3; j++) {
            size_t len = j < 2 ? 4 : 2;
            run_row(F, x + 4 * j, len, (unsigned)len, NULL, c1, s1, o1);
            cr_assert_arr_eq(c1, codes + 4 * j, len);
            cr_assert_arr_eq(s1, scales + 4 * j, 4);
            for (size_t i = 0; i < len; i++)
                cr_assert_eq(fbits(o1[i]), fbits(out[4 * j + i]));
        }
    }
}

/* Every code dequantizes to its value times the scale (NaN and Inf codes included). */
Test(fp8_kernel, dequantize_all_codes)
{
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        uint8_t codes[256], scales[4];
        float out[256];
        mx_crowptrs in = {{NULL}};
        for (int i = 0; i < 256; i++)
            codes[i] = (uint8_t)i;
        mx_fp8_st_f32le(scales, 0.75f);
        in.sec[MIXQ_SEC_CODES] = codes;
        in.sec[MIXQ_SEC_SCALES] = scales;
        F->dequantize(in, 256, 256, out);
        for (int i = 0; i < 256; i++) {
            double want = F->ref((uint8_t)i) * 0.75;
            if (isnan(want))
                cr_assert(isnan(out[i]), "%s: code %02x", F->name, i);
            else
                cr_assert((double)out[i] == want && !signbit(out[i]) == !signbit(want),
                          "%s: code %02x -> %a", F->name, i, (double)out[i]);
        }
    }
}

/*
 * The search as fp8.h specifies it, written out independently: candidates
 * s_k = fl(s_0 * 2^(k/16)), errors summed in binary32 into 8 partial sums by
 * index mod 8 and combined ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7)); the first
 * strictly smallest wins.
 */
static float spec_search_scale(const fmt *F, const float *x, const float *w, size_t len, float s0)
{
    float best_s = s0, best = INFINITY;
    if (s0 == 0.0f)
        return s0;
    for (int k = 0; k < 16; k++) {
        volatile float mult = (float)exp2(k / 16.0);
        float s = s0 * mult;
        float acc[8] = {0};
        for (size_t i = 0; i < len; i++) {
            float q = div_f(x[i], s);
            float xh = (float)(F->ref(brute_encode(F, q)) * (double)s);
            volatile float d = x[i] - xh;
            volatile float e = d * d;
            if (w)
                e = w[i] * e;
            acc[i % 8] = acc[i % 8] + e;
        }
        volatile float t0 = acc[0] + acc[4], t1 = acc[2] + acc[6], t2 = acc[1] + acc[5],
                       t3 = acc[3] + acc[7];
        volatile float u0 = t0 + t1, u1 = t2 + t3;
        float err = u0 + u1;
        if (k == 0 || err < best) {
            best = err;
            best_s = s;
        }
    }
    return best_s;
}

static double weighted_sse(const float *x, const float *y, const float *w, size_t len)
{
    double e = 0.0;
    for (size_t i = 0; i < len; i++) {
        double d = (double)x[i] - (double)y[i];
        e += (w ? (double)w[i] : 1.0) * d * d;
    }
    return e;
}

/*
 * Search: the chosen scale is the one of the specification above (bit for
 * bit), the codes follow it, it is never worse than RTN (by the binary32
 * measure exactly; in double within rounding), and on typical data it is
 * clearly better overall.
 */
Test(fp8_kernel, search, .timeout = 280)
{
    const size_t n = 200;
    const unsigned groups[] = {0, 1, 5, 8, 32, 64, 128};
    uint64_t seed = 31337;
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        double tot_rtn = 0.0, tot_srch = 0.0;
        for (size_t b = 0; b < sizeof groups / sizeof groups[0]; b++) {
            for (int dist = 0; dist < 8; dist++) {
                for (int imp = 0; imp < 2; imp++) {
                    size_t g = groups[b] ? groups[b] : n, ng = (n + g - 1) / g;
                    float x[200], w[200], o_rtn[200], o_s[200];
                    uint8_t c_rtn[200], c_s[200], s_rtn[4 * 200], s_s[4 * 200];
                    fill(x, n, dist, &seed);
                    for (size_t i = 0; i < n; i++)
                        w[i] = rng_unit(&seed) < 0.1 ? 0.0f : (float)(rng_unit(&seed) * 4.0);
                    const float *wp = imp ? w : NULL;
                    mx_qparams prtn = {wp, false, -1.0f, NULL}, ps = {wp, true, -1.0f, NULL};
                    run_row(F, x, n, groups[b], &prtn, c_rtn, s_rtn, o_rtn);
                    run_row(F, x, n, groups[b], &ps, c_s, s_s, o_s);
                    for (size_t j = 0; j < ng; j++) {
                        size_t st = j * g, len = n - st < g ? n - st : g;
                        float s0 = ld_scale(s_rtn + 4 * j), s = ld_scale(s_s + 4 * j);
                        float want = spec_search_scale(F, x + st, wp ? wp + st : NULL, len, s0);
                        CHECK(fbits(s) == fbits(want), "%s: g=%zu dist %d group %zu: scale %a want %a",
                              F->name, g, dist, j, (double)s, (double)want);
                        check_elements(F, x + st, len, s, c_s + st, o_s + st);
                        double er = weighted_sse(x + st, o_rtn + st, wp ? wp + st : NULL, len);
                        double es = weighted_sse(x + st, o_s + st, wp ? wp + st : NULL, len);
                        CHECK(es <= er * (1.0 + 1e-5) + 1e-300, "%s: search %g > rtn %g", F->name, es,
                              er);
                        if (dist == 0 || dist == 7) {
                            tot_rtn += er;
                            tot_srch += es;
                        }
                    }
                }
            }
        }
        cr_assert(tot_srch < 0.9 * tot_rtn, "%s: search %g rtn %g", F->name, tot_srch, tot_rtn);
    }
}

/* Importance concentrated on one element: the search reconstructs that element at least as well. */
Test(fp8_kernel, search_importance_single)
{
    uint64_t seed = 77;
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        for (int t = 0; t < 200; t++) {
            float x[32], w[32] = {0}, o0[32], o1[32];
            uint8_t c0[32], c1[32], s0[4], s1[4];
            fill(x, 32, 0, &seed);
            size_t hot = (size_t)(rng_next(&seed) % 32);
            w[hot] = 1.0f;
            mx_qparams p0 = {w, false, -1.0f, NULL}, p1 = {w, true, -1.0f, NULL};
            run_row(F, x, 32, 32, &p0, c0, s0, o0);
            run_row(F, x, 32, 32, &p1, c1, s1, o1);
            cr_assert(fabsf(x[hot] - o1[hot]) <= fabsf(x[hot] - o0[hot]));
        }
    }
}

/* Extremes of the input contract: |x| = 65504, tiny amax with a subnormal scale, n = 0. */
Test(fp8_kernel, extremes)
{
    for (int k = 0; k < 2; k++) {
        const fmt *F = FMTS[k];
        const float big[4] = {65504.0f, -65504.0f, 1.0f, -0.001f};
        const float tiny[4] = {bitsf(300u), -bitsf(7u), bitsf(1u), 0.0f}; /* float subnormals */
        const float small[3] = {1e-37f, -3e-38f, 5e-39f};
        uint8_t codes[4], scales[4];
        float out[4];
        for (int srch = 0; srch < 2; srch++) {
            mx_qparams p = {NULL, srch != 0, -1.0f, NULL};
            run_row(F, big, 4, 4, &p, codes, scales, out);
            if (!srch)
                check_rtn_scale(F, 65504.0f, ld_scale(scales));
            check_elements(F, big, 4, ld_scale(scales), codes, out);
            run_row(F, tiny, 4, 4, &p, codes, scales, out);
            if (!srch)
                check_rtn_scale(F, bitsf(300u), ld_scale(scales));
            check_elements(F, tiny, 4, ld_scale(scales), codes, out);
            run_row(F, small, 3, 3, &p, codes, scales, out);
            if (!srch)
                check_rtn_scale(F, 1e-37f, ld_scale(scales));
            check_elements(F, small, 3, ld_scale(scales), codes, out);
            for (int i = 0; i < 4; i++)
                cr_assert(isfinite(out[i]));
        }
        /* n = 0: nothing is read or written (NULL sections allowed). */
        mx_rowptrs o = {{NULL}};
        mx_crowptrs in = {{NULL}};
        mx_qparams pt = {NULL, false, 1.0f, NULL};
        F->quantize(NULL, 0, 32, NULL, o);
        F->quantize(NULL, 0, 32, &pt, o);
        F->dequantize(in, 0, 32, NULL);
    }
}
