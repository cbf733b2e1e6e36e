/*
 * test_matmul.c - the fused matmul (matmul_kernels.h, matmul.h, mixq.h
 * mixq_matmul*):
 *   - every type with a matmul x every allowed group size (per row / per
 *     tensor included) x odd shapes (row lengths 1 .. 1000, not multiples of
 *     the group or the 256-element chunk, 1 and 3 output rows) x n_x = 1, 3,
 *     17, with padded x / y strides: the scalar path against a binary64
 *     reference computed from the scalar dequantize_row (tight bound), every
 *     SIMD path against the scalar one within MX_MM_TOL, y's padding
 *     untouched;
 *   - the AVX2 direct chunk kernels bit for bit equal to the same path
 *     decoding every chunk into its buffer;
 *   - the result bit for bit the same with 1, 2 and 3 threads (several work
 *     items), and for every split of x into calls (x-row tiles);
 *   - the public calls on a converted container: values against
 *     mixq_dequantize_f32, pool and per-call threads identical, and the
 *     errors (1-D, raw, foreign tensor, NULL, size overflow).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel_fp8.h"
#include "common/half.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"
#include "mixq_tools.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "test_support.h"
#include "common/workpool.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return ((double)(rng_next(s) >> 11) + 0.5) * 0x1p-53; }
static double rng_gauss(uint64_t *s)
{
    double u = rng_unit(s), v = rng_unit(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* A stored tensor built by the scalar quantizer, and its scalar dequantized values. */
typedef struct tensor {
    const qtype_desc *qt;
    qlayout lay;
    uint8_t *bytes;
    float *deq; /* rows x n */
} tensor;

static mx_crowptrs row_ptrs(const tensor *T, size_t r)
{
    mx_crowptrs p = {{0}};
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (qtype_has_section(T->qt, (mixq_section_kind)k))
            p.sec[k] = T->bytes + T->lay.offset[k] + r * T->lay.row_bytes[k];
    return p;
}

/* Builds rows x n weights of type qt at group size `group` (0 = per row / per tensor) from random values. */
static void make_tensor(tensor *T, const qtype_desc *qt, unsigned group, size_t rows, size_t n, uint64_t seed)
{
    float *w = malloc(rows * n * sizeof *w);
    float amax = 0.0f;
    cr_assert(w);
    T->qt = qt;
    cr_assert(qtype_layout(qt, ST_F32, rows, n, group, &T->lay), "%s group %u", qt->name, group);
    T->bytes = calloc(T->lay.total + 64, 1);
    T->deq = malloc(rows * n * sizeof(float));
    cr_assert(T->bytes && T->deq);
    for (size_t i = 0; i < rows * n; i++) {
        /* gaussian with a per-row scale and a few outliers, some rows offset (asymmetric types) */
        double v = rng_gauss(&seed) * (1.0 + (double)(i / n % 3));
        if (rng_next(&seed) % 97 == 0)
            v *= 20.0;
        if (i / n % 2 == 1)
            v += 0.7;
        w[i] = (float)v;
        amax = fabsf(w[i]) > amax ? fabsf(w[i]) : amax;
    }
    const int8_t *levels = NULL; /* codebook types: one codebook for the whole tensor, fitted first */
    if (qt->codebook_levels && rows != 0 && n != 0) {
        int8_t *cb = (int8_t *)(T->bytes + T->lay.offset[MIXQ_SEC_CODEBOOK]);
        qt->fit_codebook(w, NULL, rows, n, T->lay.group, cb);
        levels = cb;
    }
    for (size_t r = 0; r < rows; r++) {
        mx_crowptrs cp = row_ptrs(T, r);
        mx_rowptrs p;
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
            p.sec[k] = (uint8_t *)(uintptr_t)cp.sec[k];
        const float *x = w + r * n;
        float *d = T->deq + r * n;
        switch (qt->id) {
        case MIXQ_QT_F32:
            memcpy(p.sec[MIXQ_SEC_DATA], x, n * 4);
            memcpy(d, x, n * 4);
            break;
        case MIXQ_QT_F16:
        case MIXQ_QT_BF16:
            for (size_t i = 0; i < n; i++) {
                uint16_t h = qt->id == MIXQ_QT_F16 ? mx_f32_to_f16(x[i]) : mx_f32_to_bf16(x[i]);
                mx_st16le(p.sec[MIXQ_SEC_DATA] + 2 * i, h);
                d[i] = qt->id == MIXQ_QT_F16 ? mx_f16_to_f32(h) : mx_bf16_to_f32(h);
            }
            break;
        default: {
            mx_qparams qp = {NULL, false, T->lay.per_tensor ? amax : -1.0f, levels};
            qt->quantize_row(x, n, T->lay.group, &qp, p);
            qt->dequantize_row(cp, n, T->lay.group, d);
        }
        }
    }
    free(w);
}

static void free_tensor(tensor *T)
{
    free(T->bytes);
    free(T->deq);
}

/* Every group size the type allows (0 where per row / per tensor is allowed). */
static size_t groups_of(const qtype_desc *qt, unsigned *out)
{
    size_t k = 0;
    if (!qt->quantized) {
        out[k++] = 0;
        return k;
    }
    for (unsigned g = qt->group_min; g <= qt->group_max; g *= 2)
        out[k++] = g;
    if (qt->allow_row_group)
        out[k++] = 0;
    return k;
}

static const size_t shapes_n[] = {1, 7, 33, 256, 257, 520, 1000};
static const size_t shapes_nx[] = {1, 3, 17};
#define GUARD_F (-1234.5f)

/* The AVX2 kernels without the direct chunk kernels (src/simd_avx2_matmul.c; weak: absent off x86-64). */
extern const mx_dot_rows_fn mx_dot_rows_avx2_buffered[MIXQ_QT_COUNT] __attribute__((weak));

/* The AVX2 direct chunk kernels give the same bits as decoding every chunk into the buffer. */
static void check_direct_same(const tensor *T, const float *x, size_t nx, size_t xs)
{
    const mx_kernel_set *ks = mx_kernels_for(MX_SIMD_AVX2);
    size_t rows = (size_t)T->lay.rows, n = (size_t)T->lay.row_length;
    if (!ks || !mx_dot_rows_avx2_buffered)
        return;
    for (size_t o = 0; o < rows; o++) {
        float a[17], b[17];
        cr_assert(nx <= 17);
        ks->dot_rows[T->qt->id](row_ptrs(T, o), n, T->lay.group, x, nx, xs, a, 1);
        mx_dot_rows_avx2_buffered[T->qt->id](row_ptrs(T, o), n, T->lay.group, x, nx, xs, b, 1);
        for (size_t r = 0; r < nx; r++)
            cr_assert(memcmp(&a[r], &b[r], 4) == 0, "avx2 direct %s group %u n=%zu out %zu x row %zu: %a vs buffered %a",
                      T->qt->name, T->lay.group, n, o, r, (double)a[r], (double)b[r]);
    }
}

/* One tensor against every path and n_x. */
static void check_tensor(const tensor *T, uint64_t seed)
{
    size_t rows = (size_t)T->lay.rows, n = (size_t)T->lay.row_length;
    const mx_kernel_set *ref = mx_kernels_for(MX_SIMD_SCALAR);
    for (size_t s = 0; s < sizeof shapes_nx / sizeof shapes_nx[0]; s++) {
        size_t nx = shapes_nx[s], xs = n + 3, ys = rows + 2;
        float *x = malloc(nx * xs * sizeof *x), *y0 = malloc(nx * ys * sizeof *y0), *y1 = malloc(nx * ys * sizeof *y1);
        double *exact = malloc(nx * rows * sizeof *exact), *mag = malloc(nx * rows * sizeof *mag);
        cr_assert(x && y0 && y1 && exact && mag);
        for (size_t i = 0; i < nx * xs; i++)
            x[i] = (float)rng_gauss(&seed);
        for (size_t r = 0; r < nx; r++)
            for (size_t o = 0; o < rows; o++) {
                double e = 0.0, m = 0.0;
                for (size_t i = 0; i < n; i++) {
                    double p = (double)T->deq[o * n + i] * (double)x[r * xs + i];
                    e += p;
                    m += fabs(p);
                }
                exact[r * rows + o] = e;
                mag[r * rows + o] = m;
            }
        for (size_t i = 0; i < nx * ys; i++)
            y0[i] = GUARD_F;
        mx_matmul(ref, T->qt, &T->lay, T->bytes, x, nx, xs, y0, ys, NULL);
        for (size_t r = 0; r < nx; r++) {
            for (size_t o = 0; o < rows; o++) {
                double e = exact[r * rows + o], m = mag[r * rows + o], got = y0[r * ys + o];
                double tol = 0x1p-24 * fabs(e) + (double)n * 0x1p-52 * m + 0x1p-140;
                cr_assert(fabs(got - e) <= tol, "scalar %s group %u n=%zu nx=%zu row %zu out %zu: %a vs %a (tol %g)",
                          T->qt->name, T->lay.group, n, nx, r, o, got, e, tol);
            }
            for (size_t o = rows; o < ys; o++)
                cr_assert(y0[r * ys + o] == GUARD_F, "scalar wrote y padding");
        }
        check_direct_same(T, x, nx, xs);
        for (int path = 1; path < MX_SIMD_COUNT; path++) {
            const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
            if (!ks)
                continue;
            for (size_t i = 0; i < nx * ys; i++)
                y1[i] = GUARD_F;
            mx_matmul(ks, T->qt, &T->lay, T->bytes, x, nx, xs, y1, ys, NULL);
            for (size_t r = 0; r < nx; r++) {
                for (size_t o = 0; o < rows; o++) {
                    double d = fabs((double)y1[r * ys + o] - (double)y0[r * ys + o]);
                    double tol = MX_MM_TOL(n) * mag[r * rows + o];
                    cr_assert(d <= tol, "%s %s group %u n=%zu nx=%zu row %zu out %zu: %a vs scalar %a (tol %g)",
                              mx_simd_name((mx_simd)path), T->qt->name, T->lay.group, n, nx, r, o,
                              (double)y1[r * ys + o], (double)y0[r * ys + o], tol);
                }
                for (size_t o = rows; o < ys; o++)
                    cr_assert(y1[r * ys + o] == GUARD_F, "%s wrote y padding", mx_simd_name((mx_simd)path));
            }
        }
        free(x);
        free(y0);
        free(y1);
        free(exact);
        free(mag);
    }
}

/* Every type x group x shape: scalar against binary64, SIMD against scalar. */
static void check_type(mixq_qtype id)
{
    const qtype_desc *qt = qtype_get(id);
    unsigned groups[16];
    uint64_t seed = 0x6D6D00u + (uint64_t)id * 7919u;
    cr_assert(qt);
    size_t ng = groups_of(qt, groups);
    for (size_t gi = 0; gi < ng; gi++)
        for (size_t si = 0; si < sizeof shapes_n / sizeof shapes_n[0]; si++) {
            tensor T;
            size_t rows = si % 2 == 0 ? 3 : 1;
            make_tensor(&T, qt, groups[gi], rows, shapes_n[si], seed += 101);
            check_tensor(&T, seed);
            free_tensor(&T);
        }
}

Test(matmul, f32) { check_type(MIXQ_QT_F32); }
Test(matmul, f16) { check_type(MIXQ_QT_F16); }
Test(matmul, bf16) { check_type(MIXQ_QT_BF16); }
Test(matmul, int8) { check_type(MIXQ_QT_INT8); }
Test(matmul, int4) { check_type(MIXQ_QT_INT4); }
Test(matmul, int4s) { check_type(MIXQ_QT_INT4S); }
Test(matmul, int2) { check_type(MIXQ_QT_INT2); }
Test(matmul, fp8_e4m3) { check_type(MIXQ_QT_FP8_E4M3); }
Test(matmul, fp8_e5m2) { check_type(MIXQ_QT_FP8_E5M2); }
Test(matmul, int4_dq) { check_type(MIXQ_QT_INT4_DQ); }
Test(matmul, int2_dq) { check_type(MIXQ_QT_INT2_DQ); }
Test(matmul, int3_dq) { check_type(MIXQ_QT_INT3_DQ); }
Test(matmul, int6_dq) { check_type(MIXQ_QT_INT6_DQ); }

/* Every type's kernel set entry exists on every path (raw has none). */
Test(matmul, kernel_sets_complete)
{
    for (int path = 0; path < MX_SIMD_COUNT; path++) {
        const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
        if (!ks)
            continue;
        for (int t = 0; t < MIXQ_QT_COUNT; t++)
            cr_assert((ks->dot_rows[t] != NULL) == (t != MIXQ_QT_RAW), "%s type %d", mx_simd_name((mx_simd)path), t);
    }
}

/*
 * 1, 2 and 3 threads and x split into separate calls give the same bits
 * (the active path; many work items: rows x row bytes well above MX_MM_BLOCK_BYTES).
 */
Test(matmul, thread_count_and_tiles_independent)
{
    static const struct { mixq_qtype id; unsigned group; size_t rows, n; } cases[] = {
        {MIXQ_QT_INT4, 32, 301, 1000}, {MIXQ_QT_F32, 0, 130, 700}, {MIXQ_QT_INT3_DQ, 16, 257, 777},
        {MIXQ_QT_FP8_E4M3, 0, 150, 1030},
    };
    mx_pool *pools[3] = {NULL, mx_pool_create(2), mx_pool_create(3)};
    cr_assert(pools[1] && pools[2]);
    uint64_t seed = 42;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tensor T;
        size_t nx = 11, rows = cases[c].rows, n = cases[c].n;
        make_tensor(&T, qtype_get(cases[c].id), cases[c].group, rows, n, seed++);
        float *x = malloc(nx * n * sizeof *x), *y[4];
        cr_assert(x);
        for (size_t i = 0; i < nx * n; i++)
            x[i] = (float)rng_gauss(&seed);
        for (int k = 0; k < 4; k++) {
            y[k] = malloc(nx * rows * sizeof(float));
            cr_assert(y[k]);
        }
        for (int k = 0; k < 3; k++)
            mx_matmul(NULL, T.qt, &T.lay, T.bytes, x, nx, n, y[k], rows, pools[k]);
        /* the x rows one call at a time, on 2 threads */
        for (size_t r = 0; r < nx; r++)
            mx_matmul(NULL, T.qt, &T.lay, T.bytes, x + r * n, 1, n, y[3] + r * rows, rows, pools[1]);
        for (int k = 1; k < 4; k++)
            cr_assert(memcmp(y[0], y[k], nx * rows * sizeof(float)) == 0, "%s: variant %d differs", T.qt->name, k);
        for (int k = 0; k < 4; k++)
            free(y[k]);
        free(x);
        free_tensor(&T);
    }
    mx_pool_destroy(pools[1]);
    mx_pool_destroy(pools[2]);
}

/* ---- the public calls ---- */

static char *make_container(const char *dir, mixq_qtype type, unsigned group)
{
    /* w: [37, 300] F32, b: [300] F32, ids: [4, 3] I32 (kept raw) */
    size_t nw = 37 * 300, nb = 300, ni = 12;
    size_t data_len = (nw + nb + ni) * 4;
    uint8_t *data = malloc(data_len);
    uint64_t seed = 7;
    cr_assert(data);
    for (size_t i = 0; i < nw + nb; i++) {
        float v = (float)rng_gauss(&seed);
        memcpy(data + 4 * i, &v, 4);
    }
    for (size_t i = 0; i < ni; i++) {
        int32_t v = (int32_t)i;
        memcpy(data + 4 * (nw + nb + i), &v, 4);
    }
    char hdr[512];
    snprintf(hdr, sizeof hdr,
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[37,300],\"data_offsets\":[0,%zu]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[300],\"data_offsets\":[%zu,%zu]},"
             "\"ids\":{\"dtype\":\"I32\",\"shape\":[4,3],\"data_offsets\":[%zu,%zu]}}",
             nw * 4, nw * 4, (nw + nb) * 4, (nw + nb) * 4, data_len);
    size_t len;
    uint8_t *st = ts_safetensors(hdr, data, data_len, &len);
    char *in = ts_path(dir, "in.safetensors"), *out = ts_path(dir, "out.mxq");
    ts_write_file(in, st, len);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = type;
    o.group_size = group;
    o.threads = 1;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    free(st);
    free(data);
    free(in);
    return out;
}

Test(matmul, public_api)
{
    static const struct { mixq_qtype type; unsigned group; } types[] = {
        {MIXQ_QT_INT4, 0}, {MIXQ_QT_FP8_E4M3, 0}, {MIXQ_QT_INT6_DQ, 0}, {MIXQ_QT_BF16, 0}};
    char *dir = ts_tmpdir();
    mixq_pool *pool = mixq_pool_create(2);
    cr_assert(pool);
    cr_assert_eq(mixq_pool_threads(pool), 2);
    cr_assert_eq(mixq_pool_threads(NULL), 1);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        char *path = make_container(dir, types[t].type, types[t].group);
        mixq_error err;
        mixq_file *f = mixq_open(path, 0, &err);
        cr_assert(f, "%s", err.message);
        const mixq_tensor *w = mixq_find(f, "w");
        cr_assert(w);
        size_t nx = 5, in = 300, out = 37;
        float *x = malloc(nx * in * sizeof *x), *deq = malloc(out * in * sizeof *deq);
        float *y1 = malloc(nx * out * sizeof *y1), *y2 = malloc(nx * out * sizeof *y2), *y3 = malloc(nx * out * sizeof *y3);
        cr_assert(x && deq && y1 && y2 && y3);
        uint64_t seed = 99;
        for (size_t i = 0; i < nx * in; i++)
            x[i] = (float)rng_gauss(&seed);
        cr_assert_eq(mixq_dequantize_f32(f, w, 0, out, deq, &err), MIXQ_OK, "%s", err.message);
        cr_assert_eq(mixq_matmul(f, w, x, nx, y1, 1, &err), MIXQ_OK, "%s", err.message);
        cr_assert_eq(mixq_matmul(f, w, x, nx, y2, 3, &err), MIXQ_OK, "%s", err.message);
        cr_assert_eq(mixq_matmul_pool(f, w, x, nx, y3, pool, &err), MIXQ_OK, "%s", err.message);
        cr_assert(memcmp(y1, y2, nx * out * 4) == 0 && memcmp(y1, y3, nx * out * 4) == 0);
        for (size_t r = 0; r < nx; r++)
            for (size_t o = 0; o < out; o++) {
                double e = 0.0, m = 0.0;
                for (size_t i = 0; i < in; i++) {
                    e += (double)deq[o * in + i] * x[r * in + i];
                    m += fabs((double)deq[o * in + i] * x[r * in + i]);
                }
                cr_assert(fabs(y1[r * out + o] - e) <= MX_MM_TOL(in) * m + 0x1p-24 * fabs(e),
                          "%s r %zu o %zu: %a vs %a", mixq_qtype_name(types[t].type), r, o, (double)y1[r * out + o], e);
            }

        /* errors */
        cr_assert_eq(mixq_matmul(f, mixq_find(f, "b"), x, 1, y1, 1, &err), MIXQ_E_INVALID_ARG);
        cr_assert(strstr(err.message, "dimensions"), "%s", err.message);
        cr_assert_eq(mixq_matmul(f, mixq_find(f, "ids"), x, 1, y1, 1, &err), MIXQ_E_UNSUPPORTED);
        cr_assert(strstr(err.message, "raw"), "%s", err.message);
        cr_assert_eq(mixq_matmul(NULL, w, x, 1, y1, 1, &err), MIXQ_E_INVALID_ARG);
        cr_assert_eq(mixq_matmul(f, w, NULL, 1, y1, 1, &err), MIXQ_E_INVALID_ARG);
        cr_assert_eq(mixq_matmul(f, w, x, 1, NULL, 1, &err), MIXQ_E_INVALID_ARG);
        cr_assert_eq(mixq_matmul(f, w, x, SIZE_MAX / 64, y1, 1, &err), MIXQ_E_RANGE);
        cr_assert_eq(mixq_matmul(f, w, x, 0, y1, 1, &err), MIXQ_OK);
        /* a tensor of another open file */
        mixq_file *g = mixq_open(path, 0, &err);
        cr_assert(g);
        cr_assert_eq(mixq_matmul(f, mixq_find(g, "w"), x, 1, y1, 1, &err), MIXQ_E_INVALID_ARG);
        cr_assert(strstr(err.message, "another file"), "%s", err.message);
        mixq_close(g);

        free(x);
        free(deq);
        free(y1);
        free(y2);
        free(y3);
        mixq_close(f);
        remove(path);
        free(path);
    }
    mixq_pool_destroy(pool);
    ts_rmtree(dir);
    free(dir);
}

/*
 * A group with a non-finite stored scale (kernels.h: its weights are NaN)
 * makes its row's outputs NaN on every path; the other rows keep their
 * values.  Whole chunks (the AVX2 direct kernels) and a partial last chunk.
 */
Test(matmul, nonfinite_scale_gives_nan)
{
    static const struct { mixq_qtype id; unsigned group; } cases[] = {
        {MIXQ_QT_INT4, 16}, {MIXQ_QT_INT8, 32}, {MIXQ_QT_FP8_E5M2, 32}, {MIXQ_QT_FP8_E4M3, 0},
        {MIXQ_QT_INT4_DQ, 16}, {MIXQ_QT_INT6_DQ, 16},
    };
    static const uint16_t bad16[] = {0x7C00u, 0xFC00u, 0x7E00u};
    uint64_t seed = 5;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t v = 0; v < 3; v++) {
            tensor T;
            size_t rows = 3, n = 600, nx = 2;
            make_tensor(&T, qtype_get(cases[c].id), cases[c].group, rows, n, seed++);
            /* row 1: the scale of the group of element 100 (or 550, in the partial last chunk) */
            size_t e = v == 2 ? 550 : 100;
            uint8_t *p;
            if (T.qt->super_block) {
                p = T.bytes + T.lay.offset[MIXQ_SEC_SUPER_SCALES] + T.lay.row_bytes[MIXQ_SEC_SUPER_SCALES] + 2 * (e / 256);
                mx_st16le(p, bad16[v]);
            } else if (T.qt->scale_kind == QS_F32) {
                p = T.bytes + T.lay.offset[MIXQ_SEC_SCALES] + T.lay.row_bytes[MIXQ_SEC_SCALES] +
                    4 * (T.lay.per_tensor ? 0 : e / T.lay.group);
                mx_fp8_st_f32le(p, v == 0 ? INFINITY : NAN);
            } else {
                p = T.bytes + T.lay.offset[MIXQ_SEC_SCALES] + T.lay.row_bytes[MIXQ_SEC_SCALES] + 2 * (e / T.lay.group);
                mx_st16le(p, bad16[v]);
            }
            float x[2 * 600], y[2 * 3];
            for (size_t i = 0; i < nx * n; i++)
                x[i] = (float)rng_gauss(&seed);
            for (int path = 0; path < MX_SIMD_COUNT; path++) {
                const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
                if (!ks)
                    continue;
                mx_matmul(ks, T.qt, &T.lay, T.bytes, x, nx, n, y, rows, NULL);
                for (size_t r = 0; r < nx; r++)
                    for (size_t o = 0; o < rows; o++) {
                        /* per-tensor fp8: the one scale is every row's */
                        int want_nan = o == 1 || T.lay.per_tensor;
                        cr_assert(isnan(y[r * rows + o]) == want_nan, "%s %s case %zu out %zu: %a",
                                  mx_simd_name((mx_simd)path), T.qt->name, v, o, (double)y[r * rows + o]);
                    }
            }
            free_tensor(&T);
        }
}

/*
 * Plain f32 / f16 / bf16 bytes at any address (a safetensors tensor's data
 * may start at an odd offset): every path gives the same bits as from an
 * aligned copy.
 */
Test(matmul, plain_bytes_at_any_address)
{
    static const mixq_qtype ids[] = {MIXQ_QT_F32, MIXQ_QT_F16, MIXQ_QT_BF16};
    uint64_t seed = 77;
    for (size_t c = 0; c < 3; c++) {
        tensor T;
        size_t rows = 5, n = 700, nx = 3;
        make_tensor(&T, qtype_get(ids[c]), 0, rows, n, seed++);
        uint8_t *odd = malloc((size_t)T.lay.total + 8);
        float *x = malloc(nx * n * sizeof *x), ya[15], yb[15];
        cr_assert(odd && x);
        for (size_t i = 0; i < nx * n; i++)
            x[i] = (float)rng_gauss(&seed);
        for (size_t shift = 1; shift < 4; shift++) {
            memcpy(odd + shift, T.bytes, (size_t)T.lay.total);
            for (int path = 0; path < MX_SIMD_COUNT; path++) {
                const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
                if (!ks)
                    continue;
                mx_matmul(ks, T.qt, &T.lay, T.bytes, x, nx, n, ya, rows, NULL);
                mx_matmul(ks, T.qt, &T.lay, odd + shift, x, nx, n, yb, rows, NULL);
                cr_assert(memcmp(ya, yb, sizeof ya) == 0, "%s %s shift %zu", mx_simd_name((mx_simd)path),
                          T.qt->name, shift);
            }
        }
        free(odd);
        free(x);
        free_tensor(&T);
    }
}
