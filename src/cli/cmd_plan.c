/* cmd_plan.c - `mixq plan IN [options] [-o plan.json]`: which type each tensor would get, without converting. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "plan/plan.h"
#include "plan_opts.h"

static const char usage_head[] =
    "Usage: mixq plan IN [OPTIONS] [-o PLAN.json]\n"
    "\n"
    "Plans a conversion without writing a container: classifies every tensor\n"
    "(role, layer), measures the exact stored size and squared error of each\n"
    "candidate type with the converter's own kernels, and assigns types by the\n"
    "strategy. Prints a table (tensor, role, weights, type, bytes, relative error)\n"
    "and totals: tensors and bytes per type, file size, bits per weight and\n"
    "compression against the source. Apply a saved (or hand-edited) plan with\n"
    "'mixq convert IN --plan PLAN.json -o OUT'.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE     write the plan as JSON ('-' = standard output)\n"
    "  -t, --type TYPE       uniform: the type (default int8); sensitivity: the type\n"
    "                        of an average tensor (default int4); TYPE is one of\n"
    "                        the types below\n"
    "  -g, --group-size N    weights per scale group for every type that allows it\n"
    "                        (or 'row'); default: each type's own\n"
    "      --quantize-1d     1-D tensors (norms, biases) may be quantized too\n"
    "      --explain         also show layer, depth, weight, score and the reason\n"
    "                        for each tensor's type\n"
    "  -j, --threads N       measuring threads, 1 to 1024 (default: one per CPU);\n"
    "                        the plan is the same whatever N is\n"
    "  -f, --force           replace FILE if it exists\n"
    "  -q, --quiet           print only errors (and the plan with -o -)\n"
    "  -h, --help            show this help\n"
    "\n";

static const char usage_types_note[] =
    "--candidates and --override take TYPE or TYPE:GROUP (e.g. int4:64).\n";

static const char usage_tail[] =
    "\n"
    "Exit status: 0 success; 1 malformed input, or a budget below the smallest\n"
    "achievable size; 2 usage error; 3 I/O error, FILE exists or out of memory;\n"
    "130/143 interrupted.\n";

static void print_table(const mixq_plan *p, int explain)
{
    size_t n = mixq_plan_tensor_count(p), w = 6;
    for (size_t i = 0; i < n; i++) {
        mixq_plan_tensor t;
        mixq_plan_tensor_get(p, i, &t);
        size_t l = strlen(cli_safe(t.name));
        if (l > w) w = l;
    }
    if (w > 60) w = 60;
    mixq_plan_summary sum;
    mixq_plan_get_summary(p, &sum);
    int pred = sum.measurement != NULL; /* a measured plan: each tensor's predicted KLD beside its weight error */
    printf("%-*s  %-10s  %10s  %-12s  %12s  %9s", (int)w, "tensor", "role", "weights", "type", "bytes", "rel.err");
    if (pred) printf("  %10s  %10s", "w.err", "pred.kld");
    if (explain) printf("  %5s  %5s  %9s  %7s  %s", "layer", "depth", "weight", "score", "reason");
    putchar('\n');
    cli_by_type bt = {0};
    for (size_t i = 0; i < n; i++) {
        mixq_plan_tensor t;
        mixq_plan_tensor_get(p, i, &t);
        char sp[48], role[32], err[32];
        cli_type_spec(t.qtype, t.group_size, sp, sizeof sp);
        snprintf(role, sizeof role, "%s%s", t.role, t.tied ? "*" : "");
        if (isnan(t.rel_error)) snprintf(err, sizeof err, "-");
        else if (t.rel_error == 0) snprintf(err, sizeof err, "0");
        else snprintf(err, sizeof err, "%.3e", t.rel_error);
        printf("%-*s  %-10s  %10llu  %-12s  %12llu  %9s", (int)w, cli_safe(t.name), role, (unsigned long long)t.n_elements, sp,
               (unsigned long long)t.nbytes, err);
        if (pred) {
            if (isnan(t.predicted_kld)) printf("  %10s  %10s", "-", "-");
            else printf("  %10.3e  %10.3e", t.estimated_error, t.predicted_kld);
        }
        if (explain) {
            char layer[16];
            if (t.layer >= 0) snprintf(layer, sizeof layer, "%d", t.layer);
            else snprintf(layer, sizeof layer, "-");
            printf("  %5s  %5.2f  %9.3g  %7.3g  %s", layer, t.depth, isnan(t.weight) ? 0.0 : t.weight, t.score,
                   cli_safe(t.reason));
        }
        putchar('\n');
        cli_by_type_add(&bt, sp, t.n_elements, t.nbytes);
    }
    cli_by_type_print(&bt);
}

static void print_summary(const mixq_plan *p)
{
    mixq_plan_summary s;
    mixq_plan_get_summary(p, &s);
    char a[32], b[32], c[32];
    printf("\nstrategy %s", cli_safe(s.strategy));
    if (s.target_bpw > 0) printf(", target %.4g bits per weight", s.target_bpw);
    if (s.target_size > 0) printf(", target %llu bytes (%s)", (unsigned long long)s.target_size,
                                  cli_bytes(s.target_size, a, sizeof a));
    printf(", weights %s\n", cli_safe(s.weights));
    printf("total: %zu tensors, %llu weights; source %s, stored %s, file at most %s; %.2fx smaller; "
           "%.4f bits per weight\n",
           s.n_tensors, (unsigned long long)s.n_elements, cli_bytes(s.source_bytes, a, sizeof a),
           cli_bytes(s.tensor_bytes, b, sizeof b), cli_bytes(s.file_bytes, c, sizeof c),
           s.tensor_bytes ? (double)s.source_bytes / (double)s.tensor_bytes : 0.0, s.bits_per_weight);
    printf("estimated squared error %.6g; weighted %.6g", s.estimated_error, s.weighted_error);
    if (s.n_sampled)
        printf(" (%zu tensors measured on about %llu elements each: --measure-sample)", s.n_sampled,
               (unsigned long long)s.measure_sample);
    if (s.solver && s.solver[0]) {
        printf("; solver %s, %s", s.solver, s.optimal ? "optimal" : "not proven optimal");
        if (!s.optimal)
            printf(" (lower bound %.6g, gap %.3g%%)", s.lower_bound,
                   s.weighted_error > 0 ? 100.0 * (s.weighted_error - s.lower_bound) / s.weighted_error : 0.0);
    }
    printf("\n");
    if (s.measurement)
        printf("predicted KLD %.6g (weights measured in %s: each tensor's weight x error)\n", s.predicted_kld,
               cli_safe(s.measurement));
    if (s.target_bpw > 0)
        printf("budget: %llu bytes of tensors (%.4g bits per weight); used %llu (%.2f%% of it)\n",
               (unsigned long long)s.budget_bytes, s.target_bpw, (unsigned long long)s.tensor_bytes,
               s.budget_bytes ? 100.0 * (double)s.tensor_bytes / (double)s.budget_bytes : 0.0);
    else if (s.target_size > 0)
        printf("budget: %llu bytes of file; the plan's file is at most %llu bytes (%.2f%% of it)\n",
               (unsigned long long)s.target_size, (unsigned long long)s.file_bytes,
               100.0 * (double)s.file_bytes / (double)s.target_size);
}

int cmd_plan(int argc, char **argv)
{
    enum { OPT_Q1D = 1000, OPT_EXPLAIN };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"type", required_argument, NULL, 't'},
        {"group-size", required_argument, NULL, 'g'}, {"quantize-1d", no_argument, NULL, OPT_Q1D},
        {"explain", no_argument, NULL, OPT_EXPLAIN}, {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, CLI_PLAN_LONGOPTS,
        {NULL, 0, NULL, 0}};
    cli_plan_opts po;
    cli_plan_opts_init(&po);
    const char *out = NULL;
    int quiet = 0, explain = 0, force = 0, c, rc = EXIT_OK;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:t:g:j:fqh", longopts, NULL)) != -1) {
        int r = cli_plan_opt(&po, "plan", c == 'j' ? CLI_OPT_THREADS : c, optarg);
        if (r < 0) {
            cli_plan_opts_free(&po);
            return EXIT_USAGE;
        }
        if (r > 0) continue;
        switch (c) {
        case 'o': out = optarg; break;
        case 't':
            if (cli_parse_type("plan", optarg, &po.po.type) != 0) {
                cli_plan_opts_free(&po);
                return EXIT_USAGE;
            }
            break;
        case 'g': {
            unsigned long long g;
            if (!strcmp(optarg, "row")) po.po.group_size = MIXQ_GROUP_PER_ROW;
            else if (cli_parse_uint(optarg, 1u << 20, &g) == 0 && g > 0) po.po.group_size = (unsigned)g;
            else {
                cli_plan_opts_free(&po);
                return cli_usage_error("plan", "--group-size takes a positive number or 'row', not '%s'", optarg);
            }
            break;
        }
        case OPT_Q1D: po.po.quantize_1d = 1; break;
        case OPT_EXPLAIN: explain = 1; break;
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case 'h':
            fputs(usage_head, stdout);
            cli_print_types(stdout);
            fputs("\n", stdout);
            fputs(usage_types_note, stdout);
            fputs("\n", stdout);
            fputs(cli_plan_help, stdout);
            fputs(usage_tail, stdout);
            cli_plan_opts_free(&po);
            return EXIT_OK;
        case ':':
            cli_plan_opts_free(&po);
            return cli_usage_error("plan", "option '%s' needs a value", argv[optind - 1]);
        default:
            cli_plan_opts_free(&po);
            return cli_usage_error("plan", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) {
        cli_plan_opts_free(&po);
        return cli_usage_error("plan", "expected exactly one input (IN)");
    }
    cli_plan_opts_finish(&po);
    const char *in = argv[optind];
    int to_stdout = out && !strcmp(out, "-");

    volatile sig_atomic_t *cancel_flag = cli_catch_signals();
    po.po.cancel = cancel_flag;
    po.po.warning = cli_print_warning;
    if (!quiet && isatty(2)) {
        po.po.progress = cli_progress;
        po.po.progress_ctx = (void *)"measuring ";
    }

    mixq_error err;
    mixq_plan *plan = NULL;
    mixq_status s = mixq_plan_create(in, &po.po, &plan, &err);
    if (s == MIXQ_E_CANCELLED) {
        cli_error("plan", "interrupted");
        cli_plan_opts_free(&po);
        return 128 + (int)*cancel_flag;
    }
    if (s != MIXQ_OK) {
        cli_lib_error("plan", &err);
        cli_plan_opts_free(&po);
        return cli_exit_code(s);
    }
    if (!quiet && !to_stdout) {
        print_table(plan, explain);
        print_summary(plan);
    }
    if (to_stdout) {
        char *text = mx_plan_to_json(plan);
        if (!text) {
            cli_error("plan", "out of memory");
            rc = EXIT_SYSTEM;
        } else {
            puts(text);
            free(text);
        }
    } else if (out) {
        s = mixq_plan_save(plan, out, force, &err);
        if (s != MIXQ_OK) {
            cli_lib_error("plan", &err);
            rc = cli_exit_code(s);
        } else if (!quiet) {
            printf("plan written to %s\n", cli_safe(out));
        }
    }
    mixq_plan_free(plan);
    cli_plan_opts_free(&po);
    return rc;
}
