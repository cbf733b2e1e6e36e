/*
 * stored_files.h - the model's own files stored in a container (config.json,
 * tokenizer, ...; format/FORMAT.md §3.3, format minor version 1): which files
 * a converter takes along, and the limits a loader enforces.
 */
#ifndef MIXQ_STORED_FILES_H
#define MIXQ_STORED_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Format minor version of a container that has a "files" array. */
#define MXC_FORMAT_MINOR_FILES 1u
/* At most this many stored files. */
#define MXC_FILES_MAX 64u
/* Largest decompressed size of one stored file. */
#define MXC_FILE_MAX_SIZE (64u * 1024u * 1024u)
/* Longest stored file name, in bytes. */
#define MXC_FILE_NAME_MAX 255u

/* The files of a checkpoint directory a converter stores, in this order, when present. */
static const char *const mxf_model_files[] = {
    "config.json",        "generation_config.json",  "tokenizer.json",
    "tokenizer.model",    "tokenizer_config.json",   "special_tokens_map.json",
};
#define MXF_MODEL_FILE_COUNT (sizeof mxf_model_files / sizeof mxf_model_files[0])

/*
 * A stored file name is a plain file name: 1..MXC_FILE_NAME_MAX bytes, no
 * '/', '\\' or control character, not "." or "..".
 */
static inline bool mxf_stored_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > MXC_FILE_NAME_MAX) return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || c == '/' || c == '\\') return false;
    }
    return true;
}

#endif
