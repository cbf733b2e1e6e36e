/*
 * fuzz_config_json.c - libFuzzer target: config.json (rt_config_parse) and
 * token files (rt_tokens_parse).  On success the config's sizes must be
 * positive and consistent (heads divide, head_dim even); token ids
 * non-negative.
 */
#include <stdint.h>
#include <stdlib.h>

#include "runtime/eval.h"
#include "runtime/model.h"

#define FUZZ_TARGET "fuzz_config_json"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rt_config c;
    mixq_error err;
    mixq_status s = rt_config_parse("fuzz.config.json", (const char *)data, size, &c, &err);
    if (s != MIXQ_OK) {
        fuzz_check_error(&err, s);
    } else {
        CHECK(c.hidden > 0 && c.intermediate > 0 && c.n_layers > 0 && c.vocab > 0);
        CHECK(c.n_heads > 0 && c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0);
        CHECK(c.head_dim > 0 && c.head_dim % 2 == 0 && c.n_eos <= RT_MAX_EOS);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    s = rt_tokens_parse("fuzz.tok", (const char *)data, size, &ids, &n, &err);
    if (s != MIXQ_OK) {
        CHECK(ids == NULL);
        fuzz_check_error(&err, s);
    } else {
        for (size_t i = 0; i < n; i++) CHECK(ids[i] >= 0);
    }
    free(ids);
    return 0;
}
