/*
 * kernel_int8.c - scalar reference kernels of the symmetric f16-scale types:
 * int8 (FORMAT.md §4.1) and int4s (§4.3).  Both store x^ = q * d with an f16
 * d per group; they differ in the code range, the storage of a code and the
 * sign of d.
 */
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_scale_rules.h"
#include "kernels/kernels.h"

typedef struct symf16_type {
    int qlo, qhi;   /* code range */
    float top;      /* |code| the largest-magnitude element gets in the plain choice */
    bool positive;  /* d >= 0 (int8); else d takes the sign that sends xm to qlo (int4s) */
    unsigned bits;  /* code width: one plane */
    unsigned bias;  /* stored code = (q + bias) mod 2^bits */
} symf16_type;

static const symf16_type T_INT8 = {-127, 127, 127.0f, true, 8, 256};
static const symf16_type T_INT4S = {-8, 7, 8.0f, false, 4, 8};

static void symf16_quantize(const symf16_type *T, const mx_search_ops *ops, const float *x, size_t n,
                            unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    bool search = p != NULL && p->search;
    size_t start, j;

    if (T->bits < 8)
        memset(codes, 0, (n * T->bits + 7u) / 8u);
    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float amax = 0.0f, hi = xg[0], d;
        uint16_t h;

        for (size_t i = 0; i < len; i++) {
            float a = xg[i] < 0.0f ? -xg[i] : xg[i];
            if (a > amax)
                amax = a;
            if (xg[i] > hi)
                hi = xg[i];
        }
        h = mx_sym_group_scale(search ? ops : NULL, xg, search && p->importance ? p->importance + start : NULL, len,
                               T->qlo, T->qhi, T->top, T->positive, amax, hi, &d);
        mx_st16le(scales + 2 * j, h);

        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            int q = 0;
            unsigned u;
            if (d != 0.0f) {
                float t = xg[i] / d;
                t = t <= (float)T->qhi ? t : (float)T->qhi; /* NaN -> qhi (no UB) */
                t = t >= (float)T->qlo ? t : (float)T->qlo;
                q = mx_round_half_even(t);
            }
            u = (unsigned)(q + (int)T->bias) & ((1u << T->bits) - 1u);
            if (T->bits == 8)
                codes[k] = (uint8_t)u;
            else
                codes[k * T->bits / 8u] |= (uint8_t)(u << (k * T->bits % 8u));
        }
    }
}

static void symf16_dequantize(const symf16_type *T, mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    unsigned mask = (1u << T->bits) - 1u;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t h = mx_ld16le(scales + 2 * j);
        float d = mx_f16_to_f32(h);
        if (!mx_f16_bits_finite(h)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            unsigned u = T->bits == 8 ? codes[k] : (unsigned)(codes[k * T->bits / 8u] >> (k * T->bits % 8u)) & mask;
            int q = (int)u - (int)T->bias;
            if (T->bits == 8 && q < -128)
                q += 256; /* two's complement byte */
            out[k] = (float)q * d;
        }
    }
}

void kernel_int8_quantize_row_ops(const mx_search_ops *ops, const float *x, size_t n, unsigned group,
                                  const mx_qparams *p, mx_rowptrs out)
{
    symf16_quantize(&T_INT8, ops, x, n, group, p, out);
}

void kernel_int8_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    symf16_quantize(&T_INT8, &mx_search_ops_scalar, x, n, group, p, out);
}

void kernel_int8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    symf16_dequantize(&T_INT8, in, n, group, out);
}

void kernel_int4s_quantize_row_ops(const mx_search_ops *ops, const float *x, size_t n, unsigned group,
                                   const mx_qparams *p, mx_rowptrs out)
{
    symf16_quantize(&T_INT4S, ops, x, n, group, p, out);
}

void kernel_int4s_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    symf16_quantize(&T_INT4S, &mx_search_ops_scalar, x, n, group, p, out);
}

void kernel_int4s_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    symf16_dequantize(&T_INT4S, in, n, group, out);
}
