/* kernel_int8.c - scalar reference int8 kernels (FORMAT.md §4.1). */
#include "half.h"
#include "kernels.h"

/*
 * The smallest f16 s >= 0 with 127 * s >= amax (0 for amax = 0).  127 * s is
 * exact in binary32 for every finite f16, so the tests are exact; the
 * candidate from the rounded quotient is at most a step off either way.
 */
static uint16_t int8_scale(float amax)
{
    uint16_t h;
    if (!(amax > 0.0f))
        return 0;
    h = mx_f16_round_up(amax / 127.0f);
    while (h > 0 && 127.0f * mx_f16_to_f32((uint16_t)(h - 1u)) >= amax)
        h--;
    while (h < 0x7C00u && 127.0f * mx_f16_to_f32(h) < amax)
        h++;
    return h;
}

void kernel_int8_quantize_row(const float *x, size_t n, unsigned group, const mx_qparams *p,
                              mx_rowptrs out)
{
    (void)p; /* min/max only for now */
    uint8_t *codes = out.sec[MIXQ_SEC_CODES];
    uint8_t *scales = out.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        const float *xg = x + start;
        float amax = 0.0f, s;
        uint16_t h;

        for (size_t i = 0; i < len; i++) {
            float a = xg[i] < 0.0f ? -xg[i] : xg[i];
            if (a > amax)
                amax = a;
        }
        h = int8_scale(amax);
        mx_st16le(scales + 2 * j, h);
        s = mx_f16_to_f32(h);

        for (size_t i = 0; i < len; i++) {
            int q = 0;
            if (s > 0.0f) {
                float t = xg[i] / s;
                t = t <= 127.0f ? t : 127.0f;    /* NaN -> 127 (no UB) */
                t = t >= -127.0f ? t : -127.0f;
                q = mx_round_half_even(t);
            }
            codes[start + i] = (uint8_t)(q < 0 ? q + 256 : q);
        }
    }
}

void kernel_int8_dequantize_row(mx_crowptrs in, size_t n, unsigned group, float *out)
{
    const uint8_t *codes = in.sec[MIXQ_SEC_CODES];
    const uint8_t *scales = in.sec[MIXQ_SEC_SCALES];
    size_t g = group != 0 ? group : n;
    size_t start, j;

    for (start = 0, j = 0; start < n; start += g, j++) {
        size_t len = n - start < g ? n - start : g;
        float s = mx_f16_to_f32(mx_ld16le(scales + 2 * j));
        for (size_t i = 0; i < len; i++) {
            int q = codes[start + i];
            if (q >= 128)
                q -= 256;
            out[start + i] = (float)q * s;
        }
    }
}
