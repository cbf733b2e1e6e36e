/* kernel_int4.c - scalar reference int4 kernels (FORMAT.md §4.2). */
#include "half.h"
#include "kernels.h"

/* The FORMAT.md §4.2 test for a scale candidate: fl(m + fl(15 * s)) >= hi (15 * s is exact). */
static int int4_covers(float m, uint16_t h, float hi)
{
    float top = 15.0f * mx_f16_to_f32(h);
    float sum = m + top;
    return sum >= hi;
}

/*
 * The smallest f16 s >= 0 with fl(m + 15 * s) >= hi.  The test is monotone
 * in s and the bit patterns of non-negative f16 are ordered like their
 * values, so a binary search over [0, +inf] finds it (0 if m >= hi).
 */
static uint16_t int4_scale(float m, float hi)
{
    unsigned lo = 0, up = 0x7C00u;
    if (int4_covers(m, 0, hi))
        return 0;
    while (up - lo > 1u) { /* invariant: lo fails, up passes */
        unsigned mid = lo + (up - lo) / 2u;
        if (int4_covers(m, (uint16_t)mid, hi))
            up = mid;
        else
            lo = mid;
    }
    return (uint16_t)up;
}

void kernel_int4_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                              mx_rowptrs out)
{
    (void)p; /* min/max only for now */
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    uint8_t *mins = out.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float lo = xg[0], hi = xg[0], m, s;
        uint16_t mh, sh;

        for (size_t i = 1; i < len; i++) {
            if (xg[i] < lo)
                lo = xg[i];
            if (xg[i] > hi)
                hi = xg[i];
        }
        mh = mx_f16_round_down(lo);
        m = mx_f16_to_f32(mh);
        sh = int4_scale(m, hi);
        s = mx_f16_to_f32(sh);
        mx_st16le(scales + 2 * j, sh);
        mx_st16le(mins + 2 * j, mh);

        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            int q = 0;
            if (s > 0.0f) {
                float d = xg[i] - m;
                float t = d / s;
                t = t <= 15.0f ? t : 15.0f;
                t = t >= 0.0f ? t : 0.0f; /* NaN -> 0 (no UB) */
                q = mx_round_half_even(t);
            }
            if (k % 2 == 0)
                codes[k / 2] = (uint8_t)q;
            else
                codes[k / 2] = (uint8_t)(codes[k / 2] | q << 4);
        }
    }
}

void kernel_int4_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    const uint8_t *mins = in.sec[MIXQ_SEC_MINS];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        float s = mx_f16_to_f32(mx_ld16le(scales + 2 * j));
        float m = mx_f16_to_f32(mx_ld16le(mins + 2 * j));
        for (size_t i = 0; i < len; i++) {
            size_t k = start + i;
            unsigned b = codes[k / 2];
            unsigned q = k % 2 == 0 ? (b & 0xFu) : (b >> 4);
            float p = (float)q * s; /* separate multiply, then add: no FMA */
            out[k] = p + m;
        }
    }
}
