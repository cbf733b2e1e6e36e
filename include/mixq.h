/*
 * mixq.h - the public reader/runtime interface of libmixq.
 *
 * libmixq reads and writes mixq containers: files in which every tensor of a
 * model checkpoint is stored with its own quantization type (INT8, INT4,
 * F16, ...).  The byte-level format is specified in format/FORMAT.md.
 *
 * This header is what a runtime needs to load a container: status codes and
 * errors, the type names, open/close, tensor lookup and information,
 * zero-copy sections, dequantization, verification, the header JSON and the
 * source metadata.  The tools (convert, plan, compare, export) are declared
 * in mixq_tools.h, which includes this header.  libmixq.so exports only the
 * mixq_ functions of these two headers.
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
 *  - The host must be little-endian (x86-64, AArch64, ...): containers and
 *    safetensors files are little-endian and are mapped and read in place, so
 *    the library refuses to build on a big-endian host.
 */
#ifndef MIXQ_H
#define MIXQ_H

#include <stddef.h>
#include <stdint.h>

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
    MIXQ_QT_NL4,     /* 4-bit indices into a fixed 16-level table, f16 scale per group */
    MIXQ_QT_NL4_DQ,  /* nl4 levels, 6-bit signed group scale codes under f16 super-block scales */
    MIXQ_QT_CB4_DQ,  /* 4-bit indices into a per-tensor fitted codebook of 16 int8 levels, DQ scales */
    MIXQ_QT_CB3_DQ,  /* 3-bit indices into a per-tensor fitted codebook of 8 int8 levels, DQ scales */
    MIXQ_QT_CB2_DQ,  /* 2-bit indices into a per-tensor fitted codebook of 4 int8 levels, DQ scales */
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
    MIXQ_SEC_CODEBOOK,     /* the tensor's int8 codebook levels (one per tensor, codebook types) */
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
 * mixq_free().  MIXQ_E_NOT_FOUND if the container stores no file of that name.
 */
MIXQ_API mixq_status mixq_file_read(const mixq_file *file, const char *name, void **buf, size_t *len,
                                    mixq_error *err);

/* Frees memory the library returned to the caller (mixq_file_read); NULL is allowed. */
MIXQ_API void mixq_free(void *ptr);

/* ---------------------------------------------------------------------- */
/* Compute: y = x W^T straight from the stored bytes                        */
/* ---------------------------------------------------------------------- */

/*
 * A reusable pool of worker threads for mixq_matmul_pool, so that a forward
 * pass does not start threads on every call.  A pool runs one call at a
 * time: two threads must not use the same pool at once.
 */
typedef struct mixq_pool mixq_pool;

/* Creates a pool of `threads` threads, the calling thread included (0 = online CPUs); NULL if out of resources. */
MIXQ_API mixq_pool *mixq_pool_create(unsigned threads);

/* Joins the workers and frees the pool; NULL is allowed. */
MIXQ_API void mixq_pool_destroy(mixq_pool *pool);

/* Threads of a pool, the caller included (1 for NULL). */
MIXQ_API unsigned mixq_pool_threads(const mixq_pool *pool);

/*
 * y = x W^T for a 2-D tensor W (shape [out, in]: out rows of in weights) of
 * any stored type but raw: x is n_rows x in floats and y n_rows x out floats,
 * both row-major and not overlapping.  The weights are never dequantized as
 * a whole: each row is decoded 256 weights at a time (in registers, or into a
 * small buffer) and used for several rows of x, so memory holds only x, y and
 * the mapped file.  Each output is the dot product of the exact dequantized weights
 * (the values mixq_dequantize_f32 gives) with the x row, summed in an order
 * fixed by `in` alone (binary64 on the scalar path, 32 or 16 binary32 FMA
 * partial sums on AVX2 / NEON), so the result never depends on the thread
 * count; the SIMD paths are within (in / 16 + 16) * 2^-24 * sum |w_i x_i| of
 * the scalar one.  threads: worker threads for this call (0 = online CPUs,
 * 1 = this thread only).  Fails with MIXQ_E_INVALID_ARG for a NULL argument,
 * a tensor of another file or not of 2 dimensions, MIXQ_E_UNSUPPORTED for a
 * raw tensor, MIXQ_E_RANGE when x or y would not fit in memory (size
 * overflow), MIXQ_E_NOMEM if threads cannot be started.  n_rows = 0 does
 * nothing.
 */
MIXQ_API mixq_status mixq_matmul(const mixq_file *file, const mixq_tensor *w, const float *x, size_t n_rows,
                                 float *y, unsigned threads, mixq_error *err);

/* mixq_matmul on an existing pool (NULL = this thread only); the same results. */
MIXQ_API mixq_status mixq_matmul_pool(const mixq_file *file, const mixq_tensor *w, const float *x,
                                      size_t n_rows, float *y, mixq_pool *pool, mixq_error *err);

#ifdef __cplusplus
}
#endif

#endif /* MIXQ_H */
