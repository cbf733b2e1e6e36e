/*
 * simd_neon_matmul.c - the NEON matmul row kernels (matmul_kernels.h):
 * chunks decoded by the NEON dequantizers of the kernel set this file is
 * installed into, dotted with 16 FMA partial sums; whole chunks decoded in
 * registers by direct kernels that add the same terms in the same order.
 */
#include <arm_neon.h>
#include <string.h>

#include "kernels/kernel_fp8.h"
#include "common/half.h"
#include "kernels/kernels.h"

#include "kernels/matmul_kernels.h"
#include "kernels/simd.h"

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


/* ------------------------------------------------------------------------ */
/* direct kernels of whole chunks: codes decoded in registers                */
/* ------------------------------------------------------------------------ */

#define VECS (MX_MM_CHUNK / 8u) /* groups of 8 elements per chunk */

/* How a type's weights come from its bytes (the always-inline kernel folds on it). */
typedef enum wkind { K_F32, K_F16, K_BF16, K_S8, K_PLANES, K_E4M3, K_E5M2 } wkind;

typedef struct wdesc {
    wkind kind;
    unsigned w0, w1; /* K_PLANES: code plane widths (w1 = 0: one plane) */
    int qbias;       /* K_PLANES: q = stored code - qbias */
    bool asym;       /* w = q s + m (else q s) */
} wdesc;

static inline bool kind_quantized(wkind k) { return k != K_F32 && k != K_F16 && k != K_BF16; }

/* The 8 fields of width w (1, 2, 4 or 8 bits) of elements k..k+7 (k % 8 == 0) of a plane as two u32x4; reads only their bytes. */
static inline __attribute__((always_inline)) void plane8(const uint8_t *plane, unsigned w, size_t k, uint32x4_t *lo,
                                                         uint32x4_t *hi)
{
    const uint8_t *b = plane + k * w / 8u;
    if (w == 8) {
        uint16x8_t u = vmovl_u8(vld1_u8(b));
        *lo = vmovl_u16(vget_low_u16(u));
        *hi = vmovl_high_u16(u);
        return;
    }
    uint32_t bits = 0;
    memcpy(&bits, b, w); /* 8 fields of w bits = w bytes */
    const int32_t sw = (int32_t)w;
    const int32_t s0[4] = {0, -sw, -2 * sw, -3 * sw}, s1[4] = {-4 * sw, -5 * sw, -6 * sw, -7 * sw};
    uint32x4_t v = vdupq_n_u32(bits), mask = vdupq_n_u32((1u << w) - 1u);
    *lo = vandq_u32(vshlq_u32(v, vld1q_s32(s0)), mask);
    *hi = vandq_u32(vshlq_u32(v, vld1q_s32(s1)), mask);
}

/* fp8 codes of elements k..k+7 -> floats, as mx_e4m3_to_f32 / mx_e5m2_to_f32 (simd_neon.c's decoders). */
static inline void fp8_dec8(const uint8_t *codes, size_t k, bool e4m3, float32x4_t *lo, float32x4_t *hi)
{
    uint16x8_t c = vmovl_u8(vld1_u8(codes + k));
    if (!e4m3) {
        float16x8_t h = vreinterpretq_f16_u16(vshlq_n_u16(c, 8));
        *lo = vcvt_f32_f16(vget_low_f16(h));
        *hi = vcvt_high_f32_f16(h);
        return;
    }
    const float32x4_t k256 = vdupq_n_f32(256.0f);
    uint16x8_t mag = vandq_u16(c, vdupq_n_u16(0x7Fu));
    float16x8_t h = vreinterpretq_f16_u16(vshlq_n_u16(mag, 7));
    uint16x8_t is_nan = vceqq_u16(mag, vdupq_n_u16(0x7Fu));
    uint16x8_t sign = vandq_u16(c, vdupq_n_u16(0x80u));
    uint32x4_t slo = vshlq_n_u32(vmovl_u16(vget_low_u16(sign)), 24), shi = vshlq_n_u32(vmovl_high_u16(sign), 24);
    uint32x4_t nlo = vreinterpretq_u32_s32(vmovl_s16(vget_low_s16(vreinterpretq_s16_u16(is_nan))));
    uint32x4_t nhi = vreinterpretq_u32_s32(vmovl_high_s16(vreinterpretq_s16_u16(is_nan)));
    uint32x4_t blo = vorrq_u32(vreinterpretq_u32_f32(vmulq_f32(vcvt_f32_f16(vget_low_f16(h)), k256)), slo);
    uint32x4_t bhi = vorrq_u32(vreinterpretq_u32_f32(vmulq_f32(vcvt_high_f32_f16(h), k256)), shi);
    blo = vbslq_u32(nlo, vorrq_u32(slo, vdupq_n_u32(0x7FC00000u)), blo);
    bhi = vbslq_u32(nhi, vorrq_u32(shi, vdupq_n_u32(0x7FC00000u)), bhi);
    *lo = vreinterpretq_f32_u32(blo);
    *hi = vreinterpretq_f32_u32(bhi);
}

/*
 * Weights k..k+7 of the row (k % 8 == 0, inside the chunk) as two vectors of
 * 4, s and m those of their group: the same binary32 operations as the
 * dequantizers (q * s, then + m; fp8: dec(code) * s).
 */
static inline __attribute__((always_inline)) void weights8(const wdesc *D, mx_crowptrs w, size_t off1, size_t k,
                                                           float32x4_t s, float32x4_t m, float32x4_t *lo,
                                                           float32x4_t *hi)
{
    const uint8_t *c = w.sec[MIXQ_SEC_CODES];
    const uint8_t *d = w.sec[MIXQ_SEC_DATA];
    switch (D->kind) {
    case K_F32:
        *lo = vreinterpretq_f32_u8(vld1q_u8(d + 4 * k));
        *hi = vreinterpretq_f32_u8(vld1q_u8(d + 4 * k + 16));
        return;
    case K_F16: {
        float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(d + 2 * k));
        *lo = vcvt_f32_f16(vget_low_f16(h));
        *hi = vcvt_high_f32_f16(h);
        return;
    }
    case K_BF16: {
        uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8(d + 2 * k));
        *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
        *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
        return;
    }
    case K_S8: {
        int16x8_t q = vmovl_s8(vreinterpret_s8_u8(vld1_u8(c + k)));
        *lo = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(q))), s);
        *hi = vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(q)), s);
        return;
    }
    case K_E4M3:
    case K_E5M2: {
        float32x4_t a, b;
        fp8_dec8(c, k, D->kind == K_E4M3, &a, &b);
        *lo = vmulq_f32(a, s);
        *hi = vmulq_f32(b, s);
        return;
    }
    default: {
        uint32x4_t u0, u1;
        plane8(c, D->w0, k, &u0, &u1);
        if (D->w1 != 0) {
            uint32x4_t v0, v1;
            plane8(c + off1, D->w1, k, &v0, &v1);
            u0 = vorrq_u32(u0, vshlq_u32(v0, vdupq_n_s32((int)D->w0)));
            u1 = vorrq_u32(u1, vshlq_u32(v1, vdupq_n_s32((int)D->w0)));
        }
        int32x4_t q0 = vsubq_s32(vreinterpretq_s32_u32(u0), vdupq_n_s32(D->qbias));
        int32x4_t q1 = vsubq_s32(vreinterpretq_s32_u32(u1), vdupq_n_s32(D->qbias));
        float32x4_t a = vmulq_f32(vcvtq_f32_s32(q0), s), b = vmulq_f32(vcvtq_f32_s32(q1), s);
        *lo = D->asym ? vaddq_f32(a, m) : a;
        *hi = D->asym ? vaddq_f32(b, m) : b;
        return;
    }
    }
}

/*
 * Chunks [0, nchunks) of the row against one x row: element i into partial
 * sum i mod 16 (vector (i / 4) % 4), as neon_acc_chunk after decoding.
 */
static inline __attribute__((always_inline)) void fast_row(const wdesc *D, const qtype_desc *qt, mx_crowptrs w,
                                                           size_t n, unsigned group, size_t nchunks, const float *x,
                                                           mx_mm_acc *acc)
{
    float sg[VECS], mg[VECS];
    const bool q = kind_quantized(D->kind);
    size_t off1 = D->kind == K_PLANES && D->w1 != 0 ? (n * D->w0 + 7u) / 8u : 0;
    float32x4_t a0 = vld1q_f32(acc->f), a1 = vld1q_f32(acc->f + 4), a2 = vld1q_f32(acc->f + 8),
                a3 = vld1q_f32(acc->f + 12);
    for (size_t c = 0; c < nchunks; c++) {
        size_t k0 = c * MX_MM_CHUNK;
        unsigned sh = q ? mx_mm_chunk_params(qt, w, n, group, k0, sg, mg) : 0;
        const float *xc = x + k0;
        for (size_t v = 0; v < VECS; v += 2) { /* 16 elements: two groups of 8 */
            float32x4_t s0 = vdupq_n_f32(0.0f), m0 = s0, s1 = s0, m1 = s0, w0, w1, w2, w3;
            if (q) {
                s0 = vdupq_n_f32(sg[v >> sh]);
                s1 = vdupq_n_f32(sg[(v + 1) >> sh]);
                if (D->asym) {
                    m0 = vdupq_n_f32(mg[v >> sh]);
                    m1 = vdupq_n_f32(mg[(v + 1) >> sh]);
                }
            }
            weights8(D, w, off1, k0 + 8 * v, s0, m0, &w0, &w1);
            weights8(D, w, off1, k0 + 8 * v + 8, s1, m1, &w2, &w3);
            a0 = vfmaq_f32(a0, w0, vld1q_f32(xc + 8 * v));
            a1 = vfmaq_f32(a1, w1, vld1q_f32(xc + 8 * v + 4));
            a2 = vfmaq_f32(a2, w2, vld1q_f32(xc + 8 * v + 8));
            a3 = vfmaq_f32(a3, w3, vld1q_f32(xc + 8 * v + 12));
        }
    }
    vst1q_f32(acc->f, a0);
    vst1q_f32(acc->f + 4, a1);
    vst1q_f32(acc->f + 8, a2);
    vst1q_f32(acc->f + 12, a3);
}

#define FAST(NAME, ID, ...)                                                                                     \
    static void fast_##NAME(mx_crowptrs w, size_t n, unsigned group, size_t nchunks, const float *x,            \
                            size_t x_stride, size_t nb, mx_mm_acc *acc)                                          \
    {                                                                                                            \
        static const wdesc D = __VA_ARGS__;                                                                      \
        for (size_t b = 0; b < nb; b++)                                                                          \
            fast_row(&D, &mx_qtypes[ID], w, n, group, nchunks, x + b * x_stride, &acc[b]);                       \
    }
FAST(f32, MIXQ_QT_F32, {K_F32, 0, 0, 0, false})
FAST(f16, MIXQ_QT_F16, {K_F16, 0, 0, 0, false})
FAST(bf16, MIXQ_QT_BF16, {K_BF16, 0, 0, 0, false})
FAST(int8, MIXQ_QT_INT8, {K_S8, 0, 0, 0, false})
FAST(int4, MIXQ_QT_INT4, {K_PLANES, 4, 0, 0, true})
FAST(int4s, MIXQ_QT_INT4S, {K_PLANES, 4, 0, 8, false})
FAST(int2, MIXQ_QT_INT2, {K_PLANES, 2, 0, 0, true})
FAST(fp8_e4m3, MIXQ_QT_FP8_E4M3, {K_E4M3, 0, 0, 0, false})
FAST(fp8_e5m2, MIXQ_QT_FP8_E5M2, {K_E5M2, 0, 0, 0, false})
FAST(int4_dq, MIXQ_QT_INT4_DQ, {K_PLANES, 4, 0, 0, true})
FAST(int2_dq, MIXQ_QT_INT2_DQ, {K_PLANES, 2, 0, 0, true})
FAST(int3_dq, MIXQ_QT_INT3_DQ, {K_PLANES, 2, 1, 4, false})
FAST(int6_dq, MIXQ_QT_INT6_DQ, {K_PLANES, 4, 2, 32, false})
#undef FAST

/* The direct kernels, installed only for types whose table entries still match their wdesc (checked in the fill). */
static mx_mm_fast_fn neon_fast[MIXQ_QT_COUNT];

static void neon_f16_to_f32(const uint16_t *src, size_t n, float *dst) { neon_h2f(src, n, dst); }
static void neon_bf16_to_f32(const uint16_t *src, size_t n, float *dst) { neon_b2f(src, n, dst); }

static const mx_mm_path neon_path = {
    .dequantize_row = neon_deq,
    .f16_to_f32 = neon_f16_to_f32,
    .bf16_to_f32 = neon_bf16_to_f32,
    .acc_chunk = neon_acc_chunk,
    .acc_result = neon_acc_result,
    .fast = neon_fast,
};

#define NEON_ROWS(NAME, ID) MX_MM_ROWS_FN(neon, neon_path, NAME, ID)
MX_MM_TYPES(NEON_ROWS)
#undef NEON_ROWS

/* The same kernels without the direct chunk kernels: exported for tests/kernel_check.c (same bits expected). */
static const mx_mm_path neon_path_buffered = {
    .dequantize_row = neon_deq,
    .f16_to_f32 = neon_f16_to_f32,
    .bf16_to_f32 = neon_bf16_to_f32,
    .acc_chunk = neon_acc_chunk,
    .acc_result = neon_acc_result,
};
#define NEONB_ROWS(NAME, ID) MX_MM_ROWS_FN(neonb, neon_path_buffered, NAME, ID)
MX_MM_TYPES(NEONB_ROWS)
#undef NEONB_ROWS
#define NEONB_ENTRY(NAME, ID) [ID] = neonb_dot_rows_##NAME,
const mx_dot_rows_fn mx_dot_rows_neon_buffered[MIXQ_QT_COUNT] = {MX_MM_TYPES(NEONB_ENTRY)};
#undef NEONB_ENTRY

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
    /* direct kernels: each only while the table still holds the reference dequantizer and code planes it mirrors */
    static const struct {
        mixq_qtype id;
        mx_dequantize_row_fn ref;
        mx_mm_fast_fn fast;
        uint8_t w0, w1;
    } k[] = {
        {MIXQ_QT_F32, NULL, fast_f32, 0, 0},
        {MIXQ_QT_F16, NULL, fast_f16, 0, 0},
        {MIXQ_QT_BF16, NULL, fast_bf16, 0, 0},
        {MIXQ_QT_INT8, kernel_int8_dequantize_row, fast_int8, 8, 0},
        {MIXQ_QT_INT4, kernel_int4_dequantize_row, fast_int4, 4, 0},
        {MIXQ_QT_INT4S, kernel_int4s_dequantize_row, fast_int4s, 4, 0},
        {MIXQ_QT_INT2, kernel_int2_dequantize_row, fast_int2, 2, 0},
        {MIXQ_QT_FP8_E4M3, kernel_fp8_e4m3_dequantize_row, fast_fp8_e4m3, 8, 0},
        {MIXQ_QT_FP8_E5M2, kernel_fp8_e5m2_dequantize_row, fast_fp8_e5m2, 8, 0},
        {MIXQ_QT_INT4_DQ, kernel_int4_dq_dequantize_row, fast_int4_dq, 4, 0},
        {MIXQ_QT_INT2_DQ, kernel_int2_dq_dequantize_row, fast_int2_dq, 2, 0},
        {MIXQ_QT_INT3_DQ, kernel_int3_dq_dequantize_row, fast_int3_dq, 2, 1},
        {MIXQ_QT_INT6_DQ, kernel_int6_dq_dequantize_row, fast_int6_dq, 4, 2},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const qtype_desc *qt = &mx_qtypes[k[i].id];
        if (mx_qtypes[k[i].id].dequantize_row == k[i].ref &&
            (!qt->quantized || (qt->code_planes[0] == k[i].w0 && qt->code_planes[1] == k[i].w1 &&
                                (k[i].w1 == 0 || qt->code_planes[2] == 0))))
            neon_fast[k[i].id] = k[i].fast;
    }
}
