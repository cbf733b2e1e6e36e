/*
 * simd_neon_matmul.c - the NEON matmul row kernels (matmul_kernels.h):
 * chunks decoded by the NEON dequantizers of the kernel set this file is
 * installed into, dotted with 16 FMA partial sums.
 */
#include <arm_neon.h>

#include "matmul_kernels.h"
#include "simd.h"

/* The NEON set's dequantizers and conversions, copied by mx_simd_fill_neon_matmul. */
static mx_dequantize_row_fn neon_deq[MIXQ_QT_COUNT];
static void (*neon_h2f)(const uint16_t *src, size_t n, float *dst);
static void (*neon_b2f)(const uint16_t *src, size_t n, float *dst);

/* Sum i mod 16 += w[i] x[i] (FMA), in index order; a last partial vector is zero-padded. */
static void neon_acc_chunk(mx_mm_acc *acc, const float *w, const float *x, size_t len)
{
    float32x4_t a[4] = {vld1q_f32(acc->f), vld1q_f32(acc->f + 4), vld1q_f32(acc->f + 8), vld1q_f32(acc->f + 12)};
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        a[0] = vfmaq_f32(a[0], vld1q_f32(w + i), vld1q_f32(x + i));
        a[1] = vfmaq_f32(a[1], vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
        a[2] = vfmaq_f32(a[2], vld1q_f32(w + i + 8), vld1q_f32(x + i + 8));
        a[3] = vfmaq_f32(a[3], vld1q_f32(w + i + 12), vld1q_f32(x + i + 12));
    }
    /* the rest (the row's last chunk only): vectors of 4 into the sums their index selects */
    for (; i < len; i += 4) {
        float32x4_t wv, xv;
        if (i + 4 <= len) {
            wv = vld1q_f32(w + i);
            xv = vld1q_f32(x + i);
        } else {
            float wt[4] = {0.0f, 0.0f, 0.0f, 0.0f}, xt[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (size_t k = 0; i + k < len; k++) {
                wt[k] = w[i + k];
                xt[k] = x[i + k];
            }
            wv = vld1q_f32(wt);
            xv = vld1q_f32(xt);
        }
        a[(i / 4) % 4] = vfmaq_f32(a[(i / 4) % 4], wv, xv);
    }
    for (int k = 0; k < 4; k++)
        vst1q_f32(acc->f + 4 * k, a[k]);
}

/* (v0 + v1) + (v2 + v3), then lanes (0 + 2) + (1 + 3). */
static float neon_acc_result(const mx_mm_acc *acc)
{
    float32x4_t v = vaddq_f32(vaddq_f32(vld1q_f32(acc->f), vld1q_f32(acc->f + 4)),
                              vaddq_f32(vld1q_f32(acc->f + 8), vld1q_f32(acc->f + 12)));
    float32x2_t p = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(p, 0) + vget_lane_f32(p, 1);
}

static void neon_f16_to_f32(const uint16_t *src, size_t n, float *dst) { neon_h2f(src, n, dst); }
static void neon_bf16_to_f32(const uint16_t *src, size_t n, float *dst) { neon_b2f(src, n, dst); }

static const mx_mm_path neon_path = {
    .dequantize_row = neon_deq,
    .f16_to_f32 = neon_f16_to_f32,
    .bf16_to_f32 = neon_bf16_to_f32,
    .acc_chunk = neon_acc_chunk,
    .acc_result = neon_acc_result,
};

#define NEON_ROWS(NAME, ID) MX_MM_ROWS_FN(neon, neon_path, NAME, ID)
MX_MM_TYPES(NEON_ROWS)
#undef NEON_ROWS

/* Installs the NEON dot_rows into set (already holding its NEON dequantizers and conversions). */
void mx_simd_fill_neon_matmul(mx_kernel_set *set)
{
    for (int t = 0; t < MIXQ_QT_COUNT; t++)
        neon_deq[t] = set->dequantize_row[t];
    neon_h2f = set->f16_to_f32;
    neon_b2f = set->bf16_to_f32;
#define NEON_ENTRY(NAME, ID) set->dot_rows[ID] = neon_dot_rows_##NAME;
    MX_MM_TYPES(NEON_ENTRY)
#undef NEON_ENTRY
}
