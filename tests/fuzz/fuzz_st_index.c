/*
 * fuzz_st_index.c - libFuzzer target: the sharded-checkpoint index parser
 * (st_index_parse, model.safetensors.index.json).
 *
 * On success it checks what open_index relies on: shard names sorted,
 * unique and plain file names (no directory part, never "." or ".."),
 * tensor names sorted and unique, every shard_of in range, and every shard
 * used by at least one tensor.  A broken promise aborts (a finding).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/st_reader.h"

#define FUZZ_TARGET "fuzz_st_index"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_index idx;
    mixq_error err;
    /* The text is not NUL-terminated: the parser must honour len. */
    mixq_status s = st_index_parse("fuzz.index.json", (const char *)data, size, &idx, &err);
    if (s != MIXQ_OK) {
        fuzz_check_error(&err, s);
        CHECK(idx.shards == NULL && idx.names == NULL && idx.shard_of == NULL);
        CHECK(idx.nshards == 0 && idx.nnames == 0);
        st_index_free(&idx); /* harmless on a cleared index */
        return 0;
    }
    CHECK(idx.nnames > 0 && idx.nshards > 0 && idx.nshards <= idx.nnames);
    for (size_t i = 0; i < idx.nshards; i++) {
        const char *sh = idx.shards[i];
        CHECK(sh && sh[0] != '\0');
        CHECK(!strchr(sh, '/') && !strchr(sh, '\\'));
        CHECK(strcmp(sh, ".") != 0 && strcmp(sh, "..") != 0);
        if (i) CHECK(strcmp(idx.shards[i - 1], sh) < 0);
    }
    unsigned char *used = calloc(idx.nshards, 1);
    CHECK(used != NULL);
    for (size_t i = 0; i < idx.nnames; i++) {
        CHECK(idx.names[i] != NULL);
        if (i) CHECK(strcmp(idx.names[i - 1], idx.names[i]) < 0);
        CHECK(idx.shard_of[i] < idx.nshards);
        used[idx.shard_of[i]] = 1;
    }
    for (size_t i = 0; i < idx.nshards; i++) CHECK(used[i]);
    free(used);
    st_index_free(&idx);
    CHECK(idx.shards == NULL && idx.nnames == 0);
    return 0;
}
