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
#include "dtype.h"

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

/* Per-call options of a quantize kernel. */
typedef struct mx_qparams {
    const float *importance; /* per-column weights of this row (n values >= 0), or NULL for all 1 */
    bool search;             /* true: error-minimizing scale search; false: plain min/max (RTN) */
    float tensor_absmax;     /* max |x| over the whole tensor (types with a per-tensor scale) */
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

typedef struct qtype_desc {
    const char *name;          /* "int4" */
    mixq_qtype id;
    bool quantized;            /* codes + per-group scales (else plain values) */
    bool symmetric;            /* no mins section */
    unsigned code_bits;        /* bits per code (quantized) or per element (f32/f16/bf16; 0 raw) */
    unsigned scale_bytes;      /* bytes per group scale (2 = f16) */
    unsigned min_bytes;        /* bytes per group min (0 if symmetric) */
    unsigned group_min;        /* smallest allowed group size (power of two) */
    unsigned group_max;        /* largest allowed group size (power of two) */
    unsigned group_default;
    bool allow_row_group;      /* group_size 0 (one group per row) allowed */
    mx_quantize_row_fn quantize_row;      /* NULL for raw/f32/f16/bf16: the */
    mx_dequantize_row_fn dequantize_row;  /* converter handles plain types itself */
} qtype_desc;

extern const qtype_desc mx_qtypes[MIXQ_QT_COUNT];

/* The descriptor for a type id (never NULL for a valid id). */
const qtype_desc *qtype_get(mixq_qtype id);

/* The descriptor for a type name, or NULL. */
const qtype_desc *qtype_by_name(const char *name);

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
    uint64_t row_bytes[MIXQ_SECTION_COUNT]; /* 0 if absent (or row_length 0): see
                                               qtype_has_section for presence */
    uint64_t offset[MIXQ_SECTION_COUNT];
    uint64_t length[MIXQ_SECTION_COUNT];
    uint64_t total;                         /* end of the last section */
} qlayout;

/*
 * Computes the layout of a tensor of `rows` x `row_length` elements stored as
 * qt with group_size (0 = per row) whose source elements have dtype src
 * (used by raw only), exactly as FORMAT.md §5: present sections in kind order,
 * each at the previous end rounded up to MX_ALIGN, total = end of the last.
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
    switch (kind) {
    case MIXQ_SEC_DATA: return !qt->quantized;
    case MIXQ_SEC_CODES:
    case MIXQ_SEC_SCALES: return qt->quantized;
    case MIXQ_SEC_MINS: return qt->quantized && !qt->symmetric;
    default: return false;
    }
}

/* Quantized types need every value finite with |x| <= this (the f16 maximum). */
#define MX_QUANT_ABS_MAX 65504.0f

#endif
