/* container_verify.c - mixq_verify: every checksum, section and padding byte of a container. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/checked.h"
#include "format/container.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/guard.h"
#include "common/json_fast.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "container/container_internal.h"

/* Checks that [from, to) of the file is all zero; names the first non-zero byte. */
static mixq_status check_zero(const mixq_file *f, uint64_t from, uint64_t to, mixq_error *err)
{
    for (uint64_t o = from; o < to; o++)
        if (f->map[o] != 0)
            return mx_err(err, MIXQ_E_CHECKSUM,
                          "%s: padding at offset %" PRIu64 " is not zero: the file is corrupt; re-create it", f->shown,
                          o);
    return MIXQ_OK;
}

static mixq_status verify_mapped(const mixq_file *f, mixq_error *err)
{
    const char *fn = f->shown;
    uint64_t stored = mxc_get_u64(f->map + MXC_OFF_PREAMBLE_XXH3);
    uint64_t computed = XXH3_64bits(f->map, MXC_OFF_PREAMBLE_XXH3);
    if (stored != computed)
        return mx_err(err, MIXQ_E_CHECKSUM,
                      "%s: preamble: checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                      "): the file is corrupt; re-create it", fn, stored, computed);
    stored = mxc_get_u64(f->map + MXC_OFF_HEADER_XXH3);
    computed = XXH3_64bits(f->map + f->header_offset, (size_t)f->header_length);
    if (stored != computed)
        return mx_err(err, MIXQ_E_CHECKSUM,
                      "%s: header: checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                      "): the file is corrupt; re-create it", fn, stored, computed);
    for (size_t i = 0; i < f->ntensors; i++) {
        const mixq_tensor *t = &f->tensors[i];
        computed = XXH3_64bits(f->map + t->offset, (size_t)t->length);
        if (computed != t->xxh3) {
            char b[MX_SHOWN_BUF];
            return mx_err(err, MIXQ_E_CHECKSUM,
                          "%s: tensor \"%s\" (bytes %" PRIu64 "..%" PRIu64 "): checksum mismatch (stored %016" PRIx64
                          ", computed %016" PRIx64 "): the file is corrupt; re-create it", fn, mx_shown(t->name, b),
                          t->offset, t->offset + t->length, t->xxh3, computed);
        }
    }
    uint64_t pos = MXC_PREAMBLE_LEN;
    mixq_status s;
    for (size_t i = 0; i < f->ntensors; i++) {
        const mixq_tensor *t = &f->tensors[i];
        if ((s = check_zero(f, pos, t->offset, err))) return s;
        uint64_t cur = 0; /* relative end of the sections so far; sections are in kind order */
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
            if (!t->has[k]) continue;
            if (t->lay.offset[k] > cur && (s = check_zero(f, t->offset + cur, t->offset + t->lay.offset[k], err)))
                return s;
            if (t->lay.offset[k] + t->lay.length[k] > cur) cur = t->lay.offset[k] + t->lay.length[k];
        }
        if ((s = check_zero(f, t->offset + cur, t->offset + t->length, err))) return s;
        pos = t->offset + t->length;
    }
    if ((s = check_zero(f, pos, f->header_offset, err))) return s;
    for (size_t i = 0; i < f->nstored; i++) { /* stored files: decompressed size and xxh3 */
        uint8_t *buf = NULL;
        s = mx_cr_read_stored(f, i, &buf, err);
        free(buf);
        if (s) return s;
    }
    return MIXQ_OK;
}

typedef struct verify_args {
    const mixq_file *f;
    mixq_error *err;
    mixq_status s;
} verify_args;

static void verify_guarded(void *ctx)
{
    verify_args *a = ctx;
    a->s = verify_mapped(a->f, a->err);
}

/*
 * The mapping is read under the SIGBUS guard: a container that shrinks while
 * it is verified gives an error, not a crash.
 */
mixq_status mixq_verify(const mixq_file *f, mixq_error *err)
{
    mx_err_clear(err);
    if (!f) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_verify: file is NULL");
    verify_args a = {f, err, MIXQ_OK};
    if (mx_guarded(verify_guarded, &a) != MX_GUARD_OK)
        return mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read (it shrank)", f->shown);
    return a.s;
}
