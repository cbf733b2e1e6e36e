/* container_dequant.c - tensors of a container back to f32 or f16, row ranges at a time. */
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "format/container.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/json_fast.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "container/container_internal.h"

/* Floats converted per step when producing f16 output without a heap buffer. */
#define CHUNK 1024

/* Checks the arguments of a dequantize call; *n gets the element count. */
static mixq_status deq_args(const mixq_file *f, const mixq_tensor *t, uint64_t rb, uint64_t re, const void *out,
                            uint64_t *n, mixq_error *err)
{
    mx_err_clear(err);
    if (!f || !t) return mx_err(err, MIXQ_E_INVALID_ARG, "dequantize: file or tensor is NULL");
    char b[MX_SHOWN_BUF];
    if (t->file != f)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\" belongs to another file", f->shown,
                      mx_shown(t->name, b));
    if (rb > re || re > t->lay.rows)
        return mx_err(err, MIXQ_E_RANGE,
                      "%s: tensor \"%s\": rows %" PRIu64 "..%" PRIu64 " are out of range (the tensor has %" PRIu64
                      " rows)", f->shown, mx_shown(t->name, b), rb, re, t->lay.rows);
    *n = (re - rb) * t->lay.row_length; /* <= n_elements: no overflow */
    if (*n > SIZE_MAX / sizeof(float))
        return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": too many elements for one call", f->shown,
                      mx_shown(t->name, b));
    if (*n && !out) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\": output is NULL", f->shown,
                                  mx_shown(t->name, b));
    return MIXQ_OK;
}

/* The element dtype of a plain (not quantized) tensor's data section. */
static st_dtype plain_dtype(const mixq_tensor *t)
{
    return qtype_data_dtype(t->qt, t->src);
}

/* Converts elements [first, first + n) of a plain tensor to float. */
static void plain_to_f32(const mixq_tensor *t, uint64_t first, size_t n, float *out)
{
    st_dtype dt = plain_dtype(t);
    const uint8_t *p = t->file->map + t->offset + t->lay.offset[MIXQ_SEC_DATA] + first * st_dtypes[dt].size;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (dt == ST_F32) {
        memcpy(out, p, n * sizeof(float));
        return;
    }
#endif
    st_to_f32(dt, p, n, out);
}

/* Dequantizes row r of a quantized tensor into out (row_length floats). */
static void quant_row_to_f32(const mixq_tensor *t, uint64_t r, float *out)
{
    mx_crowptrs rp = {{0}};
    const uint8_t *base = t->file->map + t->offset;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (t->has[k]) rp.sec[k] = base + t->lay.offset[k] + r * t->lay.row_bytes[k];
    mx_kernels()->dequantize_row[t->qt->id](rp, (size_t)t->lay.row_length, t->lay.group, out);
}

mixq_status mixq_dequantize_f32(const mixq_file *f, const mixq_tensor *t, uint64_t rb, uint64_t re, float *out,
                                mixq_error *err)
{
    uint64_t n;
    mixq_status s = deq_args(f, t, rb, re, out, &n, err);
    if (s != MIXQ_OK || n == 0) return s;
    uint64_t k = t->lay.row_length;
    if (!t->qt->quantized) {
        plain_to_f32(t, rb * k, (size_t)n, out);
        return MIXQ_OK;
    }
    for (uint64_t r = rb; r < re; r++) quant_row_to_f32(t, r, out + (r - rb) * k);
    return MIXQ_OK;
}

mixq_status mixq_dequantize_f16(const mixq_file *f, const mixq_tensor *t, uint64_t rb, uint64_t re, uint16_t *out,
                                mixq_error *err)
{
    uint64_t n;
    mixq_status s = deq_args(f, t, rb, re, out, &n, err);
    if (s != MIXQ_OK || n == 0) return s;
    uint64_t k = t->lay.row_length;
    float stackbuf[CHUNK];
    if (!t->qt->quantized) {
        uint64_t first = rb * k;
        if (plain_dtype(t) == ST_F16) { /* already f16: copy the bit patterns exactly */
            const uint8_t *p = t->file->map + t->offset + t->lay.offset[MIXQ_SEC_DATA] + first * 2;
            for (uint64_t i = 0; i < n; i++) out[i] = mxc_get_u16(p + 2 * i);
            return MIXQ_OK;
        }
        for (uint64_t done = 0; done < n;) {
            size_t c = n - done < CHUNK ? (size_t)(n - done) : CHUNK;
            plain_to_f32(t, first + done, c, stackbuf);
            mx_kernels()->f32_to_f16(stackbuf, c, out + done);
            done += c;
        }
        return MIXQ_OK;
    }
    float *row = stackbuf;
    if (k > CHUNK) {
        row = malloc((size_t)k * sizeof *row); /* k * 4 <= n * 4 fits size_t (checked in deq_args) */
        if (!row) {
            char b[MX_SHOWN_BUF];
            return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory for a row of %" PRIu64 " elements",
                          f->shown, mx_shown(t->name, b), k);
        }
    }
    for (uint64_t r = rb; r < re; r++) {
        quant_row_to_f32(t, r, row);
        mx_kernels()->f32_to_f16(row, (size_t)k, out + (r - rb) * k);
    }
    if (row != stackbuf) free(row);
    return MIXQ_OK;
}

