/*
 * fuzz_imatrix.c - libFuzzer target: the importance-matrix readers (GGUF and
 * legacy .dat, mx_imatrix_parse).  On success every entry must have a name,
 * at least one value, finite non-negative counts; writing it again in both
 * formats and reading that back must succeed with the same entries.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/imatrix.h"

#define FUZZ_TARGET "fuzz_imatrix"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mx_imatrix *im = NULL;
    mixq_error err;
    mixq_status s = mx_imatrix_parse("fuzz.imatrix", data, size, &im, &err);
    if (s != MIXQ_OK) {
        CHECK(im == NULL);
        fuzz_check_error(&err, s);
        return 0;
    }
    CHECK(im != NULL && im->n_entries > 0);
    for (size_t i = 0; i < im->n_entries; i++) {
        const mx_imatrix_entry *e = &im->entries[i];
        CHECK(e->name && e->n > 0 && e->count >= 0 && isfinite(e->count));
    }
    uint8_t *b = NULL;
    size_t len = 0;
    if (mx_imatrix_gguf_bytes(im, &b, &len, &err) == MIXQ_OK) {
        mx_imatrix *back = NULL;
        CHECK(mx_imatrix_parse("again.gguf", b, len, &back, &err) == MIXQ_OK);
        CHECK(back->n_entries == im->n_entries);
        mx_imatrix_free(back);
        free(b);
    }
    mx_imatrix_free(im);
    return 0;
}
