/* dtype_convert.c - converting little-endian safetensors elements to float. */
#include "common/dtype.h"
#include "common/half.h"
#include "kernels/simd.h"

#include <stdint.h>

#include <string.h>

/* Host byte order: little-endian hosts use the stored bits directly. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MX_HOST_LE 1
#else
#define MX_HOST_LE 0
#endif

/* Little-endian loads from any address (byte assembly: no alignment or host-endianness assumption). */
static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }
static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

/* Two's complement reinterpretation without implementation-defined conversions. */
static int32_t sx8(uint8_t u) { return u < 0x80u ? (int32_t)u : (int32_t)u - 0x100; }
static int32_t sx16(uint16_t u) { return u < 0x8000u ? (int32_t)u : (int32_t)u - 0x10000; }
static int64_t sx32(uint32_t u) { return u < 0x80000000u ? (int64_t)u : (int64_t)u - 0x100000000; }
static int64_t sx64(uint64_t u)
{
    return u < 0x8000000000000000u ? (int64_t)u : -(int64_t)(~u) - 1;
}

/*
 * Integers and F64 convert with a C cast (round to nearest even under the
 * default rounding mode); Bool is 1 for any non-zero byte.  An invalid dtype
 * writes zeros.
 */
void st_to_f32(st_dtype dtype, const uint8_t *src, size_t n, float *dst)
{
    size_t i;
    switch (dtype) {
    case ST_BOOL:
        for (i = 0; i < n; i++) dst[i] = src[i] != 0 ? 1.0f : 0.0f;
        break;
    case ST_U8:
        for (i = 0; i < n; i++) dst[i] = (float)src[i];
        break;
    case ST_I8:
        for (i = 0; i < n; i++) dst[i] = (float)sx8(src[i]);
        break;
    case ST_U16:
        for (i = 0; i < n; i++) dst[i] = (float)ld16(src + 2 * i);
        break;
    case ST_I16:
        for (i = 0; i < n; i++) dst[i] = (float)sx16(ld16(src + 2 * i));
        break;
    case ST_U32:
        for (i = 0; i < n; i++) dst[i] = (float)ld32(src + 4 * i);
        break;
    case ST_I32:
        for (i = 0; i < n; i++) dst[i] = (float)sx32(ld32(src + 4 * i));
        break;
    case ST_U64:
        for (i = 0; i < n; i++) dst[i] = (float)ld64(src + 8 * i);
        break;
    case ST_I64:
        for (i = 0; i < n; i++) dst[i] = (float)sx64(ld64(src + 8 * i));
        break;
    case ST_F8_E4M3:
        for (i = 0; i < n; i++) dst[i] = mx_e4m3_to_f32(src[i]);
        break;
    case ST_F8_E5M2:
        for (i = 0; i < n; i++) dst[i] = mx_e5m2_to_f32(src[i]);
        break;
    case ST_F16:
#if MX_HOST_LE
        if (((uintptr_t)src & 1u) == 0) { /* the kernel set's conversion (SIMD when available), bit-identical */
            mx_kernels()->f16_to_f32((const uint16_t *)(const void *)src, n, dst);
            break;
        }
#endif
        for (i = 0; i < n; i++) dst[i] = mx_f16_to_f32(ld16(src + 2 * i));
        break;
    case ST_BF16:
#if MX_HOST_LE
        if (((uintptr_t)src & 1u) == 0) {
            mx_kernels()->bf16_to_f32((const uint16_t *)(const void *)src, n, dst);
            break;
        }
#endif
        for (i = 0; i < n; i++) dst[i] = mx_bf16_to_f32(ld16(src + 2 * i));
        break;
    case ST_F32:
#if MX_HOST_LE
        if (n) memcpy(dst, src, n * sizeof *dst); /* same bits: binary32 little-endian */
        break;
#endif
        for (i = 0; i < n; i++) dst[i] = mx_bits_f32(ld32(src + 4 * i));
        break;
    case ST_F64:
        for (i = 0; i < n; i++) {
            uint64_t u = ld64(src + 8 * i);
            double d;
            memcpy(&d, &u, sizeof d);
            dst[i] = (float)d;
        }
        break;
    default:
        for (i = 0; i < n; i++) dst[i] = 0.0f;
        break;
    }
}
