/* utf8.h - text from file names, which need not be UTF-8, made fit for JSON. */
#ifndef MIXQ_UTF8_H
#define MIXQ_UTF8_H

#include <stdbool.h>

/* True if s is valid UTF-8 (no overlong forms, surrogates or code points beyond U+10FFFF). */
bool mx_utf8_valid(const char *s);

/*
 * A malloc'd copy of s in which every byte that is not part of a valid UTF-8
 * sequence is replaced by U+FFFD; NULL only if out of memory.  File names
 * are recorded (container header, --json output) through this: a name that
 * is not UTF-8 is shown lossily rather than failing as "out of memory".
 */
char *mx_utf8_lossy(const char *s);

#endif
