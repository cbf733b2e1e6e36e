/*
 * plan_measurement.h - measurement files (`mixq measure`, docs/PLANNER.md
 * §10): per tensor, the mean KL divergence of the model's next-token
 * distribution when only that tensor is stored as a reference type.  Shared
 * by the runtime (which measures and writes them) and the planner (which
 * turns them into error weights).  Also what both need to agree on: the
 * model's identity, which tensors the planner plans, and a tensor's values
 * exactly as the converter would store them.
 */
#ifndef MIXQ_PLAN_MEASUREMENT_H
#define MIXQ_PLAN_MEASUREMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixq.h"
#include "plan/plan_measure.h"
#include "plan/plan_roles.h"
#include "reader/st_reader.h"

#define MX_MEAS_FORMAT "mixq-measurement"
#define MX_MEAS_VERSION 1

/* One measured tensor. */
typedef struct mx_meas_tensor {
    char *name;
    double kld;       /* mean KL divergence over the scored predictions (nats) */
    double seconds;   /* wall time of its forward passes */
} mx_meas_tensor;

/* A measurement file's contents. */
typedef struct mx_measurement {
    char model_xxh3[17];     /* mx_model_identity of the checkpoint */
    uint64_t model_tensors;
    char *reference;         /* the reference type spec, e.g. "int3_dq:16" */
    bool rtn;
    char tokens_xxh3[17];    /* xxh3-64 of the calibration token ids used (int32 little-endian) */
    uint64_t ctx, chunks;
    char imatrix_xxh3[17];   /* "" without an importance matrix */
    char *imatrix_file;      /* its base name, or NULL */
    char *imatrix_weighting; /* "sigma" / "plain", or NULL */
    double base_perplexity;  /* of the unquantized model on the calibration chunks */
    mx_meas_tensor *t;
    size_t n, cap;
    uint64_t file_xxh3;      /* xxh3-64 of the file's bytes (set by mx_measurement_read) */
} mx_measurement;

/* xxh3-64 of every tensor's name, dtype and shape in file order, as 16 hex digits into hex[17]. */
void mx_model_identity(const st_model *m, char hex[17]);

/*
 * NULL if the planner plans tensor t (a floating tensor with elements, 2-D or
 * more, or 1-D with quantize_1d, not a buffer, values a quantized type can
 * hold), else why it keeps its source bytes ("non-float", "1-D", ...).
 */
const char *mx_plan_fixed_reason(const st_tensor *t, const mx_role_info *r, const mx_tstats *st, bool quantize_1d);

/*
 * The values of floating tensor t stored as candidate c and read back, as
 * the converter stores it (its kernels, search or rtn, the per-tensor max for
 * a per-tensor scale, and, unless rtn, the scale search weighted by imp as
 * mx_importance_row gives it; imp NULL: unweighted), into out (n_elements
 * floats).  Needs st->quantizable for a quantized c.
 */
mixq_status mx_reconstruct_tensor(const st_model *m, const st_tensor *t, const mx_cand *c, const mx_tstats *st,
                                  bool rtn, const mx_importance *imp, float *out, mixq_error *err);

/*
 * Parses a reference type spec ("int3_dq", "int2_dq:16") as the planner's
 * candidates are parsed; norm (cap bytes) gets its normal form
 * ("int3_dq:16").  Only quantized types with kernels.
 */
mixq_status mx_measure_reference(const char *spec, mx_cand *out, char *norm, size_t cap, mixq_error *err);

/* An empty measurement (every string allocated or NULL as documented); NULL if out of memory. */
mx_measurement *mx_measurement_new(void);
void mx_measurement_free(mx_measurement *ms);

/* Appends a tensor (the name is copied); MIXQ_E_NOMEM. */
mixq_status mx_measurement_add(mx_measurement *ms, const char *name, double kld, double seconds, mixq_error *err);

/* The entry of tensor `name`, or NULL. */
const mx_meas_tensor *mx_measurement_find(const mx_measurement *ms, const char *name);

/* Reads and strictly checks a measurement file (errors name the file and the entry). */
mixq_status mx_measurement_read(const char *path, mx_measurement **out, mixq_error *err);

/* Writes it atomically (replacing path). */
mixq_status mx_measurement_write(const mx_measurement *ms, const char *path, mixq_error *err);

/*
 * If the settings of `have` (read from path) differ from `want`'s (model,
 * reference type, rtn, tokens, ctx, chunks, importance matrix), an error
 * naming path and the first difference; MIXQ_OK if they match.
 */
mixq_status mx_measurement_same_settings(const mx_measurement *have, const mx_measurement *want, const char *path,
                                         mixq_error *err);

#endif
