/*
 * bench_convert.c - whole-process conversion benchmark (docs/PERFORMANCE.md,
 * "Conversion").  Built by meson, never run by `meson test`.
 *
 *   bench_convert [--mixq PATH] [--generate-gb X] [--model DIR]... [--models-dir DIR | --no-shared]
 *                 [--configs LIST] [--threads-list LIST] [--repeat R] [--tmpdir DIR]
 *                 [--big-gib N] [--big-configs LIST] [--big-threads LIST] [--shard-gib N]
 *
 * For each checkpoint (by default: a generated LLaMA-shaped BF16 checkpoint
 * of about 0.75 GB, then every model directory under ../shared/models next
 * to the source tree, skipped if absent) it prints:
 *
 *  - the floor: the time to read every input byte once with read() into a
 *    reused buffer, page cache warm (one untimed pass first);
 *  - for each configuration (int8, int8 --rtn, int4 --rtn, int4 with searched
 *    scales, fp8_e4m3, the budget strategy at 4.5 bits per weight, with
 *    errors measured on the default sample of rows and on every row) and each
 *    thread count: the wall time of the whole `mixq convert` process (fork,
 *    exec, wait4; CLOCK_MONOTONIC; the fsync and rename of the output
 *    included), source GB/s (1 GB = 1e9 bytes of source tensor data), the
 *    ratio to the floor, the child's CPU time, output size and bits per
 *    weight, and its peak RSS: ru_maxrss from wait4, plus the peaks of
 *    RssAnon and RssFile sampled from /proc/PID/status every 5 ms, against
 *    the bound "largest source tensor + 128 MiB";
 *  - container open+index time (mixq_open without verification, then
 *    mixq_find of every tensor) and, per stored type, single-thread
 *    dequantize throughput (mixq_dequantize_f32 over every tensor in blocks
 *    of at most 4 Mi weights, pages warm: mixq_verify runs first, untimed).
 *
 * --big-gib N generates a sharded checkpoint of at least N GiB with
 * LLaMA-7B shapes (hidden 4096, ffn 11008, vocab 32000, as many layers as
 * needed), converts it with --big-configs (default: budget at 4.5 bpw and
 * int4) and reports peak RSS against the bound.  Everything generated or
 * written lives in one temporary directory (under --tmpdir, default the
 * build directory) that is removed at the end, on error and on
 * SIGINT/SIGTERM/SIGHUP.
 *
 * --pin-one pins the 1-thread runs to CPU 0 (sched_setaffinity in the
 * child), e.g. to check that a run given --threads 1 really uses one core.
 *
 * The generator is deterministic (integer PRNG, exact float arithmetic, bf16
 * by bit rounding): a value depends only on the tensor name and its index.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mixq.h"
#include "reader/st_reader.h"

#ifndef BENCH_SOURCE_ROOT
#define BENCH_SOURCE_ROOT "."
#endif
#ifndef BENCH_BUILD_ROOT
#define BENCH_BUILD_ROOT "."
#endif

#define MIB (1024.0 * 1024.0)
#define GB 1e9

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, ...);

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) die("out of memory");
    return p;
}

static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* ------------------------------------------------------------------ */
/* Cleanup: one temporary directory, removed on every exit path         */

static char *g_tmpdir;                 /* NULL until created */
static volatile sig_atomic_t g_signal; /* set by the handler */
static pid_t g_child = -1;             /* the running mixq, if any */
static void spawner_stop(void);

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : 0; /* best effort: keep going */
}

static void cleanup(void)
{
    if (g_child > 0) { /* mixq removes its temporary output; the spawner reaps it */
        kill(g_child, SIGTERM);
        g_child = -1;
    }
    spawner_stop();
    if (g_tmpdir) {
        nftw(g_tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(g_tmpdir);
        g_tmpdir = NULL;
    }
}

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("bench_convert: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cleanup();
    exit(1);
}

static void on_signal(int sig)
{
    g_signal = sig;
}

static void check_signal(void)
{
    if (!g_signal) return;
    fprintf(stderr, "bench_convert: interrupted (signal %d); removing %s\n", (int)g_signal,
            g_tmpdir ? g_tmpdir : "nothing");
    cleanup();
    exit(128 + (int)g_signal);
}

/* ------------------------------------------------------------------ */
/* Deterministic LLaMA-shaped BF16 checkpoint                          */

typedef struct gen_dims {
    unsigned hidden, ffn, kv, vocab, layers;
} gen_dims;

typedef struct gen_tensor {
    char name[96];
    uint64_t rows, cols; /* cols 0: a 1-D tensor of rows elements */
    int kind;            /* 0 matrix, 1 norm */
    uint64_t nbytes;
    unsigned shard;
    uint64_t offset;     /* within the shard's data */
} gen_tensor;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) h = (h ^ (uint8_t)*s) * UINT64_C(0x100000001b3);
    return h;
}

/* Round-to-nearest-even f32 -> bf16 by bits (values here are finite). */
static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static size_t gen_tensor_list(const gen_dims *d, gen_tensor **out)
{
    size_t cap = 4 + (size_t)d->layers * 9, n = 0;
    gen_tensor *t = xmalloc(cap * sizeof *t);
    memset(t, 0, cap * sizeof *t);
#define ADD(R, C, K, ...)                                                       \
    do {                                                                        \
        snprintf(t[n].name, sizeof t[n].name, __VA_ARGS__);                    \
        t[n].rows = (R);                                                        \
        t[n].cols = (C);                                                        \
        t[n].kind = (K);                                                        \
        t[n].nbytes = (uint64_t)(R) * ((C) ? (uint64_t)(C) : 1u) * 2u;          \
        n++;                                                                    \
    } while (0)
    ADD(d->vocab, d->hidden, 0, "model.embed_tokens.weight");
    for (unsigned l = 0; l < d->layers; l++) {
        ADD(d->hidden, 0, 1, "model.layers.%u.input_layernorm.weight", l);
        ADD(d->hidden, d->hidden, 0, "model.layers.%u.self_attn.q_proj.weight", l);
        ADD(d->kv, d->hidden, 0, "model.layers.%u.self_attn.k_proj.weight", l);
        ADD(d->kv, d->hidden, 0, "model.layers.%u.self_attn.v_proj.weight", l);
        ADD(d->hidden, d->hidden, 0, "model.layers.%u.self_attn.o_proj.weight", l);
        ADD(d->hidden, 0, 1, "model.layers.%u.post_attention_layernorm.weight", l);
        ADD(d->ffn, d->hidden, 0, "model.layers.%u.mlp.gate_proj.weight", l);
        ADD(d->ffn, d->hidden, 0, "model.layers.%u.mlp.up_proj.weight", l);
        ADD(d->hidden, d->ffn, 0, "model.layers.%u.mlp.down_proj.weight", l);
    }
    ADD(d->hidden, 0, 1, "model.norm.weight");
    ADD(d->vocab, d->hidden, 0, "lm_head.weight");
#undef ADD
    *out = t;
    return n;
}

static uint64_t gen_total_bytes(const gen_dims *d)
{
    gen_tensor *t;
    size_t n = gen_tensor_list(d, &t);
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += t[i].nbytes;
    free(t);
    return s;
}

/*
 * Fills dst with elements [first, first + count) of tensor t.  Matrices:
 * an Irwin-Hall (sum of four 15-bit uniforms) bell curve of standard
 * deviation about 1/sqrt(cols), a per-row magnitude in [0.5, 1.5) and
 * one outlier (x6) in about 1024 weights; norms: 1 + small noise.
 */
static void gen_values(const gen_tensor *t, uint64_t seed, uint64_t first, uint64_t count, uint16_t *dst)
{
    uint64_t cols = t->cols ? t->cols : t->rows;
    /* 4 * 2^15 uniform sum: variance 4 * 2^30 / 12 ~ 2^28.4, sd ~ 18918 */
    float base = t->kind == 1 ? 1.0f / 262144.0f : 1.0f / (18918.0f * (float)(cols >= 4096 ? 64 : cols >= 1024 ? 32 : 16));
    uint64_t row = UINT64_MAX;
    float rowf = 1.0f;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t e = first + k, r = t->cols ? e / cols : 0;
        if (r != row) {
            row = r;
            uint64_t rs = seed ^ (r * UINT64_C(0xd6e8feb86659fd93));
            rowf = t->kind == 1 ? 1.0f : 0.5f + (float)(splitmix64(&rs) >> 40) * (1.0f / 16777216.0f);
        }
        uint64_t s = seed + e * UINT64_C(0x9e3779b97f4a7c15);
        uint64_t z = splitmix64(&s);
        int32_t v = (int32_t)(z & 0x7fff) + (int32_t)((z >> 15) & 0x7fff) + (int32_t)((z >> 30) & 0x7fff) +
                    (int32_t)((z >> 45) & 0x7fff) - 2 * 32767;
        float x = (float)v * base * rowf;
        if (t->kind == 1) x += 1.0f;
        else if ((z >> 60) == 0 && (e & 63) == 0) x *= 6.0f;
        dst[k] = f32_to_bf16(x);
    }
}

static void write_all(int fd, const void *buf, size_t n, const char *path)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                check_signal();
                continue;
            }
            die("%s: write: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
}

static void write_text_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("%s: %s", path, strerror(errno));
    write_all(fd, text, strlen(text), path);
    close(fd);
}

/*
 * Writes the checkpoint into dir: one model.safetensors, or (shard_bytes > 0)
 * shards of at most shard_bytes of tensor data each plus
 * model.safetensors.index.json.  Returns the bytes of tensor data.
 */
static uint64_t generate(const char *dir, const gen_dims *d, uint64_t shard_bytes)
{
    gen_tensor *t;
    size_t n = gen_tensor_list(d, &t);
    unsigned nshards = 1;
    uint64_t in_shard = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (shard_bytes && in_shard > 0 && in_shard + t[i].nbytes > shard_bytes) {
            nshards++;
            in_shard = 0;
        }
        t[i].shard = nshards - 1;
        t[i].offset = in_shard;
        in_shard += t[i].nbytes;
        total += t[i].nbytes;
    }
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":%u,"
             "\"intermediate_size\":%u,\"num_hidden_layers\":%u,\"num_attention_heads\":%u,"
             "\"num_key_value_heads\":%u,\"vocab_size\":%u,\"torch_dtype\":\"bfloat16\","
             "\"tie_word_embeddings\":false}\n",
             d->hidden, d->ffn, d->layers, d->hidden / 64, d->kv / 64, d->vocab);
    char *p = xasprintf("%s/config.json", dir);
    write_text_file(p, cfg);
    free(p);

    size_t chunk = 1u << 21; /* elements per write: 4 MiB */
    uint16_t *buf = xmalloc(chunk * sizeof *buf);
    size_t idx_cap = 256 + n * 160, idx_len = 0;
    char *idx = xmalloc(idx_cap);
    idx_len += (size_t)snprintf(idx + idx_len, idx_cap - idx_len,
                                "{\"metadata\":{\"total_size\":%" PRIu64 "},\"weight_map\":{", total);
    for (unsigned s = 0; s < nshards; s++) {
        char fname[64];
        if (shard_bytes) snprintf(fname, sizeof fname, "model-%05u-of-%05u.safetensors", s + 1, nshards);
        else snprintf(fname, sizeof fname, "model.safetensors");
        /* header: keys in data order, then spaces to a multiple of 8 */
        size_t hcap = 128 + n * 192, hl = 0;
        char *h = xmalloc(hcap);
        hl += (size_t)snprintf(h + hl, hcap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
        for (size_t i = 0; i < n; i++) {
            if (t[i].shard != s) continue;
            if (t[i].cols)
                hl += (size_t)snprintf(h + hl, hcap - hl,
                                       ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%" PRIu64 ",%" PRIu64
                                       "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
                                       t[i].name, t[i].rows, t[i].cols, t[i].offset, t[i].offset + t[i].nbytes);
            else
                hl += (size_t)snprintf(h + hl, hcap - hl,
                                       ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%" PRIu64 "],\"data_offsets\":[%" PRIu64
                                       ",%" PRIu64 "]}",
                                       t[i].name, t[i].rows, t[i].offset, t[i].offset + t[i].nbytes);
            if (shard_bytes)
                idx_len += (size_t)snprintf(idx + idx_len, idx_cap - idx_len, "%s\"%s\":\"%s\"",
                                            idx[idx_len - 1] == '{' ? "" : ",", t[i].name, fname);
        }
        h[hl++] = '}';
        while ((8 + hl) % 8) h[hl++] = ' ';
        char *path = xasprintf("%s/%s", dir, fname);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) die("%s: %s", path, strerror(errno));
        uint8_t len8[8];
        for (int b = 0; b < 8; b++) len8[b] = (uint8_t)((uint64_t)hl >> (8 * b));
        write_all(fd, len8, 8, path);
        write_all(fd, h, hl, path);
        free(h);
        for (size_t i = 0; i < n; i++) {
            if (t[i].shard != s) continue;
            uint64_t seed = fnv1a64(t[i].name), ne = t[i].nbytes / 2;
            for (uint64_t e = 0; e < ne; e += chunk) {
                check_signal();
                size_t c = ne - e < chunk ? (size_t)(ne - e) : chunk;
                gen_values(&t[i], seed, e, c, buf);
                /* little-endian bytes */
                uint8_t *bp = (uint8_t *)buf;
                for (size_t k = 0; k < c; k++) {
                    uint16_t v = buf[k];
                    bp[2 * k] = (uint8_t)v;
                    bp[2 * k + 1] = (uint8_t)(v >> 8);
                }
                write_all(fd, buf, c * 2, path);
            }
        }
        if (close(fd) != 0) die("%s: close: %s", path, strerror(errno));
        free(path);
    }
    if (shard_bytes) {
        idx_len += (size_t)snprintf(idx + idx_len, idx_cap - idx_len, "}}\n");
        char *path = xasprintf("%s/model.safetensors.index.json", dir);
        write_text_file(path, idx);
        free(path);
    }
    free(idx);
    free(buf);
    free(t);
    return total;
}

/* ------------------------------------------------------------------ */
/* The input checkpoint                                                */

typedef struct source {
    char *label, *path;
    char **files;           /* every file read by the floor (shards and the index) */
    size_t nfiles;
    uint64_t tensor_bytes, file_bytes, weights, max_tensor;
    char *max_name;
    size_t ntensors;
} source;

static bool is_model_dir(const char *dir)
{
    char *a = xasprintf("%s/model.safetensors", dir), *b = xasprintf("%s/model.safetensors.index.json", dir);
    bool ok = access(a, R_OK) == 0 || access(b, R_OK) == 0;
    free(a);
    free(b);
    return ok;
}

static void source_load(source *s, const char *label, const char *path)
{
    memset(s, 0, sizeof *s);
    s->label = xstrdup(label);
    s->path = xstrdup(path);
    st_model *m = NULL;
    mixq_error err;
    if (st_open(path, &m, &err) != MIXQ_OK) die("%s: %s", path, err.message);
    s->nfiles = m->nfiles + (m->index_path ? 1 : 0);
    s->files = xmalloc(s->nfiles * sizeof *s->files);
    for (size_t i = 0; i < m->nfiles; i++) {
        s->files[i] = xstrdup(m->files[i].path);
        s->file_bytes += m->files[i].size;
    }
    if (m->index_path) {
        s->files[m->nfiles] = xstrdup(m->index_path);
        struct stat st;
        if (stat(m->index_path, &st) == 0) s->file_bytes += (uint64_t)st.st_size;
    }
    s->ntensors = m->ntensors;
    const st_tensor *big = NULL;
    for (size_t i = 0; i < m->ntensors; i++) {
        const st_tensor *t = &m->tensors[i];
        s->tensor_bytes += t->nbytes;
        s->weights += t->n_elements;
        if (!big || t->nbytes > big->nbytes) big = t;
    }
    s->max_tensor = big ? big->nbytes : 0;
    s->max_name = xstrdup(big ? big->name : "-");
    st_close(m);
}

static void source_free(source *s)
{
    for (size_t i = 0; i < s->nfiles; i++) free(s->files[i]);
    free(s->files);
    free(s->label);
    free(s->path);
    free(s->max_name);
}

/* Reads every input byte once with read() into a reused buffer; returns seconds. */
static double read_floor_once(const source *s)
{
    static char *buf;
    const size_t bs = 4u << 20;
    if (!buf) buf = xmalloc(bs);
    double t0 = now();
    for (size_t i = 0; i < s->nfiles; i++) {
        int fd = open(s->files[i], O_RDONLY);
        if (fd < 0) die("%s: %s", s->files[i], strerror(errno));
        for (;;) {
            ssize_t r = read(fd, buf, bs);
            if (r < 0 && errno == EINTR) {
                check_signal();
                continue;
            }
            if (r < 0) die("%s: read: %s", s->files[i], strerror(errno));
            if (r == 0) break;
        }
        close(fd);
    }
    return now() - t0;
}

/* ------------------------------------------------------------------ */
/* Running mixq                                                        */

typedef struct run_result {
    int ok;                 /* exit status 0 */
    int status;             /* raw wait status */
    double wall, cpu;       /* seconds */
    long maxrss_kib;        /* ru_maxrss */
    long peak_anon_kib, peak_file_kib, peak_rss_kib; /* sampled from /proc */
} run_result;

typedef struct sampler {
    pid_t pid;
    volatile int stop;
    long anon, file, rss;
} sampler;

static long status_field(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void *sample_loop(void *arg)
{
    sampler *s = arg;
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    while (!s->stop) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            ssize_t n = read(fd, text, sizeof text - 1);
            close(fd);
            if (n > 0) {
                text[n] = 0;
                long a = status_field(text, "RssAnon:"), f = status_field(text, "RssFile:"),
                     r = status_field(text, "VmRSS:");
                if (a > s->anon) s->anon = a;
                if (f > s->file) s->file = f;
                if (r > s->rss) s->rss = r;
            }
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/*
 * The spawner: a helper process forked first thing in main(), while this
 * process is still tiny, that forks and execs every mixq run.  Linux copies
 * the parent's peak RSS into a forked child and keeps it across exec in
 * ru_maxrss, so forking mixq from this process (which maps containers and
 * holds buffers) would report this process's peak instead of mixq's when
 * mixq's is smaller.  Requests and replies go over two pipes.
 */
static int g_req_fd = -1, g_rep_fd = -1;
static pid_t g_spawner = -1;

typedef struct spawn_reply {
    int status;
    double wall;
    struct rusage ru;
} spawn_reply;

static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void spawner_loop(int req, int rep)
{
    signal(SIGINT, SIG_IGN); /* the main process decides; mixq installs its own handlers */
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    for (;;) {
        int32_t hdr[2]; /* pin, bytes of strings */
        if (read_full(req, hdr, sizeof hdr) != 0) _exit(0);
        char *buf = malloc((size_t)hdr[1] + 1);
        if (!buf || read_full(req, buf, (size_t)hdr[1]) != 0) _exit(1);
        char *argv[64];
        int argc = 0;
        const char *log = buf;
        for (char *p = buf + strlen(buf) + 1; p < buf + hdr[1] && argc < 63; p += strlen(p) + 1) argv[argc++] = p;
        argv[argc] = NULL;
        double t0 = now();
        pid_t pid = fork();
        if (pid == 0) {
            if (hdr[0] >= 0) {
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(hdr[0], &set);
                if (sched_setaffinity(0, sizeof set, &set) != 0) _exit(126);
            }
            int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGHUP, SIG_DFL);
            execv(argv[0], argv);
            _exit(127);
        }
        int32_t p32 = (int32_t)pid;
        if (write_full(rep, &p32, sizeof p32) != 0) _exit(1);
        spawn_reply r;
        memset(&r, 0, sizeof r);
        if (pid > 0)
            while (wait4(pid, &r.status, 0, &r.ru) < 0 && errno == EINTR) {
            }
        r.wall = now() - t0;
        if (pid < 0) r.status = 127 << 8;
        if (write_full(rep, &r, sizeof r) != 0) _exit(1);
        free(buf);
    }
}

static void spawner_start(void)
{
    int a[2], b[2];
    if (pipe(a) != 0 || pipe(b) != 0) {
        perror("bench_convert: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench_convert: fork");
        exit(1);
    }
    if (pid == 0) {
        close(a[1]);
        close(b[0]);
        spawner_loop(a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    g_req_fd = a[1];
    g_rep_fd = b[0];
    g_spawner = pid;
}

static void spawner_stop(void)
{
    if (g_spawner <= 0) return;
    close(g_req_fd);
    close(g_rep_fd);
    waitpid(g_spawner, NULL, 0);
    g_spawner = -1;
}

/* Runs argv (argv[0] is the program path) through the spawner; pin >= 0 pins the child to that CPU. */
static void run_child(char **argv, int pin, const char *log_path, run_result *r)
{
    memset(r, 0, sizeof *r);
    size_t len = strlen(log_path) + 1;
    for (int i = 0; argv[i]; i++) len += strlen(argv[i]) + 1;
    char *req = xmalloc(2 * sizeof(int32_t) + len), *p = req + 2 * sizeof(int32_t);
    int32_t hdr[2] = {pin, (int32_t)len};
    memcpy(req, hdr, sizeof hdr);
    memcpy(p, log_path, strlen(log_path) + 1);
    p += strlen(log_path) + 1;
    for (int i = 0; argv[i]; i++) {
        memcpy(p, argv[i], strlen(argv[i]) + 1);
        p += strlen(argv[i]) + 1;
    }
    if (write_full(g_req_fd, req, 2 * sizeof(int32_t) + len) != 0) die("the spawner is gone");
    free(req);
    int32_t pid;
    if (read_full(g_rep_fd, &pid, sizeof pid) != 0) die("the spawner is gone");
    if (pid > 0) g_child = pid;
    sampler smp = {.pid = pid};
    pthread_t th;
    int have_thread = pid > 0 && pthread_create(&th, NULL, sample_loop, &smp) == 0;
    spawn_reply rep;
    /* read the reply; a signal meanwhile is passed on to mixq (it removes its temporary and exits) */
    char *q = (char *)&rep;
    size_t left = sizeof rep;
    int killed = 0;
    while (left) {
        ssize_t n = read(g_rep_fd, q, left);
        if (n < 0 && errno == EINTR) {
            if (g_signal && !killed && pid > 0) {
                kill(pid, SIGTERM);
                killed = 1;
            }
            continue;
        }
        if (n <= 0) die("the spawner is gone");
        q += n;
        left -= (size_t)n;
    }
    g_child = -1;
    smp.stop = 1;
    if (have_thread) pthread_join(th, NULL);
    r->wall = rep.wall;
    r->status = rep.status;
    r->ok = WIFEXITED(rep.status) && WEXITSTATUS(rep.status) == 0;
    r->cpu = (double)rep.ru.ru_utime.tv_sec + (double)rep.ru.ru_utime.tv_usec * 1e-6 +
             (double)rep.ru.ru_stime.tv_sec + (double)rep.ru.ru_stime.tv_usec * 1e-6;
    r->maxrss_kib = rep.ru.ru_maxrss;
    r->peak_anon_kib = smp.anon;
    r->peak_file_kib = smp.file;
    r->peak_rss_kib = smp.rss;
    check_signal();
}

/* ------------------------------------------------------------------ */
/* Reading the container back                                          */

typedef struct type_acc {
    char name[24];
    uint64_t weights;
    double seconds;
} type_acc;

typedef struct container_stats {
    double open_ms;
    uint64_t stored, weights;
    int verified;
} container_stats;

static void container_read(const char *path, type_acc *acc, size_t *nacc, size_t acc_cap, container_stats *cs)
{
    mixq_error err;
    memset(cs, 0, sizeof *cs);
    cs->open_ms = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        mixq_file *f = mixq_open(path, 0, &err);
        if (!f) die("%s: %s", path, err.message);
        size_t n = mixq_tensor_count(f);
        for (size_t i = 0; i < n; i++) {
            mixq_tensor_info info;
            mixq_tensor_get_info(mixq_tensor_at(f, i), &info);
            if (!mixq_find(f, info.name)) die("%s: mixq_find(%s) failed", path, info.name);
        }
        double ms = (now() - t0) * 1e3;
        if (ms < cs->open_ms) cs->open_ms = ms;
        mixq_close(f);
    }
    mixq_file *f = mixq_open(path, 0, &err);
    if (!f) die("%s: %s", path, err.message);
    cs->verified = mixq_verify(f, &err) == MIXQ_OK; /* also brings every page in: dequantize runs warm */
    if (!cs->verified) fprintf(stderr, "bench_convert: %s: verify failed: %s\n", path, err.message);
    const uint64_t block = 4u << 20;
    float *out = xmalloc(block * sizeof *out);
    for (size_t i = 0; i < mixq_tensor_count(f); i++) {
        check_signal();
        const mixq_tensor *t = mixq_tensor_at(f, i);
        mixq_tensor_info info;
        mixq_tensor_get_info(t, &info);
        cs->stored += info.nbytes;
        cs->weights += info.n_elements;
        if (info.n_elements == 0) continue;
        uint64_t rows_per = info.row_length >= block ? 1 : block / info.row_length;
        if (info.row_length > block) continue; /* rows longer than the buffer: not in these models */
        double t0 = now();
        for (uint64_t r = 0; r < info.rows; r += rows_per) {
            uint64_t r1 = r + rows_per < info.rows ? r + rows_per : info.rows;
            if (mixq_dequantize_f32(f, t, r, r1, out, &err) != MIXQ_OK) die("%s: %s", path, err.message);
        }
        double dt = now() - t0;
        size_t k = 0;
        while (k < *nacc && strcmp(acc[k].name, info.quant_type)) k++;
        if (k == *nacc) {
            if (*nacc == acc_cap) continue;
            snprintf(acc[k].name, sizeof acc[k].name, "%s", info.quant_type);
            acc[k].weights = 0;
            acc[k].seconds = 0;
            (*nacc)++;
        }
        acc[k].weights += info.n_elements;
        acc[k].seconds += dt;
    }
    free(out);
    mixq_close(f);
}

/* ------------------------------------------------------------------ */
/* Configurations                                                      */

typedef struct config {
    const char *key, *label;
    const char *args[8];
} config;

static const config all_configs[] = {
    {"int8", "int8 (searched scales)", {"--type", "int8", NULL}},
    {"int8-rtn", "int8 --rtn", {"--type", "int8", "--rtn", NULL}},
    {"int4-rtn", "int4 --rtn", {"--type", "int4", "--rtn", NULL}},
    {"int4", "int4 (searched scales)", {"--type", "int4", NULL}},
    {"fp8", "fp8_e4m3", {"--type", "fp8_e4m3", NULL}},
    {"budget", "budget 4.5 bpw", {"--strategy", "budget", "--target-bpw", "4.5", NULL}},
    {"budget-all", "budget 4.5 bpw, every row measured",
     {"--strategy", "budget", "--target-bpw", "4.5", "--measure-sample", "all", NULL}},
};
#define NCONFIGS (sizeof all_configs / sizeof all_configs[0])

static size_t parse_configs(const char *list, const config **out)
{
    size_t n = 0;
    char *copy = xstrdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t k = 0;
        while (k < NCONFIGS && strcmp(all_configs[k].key, tok)) k++;
        if (k == NCONFIGS) die("unknown configuration '%s' (int8, int8-rtn, int4-rtn, int4, fp8, budget, budget-all)", tok);
        if (n < 16) out[n++] = &all_configs[k];
    }
    free(copy);
    return n;
}

static size_t parse_uints(const char *list, unsigned *out, size_t cap)
{
    size_t n = 0;
    char *copy = xstrdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && n < cap; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        unsigned long v = strtoul(tok, &end, 10);
        if (*end || v == 0 || v > 1024) die("bad thread count '%s'", tok);
        out[n++] = (unsigned)v;
    }
    free(copy);
    return n;
}

/* ------------------------------------------------------------------ */
/* One checkpoint                                                      */

typedef struct bench_opts {
    const char *mixq;
    unsigned threads[8];
    size_t nthreads;
    int repeat;
    int pin_one;
} bench_opts;

static double rss_mib(long kib)
{
    return (double)kib / 1024.0;
}

/* Writes n bytes to a new file beside the output with write(), fsyncs it and removes it; returns seconds. */
static double write_floor(uint64_t n)
{
    static char *buf;
    const size_t bs = 4u << 20;
    if (!buf) {
        buf = xmalloc(bs);
        for (size_t i = 0; i < bs; i++) buf[i] = (char)(i * 131u + 7u);
    }
    char *path = xasprintf("%s/write-floor.bin", g_tmpdir);
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("%s: %s", path, strerror(errno));
    for (uint64_t done = 0; done < n;) {
        size_t c = n - done < bs ? (size_t)(n - done) : bs;
        write_all(fd, buf, c, path);
        done += c;
    }
    if (fsync(fd) != 0) die("%s: fsync: %s", path, strerror(errno));
    close(fd);
    double t = now() - t0;
    unlink(path);
    free(path);
    return t;
}

static void bench_source(const source *s, const config **cfgs, size_t ncfg, const bench_opts *bo)
{
    double bound_mib = (double)s->max_tensor / MIB + 128.0;
    printf("\n### %s\n\n", s->label);
    printf("%s: %zu tensors in %zu file(s), %.4f GB of tensor data (%" PRIu64 " weights); largest tensor %s, "
           "%.1f MiB; RSS bound (largest tensor + 128 MiB) %.1f MiB\n\n",
           s->path, s->ntensors, s->nfiles, (double)s->tensor_bytes / GB, s->weights, s->max_name,
           (double)s->max_tensor / MIB, bound_mib);
    read_floor_once(s); /* warm the page cache */
    double floor_t = 1e30;
    for (int r = 0; r < (bo->repeat > 3 ? bo->repeat : 3); r++) {
        double t = read_floor_once(s);
        if (t < floor_t) floor_t = t;
    }
    printf("floor (read every input byte once, warm cache): %.3f s, %.2f GB/s\n\n", floor_t,
           (double)s->file_bytes / GB / floor_t);
    fflush(stdout);
    printf("| configuration | threads | wall s | GB/s | × floor | speed-up | CPU s | CPU %% | output MB | write+fsync s | "
           "bits/weight | peak RSS MiB | anon / file MiB | within bound | open+index ms |\n");
    printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|\n");
    fflush(stdout);

    type_acc acc[32];
    size_t nacc = 0;
    char *out = xasprintf("%s/out.mxq", g_tmpdir), *log = xasprintf("%s/mixq.log", g_tmpdir);
    for (size_t c = 0; c < ncfg; c++) {
        double t_first = 0, wfloor = 0;
        for (size_t ti = 0; ti < bo->nthreads; ti++) {
            unsigned th = bo->threads[ti];
            char thr[16];
            snprintf(thr, sizeof thr, "%u", th);
            char *argv[24];
            int a = 0;
            argv[a++] = (char *)bo->mixq;
            argv[a++] = "convert";
            argv[a++] = s->path;
            argv[a++] = "-o";
            argv[a++] = out;
            for (int k = 0; cfgs[c]->args[k]; k++) argv[a++] = (char *)cfgs[c]->args[k];
            argv[a++] = "--threads";
            argv[a++] = thr;
            argv[a++] = "--force";
            argv[a++] = "--quiet";
            argv[a] = NULL;
            run_result best = {0};
            best.wall = 1e30;
            long max_rss = 0, max_anon = 0, max_file = 0;
            for (int rep = 0; rep < bo->repeat && (rep == 0 || best.wall < 60.0); rep++) { /* long runs: once */
                run_result r;
                run_child(argv, th == 1 && bo->pin_one ? 0 : -1, log, &r);
                if (!r.ok) {
                    char msg[512] = "";
                    FILE *lf = fopen(log, "r");
                    if (lf) {
                        size_t n = fread(msg, 1, sizeof msg - 1, lf);
                        msg[n] = 0;
                        fclose(lf);
                    }
                    printf("| %s | %u | failed (status 0x%x): %s |\n", cfgs[c]->label, th, (unsigned)r.status, msg);
                    best.ok = 0;
                    break;
                }
                if (r.wall < best.wall) best = r;
                if (r.maxrss_kib > max_rss) max_rss = r.maxrss_kib;
                if (r.peak_anon_kib > max_anon) max_anon = r.peak_anon_kib;
                if (r.peak_file_kib > max_file) max_file = r.peak_file_kib;
            }
            if (!best.ok) continue;
            struct stat st;
            uint64_t out_bytes = stat(out, &st) == 0 ? (uint64_t)st.st_size : 0;
            container_stats cs;
            /* open/index every run; dequantize (per type) once per configuration, on the last thread count */
            type_acc scratch[32];
            size_t nscratch = 0;
            bool last = ti + 1 == bo->nthreads;
            container_read(out, last ? acc : scratch, last ? &nacc : &nscratch, 32, &cs);
            if (ti == 0) t_first = best.wall;
            if (ti == 0) wfloor = write_floor(out_bytes); /* the output's own write floor */
            char speed[32] = "";
            if (ti > 0 && t_first > 0) snprintf(speed, sizeof speed, "%.2f×", t_first / best.wall);
            double peak = rss_mib(max_rss);
            printf("| %s | %u | %.3f | %.3f | %.2f | %s | %.2f | %.0f | %.2f | %.3f | %.3f | %.1f | %.1f / %.1f | %s | %.2f |\n",
                   cfgs[c]->label, th, best.wall, (double)s->tensor_bytes / GB / best.wall, best.wall / floor_t, speed,
                   best.cpu, 100.0 * best.cpu / best.wall, (double)out_bytes / 1e6, wfloor, cs.weights ? (double)cs.stored * 8.0 / (double)cs.weights : 0.0,
                   peak, rss_mib(max_anon), rss_mib(max_file), peak <= bound_mib ? "yes" : "**no**", cs.open_ms);
            if (!cs.verified) printf("| %s | %u | **output failed mixq_verify** |\n", cfgs[c]->label, th);
            fflush(stdout);
            unlink(out);
        }
    }
    printf("\nDequantize (mixq_dequantize_f32, 1 thread, warm pages), per stored type:\n\n");
    printf("| type | weights | seconds | G weights/s | GB/s of f32 out |\n|---|--:|--:|--:|--:|\n");
    for (size_t k = 0; k < nacc; k++)
        printf("| %s | %" PRIu64 " | %.3f | %.3f | %.2f |\n", acc[k].name, acc[k].weights, acc[k].seconds,
               acc[k].seconds > 0 ? (double)acc[k].weights / acc[k].seconds / 1e9 : 0.0,
               acc[k].seconds > 0 ? (double)acc[k].weights * 4.0 / acc[k].seconds / GB : 0.0);
    fflush(stdout);
    unlink(log);
    free(out);
    free(log);
}

/* ------------------------------------------------------------------ */

static const char usage[] =
    "Usage: bench_convert [OPTIONS]\n"
    "  --mixq PATH         the mixq program (default: the one in this build directory)\n"
    "  --generate-gb X     size of the generated LLaMA-shaped checkpoint (default 0.75; 0: none)\n"
    "  --sharded           shard the generated checkpoint (index.json) at --shard-gib\n"
    "  --model DIR         also benchmark this checkpoint (repeatable)\n"
    "  --models-dir DIR    benchmark every model directory in DIR (default: ../shared/models\n"
    "                      beside the source tree; skipped if absent)\n"
    "  --no-shared         do not look in --models-dir\n"
    "  --configs LIST      of int8,int8-rtn,int4-rtn,int4,fp8,budget,budget-all\n"
    "                      (default: all; budget-all = --measure-sample all)\n"
    "  --threads-list L    thread counts (default: 1,<online CPUs>)\n"
    "  --pin-one           pin the 1-thread runs to CPU 0\n"
    "  --generate-only DIR write the --generate-gb checkpoint (--sharded: sharded) into DIR\n"
    "                      (created; must not exist) and exit: for running mixq by hand\n"
    "  --repeat R          runs per configuration (only one if it took over a minute);\n"
    "                      the fastest is shown, the highest peak RSS (default 1)\n"
    "  --tmpdir DIR        where the temporary directory goes (default: the build directory)\n"
    "  --big-gib N         also the bounded-memory run on a generated sharded checkpoint of >= N GiB\n"
    "  --big-configs LIST  its configurations (default budget,int4)\n"
    "  --big-threads L     its thread counts (default: <online CPUs>)\n"
    "  --shard-gib N       shard size of sharded checkpoints (default 2)\n";

int main(int argc, char **argv)
{
    spawner_start(); /* first, while this process is small (see the spawner) */
    const char *mixq = NULL, *models_dir = NULL, *tmp_parent = BENCH_BUILD_ROOT;
    const char *cfg_list = "int8,int8-rtn,int4-rtn,int4,fp8,budget,budget-all", *big_cfg_list = "budget,int4";
    const char *thr_list = NULL, *big_thr_list = NULL, *gen_only = NULL;
    double gen_gb = 0.75, big_gib = 0, shard_gib = 2;
    int sharded = 0, no_shared = 0, repeat = 1, pin_one = 0;
    const char *models[32];
    size_t nmodels = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(NAME) (!strcmp(a, NAME) && (v ? (i++, 1) : (die("%s needs a value", NAME), 0)))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (ARG("--mixq")) mixq = v;
        else if (ARG("--generate-gb")) gen_gb = atof(v);
        else if (!strcmp(a, "--sharded")) sharded = 1;
        else if (ARG("--model")) {
            if (nmodels < 32) models[nmodels++] = v;
        } else if (ARG("--models-dir")) models_dir = v;
        else if (!strcmp(a, "--no-shared")) no_shared = 1;
        else if (!strcmp(a, "--pin-one")) pin_one = 1;
        else if (ARG("--generate-only")) gen_only = v;
        else if (ARG("--configs")) cfg_list = v;
        else if (ARG("--threads-list")) thr_list = v;
        else if (ARG("--repeat")) repeat = atoi(v) > 0 ? atoi(v) : 1;
        else if (ARG("--tmpdir")) tmp_parent = v;
        else if (ARG("--big-gib")) big_gib = atof(v);
        else if (ARG("--big-configs")) big_cfg_list = v;
        else if (ARG("--big-threads")) big_thr_list = v;
        else if (ARG("--shard-gib")) shard_gib = atof(v);
        else {
            fprintf(stderr, "bench_convert: unknown option '%s'\n%s", a, usage);
            return 2;
        }
#undef ARG
    }
    if (gen_only) { /* no temporary directory: DIR is the caller's */
        gen_dims d = {2048, 5632, 256, 2048, 1};
        uint64_t per_layer = gen_total_bytes(&(gen_dims){2048, 5632, 256, 2048, 2}) - gen_total_bytes(&d);
        uint64_t fixed = gen_total_bytes(&d) - per_layer;
        double want = gen_gb * GB;
        d.layers = want > (double)fixed ? (unsigned)((want - (double)fixed) / (double)per_layer + 0.5) : 1;
        if (d.layers < 1) d.layers = 1;
        if (mkdir(gen_only, 0755) != 0) die("%s: %s", gen_only, strerror(errno));
        uint64_t bytes = generate(gen_only, &d, sharded ? (uint64_t)(shard_gib * 1073741824.0) : 0);
        printf("%s: %u layers, %.4f GB of tensor data\n", gen_only, d.layers, (double)bytes / GB);
        return 0;
    }
    char *mixq_default = NULL;
    if (!mixq) {
        mixq_default = xasprintf("%s/mixq", BENCH_BUILD_ROOT);
        mixq = mixq_default;
    }
    if (access(mixq, X_OK) != 0) die("%s: not an executable (build it, or pass --mixq)", mixq);
    char *shared_default = NULL;
    if (!models_dir) models_dir = shared_default = xasprintf("%s/../shared/models", BENCH_SOURCE_ROOT);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    g_tmpdir = xasprintf("%s/bench-convert-XXXXXX", tmp_parent);
    if (!mkdtemp(g_tmpdir)) {
        fprintf(stderr, "bench_convert: mkdtemp %s: %s\n", g_tmpdir, strerror(errno));
        free(g_tmpdir);
        g_tmpdir = NULL;
        return 1;
    }
    atexit(cleanup);

    unsigned ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    bench_opts bo = {.mixq = mixq, .repeat = repeat, .pin_one = pin_one};
    char defthr[32];
    snprintf(defthr, sizeof defthr, ncpu > 1 ? "1,%u" : "%u", ncpu);
    bo.nthreads = parse_uints(thr_list ? thr_list : defthr, bo.threads, 8);
    const config *cfgs[16];
    size_t ncfg = parse_configs(cfg_list, cfgs);

    double la[3] = {0};
    getloadavg(la, 3);
    printf("## bench_convert: %s, %u online CPUs, load average %.2f %.2f %.2f at start\n", mixq, ncpu, la[0], la[1],
           la[2]);
    printf("\nWhole-process wall time of `mixq convert` (fsync and rename included), page cache warm; GB/s = "
           "source tensor bytes / wall time (1 GB = 1e9 B); × floor = wall / floor; speed-up = 1-thread wall / "
           "this wall; CPU s = user + system time of the child, CPU %% = CPU s / wall s (200%% = both cores all "
           "the time); write+fsync s = time to write() as many bytes as the output to a new file and fsync it "
           "(the disk's floor for this output); peak RSS = ru_maxrss of the child; anon / file = peaks of "
           "RssAnon / RssFile sampled every 5 ms.%s\n",
           pin_one ? " 1-thread runs are pinned to CPU 0." : "");
    fflush(stdout);

    /* 1. the generated checkpoint */
    if (gen_gb > 0) {
        gen_dims d = {2048, 5632, 256, 2048, 1};
        uint64_t per_layer = gen_total_bytes(&(gen_dims){2048, 5632, 256, 2048, 2}) - gen_total_bytes(&d);
        uint64_t fixed = gen_total_bytes(&d) - per_layer;
        double want = gen_gb * GB;
        d.layers = want > (double)fixed ? (unsigned)((want - (double)fixed) / (double)per_layer + 0.5) : 1;
        if (d.layers < 1) d.layers = 1;
        char *dir = xasprintf("%s/gen", g_tmpdir);
        if (mkdir(dir, 0755) != 0) die("%s: %s", dir, strerror(errno));
        double t0 = now();
        uint64_t bytes = generate(dir, &d, sharded ? (uint64_t)(shard_gib * 1073741824.0) : 0);
        fprintf(stderr, "bench_convert: generated %.3f GB in %.1f s\n", (double)bytes / GB, now() - t0);
        char *label = xasprintf("generated LLaMA-shaped BF16: hidden %u, ffn %u, kv %u, %u layers, vocab %u%s", d.hidden,
                                d.ffn, d.kv, d.layers, d.vocab, sharded ? ", sharded" : "");
        source s;
        source_load(&s, label, dir);
        bench_source(&s, cfgs, ncfg, &bo);
        source_free(&s);
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(label);
        free(dir);
    }

    /* 2. the given models and the shared ones */
    for (size_t i = 0; i < nmodels; i++) {
        source s;
        source_load(&s, models[i], models[i]);
        bench_source(&s, cfgs, ncfg, &bo);
        source_free(&s);
    }
    if (!no_shared) {
        DIR *dp = opendir(models_dir);
        if (!dp) {
            printf("\n(%s: absent, skipped)\n", models_dir);
        } else {
            char *names[64];
            size_t nn = 0;
            struct dirent *de;
            while ((de = readdir(dp)) && nn < 64)
                if (de->d_name[0] != '.') names[nn++] = xstrdup(de->d_name);
            closedir(dp);
            for (size_t a = 1; a < nn; a++) /* sorted, for a stable report */
                for (size_t b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
                    char *t = names[b];
                    names[b] = names[b - 1];
                    names[b - 1] = t;
                }
            for (size_t k = 0; k < nn; k++) {
                char *p = xasprintf("%s/%s", models_dir, names[k]);
                struct stat st;
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode) && is_model_dir(p)) {
                    source s;
                    char *label = xasprintf("../shared/models/%s", names[k]);
                    source_load(&s, label, p);
                    bench_source(&s, cfgs, ncfg, &bo);
                    source_free(&s);
                    free(label);
                }
                free(p);
                free(names[k]);
            }
        }
    }

    /* 3. the bounded-memory run */
    if (big_gib > 0) {
        gen_dims d = {4096, 11008, 4096, 32000, 1};
        uint64_t per_layer = gen_total_bytes(&(gen_dims){4096, 11008, 4096, 32000, 2}) - gen_total_bytes(&d);
        uint64_t fixed = gen_total_bytes(&d) - per_layer;
        double want = big_gib * 1073741824.0;
        d.layers = (unsigned)((want - (double)fixed + (double)per_layer - 1) / (double)per_layer);
        if (d.layers < 1) d.layers = 1;
        char *dir = xasprintf("%s/big", g_tmpdir);
        if (mkdir(dir, 0755) != 0) die("%s: %s", dir, strerror(errno));
        double t0 = now();
        uint64_t bytes = generate(dir, &d, (uint64_t)(shard_gib * 1073741824.0));
        fprintf(stderr, "bench_convert: generated %.3f GiB in %.1f s\n", (double)bytes / 1073741824.0, now() - t0);
        char *label = xasprintf("bounded memory: generated LLaMA-7B-shaped BF16, hidden %u, ffn %u, %u layers, "
                                 "vocab %u, sharded at %.3g GiB: %.2f GiB",
                                 d.hidden, d.ffn, d.layers, d.vocab, shard_gib, (double)bytes / 1073741824.0);
        bench_opts bb = bo;
        char all[16];
        snprintf(all, sizeof all, "%u", ncpu);
        bb.nthreads = parse_uints(big_thr_list ? big_thr_list : all, bb.threads, 8);
        const config *bc[16];
        size_t nbc = parse_configs(big_cfg_list, bc);
        source s;
        source_load(&s, label, dir);
        bench_source(&s, bc, nbc, &bb);
        source_free(&s);
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(label);
        free(dir);
    }
    getloadavg(la, 3);
    printf("\nload average at the end: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
    free(mixq_default);
    free(shared_default);
    cleanup();
    return 0;
}
