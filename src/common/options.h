/*
 * options.h - the size-checked option structs of mixq_tools.h.
 *
 * Each public options struct begins with size_t struct_size, the size of the
 * struct its caller was compiled with.  The library fills its own full-size
 * copy with the defaults, then takes the first struct_size bytes of the
 * caller's struct over them: fields the caller's (older) struct lacks keep
 * their defaults.  Fields are only ever appended, each starting at or after
 * the previous version's sizeof, so that an older struct's tail padding never
 * covers a newer field.
 */
#ifndef MIXQ_OPTIONS_H
#define MIXQ_OPTIONS_H

#include <stddef.h>

#include "mixq_tools.h"

/* Offset just past a field: the smallest struct_size that holds it. */
#define MX_FIELD_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/*
 * Takes a caller's options (src, NULL = every default) over dst, which holds
 * the defaults in a struct of lib_size bytes.  min_size is the end of the
 * fields of the struct's first version; what is its name in messages
 * ("convert_options").  A struct_size below min_size or above lib_size is
 * MIXQ_E_INVALID_ARG.  On success dst->struct_size is lib_size.
 */
mixq_status mx_options_take(void *dst, size_t lib_size, const void *src, size_t min_size, const char *what,
                            mixq_error *err);

/*
 * The *_options_init_sized half: fills the first struct_size bytes of a
 * caller's struct (dst) from defaults (lib_size bytes) and sets its
 * struct_size; bytes beyond lib_size are zeroed.  A struct_size too small to
 * hold the size field leaves dst untouched.
 */
void mx_options_init_sized(void *dst, size_t struct_size, void *defaults, size_t lib_size);

#endif /* MIXQ_OPTIONS_H */
