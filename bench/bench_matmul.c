/*
 * bench_matmul.c - single-threaded fused matmul throughput (matmul.h) per
 * stored type against the machine's read bandwidth measured in the same run.
 *
 *   bench_matmul [--mib N] [--cols K] [--reps R] [--gemm-rows M] [--gemm-x X] [--types a,b] [--scalar] [--cpu-time]
 *
 * Read bandwidth: a streaming sum of 64-bit words over a buffer of 2 * N MiB
 * (default 256 MiB, far beyond the last-level cache), GB/s of bytes read.
 * GEMV: y = W x with one x row, W of K (default 8192) columns and as many
 * rows as make its stored bytes about N MiB (default 128: the matrix never
 * fits in cache, also for 2-bit types); GB/s counts the stored weight bytes
 * (codes, scales, mins, super-scales), "of read bw" is that over the read
 * bandwidth.  The rows repeat 64 distinct quantized rows (the values do not
 * change the work).  GEMM: the first M (default 1024) rows of W against X
 * (default 64) x rows, in GFLOP/s (2 * M * K * X flops).  Every figure is the
 * best of R (default 5) timed runs after one warm-up, wall clock
 * (CLOCK_MONOTONIC), on one thread.  --scalar adds the scalar path.
 * --cpu-time times by CLOCK_THREAD_CPUTIME_ID instead: on a machine shared
 * with other jobs that leaves out the time the thread was not running (not
 * the cache and memory-bandwidth interference).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/half.h"
#include "kernels/matmul.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"

/* --cpu-time: time by this thread's CPU time (a machine shared with other jobs), else wall time. */
static int use_cpu_time = 0;

static double now(void)
{
    struct timespec ts;
    clock_gettime(use_cpu_time ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x1234567;
static float rng_float(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * 0x1p-53 * 2.0 - 1.0);
}

/* Sum of 64-bit words, 8 independent chains (the loads, not the adds, are the limit). */
static uint64_t stream_sum(const uint64_t *p, size_t n)
{
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += p[i + k];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static volatile uint64_t sink;

/* Best GB/s of reading the whole buffer. */
static double read_bandwidth(size_t bytes, int reps)
{
    size_t n = bytes / 8;
    uint64_t *buf = malloc(n * 8);
    double best = 1e30;
    if (!buf) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++) buf[i] = i * 0x9E3779B97F4A7C15u;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        sink = stream_sum(buf, n);
        double t = now() - t0;
        if (r > 0 && t < best) best = t;
    }
    free(buf);
    return (double)bytes / best * 1e-9;
}

/* A rows x cols tensor of type qt at its default group: 64 distinct rows quantized by ks, repeated. */
static uint8_t *build(const mx_kernel_set *ks, const qtype_desc *qt, size_t rows, size_t cols, qlayout *lay)
{
    const size_t distinct = 64;
    unsigned group = qt->quantized ? qt->group_default : 0;
    float *src = malloc(distinct * cols * sizeof *src);
    if (!src || !qtype_layout(qt, ST_F32, rows, cols, group, lay)) {
        fprintf(stderr, "bench_matmul: cannot build %s\n", qt->name);
        exit(2);
    }
    uint8_t *bytes = malloc((size_t)lay->total);
    if (!bytes) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        exit(2);
    }
    float amax = 0.0f;
    for (size_t i = 0; i < distinct * cols; i++) {
        src[i] = rng_float();
        amax = src[i] > amax ? src[i] : -src[i] > amax ? -src[i] : amax;
    }
    const int8_t *levels = NULL; /* codebook types: one codebook for the tensor, fitted on its distinct rows */
    if (qt->codebook_levels) {
        int8_t *cb = (int8_t *)(bytes + lay->offset[MIXQ_SEC_CODEBOOK]);
        qt->fit_codebook(src, NULL, distinct, cols, lay->group, cb);
        levels = cb;
    }
    for (size_t r = 0; r < rows; r++) {
        mx_rowptrs p = {{0}};
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
            if (qtype_has_section(qt, (mixq_section_kind)k))
                p.sec[k] = bytes + lay->offset[k] + r * lay->row_bytes[k];
        if (r >= distinct) { /* a copy of row r % distinct */
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                if (p.sec[k] && lay->row_bytes[k])
                    memcpy(p.sec[k], bytes + lay->offset[k] + (r % distinct) * lay->row_bytes[k], (size_t)lay->row_bytes[k]);
            continue;
        }
        const float *x = src + r * cols;
        if (qt->id == MIXQ_QT_F32) {
            memcpy(p.sec[MIXQ_SEC_DATA], x, cols * 4);
        } else if (qt->id == MIXQ_QT_F16 || qt->id == MIXQ_QT_BF16) {
            uint16_t *h = malloc(cols * 2);
            if (!h) exit(2);
            if (qt->id == MIXQ_QT_F16) ks->f32_to_f16(x, cols, h);
            else ks->f32_to_bf16(x, cols, h);
            memcpy(p.sec[MIXQ_SEC_DATA], h, cols * 2);
            free(h);
        } else {
            mx_qparams qp = {NULL, false, lay->per_tensor ? amax : -1.0f, levels};
            ks->quantize_row[qt->id](x, cols, lay->group, &qp, p);
        }
    }
    free(src);
    return bytes;
}

/* Best seconds of R runs of y = x W^T (after one warm-up). */
static double time_matmul(const mx_kernel_set *ks, const qtype_desc *qt, const qlayout *lay, const uint8_t *bytes,
                          const float *x, size_t nx, float *y, int reps)
{
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        mx_matmul(ks, qt, lay, bytes, x, nx, (size_t)lay->row_length, y, (size_t)lay->rows, NULL);
        double t = now() - t0;
        if (r > 0 && t < best) best = t;
    }
    return best;
}

static uint64_t stored_bytes(const qtype_desc *qt, const qlayout *lay)
{
    uint64_t b = 0;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (qtype_has_section(qt, (mixq_section_kind)k)) b += lay->length[k];
    return b;
}

static int wanted(const char *list, const char *name)
{
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    size_t mib = 128, cols = 8192, gemm_rows = 1024, gemm_x = 64;
    int reps = 5, with_scalar = 0;
    const char *types = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--cols") && i + 1 < argc) cols = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gemm-rows") && i + 1 < argc) gemm_rows = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--gemm-x") && i + 1 < argc) gemm_x = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) types = argv[++i];
        else if (!strcmp(argv[i], "--scalar")) with_scalar = 1;
        else if (!strcmp(argv[i], "--cpu-time")) use_cpu_time = 1;
        else {
            fprintf(stderr, "usage: bench_matmul [--mib N] [--cols K] [--reps R] [--gemm-rows M] [--gemm-x X] "
                            "[--types a,b] [--scalar] [--cpu-time]\n");
            return 2;
        }
    }
    if (mib == 0 || cols == 0 || reps < 1 || gemm_x == 0) return 2;

    double bw = read_bandwidth(2 * mib << 20, reps);
    printf("# timing: %s\n", use_cpu_time ? "thread CPU time (--cpu-time)" : "wall time (CLOCK_MONOTONIC)");
    printf("# one thread; read bandwidth (streaming sum over %zu MiB): %.2f GB/s\n", 2 * mib, bw);
    printf("# GEMV: K = %zu columns, ~%zu MiB stored per type; GEMM: %zu rows x %zu x rows\n", cols, mib, gemm_rows,
           gemm_x);
    printf("| type | group | path | rows | stored MiB | bits/weight | GEMV ms | GEMV GB/s | of read bw | G weights/s | GEMM GFLOP/s |\n");
    printf("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");

    float *x = malloc(gemm_x * cols * sizeof *x);
    if (!x) return 2;
    for (size_t i = 0; i < gemm_x * cols; i++) x[i] = rng_float();

    for (int path = MX_SIMD_COUNT - 1; path >= 0; path--) {
        const mx_kernel_set *ks = mx_kernels_for((mx_simd)path);
        if (!ks || (path == MX_SIMD_SCALAR && !with_scalar && mx_kernels()->path != MX_SIMD_SCALAR)) continue;
        for (int t = 0; t < MIXQ_QT_COUNT; t++) {
            const qtype_desc *qt = qtype_get((mixq_qtype)t);
            if (!qt || !ks->dot_rows[t] || !wanted(types, qt->name)) continue;
            qlayout probe;
            if (!qtype_layout(qt, ST_F32, 1, cols, qt->quantized ? qt->group_default : 0, &probe)) continue;
            uint64_t row_bytes = stored_bytes(qt, &probe);
            size_t rows = (size_t)(((uint64_t)mib << 20) / row_bytes);
            if (rows < 64) rows = 64;
            qlayout lay;
            uint8_t *bytes = build(ks, qt, rows, cols, &lay);
            float *y = malloc(gemm_x * rows * sizeof *y);
            if (!y) return 2;
            double sb = (double)stored_bytes(qt, &lay);
            double tv = time_matmul(ks, qt, &lay, bytes, x, 1, y, reps);
            qlayout sub = lay;
            sub.rows = gemm_rows < rows ? gemm_rows : rows;
            double tm = time_matmul(ks, qt, &sub, bytes, x, gemm_x, y, reps > 2 ? 2 : reps);
            double gbs = sb / tv * 1e-9;
            char grp[16];
            if (!qt->quantized) snprintf(grp, sizeof grp, "-");
            else if (lay.per_tensor) snprintf(grp, sizeof grp, "tensor");
            else snprintf(grp, sizeof grp, "%u", qt->group_default ? qt->group_default : lay.group);
            printf("| %s | %s | %s | %zu | %.1f | %.3f | %.2f | %.2f | %.0f%% | %.2f | %.1f |\n", qt->name, grp,
                   mx_simd_name(ks->path), rows, sb / (1 << 20), sb * 8.0 / ((double)rows * (double)cols), tv * 1e3, gbs,
                   100.0 * gbs / bw, (double)rows * (double)cols / tv * 1e-9,
                   2.0 * (double)sub.rows * (double)cols * (double)gemm_x / tm * 1e-9);
            fflush(stdout);
            free(y);
            free(bytes);
        }
    }
    free(x);
    return 0;
}
