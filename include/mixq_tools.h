/*
 * mixq_tools.h - the tools interface of libmixq: conversion of a safetensors
 * checkpoint to a container, planning (which type each tensor gets),
 * comparison of a container with its source, and export back to
 * safetensors.  It includes mixq.h, whose conventions hold here too.
 *
 * Option structs
 *  Each tool takes an options struct that will grow in later versions.  Its
 *  first field, struct_size, is the size of the struct the caller was
 *  compiled with: always fill the struct with its *_options_init function
 *  (an inline function here that passes sizeof to the library's
 *  *_options_init_sized), then set the fields you need.  The library takes
 *  struct_size bytes of the caller's struct and gives every later field (one
 *  added after the caller was built) its default; fields are only ever
 *  appended, each starting at or after the previous version's sizeof.  A
 *  struct_size below the first version's fields or above the struct this
 *  library knows (a program built against a newer mixq_tools.h) fails with
 *  MIXQ_E_INVALID_ARG and a message naming the struct.  A NULL options
 *  pointer means every default.
 */
#ifndef MIXQ_TOOLS_H
#define MIXQ_TOOLS_H

#include <signal.h>

#include "mixq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Conversion (safetensors -> container)                                   */
/* ---------------------------------------------------------------------- */

/* mixq_convert_options.group_size value asking for one group per row (int8). */
#define MIXQ_GROUP_PER_ROW 0xFFFFFFFFu

/* Called after each tensor is written; must not call back into the conversion. */
typedef void (*mixq_progress_fn)(void *ctx, size_t done, size_t total, const char *tensor_name);

/* Called with each warning of a tool (one line, no newline); the library never prints. */
typedef void (*mixq_warning_fn)(void *ctx, const char *message);

/*
 * How an importance matrix (imatrix_path) weights each element's squared
 * error in the scale search: a_j is the mean of x_j^2 of column j over the
 * calibration tokens (the file's sums / counts).
 */
typedef enum mixq_imatrix_weighting {
    MIXQ_IMATRIX_SIGMA = 0, /* w_j = a_j sqrt(s2 + x_j^2), s2 the mean square of the element's block (the
                               type's super-block, else its group) (default: chosen by measurement,
                               docs/QUALITY.md) */
    MIXQ_IMATRIX_PLAIN      /* w_j = a_j */
} mixq_imatrix_weighting;

/* Options for mixq_convert; initialise with mixq_convert_options_init. */
typedef struct mixq_convert_options {
    size_t struct_size;     /* sizeof the caller's struct: set by mixq_convert_options_init */
    mixq_qtype type;        /* type for tensors of 2 or more dims (default int8) */
    unsigned group_size;    /* 0 = the type's default; MIXQ_GROUP_PER_ROW = one group per row */
    int quantize_1d;        /* 1 = also convert 1-D tensors to `type` (default 0: keep) */
    int force;              /* 1 = replace an existing output file */
    volatile sig_atomic_t *cancel; /* if non-NULL and set non-zero, stop and clean up */
    mixq_progress_fn progress;     /* optional */
    void *progress_ctx;
    int rtn;                /* 1 = plain min/max scales (round to nearest); 0 (default) = the
                               error-minimizing scale search (FORMAT.md §4.9) */
    const struct mixq_plan *plan;                 /* if set: apply this plan exactly (every tensor named,
                                                     shapes equal; its rtn setting is used) */
    const struct mixq_plan_options *plan_options; /* if set (and no plan): plan with these options first
                                                     (rtn, cancel and a non-zero threads are the
                                                     converter's; its struct_size is checked too) */
    unsigned threads;       /* worker threads (0 = online CPUs); the output does not depend on it */
    /* version 2 */
    const char *imatrix_path; /* NULL, or an importance matrix (llama.cpp's GGUF or legacy .dat imatrix,
                                 or `mixq calibrate`'s): every scale search minimizes the weighted error
                                 (imatrix_weighting); recorded in the header ("imatrix").  A quantized
                                 tensor with no entry is converted unweighted (a warning); an entry whose
                                 length is not the tensor's row length is an error naming the tensor.
                                 Also used by plan_options if they name none. */
    mixq_imatrix_weighting imatrix_weighting;
    mixq_warning_fn warning;  /* optional: receives the warnings (e.g. a tensor with no imatrix entry) */
    void *warning_ctx;
} mixq_convert_options;

/*
 * Fills *opts with the defaults and sets opts->struct_size = struct_size
 * (only the first struct_size bytes are written).  Call it through
 * mixq_convert_options_init, which passes sizeof *opts.
 */
MIXQ_API void mixq_convert_options_init_sized(mixq_convert_options *opts, size_t struct_size);
static inline void mixq_convert_options_init(mixq_convert_options *opts)
{
    mixq_convert_options_init_sized(opts, sizeof *opts);
}

/*
 * Converts a safetensors checkpoint (a .safetensors file, a directory holding
 * model.safetensors or model.safetensors.index.json, or that index file) to a
 * container at out_path.  The output is written to a temporary file in the
 * same directory, fsynced and renamed into place; on any failure no output
 * file is left and the input is never modified.
 */
MIXQ_API mixq_status mixq_convert(const char *in_path, const char *out_path,
                                  const mixq_convert_options *opts, mixq_error *err);

/* ---------------------------------------------------------------------- */
/* Comparison (source checkpoint vs container) and export (container ->    */
/* dequantized safetensors)                                                */
/* ---------------------------------------------------------------------- */

/*
 * Error statistics of a set of elements, x being the source values and y the
 * values the container reconstructs, both taken to double precision.  The
 * sums are kept so that sets can be pooled; the metrics are derived from
 * them (n = n_elements):
 *   rmse = sqrt(sum_sq_error / n); rel_error = sqrt(sum_sq_error / sum_sq_source);
 *   sqnr_db = 10 log10(sum_sq_source / sum_sq_error), +INFINITY when exact;
 *   cosine = dot / sqrt(sum_sq_source * sum_sq_output), clamped to [-1, 1]
 *   (1 when both are all zero, 0 when only one is).
 * An element where x and y are both NaN or the same infinity is equal and adds
 * nothing to the sums; any other element with a non-finite x or y counts in
 * `nonfinite` and makes rmse, rel_error and max_abs_error +INFINITY, sqnr_db
 * -INFINITY and cosine NaN.  An empty set has rmse 0, sqnr_db +INFINITY and
 * cosine 1.
 */
typedef struct mixq_compare_stats {
    uint64_t n_elements;
    uint64_t mismatches;    /* elements whose value differs (raw tensors: whose bytes differ) */
    uint64_t nonfinite;     /* elements with a non-finite x or y that are not equal */
    double sum_sq_source;   /* sum of x^2 */
    double sum_sq_output;   /* sum of y^2 */
    double sum_sq_error;    /* sum of (x - y)^2 */
    double dot;             /* sum of x * y */
    double max_abs_error;   /* max |x - y| */
    double rmse, rel_error, sqnr_db, cosine; /* derived, as above */
} mixq_compare_stats;

/* One tensor of a comparison. */
typedef struct mixq_compare_tensor {
    const char *name;           /* valid until mixq_compare_free */
    const char *quant_type;     /* the container's type name (static string) */
    const char *source_dtype;   /* the source checkpoint's dtype name (static string) */
    mixq_qtype qtype;
    unsigned ndim;
    uint64_t shape[MIXQ_MAX_DIMS];
    int is_float;               /* 1 if the source dtype is a floating type */
    mixq_compare_stats stats;
} mixq_compare_tensor;

/*
 * A whole comparison: every tensor in container order and pooled totals
 * (every element of every tensor of the group counts once).  Integer and
 * bool tensors are in no group: they are compared for exactness only.
 */
typedef struct mixq_compare_result {
    size_t n_tensors;
    mixq_compare_tensor *tensors;
    size_t n_float, n_quantized, n_matrices; /* tensors in each group */
    mixq_compare_stats all_float;  /* tensors with a floating source dtype */
    mixq_compare_stats quantized;  /* tensors stored in a quantized type (int8, int4, ...) */
    mixq_compare_stats matrices;   /* floating tensors of two or more dimensions */
    size_t n_exact;                /* tensors with no mismatching element */
    size_t n_nonfloat_mismatched;  /* integer/bool tensors that differ (container != source) */
} mixq_compare_result;

/* Options for mixq_compare; initialise with mixq_compare_options_init. */
typedef struct mixq_compare_options {
    size_t struct_size;     /* sizeof the caller's struct: set by mixq_compare_options_init */
    int verify;                    /* 1 (default) = check the container's checksums first */
    volatile sig_atomic_t *cancel; /* if non-NULL and set non-zero, stop with MIXQ_E_CANCELLED */
    mixq_progress_fn progress;     /* optional, called after each tensor */
    void *progress_ctx;
} mixq_compare_options;

/*
 * Fills *opts with the defaults and sets opts->struct_size = struct_size
 * (only the first struct_size bytes are written).  Call it through
 * mixq_compare_options_init, which passes sizeof *opts.
 */
MIXQ_API void mixq_compare_options_init_sized(mixq_compare_options *opts, size_t struct_size);
static inline void mixq_compare_options_init(mixq_compare_options *opts)
{
    mixq_compare_options_init_sized(opts, sizeof *opts);
}

/*
 * Compares a container with the safetensors checkpoint it was converted from
 * (any input mixq_convert accepts), tensor by tensor in bounded memory.  A
 * tensor missing on either side or a shape mismatch fails with
 * MIXQ_E_NOT_FOUND or MIXQ_E_FORMAT naming the tensor.  On success *out gets
 * a result to release with mixq_compare_free.
 */
MIXQ_API mixq_status mixq_compare(const char *source_path, const char *container_path,
                                  const mixq_compare_options *opts, mixq_compare_result **out,
                                  mixq_error *err);

/* Frees a comparison result; NULL is allowed. */
MIXQ_API void mixq_compare_free(mixq_compare_result *result);

/* Options for mixq_export; initialise with mixq_export_options_init. */
typedef struct mixq_export_options {
    size_t struct_size;     /* sizeof the caller's struct: set by mixq_export_options_init */
    mixq_qtype dtype;              /* MIXQ_QT_F32 (default), MIXQ_QT_F16 or MIXQ_QT_BF16 */
    int force;                     /* 1 = replace an existing output file */
    int verify;                    /* 1 (default) = check the container's checksums first */
    volatile sig_atomic_t *cancel; /* if non-NULL and set non-zero, stop and clean up */
    mixq_progress_fn progress;     /* optional, called after each tensor */
    void *progress_ctx;
} mixq_export_options;

/*
 * Fills *opts with the defaults and sets opts->struct_size = struct_size
 * (only the first struct_size bytes are written).  Call it through
 * mixq_export_options_init, which passes sizeof *opts.
 */
MIXQ_API void mixq_export_options_init_sized(mixq_export_options *opts, size_t struct_size);
static inline void mixq_export_options_init(mixq_export_options *opts)
{
    mixq_export_options_init_sized(opts, sizeof *opts);
}

/*
 * Writes a dequantized safetensors file from a container: the original
 * names, shapes and __metadata__, floating tensors in opts->dtype, integer and
 * bool tensors with their source dtype and bytes.  Written atomically like
 * mixq_convert; a value the dtype cannot hold fails with MIXQ_E_DATA.
 */
MIXQ_API mixq_status mixq_export(const char *container_path, const char *out_path,
                                 const mixq_export_options *opts, mixq_error *err);

/* Default mixq_export_hf_options.shard_size: Hugging Face's own default ("5GB"). */
#define MIXQ_HF_SHARD_SIZE_DEFAULT 5000000000ull

/* Options for mixq_export_hf; initialise with mixq_export_hf_options_init. */
typedef struct mixq_export_hf_options {
    size_t struct_size;            /* sizeof the caller's struct: set by mixq_export_hf_options_init */
    mixq_qtype dtype;              /* MIXQ_QT_BF16 (default), MIXQ_QT_F16 or MIXQ_QT_F32 */
    uint64_t shard_size;           /* tensor bytes per shard at most (a larger tensor gets a shard of its own);
                                      0 = MIXQ_HF_SHARD_SIZE_DEFAULT */
    int force;                     /* 1 = replace an existing export directory (only one holding nothing but
                                      what an export writes) */
    int verify;                    /* 1 (default) = check the container's checksums first */
    volatile sig_atomic_t *cancel; /* if non-NULL and set non-zero, stop and clean up */
    mixq_progress_fn progress;     /* optional, called after each tensor */
    void *progress_ctx;
} mixq_export_hf_options;

/* As mixq_export_options_init_sized, for mixq_export_hf_options. */
MIXQ_API void mixq_export_hf_options_init_sized(mixq_export_hf_options *opts, size_t struct_size);
static inline void mixq_export_hf_options_init(mixq_export_hf_options *opts)
{
    mixq_export_hf_options_init_sized(opts, sizeof *opts);
}

/*
 * Writes a Hugging Face model directory from a container: the tensors
 * dequantized (as mixq_export) into shards model-0000K-of-0000N.safetensors
 * with model.safetensors.index.json, and the container's stored files
 * (config.json, tokenizer, ...) byte for byte.  The directory is built
 * beside out_dir under a temporary name and renamed into place: it appears
 * whole or not at all, also on failure or cancellation.
 */
MIXQ_API mixq_status mixq_export_hf(const char *container_path, const char *out_dir,
                                    const mixq_export_hf_options *opts, mixq_error *err);

/*
 * The mixq types whose values llama.cpp's block types hold exactly, as a
 * planner candidate list (mixq_plan_options.candidates "gguf" means this):
 * int8:32 = Q8_0, int4s:32 = Q4_0, int4:32 = Q4_1, int4_dq:32 = Q4_K,
 * int6_dq:16 = Q6_K, int3_dq:16 = Q3_K, int2_dq:16 = Q2_K, and f16, bf16
 * (F16, BF16).  The K types need rows of a multiple of 256 weights, the
 * others of 32.
 */
#define MIXQ_GGUF_CANDIDATES "int8:32,int4s:32,int4:32,int4_dq:32,int6_dq:16,int3_dq:16,int2_dq:16,f16,bf16"

/* What mixq_export_gguf does with a tensor whose type has no exact llama.cpp counterpart. */
typedef enum mixq_gguf_requantize {
    MIXQ_GGUF_EXACT_ONLY = 0, /* fail, listing every such tensor (default) */
    MIXQ_GGUF_TO_Q8_0,        /* re-quantize its values to Q8_0 */
    MIXQ_GGUF_TO_F16,         /* round its values to F16 */
    MIXQ_GGUF_TO_F32          /* store its values as F32 (exact, large) */
} mixq_gguf_requantize;

/* Options for mixq_export_gguf; initialise with mixq_export_gguf_options_init. */
typedef struct mixq_export_gguf_options {
    size_t struct_size;            /* sizeof the caller's struct: set by mixq_export_gguf_options_init */
    mixq_gguf_requantize requantize;
    int force;                     /* 1 = replace an existing output file */
    int verify;                    /* 1 (default) = check the container's checksums first */
    volatile sig_atomic_t *cancel; /* if non-NULL and set non-zero, stop and clean up */
    mixq_progress_fn progress;     /* optional, called after each tensor */
    void *progress_ctx;
    const char *name;              /* general.name; NULL = the container's file name without extension */
} mixq_export_gguf_options;

/* As mixq_export_options_init_sized, for mixq_export_gguf_options. */
MIXQ_API void mixq_export_gguf_options_init_sized(mixq_export_gguf_options *opts, size_t struct_size);
static inline void mixq_export_gguf_options_init(mixq_export_gguf_options *opts)
{
    mixq_export_gguf_options_init_sized(opts, sizeof *opts);
}

/*
 * Writes a llama.cpp GGUF (version 3) of a LLaMA-family container: the
 * architecture keys from its stored config.json, the vocabulary from its
 * stored tokenizer.model (SentencePiece) or tokenizer.json (byte-level BPE)
 * when it has one, and every tensor under llama.cpp's name, the q and k
 * projections' rows in llama.cpp's RoPE order.  A tensor whose type has an
 * exact counterpart (MIXQ_GGUF_CANDIDATES; 1-D tensors as F32) is transcoded
 * bit for bit: llama.cpp's dequantization gives exactly the container's
 * values.  Any other tensor is an error (MIXQ_E_UNSUPPORTED listing them)
 * unless opts->requantize says what to do.  Written atomically.
 */
MIXQ_API mixq_status mixq_export_gguf(const char *container_path, const char *out_path,
                                      const mixq_export_gguf_options *opts, mixq_error *err);

/* ---------------------------------------------------------------------- */
/* Planning: which type each tensor gets (docs/PLANNER.md)                 */
/* ---------------------------------------------------------------------- */

/* A plan: one storage type and group size per tensor of a checkpoint. */
typedef struct mixq_plan mixq_plan;

typedef enum mixq_plan_strategy {
    MIXQ_STRATEGY_UNIFORM = 0, /* one type for every quantizable tensor */
    MIXQ_STRATEGY_SENSITIVITY, /* a score per tensor, thresholds map scores to types */
    MIXQ_STRATEGY_BUDGET       /* least weighted error within a size budget (multiple-choice knapsack) */
} mixq_plan_strategy;

typedef enum mixq_plan_weights {
    MIXQ_WEIGHTS_ROLE = 0, /* role and depth prior, per unit of the tensor's mean square */
    MIXQ_WEIGHTS_FLAT,     /* every tensor's squared error counts as it is */
    MIXQ_WEIGHTS_SHARE,    /* relative error times the tensor's share of the output: the vocabulary
                              head and the token embedding 2 x blocks + 1, every other matrix 1 */
    MIXQ_WEIGHTS_DEFAULT   /* (mixq_plan_options_init) share for a budget plan without an importance
                              matrix, role otherwise: the lowest KLD measured (docs/PLANNER.md §11) */
} mixq_plan_weights;

/* Elements per tensor the planner measures errors on by default (mixq_plan_options.measure_sample). */
#define MIXQ_MEASURE_SAMPLE_DEFAULT ((uint64_t)1 << 18)

/* Options of mixq_plan_create; initialise with mixq_plan_options_init. */
typedef struct mixq_plan_options {
    size_t struct_size;     /* sizeof the caller's struct: set by mixq_plan_options_init */
    mixq_plan_strategy strategy;
    mixq_qtype type;          /* uniform: the type (default int8); sensitivity: the type of a score-1
                                 tensor (default int4); MIXQ_QT_RAW = that default */
    unsigned group_size;      /* 0 = each type's default; MIXQ_GROUP_PER_ROW; applies to each
                                 candidate that allows it */
    double target_bpw;        /* budget: stored bits per weight, as `mixq dump` counts them (0 = unset) */
    uint64_t target_size;     /* budget: bytes of the whole output file (0 = unset) */
    const char *candidates;   /* "int4,int8:32,f16" (TYPE[:GROUP|:row]); NULL = every quantized type
                                 this build has (at its default group and, without group_size, also
                                 its largest group), and f16; for sensitivity: int2_dq, int4, int8, f16 */
    const char *min_type;     /* NULL, or only candidates of at least this type's nominal bits per weight */
    const char *max_type;     /* NULL, or only candidates of at most this type's nominal bits per weight */
    const char *const *rules; /* "GLOB=TYPE[:GROUP]" or "GLOB=keep"; the last matching rule wins over */
    size_t n_rules;           /*   every strategy (fnmatch on the full tensor name) */
    mixq_plan_weights weights;
    const char *sensitivity_path; /* NULL, or a JSON file of per-tensor gradient_norm, weight_variance,
                                     activation_range, output_sensitivity (docs/PLANNER.md) */
    double thresholds[3];     /* sensitivity: low, medium, high score thresholds (default 0.5, 2, 4) */
    int quantize_1d;          /* 1 = 1-D tensors are quantizable too */
    int rtn;                  /* 1 = measure with plain min/max rounding, as convert's rtn option */
    uint64_t measure_sample;  /* errors of a tensor of more elements are measured on evenly spaced whole
                                 rows holding about this many and scaled to the tensor (default
                                 MIXQ_MEASURE_SAMPLE_DEFAULT); 0 = every row, exactly */
    volatile sig_atomic_t *cancel; /* if non-NULL and set non-zero, stop with MIXQ_E_CANCELLED */
    mixq_progress_fn progress;     /* optional, called after each tensor is measured (possibly from a
                                      worker thread, never two calls at once) */
    void *progress_ctx;
    unsigned threads;         /* measuring threads: 0 = one per online CPU; results do not depend on it */
    /* version 2 */
    const char *imatrix_path; /* NULL, or an importance matrix (as mixq_convert_options.imatrix_path):
                                 candidates are measured as the converter would quantize them with it, and
                                 each candidate's error becomes the importance-weighted error
                                 sum_j a_j sum_i (x_ij - x^_ij)^2 (the error added to the layer's output);
                                 a token embedding with no entry counts its error per token (/ rows) */
    mixq_imatrix_weighting imatrix_weighting;
    mixq_warning_fn warning;  /* optional: receives the warnings (e.g. a tensor with no imatrix entry) */
    void *warning_ctx;
    /* version 3 */
    const char *measurement_path; /* NULL, or a measurement file of `mixq measure` for this checkpoint:
                                     tensor i's weight becomes kld_i / e_i(T), T the file's reference type
                                     and e_i the planner's own error measure, so that weight x error
                                     predicts its KL divergence; the budget minimises the predicted KLD
                                     (docs/PLANNER.md §10) */
} mixq_plan_options;

/*
 * Fills *opts with the defaults (uniform int8, role weights) and sets
 * opts->struct_size = struct_size (only the first struct_size bytes are
 * written).  Call it through mixq_plan_options_init, which passes sizeof *opts.
 */
MIXQ_API void mixq_plan_options_init_sized(mixq_plan_options *opts, size_t struct_size);
static inline void mixq_plan_options_init(mixq_plan_options *opts)
{
    mixq_plan_options_init_sized(opts, sizeof *opts);
}

/*
 * Plans a checkpoint (any input mixq_convert accepts): classifies every
 * tensor, computes the exact stored size of each candidate type and measures
 * its squared error with the converter's own kernels (on the sample of rows
 * opts->measure_sample sets), and assigns types by the strategy.
 * A budget below the smallest achievable size fails with MIXQ_E_RANGE and a
 * message stating that size.  On success *out gets a plan to release with
 * mixq_plan_free.
 */
MIXQ_API mixq_status mixq_plan_create(const char *in_path, const mixq_plan_options *opts, mixq_plan **out,
                                      mixq_error *err);

/* Frees a plan; NULL is allowed. */
MIXQ_API void mixq_plan_free(mixq_plan *plan);

/* Number of tensors in a plan (source order). */
MIXQ_API size_t mixq_plan_tensor_count(const mixq_plan *plan);

/* One tensor of a plan.  Strings stay valid until mixq_plan_free. */
typedef struct mixq_plan_tensor {
    const char *name;
    unsigned ndim;
    uint64_t shape[MIXQ_MAX_DIMS];
    uint64_t n_elements;
    const char *source_dtype;  /* safetensors dtype, or NULL if the plan file did not say */
    const char *role;          /* "embedding", "norm", "output", "attn_q", ... "other" */
    int layer;                 /* block index, -1 outside the blocks */
    double depth;              /* depth fraction in [0, 1] */
    int tied;                  /* 1 for a token embedding that is also the output head */
    mixq_qtype qtype;          /* the planned type (MIXQ_QT_RAW: source bytes) */
    unsigned group_size;       /* as recorded in the container: 0 = per row (or per tensor) or plain */
    uint64_t nbytes;           /* stored bytes (0 if the dtype is unknown) */
    double estimated_error;    /* sum of squared errors x - x^ over the tensor; NaN if unknown */
    double rel_error;          /* sqrt(estimated_error / sum x^2); NaN if unknown */
    double weight;             /* weight of its error in the budget objective */
    double score;              /* sensitivity score (0 if not computed) */
    const char *reason;        /* why it got its type: "strategy", "rule", "keep", "1-D", "non-float", ... */
    double predicted_kld;      /* with a measurement: weight x estimated_error, its predicted KLD; else NaN */
} mixq_plan_tensor;

/* Fills *out for the i-th tensor; MIXQ_E_RANGE if i is out of range. */
MIXQ_API mixq_status mixq_plan_tensor_get(const mixq_plan *plan, size_t i, mixq_plan_tensor *out);

/* Totals of a plan. */
typedef struct mixq_plan_summary {
    const char *strategy;      /* "uniform", "sensitivity", "budget" */
    double target_bpw;         /* 0 if none */
    uint64_t target_size;      /* 0 if none */
    const char *weights;       /* "role", "flat", "share" or "measured", then "+file" (a sensitivity file), "+imatrix" (an importance matrix) */
    size_t n_tensors;
    uint64_t n_elements;       /* weights of every tensor */
    uint64_t source_bytes;     /* the source tensors' bytes */
    uint64_t tensor_bytes;     /* sum of stored tensor bytes (what `mixq dump` calls stored) */
    uint64_t file_bytes;       /* upper bound of the output file: preamble, aligned tensors, header */
    double bits_per_weight;    /* tensor_bytes * 8 / n_elements, as `mixq dump` */
    double estimated_error;    /* sum of the tensors' squared errors (NaN if some are unknown) */
    uint64_t measure_sample;   /* the measure_sample the errors were measured with (0 = every row) */
    size_t n_sampled;          /* tensors whose estimated error comes from a sample of their rows */
    double weighted_error;     /* sum of weight * error: the budget objective */
    double lower_bound;        /* budget: no plan within the budget has a smaller weighted error */
    int optimal;               /* budget: 1 if the plan is proven optimal */
    const char *solver;        /* budget: "dp" or "lagrangian"; else "" */
    uint64_t budget_bytes;     /* budget: what the planned tensors could use, in the target's units */
    uint64_t min_bytes;        /* budget: the smallest achievable, same units */
    double predicted_kld;      /* with a measurement: the sum of the tensors' predicted KLD; else NaN */
    const char *measurement;   /* with a measurement: the file's base name; else NULL */
} mixq_plan_summary;

/* Fills *out. */
MIXQ_API void mixq_plan_get_summary(const mixq_plan *plan, mixq_plan_summary *out);

/* Writes a plan as JSON (docs/PLANNER.md), atomically; force = replace an existing file. */
MIXQ_API mixq_status mixq_plan_save(const mixq_plan *plan, const char *path, int force, mixq_error *err);

/*
 * Reads a plan file (strict: unknown keys, unknown types, bad group sizes,
 * duplicate names are errors naming the file and the tensor).
 */
MIXQ_API mixq_status mixq_plan_load(const char *path, mixq_plan **out, mixq_error *err);

#ifdef __cplusplus
}
#endif

#endif /* MIXQ_TOOLS_H */
