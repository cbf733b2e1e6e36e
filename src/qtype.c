/* qtype.c - the quantization type table, names, group rules and section layout (FORMAT.md §4, §5). */
#include <limits.h>
#include <string.h>

#include "checked.h"
#include "kernels.h"
#include "qtype.h"

const qtype_desc mx_qtypes[MIXQ_QT_COUNT] = {
    [MIXQ_QT_RAW] = {"raw", MIXQ_QT_RAW, false, true, 0, 0, 0, 0, 0, 0, true, NULL, NULL},
    [MIXQ_QT_F32] = {"f32", MIXQ_QT_F32, false, true, 32, 0, 0, 0, 0, 0, true, NULL, NULL},
    [MIXQ_QT_F16] = {"f16", MIXQ_QT_F16, false, true, 16, 0, 0, 0, 0, 0, true, NULL, NULL},
    [MIXQ_QT_BF16] = {"bf16", MIXQ_QT_BF16, false, true, 16, 0, 0, 0, 0, 0, true, NULL, NULL},
    [MIXQ_QT_INT8] = {"int8", MIXQ_QT_INT8, true, true, 8, 2, 0, 32, 256, 128, true,
                      kernel_int8_quantize_row, kernel_int8_dequantize_row},
    [MIXQ_QT_INT4] = {"int4", MIXQ_QT_INT4, true, false, 4, 2, 2, 16, 256, 64, false,
                      kernel_int4_quantize_row, kernel_int4_dequantize_row},
};

static const char *const section_names[MIXQ_SECTION_COUNT] = {
    [MIXQ_SEC_DATA] = "data",
    [MIXQ_SEC_CODES] = "codes",
    [MIXQ_SEC_SCALES] = "scales",
    [MIXQ_SEC_MINS] = "mins",
    [MIXQ_SEC_SUPER_SCALES] = "super_scales",
    [MIXQ_SEC_SUPER_MINS] = "super_mins",
};

/* Entries whose name is NULL are types this build does not implement yet. */
const qtype_desc *qtype_get(mixq_qtype id)
{
    if ((unsigned)id >= MIXQ_QT_COUNT || mx_qtypes[id].name == NULL)
        return NULL;
    return &mx_qtypes[id];
}

const qtype_desc *qtype_by_name(const char *name)
{
    if (name == NULL)
        return NULL;
    for (unsigned i = 0; i < MIXQ_QT_COUNT; i++) {
        if (mx_qtypes[i].name != NULL && strcmp(mx_qtypes[i].name, name) == 0)
            return &mx_qtypes[i];
    }
    return NULL;
}

/* Plain types take only 0; quantized types a power of two in [min, max], or 0 if per-row is allowed. */
bool qtype_group_ok(const qtype_desc *qt, unsigned group_size)
{
    if (qt == NULL)
        return false;
    if (!qt->quantized)
        return group_size == 0;
    if (group_size == 0)
        return qt->allow_row_group;
    if ((group_size & (group_size - 1u)) != 0)
        return false;
    return group_size >= qt->group_min && group_size <= qt->group_max;
}

/*
 * FORMAT.md §5: per-row bytes of each present section, lengths R * row bytes,
 * sections placed in kind order, each at the previous end rounded up to
 * MX_ALIGN.  A zero-element tensor gets lengths 0 (R or K is 0, so R * row
 * bytes is 0), hence offsets 0 and total 0, with no special case.
 */
bool qtype_layout(const qtype_desc *qt, st_dtype src, uint64_t rows, uint64_t row_length,
                  unsigned group_size, qlayout *out)
{
    qlayout l;
    uint64_t n_elements, end = 0;

    if (out == NULL)
        return false;
    memset(out, 0, sizeof *out);
    if (qt == NULL || !qtype_group_ok(qt, group_size))
        return false;
    if (!ck_mul(rows, row_length, &n_elements))
        return false;

    memset(&l, 0, sizeof l);
    l.rows = rows;
    l.row_length = row_length;

    if (qt->quantized) {
        uint64_t g = group_size != 0 ? group_size : row_length;
        uint64_t code_bits;
        if (g > UINT_MAX)
            return false; /* a per-row group longer than the kernels' unsigned group */
        l.group = (unsigned)g;
        l.groups_per_row = row_length == 0 ? 0 : ck_div_ceil(row_length, g);
        if (!ck_mul(row_length, qt->code_bits, &code_bits))
            return false;
        l.row_bytes[MIXQ_SEC_CODES] = ck_div_ceil(code_bits, 8);
        if (!ck_mul(l.groups_per_row, qt->scale_bytes, &l.row_bytes[MIXQ_SEC_SCALES]))
            return false;
        if (!qt->symmetric &&
            !ck_mul(l.groups_per_row, qt->min_bytes, &l.row_bytes[MIXQ_SEC_MINS]))
            return false;
    } else {
        uint64_t elem;
        if (qt->id == MIXQ_QT_RAW) {
            if ((unsigned)src >= ST_DTYPE_COUNT)
                return false;
            elem = st_dtypes[src].size;
        } else {
            elem = qt->code_bits / 8u;
        }
        if (!ck_mul(row_length, elem, &l.row_bytes[MIXQ_SEC_DATA]))
            return false;
    }

    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!qtype_has_section(qt, (mixq_section_kind)k))
            continue;
        if (!ck_mul(rows, l.row_bytes[k], &l.length[k]))
            return false;
        if (!ck_align(end, MX_ALIGN, &l.offset[k]))
            return false;
        if (!ck_add(l.offset[k], l.length[k], &end))
            return false;
    }
    l.total = end;
    *out = l;
    return true;
}

const char *mixq_qtype_name(mixq_qtype qtype)
{
    const qtype_desc *qt = qtype_get(qtype);
    return qt ? qt->name : NULL;
}

mixq_status mixq_qtype_from_name(const char *name, mixq_qtype *out)
{
    const qtype_desc *qt;
    if (name == NULL || out == NULL)
        return MIXQ_E_INVALID_ARG;
    qt = qtype_by_name(name);
    if (qt == NULL)
        return MIXQ_E_UNSUPPORTED;
    *out = qt->id;
    return MIXQ_OK;
}

const char *mixq_section_name(mixq_section_kind kind)
{
    if ((unsigned)kind >= MIXQ_SECTION_COUNT)
        return NULL;
    return section_names[kind];
}
