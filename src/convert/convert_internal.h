/* convert_internal.h - converter steps that tests reach directly. */
#ifndef MIXQ_CONVERT_INTERNAL_H
#define MIXQ_CONVERT_INTERNAL_H

#include "mixq_tools.h"
#include "reader/st_reader.h"

/*
 * MIXQ_E_RANGE (naming the checkpoint and the bound) if the container header
 * of m would exceed the format's limit: a lower bound from the tensor names
 * alone, checked before anything is converted.
 */
mixq_status mx_convert_check_header_limit(const st_model *m, const mixq_convert_options *o, mixq_error *err);

#endif
