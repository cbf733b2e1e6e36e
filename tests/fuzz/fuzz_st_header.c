/*
 * fuzz_st_header.c - libFuzzer target: the safetensors header parser and
 * validator (st_open_buffer), on one whole file held in memory.
 *
 * Beyond "no crash, no leak, no undefined behaviour" it checks the promises
 * the rest of the library relies on when st_open_buffer succeeds: every
 * tensor lies inside the buffer after the header, the tensors tile the data
 * section exactly, sizes are consistent, lookups find every tensor, and every
 * __metadata__ entry is retrievable.  A broken promise aborts (a finding).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/st_reader.h"

#define FUZZ_TARGET "fuzz_st_header"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_model *m = NULL;
    mixq_error err;
    mixq_status s = st_open_buffer("fuzz.safetensors", data, size, &m, &err);
    if (s != MIXQ_OK) {
        CHECK(m == NULL);
        fuzz_check_error(&err, s);
        return 0;
    }
    CHECK(m != NULL && m->nfiles == 1);
    const st_file *f = &m->files[0];
    CHECK(f->size == size && f->map == data);
    CHECK(size >= 8 && f->header_len <= size - 8);
    uint64_t data_start = 8 + f->header_len, covered = 0;
    for (size_t i = 0; i < m->ntensors; i++) {
        const st_tensor *t = &m->tensors[i];
        CHECK(t->name != NULL && strcmp(t->name, "__metadata__") != 0);
        CHECK(t->ndim <= MIXQ_MAX_DIMS);
        CHECK((unsigned)t->dtype < ST_DTYPE_COUNT);
        uint64_t n = 1;
        for (unsigned d = 0; d < t->ndim; d++) n *= t->shape[d]; /* can wrap only if some dim is 0 */
        CHECK(n == t->n_elements);
        CHECK(t->nbytes == t->n_elements * st_dtypes[t->dtype].size);
        CHECK(t->file_index == 0);
        /* in file order the tensors follow each other from the data start */
        CHECK(t->file_offset == data_start + covered);
        CHECK(t->data == data + t->file_offset);
        CHECK(t->nbytes <= size - t->file_offset);
        covered += t->nbytes;
        CHECK(st_find(m, t->name) != NULL);
        CHECK(strcmp(st_find(m, t->name)->name, t->name) == 0);
    }
    CHECK(data_start + covered == size);
    for (size_t i = 0; i + 1 < m->ntensors; i++)
        CHECK(strcmp(m->by_name[i]->name, m->by_name[i + 1]->name) < 0); /* sorted, unique */
    for (size_t i = 0; i < m->nmeta; i++) {
        CHECK(m->meta[i].key && m->meta[i].value);
        const char *v = st_meta_get(m, m->meta[i].key);
        CHECK(v != NULL && strcmp(v, m->meta[i].value) == 0);
    }
    st_close(m);
    return 0;
}
