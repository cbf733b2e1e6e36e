/* half.h - scalar reference conversions between float and f16 / bf16 / fp8 bit patterns. */
#ifndef MIXQ_HALF_H
#define MIXQ_HALF_H

#include <stdint.h>

/*
 * f16 bits -> float, exact (subnormals, infinities).  NaN keeps its sign and
 * payload (in the top payload bits) and is made quiet, like F16C vcvtph2ps.
 */
float mx_f16_to_f32(uint16_t h);
/*
 * float -> f16 bits, round to nearest even; |f| >= 65520 gives infinity; NaN
 * stays NaN: sign and top 10 payload bits kept, quiet bit 0x0200 forced.
 */
uint16_t mx_f32_to_f16(float f);

/* bf16 bits -> float, exact (the bits become the top half; NaN unchanged). */
float mx_bf16_to_f32(uint16_t h);
/* float -> bf16 bits, round to nearest even; NaN: sign and top payload kept, quiet bit 0x0040 forced. */
uint16_t mx_f32_to_bf16(float f);

/* OCP FP8 E4M3 (bias 7, no infinities, NaN = S.1111.111) bits -> float, exact. */
float mx_e4m3_to_f32(uint8_t v);
/* OCP FP8 E5M2 (bias 15, IEEE-like with infinities) bits -> float, exact (= f16 of v << 8). */
float mx_e5m2_to_f32(uint8_t v);

/*
 * Directed rounding to f16 (also declared in kernels.h): the smallest f16 >= f
 * (+inf above 65504) and the largest f16 <= f (-inf below -65504).  A zero
 * result is always +0 (0x0000), never -0.
 */
uint16_t mx_f16_round_up(float f);
uint16_t mx_f16_round_down(float f);

/* Bit-level helpers. */
static inline uint32_t mx_f32_bits(float f) { union { float f; uint32_t u; } c; c.f = f; return c.u; }
static inline float mx_bits_f32(uint32_t u) { union { float f; uint32_t u; } c; c.u = u; return c.f; }

#endif
