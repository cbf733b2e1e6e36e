/* matmul.c - the multi-threaded driver over the rows of W (matmul.h). */
#include <stdlib.h>
#include <string.h>

#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"

/* f32 values of W a work item decodes at once on the GEMM path (256 KiB). */
#define MM_DECODED_FLOATS 65536u

typedef struct mm_job {
    const mx_kernel_set *ks;
    const qtype_desc *qt;
    int decode_once;       /* GEMM: decode each W row once, then the f32 kernel against every x row */
    mx_dot_rows_fn dot;
    const qlayout *lay;
    const uint8_t *sec0[MIXQ_SECTION_COUNT]; /* row 0 of each present section */
    size_t rows_per_item;
    const float *x;
    size_t n_x, x_stride;
    float *y;
    size_t y_stride;
} mm_job;

/* Row r of W as the kernels take it. */
static mx_crowptrs row_ptrs(const mm_job *J, size_t r)
{
    mx_crowptrs w = {{0}};
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (J->sec0[k])
            w.sec[k] = J->sec0[k] + r * J->lay->row_bytes[k];
    return w;
}

/*
 * Decodes row w of n elements into out: the very floats the type's dot_rows
 * multiplies by (its path decodes bit-identically to dequantize_row).  f16
 * and bf16 rows may sit at any address: copied to an aligned buffer first.
 */
static void decode_row(const mm_job *J, mx_crowptrs w, size_t n, float *out)
{
    if (J->qt->quantized) {
        J->ks->dequantize_row[J->qt->id](w, n, J->lay->group, out);
        return;
    }
    uint16_t tmp[1024];
    void (*cvt)(const uint16_t *, size_t, float *) =
        J->qt->id == MIXQ_QT_F16 ? J->ks->f16_to_f32 : J->ks->bf16_to_f32;
    for (size_t k = 0; k < n; k += 1024) {
        size_t len = n - k < 1024 ? n - k : 1024;
        memcpy(tmp, w.sec[MIXQ_SEC_DATA] + 2 * k, 2 * len);
        cvt(tmp, len, out + k);
    }
}

/*
 * The GEMM path of work item [r0, r1): each W row decoded once into scratch,
 * then the f32 kernel against every x row.  The f32 kernel adds the same
 * weights into the same partial sums in the same order as the type's own
 * kernel (matmul_kernels.h), so y is the same bits as on the direct path.
 * False if scratch cannot be had (the caller takes the direct path).
 */
static int mm_item_decoded(const mm_job *J, size_t r0, size_t r1)
{
    size_t n = (size_t)J->lay->row_length;
    float *scratch = malloc((r1 - r0) * n * sizeof *scratch);
    if (!scratch)
        return 0;
    for (size_t r = r0; r < r1; r++)
        decode_row(J, row_ptrs(J, r), n, scratch + (r - r0) * n);
    mx_dot_rows_fn dot = J->ks->dot_rows[MIXQ_QT_F32];
    for (size_t t0 = 0; t0 < J->n_x; t0 += MX_MM_XB) {
        size_t nt = J->n_x - t0 < MX_MM_XB ? J->n_x - t0 : MX_MM_XB;
        for (size_t r = r0; r < r1; r++) {
            mx_crowptrs w = {{0}};
            w.sec[MIXQ_SEC_DATA] = (const uint8_t *)(scratch + (r - r0) * n);
            dot(w, n, 0, J->x + t0 * J->x_stride, nt, J->x_stride, J->y + t0 * J->y_stride + r, J->y_stride);
        }
    }
    free(scratch);
    return 1;
}

/* Work item i: W rows [i * rows_per_item, ...) against every x row, x in tiles of MX_MM_XB rows. */
static void mm_item(void *ctx, size_t i)
{
    const mm_job *J = ctx;
    const qlayout *L = J->lay;
    size_t r0 = i * J->rows_per_item, r1 = r0 + J->rows_per_item;
    if (r1 > L->rows)
        r1 = (size_t)L->rows;
    if (J->decode_once && mm_item_decoded(J, r0, r1))
        return;
    for (size_t t0 = 0; t0 < J->n_x; t0 += MX_MM_XB) {
        size_t nt = J->n_x - t0 < MX_MM_XB ? J->n_x - t0 : MX_MM_XB;
        for (size_t r = r0; r < r1; r++) {
            mx_crowptrs w = row_ptrs(J, r);
            J->dot(w, (size_t)L->row_length, L->group, J->x + t0 * J->x_stride, nt, J->x_stride,
                   J->y + t0 * J->y_stride + r, J->y_stride);
        }
    }
}

void mx_matmul(const mx_kernel_set *ks, const qtype_desc *qt, const qlayout *lay, const uint8_t *base,
               const float *x, size_t n_x, size_t x_stride, float *y, size_t y_stride, mx_pool *pool)
{
    mm_job J = {0};
    uint64_t row_bytes = 0;

    if (lay->rows == 0 || n_x == 0)
        return;
    if (!ks)
        ks = mx_kernels();
    J.ks = ks;
    J.qt = qt;
    J.dot = ks->dot_rows[qt->id];
    /* more than one tile of x rows: decoding each W row once beats decoding it once per tile */
    J.decode_once = n_x > MX_MM_XB && qt->id != MIXQ_QT_F32 && (qt->quantized || qt->code_bits == 16);
    J.lay = lay;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (qtype_has_section(qt, (mixq_section_kind)k)) {
            J.sec0[k] = base + lay->offset[k];
            row_bytes += lay->row_bytes[k];
        }
    J.rows_per_item = row_bytes != 0 && row_bytes < MX_MM_BLOCK_BYTES ? (size_t)(MX_MM_BLOCK_BYTES / row_bytes) : 1;
    if (J.decode_once) { /* the decoded rows of an item stay in cache while every x tile passes */
        size_t fit = lay->row_length < MM_DECODED_FLOATS ? (size_t)(MM_DECODED_FLOATS / lay->row_length) : 1;
        if (J.rows_per_item > fit)
            J.rows_per_item = fit;
    }
    J.x = x;
    J.n_x = n_x;
    J.x_stride = x_stride;
    J.y = y;
    J.y_stride = y_stride;
    if (lay->row_length == 0) { /* empty dot products */
        for (size_t r = 0; r < n_x; r++)
            for (uint64_t o = 0; o < lay->rows; o++)
                y[r * y_stride + o] = 0.0f;
        return;
    }
    size_t items = (size_t)((lay->rows + J.rows_per_item - 1) / J.rows_per_item);
    mx_pool_run(pool, items, mm_item, &J);
}
