/*
 * test_golden.c - the golden containers in testdata/golden/ were written by
 * mixq 0.1.0 (format v1, scripts/make-golden.sh).  Every later version must
 * still open, verify and dequantize them to within each type's error bound.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/dtype.h"
#include "common/half.h"
#include "mixq.h"
#include "reader/st_reader.h"
#include "test_support.h"

static float f16_at(const mixq_tensor *t, mixq_section_kind k, uint64_t r, uint64_t g)
{
    mixq_section s;
    cr_assert_eq(mixq_tensor_section(t, k, &s), MIXQ_OK);
    const uint8_t *p = (const uint8_t *)s.data + r * s.row_stride + 2 * g;
    return mx_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* Opens golden `file`, checks its metadata and every tensor against the source checkpoint `src_rel`. */
static void check_golden(const char *file, const char *src_rel, mixq_qtype qt, unsigned group)
{
    char *path = ts_source_path(file), *src_path = ts_source_path(src_rel);
    mixq_error err;
    mixq_file *f = mixq_open(path, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    cr_assert_eq(mixq_verify(f, &err), MIXQ_OK, "%s", err.message);
    cr_assert_str_eq(mixq_source_metadata(f, "format"), "pt");
    st_model *src = NULL;
    cr_assert_eq(st_open(src_path, &src, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(mixq_tensor_count(f), src->ntensors);
    size_t nq = 0;
    for (size_t i = 0; i < src->ntensors; i++) {
        const st_tensor *s = &src->tensors[i];
        const mixq_tensor *t = mixq_find(f, s->name);
        cr_assert(t, "%s missing", s->name);
        mixq_tensor_info in;
        mixq_tensor_get_info(t, &in);
        cr_assert_eq(in.n_elements, s->n_elements);
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
            mixq_section sv;
            if (mixq_tensor_section(t, (mixq_section_kind)k, &sv) != MIXQ_OK) continue;
            cr_assert_eq(sv.offset % 64, 0, "%s: section offset not aligned", s->name);
            cr_assert(sv.offset >= in.offset && sv.offset + sv.size <= in.offset + in.nbytes, "%s", s->name);
        }
        if (in.qtype == MIXQ_QT_RAW) {
            mixq_section sec;
            cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_DATA, &sec), MIXQ_OK);
            cr_assert(sec.size == s->nbytes && memcmp(sec.data, s->data, s->nbytes) == 0);
            continue;
        }
        float *x = malloc(s->n_elements * 4 + 4), *y = malloc(s->n_elements * 4 + 4);
        st_to_f32(s->dtype, s->data, s->n_elements, x);
        cr_assert_eq(mixq_dequantize_f32(f, t, 0, in.rows, y, &err), MIXQ_OK, "%s", err.message);
        if (in.quantized) {
            nq++;
            cr_assert_eq(in.qtype, qt, "%s", s->name);
            cr_assert_eq(in.group_size, group, "%s", s->name);
            uint64_t G = group ? group : in.row_length;
            for (uint64_t r = 0; r < in.rows; r++)
                for (uint64_t c = 0; c < in.row_length; c++) {
                    float sc = f16_at(t, MIXQ_SEC_SCALES, r, c / G);
                    double e = fabs((double)x[r * in.row_length + c] - y[r * in.row_length + c]);
                    cr_assert(e <= sc * 0.5 * (1 + 1e-3), "%s[%llu]: error %g > s/2 = %g", s->name,
                              (unsigned long long)(r * in.row_length + c), e, sc * 0.5);
                }
        } else {
            cr_assert(memcmp(x, y, s->n_elements * 4) == 0, "%s: plain tensor changed", s->name);
        }
        free(x);
        free(y);
    }
    cr_assert_gt(nq, 10);
    st_close(src);
    mixq_close(f);
    free(path);
    free(src_path);
}

Test(golden, v1_int4_group64) { check_golden("testdata/golden/v1-int4-g64.mxq", "testdata/tiny-llama-bf16", MIXQ_QT_INT4, 64); }
Test(golden, v1_int8_per_row_with_1d) { check_golden("testdata/golden/v1-int8-row.mxq", "testdata/tiny-llama-f16", MIXQ_QT_INT8, 0); }
