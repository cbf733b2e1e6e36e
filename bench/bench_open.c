/*
 * bench_open.c - how long opening a container and indexing its tensors
 * takes (mixq_open without MIXQ_OPEN_VERIFY, then mixq_close), and how long
 * looking up every tensor by name takes (mixq_find).
 *
 *   bench_open [--reps R] [--dir D] [--keep] [--verify]
 *
 * Writes, in a fresh temporary directory (under D, default $TMPDIR or /tmp),
 * containers of 1,000 and 10,000 tensors whose tensors are small (64x64) or
 * large (512x512) - the open time must not depend on the data size.  The
 * tensors cycle through int8 (group 128), int4 (group 64) and f16, named like
 * a transformer's ("model.layers.17.mlp.down_proj.weight"), and the header is
 * exactly what the converter writes (compact JSON, the same keys in the same
 * order, metadata included).  The data region is all zeros and left sparse
 * (ftruncate), so even the 10,000 x 512x512 container (about 3 GB) takes no
 * disk space; every checksum is right, so the files pass mixq verify
 * (--verify checks that once per container, reading all of it).
 *
 * Each figure is the best of R runs (default 50) after one untimed warm-up,
 * timed with clock_gettime(CLOCK_MONOTONIC).  "find all" is the time for one
 * mixq_find of every tensor name, in file order, on an open file.  The last
 * two columns parse the header text alone (from memory): json_fast (jf_parse +
 * jf_free, what mixq_open uses) and, for comparison, jansson (json_loadb with
 * JSON_REJECT_DUPLICATES + json_decref, what it used before), in MB/s of header.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#include "format/container.h"
#include "common/dtype.h"
#include "common/json_fast.h"
#include "mixq.h"
#include "kernels/qtype.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_open: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A growing text buffer. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) die("vsnprintf");
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("realloc");
    }
}

static const char *const proj[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                   "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

/* The xxh3 of `n` zero bytes (every tensor's bytes are zero). */
static uint64_t zero_hash(uint64_t n)
{
    void *z = calloc(1, n ? (size_t)n : 1);
    if (!z) die("calloc");
    uint64_t h = XXH3_64bits(z, (size_t)n);
    free(z);
    return h;
}

/*
 * Writes a container of n tensors of dim x dim to path; fills names[i]
 * (malloc'd).  Returns the header length.
 */
static size_t write_container(const char *path, size_t n, uint64_t dim, char **names)
{
    static const char *const types[] = {"int8", "int4", "f16"};
    static const unsigned groups[] = {128, 64, 0};
    qlayout lay[3];
    uint64_t hash[3];
    for (int k = 0; k < 3; k++) {
        const qtype_desc *qt = qtype_by_name(types[k]);
        if (!qt || !qtype_layout(qt, ST_BF16, dim, dim, groups[k], &lay[k])) {
            fprintf(stderr, "bench_open: layout of %s failed\n", types[k]);
            exit(1);
        }
        hash[k] = zero_hash(lay[k].total);
    }
    sbuf h = {0};
    sb_printf(&h, "{\"format\":\"mixq\",\"format_version\":1,\"alignment\":64,\"metadata\":{\"mixq_version\":\"%s\","
                  "\"source_metadata\":{\"format\":\"pt\"},\"source_files\":[{\"name\":\"model.safetensors\","
                  "\"size\":%" PRIu64 "}],\"options\":{\"type\":\"int8\",\"group_size\":0,\"quantize_1d\":false,"
                  "\"search\":true}},\"tensors\":[",
              mixq_version_string(), (uint64_t)n * dim * dim * 2);
    uint64_t off = MXC_PREAMBLE_LEN;
    for (size_t i = 0; i < n; i++) {
        int k = (int)(i % 3);
        const qtype_desc *qt = qtype_by_name(types[k]);
        char name[128];
        snprintf(name, sizeof name, "model.layers.%zu.%s.weight", i / 7, proj[i % 7]);
        names[i] = strdup(name);
        if (!names[i]) die("strdup");
        sb_printf(&h, "%s{\"name\":\"%s\",\"shape\":[%" PRIu64 ",%" PRIu64 "],\"source_dtype\":\"BF16\","
                      "\"quant_type\":\"%s\",\"group_size\":%u,\"symmetric\":%s,\"offset\":%" PRIu64
                      ",\"length\":%" PRIu64 ",\"sections\":{",
                  i ? "," : "", name, dim, dim, types[k], groups[k], qt->symmetric ? "true" : "false", off,
                  lay[k].total);
        int first = 1;
        for (int s = 0; s < MIXQ_SECTION_COUNT; s++) {
            if (!qtype_has_section(qt, (mixq_section_kind)s)) continue;
            sb_printf(&h, "%s\"%s\":{\"offset\":%" PRIu64 ",\"length\":%" PRIu64 "}", first ? "" : ",",
                      mixq_section_name((mixq_section_kind)s), lay[k].offset[s], lay[k].length[s]);
            first = 0;
        }
        sb_printf(&h, "},\"xxh3\":\"%016" PRIx64 "\"}", hash[k]);
        off += (lay[k].total + MX_ALIGN - 1) / MX_ALIGN * MX_ALIGN;
    }
    sb_printf(&h, "]}");

    uint8_t pre[MXC_PREAMBLE_LEN] = {0};
    memcpy(pre, MXC_MAGIC, MXC_MAGIC_LEN);
    mxc_put_u16(pre + MXC_OFF_MAJOR, MXC_FORMAT_MAJOR);
    mxc_put_u16(pre + MXC_OFF_MINOR, MXC_FORMAT_MINOR);
    mxc_put_u64(pre + MXC_OFF_DATA_OFFSET, MXC_PREAMBLE_LEN);
    mxc_put_u64(pre + MXC_OFF_DATA_LENGTH, off - MXC_PREAMBLE_LEN);
    mxc_put_u64(pre + MXC_OFF_HEADER_OFFSET, off);
    mxc_put_u64(pre + MXC_OFF_HEADER_LENGTH, h.len);
    mxc_put_u64(pre + MXC_OFF_HEADER_XXH3, XXH3_64bits(h.p, h.len));
    mxc_put_u64(pre + MXC_OFF_PREAMBLE_XXH3, XXH3_64bits(pre, MXC_OFF_PREAMBLE_XXH3));

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(path);
    if (ftruncate(fd, (off_t)off) != 0) die("ftruncate"); /* the zero data region stays sparse */
    if (pwrite(fd, pre, sizeof pre, 0) != (ssize_t)sizeof pre) die("pwrite");
    for (size_t done = 0; done < h.len;) {
        ssize_t w = pwrite(fd, h.p + done, h.len - done, (off_t)(off + done));
        if (w <= 0) die("pwrite");
        done += (size_t)w;
    }
    if (close(fd) != 0) die("close");
    size_t hl = h.len;
    free(h.p);
    return hl;
}

static void open_or_die(const char *path, unsigned flags, mixq_file **out)
{
    mixq_error err;
    *out = mixq_open(path, flags, &err);
    if (!*out) {
        fprintf(stderr, "bench_open: %s\n", err.message);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int reps = 50, keep = 0, verify = 0;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) base = argv[++i];
        else if (strcmp(argv[i], "--keep") == 0) keep = 1;
        else if (strcmp(argv[i], "--verify") == 0) verify = 1;
        else {
            fprintf(stderr, "usage: bench_open [--reps R] [--dir D] [--keep] [--verify]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bench_open.XXXXXX", base);
    if (!mkdtemp(dir)) die("mkdtemp");

    static const struct { size_t n; uint64_t dim; } cases[] = {
        {1000, 64}, {1000, 512}, {10000, 64}, {10000, 512},
    };
    printf("best of %d runs; open = mixq_open (no verify) + mixq_close; find = mixq_find of every name\n", reps);
    printf("%8s %9s %10s %11s %11s %11s %9s %10s %10s\n", "tensors", "shape", "file MB", "header KB", "open ms",
           "find all ms", "ns/find", "jf MB/s", "jansson");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = cases[c].n;
        uint64_t dim = cases[c].dim;
        char path[4200];
        snprintf(path, sizeof path, "%s/t%zu_%" PRIu64 ".mxq", dir, n, dim);
        char **names = calloc(n, sizeof *names);
        if (!names) die("calloc");
        size_t hl = write_container(path, n, dim, names);
        mixq_file *f;
        if (verify) {
            open_or_die(path, MIXQ_OPEN_VERIFY, &f);
            mixq_close(f);
        }
        double best_open = 1e30, best_find = 1e30;
        uint64_t size = 0;
        for (int r = 0; r <= reps; r++) {
            double t0 = now();
            open_or_die(path, 0, &f);
            mixq_close(f);
            double t = now() - t0;
            if (r > 0 && t < best_open) best_open = t; /* run 0 is the warm-up */
        }
        open_or_die(path, 0, &f);
        size = mixq_file_size(f);
        if (mixq_tensor_count(f) != n) {
            fprintf(stderr, "bench_open: %zu tensors, expected %zu\n", mixq_tensor_count(f), n);
            return 1;
        }
        for (int r = 0; r <= reps; r++) {
            size_t found = 0;
            double t0 = now();
            for (size_t i = 0; i < n; i++) found += mixq_find(f, names[i]) != NULL;
            double t = now() - t0;
            if (found != n) {
                fprintf(stderr, "bench_open: found %zu of %zu names\n", found, n);
                return 1;
            }
            if (r > 0 && t < best_find) best_find = t;
        }
        size_t hlen;
        const char *htext = mixq_header_json(f, &hlen);
        char *hcopy = malloc(hlen);
        if (!hcopy) die("malloc");
        memcpy(hcopy, htext, hlen);
        mixq_close(f);
        double best_jf = 1e30, best_jansson = 1e30;
        for (int r = 0; r <= reps; r++) {
            jf_error je;
            double t0 = now();
            jf_doc *d = jf_parse(hcopy, hlen, &je);
            if (!d) {
                fprintf(stderr, "bench_open: jf_parse: %s\n", je.reason);
                return 1;
            }
            jf_free(d);
            double t = now() - t0;
            if (r > 0 && t < best_jf) best_jf = t;
        }
        for (int r = 0; r <= reps; r++) { /* separately: jansson's many small blocks change the heap */
            double t0, t;
            json_error_t jerr;
            t0 = now();
            json_t *root = json_loadb(hcopy, hlen, JSON_REJECT_DUPLICATES, &jerr);
            if (!root) {
                fprintf(stderr, "bench_open: json_loadb: %s\n", jerr.text);
                return 1;
            }
            json_decref(root);
            t = now() - t0;
            if (r > 0 && t < best_jansson) best_jansson = t;
        }
        free(hcopy);
        char shape[32];
        snprintf(shape, sizeof shape, "%" PRIu64 "x%" PRIu64, dim, dim);
        printf("%8zu %9s %10.1f %11.1f %11.3f %11.3f %9.1f %10.0f %10.0f\n", n, shape, (double)size / 1e6,
               (double)hl / 1024.0, best_open * 1e3, best_find * 1e3, best_find * 1e9 / (double)n,
               (double)hl / best_jf / 1e6, (double)hl / best_jansson / 1e6);
        fflush(stdout);
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        if (!keep) unlink(path);
    }
    if (!keep) rmdir(dir);
    else printf("containers kept in %s\n", dir);
    return 0;
}
