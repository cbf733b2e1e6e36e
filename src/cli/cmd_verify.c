/* cmd_verify.c - `mixq verify FILE`: checks every checksum and padding byte. */
#include <getopt.h>
#include <stdio.h>

#include "cli_util.h"
#include "commands.h"

static const char usage[] =
    "Usage: mixq verify FILE\n"
    "\n"
    "Checks a container: preamble and header checksums, every tensor's xxh3\n"
    "checksum and that all padding is zero.\n"
    "\n"
    "Exit status: 0 intact; 1 corrupt or malformed (the first bad region is named);\n"
    "2 usage error; 3 the file cannot be read.\n";

int cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        return cli_usage_error("verify", "unknown option");
    }
    if (argc - optind != 1) return cli_usage_error("verify", "expected exactly one FILE");
    const char *path = argv[optind];
    mixq_error err;
    mixq_file *f = mixq_open(path, 0, &err);
    if (!f) {
        cli_lib_error("verify", &err);
        return cli_exit_code(err.code);
    }
    mixq_status s = mixq_verify(f, &err);
    if (s != MIXQ_OK) {
        cli_lib_error("verify", &err);
        mixq_close(f);
        return cli_exit_code(s);
    }
    char b[32];
    size_t nf = mixq_file_count(f);
    if (nf) /* the stored files were decompressed and checked too */
        printf("%s: OK (%zu tensors, %zu stored files, %s checked)\n", cli_safe(path), mixq_tensor_count(f), nf,
               cli_bytes(mixq_file_size(f), b, sizeof b));
    else
        printf("%s: OK (%zu tensors, %s checked)\n", cli_safe(path), mixq_tensor_count(f), cli_bytes(mixq_file_size(f), b, sizeof b));
    mixq_close(f);
    return EXIT_OK;
}
