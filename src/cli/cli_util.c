/* cli_util.c - small helpers shared by the mixq subcommands. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "common/dtype.h"
#include "kernels/qtype.h"

int cli_exit_code(mixq_status s)
{
    switch (s) {
    case MIXQ_OK: return EXIT_OK;
    case MIXQ_E_INVALID_ARG: return EXIT_USAGE;
    case MIXQ_E_IO:
    case MIXQ_E_NOMEM:
    case MIXQ_E_EXISTS: return EXIT_SYSTEM;
    case MIXQ_E_CANCELLED: return 128 + 2;
    default: return EXIT_BAD_DATA;
    }
}

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mixq %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Library option names and the CLI flags that set them. */
static const char *const flag_words[][2] = {
    {"plan_options.candidates", "--candidates"},
    {"plan_options.rules", "--override"},
    {"plan_options.min_type", "--min-type"},
    {"plan_options.max_type", "--max-type"},
    {"plan_options.target_bpw", "--target-bpw"},
    {"plan_options.target_size", "--target-size"},
    {"plan_options.strategy", "--strategy"},
    {"plan_options.measure_sample", "--measure-sample"},
    {"plan_options.thresholds", "--thresholds"},
    {"convert_options.type", "--type"},
    {"export_options.dtype", "--dtype"},
    {"set force to replace it", "pass --force to replace it"},
};

void cli_lib_error(const char *cmd, const mixq_error *err)
{
    char out[2 * sizeof err->message];
    size_t n = 0;
    for (const char *m = err->message; *m && n + 1 < sizeof out;) {
        size_t i = 0, nw = sizeof flag_words / sizeof flag_words[0];
        while (i < nw && strncmp(m, flag_words[i][0], strlen(flag_words[i][0])) != 0) i++;
        if (i < nw && n + strlen(flag_words[i][1]) + 1 < sizeof out) {
            memcpy(out + n, flag_words[i][1], strlen(flag_words[i][1]));
            n += strlen(flag_words[i][1]);
            m += strlen(flag_words[i][0]);
        } else {
            out[n++] = *m++;
        }
    }
    out[n] = '\0';
    cli_error(cmd, "%s", out);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mixq %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'mixq %s --help'.\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

const char *cli_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1000.0 && u < 5) {
        v /= 1000.0;
        u++;
    }
    if (u == 0) snprintf(buf, len, "%llu B", (unsigned long long)n);
    else snprintf(buf, len, "%.2f %s", v, units[u]);
    return buf;
}

const char *cli_shape(const mixq_tensor_info *info, char *buf, size_t len)
{
    size_t pos = 0;
    pos += (size_t)snprintf(buf + pos, len - pos, "[");
    for (unsigned i = 0; i < info->ndim && pos < len; i++)
        pos += (size_t)snprintf(buf + pos, len - pos, "%s%llu", i ? ", " : "", (unsigned long long)info->shape[i]);
    if (pos < len) snprintf(buf + pos, len - pos, "]");
    return buf;
}

unsigned cli_dtype_size(const char *dtype)
{
    st_dtype d;
    return st_dtype_parse(dtype, &d) ? st_dtypes[d].size : 0;
}

int cli_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return -1;
    *out = v;
    return 0;
}

int cli_is_help(const char *arg)
{
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

static volatile sig_atomic_t cli_signal;

static void on_signal(int sig)
{
    cli_signal = sig;
}

volatile sig_atomic_t *cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return &cli_signal;
}

void cli_progress(void *ctx, size_t done, size_t total, const char *name)
{
    fprintf(stderr, "\r\033[K[%zu/%zu] %s%s", done, total, ctx ? (const char *)ctx : "", name);
    if (done == total) fputs("\r\033[K", stderr);
}

int cli_parse_type(const char *cmd, const char *arg, mixq_qtype *out)
{
    const qtype_desc *qt = qtype_by_name(arg);
    if (qt == NULL || qt->id == MIXQ_QT_RAW) {
        char list[512];
        cli_usage_error(cmd, "unknown type '%s' (choose %s)", arg, qtype_name_list(list, sizeof list));
        return -1;
    }
    *out = qt->id;
    return 0;
}

void cli_print_types(FILE *fp)
{
    fputs("Types (-t TYPE; -g sizes, the default in parentheses):\n", fp);
    for (unsigned i = 0; i < MIXQ_QT_COUNT; i++) {
        const qtype_desc *qt = qtype_get((mixq_qtype)i);
        char groups[64];
        if (qt == NULL || qt->id == MIXQ_QT_RAW) continue;
        fprintf(fp, "  %-9s %-41s %s\n", qt->name, qt->help, qtype_group_help(qt, groups, sizeof groups));
    }
}

const char *cli_type_spec(mixq_qtype q, unsigned group_size, char *buf, size_t len)
{
    const qtype_desc *qt = qtype_get(q);
    if (!qt) snprintf(buf, len, "?");
    else if (!qt->quantized) snprintf(buf, len, "%s", qt->name);
    else if (group_size) snprintf(buf, len, "%s:%u", qt->name, group_size);
    else snprintf(buf, len, "%s:row", qt->name);
    return buf;
}

void cli_by_type_add(cli_by_type *bt, const char *spec, uint64_t weights, uint64_t bytes)
{
    size_t k = 0;
    if (bt->failed) return;
    while (k < bt->n && strcmp(bt->rows[k].spec, spec) != 0) k++;
    if (k == bt->n) {
        if (bt->n == bt->cap) {
            size_t cap = bt->cap ? 2 * bt->cap : 16;
            struct cli_by_type_row *r = realloc(bt->rows, cap * sizeof *r);
            if (!r) {
                bt->failed = 1;
                return;
            }
            bt->rows = r;
            bt->cap = cap;
        }
        memset(&bt->rows[k], 0, sizeof bt->rows[k]);
        snprintf(bt->rows[k].spec, sizeof bt->rows[k].spec, "%s", spec);
        bt->n++;
    }
    bt->rows[k].tensors++;
    bt->rows[k].bytes += bytes;
    bt->rows[k].weights += weights;
}

void cli_by_type_print(cli_by_type *bt)
{
    if (!bt->failed) {
        printf("\nby type:\n");
        for (size_t k = 0; k < bt->n; k++) {
            const struct cli_by_type_row *r = &bt->rows[k];
            char b[32];
            printf("  %-14s %5zu tensors  %12llu weights  %12s  %7.3f bits per weight\n", r->spec, r->tensors,
                   (unsigned long long)r->weights, cli_bytes(r->bytes, b, sizeof b),
                   r->weights ? (double)r->bytes * 8.0 / (double)r->weights : 0.0);
        }
    }
    free(bt->rows);
    memset(bt, 0, sizeof *bt);
}

int cli_unknown_option(const char *cmd, const char *arg)
{
    if (optopt == 'j' && arg && !strncmp(arg, "-j", 2))
        return cli_usage_error(cmd, "unknown option '-j' (-j is --threads, which %s does not take; "
                               "JSON output is --json)", cmd);
    return cli_usage_error(cmd, "unknown option '%s'", arg);
}
