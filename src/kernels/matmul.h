/*
 * matmul.h - y = x W^T over the rows of a stored 2-D tensor W (rows = output
 * features, row_length = input features) of any type but raw, with the
 * dot_rows kernels of a kernel set (matmul_kernels.h), on a worker pool.
 */
#ifndef MIXQ_MATMUL_H
#define MIXQ_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "common/workpool.h"

/*
 * For every x row r < n_x and output feature o < lay->rows:
 *   y[r * y_stride + o] = dot(W row o, x + r * x_stride)   (row_length elements).
 * W: a tensor of type qt laid out as lay (qtype_layout) at base (its section
 * k at base + lay->offset[k]); plain f32 / f16 / bf16 bytes of a safetensors
 * tensor have exactly the layout of that plain type.  ks = NULL uses
 * mx_kernels().  Work is split into blocks of output features run on pool
 * (NULL: this thread); every y element is computed by the same code in the
 * same order whatever the pool, so the result does not depend on the thread
 * count.  Blocking: a block of W rows (about MX_MM_BLOCK_BYTES stored bytes)
 * against x in tiles of MX_MM_XB rows, so the block is read from memory
 * once and from cache for the later tiles.  qt must not be raw; x and y must
 * not overlap.
 */
void mx_matmul(const mx_kernel_set *ks, const qtype_desc *qt, const qlayout *lay, const uint8_t *base,
               const float *x, size_t n_x, size_t x_stride, float *y, size_t y_stride, mx_pool *pool);

/* Stored bytes of W rows one work item processes (at least one row). */
#define MX_MM_BLOCK_BYTES (64u * 1024u)

#endif
