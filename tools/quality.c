/*
 * quality.c - round-trip error of the quantized types on real checkpoints
 * (the figures of docs/QUALITY.md).
 *
 *   quality [--scalar] [--sample N] MODEL_DIR_OR_FILE TYPE[:GROUP][:rtn] ...
 *
 * For each TYPE spec, every floating 2-D tensor of the model is quantized
 * row by row with the type's kernels (exactly what `mixq convert` stores;
 * GROUP 0 or absent = the type's default), dequantized, and compared with
 * the source values.  Prints per spec: bits per weight (stored bytes of
 * those tensors incl. section padding, as a container holds them), RMSE
 * over all their elements, and the quantize time; with both a searched and
 * an `:rtn` spec of the same type it also prints the search's RMSE change
 * and time ratio.  --scalar uses the scalar reference kernels (default: the
 * kernels this CPU would use).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/dtype.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "reader/st_reader.h"
#include "plan/plan_measure.h"

typedef struct result {
    double se, n, bytes, secs;
} result;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static unsigned sample = 1; /* --sample N: only every N-th row of each tensor (quick experiments) */

static int run(const st_model *m, const qtype_desc *qt, unsigned group, int search, int scalar, result *res)
{
    const mx_kernel_set *ks = scalar ? mx_kernels_for(MX_SIMD_SCALAR) : mx_kernels();
    memset(res, 0, sizeof *res);
    for (size_t ti = 0; ti < m->ntensors; ti++) {
        const st_tensor *t = &m->tensors[ti];
        if (t->ndim != 2 || !st_dtypes[t->dtype].is_float || t->n_elements == 0)
            continue;
        uint64_t rows = t->shape[0], K = t->shape[1];
        qlayout l;
        if (!qtype_layout(qt, t->dtype, rows, K, group, &l)) {
            fprintf(stderr, "quality: %s: layout failed for %s group %u\n", t->name, qt->name, group);
            return -1;
        }
        float *x = malloc(t->n_elements * sizeof *x), *y = malloc(K * sizeof *y);
        uint8_t *buf = calloc(1, l.total + 1);
        if (!x || !y || !buf) return -1;
        st_to_f32(t->dtype, t->data, t->n_elements, x);
        float amax = 0.0f;
        if (l.per_tensor)
            for (uint64_t i = 0; i < t->n_elements; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        mx_qparams p = {.importance = NULL, .search = search != 0, .tensor_absmax = l.per_tensor ? amax : -1.0f};
        double t0 = now();
        if (qt->codebook_levels) { /* the tensor's codebook first, fitted as the converter fits it */
            mixq_error e;
            int8_t *lv = (int8_t *)(buf + l.offset[MIXQ_SEC_CODEBOOK]);
            if (mx_fit_codebook(NULL, false, t, qt, l.group, NULL, lv, &e) != MIXQ_OK) {
                fprintf(stderr, "quality: %s\n", e.message);
                return -1;
            }
            p.codebook = lv;
        }
        for (uint64_t r = 0; r < rows; r += sample) {
            mx_rowptrs o = {{NULL}};
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                if (qtype_has_section(qt, (mixq_section_kind)k)) o.sec[k] = buf + l.offset[k] + r * l.row_bytes[k];
            ks->quantize_row[qt->id](x + r * K, (size_t)K, l.group, &p, o);
        }
        res->secs += now() - t0;
        for (uint64_t r = 0; r < rows; r += sample) {
            mx_crowptrs in = {{NULL}};
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                if (qtype_has_section(qt, (mixq_section_kind)k)) in.sec[k] = buf + l.offset[k] + r * l.row_bytes[k];
            ks->dequantize_row[qt->id](in, (size_t)K, l.group, y);
            for (uint64_t c = 0; c < K; c++) {
                double e = (double)x[r * K + c] - (double)y[c];
                res->se += e * e;
            }
        }
        res->n += (double)((rows + sample - 1) / sample * K);
        res->bytes += (double)l.total;
        free(x);
        free(y);
        free(buf);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int scalar = 0, a = 1;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (!strcmp(argv[a], "--scalar"))
            scalar = 1;
        else if (!strcmp(argv[a], "--sample") && a + 1 < argc)
            sample = (unsigned)atoi(argv[++a]) ? (unsigned)atoi(argv[a]) : 1;
        else
            break;
    }
    if (argc - a < 2) {
        fprintf(stderr, "usage: quality [--scalar] [--sample N] MODEL TYPE[:GROUP][:rtn] ...\n");
        return 2;
    }
    st_model *m = NULL;
    mixq_error err;
    if (st_open(argv[a], &m, &err) != MIXQ_OK) {
        fprintf(stderr, "quality: %s\n", err.message);
        return 1;
    }
    printf("%-22s %8s %12s %9s\n", "type", "bpw", "rmse", "seconds");
    result prev = {0};
    char prev_type[64] = "";
    for (int i = a + 1; i < argc; i++) {
        char spec[64], *tok, *save = NULL;
        snprintf(spec, sizeof spec, "%s", argv[i]);
        tok = strtok_r(spec, ":", &save);
        const qtype_desc *qt = qtype_by_name(tok);
        if (!qt || !qt->quantized) {
            fprintf(stderr, "quality: unknown quantized type '%s'\n", tok);
            return 2;
        }
        unsigned group = qt->group_default;
        int search = 1;
        while ((tok = strtok_r(NULL, ":", &save)) != NULL) {
            if (!strcmp(tok, "rtn")) search = 0;
            else if (!strcmp(tok, "row")) group = 0;
            else group = (unsigned)atoi(tok);
        }
        result r;
        if (run(m, qt, group, search, scalar, &r)) return 1;
        char name[64];
        snprintf(name, sizeof name, "%s g%u%s", qt->name, group, search ? "" : " rtn");
        printf("%-22s %8.4f %12.7f %9.3f", name, r.bytes * 8.0 / r.n, sqrt(r.se / r.n), r.secs);
        char key[64];
        snprintf(key, sizeof key, "%s:%u", qt->name, group);
        if (!strcmp(key, prev_type) && prev.n > 0) {
            result *srch = search ? &r : &prev, *rtn = search ? &prev : &r;
            printf("   search vs rtn: RMSE %+.2f %%, time x%.2f",
                   100.0 * (sqrt(srch->se / srch->n) / sqrt(rtn->se / rtn->n) - 1.0), srch->secs / rtn->secs);
        }
        printf("\n");
        fflush(stdout);
        prev = r;
        snprintf(prev_type, sizeof prev_type, "%s", key);
    }
    st_close(m);
    return 0;
}
