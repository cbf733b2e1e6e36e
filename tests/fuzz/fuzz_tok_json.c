/*
 * fuzz_tok_json.c - libFuzzer target: the tokenizer.json loader
 * (src/tokenizer/tok_hf_load.c: jansson, PCRE2 regexes) and the encoder
 * (added tokens, normalizers, pre-tokenizers, BPE).  One input is a whole
 * tokenizer.json.  On failure: no tokenizer, a one-line message.  On
 * success: fuzz_tok_exercise (ids in range, decode, unique pieces).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_tok_json"
#include "fuzz_common.h"
#include "fuzz_tok_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mixq_error err;
    mx_tok *tok = mx_tok_load(MX_TOK_HF_JSON, data, size, NULL, 0, "fuzz/tokenizer.json", &err);
    if (!tok) {
        CHECK(err.code == MIXQ_E_FORMAT || err.code == MIXQ_E_UNSUPPORTED || err.code == MIXQ_E_NOMEM);
        fuzz_check_error(&err, err.code);
        return 0;
    }
    CHECK(mx_tok_get_kind(tok) == MX_TOK_HF_JSON);
    fuzz_tok_exercise(tok);
    mx_tok_free(tok);
    return 0;
}
