/*
 * test_half.c - f16 / bf16 / fp8 conversions against independent references:
 * GCC's _Float16 (libgcc soft-float), F16C instructions when the CPU has
 * them, and values computed with ldexp from the bit fields.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"
#include "kernels/kernels.h"
#include "test_rng.h"
#include "test_support.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_F16C_TEST 1
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
static int have_f16c(void) { return __builtin_cpu_supports("f16c"); }
#endif

#if defined(__FLT16_MAX__)
#define HAVE_FLOAT16 1
static float sw_f16_to_f32(uint16_t h)
{
    _Float16 v;
    memcpy(&v, &h, 2);
    return (float)v;
}
static uint16_t sw_f32_to_f16(float f)
{
    volatile float vf = f; /* keep the conversion at run time */
    _Float16 v = (_Float16)vf;
    uint16_t h;
    memcpy(&h, &v, 2);
    return h;
}
#endif

#if defined(__SANITIZE_ADDRESS__)
#define EXHAUSTIVE_STRIDE 17u /* sanitizers are slow: every 17th pattern */
#else
#define EXHAUSTIVE_STRIDE 1u
#endif

static uint32_t fbits(float f) { return mx_f32_bits(f); }
static float bitsf(uint32_t u) { return mx_bits_f32(u); }

/* ---- independent references from the bit fields ---- */

static int f16_is_nan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }

static double ref_f16(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -24);
    else
        v = ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static double ref_bf16(uint16_t h)
{
    int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v;
    if (e == 255)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -133); /* m * 2^-7 * 2^-126 */
    else
        v = ldexp(128 + m, e - 134);
    return s ? -v : v;
}

/* Expected f16 NaN from a float NaN: sign, top 10 payload bits, quiet bit set. */
static uint16_t nan_f32_to_f16(uint32_t u)
{
    return (uint16_t)(((u >> 16) & 0x8000u) | 0x7E00u | ((u >> 13) & 0x3FFu));
}

/* Compares a result with an expected double (NaN matches NaN; zero signs must agree). */
static int same_value(float got, double want)
{
    if (isnan(want))
        return isnan(got);
    return (double)got == want && !signbit(got) == !signbit(want);
}

/* ---- f16 -> f32 ---- */

Test(half, f16_to_f32_exhaustive_vs_fields)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float got = mx_f16_to_f32((uint16_t)h);
        CHECK(same_value(got, ref_f16((uint16_t)h)), "h=%04x got %a", h, (double)got);
        if (f16_is_nan((uint16_t)h)) {
            uint32_t want = ((h & 0x8000u) << 16) | 0x7FC00000u | ((h & 0x3FFu) << 13);
            CHECK(fbits(got) == want, "NaN h=%04x got %08x want %08x", h, fbits(got), want);
        }
    }
}

#ifdef HAVE_FLOAT16
Test(half, f16_to_f32_exhaustive_vs_float16)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t got = fbits(mx_f16_to_f32((uint16_t)h));
        uint32_t want = fbits(sw_f16_to_f32((uint16_t)h));
        CHECK(got == want, "h=%04x got %08x _Float16 %08x", h, got, want);
    }
}
#endif

#ifdef HAVE_F16C_TEST
Test(half, f16_to_f32_exhaustive_vs_f16c)
{
    if (!have_f16c())
        cr_skip_test("no F16C");
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t got = fbits(mx_f16_to_f32((uint16_t)h));
        uint32_t want = fbits(hw_f16_to_f32((uint16_t)h));
        CHECK(got == want, "h=%04x got %08x f16c %08x", h, got, want);
    }
}
#endif

/* ---- f32 -> f16 ---- */

Test(half, f32_to_f16_every_f16_value)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t got = mx_f32_to_f16(mx_f16_to_f32((uint16_t)h));
        uint16_t want = f16_is_nan((uint16_t)h) ? (uint16_t)(h | 0x0200u) : (uint16_t)h;
        CHECK(got == want, "h=%04x got %04x want %04x", h, got, want);
    }
}

/* Checks one input against the expected f16 and against the references. */
static void check_to_f16(float f, uint16_t want)
{
    uint16_t got = mx_f32_to_f16(f);
    CHECK(got == want, "f=%a (%08x) got %04x want %04x", (double)f, fbits(f), got, want);
#ifdef HAVE_FLOAT16
    CHECK(sw_f32_to_f16(f) == want, "reference disagrees at %a", (double)f);
#endif
}

/*
 * Every pair of neighbouring finite f16 values (and 65504 with its virtual
 * neighbour 65536): the midpoint (exact in binary32) rounds to the even one,
 * the floats just above and just below it round to the upper and lower one.
 */
Test(half, f32_to_f16_midpoints)
{
    for (uint32_t sign = 0; sign <= 0x8000u; sign += 0x8000u) {
        for (uint32_t h = 0; h < 0x7C00u; h++) {
            uint16_t lo = (uint16_t)(sign | h), hi = (uint16_t)(sign | (h + 1));
            double a = ref_f16(lo), b = h + 1 == 0x7C00u ? (sign ? -65536.0 : 65536.0)
                                                        : ref_f16(hi);
            float mid = (float)((a + b) / 2);
            CHECK((double)mid == (a + b) / 2, "midpoint not exact at %04x", h);
            check_to_f16(mid, (h & 1u) ? hi : lo);
            check_to_f16(nextafterf(mid, sign ? -INFINITY : INFINITY), hi);
            check_to_f16(nextafterf(mid, 0.0f), lo);
        }
    }
}

Test(half, f32_to_f16_specials)
{
    check_to_f16(0.0f, 0x0000);
    check_to_f16(-0.0f, 0x8000);
    check_to_f16(INFINITY, 0x7C00);
    check_to_f16(-INFINITY, 0xFC00);
    /* Overflow boundary: 65520 is the midpoint to 2^16, ties to even = inf. */
    check_to_f16(65504.0f, 0x7BFF);
    check_to_f16(65519.996f, 0x7BFF);
    check_to_f16(65520.0f, 0x7C00);
    check_to_f16(-65520.0f, 0xFC00);
    check_to_f16(nextafterf(65520.0f, 0.0f), 0x7BFF);
    check_to_f16(1e6f, 0x7C00);
    check_to_f16(3.4028235e38f, 0x7C00);
    /* Subnormals and underflow: 2^-25 is a tie (-> 0), just above -> 2^-24. */
    check_to_f16(0x1p-24f, 0x0001);
    check_to_f16(0x1p-25f, 0x0000);
    check_to_f16(nextafterf(0x1p-25f, 1.0f), 0x0001);
    check_to_f16(-0x1p-25f, 0x8000);
    check_to_f16(0x1.8p-24f, 0x0002); /* 1.5 ulp: tie -> even 2 */
    check_to_f16(0x1.8p-23f, 0x0003); /* exactly 3 ulps */
    check_to_f16(0x1p-14f, 0x0400);
    check_to_f16(0x1.ffcp-15f, 0x0400); /* midpoint 1023.5 * 2^-24: tie -> even 0x400 */
    check_to_f16(0x1.ff8p-15f, 0x03FF);
    check_to_f16(1e-30f, 0x0000);
    check_to_f16(1e-45f, 0x0000); /* float subnormal */
    check_to_f16(-1e-45f, 0x8000);
    check_to_f16(1.0f, 0x3C00);
    check_to_f16(-2.0f, 0xC000);
    /* NaN: sign and top payload kept, quiet bit forced. */
    uint32_t nans[] = {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7F802000u,
                       0x7FBFFFFFu, 0x7FFFFFFFu, 0xFFFFE000u, 0x7F801FFFu, 0x7FA55555u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        float f = bitsf(nans[i]);
        uint16_t got = mx_f32_to_f16(f);
        CHECK(got == nan_f32_to_f16(nans[i]), "NaN %08x -> %04x", nans[i], got);
        CHECK((got & 0x0200u) && f16_is_nan(got), "NaN %08x not a quiet NaN", nans[i]);
#ifdef HAVE_FLOAT16
        CHECK(sw_f32_to_f16(f) == got, "_Float16 NaN %08x -> %04x", nans[i], sw_f32_to_f16(f));
#endif
    }
}

#ifdef HAVE_FLOAT16
Test(half, f32_to_f16_random_vs_float16)
{
    uint64_t seed = 12345;
    for (int i = 0; i < 4000000; i++) {
        uint64_t r = rng_next(&seed);
        uint32_t u = (uint32_t)r;
        if (i & 1) /* half of them in and around the f16 range */
            u = (u & 0x80FFFFFFu) | (uint32_t)((0x60u + (r >> 40) % 0x30u) << 23);
        float f = bitsf(u);
        uint16_t got = mx_f32_to_f16(f), want = sw_f32_to_f16(f);
        CHECK(got == want, "u=%08x got %04x _Float16 %04x", u, got, want);
    }
}
#endif

#ifdef HAVE_F16C_TEST
/* Every float bit pattern (every 17th under sanitizers) against vcvtps2ph. */
Test(half, f32_to_f16_exhaustive_vs_f16c, .timeout = 280)
{
    if (!have_f16c())
        cr_skip_test("no F16C");
    for (uint64_t u = 0; u <= 0xFFFFFFFFu; u += EXHAUSTIVE_STRIDE) {
        float f = bitsf((uint32_t)u);
        uint16_t got = mx_f32_to_f16(f);
        uint16_t want = hw_f32_to_f16(f);
        CHECK(got == want, "u=%08x got %04x f16c %04x", (unsigned)u, got, want);
    }
}
#endif

/* ---- bf16 ---- */

Test(half, bf16_to_f32_exhaustive)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float got = mx_bf16_to_f32((uint16_t)h);
        CHECK(same_value(got, ref_bf16((uint16_t)h)), "h=%04x got %a", h, (double)got);
        CHECK(fbits(got) == h << 16, "h=%04x bits %08x", h, fbits(got));
    }
}

/*
 * Independent float -> bf16 reference: the two candidates around f (towards
 * zero and away), the nearer in exact double arithmetic, ties to the even
 * mantissa; beyond the largest finite bf16 the upper candidate is 2^128
 * (infinity), as IEEE rounding with an unbounded exponent.
 */
static uint16_t ref_f32_to_bf16(float f)
{
    uint32_t u = fbits(f);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40u);
    if (isinf(f))
        return (uint16_t)(u >> 16);
    uint16_t lo = (uint16_t)(u >> 16); /* truncation: towards zero */
    uint16_t hi = (uint16_t)(lo + 1);  /* next away from zero (may be inf) */
    double a = fabs(ref_bf16(lo));
    double b = (hi & 0x7FFFu) == 0x7F80u ? ldexp(1.0, 128) : fabs(ref_bf16(hi));
    double x = fabs((double)f);
    if (x == a)
        return lo;
    if (x - a < b - x)
        return lo;
    if (x - a > b - x)
        return hi;
    return (lo & 1u) ? hi : lo;
}

Test(half, f32_to_bf16_every_value_and_midpoint)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float v = mx_bf16_to_f32((uint16_t)h);
        uint16_t got = mx_f32_to_bf16(v);
        uint16_t want = isnan(v) ? (uint16_t)(h | 0x40u) : (uint16_t)h;
        CHECK(got == want, "h=%04x got %04x", h, got);
        if ((h & 0x7F80u) == 0x7F80u)
            continue;
        /* The midpoint to the next bf16 away from zero is exact in binary32. */
        float mid = bitsf((h << 16) | 0x8000u);
        uint16_t up = (uint16_t)(h + 1);
        CHECK(mx_f32_to_bf16(mid) == ((h & 1u) ? up : h), "mid h=%04x got %04x", h,
              mx_f32_to_bf16(mid));
        CHECK(mx_f32_to_bf16(bitsf((h << 16) | 0x8001u)) == up, "above mid h=%04x", h);
        CHECK(mx_f32_to_bf16(bitsf((h << 16) | 0x7FFFu)) == h, "below mid h=%04x", h);
        CHECK(ref_f32_to_bf16(mid) == mx_f32_to_bf16(mid), "ref disagrees h=%04x", h);
    }
    /* Overflow: the largest float rounds to infinity, the max bf16 stays. */
    cr_assert_eq(mx_f32_to_bf16(3.4028235e38f), 0x7F80);
    cr_assert_eq(mx_f32_to_bf16(bitsf(0x7F7F7FFFu)), 0x7F7F);
    cr_assert_eq(mx_f32_to_bf16(bitsf(0xFF7F8000u)), 0xFF80);
    cr_assert_eq(mx_f32_to_bf16(-0.0f), 0x8000);
    cr_assert_eq(mx_f32_to_bf16(bitsf(0x7F800001u)), 0x7FC0);
    cr_assert_eq(mx_f32_to_bf16(bitsf(0xFFA12345u)), 0xFFE1);
    cr_assert_eq(mx_f32_to_bf16(bitsf(0x00008000u)), 0x0000); /* subnormal tie -> even */
    cr_assert_eq(mx_f32_to_bf16(bitsf(0x00018000u)), 0x0002);
}

Test(half, f32_to_bf16_random)
{
    uint64_t seed = 777;
    for (int i = 0; i < 4000000; i++) {
        uint32_t u = (uint32_t)rng_next(&seed);
        if (i % 4 == 0) /* force exact ties and near-ties */
            u = (u & 0xFFFF0000u) | 0x8000u | (uint32_t)(i & 1);
        float f = bitsf(u);
        uint16_t got = mx_f32_to_bf16(f), want = ref_f32_to_bf16(f);
        CHECK(got == want, "u=%08x got %04x want %04x", u, got, want);
    }
}

/* ---- fp8 ---- */

Test(half, e4m3_exhaustive)
{
    for (uint32_t b = 0; b < 256; b++) {
        float got = mx_e4m3_to_f32((uint8_t)b);
        CHECK(same_value(got, ts_ref_e4m3((uint8_t)b)), "b=%02x got %a", b, (double)got);
        if ((b & 0x7Fu) == 0x7Fu)
            CHECK(fbits(got) == (((b & 0x80u) << 24) | 0x7FC00000u), "NaN b=%02x", b);
    }
    cr_assert_eq(mx_e4m3_to_f32(0x7E), 448.0f);
    cr_assert_eq(mx_e4m3_to_f32(0xFE), -448.0f);
    cr_assert(isfinite(mx_e4m3_to_f32(0x78)) && mx_e4m3_to_f32(0x78) == 256.0f);
    cr_assert_eq(mx_e4m3_to_f32(0x01), 0x1p-9f);
    cr_assert_eq(mx_e4m3_to_f32(0x08), 0x1p-6f);
}

Test(half, e5m2_exhaustive)
{
    for (uint32_t b = 0; b < 256; b++) {
        float got = mx_e5m2_to_f32((uint8_t)b);
        CHECK(same_value(got, ts_ref_e5m2((uint8_t)b)), "b=%02x got %a", b, (double)got);
    }
    cr_assert_eq(mx_e5m2_to_f32(0x7B), 57344.0f);
    cr_assert(isinf(mx_e5m2_to_f32(0x7C)) && mx_e5m2_to_f32(0xFC) < 0);
    cr_assert(isnan(mx_e5m2_to_f32(0x7D)) && isnan(mx_e5m2_to_f32(0xFF)));
    cr_assert_eq(mx_e5m2_to_f32(0x01), 0x1p-16f);
}

/* ---- directed rounding to f16 ---- */

/* The f16 neighbours of value v (bit patterns of finite non-NaN f16 ordered as numbers). */
static double f16_next_value(uint16_t h, int up)
{
    /* Walk the signed ordering: map to an integer key, step, map back. */
    int key = (h & 0x8000u) ? -(int)(h & 0x7FFFu) : (int)h;
    key += up ? 1 : -1;
    if (key > 0x7C00)
        return INFINITY;
    if (key < -0x7C00)
        return -INFINITY;
    return key >= 0 ? ref_f16((uint16_t)key) : ref_f16((uint16_t)(0x8000u | (unsigned)-key));
}

static void check_round(float f)
{
    uint16_t u = mx_f16_round_up(f), d = mx_f16_round_down(f);
    double vu = ref_f16(u), vd = ref_f16(d);
    CHECK(vu >= f && f16_next_value(u, 0) < f, "round_up(%a) = %04x", (double)f, u);
    CHECK(vd <= f && f16_next_value(d, 1) > f, "round_down(%a) = %04x", (double)f, d);
    CHECK(u != 0x8000u && d != 0x8000u, "negative zero from %a", (double)f);
}

Test(half, f16_directed_rounding)
{
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7FFFu) > 0x7C00u)
            continue;
        float v = mx_f16_to_f32((uint16_t)h);
        if (isinf(v))
            continue;
        check_round(v);
        check_round(nextafterf(v, INFINITY));
        check_round(nextafterf(v, -INFINITY));
        if ((h & 0x7FFFu) < 0x7BFFu) {
            double n = ref_f16((uint16_t)(h + 1));
            check_round((float)((v + n) / 2));
        }
        /* Exact f16 values round to themselves in both directions (zero to +0). */
        uint16_t self = (h & 0x7FFFu) == 0 ? 0 : (uint16_t)h;
        CHECK(mx_f16_round_up(v) == self && mx_f16_round_down(v) == self, "h=%04x", h);
    }
    uint64_t seed = 99;
    for (int i = 0; i < 1000000; i++) {
        uint64_t r = rng_next(&seed);
        float f = bitsf((uint32_t)(r & 0x80FFFFFFu) | (uint32_t)((0x60u + (r >> 40) % 0x30u) << 23));
        check_round(f);
    }
    cr_assert_eq(mx_f16_round_up(65504.5f), 0x7C00);
    cr_assert_eq(mx_f16_round_down(65504.5f), 0x7BFF);
    cr_assert_eq(mx_f16_round_down(-65504.5f), 0xFC00);
    cr_assert_eq(mx_f16_round_up(-65504.5f), 0xFBFF);
    cr_assert_eq(mx_f16_round_up(1e-30f), 0x0001);
    cr_assert_eq(mx_f16_round_down(1e-30f), 0x0000);
    cr_assert_eq(mx_f16_round_up(-1e-30f), 0x0000);
    cr_assert_eq(mx_f16_round_down(-1e-30f), 0x8001);
    cr_assert_eq(mx_f16_round_up(-0.0f), 0x0000);
    cr_assert_eq(mx_f16_round_down(-0.0f), 0x0000);
    cr_assert_eq(mx_f16_round_up(bitsf(1)), 0x0001);
}
