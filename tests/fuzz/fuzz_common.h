/*
 * fuzz_common.h - what every fuzz target shares: CHECK (a broken promise is a
 * finding: print it and abort) and the checks of a failure's mixq_error.
 * Define FUZZ_TARGET (the target's name, for the message) before including.
 */
#ifndef MIXQ_FUZZ_COMMON_H
#define MIXQ_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixq.h"

#define CHECK(cond)                                                                                   \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            fprintf(stderr, FUZZ_TARGET ": check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                                  \
        }                                                                                             \
    } while (0)

/* A failure's error: its code is s, and its message is one non-empty, terminated line of printable bytes. */
static inline void fuzz_check_error(const mixq_error *err, mixq_status s)
{
    CHECK(s != MIXQ_OK && err->code == s);
    CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
    CHECK(err->message[0] != '\0');
    for (const char *c = err->message; *c; c++) CHECK((unsigned char)*c >= 0x20 && *c != 0x7f); /* one line */
}

/* The fuzzer's entry point (declared for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
