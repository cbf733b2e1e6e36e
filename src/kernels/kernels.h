/*
 * kernels.h - scalar reference quantization kernels: int8 and int4s in
 * kernel_int8.c, int4 and int2 in kernel_int4.c, the double-quantized types
 * in kernel_dq.c, fp8 in kernel_fp8.c (declared in fp8.h); the search they
 * share in quant_search.c.
 */
#ifndef MIXQ_KERNELS_H
#define MIXQ_KERNELS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/half.h"
#include "kernels/qtype.h"
#include "kernels/quant_search.h"

/*
 * Non-finite scale parameters (FORMAT.md §4, "Non-finite scale parameters").
 * Valid files only hold finite scales, but a reader must give the same bits
 * on every path for any bytes.  Rule, in every dequantizer (scalar, AVX2,
 * NEON): a group whose stored scale parameters are not all finite - its f16
 * scale (or fp8 f32 scale, the whole row's in per-tensor mode), its f16 min
 * (int4, int2), or, for the DQ types, its super-block's f16 super-scale or
 * super-min (then the whole super-block) - dequantizes to the canonical
 * quiet NaN 0x7FC00000 in every element, without the arithmetic (whose NaN
 * payload and sign would depend on operand order and CPU).  With finite
 * parameters every product and sum is deterministic (an fp8 NaN code times
 * a finite scale is that NaN quieted; an fp8 Inf code times a zero scale is
 * the CPU's default NaN on every path of one CPU).
 */
#define MX_CANONICAL_NAN_BITS 0x7FC00000u

/* The canonical quiet NaN 0x7FC00000 (by bits: independent of compiler flags). */
static inline float mx_canonical_nan(void) { return mx_bits_f32(MX_CANONICAL_NAN_BITS); }

/* Finite binary32 (not Inf / NaN), tested on the bits so that -ffast-math cannot fold it away. */
static inline bool mx_f32_finite(float f) { return (mx_f32_bits(f) & 0x7F800000u) != 0x7F800000u; }

/* Finite f16 bit pattern (its binary32 value is finite exactly when it is). */
static inline bool mx_f16_bits_finite(uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

/* out[0..len) = the canonical NaN (a group with non-finite scale parameters). */
static inline void mx_fill_canonical_nan(float *out, size_t len)
{
    const float q = mx_canonical_nan();
    for (size_t i = 0; i < len; i++)
        out[i] = q;
}

/*
 * Common to all: a row of n elements is split into groups of `group`
 * elements, the last one shorter (group = n for one group per row; group 0 is
 * treated as n).  For the f16-scale types the scale/min of group j is a
 * little-endian f16 at sec[SCALES] + 2j / sec[MINS] + 2j.  Inputs must be
 * finite with |x| <= 65504 (FORMAT.md §4.11); other inputs give unspecified
 * codes but no undefined behaviour.  All arithmetic is binary32 with no
 * contraction.  The kernels overwrite every byte of the row's sections.
 * The rules below are the plain choice (p == NULL or !p->search).
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
 * Search (p != NULL && p->search; FORMAT.md §4.9): each group's scale (and
 * min) is chosen by mx_search_sym / mx_search_asym among f16 candidates,
 * never worse than the plain choice above; codes and reconstruction follow
 * the same formulas.  The *_ops variants take the search passes of a SIMD
 * path (the plain names use mx_search_ops_scalar), so that a SIMD kernel
 * reuses the scalar drivers and gets identical bytes.
 */
void kernel_int8_quantize_row_ops(const mx_search_ops *ops, const float *x, size_t n, unsigned group,
                                  const mx_qparams *p, mx_rowptrs out);
void kernel_int4_quantize_row_ops(const mx_search_ops *ops, const float *x, size_t n, unsigned group,
                                  const mx_qparams *p, mx_rowptrs out);

/*
 * int4s (FORMAT.md §4.3): symmetric, codes q in [-8, 7] stored as q + 8 in
 * nibbles like int4, signed f16 scale d per group, x^ = q * d (exact).  Plain
 * choice: |d| = the smallest f16 with 8 |d| >= max|x|, negative when the
 * group's largest-magnitude element xm is positive (+amax if max(x) = amax,
 * else -amax), so that xm gets code -8; q = rhe(clamp(x / d, -8, 7)); +0 and
 * codes 8 for an all-zero group.
 */
void kernel_int4s_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_int4s_quantize_row_ops(const mx_search_ops *ops, const float *x, size_t n, unsigned group,
                                   const mx_qparams *p, mx_rowptrs out);
void kernel_int4s_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);

/*
 * int2 (FORMAT.md §4.4): int4 with 2-bit codes (L = 3 instead of 15): m the
 * largest f16 <= min(x), s the smallest f16 with fl(m + 3 s) >= max(x),
 * q = rhe(clamp(fl(fl(x - m) / s), 0, 3)), x^ = fl(q * s + m).  Element 4i+j
 * of a row in bits 2j..2j+1 of byte i.
 */
void kernel_int2_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_int2_quantize_row_ops(const mx_search_ops *ops, const float *x, size_t n, unsigned group,
                                  const mx_qparams *p, mx_rowptrs out);
void kernel_int2_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);

/*
 * Double-quantized types (FORMAT.md §4.5-§4.8): groups of `group` weights in
 * super-blocks of 256 weights of the row (the last ones partial).  Codes and
 * scale codes are bit planes (FORMAT.md §5.1).
 *   int4_dq, int2_dq (asymmetric): x^ = fl(q * fl(d * sc) + fl(dm * mc)),
 *     q in [0, 15] / [0, 3], sc, mc in [0, 63] / [0, 15], d >= 0 and dm
 *     (any sign) f16 per super-block (both products exact).
 *   int3_dq, int6_dq (symmetric): x^ = fl(q * fl(d * c)), q stored as
 *     q + 4 / q + 32 (q in [-4, 3] / [-32, 31]), c stored as c + 32 / c + 128
 *     (c in [-32, 31] / [-128, 127]), d f16 per super-block.
 */
void kernel_int4_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_int4_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
void kernel_int2_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_int2_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
void kernel_int3_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_int3_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
void kernel_int6_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_int6_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
/*
 * Lookup-table types (FORMAT.md §4.12, §4.13; kernel_nl4.c, levels in
 * kernel_nl4.h): 4-bit level indices q stored as nibbles like int4,
 * x^ = fl(L[q] * s) (exact).  nl4: s an f16 per group (16..256).  nl4_dq:
 * groups of 32 in super-blocks of 256, s = fl(d * c) with d an f16 per
 * super-block and c in [-32, 31] stored as c + 32 in planes {4, 2}.
 */
void kernel_nl4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_nl4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
void kernel_nl4_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_nl4_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
/* The same with the search passes of a SIMD path (kernel_nl4.h; the plain names use mx_nl4_ops_scalar). */
struct mx_nl4_ops;
extern const struct mx_nl4_ops mx_nl4_ops_scalar;
void kernel_nl4_quantize_row_ops(const struct mx_nl4_ops *ops, const float *x, size_t n, unsigned group,
                                 const mx_qparams *p, mx_rowptrs out);
void kernel_nl4_dq_quantize_row_ops(const struct mx_nl4_ops *ops, const float *x, size_t n, unsigned group,
                                    const mx_qparams *p, mx_rowptrs out);
/*
 * Codebook types (kernel_cb.c, FORMAT.md §4.14): x^ = fl(fl(d * c) * L[q]),
 * q the stored index (4, 3 or 2 bits) into the tensor's int8 levels L (the
 * codebook section), c a signed 6-bit group-scale code stored as c + 32,
 * d the f16 scale of the super-block of 256 weights.
 */
void kernel_cb4_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_cb4_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
void kernel_cb3_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_cb3_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
void kernel_cb2_dq_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out);
void kernel_cb2_dq_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out);
void kernel_cb4_dq_fit(const float *x, const float *w, size_t rows, size_t n, unsigned group, int8_t *levels);
void kernel_cb3_dq_fit(const float *x, const float *w, size_t rows, size_t n, unsigned group, int8_t *levels);
void kernel_cb2_dq_fit(const float *x, const float *w, size_t rows, size_t n, unsigned group, int8_t *levels);

void kernel_dq_quantize_row_ops(const mx_search_ops *ops, mixq_qtype type, const float *x, size_t n,
                                unsigned group, const mx_qparams *p, mx_rowptrs out);

/*
 * Bit planes (FORMAT.md §5.1): a field of `count` codes of a type with plane
 * widths planes[] (1, 2, 4 or 8 bits, low bits first) stores plane p after
 * the planes before it; in a plane of width w, element k occupies bits
 * (k w) mod 8 .. + w - 1 of byte floor(k w / 8).  off[p] gets the byte
 * offset of plane p within the field.
 */
static inline void mx_planes_offsets(const uint8_t planes[QT_MAX_PLANES], size_t count,
                                     size_t off[QT_MAX_PLANES])
{
    size_t o = 0;
    for (int p = 0; p < QT_MAX_PLANES; p++) {
        off[p] = o;
        if (planes[p] != 0)
            o += (count * planes[p] + 7u) / 8u;
    }
}

/* Total bytes of the field (the offset after the last plane). */
static inline size_t mx_planes_bytes(const uint8_t planes[QT_MAX_PLANES], size_t count)
{
    size_t off[QT_MAX_PLANES], o = 0;
    mx_planes_offsets(planes, count, off);
    for (int p = 0; p < QT_MAX_PLANES && planes[p] != 0; p++)
        o = off[p] + (count * planes[p] + 7u) / 8u;
    return o;
}

/* ORs code u of element k into its planes (the field's bytes must start zeroed). */
static inline void mx_planes_put(uint8_t *base, const uint8_t planes[QT_MAX_PLANES],
                                 const size_t off[QT_MAX_PLANES], size_t k, unsigned u)
{
    for (int p = 0; p < QT_MAX_PLANES && planes[p] != 0; p++) {
        unsigned w = planes[p];
        size_t bit = k * w;
        base[off[p] + bit / 8u] |= (uint8_t)((u & ((1u << w) - 1u)) << (bit % 8u));
        u >>= w;
    }
}

/* Code of element k. */
static inline unsigned mx_planes_get(const uint8_t *base, const uint8_t planes[QT_MAX_PLANES],
                                     const size_t off[QT_MAX_PLANES], size_t k)
{
    unsigned u = 0, shift = 0;
    for (int p = 0; p < QT_MAX_PLANES && planes[p] != 0; p++) {
        unsigned w = planes[p];
        size_t bit = k * w;
        u |= ((unsigned)(base[off[p] + bit / 8u] >> (bit % 8u)) & ((1u << w) - 1u)) << shift;
        shift += w;
    }
    return u;
}

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
