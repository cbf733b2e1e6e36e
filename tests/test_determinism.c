/*
 * test_determinism.c - the same input and options give a byte-identical
 * container (docs/ROBUSTNESS.md): across repeated runs, across the kernel
 * paths MIXQ_SIMD selects (scalar and every SIMD path this build and CPU
 * have), for every --type the CLI accepts, with and without --rtn, with
 * --quantize-1d and other group sizes, and whatever path names the input.
 * Everything runs through the real CLI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "kernels/simd.h"
#include "test_support.h"

TestSuite(determinism, .fini = ts_remove_tracked);

/* Every type name mixq has had; the ones this CLI rejects are skipped. */
static const char *const known_types[] = {"int8", "int4", "f16", "bf16", "f32", "int4s", "int2", "int4_dq",
                                          "int2_dq", "int3_dq", "int6_dq", "fp8_e4m3", "fp8_e5m2",
                                          "nl4", "nl4_dq"};

typedef struct config {
    char *args[8];   /* extra convert options */
    int nargs;
    char label[96];
} config;

static char *help_text(void)
{
    char *o = NULL, *e = NULL;
    cr_assert_eq(ts_run_cli((const char *const[]){"convert", "--help", NULL}, &o, &e), 0, "%s", e);
    free(e);
    return o;
}

/*
 * The type names: the known ones plus any name in the --type paragraph of
 * `mixq convert --help` (a word with a digit in it: int8, f16, fp8_e4m3, ...).
 */
static size_t list_types(char names[][32], size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof known_types / sizeof known_types[0] && n < cap; i++)
        snprintf(names[n++], 32, "%s", known_types[i]);
    char *help = help_text();
    char *p = strstr(help, "--type"), *end = p ? strstr(p, "--group-size") : NULL;
    if (p && !end) end = p + strlen(p);
    while (p && p < end && n < cap) {
        while (p < end && !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) p++;
        char *w = p;
        while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) p++;
        size_t len = (size_t)(p - w);
        if (len == 0 || len >= 32 || !(*w >= 'a' && *w <= 'z') || strpbrk(w, "0123456789") >= p) continue;
        char word[32];
        memcpy(word, w, len);
        word[len] = 0;
        int dup = 0;
        for (size_t k = 0; k < n; k++) dup |= !strcmp(names[k], word);
        if (!dup) snprintf(names[n++], 32, "%s", word);
    }
    free(help);
    return n;
}

static int help_has(const char *opt)
{
    char *help = help_text();
    int has = strstr(help, opt) != NULL;
    free(help);
    return has;
}

/* The kernel paths to compare: scalar and whichever SIMD paths this build and CPU have. */
static size_t simd_paths(const char *paths[MX_SIMD_COUNT])
{
    size_t n = 0;
    for (int p = 0; p < MX_SIMD_COUNT; p++)
        if (mx_kernels_for((mx_simd)p)) paths[n++] = mx_simd_name((mx_simd)p);
    if (n < 2) cr_log_warn("only the %s kernel path exists in this build or on this CPU: "
                           "determinism is checked across runs only", paths[0]);
    return n;
}

/* Runs `mixq convert in -o out` with the config; returns the exit code (stderr in *err). */
static int convert(const char *in, const char *out, const char *type, const config *c, char **err)
{
    const char *args[24] = {"convert", in, "-o", out, "--type", type, "--quiet", "--force"};
    int n = 8;
    for (int i = 0; i < c->nargs; i++) args[n++] = c->args[i];
    args[n] = NULL;
    char *o = NULL;
    int rc = ts_run_cli(args, &o, err);
    free(o);
    return rc;
}

static uint64_t file_hash(const char *path, size_t *len)
{
    uint8_t *b = ts_read_file(path, len);
    cr_assert(b, "cannot read %s", path);
    uint64_t h = XXH3_64bits(b, *len);
    free(b);
    return h;
}

/* The first offset at which two files differ (for the failure message). */
static size_t first_difference(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *x = ts_read_file(a, &la), *y = ts_read_file(b, &lb);
    size_t i = 0;
    while (i < la && i < lb && x[i] == y[i]) i++;
    free(x);
    free(y);
    return i;
}

static void add_arg(config *c, const char *a) { c->args[c->nargs++] = strdup(a); }

static void free_config(config *c)
{
    for (int i = 0; i < c->nargs; i++) free(c->args[i]);
    c->nargs = 0;
}

/*
 * For every type and option set: convert `in` twice on the scalar path and
 * once on every other kernel path, and require all outputs byte-identical.
 * Returns how many were compared.
 */
static size_t check_input(const char *in)
{
    char names[64][32];
    size_t ntypes = list_types(names, 64);
    const char *paths[MX_SIMD_COUNT];
    size_t npaths = simd_paths(paths);
    int rtn = help_has("--rtn");
    /* ---- THREADS: once `convert --threads N` exists (the help lists it), the default and --rtn
     * configurations are also run with --threads 7 and must give the same bytes as the rest. ---- */
    int threads = help_has("--threads");
    char *dir = ts_tmpdir_tracked();
    size_t compared = 0, types_done = 0;
    char skipped[512] = "";
    for (size_t t = 0; t < ntypes; t++) {
        config cfgs[12];
        size_t nc = 0;
        memset(cfgs, 0, sizeof cfgs);
        snprintf(cfgs[nc++].label, 96, "defaults");
        if (rtn) {
            add_arg(&cfgs[nc], "--rtn");
            snprintf(cfgs[nc++].label, 96, "--rtn");
        }
        add_arg(&cfgs[nc], "--quantize-1d");
        snprintf(cfgs[nc++].label, 96, "--quantize-1d");
        const char *groups[] = {"16", "row"};
        for (int g = 0; g < 2; g++) {
            add_arg(&cfgs[nc], "--group-size");
            add_arg(&cfgs[nc], groups[g]);
            if (rtn) add_arg(&cfgs[nc], "--rtn");
            snprintf(cfgs[nc++].label, 96, "--group-size %s%s", groups[g], rtn ? " --rtn" : "");
        }
        size_t base_cfgs = nc;
        if (threads) /* the defaults and --rtn again, on 7 threads */
            for (size_t k = 0; k < base_cfgs && k < 2 && nc < 12; k++) {
                for (int a = 0; a < cfgs[k].nargs; a++) add_arg(&cfgs[nc], cfgs[k].args[a]);
                add_arg(&cfgs[nc], "--threads");
                add_arg(&cfgs[nc], "7");
                snprintf(cfgs[nc++].label, 96, "%s --threads 7", cfgs[k].label);
            }
        int type_ok = 0;
        for (size_t k = 0; k < nc; k++) {
            char *ref = NULL;
            uint64_t ref_hash = 0;
            size_t ref_len = 0;
            int rejected = 0;
            for (size_t p = 0; p < npaths && !rejected; p++) {
                cr_assert_eq(setenv("MIXQ_SIMD", paths[p], 1), 0);
                for (int rep = 0; rep < (p == 0 ? 2 : 1); rep++) { /* twice on the reference path */
                    char name[64];
                    snprintf(name, sizeof name, "%s-%zu-%zu-%d.mxq", names[t], k, p, rep);
                    char *out = ts_path(dir, name), *e = NULL;
                    int rc = convert(in, out, names[t], &cfgs[k], &e);
                    if (rc == 2) { /* this CLI does not know the type, or this option for it */
                        cr_assert(ref == NULL, "%s %s: rejected on path %s only: %s", names[t], cfgs[k].label,
                                  paths[p], e);
                        rejected = 1;
                        free(e);
                        free(out);
                        break;
                    }
                    cr_assert_eq(rc, 0, "convert %s --type %s %s (MIXQ_SIMD=%s): exit %d: %s", in, names[t],
                                 cfgs[k].label, paths[p], rc, e);
                    free(e);
                    size_t len;
                    uint64_t h = file_hash(out, &len);
                    if (!ref) {
                        ref = out;
                        ref_hash = h;
                        ref_len = len;
                        continue;
                    }
                    cr_assert(h == ref_hash && len == ref_len,
                              "convert %s --type %s %s: MIXQ_SIMD=%s run %d differs from MIXQ_SIMD=%s run 0 "
                              "(%zu vs %zu bytes, first difference at byte %zu)", in, names[t], cfgs[k].label,
                              paths[p], rep, paths[0], len, ref_len, first_difference(ref, out));
                    compared++;
                    remove(out);
                    free(out);
                }
            }
            if (ref) {
                remove(ref);
                type_ok = 1;
            }
            free(ref);
            free_config(&cfgs[k]);
        }
        unsetenv("MIXQ_SIMD");
        if (type_ok) types_done++;
        else if (strlen(skipped) + strlen(names[t]) + 2 < sizeof skipped) {
            strcat(skipped, " ");
            strcat(skipped, names[t]);
        }
    }
    cr_log_info("%s: %zu types, %zu kernel paths, %zu identical reruns compared", in, types_done, npaths, compared);
    if (skipped[0]) cr_log_info("%s: types this mixq rejects (skipped):%s", in, skipped);
    cr_assert_geq(types_done, 5, "fewer than the five original types were checked");
    ts_rmtree(dir);
    free(dir);
    return compared;
}

static void check_testdata(const char *rel)
{
    char *in = ts_source_path(rel);
    size_t n = check_input(in);
    free(in);
    cr_assert_gt(n, 0);
}

Test(determinism, sharded_bf16, .timeout = 280) { check_testdata("testdata/tiny-llama-sharded"); }
Test(determinism, single_f32, .timeout = 280) { check_testdata("testdata/tiny-llama-f32"); }

/*
 * Shapes and values where vector and scalar code part ways: row lengths
 * that are not multiples of any vector width or group, long rows, a 3-D
 * tensor, subnormals, signed zeros, exact halves, constant and all-zero
 * rows, the f16 limit, and F16 / BF16 sources.
 */
Test(determinism, awkward_shapes_and_values, .timeout = 280)
{
    char *dir = ts_tmpdir_tracked(), *in = ts_path(dir, "awkward.safetensors");
    static const struct { const char *name, *dtype; unsigned r0, r1, r2; } ts[] = {
        {"a.odd", "F32", 7, 33, 0}, {"b.long", "F32", 3, 1000, 0}, {"c.cube", "F32", 5, 17, 9},
        {"d.one", "F32", 1, 1, 0}, {"e.half", "F16", 9, 70, 0},    {"f.brain", "BF16", 4, 257, 0},
        {"g.bias", "F32", 31, 0, 0},
    };
    size_t nt = sizeof ts / sizeof ts[0];
    char hdr[4096];
    size_t hl = (size_t)snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint8_t *data = NULL;
    size_t off = 0;
    uint32_t s = 7;
    for (size_t i = 0; i < nt; i++) {
        size_t n = ts[i].r0 * (ts[i].r1 ? ts[i].r1 : 1) * (ts[i].r2 ? ts[i].r2 : 1);
        size_t esize = strcmp(ts[i].dtype, "F32") ? 2 : 4;
        char shape[64];
        if (ts[i].r2) snprintf(shape, sizeof shape, "[%u,%u,%u]", ts[i].r0, ts[i].r1, ts[i].r2);
        else if (ts[i].r1) snprintf(shape, sizeof shape, "[%u,%u]", ts[i].r0, ts[i].r1);
        else snprintf(shape, sizeof shape, "[%u]", ts[i].r0);
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                               ts[i].name, ts[i].dtype, shape, off, off + n * esize);
        data = realloc(data, off + n * esize);
        for (size_t k = 0; k < n; k++) {
            s = s * 1103515245u + 12345u;
            float x = (float)((int)(s >> 8) % 20001 - 10000) / 4096.0f;
            switch (k % 23) {
            case 0: x = 0.5f * (float)(int)(x * 2); break;      /* exact halves */
            case 1: x = -0.0f; break;
            case 2: x = 1e-40f; break;                          /* f32 subnormal */
            case 3: x = 6e-8f; break;                           /* f16 subnormal range */
            case 4: if (k % 3 == 0) x = 65504.0f; break;        /* the f16 limit */
            default: break;
            }
            if ((k / (ts[i].r1 ? ts[i].r1 : n)) % 5 == 3) x = 0.0f;  /* some all-zero rows */
            if ((k / (ts[i].r1 ? ts[i].r1 : n)) % 7 == 5) x = 1.25f; /* some constant rows */
            uint8_t *p = data + off + k * esize;
            uint32_t bits;
            memcpy(&bits, &x, 4);
            if (esize == 4) memcpy(p, &bits, 4);
            else if (!strcmp(ts[i].dtype, "BF16")) {
                uint16_t b = (uint16_t)(bits >> 16);
                memcpy(p, &b, 2);
            } else {
                uint16_t h = (uint16_t)(0x3c00 + (s & 0x3ff)); /* [1, 2) in f16 */
                if (k % 11 == 0) h = 0x0001;                   /* f16 subnormal */
                if (k % 13 == 0) h = 0x8000;                   /* -0 */
                if (k % 17 == 0) h = 0x7bff;                   /* 65504 */
                memcpy(p, &h, 2);
            }
        }
        off += n * esize;
    }
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
    size_t len;
    uint8_t *file = ts_safetensors(hdr, data, off, &len);
    ts_write_file(in, file, len);
    free(file);
    free(data);
    cr_assert_gt(check_input(in), 0);
    ts_rmtree(dir);
    free(dir); free(in);
}

/* The same checkpoint named as a directory, an index file or a file: the same container. */
Test(determinism, input_spelling_and_output_name)
{
    char *dir = ts_tmpdir_tracked();
    struct { const char *a, *b; } pairs[] = {
        {"testdata/tiny-llama-sharded", "testdata/tiny-llama-sharded/model.safetensors.index.json"},
        {"testdata/tiny-llama-f32", "testdata/tiny-llama-f32/model.safetensors"},
        {"testdata/tiny-llama-f16", "testdata/tiny-llama-f16/../tiny-llama-f16/model.safetensors"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char *a = ts_source_path(pairs[i].a), *b = ts_source_path(pairs[i].b);
        char *oa = ts_path(dir, "a.mxq"), *sub = ts_path(dir, "elsewhere"), *ob = NULL;
        mkdir(sub, 0755);
        ob = ts_path(sub, "another-name.mxq");
        config c = {.nargs = 0};
        char *e = NULL;
        cr_assert_eq(convert(a, oa, "int4", &c, &e), 0, "%s", e);
        free(e);
        cr_assert_eq(convert(b, ob, "int4", &c, &e), 0, "%s", e);
        free(e);
        size_t la, lb;
        uint64_t ha = file_hash(oa, &la), hb = file_hash(ob, &lb);
        cr_assert(ha == hb && la == lb, "%s and %s give different containers (first difference at byte %zu)", pairs[i].a,
                  pairs[i].b, first_difference(oa, ob));
        free(a); free(b); free(oa); free(ob); free(sub);
    }
    ts_rmtree(dir);
    free(dir);
}
