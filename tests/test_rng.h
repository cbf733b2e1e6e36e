/*
 * test_rng.h - the tests' deterministic random numbers (splitmix64), one copy
 * for the Criterion tests and for kernel_check.c (plain C, also built for
 * aarch64, no Criterion).  Header-only; the same seed gives the same stream
 * on every platform, so a test keeps testing the same data.
 */
#ifndef MIXQ_TEST_RNG_H
#define MIXQ_TEST_RNG_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64's output mix of a state. */
static inline uint64_t rng_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* The next splitmix64 value of the state *s. */
static inline uint64_t rng_next(uint64_t *s) { return rng_mix64(*s += 0x9E3779B97F4A7C15u); }

/* Uniform in (0, 1): 53 random bits, never 0 or 1. */
static inline double rng_unit(uint64_t *s) { return ((double)(rng_next(s) >> 11) + 0.5) * 0x1p-53; }

/* In [0, n) (n > 0; modulo bias is irrelevant here). */
static inline size_t rng_below(uint64_t *s, size_t n) { return (size_t)(rng_next(s) % n); }

/* Standard normal (Box-Muller, one value per two uniforms: u, then v). */
static inline double rng_gauss(uint64_t *s)
{
    double u = rng_unit(s), v = rng_unit(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Gaussian (mean, sigma) with ~1/50 outliers at 20..60 sigma, clamped to +-65504 (the f16 range). */
static inline void rng_fill_gauss(float *x, size_t n, uint64_t *seed, double mean, double sigma)
{
    for (size_t i = 0; i < n; i++) {
        double v = rng_gauss(seed) * sigma;
        if (rng_next(seed) % 50 == 0)
            v *= 20 + 40 * rng_unit(seed);
        v += mean;
        x[i] = (float)fmax(-65504.0, fmin(65504.0, v));
    }
}

#endif
