/*
 * plan_importance.h - an importance matrix (format/imatrix.h) applied to a
 * checkpoint's tensors: which entry each tensor takes, its column
 * importance, the warnings, and the header record.  Shared by the planner
 * and the converter, so that both quantize a tensor with the same weights.
 */
#ifndef MIXQ_PLAN_IMPORTANCE_H
#define MIXQ_PLAN_IMPORTANCE_H

#include <stdbool.h>

#include <jansson.h>

#include "mixq_tools.h"
#include "format/imatrix.h"
#include "plan/plan_measure.h"
#include "plan/plan_roles.h"
#include "reader/st_reader.h"

/*
 * The importance of tensor t (role r, for tied embeddings) from im: out->a
 * set (mx_importance_init of its entry) if im has an entry for it, else
 * out->a = NULL and *missing = true.  An entry whose length is not t's row
 * length fails with MIXQ_E_INVALID_ARG naming the tensor and the file
 * (im_name).
 */
mixq_status mx_importance_for(const mx_imatrix *im, const char *im_name, const st_tensor *t, const mx_role_info *r,
                              mixq_imatrix_weighting mode, mx_importance *out, bool *missing, mixq_error *err);

/* Formats a warning and hands it to fn (nothing if fn is NULL). */
void mx_warn(mixq_warning_fn fn, void *ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The name of a weighting: "sigma" or "plain". */
const char *mx_imatrix_weighting_name(mixq_imatrix_weighting w);

/*
 * The header record of an importance matrix read from path (FORMAT.md §3.2
 * "imatrix"): {"file": basename, "xxh3": 16 hex digits of the file's
 * xxh3-64, "datasets": [...], "chunk_count", "chunk_size", "entries",
 * "weighting"}.  NULL if out of memory.
 */
json_t *mx_imatrix_record(const mx_imatrix *im, const char *path, mixq_imatrix_weighting w);

#endif
