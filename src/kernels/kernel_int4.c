/*
 * kernel_int4.c - scalar reference kernels of the asymmetric f16-scale types:
 * int4 (FORMAT.md §4.2) and int2 (§4.4).  Both store x^ = fl(q * s + m) with
 * an f16 scale s and f16 min m per group and codes q in [0, L].
 */
#include <string.h>

#include "common/half.h"
#include "kernels/kernel_scale_rules.h"
#include "kernels/kernels.h"

static void asymf16_quantize(int L, unsigned bits, const mx_search_ops *ops, const float *x, size_t n,
                             unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    uint8_t *mins = out.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    bool search = p != NULL && p->search;
    size_t start, j;

    memset(codes, 0, (n * bits + 7u) / 8u);
    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float m, s;
        uint16_t mh, sh;
        mx_gstats st;

        if (search) {
            ops->stats(xg, p->importance ? p->importance + start : NULL, len, &st);
        } else {
            st.lo = st.hi = xg[0];
            for (size_t i = 1; i < len; i++) {
                if (xg[i] < st.lo)
                    st.lo = xg[i];
                if (xg[i] > st.hi)
                    st.hi = xg[i];
            }
        }
        mx_asym_group_scale(search ? ops : NULL, xg, search && p->importance ? p->importance + start : NULL, len, L,
                            &st, &sh, &mh, &s, &m);
        mx_st16le(scales + 2 * j, sh);
        mx_st16le(mins + 2 * j, mh);

        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            int q = 0;
            if (s > 0.0f) {
                float d = xg[i] - m;
                float t = d / s;
                t = t <= (float)L ? t : (float)L;
                t = t >= 0.0f ? t : 0.0f; /* NaN -> 0 (no UB) */
                q = mx_round_half_even(t);
            }
            codes[k * bits / 8u] |= (uint8_t)((unsigned)q << (k * bits % 8u));
        }
    }
}

static void asymf16_dequantize(unsigned bits, mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *mins = in.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    unsigned mask = (1u << bits) - 1u;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        uint16_t sh = mx_ld16le(scales + 2 * j), mh = mx_ld16le(mins + 2 * j);
        float s = mx_f16_to_f32(sh);
        float m = mx_f16_to_f32(mh);
        if (!mx_f16_bits_finite(sh) || !mx_f16_bits_finite(mh)) { /* kernels.h: non-finite scale parameters */
            mx_fill_canonical_nan(out + start, len);
            continue;
        }
        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            unsigned q = (unsigned)(codes[k * bits / 8u] >> (k * bits % 8u)) & mask;
            float p = (float)q * s; /* separate multiply, then add: no FMA */
            out[k] = p + m;
        }
    }
}

void kernel_int4_quantize_row_ops(const mx_search_ops *ops, const float *x, size_t n, unsigned group,
                                  const mx_qparams *p, mx_rowptrs out)
{
    asymf16_quantize(15, 4, ops, x, n, group, p, out);
}

void kernel_int4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    asymf16_quantize(15, 4, &mx_search_ops_scalar, x, n, group, p, out);
}

void kernel_int4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    asymf16_dequantize(4, in, n, group, out);
}

void kernel_int2_quantize_row_ops(const mx_search_ops *ops, const float *x, size_t n, unsigned group,
                                  const mx_qparams *p, mx_rowptrs out)
{
    asymf16_quantize(3, 2, ops, x, n, group, p, out);
}

void kernel_int2_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p, mx_rowptrs out)
{
    asymf16_quantize(3, 2, &mx_search_ops_scalar, x, n, group, p, out);
}

void kernel_int2_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    asymf16_dequantize(2, in, n, group, out);
}
