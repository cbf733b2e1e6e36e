/*
 * matmul_kernels.h - the fused matrix-vector row kernels of every path
 * (mx_kernel_set.dot_rows; scalar in kernel_matmul.c, AVX2 in
 * simd_avx2_matmul.c, NEON in simd_neon_matmul.c; the driver over rows is
 * matmul.h).
 *
 * A weight row of n elements is walked in chunks of MX_MM_CHUNK (256)
 * elements starting at multiples of 256 (a DQ super-block; every other
 * group size divides 256 or is the whole row).  Each chunk is decoded into
 * an on-stack f32 buffer by the path's own dequantizer (bit-identical to the
 * scalar dequantize_row, so every path multiplies by the same weight values
 * w_i) and dotted with up to MX_MM_XB rows of x before the next chunk is
 * decoded.  No more than one chunk of a row is ever dequantized.  A path may
 * have a direct kernel for whole chunks of a type (mx_mm_fast_fn: AVX2 and
 * NEON decode the codes in registers) that must add exactly the same terms in the
 * same order, so the result is the same bits either way.
 *
 * Summation order of y = sum_i w_i x_i (fixed by n only: tiles, threads and
 * the number of x rows never change it):
 *   scalar: one binary64 sum per (W row, x row), elements in index order,
 *     each product (double)w_i * (double)x_i exact; rounded to float once.
 *     |y - y_exact| <= 2^-24 |y_exact| + n 2^-53 sum|w_i x_i| (about).
 *   AVX2:   32 binary32 partial sums, element i added to sum i mod 32 by an
 *     FMA, in index order (the last partial vector zero-padded); the 32 sums
 *     combined as (v0 + v1) + (v2 + v3) (vectors of 8), then the halves of
 *     that vector added, then lanes (0 + 2) + (1 + 3).
 *   NEON:   16 binary32 partial sums (element i into sum i mod 16 by FMA;
 *     the last partial vector zero-padded), combined (v0 + v1) + (v2 + v3),
 *     then lanes (0 + 2) + (1 + 3).
 * Tolerance of a SIMD path against the scalar reference (both against the
 * exact sum of the same w_i x_i, the scalar's error being far smaller):
 *   |y_simd - y_scalar| <= MX_MM_TOL(n) * sum_i |w_i x_i| + n * 2^-149,
 *   MX_MM_TOL(n) = (n / 16 + 16) * 2^-24
 * (each of the 16 or 32 partial sums adds at most n/16 terms, each with one
 * rounding; the combining tree and the final double rounding add a few; the
 * n * 2^-149 term only matters for sums in the binary32 subnormal range).
 * Non-finite weights or inputs give NaN / Inf as IEEE arithmetic does.
 */
#ifndef MIXQ_MATMUL_KERNELS_H
#define MIXQ_MATMUL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qtype.h"
#include "kernels/simd.h"

#define MX_MM_CHUNK 256u /* elements of a row decoded at a time */
#define MX_MM_XB 8u      /* rows of x sharing one decoded chunk */

/* MX_MM_TOL(n) above, as a double. */
#define MX_MM_TOL(n) (((double)(n) / 16.0 + 16.0) * 0x1p-24)

/* Partial sums of one (W row, x row) dot product: 32 floats (SIMD) or one double (scalar). */
typedef union mx_mm_acc {
    _Alignas(32) float f[32];
    double d[16];
} mx_mm_acc;

/*
 * A path's direct kernel of the first nchunks whole chunks of a row
 * (elements [0, nchunks * MX_MM_CHUNK)) against nb <= MX_MM_XB x rows (x:
 * the first row): acc[b] gets exactly what the path's acc_chunk adds for
 * those chunks decoded one after the other (the same weights in the same
 * partial sums in the same order), without the f32 buffer.
 */
typedef void (*mx_mm_fast_fn)(mx_crowptrs w, size_t n, unsigned group, size_t nchunks, const float *x,
                              size_t x_stride, size_t nb, mx_mm_acc *acc);

/* What a path plugs into the shared row loop. */
typedef struct mx_mm_path {
    const mx_dequantize_row_fn *dequantize_row;           /* the path's dequantizers, by type */
    void (*f16_to_f32)(const uint16_t *src, size_t n, float *dst);
    void (*bf16_to_f32)(const uint16_t *src, size_t n, float *dst);
    void (*acc_chunk)(mx_mm_acc *acc, const float *w, const float *x, size_t len); /* acc += w[i] x[i] */
    float (*acc_result)(const mx_mm_acc *acc);            /* the final sum */
    const mx_mm_fast_fn *fast;                            /* by type, NULL entries (or NULL): none */
} mx_mm_path;

/*
 * Decodes elements [k0, k0 + len) of a row of n elements of type t (k0 a
 * multiple of MX_MM_CHUNK, len <= MX_MM_CHUNK) into out with the path's
 * converters / dequantizers: the same floats as elements k0.. of the
 * path's dequantize_row of the whole row.  group as in qlayout.group.
 */
void mx_mm_decode(const mx_mm_path *P, mixq_qtype t, mx_crowptrs w, size_t n, unsigned group, size_t k0,
                  size_t len, float *out);

/*
 * The parameters of a whole chunk [k0, k0 + MX_MM_CHUNK) of a quantized row
 * for a direct kernel: sg[j], mg[j] the scale and min (0 if symmetric) of
 * the chunk's j-th group, vector v of 8 elements in group v >> (the returned
 * shift); NaN for a group whose stored parameters are not all finite (the
 * dequantizers give it NaN weights).  Scalar; AVX2 has a vector version.
 */
unsigned mx_mm_chunk_params(const qtype_desc *qt, mx_crowptrs w, size_t n, unsigned group, size_t k0, float *sg,
                            float *mg);

/* The scalar dot_rows of every type (NULL for raw). */
extern const mx_dot_rows_fn mx_dot_rows_scalar[MIXQ_QT_COUNT];

/*
 * The row loop shared by the paths (inlined into each path's translation
 * unit so that acc_chunk is a direct call): x rows in blocks of MX_MM_XB,
 * for each block the row's chunks in order, each decoded once and added
 * into every x row's partial sums.
 */
static inline __attribute__((always_inline)) void mx_mm_dot_rows(const mx_mm_path *P, mixq_qtype t, mx_crowptrs w,
                                                                 size_t n, unsigned group, const float *x,
                                                                 size_t n_x, size_t x_stride, float *y,
                                                                 size_t y_stride)
{
    _Alignas(64) float buf[MX_MM_CHUNK];
    mx_mm_acc acc[MX_MM_XB];

    for (size_t r0 = 0; r0 < n_x; r0 += MX_MM_XB) {
        size_t nb = n_x - r0 < MX_MM_XB ? n_x - r0 : MX_MM_XB;
        for (size_t b = 0; b < nb; b++)
            for (size_t i = 0; i < 32; i++) acc[b].f[i] = 0.0f; /* also d[] = +0.0 */
        size_t k0 = 0;
        if (P->fast && P->fast[t] && n >= MX_MM_CHUNK) { /* the whole chunks directly, then the rest */
            P->fast[t](w, n, group, n / MX_MM_CHUNK, x + r0 * x_stride, x_stride, nb, acc);
            k0 = n / MX_MM_CHUNK * MX_MM_CHUNK;
        }
        for (; k0 < n; k0 += MX_MM_CHUNK) {
            size_t len = n - k0 < MX_MM_CHUNK ? n - k0 : MX_MM_CHUNK;
            mx_mm_decode(P, t, w, n, group, k0, len, buf);
            for (size_t b = 0; b < nb; b++)
                P->acc_chunk(&acc[b], buf, x + (r0 + b) * x_stride + k0, len);
        }
        for (size_t b = 0; b < nb; b++)
            y[(r0 + b) * y_stride] = P->acc_result(&acc[b]);
    }
}

/* X(name, id) for every type that has a matmul (all but raw). */
#define MX_MM_TYPES(X)                                                                                       \
    X(f32, MIXQ_QT_F32) X(f16, MIXQ_QT_F16) X(bf16, MIXQ_QT_BF16) X(int8, MIXQ_QT_INT8) X(int4, MIXQ_QT_INT4) \
    X(int4s, MIXQ_QT_INT4S) X(int2, MIXQ_QT_INT2) X(fp8_e4m3, MIXQ_QT_FP8_E4M3)                              \
    X(fp8_e5m2, MIXQ_QT_FP8_E5M2) X(int4_dq, MIXQ_QT_INT4_DQ) X(int2_dq, MIXQ_QT_INT2_DQ)                    \
    X(int3_dq, MIXQ_QT_INT3_DQ) X(int6_dq, MIXQ_QT_INT6_DQ) X(nl4, MIXQ_QT_NL4) X(nl4_dq, MIXQ_QT_NL4_DQ) \
    X(cb4_dq, MIXQ_QT_CB4_DQ) X(cb3_dq, MIXQ_QT_CB3_DQ) X(cb2_dq, MIXQ_QT_CB2_DQ)

/* Defines the dot_rows kernel PFX_dot_rows_NAME of type ID over the mx_mm_path PATH. */
#define MX_MM_ROWS_FN(PFX, PATH, NAME, ID)                                                                   \
    static void PFX##_dot_rows_##NAME(mx_crowptrs w, size_t n, unsigned group, const float *x, size_t n_x,   \
                                      size_t x_stride, float *y, size_t y_stride)                            \
    {                                                                                                        \
        mx_mm_dot_rows(&PATH, ID, w, n, group, x, n_x, x_stride, y, y_stride);                               \
    }

#endif
