/*
 * header_meta.h - the file-level metadata object of the container header
 * (format/FORMAT.md §3.2): "mixq_version", "source_metadata",
 * "source_files" and "options", in that order.  The converter writes it and
 * the planner bounds the header size with it; "plan" is added by the caller.
 */
#ifndef MIXQ_HEADER_META_H
#define MIXQ_HEADER_META_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "mixq_tools.h"

/*
 * A new metadata object with empty "source_metadata" and "source_files" and
 * the "options" of a conversion to `type` (group_size as the options give it:
 * MIXQ_GROUP_PER_ROW is written as 0; search = not round-to-nearest).
 * NULL if out of memory.
 */
json_t *mxf_header_meta_new(mixq_qtype type, unsigned group_size, bool quantize_1d, bool search);

/* Adds a key of the source's __metadata__ to "source_metadata"; 0, or -1 if out of memory. */
int mxf_header_meta_add_source_metadata(json_t *meta, const char *key, const char *value);

/* Appends {"name": basename(path), "size"} to "source_files"; 0, or -1 if out of memory. */
int mxf_header_meta_add_source_file(json_t *meta, const char *path, uint64_t size);

#endif
