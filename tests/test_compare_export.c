/*
 * test_compare_export.c - mixq_compare (metrics against a direct computation,
 * exactness, mismatch errors) and mixq_export (round trips through st_open,
 * byte-identical re-export, atomic output), and their CLI commands.
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "common/dtype.h"
#include "common/half.h"
#include "mixq_tools.h"
#include "reader/st_reader.h"
#include "test_support.h"

/* Converts testdata/<model> (or any path) to dir/<name> with the given type; returns the output path. */
static char *convert_to(const char *dir, const char *in, const char *name, mixq_qtype type)
{
    char *out = ts_path(dir, name);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = type;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    return out;
}

static mixq_status export_as(const char *c, const char *out, mixq_qtype dtype, int force, mixq_error *err)
{
    mixq_export_options o;
    mixq_export_options_init(&o);
    o.dtype = dtype;
    o.force = force;
    return mixq_export(c, out, &o, err);
}

static void close_rel(double got, double want, double rel, const char *what, const char *name)
{
    cr_assert(fabs(got - want) <= rel * fabs(want), "%s of %s: %.17g, expected %.17g", what, name, got, want);
}

/* ---------------------------------------------------------------------- */
/* compare                                                                 */
/* ---------------------------------------------------------------------- */

Test(compare, f32_conversion_is_exact)
{
    char *dir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32");
    char *c = convert_to(dir, in, "f32.mxq", MIXQ_QT_F32);
    mixq_compare_result *r = NULL;
    mixq_error err;
    cr_assert_eq(mixq_compare(in, c, NULL, &r, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(r->n_tensors, 35);
    cr_assert_eq(r->n_exact, 35);
    cr_assert_eq(r->n_float, 33);
    cr_assert_eq(r->n_quantized, 0);
    cr_assert_eq(r->n_matrices, 18);
    cr_assert_eq(r->n_nonfloat_mismatched, 0);
    for (size_t i = 0; i < r->n_tensors; i++) {
        const mixq_compare_stats *s = &r->tensors[i].stats;
        cr_assert_eq(s->rmse, 0.0, "%s", r->tensors[i].name);
        cr_assert_eq(s->rel_error, 0.0);
        cr_assert_eq(s->max_abs_error, 0.0);
        cr_assert(isinf(s->sqnr_db) && s->sqnr_db > 0, "%s: %g", r->tensors[i].name, s->sqnr_db);
        cr_assert_eq(s->cosine, 1.0);
        cr_assert_eq(s->mismatches, 0);
    }
    cr_assert_eq(r->all_float.rmse, 0.0);
    cr_assert(isinf(r->all_float.sqnr_db) && r->all_float.sqnr_db > 0);
    cr_assert_eq(r->all_float.n_elements, 114177);
    cr_assert_eq(r->quantized.n_elements, 0);
    cr_assert(isinf(r->quantized.sqnr_db));
    mixq_compare_free(r);
    ts_rmtree(dir);
    free(dir); free(in); free(c);
}

/* Direct sums over a whole tensor in element order (plain double loop). */
typedef struct direct {
    double e2, x2, y2, xy, mx;
    uint64_t n;
} direct;

static void direct_add(direct *d, const st_tensor *st, const mixq_file *f, const mixq_tensor *t)
{
    float *x = malloc((st->n_elements ? st->n_elements : 1) * sizeof *x);
    float *y = malloc((st->n_elements ? st->n_elements : 1) * sizeof *y);
    mixq_tensor_info in;
    mixq_tensor_get_info(t, &in);
    st_to_f32(st->dtype, st->data, st->n_elements, x);
    mixq_error err;
    cr_assert_eq(mixq_dequantize_f32(f, t, 0, in.rows, y, &err), MIXQ_OK, "%s", err.message);
    for (uint64_t i = 0; i < st->n_elements; i++) {
        double a = x[i], b = y[i], e = a - b;
        d->e2 += e * e;
        d->x2 += a * a;
        d->y2 += b * b;
        d->xy += a * b;
        if (fabs(e) > d->mx) d->mx = fabs(e);
    }
    d->n += st->n_elements;
    free(x);
    free(y);
}

static void check_against(const direct *d, const mixq_compare_stats *s, const char *name)
{
    cr_assert_eq(s->n_elements, d->n, "%s", name);
    close_rel(s->rmse, sqrt(d->e2 / (double)d->n), 1e-12, "rmse", name);
    close_rel(s->rel_error, sqrt(d->e2 / d->x2), 1e-12, "rel_error", name);
    cr_assert(fabs(s->sqnr_db - 10.0 * log10(d->x2 / d->e2)) <= 1e-9, "sqnr of %s: %.17g", name, s->sqnr_db);
    close_rel(s->cosine, d->xy / sqrt(d->x2 * d->y2), 1e-12, "cosine", name);
    cr_assert_eq(s->max_abs_error, d->mx, "max_abs_error of %s", name);
    cr_assert(s->cosine <= 1.0 && s->cosine > 0.9, "cosine of %s: %.17g", name, s->cosine);
    cr_assert(s->rmse > 0, "%s", name);
}

/* int8 (and int4 from the sharded bf16 model): metrics agree with a direct computation. */
static void check_metrics(const char *model, mixq_qtype type)
{
    char *dir = ts_tmpdir(), *in = ts_source_path(model);
    char *c = convert_to(dir, in, "q.mxq", type);
    mixq_compare_result *r = NULL;
    mixq_error err;
    cr_assert_eq(mixq_compare(in, c, NULL, &r, &err), MIXQ_OK, "%s", err.message);
    st_model *m = NULL;
    cr_assert_eq(st_open(in, &m, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(c, 0, &err);
    cr_assert(f, "%s", err.message);
    direct all = {0}, quant = {0};
    cr_assert_eq(r->n_tensors, m->ntensors);
    for (size_t i = 0; i < r->n_tensors; i++) {
        const mixq_compare_tensor *ct = &r->tensors[i];
        const mixq_tensor *t = mixq_tensor_at(f, i);
        mixq_tensor_info in;
        mixq_tensor_get_info(t, &in);
        cr_assert_str_eq(ct->name, in.name, "container order");
        const st_tensor *st = st_find(m, ct->name);
        cr_assert(st);
        cr_assert_str_eq(ct->source_dtype, st_dtypes[st->dtype].name);
        cr_assert_str_eq(ct->quant_type, in.quant_type);
        cr_assert_eq(ct->is_float, st_dtypes[st->dtype].is_float);
        direct d = {0};
        direct_add(&d, st, f, t);
        if (in.quantized) {
            check_against(&d, &ct->stats, ct->name);
            direct_add(&quant, st, f, t);
        } else {
            cr_assert_eq(ct->stats.mismatches, 0, "%s is stored exactly", ct->name);
            cr_assert_eq(ct->stats.rmse, 0.0);
        }
        if (ct->is_float) direct_add(&all, st, f, t);
    }
    check_against(&quant, &r->quantized, "quantized totals");
    check_against(&all, &r->all_float, "float totals");
    cr_assert_eq(r->n_quantized, 18);
    cr_assert_eq(r->n_exact, 35 - 18);
    /* the matrices group is the quantized one here (1-D tensors kept) */
    cr_assert_eq(r->matrices.n_elements, r->quantized.n_elements);
    cr_assert_eq(r->matrices.sum_sq_error, r->quantized.sum_sq_error);
    mixq_close(f);
    st_close(m);
    mixq_compare_free(r);
    ts_rmtree(dir);
    free(dir); free(in); free(c);
}

Test(compare, int8_metrics_match_direct_computation) { check_metrics("testdata/tiny-llama-f32", MIXQ_QT_INT8); }
Test(compare, int4_sharded_metrics_match_direct_computation)
{
    check_metrics("testdata/tiny-llama-sharded", MIXQ_QT_INT4);
}

/* A bf16 container compared with the f32 checkpoint: the bf16 rounding error is measured. */
Test(compare, other_source_dtype)
{
    char *dir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32");
    char *c = convert_to(dir, in, "b.mxq", MIXQ_QT_BF16);
    mixq_compare_result *r = NULL;
    mixq_error err;
    cr_assert_eq(mixq_compare(in, c, NULL, &r, &err), MIXQ_OK, "%s", err.message);
    /* bf16 keeps 8 bits of precision: relative error per element below 2^-9 */
    cr_assert(r->matrices.rel_error > 0 && r->matrices.rel_error < 1.0 / 512, "%g", r->matrices.rel_error);
    cr_assert(r->matrices.sqnr_db > 50, "%g", r->matrices.sqnr_db);
    mixq_compare_free(r);
    ts_rmtree(dir);
    free(dir); free(in); free(c);
}

static char *write_st(const char *dir, const char *name, const char *header, const void *data, size_t len)
{
    char *p = ts_path(dir, name);
    size_t n;
    uint8_t *b = ts_safetensors(header, data, len, &n);
    ts_write_file(p, b, n);
    free(b);
    return p;
}

/* A container from another checkpoint: a clear error naming the tensor. */
Test(compare, mismatched_model_is_an_error)
{
    char *dir = ts_tmpdir(), *tiny = ts_source_path("testdata/tiny-llama-f32");
    float v[6] = {1, 2, 3, 4, 5, 6};
    char *other = write_st(dir, "other.safetensors",
                           "{\"w.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", v, sizeof v);
    char *oc = convert_to(dir, other, "other.mxq", MIXQ_QT_INT8);
    char *tc = convert_to(dir, tiny, "tiny.mxq", MIXQ_QT_INT8);
    mixq_compare_result *r = (mixq_compare_result *)1;
    mixq_error err;
    cr_assert_eq(mixq_compare(tiny, oc, NULL, &r, &err), MIXQ_E_NOT_FOUND);
    cr_assert_null(r);
    cr_assert(strstr(err.message, "\"w.weight\"") && strstr(err.message, "other.mxq"), "%s", err.message);
    cr_assert_eq(mixq_compare(other, tc, NULL, &r, &err), MIXQ_E_NOT_FOUND);
    cr_assert(strstr(err.message, "tiny.mxq") && strstr(err.message, "not in"), "%s", err.message);
    /* same name, other shape */
    char *shaped = write_st(dir, "shaped.safetensors",
                            "{\"w.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}}", v, sizeof v);
    cr_assert_eq(mixq_compare(shaped, oc, NULL, &r, &err), MIXQ_E_FORMAT);
    cr_assert(strstr(err.message, "\"w.weight\"") && strstr(err.message, "[3, 2]") && strstr(err.message, "[2, 3]"),
              "%s", err.message);
    /* the CLI: exit 1 and the message */
    char *o, *e;
    cr_assert_eq(RUN(&o, &e, "compare", tiny, oc), 1);
    cr_assert(strstr(e, "mixq compare: ") && strstr(e, "w.weight"), "%s", e);
    free(o); free(e);
    ts_rmtree(dir);
    free(dir); free(tiny); free(other); free(oc); free(tc); free(shaped);
}

/* Integer tensors compare exactly; a differing one is reported (and the CLI exits 1). */
Test(compare, integer_tensor_mismatch)
{
    char *dir = ts_tmpdir();
    const char *hdr = "{\"ids\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[0,32]},"
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[32,48]},"
                      "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[48,48]},"
                      "\"nan\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[48,56]}}";
    uint8_t a[56], b[56];
    int64_t ia[4] = {0, 1, 2, 3}, ib[4] = {0, 1, 2, -3};
    float w[4] = {0.5f, -0.25f, 1, 2}, nn[2] = {NAN, INFINITY};
    memcpy(a, ia, 32); memcpy(a + 32, w, 16); memcpy(a + 48, nn, 8);
    memcpy(b, ib, 32); memcpy(b + 32, w, 16); memcpy(b + 48, nn, 8);
    char *sa = write_st(dir, "a.safetensors", hdr, a, sizeof a), *sb = write_st(dir, "b.safetensors", hdr, b, sizeof b);
    char *ca = convert_to(dir, sa, "a.mxq", MIXQ_QT_F32);
    mixq_compare_result *r = NULL;
    mixq_error err;
    cr_assert_eq(mixq_compare(sa, ca, NULL, &r, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(r->n_exact, 4);
    cr_assert_eq(r->tensors[3].stats.nonfinite, 0, "NaN and inf carried exactly count as equal");
    cr_assert_eq(r->tensors[2].stats.n_elements, 0);
    cr_assert(isinf(r->tensors[2].stats.sqnr_db));
    mixq_compare_free(r);
    cr_assert_eq(mixq_compare(sb, ca, NULL, &r, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(r->n_nonfloat_mismatched, 1);
    cr_assert_str_eq(r->tensors[0].name, "ids");
    cr_assert_eq(r->tensors[0].stats.mismatches, 1);
    cr_assert_eq(r->tensors[0].stats.max_abs_error, 6.0);
    cr_assert_eq(r->n_exact, 3);
    mixq_compare_free(r);
    /* source {NaN, inf}, container {NaN, 1}: one non-finite mismatch */
    float nb[2] = {NAN, 1.0f};
    memcpy(b, ia, 32); memcpy(b + 48, nb, 8);
    char *sc = write_st(dir, "c.safetensors", hdr, b, sizeof b), *cc = convert_to(dir, sc, "c.mxq", MIXQ_QT_F32);
    cr_assert_eq(mixq_compare(sa, cc, NULL, &r, &err), MIXQ_OK, "%s", err.message);
    const mixq_compare_stats *ns = &r->tensors[3].stats;
    cr_assert_eq(ns->nonfinite, 1, "NaN against NaN is equal; inf against 1 is not");
    cr_assert_eq(ns->mismatches, 1);
    cr_assert(isinf(ns->rmse) && isinf(ns->max_abs_error) && isnan(ns->cosine));
    cr_assert(isinf(ns->sqnr_db) && ns->sqnr_db < 0);
    cr_assert_eq(r->all_float.nonfinite, 1);
    cr_assert(isinf(r->all_float.rmse));
    mixq_compare_free(r);
    free(sc); free(cc);
    char *o, *e;
    cr_assert_eq(RUN(&o, &e, "compare", sb, ca), 1);
    cr_assert(strstr(e, "\"ids\"") && strstr(e, "differs"), "%s", e);
    cr_assert(strstr(o, "MISMATCH"), "%s", o);
    free(o); free(e);
    ts_rmtree(dir);
    free(dir); free(sa); free(sb); free(ca);
}

/* Tensors larger than one block (several row blocks, a partial last block, a row longer than a block). */
Test(compare, large_tensors_in_blocks)
{
    char *dir = ts_tmpdir();
    const uint64_t n1 = 300 * 512, n2 = 70000, n3 = 2 * 70000, total = n1 + n2 + n3;
    float *v = malloc(total * sizeof *v);
    uint64_t state = 12345;
    for (uint64_t i = 0; i < total; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        v[i] = (float)((double)(state >> 40) / (double)(1u << 24) - 0.5) * 0.1f;
    }
    char hdr[512];
    snprintf(hdr, sizeof hdr,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[300,512],\"data_offsets\":[0,%llu]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[70000],\"data_offsets\":[%llu,%llu]},"
             "\"c\":{\"dtype\":\"F32\",\"shape\":[2,70000],\"data_offsets\":[%llu,%llu]}}",
             (unsigned long long)(4 * n1), (unsigned long long)(4 * n1), (unsigned long long)(4 * (n1 + n2)),
             (unsigned long long)(4 * (n1 + n2)), (unsigned long long)(4 * total));
    char *src = write_st(dir, "big.safetensors", hdr, v, total * sizeof *v);
    free(v);
    char *c = convert_to(dir, src, "big.mxq", MIXQ_QT_INT4), *out = ts_path(dir, "e.safetensors");
    mixq_compare_result *r = NULL;
    mixq_error err;
    cr_assert_eq(mixq_compare(src, c, NULL, &r, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(export_as(c, out, MIXQ_QT_F16, 0, &err), MIXQ_OK, "%s", err.message);
    st_model *m = NULL, *ex = NULL;
    cr_assert_eq(st_open(src, &m, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(st_open(out, &ex, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(c, 0, &err);
    cr_assert(f);
    direct all = {0};
    for (size_t i = 0; i < 3; i++) {
        const mixq_tensor *t = mixq_tensor_at(f, i);
        mixq_tensor_info in;
        mixq_tensor_get_info(t, &in);
        const st_tensor *st = st_find(m, in.name), *et = st_find(ex, in.name);
        direct d = {0};
        direct_add(&d, st, f, t);
        direct_add(&all, st, f, t);
        if (in.quantized) check_against(&d, &r->tensors[i].stats, in.name);
        else cr_assert_eq(r->tensors[i].stats.mismatches, 0);
        float *y = malloc(in.n_elements * sizeof *y);
        cr_assert_eq(mixq_dequantize_f32(f, t, 0, in.rows, y, &err), MIXQ_OK);
        cr_assert_eq(et->dtype, ST_F16);
        for (uint64_t k = 0; k < in.n_elements; k++)
            cr_assert_eq((uint16_t)(et->data[2 * k] | et->data[2 * k + 1] << 8), mx_f32_to_f16(y[k]), "%s[%llu]",
                         in.name, (unsigned long long)k);
        free(y);
    }
    check_against(&all, &r->all_float, "totals");
    mixq_close(f);
    st_close(m);
    st_close(ex);
    mixq_compare_free(r);
    ts_rmtree(dir);
    free(dir); free(src); free(c); free(out);
}

/* ---------------------------------------------------------------------- */
/* export                                                                  */
/* ---------------------------------------------------------------------- */

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *pa = ts_read_file(a, &la), *pb = ts_read_file(b, &lb);
    cr_assert(pa && pb);
    cr_assert(la == lb && memcmp(pa, pb, la) == 0, "%s and %s differ", a, b);
    free(pa);
    free(pb);
}

/* Exporting a lossless container reproduces the reference writer's file byte for byte. */
Test(export, lossless_round_trip_is_byte_identical)
{
    char *dir = ts_tmpdir(), *f32 = ts_source_path("testdata/tiny-llama-f32"),
         *bf16 = ts_source_path("testdata/tiny-llama-bf16");
    char *c32 = convert_to(dir, f32, "f32.mxq", MIXQ_QT_F32), *cb = convert_to(dir, bf16, "bf16.mxq", MIXQ_QT_BF16);
    char *o32 = ts_path(dir, "o32.safetensors"), *o16 = ts_path(dir, "o16.safetensors"),
         *ob = ts_path(dir, "ob.safetensors");
    mixq_error err;
    cr_assert_eq(export_as(c32, o32, MIXQ_QT_F32, 0, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(export_as(c32, o16, MIXQ_QT_F16, 0, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(export_as(cb, ob, MIXQ_QT_BF16, 0, &err), MIXQ_OK, "%s", err.message);
    char *r32 = ts_source_path("testdata/tiny-llama-f32/model.safetensors"),
         *r16 = ts_source_path("testdata/tiny-llama-f16/model.safetensors"),
         *rb = ts_source_path("testdata/tiny-llama-bf16/model.safetensors");
    assert_same_file(o32, r32);
    assert_same_file(o16, r16); /* the f16 model is the f32 one rounded to nearest even */
    assert_same_file(ob, rb);
    ts_rmtree(dir);
    free(dir); free(f32); free(bf16); free(c32); free(cb); free(o32); free(o16); free(ob);
    free(r32); free(r16); free(rb);
}

/* An int8 container exported in each dtype reads back through st_open with the dequantized values. */
static void export_values(mixq_qtype dtype)
{
    char *dir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-sharded");
    char *c = convert_to(dir, in, "q.mxq", MIXQ_QT_INT8), *out = ts_path(dir, "e.safetensors");
    mixq_error err;
    cr_assert_eq(export_as(c, out, dtype, 0, &err), MIXQ_OK, "%s", err.message);
    st_model *src = NULL, *ex = NULL;
    cr_assert_eq(st_open(in, &src, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(st_open(out, &ex, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(c, 0, &err);
    cr_assert(f);
    /* header: 8 + N a multiple of 8, offsets contiguous, file ends at the last tensor */
    cr_assert_eq((8 + ex->files[0].header_len) % 8, 0);
    cr_assert_eq(ex->ntensors, src->ntensors);
    cr_assert_eq(ex->nmeta, src->nmeta);
    for (size_t i = 0; i < src->nmeta; i++)
        cr_assert_str_eq(st_meta_get(ex, src->meta[i].key), src->meta[i].value);
    uint64_t expect_off = 8 + ex->files[0].header_len;
    for (size_t i = 0; i < mixq_tensor_count(f); i++) {
        const mixq_tensor *t = mixq_tensor_at(f, i);
        mixq_tensor_info in;
        mixq_tensor_get_info(t, &in);
        const st_tensor *e = &ex->tensors[i], *s = st_find(src, in.name);
        cr_assert_str_eq(e->name, in.name, "container order");
        cr_assert_eq(e->file_offset, expect_off);
        expect_off += e->nbytes;
        cr_assert_eq(e->ndim, s->ndim);
        for (unsigned d = 0; d < s->ndim; d++) cr_assert_eq(e->shape[d], s->shape[d]);
        if (!st_dtypes[s->dtype].is_float) {
            cr_assert_eq(e->dtype, s->dtype, "%s keeps its dtype", in.name);
            cr_assert(e->nbytes == s->nbytes && memcmp(e->data, s->data, s->nbytes) == 0, "%s bytes", in.name);
            continue;
        }
        float *y = malloc((in.n_elements ? in.n_elements : 1) * sizeof *y);
        cr_assert_eq(mixq_dequantize_f32(f, t, 0, in.rows, y, &err), MIXQ_OK);
        for (uint64_t k = 0; k < in.n_elements; k++) {
            if (dtype == MIXQ_QT_F32) {
                cr_assert_eq(e->dtype, ST_F32);
                float v;
                memcpy(&v, e->data + 4 * k, 4);
                cr_assert(mx_f32_bits(v) == mx_f32_bits(y[k]), "%s[%llu]", in.name, (unsigned long long)k);
            } else {
                uint16_t h = (uint16_t)(e->data[2 * k] | e->data[2 * k + 1] << 8);
                uint16_t want = dtype == MIXQ_QT_F16 ? mx_f32_to_f16(y[k]) : mx_f32_to_bf16(y[k]);
                cr_assert_eq(e->dtype, dtype == MIXQ_QT_F16 ? ST_F16 : ST_BF16);
                cr_assert_eq(h, want, "%s[%llu]", in.name, (unsigned long long)k);
            }
        }
        free(y);
    }
    cr_assert_eq(expect_off, ex->files[0].size);
    mixq_close(f);
    st_close(src);
    st_close(ex);
    ts_rmtree(dir);
    free(dir); free(in); free(c); free(out);
}

Test(export, int8_values_f32) { export_values(MIXQ_QT_F32); }
Test(export, int8_values_f16) { export_values(MIXQ_QT_F16); }
Test(export, int8_values_bf16) { export_values(MIXQ_QT_BF16); }

/* Re-converting an export and comparing it with the original gives the same error as the container. */
Test(export, compare_of_export_matches_container)
{
    char *dir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32");
    char *c = convert_to(dir, in, "q.mxq", MIXQ_QT_INT4), *out = ts_path(dir, "e.safetensors");
    mixq_error err;
    cr_assert_eq(export_as(c, out, MIXQ_QT_F32, 0, &err), MIXQ_OK, "%s", err.message);
    char *c2 = convert_to(dir, out, "e.mxq", MIXQ_QT_F32);
    mixq_compare_result *r1, *r2;
    cr_assert_eq(mixq_compare(in, c, NULL, &r1, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(mixq_compare(in, c2, NULL, &r2, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(r1->all_float.sum_sq_error, r2->all_float.sum_sq_error);
    cr_assert_eq(r1->all_float.max_abs_error, r2->all_float.max_abs_error);
    mixq_compare_free(r1);
    mixq_compare_free(r2);
    ts_rmtree(dir);
    free(dir); free(in); free(c); free(out); free(c2);
}

Test(export, refuses_existing_output_without_force)
{
    char *dir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-bf16");
    char *c = convert_to(dir, in, "q.mxq", MIXQ_QT_INT8), *out = ts_path(dir, "e.safetensors");
    ts_write_file(out, "keep", 4);
    mixq_error err;
    cr_assert_eq(export_as(c, out, MIXQ_QT_F32, 0, &err), MIXQ_E_EXISTS);
    cr_assert(strstr(err.message, "e.safetensors") && strstr(err.message, "set force to replace it"), "%s", err.message);
    size_t len;
    uint8_t *b = ts_read_file(out, &len);
    cr_assert(len == 4 && !memcmp(b, "keep", 4), "the existing file is untouched");
    free(b);
    cr_assert_eq(ts_dir_count(dir), 2);
    cr_assert_eq(export_as(c, out, MIXQ_QT_F32, 1, &err), MIXQ_OK, "%s", err.message);
    st_model *m = NULL;
    cr_assert_eq(st_open(out, &m, &err), MIXQ_OK, "%s", err.message);
    st_close(m);
    /* the container itself is never the output, even with force */
    cr_assert_eq(export_as(c, c, MIXQ_QT_F32, 1, &err), MIXQ_E_INVALID_ARG);
    cr_assert_eq(ts_dir_count(dir), 2);
    ts_rmtree(dir);
    free(dir); free(in); free(c); free(out);
}

/* A write failure (RLIMIT_FSIZE: write fails with EFBIG) leaves no output and no temporary. */
Test(export, injected_write_failure_leaves_nothing)
{
    char *cdir = ts_tmpdir(), *odir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32");
    char *c = convert_to(cdir, in, "q.mxq", MIXQ_QT_INT8), *out = ts_path(odir, "e.safetensors");
    /* the f32 export is 460445 bytes: every limit below cuts it short */
    for (rlim_t limit = 0; limit < 400000; limit = limit * 3 + 100) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {limit, limit};
            setrlimit(RLIMIT_FSIZE, &rl);
            mixq_error err;
            mixq_status s = export_as(c, out, MIXQ_QT_F32, 0, &err);
            _exit(s == MIXQ_E_IO && strstr(err.message, "e.safetensors") ? 0 : 1);
        }
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "limit %llu: expected an I/O error",
                  (unsigned long long)limit);
        cr_assert_eq(ts_dir_count(odir), 0, "limit %llu: output or temporary left behind", (unsigned long long)limit);
    }
    ts_rmtree(cdir);
    ts_rmtree(odir);
    free(cdir); free(odir); free(in); free(c); free(out);
}

/* A raised cancel flag stops the export (and the comparison) and leaves nothing. */
static volatile sig_atomic_t flag;
static void raise_on_second(void *ctx, size_t done, size_t total, const char *name)
{
    (void)ctx; (void)total; (void)name;
    if (done == 2) flag = 1;
}
Test(export, cancel_leaves_nothing)
{
    char *cdir = ts_tmpdir(), *odir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32");
    char *c = convert_to(cdir, in, "q.mxq", MIXQ_QT_INT8), *out = ts_path(odir, "e.safetensors");
    mixq_export_options o;
    mixq_export_options_init(&o);
    flag = 0;
    o.cancel = &flag;
    o.progress = raise_on_second;
    mixq_error err;
    cr_assert_eq(mixq_export(c, out, &o, &err), MIXQ_E_CANCELLED);
    cr_assert_eq(ts_dir_count(odir), 0);
    mixq_compare_options co;
    mixq_compare_options_init(&co);
    flag = 0;
    co.cancel = &flag;
    co.progress = raise_on_second;
    mixq_compare_result *r = (mixq_compare_result *)1;
    cr_assert_eq(mixq_compare(in, c, &co, &r, &err), MIXQ_E_CANCELLED);
    cr_assert_null(r);
    ts_rmtree(cdir);
    ts_rmtree(odir);
    free(cdir); free(odir); free(in); free(c); free(out);
}

/* A value beyond the f16 range is refused (not silently made infinite); metadata-less sources export none. */
Test(export, f16_overflow_and_no_metadata)
{
    char *dir = ts_tmpdir();
    float v[4] = {1, 2, 100000.0f, 4};
    char *src = write_st(dir, "s.safetensors",
                         "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", v, sizeof v);
    char *c = convert_to(dir, src, "s.mxq", MIXQ_QT_F32), *out = ts_path(dir, "e.safetensors");
    mixq_error err;
    cr_assert_eq(export_as(c, out, MIXQ_QT_F16, 0, &err), MIXQ_E_DATA);
    cr_assert(strstr(err.message, "\"w\"") && strstr(err.message, "row 1, column 0"), "%s", err.message);
    cr_assert(!ts_exists(out));
    cr_assert_eq(export_as(c, out, MIXQ_QT_BF16, 0, &err), MIXQ_OK, "%s", err.message);
    size_t len;
    uint8_t *b = ts_read_file(out, &len);
    cr_assert(len > 9 && !memcmp(b + 8, "{\"w\":", 5), "no __metadata__ expected");
    free(b);
    ts_rmtree(dir);
    free(dir); free(src); free(c); free(out);
}

/* ---------------------------------------------------------------------- */
/* CLI                                                                     */
/* ---------------------------------------------------------------------- */

Test(cli_compare_export, json_and_exit_codes)
{
    char *dir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32");
    char *c = convert_to(dir, in, "q.mxq", MIXQ_QT_INT8), *o, *e;
    cr_assert_eq(RUN(&o, &e, "compare", in, c, "--json"), 0, "%s", e);
    json_error_t je;
    json_t *root = json_loads(o, 0, &je);
    cr_assert(root, "invalid JSON: %s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(root, "source")), in);
    cr_assert_str_eq(json_string_value(json_object_get(root, "container")), c);
    json_t *ts = json_object_get(root, "tensors");
    cr_assert_eq(json_array_size(ts), 35);
    size_t i;
    json_t *t;
    int saw_exact = 0, saw_quant = 0;
    json_array_foreach(ts, i, t) {
        const char *q = json_string_value(json_object_get(t, "quant_type"));
        cr_assert(json_is_string(json_object_get(t, "name")) && q);
        cr_assert(json_is_integer(json_object_get(t, "n_elements")));
        json_t *sq = json_object_get(t, "sqnr_db");
        if (!strcmp(q, "int8")) {
            cr_assert(json_is_real(sq) && json_real_value(sq) > 20);
            cr_assert(json_real_value(json_object_get(t, "rmse")) > 0);
            cr_assert(json_real_value(json_object_get(t, "cosine")) <= 1.0);
            saw_quant++;
        } else {
            cr_assert(json_is_null(sq), "exact tensors have sqnr_db null");
            cr_assert(json_is_true(json_object_get(t, "exact")));
            saw_exact++;
        }
        cr_assert(json_is_number(json_object_get(t, "max_abs_error")));
        cr_assert(json_is_number(json_object_get(t, "rel_error")));
    }
    cr_assert_eq(saw_quant, 18);
    cr_assert_eq(saw_exact, 17);
    json_t *tot = json_object_get(root, "totals");
    cr_assert_eq(json_integer_value(json_object_get(tot, "tensors")), 35);
    json_t *qt = json_object_get(tot, "quantized");
    cr_assert_eq(json_integer_value(json_object_get(qt, "tensors")), 18);
    cr_assert(json_real_value(json_object_get(qt, "sqnr_db")) > 20);
    cr_assert(json_is_object(json_object_get(tot, "all_float")) && json_is_object(json_object_get(tot, "matrices")));
    json_decref(root);
    free(o); free(e);

    /* the table: one row per tensor and the totals */
    cr_assert_eq(RUN(&o, &e, "compare", in, c), 0, "%s", e);
    cr_assert(strstr(o, "lm_head.weight") && strstr(o, "total: quantized (18)") && strstr(o, "inf"), "%s", o);
    free(o); free(e);

    /* usage errors: 2 */
    cr_assert_eq(RUN(&o, &e, "compare", in), 2);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "compare", in, c, "--bogus"), 2);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "export", c), 2);
    cr_assert(strstr(e, "-o OUT"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "export", c, "-o", "x.safetensors", "--dtype", "int8"), 2);
    cr_assert(strstr(e, "int8"), "%s", e);
    free(o); free(e);
    const char *cmds[] = {"compare", "export"};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(RUN(&o, &e, cmds[k], "--help"), 0);
        cr_assert(strstr(o, "Usage: mixq") && strstr(o, cmds[k]), "%s", o);
        free(o); free(e);
    }
    cr_assert_eq(RUN(&o, &e, "--help"), 0);
    cr_assert(strstr(o, "compare") && strstr(o, "export"), "%s", o);
    free(o); free(e);

    /* export: 0, then 3 on the existing output, 0 with --force */
    char *out = ts_path(dir, "e.safetensors");
    cr_assert_eq(RUN(&o, &e, "export", c, "-o", out, "--dtype", "bf16"), 0, "%s", e);
    cr_assert(strstr(o, "e.safetensors"), "%s", o);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "export", c, "-o", out), 3);
    cr_assert(strstr(e, "mixq export: ") && strstr(e, "--force"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "export", c, "-o", out, "--force", "--quiet"), 0, "%s", e);
    cr_assert_str_eq(o, "");
    free(o); free(e);
    /* a missing container: one line naming it */
    cr_assert_neq(RUN(&o, &e, "export", "/nonexistent/x.mxq", "-o", out, "-f"), 0);
    cr_assert(strstr(e, "/nonexistent/x.mxq"), "%s", e);
    free(o); free(e);
    ts_rmtree(dir);
    free(dir); free(in); free(c); free(out);
}
