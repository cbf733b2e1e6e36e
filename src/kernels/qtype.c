/* qtype.c - the quantization type table, names, group rules and section layout (FORMAT.md §4, §5). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/checked.h"
#include "kernels/kernel_fp8.h"
#include "kernels/kernels.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"

#define S_DATA QT_SEC(MIXQ_SEC_DATA)
#define S_CS (QT_SEC(MIXQ_SEC_CODES) | QT_SEC(MIXQ_SEC_SCALES))
#define S_CSM (S_CS | QT_SEC(MIXQ_SEC_MINS))
#define S_SUP QT_SEC(MIXQ_SEC_SUPER_SCALES)
#define S_CB QT_SEC(MIXQ_SEC_CODEBOOK)
#define S_SUPM (QT_SEC(MIXQ_SEC_SUPER_SCALES) | QT_SEC(MIXQ_SEC_SUPER_MINS))

/* Plain types: one data section of code_bits-bit elements (raw: the source dtype's size). */
#define PLAIN(ID, NAME, DT, BITS, HELP)                                                             \
    [ID] = {.name = NAME, .id = ID, .help = HELP, .plain = true, .plain_dtype = DT, .symmetric = true, \
            .code_bits = BITS, .allow_row_group = true, .sections = S_DATA}

/*
 * The table (FORMAT.md §4, §5).  A row's codes are the planes of
 * code_planes; its scales (and mins) the planes of scale_planes; super-block
 * types add one f16 per super-block per row (and one more if asymmetric).
 */
const qtype_desc mx_qtypes[MIXQ_QT_COUNT] = {
    PLAIN(MIXQ_QT_RAW, "raw", ST_DTYPE_COUNT, 0, "source bytes unchanged"),
    PLAIN(MIXQ_QT_F32, "f32", ST_F32, 32, "IEEE binary32"),
    PLAIN(MIXQ_QT_F16, "f16", ST_F16, 16, "IEEE binary16"),
    PLAIN(MIXQ_QT_BF16, "bf16", ST_BF16, 16, "bfloat16"),
    [MIXQ_QT_INT8] = {.name = "int8", .id = MIXQ_QT_INT8,
                      .help = "8-bit symmetric, f16 scale per group",
                      .code_min = -127, .code_max = 127, .code_bias = 0, .quantized = true, .symmetric = true,
                      .code_bits = 8, .code_planes = {8}, .scale_kind = QS_F16, .scale_bits = 16,
                      .scale_planes = {16}, .group_min = 32, .group_max = 256, .group_default = 128,
                      .allow_row_group = true, .sections = S_CS,
                      .quantize_row = kernel_int8_quantize_row,
                      .dequantize_row = kernel_int8_dequantize_row},
    [MIXQ_QT_INT4] = {.name = "int4", .id = MIXQ_QT_INT4,
                      .help = "4-bit asymmetric, f16 scale and min",
                      .code_min = 0, .code_max = 15, .code_bias = 0, .quantized = true, .symmetric = false,
                      .code_bits = 4, .code_planes = {4}, .scale_kind = QS_F16, .scale_bits = 16,
                      .scale_planes = {16}, .group_min = 16, .group_max = 256, .group_default = 64,
                      .sections = S_CSM, .quantize_row = kernel_int4_quantize_row,
                      .dequantize_row = kernel_int4_dequantize_row},
    [MIXQ_QT_INT4S] = {.name = "int4s", .id = MIXQ_QT_INT4S,
                       .help = "4-bit symmetric, signed f16 scale",
                       .code_min = -8, .code_max = 7, .code_bias = 8, .quantized = true, .symmetric = true,
                       .code_bits = 4, .code_planes = {4}, .scale_kind = QS_F16, .scale_bits = 16,
                       .scale_planes = {16}, .group_min = 16, .group_max = 256, .group_default = 32,
                       .sections = S_CS, .quantize_row = kernel_int4s_quantize_row,
                      .dequantize_row = kernel_int4s_dequantize_row},
    [MIXQ_QT_INT2] = {.name = "int2", .id = MIXQ_QT_INT2,
                      .help = "2-bit asymmetric, f16 scale and min",
                      .code_min = 0, .code_max = 3, .code_bias = 0, .quantized = true, .symmetric = false,
                      .code_bits = 2, .code_planes = {2}, .scale_kind = QS_F16, .scale_bits = 16,
                      .scale_planes = {16}, .group_min = 16, .group_max = 128, .group_default = 32,
                      .sections = S_CSM, .quantize_row = kernel_int2_quantize_row,
                      .dequantize_row = kernel_int2_dequantize_row},
    [MIXQ_QT_FP8_E4M3] = {.name = "fp8_e4m3", .id = MIXQ_QT_FP8_E4M3,
                          .help = "OCP FP8 E4M3, f32 scale per group/tensor",
                          .code_min = 0, .code_max = 255, .code_bias = 0, .quantized = true, .symmetric = true,
                          .code_bits = 8, .code_planes = {8}, .scale_kind = QS_F32, .scale_bits = 32,
                          .scale_planes = {32}, .group_min = 32, .group_max = 256, .group_default = 0,
                          .allow_row_group = true, .tensor_scale = true, .sections = S_CS,
                          .quantize_row = kernel_fp8_e4m3_quantize_row,
                          .dequantize_row = kernel_fp8_e4m3_dequantize_row},
    [MIXQ_QT_FP8_E5M2] = {.name = "fp8_e5m2", .id = MIXQ_QT_FP8_E5M2,
                          .help = "OCP FP8 E5M2, f32 scale per group/tensor",
                          .code_min = 0, .code_max = 255, .code_bias = 0, .quantized = true, .symmetric = true,
                          .code_bits = 8, .code_planes = {8}, .scale_kind = QS_F32, .scale_bits = 32,
                          .scale_planes = {32}, .group_min = 32, .group_max = 256, .group_default = 0,
                          .allow_row_group = true, .tensor_scale = true, .sections = S_CS,
                          .quantize_row = kernel_fp8_e5m2_quantize_row,
                          .dequantize_row = kernel_fp8_e5m2_dequantize_row},
    [MIXQ_QT_INT4_DQ] = {.name = "int4_dq", .id = MIXQ_QT_INT4_DQ,
                         .help = "4-bit asymmetric, double-quantized scales",
                         .code_min = 0, .code_max = 15, .code_bias = 0,
                         .scale_code_min = 0, .scale_code_max = 63, .scale_code_bias = 0,
                         .quantized = true, .symmetric = false,
                         .code_bits = 4, .code_planes = {4}, .scale_kind = QS_CODE, .scale_bits = 6,
                         .scale_planes = {4, 2}, .group_min = 16, .group_max = 64, .group_default = 32,
                         .super_block = 256, .sections = S_CSM | S_SUPM,
                         .quantize_row = kernel_int4_dq_quantize_row,
                         .dequantize_row = kernel_int4_dq_dequantize_row},
    [MIXQ_QT_INT2_DQ] = {.name = "int2_dq", .id = MIXQ_QT_INT2_DQ,
                         .help = "2-bit asymmetric, double-quantized scales",
                         .code_min = 0, .code_max = 3, .code_bias = 0,
                         .scale_code_min = 0, .scale_code_max = 15, .scale_code_bias = 0,
                         .quantized = true, .symmetric = false,
                         .code_bits = 2, .code_planes = {2}, .scale_kind = QS_CODE, .scale_bits = 4,
                         .scale_planes = {4}, .group_min = 16, .group_max = 16, .group_default = 16,
                         .super_block = 256, .sections = S_CSM | S_SUPM,
                         .quantize_row = kernel_int2_dq_quantize_row,
                         .dequantize_row = kernel_int2_dq_dequantize_row},
    [MIXQ_QT_INT3_DQ] = {.name = "int3_dq", .id = MIXQ_QT_INT3_DQ,
                         .help = "3-bit symmetric, double-quantized scales",
                         .code_min = -4, .code_max = 3, .code_bias = 4,
                         .scale_code_min = -32, .scale_code_max = 31, .scale_code_bias = 32,
                         .quantized = true, .symmetric = true,
                         .code_bits = 3, .code_planes = {2, 1}, .scale_kind = QS_CODE, .scale_bits = 6,
                         .scale_planes = {4, 2}, .group_min = 16, .group_max = 16, .group_default = 16,
                         .super_block = 256, .sections = S_CS | S_SUP,
                         .quantize_row = kernel_int3_dq_quantize_row,
                         .dequantize_row = kernel_int3_dq_dequantize_row},
    [MIXQ_QT_INT6_DQ] = {.name = "int6_dq", .id = MIXQ_QT_INT6_DQ,
                         .help = "6-bit symmetric, double-quantized scales",
                         .code_min = -32, .code_max = 31, .code_bias = 32,
                         .scale_code_min = -128, .scale_code_max = 127, .scale_code_bias = 128,
                         .quantized = true, .symmetric = true,
                         .code_bits = 6, .code_planes = {4, 2}, .scale_kind = QS_CODE, .scale_bits = 8,
                         .scale_planes = {8}, .group_min = 16, .group_max = 16, .group_default = 16,
                         .super_block = 256, .sections = S_CS | S_SUP,
                         .quantize_row = kernel_int6_dq_quantize_row,
                         .dequantize_row = kernel_int6_dq_dequantize_row},
    [MIXQ_QT_NL4] = {.name = "nl4", .id = MIXQ_QT_NL4,
                     .help = "4-bit 16-level table, f16 scale per group",
                     .code_min = 0, .code_max = 15, .code_bias = 0, .quantized = true, .symmetric = true,
                     .code_bits = 4, .code_planes = {4}, .scale_kind = QS_F16, .scale_bits = 16,
                     .scale_planes = {16}, .group_min = 16, .group_max = 256, .group_default = 32,
                     .sections = S_CS, .format_minor = 2, .opt_in = true, .quantize_row = kernel_nl4_quantize_row,
                     .dequantize_row = kernel_nl4_dequantize_row},
    [MIXQ_QT_NL4_DQ] = {.name = "nl4_dq", .id = MIXQ_QT_NL4_DQ,
                        .help = "4-bit 16-level table, 6-bit group scales",
                        .code_min = 0, .code_max = 15, .code_bias = 0,
                        .scale_code_min = -32, .scale_code_max = 31, .scale_code_bias = 32,
                        .quantized = true, .symmetric = true,
                        .code_bits = 4, .code_planes = {4}, .scale_kind = QS_CODE, .scale_bits = 6,
                        .scale_planes = {4, 2}, .group_min = 32, .group_max = 32, .group_default = 32,
                        .super_block = 256, .sections = S_CS | S_SUP, .format_minor = 2,
                        .opt_in = true,
                        .quantize_row = kernel_nl4_dq_quantize_row,
                        .dequantize_row = kernel_nl4_dq_dequantize_row},
    /* codebook types: index codes into the tensor's 2^b int8 levels, int3_dq's scale codes (FORMAT.md §4.14) */
    [MIXQ_QT_CB4_DQ] = {.name = "cb4_dq", .id = MIXQ_QT_CB4_DQ,
                        .help = "4-bit per-tensor fitted codebook, DQ",
                        .code_min = 0, .code_max = 15, .code_bias = 0,
                        .scale_code_min = -32, .scale_code_max = 31, .scale_code_bias = 32,
                        .quantized = true, .symmetric = true,
                        .code_bits = 4, .code_planes = {4}, .scale_kind = QS_CODE, .scale_bits = 6,
                        .scale_planes = {4, 2}, .group_min = 32, .group_max = 32, .group_default = 32,
                        .super_block = 256, .sections = S_CS | S_SUP | S_CB, .format_minor = 2, .opt_in = true,
                        .codebook_levels = 16,
                        .fit_codebook = kernel_cb4_dq_fit, .quantize_row = kernel_cb4_dq_quantize_row,
                        .dequantize_row = kernel_cb4_dq_dequantize_row},
    [MIXQ_QT_CB3_DQ] = {.name = "cb3_dq", .id = MIXQ_QT_CB3_DQ,
                        .help = "3-bit per-tensor fitted codebook, DQ",
                        .code_min = 0, .code_max = 7, .code_bias = 0,
                        .scale_code_min = -32, .scale_code_max = 31, .scale_code_bias = 32,
                        .quantized = true, .symmetric = true,
                        .code_bits = 3, .code_planes = {2, 1}, .scale_kind = QS_CODE, .scale_bits = 6,
                        .scale_planes = {4, 2}, .group_min = 16, .group_max = 16, .group_default = 16,
                        .super_block = 256, .sections = S_CS | S_SUP | S_CB, .format_minor = 2, .opt_in = true,
                        .codebook_levels = 8,
                        .fit_codebook = kernel_cb3_dq_fit, .quantize_row = kernel_cb3_dq_quantize_row,
                        .dequantize_row = kernel_cb3_dq_dequantize_row},
    [MIXQ_QT_CB2_DQ] = {.name = "cb2_dq", .id = MIXQ_QT_CB2_DQ,
                        .help = "2-bit per-tensor fitted codebook, DQ",
                        .code_min = 0, .code_max = 3, .code_bias = 0,
                        .scale_code_min = -32, .scale_code_max = 31, .scale_code_bias = 32,
                        .quantized = true, .symmetric = true,
                        .code_bits = 2, .code_planes = {2}, .scale_kind = QS_CODE, .scale_bits = 6,
                        .scale_planes = {4, 2}, .group_min = 16, .group_max = 16, .group_default = 16,
                        .super_block = 256, .sections = S_CS | S_SUP | S_CB, .format_minor = 2, .opt_in = true,
                        .codebook_levels = 4,
                        .fit_codebook = kernel_cb2_dq_fit, .quantize_row = kernel_cb2_dq_quantize_row,
                        .dequantize_row = kernel_cb2_dq_dequantize_row},
};

static const char *const section_names[MIXQ_SECTION_COUNT] = {
    [MIXQ_SEC_DATA] = "data",
    [MIXQ_SEC_CODES] = "codes",
    [MIXQ_SEC_SCALES] = "scales",
    [MIXQ_SEC_MINS] = "mins",
    [MIXQ_SEC_SUPER_SCALES] = "super_scales",
    [MIXQ_SEC_SUPER_MINS] = "super_mins",
    [MIXQ_SEC_CODEBOOK] = "codebook",
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

/* The f32/f16/bf16 row whose plain_dtype is dt; raw for every other dtype. */
const qtype_desc *qtype_for_plain_dtype(st_dtype dt)
{
    for (unsigned i = 0; i < MIXQ_QT_COUNT; i++) {
        const qtype_desc *qt = &mx_qtypes[i];
        if (qt->name != NULL && qt->plain && qt->plain_dtype == dt)
            return qt;
    }
    return &mx_qtypes[MIXQ_QT_RAW];
}

st_dtype qtype_data_dtype(const qtype_desc *qt, st_dtype src)
{
    if (qt == NULL || !qt->plain)
        return ST_DTYPE_COUNT;
    return qt->plain_dtype == ST_DTYPE_COUNT ? src : qt->plain_dtype;
}

/* The conversion kernel is chosen by the row's element dtype, not by the type id. */
bool qtype_store_plain(const qtype_desc *qt, const float *x, size_t n, void *dst)
{
    const mx_kernel_set *k = mx_kernels();
    switch (qtype_data_dtype(qt, ST_DTYPE_COUNT)) {
    case ST_F32: memcpy(dst, x, n * sizeof *x); return true;
    case ST_F16: k->f32_to_f16(x, n, (uint16_t *)dst); return true;
    case ST_BF16: k->f32_to_bf16(x, n, (uint16_t *)dst); return true;
    default: return false;
    }
}

bool qtype_load_plain(const qtype_desc *qt, const void *src, size_t n, float *out)
{
    const mx_kernel_set *k = mx_kernels();
    switch (qtype_data_dtype(qt, ST_DTYPE_COUNT)) {
    case ST_F32: memcpy(out, src, n * sizeof *out); return true;
    case ST_F16: k->f16_to_f32((const uint16_t *)src, n, out); return true;
    case ST_BF16: k->bf16_to_f32((const uint16_t *)src, n, out); return true;
    default: return false;
    }
}

const char *qtype_name_list(char *buf, size_t len)
{
    unsigned n = 0, k = 0;
    size_t at = 0;
    if (buf == NULL || len == 0)
        return buf;
    buf[0] = '\0';
    for (unsigned i = 0; i < MIXQ_QT_COUNT; i++)
        n += mx_qtypes[i].name != NULL && i != MIXQ_QT_RAW;
    for (unsigned i = 0; i < MIXQ_QT_COUNT && at < len; i++) {
        if (mx_qtypes[i].name == NULL || i == MIXQ_QT_RAW)
            continue;
        k++;
        int w = snprintf(buf + at, len - at, "%s%s", k == 1 ? "" : k == n ? " or " : ", ", mx_qtypes[i].name);
        if (w < 0)
            break;
        at += (size_t)w; /* at >= len after a truncation: the loop stops */
    }
    return buf;
}

const char *qtype_group_help(const qtype_desc *qt, char *buf, size_t len)
{
    const char *row = "row"; /* -g row: per row, or per tensor for tensor_scale types */
    char range[32], def[16];
    if (!qt->quantized) {
        snprintf(buf, len, "-");
        return buf;
    }
    if (qt->group_min == qt->group_max)
        snprintf(range, sizeof range, "%u", qt->group_min);
    else
        snprintf(range, sizeof range, "%u..%u", qt->group_min, qt->group_max);
    if (qt->group_default == 0)
        snprintf(def, sizeof def, "%s", row);
    else
        snprintf(def, sizeof def, "%u", qt->group_default);
    if (qt->group_min == qt->group_max && !qt->allow_row_group)
        snprintf(buf, len, "%s", range);
    else
        snprintf(buf, len, "%s%s%s (%s)", qt->allow_row_group ? row : "", qt->allow_row_group ? "|" : "",
                 range, def);
    return buf;
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

bool qtype_plane_bytes(const uint8_t planes[QT_MAX_PLANES], uint64_t count, uint64_t *out)
{
    uint64_t total = 0, bits;
    for (int p = 0; p < QT_MAX_PLANES && planes[p] != 0; p++) {
        if (!ck_mul(count, planes[p], &bits) || !ck_add(total, ck_div_ceil(bits, 8), &total))
            return false;
    }
    *out = total;
    return true;
}

double qtype_nominal_bpw(const qtype_desc *qt, unsigned g)
{
    double bits;
    if (qt == NULL || !qt->quantized || g == 0)
        return 0.0;
    bits = (double)qt->code_bits + (double)qt->scale_bits * (qt->symmetric ? 1.0 : 2.0) / g;
    if (qt->super_block)
        bits += 16.0 * (qt->symmetric ? 1.0 : 2.0) / qt->super_block;
    return bits; /* a codebook's 2^b bytes per tensor are not per weight */
}

/*
 * FORMAT.md §5: per-row bytes of each present section (from the table's
 * planes and super-block size), lengths R * row bytes, sections placed in
 * kind order, each at the previous end rounded up to MX_ALIGN.  A
 * zero-element tensor gets lengths 0 (R or K is 0, so R * row bytes is 0),
 * hence offsets 0 and total 0, with no special case; the per-tensor scale
 * is likewise stored only when there are elements.
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
        if (g > UINT_MAX)
            return false; /* a per-row group longer than the kernels' unsigned group */
        l.group = (unsigned)g;
        l.groups_per_row = row_length == 0 ? 0 : ck_div_ceil(row_length, g);
        l.per_tensor = qt->tensor_scale && group_size == 0;
        if (!qtype_plane_bytes(qt->code_planes, row_length, &l.row_bytes[MIXQ_SEC_CODES]))
            return false;
        if (!l.per_tensor &&
            !qtype_plane_bytes(qt->scale_planes, l.groups_per_row, &l.row_bytes[MIXQ_SEC_SCALES]))
            return false;
        if (!qt->symmetric)
            l.row_bytes[MIXQ_SEC_MINS] = l.row_bytes[MIXQ_SEC_SCALES];
        if (qt->super_block != 0) {
            l.supers_per_row = ck_div_ceil(row_length, qt->super_block);
            l.row_bytes[MIXQ_SEC_SUPER_SCALES] = 2 * l.supers_per_row; /* <= row_length: no overflow */
            if (!qt->symmetric)
                l.row_bytes[MIXQ_SEC_SUPER_MINS] = l.row_bytes[MIXQ_SEC_SUPER_SCALES];
        }
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
        if (k == MIXQ_SEC_SCALES && l.per_tensor)
            l.length[k] = n_elements != 0 ? qt->scale_bits / 8u : 0;
        else if (k == MIXQ_SEC_CODEBOOK)
            l.length[k] = n_elements != 0 ? qt->codebook_levels : 0;
        else if (!ck_mul(rows, l.row_bytes[k], &l.length[k]))
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
