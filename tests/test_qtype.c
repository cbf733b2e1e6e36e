/* test_qtype.c - the quant type table, names, group rules and section layout (FORMAT.md §4, §5). */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "mixq.h"
#include "qtype.h"

static const qtype_desc *QT(mixq_qtype id)
{
    const qtype_desc *q = qtype_get(id);
    cr_assert_not_null(q);
    return q;
}

/* Computes a layout that must succeed. */
static qlayout lay(mixq_qtype id, st_dtype src, uint64_t rows, uint64_t k, unsigned g)
{
    qlayout l;
    cr_assert(qtype_layout(QT(id), src, rows, k, g, &l), "layout %s %llu x %llu g%u failed",
              mixq_qtype_name(id), (unsigned long long)rows, (unsigned long long)k, g);
    return l;
}

static void expect_sec(const qlayout *l, mixq_section_kind k, uint64_t row_bytes, uint64_t off,
                       uint64_t len)
{
    cr_assert_eq(l->row_bytes[k], row_bytes, "%s row_bytes %llu", mixq_section_name(k),
                 (unsigned long long)l->row_bytes[k]);
    cr_assert_eq(l->offset[k], off, "%s offset %llu", mixq_section_name(k),
                 (unsigned long long)l->offset[k]);
    cr_assert_eq(l->length[k], len, "%s length %llu", mixq_section_name(k),
                 (unsigned long long)l->length[k]);
}

Test(qtype, table)
{
    for (int i = 0; i < MIXQ_QT_COUNT; i++) {
        if (!mx_qtypes[i].name) continue; /* not implemented in this build yet */
        cr_assert_eq(mx_qtypes[i].id, (mixq_qtype)i);
        cr_assert_eq(qtype_get((mixq_qtype)i), &mx_qtypes[i]);
        cr_assert_eq(mx_qtypes[i].quantized, mx_qtypes[i].quantize_row != NULL);
        cr_assert_eq(mx_qtypes[i].quantized, mx_qtypes[i].dequantize_row != NULL);
    }
    cr_assert_null(qtype_get(MIXQ_QT_COUNT));
    cr_assert_null(qtype_get((mixq_qtype)-1));
    cr_assert_eq(QT(MIXQ_QT_INT8)->group_default, 128);
    cr_assert_eq(QT(MIXQ_QT_INT4)->group_default, 64);
    cr_assert(QT(MIXQ_QT_INT8)->symmetric && !QT(MIXQ_QT_INT4)->symmetric);
    cr_assert_eq(QT(MIXQ_QT_INT8)->code_bits, 8);
    cr_assert_eq(QT(MIXQ_QT_INT4)->code_bits, 4);
    cr_assert_eq(QT(MIXQ_QT_F32)->code_bits, 32);
    cr_assert_eq(QT(MIXQ_QT_BF16)->code_bits, 16);
}

Test(qtype, names_round_trip)
{
    static const char *const names[] = {"raw", "f32", "f16", "bf16", "int8", "int4"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        mixq_qtype t = MIXQ_QT_COUNT;
        cr_assert_str_eq(mixq_qtype_name((mixq_qtype)i), names[i]);
        cr_assert_eq(mixq_qtype_from_name(names[i], &t), MIXQ_OK);
        cr_assert_eq(t, (mixq_qtype)i);
        cr_assert_eq(qtype_by_name(names[i]), &mx_qtypes[i]);
    }
    mixq_qtype t = MIXQ_QT_INT4;
    cr_assert_eq(mixq_qtype_from_name("INT8", &t), MIXQ_E_UNSUPPORTED);
    cr_assert_eq(mixq_qtype_from_name("", &t), MIXQ_E_UNSUPPORTED);
    cr_assert_eq(mixq_qtype_from_name("int8 ", &t), MIXQ_E_UNSUPPORTED);
    cr_assert_eq(t, MIXQ_QT_INT4, "out must be untouched on failure");
    cr_assert_eq(mixq_qtype_from_name(NULL, &t), MIXQ_E_INVALID_ARG);
    cr_assert_eq(mixq_qtype_from_name("int8", NULL), MIXQ_E_INVALID_ARG);
    cr_assert_null(mixq_qtype_name(MIXQ_QT_COUNT));
    cr_assert_null(qtype_by_name("q4"));
    cr_assert_null(qtype_by_name(NULL));

    cr_assert_str_eq(mixq_section_name(MIXQ_SEC_DATA), "data");
    cr_assert_str_eq(mixq_section_name(MIXQ_SEC_CODES), "codes");
    cr_assert_str_eq(mixq_section_name(MIXQ_SEC_SCALES), "scales");
    cr_assert_str_eq(mixq_section_name(MIXQ_SEC_MINS), "mins");
    cr_assert_null(mixq_section_name(MIXQ_SECTION_COUNT));
}

Test(qtype, group_validity)
{
    for (unsigned g = 0; g <= 1024; g++) {
        int pow2 = g != 0 && (g & (g - 1)) == 0;
        int int8_ok = g == 0 || (pow2 && g >= 32 && g <= 256);
        int int4_ok = pow2 && g >= 16 && g <= 256;
        cr_assert_eq(qtype_group_ok(QT(MIXQ_QT_INT8), g), int8_ok, "int8 g=%u", g);
        cr_assert_eq(qtype_group_ok(QT(MIXQ_QT_INT4), g), int4_ok, "int4 g=%u", g);
        for (int t = MIXQ_QT_RAW; t <= MIXQ_QT_BF16; t++)
            cr_assert_eq(qtype_group_ok(QT((mixq_qtype)t), g), g == 0, "plain g=%u", g);
    }
    cr_assert(!qtype_group_ok(QT(MIXQ_QT_INT8), 512));
    cr_assert(!qtype_group_ok(QT(MIXQ_QT_INT8), UINT_MAX));
    cr_assert(!qtype_group_ok(QT(MIXQ_QT_INT4), 0x80000000u));
    cr_assert(!qtype_group_ok(NULL, 0));
    /* Defaults are allowed. */
    cr_assert(qtype_group_ok(QT(MIXQ_QT_INT8), QT(MIXQ_QT_INT8)->group_default));
    cr_assert(qtype_group_ok(QT(MIXQ_QT_INT4), QT(MIXQ_QT_INT4)->group_default));
}

Test(qtype, layout_int8)
{
    /* 10 rows of 100, group 64: 2 groups per row (64 + 36). */
    qlayout l = lay(MIXQ_QT_INT8, ST_F32, 10, 100, 64);
    cr_assert_eq(l.group, 64);
    cr_assert_eq(l.groups_per_row, 2);
    expect_sec(&l, MIXQ_SEC_DATA, 0, 0, 0);
    expect_sec(&l, MIXQ_SEC_CODES, 100, 0, 1000);
    expect_sec(&l, MIXQ_SEC_SCALES, 4, 1024, 40);
    expect_sec(&l, MIXQ_SEC_MINS, 0, 0, 0);
    cr_assert_eq(l.total, 1064);

    /* Per-row group: one scale per row. */
    l = lay(MIXQ_QT_INT8, ST_BF16, 3, 100, 0);
    cr_assert_eq(l.group, 100);
    cr_assert_eq(l.groups_per_row, 1);
    expect_sec(&l, MIXQ_SEC_CODES, 100, 0, 300);
    expect_sec(&l, MIXQ_SEC_SCALES, 2, 320, 6);
    cr_assert_eq(l.total, 326);

    /* 3-D shape [4, 8, 256] -> 32 rows of 256, group 128; codes end exactly on 64. */
    l = lay(MIXQ_QT_INT8, ST_F16, 4 * 8, 256, 128);
    expect_sec(&l, MIXQ_SEC_CODES, 256, 0, 8192);
    expect_sec(&l, MIXQ_SEC_SCALES, 4, 8192, 128);
    cr_assert_eq(l.total, 8320);

    /* A single element (scalar): one group. */
    l = lay(MIXQ_QT_INT8, ST_F32, 1, 1, 32);
    cr_assert_eq(l.groups_per_row, 1);
    expect_sec(&l, MIXQ_SEC_CODES, 1, 0, 1);
    expect_sec(&l, MIXQ_SEC_SCALES, 2, 64, 2);
    cr_assert_eq(l.total, 66);
}

Test(qtype, layout_int4)
{
    /* 3 rows of 101 (odd), group 64: codes 51 bytes/row, 2 groups/row. */
    qlayout l = lay(MIXQ_QT_INT4, ST_F32, 3, 101, 64);
    cr_assert_eq(l.groups_per_row, 2);
    expect_sec(&l, MIXQ_SEC_CODES, 51, 0, 153);
    expect_sec(&l, MIXQ_SEC_SCALES, 4, 192, 12);
    expect_sec(&l, MIXQ_SEC_MINS, 4, 256, 12);
    cr_assert_eq(l.total, 268);

    /* One row of 1 element, group 16. */
    l = lay(MIXQ_QT_INT4, ST_F32, 1, 1, 16);
    expect_sec(&l, MIXQ_SEC_CODES, 1, 0, 1);
    expect_sec(&l, MIXQ_SEC_SCALES, 2, 64, 2);
    expect_sec(&l, MIXQ_SEC_MINS, 2, 128, 2);
    cr_assert_eq(l.total, 130);

    /* 3-D [2, 3, 100], group 16: 6 rows, 7 groups per row (6 x 16 + 4). */
    l = lay(MIXQ_QT_INT4, ST_BF16, 2 * 3, 100, 16);
    cr_assert_eq(l.groups_per_row, 7);
    expect_sec(&l, MIXQ_SEC_CODES, 50, 0, 300);
    expect_sec(&l, MIXQ_SEC_SCALES, 14, 320, 84);
    expect_sec(&l, MIXQ_SEC_MINS, 14, 448, 84);
    cr_assert_eq(l.total, 532);

    /* 4096 x 4096, group 256. */
    l = lay(MIXQ_QT_INT4, ST_BF16, 4096, 4096, 256);
    expect_sec(&l, MIXQ_SEC_CODES, 2048, 0, 8388608);
    expect_sec(&l, MIXQ_SEC_SCALES, 32, 8388608, 131072);
    expect_sec(&l, MIXQ_SEC_MINS, 32, 8519680, 131072);
    cr_assert_eq(l.total, 8650752);
}

Test(qtype, layout_plain)
{
    qlayout l = lay(MIXQ_QT_RAW, ST_BF16, 5, 7, 0);
    expect_sec(&l, MIXQ_SEC_DATA, 14, 0, 70);
    expect_sec(&l, MIXQ_SEC_CODES, 0, 0, 0);
    cr_assert_eq(l.total, 70);
    cr_assert_eq(l.group, 0);
    cr_assert_eq(l.groups_per_row, 0);
    l = lay(MIXQ_QT_RAW, ST_F64, 1, 3, 0);
    cr_assert_eq(l.total, 24);
    l = lay(MIXQ_QT_RAW, ST_BOOL, 1, 3, 0);
    cr_assert_eq(l.total, 3);
    l = lay(MIXQ_QT_F32, ST_F16, 2, 3, 0);
    expect_sec(&l, MIXQ_SEC_DATA, 12, 0, 24);
    l = lay(MIXQ_QT_F16, ST_F32, 2, 3, 0);
    expect_sec(&l, MIXQ_SEC_DATA, 6, 0, 12);
    l = lay(MIXQ_QT_BF16, ST_F64, 4, 3, 0);
    expect_sec(&l, MIXQ_SEC_DATA, 6, 0, 24);
    cr_assert_eq(l.total, 24);
}

Test(qtype, layout_zero_elements)
{
    struct { mixq_qtype t; uint64_t rows, k; unsigned g; } cases[] = {
        {MIXQ_QT_INT8, 0, 100, 64}, {MIXQ_QT_INT8, 7, 0, 64}, {MIXQ_QT_INT8, 7, 0, 0},
        {MIXQ_QT_INT8, 0, 0, 0},    {MIXQ_QT_INT4, 0, 101, 16}, {MIXQ_QT_INT4, 3, 0, 64},
        {MIXQ_QT_F16, 0, 5, 0},     {MIXQ_QT_RAW, 5, 0, 0},     {MIXQ_QT_F32, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qlayout l = lay(cases[i].t, ST_F32, cases[i].rows, cases[i].k, cases[i].g);
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
            cr_assert_eq(l.offset[k], 0, "case %zu", i);
            cr_assert_eq(l.length[k], 0, "case %zu", i);
        }
        cr_assert_eq(l.total, 0, "case %zu", i);
    }
}

Test(qtype, layout_rejects)
{
    qlayout l;
    memset(&l, 0xAB, sizeof l);
    /* Overflow of rows * row_length, of bytes, of alignment. */
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT8), ST_F32, 1ull << 32, 1ull << 32, 32, &l));
    cr_assert_eq(l.total, 0, "out zeroed on failure");
    cr_assert(!qtype_layout(QT(MIXQ_QT_F32), ST_F32, 1, 1ull << 62, 0, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_RAW), ST_F64, 1ull << 61, 1, 0, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT4), ST_F32, 1, UINT64_MAX / 2, 16, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT8), ST_F32, 1, UINT64_MAX - 10, 256, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT8), ST_F32, 2, (1ull << 63) - 64, 256, &l));
    /* A per-row group must fit the kernels' unsigned group. */
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT8), ST_F32, 1, (uint64_t)UINT_MAX + 1, 0, &l));
    cr_assert(qtype_layout(QT(MIXQ_QT_INT8), ST_F32, 1, UINT_MAX, 0, &l));
    cr_assert_eq(l.group, UINT_MAX);
    /* Bad groups, bad types, bad raw dtype. */
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT4), ST_F32, 2, 64, 0, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT8), ST_F32, 2, 64, 48, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT8), ST_F32, 2, 64, 16, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_F16), ST_F32, 2, 64, 32, &l));
    cr_assert(!qtype_layout(NULL, ST_F32, 2, 64, 0, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_RAW), ST_DTYPE_COUNT, 2, 64, 0, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT8), ST_F32, 2, 64, 32, NULL));
    /* Large but valid. */
    cr_assert(qtype_layout(QT(MIXQ_QT_INT8), ST_F32, 1ull << 20, 1ull << 20, 256, &l));
    cr_assert_eq(l.length[MIXQ_SEC_CODES], 1ull << 40);
    cr_assert_eq(l.offset[MIXQ_SEC_SCALES], 1ull << 40);
    cr_assert_eq(l.length[MIXQ_SEC_SCALES], (1ull << 20) * 4096 * 2);
}
