/*
 * kernel_check.c - every SIMD kernel path of this build (NEON on aarch64,
 * AVX2 on x86-64 when the CPU has it) against the scalar reference, bit for
 * bit.  Plain C, no test framework, so it also runs in the dependency-free
 * -Dkernels_only=true build (e.g. cross-compiled for aarch64 under qemu).
 *
 * For every quantized type in the table: random rows (sizes, allowed group
 * sizes, value distributions, special groups: all zero, +-0, constant,
 * f16 extremes, subnormal, exact ties), search on and off, with and without
 * importance weights; quantize with both paths and compare every section
 * byte for byte (and guard bytes after each), then dequantize the same
 * sections with both and compare the floats bitwise; also dequantize random
 * section bytes.  The search passes (quant_search.h) of a path that exports
 * them (mx_search_ops_neon / mx_search_ops_avx2) directly against
 * mx_search_ops_scalar, bit for bit.
 * Matmul row kernels (matmul_kernels.h): random tensors of every type with a
 * matmul (random group sizes and shapes) through mx_matmul with each path,
 * SIMD within MX_MM_TOL of scalar, and bit-identical on 1 and 2 threads.
 * Conversions: all 65,536 f16 and bf16 patterns to f32, and
 * f32 patterns (random, strided over all 2^32, every exponent with rounding
 * boundary mantissas, NaN/Inf/subnormal) to f16 and bf16, at random
 * offsets and lengths for the vector tails.
 *
 * Prints one line per check and finally "kernel_check: N passed, M failed";
 * exits 1 on any failure.  Environment: MIXQ_KERNEL_CHECK_SEED (base seed,
 * default fixed), MIXQ_KERNEL_CHECK_SCALE (multiplies the row counts).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp8.h"
#include "common/half.h"
#include "kernels/kernels.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "test_rng.h"
#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"
#include "common/workpool.h"

#define GUARD 32u        /* bytes checked after every output buffer */
#define GUARD_BYTE 0xA5u /* initial contents of every output buffer */

static unsigned n_passed, n_failed;
static uint64_t base_seed = 0x6D69787120u;
static unsigned iter_scale = 1;

/* ---- random numbers ---- */

static uint64_t rng;

static uint64_t rnd(void) { return rng_next(&rng); }
static uint32_t below(uint32_t n) { return (uint32_t)(((rnd() >> 32) * n) >> 32); }
static float unit(void) { return (float)(rnd() >> 40) * 0x1p-24f; } /* [0, 1) */
static int coin(unsigned one_in) { return below(one_in) == 0; }
static float pow2f(int e) { return mx_bits_f32((uint32_t)(e + 127) << 23); } /* -126 <= e <= 127 */

static float clampq(float v)
{
    return v > MX_QUANT_ABS_MAX ? MX_QUANT_ABS_MAX : v < -MX_QUANT_ABS_MAX ? -MX_QUANT_ABS_MAX : v;
}

/* A random finite f16 value (any magnitude, subnormals included). */
static float rand_f16_value(void)
{
    for (;;) {
        uint16_t h = (uint16_t)rnd();
        if ((h & 0x7C00u) != 0x7C00u)
            return mx_f16_to_f32(h);
    }
}

/* A random float of random binade 2^-149 .. 2^15 (clamped to 65504). */
static float rand_any_magnitude(void)
{
    uint32_t e = below(143);                  /* exponent field 0 (subnormal) .. 142 */
    uint32_t u = (uint32_t)rnd() & 0x807FFFFFu; /* sign and mantissa */
    return clampq(mx_bits_f32(u | e << 23));
}

/* One value of distribution `kind` around `offset` with spread `scale`. */
static float gen_value(unsigned kind, float scale, float offset)
{
    switch (kind) {
    case 0: /* roughly gaussian (Irwin-Hall) */
        return clampq(offset + scale * 1.7f * (unit() + unit() + unit() + unit() - 2.0f));
    case 1: /* uniform */
        return clampq(offset + scale * (2.0f * unit() - 1.0f));
    case 2: /* small integers times a power of two: many exact ties */
        return clampq(offset + scale * (float)((int)below(61) - 30) * 0.125f);
    case 3:
        return rand_f16_value();
    case 4:
        return rand_any_magnitude();
    default: /* sparse */
        return coin(8) ? clampq(offset + scale * (2.0f * unit() - 1.0f)) : 0.0f;
    }
}

/* Fills a group with one of the special patterns. */
static void special_group(float *x, size_t len)
{
    size_t i;
    float c;
    switch (below(16)) {
    case 12: /* exact ties of an asymmetric grid: m + (k + 1/2) s, with m and m + qmax s present, or */
    case 13: /* of a symmetric grid: (k + 1/2) s, with +-qmax s present */
    {
        static const int qmaxes[] = {1, 3, 7, 15, 31, 127};
        int qmax = qmaxes[below(6)], sym = coin(2);
        float sc = mx_f16_to_f32((uint16_t)(0x0400u + below(0x7000u))); /* normal f16 */
        float m = sym ? 0.0f : rand_f16_value() * pow2f(-(int)below(8));
        while (sc * (float)(2 * qmax + 1) > 60000.0f)
            sc *= 0.5f;
        if (!sym && (m + sc * (float)qmax > 65504.0f || m < -65504.0f + sc))
            m = 0.0f;
        for (i = 0; i < len; i++) {
            int k = sym ? (int)below((uint32_t)(2 * qmax)) - qmax : (int)below((uint32_t)qmax);
            x[i] = clampq(m + ((float)k + 0.5f) * sc);
        }
        x[below((uint32_t)len)] = sym ? (float)qmax * sc : m;
        x[below((uint32_t)len)] = sym ? -(float)qmax * sc : clampq(m + (float)qmax * sc);
        break;
    }
    case 14: /* midpoints of the fp8 grids times a power of two, with the top value present */
    case 15:
    {
        int e4 = coin(2);
        float sc = pow2f((int)below(24) - (e4 ? 16 : 20)), top = (e4 ? 448.0f : 57344.0f) * sc;
        for (i = 0; i < len; i++) {
            uint8_t c = (uint8_t)below(e4 ? 0x7Eu : 0x7Bu);
            float a = e4 ? mx_e4m3_to_f32(c) : mx_e5m2_to_f32(c);
            float b = e4 ? mx_e4m3_to_f32((uint8_t)(c + 1)) : mx_e5m2_to_f32((uint8_t)(c + 1));
            x[i] = clampq((coin(2) ? 1.0f : -1.0f) * ((a + b) * 0.5f) * sc);
        }
        if (top <= 65504.0f)
            x[below((uint32_t)len)] = coin(2) ? top : -top;
        break;
    }
    case 0:
        for (i = 0; i < len; i++) x[i] = 0.0f;
        break;
    case 1:
        for (i = 0; i < len; i++) x[i] = coin(2) ? -0.0f : 0.0f;
        break;
    case 2: /* constant, usually not an f16 value */
        c = gen_value(below(5), pow2f((int)below(30) - 20), 0.0f);
        for (i = 0; i < len; i++) x[i] = c;
        break;
    case 3: /* constant f16 value */
        c = rand_f16_value();
        for (i = 0; i < len; i++) x[i] = c;
        break;
    case 4: /* one non-zero */
        for (i = 0; i < len; i++) x[i] = 0.0f;
        x[below((uint32_t)len)] = gen_value(below(5), pow2f((int)below(30) - 20), 0.0f);
        break;
    case 5: /* the f16 extremes */
        for (i = 0; i < len; i++) x[i] = coin(2) ? 65504.0f : -65504.0f;
        break;
    case 6:
        c = coin(2) ? 65504.0f : -65504.0f;
        for (i = 0; i < len; i++) x[i] = c;
        break;
    case 7: /* extremes among ordinary values */
        for (i = 0; i < len; i++) x[i] = gen_value(0, 1000.0f, 0.0f);
        x[below((uint32_t)len)] = 65504.0f;
        x[below((uint32_t)len)] = -65504.0f;
        break;
    case 8: /* float subnormals */
        for (i = 0; i < len; i++)
            x[i] = mx_bits_f32(((uint32_t)rnd() & 0x807FFFFFu));
        break;
    case 9: /* two levels */
    {
        float a = rand_f16_value(), b = gen_value(1, 10.0f, 0.0f);
        for (i = 0; i < len; i++) x[i] = coin(2) ? a : b;
        break;
    }
    case 10: /* tiny values around f16 subnormals */
        for (i = 0; i < len; i++) x[i] = gen_value(2, 0x1p-20f, 0.0f);
        break;
    default: /* all positive, far from zero */
        c = pow2f((int)below(16));
        for (i = 0; i < len; i++) x[i] = clampq(c + c * 0.01f * unit());
        break;
    }
}

/* A random row of n values with groups of g; one group in `special_one_in` is special. */
static void gen_row(float *x, size_t n, size_t g, unsigned special_one_in)
{
    unsigned kind = below(6);
    float scale = pow2f((int)below(40) - 26) * (1.0f + unit());
    float offset = coin(3) ? scale * (float)((int)below(17) - 8) : 0.0f;
    for (size_t i = 0; i < n; i++)
        x[i] = gen_value(kind, scale, offset);
    if (special_one_in)
        for (size_t s = 0; s < n; s += g)
            if (coin(special_one_in))
                special_group(x + s, n - s < g ? n - s : g);
}

/* Importance weights: mode 1 random (some zero), mode 2 special patterns. */
static void gen_importance(float *w, size_t n, int mode)
{
    size_t i;
    if (mode == 1) {
        for (i = 0; i < n; i++) w[i] = coin(10) ? 0.0f : 4.0f * unit();
        return;
    }
    switch (below(5)) {
    case 0:
        for (i = 0; i < n; i++) w[i] = 0.0f;
        break;
    case 1:
        for (i = 0; i < n; i++) w[i] = 1.0f;
        break;
    case 2:
        for (i = 0; i < n; i++) w[i] = pow2f((int)below(41) - 20) * (1.0f + unit());
        break;
    case 3:
        for (i = 0; i < n; i++) w[i] = 0.0f;
        w[below((uint32_t)n)] = 1.0f;
        break;
    default:
        for (i = 0; i < n; i++) w[i] = (float)below(3);
        break;
    }
}

/* ---- reporting ---- */

typedef struct check {
    char name[160];
    unsigned cases, bad;
    char first[400]; /* the first mismatch */
} check;

static void check_begin(check *c, const char *fmt, ...)
{
    va_list ap;
    memset(c, 0, sizeof *c);
    va_start(ap, fmt);
    vsnprintf(c->name, sizeof c->name, fmt, ap);
    va_end(ap);
}

static void check_fail(check *c, const char *fmt, ...)
{
    if (c->bad++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->first, sizeof c->first, fmt, ap);
        va_end(ap);
    }
}

static void check_end(check *c, const char *what)
{
    if (c->bad == 0) {
        n_passed++;
        printf("ok   %s: %u %s\n", c->name, c->cases, what);
    } else {
        n_failed++;
        printf("FAIL %s: %u of %u %s differ; first: %s\n", c->name, c->bad, c->cases, what, c->first);
    }
    fflush(stdout);
}

static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("#    ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* ---- quantized types ---- */

/* One row's sections (each followed by GUARD bytes), from the layout of a one-row tensor. */
typedef struct sections {
    uint8_t *sec[MIXQ_SECTION_COUNT];
    size_t bytes[MIXQ_SECTION_COUNT];
} sections;

static void sections_alloc(sections *s, const qlayout *l)
{
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        /* one row: the section lengths (a per-tensor scale has row_bytes 0 but length 4) */
        s->bytes[k] = (size_t)l->length[k];
        s->sec[k] = s->bytes[k] ? malloc(s->bytes[k] + GUARD) : NULL;
        if (s->bytes[k] && !s->sec[k]) {
            fprintf(stderr, "kernel_check: out of memory\n");
            exit(2);
        }
        if (s->sec[k])
            memset(s->sec[k], GUARD_BYTE, s->bytes[k] + GUARD);
    }
}

static void sections_free(sections *s)
{
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) free(s->sec[k]);
}

static mx_rowptrs rowptrs(const sections *s)
{
    mx_rowptrs r;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) r.sec[k] = s->sec[k];
    return r;
}

static mx_crowptrs crowptrs(const sections *s)
{
    mx_crowptrs r;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) r.sec[k] = s->sec[k];
    return r;
}

/* Compares two rows' sections including guards; describes the first difference. */
static int sections_differ(const sections *a, const sections *b, char *why, size_t whysz)
{
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!a->sec[k])
            continue;
        for (size_t i = 0; i < a->bytes[k] + GUARD; i++) {
            if (a->sec[k][i] != b->sec[k][i]) {
                snprintf(why, whysz, "%s byte %zu%s: scalar 0x%02x, simd 0x%02x", mixq_section_name((mixq_section_kind)k),
                         i, i >= a->bytes[k] ? " (past the end)" : "", a->sec[k][i], b->sec[k][i]);
                return 1;
            }
        }
    }
    return 0;
}

/* Bitwise float comparison of n values (NaN payloads and signs included) plus guard. */
static int floats_differ(const float *a, const float *b, size_t n, char *why, size_t whysz)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t ua = mx_f32_bits(a[i]), ub = mx_f32_bits(b[i]);
        if (ua == ub)
            continue;
        snprintf(why, whysz, "element %zu: scalar 0x%08" PRIx32 " (%.9g), simd 0x%08" PRIx32 " (%.9g)", i, ua,
                 (double)a[i], ub, (double)b[i]);
        return 1;
    }
    if (memcmp((const uint8_t *)(a + n), (const uint8_t *)(b + n), GUARD) != 0) {
        snprintf(why, whysz, "write past element %zu", n);
        return 1;
    }
    return 0;
}

/* A random allowed group size for qt (0 = per row) and row length. */
static unsigned pick_group(const qtype_desc *qt)
{
    unsigned opts[32], k = 0;
    for (unsigned g = qt->group_min; g && g <= qt->group_max && k < 31; g *= 2)
        if (qtype_group_ok(qt, g))
            opts[k++] = g;
    if (qt->allow_row_group)
        opts[k++] = 0;
    return k ? opts[below(k)] : 0;
}

static size_t pick_length(void)
{
    switch (below(4)) {
    case 0: return 1 + below(40);
    case 1: return 1 + below(300);
    case 2: return 1 + below(1200);
    default: return (size_t)(16 * (1 + below(64))) + below(3); /* multiples of 16, +0..2 */
    }
}

/* The inputs of one quantize case. */
typedef struct qcase {
    uint64_t seed;
    size_t n;
    unsigned group_size; /* as stored: 0 = per row */
    int search, imp_mode;
} qcase;

/*
 * Quantizes one random row with both kernel sets and compares the sections,
 * then dequantizes them with both and compares the floats.  Returns 0 if the
 * layout is not available (no case run), else 1.
 */
static int run_qcase(const mx_kernel_set *ref, const mx_kernel_set *simd, const qtype_desc *qt, qcase *qc,
                     unsigned special_one_in, check *cq, check *cd)
{
    qlayout l;
    sections a, b;
    char why[300];
    size_t off;
    float *xbuf, *x, *w = NULL, *da, *db;
    mx_qparams p;
    const mx_qparams *pp;

    rng = rng_mix64(qc->seed);
    if (!qtype_layout(qt, ST_F32, 1, qc->n, qc->group_size, &l))
        return 0;
    off = below(2); /* misalign the input by one float half the time */
    xbuf = malloc((qc->n + off) * sizeof *xbuf);
    da = malloc(qc->n * sizeof(float) + GUARD);
    db = malloc(qc->n * sizeof(float) + GUARD);
    if (!xbuf || !da || !db) {
        fprintf(stderr, "kernel_check: out of memory\n");
        exit(2);
    }
    x = xbuf + off;
    gen_row(x, qc->n, l.group, special_one_in);

    memset(&p, 0, sizeof p);
    p.search = qc->search != 0;
    if (qc->imp_mode) {
        w = malloc(qc->n * sizeof *w);
        if (!w) {
            fprintf(stderr, "kernel_check: out of memory\n");
            exit(2);
        }
        gen_importance(w, qc->n, qc->imp_mode);
        p.importance = w;
    }
    {
        float amax = 0.0f;
        for (size_t i = 0; i < qc->n; i++) {
            float v = x[i] < 0.0f ? -x[i] : x[i];
            amax = v > amax ? v : amax;
        }
        /* per-tensor scale (tensor_scale type, group_size 0): the max |x| of a
           tensor holding this row; otherwise negative (-1), or NaN (fp8.h) */
        if (l.per_tensor) {
            switch (below(4)) {
            case 0: p.tensor_absmax = amax; break;
            case 1: p.tensor_absmax = amax * (1.0f + 3.0f * unit()); break;
            case 2: p.tensor_absmax = MX_QUANT_ABS_MAX; break;
            default: p.tensor_absmax = amax * pow2f((int)below(8)); break;
            }
            if (p.tensor_absmax > MX_QUANT_ABS_MAX)
                p.tensor_absmax = MX_QUANT_ABS_MAX;
        } else {
            p.tensor_absmax = coin(8) ? mx_bits_f32(0x7FC00000u) : -1.0f;
        }
    }
    /* no parameters at all: plain min/max, per group */
    pp = !p.search && !p.importance && !l.per_tensor && coin(4) ? NULL : &p;

    sections_alloc(&a, &l);
    sections_alloc(&b, &l);
    ref->quantize_row[qt->id](x, qc->n, l.group, pp, rowptrs(&a));
    simd->quantize_row[qt->id](x, qc->n, l.group, pp, rowptrs(&b));
    cq->cases++;
    if (sections_differ(&a, &b, why, sizeof why))
        check_fail(cq, "%s n=%zu group=%u search=%d importance=%d params=%s tensor_absmax=%.9g seed=0x%016" PRIx64 ": %s",
                   qt->name, qc->n, qc->group_size, qc->search, qc->imp_mode, pp ? "set" : "NULL",
                   (double)p.tensor_absmax, qc->seed, why);

    /* Dequantize the reference's sections with both. */
    memset(da, GUARD_BYTE, qc->n * sizeof(float) + GUARD);
    memset(db, GUARD_BYTE, qc->n * sizeof(float) + GUARD);
    ref->dequantize_row[qt->id](crowptrs(&a), qc->n, l.group, da);
    simd->dequantize_row[qt->id](crowptrs(&a), qc->n, l.group, db);
    cd->cases++;
    if (floats_differ(da, db, qc->n, why, sizeof why))
        check_fail(cd, "%s n=%zu group=%u seed=0x%016" PRIx64 ": %s", qt->name, qc->n, qc->group_size, qc->seed,
                   why);

    sections_free(&a);
    sections_free(&b);
    free(xbuf);
    free(w);
    free(da);
    free(db);
    return 1;
}

/*
 * Dequantizes random section bytes with both sets, bit for bit: NaN / Inf
 * scales and mins give the canonical NaN (kernels.h), and the NaNs left (fp8
 * NaN codes, Inf codes times a zero scale) have one source.
 */
static void run_dequant_random(const mx_kernel_set *ref, const mx_kernel_set *simd, const qtype_desc *qt,
                               uint64_t seed, check *c)
{
    qlayout l;
    sections s;
    char why[300];
    size_t n;
    unsigned gs;
    float *da, *db;

    rng = rng_mix64(seed);
    n = pick_length();
    gs = pick_group(qt);
    if (!qtype_layout(qt, ST_F32, 1, n, gs, &l))
        return;
    sections_alloc(&s, &l);
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        for (size_t i = 0; i < s.bytes[k]; i++) s.sec[k][i] = (uint8_t)rnd();
    da = malloc(n * sizeof(float) + GUARD);
    db = malloc(n * sizeof(float) + GUARD);
    if (!da || !db) {
        fprintf(stderr, "kernel_check: out of memory\n");
        exit(2);
    }
    memset(da, GUARD_BYTE, n * sizeof(float) + GUARD);
    memset(db, GUARD_BYTE, n * sizeof(float) + GUARD);
    ref->dequantize_row[qt->id](crowptrs(&s), n, l.group, da);
    simd->dequantize_row[qt->id](crowptrs(&s), n, l.group, db);
    c->cases++;
    if (floats_differ(da, db, n, why, sizeof why))
        check_fail(c, "%s n=%zu group=%u seed=0x%016" PRIx64 ": %s", qt->name, n, gs, seed, why);
    sections_free(&s);
    free(da);
    free(db);
}

/* ---- non-finite scale parameters (kernels.h, FORMAT.md §4) ---- */

/* f16 / binary32 Inf and NaN patterns: both signs, quiet and signalling, several payloads. */
static const uint16_t nonfinite_f16[] = {0x7C00u, 0xFC00u, 0x7E00u, 0xFE00u, 0x7C01u,
                                         0xFC01u, 0x7FFFu, 0xFFFFu, 0x7D55u, 0xFEAAu};
static const uint32_t nonfinite_f32[] = {0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u, 0x7F800001u,
                                         0xFF800001u, 0x7FFFFFFFu, 0xFFFFFFFFu, 0x7FA5A5A5u, 0xFFD00001u};

static uint16_t rand_nonfinite_f16(void) { return nonfinite_f16[below(sizeof nonfinite_f16 / sizeof nonfinite_f16[0])]; }
static uint32_t rand_nonfinite_f32(void) { return nonfinite_f32[below(sizeof nonfinite_f32 / sizeof nonfinite_f32[0])]; }

/* An fp8 NaN code (or, for E5M2, one in three an infinity), random sign. */
static uint8_t rand_fp8_special(int e4m3)
{
    uint8_t s = coin(2) ? 0x80u : 0x00u;
    if (e4m3)
        return (uint8_t)(s | 0x7Fu);
    return (uint8_t)(s | (coin(3) ? 0x7Cu : 0x7Du + below(3)));
}

/* Marks elements [a, b) of an n-element row as belonging to a poisoned group. */
static void mark(uint8_t *bad, size_t n, size_t a, size_t b)
{
    for (size_t i = a; i < b && i < n; i++) bad[i] = 1;
}

/*
 * One row of qt: a real quantized row (sometimes with random codes) whose
 * stored scale parameters are made non-finite in random groups (f16 scale
 * and/or min; fp8 binary32 scale, per group or per tensor; DQ super-scale
 * and/or super-min), in half the rows in just one group or super-block at a
 * random position (a lone bad value must be found wherever it is); fp8 rows
 * also with NaN / Inf codes in every group and zero scales in some finite
 * ones.  Both sets must agree bit for bit, every
 * element of a poisoned group (DQ: super-block) must be 0x7FC00000, and the
 * others must be finite (integer types) or exactly fl(decode(code) * s)
 * computed here (fp8: the NaN of a NaN code, the CPU's default NaN for an
 * Inf code times zero).
 */
static void run_nonfinite_case(const mx_kernel_set *ref, const mx_kernel_set *simd, const qtype_desc *qt,
                               uint64_t seed, check *c)
{
    qlayout l;
    sections s;
    char why[300];
    size_t n, ng;
    unsigned gs, g;
    float *x, *da, *db;
    uint8_t *bad;
    int any = 0, e4m3 = qt->id == MIXQ_QT_FP8_E4M3;

    rng = rng_mix64(seed);
    n = pick_length();
    gs = pick_group(qt);
    if (!qtype_layout(qt, ST_F32, 1, n, gs, &l))
        return;
    g = l.group;
    ng = (size_t)l.groups_per_row;
    x = malloc(n * sizeof *x);
    bad = calloc(n, 1);
    da = malloc(n * sizeof(float) + GUARD);
    db = malloc(n * sizeof(float) + GUARD);
    if (!x || !bad || !da || !db) {
        fprintf(stderr, "kernel_check: out of memory\n");
        exit(2);
    }
    gen_row(x, n, g, 3);
    sections_alloc(&s, &l);
    ref->quantize_row[qt->id](x, n, g, NULL, rowptrs(&s));
    if (coin(3))
        for (size_t i = 0; i < s.bytes[MIXQ_SEC_CODES]; i++) s.sec[MIXQ_SEC_CODES][i] = (uint8_t)rnd();

    while (!any) {
        /* half the rows: exactly one poisoned group (super-block), at a random position */
        size_t units = qt->scale_kind == QS_CODE ? (size_t)l.supers_per_row : l.per_tensor ? 1u : ng;
        size_t one = coin(2) ? below((uint32_t)units) : (size_t)-1;
#define SKIP_UNIT(j) (one != (size_t)-1 ? (j) != one : !coin(2))
        switch (qt->scale_kind) {
        case QS_F16: /* scale (int8, int4s) or scale and / or min (int4, int2) per group */
            for (size_t j = 0; j < ng; j++) {
                unsigned what = qt->symmetric ? 0u : below(3); /* 0 scale, 1 min, 2 both */
                if (SKIP_UNIT(j))
                    continue;
                if (what != 1)
                    mx_st16le(s.sec[MIXQ_SEC_SCALES] + 2 * j, rand_nonfinite_f16());
                if (what != 0)
                    mx_st16le(s.sec[MIXQ_SEC_MINS] + 2 * j, rand_nonfinite_f16());
                mark(bad, n, j * g, (j + 1) * g);
                any = 1;
            }
            break;
        case QS_F32: /* fp8: binary32 scale per group or one per tensor (row = one group) */
            for (size_t j = 0; j < (l.per_tensor ? 1u : ng); j++) {
                uint8_t *sp = s.sec[MIXQ_SEC_SCALES] + 4 * j;
                if (!SKIP_UNIT(j)) {
                    uint32_t u = rand_nonfinite_f32();
                    for (int k = 0; k < 4; k++) sp[k] = (uint8_t)(u >> (8 * k));
                    mark(bad, n, j * g, (j + 1) * g);
                    any = 1;
                } else if (coin(3)) { /* +-0: an Inf code gives the CPU's default NaN */
                    memset(sp, 0, 4);
                    sp[3] = coin(2) ? 0x80u : 0x00u;
                }
            }
            for (size_t i = 0; i < n; i++)
                if (coin(6))
                    s.sec[MIXQ_SEC_CODES][i] = rand_fp8_special(e4m3);
            break;
        case QS_CODE: /* DQ: super-scale and / or super-min per super-block */
            for (size_t b = 0; b < (size_t)l.supers_per_row; b++) {
                unsigned what = qt->symmetric ? 0u : below(3);
                if (SKIP_UNIT(b))
                    continue;
                if (what != 1)
                    mx_st16le(s.sec[MIXQ_SEC_SUPER_SCALES] + 2 * b, rand_nonfinite_f16());
                if (what != 0)
                    mx_st16le(s.sec[MIXQ_SEC_SUPER_MINS] + 2 * b, rand_nonfinite_f16());
                mark(bad, n, b * qt->super_block, (b + 1) * qt->super_block);
                any = 1;
            }
            if (coin(2)) /* random scale / min codes: still finite under a finite super-scale */
                for (int k = MIXQ_SEC_SCALES; k <= MIXQ_SEC_MINS; k++)
                    for (size_t i = 0; s.sec[k] && i < s.bytes[k]; i++) s.sec[k][i] = (uint8_t)rnd();
            break;
        default:
            any = 1;
            break;
        }
#undef SKIP_UNIT
    }

    memset(da, GUARD_BYTE, n * sizeof(float) + GUARD);
    memset(db, GUARD_BYTE, n * sizeof(float) + GUARD);
    ref->dequantize_row[qt->id](crowptrs(&s), n, g, da);
    simd->dequantize_row[qt->id](crowptrs(&s), n, g, db);
    c->cases++;
    if (floats_differ(da, db, n, why, sizeof why)) {
        check_fail(c, "%s n=%zu group=%u seed=0x%016" PRIx64 ": %s", qt->name, n, gs, seed, why);
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t got = mx_f32_bits(da[i]), want = got;
            const char *what = NULL;
            if (bad[i]) {
                want = MX_CANONICAL_NAN_BITS;
                what = "poisoned group, expected the canonical NaN";
            } else if (qt->scale_kind == QS_F32) {
                uint8_t code = s.sec[MIXQ_SEC_CODES][i];
                float sc = mx_fp8_ld_f32le(s.sec[MIXQ_SEC_SCALES] + 4 * (l.per_tensor ? 0 : i / g));
                want = mx_f32_bits((e4m3 ? mx_e4m3_to_f32(code) : mx_e5m2_to_f32(code)) * sc);
                what = "finite scale, expected fl(decode(code) * s)";
            } else if (!mx_f32_finite(da[i])) {
                want = 0; /* anything finite */
                what = "finite parameters, expected a finite value";
            }
            if (got != want) {
                check_fail(c, "%s n=%zu group=%u seed=0x%016" PRIx64 ": element %zu: 0x%08" PRIx32 " (%s 0x%08" PRIx32 ")",
                           qt->name, n, gs, seed, i, got, what, want);
                break;
            }
        }
    }
    sections_free(&s);
    free(x);
    free(bad);
    free(da);
    free(db);
}

static void check_qtype(const mx_kernel_set *ref, const mx_kernel_set *simd, const qtype_desc *qt, unsigned rows)
{
    static const char *const imp_names[3] = {"none", "random", "special"};
    const char *path = mx_simd_name(simd->path);
    uint64_t tseed = rng_mix64(base_seed ^ ((uint64_t)qt->id << 48) ^ ((uint64_t)simd->path << 56));
    check cd, cr;

    if (simd->quantize_row[qt->id] == qt->quantize_row)
        note("%s %s quantize is the scalar reference", path, qt->name);
    if (simd->dequantize_row[qt->id] == qt->dequantize_row)
        note("%s %s dequantize is the scalar reference", path, qt->name);

    check_begin(&cd, "%s %s dequantize (of the reference's sections)", path, qt->name);
    for (int search = 0; search <= 1; search++) {
        for (int imp = 0; imp <= 2; imp++) {
            check cq;
            check_begin(&cq, "%s %s quantize search=%s importance=%s", path, qt->name, search ? "on" : "off",
                        imp_names[imp]);
            for (unsigned r = 0; r < rows; r++) {
                qcase qc;
                qc.seed = rng_mix64(tseed + (uint64_t)(search * 3 + imp) * 1000003u + r);
                rng = qc.seed ^ 0x5555u;
                qc.n = pick_length();
                qc.group_size = pick_group(qt);
                qc.search = search;
                qc.imp_mode = imp;
                run_qcase(ref, simd, qt, &qc, r % 2 ? 3 : 0, &cq, &cd);
            }
            check_end(&cq, "rows");
        }
    }
    {
        /* Rows made of special groups only. */
        check cq;
        check_begin(&cq, "%s %s quantize special groups (search on/off, importance)", path, qt->name);
        for (unsigned r = 0; r < rows; r++) {
            qcase qc;
            qc.seed = rng_mix64(tseed + 0xABCDEFu + r);
            rng = qc.seed ^ 0x5555u;
            qc.n = pick_length();
            qc.group_size = pick_group(qt);
            qc.search = (int)(r % 2);
            qc.imp_mode = (int)(r / 2 % 3);
            run_qcase(ref, simd, qt, &qc, 1, &cq, &cd);
        }
        check_end(&cq, "rows");
    }
    check_end(&cd, "rows");

    check_begin(&cr, "%s %s dequantize (random section bytes)", path, qt->name);
    for (unsigned r = 0; r < rows; r++)
        run_dequant_random(ref, simd, qt, rng_mix64(tseed + 0x77777777u + r), &cr);
    check_end(&cr, "rows");

    check_begin(&cr, "%s %s dequantize (NaN / Inf scale parameters -> canonical NaN groups)", path, qt->name);
    for (unsigned r = 0; r < rows; r++)
        run_nonfinite_case(ref, simd, qt, rng_mix64(tseed + 0x3B9ACA07u + r), &cr);
    check_end(&cr, "rows");
}

/* ---- conversions ---- */

typedef void (*from16_fn)(const uint16_t *, size_t, float *);
typedef void (*to16_fn)(const float *, size_t, uint16_t *);

/* Converts src[0..n) with both functions, whole and in random slices; counts mismatching elements. */
static void cmp_from16(check *c, from16_fn fa, from16_fn fb, const uint16_t *src, size_t n, float *da, float *db)
{
    char why[300];
    memset(da, GUARD_BYTE, n * sizeof(float) + GUARD);
    memset(db, GUARD_BYTE, n * sizeof(float) + GUARD);
    fa(src, n, da);
    fb(src, n, db);
    c->cases += (unsigned)n;
    if (floats_differ(da, db, n, why, sizeof why)) {
        for (size_t i = 0; i < n; i++)
            if (mx_f32_bits(da[i]) != mx_f32_bits(db[i]))
                check_fail(c, "input 0x%04x: scalar 0x%08" PRIx32 ", simd 0x%08" PRIx32, src[i], mx_f32_bits(da[i]),
                           mx_f32_bits(db[i]));
        if (c->bad == 0)
            check_fail(c, "%s", why);
    }
}

static void cmp_to16(check *c, to16_fn fa, to16_fn fb, const float *src, size_t n, uint16_t *da, uint16_t *db)
{
    memset(da, GUARD_BYTE, n * 2 + GUARD);
    memset(db, GUARD_BYTE, n * 2 + GUARD);
    fa(src, n, da);
    fb(src, n, db);
    c->cases += (unsigned)n;
    for (size_t i = 0; i < n; i++)
        if (da[i] != db[i])
            check_fail(c, "input 0x%08" PRIx32 " (%.9g): scalar 0x%04x, simd 0x%04x", mx_f32_bits(src[i]),
                       (double)src[i], da[i], db[i]);
    if (memcmp((uint8_t *)(da + n), (uint8_t *)(db + n), GUARD) != 0)
        check_fail(c, "write past element %zu", n);
}

/* Random slices [off, off + len) of src with small lengths (vector tails, unaligned starts). */
static void slices_from16(check *c, from16_fn fa, from16_fn fb, const uint16_t *src, size_t n, float *da, float *db,
                          unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        size_t len = below(70), off = below((uint32_t)(n - len));
        cmp_from16(c, fa, fb, src + off, len, da, db);
    }
}

static void slices_to16(check *c, to16_fn fa, to16_fn fb, const float *src, size_t n, uint16_t *da, uint16_t *db,
                        unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        size_t len = below(70), off = below((uint32_t)(n - len));
        cmp_to16(c, fa, fb, src + off, len, da, db);
    }
}

/* f32 patterns that matter for rounding to f16 / bf16. */
static size_t gen_f32_patterns(float *v, size_t cap)
{
    static const uint32_t specials[] = {
        0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u,
        0x7FBFFFFFu, 0x7FFFFFFFu, 0xFFFFFFFFu, 0x7FA00000u, 0x7F802000u, 0x7F801FFFu, 0x7F810000u, 0x7F80FFFFu,
        0x00000001u, 0x807FFFFFu, 0x00800000u, 0x7F7FFFFFu, 0xFF7FFFFFu, 0x477FE000u, 0x477FEFFFu, 0x477FF000u,
        0x477FF001u, 0xC77FF000u, 0x477FFFFFu, 0x47800000u, 0x33000000u, 0x33000001u, 0x32FFFFFFu, 0x33800000u,
        0x33C00000u, 0x38800000u, 0x387FFFFFu, 0x387FE000u, 0x387FF000u, 0x3F808000u, 0x3F818000u, 0x3F80FFFFu,
        0x7F7F8000u, 0x7F7F7FFFu, 0xFF7F8000u,
    };
    size_t k = 0;
    for (size_t i = 0; i < sizeof specials / sizeof specials[0] && k < cap; i++)
        v[k++] = mx_bits_f32(specials[i]);
    /* every exponent, each sign, mantissas at and around the f16 / bf16 rounding points */
    static const uint32_t lows[] = {0x0000u, 0x0001u, 0x0FFFu, 0x1000u, 0x1001u, 0x1FFFu, 0x7FFFu, 0x8000u, 0x8001u,
                                    0xFFFFu, 0x2000u, 0x3000u, 0x18000u, 0x10000u};
    for (uint32_t e = 0; e < 256; e++)
        for (size_t li = 0; li < sizeof lows / sizeof lows[0]; li++)
            for (int r = 0; r < 3 && k + 2 <= cap; r++) {
                uint32_t hi = (uint32_t)rnd() & 0x7F0000u & (lows[li] >= 0x10000u ? 0x7E0000u : 0x7F0000u);
                uint32_t m = r == 0 ? lows[li] : (((uint32_t)rnd() & 0x7FE000u) | (lows[li] & 0x1FFFu)) ^ (r == 2 ? hi : 0);
                v[k++] = mx_bits_f32(e << 23 | (m & 0x7FFFFFu));
                v[k++] = mx_bits_f32(0x80000000u | e << 23 | (m & 0x7FFFFFu));
            }
    /* exponents 101 .. 143 (f16 subnormal, normal, overflow) with random mantissas */
    while (k < cap / 2)
        v[k++] = mx_bits_f32(((uint32_t)rnd() & 0x807FFFFFu) | (101u + below(43)) << 23);
    /* uniformly random patterns */
    while (k < cap)
        v[k++] = mx_bits_f32((uint32_t)rnd());
    return k;
}

static void check_conversions(const mx_kernel_set *ref, const mx_kernel_set *simd, unsigned scale)
{
    const char *path = mx_simd_name(simd->path);
    size_t n16 = 65536, nf = 262144u * scale, stride_n;
    uint16_t *h = malloc(n16 * sizeof *h);
    float *fa = malloc((nf > n16 ? nf : n16) * sizeof(float) + GUARD);
    float *fb = malloc((nf > n16 ? nf : n16) * sizeof(float) + GUARD);
    float *src = malloc(nf * sizeof(float));
    uint16_t *ha = malloc(nf * 2 + GUARD), *hb = malloc(nf * 2 + GUARD);
    check c;

    if (!h || !fa || !fb || !src || !ha || !hb) {
        fprintf(stderr, "kernel_check: out of memory\n");
        exit(2);
    }
    rng = rng_mix64(base_seed ^ 0xC0FFEEu ^ (uint64_t)simd->path);
    for (size_t i = 0; i < n16; i++) h[i] = (uint16_t)i;

    if (simd->f16_to_f32 == ref->f16_to_f32)
        note("%s f16_to_f32 is the scalar reference", path);
    check_begin(&c, "%s f16 -> f32, all 65536 patterns and random slices", path);
    cmp_from16(&c, ref->f16_to_f32, simd->f16_to_f32, h, n16, fa, fb);
    slices_from16(&c, ref->f16_to_f32, simd->f16_to_f32, h, n16, fa, fb, 2000);
    check_end(&c, "values");

    if (simd->bf16_to_f32 == ref->bf16_to_f32)
        note("%s bf16_to_f32 is the scalar reference", path);
    check_begin(&c, "%s bf16 -> f32, all 65536 patterns and random slices", path);
    cmp_from16(&c, ref->bf16_to_f32, simd->bf16_to_f32, h, n16, fa, fb);
    slices_from16(&c, ref->bf16_to_f32, simd->bf16_to_f32, h, n16, fa, fb, 2000);
    check_end(&c, "values");

    /* f32 -> 16 bits: rounding-point and random patterns, then every 2^32 / nf-th pattern */
    size_t np = gen_f32_patterns(src, nf);
    if (simd->f32_to_f16 == ref->f32_to_f16)
        note("%s f32_to_f16 is the scalar reference", path);
    check_begin(&c, "%s f32 -> f16, boundary/NaN/Inf/subnormal/random patterns, strided sweep, slices", path);
    cmp_to16(&c, ref->f32_to_f16, simd->f32_to_f16, src, np, ha, hb);
    slices_to16(&c, ref->f32_to_f16, simd->f32_to_f16, src, np, ha, hb, 2000);
    stride_n = nf;
    {
        uint64_t stride = (((uint64_t)1 << 32) / stride_n) | 1u;
        uint32_t start = (uint32_t)rnd();
        for (size_t i = 0; i < stride_n; i++) src[i] = mx_bits_f32((uint32_t)(start + i * stride));
        cmp_to16(&c, ref->f32_to_f16, simd->f32_to_f16, src, stride_n, ha, hb);
    }
    check_end(&c, "values");

    np = gen_f32_patterns(src, nf);
    if (simd->f32_to_bf16 == ref->f32_to_bf16)
        note("%s f32_to_bf16 is the scalar reference", path);
    check_begin(&c, "%s f32 -> bf16, boundary/NaN/Inf/subnormal/random patterns, strided sweep, slices", path);
    cmp_to16(&c, ref->f32_to_bf16, simd->f32_to_bf16, src, np, ha, hb);
    slices_to16(&c, ref->f32_to_bf16, simd->f32_to_bf16, src, np, ha, hb, 2000);
    {
        uint64_t stride = (((uint64_t)1 << 32) / stride_n) | 1u;
        uint32_t start = (uint32_t)rnd();
        for (size_t i = 0; i < stride_n; i++) src[i] = mx_bits_f32((uint32_t)(start + i * stride));
        cmp_to16(&c, ref->f32_to_bf16, simd->f32_to_bf16, src, stride_n, ha, hb);
    }
    check_end(&c, "values");

    free(h);
    free(fa);
    free(fb);
    free(src);
    free(ha);
    free(hb);
}

/* ---- search passes (quant_search.h) ---- */

#if defined(MIXQ_HAVE_NEON)
extern const mx_search_ops mx_search_ops_neon; /* src/simd_neon.c */
#endif
#if defined(MIXQ_HAVE_AVX2)
extern const mx_search_ops mx_search_ops_avx2; /* src/simd_avx2.c */
#endif

/* The search passes of a SIMD path, where its translation unit exports them. */
static const mx_search_ops *search_ops_for(mx_simd path)
{
#if defined(MIXQ_HAVE_NEON)
    if (path == MX_SIMD_NEON)
        return &mx_search_ops_neon;
#endif
#if defined(MIXQ_HAVE_AVX2)
    if (path == MX_SIMD_AVX2)
        return &mx_search_ops_avx2;
#endif
    (void)path;
    return NULL;
}

/* Bitwise equality of two results (any two NaNs match). */
static int same_f(float a, float b) { return mx_f32_bits(a) == mx_f32_bits(b) || (a != a && b != b); }

static float rand_ratio(void)
{
    static const float r[] = {1.0f, 1.0625f, 1.125f, 1.25f, 1.5f, 0.9375f, 0.5f, 2.0f};
    return coin(3) ? 0.25f + 2.0f * unit() : r[below(8)];
}

/*
 * A SIMD path's multi-candidate pass on one group: K (0..9) candidates from
 * the asymmetric driver's grid of cuts (and other ranges), each against the
 * scalar asym_pass of that candidate alone.
 */
static void check_asym_multi(const mx_search_ops *ops, check *am, const float *x, const float *w, size_t n,
                             const mx_gstats *st, uint64_t seed)
{
    static const int asym_L[] = {15, 3, 63, 1, 7, 31};
    enum { KMAX = 9 };
    float m[KMAX], id[KMAX], q1[KMAX], q2[KMAX], q3[KMAX];
    int L = asym_L[below(sizeof asym_L / sizeof asym_L[0])];
    size_t K = below(KMAX + 1);
    float step = (st->hi - st->lo) / (float)L;
    for (size_t k = 0; k < K; k++) {
        float a = st->lo + 0.25f * (float)below(3) * step, b = st->hi - 0.25f * (float)below(3) * step;
        m[k] = a;
        id[k] = b > a ? (float)L / (b - a) : 1.0f;
        if (coin(4))
            id[k] *= rand_ratio();
    }
    ops->asym_pass_multi(x, w, n, L, K, m, id, q1, q2, q3);
    for (size_t k = 0; k < K; k++) {
        float r1, r2, r3;
        mx_search_ops_scalar.asym_pass(x, w, n, L, m[k], id[k], &r1, &r2, &r3);
        am->cases++;
        if (!same_f(q1[k], r1) || !same_f(q2[k], r2) || !same_f(q3[k], r3))
            check_fail(am, "n=%zu L=%d candidate %zu of %zu m=%a id=%a seed=0x%016" PRIx64
                       ": sq %a/%a sqq %a/%a sxq %a/%a", n, L, k, K, (double)m[k], (double)id[k], seed,
                       (double)r1, (double)q1[k], (double)r2, (double)q2[k], (double)r3, (double)q3[k]);
    }
}

/*
 * A SIMD path's symmetric multi-candidate pass on one group: K (0..9)
 * candidates from the symmetric driver's starting grid (and other scales),
 * each against the scalar sym_pass of that candidate alone.
 */
static void check_sym_multi(const mx_search_ops *ops, check *sm, const float *x, const float *w, size_t n,
                            const mx_gstats *st, uint64_t seed)
{
    static const int sym_ranges[][2] = {{-127, 127}, {-8, 7}, {-4, 3}, {-32, 31}, {-128, 127}, {-7, 7}};
    static const float offs[] = {0.0f, -0.75f, 0.5f, -0.25f};
    enum { KMAX = 9 };
    float id[KMAX], a[KMAX], b[KMAX];
    unsigned ri = below(sizeof sym_ranges / sizeof sym_ranges[0]);
    int qlo = sym_ranges[ri][0], qhi = sym_ranges[ri][1];
    size_t K = below(KMAX + 1);
    float xm = st->amax > 0.0f ? (coin(2) ? st->amax : -st->amax) : 1.0f;
    for (size_t k = 0; k < K; k++) {
        float t = coin(2) ? (float)qlo - offs[below(4)] : (float)qhi + offs[below(4)];
        id[k] = t / xm;
        if (coin(4))
            id[k] *= rand_ratio();
        if (coin(16))
            id[k] = coin(2) ? 0.0f : 1e30f;
    }
    ops->sym_pass_multi(x, w, n, qlo, qhi, K, id, a, b);
    for (size_t k = 0; k < K; k++) {
        float r1, r2;
        mx_search_ops_scalar.sym_pass(x, w, n, qlo, qhi, id[k], &r1, &r2);
        sm->cases++;
        if (!same_f(a[k], r1) || !same_f(b[k], r2))
            check_fail(sm, "n=%zu q=[%d,%d] candidate %zu of %zu id=%a seed=0x%016" PRIx64 ": sxq %a/%a sqq %a/%a",
                       n, qlo, qhi, k, K, (double)id[k], seed, (double)r1, (double)a[k], (double)r2, (double)b[k]);
    }
}

/*
 * The passes of a SIMD path against mx_search_ops_scalar on random groups
 * and parameters like the drivers pass (and some they never do: d = 0,
 * negative or huge scales).
 */
static void check_search_passes(const mx_search_ops *ops, const char *path, unsigned rows)
{
    static const int sym_ranges[][2] = {{-127, 127}, {-8, 7}, {-4, 3}, {-32, 31}, {-128, 127}, {0, 63}, {0, 15}};
    static const int asym_L[] = {15, 3, 63, 1, 7, 31};
    const mx_search_ops *ref = &mx_search_ops_scalar;
    check cs, cp, ce, ap, ae, am, sm;
    check_begin(&cs, "%s search pass stats", path);
    check_begin(&cp, "%s search pass sym_pass", path);
    check_begin(&ce, "%s search pass sym_err", path);
    check_begin(&ap, "%s search pass asym_pass", path);
    check_begin(&ae, "%s search pass asym_err", path);
    check_begin(&am, "%s search pass asym_pass_multi", path);
    check_begin(&sm, "%s search pass sym_pass_multi", path);
    for (unsigned r = 0; r < rows; r++) {
        uint64_t seed = rng_mix64(base_seed ^ 0x5EA4C8u ^ ((uint64_t)r << 20));
        size_t n;
        float *x, *w = NULL;
        mx_gstats sa, sb;
        rng = seed;
        n = coin(3) ? 1 + below(24) : 1 + below(400);
        x = malloc(n * sizeof *x);
        if (!x) {
            fprintf(stderr, "kernel_check: out of memory\n");
            exit(2);
        }
        gen_row(x, n, n, coin(2) ? 1 : 0);
        if (coin(3)) {
            w = malloc(n * sizeof *w);
            if (!w) {
                fprintf(stderr, "kernel_check: out of memory\n");
                exit(2);
            }
            gen_importance(w, n, 1 + (int)below(2));
        }

        ref->stats(x, w, n, &sa);
        ops->stats(x, w, n, &sb);
        cs.cases++;
        if (!same_f(sa.lo, sb.lo) || !same_f(sa.hi, sb.hi) || !same_f(sa.amax, sb.amax) || !same_f(sa.sw, sb.sw) ||
            !same_f(sa.sx, sb.sx))
            check_fail(&cs, "n=%zu seed=0x%016" PRIx64 ": lo %a/%a hi %a/%a amax %a/%a sw %a/%a sx %a/%a", n, seed,
                       (double)sa.lo, (double)sb.lo, (double)sa.hi, (double)sb.hi, (double)sa.amax, (double)sb.amax,
                       (double)sa.sw, (double)sb.sw, (double)sa.sx, (double)sb.sx);

        for (int k = 0; k < 4; k++) {
            unsigned ri = below(sizeof sym_ranges / sizeof sym_ranges[0]);
            int qlo = sym_ranges[ri][0], qhi = sym_ranges[ri][1];
            float xm = sa.amax > 0.0f ? (coin(2) ? sa.amax : -sa.amax) : 1.0f;
            float id = (float)(coin(2) ? qlo : qhi) * rand_ratio() / xm, a1, a2, b1, b2, e1, e2, d;
            if (coin(8))
                id = coin(2) ? 0.0f : 1e30f;
            ref->sym_pass(x, w, n, qlo, qhi, id, &a1, &b1);
            ops->sym_pass(x, w, n, qlo, qhi, id, &a2, &b2);
            cp.cases++;
            if (!same_f(a1, a2) || !same_f(b1, b2))
                check_fail(&cp, "n=%zu q=[%d,%d] id=%a seed=0x%016" PRIx64 ": sxq %a/%a sqq %a/%a", n, qlo, qhi,
                           (double)id, seed, (double)a1, (double)a2, (double)b1, (double)b2);

            d = mx_f16_to_f32(mx_f32_to_f16(xm / (float)qhi * rand_ratio()));
            if (coin(8))
                d = coin(2) ? 0.0f : -d;
            e1 = ref->sym_err(x, w, n, qlo, qhi, d);
            e2 = ops->sym_err(x, w, n, qlo, qhi, d);
            ce.cases++;
            if (!same_f(e1, e2))
                check_fail(&ce, "n=%zu q=[%d,%d] d=%a seed=0x%016" PRIx64 ": %a/%a", n, qlo, qhi, (double)d, seed,
                           (double)e1, (double)e2);
        }
        for (int k = 0; k < 4; k++) {
            int L = asym_L[below(sizeof asym_L / sizeof asym_L[0])];
            float R = sa.hi - sa.lo, a = sa.lo + 0.0625f * (float)below(3) * R, b = sa.hi - 0.0625f * (float)below(3) * R;
            float id = R > 0.0f && b > a ? (float)L / (b - a) : 1.0f, q1, q2, r1, r2, t1, t2, e1, e2, sc, m;
            if (coin(4))
                id *= rand_ratio();
            ref->asym_pass(x, w, n, L, a, id, &q1, &r1, &t1);
            ops->asym_pass(x, w, n, L, a, id, &q2, &r2, &t2);
            ap.cases++;
            if (!same_f(q1, q2) || !same_f(r1, r2) || !same_f(t1, t2))
                check_fail(&ap, "n=%zu L=%d m=%a id=%a seed=0x%016" PRIx64 ": sq %a/%a sqq %a/%a sxq %a/%a", n, L,
                           (double)a, (double)id, seed, (double)q1, (double)q2, (double)r1, (double)r2, (double)t1,
                           (double)t2);

            m = mx_f16_to_f32(mx_f16_round_down(a));
            sc = mx_f16_to_f32(mx_f32_to_f16((R > 0.0f ? R : 1.0f) / (float)L * rand_ratio()));
            if (coin(8))
                sc = coin(2) ? 0.0f : -sc;
            e1 = ref->asym_err(x, w, n, L, sc, m);
            e2 = ops->asym_err(x, w, n, L, sc, m);
            ae.cases++;
            if (!same_f(e1, e2))
                check_fail(&ae, "n=%zu L=%d s=%a m=%a seed=0x%016" PRIx64 ": %a/%a", n, L, (double)sc, (double)m, seed,
                           (double)e1, (double)e2);
        }
        if (ops->asym_pass_multi != NULL)
            check_asym_multi(ops, &am, x, w, n, &sa, seed);
        if (ops->sym_pass_multi != NULL)
            check_sym_multi(ops, &sm, x, w, n, &sa, seed);
        free(x);
        free(w);
    }
    check_end(&cs, "groups");
    check_end(&cp, "calls");
    check_end(&ce, "calls");
    check_end(&ap, "calls");
    check_end(&ae, "calls");
    check_end(&am, "candidates");
    check_end(&sm, "candidates");
}

/* ---- matmul row kernels (matmul_kernels.h) ---- */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "kernel_check: out of memory\n");
        exit(2);
    }
    return p;
}

#if defined(MIXQ_HAVE_NEON)
extern const mx_dot_rows_fn mx_dot_rows_neon_buffered[MIXQ_QT_COUNT]; /* src/simd_neon_matmul.c */
#endif
#if defined(MIXQ_HAVE_AVX2)
extern const mx_dot_rows_fn mx_dot_rows_avx2_buffered[MIXQ_QT_COUNT]; /* src/simd_avx2_matmul.c */
#endif

/* A SIMD path's dot_rows without its direct chunk kernels, where its translation unit exports them. */
static const mx_dot_rows_fn *buffered_rows_for(mx_simd path)
{
#if defined(MIXQ_HAVE_NEON)
    if (path == MX_SIMD_NEON)
        return mx_dot_rows_neon_buffered;
#endif
#if defined(MIXQ_HAVE_AVX2)
    if (path == MX_SIMD_AVX2)
        return mx_dot_rows_avx2_buffered;
#endif
    (void)path;
    return NULL;
}

/*
 * rows random tensors of type qt (group size, shape and x rows random):
 * mx_matmul with the SIMD set against the scalar set within
 * MX_MM_TOL(n) * sum |w_i x_i| (+ n 2^-149 for float underflow), and the
 * SIMD result on a pool of 2 threads bit for bit equal to one thread, and
 * (where exported) the path's direct chunk kernels bit for bit equal to its
 * buffered row loop.
 */
static void check_matmul(const mx_kernel_set *ref, const mx_kernel_set *simd, const qtype_desc *qt, unsigned rows,
                         mx_pool *pool)
{
    check c, d, e;
    const mx_dot_rows_fn *buffered = buffered_rows_for(simd->path);
    check_begin(&c, "%s %s matmul within MX_MM_TOL of scalar", mx_simd_name(simd->path), qt->name);
    check_begin(&d, "%s %s matmul thread-count independent", mx_simd_name(simd->path), qt->name);
    check_begin(&e, "%s %s matmul direct kernels = buffered", mx_simd_name(simd->path), qt->name);
    for (unsigned it = 0; it < rows; it++) {
        uint64_t seed = rng_mix64(base_seed ^ 0x4D4D00u ^ ((uint64_t)qt->id << 40) ^ ((uint64_t)it << 8));
        qlayout lay;
        rng = seed;
        size_t n = pick_length(), nw = 1 + below(5), nx = 1 + below(10);
        unsigned group = qt->quantized ? pick_group(qt) : 0;
        if (!qtype_layout(qt, ST_F32, nw, n, group, &lay))
            continue;
        uint8_t *bytes = xmalloc((size_t)lay.total);
        float *w = xmalloc(nw * n * sizeof *w), *deq = xmalloc(nw * n * sizeof *deq);
        float *x = xmalloc(nx * n * sizeof *x), *y0 = xmalloc(nx * nw * sizeof *y0);
        float *y1 = xmalloc(nx * nw * sizeof *y1), *y2 = xmalloc(nx * nw * sizeof *y2);
        float amax = 0.0f;
        memset(bytes, 0, (size_t)lay.total);
        for (size_t r = 0; r < nw; r++)
            gen_row(w + r * n, n, lay.group ? lay.group : n, 8);
        for (size_t i = 0; i < nw * n; i++)
            amax = fabsf(w[i]) > amax ? fabsf(w[i]) : amax;
        const int8_t *levels = NULL; /* codebook types: one codebook for the whole tensor, fitted first */
        if (qt->codebook_levels) {
            int8_t *cb = (int8_t *)(bytes + lay.offset[MIXQ_SEC_CODEBOOK]);
            qt->fit_codebook(w, NULL, nw, n, lay.group, cb);
            levels = cb;
        }
        for (size_t r = 0; r < nw; r++) {
            mx_rowptrs p;
            mx_crowptrs cp;
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
                p.sec[k] = qtype_has_section(qt, (mixq_section_kind)k) ? bytes + lay.offset[k] + r * lay.row_bytes[k] : NULL;
                cp.sec[k] = p.sec[k];
            }
            if (qt->quantized) {
                mx_qparams qp = {NULL, false, lay.per_tensor ? amax : -1.0f, levels};
                ref->quantize_row[qt->id](w + r * n, n, lay.group, &qp, p);
                ref->dequantize_row[qt->id](cp, n, lay.group, deq + r * n);
            } else {
                for (size_t i = 0; i < n; i++) {
                    float v = w[r * n + i];
                    uint8_t *e = p.sec[MIXQ_SEC_DATA];
                    if (qt->id == MIXQ_QT_F32) {
                        memcpy(e + 4 * i, &v, 4);
                        deq[r * n + i] = v;
                    } else {
                        uint16_t h = qt->id == MIXQ_QT_F16 ? mx_f32_to_f16(v) : mx_f32_to_bf16(v);
                        mx_st16le(e + 2 * i, h);
                        deq[r * n + i] = qt->id == MIXQ_QT_F16 ? mx_f16_to_f32(h) : mx_bf16_to_f32(h);
                    }
                }
            }
        }
        for (size_t i = 0; i < nx * n; i++)
            x[i] = gen_value(below(2), coin(4) ? pow2f((int)below(20) - 10) : 1.0f, 0.0f);
        mx_matmul(ref, qt, &lay, bytes, x, nx, n, y0, nw, NULL);
        mx_matmul(simd, qt, &lay, bytes, x, nx, n, y1, nw, NULL);
        mx_matmul(simd, qt, &lay, bytes, x, nx, n, y2, nw, pool);
        if (buffered) {
            float *y3 = xmalloc(nx * sizeof *y3);
            for (size_t o = 0; o < nw; o++) {
                mx_crowptrs cp;
                for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                    cp.sec[k] = qtype_has_section(qt, (mixq_section_kind)k) ? bytes + lay.offset[k] + o * lay.row_bytes[k]
                                                                          : NULL;
                buffered[qt->id](cp, n, lay.group, x, nx, n, y3, 1);
                for (size_t r = 0; r < nx; r++) {
                    e.cases++;
                    if (mx_f32_bits(y3[r]) != mx_f32_bits(y1[r * nw + o]))
                        check_fail(&e, "n=%zu group=%u x row %zu out %zu seed=0x%016" PRIx64 ": direct %a buffered %a",
                                   n, lay.group, r, o, seed, (double)y1[r * nw + o], (double)y3[r]);
                }
            }
            free(y3);
        }
        for (size_t r = 0; r < nx; r++)
            for (size_t o = 0; o < nw; o++) {
                double m = 0.0;
                for (size_t i = 0; i < n; i++)
                    m += fabs((double)deq[o * n + i] * (double)x[r * n + i]);
                double diff = fabs((double)y1[r * nw + o] - (double)y0[r * nw + o]);
                double tol = MX_MM_TOL(n) * m + (double)n * 0x1p-149;
                c.cases++;
                if (!(diff <= tol))
                    check_fail(&c, "n=%zu group=%u x row %zu out %zu seed=0x%016" PRIx64 ": scalar %a simd %a tol %g", n,
                               lay.group, r, o, seed, (double)y0[r * nw + o], (double)y1[r * nw + o], tol);
                d.cases++;
                if (mx_f32_bits(y1[r * nw + o]) != mx_f32_bits(y2[r * nw + o]))
                    check_fail(&d, "n=%zu group=%u x row %zu out %zu seed=0x%016" PRIx64 ": %a vs %a", n, lay.group, r, o,
                               seed, (double)y1[r * nw + o], (double)y2[r * nw + o]);
            }
        free(bytes);
        free(w);
        free(deq);
        free(x);
        free(y0);
        free(y1);
        free(y2);
    }
    check_end(&c, "outputs");
    check_end(&d, "outputs");
    if (buffered)
        check_end(&e, "outputs");
}

/* ---- main ---- */

/* The set of each path matches the table: quantize/dequantize present exactly for quantized types. */
static void check_set_shape(const mx_kernel_set *ks)
{
    check c;
    check_begin(&c, "%s kernel set covers the type table", mx_simd_name(ks->path));
    for (int t = 0; t < MIXQ_QT_COUNT; t++) {
        const qtype_desc *qt = qtype_get((mixq_qtype)t);
        int want = qt && qt->quantized && qt->quantize_row;
        c.cases++;
        if (want && (!ks->quantize_row[t] || !ks->dequantize_row[t]))
            check_fail(&c, "type %d (%s) has no kernel", t, qt->name);
        if (!want && ks->quantize_row[t] && (!qt || !qt->quantized))
            check_fail(&c, "type %d is not quantized but has a kernel", t);
    }
    if (!ks->f32_to_f16 || !ks->f16_to_f32 || !ks->f32_to_bf16 || !ks->bf16_to_f32)
        check_fail(&c, "a conversion is missing");
    check_end(&c, "types");
}

int main(void)
{
    const char *e;
    const mx_kernel_set *ref = mx_kernels_for(MX_SIMD_SCALAR);
    int simd_paths = 0;

    if ((e = getenv("MIXQ_KERNEL_CHECK_SEED")) && *e)
        base_seed = strtoull(e, NULL, 0);
    if ((e = getenv("MIXQ_KERNEL_CHECK_SCALE")) && *e && atoi(e) > 0)
        iter_scale = (unsigned)atoi(e);
    printf("#    kernel_check: seed 0x%" PRIx64 ", scale %u\n", base_seed, iter_scale);

    {
        check c;
        check_begin(&c, "scalar kernel set present");
        c.cases = 1;
        if (!ref)
            check_fail(&c, "mx_kernels_for(MX_SIMD_SCALAR) is NULL");
        check_end(&c, "sets");
        if (!ref)
            goto done;
    }
#if defined(MIXQ_HAVE_NEON)
    {
        /* A NEON build must have the NEON path (selected at compile time). */
        check c;
        check_begin(&c, "neon path built in and selected by default");
        c.cases = 1;
        if (!mx_kernels_for(MX_SIMD_NEON))
            check_fail(&c, "mx_kernels_for(MX_SIMD_NEON) is NULL");
        else if (!getenv("MIXQ_SIMD") && mx_kernels()->path != MX_SIMD_NEON)
            check_fail(&c, "mx_kernels() is %s", mx_simd_name(mx_kernels()->path));
        check_end(&c, "sets");
    }
#endif

    for (int path = 1; path < MX_SIMD_COUNT; path++) {
        const mx_kernel_set *simd = mx_kernels_for((mx_simd)path);
        if (!simd) {
            note("path %s not available in this build or on this CPU", mx_simd_name((mx_simd)path));
            continue;
        }
        simd_paths++;
        check_set_shape(simd);
        check_conversions(ref, simd, iter_scale);
        if (search_ops_for(simd->path))
            check_search_passes(search_ops_for(simd->path), mx_simd_name(simd->path), 1000 * iter_scale);
        else
            note("%s search passes not exported to this test", mx_simd_name(simd->path));
        for (int t = 0; t < MIXQ_QT_COUNT; t++) {
            const qtype_desc *qt = qtype_get((mixq_qtype)t);
            if (!qt || !qt->quantized || !qt->quantize_row || !qt->dequantize_row)
                continue;
            if (!simd->quantize_row[t] || !simd->dequantize_row[t])
                continue; /* reported by check_set_shape */
            check_qtype(ref, simd, qt, 300 * iter_scale);
        }
        {
            mx_pool *pool = mx_pool_create(2);
            if (!pool) {
                fprintf(stderr, "kernel_check: cannot start threads\n");
                exit(2);
            }
            for (int t = 0; t < MIXQ_QT_COUNT; t++) {
                const qtype_desc *qt = qtype_get((mixq_qtype)t);
                if (!qt || !ref->dot_rows[t])
                    continue;
                if (!simd->dot_rows[t]) {
                    check c;
                    check_begin(&c, "%s %s matmul kernel present", mx_simd_name(simd->path), qt->name);
                    c.cases = 1;
                    check_fail(&c, "no dot_rows");
                    check_end(&c, "sets");
                    continue;
                }
                check_matmul(ref, simd, qt, 100 * iter_scale, pool);
            }
            mx_pool_destroy(pool);
        }
    }
    if (simd_paths == 0)
        note("no SIMD path to compare: nothing else to check");
done:
    printf("kernel_check: %u passed, %u failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
