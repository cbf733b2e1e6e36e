/*
 * test_options.c - the size-checked option structs of mixq_tools.h: the
 * *_options_init functions set struct_size, a struct_size below the first
 * version's fields or above the library's struct is MIXQ_E_INVALID_ARG with
 * a message naming the struct, and an older (smaller) struct gets the
 * defaults for the fields it lacks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/options.h"
#include "mixq_tools.h"
#include "test_support.h"

#define MISSING "/nonexistent/mixq-test-options/in.safetensors"

Test(options, init_sets_struct_size)
{
    mixq_convert_options c;
    mixq_plan_options p;
    mixq_compare_options k;
    mixq_export_options e;
    mixq_convert_options_init(&c);
    mixq_plan_options_init(&p);
    mixq_compare_options_init(&k);
    mixq_export_options_init(&e);
    cr_assert_eq(c.struct_size, sizeof c);
    cr_assert_eq(p.struct_size, sizeof p);
    cr_assert_eq(k.struct_size, sizeof k);
    cr_assert_eq(e.struct_size, sizeof e);
    cr_assert_eq(c.type, MIXQ_QT_INT8);
    cr_assert_eq(p.measure_sample, MIXQ_MEASURE_SAMPLE_DEFAULT);
    cr_assert_eq(k.verify, 1);
    cr_assert_eq(e.dtype, MIXQ_QT_F32);
}

/* threads has the same type in every struct that has it */
Test(options, threads_same_type)
{
    mixq_convert_options c;
    mixq_plan_options p;
    cr_assert_eq(sizeof c.threads, sizeof(unsigned));
    cr_assert_eq(sizeof p.threads, sizeof(unsigned));
    c.threads = p.threads = 0u - 1u; /* unsigned in both: no sign change */
    cr_assert(c.threads > 0 && p.threads > 0);
}

/* init_sized writes only struct_size bytes (a caller's older, smaller struct) */
Test(options, init_sized_writes_only_struct_size)
{
    unsigned char buf[sizeof(mixq_plan_options) + 32];
    memset(buf, 0xAB, sizeof buf);
    size_t n = offsetof(mixq_plan_options, group_size);
    mixq_plan_options_init_sized((mixq_plan_options *)(void *)buf, n);
    size_t got;
    memcpy(&got, buf, sizeof got);
    cr_assert_eq(got, n);
    for (size_t i = n; i < sizeof buf; i++) cr_assert_eq(buf[i], 0xAB, "byte %zu written", i);
    /* a larger struct than the library knows: the unknown tail is zeroed */
    memset(buf, 0xAB, sizeof buf);
    mixq_plan_options_init_sized((mixq_plan_options *)(void *)buf, sizeof buf);
    memcpy(&got, buf, sizeof got);
    cr_assert_eq(got, sizeof buf);
    for (size_t i = sizeof(mixq_plan_options); i < sizeof buf; i++) cr_assert_eq(buf[i], 0);
    /* too small to hold struct_size: untouched */
    memset(buf, 0xAB, sizeof buf);
    mixq_plan_options_init_sized((mixq_plan_options *)(void *)buf, 2);
    cr_assert_eq(buf[0], 0xAB);
    mixq_plan_options_init_sized(NULL, sizeof(mixq_plan_options));
}

static void expect_bad_size(mixq_status s, const mixq_error *err, const char *what, const char *word)
{
    cr_assert_eq(s, MIXQ_E_INVALID_ARG, "%s: %s", what, err->message);
    cr_assert(strstr(err->message, what), "%s", err->message);
    cr_assert(strstr(err->message, word), "%s", err->message);
}

/* Each tool with the caller's struct_size replaced by size. */
static mixq_status run_convert(size_t size, mixq_error *err)
{
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.struct_size = size;
    return mixq_convert(MISSING, MISSING ".mxq", &o, err);
}

static mixq_status run_plan(size_t size, mixq_error *err)
{
    mixq_plan_options o;
    mixq_plan_options_init(&o);
    o.struct_size = size;
    mixq_plan *p = NULL;
    mixq_status s = mixq_plan_create(MISSING, &o, &p, err);
    mixq_plan_free(p);
    return s;
}

static mixq_status run_compare(size_t size, mixq_error *err)
{
    mixq_compare_options o;
    mixq_compare_options_init(&o);
    o.struct_size = size;
    mixq_compare_result *r = NULL;
    mixq_status s = mixq_compare(MISSING, MISSING ".mxq", &o, &r, err);
    mixq_compare_free(r);
    return s;
}

static mixq_status run_export(size_t size, mixq_error *err)
{
    mixq_export_options o;
    mixq_export_options_init(&o);
    o.struct_size = size;
    return mixq_export(MISSING ".mxq", MISSING ".out", &o, err);
}

typedef struct tool {
    const char *what;
    mixq_status (*run)(size_t, mixq_error *);
    size_t size, first; /* sizeof, end of the first version's fields */
} tool;

static const tool tools[] = {
    {"convert_options", run_convert, sizeof(mixq_convert_options), MX_FIELD_END(mixq_convert_options, threads)},
    {"plan_options", run_plan, sizeof(mixq_plan_options), MX_FIELD_END(mixq_plan_options, threads)},
    {"compare_options", run_compare, sizeof(mixq_compare_options),
     MX_FIELD_END(mixq_compare_options, progress_ctx)},
    {"export_options", run_export, sizeof(mixq_export_options), MX_FIELD_END(mixq_export_options, progress_ctx)},
};

Test(options, struct_size_checked_by_every_tool)
{
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        const tool *t = &tools[i];
        mixq_error err;
        expect_bad_size(t->run(0, &err), &err, t->what, "below");
        expect_bad_size(t->run(t->first - 1, &err), &err, t->what, "below");
        expect_bad_size(t->run(t->size + 8, &err), &err, t->what, "larger");
        /* accepted: the tool gets as far as opening the missing input */
        mixq_status s = t->run(t->size, &err);
        cr_assert_eq(s, MIXQ_E_IO, "%s: %s", t->what, err.message);
        s = t->run(t->first, &err);
        cr_assert_eq(s, MIXQ_E_IO, "%s: %s", t->what, err.message);
    }
}

/* The plan options inside convert options are checked too. */
Test(options, nested_plan_options_checked)
{
    char *in = ts_source_path("testdata/tiny-llama-f32");
    char *dir = ts_tmpdir();
    char *out = ts_path(dir, "x.mxq");
    mixq_plan_options po;
    mixq_plan_options_init(&po);
    po.struct_size = 4;
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.plan_options = &po;
    mixq_error err;
    expect_bad_size(mixq_convert(in, out, &o, &err), &err, "plan_options", "below");
    cr_assert(!ts_exists(out));
    ts_rmtree(dir);
    free(out);
    free(dir);
    free(in);
}

/* The mechanism with a version 1 and a grown version 2 of a struct. */
typedef struct opts_v1 {
    size_t struct_size;
    int a;
    double b;
} opts_v1;

typedef struct opts_v2 {
    size_t struct_size;
    int a;
    double b;
    int c; /* added in version 2: starts at or after sizeof(opts_v1) */
    const char *d;
} opts_v2;

static void defaults_v2(opts_v2 *o)
{
    memset(o, 0, sizeof *o);
    o->a = 1;
    o->b = 2.0;
    o->c = 3;
    o->d = "four";
}

Test(options, older_struct_gets_defaults_for_later_fields)
{
    cr_assert_geq(offsetof(opts_v2, c), sizeof(opts_v1));
    opts_v1 old = {sizeof old, 10, 20.0};
    opts_v2 eff;
    defaults_v2(&eff);
    mixq_error err;
    cr_assert_eq(mx_options_take(&eff, sizeof eff, &old, MX_FIELD_END(opts_v1, b), "test_options", &err), MIXQ_OK,
                 "%s", err.message);
    cr_assert_eq(eff.struct_size, sizeof eff);
    cr_assert_eq(eff.a, 10);
    cr_assert_eq(eff.b, 20.0);
    cr_assert_eq(eff.c, 3);
    cr_assert_str_eq(eff.d, "four");

    /* a caller of version 2 with every field */
    opts_v2 cur = {sizeof cur, 5, 6.0, 7, "eight"};
    defaults_v2(&eff);
    cr_assert_eq(mx_options_take(&eff, sizeof eff, &cur, MX_FIELD_END(opts_v1, b), "test_options", &err), MIXQ_OK);
    cr_assert_eq(eff.c, 7);
    cr_assert_str_eq(eff.d, "eight");

    /* NULL: every default */
    defaults_v2(&eff);
    cr_assert_eq(mx_options_take(&eff, sizeof eff, NULL, MX_FIELD_END(opts_v1, b), "test_options", &err), MIXQ_OK);
    cr_assert_eq(eff.a, 1);
    cr_assert_eq(eff.struct_size, sizeof eff);

    /* too small for version 1, or a version 3 this library does not know */
    old.struct_size = offsetof(opts_v1, b);
    cr_assert_eq(mx_options_take(&eff, sizeof eff, &old, MX_FIELD_END(opts_v1, b), "test_options", &err),
                 MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "test_options.struct_size"), "%s", err.message);
    cur.struct_size = sizeof cur + 16;
    cr_assert_eq(mx_options_take(&eff, sizeof eff, &cur, MX_FIELD_END(opts_v1, b), "test_options", &err),
                 MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "newer mixq_tools.h"), "%s", err.message);
}

/* Library messages name options by their field names, never as CLI flags; the CLI words them as its flags. */
Test(options, messages_name_fields_not_flags)
{
    char *in = ts_source_path("testdata/tiny-llama-f32");
    mixq_plan_options o;
    mixq_plan_options_init(&o);
    o.target_bpw = 4;
    mixq_plan *p = NULL;
    mixq_error err;
    cr_assert_eq(mixq_plan_create(in, &o, &p, &err), MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "plan_options.target_bpw") && !strstr(err.message, "--"), "%s", err.message);
    mixq_plan_options_init(&o);
    o.strategy = MIXQ_STRATEGY_BUDGET;
    o.target_bpw = 4;
    o.candidates = "nope,int4";
    cr_assert_neq(mixq_plan_create(in, &o, &p, &err), MIXQ_OK);
    cr_assert(strstr(err.message, "plan_options.candidates") && !strstr(err.message, "--"), "%s", err.message);

    char *out = NULL, *errs = NULL;
    const char *args[] = {"plan", in, "--strategy", "uniform", "--target-bpw", "4", NULL};
    cr_assert_neq(ts_run_cli(args, &out, &errs), 0);
    cr_assert(strstr(errs, "--target-bpw and --target-size need --strategy budget"), "%s", errs);
    free(out);
    free(errs);
    free(in);
}
