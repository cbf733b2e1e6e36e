/*
 * simd_avx2_matmul.c - the AVX2 (+FMA, F16C) matmul row kernels
 * (matmul_kernels.h): chunks decoded by the AVX2 dequantizers of the kernel
 * set this file is installed into, dotted with 32 FMA partial sums.  Built
 * with the flags of simd_avx2.c (meson.build).
 */
#include <immintrin.h>

#include "matmul_kernels.h"
#include "simd.h"

/* The AVX2 set's dequantizers and conversions, copied by mx_simd_fill_avx2_matmul. */
static mx_dequantize_row_fn avx2_deq[MIXQ_QT_COUNT];
static void (*avx2_h2f)(const uint16_t *src, size_t n, float *dst);
static void (*avx2_b2f)(const uint16_t *src, size_t n, float *dst);

/* Lanes 0..r-1 all ones (r < 8): the mask of a partial vector. */
static inline __m256i tail_mask(size_t r)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Sum i mod 32 += w[i] x[i] (FMA), in index order; a last partial vector is zero-padded. */
static void avx2_acc_chunk(mx_mm_acc *acc, const float *w, const float *x, size_t len)
{
    __m256 a0 = _mm256_load_ps(acc->f), a1 = _mm256_load_ps(acc->f + 8);
    __m256 a2 = _mm256_load_ps(acc->f + 16), a3 = _mm256_load_ps(acc->f + 24);
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    /* the rest (the row's last chunk only): vectors of 8 into the sums their index selects */
    __m256 *a[4] = {&a0, &a1, &a2, &a3};
    for (; i < len; i += 8) {
        __m256 wv, xv;
        if (i + 8 <= len) {
            wv = _mm256_loadu_ps(w + i);
            xv = _mm256_loadu_ps(x + i);
        } else {
            __m256i m = tail_mask(len - i);
            wv = _mm256_maskload_ps(w + i, m);
            xv = _mm256_maskload_ps(x + i, m);
        }
        *a[(i / 8) % 4] = _mm256_fmadd_ps(wv, xv, *a[(i / 8) % 4]);
    }
    _mm256_store_ps(acc->f, a0);
    _mm256_store_ps(acc->f + 8, a1);
    _mm256_store_ps(acc->f + 16, a2);
    _mm256_store_ps(acc->f + 24, a3);
}

/* (v0 + v1) + (v2 + v3), halves added, lanes (0 + 2) + (1 + 3). */
static float avx2_acc_result(const mx_mm_acc *acc)
{
    __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_load_ps(acc->f), _mm256_load_ps(acc->f + 8)),
                             _mm256_add_ps(_mm256_load_ps(acc->f + 16), _mm256_load_ps(acc->f + 24)));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 p = _mm_add_ps(h, _mm_movehl_ps(h, h)); /* lanes 0 + 2, 1 + 3 */
    return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}

static void avx2_f16_to_f32(const uint16_t *src, size_t n, float *dst) { avx2_h2f(src, n, dst); }
static void avx2_bf16_to_f32(const uint16_t *src, size_t n, float *dst) { avx2_b2f(src, n, dst); }

static const mx_mm_path avx2_path = {
    .dequantize_row = avx2_deq,
    .f16_to_f32 = avx2_f16_to_f32,
    .bf16_to_f32 = avx2_bf16_to_f32,
    .acc_chunk = avx2_acc_chunk,
    .acc_result = avx2_acc_result,
};

#define AVX2_ROWS(NAME, ID) MX_MM_ROWS_FN(avx2, avx2_path, NAME, ID)
MX_MM_TYPES(AVX2_ROWS)
#undef AVX2_ROWS

/* Installs the AVX2 dot_rows into set (already holding its AVX2 dequantizers and conversions). */
void mx_simd_fill_avx2_matmul(mx_kernel_set *set)
{
    for (int t = 0; t < MIXQ_QT_COUNT; t++)
        avx2_deq[t] = set->dequantize_row[t];
    avx2_h2f = set->f16_to_f32;
    avx2_b2f = set->bf16_to_f32;
#define AVX2_ENTRY(NAME, ID) set->dot_rows[ID] = avx2_dot_rows_##NAME;
    MX_MM_TYPES(AVX2_ENTRY)
#undef AVX2_ENTRY
}
