/*
 * test_testdata.c - the checked-in testdata/ tree is exactly what
 * tools/gen_testdata produces, and its checkpoints are valid and as designed.
 * Parses safetensors headers with jansson directly (independent of st_reader).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "test_support.h"

static const char *const models[] = {"tiny-llama-f32", "tiny-llama-f16", "tiny-llama-bf16",
                                     "tiny-llama-sharded"};
#define NMODELS (sizeof models / sizeof models[0])

/* ---- helpers ---------------------------------------------------------- */

static int run_generator(const char *arg)
{
    const char *gen = getenv("MIXQ_GEN_TESTDATA");
    cr_assert(gen != NULL, "MIXQ_GEN_TESTDATA is not set (run the tests through meson test)");
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        char *argv[] = {(char *)gen, (char *)arg, NULL};
        execv(gen, arg ? argv : (char *[]){(char *)gen, NULL});
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

typedef struct paths {
    char **v;
    size_t n, cap;
} paths;

/* Collects the regular files under root/rel (relative paths), recursively. */
static void walk(const char *root, const char *rel, paths *out)
{
    char *dir = rel ? ts_path(root, rel) : strdup(root);
    DIR *d = opendir(dir);
    cr_assert(d != NULL, "cannot open %s", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *r = rel ? ts_path(rel, e->d_name) : strdup(e->d_name);
        char *full = ts_path(root, r);
        struct stat st;
        cr_assert(stat(full, &st) == 0);
        if (S_ISDIR(st.st_mode)) {
            walk(root, r, out);
            free(r);
        } else {
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 16;
                out->v = realloc(out->v, out->cap * sizeof *out->v);
            }
            out->v[out->n++] = r;
        }
        free(full);
    }
    closedir(d);
    free(dir);
}

static void paths_free(paths *p)
{
    for (size_t i = 0; i < p->n; i++) free(p->v[i]);
    free(p->v);
}

static uint8_t *read_testdata(const char *rel, size_t *len)
{
    char *tail = ts_path("testdata", rel);
    char *p = ts_source_path(tail);
    uint8_t *b = ts_read_file(p, len);
    cr_assert(b != NULL, "cannot read %s", p);
    free(tail);
    free(p);
    return b;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

typedef struct stfile {
    uint8_t *buf;
    size_t len;
    uint64_t hlen;
    json_t *hdr;
    const uint8_t *data;
} stfile;

/* Loads and fully validates one safetensors file of testdata/. */
static stfile st_load(const char *rel)
{
    stfile f;
    f.buf = read_testdata(rel, &f.len);
    cr_assert(f.len >= 8, "%s: too short", rel);
    f.hlen = le64(f.buf);
    cr_assert(f.hlen > 0 && f.hlen <= f.len - 8, "%s: bad header length", rel);
    cr_assert((8 + f.hlen) % 8 == 0, "%s: header not padded to 8", rel);
    json_error_t jerr;
    f.hdr = json_loadb((const char *)f.buf + 8, f.hlen, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert(f.hdr != NULL && json_is_object(f.hdr), "%s: header: %s", rel, jerr.text);
    f.data = f.buf + 8 + f.hlen;

    json_t *meta = json_object_get(f.hdr, "__metadata__");
    cr_assert(json_is_object(meta), "%s: no __metadata__", rel);
    cr_assert_str_eq(json_string_value(json_object_get(meta, "format")), "pt");
    cr_assert(!memcmp(f.buf + 8, "{\"__metadata__\"", 15), "%s: __metadata__ not first", rel);

    /* Offsets are contiguous in header order (jansson preserves key order). */
    uint64_t off = 0;
    const char *name;
    json_t *t;
    json_object_foreach(f.hdr, name, t) {
        if (!strcmp(name, "__metadata__")) continue;
        const char *dt = json_string_value(json_object_get(t, "dtype"));
        cr_assert(dt != NULL, "%s: %s: no dtype", rel, name);
        uint64_t es = !strcmp(dt, "F32") ? 4 : !strcmp(dt, "F16") || !strcmp(dt, "BF16") ? 2
                    : !strcmp(dt, "I64") ? 8 : !strcmp(dt, "BOOL") ? 1 : 0;
        cr_assert(es != 0, "%s: %s: unexpected dtype %s", rel, name, dt);
        json_t *shape = json_object_get(t, "shape"), *o = json_object_get(t, "data_offsets");
        cr_assert(json_is_array(shape) && json_is_array(o) && json_array_size(o) == 2);
        uint64_t n = 1;
        for (size_t i = 0; i < json_array_size(shape); i++)
            n *= (uint64_t)json_integer_value(json_array_get(shape, i));
        uint64_t b = (uint64_t)json_integer_value(json_array_get(o, 0));
        uint64_t e = (uint64_t)json_integer_value(json_array_get(o, 1));
        cr_assert_eq(b, off, "%s: %s: offsets not contiguous", rel, name);
        cr_assert_eq(e - b, n * es, "%s: %s: byte count != numel * size", rel, name);
        off = e;
    }
    cr_assert_eq(8 + f.hlen + off, f.len, "%s: file does not end at the last tensor", rel);
    return f;
}

static void st_free(stfile *f)
{
    json_decref(f->hdr);
    free(f->buf);
}

/* The tensor's data, dtype and element count; fails if absent. */
static const uint8_t *st_tensor(const stfile *f, const char *name, const char **dt, uint64_t *n,
                                json_t **shape)
{
    json_t *t = json_object_get(f->hdr, name);
    cr_assert(t != NULL, "missing tensor %s", name);
    *dt = json_string_value(json_object_get(t, "dtype"));
    json_t *s = json_object_get(t, "shape");
    *n = 1;
    for (size_t i = 0; i < json_array_size(s); i++)
        *n *= (uint64_t)json_integer_value(json_array_get(s, i));
    if (shape) *shape = s;
    return f->data + json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0));
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float f16_val(uint16_t h)
{
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v = e == 0 ? (float)m * (1.0f / 16777216.0f)
                     : bits_f32(((e + 112) << 23) | (m << 13));
    return (h & 0x8000) ? -v : v;
}

static float elem(const char *dt, const uint8_t *p, uint64_t i)
{
    if (!strcmp(dt, "F32"))
        return bits_f32((uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                        (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24);
    uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    if (!strcmp(dt, "BF16")) return bits_f32((uint32_t)h << 16);
    cr_assert_str_eq(dt, "F16");
    return f16_val(h);
}

/* ---- tests ------------------------------------------------------------ */

Test(testdata, generator_output_matches_checked_in)
{
    char *tmp = ts_tmpdir();
    char *out = ts_path(tmp, "td");
    cr_assert_eq(run_generator(out), 0, "gen_testdata failed");

    paths gen = {0}, ref = {0};
    walk(out, NULL, &gen);
    char *refroot = ts_source_path("testdata");
    walk(refroot, NULL, &ref);
    cr_assert_geq(gen.n, 10, "generator wrote only %zu files", gen.n);

    for (size_t i = 0; i < gen.n; i++) {
        size_t gl, rl;
        char *gp = ts_path(out, gen.v[i]);
        uint8_t *g = ts_read_file(gp, &gl);
        uint8_t *r = read_testdata(gen.v[i], &rl);
        cr_assert(g != NULL);
        cr_assert_eq(gl, rl, "%s: generated %zu bytes, checked-in %zu "
                     "(regenerate with: build/gen_testdata testdata)", gen.v[i], gl, rl);
        cr_assert(!memcmp(g, r, gl), "%s differs from the checked-in file "
                  "(regenerate with: build/gen_testdata testdata)", gen.v[i]);
        free(g);
        free(r);
        free(gp);
    }
    /* Every checked-in file but the README and the golden containers (written
       once by mixq itself, see scripts/make-golden.sh) comes from the generator. */
    for (size_t i = 0; i < ref.n; i++) {
        if (!strcmp(ref.v[i], "README.md") || !strncmp(ref.v[i], "golden/", 7)) continue;
        int found = 0;
        for (size_t j = 0; j < gen.n && !found; j++) found = !strcmp(ref.v[i], gen.v[j]);
        cr_assert(found, "testdata/%s is not produced by gen_testdata", ref.v[i]);
    }

    /* Running again over an existing tree gives the same bytes. */
    cr_assert_eq(run_generator(out), 0);
    size_t l1, l2;
    char *p = ts_path(out, "tiny-llama-f32/model.safetensors");
    uint8_t *a = ts_read_file(p, &l1), *b = read_testdata("tiny-llama-f32/model.safetensors", &l2);
    cr_assert(a && l1 == l2 && !memcmp(a, b, l1));
    free(a);
    free(b);
    free(p);

    paths_free(&gen);
    paths_free(&ref);
    free(refroot);
    ts_rmtree(tmp);
    free(out);
    free(tmp);
}

Test(testdata, generator_usage)
{
    cr_assert_eq(run_generator(NULL), 2);
}

Test(testdata, total_size_under_2mb)
{
    char *root = ts_source_path("testdata");
    paths ref = {0};
    walk(root, NULL, &ref);
    uint64_t total = 0;
    for (size_t i = 0; i < ref.n; i++) {
        char *p = ts_path(root, ref.v[i]);
        struct stat st;
        cr_assert(stat(p, &st) == 0);
        total += (uint64_t)st.st_size;
        free(p);
    }
    cr_assert_lt(total, 2u * 1024 * 1024, "testdata/ is %llu bytes", (unsigned long long)total);
    paths_free(&ref);
    free(root);
}

Test(testdata, safetensors_files_are_valid)
{
    static const char *const files[] = {
        "tiny-llama-f32/model.safetensors", "tiny-llama-f16/model.safetensors",
        "tiny-llama-bf16/model.safetensors",
        "tiny-llama-sharded/model-00001-of-00002.safetensors",
        "tiny-llama-sharded/model-00002-of-00002.safetensors",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        stfile f = st_load(files[i]);
        st_free(&f);
    }
}

Test(testdata, configs)
{
    static const char *const dtypes[] = {"float32", "float16", "bfloat16", "bfloat16"};
    for (size_t m = 0; m < NMODELS; m++) {
        char rel[128];
        snprintf(rel, sizeof rel, "%s/config.json", models[m]);
        size_t len;
        uint8_t *b = read_testdata(rel, &len);
        json_error_t jerr;
        json_t *c = json_loadb((const char *)b, len, JSON_REJECT_DUPLICATES, &jerr);
        cr_assert(c != NULL, "%s: %s", rel, jerr.text);
        cr_assert_str_eq(json_string_value(json_object_get(c, "torch_dtype")), dtypes[m]);
        cr_assert_str_eq(json_string_value(json_object_get(c, "model_type")), "llama");
        cr_assert_eq(json_integer_value(json_object_get(c, "hidden_size")), 64);
        cr_assert_eq(json_integer_value(json_object_get(c, "intermediate_size")), 160);
        cr_assert_eq(json_integer_value(json_object_get(c, "num_hidden_layers")), 2);
        cr_assert_eq(json_integer_value(json_object_get(c, "vocab_size")), 96);
        cr_assert(json_is_false(json_object_get(c, "tie_word_embeddings")));
        json_decref(c);
        free(b);
    }
}

Test(testdata, sharded_index_matches_shards)
{
    size_t len;
    uint8_t *b = read_testdata("tiny-llama-sharded/model.safetensors.index.json", &len);
    json_error_t jerr;
    json_t *idx = json_loadb((const char *)b, len, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert(idx != NULL, "index: %s", jerr.text);
    json_t *wm = json_object_get(idx, "weight_map");
    cr_assert(json_is_object(wm));

    stfile sh[2] = {st_load("tiny-llama-sharded/model-00001-of-00002.safetensors"),
                    st_load("tiny-llama-sharded/model-00002-of-00002.safetensors")};
    stfile single = st_load("tiny-llama-bf16/model.safetensors");
    uint64_t total = 0;
    size_t n = 0;
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        const char *file = json_string_value(v);
        int s = !strcmp(file, "model-00001-of-00002.safetensors") ? 0
              : !strcmp(file, "model-00002-of-00002.safetensors") ? 1 : -1;
        cr_assert(s >= 0, "%s: unknown shard %s", name, file);
        cr_assert(json_object_get(sh[1 - s].hdr, name) == NULL, "%s in both shards", name);
        const char *dt, *dt2;
        uint64_t ne, ne2;
        const uint8_t *p = st_tensor(&sh[s], name, &dt, &ne, NULL);
        const uint8_t *q = st_tensor(&single, name, &dt2, &ne2, NULL);
        cr_assert_str_eq(dt, dt2);
        cr_assert_eq(ne, ne2);
        uint64_t es = (uint64_t)(json_integer_value(json_array_get(
            json_object_get(json_object_get(sh[s].hdr, name), "data_offsets"), 1)) -
            json_integer_value(json_array_get(
            json_object_get(json_object_get(sh[s].hdr, name), "data_offsets"), 0)));
        cr_assert(!memcmp(p, q, es), "%s: sharded bytes differ from tiny-llama-bf16", name);
        total += es;
        n++;
    }
    cr_assert_eq(n + 2, json_object_size(sh[0].hdr) + json_object_size(sh[1].hdr),
                 "weight_map does not list every shard tensor");
    cr_assert_eq(n + 1, json_object_size(single.hdr));
    cr_assert_eq((uint64_t)json_integer_value(
                     json_object_get(json_object_get(idx, "metadata"), "total_size")), total);
    for (int i = 0; i < 2; i++) st_free(&sh[i]);
    st_free(&single);
    json_decref(idx);
    free(b);
}

/* F16 and BF16 models hold the F32 model's values rounded; non-float tensors are equal. */
Test(testdata, half_models_round_f32)
{
    stfile f32 = st_load("tiny-llama-f32/model.safetensors");
    static const char *const other[] = {"tiny-llama-f16/model.safetensors",
                                        "tiny-llama-bf16/model.safetensors"};
    for (int o = 0; o < 2; o++) {
        stfile h = st_load(other[o]);
        cr_assert_eq(json_object_size(h.hdr), json_object_size(f32.hdr));
        const char *name;
        json_t *t;
        json_object_foreach(f32.hdr, name, t) {
            if (!strcmp(name, "__metadata__")) continue;
            const char *dt, *dt2;
            uint64_t n, n2;
            const uint8_t *p = st_tensor(&f32, name, &dt, &n, NULL);
            const uint8_t *q = st_tensor(&h, name, &dt2, &n2, NULL);
            cr_assert_eq(n, n2, "%s", name);
            if (strcmp(dt, "F32")) {
                cr_assert_str_eq(dt, dt2, "%s", name);
                uint64_t es = !strcmp(dt, "I64") ? 8 : 1;
                cr_assert(!memcmp(p, q, n * es), "%s", name);
                continue;
            }
            cr_assert_str_eq(dt2, o == 0 ? "F16" : "BF16", "%s", name);
            float rel = o == 0 ? 1.0f / 2048 : 1.0f / 256;
            for (uint64_t i = 0; i < n; i++) {
                float a = elem(dt, p, i), b = elem(dt2, q, i);
                cr_assert(fabsf(a - b) <= fabsf(a) * rel + (o == 0 ? 3e-8f : 0.0f),
                          "%s[%llu]: %g vs %g", name, (unsigned long long)i, a, b);
            }
        }
        st_free(&h);
    }
    st_free(&f32);
}

/* The values look like real weights: Gaussian rows with a few outlier columns. */
Test(testdata, value_statistics)
{
    stfile f = st_load("tiny-llama-f32/model.safetensors");
    const char *name;
    json_t *t;
    int n2d = 0, n3d = 0, n4d = 0, odd_row = 0, norms = 0, biases = 0, ints = 0, bools = 0;
    json_object_foreach(f.hdr, name, t) {
        if (!strcmp(name, "__metadata__")) continue;
        const char *dt;
        uint64_t n;
        json_t *shape;
        const uint8_t *p = st_tensor(&f, name, &dt, &n, &shape);
        size_t nd = json_array_size(shape);
        if (!strcmp(dt, "I64")) { ints++; continue; }
        if (!strcmp(dt, "BOOL")) { bools++; continue; }
        cr_assert_str_eq(dt, "F32");
        uint64_t row = nd ? (uint64_t)json_integer_value(json_array_get(shape, nd - 1)) : 1;
        if (nd == 3) n3d++;
        if (nd == 4) n4d++;
        if (nd >= 2 && row % 32 != 0) odd_row++;
        double sum = 0, sq = 0;
        for (uint64_t i = 0; i < n; i++) {
            float v = elem(dt, p, i);
            cr_assert(isfinite(v));
            sum += v;
            sq += (double)v * v;
        }
        double mean = sum / (double)n;
        if (strstr(name, "norm")) {
            norms++;
            cr_assert(fabs(mean - 1.0) < 0.05, "%s: mean %g", name, mean);
        } else if (strstr(name, ".bias")) {
            biases++;
            cr_assert(sqrt(sq / (double)n) < 0.02, "%s: rms too large", name);
        } else if (nd >= 2 && !strstr(name, "vision")) {
            n2d += nd == 2;
            /* per-column RMS: the median is sigma (0.02-0.03), 2-4 columns are 8x+ */
            uint64_t rows = n / row;
            double col[256], sorted[256];
            cr_assert(row <= 256);
            for (uint64_t c = 0; c < row; c++) {
                double s = 0;
                for (uint64_t r = 0; r < rows; r++) {
                    double v = elem(dt, p, r * row + c);
                    s += v * v;
                }
                col[c] = sorted[c] = sqrt(s / (double)rows);
            }
            for (uint64_t i = 1; i < row; i++) /* insertion sort */
                for (uint64_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
                    double tmp = sorted[j];
                    sorted[j] = sorted[j - 1];
                    sorted[j - 1] = tmp;
                }
            double med = sorted[row / 2];
            cr_assert(med > 0.015 && med < 0.04, "%s: median column rms %g", name, med);
            int outl = 0;
            for (uint64_t c = 0; c < row; c++) outl += col[c] > 6 * med;
            cr_assert(outl >= 2 && outl <= 4, "%s: %d outlier columns", name, outl);
        }
    }
    cr_assert_eq(n2d, 16);
    cr_assert_geq(n3d, 1);
    cr_assert_geq(n4d, 1);
    cr_assert_geq(odd_row, 1);
    cr_assert_eq(norms, 5);
    cr_assert_geq(biases, 8);
    cr_assert_eq(ints, 1);
    cr_assert_eq(bools, 1);
    st_free(&f);
}
