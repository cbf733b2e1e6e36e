/*
 * test_simd.c - every SIMD kernel set this build and CPU have (simd.h) against
 * the scalar reference set, bit for bit:
 *   - for every quantized type in mx_qtypes (so new types are covered as soon
 *     as they enter the table): codes and every other section byte for byte,
 *     dequantized floats bit for bit, over random row lengths (1..3000, many
 *     below 8 and not multiples of 8 / 32), every allowed group size,
 *     misaligned pointers, with and without the error-minimizing search,
 *     with and without importance weights, and data with outliers, all-zero
 *     and constant groups, +-65504, f16- and f32-subnormal magnitudes, exact
 *     rounding ties and a wide dynamic range;
 *   - dequantization of arbitrary bytes (random codes under real scales, and
 *     every section random), NaN payloads and signs included;
 *   - non-finite scale parameters (kernels.h): NaN / +-Inf f16 scales and
 *     mins, fp8 binary32 scales (per group and per tensor) and DQ
 *     super-scales / super-mins, with NaN / Inf fp8 codes and zero scales:
 *     bit for bit, and the affected groups exactly 0x7FC00000;
 *   - the array conversions: all 65536 f16 and bf16 patterns to f32, and
 *     millions of f32 patterns (random bits, NaN / Inf / subnormals, rounding
 *     ties at every f16 and bf16 exponent) to f16 and bf16, with every tail
 *     length.
 * Set MIXQ_TEST_EXHAUSTIVE=1 to check f32 -> f16 / bf16 on all 2^32 inputs.
 * A build or CPU without any SIMD path skips.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp8.h"
#include "common/half.h"
#include "kernels/kernels.h"
#include "kernels/qtype.h"
#include "kernels/quant_search.h"
#include "kernels/simd.h"
#include "test_rng.h"
#include "test_support.h"

/*
 * The search passes of the SIMD paths (defined in src/simd_<path>.c when it
 * is built; weak, so a build without them links and the test skips).
 */
extern const mx_search_ops mx_search_ops_avx2 __attribute__((weak));
extern const mx_search_ops mx_search_ops_neon __attribute__((weak));

/* ---- random numbers ---- */

static float clampq(double v)
{
    if (v > 65504.0)
        return 65504.0f;
    if (v < -65504.0)
        return -65504.0f;
    return (float)v;
}

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* ---- the SIMD paths under test ---- */

static int simd_paths(const mx_kernel_set **out)
{
    int k = 0;
    for (int p = 1; p < MX_SIMD_COUNT; p++) {
        const mx_kernel_set *s = mx_kernels_for((mx_simd)p);
        if (s != NULL)
            out[k++] = s;
    }
    return k;
}

#define NEED_SIMD(paths, np)                                                                       \
    const mx_kernel_set *paths[MX_SIMD_COUNT];                                                     \
    int np = simd_paths(paths);                                                                    \
    do {                                                                                           \
        if (np == 0)                                                                               \
            cr_skip("no SIMD kernel set in this build / on this CPU");                             \
    } while (0)

static const mx_kernel_set *scalar_set(void)
{
    const mx_kernel_set *s = mx_kernels_for(MX_SIMD_SCALAR);
    cr_assert_not_null(s);
    return s;
}

Test(simd, sets_complete)
{
    const mx_kernel_set *ref = scalar_set();
    NEED_SIMD(paths, np);
    for (int p = 0; p < np; p++) {
        cr_assert_neq(paths[p]->path, MX_SIMD_SCALAR);
        cr_assert(paths[p]->f32_to_f16 && paths[p]->f16_to_f32 && paths[p]->f32_to_bf16 &&
                  paths[p]->bf16_to_f32);
        char own[512] = "";
        for (int t = 0; t < MIXQ_QT_COUNT; t++) {
            const qtype_desc *qt = qtype_get((mixq_qtype)t);
            if (qt && ref->quantize_row[t])
                snprintf(own + strlen(own), sizeof own - strlen(own), " %s%s%s", qt->name,
                         paths[p]->quantize_row[t] != ref->quantize_row[t] ? "+q" : "",
                         paths[p]->dequantize_row[t] != ref->dequantize_row[t] ? "+d" : "");
            cr_assert_eq(paths[p]->quantize_row[t] != NULL, ref->quantize_row[t] != NULL,
                         "%s: quantize_row[%d]", mx_simd_name(paths[p]->path), t);
            cr_assert_eq(paths[p]->dequantize_row[t] != NULL, ref->dequantize_row[t] != NULL,
                         "%s: dequantize_row[%d]", mx_simd_name(paths[p]->path), t);
        }
        cr_log_info("%s kernels (+q / +d: own quantize / dequantize):%s", mx_simd_name(paths[p]->path), own);
    }
}

/* ---- conversions ---- */

static void cmp_u16(const uint16_t *a, const uint16_t *b, const float *src, size_t n, const char *what,
                    const char *path)
{
    if (memcmp(a, b, n * 2) == 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            cr_assert_fail("%s %s: input %08x at %zu/%zu: simd %04x, scalar %04x", path, what,
                           f2u(src[i]), i, n, a[i], b[i]);
}

static void cmp_f32(const float *a, const float *b, size_t n, const char *what, const char *path)
{
    if (memcmp(a, b, n * 4) == 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (f2u(a[i]) != f2u(b[i]))
            cr_assert_fail("%s %s: at %zu/%zu: simd %08x, scalar %08x", path, what, i, n, f2u(a[i]),
                           f2u(b[i]));
}

/* f32 -> f16 and f32 -> bf16 on src[0..n), whole and as every short tail at a few offsets. */
static void check_to16(const mx_kernel_set *ps, const float *src, size_t n)
{
    const mx_kernel_set *ref = scalar_set();
    uint16_t *a = malloc(n * 2 + 2), *b = malloc(n * 2 + 2);
    cr_assert(a && b);
    ps->f32_to_f16(src, n, a);
    ref->f32_to_f16(src, n, b);
    cmp_u16(a, b, src, n, "f32_to_f16", mx_simd_name(ps->path));
    ps->f32_to_bf16(src, n, a);
    ref->f32_to_bf16(src, n, b);
    cmp_u16(a, b, src, n, "f32_to_bf16", mx_simd_name(ps->path));
    for (size_t len = 0; len <= 70 && len <= n; len++)
        for (size_t off = 0; off + len <= n && off < 5; off++) {
            /* an exact-size destination: the tail must not write past it */
            uint16_t *c = malloc(len * 2 + 1), *d = malloc(len * 2 + 1);
            cr_assert(c && d);
            ps->f32_to_f16(src + off, len, c);
            ref->f32_to_f16(src + off, len, d);
            cmp_u16(c, d, src + off, len, "f32_to_f16 (tail)", mx_simd_name(ps->path));
            ps->f32_to_bf16(src + off, len, c);
            ref->f32_to_bf16(src + off, len, d);
            cmp_u16(c, d, src + off, len, "f32_to_bf16 (tail)", mx_simd_name(ps->path));
            free(c);
            free(d);
        }
    free(a);
    free(b);
}

Test(simd, f16_bf16_to_f32_exhaustive)
{
    const mx_kernel_set *ref = scalar_set();
    NEED_SIMD(paths, np);
    enum { N = 65536 };
    uint16_t *h = malloc(N * 2 + 16);
    float *a = malloc(N * 4 + 64), *b = malloc(N * 4 + 64);
    cr_assert(h && a && b);
    for (uint32_t i = 0; i < N; i++) h[i] = (uint16_t)i;
    for (int p = 0; p < np; p++) {
        const char *name = mx_simd_name(paths[p]->path);
        for (size_t off = 0; off < 3; off++) { /* also misaligned source / destination */
            paths[p]->f16_to_f32(h, N, a + off);
            ref->f16_to_f32(h, N, b + off);
            cmp_f32(a + off, b + off, N, "f16_to_f32", name);
            paths[p]->bf16_to_f32(h, N, a + off);
            ref->bf16_to_f32(h, N, b + off);
            cmp_f32(a + off, b + off, N, "bf16_to_f32", name);
        }
        /* every tail length at a few source offsets, exact-size destinations */
        for (size_t len = 0; len <= 70; len++)
            for (size_t off = 0; off < 40000; off += 7919) {
                float *c = malloc(len * 4 + 1), *d = malloc(len * 4 + 1);
                cr_assert(c && d);
                const uint16_t *src = h + 0x7B00 + off % 0x900; /* around inf / NaN / subnormals */
                if (off == 0)
                    src = h + 0x7BF0; /* straddles 0x7C00 and the NaNs */
                paths[p]->f16_to_f32(src, len, c);
                ref->f16_to_f32(src, len, d);
                cmp_f32(c, d, len, "f16_to_f32 (tail)", name);
                paths[p]->bf16_to_f32(src, len, c);
                ref->bf16_to_f32(src, len, d);
                cmp_f32(c, d, len, "bf16_to_f32 (tail)", name);
                free(c);
                free(d);
            }
    }
    free(h);
    free(a);
    free(b);
}

/* Structured f32 patterns: specials, every rounding boundary of f16 / bf16. */
static size_t special_f32(uint32_t *u, uint64_t *rng)
{
    size_t k = 0;
    static const uint32_t fixed[] = {
        0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
        0x7F800001u, 0xFF800001u, 0x7FBFFFFFu, 0x7FFFFFFFu, 0xFFFFFFFFu, 0x7FA00000u,
        0x00000001u, 0x80000001u, 0x007FFFFFu, 0x00800000u, 0x7F7FFFFFu, 0xFF7FFFFFu,
        0x477FE000u, 0x477FEFFFu, 0x477FF000u, 0x477FF001u, 0x47800000u, 0xC77FF000u,
        0x38800000u, 0x387FFFFFu, 0x387FE000u, 0x387FF000u, 0x33000000u, 0x33000001u,
        0x32FFFFFFu, 0x33800000u, 0x33C00000u, 0x7F7F8000u, 0x7F7F7FFFu, 0x7F7FC000u,
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) u[k++] = fixed[i];
    /* around every f32 exponent: exact ties and their neighbours for f16 (bit 12) and bf16 (bit 15) */
    for (uint32_t e = 0; e < 256; e++)
        for (int j = 0; j < 24; j++) {
            uint32_t man = (uint32_t)rng_next(rng) & 0x7FFFFFu;
            uint32_t lowbits[] = {0x1000u, 0x0FFFu, 0x1001u, 0x8000u, 0x7FFFu, 0x8001u};
            uint32_t lb = lowbits[j % 6];
            uint32_t mask = j % 6 < 3 ? 0x1FFFu : 0xFFFFu;
            uint32_t v = (e << 23) | ((man & ~mask) | lb);
            u[k++] = v | ((uint32_t)(j & 1) << 31);
        }
    return k;
}

Test(simd, f32_to_f16_bf16_random)
{
    NEED_SIMD(paths, np);
    enum { N = 1 << 20 };
    uint32_t *u = malloc((size_t)N * 4);
    cr_assert(u);
    uint64_t rng = 12345;
    for (int round = 0; round < 5; round++) {
        size_t k = special_f32(u, &rng);
        for (; k < N; k++) {
            uint32_t r = (uint32_t)rng_next(&rng);
            switch (round) {
            case 0: u[k] = r; break;                                  /* uniform bits: ~0.4% NaN */
            case 1: u[k] = (r & 0x807FFFFFu) | ((102u + (uint32_t)(r >> 8) % 42u) << 23); break;
            case 2: u[k] = (r & 0x80001FFFu) | 0x7F800000u | (r & 0x00400000u); break; /* NaN/Inf */
            case 3: u[k] = r & 0x807FFFFFu; break;                    /* f32 subnormals, zeros */
            default: u[k] = (r & 0x8000FFFFu) | ((uint32_t)rng_next(&rng) & 0x7FFF0000u); break;
            }
        }
        for (int p = 0; p < np; p++)
            check_to16(paths[p], (const float *)(const void *)u, N);
    }
    free(u);
}

Test(simd, f32_to_f16_bf16_exhaustive, .timeout = 3000)
{
    const char *e = getenv("MIXQ_TEST_EXHAUSTIVE");
    if (e == NULL || strcmp(e, "1") != 0)
        cr_skip("set MIXQ_TEST_EXHAUSTIVE=1 for all 2^32 f32 inputs");
    const mx_kernel_set *ref = scalar_set();
    NEED_SIMD(paths, np);
    enum { C = 1 << 22 };
    uint32_t *u = malloc((size_t)C * 4);
    uint16_t *a = malloc((size_t)C * 2), *b = malloc((size_t)C * 2);
    cr_assert(u && a && b);
    for (uint64_t base = 0; base < (1ull << 32); base += C) {
        for (uint32_t i = 0; i < C; i++) u[i] = (uint32_t)(base + i);
        const float *f = (const float *)(const void *)u;
        ref->f32_to_f16(f, C, b);
        for (int p = 0; p < np; p++) {
            paths[p]->f32_to_f16(f, C, a);
            cmp_u16(a, b, f, C, "f32_to_f16 (exhaustive)", mx_simd_name(paths[p]->path));
        }
        ref->f32_to_bf16(f, C, b);
        for (int p = 0; p < np; p++) {
            paths[p]->f32_to_bf16(f, C, a);
            cmp_u16(a, b, f, C, "f32_to_bf16 (exhaustive)", mx_simd_name(paths[p]->path));
        }
    }
    free(u);
    free(a);
    free(b);
}

/* ---- quantized types ---- */

/* One row's sections, each allocated to its exact size at a given misalignment. */
typedef struct rowbuf {
    uint8_t *base[MIXQ_SECTION_COUNT];
    uint8_t *sec[MIXQ_SECTION_COUNT];
    size_t bytes[MIXQ_SECTION_COUNT];
} rowbuf;

static void rowbuf_new(rowbuf *r, const qlayout *l, size_t misalign, uint8_t fill)
{
    memset(r, 0, sizeof *r);
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (l->length[k] == 0) /* one row: length = row bytes, or the per-tensor scale */
            continue;
        r->bytes[k] = (size_t)l->length[k];
        r->base[k] = malloc(r->bytes[k] + misalign);
        cr_assert_not_null(r->base[k]);
        r->sec[k] = r->base[k] + misalign;
        memset(r->sec[k], fill, r->bytes[k]);
    }
}

static void rowbuf_free(rowbuf *r)
{
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) free(r->base[k]);
}

static mx_rowptrs wptrs(rowbuf *r)
{
    mx_rowptrs o;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) o.sec[k] = r->sec[k];
    return o;
}

static mx_crowptrs rptrs(const rowbuf *r)
{
    mx_crowptrs o;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) o.sec[k] = r->sec[k];
    return o;
}

/* Allowed group sizes of a type, as the group_size parameter (0 = per row). */
static int group_sizes(const qtype_desc *qt, unsigned *gs)
{
    int k = 0;
    if (qt->allow_row_group)
        gs[k++] = 0;
    for (unsigned g = 1; g != 0 && g <= qt->group_max; g <<= 1)
        if (g >= qt->group_min && qtype_group_ok(qt, g))
            gs[k++] = g;
    return k;
}

enum { DATA_KINDS = 12, KIND_NEAR_TIES = 10 };
static const char *const data_names[DATA_KINDS] = {
    "gauss+outliers", "all-zero", "constant groups", "+-65504", "f16-subnormal range",
    "f32 subnormals", "ties (k/2, k/4)", "wide range", "mixed groups", "few distinct values",
    "near decision boundaries", "near decision boundaries (wide)",
};

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float step_ulps(float v, int k)
{
    while (k > 0) { v = nextafterf(v, INFINITY); k--; }
    while (k < 0) { v = nextafterf(v, -INFINITY); k++; }
    return v;
}

/*
 * Moves values onto (and a few ulps around) the decision boundaries of the
 * reference quantizer, found generically: quantize x with the scalar kernel
 * (RTN), dequantize, and take the midpoints between consecutive distinct
 * reconstruction levels of each group.  The group's min and max elements are
 * kept so that the RTN scale (and min) stay the same.  This is where a
 * reciprocal multiply, an FMA or a different rounding would change a code.
 */
static void near_ties(float *x, size_t n, const qlayout *l, int t, uint64_t *rng)
{
    const mx_kernel_set *ref = mx_kernels_for(MX_SIMD_SCALAR);
    size_t g = l->group;
    mx_rowptrs o;
    mx_crowptrs in;
    uint8_t *sec[MIXQ_SECTION_COUNT];
    float *xh = malloc(n * 4), *lv = malloc((g + 1) * 4);
    mx_qparams qp = {NULL, false, -1.0f, NULL};
    cr_assert(xh && lv);
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        size_t b = (size_t)l->length[k];
        sec[k] = b ? malloc(b) : NULL;
        o.sec[k] = sec[k];
        in.sec[k] = sec[k];
    }
    if (l->per_tensor) {
        for (size_t i = 0; i < n; i++) qp.tensor_absmax = fmaxf(qp.tensor_absmax, fabsf(x[i]));
    }
    ref->quantize_row[t](x, n, (unsigned)g, &qp, o);
    ref->dequantize_row[t](in, n, (unsigned)g, xh);
    for (size_t s = 0; s < n; s += g) {
        size_t len = n - s < g ? n - s : g, nl = 0, imin = s, imax = s;
        for (size_t i = s; i < s + len; i++) {
            if (x[i] < x[imin]) imin = i;
            if (x[i] > x[imax]) imax = i;
        }
        memcpy(lv, xh + s, len * 4);
        qsort(lv, len, 4, cmp_float);
        for (size_t i = 0; i < len; i++)
            if (nl == 0 || lv[i] != lv[nl - 1])
                lv[nl++] = lv[i];
        if (nl < 2)
            continue;
        for (size_t i = s; i < s + len; i++) {
            if (i == imin || i == imax)
                continue;
            size_t k = rng_below(rng, nl - 1);
            float mid = (float)(((double)lv[k] + (double)lv[k + 1]) / 2);
            mid = step_ulps(mid, (int)rng_below(rng, 5) - 2);
            if (mid >= x[imin] && mid <= x[imax])
                x[i] = mid;
        }
    }
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) free(sec[k]);
    free(xh);
    free(lv);
}

/* Fills x[0..n) with data of a kind; group is the effective group size. */
static void gen_data(float *x, size_t n, size_t group, int kind, uint64_t *rng)
{
    double scale = ldexp(1.0, (int)rng_below(rng, 24) - 16);
    switch (kind) {
    case 0:
        for (size_t i = 0; i < n; i++) {
            double v = rng_gauss(rng) * scale;
            if (rng_below(rng, 100) == 0)
                v *= 20 + 80 * rng_unit(rng);
            x[i] = clampq(v);
        }
        break;
    case 1:
        for (size_t i = 0; i < n; i++) x[i] = rng_below(rng, 2) ? 0.0f : -0.0f;
        break;
    case 2:
        for (size_t s = 0; s < n; s += group) {
            float c;
            switch (rng_below(rng, 4)) {
            case 0: c = mx_f16_to_f32((uint16_t)rng_below(rng, 0x7C00) | (uint16_t)(rng_below(rng, 2) << 15)); break;
            case 1: c = clampq(rng_gauss(rng) * scale); break;
            case 2: c = rng_below(rng, 2) ? 65504.0f : -65504.0f; break;
            default: c = 0.0f; break;
            }
            for (size_t i = s; i < n && i < s + group; i++) x[i] = c;
        }
        break;
    case 3:
        for (size_t i = 0; i < n; i++) {
            size_t r = rng_below(rng, 4);
            x[i] = r == 0 ? 65504.0f : r == 1 ? -65504.0f : clampq(rng_gauss(rng) * 1000.0);
        }
        break;
    case 4:
        for (size_t i = 0; i < n; i++) x[i] = (float)(rng_gauss(rng) * ldexp(1.0, -14 - (int)rng_below(rng, 12)));
        break;
    case 5:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = ((uint32_t)rng_next(rng) & 0x807FFFFFu);
            if (rng_below(rng, 8) == 0)
                u = (u & 0x80000000u) | (((uint32_t)rng_below(rng, 0x60) + 1u) << 23) | (u & 0x7FFFFFu);
            x[i] = u2f(u);
        }
        break;
    case 6:
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((double)((int)rng_below(rng, 1025) - 512) / (double)(1u << rng_below(rng, 3)));
        break;
    case 7:
        for (size_t i = 0; i < n; i++) {
            uint32_t e = 127u - 40u + (uint32_t)rng_below(rng, 56);
            uint32_t u = ((uint32_t)rng_next(rng) & 0x807FFFFFu) | e << 23;
            x[i] = clampq(u2f(u));
        }
        break;
    case 8:
        for (size_t s = 0; s < n; s += group) {
            int k = (int)rng_below(rng, 5);
            for (size_t i = s; i < n && i < s + group; i++) {
                switch (k) {
                case 0: x[i] = 0.0f; break;
                case 1: x[i] = x[s]; if (i == s) x[i] = clampq(rng_gauss(rng) * scale); break;
                case 2: x[i] = clampq(rng_gauss(rng) * scale + 3 * scale); break; /* all positive-ish */
                case 3: x[i] = -fabsf(clampq(rng_gauss(rng) * scale)); break;
                default: x[i] = clampq(rng_gauss(rng) * scale); break;
                }
            }
        }
        break;
    case 9: {
        float v[3] = {clampq(rng_gauss(rng) * scale), clampq(rng_gauss(rng) * scale), 0.0f};
        for (size_t i = 0; i < n; i++) x[i] = v[rng_below(rng, 3)];
        break;
    }
    default:
        cr_assert_fail("data kind %d", kind);
    }
}

static void make_data(float *x, size_t n, const qlayout *l, int t, int kind, uint64_t *rng)
{
    gen_data(x, n, l->group, kind == KIND_NEAR_TIES ? 0 : kind == KIND_NEAR_TIES + 1 ? 7 : kind, rng);
    if (kind >= KIND_NEAR_TIES)
        near_ties(x, n, l, t, rng);
}

static size_t pick_n(uint64_t *rng, unsigned group_size)
{
    static const size_t fixed[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 255, 256, 257, 511, 1000, 3000};
    switch (rng_below(rng, 5)) {
    case 0: return fixed[rng_below(rng, sizeof fixed / sizeof fixed[0])];
    case 1: return 1 + rng_below(rng, 40);
    case 2: if (group_size) return group_size * (1 + rng_below(rng, 4)) + rng_below(rng, 3); return 1 + rng_below(rng, 3000);
    default: return 1 + rng_below(rng, 3000);
    }
}

static void cmp_sections(const rowbuf *a, const rowbuf *b, const char *ctx)
{
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (a->bytes[k] == 0 || memcmp(a->sec[k], b->sec[k], a->bytes[k]) == 0)
            continue;
        for (size_t i = 0; i < a->bytes[k]; i++)
            if (a->sec[k][i] != b->sec[k][i])
                cr_assert_fail("%s: section %s byte %zu/%zu: simd %02x, scalar %02x", ctx,
                               mixq_section_name((mixq_section_kind)k), i, a->bytes[k], a->sec[k][i],
                               b->sec[k][i]);
    }
}

/*
 * Dequantizes `in` with both sets into exact-size buffers and compares bit
 * for bit, NaN payloads and signs included, also for random section bytes:
 * a group with a NaN / Inf scale, min or super-scale is the canonical NaN in
 * every path (kernels.h), and the NaNs left (an fp8 NaN code times a finite
 * scale, an Inf code times zero) come from a single NaN source.  Returns the
 * scalar result in *ref_out if non-NULL (caller frees).
 */
static void cmp_dequant_out(const mx_kernel_set *ps, int t, const rowbuf *in, size_t n, unsigned g,
                            size_t misalign, const char *ctx, float **ref_out)
{
    const mx_kernel_set *ref = scalar_set();
    float *ba = malloc(n * 4 + misalign * 4), *bb = malloc(n * 4 + misalign * 4);
    cr_assert(ba && bb);
    float *a = ba + misalign, *b = bb + misalign;
    memset(a, 0xAB, n * 4);
    memset(b, 0xCD, n * 4);
    ps->dequantize_row[t](rptrs(in), n, g, a);
    ref->dequantize_row[t](rptrs(in), n, g, b);
    if (memcmp(a, b, n * 4) != 0)
        for (size_t i = 0; i < n; i++)
            if (f2u(a[i]) != f2u(b[i]))
                cr_assert_fail("%s: dequantized element %zu/%zu: simd %08x (%a), scalar %08x (%a)", ctx, i,
                               n, f2u(a[i]), (double)a[i], f2u(b[i]), (double)b[i]);
    free(ba);
    if (ref_out != NULL) {
        float *r = malloc(n * 4 + 4);
        cr_assert(r);
        memcpy(r, b, n * 4);
        *ref_out = r;
    }
    free(bb);
}

static void cmp_dequant(const mx_kernel_set *ps, int t, const rowbuf *in, size_t n, unsigned g,
                        size_t misalign, const char *ctx)
{
    cmp_dequant_out(ps, t, in, n, g, misalign, ctx, NULL);
}

/* The full check of one type over `cases` random rows. */
static void check_type(const mx_kernel_set *ps, const qtype_desc *qt, uint64_t seed, int cases)
{
    const mx_kernel_set *ref = scalar_set();
    int t = (int)qt->id;
    unsigned gs[40];
    int ngs = group_sizes(qt, gs);
    uint64_t rng = seed * 0x100000001B3u + (uint64_t)t;
    char ctx[320];

    cr_assert_gt(ngs, 0, "%s: no allowed group size", qt->name);
    for (int c = 0; c < cases; c++) {
        unsigned group_size = gs[rng_below(&rng, (size_t)ngs)];
        size_t n = pick_n(&rng, group_size);
        qlayout l;
        cr_assert(qtype_layout(qt, ST_F32, 1, n, group_size, &l), "%s: layout n=%zu g=%u", qt->name,
                  n, group_size);
        unsigned g = l.group;
        int kind = (int)rng_below(&rng, DATA_KINDS);
        size_t mis_x = rng_below(&rng, 8), mis_o = rng_below(&rng, 8);
        int mode = (int)rng_below(&rng, 6); /* 0: p NULL; 1-5: search / importance combinations */
        float *xb = malloc((n + mis_x) * 4), *imp = malloc(n * 4);
        cr_assert(xb && imp);
        float *x = xb + mis_x;
        make_data(x, n, &l, t, kind, &rng);

        mx_qparams qp;
        memset(&qp, 0, sizeof qp);
        qp.search = mode == 2 || mode == 4 || mode == 5;
        if (mode >= 3) {
            for (size_t i = 0; i < n; i++) {
                size_t r = rng_below(&rng, 10);
                imp[i] = r == 0 ? 0.0f : r == 1 ? (float)(rng_unit(&rng) * 1e4) : (float)rng_unit(&rng);
                if (mode == 5 && rng_below(&rng, 4) == 0)
                    imp[i] = 0.0f; /* many zero weights (some groups entirely) */
            }
            if (mode == 5 && n > g)
                for (size_t i = 0; i < g; i++) imp[i] = 0.0f;
            qp.importance = imp;
        }
        /* per-tensor scale types with group_size 0: absmax of "the tensor" (>= this row's) */
        float amax = 0.0f;
        for (size_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
        if (rng_below(&rng, 3) == 0)
            amax = clampq((double)amax * (1.0 + 4.0 * rng_unit(&rng)));
        qp.tensor_absmax = l.per_tensor ? amax : -1.0f;
        const mx_qparams *pp = mode == 0 ? NULL : &qp;

        snprintf(ctx, sizeof ctx, "%s %s case %d (seed %llu): n=%zu group_size=%u data=%s search=%d importance=%s%s",
                 mx_simd_name(ps->path), qt->name, c, (unsigned long long)seed, n, group_size, data_names[kind],
                 pp ? (int)qp.search : 0, qp.importance ? "yes" : "no", pp ? "" : " (p=NULL)");

        rowbuf a, b;
        rowbuf_new(&a, &l, mis_o, 0x5A);
        rowbuf_new(&b, &l, mis_o, 0xA5);
        ps->quantize_row[t](x, n, g, pp, wptrs(&a));
        ref->quantize_row[t](x, n, g, pp, wptrs(&b));
        cmp_sections(&a, &b, ctx);
        cmp_dequant(ps, t, &b, n, g, rng_below(&rng, 8), ctx);

        /* arbitrary codes under the real scales, then arbitrary bytes everywhere */
        if (l.row_bytes[MIXQ_SEC_CODES] > 0) {
            for (size_t i = 0; i < a.bytes[MIXQ_SEC_CODES]; i++)
                a.sec[MIXQ_SEC_CODES][i] = (uint8_t)rng_next(&rng);
            cmp_dequant(ps, t, &a, n, g, rng_below(&rng, 8), ctx);
        }
        if (c % 4 == 0) {
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                for (size_t i = 0; i < a.bytes[k]; i++) a.sec[k][i] = (uint8_t)rng_next(&rng);
            cmp_dequant(ps, t, &a, n, g, rng_below(&rng, 8), ctx);
        }
        rowbuf_free(&a);
        rowbuf_free(&b);
        free(xb);
        free(imp);
    }
}

static int quantized_types(const qtype_desc **out)
{
    const mx_kernel_set *ref = scalar_set();
    int k = 0;
    for (int t = 0; t < MIXQ_QT_COUNT; t++) {
        const qtype_desc *qt = qtype_get((mixq_qtype)t);
        if (qt != NULL && qt->quantized && ref->quantize_row[t] && ref->dequantize_row[t])
            out[k++] = qt;
    }
    return k;
}

Test(simd, quantize_dequantize_all_types, .timeout = 1200)
{
    NEED_SIMD(paths, np);
    const qtype_desc *types[MIXQ_QT_COUNT];
    int nt = quantized_types(types);
    cr_assert_gt(nt, 0);
    for (int p = 0; p < np; p++)
        for (int i = 0; i < nt; i++)
            for (uint64_t seed = 1; seed <= 24; seed++)
                check_type(paths[p], types[i], seed, 120);
}

/* Rows of exactly one group, short rows and rows ending in a short group, every length 1..300. */
Test(simd, every_short_length, .timeout = 600)
{
    NEED_SIMD(paths, np);
    const mx_kernel_set *ref = scalar_set();
    const qtype_desc *types[MIXQ_QT_COUNT];
    int nt = quantized_types(types);
    uint64_t rng = 99;
    char ctx[200];
    for (int p = 0; p < np; p++)
        for (int ti = 0; ti < nt; ti++) {
            const qtype_desc *qt = types[ti];
            unsigned gs[40];
            int ngs = group_sizes(qt, gs);
            for (size_t n = 1; n <= 300; n++)
                for (int gi = 0; gi < ngs; gi++)
                    for (int search = 0; search < 2; search++) {
                        qlayout l;
                        cr_assert(qtype_layout(qt, ST_F32, 1, n, gs[gi], &l));
                        float *x = malloc(n * 4);
                        cr_assert(x);
                        make_data(x, n, &l, qt->id, (int)(n % DATA_KINDS), &rng);
                        mx_qparams qp;
                        memset(&qp, 0, sizeof qp);
                        qp.search = search != 0;
                        qp.tensor_absmax = -1.0f;
                        if (l.per_tensor) {
                            qp.tensor_absmax = 0.0f;
                            for (size_t i = 0; i < n; i++) qp.tensor_absmax = fmaxf(qp.tensor_absmax, fabsf(x[i]));
                        }
                        rowbuf a, b;
                        rowbuf_new(&a, &l, 0, 0x5A);
                        rowbuf_new(&b, &l, 0, 0xA5);
                        paths[p]->quantize_row[qt->id](x, n, l.group, &qp, wptrs(&a));
                        ref->quantize_row[qt->id](x, n, l.group, &qp, wptrs(&b));
                        snprintf(ctx, sizeof ctx, "%s %s n=%zu group_size=%u search=%d data=%s",
                                 mx_simd_name(paths[p]->path), qt->name, n, gs[gi], search,
                                 data_names[n % DATA_KINDS]);
                        cmp_sections(&a, &b, ctx);
                        cmp_dequant(paths[p], qt->id, &b, n, l.group, n % 3, ctx);
                        rowbuf_free(&a);
                        rowbuf_free(&b);
                        free(x);
                    }
        }
}

/* ---- non-finite scale parameters (kernels.h, FORMAT.md §4) ---- */

/* f16 / binary32 Inf and NaN patterns: both signs, quiet and signalling, several payloads. */
static const uint16_t nonfinite_f16[] = {0x7C00u, 0xFC00u, 0x7E00u, 0xFE00u, 0x7C01u,
                                         0xFC01u, 0x7FFFu, 0xFFFFu, 0x7D55u, 0xFEAAu};
static const uint32_t nonfinite_f32[] = {0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u, 0x7F800001u,
                                         0xFF800001u, 0x7FFFFFFFu, 0xFFFFFFFFu, 0x7FA5A5A5u, 0xFFD00001u};
#define N_NONFINITE (sizeof nonfinite_f16 / sizeof nonfinite_f16[0])

static void mark_bad(uint8_t *bad, size_t n, size_t a, size_t b)
{
    for (size_t i = a; i < b && i < n; i++) bad[i] = 1;
}

/*
 * Makes the stored scale parameters of random groups of a real row
 * non-finite and marks their elements in bad[]: the f16 scale and / or min
 * (QS_F16), the binary32 scale per group or per tensor (QS_F32, which also
 * gets NaN / Inf codes everywhere and +-0 scales in some finite groups), the
 * super-scale and / or super-min of a super-block (QS_CODE).  At least one
 * group is poisoned, in half the rows exactly one at a random position (a
 * lone bad value must be found wherever it is); with `what` >= 0 every
 * poisoned one the same way (0 scale, 1 min, 2 both).
 */
static void poison_row(const qtype_desc *qt, const qlayout *l, rowbuf *r, size_t n, int what, uint8_t *bad,
                       uint64_t *rng)
{
    size_t g = l->group, ng = (size_t)l->groups_per_row;
    int e4m3 = qt->id == MIXQ_QT_FP8_E4M3, any = 0;
    memset(bad, 0, n);
    while (!any) {
        size_t units = qt->scale_kind == QS_CODE ? (size_t)l->supers_per_row : l->per_tensor ? 1u : ng;
        size_t one = rng_below(rng, 2) ? rng_below(rng, units) : (size_t)-1;
#define SKIP_UNIT(j) (one != (size_t)-1 ? (j) != one : rng_below(rng, 2) != 0)
        if (qt->scale_kind == QS_F16 || qt->scale_kind == QS_CODE) {
            int dq = qt->scale_kind == QS_CODE;
            size_t units = dq ? (size_t)l->supers_per_row : ng, span = dq ? qt->super_block : g;
            uint8_t *sc = r->sec[dq ? MIXQ_SEC_SUPER_SCALES : MIXQ_SEC_SCALES];
            uint8_t *mn = r->sec[dq ? MIXQ_SEC_SUPER_MINS : MIXQ_SEC_MINS];
            for (size_t j = 0; j < units; j++) {
                int w = qt->symmetric ? 0 : what >= 0 ? what : (int)rng_below(rng, 3);
                if (SKIP_UNIT(j))
                    continue;
                if (w != 1)
                    mx_st16le(sc + 2 * j, nonfinite_f16[rng_below(rng, N_NONFINITE)]);
                if (w != 0)
                    mx_st16le(mn + 2 * j, nonfinite_f16[rng_below(rng, N_NONFINITE)]);
                mark_bad(bad, n, j * span, (j + 1) * span);
                any = 1;
            }
            if (dq && rng_below(rng, 2)) /* random scale / min codes: finite under a finite super-scale */
                for (int k = MIXQ_SEC_SCALES; k <= MIXQ_SEC_MINS; k++)
                    for (size_t i = 0; i < r->bytes[k]; i++) r->sec[k][i] = (uint8_t)rng_next(rng);
        } else if (qt->scale_kind == QS_F32) {
            for (size_t j = 0; j < (l->per_tensor ? 1u : ng); j++) {
                uint8_t *sp = r->sec[MIXQ_SEC_SCALES] + 4 * j;
                if (!SKIP_UNIT(j)) {
                    mx_fp8_st_f32le(sp, u2f(nonfinite_f32[rng_below(rng, N_NONFINITE)]));
                    mark_bad(bad, n, j * g, (j + 1) * g);
                    any = 1;
                } else if (rng_below(rng, 3) == 0) { /* +-0: an Inf code times it is the CPU's default NaN */
                    mx_fp8_st_f32le(sp, rng_below(rng, 2) ? -0.0f : 0.0f);
                }
            }
            for (size_t i = 0; i < n; i++)
                if (rng_below(rng, 6) == 0) {
                    uint8_t s = rng_below(rng, 2) ? 0x80u : 0x00u;
                    r->sec[MIXQ_SEC_CODES][i] =
                        (uint8_t)(s | (e4m3 ? 0x7Fu : rng_below(rng, 3) == 0 ? 0x7Cu : 0x7Du + rng_below(rng, 3)));
                }
        } else {
            cr_assert_fail("%s: unknown scale kind %d", qt->name, (int)qt->scale_kind);
        }
#undef SKIP_UNIT
    }
}

/*
 * Every quantized type, every group size, rows with NaN / Inf scale
 * parameters in random groups: SIMD == scalar bit for bit, every element of
 * a poisoned group (DQ: super-block) is 0x7FC00000, and the others are
 * finite (integer types) or exactly fl(decode(code) * s) computed here
 * (fp8: a NaN code's quieted NaN, the CPU's default NaN for Inf * 0).
 */
Test(simd, nonfinite_scale_parameters, .timeout = 600)
{
    NEED_SIMD(paths, np);
    const mx_kernel_set *ref = scalar_set();
    const qtype_desc *types[MIXQ_QT_COUNT];
    int nt = quantized_types(types);
    uint64_t rng = 0x7FC00000u;
    char ctx[260];
    for (int p = 0; p < np; p++)
        for (int ti = 0; ti < nt; ti++) {
            const qtype_desc *qt = types[ti];
            int t = (int)qt->id;
            unsigned gs[40];
            int ngs = group_sizes(qt, gs);
            for (int gi = 0; gi < ngs; gi++)
                for (int c = 0; c < 60; c++) {
                    size_t n = pick_n(&rng, gs[gi]);
                    qlayout l;
                    cr_assert(qtype_layout(qt, ST_F32, 1, n, gs[gi], &l));
                    int kind = (int)rng_below(&rng, DATA_KINDS), what = c < 3 ? c : -1, rnd_codes = c % 3 == 0;
                    float *x = malloc(n * 4), *out = NULL;
                    uint8_t *bad = malloc(n);
                    cr_assert(x && bad);
                    make_data(x, n, &l, t, kind, &rng);
                    rowbuf a;
                    rowbuf_new(&a, &l, rng_below(&rng, 8), 0x5A);
                    ref->quantize_row[t](x, n, l.group, NULL, wptrs(&a));
                    if (rnd_codes)
                        for (size_t i = 0; i < a.bytes[MIXQ_SEC_CODES]; i++)
                            a.sec[MIXQ_SEC_CODES][i] = (uint8_t)rng_next(&rng);
                    poison_row(qt, &l, &a, n, what, bad, &rng);
                    snprintf(ctx, sizeof ctx, "%s %s non-finite parameters case %d: n=%zu group_size=%u data=%s%s",
                             mx_simd_name(paths[p]->path), qt->name, c, n, gs[gi], data_names[kind],
                             rnd_codes ? " random codes" : "");
                    cmp_dequant_out(paths[p], t, &a, n, l.group, rng_below(&rng, 8), ctx, &out);
                    for (size_t i = 0; i < n; i++) {
                        uint32_t got = f2u(out[i]);
                        if (bad[i]) {
                            cr_assert_eq(got, MX_CANONICAL_NAN_BITS, "%s: element %zu of a poisoned group: %08x",
                                         ctx, i, got);
                        } else if (qt->scale_kind == QS_F32) {
                            uint8_t code = a.sec[MIXQ_SEC_CODES][i];
                            float s = mx_fp8_ld_f32le(a.sec[MIXQ_SEC_SCALES] + 4 * (l.per_tensor ? 0 : i / l.group));
                            uint32_t want = f2u((qt->id == MIXQ_QT_FP8_E4M3 ? mx_e4m3_to_f32(code)
                                                                            : mx_e5m2_to_f32(code)) * s);
                            cr_assert_eq(got, want, "%s: element %zu (code %02x, scale %08x): %08x, expected %08x",
                                         ctx, i, code, f2u(s), got, want);
                        } else {
                            cr_assert(mx_f32_finite(out[i]), "%s: element %zu of a finite group: %08x", ctx, i,
                                      got);
                        }
                    }
                    rowbuf_free(&a);
                    free(out);
                    free(bad);
                    free(x);
                }
        }
}

/* ---- the search passes (quant_search.h), directly ---- */

static void cmp_bits(float a, float b, const char *what, const char *ctx)
{
    if (f2u(a) != f2u(b))
        cr_assert_fail("%s: %s: simd %08x (%a), scalar %08x (%a)", ctx, what, f2u(a), (double)a, f2u(b), (double)b);
}

Test(simd, search_passes)
{
    const mx_search_ops *ref = &mx_search_ops_scalar;
    const mx_search_ops *ops[2];
    const char *names[2];
    int nops = 0;
    if (&mx_search_ops_avx2 != NULL && mx_kernels_for(MX_SIMD_AVX2) != NULL) {
        ops[nops] = &mx_search_ops_avx2;
        names[nops++] = "avx2";
    }
    if (&mx_search_ops_neon != NULL && mx_kernels_for(MX_SIMD_NEON) != NULL) {
        ops[nops] = &mx_search_ops_neon;
        names[nops++] = "neon";
    }
    if (nops == 0)
        cr_skip("no SIMD search passes in this build / on this CPU");
    static const int sym_ranges[][2] = {{-127, 127}, {-8, 7}, {-4, 3}, {-32, 31}, {-32, 31}, {-128, 127}};
    static const int Ls[] = {15, 3, 63, 15};
    uint64_t rng = 777;
    char ctx[200];
    enum { NMAX = 700 };
    float *x = malloc(NMAX * 4), *w = malloc(NMAX * 4);
    cr_assert(x && w);
    for (int c = 0; c < 30000; c++) {
        size_t n = rng_below(&rng, 4) == 0 ? 1 + rng_below(&rng, 20) : 1 + rng_below(&rng, NMAX);
        int kind = (int)rng_below(&rng, 10);
        gen_data(x, n, n, kind, &rng);
        const float *wp = NULL;
        if (rng_below(&rng, 2)) {
            for (size_t i = 0; i < n; i++) w[i] = rng_below(&rng, 8) == 0 ? 0.0f : (float)(rng_unit(&rng) * 3);
            wp = w;
        }
        int r = (int)rng_below(&rng, 6);
        int qlo = sym_ranges[r][0], qhi = sym_ranges[r][1], L = Ls[rng_below(&rng, 4)];
        float lo = x[0], hi = x[0], amax = 0;
        for (size_t i = 0; i < n; i++) {
            lo = fminf(lo, x[i]);
            hi = fmaxf(hi, x[i]);
            amax = fmaxf(amax, fabsf(x[i]));
        }
        /* parameters near the plain ones, rounded to f16 sometimes (as the drivers do) */
        float jit = (float)(0.7 + 0.6 * rng_unit(&rng));
        float d = amax > 0 ? amax / (float)qhi * jit * (rng_below(&rng, 2) ? 1.0f : -1.0f) : 0.0f;
        float s = hi > lo ? (hi - lo) / (float)L * jit : (float)rng_below(&rng, 2);
        float m = lo + (hi - lo) * (float)(rng_unit(&rng) * 0.2 - 0.05);
        if (rng_below(&rng, 2)) {
            d = mx_f16_to_f32(mx_f32_to_f16(d));
            s = mx_f16_to_f32(mx_f32_to_f16(s));
            m = mx_f16_to_f32(mx_f32_to_f16(m));
        }
        if (rng_below(&rng, 20) == 0)
            d = 0.0f;
        if (rng_below(&rng, 20) == 0)
            s = 0.0f;
        /* put elements on / next to the decision boundaries of d and (m, s) */
        if (rng_below(&rng, 2) && d != 0.0f && s > 0.0f)
            for (size_t i = 0; i < n; i++) {
                if (rng_below(&rng, 2) == 0)
                    continue;
                double v = rng_below(&rng, 2) ? ((double)((int)rng_below(&rng, (size_t)(qhi - qlo)) + qlo) + 0.5) * d
                                              : (double)m + ((double)rng_below(&rng, (size_t)L) + 0.5) * s;
                x[i] = step_ulps(clampq(v), (int)rng_below(&rng, 5) - 2);
            }
        float id = d != 0.0f ? 1.0f / d : 0.0f, ids = s > 0.0f ? 1.0f / s : 0.0f;
        if (rng_below(&rng, 3) == 0) { /* a candidate id from the drivers' grid */
            id = (float)qhi * 1.0625f / (amax > 0 ? amax : 1.0f);
            ids = (float)L / ((hi - lo) > 0 ? hi - lo : 1.0f);
        }
        for (int o = 0; o < nops; o++) {
            snprintf(ctx, sizeof ctx, "%s case %d n=%zu data=%s w=%s qlo=%d qhi=%d L=%d d=%a s=%a m=%a", names[o], c,
                     n, data_names[kind], wp ? "yes" : "NULL", qlo, qhi, L, (double)d, (double)s, (double)m);
            mx_gstats a, b;
            ops[o]->stats(x, wp, n, &a);
            ref->stats(x, wp, n, &b);
            cmp_bits(a.lo, b.lo, "stats.lo", ctx);
            cmp_bits(a.hi, b.hi, "stats.hi", ctx);
            cmp_bits(a.amax, b.amax, "stats.amax", ctx);
            cmp_bits(a.sw, b.sw, "stats.sw", ctx);
            cmp_bits(a.sx, b.sx, "stats.sx", ctx);
            float p1, p2, p3, r1, r2, r3;
            ops[o]->sym_pass(x, wp, n, qlo, qhi, id, &p1, &p2);
            ref->sym_pass(x, wp, n, qlo, qhi, id, &r1, &r2);
            cmp_bits(p1, r1, "sym_pass.sxq", ctx);
            cmp_bits(p2, r2, "sym_pass.sqq", ctx);
            cmp_bits(ops[o]->sym_err(x, wp, n, qlo, qhi, d), ref->sym_err(x, wp, n, qlo, qhi, d), "sym_err", ctx);
            ops[o]->asym_pass(x, wp, n, L, m, ids, &p1, &p2, &p3);
            ref->asym_pass(x, wp, n, L, m, ids, &r1, &r2, &r3);
            cmp_bits(p1, r1, "asym_pass.sq", ctx);
            cmp_bits(p2, r2, "asym_pass.sqq", ctx);
            cmp_bits(p3, r3, "asym_pass.sxq", ctx);
            cmp_bits(ops[o]->asym_err(x, wp, n, L, s, m), ref->asym_err(x, wp, n, L, s, m), "asym_err", ctx);
            if (ops[o]->asym_pass_multi != NULL) { /* K candidates in one sweep: each as its own asym_pass */
                enum { KMAX = 9 };
                float mk[KMAX], idk[KMAX], q1[KMAX], q2[KMAX], q3[KMAX];
                size_t K = rng_below(&rng, KMAX + 1);
                float step = (hi - lo) / (float)L;
                for (size_t k = 0; k < K; k++) { /* the drivers' grid of cuts, and other ranges */
                    float ca = (float)rng_below(&rng, 3) * 0.25f, cb = (float)rng_below(&rng, 3) * 0.25f;
                    float a = lo + ca * step, b = hi - cb * step;
                    mk[k] = rng_below(&rng, 4) == 0 ? m : a;
                    idk[k] = b > a ? (float)L / (b - a) * (rng_below(&rng, 4) == 0 ? jit : 1.0f) : ids;
                }
                ops[o]->asym_pass_multi(x, wp, n, L, K, mk, idk, q1, q2, q3);
                for (size_t k = 0; k < K; k++) {
                    char what[64];
                    ref->asym_pass(x, wp, n, L, mk[k], idk[k], &r1, &r2, &r3);
                    snprintf(what, sizeof what, "asym_pass_multi[%zu of %zu].sq", k, K);
                    cmp_bits(q1[k], r1, what, ctx);
                    snprintf(what, sizeof what, "asym_pass_multi[%zu of %zu].sqq", k, K);
                    cmp_bits(q2[k], r2, what, ctx);
                    snprintf(what, sizeof what, "asym_pass_multi[%zu of %zu].sxq", k, K);
                    cmp_bits(q3[k], r3, what, ctx);
                }
            }
            if (ops[o]->sym_pass_multi != NULL) { /* K symmetric candidates in one sweep: each as its own sym_pass */
                enum { KMAX = 9 };
                static const float offs[] = {0.0f, -0.75f, 0.5f, -0.25f};
                float idk[KMAX], q1[KMAX], q2[KMAX];
                size_t K = rng_below(&rng, KMAX + 1);
                float xm = amax > 0 ? (rng_below(&rng, 2) ? amax : -amax) : 1.0f;
                for (size_t k = 0; k < K; k++) { /* the driver's starting grid, long and short side, and others */
                    float t = rng_below(&rng, 2) ? (float)qlo - offs[rng_below(&rng, 4)]
                                                 : (float)qhi + offs[rng_below(&rng, 4)];
                    idk[k] = t / xm * (rng_below(&rng, 4) == 0 ? jit : 1.0f);
                    if (rng_below(&rng, 8) == 0)
                        idk[k] = id;
                }
                ops[o]->sym_pass_multi(x, wp, n, qlo, qhi, K, idk, q1, q2);
                for (size_t k = 0; k < K; k++) {
                    char what[64];
                    ref->sym_pass(x, wp, n, qlo, qhi, idk[k], &r1, &r2);
                    snprintf(what, sizeof what, "sym_pass_multi[%zu of %zu].sxq", k, K);
                    cmp_bits(q1[k], r1, what, ctx);
                    snprintf(what, sizeof what, "sym_pass_multi[%zu of %zu].sqq", k, K);
                    cmp_bits(q2[k], r2, what, ctx);
                }
            }
            if (ops[o]->codes != NULL) { /* the optional codes pass, against quant_search.h's definition */
                uint8_t got[NMAX], want[NMAX];
                for (int sym = 0; sym < 2; sym++) {
                    int lo_q = sym ? qlo : 0, hi_q = sym ? qhi : L;
                    int bias = -lo_q; /* as the kernels pass it: codes stored as q - qlo >= 0 */
                    float sc = sym ? d : s;
                    if (ref->codes != NULL)
                        ref->codes(x, n, lo_q, hi_q, sc, m, bias, want);
                    else
                        for (size_t i = 0; i < n; i++) {
                            int q = 0;
                            if (sym ? sc != 0.0f : sc > 0.0f) {
                                float t = sym ? x[i] / sc : (x[i] - m) / sc;
                                if (t != t)
                                    t = sym ? (float)hi_q : 0.0f;
                                t = t < (float)lo_q ? (float)lo_q : t;
                                t = t > (float)hi_q ? (float)hi_q : t;
                                q = mx_round_half_even(t);
                            }
                            want[i] = (uint8_t)(q + bias);
                        }
                    ops[o]->codes(x, n, lo_q, hi_q, sc, m, bias, got);
                    for (size_t i = 0; i < n; i++)
                        if (got[i] != want[i])
                            cr_assert_fail("%s: codes (%s) element %zu: simd %u, reference %u", ctx, sym ? "sym" : "asym", i,
                                           got[i], want[i]);
                }
            }
        }
    }
    free(x);
    free(w);
}
