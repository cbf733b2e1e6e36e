/* plan_measure.c - exact stored bytes and squared error of each candidate type (plan_measure.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "error.h"
#include "plan_measure.h"
#include "simd.h"

bool mx_tensor_rows(const st_tensor *t, uint64_t *rows, uint64_t *row_length)
{
    if (t->ndim <= 1) {
        *rows = 1;
        *row_length = t->n_elements;
        return true;
    }
    uint64_t r = 1;
    for (unsigned i = 0; i + 1 < t->ndim; i++)
        if (!ck_mul(r, t->shape[i], &r)) return false;
    *rows = r;
    *row_length = t->shape[t->ndim - 1];
    return true;
}

bool mx_cand_layout(const mx_cand *c, const st_tensor *t, qlayout *out)
{
    uint64_t rows, row_length;
    if (!mx_tensor_rows(t, &rows, &row_length)) return false;
    return qtype_layout(c->qt, t->dtype, rows, row_length, c->qt->quantized ? c->group_size : 0, out);
}

mx_qparams mx_convert_qparams(bool rtn, const qlayout *lay, float tensor_absmax)
{
    mx_qparams p;
    memset(&p, 0, sizeof p);
    p.importance = NULL;
    p.search = !rtn;
    p.tensor_absmax = lay->per_tensor ? tensor_absmax : -1.0f;
    return p;
}

static mixq_status alloc_row(float **row, uint64_t row_length, const st_tensor *t, mixq_error *err)
{
    if (row_length > SIZE_MAX / sizeof(float) / 2)
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": rows too long for this machine", t->name);
    *row = malloc((row_length ? (size_t)row_length : 1) * sizeof(float));
    if (!*row) return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
    return MIXQ_OK;
}

mixq_status mx_measure_stats(const st_tensor *t, mx_tstats *st, mixq_error *err)
{
    memset(st, 0, sizeof *st);
    st->n = t->n_elements;
    st->quantizable = true;
    if (!st_dtypes[t->dtype].is_float || t->n_elements == 0) {
        st->quantizable = st_dtypes[t->dtype].is_float;
        return MIXQ_OK;
    }
    uint64_t rows, row_length;
    if (!mx_tensor_rows(t, &rows, &row_length))
        return mx_err(err, MIXQ_E_RANGE, "tensor \"%s\": size overflows", t->name);
    float *row;
    mixq_status s = alloc_row(&row, row_length, t, err);
    if (s != MIXQ_OK) return s;
    size_t esize = st_dtypes[t->dtype].size;
    double sum = 0, sumsq = 0;
    float absmax = 0;
    bool finite = true;
    for (uint64_t r = 0; r < rows; r++) {
        st_to_f32(t->dtype, t->data + r * row_length * esize, (size_t)row_length, row);
        double rs = 0, rq = 0;
        for (uint64_t i = 0; i < row_length; i++) {
            float v = row[i];
            if (!(fabsf(v) <= MX_QUANT_ABS_MAX)) {
                finite = false;
                if (!isfinite(v)) continue;
            }
            if (fabsf(v) > absmax) absmax = fabsf(v);
            rs += v;
            rq += (double)v * v;
        }
        sum += rs;
        sumsq += rq;
    }
    st->quantizable = finite;
    st->absmax = absmax;
    st->sumsq = sumsq;
    double n = (double)t->n_elements;
    st->mean = sum / n;
    double m2 = 0, m4 = 0;
    for (uint64_t r = 0; r < rows; r++) {
        st_to_f32(t->dtype, t->data + r * row_length * esize, (size_t)row_length, row);
        for (uint64_t i = 0; i < row_length; i++) {
            if (!isfinite(row[i])) continue;
            double d = (double)row[i] - st->mean, d2 = d * d;
            m2 += d2;
            m4 += d2 * d2;
        }
    }
    m2 /= n;
    m4 /= n;
    st->std = sqrt(m2);
    st->kurtosis = m2 > 0 ? m4 / (m2 * m2) : 0.0;
    uint64_t outliers = 0;
    if (st->std > 0) {
        double lim = 3.0 * st->std;
        for (uint64_t r = 0; r < rows; r++) {
            st_to_f32(t->dtype, t->data + r * row_length * esize, (size_t)row_length, row);
            for (uint64_t i = 0; i < row_length; i++)
                if (isfinite(row[i]) && fabs((double)row[i] - st->mean) > lim) outliers++;
        }
    }
    st->outlier_frac = (double)outliers / n;
    free(row);
    return MIXQ_OK;
}

/* Reconstructs a row stored as a plain type (f32, f16, bf16) into y. */
static void plain_roundtrip(mixq_qtype id, const float *x, size_t n, uint16_t *h, float *y)
{
    const mx_kernel_set *k = mx_kernels();
    switch (id) {
    case MIXQ_QT_F16:
        k->f32_to_f16(x, n, h);
        k->f16_to_f32(h, n, y);
        break;
    case MIXQ_QT_BF16:
        k->f32_to_bf16(x, n, h);
        k->bf16_to_f32(h, n, y);
        break;
    default: memcpy(y, x, n * sizeof *x); break; /* f32 and raw hold the float values exactly */
    }
}

mixq_status mx_measure_error(const st_tensor *t, const mx_cand *c, const mx_tstats *st, bool rtn,
                             volatile sig_atomic_t *cancel, double *sse, mixq_error *err)
{
    *sse = 0;
    if (!st_dtypes[t->dtype].is_float || t->n_elements == 0) return MIXQ_OK;
    qlayout lay;
    if (!mx_cand_layout(c, t, &lay))
        return mx_err(err, MIXQ_E_RANGE, "tensor \"%s\": cannot be stored as %s (size or group size)", t->name,
                      c->qt->name);
    if (c->qt->quantized && !st->quantizable)
        return mx_err(err, MIXQ_E_DATA, "tensor \"%s\": holds values %s cannot store", t->name, c->qt->name);
    uint64_t rows = lay.rows, row_length = lay.row_length;
    /* one row of every section; a per-tensor scale (row stride 0) is shared by every row */
    uint64_t sec_bytes[MIXQ_SECTION_COUNT] = {0}, row_total = 0;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!qtype_has_section(c->qt, (mixq_section_kind)k)) continue;
        sec_bytes[k] = lay.row_bytes[k] ? lay.row_bytes[k] : lay.length[k];
        row_total += sec_bytes[k] + 1;
    }
    if (row_length > SIZE_MAX / 8 || row_total > SIZE_MAX / 2)
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": rows too long for this machine", t->name);
    float *x = malloc((size_t)row_length * sizeof *x), *y = malloc((size_t)row_length * sizeof *y);
    uint8_t *store = calloc(1, (size_t)row_total + 2 * (size_t)row_length + 16);
    if (!x || !y || !store) {
        free(x);
        free(y);
        free(store);
        return mx_err(err, MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
    }
    /* the sections back to back (2-byte aligned for the f16 scales), as the converter points into them */
    mx_rowptrs p = {{NULL}};
    mx_crowptrs cp = {{NULL}};
    size_t off = 0;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!qtype_has_section(c->qt, (mixq_section_kind)k)) continue;
        p.sec[k] = store + off;
        cp.sec[k] = store + off;
        off += (size_t)sec_bytes[k];
        off += off & 1u;
    }
    const mx_kernel_set *ks = mx_kernels();
    mx_qparams qp = mx_convert_qparams(rtn, &lay, st->absmax);
    unsigned group = lay.group;
    size_t esize = st_dtypes[t->dtype].size;
    double total = 0;
    mixq_status s = MIXQ_OK;
    for (uint64_t r = 0; r < rows; r++) {
        if (cancel && *cancel) {
            s = mx_err(err, MIXQ_E_CANCELLED, "tensor \"%s\": planning interrupted", t->name);
            break;
        }
        st_to_f32(t->dtype, t->data + r * row_length * esize, (size_t)row_length, x);
        if (c->qt->quantized) {
            memset(store, 0, off);
            ks->quantize_row[c->qt->id](x, (size_t)row_length, group, &qp, p);
            ks->dequantize_row[c->qt->id](cp, (size_t)row_length, group, y);
        } else {
            plain_roundtrip(c->qt->id, x, (size_t)row_length, (uint16_t *)(void *)store, y);
        }
        double rs = 0;
        for (uint64_t i = 0; i < row_length; i++) {
            double d = (double)x[i] - (double)y[i];
            if (isnan(d)) continue; /* NaN kept as NaN by a plain type */
            rs += d * d;
        }
        total += rs;
    }
    free(x);
    free(y);
    free(store);
    *sse = total;
    return s;
}
