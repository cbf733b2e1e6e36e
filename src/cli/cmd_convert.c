/* cmd_convert.c - `mixq convert IN -o OUT`: safetensors checkpoint -> container. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "plan_opts.h"

static const char usage[] =
    "Usage: mixq convert IN -o OUT [OPTIONS]\n"
    "\n"
    "Converts a safetensors checkpoint to a mixq container. IN is a .safetensors\n"
    "file, a directory holding model.safetensors or model.safetensors.index.json,\n"
    "or such an index file. Tensors of 2 or more dimensions with a floating dtype\n"
    "are stored as TYPE; 1-D and scalar tensors and non-float tensors keep their\n"
    "source bytes. The output is written to a temporary file and renamed into\n"
    "place, so it appears whole or not at all; the input is never modified.\n"
    "\n"
    "Options:\n"
    "  -o, --output OUT      the container to write (required)\n"
    "  -t, --type TYPE       one of the types below (default int8)\n"
    "  -g, --group-size N    weights per scale group: a power of two in the type's\n"
    "                        range below, or 'row' (fp8 types: one scale per\n"
    "                        tensor); default: the type's own\n"
    "      --rtn             plain min/max scales (round to nearest) instead of\n"
    "                        the default error-minimizing scale search\n"
    "      --quantize-1d     also convert 1-D tensors (norms, biases) to TYPE\n"
    "      --plan FILE       apply a plan saved by 'mixq plan -o FILE' (or edited by\n"
    "                        hand) exactly; or plan here with the options below\n"
    "  -j, --threads N       worker threads, 1 to 1024 (default: one per CPU); the\n"
    "                        output is byte-identical whatever N is\n"
    "  -f, --force           replace OUT if it exists\n"
    "  -q, --quiet           print nothing on success\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed input or values TYPE cannot hold (NaN,\n"
    "Inf, |x| > 65504 in a tensor to quantize); 2 usage error; 3 I/O error,\n"
    "OUT exists (without --force) or out of memory; 130/143 interrupted.\n";

/* Prints the one-line summary of a written container. */
static void summary(const char *path)
{
    mixq_error err;
    mixq_file *f = mixq_open(path, 0, &err);
    if (!f) {
        printf("%s: written\n", cli_safe(path));
        return;
    }
    uint64_t src = 0, stored = 0, elems = 0;
    for (size_t i = 0; i < mixq_tensor_count(f); i++) {
        mixq_tensor_info info;
        mixq_tensor_get_info(mixq_tensor_at(f, i), &info);
        src += info.n_elements * cli_dtype_size(info.source_dtype);
        stored += info.nbytes;
        elems += info.n_elements;
    }
    char a[32], b[32];
    printf("%s: %zu tensors, %s from %s of tensor data (%.2fx smaller), %.3f bits per weight\n", cli_safe(path),
           mixq_tensor_count(f), cli_bytes(mixq_file_size(f), a, sizeof a), cli_bytes(src, b, sizeof b),
           stored ? (double)src / (double)stored : 0.0, elems ? (double)stored * 8.0 / (double)elems : 0.0);
    mixq_close(f);
}

static int run_convert(int argc, char **argv, cli_plan_opts *po, mixq_plan **plan);

enum { OPT_Q1D = 1000, OPT_RTN, OPT_PLAN };

/* The name of an option that a saved plan decides instead (so --plan rejects it), or NULL. */
static const char *fixed_by_saved_plan(int code)
{
    switch (code) {
    case 't': return "--type";
    case 'g': return "--group-size";
    case OPT_Q1D: return "--quantize-1d";
    case OPT_RTN: return "--rtn";
    case CLI_OPT_MEASURE_SAMPLE: return "--measure-sample";
    default: return NULL;
    }
}

int cmd_convert(int argc, char **argv)
{
    cli_plan_opts po;
    mixq_plan *plan = NULL;
    cli_plan_opts_init(&po);
    int rc = run_convert(argc, argv, &po, &plan);
    mixq_plan_free(plan);
    cli_plan_opts_free(&po);
    return rc;
}

static int run_convert(int argc, char **argv, cli_plan_opts *po, mixq_plan **plan)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"type", required_argument, NULL, 't'},
        {"group-size", required_argument, NULL, 'g'}, {"quantize-1d", no_argument, NULL, OPT_Q1D},
        {"rtn", no_argument, NULL, OPT_RTN}, {"plan", required_argument, NULL, OPT_PLAN},
        {"force", no_argument, NULL, 'f'}, {"quiet", no_argument, NULL, 'q'},
        {"threads", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'}, CLI_PLAN_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *plan_path = NULL;
    const char *fixed_by_plan = NULL; /* the first option given that a saved plan decides instead */
    int type_given = 0;
    mixq_convert_options opts;
    mixq_convert_options_init(&opts);
    const char *out = NULL;
    int quiet = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:t:g:j:fqh", longopts, NULL)) != -1) {
        if (!fixed_by_plan) fixed_by_plan = fixed_by_saved_plan(c);
        int r = cli_plan_opt(po, "convert", c, optarg);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        switch (c) {
        case 'o': out = optarg; break;
        case 't':
            if (cli_parse_type("convert", optarg, &opts.type) != 0) return EXIT_USAGE;
            type_given = 1;
            break;
        case OPT_PLAN: plan_path = optarg; break;
        case 'g': {
            unsigned long long g;
            if (!strcmp(optarg, "row")) opts.group_size = MIXQ_GROUP_PER_ROW;
            else if (cli_parse_uint(optarg, 1u << 20, &g) == 0 && g > 0) opts.group_size = (unsigned)g;
            else return cli_usage_error("convert", "--group-size takes a positive number or 'row', not '%s'", optarg);
            break;
        }
        case OPT_Q1D: opts.quantize_1d = 1; break;
        case OPT_RTN: opts.rtn = 1; break;
        case 'j': {
            unsigned long long n;
            if (cli_parse_uint(optarg, 1024, &n) != 0 || n == 0)
                return cli_usage_error("convert", "--threads takes a number from 1 to 1024, not '%s'", optarg);
            opts.threads = (unsigned)n;
            break;
        }
        case 'f': opts.force = 1; break;
        case 'q': quiet = 1; break;
        case 'h':
            fputs(usage, stdout);
            fputs("\n", stdout);
            cli_print_types(stdout);
            fputs("\n", stdout);
            fputs(cli_plan_help, stdout);
            return EXIT_OK;
        case ':': return cli_usage_error("convert", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("convert", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cli_usage_error("convert", "expected exactly one input (IN)");
    if (!out) return cli_usage_error("convert", "the output is required: -o OUT");
    const char *in = argv[optind];
    cli_plan_opts_finish(po);
    if (plan_path && po->any)
        return cli_usage_error("convert", "--plan applies a saved plan; planning options cannot be combined with it");
    if (plan_path && fixed_by_plan)
        return cli_usage_error("convert", "--plan applies a saved plan, which fixes each tensor's type, group size "
                               "and quantizer; %s cannot be combined with it", fixed_by_plan);
    mixq_error err;
    if (plan_path) {
        mixq_status ps = mixq_plan_load(plan_path, plan, &err);
        if (ps != MIXQ_OK) {
            cli_lib_error("convert", &err);
            return cli_exit_code(ps);
        }
        opts.plan = *plan;
    } else if (po->any) {
        if (type_given) po->po.type = opts.type;
        po->po.group_size = opts.group_size;
        po->po.quantize_1d = opts.quantize_1d;
        if (!quiet && isatty(2)) {
            po->po.progress = cli_progress;
            po->po.progress_ctx = (void *)"measuring ";
        }
        opts.plan_options = &po->po;
    }

    opts.imatrix_path = po->po.imatrix_path;
    opts.imatrix_weighting = po->po.imatrix_weighting;
    opts.warning = cli_print_warning;

    volatile sig_atomic_t *cancel_flag = cli_catch_signals();
    opts.cancel = cancel_flag;
    if (!quiet && isatty(2)) opts.progress = cli_progress;

    mixq_status s = mixq_convert(in, out, &opts, &err);
    if (s == MIXQ_E_CANCELLED) {
        cli_error("convert", "interrupted; no output was written");
        return 128 + (int)*cancel_flag;
    }
    if (s != MIXQ_OK) {
        cli_lib_error("convert", &err);
        return cli_exit_code(s);
    }
    if (!quiet) summary(out);
    return EXIT_OK;
}
