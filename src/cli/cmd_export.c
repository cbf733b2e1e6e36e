/*
 * cmd_export.c - `mixq export FILE -o OUT.safetensors | --hf DIR | --gguf OUT.gguf`:
 * container -> dequantized safetensors, a Hugging Face directory, or a llama.cpp GGUF.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "kernels/qtype.h"
#include "plan_opts.h"

static const char usage[] =
    "Usage: mixq export FILE -o OUT [--dtype f32|f16|bf16] [--force] [--quiet]\n"
    "       mixq export FILE --hf DIR [--dtype bf16|f16|f32] [--shard-size SIZE] [--force] [--quiet]\n"
    "       mixq export FILE --gguf OUT.gguf [--requantize q8_0|f16|f32] [--name NAME] [--force]\n"
    "                   [--quiet]\n"
    "\n"
    "Writes a safetensors checkpoint from a container: every tensor dequantized,\n"
    "with its original name and shape and the source's __metadata__. Floating\n"
    "tensors are written in DTYPE; integer and bool tensors keep their source\n"
    "dtype and bytes. The container's checksums are checked first. The output is\n"
    "written to a temporary file and renamed into place, so it appears whole or\n"
    "not at all.\n"
    "\n"
    "With --hf DIR: a Hugging Face model directory that transformers opens as it\n"
    "is: shards model-0000K-of-0000N.safetensors (DTYPE bf16 by default) with\n"
    "model.safetensors.index.json, and the model files stored in the container\n"
    "(config.json, tokenizer, ...). Built in a temporary directory beside DIR and\n"
    "renamed into place: nothing is left behind on failure or interruption.\n"
    "\n"
    "With --gguf OUT.gguf: a llama.cpp GGUF (version 3) of a LLaMA-family model,\n"
    "with the architecture keys of the stored config.json and the vocabulary of\n"
    "the stored tokenizer.model or tokenizer.json. Tensors of the types that\n"
    "llama.cpp holds exactly (int8:32 Q8_0, int4s:32 Q4_0, int4:32 Q4_1,\n"
    "int4_dq:32 Q4_K, int6_dq Q6_K, int3_dq Q3_K, int2_dq Q2_K, f16, bf16, f32;\n"
    "1-D tensors as F32) are transcoded bit for bit; any other tensor is an error\n"
    "listing them, unless --requantize names a llama.cpp type for them. Plan\n"
    "with --candidates gguf to get only exact types.\n"
    "\n"
    "Options:\n"
    "  -o, --output OUT    the safetensors file to write\n"
    "      --hf DIR        write a Hugging Face directory instead\n"
    "      --gguf OUT      write a llama.cpp GGUF instead\n"
    "      --requantize T  with --gguf: store tensors without an exact llama.cpp\n"
    "                      type as T: q8_0, f16 or f32\n"
    "      --name NAME     with --gguf: general.name (default: FILE's base name)\n"
    "  -d, --dtype DTYPE   f32 (default; bf16 with --hf), f16 or bf16\n"
    "      --shard-size SIZE  with --hf: tensor bytes per shard at most, e.g. 2GB,\n"
    "                      500MiB (default 5GB); a larger tensor gets its own shard\n"
    "  -f, --force         replace OUT if it exists (with --hf: a directory holding\n"
    "                      only files an export writes)\n"
    "  -q, --quiet         print nothing on success\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed or corrupt container, or a value DTYPE\n"
    "cannot hold; 2 usage error; 3 I/O error, OUT exists (without --force) or out\n"
    "of memory; 130/143 interrupted.\n";

enum { OPT_HF = 256, OPT_SHARD_SIZE, OPT_GGUF, OPT_REQUANTIZE, OPT_NAME };

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"dtype", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {"hf", required_argument, NULL, OPT_HF},
        {"shard-size", required_argument, NULL, OPT_SHARD_SIZE}, {"gguf", required_argument, NULL, OPT_GGUF},
        {"requantize", required_argument, NULL, OPT_REQUANTIZE}, {"name", required_argument, NULL, OPT_NAME},
        {NULL, 0, NULL, 0}};
    mixq_export_options opts;
    mixq_export_options_init(&opts);
    mixq_export_hf_options hopts;
    mixq_export_hf_options_init(&hopts);
    mixq_export_gguf_options gopts;
    mixq_export_gguf_options_init(&gopts);
    const char *out = NULL, *hf = NULL, *gguf = NULL;
    int gguf_only = 0;
    int quiet = 0, c, dtype_set = 0, shard_set = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:d:fqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case OPT_HF: hf = optarg; break;
        case OPT_GGUF: gguf = optarg; break;
        case OPT_NAME:
            gopts.name = optarg;
            gguf_only = 1;
            break;
        case OPT_REQUANTIZE:
            if (!strcmp(optarg, "q8_0") || !strcmp(optarg, "Q8_0")) gopts.requantize = MIXQ_GGUF_TO_Q8_0;
            else if (!strcmp(optarg, "f16") || !strcmp(optarg, "F16")) gopts.requantize = MIXQ_GGUF_TO_F16;
            else if (!strcmp(optarg, "f32") || !strcmp(optarg, "F32")) gopts.requantize = MIXQ_GGUF_TO_F32;
            else return cli_usage_error("export", "unknown --requantize type '%s' (choose q8_0, f16 or f32)", optarg);
            gguf_only = 1;
            break;
        case OPT_SHARD_SIZE:
            if (cli_parse_size(optarg, &hopts.shard_size) != 0)
                return cli_usage_error("export", "bad --shard-size '%s' (a byte count such as 2GB or 500MiB)", optarg);
            shard_set = 1;
            break;
        case 'd':
            if (mixq_qtype_from_name(optarg, &opts.dtype) != MIXQ_OK ||
                qtype_data_dtype(qtype_get(opts.dtype), ST_DTYPE_COUNT) == ST_DTYPE_COUNT) /* not f32/f16/bf16 */
                return cli_usage_error("export", "unknown dtype '%s' (choose f32, f16 or bf16)", optarg);
            dtype_set = 1;
            break;
        case 'f': opts.force = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        case ':': return cli_usage_error("export", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("export", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cli_usage_error("export", "expected exactly one container FILE");
    if (!!out + !!hf + !!gguf != 1)
        return cli_usage_error("export", "give exactly one output: -o OUT, --hf DIR or --gguf OUT.gguf");
    if (shard_set && !hf) return cli_usage_error("export", "--shard-size applies to --hf only");
    if (gguf_only && !gguf) return cli_usage_error("export", "--requantize and --name apply to --gguf only");
    if (dtype_set && gguf) return cli_usage_error("export", "--dtype does not apply to --gguf (see --requantize)");
    const char *in = argv[optind];

    volatile sig_atomic_t *cancel_flag = cli_catch_signals();
    mixq_error err;
    mixq_status s;
    if (gguf) {
        gopts.force = opts.force;
        gopts.cancel = cancel_flag;
        if (!quiet && isatty(2)) gopts.progress = cli_progress;
        s = mixq_export_gguf(in, gguf, &gopts, &err);
    } else if (hf) {
        if (dtype_set) hopts.dtype = opts.dtype;
        hopts.force = opts.force;
        hopts.cancel = cancel_flag;
        if (!quiet && isatty(2)) hopts.progress = cli_progress;
        s = mixq_export_hf(in, hf, &hopts, &err);
    } else {
        opts.cancel = cancel_flag;
        if (!quiet && isatty(2)) opts.progress = cli_progress;
        s = mixq_export(in, out, &opts, &err);
    }
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
        if (gguf && stat(gguf, &st) == 0)
            printf("%s: GGUF, %s from %s\n", cli_safe(gguf), cli_bytes((uint64_t)st.st_size, b, sizeof b), cli_safe(in));
        else if (hf)
            printf("%s: Hugging Face directory, %s tensors, from %s\n", cli_safe(hf), mixq_qtype_name(hopts.dtype),
                   cli_safe(in));
        else if (stat(out, &st) == 0)
            printf("%s: safetensors, %s floating tensors, %s from %s\n", cli_safe(out), mixq_qtype_name(opts.dtype),
                   cli_bytes((uint64_t)st.st_size, b, sizeof b), cli_safe(in));
        else printf("%s: written\n", cli_safe(out));
    }
    return EXIT_OK;
}
