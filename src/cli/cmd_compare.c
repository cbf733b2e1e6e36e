/* cmd_compare.c - `mixq compare IN OUT.mxq [--json]`: the error of a container against its source. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli_util.h"
#include "commands.h"

static const char usage[] =
    "Usage: mixq compare IN FILE [--json]\n"
    "\n"
    "Compares a container FILE with the safetensors checkpoint IN it was converted\n"
    "from (a .safetensors file, a directory or an index.json), in double precision,\n"
    "tensor by tensor: RMSE, relative error ||x-y||/||x||, SQNR in dB\n"
    "(10 log10 of sum x^2 / sum (x-y)^2; inf when exact), cosine similarity and\n"
    "largest absolute error. Totals pool every element of: all floating tensors,\n"
    "the quantized ones (int8, int4, ...) and the floating tensors of 2 or more\n"
    "dimensions. Integer and bool tensors are checked for exactness only.\n"
    "\n"
    "Options:\n"
    "      --json   print one JSON object (infinite or undefined numbers are null)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed or corrupt input, tensors or shapes that\n"
    "differ between IN and FILE, or an integer/bool tensor whose values differ;\n"
    "2 usage error; 3 a file cannot be read or out of memory.\n";

/* A number for JSON: null when infinite or NaN (JSON has neither). */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *stats_json(const mixq_compare_stats *s, size_t tensors)
{
    return json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:I,s:I}", "tensors", (json_int_t)tensors, "n_elements",
                     (json_int_t)s->n_elements, "rmse", num(s->rmse), "rel_error", num(s->rel_error), "sqnr_db",
                     num(s->sqnr_db), "cosine", num(s->cosine), "max_abs_error", num(s->max_abs_error),
                     "mismatches", (json_int_t)s->mismatches, "nonfinite", (json_int_t)s->nonfinite);
}

static int print_json(const char *in, const char *path, const mixq_compare_result *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < r->n_tensors; i++) {
        const mixq_compare_tensor *t = &r->tensors[i];
        const mixq_compare_stats *s = &t->stats;
        json_t *shape = json_array();
        for (unsigned d = 0; shape && d < t->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        json_t *o = json_pack("{s:s,s:o,s:s,s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:b}", "name", t->name, "shape",
                              shape, "source_dtype", t->source_dtype, "quant_type", t->quant_type, "n_elements",
                              (json_int_t)s->n_elements, "rmse", num(s->rmse), "rel_error", num(s->rel_error),
                              "sqnr_db", num(s->sqnr_db), "cosine", num(s->cosine), "max_abs_error",
                              num(s->max_abs_error), "mismatches", (json_int_t)s->mismatches, "nonfinite",
                              (json_int_t)s->nonfinite, "exact", s->mismatches == 0);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_t *root = arr ? json_pack("{s:s,s:s,s:o,s:{s:I,s:I,s:I,s:o,s:o,s:o}}", "source", in, "container", path,
                                   "tensors", arr, "totals", "tensors", (json_int_t)r->n_tensors, "exact_tensors",
                                   (json_int_t)r->n_exact, "nonfloat_mismatched",
                                   (json_int_t)r->n_nonfloat_mismatched, "all_float",
                                   stats_json(&r->all_float, r->n_float), "quantized",
                                   stats_json(&r->quantized, r->n_quantized), "matrices",
                                   stats_json(&r->matrices, r->n_matrices))
                       : NULL;
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(root);
    if (!text) {
        cli_error("compare", "%s: out of memory", path);
        return EXIT_SYSTEM;
    }
    puts(text);
    free(text);
    return EXIT_OK;
}

/* Formats a metric with printf format fmt, or inf / -inf / nan. */
static const char *fmt_num(char *buf, size_t len, const char *fmt, double v)
{
    if (isnan(v)) snprintf(buf, len, "nan");
    else if (isinf(v)) snprintf(buf, len, v > 0 ? "inf" : "-inf");
    else snprintf(buf, len, fmt, v);
    return buf;
}

static void print_row(int w, const char *label, const char *type, const char *dtype, const mixq_compare_stats *s)
{
    char a[32], b[32], c[32], d[32], e[32];
    printf("%-*s  %-5s  %-7s  %12llu  %10s  %10s  %8s  %10s  %10s\n", w, label, type, dtype,
           (unsigned long long)s->n_elements, fmt_num(a, sizeof a, "%.3e", s->rmse),
           fmt_num(b, sizeof b, "%.3e", s->rel_error), fmt_num(c, sizeof c, "%.2f", s->sqnr_db),
           fmt_num(d, sizeof d, "%.7f", s->cosine), fmt_num(e, sizeof e, "%.3e", s->max_abs_error));
}

/* One totals line: "total: GROUP (N tensors)" and the pooled metrics, or "none". */
static void print_total(int w, const char *group, size_t n, const mixq_compare_stats *s)
{
    char label[64];
    snprintf(label, sizeof label, "total: %s (%zu)", group, n);
    if (n) print_row(w, label, "", "", s);
    else printf("%-*s  %-5s  %-7s  %12s  none\n", w, label, "", "", "");
}

static void print_table(const char *in, const char *path, const mixq_compare_result *r)
{
    int w = 24;
    for (size_t i = 0; i < r->n_tensors; i++) {
        int l = (int)strlen(r->tensors[i].name);
        if (l > w) w = l;
    }
    if (w > 60) w = 60;
    printf("%s against %s: %zu tensors\n\n", path, in, r->n_tensors);
    printf("%-*s  %-5s  %-7s  %12s  %10s  %10s  %8s  %10s  %10s\n", w, "name", "type", "source", "elements", "rmse",
           "rel_error", "sqnr_db", "cosine", "max_abs_err");
    for (size_t i = 0; i < r->n_tensors; i++) {
        const mixq_compare_tensor *t = &r->tensors[i];
        if (t->is_float) {
            print_row(w, t->name, t->quant_type, t->source_dtype, &t->stats);
        } else {
            char m[64];
            if (t->stats.mismatches == 0) snprintf(m, sizeof m, "exact (integer/bool)");
            else snprintf(m, sizeof m, "MISMATCH: %llu elements differ", (unsigned long long)t->stats.mismatches);
            printf("%-*s  %-5s  %-7s  %12llu  %s\n", w, t->name, t->quant_type, t->source_dtype,
                   (unsigned long long)t->stats.n_elements, m);
        }
    }
    putchar('\n');
    print_total(w, "float", r->n_float, &r->all_float);
    print_total(w, "quantized", r->n_quantized, &r->quantized);
    print_total(w, "matrices", r->n_matrices, &r->matrices);
    printf("\n%zu of %zu tensors exact", r->n_exact, r->n_tensors);
    size_t nonfloat = r->n_tensors - r->n_float;
    if (nonfloat) printf("; integer/bool tensors: %zu of %zu exact", nonfloat - r->n_nonfloat_mismatched, nonfloat);
    printf("\n");
}

int cmd_compare(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 1000}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 1000: json = 1; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_unknown_option("compare", argv[optind - 1]);
        }
    }
    if (argc - optind != 2) return cli_usage_error("compare", "expected the source checkpoint IN and a container FILE");
    const char *in = argv[optind], *path = argv[optind + 1];

    mixq_compare_options opts;
    mixq_compare_options_init(&opts);
    if (isatty(2)) opts.progress = cli_progress;
    mixq_compare_result *r = NULL;
    mixq_error err;
    mixq_status s = mixq_compare(in, path, &opts, &r, &err);
    if (s != MIXQ_OK) {
        cli_lib_error("compare", &err);
        return cli_exit_code(s);
    }
    int rc = EXIT_OK;
    if (json) rc = print_json(in, path, r);
    else print_table(in, path, r);
    if (rc == EXIT_OK && r->n_nonfloat_mismatched) {
        for (size_t i = 0; i < r->n_tensors; i++) {
            const mixq_compare_tensor *t = &r->tensors[i];
            if (!t->is_float && t->stats.mismatches) {
                cli_error("compare", "%s: integer/bool tensor \"%s\" differs from %s in %llu elements: the container "
                          "does not hold this checkpoint", path, t->name, in,
                          (unsigned long long)t->stats.mismatches);
                break;
            }
        }
        rc = EXIT_BAD_DATA;
    }
    mixq_compare_free(r);
    return rc;
}
