/* convert.h - converter internals shared with the planner. */
#ifndef MIXQ_CONVERT_H
#define MIXQ_CONVERT_H

#include <jansson.h>

#include "mixq_tools.h"
#include "reader/st_reader.h"

/* The file-level metadata object mixq_convert writes (FORMAT.md §3.2), without "plan"; NULL if out of memory. */
json_t *mx_convert_metadata(const st_model *m, const mixq_convert_options *o);

#endif
