/* cmd_export.c - `mixq export FILE -o OUT.safetensors`: container -> dequantized safetensors. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "kernels/qtype.h"

static const char usage[] =
    "Usage: mixq export FILE -o OUT [--dtype f32|f16|bf16] [--force] [--quiet]\n"
    "\n"
    "Writes a safetensors checkpoint from a container: every tensor dequantized,\n"
    "with its original name and shape and the source's __metadata__. Floating\n"
    "tensors are written in DTYPE; integer and bool tensors keep their source\n"
    "dtype and bytes. The container's checksums are checked first. The output is\n"
    "written to a temporary file and renamed into place, so it appears whole or\n"
    "not at all.\n"
    "\n"
    "Options:\n"
    "  -o, --output OUT    the safetensors file to write (required)\n"
    "  -d, --dtype DTYPE   f32 (default), f16 or bf16\n"
    "  -f, --force         replace OUT if it exists\n"
    "  -q, --quiet         print nothing on success\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed or corrupt container, or a value DTYPE\n"
    "cannot hold; 2 usage error; 3 I/O error, OUT exists (without --force) or out\n"
    "of memory; 130/143 interrupted.\n";

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"dtype", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    mixq_export_options opts;
    mixq_export_options_init(&opts);
    const char *out = NULL;
    int quiet = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:d:fqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'd':
            if (mixq_qtype_from_name(optarg, &opts.dtype) != MIXQ_OK ||
                qtype_data_dtype(qtype_get(opts.dtype), ST_DTYPE_COUNT) == ST_DTYPE_COUNT) /* not f32/f16/bf16 */
                return cli_usage_error("export", "unknown dtype '%s' (choose f32, f16 or bf16)", optarg);
            break;
        case 'f': opts.force = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        case ':': return cli_usage_error("export", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("export", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cli_usage_error("export", "expected exactly one container FILE");
    if (!out) return cli_usage_error("export", "the output is required: -o OUT");
    const char *in = argv[optind];

    volatile sig_atomic_t *cancel_flag = cli_catch_signals();
    opts.cancel = cancel_flag;
    if (!quiet && isatty(2)) opts.progress = cli_progress;

    mixq_error err;
    mixq_status s = mixq_export(in, out, &opts, &err);
    if (s == MIXQ_E_CANCELLED) {
        cli_error("export", "interrupted; no output was written");
        return 128 + (int)*cancel_flag;
    }
    if (s != MIXQ_OK) {
        cli_lib_error("export", &err);
        return cli_exit_code(s);
    }
    if (!quiet) {
        struct stat st;
        char b[32];
        if (stat(out, &st) == 0)
            printf("%s: safetensors, %s floating tensors, %s from %s\n", cli_safe(out), mixq_qtype_name(opts.dtype),
                   cli_bytes((uint64_t)st.st_size, b, sizeof b), in);
        else printf("%s: written\n", cli_safe(out));
    }
    return EXIT_OK;
}
