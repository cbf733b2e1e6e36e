/*
 * mixq.h - the public interface of libmixq.
 *
 * libmixq reads and writes mixq containers: files in which every tensor of a
 * model checkpoint is stored with its own quantization type (INT8, INT4,
 * F16, ...).  The byte-level format is specified in format/FORMAT.md.
 *
 * Conventions
 *  - The library never prints, never exits and never aborts on bad input.
 *    Every function that can fail returns a mixq_status and, when the caller
 *    passes a mixq_error, fills it with the status and a one-line message
 *    that names the file and, where there is one, the tensor.
 *  - All sizes are in bytes and all counts are 64-bit; every size computed
 *    from file contents is overflow-checked.
 *  - Pointers returned into an open file stay valid until mixq_close().
 *  - A mixq_file may be read from several threads at once; mixq_close() must
 *    not race with any other call on the same file.
 */
#ifndef MIXQ_H
#define MIXQ_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MIXQ_API __attribute__((visibility("default")))
#else
#define MIXQ_API
#endif

/* Version of the library (semantic versioning) and of the container format. */
#define MIXQ_VERSION_MAJOR 0
#define MIXQ_VERSION_MINOR 1
#define MIXQ_VERSION_PATCH 0
#define MIXQ_FORMAT_VERSION 1

/* Largest number of dimensions a tensor may have. */
#define MIXQ_MAX_DIMS 8

/* Status codes.  0 is success; every other value is a failure. */
typedef enum mixq_status {
    MIXQ_OK = 0,
    MIXQ_E_INVALID_ARG,  /* the caller passed a bad argument */
    MIXQ_E_IO,           /* open/read/write/mmap/fsync/rename failed */
    MIXQ_E_NOMEM,        /* an allocation failed */
    MIXQ_E_FORMAT,       /* the input file is malformed */
    MIXQ_E_UNSUPPORTED,  /* valid but not supported (unknown quant_type, version) */
    MIXQ_E_CHECKSUM,     /* a checksum does not match: the file is corrupt */
    MIXQ_E_NOT_FOUND,    /* no tensor of that name */
    MIXQ_E_RANGE,        /* a row range or size outside what the tensor holds */
    MIXQ_E_EXISTS,       /* the output exists and replacing it was not allowed */
    MIXQ_E_CANCELLED,    /* the caller's cancel flag was raised */
    MIXQ_E_DATA          /* tensor values that cannot be converted (NaN, Inf, too large) */
} mixq_status;

/* Error details: the status and a one-line human-readable message. */
typedef struct mixq_error {
    mixq_status code;
    char message[512];
} mixq_error;

/* A short constant name for a status ("ok", "io error", ...). */
MIXQ_API const char *mixq_status_name(mixq_status status);

/* The library version as "MAJOR.MINOR.PATCH". */
MIXQ_API const char *mixq_version_string(void);

/*
 * Quantization types.  The numeric values are part of the ABI and never
 * change; the file stores the name (mixq_qtype_name), not the number.
 */
typedef enum mixq_qtype {
    MIXQ_QT_RAW = 0, /* source bytes kept exactly (any safetensors dtype) */
    MIXQ_QT_F32,     /* IEEE binary32 */
    MIXQ_QT_F16,     /* IEEE binary16 */
    MIXQ_QT_BF16,    /* bfloat16 */
    MIXQ_QT_INT8,    /* symmetric 8-bit codes, f16 scale per group */
    MIXQ_QT_INT4,    /* asymmetric 4-bit codes, f16 scale and min per group */
    MIXQ_QT_INT4S,   /* symmetric 4-bit codes, f16 scale per group */
    MIXQ_QT_INT2,    /* asymmetric 2-bit codes, f16 scale and min per group */
    MIXQ_QT_FP8_E4M3, /* OCP FP8 E4M3 codes, f32 scale per group or per tensor */
    MIXQ_QT_FP8_E5M2, /* OCP FP8 E5M2 codes, f32 scale per group or per tensor */
    MIXQ_QT_INT4_DQ, /* asymmetric 4-bit, 6-bit group scales/mins under f16 super-block scales */
    MIXQ_QT_INT2_DQ, /* asymmetric 2-bit, 4-bit group scales/mins under f16 super-block scales */
    MIXQ_QT_INT3_DQ, /* symmetric 3-bit, quantized group scales under f16 super-block scales */
    MIXQ_QT_INT6_DQ, /* symmetric 6-bit, quantized group scales under f16 super-block scales */
    MIXQ_QT_COUNT
} mixq_qtype;

/* Name of a quant type as stored in files ("int4", ...); NULL if out of range. */
MIXQ_API const char *mixq_qtype_name(mixq_qtype qtype);

/* Parses a quant type name; returns MIXQ_E_UNSUPPORTED for unknown names. */
MIXQ_API mixq_status mixq_qtype_from_name(const char *name, mixq_qtype *out);

/* The parts ("sections") a tensor's bytes are split into; see FORMAT.md. */
typedef enum mixq_section_kind {
    MIXQ_SEC_DATA = 0, /* element values (raw, f32, f16, bf16) */
    MIXQ_SEC_CODES,    /* packed integer codes */
    MIXQ_SEC_SCALES,   /* one f16 scale per group */
    MIXQ_SEC_MINS,     /* one f16 minimum per group (asymmetric types) */
    MIXQ_SEC_SUPER_SCALES, /* one f16 scale of the group scales per super-block */
    MIXQ_SEC_SUPER_MINS,   /* one f16 scale of the group mins per super-block */
    MIXQ_SECTION_COUNT
} mixq_section_kind;

/* Name of a section kind as stored in files ("codes", ...). */
MIXQ_API const char *mixq_section_name(mixq_section_kind kind);

/* Open file and tensor handles; opaque. */
typedef struct mixq_file mixq_file;
typedef struct mixq_tensor mixq_tensor;

/* Everything there is to know about one stored tensor. */
typedef struct mixq_tensor_info {
    const char *name;          /* UTF-8, NUL-terminated */
    unsigned ndim;             /* 0 for a scalar */
    uint64_t shape[MIXQ_MAX_DIMS];
    uint64_t n_elements;       /* product of shape (1 for a scalar) */
    uint64_t rows;             /* product of all dims but the last (1 if ndim <= 1) */
    uint64_t row_length;       /* last dim (n_elements if ndim <= 1) */
    mixq_qtype qtype;
    const char *quant_type;    /* name of qtype */
    const char *source_dtype;  /* safetensors dtype of the source ("BF16", ...) */
    unsigned group_size;       /* weights per scale group; 0 = one group per row */
    int quantized;             /* 1 if codes + scales, 0 if plain values */
    int symmetric;             /* 1 if no zero point/min is stored */
    uint64_t offset;           /* absolute file offset of the tensor's bytes */
    uint64_t nbytes;           /* stored size, all sections and inner padding */
    double bits_per_weight;    /* nbytes * 8 / n_elements (0 if empty) */
    uint64_t checksum;         /* xxh3-64 of the stored bytes */
} mixq_tensor_info;

/* A zero-copy view of one section of a stored tensor. */
typedef struct mixq_section {
    const void *data;    /* into the mapped file; 64-byte aligned */
    uint64_t offset;     /* absolute file offset of data */
    uint64_t size;       /* bytes */
    uint64_t row_stride; /* bytes per tensor row within this section */
} mixq_section;

/* Flags for mixq_open. */
#define MIXQ_OPEN_VERIFY 1u /* check every checksum before returning */

/*
 * Opens a container read-only with mmap and validates its preamble and
 * header (and, with MIXQ_OPEN_VERIFY, every checksum).  Only the preamble and
 * header are read unless verification is asked for.  Returns NULL on failure
 * with *err filled in (err may be NULL).
 */
MIXQ_API mixq_file *mixq_open(const char *path, unsigned flags, mixq_error *err);

/* Unmaps and frees everything; NULL is allowed. */
MIXQ_API void mixq_close(mixq_file *file);

/* Number of tensors in the file. */
MIXQ_API size_t mixq_tensor_count(const mixq_file *file);

/* The i-th tensor in file order, or NULL if i is out of range. */
MIXQ_API const mixq_tensor *mixq_tensor_at(const mixq_file *file, size_t i);

/* The tensor with this exact name (hash lookup, O(1)), or NULL. */
MIXQ_API const mixq_tensor *mixq_find(const mixq_file *file, const char *name);

/* Fills *info for a tensor; strings point into the open file. */
MIXQ_API void mixq_tensor_get_info(const mixq_tensor *tensor, mixq_tensor_info *info);

/*
 * Zero-copy view of one section of a tensor, for runtimes with kernels of
 * their own.  Returns MIXQ_E_NOT_FOUND if the tensor has no such section.
 */
MIXQ_API mixq_status mixq_tensor_section(const mixq_tensor *tensor, mixq_section_kind kind,
                                         mixq_section *out);

/*
 * Dequantizes rows [row_begin, row_end) of a tensor into out, which must hold
 * (row_end - row_begin) * row_length floats.  Works for every quant type;
 * raw integer and bool tensors are converted to their float values.
 */
MIXQ_API mixq_status mixq_dequantize_f32(const mixq_file *file, const mixq_tensor *tensor,
                                         uint64_t row_begin, uint64_t row_end, float *out,
                                         mixq_error *err);

/* As mixq_dequantize_f32, but writes IEEE binary16 bit patterns (round to nearest even). */
MIXQ_API mixq_status mixq_dequantize_f16(const mixq_file *file, const mixq_tensor *tensor,
                                         uint64_t row_begin, uint64_t row_end, uint16_t *out,
                                         mixq_error *err);

/*
 * Checks every checksum and that all padding is zero.  On the first bad
 * region returns MIXQ_E_CHECKSUM with a message naming it (preamble, header,
 * a tensor by name, or padding at an offset).
 */
MIXQ_API mixq_status mixq_verify(const mixq_file *file, mixq_error *err);

/* The header JSON text exactly as stored (not NUL-terminated); *len gets its length. */
MIXQ_API const char *mixq_header_json(const mixq_file *file, size_t *len);

/* Size of the whole file in bytes. */
MIXQ_API uint64_t mixq_file_size(const mixq_file *file);

/*
 * Value of a key of the source checkpoint's __metadata__ as recorded in the
 * container, or NULL.  The string stays valid until mixq_close().
 */
MIXQ_API const char *mixq_source_metadata(const mixq_file *file, const char *key);

/*
 * The model's own files stored in the container (format minor version 1,
 * FORMAT.md §3.3): config.json, generation_config.json, tokenizer.json,
 * tokenizer.model, tokenizer_config.json, special_tokens_map.json, whichever
 * the checkpoint directory held.  A format 1.0 container has none.
 */
typedef struct mixq_stored_file {
    const char *name;          /* plain file name, UTF-8; valid until mixq_close() */
    uint64_t size;             /* bytes once decompressed */
    uint64_t stored_size;      /* bytes as stored (compressed) */
    const char *compression;   /* "zlib" or "none" */
    uint64_t checksum;         /* xxh3-64 of the decompressed bytes */
} mixq_stored_file;

/* Number of stored files (0 for a NULL file). */
MIXQ_API size_t mixq_file_count(const mixq_file *file);

/* Fills *out for the i-th stored file; MIXQ_E_RANGE if i is out of range. */
MIXQ_API mixq_status mixq_file_at(const mixq_file *file, size_t i, mixq_stored_file *out);

/* Fills *out (may be NULL) for the stored file of this name; MIXQ_E_NOT_FOUND if there is none. */
MIXQ_API mixq_status mixq_file_find(const mixq_file *file, const char *name, mixq_stored_file *out);

/*
 * A decompressed copy of a stored file, checked against its size and
 * checksum (MIXQ_E_CHECKSUM if the stored bytes are corrupt).  *buf gets
 * *len bytes followed by one NUL byte (not counted), to release with
 * mixq_free().  MIXQ_E_NOT_FOUND (and no message printed anywhere) if the
 * container stores no file of that name.
 */
MIXQ_API mixq_status mixq_file_read(const mixq_file *file, const char *name, void **buf, size_t *len,
                                    mixq_error *err);

/* Frees memory the library returned to the caller (mixq_file_read); NULL is allowed. */
MIXQ_API void mixq_free(void *ptr);

/* ---------------------------------------------------------------------- */
/* Conversion (safetensors -> container)                                   */
/* ---------------------------------------------------------------------- */

/* mixq_convert_options.group_size value asking for one group per row (int8). */
#define MIXQ_GROUP_PER_ROW 0xFFFFFFFFu

/* Called after each tensor is written; must not call back into the conversion. */
typedef void (*mixq_progress_fn)(void *ctx, size_t done, size_t total, const char *tensor_name);

/* Options for mixq_convert; initialise with mixq_convert_options_init. */
typedef struct mixq_convert_options {
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
                                                     converter's) */
    unsigned threads;       /* worker threads (0 = online CPUs); the output does not depend on it */
} mixq_convert_options;

/* Fills *opts with the defaults. */
MIXQ_API void mixq_convert_options_init(mixq_convert_options *opts);

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
    int verify;                    /* 1 (default) = check the container's checksums first */
    volatile sig_atomic_t *cancel; /* if non-NULL and set non-zero, stop with MIXQ_E_CANCELLED */
    mixq_progress_fn progress;     /* optional, called after each tensor */
    void *progress_ctx;
} mixq_compare_options;

/* Fills *opts with the defaults. */
MIXQ_API void mixq_compare_options_init(mixq_compare_options *opts);

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
    mixq_qtype dtype;              /* MIXQ_QT_F32 (default), MIXQ_QT_F16 or MIXQ_QT_BF16 */
    int force;                     /* 1 = replace an existing output file */
    int verify;                    /* 1 (default) = check the container's checksums first */
    volatile sig_atomic_t *cancel; /* if non-NULL and set non-zero, stop and clean up */
    mixq_progress_fn progress;     /* optional, called after each tensor */
    void *progress_ctx;
} mixq_export_options;

/* Fills *opts with the defaults. */
MIXQ_API void mixq_export_options_init(mixq_export_options *opts);

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

/* Fills *opts with the defaults. */
MIXQ_API void mixq_export_hf_options_init(mixq_export_hf_options *opts);

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
    mixq_gguf_requantize requantize;
    int force;                     /* 1 = replace an existing output file */
    int verify;                    /* 1 (default) = check the container's checksums first */
    volatile sig_atomic_t *cancel; /* if non-NULL and set non-zero, stop and clean up */
    mixq_progress_fn progress;     /* optional, called after each tensor */
    void *progress_ctx;
    const char *name;              /* general.name; NULL = the container's file name without extension */
} mixq_export_gguf_options;

/* Fills *opts with the defaults. */
MIXQ_API void mixq_export_gguf_options_init(mixq_export_gguf_options *opts);

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
    MIXQ_WEIGHTS_ROLE = 0, /* role and depth prior, per unit of the tensor's mean square (default) */
    MIXQ_WEIGHTS_FLAT      /* every tensor's squared error counts as it is */
} mixq_plan_weights;

/* Elements per tensor the planner measures errors on by default (mixq_plan_options.measure_sample). */
#define MIXQ_MEASURE_SAMPLE_DEFAULT ((uint64_t)1 << 18)

/* Options of mixq_plan_create; initialise with mixq_plan_options_init. */
typedef struct mixq_plan_options {
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
    int threads;              /* measuring threads: 0 = one per online CPU; results do not depend on it */
} mixq_plan_options;

/* Fills *opts with the defaults (uniform int8, role weights). */
MIXQ_API void mixq_plan_options_init(mixq_plan_options *opts);

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
} mixq_plan_tensor;

/* Fills *out for the i-th tensor; MIXQ_E_RANGE if i is out of range. */
MIXQ_API mixq_status mixq_plan_tensor_get(const mixq_plan *plan, size_t i, mixq_plan_tensor *out);

/* Totals of a plan. */
typedef struct mixq_plan_summary {
    const char *strategy;      /* "uniform", "sensitivity", "budget" */
    double target_bpw;         /* 0 if none */
    uint64_t target_size;      /* 0 if none */
    const char *weights;       /* "role", "flat" or "role+file" */
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

#endif /* MIXQ_H */
