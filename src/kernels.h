/* kernels.h - scalar reference quantization kernels (one file per format). */
#ifndef MIXQ_KERNELS_H
#define MIXQ_KERNELS_H

#include "qtype.h"

/*
 * int8: symmetric.  Per group: s = f16 rounded up of max|x| / 127 (so that
 * max|x| <= 127 s), codes q = clamp(round_half_even(x / s), -127, 127) as
 * int8, reconstruction x^ = q * s.  A group of zeros stores s = 0.
 */
void kernel_int8_quantize_row(const float *x, size_t n, unsigned group, mx_rowptrs out);
void kernel_int8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);

/*
 * int4: asymmetric.  Per group: m = f16 rounded down of min(x),
 * s = f16 rounded up of (max(x) - m) / 15 (so that m + 15 s >= max(x)),
 * codes q = clamp(round_half_even((x - m) / s), 0, 15), x^ = q * s + m.
 * Two codes per byte, element 2i in the low nibble of byte i.
 */
void kernel_int4_quantize_row(const float *x, size_t n, unsigned group, mx_rowptrs out);
void kernel_int4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);

/* Rounds a non-negative finite float up to the nearest f16 (result >= f). */
uint16_t mx_f16_round_up(float f);
/* Rounds a finite float down to the nearest f16 (result <= f). */
uint16_t mx_f16_round_down(float f);

#endif
