/* plan_options.h - defaults and size check of the options of mixq_plan_create (common/options.h). */
#ifndef MIXQ_PLAN_OPTIONS_H
#define MIXQ_PLAN_OPTIONS_H

#include "mixq_tools.h"

/* The defaults in a whole struct of this library's size (plan.c). */
void mx_plan_options_defaults(mixq_plan_options *opts);

/*
 * Fills *local with the defaults, takes the caller's **opts (NULL = every
 * default) over them after checking its struct_size, and points *opts at
 * local.  MIXQ_E_INVALID_ARG for a bad struct_size.
 */
mixq_status mx_plan_options_take(const mixq_plan_options **opts, mixq_plan_options *local, mixq_error *err);

#endif
