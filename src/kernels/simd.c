/* simd.c - builds the kernel sets and picks one at run time (see simd.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "kernels/simd.h"
#include "kernels/matmul_kernels.h"

void mx_f32_to_f16_array(const float *src, size_t n, uint16_t *dst)
{
    for (size_t i = 0; i < n; i++) dst[i] = mx_f32_to_f16(src[i]);
}

void mx_f16_to_f32_array(const uint16_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) dst[i] = mx_f16_to_f32(src[i]);
}

void mx_f32_to_bf16_array(const float *src, size_t n, uint16_t *dst)
{
    for (size_t i = 0; i < n; i++) dst[i] = mx_f32_to_bf16(src[i]);
}

void mx_bf16_to_f32_array(const uint16_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) dst[i] = mx_bf16_to_f32(src[i]);
}

static mx_kernel_set sets[MX_SIMD_COUNT];
static int available[MX_SIMD_COUNT];
static const mx_kernel_set *active;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fill_scalar(mx_kernel_set *s)
{
    for (int t = 0; t < MIXQ_QT_COUNT; t++) {
        s->quantize_row[t] = mx_qtypes[t].quantize_row;
        s->dequantize_row[t] = mx_qtypes[t].dequantize_row;
        s->dot_rows[t] = mx_dot_rows_scalar[t];
    }
    s->f32_to_f16 = mx_f32_to_f16_array;
    s->f16_to_f32 = mx_f16_to_f32_array;
    s->f32_to_bf16 = mx_f32_to_bf16_array;
    s->bf16_to_f32 = mx_bf16_to_f32_array;
}

#if defined(MIXQ_HAVE_AVX2)
#include <cpuid.h>

/* True if the CPU has AVX2, FMA and F16C and the OS saves YMM state (cpuid + xgetbv). */
static int cpu_has_avx2(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return 0; /* XMM and YMM state enabled */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1; /* AVX2 */
}
#endif

static void init(void)
{
    fill_scalar(&sets[MX_SIMD_SCALAR]);
    sets[MX_SIMD_SCALAR].path = MX_SIMD_SCALAR;
    available[MX_SIMD_SCALAR] = 1;
#if defined(MIXQ_HAVE_AVX2)
    if (cpu_has_avx2()) {
        fill_scalar(&sets[MX_SIMD_AVX2]);
        sets[MX_SIMD_AVX2].path = MX_SIMD_AVX2;
        mx_simd_fill_avx2(&sets[MX_SIMD_AVX2]);
        mx_simd_fill_avx2_nl4(&sets[MX_SIMD_AVX2]); /* before the matmul: it takes the set's dequantizers */
        mx_simd_fill_avx2_cb(&sets[MX_SIMD_AVX2]); /* before the matmul fill: it copies the dequantizers */
        mx_simd_fill_avx2_matmul(&sets[MX_SIMD_AVX2]);
        available[MX_SIMD_AVX2] = 1;
    }
#endif
#if defined(MIXQ_HAVE_NEON)
    fill_scalar(&sets[MX_SIMD_NEON]);
    sets[MX_SIMD_NEON].path = MX_SIMD_NEON;
    mx_simd_fill_neon(&sets[MX_SIMD_NEON]);
    mx_simd_fill_neon_nl4(&sets[MX_SIMD_NEON]); /* before the matmul: it takes the set's dequantizers */
    mx_simd_fill_neon_cb(&sets[MX_SIMD_NEON]); /* before the matmul fill: it copies the dequantizers */
    mx_simd_fill_neon_matmul(&sets[MX_SIMD_NEON]);
    available[MX_SIMD_NEON] = 1;
#endif
    /* best available, unless MIXQ_SIMD names another available path */
    active = &sets[MX_SIMD_SCALAR];
    for (int p = MX_SIMD_COUNT - 1; p > 0; p--)
        if (available[p]) {
            active = &sets[p];
            break;
        }
    const char *env = getenv("MIXQ_SIMD");
    if (env && *env) {
        for (int p = 0; p < MX_SIMD_COUNT; p++)
            if (!strcmp(env, mx_simd_name((mx_simd)p)) && available[p]) active = &sets[p];
    }
}

const char *mx_simd_name(mx_simd path)
{
    static const char *const names[MX_SIMD_COUNT] = {"scalar", "avx2", "neon"};
    return (unsigned)path < MX_SIMD_COUNT ? names[path] : "unknown";
}

const mx_kernel_set *mx_kernels_for(mx_simd path)
{
    pthread_once(&once, init);
    return (unsigned)path < MX_SIMD_COUNT && available[path] ? &sets[path] : NULL;
}

const mx_kernel_set *mx_kernels(void)
{
    pthread_once(&once, init);
    return active;
}
