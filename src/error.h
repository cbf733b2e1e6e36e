/* error.h - filling a mixq_error with a status and a formatted one-line message. */
#ifndef MIXQ_ERROR_H
#define MIXQ_ERROR_H

#include <stddef.h>

#include "mixq.h"

/*
 * Sets err (if non-NULL) to code and the printf-formatted message, with every
 * control character replaced by '?' so it stays one safe line; returns code.
 */
mixq_status mx_err(mixq_error *err, mixq_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Copies s into buf (cap bytes) as printable one-line text for a message:
 * control characters become \xHH (and, if quoted, quotes and backslashes are
 * escaped); text that does not fit ends in "...".  Returns buf.  Names and
 * paths come from untrusted files, so every message prints them through this.
 */
const char *mx_printable(char *buf, size_t cap, const char *s, int quoted);

/* Clears err (if non-NULL) to MIXQ_OK and an empty message. */
void mx_err_clear(mixq_error *err);

#endif
