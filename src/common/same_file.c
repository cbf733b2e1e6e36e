/* same_file.c - refusing an output that is one of the inputs, whatever its spelling. */
#include <sys/stat.h>

#include "common/error.h"
#include "common/same_file.h"

int mx_file_key_of(const char *path, mx_file_key *k)
{
    struct stat st;
    if (!path || stat(path, &st) != 0) return -1;
    k->dev = (uint64_t)st.st_dev;
    k->ino = (uint64_t)st.st_ino;
    return 0;
}

mixq_status mx_check_output_not_input(const char *out_path, const char *const *inputs, size_t n,
                                      const mx_file_key *keys, size_t nkeys, const char *keys_name,
                                      mixq_error *err)
{
    mx_file_key o, k;
    if (mx_file_key_of(out_path, &o) != 0) return MIXQ_OK; /* does not exist (yet): cannot be an input */
    char ob[200], ib[200];
    for (size_t i = 0; i < n; i++)
        if (inputs[i] && mx_file_key_of(inputs[i], &k) == 0 && k.dev == o.dev && k.ino == o.ino)
            return mx_err(err, MIXQ_E_INVALID_ARG, "%s: the output is the input file %s; choose another output path",
                          mx_printable(ob, sizeof ob, out_path, 0), mx_printable(ib, sizeof ib, inputs[i], 0));
    for (size_t i = 0; i < nkeys; i++)
        if (keys[i].dev == o.dev && keys[i].ino == o.ino)
            return mx_err(err, MIXQ_E_INVALID_ARG, "%s: the output is the input file %s; choose another output path",
                          mx_printable(ob, sizeof ob, out_path, 0), keys_name ? keys_name : "(an input)");
    return MIXQ_OK;
}
