/* checked.h - overflow-checked size arithmetic.  Each returns 1 on success, 0 on overflow. */
#ifndef MIXQ_CHECKED_H
#define MIXQ_CHECKED_H

#include <stdint.h>

static inline int ck_mul(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline int ck_add(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* Rounds v up to a multiple of the power of two `align`. */
static inline int ck_align(uint64_t v, uint64_t align, uint64_t *out)
{
    uint64_t t;
    if (!ck_add(v, align - 1, &t)) return 0;
    *out = t & ~(align - 1);
    return 1;
}

/* ceil(a / b) for b > 0, without overflow. */
static inline uint64_t ck_div_ceil(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

#endif
