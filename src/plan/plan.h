/*
 * plan.h - internals of mixq_plan shared by the planner (plan.c), plan files
 * (plan_file.c) and the converter (convert.c).
 */
#ifndef MIXQ_PLAN_H
#define MIXQ_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "mixq_tools.h"
#include "common/same_file.h"
#include "plan/plan_roles.h"
#include "kernels/qtype.h"
#include "reader/st_reader.h"

/* Version of the plan file format (docs/PLANNER.md). */
#define MX_PLAN_FORMAT "mixq-plan"
#define MX_PLAN_VERSION 1

/* One tensor of a plan. */
typedef struct mx_plan_entry {
    char *name;
    unsigned ndim;
    uint64_t shape[MIXQ_MAX_DIMS];
    uint64_t n_elements;
    int dtype;                /* st_dtype of the source; -1 if unknown (plan file without "dtype") */
    mx_role_info role;
    const qtype_desc *qt;     /* planned type */
    unsigned group_size;      /* as recorded in the container (0 = per row / per tensor, or plain) */
    uint64_t nbytes;          /* stored bytes (layout total); 0 if the dtype is unknown and qt is raw */
    double est_error;         /* sum of squared errors; NAN if unknown */
    double sumsq;             /* sum of x^2 of the source; NAN if unknown */
    double weight;            /* objective weight (NAN if unknown) */
    double score;             /* sensitivity score (0 if not computed) */
    const char *reason;       /* static string */
} mx_plan_entry;

struct mixq_plan {
    mx_plan_entry *t;
    size_t n;
    char *strategy;           /* "uniform", "sensitivity", "budget" (as loaded, for plan files) */
    char *weights;            /* "role", "flat" or "measured", with "+file" and/or "+imatrix" */
    char *candidates;         /* normalized list, e.g. "int4:64,int8:128,f16"; "" if none */
    double target_bpw;        /* 0 if none */
    uint64_t target_size;     /* 0 if none */
    bool rtn;                 /* measured with plain min/max rounding */
    uint64_t measure_sample;  /* elements per tensor the errors were measured on (0 = every row) */
    /* results of planning (budget) */
    double weighted_error, lower_bound;
    bool optimal;
    const char *solver;       /* "dp", "lagrangian" or "" */
    uint64_t budget_bytes, min_bytes;
    uint64_t file_bytes;      /* upper bound of the output file (0 if unknown) */
    char *origin;             /* the plan file's name for messages, or NULL */
    char *meas_file;          /* the measurement file's base name (weights "measured..."), or NULL */
    char meas_xxh3[17];       /* its xxh3-64, 16 hex digits */
    double predicted_kld;     /* with a measurement: sum of weight x estimated error over the tensors; else NAN */
    mx_file_key *inputs;      /* the files planned from (shards, index, sensitivity file): never saved over */
    size_t ninputs;
};

/* Parses a plan file's text (the fuzzer's entry point); `name` is used in messages. */
mixq_status mx_plan_parse(const char *name, const char *text, size_t len, mixq_plan **out, mixq_error *err);

/* The plan file's JSON text (malloc'd, NUL-terminated), or NULL if out of memory. */
char *mx_plan_to_json(const mixq_plan *plan);

/* An empty plan with its strings allocated (strategy etc. empty); NULL if out of memory. */
mixq_plan *mx_plan_alloc(size_t n);

/*
 * Plans an open checkpoint.  meta is the metadata object the converter will
 * write (without "plan"), used to bound the header size; NULL = estimate it
 * from the default convert options plus slack.
 */
mixq_status mx_plan_build(const st_model *m, const char *in_path, const mixq_plan_options *o, json_t *meta,
                          mixq_plan **out, mixq_error *err);

/*
 * Checks that a plan fits an open checkpoint: the same tensor names, shapes
 * (and dtypes where the plan records them), and a type each tensor can be
 * stored as.  map[i] gets the plan entry of the model's tensor i.  Errors
 * name plan_name and the tensor.
 */
mixq_status mx_plan_match(const mixq_plan *plan, const st_model *m, const char *plan_name, size_t *map,
                          mixq_error *err);

/*
 * The "plan" object of the container metadata.  With placeholder, every
 * number is replaced by one at least as long when written (for size bounds).
 */
json_t *mx_plan_header_meta(const mixq_plan *plan, bool placeholder);

/* True if v is a "weights" value the planner writes (role, flat, measured, with "+file" and/or "+imatrix"). */
bool mx_plan_weights_known(const char *v);

/*
 * Exact size of the output file for plan applied to m (map as from
 * mx_plan_match; NULL = identity) with container metadata meta (including
 * "plan") and each tensor's estimated_error: 0 on overflow or out of memory.
 */
uint64_t mx_plan_file_size(const mixq_plan *plan, const st_model *m, const size_t *map, json_t *meta);

/* weight x estimated error of entry e when the plan has a measurement (its predicted KLD), else NAN. */
double mx_plan_entry_predicted(const mixq_plan *plan, const mx_plan_entry *e);

/* The "estimated_error" extra of a tensor entry, or NULL if unknown. */
json_t *mx_plan_entry_extra(const mx_plan_entry *e);

#endif
