/* test_qtype.c - the quant type table, names, group rules and section layout (FORMAT.md §4, §5). */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "mixq.h"
#include "kernels/kernels.h"
#include "kernels/qtype.h"

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

/* ---- the type family (FORMAT.md §4.3-§4.10, §5) ---- */

/* The descriptor even when the build leaves its name NULL (fp8 before its kernels land). */
static const qtype_desc *RAWQT(mixq_qtype id) { return &mx_qtypes[id]; }

static qlayout lay_any(const qtype_desc *qt, uint64_t rows, uint64_t k, unsigned g)
{
    qlayout l;
    cr_assert(qtype_layout(qt, ST_F32, rows, k, g, &l), "layout %d %llu x %llu g%u failed", (int)qt->id,
              (unsigned long long)rows, (unsigned long long)k, g);
    return l;
}

static unsigned plane_sum(const uint8_t *p)
{
    unsigned s = 0;
    for (int i = 0; i < QT_MAX_PLANES; i++) s += p[i];
    return s;
}

Test(qtype, table_is_consistent)
{
    for (int i = 0; i < MIXQ_QT_COUNT; i++) {
        const qtype_desc *q = RAWQT((mixq_qtype)i);
        cr_assert_eq(q->id, (mixq_qtype)i, "entry %d", i);
        if (!q->quantized) {
            cr_assert_eq(q->sections, QT_SEC(MIXQ_SEC_DATA), "%s", q->name);
            cr_assert_eq(q->scale_kind, QS_NONE);
            continue;
        }
        /* sections: codes + scales always, mins iff asymmetric, super sections iff super-blocks */
        unsigned want = QT_SEC(MIXQ_SEC_CODES) | QT_SEC(MIXQ_SEC_SCALES);
        if (!q->symmetric) want |= QT_SEC(MIXQ_SEC_MINS);
        if (q->super_block) {
            want |= QT_SEC(MIXQ_SEC_SUPER_SCALES);
            if (!q->symmetric) want |= QT_SEC(MIXQ_SEC_SUPER_MINS);
        }
        if (q->codebook_levels) { /* codebook types: 2^code_bits levels, fitted before the rows */
            want |= QT_SEC(MIXQ_SEC_CODEBOOK);
            cr_assert_eq(q->codebook_levels, 1u << q->code_bits, "type %d levels", i);
            cr_assert_not_null(q->fit_codebook, "type %d", i);
            cr_assert_eq(q->code_min, 0);
            cr_assert_eq(q->code_max, (int)q->codebook_levels - 1);
        }
        cr_assert_eq(q->sections, want, "type %d sections %#x", i, q->sections);
        cr_assert_eq(plane_sum(q->code_planes), q->code_bits, "type %d code planes", i);
        cr_assert_eq(plane_sum(q->scale_planes), q->scale_bits, "type %d scale planes", i);
        for (int p = 0; p < QT_MAX_PLANES && q->code_planes[p]; p++)
            cr_assert(q->code_planes[p] == 1 || q->code_planes[p] == 2 || q->code_planes[p] == 4 ||
                      q->code_planes[p] == 8);
        cr_assert_eq(q->scale_kind == QS_CODE, q->super_block != 0, "type %d", i);
        cr_assert_eq(q->scale_kind == QS_F16, q->scale_bits == 16);
        cr_assert_eq(q->scale_kind == QS_F32, q->scale_bits == 32);
        cr_assert(q->group_min && q->group_min <= q->group_max);
        if (q->super_block) cr_assert_eq(q->super_block % q->group_max, 0, "groups tile the super-block");
        cr_assert(qtype_group_ok(q, q->group_default), "type %d default group %u", i, q->group_default);
        cr_assert(!q->tensor_scale || q->allow_row_group);
        if (q->name) {
            cr_assert_not_null(q->quantize_row);
            cr_assert_not_null(q->dequantize_row);
        }
        /* every section the mask names gets a layout entry, and no other */
        qlayout l = lay_any(q, 3, 300, q->group_default ? q->group_default : q->group_min);
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
            cr_assert_eq(l.length[k] != 0, qtype_has_section(q, (mixq_section_kind)k), "type %d section %d", i, k);
    }
    cr_assert(!qtype_has_section(QT(MIXQ_QT_INT8), MIXQ_SECTION_COUNT));
    cr_assert(!qtype_has_section(QT(MIXQ_QT_INT8), (mixq_section_kind)-1));
}

Test(qtype, family_names_round_trip)
{
    static const struct { mixq_qtype id; const char *name; } t[] = {
        {MIXQ_QT_INT4S, "int4s"},     {MIXQ_QT_INT2, "int2"},       {MIXQ_QT_INT4_DQ, "int4_dq"},
        {MIXQ_QT_INT2_DQ, "int2_dq"}, {MIXQ_QT_INT3_DQ, "int3_dq"}, {MIXQ_QT_INT6_DQ, "int6_dq"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        mixq_qtype got = MIXQ_QT_COUNT;
        cr_assert_str_eq(mixq_qtype_name(t[i].id), t[i].name);
        cr_assert_eq(mixq_qtype_from_name(t[i].name, &got), MIXQ_OK);
        cr_assert_eq(got, t[i].id);
    }
    cr_assert_str_eq(mixq_section_name(MIXQ_SEC_SUPER_SCALES), "super_scales");
    cr_assert_str_eq(mixq_section_name(MIXQ_SEC_SUPER_MINS), "super_mins");
    cr_assert(QT(MIXQ_QT_INT4S)->symmetric && !QT(MIXQ_QT_INT2)->symmetric);
    cr_assert(!QT(MIXQ_QT_INT4_DQ)->symmetric && !QT(MIXQ_QT_INT2_DQ)->symmetric);
    cr_assert(QT(MIXQ_QT_INT3_DQ)->symmetric && QT(MIXQ_QT_INT6_DQ)->symmetric);
}

Test(qtype, family_groups)
{
    for (unsigned g = 0; g <= 512; g++) {
        int pow2 = g != 0 && (g & (g - 1)) == 0;
        cr_assert_eq(qtype_group_ok(QT(MIXQ_QT_INT4S), g), pow2 && g >= 16 && g <= 256, "int4s %u", g);
        cr_assert_eq(qtype_group_ok(QT(MIXQ_QT_INT2), g), pow2 && g >= 16 && g <= 128, "int2 %u", g);
        cr_assert_eq(qtype_group_ok(QT(MIXQ_QT_INT4_DQ), g), pow2 && g >= 16 && g <= 64, "int4_dq %u", g);
        cr_assert_eq(qtype_group_ok(QT(MIXQ_QT_INT2_DQ), g), g == 16, "int2_dq %u", g);
        cr_assert_eq(qtype_group_ok(QT(MIXQ_QT_INT3_DQ), g), g == 16, "int3_dq %u", g);
        cr_assert_eq(qtype_group_ok(QT(MIXQ_QT_INT6_DQ), g), g == 16, "int6_dq %u", g);
        int fp8 = g == 0 || (pow2 && g >= 32 && g <= 256);
        cr_assert_eq(qtype_group_ok(RAWQT(MIXQ_QT_FP8_E4M3), g), fp8, "fp8 %u", g);
    }
    cr_assert_eq(QT(MIXQ_QT_INT4S)->group_default, 32);
    cr_assert_eq(QT(MIXQ_QT_INT2)->group_default, 32);
    cr_assert_eq(QT(MIXQ_QT_INT4_DQ)->group_default, 32);
    cr_assert_eq(QT(MIXQ_QT_INT6_DQ)->group_default, 16);
}

Test(qtype, nominal_bits_per_weight)
{
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_INT8), 32), 8.5, 1e-12);
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_INT4), 64), 4.5, 1e-12);
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_INT4S), 32), 4.5, 1e-12);
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_INT2), 32), 3.0, 1e-12);
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_INT4_DQ), 32), 4.5, 1e-12);
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_INT2_DQ), 16), 2.625, 1e-12);
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_INT3_DQ), 16), 3.4375, 1e-12);
    cr_assert_float_eq(qtype_nominal_bpw(QT(MIXQ_QT_INT6_DQ), 16), 6.5625, 1e-12);
    cr_assert_float_eq(qtype_nominal_bpw(RAWQT(MIXQ_QT_FP8_E4M3), 32), 9.0, 1e-12);
    cr_assert_eq(qtype_nominal_bpw(QT(MIXQ_QT_F16), 32), 0.0);
    /* A large matrix stores exactly the nominal figure (every section a multiple of 64). */
    static const struct { mixq_qtype id; unsigned g; double bpw; } t[] = {
        {MIXQ_QT_INT8, 32, 8.5},       {MIXQ_QT_INT4, 64, 4.5},       {MIXQ_QT_INT4S, 32, 4.5},
        {MIXQ_QT_INT2, 32, 3.0},       {MIXQ_QT_INT4_DQ, 32, 4.5},    {MIXQ_QT_INT2_DQ, 16, 2.625},
        {MIXQ_QT_INT3_DQ, 16, 3.4375}, {MIXQ_QT_INT6_DQ, 16, 6.5625}, {MIXQ_QT_INT4_DQ, 64, 4.3125},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        qlayout l = lay(t[i].id, ST_BF16, 4096, 4096, t[i].g);
        cr_assert_eq((double)l.total * 8.0 / (4096.0 * 4096.0), t[i].bpw, "%s", mixq_qtype_name(t[i].id));
        cr_assert_float_eq(qtype_nominal_bpw(QT(t[i].id), t[i].g), t[i].bpw, 1e-12);
    }
}

Test(qtype, layout_int4s_int2)
{
    /* int4s: 3 rows of 101, group 32: codes 51 bytes, 4 groups -> 8 bytes of f16 scales, no mins. */
    qlayout l = lay(MIXQ_QT_INT4S, ST_F32, 3, 101, 32);
    cr_assert_eq(l.groups_per_row, 4);
    expect_sec(&l, MIXQ_SEC_CODES, 51, 0, 153);
    expect_sec(&l, MIXQ_SEC_SCALES, 8, 192, 24);
    expect_sec(&l, MIXQ_SEC_MINS, 0, 0, 0);
    cr_assert_eq(l.total, 216);
    /* int2: 2 rows of 7 (partial byte), group 16: codes 2 bytes per row. */
    l = lay(MIXQ_QT_INT2, ST_F32, 2, 7, 16);
    expect_sec(&l, MIXQ_SEC_CODES, 2, 0, 4);
    expect_sec(&l, MIXQ_SEC_SCALES, 2, 64, 4);
    expect_sec(&l, MIXQ_SEC_MINS, 2, 128, 4);
    cr_assert_eq(l.total, 132);
    /* int2: 300 elements, group 128: 75 bytes of codes, 3 groups. */
    l = lay(MIXQ_QT_INT2, ST_F32, 1, 300, 128);
    expect_sec(&l, MIXQ_SEC_CODES, 75, 0, 75);
    expect_sec(&l, MIXQ_SEC_SCALES, 6, 128, 6);
    expect_sec(&l, MIXQ_SEC_MINS, 6, 192, 6);
}

Test(qtype, layout_dq)
{
    /* int4_dq, 2 rows of 300, G = 32: 10 groups (9 x 32 + 12), 2 super-blocks (256 + 44).
     * codes 150; 6-bit codes: ceil(10/2) + ceil(10/4) = 5 + 3 = 8; super 4 bytes. */
    qlayout l = lay(MIXQ_QT_INT4_DQ, ST_F32, 2, 300, 32);
    cr_assert_eq(l.groups_per_row, 10);
    cr_assert_eq(l.supers_per_row, 2);
    expect_sec(&l, MIXQ_SEC_CODES, 150, 0, 300);
    expect_sec(&l, MIXQ_SEC_SCALES, 8, 320, 16);
    expect_sec(&l, MIXQ_SEC_MINS, 8, 384, 16);
    expect_sec(&l, MIXQ_SEC_SUPER_SCALES, 4, 448, 8);
    expect_sec(&l, MIXQ_SEC_SUPER_MINS, 4, 512, 8);
    cr_assert_eq(l.total, 520);

    /* int2_dq, 1 row of 257: 17 groups, 2 super-blocks; codes 65; 4-bit codes 9 bytes. */
    l = lay(MIXQ_QT_INT2_DQ, ST_F32, 1, 257, 16);
    expect_sec(&l, MIXQ_SEC_CODES, 65, 0, 65);
    expect_sec(&l, MIXQ_SEC_SCALES, 9, 128, 9);
    expect_sec(&l, MIXQ_SEC_MINS, 9, 192, 9);
    expect_sec(&l, MIXQ_SEC_SUPER_SCALES, 4, 256, 4);
    expect_sec(&l, MIXQ_SEC_SUPER_MINS, 4, 320, 4);
    cr_assert_eq(l.total, 324);

    /* int3_dq, 3 rows of 100: codes ceil(100/4) + ceil(100/8) = 25 + 13 = 38; 7 groups ->
     * 6-bit codes 4 + 2 = 6; one super-block. Symmetric: no mins. */
    l = lay(MIXQ_QT_INT3_DQ, ST_F32, 3, 100, 16);
    expect_sec(&l, MIXQ_SEC_CODES, 38, 0, 114);
    expect_sec(&l, MIXQ_SEC_SCALES, 6, 128, 18);
    expect_sec(&l, MIXQ_SEC_MINS, 0, 0, 0);
    expect_sec(&l, MIXQ_SEC_SUPER_SCALES, 2, 192, 6);
    expect_sec(&l, MIXQ_SEC_SUPER_MINS, 0, 0, 0);
    cr_assert_eq(l.total, 198);

    /* int6_dq, 1 row of 1: codes 1 + 1; one group, one byte; one super-block. */
    l = lay(MIXQ_QT_INT6_DQ, ST_F32, 1, 1, 16);
    expect_sec(&l, MIXQ_SEC_CODES, 2, 0, 2);
    expect_sec(&l, MIXQ_SEC_SCALES, 1, 64, 1);
    expect_sec(&l, MIXQ_SEC_SUPER_SCALES, 2, 128, 2);
    cr_assert_eq(l.total, 130);

    /* int6_dq 4096 x 4096: 3072 + 256 + 32 bytes per row = 6.5625 bits per weight. */
    l = lay(MIXQ_QT_INT6_DQ, ST_BF16, 4096, 4096, 16);
    cr_assert_eq(l.row_bytes[MIXQ_SEC_CODES] + l.row_bytes[MIXQ_SEC_SCALES] + l.row_bytes[MIXQ_SEC_SUPER_SCALES],
                 3360);
    /* int4_dq at 4096 elements per row: 2304 bytes per row = 4.5 bits per weight. */
    l = lay(MIXQ_QT_INT4_DQ, ST_BF16, 1, 4096, 32);
    uint64_t per_row = 0;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) per_row += l.row_bytes[k];
    cr_assert_eq(per_row, 2304);
    cr_assert_eq(per_row * 8, 4096 * 9 / 2);

    /* zero elements: everything 0 */
    l = lay(MIXQ_QT_INT4_DQ, ST_F32, 5, 0, 32);
    cr_assert_eq(l.total, 0);
    l = lay(MIXQ_QT_INT3_DQ, ST_F32, 0, 100, 16);
    cr_assert_eq(l.total, 0);
    /* DQ types take no per-row group. */
    qlayout bad;
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT4_DQ), ST_F32, 1, 64, 0, &bad));
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT4_DQ), ST_F32, 1, 64, 128, &bad));
}

Test(qtype, layout_fp8_per_tensor_scale)
{
    const qtype_desc *q = RAWQT(MIXQ_QT_FP8_E4M3);
    /* group 0: one binary32 for the whole tensor, row stride 0 */
    qlayout l = lay_any(q, 10, 100, 0);
    cr_assert(l.per_tensor);
    cr_assert_eq(l.group, 100);
    expect_sec(&l, MIXQ_SEC_CODES, 100, 0, 1000);
    expect_sec(&l, MIXQ_SEC_SCALES, 0, 1024, 4);
    cr_assert_eq(l.total, 1028);
    /* per group: 4 bytes per group per row */
    l = lay_any(q, 10, 100, 32);
    cr_assert(!l.per_tensor);
    expect_sec(&l, MIXQ_SEC_SCALES, 16, 1024, 160);
    /* no elements: no scale either */
    l = lay_any(q, 0, 100, 0);
    cr_assert_eq(l.total, 0);
    l = lay_any(RAWQT(MIXQ_QT_FP8_E5M2), 3, 0, 0);
    cr_assert_eq(l.total, 0);
    /* int8 group 0 is still one scale per row */
    l = lay(MIXQ_QT_INT8, ST_F32, 10, 100, 0);
    cr_assert(!l.per_tensor);
    expect_sec(&l, MIXQ_SEC_SCALES, 2, 1024, 20);
}

Test(qtype, plane_bytes)
{
    static const uint8_t p3[QT_MAX_PLANES] = {2, 1}, p6[QT_MAX_PLANES] = {4, 2}, p16[QT_MAX_PLANES] = {16};
    uint64_t b;
    cr_assert(qtype_plane_bytes(p3, 10, &b) && b == 3 + 2);
    cr_assert(qtype_plane_bytes(p6, 5, &b) && b == 3 + 2);
    cr_assert(qtype_plane_bytes(p6, 0, &b) && b == 0);
    cr_assert(qtype_plane_bytes(p16, 7, &b) && b == 14);
    cr_assert(!qtype_plane_bytes(p16, UINT64_MAX / 4, &b));
    qlayout l;
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT6_DQ), ST_F32, 1, UINT64_MAX / 2, 16, &l));
    cr_assert(!qtype_layout(QT(MIXQ_QT_INT3_DQ), ST_F32, UINT64_MAX / 8, 64, 16, &l));
}

/*
 * What docs/HACKING.md promises of a row: a name and one-line help that
 * lookups and the --help list find, a consistent plain dtype, a valid group
 * range, kernels for a quantized type, and code ranges that fit the bits.
 */
Test(qtype, rows_keep_the_documented_promises)
{
    char list[512];
    qtype_name_list(list, sizeof list);
    for (int i = 0; i < MIXQ_QT_COUNT; i++) {
        const qtype_desc *q = RAWQT((mixq_qtype)i);
        if (!q->name) continue;
        cr_assert(q->name[0] && q->help && q->help[0], "type %d: name and help", i);
        cr_assert_leq(strlen(q->help), 41, "%s: help is one column of --help (41 characters)", q->name);
        cr_assert_eq(qtype_by_name(q->name), q, "%s", q->name);
        if (i != MIXQ_QT_RAW) cr_assert(strstr(list, q->name), "%s missing from '%s'", q->name, list);
        cr_assert_neq(q->plain, q->quantized, "%s: plain xor quantized", q->name);
        if (q->plain) {
            cr_assert_null(q->quantize_row);
            if (q->plain_dtype == ST_DTYPE_COUNT) { /* raw: the source dtype */
                cr_assert_eq(i, MIXQ_QT_RAW);
                cr_assert_eq(qtype_data_dtype(q, ST_I32), ST_I32);
                continue;
            }
            cr_assert(st_dtypes[q->plain_dtype].is_float, "%s", q->name);
            cr_assert_eq(st_dtypes[q->plain_dtype].size * 8u, q->code_bits, "%s", q->name);
            cr_assert_eq(qtype_for_plain_dtype(q->plain_dtype), q, "%s", q->name);
            cr_assert_eq(qtype_data_dtype(q, ST_I32), q->plain_dtype);
            continue;
        }
        cr_assert_eq(qtype_data_dtype(q, ST_F32), ST_DTYPE_COUNT);
        cr_assert(q->quantize_row && q->dequantize_row, "%s: kernels", q->name);
        cr_assert(q->group_min && !(q->group_min & (q->group_min - 1)), "%s: group_min", q->name);
        cr_assert(!(q->group_max & (q->group_max - 1)) && q->group_min <= q->group_max, "%s", q->name);
        cr_assert(qtype_group_ok(q, q->group_default), "%s: default group", q->name);
        cr_assert_lt(q->code_min, q->code_max, "%s: code range", q->name);
        cr_assert_leq((long)q->code_max - q->code_min + 1, 1L << q->code_bits, "%s: codes fit", q->name);
        cr_assert_lt(q->code_bias, 1u << q->code_bits);
        if (q->scale_kind == QS_CODE) {
            cr_assert_lt(q->scale_code_min, q->scale_code_max, "%s", q->name);
            cr_assert_leq((long)q->scale_code_max - q->scale_code_min + 1, 1L << q->scale_bits, "%s", q->name);
        }
    }
    cr_assert_eq(qtype_for_plain_dtype(ST_I8), QT(MIXQ_QT_RAW));
    cr_assert_eq(qtype_for_plain_dtype(ST_F64), QT(MIXQ_QT_RAW));
}

/* The code q of a stored field u under the row's bias and range (or INT_MIN if none maps into it). */
static int unbias(unsigned u, unsigned bits, unsigned bias, int lo, int hi)
{
    int q = (int)u - (int)bias;
    if (q < lo) q += 1 << bits;
    if (q > hi) q -= 1 << bits;
    return q >= lo && q <= hi ? q : INT_MIN;
}

/* Offsets of each bit plane of `count` fields within one row's part of a section. */
static void plane_offsets(const uint8_t planes[QT_MAX_PLANES], size_t count, size_t off[QT_MAX_PLANES])
{
    size_t at = 0;
    for (int p = 0; p < QT_MAX_PLANES; p++) {
        off[p] = at;
        at += (count * planes[p] + 7u) / 8u;
    }
}

/* Every code the kernels store lies in the row's [code_min, code_max] under code_bias (scale codes too). */
Test(qtype, kernels_store_codes_in_the_row_range)
{
    enum { R = 4, K = 512 };
    static float x[R * K];
    uint32_t s = 12345u;
    for (int i = 0; i < R * K; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * (1.0f + (float)(i % 7));
    }
    for (int i = 0; i < MIXQ_QT_COUNT; i++) {
        const qtype_desc *q = RAWQT((mixq_qtype)i);
        if (!q->name || !q->quantized) continue;
        unsigned g = q->group_default ? q->group_default : q->group_min;
        qlayout l;
        cr_assert(qtype_layout(q, ST_F32, R, K, g, &l));
        uint8_t *buf = calloc(1, (size_t)l.total + 64);
        cr_assert_not_null(buf);
        int seen_lo = 0, seen_hi = 0;
        for (int r = 0; r < R; r++) {
            mx_rowptrs p = {{NULL}};
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                if (qtype_has_section(q, (mixq_section_kind)k))
                    p.sec[k] = buf + l.offset[k] + (size_t)r * l.row_bytes[k];
            q->quantize_row(x + (size_t)r * K, K, l.group, NULL, p);
            size_t off[QT_MAX_PLANES];
            plane_offsets(q->code_planes, K, off);
            for (size_t e = 0; e < K; e++) {
                int c = unbias(mx_planes_get(p.sec[MIXQ_SEC_CODES], q->code_planes, off, e), q->code_bits,
                               q->code_bias, q->code_min, q->code_max);
                cr_assert_neq(c, INT_MIN, "%s: row %d element %zu: code outside the row's range", q->name, r, e);
                seen_lo |= c == q->code_min;
                seen_hi |= c == q->code_max;
            }
            if (q->scale_kind != QS_CODE) continue;
            plane_offsets(q->scale_planes, l.groups_per_row, off);
            for (size_t j = 0; j < l.groups_per_row; j++) {
                int c = unbias(mx_planes_get(p.sec[MIXQ_SEC_SCALES], q->scale_planes, off, j), q->scale_bits,
                               q->scale_code_bias, q->scale_code_min, q->scale_code_max);
                cr_assert_neq(c, INT_MIN, "%s: row %d group %zu: scale code outside the row's range", q->name, r, j);
            }
        }
        if (q->scale_kind != QS_F32) /* fp8 codes are bit patterns: no extreme is special */
            cr_assert(seen_lo || seen_hi, "%s: neither end of the code range is ever used", q->name);
        free(buf);
    }
}
