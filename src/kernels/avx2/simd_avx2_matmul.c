/*
 * simd_avx2_matmul.c - the AVX2 (+FMA, F16C) matmul row kernels
 * (matmul_kernels.h): chunks decoded by the AVX2 dequantizers of the kernel
 * set this file is installed into, dotted with 32 FMA partial sums.  Built
 * with the flags of simd_avx2.c (meson.build).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/kernel_fp8.h"
#include "common/half.h"
#include "kernels/kernel_nl4.h"
#include "kernels/kernels.h"

#include "kernels/matmul_kernels.h"
#include "kernels/simd.h"

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


/* ------------------------------------------------------------------------ */
/* direct kernels of whole chunks: codes decoded in registers                */
/* ------------------------------------------------------------------------ */

#define VECS (MX_MM_CHUNK / 8u) /* vectors of 8 per chunk */

/* How a type's weights come from its bytes (the always-inline kernel folds on it). */
typedef enum wkind { K_F32, K_F16, K_BF16, K_S8, K_PLANES, K_E4M3, K_E5M2, K_NL4 } wkind;

typedef struct wdesc {
    wkind kind;
    unsigned w0, w1; /* K_PLANES: code plane widths (w1 = 0: one plane) */
    int qbias;       /* K_PLANES: q = stored code - qbias */
    bool asym;       /* w = q s + m (else q s) */
} wdesc;

/* The 8 fields of width w (1, 2, 4 or 8 bits) of elements k..k+7 (k % 8 == 0) of a plane, as int32; reads only their bytes. */
static inline __attribute__((always_inline)) __m256i plane8(const uint8_t *plane, unsigned w, size_t k)
{
    const uint8_t *b = plane + k * w / 8u;
    uint32_t bits = 0;
    switch (w) {
    case 8: return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)b));
    case 4: memcpy(&bits, b, 4);
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)bits), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                _mm256_set1_epi32(0xF));
    case 2: memcpy(&bits, b, 2);
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)bits), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                _mm256_set1_epi32(3));
    default: bits = b[0];
        return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)bits), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                                _mm256_set1_epi32(1));
    }
}

/* The fp8 codes of elements k..k+7 as the f16 of their value (E4M3: / 256; NaN codes as an f16 NaN). */
static inline __m128i fp8_as_f16(const uint8_t *codes, size_t k, bool e4m3)
{
    __m128i c = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)(codes + k)));
    if (!e4m3)
        return _mm_slli_epi16(c, 8);
    __m128i mag = _mm_and_si128(c, _mm_set1_epi16(0x7F));
    __m128i h = _mm_or_si128(_mm_slli_epi16(mag, 7), _mm_slli_epi16(_mm_and_si128(c, _mm_set1_epi16(0x80)), 8));
    return _mm_or_si128(h, _mm_and_si128(_mm_cmpeq_epi16(mag, _mm_set1_epi16(0x7F)), _mm_set1_epi16(0x7E00)));
}

/*
 * Weights k..k+7 of the row (k % 8 == 0, inside the chunk), s and m those of
 * their group: the same binary32 operations as the dequantizers (q * s, then
 * + m; fp8: dec(code) * s, dec exact).
 */
static inline __attribute__((always_inline)) __m256 weights8(const wdesc *D, mx_crowptrs w, size_t off1, size_t k,
                                                             __m256 s, __m256 m)
{
    const uint8_t *c = w.sec[MIXQ_SEC_CODES];
    const uint8_t *d = w.sec[MIXQ_SEC_DATA];
    switch (D->kind) {
    case K_F32: return _mm256_loadu_ps((const float *)(const void *)(d + 4 * k));
    case K_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(d + 2 * k)));
    case K_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(d + 2 * k))), 16));
    case K_S8:
        return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(c + k)))), s);
    case K_E4M3:
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtph_ps(fp8_as_f16(c, k, true)), _mm256_set1_ps(256.0f)), s);
    case K_E5M2:
        return _mm256_mul_ps(_mm256_cvtph_ps(fp8_as_f16(c, k, false)), s);
    case K_NL4: { /* nl4, nl4_dq: the level of each 4-bit index (two 8-entry permutes), times s */
        __m256i u = plane8(c, 4, k);
        const __m256 l0 = _mm256_setr_ps(mx_nl4_level[0], mx_nl4_level[1], mx_nl4_level[2], mx_nl4_level[3],
                                         mx_nl4_level[4], mx_nl4_level[5], mx_nl4_level[6], mx_nl4_level[7]);
        const __m256 l1 = _mm256_setr_ps(mx_nl4_level[8], mx_nl4_level[9], mx_nl4_level[10], mx_nl4_level[11],
                                         mx_nl4_level[12], mx_nl4_level[13], mx_nl4_level[14], mx_nl4_level[15]);
        __m256 hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(u, _mm256_set1_epi32(7)));
        __m256 lv = _mm256_blendv_ps(_mm256_permutevar8x32_ps(l0, u), _mm256_permutevar8x32_ps(l1, u), hi);
        return _mm256_mul_ps(lv, s);
    }
    default: {
        __m256i u = plane8(c, D->w0, k);
        if (D->w1 != 0)
            u = _mm256_or_si256(u, _mm256_slli_epi32(plane8(c + off1, D->w1, k), (int)D->w0));
        if (D->qbias != 0)
            u = _mm256_sub_epi32(u, _mm256_set1_epi32(D->qbias));
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(u), s);
        return D->asym ? _mm256_add_ps(v, m) : v;
    }
    }
}

/* The DQ kernels' group rule (kernel_dq.c). */
static unsigned dq_group(unsigned group) { return group != 0 && group <= 256u && 256u % group == 0 ? group : 16u; }

/* Fields first..first+cnt-1 of a bit-plane field (kernels.h mx_planes_get, one plane at a time). */
static void fields_run(const uint8_t *base, const uint8_t planes[QT_MAX_PLANES], const size_t off[QT_MAX_PLANES],
                       size_t first, size_t cnt, int *out)
{
    unsigned shift = 0;
    for (size_t i = 0; i < cnt; i++)
        out[i] = 0;
    for (int p = 0; p < QT_MAX_PLANES && planes[p] != 0; p++) {
        unsigned w = planes[p], mask = (1u << w) - 1u;
        const uint8_t *pb = base + off[p];
        for (size_t i = 0; i < cnt; i++) {
            size_t bit = (first + i) * w;
            out[i] |= (int)(((unsigned)(pb[bit / 8u] >> (bit % 8u)) & mask) << shift);
        }
        shift += w;
    }
}

/* Fields k..k+7 (k % 8 == 0) of a field of up to two planes of runtime widths, as int32. */
static inline __m256i fields8(const uint8_t *base, const uint8_t planes[QT_MAX_PLANES], const size_t off[QT_MAX_PLANES],
                              size_t k)
{
    __m256i u = plane8(base + off[0], planes[0], k);
    if (planes[1] != 0)
        u = _mm256_or_si256(u, _mm256_sll_epi32(plane8(base + off[1], planes[1], k), _mm_cvtsi32_si128(planes[0])));
    return u;
}

/*
 * The scale and min of each group the chunk touches (sg, mg: at most 16,
 * the group of vector v of 8 being v >> the returned shift), NaN for a group
 * whose stored parameters are not all finite (the dequantizers give it NaN
 * weights, so the sum is NaN either way).  Runs of 8 groups are converted
 * with vector instructions.
 */
static unsigned chunk_params(const qtype_desc *qt, mx_crowptrs w, size_t n, unsigned group, size_t k0, float *sg,
                             float *mg)
{
    const uint8_t *sc = w.sec[MIXQ_SEC_SCALES], *mn = w.sec[MIXQ_SEC_MINS];
    const float qnan = __builtin_nanf("");
    bool dq = qt->super_block != 0;
    size_t G = dq ? dq_group(group) : (group != 0 ? group : n);
    /* groups of G >= 256 elements hold the whole chunk (G is a power of two dividing 256, or the row) */
    size_t per = G >= MX_MM_CHUNK ? VECS : G / 8u, cnt = VECS / per, g = k0 / G, j = 0;
    unsigned sh = (unsigned)__builtin_ctzll(per);

    if (dq) {
        size_t b = k0 / qt->super_block, ng = (n + G - 1) / G, soff[QT_MAX_PLANES];
        uint16_t dh = mx_ld16le(w.sec[MIXQ_SEC_SUPER_SCALES] + 2 * b);
        uint16_t dmh = qt->symmetric ? 0 : mx_ld16le(w.sec[MIXQ_SEC_SUPER_MINS] + 2 * b);
        int cbias = (int)qt->scale_code_bias;
        if (!mx_f16_bits_finite(dh) || !mx_f16_bits_finite(dmh)) {
            for (j = 0; j < cnt; j++)
                sg[j] = mg[j] = qnan;
            return sh;
        }
        float d = _cvtsh_ss(dh), dm = _cvtsh_ss(dmh);
        mx_planes_offsets(qt->scale_planes, ng, soff);
        if (g % 8 == 0)
            for (; j + 8 <= cnt; j += 8) {
                __m256i c = _mm256_sub_epi32(fields8(sc, qt->scale_planes, soff, g + j), _mm256_set1_epi32(cbias));
                _mm256_storeu_ps(sg + j, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(c)));
                if (!qt->symmetric)
                    _mm256_storeu_ps(mg + j, _mm256_mul_ps(_mm256_set1_ps(dm),
                                                           _mm256_cvtepi32_ps(fields8(mn, qt->scale_planes, soff, g + j))));
            }
        if (j < cnt) {
            int scode[VECS], mcode[VECS];
            fields_run(sc, qt->scale_planes, soff, g + j, cnt - j, scode);
            if (!qt->symmetric)
                fields_run(mn, qt->scale_planes, soff, g + j, cnt - j, mcode);
            for (size_t i = 0; j < cnt; j++, i++) {
                sg[j] = d * (float)(scode[i] - cbias);
                mg[j] = qt->symmetric ? 0.0f : dm * (float)mcode[i];
            }
        }
        return sh;
    }
    if (qt->scale_kind == QS_F16)
        for (; j + 8 <= cnt; j += 8) {
            const __m128i e = _mm_set1_epi16(0x7C00);
            __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(sc + 2 * (g + j)));
            __m128i hm = qt->symmetric ? _mm_setzero_si128() : _mm_loadu_si128((const __m128i *)(const void *)(mn + 2 * (g + j)));
            __m128i bad = _mm_or_si128(_mm_cmpeq_epi16(_mm_and_si128(h, e), e), _mm_cmpeq_epi16(_mm_and_si128(hm, e), e));
            if (!_mm_testz_si128(bad, bad))
                break; /* a non-finite parameter: the scalar loop below */
            _mm256_storeu_ps(sg + j, _mm256_cvtph_ps(h));
            _mm256_storeu_ps(mg + j, _mm256_cvtph_ps(hm));
        }
    for (; j < cnt; j++) {
        float s, m = 0.0f;
        bool ok;
        if (qt->scale_kind == QS_F32) {
            s = mx_fp8_ld_f32le(sc + 4 * (g + j));
            ok = mx_f32_finite(s);
        } else {
            uint16_t h = mx_ld16le(sc + 2 * (g + j)), hm = qt->symmetric ? 0 : mx_ld16le(mn + 2 * (g + j));
            s = _cvtsh_ss(h);
            m = _cvtsh_ss(hm);
            ok = mx_f16_bits_finite(h) && mx_f16_bits_finite(hm);
        }
        sg[j] = ok ? s : qnan;
        mg[j] = ok ? m : qnan;
    }
    return sh;
}

/* The quantized kinds read a scale (and min) per vector. */
static inline bool kind_quantized(wkind k) { return k != K_F32 && k != K_F16 && k != K_BF16; }

/*
 * Chunks [0, nchunks) of the row against x rows x0 (into c0) and, if two, x1
 * (into c1), sharing each decoded vector; the accumulators stay in registers
 * across the chunks (written out for the 4 of each row).
 */
static inline __attribute__((always_inline)) void fast_rows(const wdesc *D, const qtype_desc *qt, mx_crowptrs w,
                                                            size_t n, unsigned group, size_t nchunks, const float *x0,
                                                            const float *x1, mx_mm_acc *c0, mx_mm_acc *c1, bool two)
{
    _Alignas(32) float sg[VECS], mg[VECS];
    const bool q = kind_quantized(D->kind);
    size_t off1 = D->kind == K_PLANES && D->w1 != 0 ? (n * D->w0 + 7u) / 8u : 0;
    __m256 a0 = _mm256_load_ps(c0->f), a1 = _mm256_load_ps(c0->f + 8);
    __m256 a2 = _mm256_load_ps(c0->f + 16), a3 = _mm256_load_ps(c0->f + 24);
    __m256 e0 = a0, e1 = a1, e2 = a2, e3 = a3;
    if (two) {
        e0 = _mm256_load_ps(c1->f);
        e1 = _mm256_load_ps(c1->f + 8);
        e2 = _mm256_load_ps(c1->f + 16);
        e3 = _mm256_load_ps(c1->f + 24);
    }
    for (size_t c = 0; c < nchunks; c++) {
        size_t k0 = c * MX_MM_CHUNK;
        unsigned sh = q ? chunk_params(qt, w, n, group, k0, sg, mg) : 0;
        const float *y0 = x0 + k0, *y1 = two ? x1 + k0 : NULL;
#define STEP(U, A, E, S, M)                                                                                      \
    do {                                                                                                         \
        size_t vv = v + (U);                                                                                     \
        __m256 wv = weights8(D, w, off1, k0 + 8 * vv, S, M);                                                     \
        A = _mm256_fmadd_ps(wv, _mm256_loadu_ps(y0 + 8 * vv), A);                                                \
        if (two)                                                                                                 \
            E = _mm256_fmadd_ps(wv, _mm256_loadu_ps(y1 + 8 * vv), E);                                            \
    } while (0)
#define SCALE(V) (q ? _mm256_broadcast_ss(sg + ((V) >> sh)) : _mm256_setzero_ps())
#define MIN(V) (q && D->asym ? _mm256_broadcast_ss(mg + ((V) >> sh)) : _mm256_setzero_ps())
        if (sh >= 2) { /* groups of 32 or more: one scale (and min) per step of 4 vectors */
            for (size_t v = 0; v < VECS; v += 4) {
                __m256 s = SCALE(v), m = MIN(v);
                STEP(0, a0, e0, s, m);
                STEP(1, a1, e1, s, m);
                STEP(2, a2, e2, s, m);
                STEP(3, a3, e3, s, m);
            }
        } else {
            for (size_t v = 0; v < VECS; v += 4) {
                __m256 s = SCALE(v), m = MIN(v), s2 = SCALE(v + 2), m2 = MIN(v + 2);
                if (sh == 0) {
                    STEP(0, a0, e0, s, m);
                    STEP(1, a1, e1, SCALE(v + 1), MIN(v + 1));
                    STEP(2, a2, e2, s2, m2);
                    STEP(3, a3, e3, SCALE(v + 3), MIN(v + 3));
                } else {
                    STEP(0, a0, e0, s, m);
                    STEP(1, a1, e1, s, m);
                    STEP(2, a2, e2, s2, m2);
                    STEP(3, a3, e3, s2, m2);
                }
            }
        }
#undef SCALE
#undef MIN
#undef STEP
    }
    _mm256_store_ps(c0->f, a0);
    _mm256_store_ps(c0->f + 8, a1);
    _mm256_store_ps(c0->f + 16, a2);
    _mm256_store_ps(c0->f + 24, a3);
    if (two) {
        _mm256_store_ps(c1->f, e0);
        _mm256_store_ps(c1->f + 8, e1);
        _mm256_store_ps(c1->f + 16, e2);
        _mm256_store_ps(c1->f + 24, e3);
    }
}

/*
 * The row's whole chunks against nb x rows, two at a time: acc[b] gets
 * exactly what avx2_acc_chunk adds after decoding each chunk (each row's
 * sums are independent).
 */
static inline __attribute__((always_inline)) void fast_chunks(const wdesc *D, const qtype_desc *qt, mx_crowptrs w,
                                                              size_t n, unsigned group, size_t nchunks, const float *x,
                                                              size_t x_stride, size_t nb, mx_mm_acc *acc)
{
    size_t b = 0;
    for (; b + 2 <= nb; b += 2)
        fast_rows(D, qt, w, n, group, nchunks, x + b * x_stride, x + (b + 1) * x_stride, &acc[b], &acc[b + 1], true);
    if (b < nb)
        fast_rows(D, qt, w, n, group, nchunks, x + b * x_stride, NULL, &acc[b], NULL, false);
}

#define FAST(NAME, ID, ...)                                                                                     \
    static void fast_##NAME(mx_crowptrs w, size_t n, unsigned group, size_t nchunks, const float *x,            \
                            size_t x_stride, size_t nb, mx_mm_acc *acc)                                          \
    {                                                                                                            \
        static const wdesc D = __VA_ARGS__;                                                                      \
        fast_chunks(&D, &mx_qtypes[ID], w, n, group, nchunks, x, x_stride, nb, acc);                             \
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
FAST(nl4, MIXQ_QT_NL4, {K_NL4, 4, 0, 0, false})
FAST(nl4_dq, MIXQ_QT_NL4_DQ, {K_NL4, 4, 0, 0, false})
#undef FAST

/* The direct kernels, installed only for types whose table entries still match their wdesc (checked in the fill). */
static mx_mm_fast_fn avx2_fast[MIXQ_QT_COUNT];

static void avx2_f16_to_f32(const uint16_t *src, size_t n, float *dst) { avx2_h2f(src, n, dst); }
static void avx2_bf16_to_f32(const uint16_t *src, size_t n, float *dst) { avx2_b2f(src, n, dst); }

static const mx_mm_path avx2_path = {
    .dequantize_row = avx2_deq,
    .f16_to_f32 = avx2_f16_to_f32,
    .bf16_to_f32 = avx2_bf16_to_f32,
    .acc_chunk = avx2_acc_chunk,
    .acc_result = avx2_acc_result,
    .fast = avx2_fast,
};

#define AVX2_ROWS(NAME, ID) MX_MM_ROWS_FN(avx2, avx2_path, NAME, ID)
MX_MM_TYPES(AVX2_ROWS)
#undef AVX2_ROWS

/*
 * The same kernels without the direct chunk kernels (every chunk decoded
 * into the buffer): exported for tests/test_matmul.c, which checks that the
 * two give the same bits.
 */
static const mx_mm_path avx2_path_buffered = {
    .dequantize_row = avx2_deq,
    .f16_to_f32 = avx2_f16_to_f32,
    .bf16_to_f32 = avx2_bf16_to_f32,
    .acc_chunk = avx2_acc_chunk,
    .acc_result = avx2_acc_result,
};
#define AVX2B_ROWS(NAME, ID) MX_MM_ROWS_FN(avx2b, avx2_path_buffered, NAME, ID)
MX_MM_TYPES(AVX2B_ROWS)
#undef AVX2B_ROWS
#define AVX2B_ENTRY(NAME, ID) [ID] = avx2b_dot_rows_##NAME,
const mx_dot_rows_fn mx_dot_rows_avx2_buffered[MIXQ_QT_COUNT] = {MX_MM_TYPES(AVX2B_ENTRY)};
#undef AVX2B_ENTRY

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
        {MIXQ_QT_NL4, kernel_nl4_dequantize_row, fast_nl4, 4, 0},
        {MIXQ_QT_NL4_DQ, kernel_nl4_dq_dequantize_row, fast_nl4_dq, 4, 0},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const qtype_desc *qt = &mx_qtypes[k[i].id];
        if (mx_qtypes[k[i].id].dequantize_row == k[i].ref &&
            (!qt->quantized || (qt->code_planes[0] == k[i].w0 && qt->code_planes[1] == k[i].w1 &&
                                (k[i].w1 == 0 || qt->code_planes[2] == 0))))
            avx2_fast[k[i].id] = k[i].fast;
    }
}
