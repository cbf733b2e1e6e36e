/*
 * fuzz_tok_common.h - what the tokenizer fuzz targets share: running a loaded
 * tokenizer over fixed texts and checking its promises.
 */
#ifndef MIXQ_FUZZ_TOK_COMMON_H
#define MIXQ_FUZZ_TOK_COMMON_H

#include "tokenizer/tokenizer.h"

static const char *const fuzz_tok_texts[] = {
    "",
    "Hello world",
    "  two  spaces\tand\nlines\n",
    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\xa6\x99 \xe2\x96\x81<0x41><s></s><unk><|x|>",
    "I'm 12345 ab<sep>ab",
};

/*
 * Encodes every text (with and without BOS), checks every id is in range and
 * decodes (whole and per piece), checks piece <-> id lookups of the first ids.
 */
static void fuzz_tok_exercise(const mx_tok *tok)
{
    size_t vocab = mx_tok_vocab_size(tok);
    CHECK(vocab > 0);
    CHECK(mx_tok_bos(tok) >= -1 && mx_tok_bos(tok) < (int32_t)vocab);
    CHECK(mx_tok_eos(tok) >= -1 && mx_tok_eos(tok) < (int32_t)vocab);
    for (size_t i = 0; i < sizeof fuzz_tok_texts / sizeof fuzz_tok_texts[0]; i++) {
        for (int bos = 0; bos < 2; bos++) {
            int32_t *ids = NULL;
            size_t n = 0;
            mixq_error err;
            const char *t = fuzz_tok_texts[i];
            mixq_status s = mx_tok_encode(tok, t, strlen(t), bos, &ids, &n, &err);
            if (s != MIXQ_OK) { /* only a normalization the tokenizer cannot check is refused */
                CHECK(s == MIXQ_E_UNSUPPORTED || s == MIXQ_E_DATA);
                fuzz_check_error(&err, s);
                CHECK(ids == NULL);
                continue;
            }
            CHECK(ids != NULL);
            for (size_t k = 0; k < n; k++) {
                size_t pl;
                CHECK(ids[k] >= 0 && (size_t)ids[k] < vocab);
                CHECK(mx_tok_decode_piece(tok, ids[k], &pl) != NULL);
            }
            char *text = NULL;
            size_t len = 0;
            CHECK(mx_tok_decode(tok, ids, n, &text, &len, &err) == MIXQ_OK);
            CHECK(text != NULL && text[len] == '\0');
            free(text);
            free(ids);
        }
    }
    for (size_t id = 0; id < vocab && id < 512; id++) {
        size_t len;
        const char *p = mx_tok_piece(tok, (int32_t)id, &len);
        if (!p) continue;
        CHECK(p[len] == '\0');
        CHECK(mx_tok_piece_id(tok, p, len) == (int32_t)id); /* pieces are unique */
    }
}

#endif
