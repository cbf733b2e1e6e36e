/*
 * small_file.h - reading a whole small input file (a plan, a sensitivity
 * file, an index, a text or imatrix input) into memory, safely: the path
 * must name a regular file (a FIFO or device is refused without blocking),
 * and its size is checked against a cap before anything is read.
 */
#ifndef MIXQ_SMALL_FILE_H
#define MIXQ_SMALL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "mixq.h"

/* The caps of docs/ROBUSTNESS.md §1 "file inputs". */
#define MX_CAP_PLAN ((uint64_t)256 << 20)        /* plan files */
#define MX_CAP_SENSITIVITY ((uint64_t)256 << 20) /* sensitivity files */
#define MX_CAP_INDEX ((uint64_t)100000000)       /* model.safetensors.index.json (as a safetensors header) */

/*
 * Reads the regular file at path (at most cap bytes) into a malloc'd buffer
 * with a NUL after its len bytes.  `what` names the kind of file in
 * messages ("plan file").  Errors: MIXQ_E_IO (cannot open, not a regular
 * file, read error, changed while read), MIXQ_E_RANGE (larger than cap),
 * MIXQ_E_NOMEM.
 */
mixq_status mx_read_small_file(const char *path, const char *what, uint64_t cap, char **out, size_t *len,
                               mixq_error *err);

#endif
