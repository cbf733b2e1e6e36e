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
 * The sanitisers of untrusted text (names, paths) for messages: one
 * renderer in error.c, two renderings.
 *
 * Copies s into buf (cap bytes) as printable one-line text for a message:
 * control characters become \xHH (and, if quoted, quotes and backslashes are
 * escaped); text that does not fit ends in "...".  Returns buf.  Names and
 * paths come from untrusted files, so every message prints them through this.
 */
const char *mx_printable(char *buf, size_t cap, const char *s, int quoted);

/* Longest rendering of a name in a message (mx_shown), and the buffer it needs. */
#define MX_SHOWN_MAX 160
#define MX_SHOWN_BUF (MX_SHOWN_MAX + 8)

/*
 * Copies s[0..len) into buf (MX_SHOWN_BUF bytes) fit for a one-line message:
 * control bytes become '?', and a string longer than MX_SHOWN_MAX is cut at a
 * UTF-8 character boundary and marked with "...".  Returns buf.
 */
const char *mx_shown_n(const char *s, size_t len, char *buf);

/* mx_shown_n for a NUL-terminated string. */
const char *mx_shown(const char *s, char *buf);

/* Clears err (if non-NULL) to MIXQ_OK and an empty message. */
void mx_err_clear(mixq_error *err);

#endif
