/* cli_util.c - small helpers shared by the mixq subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "common/dtype.h"
#include "common/error.h"

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

const char *cli_safe(const char *s)
{
    static char bufs[CLI_SAFE_SLOTS][CLI_SAFE_BUF];
    static unsigned next;
    char *b = bufs[next++ % CLI_SAFE_SLOTS];
    return mx_printable(b, CLI_SAFE_BUF, s ? s : "", 0);
}

void cli_progress(void *ctx, size_t done, size_t total, const char *name)
{
    char nb[CLI_SAFE_BUF]; /* may run on a worker thread: its own buffer */
    fprintf(stderr, "\r\033[K[%zu/%zu] %s%s", done, total, ctx ? (const char *)ctx : "",
            mx_printable(nb, sizeof nb, name ? name : "", 0));
    if (done == total) fputs("\r\033[K", stderr);
}
