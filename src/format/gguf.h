/*
 * gguf.h - llama.cpp's GGUF file format (version 3): constants and a growable
 * little-endian byte buffer with the primitives its header is made of.  Used
 * by the importance-matrix files (runtime/imatrix.c) and the model export
 * (convert/export_gguf.c).  See format/FORMAT.md §7 and docs/CLI.md.
 */
#ifndef MIXQ_GGUF_H
#define MIXQ_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define MXG_VERSION 3u
#define MXG_ALIGN 32u     /* general.alignment default */
#define MXG_MAX_NAME 64u  /* GGML_MAX_NAME: tensor names are shorter, terminator included */

/* Metadata value types. */
enum { MXG_U8, MXG_I8, MXG_U16, MXG_I16, MXG_U32, MXG_I32, MXG_F32, MXG_BOOL, MXG_STRING, MXG_ARRAY, MXG_U64,
       MXG_I64, MXG_F64, MXG_TYPE_COUNT };

/* ggml tensor types (the numbers are llama.cpp's enum ggml_type). */
enum { MXG_T_F32 = 0, MXG_T_F16 = 1, MXG_T_Q4_0 = 2, MXG_T_Q4_1 = 3, MXG_T_Q8_0 = 8, MXG_T_Q2_K = 10,
       MXG_T_Q3_K = 11, MXG_T_Q4_K = 12, MXG_T_Q6_K = 14, MXG_T_BF16 = 30 };

/* A growing buffer; after an allocation failure `fail` is set and further puts do nothing. */
typedef struct mxg_buf {
    uint8_t *p;
    size_t len, cap;
    int fail;
} mxg_buf;

void mxg_put(mxg_buf *b, const void *d, size_t n);
void mxg_put_u32(mxg_buf *b, uint32_t v);
void mxg_put_i32(mxg_buf *b, int32_t v);
void mxg_put_u64(mxg_buf *b, uint64_t v);
void mxg_put_f32(mxg_buf *b, float v);
/* A GGUF string: u64 length, then the bytes. */
void mxg_put_str(mxg_buf *b, const char *s);
void mxg_put_strn(mxg_buf *b, const char *s, size_t n);
/* Zero bytes up to a multiple of align (at most MXG_ALIGN). */
void mxg_pad(mxg_buf *b, size_t align);

/* Key-value pairs: the key, the value type, the value. */
void mxg_kv_str(mxg_buf *b, const char *key, const char *v);
void mxg_kv_u32(mxg_buf *b, const char *key, uint32_t v);
void mxg_kv_i32(mxg_buf *b, const char *key, int32_t v);
void mxg_kv_f32(mxg_buf *b, const char *key, float v);
void mxg_kv_bool(mxg_buf *b, const char *key, int v);
/* An array's key and header; the caller puts the count elements (strings with mxg_put_str). */
void mxg_kv_array(mxg_buf *b, const char *key, uint32_t elem_type, uint64_t count);

#endif
