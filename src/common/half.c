/*
 * half.c - scalar reference conversions between float and f16 / bf16 / fp8
 * bit patterns, and directed rounding of float to f16.
 *
 * Everything here is integer bit manipulation (plus exact float multiplies by
 * powers of two for subnormals), so the results do not depend on the
 * floating-point environment.  These definitions are the reference that any
 * SIMD version must reproduce bit for bit.
 */
#include "common/half.h"

/*
 * f16 -> float.  Exact for every number; NaN keeps its sign and its 10
 * payload bits (as the top payload bits of the float) and is made quiet, the
 * same as F16C vcvtph2ps and GCC's _Float16 conversion.
 */
float mx_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;

    if (exp == 0x1Fu) {
        if (man == 0)
            return mx_bits_f32(sign | 0x7F800000u);
        return mx_bits_f32(sign | 0x7FC00000u | (man << 13));
    }
    if (exp == 0) {
        /* Zero or subnormal: man * 2^-24, exact in binary32. */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return mx_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

/*
 * float -> f16, round to nearest, ties to even.  Magnitudes >= 65520 (the
 * midpoint between 65504 and 2^16) become infinity.  NaN keeps its sign and
 * the top 10 payload bits, with the quiet bit (0x0200) forced on.
 */
uint16_t mx_f32_to_f16(float f)
{
    uint32_t u = mx_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7FFFFFFFu;

    if (a > 0x7F800000u) /* NaN */
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a >= 0x477FF000u) /* >= 65520, including infinity */
        return (uint16_t)(sign | 0x7C00u);
    if (a >= 0x38800000u) {
        /* Normal result (>= 2^-14): rebias the exponent, round at bit 13. */
        uint32_t r = a - 0x38000000u;
        r += 0x0FFFu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (a < 0x33000000u) /* < 2^-25 (half the smallest subnormal): zero */
        return sign;
    {
        /* Subnormal result: round(mant * 2^(e-150) / 2^-24). May carry into
         * 0x0400, the smallest normal, which is the correct encoding. */
        uint32_t e = a >> 23; /* 102 .. 112 */
        uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14 .. 24 */
        uint32_t r = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u)))
            r++;
        return (uint16_t)(sign | r);
    }
}

/* bf16 -> float: the 16 bits become the top half of the float (NaN unchanged). */
float mx_bf16_to_f32(uint16_t h)
{
    return mx_bits_f32((uint32_t)h << 16);
}

/*
 * float -> bf16, round to nearest, ties to even (overflow rounds to
 * infinity).  NaN keeps its sign and top 7 payload bits, quiet bit (0x0040)
 * forced on.
 */
uint16_t mx_f32_to_bf16(float f)
{
    uint32_t u = mx_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/*
 * OCP E4M3: S.EEEE.MMM, bias 7, subnormals man * 2^-9, max 448, no
 * infinities; S.1111.111 is NaN (returned as a quiet NaN with that sign).
 */
float mx_e4m3_to_f32(uint8_t v)
{
    uint32_t sign = (uint32_t)(v & 0x80u) << 24;
    uint32_t exp = (v >> 3) & 0xFu;
    uint32_t man = v & 0x7u;

    if (exp == 0xFu && man == 0x7u)
        return mx_bits_f32(sign | 0x7FC00000u);
    if (exp == 0) {
        float x = (float)man * 0x1p-9f;
        return sign ? -x : x;
    }
    return mx_bits_f32(sign | ((exp + 120u) << 23) | (man << 20));
}

/* OCP E5M2 is the top byte of an f16, so it converts through mx_f16_to_f32. */
float mx_e5m2_to_f32(uint8_t v)
{
    return mx_f16_to_f32((uint16_t)((unsigned)v << 8));
}

/* The next f16 towards +infinity (h is not NaN and not +inf). */
static uint16_t f16_next_up(uint16_t h)
{
    if (h == 0x8000u)
        return 0x0001u;
    if (h & 0x8000u)
        return (uint16_t)(h - 1u);
    return (uint16_t)(h + 1u);
}

/* The next f16 towards -infinity (h is not NaN and not -inf). */
static uint16_t f16_next_down(uint16_t h)
{
    if (h == 0x0000u)
        return 0x8001u;
    if (h & 0x8000u)
        return (uint16_t)(h + 1u);
    return (uint16_t)(h - 1u);
}

/*
 * Smallest f16 >= f (round toward +infinity); +inf above 65504.  Round to
 * nearest is at most one step away, so one correction suffices.  A zero
 * result is always +0 (0x0000).  NaN gives the quiet f16 NaN of
 * mx_f32_to_f16.
 */
uint16_t mx_f16_round_up(float f)
{
    uint16_t h = mx_f32_to_f16(f);
    if (f != f)
        return h;
    if (mx_f16_to_f32(h) < f)
        h = f16_next_up(h);
    if ((h & 0x7FFFu) == 0)
        h = 0;
    return h;
}

/*
 * Largest f16 <= f (round toward -infinity); -inf below -65504.  A zero
 * result is always +0 (0x0000).  NaN gives the quiet f16 NaN.
 */
uint16_t mx_f16_round_down(float f)
{
    uint16_t h = mx_f32_to_f16(f);
    if (f != f)
        return h;
    if (mx_f16_to_f32(h) > f)
        h = f16_next_down(h);
    if ((h & 0x7FFFu) == 0)
        h = 0;
    return h;
}

/* ---------------------------------------------------------------------- */
/* float -> OCP FP8 (declared in fp8.h)                                    */
/* ---------------------------------------------------------------------- */

#include "common/fp8.h" /* the prototypes of the encoders below */

/*
 * Rounds a finite float magnitude (bits a, sign clear) that is below the
 * format's largest finite value to the nearest fp8 magnitude code with
 * `mbits` mantissa bits and exponent bias `bias`, ties to even.  Integer only,
 * like mx_f32_to_f16.  Normal results (a >= 2^(1 - bias)): rebias the
 * exponent and round at bit 23 - mbits; a carry into the exponent field gives
 * the correct next code.  Subnormal results: round the 24-bit significand in
 * units of the smallest subnormal u = 2^(1 - bias - mbits); a carry gives the
 * smallest normal code, which is correct.  The caller guarantees that the
 * result does not reach the NaN/Inf codes (a < largest finite value).
 */
static uint8_t fp8_round_mag(uint32_t a, uint32_t mbits, uint32_t bias)
{
    uint32_t drop = 23u - mbits;
    uint32_t e, mant, shift, r, rem, half;

    if (a >= (128u - bias) << 23) {
        r = a - ((127u - bias) << 23);
        r += ((1u << (drop - 1u)) - 1u) + ((r >> drop) & 1u);
        return (uint8_t)(r >> drop);
    }
    /* a = mant * 2^(e - 150) = (mant >> shift) units u + remainder, with
     * shift = 151 - bias - mbits - e: 24 - mbits in the top subnormal binade
     * (e = 127 - bias), 24 at e = 127 - bias - mbits, where a in [u/2, u). */
    e = a >> 23;
    if (e < 127u - bias - mbits) /* a < u/2 (float subnormals and 0 too): zero */
        return 0;
    mant = (a & 0x7FFFFFu) | 0x800000u;
    shift = 151u - bias - mbits - e;
    r = mant >> shift;
    rem = mant & ((1u << shift) - 1u);
    half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u)))
        r++;
    return (uint8_t)r;
}

/*
 * float -> OCP E4M3, round to nearest, ties to even, saturating: every
 * magnitude >= 448 (finite or infinite) gives +-448 (0x7E / 0xFE); E4M3 has
 * no infinity.  NaN gives the only E4M3 NaN, S.1111.111, with the input's
 * sign (0x7F / 0xFF).  The sign of zero and of values that round to zero is
 * kept.
 */
uint8_t mx_f32_to_e4m3(float f)
{
    uint32_t u = mx_f32_bits(f);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    uint32_t a = u & 0x7FFFFFFFu;

    if (a > 0x7F800000u) /* NaN */
        return (uint8_t)(sign | 0x7Fu);
    if (a >= 0x43E00000u) /* >= 448, including infinity: saturate */
        return (uint8_t)(sign | 0x7Eu);
    return (uint8_t)(sign | fp8_round_mag(a, 3u, 7u));
}

/*
 * float -> OCP E5M2, round to nearest, ties to even.  Finite magnitudes
 * >= 57344 saturate to +-57344 (0x7B / 0xFB); +-infinity stays +-infinity
 * (0x7C / 0xFC).  NaN gives the quiet NaN S.11111.10 with the input's sign
 * (0x7E / 0xFE), payload dropped.  The sign of zero is kept.
 */
uint8_t mx_f32_to_e5m2(float f)
{
    uint32_t u = mx_f32_bits(f);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    uint32_t a = u & 0x7FFFFFFFu;

    if (a > 0x7F800000u) /* NaN */
        return (uint8_t)(sign | 0x7Eu);
    if (a == 0x7F800000u)
        return (uint8_t)(sign | 0x7Cu);
    if (a >= 0x47600000u) /* >= 57344, finite: saturate */
        return (uint8_t)(sign | 0x7Bu);
    return (uint8_t)(sign | fp8_round_mag(a, 2u, 15u));
}
