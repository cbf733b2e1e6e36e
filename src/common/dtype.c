/* dtype.c - the safetensors element type table. */
#include <string.h>

#include "common/dtype.h"

const st_dtype_info st_dtypes[ST_DTYPE_COUNT] = {
    [ST_BOOL] = {"BOOL", 1, false},
    [ST_U8] = {"U8", 1, false},
    [ST_I8] = {"I8", 1, false},
    [ST_U16] = {"U16", 2, false},
    [ST_I16] = {"I16", 2, false},
    [ST_U32] = {"U32", 4, false},
    [ST_I32] = {"I32", 4, false},
    [ST_U64] = {"U64", 8, false},
    [ST_I64] = {"I64", 8, false},
    [ST_F8_E4M3] = {"F8_E4M3", 1, true},
    [ST_F8_E5M2] = {"F8_E5M2", 1, true},
    [ST_F16] = {"F16", 2, true},
    [ST_BF16] = {"BF16", 2, true},
    [ST_F32] = {"F32", 4, true},
    [ST_F64] = {"F64", 8, true},
};

bool st_dtype_parse(const char *name, st_dtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (strcmp(st_dtypes[i].name, name) == 0) {
            *out = (st_dtype)i;
            return true;
        }
    }
    return false;
}
