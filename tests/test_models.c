/*
 * test_models.c - every real checkpoint in ../shared/models converts at int8
 * and int4 and verifies; skipped when that folder is absent.
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "common/dtype.h"
#include "mixq_tools.h"
#include "reader/st_reader.h"
#include "test_support.h"

/* Converts every model folder at `type`, verifies, and checks the RMSE of 2-D tensors is small. */
static void convert_all(mixq_qtype type, double max_rel_rmse)
{
    char *models = ts_models_dir();
    if (!models) cr_skip_test("../shared/models is absent");
    DIR *d = opendir(models);
    cr_assert(d);
    char *tmp = ts_tmpdir();
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *in = ts_path(models, e->d_name), *st_path = ts_path(in, "model.safetensors");
        struct stat st;
        int ok = stat(st_path, &st) == 0;
        free(st_path);
        if (!ok) {
            free(in);
            continue;
        }
        char *out = ts_path(tmp, e->d_name);
        mixq_convert_options o;
        mixq_convert_options_init(&o);
        o.type = type;
        mixq_error err;
        cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s: %s", e->d_name, err.message);
        mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
        cr_assert(f, "%s: %s", e->d_name, err.message);

        st_model *src = NULL;
        cr_assert_eq(st_open(in, &src, &err), MIXQ_OK, "%s", err.message);
        double se = 0, ss = 0;
        for (size_t i = 0; i < src->ntensors; i++) {
            const st_tensor *t = &src->tensors[i];
            if (t->ndim != 2) continue;
            const mixq_tensor *mt = mixq_find(f, t->name);
            cr_assert(mt);
            mixq_tensor_info in_info;
            mixq_tensor_get_info(mt, &in_info);
            cr_assert_eq(in_info.qtype, type, "%s", t->name);
            float *x = malloc(t->n_elements * 4), *y = malloc(t->n_elements * 4);
            st_to_f32(t->dtype, t->data, t->n_elements, x);
            cr_assert_eq(mixq_dequantize_f32(f, mt, 0, in_info.rows, y, &err), MIXQ_OK, "%s", err.message);
            for (uint64_t k = 0; k < t->n_elements; k++) {
                se += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
                ss += (double)x[k] * x[k];
            }
            free(x);
            free(y);
        }
        double rel = sqrt(se / ss);
        cr_log_info("%s %s: relative RMSE %.5f", e->d_name, mixq_qtype_name(type), rel);
        cr_assert_lt(rel, max_rel_rmse, "%s: relative RMSE %g", e->d_name, rel);
        st_close(src);
        mixq_close(f);
        free(out);
        free(in);
        n++;
    }
    closedir(d);
    cr_assert_gt(n, 0, "no model folder with model.safetensors in %s", models);
    ts_rmtree(tmp);
    free(tmp);
    free(models);
}

/* int8 error is below 1 % of the signal; int4 below 15 %. */
Test(models, int8_converts_and_verifies) { convert_all(MIXQ_QT_INT8, 0.01); }
Test(models, int4_converts_and_verifies) { convert_all(MIXQ_QT_INT4, 0.15); }
