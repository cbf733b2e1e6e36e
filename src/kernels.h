/* kernels.h - scalar reference quantization kernels (one file per format). */
#ifndef MIXQ_KERNELS_H
#define MIXQ_KERNELS_H

#include "qtype.h"

/*
 * Common to both: a row of n elements is split into groups of `group`
 * elements, the last one shorter (group = n for one group per row; group 0 is
 * treated as n).  Scales/mins of group j are little-endian f16 at
 * sec[SCALES] + 2j / sec[MINS] + 2j.  Inputs must be finite with
 * |x| <= 65504 (FORMAT.md §4.3); other inputs give unspecified codes but no
 * undefined behaviour.  All arithmetic is binary32 with no contraction.
 *
 * int8 (FORMAT.md §4.1): symmetric.  Per group: s = the smallest f16 with
 * 127 * s >= max|x| (127 * s is exact), s = 0 for an all-zero group (codes 0);
 * codes q = round_half_even(clamp(x / s, -127, 127)) as two's complement
 * bytes; reconstruction x^ = (float)q * s (exact).  |x - x^| <= s/2 exactly.
 */
void kernel_int8_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_int8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);

/*
 * int4 (FORMAT.md §4.2): asymmetric.  Per group: m = the largest f16 <=
 * min(x) (+0 for zero); s = the smallest f16 with fl(m + 15 * s) >= max(x)
 * (binary32 add; 0 if m == max(x)); codes q = round_half_even(clamp(
 * fl(fl(x - m) / s), 0, 15)) (0 if s == 0); x^ = fl(fl((float)q * s) + m).
 * Two codes per byte, element 2i of the row in the low nibble of byte i, an
 * odd row's last high nibble 0.
 */
void kernel_int4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_int4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);

/*
 * Directed rounding to f16, defined in half.c: the smallest f16 >= f and the
 * largest f16 <= f (infinity beyond +-65504).  A zero result is always +0.
 */
uint16_t mx_f16_round_up(float f);
uint16_t mx_f16_round_down(float f);

/*
 * Round half to even of a float with |t| <= 2^24 (not NaN), to int.  Explicit
 * (truncate the magnitude, compare the exact fraction with 0.5), so it does
 * not depend on the fenv rounding mode; equal to nearbyintf under
 * round-to-nearest and to _mm_round_ps(_MM_FROUND_TO_NEAREST_INT).
 */
static inline int mx_round_half_even(float t)
{
    float a = t < 0.0f ? -t : t;
    int i = (int)a;           /* truncation = floor for a >= 0 */
    float d = a - (float)i;   /* exact fractional part */
    if (d > 0.5f || (d == 0.5f && i % 2 != 0))
        i++;
    return t < 0.0f ? -i : i;
}

/* Little-endian u16 (scales, mins) at any address. */
static inline void mx_st16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}
static inline uint16_t mx_ld16le(const uint8_t *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }

#endif
