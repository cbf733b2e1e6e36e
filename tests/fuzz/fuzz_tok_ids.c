/*
 * fuzz_tok_ids.c - libFuzzer target: token files (mx_tok_parse_ids,
 * src/tokenizer/tok_ids_file.c).  The first two bytes of an input give the
 * vocabulary size (little-endian), the rest is the file.  On success every id
 * is below the vocabulary size and their count is at most (bytes + 1) / 2; on
 * failure no ids and a one-line message naming the file and a byte offset
 * inside it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

#define FUZZ_TARGET "fuzz_tok_ids"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t vocab = (size_t)data[0] | (size_t)data[1] << 8;
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    int32_t *ids = NULL;
    size_t n = 0;
    mixq_error err;
    mixq_status s = mx_tok_parse_ids(text, len, vocab, "fuzz.tokens", &ids, &n, &err);
    if (s != MIXQ_OK) {
        CHECK(s == MIXQ_E_FORMAT || s == MIXQ_E_RANGE);
        fuzz_check_error(&err, s);
        CHECK(ids == NULL && n == 0);
        CHECK(strncmp(err.message, "fuzz.tokens: byte ", 18) == 0);
        CHECK(strtoull(err.message + 18, NULL, 10) < len);
        return 0;
    }
    CHECK(ids != NULL);
    CHECK(n <= (len + 1) / 2);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] >= 0 && (size_t)ids[i] < vocab);
    free(ids);
    return 0;
}
