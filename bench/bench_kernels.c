/*
 * bench_kernels.c - single-threaded throughput of every kernel path
 * (simd.h): quantize (plain min/max "RTN" and error-minimizing search) and
 * dequantize for every quantized type in the table, plus the f32 <-> f16 /
 * bf16 array conversions, against memcpy of the same buffer in the same run.
 *
 *   bench_kernels [--mib N] [--row K] [--reps R] [--search-mib N] [--types a,b] [--markdown] [--cpu-time]
 *
 * GB/s always counts the f32 side: bytes of f32 input read by a quantizer /
 * conversion from f32, bytes of f32 output written by a dequantizer /
 * conversion to f32 (1 GB = 1e9 bytes).  memcpy GB/s counts the bytes copied
 * (each byte read once and written once).  Every figure is the best of R
 * timed runs after one untimed warm-up run, with clock_gettime(CLOCK_MONOTONIC).
 * The "cpu" column is the lowest ratio of thread CPU time to wall time among
 * the best runs of that row: well below 100% means the scheduler took the
 * core away (a shared machine) and the GB/s of that row are too low.
 * --cpu-time times by CLOCK_THREAD_CPUTIME_ID instead: on a machine shared
 * with other jobs that figure excludes the time the thread was not running
 * (it still includes the cache and memory-bandwidth interference).
 * The search is timed on the first --search-mib MiB of the buffer (it is
 * compute bound; a smaller slice keeps the scalar run short), everything
 * else on the whole buffer (default 64 MiB of f32, rows of 4096).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/half.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: only to report how much of the wall time we actually ran (shared machines). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Lowest CPU share (thread CPU time / wall time) of the best runs of the current table row. */
static double row_cpu_share = 1.0;

/* --cpu-time: time by thread CPU time instead of CLOCK_MONOTONIC (see the comment at the top). */
static int use_cpu_time = 0;

static uint64_t rng_state = 0x1234567;
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static double rng_unit(void) { return ((double)(rng_next() >> 11) + 0.5) * 0x1p-53; }
static double rng_gauss(void)
{
    double u = rng_unit(), v = rng_unit();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void *xmalloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) {
        fprintf(stderr, "bench_kernels: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    memset(p, 0, n); /* fault the pages in before anything is timed */
    return p;
}

typedef struct opts {
    size_t mib, row, search_mib;
    int reps;
    const char *types;
    int markdown;
} opts;

/* Best-of-reps seconds of fn(ctx), after one warm-up call. */
typedef void (*bench_fn)(void *ctx);
static double best_of(bench_fn fn, void *ctx, int reps)
{
    double best = INFINITY, share = 1.0;
    fn(ctx);
    for (int r = 0; r < reps; r++) {
        double c0 = cpu_now(), t0 = now();
        fn(ctx);
        double t = now() - t0, c = cpu_now() - c0;
        double m = use_cpu_time ? c : t;
        if (m < best) {
            best = m;
            share = t > 0 ? c / t : 1.0;
        }
    }
    if (share < row_cpu_share)
        row_cpu_share = share;
    return best;
}

/* ---- memcpy ---- */
typedef struct cpy_ctx {
    void *dst;
    const void *src;
    size_t n;
} cpy_ctx;
static void run_memcpy(void *c)
{
    cpy_ctx *k = c;
    memcpy(k->dst, k->src, k->n);
    __asm__ volatile("" ::: "memory");
}

/* ---- quantized types ---- */
typedef struct q_ctx {
    const mx_kernel_set *ks;
    const qtype_desc *qt;
    const float *x;
    const float *imp;
    size_t rows, k;
    unsigned group;
    qlayout lay;
    uint8_t *sec[MIXQ_SECTION_COUNT];
    float *out;
    mx_qparams qp;
    int search;
} q_ctx;

static void q_rowptrs(const q_ctx *c, size_t r, mx_rowptrs *o)
{
    for (int s = 0; s < MIXQ_SECTION_COUNT; s++) {
        o->sec[s] = NULL;
        if (c->sec[s] == NULL)
            continue;
        /* per-tensor scale: every row points at the same bytes (row_bytes 0) */
        o->sec[s] = c->sec[s] + r * c->lay.row_bytes[s];
    }
}

static void run_quantize(void *v)
{
    q_ctx *c = v;
    mx_quantize_row_fn f = c->ks->quantize_row[c->qt->id];
    mx_qparams qp = c->qp;
    qp.search = c->search != 0;
    if (c->qt->codebook_levels && c->rows) {
        /* codebook types: the tensor's levels first, fitted on about 65536 weights as the converter does
           (MX_CODEBOOK_SAMPLE; here the first rows), and counted in the quantize time */
        size_t fr = (65536 + c->k - 1) / c->k;
        fr = fr < c->rows ? fr : c->rows;
        int8_t *cb = (int8_t *)c->sec[MIXQ_SEC_CODEBOOK];
        c->qt->fit_codebook(c->x, c->imp, fr, c->k, c->lay.group, cb);
        qp.codebook = cb;
    }
    for (size_t r = 0; r < c->rows; r++) {
        mx_rowptrs o;
        q_rowptrs(c, r, &o);
        qp.importance = c->imp ? c->imp + r * c->k : NULL;
        f(c->x + r * c->k, c->k, c->lay.group, &qp, o);
    }
    __asm__ volatile("" ::: "memory");
}

static void run_dequantize(void *v)
{
    q_ctx *c = v;
    mx_dequantize_row_fn f = c->ks->dequantize_row[c->qt->id];
    for (size_t r = 0; r < c->rows; r++) {
        mx_rowptrs o;
        mx_crowptrs i;
        q_rowptrs(c, r, &o);
        for (int s = 0; s < MIXQ_SECTION_COUNT; s++) i.sec[s] = o.sec[s];
        f(i, c->k, c->lay.group, c->out + r * c->k);
    }
    __asm__ volatile("" ::: "memory");
}

/* ---- conversions ---- */
typedef struct cv_ctx {
    const mx_kernel_set *ks;
    int which; /* 0 f32->f16, 1 f16->f32, 2 f32->bf16, 3 bf16->f32 */
    float *f;
    uint16_t *h;
    size_t n;
} cv_ctx;

static void run_conv(void *v)
{
    cv_ctx *c = v;
    switch (c->which) {
    case 0: c->ks->f32_to_f16(c->f, c->n, c->h); break;
    case 1: c->ks->f16_to_f32(c->h, c->n, c->f); break;
    case 2: c->ks->f32_to_bf16(c->f, c->n, c->h); break;
    default: c->ks->bf16_to_f32(c->h, c->n, c->f); break;
    }
    __asm__ volatile("" ::: "memory");
}

static int type_selected(const opts *o, const char *name)
{
    if (o->types == NULL)
        return 1;
    size_t len = strlen(name);
    for (const char *p = o->types; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && strncmp(p, name, l) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_kernels [--mib N] [--row K] [--reps R] [--search-mib N] [--types a,b,...] [--markdown] [--cpu-time]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o = {64, 4096, 8, 5, NULL, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mib") && i + 1 < argc)
            o.mib = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--row") && i + 1 < argc)
            o.row = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--search-mib") && i + 1 < argc)
            o.search_mib = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            o.reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc)
            o.types = argv[++i];
        else if (!strcmp(argv[i], "--markdown"))
            o.markdown = 1;
        else if (!strcmp(argv[i], "--cpu-time"))
            use_cpu_time = 1;
        else
            usage();
    }
    if (o.mib == 0 || o.row == 0 || o.reps <= 0)
        usage();
    if (o.search_mib == 0 || o.search_mib > o.mib)
        o.search_mib = o.mib;

    size_t n = o.mib * (size_t)1 << 20;
    n /= 4;
    size_t rows = n / o.row, K = o.row;
    n = rows * K;
    size_t srows = o.search_mib * ((size_t)1 << 20) / 4 / K;
    if (srows == 0)
        srows = 1;
    if (rows == 0)
        usage();

    const mx_kernel_set *paths[MX_SIMD_COUNT];
    int np = 0;
    for (int p = 0; p < MX_SIMD_COUNT; p++)
        if (mx_kernels_for((mx_simd)p))
            paths[np++] = mx_kernels_for((mx_simd)p);

    /* Gaussian weights, 1 in 200 an outlier up to 30 sigma; importance uniform (0, 1] */
    float *x = xmalloc(n * 4), *imp = xmalloc(n * 4), *out = xmalloc(n * 4), *cpy = xmalloc(n * 4);
    uint16_t *h = xmalloc(n * 2);
    float absmax = 0.0f;
    for (size_t i = 0; i < n; i++) {
        double v = rng_gauss() * 0.02;
        if (rng_next() % 200 == 0)
            v *= 5 + 25 * rng_unit();
        x[i] = (float)v;
        absmax = fmaxf(absmax, fabsf(x[i]));
        imp[i] = (float)rng_unit();
    }

    cpy_ctx cc = {cpy, x, n * 4};
    row_cpu_share = 1.0;
    double t_cpy = best_of(run_memcpy, &cc, o.reps);
    double cpy_share = row_cpu_share;
    double gb = (double)n * 4 / 1e9, gbs = (double)srows * K * 4 / 1e9;
    double bw_cpy = gb / t_cpy;

    printf("# bench_kernels: %zu MiB of f32 (%zu rows x %zu), search on %zu MiB, best of %d after 1 warm-up, 1 thread\n",
           o.mib, rows, K, o.search_mib, o.reps);
    printf("# timing: %s\n", use_cpu_time ? "thread CPU time (--cpu-time), not wall time" : "wall time, CLOCK_MONOTONIC");
    printf("# GB/s = 1e9 bytes of f32 per second (f32 read by quantize / to-half, f32 written by dequantize / from-half)\n");
    printf("# memcpy of the same %zu MiB buffer: %.2f GB/s (bytes copied; cpu %.0f%%)\n\n", o.mib, bw_cpy,
           100 * cpy_share);

    if (o.markdown) {
        printf("| type | group | path | quantize RTN GB/s | quantize search GB/s | dequantize GB/s | RTN / memcpy | dequant / memcpy | search cost / RTN | cpu |\n");
        printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    } else {
        printf("%-9s %6s %-7s %10s %10s %10s %8s %8s %8s %5s\n", "type", "group", "path", "q-RTN", "q-search", "dequant",
               "RTN/cpy", "deq/cpy", "srch/RTN", "cpu");
    }

    typedef struct res {
        double rtn, search, deq;
    } res;
    res results[2 * MIXQ_QT_COUNT][MX_SIMD_COUNT];
    memset(results, 0, sizeof results);

    /* rows of the table: every type at its default group size; types whose default is one scale per
     * tensor (no search there) also at group 128, where the search runs */
    for (int row = 0; row < 2 * MIXQ_QT_COUNT; row++) {
        int t = row / 2;
        const qtype_desc *qt = qtype_get((mixq_qtype)t);
        if (!qt || !qt->quantized || !qt->quantize_row || !qt->dequantize_row || !type_selected(&o, qt->name))
            continue;
        if (row % 2 == 1 && !(qt->tensor_scale && qt->group_default == 0 && qtype_group_ok(qt, 128)))
            continue;
        q_ctx c;
        memset(&c, 0, sizeof c);
        c.qt = qt;
        c.x = x;
        c.k = K;
        c.rows = rows;
        c.group = row % 2 == 0 ? qt->group_default : 128;
        if (!qtype_layout(qt, ST_F32, rows, K, c.group, &c.lay)) {
            fprintf(stderr, "bench_kernels: no layout for %s\n", qt->name);
            continue;
        }
        for (int s = 0; s < MIXQ_SECTION_COUNT; s++)
            c.sec[s] = c.lay.length[s] ? xmalloc((size_t)c.lay.length[s]) : NULL;
        c.out = out;
        c.qp.importance = NULL;
        c.qp.tensor_absmax = c.lay.per_tensor ? absmax : -1.0f;

        for (int p = 0; p < np; p++) {
            c.ks = paths[p];
            row_cpu_share = 1.0;
            c.rows = rows;
            c.search = 0;
            c.imp = NULL;
            double tq = best_of(run_quantize, &c, o.reps);
            double td = best_of(run_dequantize, &c, o.reps);
            /* search: with importance (as the converter passes it), on the first search_mib MiB */
            c.rows = srows;
            c.search = 1;
            c.imp = imp;
            double ts = best_of(run_quantize, &c, o.reps > 3 ? 3 : o.reps);
            res *r = &results[row][paths[p]->path];
            r->rtn = gb / tq;
            r->search = gbs / ts;
            r->deq = gb / td;
            char grp[16];
            snprintf(grp, sizeof grp, "%u", c.group);
            if (c.lay.per_tensor)
                snprintf(grp, sizeof grp, "tensor");
            if (o.markdown)
                printf("| %s | %s | %s | %.2f | %.3f | %.2f | %.2f | %.2f | %.1fx | %.0f%% |\n", qt->name, grp,
                       mx_simd_name(paths[p]->path), r->rtn, r->search, r->deq, r->rtn / bw_cpy, r->deq / bw_cpy,
                       r->rtn / r->search, 100 * row_cpu_share);
            else
                printf("%-9s %6s %-7s %10.2f %10.3f %10.2f %8.2f %8.2f %7.1fx %4.0f%%\n", qt->name, grp,
                       mx_simd_name(paths[p]->path), r->rtn, r->search, r->deq, r->rtn / bw_cpy, r->deq / bw_cpy,
                       r->rtn / r->search, 100 * row_cpu_share);
            fflush(stdout);
        }
        for (int s = 0; s < MIXQ_SECTION_COUNT; s++) free(c.sec[s]);
    }

    /* conversions */
    static const char *const cv_names[4] = {"f32->f16", "f16->f32", "f32->bf16", "bf16->f32"};
    double cv[4][MX_SIMD_COUNT];
    memset(cv, 0, sizeof cv);
    printf("\n");
    if (o.markdown) {
        printf("| conversion | path | GB/s (f32 side) | / memcpy | cpu |\n|---|---|---:|---:|---:|\n");
    }
    for (int w = 0; w < 4; w++)
        for (int p = 0; p < np; p++) {
            cv_ctx c = {paths[p], w, cpy, h, n};
            if (w == 0)
                memcpy(cpy, x, n * 4);
            row_cpu_share = 1.0;
            double tc = best_of(run_conv, &c, o.reps);
            cv[w][paths[p]->path] = gb / tc;
            if (o.markdown)
                printf("| %s | %s | %.2f | %.2f | %.0f%% |\n", cv_names[w], mx_simd_name(paths[p]->path), gb / tc,
                       gb / tc / bw_cpy, 100 * row_cpu_share);
            else
                printf("%-10s %-7s %8.2f GB/s  %5.2f x memcpy  cpu %3.0f%%\n", cv_names[w], mx_simd_name(paths[p]->path),
                       gb / tc, gb / tc / bw_cpy, 100 * row_cpu_share);
        }

    /* speed-ups of each SIMD path over scalar */
    for (int p = 1; p < MX_SIMD_COUNT; p++) {
        if (!mx_kernels_for((mx_simd)p))
            continue;
        printf("\n");
        if (o.markdown)
            printf("| type | %s / scalar: quantize RTN | quantize search | dequantize |\n|---|---:|---:|---:|\n",
                   mx_simd_name((mx_simd)p));
        else
            printf("%s / scalar        q-RTN   q-search  dequant\n", mx_simd_name((mx_simd)p));
        for (int row = 0; row < 2 * MIXQ_QT_COUNT; row++) {
            res *a = &results[row][p], *b = &results[row][MX_SIMD_SCALAR];
            if (a->rtn == 0 || b->rtn == 0)
                continue;
            char name[64];
            snprintf(name, sizeof name, "%s%s", mx_qtypes[row / 2].name, row % 2 ? " (group 128)" : "");
            if (o.markdown)
                printf("| %s | %.1fx | %.1fx | %.1fx |\n", name, a->rtn / b->rtn, a->search / b->search,
                       a->deq / b->deq);
            else
                printf("  %-20s %6.1fx %8.1fx %8.1fx\n", name, a->rtn / b->rtn, a->search / b->search,
                       a->deq / b->deq);
        }
        for (int w = 0; w < 4; w++)
            if (cv[w][p] > 0 && cv[w][MX_SIMD_SCALAR] > 0) {
                if (o.markdown)
                    printf("| %s | %.1fx | | |\n", cv_names[w], cv[w][p] / cv[w][MX_SIMD_SCALAR]);
                else
                    printf("  %-20s %6.1fx\n", cv_names[w], cv[w][p] / cv[w][MX_SIMD_SCALAR]);
            }
    }
    free(x);
    free(imp);
    free(out);
    free(cpy);
    free(h);
    return 0;
}
