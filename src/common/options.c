/* options.c - the size-checked option structs of mixq_tools.h (see options.h). */
#include "common/options.h"

#include <string.h>

#include "common/error.h"

mixq_status mx_options_take(void *dst, size_t lib_size, const void *src, size_t min_size, const char *what,
                            mixq_error *err)
{
    memcpy(dst, &lib_size, sizeof lib_size);
    if (!src) return MIXQ_OK;
    size_t size;
    memcpy(&size, src, sizeof size);
    if (size < min_size)
        return mx_err(err, MIXQ_E_INVALID_ARG,
                      "%s.struct_size is %zu, below the %zu bytes of its first version: fill the struct with "
                      "mixq_%s_init",
                      what, size, min_size, what);
    if (size > lib_size)
        return mx_err(err, MIXQ_E_INVALID_ARG,
                      "%s.struct_size is %zu, larger than the %zu bytes this library knows: the program was "
                      "built against a newer mixq_tools.h than this libmixq",
                      what, size, lib_size);
    memcpy((char *)dst + sizeof size, (const char *)src + sizeof size, size - sizeof size);
    return MIXQ_OK;
}

void mx_options_init_sized(void *dst, size_t struct_size, void *defaults, size_t lib_size)
{
    if (!dst || struct_size < sizeof(size_t)) return;
    memcpy(defaults, &struct_size, sizeof struct_size);
    memcpy(dst, defaults, struct_size < lib_size ? struct_size : lib_size);
    if (struct_size > lib_size) memset((char *)dst + lib_size, 0, struct_size - lib_size);
}
