/* cli_util.h - small helpers shared by the mixq subcommands. */
#ifndef MIXQ_CLI_UTIL_H
#define MIXQ_CLI_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mixq_tools.h"

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

/*
 * Prints "mixq CMD: message" for a library error, the library's names of
 * options ("plan_options.target_bpw", "set force") worded as this CLI's
 * flags ("--target-bpw", "pass --force").
 */
void cli_lib_error(const char *cmd, const mixq_error *err);

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

/* True if arg is -h or --help. */
int cli_is_help(const char *arg);

/*
 * The usage error for an unknown option; for -j, which means --threads
 * wherever it exists, says so and points to --json.
 */
int cli_unknown_option(const char *cmd, const char *arg);

/*
 * Parses the TYPE of --type for cmd: any implemented type but raw.  On an
 * unknown name prints a usage error listing the types and returns -1.
 */
int cli_parse_type(const char *cmd, const char *arg, mixq_qtype *out);

/* Prints the "Types:" block of a --help text (one line per --type choice) from the type table. */
void cli_print_types(FILE *fp);

/* "int4:64", "int8:row" or "f16": a type and group as plan files and the tables write them. */
const char *cli_type_spec(mixq_qtype q, unsigned group_size, char *buf, size_t len);

/* Tensors, weights and bytes per type spec, in first-seen order (the "by type" table). */
typedef struct cli_by_type {
    struct cli_by_type_row {
        char spec[48];
        size_t tensors;
        uint64_t bytes, weights;
    } *rows;
    size_t n, cap;
    int failed; /* out of memory: the table is left out */
} cli_by_type;

/* Adds one tensor to its spec's row. */
void cli_by_type_add(cli_by_type *bt, const char *spec, uint64_t weights, uint64_t bytes);

/* Prints "by type:" and one line per spec (tensors, weights, bytes, bits per weight); frees bt. */
void cli_by_type_print(cli_by_type *bt);

#endif
