/* kernel_fp8.c - scalar reference fp8_e4m3 / fp8_e5m2 kernels (FORMAT.md §4, fp8). */
#include <float.h>

#include "kernels/kernel_fp8.h"
#include "common/half.h"
#include "kernels/kernel_scale_rules.h"
#include "kernels/kernels.h"

/*
 * The search multipliers c_k = 2^(k/16), k = 0..15, rounded to binary32 (c_0
 * = 1 is RTN).  On a floating-point grid the error is periodic in log2(s)
 * (period 1) except for clipping at the top and underflow at the bottom, so
 * one octave of scales at and above the RTN scale tries every alignment of
 * the values on the fp8 grid without clipping anything.  Measured on
 * Gaussian, Laplace and heavy-tailed groups of 32 and 128 this lowers the
 * squared error by 20-38% against RTN, more than the same number of clipping
 * candidates (c < 1) or a mix of both.
 */
const float mx_fp8_search_mult[MX_FP8_SEARCH_CANDIDATES] = {
    0x1p+0f,         0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f,
    0x1.306fep+0f,   0x1.3dea64p+0f, 0x1.4bfdaep+0f, 0x1.5ab07ep+0f,
    0x1.6a09e6p+0f,  0x1.7a1148p+0f, 0x1.8ace54p+0f, 0x1.9c4918p+0f,
    0x1.ae89fap+0f,  0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f,
};

typedef uint8_t (*fp8_enc_fn)(float);
typedef float (*fp8_dec_fn)(uint8_t);

/* Codes of x[0..len) with scale s (s > 0): enc(fl(x / s)); all 0x00 for s == 0. */
static void fp8_encode_group(const float *x, size_t len, float s, fp8_enc_fn enc, uint8_t *codes)
{
    for (size_t i = 0; i < len; i++)
        codes[i] = s > 0.0f ? enc(x[i] / s) : 0u;
}

/*
 * The search error of scale s on x[0..len) (fp8.h): sum of w_i * (d_i * d_i),
 * d_i = x_i - fl(dec(enc(fl(x_i / s))) * s), in 8 binary32 partial sums by
 * i mod 8 combined in a fixed tree, so that an 8-lane SIMD loop gives the
 * same bits.
 */
static float fp8_group_error(const float *x, const float *w, size_t len, float s, fp8_enc_fn enc,
                             fp8_dec_fn dec)
{
    float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t i = 0; i < len; i++) {
        float xh = dec(enc(x[i] / s)) * s;
        float d = x[i] - xh;
        float e = d * d;
        if (w)
            e = w[i] * e;
        acc[i % 8] += e;
    }
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

static void fp8_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                             mx_rowptrs out, float fmax, fp8_enc_fn enc, fp8_dec_fn dec)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    if (n == 0)
        return;
    if (p != NULL && p->tensor_absmax >= 0.0f) { /* per-tensor: one scale, RTN */
        float s = mx_fp8_rtn_scale(p->tensor_absmax, fmax);
        mx_fp8_st_f32le(scales, s);
        fp8_encode_group(x, n, s, enc, codes);
        return;
    }

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float amax = 0.0f, s;

        for (size_t i = 0; i < len; i++) {
            float a = xg[i] < 0.0f ? -xg[i] : xg[i];
            if (a > amax)
                amax = a;
        }
        s = mx_fp8_rtn_scale(amax, fmax);
        if (p != NULL && p->search && s > 0.0f && amax <= FLT_MAX) {
            const float *w = p->importance ? p->importance + start : NULL;
            float best = fp8_group_error(xg, w, len, s, enc, dec);
            float s0 = s;
            for (int k = 1; k < MX_FP8_SEARCH_CANDIDATES; k++) {
                float sk = s0 * mx_fp8_search_mult[k];
                float err = fp8_group_error(xg, w, len, sk, enc, dec);
                if (err < best) {
                    best = err;
                    s = sk;
                }
            }
        }
        mx_fp8_st_f32le(scales + 4 * j, s);
        fp8_encode_group(xg, len, s, enc, codes + start);
    }
}

static void fp8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out,
                               fp8_dec_fn dec)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        float s = mx_fp8_ld_f32le(scales + 4 * j);
        if (!mx_f32_finite(s)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        for (size_t i = 0; i < len; i++)
            out[start + i] = dec(codes[start + i]) * s;
    }
}

void kernel_fp8_e4m3_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                  mx_rowptrs out)
{
    fp8_quantize_row(x, n, group, p, out, MX_FP8_E4M3_MAX, mx_f32_to_e4m3, mx_e4m3_to_f32);
}

void kernel_fp8_e4m3_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    fp8_dequantize_row(in, n, group, out, mx_e4m3_to_f32);
}

void kernel_fp8_e5m2_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                  mx_rowptrs out)
{
    fp8_quantize_row(x, n, group, p, out, MX_FP8_E5M2_MAX, mx_f32_to_e5m2, mx_e5m2_to_f32);
}

void kernel_fp8_e5m2_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    fp8_dequantize_row(in, n, group, out, mx_e5m2_to_f32);
}
