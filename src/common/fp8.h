/*
 * fp8.h - OCP FP8 (OFP8 rev 1.0) encoders and little-endian binary32 helpers.
 * The decoders mx_e4m3_to_f32 / mx_e5m2_to_f32 are in half.h; the fp8 quant
 * kernels are in kernels/kernel_fp8.h.
 */
#ifndef MIXQ_FP8_H
#define MIXQ_FP8_H

#include <stdint.h>

#include "common/half.h"

/* Largest finite values: E4M3 S.1111.110 = 448, E5M2 S.11110.11 = 57344. */
#define MX_FP8_E4M3_MAX 448.0f
#define MX_FP8_E5M2_MAX 57344.0f

/*
 * float -> E4M3 bits (half.c): round to nearest even; |f| >= 448 and +-Inf
 * saturate to +-448 (0x7E/0xFE); NaN -> 0x7F/0xFF (sign kept); -0 -> 0x80.
 */
uint8_t mx_f32_to_e4m3(float f);

/*
 * float -> E5M2 bits (half.c): round to nearest even; finite |f| >= 57344
 * saturates to +-57344 (0x7B/0xFB); +-Inf -> 0x7C/0xFC; NaN -> quiet
 * 0x7E/0xFE (sign kept, payload dropped); -0 -> 0x80.
 */
uint8_t mx_f32_to_e5m2(float f);

/* Stores / loads a binary32 as 4 little-endian bytes at any address. */
static inline void mx_fp8_st_f32le(uint8_t *p, float f)
{
    uint32_t v = mx_f32_bits(f);
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}
static inline float mx_fp8_ld_f32le(const uint8_t *p)
{
    return mx_bits_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 24);
}

#endif
