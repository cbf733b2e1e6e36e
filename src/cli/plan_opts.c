/* plan_opts.c - parsing the planner options shared by `mixq plan` and `mixq convert`. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli_util.h"
#include "plan_opts.h"

const char cli_plan_help[] =
    "Planning (docs/PLANNER.md):\n"
    "      --strategy S      uniform (default), sensitivity or budget (the default\n"
    "                        when a target is given)\n"
    "      --target-bpw X    budget: at most X stored bits per weight (as 'mixq dump')\n"
    "      --target-size N   budget: the whole output file at most N bytes\n"
    "                        (suffixes kB MB GB, KiB MiB GiB)\n"
    "      --candidates L    types the budget (or the sensitivity ladder) may use,\n"
    "                        e.g. int4,int8:32,f16 (default: every quantized type\n"
    "                        but the opt-in nl4, nl4_dq, cb4_dq, cb3_dq, cb2_dq; f16);\n"
    "                        all = the default and the opt-in types;\n"
    "                        gguf = the types 'mixq export --gguf' transcodes exactly\n"
    "      --min-type T      only candidates of at least T's bits per weight\n"
    "      --max-type T      only candidates of at most T's bits per weight\n"
    "      --override G=T    tensors matching glob G get type T[:GROUP] (repeatable;\n"
    "                        the last matching rule wins over every strategy)\n"
    "      --keep G          tensors matching glob G keep their source precision\n"
    "      --weights W       role (role and depth prior per unit of the tensor's\n"
    "                        mean square), flat (plain squared error) or share\n"
    "                        (relative error times the tensor's share of the\n"
    "                        output: head and token embedding 2 x blocks + 1,\n"
    "                        other matrices 1); default: share for a budget plan\n"
    "                        without --imatrix, role otherwise\n"
    "      --sensitivity F   JSON of per-tensor gradient_norm, weight_variance,\n"
    "                        activation_range, output_sensitivity\n"
    "      --thresholds L,M,H  sensitivity: score thresholds (default 0.5,2,4)\n"
    "      --measure-sample N  measure each tensor's errors on evenly spaced rows\n"
    "                        holding about N elements (default 262144); 'all' =\n"
    "                        every row (exact estimates, slower)\n"
    "      --imatrix F       importance matrix (llama.cpp GGUF or .dat imatrix, or\n"
    "                        'mixq calibrate'): scale searches and planned errors are\n"
    "                        weighted by each input column's mean square activation\n"
    "      --imatrix-weighting W  sigma (default: a_j sqrt(s2 + x_j^2)) or plain (a_j)\n"
    "      --measurement F   a `mixq measure` file of this checkpoint: each tensor's\n"
    "                        weight becomes its measured KLD per unit of error, so\n"
    "                        the budget minimises the predicted KLD (weights measured)\n";

void cli_plan_opts_init(cli_plan_opts *c)
{
    memset(c, 0, sizeof *c);
    mixq_plan_options_init(&c->po);
}

void cli_plan_opts_free(cli_plan_opts *c)
{
    for (size_t i = 0; i < c->n_rules; i++) free(c->rules[i]);
    free(c->rules);
    c->rules = NULL;
    c->n_rules = 0;
}

static int add_rule(cli_plan_opts *c, const char *glob, const char *type)
{
    char **nr = realloc(c->rules, (c->n_rules + 1) * sizeof *nr);
    if (!nr) return -1;
    c->rules = nr;
    size_t len = strlen(glob) + strlen(type) + 2;
    char *r = malloc(len);
    if (!r) return -1;
    snprintf(r, len, "%s=%s", glob, type);
    c->rules[c->n_rules++] = r;
    c->po.rules = (const char *const *)c->rules;
    c->po.n_rules = c->n_rules;
    return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !isfinite(v) || v < 0) return -1;
    while (*end == ' ') end++;
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {{"", 1},         {"b", 1},          {"k", 1e3},        {"kb", 1e3},       {"m", 1e6},
                 {"mb", 1e6},     {"g", 1e9},        {"gb", 1e9},       {"t", 1e12},       {"tb", 1e12},
                 {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0}, {"tib", 1099511627776.0}};
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (strcasecmp(end, units[i].suffix) != 0) continue;
        double b = floor(v * units[i].mult);
        if (b < 1 || b >= 9.2e18) return -1;
        *out = (uint64_t)b;
        return 0;
    }
    return -1;
}

int cli_plan_opt(cli_plan_opts *c, const char *cmd, int code, const char *arg)
{
    mixq_plan_options *o = &c->po;
    switch (code) {
    case CLI_OPT_STRATEGY:
        if (!strcmp(arg, "uniform")) o->strategy = MIXQ_STRATEGY_UNIFORM;
        else if (!strcmp(arg, "sensitivity")) o->strategy = MIXQ_STRATEGY_SENSITIVITY;
        else if (!strcmp(arg, "budget")) o->strategy = MIXQ_STRATEGY_BUDGET;
        else {
            cli_usage_error(cmd, "unknown strategy '%s' (choose uniform, sensitivity or budget)", arg);
            return -1;
        }
        c->strategy_set = 1;
        break;
    case CLI_OPT_TARGET_BPW: {
        char *end;
        errno = 0;
        double v = strtod(arg, &end);
        if (errno || *end || !(v > 0) || v > 64) {
            cli_usage_error(cmd, "--target-bpw takes a number of bits per weight above 0, not '%s'", arg);
            return -1;
        }
        o->target_bpw = v;
        break;
    }
    case CLI_OPT_TARGET_SIZE:
        if (cli_parse_size(arg, &o->target_size) != 0) {
            cli_usage_error(cmd, "--target-size takes a size such as 4000000, 3.5MB or 2GiB, not '%s'", arg);
            return -1;
        }
        break;
    case CLI_OPT_CANDIDATES: o->candidates = arg; break;
    case CLI_OPT_MIN_TYPE: o->min_type = arg; break;
    case CLI_OPT_MAX_TYPE: o->max_type = arg; break;
    case CLI_OPT_OVERRIDE:
        if (!strchr(arg, '=') || arg[0] == '=') {
            cli_usage_error(cmd, "--override takes GLOB=TYPE, not '%s'", arg);
            return -1;
        }
        if (add_rule(c, arg, "") != 0) return -1;
        c->rules[c->n_rules - 1][strlen(arg)] = '\0'; /* the rule is the argument itself */
        break;
    case CLI_OPT_KEEP:
        if (!*arg) {
            cli_usage_error(cmd, "--keep takes a glob");
            return -1;
        }
        if (add_rule(c, arg, "keep") != 0) return -1;
        break;
    case CLI_OPT_WEIGHTS:
        if (!strcmp(arg, "role")) o->weights = MIXQ_WEIGHTS_ROLE;
        else if (!strcmp(arg, "flat")) o->weights = MIXQ_WEIGHTS_FLAT;
        else if (!strcmp(arg, "share")) o->weights = MIXQ_WEIGHTS_SHARE;
        else {
            cli_usage_error(cmd, "--weights takes role, flat or share, not '%s'", arg);
            return -1;
        }
        break;
    case CLI_OPT_SENSITIVITY: o->sensitivity_path = arg; break;
    case CLI_OPT_MEASUREMENT: o->measurement_path = arg; break;
    case CLI_OPT_THRESHOLDS: {
        double t[3];
        char *end;
        const char *p = arg;
        for (int i = 0; i < 3; i++) {
            errno = 0;
            t[i] = strtod(p, &end);
            if (errno || end == p || (i < 2 && *end != ',') || (i == 2 && *end)) {
                cli_usage_error(cmd, "--thresholds takes three numbers LOW,MEDIUM,HIGH, not '%s'", arg);
                return -1;
            }
            p = end + 1;
        }
        memcpy(o->thresholds, t, sizeof t);
        break;
    }
    case CLI_OPT_MEASURE_SAMPLE: {
        unsigned long long v;
        if (!strcmp(arg, "all")) {
            o->measure_sample = 0;
        } else if (cli_parse_uint(arg, (unsigned long long)1 << 62, &v) != 0 || v == 0) {
            cli_usage_error(cmd, "--measure-sample takes a positive number of elements or 'all', not '%s'", arg);
            return -1;
        } else {
            o->measure_sample = v;
        }
        return 1; /* not a planning option by itself */
    }
    case CLI_OPT_THREADS: {
        unsigned long long t;
        if (cli_parse_uint(arg, 1024, &t) != 0 || t == 0) {
            cli_usage_error(cmd, "--threads takes a number from 1 to 1024, not '%s'", arg);
            return -1;
        }
        o->threads = (unsigned)t;
        return 1; /* not a planning option by itself */
    }
    case CLI_OPT_IMATRIX: o->imatrix_path = arg; return 1; /* nor these: convert uses them without planning */
    case CLI_OPT_IMATRIX_WEIGHTING:
        if (!strcmp(arg, "sigma")) o->imatrix_weighting = MIXQ_IMATRIX_SIGMA;
        else if (!strcmp(arg, "plain")) o->imatrix_weighting = MIXQ_IMATRIX_PLAIN;
        else {
            cli_usage_error(cmd, "--imatrix-weighting takes sigma or plain, not '%s'", arg);
            return -1;
        }
        return 1;
    default: return 0;
    }
    c->any = 1;
    return 1;
}

void cli_print_warning(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "mixq: warning: %s\n", message);
}

void cli_plan_opts_finish(cli_plan_opts *c)
{
    if (!c->strategy_set && (c->po.target_bpw > 0 || c->po.target_size > 0)) c->po.strategy = MIXQ_STRATEGY_BUDGET;
}
