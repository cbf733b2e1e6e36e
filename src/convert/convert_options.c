/* convert_options.c - the size-checked options of mixq_convert, mixq_compare and mixq_export. */
#include "convert/convert_options.h"

#include "common/options.h"

/* The end of each struct's first-version fields: the smallest struct_size accepted. */
#define CONVERT_OPTIONS_V1 MX_FIELD_END(mixq_convert_options, threads)
#define COMPARE_OPTIONS_V1 MX_FIELD_END(mixq_compare_options, progress_ctx)
#define EXPORT_OPTIONS_V1 MX_FIELD_END(mixq_export_options, progress_ctx)

void mixq_convert_options_init_sized(mixq_convert_options *opts, size_t struct_size)
{
    mixq_convert_options d;
    mx_convert_options_defaults(&d);
    mx_options_init_sized(opts, struct_size, &d, sizeof d);
}

void mixq_compare_options_init_sized(mixq_compare_options *opts, size_t struct_size)
{
    mixq_compare_options d;
    mx_compare_options_defaults(&d);
    mx_options_init_sized(opts, struct_size, &d, sizeof d);
}

void mixq_export_options_init_sized(mixq_export_options *opts, size_t struct_size)
{
    mixq_export_options d;
    mx_export_options_defaults(&d);
    mx_options_init_sized(opts, struct_size, &d, sizeof d);
}

mixq_status mx_convert_options_take(const mixq_convert_options **opts, mixq_convert_options *local,
                                    mixq_error *err)
{
    mx_convert_options_defaults(local);
    mixq_status s = mx_options_take(local, sizeof *local, *opts, CONVERT_OPTIONS_V1, "convert_options", err);
    *opts = local;
    return s;
}

mixq_status mx_compare_options_take(const mixq_compare_options **opts, mixq_compare_options *local,
                                    mixq_error *err)
{
    mx_compare_options_defaults(local);
    mixq_status s = mx_options_take(local, sizeof *local, *opts, COMPARE_OPTIONS_V1, "compare_options", err);
    *opts = local;
    return s;
}

mixq_status mx_export_options_take(const mixq_export_options **opts, mixq_export_options *local,
                                   mixq_error *err)
{
    mx_export_options_defaults(local);
    mixq_status s = mx_options_take(local, sizeof *local, *opts, EXPORT_OPTIONS_V1, "export_options", err);
    *opts = local;
    return s;
}
