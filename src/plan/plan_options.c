/* plan_options.c - the size-checked options of mixq_plan_create. */
#include "plan/plan_options.h"

#include "common/options.h"

/* The end of the first-version fields: the smallest struct_size accepted. */
#define PLAN_OPTIONS_V1 MX_FIELD_END(mixq_plan_options, threads)

void mixq_plan_options_init_sized(mixq_plan_options *opts, size_t struct_size)
{
    mixq_plan_options d;
    mx_plan_options_defaults(&d);
    mx_options_init_sized(opts, struct_size, &d, sizeof d);
}

mixq_status mx_plan_options_take(const mixq_plan_options **opts, mixq_plan_options *local, mixq_error *err)
{
    mx_plan_options_defaults(local);
    mixq_status s = mx_options_take(local, sizeof *local, *opts, PLAN_OPTIONS_V1, "plan_options", err);
    *opts = local;
    return s;
}
