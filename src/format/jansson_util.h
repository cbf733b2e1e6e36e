/* jansson_util.h - telling jansson's "out of memory" from malformed JSON. */
#ifndef MIXQ_JANSSON_UTIL_H
#define MIXQ_JANSSON_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/*
 * After json_loadb(text, len, JSON_REJECT_DUPLICATES, je) failed: true if it
 * failed for want of memory, not because text is malformed.  jansson does
 * not always say so (its lexer reports a failed string allocation as an
 * "invalid token", and a lexer it cannot set up as an empty error), so an
 * object or array text is checked again with json_fast, which follows the
 * same rules: if it is well-formed (or json_fast runs out of memory too),
 * the failure was memory.  Such failures are MIXQ_E_NOMEM (exit 3), never
 * "not valid JSON".
 */
bool mx_json_oom(const json_error_t *je, const char *text, size_t len);

#endif
