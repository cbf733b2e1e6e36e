/*
 * test_nl4.c - the lookup-table types nl4 and nl4_dq (FORMAT.md §4.12,
 * §4.13): the level table, the nearest-level rule, the plain choice's
 * bounds, exact byte layouts, non-finite scales, every path and the matmul
 * against the scalar reference, and containers (format minor 2 only when
 * they hold one of these types).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "common/half.h"
#include "kernels/kernel_nl4.h"
#include "kernels/kernels.h"
#include "kernels/matmul_kernels.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "mixq.h"
#include "mixq_tools.h"
#include "test_rng.h"
#include "test_support.h"

#define QT(id) qtype_get(id)

/* One row's sections (exact sizes plus a guard byte). */
typedef struct row {
    qlayout l;
    uint8_t *sec[MIXQ_SECTION_COUNT];
} row;

static void row_alloc(const qtype_desc *qt, size_t n, unsigned g, row *r)
{
    cr_assert(qtype_layout(qt, ST_F32, 1, n, g, &r->l));
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        r->sec[k] = NULL;
        if (qtype_has_section(qt, (mixq_section_kind)k)) {
            r->sec[k] = malloc(r->l.row_bytes[k] + 1);
            memset(r->sec[k], 0xA5, r->l.row_bytes[k] + 1);
        }
    }
}

static void row_free(row *r)
{
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) free(r->sec[k]);
}

static mx_rowptrs wptrs(row *r)
{
    mx_rowptrs o;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) o.sec[k] = r->sec[k];
    return o;
}

static mx_crowptrs rptrs(const row *r)
{
    mx_crowptrs o;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) o.sec[k] = r->sec[k];
    return o;
}

/* Quantizes x with kernel set ks (p may be NULL) and dequantizes into y with the scalar reference. */
static void roundtrip(const mx_kernel_set *ks, mixq_qtype t, const float *x, size_t n, unsigned g,
                      const mx_qparams *p, row *r, float *y)
{
    const qtype_desc *qt = QT(t);
    row_alloc(qt, n, g, r);
    ks->quantize_row[t](x, n, r->l.group, p, wptrs(r));
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (r->sec[k]) cr_assert_eq(r->sec[k][r->l.row_bytes[k]], 0xA5, "%s wrote past section %d", qt->name, k);
    qt->dequantize_row(rptrs(r), n, r->l.group, y);
}

Test(nl4, level_table)
{
    cr_assert_eq(mx_nl4_level[0], -127);
    for (int i = 0; i < MX_NL4_LEVELS; i++) {
        cr_assert(mx_nl4_level[i] >= -127 && mx_nl4_level[i] <= 127);
        if (i) cr_assert_gt(mx_nl4_level[i], mx_nl4_level[i - 1]);
        if (i < MX_NL4_LEVELS - 1)
            cr_assert_eq(mx_nl4_mid[i], ((float)mx_nl4_level[i] + (float)mx_nl4_level[i + 1]) / 2.0f);
    }
    /* the index is the nearest level, the lower one on a tie; NaN -> 0 */
    for (int k = -600; k <= 600; k++) {
        float t = (float)k / 4.0f;
        unsigned q = mx_nl4_index(t);
        double best = INFINITY;
        unsigned bq = 0;
        for (unsigned i = 0; i < MX_NL4_LEVELS; i++) {
            double d = fabs((double)t - mx_nl4_level[i]);
            if (d < best) best = d, bq = i;
        }
        cr_assert_eq(q, bq, "t=%g: index %u, nearest %u", (double)t, q, bq);
    }
    cr_assert_eq(mx_nl4_index(NAN), 0u);
    cr_assert_eq(mx_nl4_index(INFINITY), 15u);
    cr_assert_eq(mx_nl4_index(-INFINITY), 0u);
    cr_assert_eq(mx_nl4_code(5.0f, 0.0f), 8u);
}

/* The plain choice: every element on its nearest level, the error within FORMAT.md's bounds. */
Test(nl4, plain_choice_bounds_and_nearest_levels)
{
    enum { N = 1000 };
    float x[N], y[N];
    uint64_t seed = 0x41;
    mx_qparams rtn = {NULL, false, -1.0f, NULL};
    for (int rep = 0; rep < 20; rep++) {
        double sigma = rep % 3 == 0 ? 1e-3 : rep % 3 == 1 ? 1.0 : 300.0;
        for (int i = 0; i < N; i++) x[i] = (float)(rng_gauss(&seed) * sigma);
        for (int tt = 0; tt < 2; tt++) {
            mixq_qtype t = tt ? MIXQ_QT_NL4_DQ : MIXQ_QT_NL4;
            unsigned g = tt ? 32 : (unsigned[]){16, 32, 64, 128, 256}[rep % 5];
            row r;
            roundtrip(mx_kernels_for(MX_SIMD_SCALAR), t, x, N, g, &rtn, &r, y);
            for (size_t g0 = 0; g0 < N; g0 += g) {
                size_t gl = N - g0 < g ? N - g0 : g;
                float amax = 0, hi = x[g0], xm;
                for (size_t i = 0; i < gl; i++) {
                    amax = fmaxf(amax, fabsf(x[g0 + i]));
                    hi = fmaxf(hi, x[g0 + i]);
                }
                xm = hi == amax ? amax : -amax;
                /* the scale: the element value of level 0 is -127 s */
                float s;
                if (tt == 0) {
                    s = mx_f16_to_f32(mx_ld16le(r.sec[MIXQ_SEC_SCALES] + 2 * (g0 / g)));
                } else {
                    size_t off[QT_MAX_PLANES];
                    mx_planes_offsets(QT(t)->scale_planes, (N + 31) / 32, off);
                    int c = (int)mx_planes_get(r.sec[MIXQ_SEC_SCALES], QT(t)->scale_planes, off, g0 / 32) - 32;
                    s = mx_f16_to_f32(mx_ld16le(r.sec[MIXQ_SEC_SUPER_SCALES] + 2 * (g0 / 256))) * (float)c;
                }
                cr_assert(s == 0.0f || (s < 0.0f) == (xm > 0.0f), "scale sign");
                cr_assert_geq(127.0 * fabs((double)s), amax, "scale covers the group");
                for (size_t i = 0; i < gl; i++) {
                    double v = x[g0 + i], e = fabs(v - y[g0 + i]);
                    bool same_sign = (v >= 0) == (xm >= 0);
                    cr_assert_leq(e, (same_sign ? 13.0 : 17.0) * fabs((double)s), "%s g%u error bound", QT(t)->name, g);
                    unsigned q = (r.sec[MIXQ_SEC_CODES][(g0 + i) / 2] >> (4 * ((g0 + i) % 2))) & 15u;
                    cr_assert_eq(q, mx_nl4_code(x[g0 + i], s));
                    cr_assert_eq(y[g0 + i], (float)mx_nl4_level[q] * s);
                }
            }
            row_free(&r);
        }
    }
}

/* Exact bytes of small rows (FORMAT.md §4.12, §4.13, §5). */
Test(nl4, byte_layout)
{
    /* nl4 g16, 3 elements: amax 1.27 (xm = +1.27) -> |s| = the smallest f16 with 127 |s| >= 1.27: 0.01000213623
       (0x211F), negative. */
    float x[3] = {1.27f, -0.5f, 0.0f}, y[3];
    mx_qparams rtn = {NULL, false, -1.0f, NULL};
    row r;
    roundtrip(mx_kernels_for(MX_SIMD_SCALAR), MIXQ_QT_NL4, x, 3, 16, &rtn, &r, y);
    uint16_t h = mx_ld16le(r.sec[MIXQ_SEC_SCALES]);
    float s = mx_f16_to_f32(h);
    cr_assert_eq(h & 0x8000u, 0x8000u);
    cr_assert(127.0f * -s >= 1.27f && 127.0f * -mx_f16_to_f32((uint16_t)(h - 1u)) < 1.27f);
    /* 1.27 / s = -126.97 -> level 0; -0.5 / s = 49.99 -> 47 < t <= 62: level 12 (54); 0 -> level 8 (2) */
    cr_assert_eq(r.sec[MIXQ_SEC_CODES][0], 0xC0);
    cr_assert_eq(r.sec[MIXQ_SEC_CODES][1], 0x08);
    cr_assert_eq(y[0], -127.0f * s);
    cr_assert_eq(y[1], 54.0f * s);
    cr_assert_eq(y[2], 2.0f * s);
    row_free(&r);

    /* nl4_dq, 300 elements: 2 super-blocks, 10 groups; sections 150 + (5 + 3) + 4 bytes. */
    qlayout l;
    cr_assert(qtype_layout(QT(MIXQ_QT_NL4_DQ), ST_F32, 2, 300, 32, &l));
    cr_assert_eq(l.row_bytes[MIXQ_SEC_CODES], 150);
    cr_assert_eq(l.row_bytes[MIXQ_SEC_SCALES], 8);
    cr_assert_eq(l.row_bytes[MIXQ_SEC_SUPER_SCALES], 4);
    cr_assert_eq(l.offset[MIXQ_SEC_SCALES], 320);
    cr_assert_eq(l.offset[MIXQ_SEC_SUPER_SCALES], 384);
    cr_assert_eq(l.total, 392);
    cr_assert_eq(l.row_bytes[MIXQ_SEC_MINS], 0);
    cr_assert(!qtype_layout(QT(MIXQ_QT_NL4_DQ), ST_F32, 1, 256, 16, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_NL4), ST_F32, 1, 256, 0, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_NL4), ST_F32, 1, 256, 512, &l));
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_NL4), 32), 4.5, 1e-12);
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_NL4_DQ), 32), 4.25, 1e-12);

    /* hand-made nl4_dq bytes: d = 0.5 (0x3800), group 0 code -3 (stored 29), group 1 code 2 (34) */
    uint8_t codes[32] = {0}, sc[2] = {0}, sup[2] = {0x00, 0x38};
    float out[64];
    codes[0] = 0xF0;  /* elements 0, 1: levels 0 (-127) and 15 (110) */
    codes[16] = 0x08; /* element 32: level 8 (2) */
    size_t off[QT_MAX_PLANES];
    mx_planes_offsets(QT(MIXQ_QT_NL4_DQ)->scale_planes, 2, off);
    mx_planes_put(sc, QT(MIXQ_QT_NL4_DQ)->scale_planes, off, 0, 29);
    mx_planes_put(sc, QT(MIXQ_QT_NL4_DQ)->scale_planes, off, 1, 34);
    cr_assert_eq(sc[0], 0x2D); /* low nibbles 13, 2 */
    cr_assert_eq(sc[1], 0x09); /* high 2-bit fields 1, 2 */
    mx_crowptrs in = {{0}};
    in.sec[MIXQ_SEC_CODES] = codes;
    in.sec[MIXQ_SEC_SCALES] = sc;
    in.sec[MIXQ_SEC_SUPER_SCALES] = sup;
    for (int path = 0; path < MX_SIMD_COUNT; path++) {
        const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
        if (!ks) continue;
        ks->dequantize_row[MIXQ_QT_NL4_DQ](in, 64, 32, out);
        cr_assert_eq(out[0], 190.5f, "%s", mx_simd_name((mx_simd)path)); /* -127 * (0.5 * -3) */
        cr_assert_eq(out[1], -165.0f);
        cr_assert_eq(out[2], 190.5f); /* a zero byte: level 0 */
        cr_assert_eq(out[32], 2.0f); /* 2 * (0.5 * 2) */
        cr_assert_eq(out[33], -127.0f);
    }
}

/* Non-finite stored scales give the canonical NaN on every path (kernels.h). */
Test(nl4, nonfinite_scales_give_canonical_nan)
{
    enum { N = 520 };
    float x[N], y[N];
    uint64_t seed = 9;
    for (int i = 0; i < N; i++) x[i] = (float)rng_gauss(&seed);
    for (int tt = 0; tt < 2; tt++) {
        mixq_qtype t = tt ? MIXQ_QT_NL4_DQ : MIXQ_QT_NL4;
        row r;
        roundtrip(mx_kernels_for(MX_SIMD_SCALAR), t, x, N, 32, NULL, &r, y);
        uint8_t *p = tt ? r.sec[MIXQ_SEC_SUPER_SCALES] + 2 : r.sec[MIXQ_SEC_SCALES] + 2; /* super-block / group 1 */
        mx_st16le(p, 0xFE01u);
        size_t a = tt ? 256 : 32, b = tt ? 512 : 64;
        for (int path = 0; path < MX_SIMD_COUNT; path++) {
            const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
            if (!ks) continue;
            ks->dequantize_row[t](rptrs(&r), N, 32, y);
            for (size_t i = 0; i < N; i++) {
                uint32_t u;
                memcpy(&u, &y[i], 4);
                if (i >= a && i < b)
                    cr_assert_eq(u, MX_CANONICAL_NAN_BITS, "%s %s element %zu", QT(t)->name,
                                 mx_simd_name((mx_simd)path), i);
                else
                    cr_assert(isfinite(y[i]));
            }
        }
        row_free(&r);
    }
}

/* Every path quantizes to the same bytes and dequantizes to the same bits, with and without importance. */
Test(nl4, paths_bit_identical)
{
    static const size_t sizes[] = {1, 15, 32, 33, 255, 256, 257, 700, 1024};
    float x[1024], w[1024], y0[1024], y1[1024];
    uint64_t seed = 0x77;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)(rng_gauss(&seed) * (i % 97 == 5 ? 40.0 : 0.02));
            w[i] = (float)rng_unit(&seed);
        }
        for (int tt = 0; tt < 2; tt++) {
            mixq_qtype t = tt ? MIXQ_QT_NL4_DQ : MIXQ_QT_NL4;
            for (int mode = 0; mode < 3; mode++) {
                mx_qparams p = {mode == 2 ? w : NULL, mode != 0, -1.0f, NULL};
                row ref;
                roundtrip(mx_kernels_for(MX_SIMD_SCALAR), t, x, n, 32, &p, &ref, y0);
                for (int path = 1; path < MX_SIMD_COUNT; path++) {
                    const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
                    row r;
                    if (!ks) continue;
                    roundtrip(ks, t, x, n, 32, &p, &r, y1);
                    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                        if (ref.sec[k])
                            cr_assert(!memcmp(ref.sec[k], r.sec[k], ref.l.row_bytes[k]), "%s %s n=%zu section %d",
                                      QT(t)->name, mx_simd_name((mx_simd)path), n, k);
                    ks->dequantize_row[t](rptrs(&r), n, 32, y1);
                    cr_assert(!memcmp(y0, y1, n * sizeof *y0), "%s %s n=%zu dequantize", QT(t)->name,
                              mx_simd_name((mx_simd)path), n);
                    row_free(&r);
                }
                row_free(&ref);
            }
        }
    }
}

/* The search lowers the error against the plain choice, and importance lowers the weighted error. */
Test(nl4, search_and_importance)
{
    enum { N = 8192 };
    float *x = malloc(N * sizeof *x), *w = malloc(N * sizeof *w), *y = malloc(N * sizeof *y);
    uint64_t seed = 0x99;
    for (size_t i = 0; i < N; i++) {
        x[i] = (float)(rng_gauss(&seed) * (rng_next(&seed) % 50 == 0 ? 6.0 : 1.0));
        w[i] = rng_next(&seed) % 8 == 0 ? 1000.0f : 0.01f;
    }
    for (int tt = 0; tt < 2; tt++) {
        mixq_qtype t = tt ? MIXQ_QT_NL4_DQ : MIXQ_QT_NL4;
        double e[3] = {0}, ew[3] = {0};
        for (int mode = 0; mode < 3; mode++) {
            mx_qparams p = {mode == 2 ? w : NULL, mode != 0, -1.0f, NULL};
            row r;
            roundtrip(mx_kernels_for(MX_SIMD_SCALAR), t, x, N, 32, &p, &r, y);
            for (size_t i = 0; i < N; i++) {
                double d = (double)x[i] - y[i];
                e[mode] += d * d;
                ew[mode] += w[i] * d * d;
            }
            row_free(&r);
        }
        cr_log_info("%s: error plain %.6g search %.6g; weighted: search %.6g, with importance %.6g", QT(t)->name,
                    e[0], e[1], ew[1], ew[2]);
        cr_assert_lt(e[1], 0.95 * e[0], "%s: the search did not lower the error", QT(t)->name);
        cr_assert_lt(ew[2], 0.9 * ew[1], "%s: importance did not lower the weighted error", QT(t)->name);
    }
    free(x);
    free(w);
    free(y);
}

/* The matmul of every path against dequantize-then-dot (matmul_kernels.h tolerance). */
Test(nl4, matmul_matches_dequantized_dot)
{
    enum { ROWS = 3, NX = 3 };
    static const size_t sizes[] = {32, 256, 300, 512, 777};
    uint64_t seed = 0x3141;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        float *x = malloc(n * ROWS * sizeof *x), *v = malloc(n * NX * sizeof *v), *wd = malloc(n * sizeof *wd);
        for (size_t i = 0; i < n * ROWS; i++) x[i] = (float)rng_gauss(&seed);
        for (size_t i = 0; i < n * NX; i++) v[i] = (float)rng_gauss(&seed);
        for (int tt = 0; tt < 2; tt++) {
            mixq_qtype t = tt ? MIXQ_QT_NL4_DQ : MIXQ_QT_NL4;
            for (size_t rr = 0; rr < ROWS; rr++) {
                row r;
                roundtrip(mx_kernels_for(MX_SIMD_SCALAR), t, x + rr * n, n, 32, NULL, &r, wd);
                for (int path = 0; path < MX_SIMD_COUNT; path++) {
                    const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
                    float y[NX];
                    if (!ks) continue;
                    ks->dot_rows[t](rptrs(&r), n, r.l.group, v, NX, n, y, 1);
                    for (size_t b = 0; b < NX; b++) {
                        double exact = 0, mag = 0;
                        for (size_t i = 0; i < n; i++) {
                            exact += (double)wd[i] * v[b * n + i];
                            mag += fabs((double)wd[i] * v[b * n + i]);
                        }
                        cr_assert_leq(fabs(y[b] - exact), MX_MM_TOL(n) * mag + 1e-30, "%s %s n=%zu", QT(t)->name,
                                      mx_simd_name((mx_simd)path), n);
                    }
                }
                row_free(&r);
            }
        }
        free(x);
        free(v);
        free(wd);
    }
}

/* The preamble's format_minor: 2 with an nl4 tensor, else unchanged (0 here: no stored files). */
Test(nl4, container_minor_version)
{
    char *dir = ts_tmpdir_tracked();
    char *bare = ts_path(dir, "bare"), *copy = ts_path(bare, "model.safetensors");
    char *src = ts_source_path("testdata/tiny-llama-f32/model.safetensors");
    size_t len;
    uint8_t *b = ts_read_file(src, &len);
    cr_assert_eq(mkdir(bare, 0755), 0);
    ts_write_file(copy, b, len);
    free(b);
    static const struct { mixq_qtype t; unsigned minor; } cases[] = {
        {MIXQ_QT_INT4, 0}, {MIXQ_QT_NL4, 2}, {MIXQ_QT_NL4_DQ, 2}, {MIXQ_QT_INT3_DQ, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char *out = ts_path(dir, "o.mxq");
        mixq_convert_options o;
        mixq_error err;
        mixq_convert_options_init(&o);
        o.type = cases[c].t;
        o.force = 1;
        cr_assert_eq(mixq_convert(copy, out, &o, &err), MIXQ_OK, "%s", err.message);
        uint8_t *f = ts_read_file(out, &len);
        cr_assert_eq(f[10] | f[11] << 8, cases[c].minor, "%s", mixq_qtype_name(cases[c].t));
        free(f);
        mixq_file *mf = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
        cr_assert_not_null(mf, "%s", err.message);
        mixq_close(mf);
        free(out);
    }
    free(src);
    free(copy);
    free(bare);
    free(dir);
}

/* The planner uses the opt-in types only when --candidates names them. */
Test(nl4, planner_candidates_are_opt_in)
{
    char *src = ts_source_path("testdata/tiny-llama-f32"), *out = NULL, *err = NULL;
    cr_assert_eq(RUN(&out, &err, "plan", src, "--target-bpw", "5"), 0, "%s", err);
    cr_assert_null(strstr(out, "nl4"), "the default candidates hold an opt-in type:\n%s", out);
    free(out);
    free(err);
    cr_assert_eq(RUN(&out, &err, "plan", src, "--target-bpw", "5", "--candidates", "nl4_dq,nl4,int8:32"), 0, "%s", err);
    cr_assert_not_null(strstr(out, "nl4_dq"), "%s", out);
    free(out);
    free(err);
    /* "all": the default list plus every opt-in type */
    cr_assert_eq(RUN(&out, &err, "plan", src, "--target-bpw", "5", "--candidates", "all", "-o", "-", "-q"), 0, "%s", err);
    const char *c = strstr(out, "\"candidates\"");
    cr_assert_not_null(c, "%s", out);
    const char *types[] = {"int8:128", "int4_dq:32", "int3_dq:16", "nl4:32", "nl4_dq:32", "cb4_dq:32", "cb3_dq:16",
                           "cb2_dq:16", "f16"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        cr_assert_not_null(strstr(c, types[i]), "--candidates all lacks %s: %.300s", types[i], c);
    free(out);
    free(err);
    free(src);
}
