/*
 * test_convert.c - convert -> load -> dequantize round trips with proven
 * error bounds, and the writer's promises: atomic output, no leftovers on
 * failure, never replacing an existing output or the input.
 */
#include <math.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "convert/convert_internal.h"
#include "common/dtype.h"
#include "common/half.h"
#include "mixq_tools.h"
#include "kernels/qtype.h"
#include "reader/st_reader.h"
#include "test_support.h"

/* Reads the f16 scale (or min) of group g of row r from a section. */
static float group_param(const mixq_tensor *t, mixq_section_kind kind, uint64_t r, uint64_t g)
{
    mixq_section sec;
    cr_assert_eq(mixq_tensor_section(t, kind, &sec), MIXQ_OK);
    const uint8_t *p = (const uint8_t *)sec.data + r * sec.row_stride + 2 * g;
    return mx_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

/*
 * Converts `in` with the given type/group and checks every tensor of the
 * output against the source: quantized elements within s/2 of the source
 * (plus `slack` relative to s), plain ones exactly as rounded.
 */
static void round_trip(const char *in_rel, mixq_qtype type, unsigned group, double slack)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "out.mxq"), *in = ts_source_path(in_rel);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = type;
    o.group_size = group;
    o.rtn = 1; /* the s/2 bound is proven for plain min/max scales; searched scales may clip */
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);

    st_model *src = NULL;
    cr_assert_eq(st_open(in, &src, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    cr_assert_eq(mixq_tensor_count(f), src->ntensors);
    size_t nquant = 0;
    for (size_t i = 0; i < src->ntensors; i++) {
        const st_tensor *st = &src->tensors[i];
        const mixq_tensor *t = mixq_find(f, st->name);
        cr_assert(t, "tensor %s missing", st->name);
        mixq_tensor_info in;
        mixq_tensor_get_info(t, &in);
        cr_assert_str_eq(in.source_dtype, st_dtypes[st->dtype].name);
        cr_assert_eq(in.n_elements, st->n_elements);
        cr_assert_eq(in.ndim, st->ndim);
        if (in.qtype == MIXQ_QT_RAW) {
            mixq_section sec;
            cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_DATA, &sec), MIXQ_OK);
            cr_assert_eq(sec.size, st->nbytes);
            cr_assert(st->nbytes == 0 || memcmp(sec.data, st->data, st->nbytes) == 0, "%s not kept exactly", st->name);
            continue;
        }
        if (!st_dtypes[st->dtype].is_float) cr_assert_fail("%s: non-float tensor not raw", st->name);
        float *x = malloc((in.n_elements ? in.n_elements : 1) * sizeof *x);
        float *y = malloc((in.n_elements ? in.n_elements : 1) * sizeof *y);
        st_to_f32(st->dtype, st->data, st->n_elements, x);
        cr_assert_eq(mixq_dequantize_f32(f, t, 0, in.rows, y, &err), MIXQ_OK, "%s", err.message);
        if (st->ndim >= 2 && st->n_elements) {
            cr_assert_eq(in.qtype, type, "%s stored as %s", st->name, in.quant_type);
        } else {
            cr_assert(in.qtype != MIXQ_QT_INT8 && in.qtype != MIXQ_QT_INT4, "%s (1-D) was quantized", st->name);
        }
        if (in.quantized) {
            nquant++;
            uint64_t G = in.group_size ? in.group_size : in.row_length;
            for (uint64_t r = 0; r < in.rows; r++)
                for (uint64_t c = 0; c < in.row_length; c++) {
                    float s = group_param(t, MIXQ_SEC_SCALES, r, c / G);
                    double e = fabs((double)x[r * in.row_length + c] - (double)y[r * in.row_length + c]);
                    cr_assert(e <= s / 2.0 * (1.0 + slack) + 1e-30, "%s[%llu,%llu]: |%g - %g| = %g > s/2 = %g",
                              st->name, (unsigned long long)r, (unsigned long long)c, (double)x[r * in.row_length + c],
                              (double)y[r * in.row_length + c], e, s / 2.0);
                }
        } else {
            for (uint64_t k = 0; k < in.n_elements; k++) {
                float want = x[k];
                if (in.qtype == MIXQ_QT_F16) want = mx_f16_to_f32(mx_f32_to_f16(x[k]));
                if (in.qtype == MIXQ_QT_BF16) want = mx_bf16_to_f32(mx_f32_to_bf16(x[k]));
                cr_assert(memcmp(&want, &y[k], 4) == 0, "%s[%llu]: %g != %g", st->name, (unsigned long long)k,
                          (double)want, (double)y[k]);
            }
        }
        free(x);
        free(y);
    }
    if (type == MIXQ_QT_INT8 || type == MIXQ_QT_INT4) cr_assert_gt(nquant, 3);
    mixq_close(f);
    st_close(src);
    ts_rmtree(dir);
    free(dir);
    free(out);
    free(in);
}

Test(round_trip, int8_f32_source) { round_trip("testdata/tiny-llama-f32", MIXQ_QT_INT8, 0, 1e-6); }
Test(round_trip, int8_bf16_source_group32) { round_trip("testdata/tiny-llama-bf16", MIXQ_QT_INT8, 32, 1e-6); }
Test(round_trip, int8_per_row) { round_trip("testdata/tiny-llama-f16", MIXQ_QT_INT8, MIXQ_GROUP_PER_ROW, 1e-6); }
/* int4 reconstructs q*s + m in binary32: allow a relative 1e-3 of s for the add's rounding. */
Test(round_trip, int4_f32_source) { round_trip("testdata/tiny-llama-f32", MIXQ_QT_INT4, 0, 1e-3); }
Test(round_trip, int4_sharded_group16) { round_trip("testdata/tiny-llama-sharded", MIXQ_QT_INT4, 16, 1e-3); }
Test(round_trip, int4_group256) { round_trip("testdata/tiny-llama-f16", MIXQ_QT_INT4, 256, 1e-3); }
/*
 * The type family through the whole pipeline: converts `in` as type/group
 * with the plain choice (rtn) or the search, verifies the file, checks that
 * every quantized tensor's sections are exactly what the kernels produce for
 * its rows with the same options (so the converter passes rows, groups and
 * options through unchanged), that "search" is recorded, and returns the
 * pooled squared error of the quantized tensors.
 */
static double family_round_trip(const char *in_rel, mixq_qtype type, unsigned group, int rtn)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "out.mxq"), *in = ts_source_path(in_rel);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = type;
    o.group_size = group;
    o.rtn = rtn;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    st_model *src = NULL;
    cr_assert_eq(st_open(in, &src, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    size_t hl;
    const char *h = mixq_header_json(f, &hl);
    const char *want = rtn ? "\"search\":false" : "\"search\":true";
    cr_assert(memmem(h, hl, want, strlen(want)), "%s not recorded", want);
    const qtype_desc *qt = qtype_get(type);
    double se = 0;
    size_t nq = 0;
    for (size_t i = 0; i < src->ntensors; i++) {
        const st_tensor *st = &src->tensors[i];
        const mixq_tensor *t = mixq_find(f, st->name);
        mixq_tensor_info in_info;
        mixq_tensor_get_info(t, &in_info);
        if (!in_info.quantized) continue;
        nq++;
        cr_assert_eq(in_info.qtype, type, "%s", st->name);
        cr_assert_eq(in_info.group_size, group ? group : qt->group_default);
        uint64_t K = in_info.row_length;
        float *x = malloc(st->n_elements * sizeof *x), *y = malloc(st->n_elements * sizeof *y);
        st_to_f32(st->dtype, st->data, st->n_elements, x);
        cr_assert_eq(mixq_dequantize_f32(f, t, 0, in_info.rows, y, &err), MIXQ_OK, "%s", err.message);
        qlayout l;
        cr_assert(qtype_layout(qt, st->dtype, in_info.rows, K, in_info.group_size, &l));
        uint8_t *buf = calloc(1, l.total + 1);
        mx_qparams p = {NULL, rtn == 0, -1.0f, NULL};
        for (uint64_t r = 0; r < in_info.rows; r++) {
            mx_rowptrs rp = {{NULL}};
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                if (qtype_has_section(qt, (mixq_section_kind)k)) rp.sec[k] = buf + l.offset[k] + r * l.row_bytes[k];
            qt->quantize_row(x + r * K, (size_t)K, l.group, &p, rp);
        }
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
            mixq_section sec;
            if (!qtype_has_section(qt, (mixq_section_kind)k)) {
                cr_assert_eq(mixq_tensor_section(t, (mixq_section_kind)k, &sec), MIXQ_E_NOT_FOUND);
                continue;
            }
            cr_assert_eq(mixq_tensor_section(t, (mixq_section_kind)k, &sec), MIXQ_OK);
            cr_assert_eq(sec.size, l.length[k]);
            cr_assert_eq(sec.row_stride, l.row_bytes[k]);
            cr_assert(memcmp(sec.data, buf + l.offset[k], (size_t)l.length[k]) == 0,
                      "%s: section %s differs from the kernel's", st->name, mixq_section_name((mixq_section_kind)k));
        }
        for (uint64_t k = 0; k < st->n_elements; k++) {
            cr_assert(isfinite(y[k]), "%s[%llu] not finite", st->name, (unsigned long long)k);
            se += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
        }
        free(buf);
        free(x);
        free(y);
    }
    cr_assert_gt(nq, 3);
    mixq_close(f);
    st_close(src);
    ts_rmtree(dir);
    free(dir);
    free(out);
    free(in);
    return se;
}

/* Both choices round-trip; the search's total error is below the plain one's. */
static void family(const char *in_rel, mixq_qtype type, unsigned group)
{
    double plain = family_round_trip(in_rel, type, group, 1), search = family_round_trip(in_rel, type, group, 0);
    cr_log_info("%s g%u: squared error %.6g plain, %.6g search", mixq_qtype_name(type), group, plain, search);
    cr_assert_lt(search, plain, "%s: search %g not below plain %g", mixq_qtype_name(type), search, plain);
}

Test(round_trip, int8_search) { family("testdata/tiny-llama-bf16", MIXQ_QT_INT8, 32); }
Test(round_trip, int4_search) { family("testdata/tiny-llama-f32", MIXQ_QT_INT4, 0); }
Test(round_trip, int4s) { family("testdata/tiny-llama-bf16", MIXQ_QT_INT4S, 0); }
Test(round_trip, int4s_group16_sharded) { family("testdata/tiny-llama-sharded", MIXQ_QT_INT4S, 16); }
Test(round_trip, int2) { family("testdata/tiny-llama-f16", MIXQ_QT_INT2, 0); }
Test(round_trip, int2_group128) { family("testdata/tiny-llama-f32", MIXQ_QT_INT2, 128); }
Test(round_trip, int4_dq) { family("testdata/tiny-llama-bf16", MIXQ_QT_INT4_DQ, 0); }
Test(round_trip, int4_dq_group64) { family("testdata/tiny-llama-f32", MIXQ_QT_INT4_DQ, 64); }
Test(round_trip, int4_dq_group16) { family("testdata/tiny-llama-sharded", MIXQ_QT_INT4_DQ, 16); }
Test(round_trip, int2_dq) { family("testdata/tiny-llama-bf16", MIXQ_QT_INT2_DQ, 0); }
Test(round_trip, int3_dq) { family("testdata/tiny-llama-f16", MIXQ_QT_INT3_DQ, 0); }
Test(round_trip, int6_dq) { family("testdata/tiny-llama-f32", MIXQ_QT_INT6_DQ, 0); }

Test(round_trip, f16_from_f32) { round_trip("testdata/tiny-llama-f32", MIXQ_QT_F16, 0, 0); }
Test(round_trip, bf16_from_f32) { round_trip("testdata/tiny-llama-f32", MIXQ_QT_BF16, 0, 0); }
Test(round_trip, f32_from_bf16) { round_trip("testdata/tiny-llama-bf16", MIXQ_QT_F32, 0, 0); }

Test(convert, quantize_1d_option)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "o.mxq"), *in = ts_source_path("testdata/tiny-llama-f32");
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = MIXQ_QT_INT8;
    o.quantize_1d = 1;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    const mixq_tensor *t = mixq_find(f, "model.norm.weight");
    cr_assert(t);
    mixq_tensor_info info;
    mixq_tensor_get_info(t, &info);
    cr_assert_eq(info.qtype, MIXQ_QT_INT8);
    mixq_close(f);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

/* Same input and options give byte-identical files. */
Test(convert, deterministic_output)
{
    char *dir = ts_tmpdir(), *a = ts_path(dir, "a.mxq"), *b = ts_path(dir, "b.mxq");
    char *in = ts_source_path("testdata/tiny-llama-sharded");
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = MIXQ_QT_INT4;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, a, &o, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(mixq_convert(in, b, &o, &err), MIXQ_OK, "%s", err.message);
    size_t la, lb;
    uint8_t *da = ts_read_file(a, &la), *db = ts_read_file(b, &lb);
    cr_assert(da && db);
    cr_assert_eq(la, lb);
    cr_assert(memcmp(da, db, la) == 0);
    free(da); free(db);
    ts_rmtree(dir);
    free(dir); free(a); free(b); free(in);
}

Test(convert, refuses_existing_output_without_force)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "o.mxq"), *in = ts_source_path("testdata/tiny-llama-f32");
    ts_write_file(out, "keep me", 7);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_E_EXISTS);
    cr_assert(strstr(err.message, "set force to replace it"), "%s", err.message);
    size_t len;
    uint8_t *d = ts_read_file(out, &len);
    cr_assert(len == 7 && memcmp(d, "keep me", 7) == 0);
    free(d);
    cr_assert_eq(ts_dir_count(dir), 1, "no temporary may be left");
    o.force = 1;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    mixq_close(f);
    cr_assert_eq(ts_dir_count(dir), 1);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

Test(convert, refuses_output_equal_to_input)
{
    char *dir = ts_tmpdir(), *copy = ts_path(dir, "model.safetensors");
    char *in = ts_source_path("testdata/tiny-llama-f32/model.safetensors");
    size_t len;
    uint8_t *orig = ts_read_file(in, &len);
    ts_write_file(copy, orig, len);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.force = 1;
    mixq_error err;
    cr_assert_eq(mixq_convert(copy, copy, &o, &err), MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "input"), "%s", err.message);
    size_t len2;
    uint8_t *after = ts_read_file(copy, &len2);
    cr_assert(len2 == len && memcmp(after, orig, len) == 0, "the input was changed");
    cr_assert_eq(ts_dir_count(dir), 1);
    free(orig); free(after);
    ts_rmtree(dir);
    free(dir); free(copy); free(in);
}

Test(convert, unwritable_directory)
{
    if (geteuid() == 0) cr_skip_test("root ignores directory permissions");
    char *dir = ts_tmpdir(), *out = ts_path(dir, "o.mxq"), *in = ts_source_path("testdata/tiny-llama-f32");
    chmod(dir, 0500);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_E_IO);
    cr_assert(strstr(err.message, "temporary"), "%s", err.message);
    chmod(dir, 0700);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

Test(convert, missing_input_names_the_path)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "o.mxq"), *in = ts_path(dir, "nope.safetensors");
    mixq_error err;
    cr_assert_neq(mixq_convert(in, out, NULL, &err), MIXQ_OK);
    cr_assert(strstr(err.message, "nope.safetensors"), "%s", err.message);
    cr_assert_eq(ts_dir_count(dir), 0);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

Test(convert, bad_group_size_is_rejected)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "o.mxq"), *in = ts_source_path("testdata/tiny-llama-f32");
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = MIXQ_QT_INT4;
    o.group_size = 48;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "group size 48"), "%s", err.message);
    o.group_size = MIXQ_GROUP_PER_ROW;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_E_INVALID_ARG, "int4 has no per-row groups");
    cr_assert_eq(ts_dir_count(dir), 0);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

/* NaN in a tensor to quantize: a clear error naming the tensor, no output. */
Test(convert, nan_in_quantized_tensor)
{
    char *dir = ts_tmpdir(), *in = ts_path(dir, "m.safetensors"), *out = ts_path(dir, "o.mxq");
    float vals[8] = {1, 2, 3, 4, 5, NAN, 7, 8};
    size_t len;
    uint8_t *st = ts_safetensors("{\"w.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]}}", vals,
                                 sizeof vals, &len);
    ts_write_file(in, st, len);
    free(st);
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, NULL, &err), MIXQ_E_DATA);
    cr_assert(strstr(err.message, "w.weight") && strstr(err.message, "NaN"), "%s", err.message);
    cr_assert(!ts_exists(out));
    cr_assert_eq(ts_dir_count(dir), 1);
    /* kept at source precision, the NaN is carried exactly */
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = MIXQ_QT_F32;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    ts_rmtree(dir);
    free(dir); free(in); free(out);
}

/* A write failure (RLIMIT_FSIZE makes write fail with EFBIG) leaves no output and no temporary. */
Test(convert, injected_write_failure_leaves_nothing)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "o.mxq"), *in = ts_source_path("testdata/tiny-llama-f32");
    struct stat sst;
    char *model = ts_path(in, "model.safetensors");
    cr_assert_eq(stat(model, &sst), 0);
    free(model);
    /* f32 -> f32 output is about as large as the source: every limit below cuts it short */
    for (rlim_t limit = 0; limit < (rlim_t)sst.st_size / 2; limit = limit * 3 + 100) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {limit, limit};
            setrlimit(RLIMIT_FSIZE, &rl);
            mixq_convert_options o;
            mixq_convert_options_init(&o);
            o.type = MIXQ_QT_F32;
            mixq_error err;
            mixq_status s = mixq_convert(in, out, &o, &err);
            _exit(s == MIXQ_E_IO && strstr(err.message, "o.mxq") ? 0 : 1);
        }
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "limit %llu: expected an I/O error",
                  (unsigned long long)limit);
        cr_assert_eq(ts_dir_count(dir), 0, "limit %llu: output or temporary left behind", (unsigned long long)limit);
    }
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

/* A raised cancel flag stops the conversion and removes the temporary. */
static volatile sig_atomic_t flag;
static void raise_on_first(void *ctx, size_t done, size_t total, const char *name)
{
    (void)ctx; (void)total; (void)name;
    if (done == 2) flag = 1;
}
Test(convert, cancel_leaves_nothing)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "o.mxq"), *in = ts_source_path("testdata/tiny-llama-f32");
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    flag = 0;
    o.cancel = &flag;
    o.progress = raise_on_first;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_E_CANCELLED);
    cr_assert_eq(ts_dir_count(dir), 0);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

/* A finite value beyond f16's range is refused, not silently turned into infinity. */
Test(convert, f16_overflow_is_refused)
{
    char *dir = ts_tmpdir(), *in = ts_path(dir, "m.safetensors"), *out = ts_path(dir, "o.mxq");
    float vals[4] = {1.0f, 65519.0f, 1e5f, 2.0f}; /* 65519 rounds to 65504; 1e5 overflows */
    size_t len;
    uint8_t *st = ts_safetensors("{\"big.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", vals,
                                 sizeof vals, &len);
    ts_write_file(in, st, len);
    free(st);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = MIXQ_QT_F16;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_E_DATA);
    cr_assert(strstr(err.message, "big.weight") && strstr(err.message, "row 1, column 0"), "%s", err.message);
    cr_assert(!ts_exists(out));
    o.type = MIXQ_QT_BF16; /* bf16 holds 1e5 */
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    ts_rmtree(dir);
    free(dir); free(in); free(out);
}

/* Sum of squared errors of every quantized tensor of a conversion of `in`. */
static double total_sse(const char *in, const char *out, mixq_qtype type, unsigned group, int rtn)
{
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = type;
    o.group_size = group;
    o.rtn = rtn;
    o.force = 1;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    st_model *src = NULL;
    cr_assert_eq(st_open(in, &src, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    double sse = 0;
    for (size_t i = 0; i < src->ntensors; i++) {
        const st_tensor *st = &src->tensors[i];
        const mixq_tensor *t = mixq_find(f, st->name);
        mixq_tensor_info in_info;
        mixq_tensor_get_info(t, &in_info);
        if (!in_info.quantized) continue;
        float *x = malloc(st->n_elements * 4), *y = malloc(st->n_elements * 4);
        st_to_f32(st->dtype, st->data, st->n_elements, x);
        cr_assert_eq(mixq_dequantize_f32(f, t, 0, in_info.rows, y, &err), MIXQ_OK);
        for (uint64_t k = 0; k < st->n_elements; k++) sse += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
        free(x);
        free(y);
    }
    mixq_close(f);
    st_close(src);
    return sse;
}

/* The default error-minimizing scales beat plain min/max on real-shaped data. */
Test(convert, searched_scales_beat_rtn)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "o.mxq"), *in = ts_source_path("testdata/tiny-llama-f32");
    const mixq_qtype types[] = {MIXQ_QT_INT8, MIXQ_QT_INT4};
    for (int i = 0; i < 2; i++) {
        double rtn = total_sse(in, out, types[i], 0, 1), searched = total_sse(in, out, types[i], 0, 0);
        cr_assert_lt(searched, rtn, "%s: searched %g >= rtn %g", mixq_qtype_name(types[i]), searched, rtn);
    }
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

/* The output is byte-identical whatever the thread count, for every quantized type. */
Test(convert, same_bytes_for_any_thread_count)
{
    char *dir = ts_tmpdir(), *a = ts_path(dir, "a.mxq"), *b = ts_path(dir, "b.mxq");
    char *in = ts_source_path("testdata/tiny-llama-f32");
    int n = 0;
    for (int t = 0; t < MIXQ_QT_COUNT; t++) {
        const char *name = mixq_qtype_name((mixq_qtype)t);
        if (!name || t == MIXQ_QT_RAW) continue;
        for (int rtn = 0; rtn < 2; rtn++) {
            mixq_convert_options o;
            mixq_convert_options_init(&o);
            o.type = (mixq_qtype)t;
            o.rtn = rtn;
            o.force = 1;
            o.quantize_1d = 1;
            mixq_error err;
            o.threads = 1;
            cr_assert_eq(mixq_convert(in, a, &o, &err), MIXQ_OK, "%s: %s", name, err.message);
            o.threads = 5;
            cr_assert_eq(mixq_convert(in, b, &o, &err), MIXQ_OK, "%s: %s", name, err.message);
            size_t la, lb;
            uint8_t *da = ts_read_file(a, &la), *db = ts_read_file(b, &lb);
            cr_assert(la == lb && memcmp(da, db, la) == 0, "%s (rtn %d): 1 and 5 threads differ", name, rtn);
            free(da);
            free(db);
            n++;
        }
    }
    cr_assert_gt(n, 10);
    ts_rmtree(dir);
    free(dir); free(a); free(b); free(in);
}

/* With several threads, the error reported is still the first bad element of the tensor. */
Test(convert, error_is_the_first_one_whatever_the_threads)
{
    char *dir = ts_tmpdir(), *in = ts_path(dir, "m.safetensors"), *out = ts_path(dir, "o.mxq");
    enum { R = 4000, K = 64 };
    float *vals = calloc(R * K, sizeof *vals);
    for (int i = 0; i < R * K; i++) vals[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    vals[2500 * K + 3] = NAN;
    vals[3900 * K + 1] = INFINITY;
    vals[1200 * K + 9] = 1e6f;
    char hdr[160];
    snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]}}", R, K, R * K * 4);
    size_t len;
    uint8_t *st = ts_safetensors(hdr, vals, (size_t)R * K * 4, &len);
    ts_write_file(in, st, len);
    free(st);
    free(vals);
    for (unsigned t = 1; t <= 4; t++) {
        mixq_convert_options o;
        mixq_convert_options_init(&o);
        o.type = MIXQ_QT_INT4;
        o.threads = t;
        mixq_error err;
        cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_E_DATA);
        cr_assert(strstr(err.message, "row 1200, column 9"), "%u threads: %s", t, err.message);
        cr_assert(!ts_exists(out));
    }
    ts_rmtree(dir);
    free(dir); free(in); free(out);
}

/*
 * A checkpoint whose tensor names alone would make the container header
 * larger than the format allows is refused before anything is converted (a
 * model in memory: a real one would need over 256 MiB of safetensors
 * headers); one far below the limit passes the check.
 */
Test(convert, header_limit_checked_before_converting)
{
    enum { N = 300000, NAME = 1000 }; /* 300 MB of names against the 256 MiB limit */
    char *name = malloc(NAME + 1);
    st_tensor *t = calloc(N, sizeof *t);
    cr_assert(name && t);
    memset(name, 'w', NAME);
    name[NAME] = '\0';
    for (size_t i = 0; i < N; i++) {
        t[i].name = name;
        t[i].dtype = ST_F32;
        t[i].ndim = 1;
    }
    st_file f = {.path = "many.safetensors", .size = 8};
    st_model m = {.files = &f, .nfiles = 1, .tensors = t, .ntensors = N};
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    mixq_error err;
    cr_assert_eq(mx_convert_check_header_limit(&m, &o, &err), MIXQ_E_RANGE);
    cr_assert(strstr(err.message, "many.safetensors") && strstr(err.message, "300000 tensors") &&
                  strstr(err.message, "nothing was converted"),
              "%s", err.message);
    m.ntensors = 1000; /* 1 MB of names */
    cr_assert_eq(mx_convert_check_header_limit(&m, &o, &err), MIXQ_OK, "%s", err.message);
    free(t);
    free(name);
}
