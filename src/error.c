/* error.c - mixq_error filling, status names and the library version. */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"
#include "mixq_config.h"

mixq_status mx_err(mixq_error *err, mixq_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void mx_err_clear(mixq_error *err)
{
    if (err) {
        err->code = MIXQ_OK;
        err->message[0] = '\0';
    }
}

const char *mixq_status_name(mixq_status status)
{
    static const char *const names[] = {
        [MIXQ_OK] = "ok",
        [MIXQ_E_INVALID_ARG] = "invalid argument",
        [MIXQ_E_IO] = "i/o error",
        [MIXQ_E_NOMEM] = "out of memory",
        [MIXQ_E_FORMAT] = "malformed file",
        [MIXQ_E_UNSUPPORTED] = "unsupported",
        [MIXQ_E_CHECKSUM] = "checksum mismatch",
        [MIXQ_E_NOT_FOUND] = "not found",
        [MIXQ_E_RANGE] = "out of range",
        [MIXQ_E_EXISTS] = "already exists",
        [MIXQ_E_CANCELLED] = "cancelled",
        [MIXQ_E_DATA] = "unconvertible data",
    };
    if ((unsigned)status < sizeof names / sizeof names[0] && names[status]) return names[status];
    return "unknown status";
}

const char *mixq_version_string(void)
{
    return MIXQ_VERSION_STRING;
}
