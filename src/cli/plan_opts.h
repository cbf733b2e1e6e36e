/* plan_opts.h - the planner options shared by `mixq plan` and `mixq convert`. */
#ifndef MIXQ_CLI_PLAN_OPTS_H
#define MIXQ_CLI_PLAN_OPTS_H

#include <getopt.h>
#include <stdint.h>

#include "mixq_tools.h"

/* getopt_long codes of the planner options. */
enum {
    CLI_OPT_STRATEGY = 2000,
    CLI_OPT_TARGET_BPW,
    CLI_OPT_TARGET_SIZE,
    CLI_OPT_CANDIDATES,
    CLI_OPT_MIN_TYPE,
    CLI_OPT_MAX_TYPE,
    CLI_OPT_OVERRIDE,
    CLI_OPT_KEEP,
    CLI_OPT_WEIGHTS,
    CLI_OPT_SENSITIVITY,
    CLI_OPT_THRESHOLDS,
    CLI_OPT_MEASURE_SAMPLE,
    CLI_OPT_THREADS,
    CLI_OPT_IMATRIX,
    CLI_OPT_IMATRIX_WEIGHTING,
    CLI_OPT_MEASUREMENT
};

/* Entries for a struct option array (no terminator). */
#define CLI_PLAN_LONGOPTS                                                                                    \
    {"strategy", required_argument, NULL, CLI_OPT_STRATEGY},                                                 \
        {"target-bpw", required_argument, NULL, CLI_OPT_TARGET_BPW},                                         \
        {"target-size", required_argument, NULL, CLI_OPT_TARGET_SIZE},                                       \
        {"candidates", required_argument, NULL, CLI_OPT_CANDIDATES},                                         \
        {"min-type", required_argument, NULL, CLI_OPT_MIN_TYPE},                                             \
        {"max-type", required_argument, NULL, CLI_OPT_MAX_TYPE},                                             \
        {"override", required_argument, NULL, CLI_OPT_OVERRIDE}, {"keep", required_argument, NULL, CLI_OPT_KEEP}, \
        {"weights", required_argument, NULL, CLI_OPT_WEIGHTS},                                               \
        {"sensitivity", required_argument, NULL, CLI_OPT_SENSITIVITY},                                       \
        {"thresholds", required_argument, NULL, CLI_OPT_THRESHOLDS},                                         \
        {"measure-sample", required_argument, NULL, CLI_OPT_MEASURE_SAMPLE},                                 \
        {"threads", required_argument, NULL, CLI_OPT_THREADS},                                               \
        {"imatrix", required_argument, NULL, CLI_OPT_IMATRIX},                                               \
        {"imatrix-weighting", required_argument, NULL, CLI_OPT_IMATRIX_WEIGHTING},                           \
        {"measurement", required_argument, NULL, CLI_OPT_MEASUREMENT}

/* The planner options' help lines (for the usage texts). */
extern const char cli_plan_help[];

typedef struct cli_plan_opts {
    mixq_plan_options po;
    char **rules;        /* "GLOB=TYPE" and "GLOB=keep" in command-line order */
    size_t n_rules;
    int any;             /* a planner option was given */
    int strategy_set;
} cli_plan_opts;

void cli_plan_opts_init(cli_plan_opts *c);
void cli_plan_opts_free(cli_plan_opts *c);

/*
 * Handles one getopt_long code: 1 if it was a planner option, 0 if not, -1
 * after printing a usage error for cmd.
 */
int cli_plan_opt(cli_plan_opts *c, const char *cmd, int code, const char *arg);

/* Prints a library warning to stderr ("mixq: warning: ..."): a mixq_warning_fn. */
void cli_print_warning(void *ctx, const char *message);

/* After parsing: the strategy defaults to budget when a target was given. */
void cli_plan_opts_finish(cli_plan_opts *c);

/* Parses "123", "1.5MB", "2GiB", "500kB" into bytes; 0 on success. */
int cli_parse_size(const char *s, uint64_t *out);

#endif
