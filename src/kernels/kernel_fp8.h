/*
 * kernel_fp8.h - the fp8_e4m3 / fp8_e5m2 quant kernels (FORMAT.md §4,
 * "fp8_e4m3 and fp8_e5m2").  The encoders are in common/fp8.h.
 */
#ifndef MIXQ_KERNEL_FP8_H
#define MIXQ_KERNEL_FP8_H

#include "common/fp8.h"
#include "kernels/qtype.h"

/*
 * The fp8 quant kernels, with the signatures of mx_quantize_row_fn /
 * mx_dequantize_row_fn.  All arithmetic is binary32, no contraction, no FMA.
 *
 * Layout: codes = one fp8 byte per element (row r at r * n).  scales =
 * little-endian binary32 scales (mx_fp8_st_f32le): group j of the row at
 * sec[SCALES] + 4j (groups of `group` elements, the last one shorter; group 0
 * is treated as n), or, in per-tensor mode, ONE scale for the whole tensor at
 * sec[SCALES] (every row's scales pointer points at the same 4 bytes, every
 * row writes the same value there, and the kernels are called with group = n).
 *
 * Mode convention (the caller fills mx_qparams):
 *   per-tensor  <=>  p != NULL && p->tensor_absmax >= 0; tensor_absmax is the
 *                    max |x| over the whole tensor (a pre-pass of the
 *                    converter) and `group` is ignored by quantize_row;
 *   per-group   <=>  p == NULL, or p->tensor_absmax < 0 (the converter
 *                    passes -1) or NaN.
 * A zero-initialised mx_qparams therefore means per-tensor with absmax 0: a
 * caller wanting per-group must set tensor_absmax = -1 (or pass NULL).
 * The dequantize kernels need no mode: called with group = n they read the
 * single scale at sec[SCALES].
 *
 * Scale (RTN, FMAX = 448 or 57344, amax = max|x| of the group, or
 * tensor_absmax): s = 0 if amax == 0 (all codes 0x00); else s = fl(amax /
 * FMAX), raised to the smallest positive float if it underflows to 0, then
 * raised to the next float up while fl(amax / s) > FMAX (so no |x| <= amax
 * saturates).  Codes: enc(fl(x / s)) (a real division, not a reciprocal
 * multiply).  Reconstruction: x^ = fl(dec(code) * s).
 *
 * Search (p->search, per-group mode only; per-tensor mode is always RTN
 * because the best scale depends on the whole tensor, which a row kernel does
 * not see): candidates s_k = fl(s_0 * mx_fp8_search_mult[k]), k = 0..15,
 * s_0 the RTN scale, mx_fp8_search_mult[k] = 2^(k/16) rounded to binary32
 * (so s_k >= s_0 and nothing saturates).  Each candidate's error is
 * sum_i w_i * (d_i * d_i), d_i = x_i - fl(dec(enc(fl(x_i / s_k))) * s_k),
 * w_i = importance[start + i] (the product is skipped when importance is
 * NULL), accumulated in binary32 into 8 partial sums by the index i within
 * the group mod 8 and combined as ((a0 + a4) + (a2 + a6)) + ((a1 + a5) +
 * (a3 + a7)).  The first candidate with the strictly smallest error wins
 * (k = 0 first), so the result is never worse than RTN by that measure.
 * No search for an all-zero group (s = 0).  SIMD versions must reproduce
 * all of this bit for bit.
 */
#define MX_FP8_SEARCH_CANDIDATES 16
extern const float mx_fp8_search_mult[MX_FP8_SEARCH_CANDIDATES];

void kernel_fp8_e4m3_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                  mx_rowptrs out);
void kernel_fp8_e4m3_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
void kernel_fp8_e5m2_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                  mx_rowptrs out);
void kernel_fp8_e5m2_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);

#endif
