/*
 * convert_options.h - defaults and size checks of the options of
 * mixq_convert, mixq_compare and mixq_export (common/options.h).
 */
#ifndef MIXQ_CONVERT_OPTIONS_H
#define MIXQ_CONVERT_OPTIONS_H

#include "mixq_tools.h"

/* The defaults in a whole struct of this library's size (convert.c, compare.c, export.c). */
void mx_convert_options_defaults(mixq_convert_options *opts);
void mx_compare_options_defaults(mixq_compare_options *opts);
void mx_export_options_defaults(mixq_export_options *opts);

/*
 * Fills *local with the defaults, takes the caller's **opts (NULL = every
 * default) over them after checking its struct_size, and points *opts at
 * local.  MIXQ_E_INVALID_ARG for a bad struct_size.
 */
mixq_status mx_convert_options_take(const mixq_convert_options **opts, mixq_convert_options *local,
                                    mixq_error *err);
mixq_status mx_compare_options_take(const mixq_compare_options **opts, mixq_compare_options *local,
                                    mixq_error *err);
mixq_status mx_export_options_take(const mixq_export_options **opts, mixq_export_options *local,
                                   mixq_error *err);

#endif
