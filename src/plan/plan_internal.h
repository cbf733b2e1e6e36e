/*
 * plan_internal.h - what the planner's files share: plan.c (orchestration:
 * mx_plan_build, mixq_plan_create), plan_spec.c (type specs, candidates,
 * rules), plan_sensitivity_file.c (the external sensitivity JSON),
 * plan_object.c (the plan object, header accounting, matching a plan to a
 * checkpoint), plan_steps.c (the planner's steps: statistics, measuring,
 * fixed tensors, layouts, weights) and plan_strategy.c (the sensitivity and
 * budget strategies).  Not for use outside src/plan/.
 */
#ifndef MIXQ_PLAN_INTERNAL_H
#define MIXQ_PLAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/workpool.h"
#include "container/container_write.h"
#include "kernels/qtype.h"
#include "plan/plan.h"
#include "plan/plan_importance.h"
#include "plan/plan_measure.h"
#include "plan/plan_roles.h"
#include "reader/st_reader.h"

/* A double that prints at least as long as any other with %.17g: 24 characters. */
#define WIDEST_REAL (-2.2250738585072014e-308)

/* An --override/--keep rule: tensors matching glob are kept or stored as cand. */
typedef struct rule {
    char *glob;
    bool keep;
    mx_cand cand;
} rule;

/* The state of one planning run. */
typedef struct planner {
    const st_model *m;
    const mixq_plan_options *o;
    mixq_plan_weights weights; /* o->weights with MIXQ_WEIGHTS_DEFAULT resolved */
    mixq_plan *p;
    mx_cand *cands;       /* candidate list */
    size_t nc;
    mx_cand base;         /* uniform type / sensitivity middle */
    bool has_min, has_max;
    mx_cand min_c, max_c;
    rule *rules;
    size_t nrules;
    mx_tstats *stats;     /* per tensor */
    bool *eligible;       /* planned by the strategy */
    bool *allowed;        /* [tensor * nc + c] */
    uint64_t *len;        /* [tensor * nc + c] layout totals (UINT64_MAX = impossible) */
    double *sse;          /* [tensor * nc + c] (NAN = not measured) */
    uint64_t *entry;      /* [tensor * nc + c] header entry bound (budget by file size) */
    double *ext;          /* external sensitivity per tensor */
    mx_pool *pool;        /* statistics and measuring threads (NULL: inline) */
    mx_importance *imp;   /* per tensor (NULL: no importance matrix; .a NULL: none for that tensor) */
    double *escale;       /* per tensor: factor of its measured error (1; 1/rows for an embedding with no entry) */
    double *wsumsq;       /* per tensor: sum_j a_j sum_i x_ij^2 (NAN until measured with importance) */
    json_t *im_record;    /* the imatrix header record, or NULL */
    struct mx_measurement *meas; /* the measurement file (--measurement), or NULL */
    mx_cand meas_ref;     /* its reference type */
    double *mw;           /* per tensor: kld / e(reference), NAN if not measured (NULL until computed) */
    double mw_scale;      /* a tensor without a measured weight: its role weight times this */
} planner;

static inline const char *file_of(const st_model *m, const st_tensor *t)
{
    return m->files[t->file_index].path;
}

/* plan_spec.c */

/* True if the converter has kernels for qt (a quantized type the planner may measure). */
bool mx_qtype_has_kernels(const qtype_desc *qt);

/* The group recorded for qt when the caller asked for `global` (0 = defaults, MIXQ_GROUP_PER_ROW). */
unsigned mx_spec_default_group(const qtype_desc *qt, unsigned global);

/* Parses a type spec of len bytes; what names it in messages. */
mixq_status mx_spec_parse(const char *spec, size_t len, unsigned global, const char *what, mx_cand *out,
                          mixq_error *err);

/* "int4:64", "int8:row", "fp8_e4m3:tensor", "f16" into buf. */
void mx_spec_string(const mx_cand *c, char *buf, size_t len);

/* The candidate list: the user's, or every quantized type with kernels (but the opt_in ones) plus f16. */
mixq_status mx_plan_parse_candidates(const mixq_plan_options *o, mx_cand **out, size_t *n, mixq_error *err);

/* Frees n rules and the array; NULL is allowed. */
void mx_rules_free(rule *r, size_t n);

/* The --override/--keep rules of o, in order. */
mixq_status mx_plan_parse_rules(const mixq_plan_options *o, rule **out, mixq_error *err);

/* plan_sensitivity_file.c */

/*
 * Loads the external sensitivity JSON: an object of name -> {gradient_norm,
 * weight_variance, activation_range, output_sensitivity}, or an array of
 * such objects with a "name" (or "layer_name").  ext[i] gets the seed's score
 * 0.4 g + 0.3 v + 0.2 a + 0.1 o (+1.0 embedding, +0.5 final layer),
 * normalized to mean 1 over the tensors it names; 1 for the others.
 */
mixq_status mx_plan_load_sensitivity(const char *path, const mx_plan_entry *t, size_t n, double *ext,
                                     mixq_error *err);

/* plan_object.c */

/* Replaces *dst with a copy of s; false if out of memory. */
bool mx_plan_set_str(char **dst, const char *s);

/* The header entry description of plan entry e stored as (qt, group). */
cw_tensor mx_plan_entry_of(const mx_plan_entry *e, const st_tensor *t, const qtype_desc *qt, unsigned group,
                           json_t *extra);

/* plan_steps.c */

/* Role prior times the depth factor 1 + 0.25 (1 - 2d)^2 (1.25 at the first and last block, 1 in the middle). */
double mx_role_prior(const mx_role_info *r);

/* --weights share: the vocabulary head and the token embedding 2 x blocks + 1, any other tensor 1. */
double mx_output_share(const mx_role_info *r);

/* Nominal bits per weight of a candidate, for ordering the ladder. */
double mx_cand_nominal_bits(const mx_cand *c);

/* Frees what the planner holds (not the plan or the model). */
void mx_planner_free(planner *pl);

/* Measures (once) the squared error of tensor i as candidate c. */
mixq_status mx_planner_measure(planner *pl, size_t i, size_t c, mixq_error *err);

/*
 * Measures every needed (tensor, candidate) of the eligible tensors on the
 * worker pool (o->threads, 0 = online CPUs); results do not depend on the
 * thread count, and the error reported is the first tensor's in file order.
 */
mixq_status mx_planner_measure_all(planner *pl, const bool *need, mixq_error *err);

/* The statistics of every tensor on the pool; the error reported is the first tensor's in file order. */
mixq_status mx_planner_stats_all(planner *pl, const char *in_path, mixq_error *err);

/* Squared error of a tensor stored as an arbitrary (qt, group) (rules). */
mixq_status mx_planner_measure_fixed(planner *pl, size_t i, const mx_cand *c, double *out, mixq_error *err);

/* Sets entry i to (qt, group) and its stored bytes; errors if the layout is impossible. */
mixq_status mx_planner_assign(planner *pl, size_t i, const qtype_desc *qt, unsigned group, const char *reason,
                              mixq_error *err);

/* Step 1: rules and fixed tensors; marks the rest eligible. */
mixq_status mx_planner_settle_fixed(planner *pl, mixq_error *err);

/* Step 2: layouts of every candidate for eligible tensors, and which are allowed (min/max by nominal bits). */
mixq_status mx_planner_layouts(planner *pl, mixq_error *err);

/* The weight of tensor i's squared error in the objective. */
double mx_planner_weight_of(const planner *pl, size_t i);

/*
 * With o->imatrix_path: reads it, gives every eligible tensor its importance
 * (pl->imp), warns (o->warning) about each with no entry, and sets
 * pl->im_record.  Nothing without.
 */
mixq_status mx_planner_importance(planner *pl, mixq_error *err);

/* plan_measured.c */

/*
 * With o->measurement_path: reads the file and checks it belongs to this
 * checkpoint (errors name the file and, where one differs, the tensor);
 * records it in the plan.  Nothing without.
 */
mixq_status mx_planner_load_measurement(planner *pl, mixq_error *err);

/*
 * With a measurement (once; after the strategy's measuring): each eligible
 * tensor's weight kld / e(reference), its error as the reference type
 * measured by the planner; tensors the file lacks (warned about) get their
 * role weight times the median ratio of measured to role weight.
 */
mixq_status mx_planner_measured_weights(planner *pl, mixq_error *err);

/* The role (or flat) weight of tensor i, without the sensitivity file or a measurement. */
double mx_planner_role_weight(const planner *pl, size_t i);

/* plan_strategy.c */

/* Sensitivity: score each eligible tensor, then step along the candidate ladder. */
mixq_status mx_plan_run_sensitivity(planner *pl, mixq_error *err);

/* Budget: measure everything allowed, then solve the knapsack. */
mixq_status mx_plan_run_budget(planner *pl, json_t *meta_base, uint64_t slack, mixq_error *err);

#endif
