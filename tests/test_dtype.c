/* test_dtype.c - the dtype table and st_to_f32 for every dtype, from unaligned sources. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dtype.h"
#include "common/half.h"

/* Little-endian byte writers (independent of the code under test). */
static void put_le(uint8_t *p, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Writes n raw values (as little-endian integers of the dtype's size) at an
 * odd offset inside a buffer, converts, and compares bit for bit with want.
 */
static void check_conv(st_dtype dt, const uint64_t *raw, const float *want, size_t n)
{
    unsigned size = st_dtypes[dt].size;
    for (size_t misalign = 0; misalign < 8; misalign += 3) {
        uint8_t *buf = calloc(n * size + 16, 1);
        float *out = calloc(n + 1, sizeof *out);
        cr_assert(buf && out);
        for (size_t i = 0; i < n; i++)
            put_le(buf + misalign + i * size, raw[i], size);
        out[n] = 12345.0f;
        st_to_f32(dt, buf + misalign, n, out);
        for (size_t i = 0; i < n; i++) {
            int same = isnan(want[i]) ? isnan(out[i])
                                      : mx_f32_bits(out[i]) == mx_f32_bits(want[i]);
            cr_assert(same, "%s[%zu] (misalign %zu): got %a want %a", st_dtypes[dt].name, i,
                      misalign, (double)out[i], (double)want[i]);
        }
        cr_assert_eq(out[n], 12345.0f, "wrote past the end");
        free(buf);
        free(out);
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(dtype, table_and_parse)
{
    static const unsigned sizes[ST_DTYPE_COUNT] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 1, 1, 2, 2, 4, 8};
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        st_dtype d;
        cr_assert(st_dtype_parse(st_dtypes[i].name, &d));
        cr_assert_eq(d, (st_dtype)i);
        cr_assert_eq(st_dtypes[i].size, sizes[i], "%s", st_dtypes[i].name);
    }
    st_dtype d;
    cr_assert(!st_dtype_parse("bf16", &d));
    cr_assert(!st_dtype_parse("F128", &d));
    cr_assert(!st_dtype_parse("", &d));
}

Test(dtype, bool_and_8bit_ints)
{
    uint64_t b[] = {0, 1, 2, 255};
    float bw[] = {0, 1, 1, 1};
    check_conv(ST_BOOL, b, bw, N(b));
    uint64_t u8[] = {0, 1, 127, 128, 255};
    float u8w[] = {0, 1, 127, 128, 255};
    check_conv(ST_U8, u8, u8w, N(u8));
    uint64_t i8[] = {0, 1, 127, 0x80, 0xFF, 0xFE};
    float i8w[] = {0, 1, 127, -128, -1, -2};
    check_conv(ST_I8, i8, i8w, N(i8));
}

Test(dtype, 16_and_32bit_ints)
{
    uint64_t u16[] = {0, 0x1234, 0xFFFF};
    float u16w[] = {0, 4660, 65535};
    check_conv(ST_U16, u16, u16w, N(u16));
    uint64_t i16[] = {0x7FFF, 0x8000, 0xFFFF, 0x0102};
    float i16w[] = {32767, -32768, -1, 258};
    check_conv(ST_I16, i16, i16w, N(i16));
    /* 2^24 + 1 rounds to even (2^24); 2^24 + 3 to 2^24 + 4. */
    uint64_t u32[] = {0, 16777216, 16777217, 16777219, 0xFFFFFFFFu};
    float u32w[] = {0, 16777216.0f, 16777216.0f, 16777220.0f, 4294967296.0f};
    check_conv(ST_U32, u32, u32w, N(u32));
    uint64_t i32[] = {0x80000000u, 0xFFFFFFFFu, 0x7FFFFFFFu, (uint32_t)-16777217};
    float i32w[] = {-2147483648.0f, -1, 2147483648.0f, -16777216.0f};
    check_conv(ST_I32, i32, i32w, N(i32));
}

Test(dtype, 64bit_ints)
{
    /* 2^60 + 2^36 + 1 is just above a float midpoint: one rounding gives 2^60 + 2^37,
     * rounding through double first would give the tie and then 2^60. */
    uint64_t u64[] = {0, 1, UINT64_MAX, 0x8000000000000000u, 0x0123456789ABCDEFu,
                      0x1000001000000001u};
    float u64w[] = {0, 1, 18446744073709551616.0f, 9223372036854775808.0f,
                    81985529216486895.0f, 0x1.000002p60f};
    check_conv(ST_U64, u64, u64w, N(u64));
    uint64_t i64[] = {0x8000000000000000u, UINT64_MAX, 0x7FFFFFFFFFFFFFFFu, (uint64_t)-3,
                      (uint64_t)-0x1000001000000001};
    float i64w[] = {-9223372036854775808.0f, -1, 9223372036854775808.0f, -3, -0x1.000002p60f};
    check_conv(ST_I64, i64, i64w, N(i64));
}

Test(dtype, floats)
{
    uint64_t f32[] = {0x3F800000u, 0x80000000u, 0x7F800000u, 0x00000001u, 0x7FC00001u,
                      0xC0490FDBu};
    float f32w[] = {1.0f, -0.0f, INFINITY, 0x1p-149f, NAN, -3.14159274f};
    check_conv(ST_F32, f32, f32w, N(f32));
    /* Bit-exact for a NaN payload too. */
    uint8_t nb[5] = {0, 0x01, 0x00, 0xC0, 0xFF};
    float o;
    st_to_f32(ST_F32, nb + 1, 1, &o);
    cr_assert_eq(mx_f32_bits(o), 0xFFC00001u);

    double dv[] = {1.0, -0.0, 1e300, -1e300, 1e-50, 1.0 + 0x1p-24, 1.0 + 0x1.8p-23, 3.5,
                   0x1.fffffefffffffp127, 0x1.ffffffp127, 0x1p-149, 0x1p-150, 0x1.8p-149};
    float dw[] = {1.0f, -0.0f, INFINITY, -INFINITY, 0.0f, 1.0f, 1.0f + 0x1p-22f, 3.5f,
                  0x1.fffffep127f, INFINITY, 0x1p-149f, 0.0f, 0x1p-148f};
    uint64_t f64[N(dv)];
    for (size_t i = 0; i < N(dv); i++)
        memcpy(&f64[i], &dv[i], 8);
    check_conv(ST_F64, f64, dw, N(dv));

    uint64_t f16[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x8000, 0x7E00};
    float f16w[] = {1.0f, -2.0f, 65504.0f, 0x1p-24f, INFINITY, -0.0f, NAN};
    check_conv(ST_F16, f16, f16w, N(f16));
    uint64_t bf16[] = {0x3F80, 0xC049, 0x7F7F, 0x0001, 0xFF80};
    float bf16w[] = {1.0f, -3.140625f, 0x1.fep127f, 0x1p-133f, -INFINITY};
    check_conv(ST_BF16, bf16, bf16w, N(bf16));
    uint64_t e4[] = {0x38, 0x7E, 0xFE, 0x01, 0x7F, 0x80};
    float e4w[] = {1.0f, 448.0f, -448.0f, 0x1p-9f, NAN, -0.0f};
    check_conv(ST_F8_E4M3, e4, e4w, N(e4));
    uint64_t e5[] = {0x3C, 0x7B, 0x7C, 0x01, 0xFF, 0xC0};
    float e5w[] = {1.0f, 57344.0f, INFINITY, 0x1p-16f, NAN, -2.0f};
    check_conv(ST_F8_E5M2, e5, e5w, N(e5));
}

Test(dtype, zero_count_and_bad_dtype)
{
    float out[2] = {7.0f, 7.0f};
    st_to_f32(ST_F32, NULL, 0, out);
    cr_assert_eq(out[0], 7.0f);
    uint8_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    st_to_f32(ST_DTYPE_COUNT, src, 2, out);
    cr_assert(out[0] == 0.0f && out[1] == 0.0f);
}

/*
 * The f16 / bf16 / f32 conversions take the kernel set's path on aligned
 * sources and the byte-assembling loop on odd addresses: both give the bits
 * of the scalar element conversions, for every 16-bit pattern.
 */
Test(dtype, aligned_and_odd_sources_agree)
{
    enum { N = 65536 + 37 };
    uint8_t *raw = malloc(4 * N + 8);
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    cr_assert(raw && a && b);
    const st_dtype types[] = {ST_F16, ST_BF16, ST_F32};
    for (size_t t = 0; t < 3; t++) {
        size_t es = st_dtypes[types[t]].size;
        for (size_t i = 0; i < N; i++) { /* every 16-bit pattern (and, for f32, those shifted into each half) */
            uint32_t v = (uint32_t)(i & 0xFFFFu) * (es == 4 ? 0x10001u : 1u) ^ (uint32_t)(i >> 16);
            for (size_t k = 0; k < es; k++) raw[2 + i * es + k] = (uint8_t)(v >> (8 * k));
        }
        st_to_f32(types[t], raw + 2, N, a); /* even address */
        memmove(raw + 3, raw + 2, N * es);
        st_to_f32(types[t], raw + 3, N, b); /* odd address */
        for (size_t i = 0; i < N; i++) {
            uint32_t ua, ub;
            memcpy(&ua, &a[i], 4);
            memcpy(&ub, &b[i], 4);
            cr_assert_eq(ua, ub, "%s element %zu: 0x%08x vs 0x%08x", st_dtypes[types[t]].name, i, ua, ub);
            if (es == 2) {
                uint16_t h = (uint16_t)(i & 0xFFFFu);
                float want = types[t] == ST_F16 ? mx_f16_to_f32(h) : mx_bf16_to_f32(h);
                uint32_t uw;
                memcpy(&uw, &want, 4);
                if (i < 65536) cr_assert_eq(ua, uw, "%s 0x%04x", st_dtypes[types[t]].name, h);
            }
        }
    }
    free(raw);
    free(a);
    free(b);
}
