/* main.c - the mixq command line: dispatches to the subcommands. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

static const char usage[] =
    "mixq - mixed-precision quantization of safetensors checkpoints\n"
    "\n"
    "Usage: mixq COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  convert   convert a safetensors checkpoint to a mixq container (.mxq)\n"
    "  dump      list the tensors of a container with their types and sizes\n"
    "  verify    check every checksum of a container\n"
    "  compare   measure the error of a container against its source checkpoint\n"
    "  export    write a dequantized safetensors checkpoint from a container\n"
    "  plan      show which type each tensor would get (uniform, sensitivity, budget)\n"
    "  eval      perplexity of a model, and KL divergence against a base model\n"
    "  calibrate the importance matrix of a model (llama.cpp imatrix, .gguf or .dat)\n"
    "  measure   each tensor's effect on the output (KLD), for the planner's --measurement\n"
    "  run       continue a prompt with a model (greedy or seeded sampling)\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help\n"
    "  -V, --version  show the version of mixq and of its container format\n"
    "\n"
    "Exit status: 0 success; 1 malformed or corrupt input, or verification failed;\n"
    "2 usage error; 3 I/O error, existing output or out of memory;\n"
    "130 or 143 interrupted by SIGINT or SIGTERM (no output is left behind).\n"
    "\n"
    "Run 'mixq COMMAND --help' for the options of a command.\n";

static int dispatch(int argc, char **argv);

/* Runs the command, then makes sure what it printed reached standard output. */
int main(int argc, char **argv)
{
    /* With a file-size limit (ulimit -f), writes must fail with EFBIG and be
       reported, not kill the process and leave a temporary file behind. */
    signal(SIGXFSZ, SIG_IGN);
    int rc = dispatch(argc, argv);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mixq: cannot write the output to standard output: %s\n", strerror(errno));
        if (rc == EXIT_OK) rc = EXIT_SYSTEM;
    }
    return rc;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (cli_is_help(cmd)) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("mixq %s (container format %d)\n", mixq_version_string(), MIXQ_FORMAT_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "convert")) return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(cmd, "dump")) return cmd_dump(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify")) return cmd_verify(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc - 1, argv + 1);
    if (!strcmp(cmd, "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan")) return cmd_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "calibrate")) return cmd_calibrate(argc - 1, argv + 1);
    if (!strcmp(cmd, "measure")) return cmd_measure(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
    fprintf(stderr, "mixq: unknown command '%s'\nTry 'mixq --help'.\n", cmd);
    return EXIT_USAGE;
}
