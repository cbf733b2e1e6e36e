/* error.h - filling a mixq_error with a status and a formatted one-line message. */
#ifndef MIXQ_ERROR_H
#define MIXQ_ERROR_H

#include "mixq.h"

/* Sets err (if non-NULL) to code and the printf-formatted message; returns code. */
mixq_status mx_err(mixq_error *err, mixq_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err (if non-NULL) to MIXQ_OK and an empty message. */
void mx_err_clear(mixq_error *err);

#endif
