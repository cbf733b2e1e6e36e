/* container_matmul.c - the public compute calls (mixq.h: mixq_pool_*, mixq_matmul*) over matmul.h. */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/error.h"
#include "container/container_matmul.h"
#include "kernels/matmul.h"
#include "mixq.h"
#include "kernels/qtype.h"
#include "common/workpool.h"

struct mixq_pool {
    mx_pool *pool;
};

mixq_pool *mixq_pool_create(unsigned threads)
{
    mixq_pool *p = malloc(sizeof *p);
    if (!p)
        return NULL;
    p->pool = mx_pool_create(threads);
    if (!p->pool) {
        free(p);
        return NULL;
    }
    return p;
}

void mixq_pool_destroy(mixq_pool *pool)
{
    if (!pool)
        return;
    mx_pool_destroy(pool->pool);
    free(pool);
}

unsigned mixq_pool_threads(const mixq_pool *pool) { return pool ? mx_pool_threads(pool->pool) : 1u; }

mixq_status mx_container_matmul_layout(const mixq_tensor *w, const qtype_desc **qt_out, qlayout *lay,
                                       const uint8_t **base, mixq_error *err)
{
    mixq_tensor_info info;
    char b[MX_SHOWN_BUF];
    mixq_tensor_get_info(w, &info);
    const qtype_desc *qt = qtype_get(info.qtype);
    *qt_out = NULL;
    *base = NULL;
    if (!qt || info.qtype == MIXQ_QT_RAW || info.ndim != 2) return MIXQ_OK;
    if (!qtype_layout(qt, ST_F32, info.shape[0], info.shape[1], info.group_size, lay))
        return mx_err(err, MIXQ_E_FORMAT, "matmul: tensor \"%s\": no valid layout for %s group %u",
                      mx_shown(info.name, b), info.quant_type, info.group_size);
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        mixq_section s;
        if (!qtype_has_section(qt, (mixq_section_kind)k))
            continue;
        if (mixq_tensor_section(w, (mixq_section_kind)k, &s) != MIXQ_OK || s.size != lay->length[k] ||
            s.row_stride != lay->row_bytes[k])
            return mx_err(err, MIXQ_E_FORMAT, "matmul: tensor \"%s\": section %s does not match its layout",
                          mx_shown(info.name, b), mixq_section_name((mixq_section_kind)k));
        if (!*base)
            *base = (const uint8_t *)s.data - lay->offset[k]; /* the tensor's first byte, in the mapping */
    }
    *qt_out = qt;
    return MIXQ_OK;
}

/*
 * Checks the arguments and finds W's type, layout and bytes; *empty is set
 * when there is nothing to multiply (y already written if it needs zeros).
 */
static mixq_status mm_prepare(const mixq_file *f, const mixq_tensor *w, const float *x, size_t n_rows, float *y,
                              const qtype_desc **qt_out, qlayout *lay, const uint8_t **base, int *empty,
                              mixq_error *err)
{
    mixq_tensor_info info;
    char b[MX_SHOWN_BUF];

    mx_err_clear(err);
    *empty = 0;
    if (!f || !w)
        return mx_err(err, MIXQ_E_INVALID_ARG, "matmul: file or tensor is NULL");
    mixq_tensor_get_info(w, &info);
    if (mixq_find(f, info.name) != w)
        return mx_err(err, MIXQ_E_INVALID_ARG, "matmul: tensor \"%s\" belongs to another file", mx_shown(info.name, b));
    if (info.ndim != 2)
        return mx_err(err, MIXQ_E_INVALID_ARG,
                      "matmul: tensor \"%s\" has %u dimensions; a weight matrix [out, in] needs 2",
                      mx_shown(info.name, b), info.ndim);
    const qtype_desc *qt = qtype_get(info.qtype);
    if (!qt || info.qtype == MIXQ_QT_RAW)
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "matmul: tensor \"%s\" is stored as %s (source bytes, dtype %s): no matmul for raw tensors",
                      mx_shown(info.name, b), info.quant_type, info.source_dtype);
    uint64_t out_f = info.shape[0], in_f = info.shape[1];
    if ((n_rows != 0 && (in_f > SIZE_MAX / sizeof(float) / n_rows || out_f > SIZE_MAX / sizeof(float) / n_rows)))
        return mx_err(err, MIXQ_E_RANGE,
                      "matmul: tensor \"%s\" [%" PRIu64 ", %" PRIu64 "] with %zu rows of x: x or y is larger than "
                      "memory can address", mx_shown(info.name, b), out_f, in_f, n_rows);
    if (n_rows == 0 || out_f == 0) {
        *empty = 1;
        return MIXQ_OK;
    }
    if (!y || (in_f != 0 && !x))
        return mx_err(err, MIXQ_E_INVALID_ARG, "matmul: tensor \"%s\": x or y is NULL", mx_shown(info.name, b));
    if (in_f == 0) { /* empty dot products */
        for (size_t i = 0; i < n_rows * (size_t)out_f; i++)
            y[i] = 0.0f;
        *empty = 1;
        return MIXQ_OK;
    }
    *qt_out = qt;
    return mx_container_matmul_layout(w, qt_out, lay, base, err);
}

mixq_status mixq_matmul_pool(const mixq_file *f, const mixq_tensor *w, const float *x, size_t n_rows, float *y,
                             mixq_pool *pool, mixq_error *err)
{
    const qtype_desc *qt = NULL;
    const uint8_t *base = NULL;
    qlayout lay;
    int empty;
    mixq_status s = mm_prepare(f, w, x, n_rows, y, &qt, &lay, &base, &empty, err);
    if (s != MIXQ_OK || empty)
        return s;
    mx_matmul(NULL, qt, &lay, base, x, n_rows, (size_t)lay.row_length, y, (size_t)lay.rows,
              pool ? pool->pool : NULL);
    return MIXQ_OK;
}

mixq_status mixq_matmul(const mixq_file *f, const mixq_tensor *w, const float *x, size_t n_rows, float *y,
                        unsigned threads, mixq_error *err)
{
    mixq_pool *pool = NULL;
    if (threads != 1 && !(pool = mixq_pool_create(threads)))
        return mx_err(err, MIXQ_E_NOMEM, "matmul: cannot start %u threads", threads);
    mixq_status s = mixq_matmul_pool(f, w, x, n_rows, y, pool, err);
    mixq_pool_destroy(pool);
    return s;
}
