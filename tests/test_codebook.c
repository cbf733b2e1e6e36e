/*
 * test_codebook.c - the codebook types cb4_dq, cb3_dq, cb2_dq (FORMAT.md
 * §4.14):
 *   - the reconstruction rule on hand-made bytes (levels in any order,
 *     negative scale codes, a non-finite super scale);
 *   - a fitted codebook beats an even grid of the same type on bell-shaped
 *     (Laplace) data, and cb3_dq beats int3_dq (same bits per weight);
 *   - importance: fitting and quantizing with weights lowers the weighted
 *     error against the unweighted result;
 *   - the fit is deterministic and the levels sorted int8 with max |L| 127;
 *   - every SIMD dequantizer equals the scalar one bit for bit on random
 *     bytes (random levels, codes, scale codes, super scales incl. Inf/NaN);
 *   - a converted container: byte-identical for 1 and 3 threads, format
 *     minor 2 (1 without codebook types), loads, verifies, dequantizes
 *     through the library as the kernels do; a codebook section of the
 *     wrong length or offset is refused naming the tensor.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/half.h"
#include "format/container.h"
#include "kernels/kernels.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "mixq.h"
#include "mixq_tools.h"
#include "test_support.h"

static const mixq_qtype CB_TYPES[] = {MIXQ_QT_CB4_DQ, MIXQ_QT_CB3_DQ, MIXQ_QT_CB2_DQ};

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s) { return ((double)(rng(s) >> 11) + 0.5) * 0x1p-53; }

/* Laplace values (bell-shaped, heavy tails) of scale b. */
static void laplace(float *x, size_t n, double b, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        double u = unit(s) - 0.5;
        x[i] = (float)(-b * (u < 0 ? -1.0 : 1.0) * log(1.0 - 2.0 * fabs(u)));
    }
}

/* A tensor of rows x n stored as qt (group: its default), all sections in one buffer. */
typedef struct tens {
    const qtype_desc *qt;
    qlayout l;
    uint8_t *b;
} tens;

static void tens_init(tens *t, mixq_qtype id, size_t rows, size_t n)
{
    t->qt = qtype_get(id);
    cr_assert(t->qt && qtype_layout(t->qt, ST_F32, rows, n, t->qt->group_default, &t->l));
    t->b = calloc(1, t->l.total + 64);
    cr_assert(t->b);
}

static mx_rowptrs rowp(const tens *t, size_t r)
{
    mx_rowptrs p = {{NULL}};
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (qtype_has_section(t->qt, (mixq_section_kind)k)) p.sec[k] = t->b + t->l.offset[k] + r * t->l.row_bytes[k];
    return p;
}

static mx_crowptrs crowp(const tens *t, size_t r)
{
    mx_rowptrs p = rowp(t, r);
    mx_crowptrs c;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) c.sec[k] = p.sec[k];
    return c;
}

/*
 * Quantizes x (rows x n) as t: levels given (NULL: fitted with weights w), then every row with
 * importance w; returns the (w-weighted) squared error of the reconstruction.
 */
static double quantize_tensor(tens *t, const float *x, const float *w, size_t rows, size_t n, const int8_t *given,
                              bool search)
{
    int8_t *cb = t->qt->codebook_levels ? (int8_t *)(t->b + t->l.offset[MIXQ_SEC_CODEBOOK]) : NULL;
    if (cb && given)
        memcpy(cb, given, t->qt->codebook_levels);
    else if (cb)
        t->qt->fit_codebook(x, w, rows, n, t->l.group, cb);
    float *y = malloc(n * sizeof *y);
    double e = 0.0;
    for (size_t r = 0; r < rows; r++) {
        mx_qparams p = {w ? w + r * n : NULL, search, -1.0f, cb};
        t->qt->quantize_row(x + r * n, n, t->l.group, &p, rowp(t, r));
        t->qt->dequantize_row(crowp(t, r), n, t->l.group, y);
        for (size_t i = 0; i < n; i++) {
            double d = (double)x[r * n + i] - y[i];
            e += (w ? w[r * n + i] : 1.0) * d * d;
        }
    }
    free(y);
    return e;
}

Test(codebook, reconstruction_rule)
{
    /* cb3_dq, one row of 20: two groups of 16 and 4, levels in no order */
    tens t;
    tens_init(&t, MIXQ_QT_CB3_DQ, 1, 20);
    static const int8_t L[8] = {5, -128, 127, 0, -3, 64, -64, 1};
    memcpy(t.b + t.l.offset[MIXQ_SEC_CODEBOOK], L, 8);
    mx_rowptrs p = rowp(&t, 0);
    size_t coff[QT_MAX_PLANES], soff[QT_MAX_PLANES];
    mx_planes_offsets(t.qt->code_planes, 20, coff);
    mx_planes_offsets(t.qt->scale_planes, 2, soff);
    for (size_t i = 0; i < 20; i++) mx_planes_put(p.sec[MIXQ_SEC_CODES], t.qt->code_planes, coff, i, (unsigned)(i % 8));
    mx_planes_put(p.sec[MIXQ_SEC_SCALES], t.qt->scale_planes, soff, 0, (unsigned)(-32 + 32));
    mx_planes_put(p.sec[MIXQ_SEC_SCALES], t.qt->scale_planes, soff, 1, (unsigned)(7 + 32));
    mx_st16le(p.sec[MIXQ_SEC_SUPER_SCALES], mx_f32_to_f16(0.375f));
    float y[20];
    t.qt->dequantize_row(crowp(&t, 0), 20, t.l.group, y);
    for (size_t i = 0; i < 20; i++) {
        float s = 0.375f * (float)(i < 16 ? -32 : 7);
        cr_assert_eq(y[i], s * (float)L[i % 8], "element %zu: %g", i, (double)y[i]);
    }
    /* a non-finite super scale: the canonical NaN in every element of the super-block */
    mx_st16le(p.sec[MIXQ_SEC_SUPER_SCALES], 0x7C00);
    t.qt->dequantize_row(crowp(&t, 0), 20, t.l.group, y);
    for (size_t i = 0; i < 20; i++) cr_assert_eq(mx_f32_bits(y[i]), 0x7FC00000u);
    free(t.b);
}

Test(codebook, fitted_beats_even_grid_on_bell_shaped_data, .timeout = 120)
{
    const size_t rows = 24, n = 512;
    float *x = malloc(rows * n * sizeof *x);
    uint64_t s = 7;
    laplace(x, rows * n, 0.02, &s);
    for (size_t k = 0; k < 3; k++) {
        tens t;
        tens_init(&t, CB_TYPES[k], rows, n);
        unsigned K = t.qt->codebook_levels;
        int8_t even[16];
        for (unsigned i = 0; i < K; i++) even[i] = (int8_t)lrint(-127.0 + 254.0 * i / (K - 1));
        double e_even = quantize_tensor(&t, x, NULL, rows, n, even, true);
        double e_fit = quantize_tensor(&t, x, NULL, rows, n, NULL, true);
        cr_assert(e_fit < 0.97 * e_even, "%s: fitted %g, even grid %g", t.qt->name, e_fit, e_even);
        const int8_t *cb = (const int8_t *)(t.b + t.l.offset[MIXQ_SEC_CODEBOOK]);
        int amax = 0;
        for (unsigned i = 0; i < K; i++) {
            if (i) cr_assert(cb[i] >= cb[i - 1], "%s: levels sorted", t.qt->name);
            amax = abs(cb[i]) > amax ? abs(cb[i]) : amax;
        }
        cr_assert_eq(amax, 127, "%s: largest |level| %d", t.qt->name, amax);
        /* the same inputs give the same levels */
        int8_t again[16];
        t.qt->fit_codebook(x, NULL, rows, n, t.l.group, again);
        cr_assert_arr_eq(again, cb, K);
        if (CB_TYPES[k] == MIXQ_QT_CB3_DQ) { /* against the even 3-bit type of the same size */
            tens u;
            tens_init(&u, MIXQ_QT_INT3_DQ, rows, n);
            double e_int = quantize_tensor(&u, x, NULL, rows, n, NULL, true);
            cr_assert(e_fit < e_int, "cb3_dq %g, int3_dq %g", e_fit, e_int);
            free(u.b);
        }
        free(t.b);
    }
    free(x);
}

Test(codebook, importance_lowers_the_weighted_error, .timeout = 120)
{
    const size_t rows = 16, n = 256;
    float *x = malloc(rows * n * sizeof *x), *w = malloc(rows * n * sizeof *w);
    uint64_t s = 99;
    laplace(x, rows * n, 1.0, &s);
    for (size_t i = 0; i < rows * n; i++) w[i] = (i % n) % 7 == 0 ? 50.0f : 0.5f; /* heavy columns */
    for (size_t k = 0; k < 3; k++) {
        tens a, b;
        tens_init(&a, CB_TYPES[k], rows, n);
        tens_init(&b, CB_TYPES[k], rows, n);
        quantize_tensor(&a, x, NULL, rows, n, NULL, true); /* unweighted ... */
        double e_plain = 0.0, e_w = quantize_tensor(&b, x, w, rows, n, NULL, true);
        float y[256];
        for (size_t r = 0; r < rows; r++) { /* ... measured with the weights */
            a.qt->dequantize_row(crowp(&a, r), n, a.l.group, y);
            for (size_t i = 0; i < n; i++) {
                double d = (double)x[r * n + i] - y[i];
                e_plain += w[r * n + i] * d * d;
            }
        }
        cr_assert(e_w < e_plain, "%s: weighted %g, unweighted %g", a.qt->name, e_w, e_plain);
        free(a.b);
        free(b.b);
    }
    free(x);
    free(w);
}

Test(codebook, row_without_levels_fits_its_own)
{
    float x[300], y[300];
    uint64_t s = 5;
    laplace(x, 300, 3.0, &s);
    for (size_t k = 0; k < 3; k++) {
        tens t;
        tens_init(&t, CB_TYPES[k], 1, 300);
        t.qt->quantize_row(x, 300, t.l.group, NULL, rowp(&t, 0)); /* NULL params: own levels, RTN */
        t.qt->dequantize_row(crowp(&t, 0), 300, t.l.group, y);
        double e = 0, q = 0;
        for (size_t i = 0; i < 300; i++) e += (x[i] - y[i]) * (double)(x[i] - y[i]), q += (double)x[i] * x[i];
        double bound = CB_TYPES[k] == MIXQ_QT_CB4_DQ ? 0.02 : CB_TYPES[k] == MIXQ_QT_CB3_DQ ? 0.06 : 0.2;
        cr_assert(e < bound * q, "%s: relative error %g", t.qt->name, e / q);
        free(t.b);
    }
}

Test(codebook, simd_dequantize_equals_scalar)
{
    const mx_kernel_set *ref = mx_kernels_for(MX_SIMD_SCALAR);
    uint64_t s = 1234;
    for (int path = 1; path < MX_SIMD_COUNT; path++) {
        const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
        if (!ks) continue;
        for (size_t k = 0; k < 3; k++)
            for (int trial = 0; trial < 200; trial++) {
                size_t n = 1 + (size_t)(rng(&s) % 1100);
                tens t;
                tens_init(&t, CB_TYPES[k], 1, n);
                for (uint64_t i = 0; i < t.l.total; i++) t.b[i] = (uint8_t)rng(&s);
                uint8_t *sup = t.b + t.l.offset[MIXQ_SEC_SUPER_SCALES];
                for (uint64_t b = 0; b < t.l.row_bytes[MIXQ_SEC_SUPER_SCALES] / 2; b++) {
                    uint16_t h = (uint16_t)(rng(&s) & 0xBFFF); /* mostly finite; some Inf/NaN below */
                    if (rng(&s) % 16 == 0) h = rng(&s) % 2 ? 0x7C00 : 0xFE01;
                    mx_st16le(sup + 2 * b, h);
                }
                float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
                ref->dequantize_row[t.qt->id](crowp(&t, 0), n, t.l.group, a);
                ks->dequantize_row[t.qt->id](crowp(&t, 0), n, t.l.group, b);
                cr_assert(memcmp(a, b, n * sizeof *a) == 0, "%s %s n=%zu trial %d", mx_simd_name((mx_simd)path),
                          t.qt->name, n, trial);
                free(a);
                free(b);
                free(t.b);
            }
    }
}

/* ---- containers ---- */

static char *convert_to(const char *dir, const char *name, mixq_qtype type, int threads)
{
    char *in = ts_source_path("testdata/tiny-llama-f32"), *out = ts_path(dir, name);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = type;
    o.threads = threads;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    free(in);
    return out;
}

/* The container bytes with its header replaced by `root` (both checksums recomputed). */
static uint8_t *with_header(const uint8_t *b, json_t *root, size_t *len)
{
    uint64_t dl = mxc_get_u64(b + MXC_OFF_DATA_LENGTH);
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t hl = strlen(text), n = MXC_PREAMBLE_LEN + (size_t)dl + hl;
    uint8_t *o = malloc(n);
    memcpy(o, b, MXC_PREAMBLE_LEN + (size_t)dl);
    memcpy(o + MXC_PREAMBLE_LEN + dl, text, hl);
    mxc_put_u64(o + MXC_OFF_HEADER_LENGTH, hl);
    mxc_put_u64(o + MXC_OFF_HEADER_XXH3, XXH3_64bits(text, hl));
    mxc_put_u64(o + MXC_OFF_PREAMBLE_XXH3, XXH3_64bits(o, MXC_OFF_PREAMBLE_XXH3));
    free(text);
    *len = n;
    return o;
}

Test(codebook, container_round_trip_and_bad_codebook_sections, .timeout = 120)
{
    char *dir = ts_tmpdir();
    char *p1 = convert_to(dir, "a.mxq", MIXQ_QT_CB3_DQ, 1), *p3 = convert_to(dir, "b.mxq", MIXQ_QT_CB3_DQ, 3);
    char *pi = convert_to(dir, "i.mxq", MIXQ_QT_INT3_DQ, 1);
    size_t l1, l3, li;
    uint8_t *b1 = ts_read_file(p1, &l1), *b3 = ts_read_file(p3, &l3), *bi = ts_read_file(pi, &li);
    cr_assert(l1 == l3 && memcmp(b1, b3, l1) == 0, "1 and 3 threads differ");
    cr_assert_eq(mxc_get_u16(b1 + MXC_OFF_MINOR), 2u);
    cr_assert_neq(mxc_get_u16(bi + MXC_OFF_MINOR), 2u);

    /* loads, verifies, and the library's dequantization is the kernels' */
    mixq_error err;
    mixq_file *f = mixq_open(p1, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    size_t nt = mixq_tensor_count(f), ncb = 0;
    for (size_t i = 0; i < nt; i++) {
        const mixq_tensor *t = mixq_tensor_at(f, i);
        mixq_tensor_info info;
        mixq_tensor_get_info(t, &info);
        if (info.qtype != MIXQ_QT_CB3_DQ) continue;
        ncb++;
        mixq_section cs;
        cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_CODEBOOK, &cs), MIXQ_OK);
        cr_assert_eq(cs.size, 8u);
        cr_assert_eq(cs.row_stride, 0u);
        size_t n = (size_t)info.n_elements;
        float *y = malloc(n * sizeof *y);
        cr_assert_eq(mixq_dequantize_f32(f, t, 0, info.rows, y, &err), MIXQ_OK, "%s", err.message);
        for (size_t i2 = 0; i2 < n; i2++) cr_assert(isfinite(y[i2]));
        free(y);
    }
    cr_assert(ncb > 0);
    mixq_close(f);


    /* hostile headers: the codebook section's length or offset changed, or the section missing */
    json_error_t je;
    uint64_t ho = mxc_get_u64(b1 + MXC_OFF_HEADER_OFFSET), hl = mxc_get_u64(b1 + MXC_OFF_HEADER_LENGTH);
    for (int c = 0; c < 4; c++) {
        json_t *root = json_loadb((const char *)b1 + ho, (size_t)hl, 0, &je);
        cr_assert(root, "%s", je.text);
        json_t *arr = json_object_get(root, "tensors"), *e = NULL;
        for (size_t i = 0; i < json_array_size(arr) && !e; i++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(arr, i), "quant_type")), "cb3_dq"))
                e = json_array_get(arr, i);
        cr_assert(e);
        json_t *secs = json_object_get(e, "sections"), *cb = json_object_get(secs, "codebook");
        cr_assert(cb);
        json_int_t len = json_integer_value(json_object_get(cb, "length"));
        json_int_t off = json_integer_value(json_object_get(cb, "offset"));
        switch (c) {
        case 0: json_object_set_new(cb, "length", json_integer(len - 1)); break;
        case 1: json_object_set_new(cb, "length", json_integer(len + 8)); break;
        case 2: json_object_set_new(cb, "offset", json_integer(off + 64)); break;
        default: json_object_del(secs, "codebook"); break;
        }
        char name[256];
        snprintf(name, sizeof name, "%s", json_string_value(json_object_get(e, "name")));
        size_t n;
        uint8_t *bad = with_header(b1, root, &n);
        char *pb = ts_path(dir, "bad.mxq");
        ts_write_file(pb, bad, n);
        mixq_file *g = mixq_open(pb, MIXQ_OPEN_VERIFY, &err);
        cr_assert_null(g, "case %d opened", c);
        cr_assert_eq(err.code, MIXQ_E_FORMAT, "case %d: status %d %s", c, (int)err.code, err.message);
        cr_assert(strstr(err.message, name) && strstr(err.message, "codebook"), "case %d: %s", c, err.message);
        free(bad);
        free(pb);
        json_decref(root);
    }
    free(b1);
    free(b3);
    free(bi);
    free(p1);
    free(p3);
    free(pi);
    ts_rmtree(dir);
    free(dir);
}

Test(codebook, gguf_export_refuses_or_requantizes, .timeout = 200)
{
    char *models = ts_models_dir();
    if (!models) cr_skip_test("../shared/models is absent");
    char *in = ts_path(models, "tiny-llama-6l"), *dir = ts_tmpdir(), *mx = ts_path(dir, "m.mxq");
    char *gg = ts_path(dir, "x.gguf");
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = MIXQ_QT_CB2_DQ;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, mx, &o, &err), MIXQ_OK, "%s", err.message);
    /* GGUF has no codebook type: refused naming the tensors and the type, unless re-quantized */
    cr_assert_eq(mixq_export_gguf(mx, gg, NULL, &err), MIXQ_E_UNSUPPORTED, "%s", err.message);
    cr_assert(strstr(err.message, "no exact llama.cpp type") && strstr(err.message, "cb2_dq"), "%s", err.message);
    cr_assert(!ts_exists(gg));
    mixq_export_gguf_options go;
    mixq_export_gguf_options_init(&go);
    go.requantize = MIXQ_GGUF_TO_F32;
    cr_assert_eq(mixq_export_gguf(mx, gg, &go, &err), MIXQ_OK, "%s", err.message);
    cr_assert(ts_exists(gg));
    ts_rmtree(dir);
    free(models);
    free(in);
    free(dir);
    free(mx);
    free(gg);
}
