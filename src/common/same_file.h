/*
 * same_file.h - is an output path one of the inputs?  Compared by device and
 * inode (after symlinks), so every spelling of a file (./, .., a symlink, a
 * hard link) is recognised.
 */
#ifndef MIXQ_SAME_FILE_H
#define MIXQ_SAME_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

/* A file's identity: st_dev and st_ino. */
typedef struct mx_file_key {
    uint64_t dev, ino;
} mx_file_key;

/* Fills *k from stat(path); 0 on success, -1 if path cannot be stat'ed. */
int mx_file_key_of(const char *path, mx_file_key *k);

/*
 * MIXQ_E_INVALID_ARG ("OUT: the output is the input file IN; choose another
 * output path") if out_path exists and is the same file as one of the n
 * input paths (NULL entries are skipped) or of the nkeys keys (the key's
 * name is keys_name); MIXQ_OK otherwise.
 */
mixq_status mx_check_output_not_input(const char *out_path, const char *const *inputs, size_t n,
                                      const mx_file_key *keys, size_t nkeys, const char *keys_name,
                                      mixq_error *err);

#endif
