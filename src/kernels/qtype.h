/*
 * qtype.h - the table of quantization types.  Everything that depends on a
 * type (bits, groups, which sections exist, kernels) is read from here.
 */
#ifndef MIXQ_QTYPE_H
#define MIXQ_QTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixq.h"
#include "common/dtype.h"

/* Alignment of every tensor and every section within it, in bytes. */
#define MX_ALIGN 64u

/*
 * Pointers to one row's part of each section, indexed by mixq_section_kind.
 * Unused kinds are NULL.
 */
typedef struct mx_rowptrs {
    uint8_t *sec[MIXQ_SECTION_COUNT];
} mx_rowptrs;

typedef struct mx_crowptrs {
    const uint8_t *sec[MIXQ_SECTION_COUNT];
} mx_crowptrs;

/*
 * Per-call options of a quantize kernel.  A NULL mx_qparams means: no
 * importance, no search, not per tensor.
 */
typedef struct mx_qparams {
    const float *importance; /* per-column weights of this row (n finite values >= 0), or NULL for all 1 */
    bool search;             /* true: error-minimizing scale search; false: plain min/max (RTN) */
    float tensor_absmax;     /* max |x| over the whole tensor for a per-tensor scale (tensor_scale
                                types with group_size 0); negative (-1) otherwise */
    const int8_t *codebook;  /* codebook types: the tensor's fitted levels (qtype_desc.codebook_levels
                                of them, from .fit_codebook), used as given and not written; NULL: the
                                kernel fits levels to this row alone and writes them to
                                out.sec[MIXQ_SEC_CODEBOOK] (a one-row tensor) */
} mx_qparams;

/*
 * Quantizes one row of n floats (all finite, |x| <= MX_QUANT_ABS_MAX) into
 * codes/scales/mins.  group is the group size (> 0; a per-row group is
 * passed as n).  p may be NULL: plain min/max, no importance.
 */
typedef void (*mx_quantize_row_fn)(const float *x, size_t n, unsigned group, const mx_qparams *p,
                                   mx_rowptrs out);

/* Reconstructs one row of n floats. */
typedef void (*mx_dequantize_row_fn)(mx_crowptrs in, size_t n, unsigned group, float *out);

/*
 * Fits a codebook type's int8 levels to a tensor (or a deterministic sample
 * of its rows): rows x n floats x (finite, |x| <= MX_QUANT_ABS_MAX),
 * row-major, with per-element weights w (same shape, >= 0) or NULL for all
 * 1, stored with group size `group`.  Writes qtype_desc.codebook_levels
 * levels.  Deterministic: the same inputs give the same levels.
 */
typedef void (*mx_fit_codebook_fn)(const float *x, const float *w, size_t rows, size_t n, unsigned group,
                                   int8_t *levels);

/* How the per-group scales (and mins) of a quantized type are stored. */
typedef enum qscale_kind {
    QS_NONE = 0, /* plain types: no scales */
    QS_F16,      /* one little-endian f16 per group (scales; mins too if asymmetric) */
    QS_F32,      /* one little-endian binary32 per group, or one per tensor (tensor_scale) */
    QS_CODE,     /* a scale_bits-bit code per group under an f16 scale per super-block (DQ types) */
} qscale_kind;

/* Bit of a section kind in qtype_desc.sections. */
#define QT_SEC(kind) (1u << (kind))

/* Most bit planes a code or scale-code field is split into (FORMAT.md §5.1). */
#define QT_MAX_PLANES 3

/*
 * One entry per type; everything else (layout, loader checks, converter,
 * CLI) reads these fields instead of switching on the id.
 */
typedef struct qtype_desc {
    const char *name;          /* "int4"; NULL = not implemented in this build (skipped by lookups) */
    mixq_qtype id;
    const char *help;          /* one line for type lists (--help, docs): what an element holds */
    bool quantized;            /* codes + per-group scales */
    bool plain;                /* one data section of plain values (raw, f32, f16, bf16); !quantized */
    st_dtype plain_dtype;      /* element dtype of that section (f32/f16/bf16 rows); raw stores the
                                  source dtype: read both through qtype_data_dtype */
    int code_min, code_max;    /* range of the integer code q of an element (quantized; fp8: the
                                  byte's bit pattern, 0..255) */
    unsigned code_bias;        /* a code is stored as (q + code_bias) mod 2^code_bits (FORMAT.md §4) */
    int scale_code_min, scale_code_max; /* QS_CODE types: range of a group's scale (and min) code */
    unsigned scale_code_bias;  /* stored scale code = (c + scale_code_bias) mod 2^scale_bits */
    bool symmetric;            /* no mins section */
    unsigned code_bits;        /* bits per code (quantized) or per element (f32/f16/bf16; 0 raw) */
    uint8_t code_planes[QT_MAX_PLANES];  /* bit-plane widths of a code, low bits first, 0-terminated
                                            (each 1, 2, 4 or 8; their sum is code_bits) */
    qscale_kind scale_kind;
    unsigned scale_bits;       /* bits per group scale (and min): 16 f16, 32 f32, or the code width */
    uint8_t scale_planes[QT_MAX_PLANES]; /* bit planes of a scale (and min) field, as code_planes
                                            ({16} and {32}: little-endian f16 / binary32) */
    unsigned group_min;        /* smallest allowed group size (power of two) */
    unsigned group_max;        /* largest allowed group size (power of two) */
    unsigned group_default;    /* used when the caller asks for the type's default (0 = per row / tensor) */
    bool allow_row_group;      /* group_size 0 allowed: one group per row, or per tensor if tensor_scale */
    bool tensor_scale;         /* group_size 0 = ONE scale for the whole tensor: the scales section is
                                  4 bytes with row stride 0; the converter passes tensor_absmax */
    unsigned super_block;      /* weights per super-block (QS_CODE types), 0 = none */
    unsigned sections;         /* QT_SEC() bits of the sections this type stores */
    unsigned format_minor;     /* container format minor version that introduced the type (FORMAT.md §2):
                                  a container holding it has at least this minor (0 = version 1.0) */
    bool opt_in;               /* not among the planner's default candidates (only when --candidates
                                  names it): types added after the goldens were pinned, until measured */
    unsigned codebook_levels;  /* codebook types: int8 levels per tensor (2^code_bits), stored once per
                                  tensor in the codebook section (row stride 0); 0 for other types */
    mx_fit_codebook_fn fit_codebook; /* codebook types: fits the levels before the rows are quantized */
    mx_quantize_row_fn quantize_row;      /* NULL for raw/f32/f16/bf16: the */
    mx_dequantize_row_fn dequantize_row;  /* converter handles plain types itself */
} qtype_desc;

extern const qtype_desc mx_qtypes[MIXQ_QT_COUNT];

/* The descriptor for a type id (never NULL for a valid id). */
const qtype_desc *qtype_get(mixq_qtype id);

/* The descriptor for a type name, or NULL. */
const qtype_desc *qtype_by_name(const char *name);

/* The plain type that holds a source dtype exactly (f32, f16, bf16), else raw. */
const qtype_desc *qtype_for_plain_dtype(st_dtype dt);

/*
 * The element dtype of a plain tensor's data section: the row's plain_dtype,
 * or src for raw.  ST_DTYPE_COUNT for a quantized type.
 */
st_dtype qtype_data_dtype(const qtype_desc *qt, st_dtype src);

/*
 * Converts n floats to the plain type's element dtype (f32, f16 or bf16; dst
 * 2-byte aligned, little-endian host).  False for any other type.
 */
bool qtype_store_plain(const qtype_desc *qt, const float *x, size_t n, void *dst);

/* The inverse of qtype_store_plain: n elements of the plain type at src to floats (exact). */
bool qtype_load_plain(const qtype_desc *qt, const void *src, size_t n, float *out);

/*
 * Writes "a, b, ... or z" into buf: the names of the implemented types that
 * `--type` takes (all but raw), in table order.  Returns buf (truncated to
 * len, always terminated).
 */
const char *qtype_name_list(char *buf, size_t len);

/*
 * Writes the group sizes of a type for help texts into buf: "-" (plain),
 * "16", "16..256 (64)", "row|32..256 (128)", "row|32..256 (row)" ('row' is
 * one scale per tensor for tensor_scale types).
 */
const char *qtype_group_help(const qtype_desc *qt, char *buf, size_t len);

/*
 * True if group_size is allowed for this type (0 = per row): plain types take
 * only 0; quantized types a power of two in [group_min, group_max], or 0 if
 * allow_row_group.
 */
bool qtype_group_ok(const qtype_desc *qt, unsigned group_size);

/* Byte layout of one stored tensor. Offsets are relative to the tensor start. */
typedef struct qlayout {
    uint64_t rows, row_length;
    unsigned group;                         /* effective group size (> 0 if quantized and
                                               row_length > 0; 0 for plain types) */
    uint64_t groups_per_row;                /* ceil(row_length / group); 0 if row_length 0 */
    uint64_t supers_per_row;                /* ceil(row_length / super_block) (types with
                                               super-blocks; else 0) */
    bool per_tensor;                        /* one scale for the whole tensor (tensor_scale
                                               type, group_size 0): row_bytes[SCALES] is 0 */
    uint64_t row_bytes[MIXQ_SECTION_COUNT]; /* 0 if absent (or row_length 0): see
                                               qtype_has_section for presence */
    uint64_t offset[MIXQ_SECTION_COUNT];
    uint64_t length[MIXQ_SECTION_COUNT];
    uint64_t total;                         /* end of the last section */
} qlayout;

/*
 * Computes the layout of a tensor of `rows` x `row_length` elements stored as
 * qt with group_size (0 = per row, or per tensor for tensor_scale types) whose
 * source elements have dtype src (used by raw only), exactly as FORMAT.md §5:
 * present sections in kind order, each at the previous end rounded up to
 * MX_ALIGN, total = end of the last.  Every section is rows x row_bytes
 * (row r at offset + r * row_bytes), except the per-tensor scales section:
 * scale_bits / 8 bytes shared by every row (row_bytes 0), and the codebook
 * section: codebook_levels bytes shared by every row (row_bytes 0).
 * A zero-element tensor has all lengths and offsets 0 and total 0.  Returns
 * false (and zeroes *out) on arithmetic overflow, a group size not allowed by
 * qtype_group_ok, an invalid src for raw, or a per-row group longer than
 * UINT_MAX elements.
 */
bool qtype_layout(const qtype_desc *qt, st_dtype src, uint64_t rows, uint64_t row_length,
                  unsigned group_size, qlayout *out);

/* True if tensors of this type store section `kind` (even when it is empty). */
static inline bool qtype_has_section(const qtype_desc *qt, mixq_section_kind kind)
{
    return (unsigned)kind < MIXQ_SECTION_COUNT && (qt->sections & QT_SEC(kind)) != 0;
}

/* Bytes of `count` fields stored as the bit planes `planes` (FORMAT.md §5.1): sum of ceil(count * w / 8). */
bool qtype_plane_bytes(const uint8_t planes[QT_MAX_PLANES], uint64_t count, uint64_t *out);

/*
 * Nominal bits per weight of a type at group size g (> 0) for rows that are
 * a multiple of g and of the super-block: codes, scales, mins and the
 * super-block scales, no padding.  0 for plain types.
 */
double qtype_nominal_bpw(const qtype_desc *qt, unsigned g);

/* Quantized types need every value finite with |x| <= this (the f16 maximum). */
#define MX_QUANT_ABS_MAX 65504.0f

#endif
