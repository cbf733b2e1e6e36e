/* test_cli.c - the mixq command line: exit codes, messages, dump --json, verify on corruption. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "reader/st_reader.h"
#include "test_support.h"

/* Converts testdata/<model> with extra args into dir/out.mxq; returns its path. */
static char *convert(const char *dir, const char *model, const char *type)
{
    char *in = ts_source_path(model), *out = ts_path(dir, "out.mxq"), *o = NULL, *e = NULL;
    int rc = RUN(&o, &e, "convert", in, "-o", out, "--type", type);
    cr_assert_eq(rc, 0, "convert failed (%d): %s", rc, e);
    cr_assert(strstr(o, "bits per weight"), "summary missing: %s", o);
    free(in); free(o); free(e);
    return out;
}

Test(cli, help_and_version)
{
    char *o, *e;
    cr_assert_eq(RUN(&o, &e, "--help"), 0);
    cr_assert(strstr(o, "convert") && strstr(o, "dump") && strstr(o, "verify") && strstr(o, "Exit status"));
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "--version"), 0);
    cr_assert(strstr(o, "mixq 0.") && strstr(o, "format 1"), "%s", o);
    free(o); free(e);
    const char *cmds[] = {"convert", "dump", "verify"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(RUN(&o, &e, cmds[i], "--help"), 0, "%s --help", cmds[i]);
        cr_assert(strstr(o, "Usage: mixq") && strstr(o, cmds[i]), "%s", o);
        free(o); free(e);
    }
    cr_assert_eq(ts_run_cli((const char *const[]){NULL}, &o, &e), 2);
    free(o); free(e);
}

Test(cli, usage_errors_exit_2)
{
    char *o, *e;
    cr_assert_eq(RUN(&o, &e, "frobnicate"), 2);
    cr_assert(strstr(e, "unknown command"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "convert", "x.safetensors"), 2);
    cr_assert(strstr(e, "-o OUT"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "convert", "x", "-o", "y", "--type", "int3"), 2);
    cr_assert(strstr(e, "unknown type 'int3'") && strstr(e, "fp8_e4m3") && strstr(e, "fp8_e5m2"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "plan", "x", "--type", "raw"), 2);
    cr_assert(strstr(e, "unknown type 'raw'") && strstr(e, "int6_dq"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "convert", "x", "-o", "y", "--group-size", "abc"), 2);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "convert", "x", "-o", "y", "--bogus"), 2);
    cr_assert(strstr(e, "--bogus"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "dump"), 2);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "verify", "a", "b"), 2);
    free(o); free(e);
}

Test(cli, missing_input_exit_1_names_file)
{
    char *dir = ts_tmpdir(), *out = ts_path(dir, "o.mxq"), *o, *e;
    int rc = RUN(&o, &e, "convert", "/nonexistent/model.safetensors", "-o", out);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(e, "/nonexistent/model.safetensors"), "%s", e);
    cr_assert(strchr(e, '\n') == e + strlen(e) - 1, "one line expected: %s", e);
    cr_assert_eq(ts_dir_count(dir), 0);
    free(o); free(e);
    ts_rmtree(dir);
    free(dir); free(out);
}

Test(cli, existing_output_exit_3)
{
    char *dir = ts_tmpdir(), *out = convert(dir, "testdata/tiny-llama-f32", "int8");
    char *in = ts_source_path("testdata/tiny-llama-f32"), *o, *e;
    cr_assert_eq(RUN(&o, &e, "convert", in, "-o", out), 3);
    cr_assert(strstr(e, "already exists") && strstr(e, "--force"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "convert", in, "-o", out, "--force", "--quiet"), 0);
    cr_assert_str_eq(o, "");
    free(o); free(e);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

Test(cli, dump_json_lists_every_tensor)
{
    char *dir = ts_tmpdir(), *out = convert(dir, "testdata/tiny-llama-sharded", "int4");
    char *o, *e;
    cr_assert_eq(RUN(&o, &e, "dump", out, "--json"), 0, "%s", e);
    json_error_t je;
    json_t *root = json_loads(o, 0, &je);
    cr_assert(root, "dump --json is not JSON: %s", je.text);
    json_t *tensors = json_object_get(root, "tensors");
    cr_assert(json_is_array(tensors));

    char *in = ts_source_path("testdata/tiny-llama-sharded");
    st_model *m = NULL;
    mixq_error err;
    cr_assert_eq(st_open(in, &m, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(json_array_size(tensors), m->ntensors);
    size_t nint4 = 0;
    for (size_t i = 0; i < m->ntensors; i++) {
        int found = 0;
        for (size_t j = 0; j < json_array_size(tensors); j++) {
            json_t *t = json_array_get(tensors, j);
            if (strcmp(json_string_value(json_object_get(t, "name")), m->tensors[i].name)) continue;
            found = 1;
            const char *qt = json_string_value(json_object_get(t, "quant_type"));
            cr_assert(qt, "no quant_type for %s", m->tensors[i].name);
            nint4 += !strcmp(qt, "int4");
        }
        cr_assert(found, "%s not listed", m->tensors[i].name);
    }
    cr_assert_gt(nint4, 0);
    json_t *totals = json_object_get(root, "totals");
    cr_assert(json_is_object(totals) && json_real_value(json_object_get(totals, "compression")) > 2.0);
    json_t *meta = json_object_get(root, "metadata");
    cr_assert(json_is_object(json_object_get(meta, "source_metadata")));
    cr_assert_eq(json_array_size(json_object_get(meta, "source_files")), 3, "index + 2 shards");
    json_decref(root);
    st_close(m);
    free(o); free(e);

    /* the table has a totals line, and --tensor shows one tensor */
    cr_assert_eq(RUN(&o, &e, "dump", out), 0);
    cr_assert(strstr(o, "total:") && strstr(o, "bits per weight") && strstr(o, "int4"), "%s", o);
    cr_assert(strstr(o, "\nby type:\n") && strstr(o, "\n  int4:64 ") && strstr(o, "\n  raw "), "dump prints plan's by-type table: %s", o);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "dump", out, "--tensor", "model.layers.0.mlp.up_proj.weight"), 0, "%s", e);
    cr_assert(strstr(o, "section") && strstr(o, "codes") && strstr(o, "mins") && strstr(o, "file offset"), "%s", o);
    free(o); free(e);

    /* --json: file_offset is absolute, a section's offset relative to its tensor */
    cr_assert_eq(RUN(&o, &e, "dump", out, "--json", "--tensor", "model.layers.0.mlp.up_proj.weight"), 0, "%s", e);
    json_t *one = json_loads(o, 0, &je);
    cr_assert(one, "%s", je.text);
    cr_assert_null(json_object_get(one, "offset"), "a tensor's absolute offset is file_offset");
    json_int_t tfo = json_integer_value(json_object_get(one, "file_offset"));
    json_t *codes = json_object_get(json_object_get(one, "sections"), "codes");
    json_t *scales = json_object_get(json_object_get(one, "sections"), "scales");
    cr_assert(tfo >= 64 && codes && scales);
    cr_assert_eq(json_integer_value(json_object_get(codes, "offset")), 0);
    cr_assert_eq(json_integer_value(json_object_get(codes, "file_offset")), tfo);
    cr_assert_eq(json_integer_value(json_object_get(scales, "file_offset")),
                 tfo + json_integer_value(json_object_get(scales, "offset")));
    cr_assert_gt(json_integer_value(json_object_get(scales, "offset")), 0);
    json_decref(one);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "dump", out, "--tensor", "no.such.tensor"), 1);
    cr_assert(strstr(e, "no.such.tensor"), "%s", e);
    free(o); free(e);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

/* Flips one bit of the file at offset and expects verify (or open) to fail with `what` in the message. */
static void flip_and_verify(const char *path, size_t offset, const char *what)
{
    size_t len;
    uint8_t *d = ts_read_file(path, &len);
    cr_assert(d && offset < len);
    d[offset] ^= 0x10;
    char *bad = malloc(strlen(path) + 8);
    sprintf(bad, "%s.bad", path);
    ts_write_file(bad, d, len);
    char *o, *e;
    int rc = RUN(&o, &e, "verify", bad);
    cr_assert_eq(rc, 1, "flip at %zu: verify returned %d (%s)", offset, rc, e);
    cr_assert(strstr(e, what), "flip at %zu: message lacks '%s': %s", offset, what, e);
    free(o); free(e); free(d); free(bad);
}

Test(cli, verify_detects_flipped_bits)
{
    char *dir = ts_tmpdir(), *out = convert(dir, "testdata/tiny-llama-f16", "int4");
    char *o, *e;
    cr_assert_eq(RUN(&o, &e, "verify", out), 0, "%s", e);
    cr_assert(strstr(o, "OK"), "%s", o);
    free(o); free(e);

    cr_assert_eq(RUN(&o, &e, "dump", out, "--json"), 0);
    json_t *root = json_loads(o, 0, NULL);
    json_t *t0 = json_array_get(json_object_get(root, "tensors"), 3);
    const char *name = json_string_value(json_object_get(t0, "name"));
    size_t off = (size_t)json_integer_value(json_object_get(t0, "file_offset"));
    size_t bytes = (size_t)json_integer_value(json_object_get(t0, "bytes"));
    cr_assert_gt(bytes, 0);
    flip_and_verify(out, off + bytes / 2, name);
    size_t fsize = (size_t)json_integer_value(json_object_get(root, "file_size"));
    flip_and_verify(out, fsize - 10, "header");
    flip_and_verify(out, 20, "preamble");
    json_decref(root);
    free(o); free(e);
    ts_rmtree(dir);
    free(dir); free(out);
}

/* The type list of --help comes from the table: fp8 types included, with their groups. */
Test(cli, help_lists_every_type)
{
    char *o, *e;
    const char *cmds[] = {"convert", "plan"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(RUN(&o, &e, cmds[i], "--help"), 0);
        cr_assert(strstr(o, "\n  fp8_e4m3 ") && strstr(o, "\n  fp8_e5m2 ") && strstr(o, "\n  int6_dq ") &&
                  strstr(o, "16..256 (64)"), "%s --help: %s", cmds[i], o);
        cr_assert(strstr(o, "-j, --threads N"), "%s --help lacks -j: %s", cmds[i], o);
        free(o); free(e);
    }
}

/* -j is --threads wherever it exists; dump and compare say so instead of taking it as --json. */
Test(cli, dash_j_means_threads)
{
    char *dir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32"), *out = ts_path(dir, "o.mxq"), *o, *e;
    cr_assert_eq(RUN(&o, &e, "plan", in, "-j", "2", "-q"), 0, "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "plan", in, "-j", "0"), 2);
    cr_assert(strstr(e, "--threads takes a number from 1 to 1024"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "convert", in, "-o", out, "-j", "0"), 2);
    cr_assert(strstr(e, "--threads takes a number from 1 to 1024"), "%s", e);
    free(o); free(e);
    cr_assert_eq(RUN(&o, &e, "convert", in, "-o", out, "-j", "2", "-q"), 0, "%s", e);
    free(o); free(e);
    const char *dump[] = {"dump", out, "-j", NULL}, *cmp[] = {"compare", in, out, "-j", NULL};
    cr_assert_eq(ts_run_cli(dump, &o, &e), 2);
    cr_assert(strstr(e, "-j is --threads") && strstr(e, "--json"), "%s", e);
    free(o); free(e);
    cr_assert_eq(ts_run_cli(cmp, &o, &e), 2);
    cr_assert(strstr(e, "-j is --threads") && strstr(e, "--json"), "%s", e);
    free(o); free(e);
    ts_rmtree(dir);
    free(dir); free(in); free(out);
}

/* A saved plan fixes types, groups and the quantizer: options it makes meaningless are errors. */
Test(cli, convert_plan_rejects_what_the_plan_decides)
{
    char *dir = ts_tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32"), *plan = ts_path(dir, "p.json");
    char *out = ts_path(dir, "o.mxq"), *o, *e;
    cr_assert_eq(RUN(&o, &e, "plan", in, "--target-bpw", "5", "-o", plan, "-q"), 0, "%s", e);
    free(o); free(e);
    const char *bad[][3] = {{"--type", "int4", NULL}, {"-g", "64", NULL}, {"--rtn", NULL, NULL},
                            {"--quantize-1d", NULL, NULL}, {"--measure-sample", "100", NULL}};
    const char *shown[] = {"--type", "--group-size", "--rtn", "--quantize-1d", "--measure-sample"};
    for (int i = 0; i < 5; i++) {
        const char *argv[] = {"convert", in, "-o", out, "--plan", plan, bad[i][0], bad[i][1], NULL};
        cr_assert_eq(ts_run_cli(argv, &o, &e), 2, "%s", shown[i]);
        cr_assert(strstr(e, shown[i]) && strstr(e, "--plan"), "%s: %s", shown[i], e);
        free(o); free(e);
    }
    cr_assert_eq(ts_dir_count(dir), 1, "nothing but the plan was written");
    cr_assert_eq(RUN(&o, &e, "convert", in, "-o", out, "--plan", plan, "-j", "2", "-q"), 0, "%s", e);
    free(o); free(e);
    ts_rmtree(dir);
    free(dir); free(in); free(plan); free(out);
}
