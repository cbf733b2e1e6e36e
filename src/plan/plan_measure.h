/*
 * plan_measure.h - what each candidate type would cost and how much error it
 * would add, measured on the real tensor with the converter's own kernels:
 * the exact stored bytes come from qtype_layout and the squared error from
 * quantizing and dequantizing rows exactly as mixq_convert does: every row
 * (the planner's estimate is then the converter's result) or an evenly
 * spaced sample of whole rows, scaled (mx_sample).
 */
#ifndef MIXQ_PLAN_MEASURE_H
#define MIXQ_PLAN_MEASURE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "mixq_tools.h"
#include "kernels/qtype.h"
#include "reader/st_reader.h"

/* A candidate storage: a type and the group size recorded for it. */
typedef struct mx_cand {
    const qtype_desc *qt;
    unsigned group_size; /* as recorded in the header: 0 = one group per row (quantized) or plain */
} mx_cand;

/* Statistics of a tensor's values (floating tensors only). */
typedef struct mx_tstats {
    uint64_t n;
    double sumsq;        /* sum of x^2 */
    double mean, std;    /* population standard deviation */
    double kurtosis;     /* m4 / m2^2 (3 for a Gaussian; 0 if constant) */
    double outlier_frac; /* fraction of |x - mean| > 3 std */
    float absmax;        /* max |x| */
    bool quantizable;    /* every value finite with |x| <= 65504 (FORMAT.md §4.11) */
} mx_tstats;

/* rows and row_length of a shape as FORMAT.md §3.1 defines them; false on overflow. */
bool mx_shape_rows(unsigned ndim, const uint64_t *shape, uint64_t n_elements, uint64_t *rows, uint64_t *row_length);

/* mx_shape_rows of tensor t. */
bool mx_tensor_rows(const st_tensor *t, uint64_t *rows, uint64_t *row_length);

/*
 * qtype_layout, except that a tensor without elements always gets a layout
 * (an empty one) whatever its other dimensions, as the readers accept it:
 * [0, 2^62] like [2^62, 0].  The container loader applies the same rule.
 */
bool mx_layout_of(const qtype_desc *qt, st_dtype src, uint64_t n_elements, uint64_t rows, uint64_t row_length,
                  unsigned group, qlayout *out);

/* The layout of tensor t stored as candidate c; false if the size overflows or the group is not allowed. */
bool mx_cand_layout(const mx_cand *c, const st_tensor *t, qlayout *out);

/*
 * The quantize-kernel options the converter uses for a tensor (convert.c):
 * error-minimizing search unless rtn, no importance, the tensor's max |x| for
 * a per-tensor scale (else -1).
 */
mx_qparams mx_convert_qparams(bool rtn, const qlayout *lay, float tensor_absmax);

/*
 * Statistics of a floating tensor: one pass for n, sumsq, mean, absmax and
 * quantizable; with moments, two more for std, kurtosis and outlier_frac
 * (else they are NAN: only the sensitivity strategy uses them).
 * Non-floating tensors get n and nothing else.  Reads t's data and nothing
 * else, so tensors may be measured on several threads at once.
 */
mixq_status mx_measure_stats(const st_model *m, const st_tensor *t, bool moments, mx_tstats *st, mixq_error *err);

/*
 * The rows a measurement visits.  sample == 0, or a tensor of at most
 * `sample` elements: every row.  Otherwise the k = ceil(sample / row_length)
 * rows r_j = floor((j * rows + floor(rows / 2)) / k), j = 0 .. k-1 (evenly
 * spaced, centred), unless k is over half the rows (then every row); the
 * sum over them is scaled by rows / k (exactly 1 for every row).
 */
typedef struct mx_sample {
    uint64_t total, rows;  /* the tensor's rows, the rows visited */
    uint64_t step, rem;    /* total / rows, total % rows */
    double scale;          /* total / rows */
} mx_sample;

/* The rows of a tensor of rows x row_length measured on about `sample` elements (0 = all). */
void mx_sample_init(mx_sample *smp, uint64_t rows, uint64_t row_length, uint64_t sample);

/* The j-th row visited (0 <= j < smp->rows), increasing in j. */
uint64_t mx_sample_row(const mx_sample *smp, uint64_t j);

/*
 * Sum of squared errors sum((x - x^)^2), in double, of storing floating
 * tensor t as candidate c, where x are the source values as float and x^ what
 * the container gives back (one row at a time, in bounded memory), over
 * the rows mx_sample_init picks for `sample` and scaled to the whole tensor.
 * Quantized candidates need st->quantizable.  Returns MIXQ_E_CANCELLED if
 * *cancel becomes non-zero, MIXQ_E_NOMEM or MIXQ_E_RANGE (bad layout).
 */
mixq_status mx_measure_error(const st_tensor *t, const mx_cand *c, const mx_tstats *st, bool rtn, uint64_t sample,
                             volatile sig_atomic_t *cancel, double *sse, mixq_error *err);

/*
 * mx_measure_error for every candidate cands[c] with want[c], in one pass
 * over the rows (each row converted to float once; candidates in batches of
 * bounded memory if rows are huge): sse[c] gets exactly the value
 * mx_measure_error gives, bit for bit; the other entries are not touched,
 * nor any on error.  Errors (a candidate's layout or values first, in
 * candidate order) as mx_measure_error.
 */
/*
 * m: the model t belongs to; the pages of t's data already read are released
 * (st_release_range) every 8 MiB as the pass goes, so a large tensor is never
 * resident whole (NULL: nothing is released; also for mx_measure_stats).
 */
/* Buffer memory of the candidates mx_measure_errors runs together (64 MiB; tests lower it). */
extern size_t mx_measure_batch_bytes;

mixq_status mx_measure_errors(const st_model *m, const st_tensor *t, const mx_cand *cands, size_t nc, const bool *want,
                              const mx_tstats *st, bool rtn, uint64_t sample, volatile sig_atomic_t *cancel,
                              double *sse, mixq_error *err);

/*
 * A tensor's importance (an importance matrix's entry): a[j] = the mean of
 * x_j^2 of input column j on the calibration tokens, floored (mx_importance_init).
 */
typedef struct mx_importance {
    float *a;                      /* [row_length] */
    size_t n;
    mixq_imatrix_weighting mode;
} mx_importance;

/*
 * a[j] = sum2[j] / count, each raised to at least 1e-6 of their mean (so
 * that no group has only zero weights); every a[j] = 1 if the mean is 0 or
 * not finite.  Allocates imp->a; MIXQ_E_NOMEM.
 */
mixq_status mx_importance_init(mx_importance *imp, const double *sum2, size_t n, double count,
                               mixq_imatrix_weighting mode, mixq_error *err);
void mx_importance_free(mx_importance *imp);

/* The elements whose mean square is the s2 of MIXQ_IMATRIX_SIGMA for type qt at effective group `group`. */
unsigned mx_importance_block(const qtype_desc *qt, unsigned group);

/*
 * The per-element weights of one row x of n = imp->n values for the scale
 * search: a[j] (MIXQ_IMATRIX_PLAIN) or a[j] sqrt(s2 + x_j^2) with s2 the
 * mean of x^2 over the `block` elements holding j (MIXQ_IMATRIX_SIGMA).
 * block 0 = the row.
 */
void mx_importance_row(const mx_importance *imp, const float *x, unsigned block, float *w);

/* Elements of the row sample a codebook is fitted on (mx_fit_codebook). */
#define MX_CODEBOOK_SAMPLE ((uint64_t)1 << 16)

/*
 * Fits the levels of codebook type qt (qt->codebook_levels of them) for
 * tensor t stored with group size `group`: the rows of mx_sample_init(...,
 * MX_CODEBOOK_SAMPLE) are read (through st_read if via_read, else from the
 * mapping under the SIGBUS guard; m may be NULL then, and names the file in
 * errors) and passed to qt->fit_codebook with the weights of
 * mx_importance_row (imp may be NULL).  Values a quantized type cannot hold
 * count as 0 here (the conversion refuses them on its own).  The converter
 * and the planner fit on the same rows, so the planner measures the
 * codebook the converter stores.
 */
mixq_status mx_fit_codebook(const st_model *m, bool via_read, const st_tensor *t, const qtype_desc *qt, unsigned group,
                            const mx_importance *imp, int8_t *levels, mixq_error *err);

/*
 * mx_measure_errors with an importance (NULL: exactly mx_measure_errors):
 * each row is quantized with the weights mx_importance_row gives, and sse[c]
 * is the importance-weighted error sum_j a_j sum_i (x_ij - x^_ij)^2, scaled
 * as the plain one; *wsumsq (if not NULL) gets sum_j a_j sum_i x_ij^2 over
 * the same rows, scaled alike (0 without importance or candidates).
 */
mixq_status mx_measure_errors_imp(const st_model *m, const st_tensor *t, const mx_cand *cands, size_t nc,
                                  const bool *want, const mx_tstats *st, bool rtn, const mx_importance *imp,
                                  uint64_t sample, volatile sig_atomic_t *cancel, double *sse, double *wsumsq,
                                  mixq_error *err);

#endif
