/* dtype.h - the safetensors element types and conversion of their values to float. */
#ifndef MIXQ_DTYPE_H
#define MIXQ_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum st_dtype {
    ST_BOOL, ST_U8, ST_I8, ST_U16, ST_I16, ST_U32, ST_I32, ST_U64, ST_I64,
    ST_F8_E4M3, ST_F8_E5M2, ST_F16, ST_BF16, ST_F32, ST_F64,
    ST_DTYPE_COUNT
} st_dtype;

typedef struct st_dtype_info {
    const char *name; /* as spelled in safetensors headers, e.g. "BF16" */
    unsigned size;    /* bytes per element */
    bool is_float;    /* a floating type that mixq may quantize */
} st_dtype_info;

extern const st_dtype_info st_dtypes[ST_DTYPE_COUNT];

/* Looks up a dtype by its exact safetensors name; false if unknown. */
bool st_dtype_parse(const char *name, st_dtype *out);

/*
 * Converts n little-endian elements of dtype at src (any alignment) to float.
 * Exact for every type a float can hold; F64 and large integers round to
 * nearest even.  Bool becomes 0 or 1.
 */
void st_to_f32(st_dtype dtype, const uint8_t *src, size_t n, float *dst);

#endif
