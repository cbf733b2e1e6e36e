/* cli_util.h - small helpers shared by the mixq subcommands. */
#ifndef MIXQ_CLI_UTIL_H
#define MIXQ_CLI_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mixq.h"

/* Exit codes (documented in docs/CLI.md and mixq --help). */
enum {
    EXIT_OK = 0,
    EXIT_BAD_DATA = 1,   /* the input is malformed or corrupt, or verification failed */
    EXIT_USAGE = 2,      /* bad command line */
    EXIT_SYSTEM = 3      /* I/O error, output exists, out of memory */
    /* 128 + signal number when interrupted by SIGINT / SIGTERM */
};

/* Maps a library status to an exit code. */
int cli_exit_code(mixq_status s);

/* Prints "mixq CMD: message" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints a usage error and a pointer to --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats a byte count as "12.3 MB" (decimal units) into buf. */
const char *cli_bytes(uint64_t n, char *buf, size_t len);

/* Formats a shape as "[4096, 11008]" into buf. */
const char *cli_shape(const mixq_tensor_info *info, char *buf, size_t len);

/* Bytes per element of a safetensors dtype name (0 if unknown). */
unsigned cli_dtype_size(const char *dtype);

/* Parses an unsigned decimal integer; returns 0 on success. */
int cli_parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/*
 * Catches SIGINT, SIGTERM and SIGHUP: each sets the returned flag to the
 * signal's number (a library call given it as its cancel flag then stops
 * cleanly; the command exits with 128 + that number).
 */
volatile sig_atomic_t *cli_catch_signals(void);

/*
 * A progress callback for a terminal: "[i/n] <ctx>name" on one rewritten
 * line of stderr, cleared at the end; ctx is a const char * prefix
 * ("measuring ") or NULL.
 */
void cli_progress(void *ctx, size_t done, size_t total, const char *name);

/*
 * s made safe for a terminal: control characters (C0, DEL, C1 such as CSI)
 * and bytes that are not UTF-8 become \xHH (mx_printable), so a name read
 * from a file cannot move the cursor, retitle the window or fake a line.
 * The result lives in one of CLI_SAFE_SLOTS rotating buffers of
 * CLI_SAFE_BUF bytes (main thread only); every name, tensor or string from
 * a file that the tables print goes through this.
 */
#define CLI_SAFE_BUF 512
#define CLI_SAFE_SLOTS 8
const char *cli_safe(const char *s);

/* True if arg is -h or --help. */
int cli_is_help(const char *arg);

#endif
