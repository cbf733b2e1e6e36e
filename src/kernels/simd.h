/*
 * simd.h - run-time choice of kernel implementations.  The scalar kernels in
 * the type table are the reference; a SIMD path replaces some of them with
 * versions that must give bit-identical results.  On x86-64 the path is
 * chosen from cpuid (AVX2 + FMA + F16C) and can be forced with the
 * environment variable MIXQ_SIMD=scalar|avx2; on aarch64 NEON is chosen at
 * compile time (MIXQ_SIMD=scalar still selects the reference).
 */
#ifndef MIXQ_SIMD_H
#define MIXQ_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qtype.h"

typedef enum mx_simd {
    MX_SIMD_SCALAR = 0,
    MX_SIMD_AVX2,
    MX_SIMD_NEON,
    MX_SIMD_COUNT
} mx_simd;

/*
 * y[r * y_stride] = dot(W row, x + r * x_stride) for r < n_x: one stored row
 * of n weights (section pointers w, group size as in qlayout.group) against
 * n_x rows of x (matmul_kernels.h: chunking, summation order, tolerance).
 */
typedef void (*mx_dot_rows_fn)(mx_crowptrs w, size_t n, unsigned group, const float *x, size_t n_x,
                               size_t x_stride, float *y, size_t y_stride);

/* One implementation of every kernel; every entry is non-NULL once filled. */
typedef struct mx_kernel_set {
    mx_simd path;
    mx_quantize_row_fn quantize_row[MIXQ_QT_COUNT];     /* NULL for plain types */
    mx_dequantize_row_fn dequantize_row[MIXQ_QT_COUNT]; /* NULL for plain types */
    void (*f32_to_f16)(const float *src, size_t n, uint16_t *dst);
    void (*f16_to_f32)(const uint16_t *src, size_t n, float *dst);
    void (*f32_to_bf16)(const float *src, size_t n, uint16_t *dst);
    void (*bf16_to_f32)(const uint16_t *src, size_t n, float *dst);
    mx_dot_rows_fn dot_rows[MIXQ_QT_COUNT];             /* NULL for raw only */
} mx_kernel_set;

/* Name of a path ("scalar", "avx2", "neon"). */
const char *mx_simd_name(mx_simd path);

/*
 * The kernels of a path, or NULL if this build or this CPU lacks it.  Entries
 * a SIMD path does not provide are the scalar reference.
 */
const mx_kernel_set *mx_kernels_for(mx_simd path);

/* The kernels in use: the best path the CPU has, unless MIXQ_SIMD says otherwise. */
const mx_kernel_set *mx_kernels(void);

/* Scalar array conversions (the reference for the SIMD ones). */
void mx_f32_to_f16_array(const float *src, size_t n, uint16_t *dst);
void mx_f16_to_f32_array(const uint16_t *src, size_t n, float *dst);
void mx_f32_to_bf16_array(const float *src, size_t n, uint16_t *dst);
void mx_bf16_to_f32_array(const uint16_t *src, size_t n, float *dst);

/* Filled in by the SIMD translation units that exist in this build. */
void mx_simd_fill_avx2(mx_kernel_set *set);
void mx_simd_fill_neon(mx_kernel_set *set);
void mx_simd_fill_avx2_matmul(mx_kernel_set *set); /* src/simd_avx2_matmul.c */
void mx_simd_fill_avx2_cb(mx_kernel_set *set);     /* avx2/simd_avx2_cb.c: the codebook types */
void mx_simd_fill_neon_cb(mx_kernel_set *set);     /* neon/simd_neon_cb.c: the codebook types */
void mx_simd_fill_neon_matmul(mx_kernel_set *set); /* src/simd_neon_matmul.c */
void mx_simd_fill_avx2_nl4(mx_kernel_set *set);    /* kernels/avx2/simd_avx2_nl4.c: nl4, nl4_dq */
void mx_simd_fill_neon_nl4(mx_kernel_set *set);    /* kernels/neon/simd_neon_nl4.c: nl4, nl4_dq */

#endif
