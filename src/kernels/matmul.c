/* matmul.c - the multi-threaded driver over the rows of W (matmul.h). */
#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"

typedef struct mm_job {
    mx_dot_rows_fn dot;
    const qlayout *lay;
    const uint8_t *sec0[MIXQ_SECTION_COUNT]; /* row 0 of each present section */
    size_t rows_per_item;
    const float *x;
    size_t n_x, x_stride;
    float *y;
    size_t y_stride;
} mm_job;

/* Work item i: W rows [i * rows_per_item, ...) against every x row, x in tiles of MX_MM_XB rows. */
static void mm_item(void *ctx, size_t i)
{
    const mm_job *J = ctx;
    const qlayout *L = J->lay;
    size_t r0 = i * J->rows_per_item, r1 = r0 + J->rows_per_item;
    if (r1 > L->rows)
        r1 = (size_t)L->rows;
    for (size_t t0 = 0; t0 < J->n_x; t0 += MX_MM_XB) {
        size_t nt = J->n_x - t0 < MX_MM_XB ? J->n_x - t0 : MX_MM_XB;
        for (size_t r = r0; r < r1; r++) {
            mx_crowptrs w = {{0}};
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                if (J->sec0[k])
                    w.sec[k] = J->sec0[k] + r * L->row_bytes[k];
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
    J.dot = ks->dot_rows[qt->id];
    J.lay = lay;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (qtype_has_section(qt, (mixq_section_kind)k)) {
            J.sec0[k] = base + lay->offset[k];
            row_bytes += lay->row_bytes[k];
        }
    J.rows_per_item = row_bytes != 0 && row_bytes < MX_MM_BLOCK_BYTES ? (size_t)(MX_MM_BLOCK_BYTES / row_bytes) : 1;
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
