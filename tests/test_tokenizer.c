/*
 * test_tokenizer.c - the tokenizer module without reference programs: hostile
 * tokenizer.model and tokenizer.json files, invalid text, token files, the
 * decode and lookup functions, loading from a directory.  Every failure must
 * be one line naming the file.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "tokenizer/tokenizer.h"

/* A failure's message: non-empty, one line, and containing want (if non-NULL). */
static void check_msg(const mixq_error *err, const char *want)
{
    cr_assert(err->message[0] != '\0');
    cr_assert(strchr(err->message, '\n') == NULL, "%s", err->message);
    if (want) cr_assert(strstr(err->message, want), "message \"%s\" lacks \"%s\"", err->message, want);
}

static uint8_t *read_source(const char *rel, size_t *len)
{
    char *p = ts_source_path(rel);
    uint8_t *d = ts_read_file(p, len);
    cr_assert(d, "cannot read %s", p);
    free(p);
    return d;
}

/* ---- protobuf crafting ---- */

typedef struct pbw {
    uint8_t *p;
    size_t n, cap;
} pbw;

static void put(pbw *w, const void *d, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
        cr_assert(w->p);
    }
    memcpy(w->p + w->n, d, n);
    w->n += n;
}

static void varint(pbw *w, uint64_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) b |= 0x80;
        put(w, &b, 1);
    } while (v);
}

/* A SentencePiece message: piece, score, type. */
static void piece(pbw *w, const char *s, size_t n, float score, int type)
{
    pbw m = {0};
    varint(&m, 1 << 3 | 2);
    varint(&m, n);
    put(&m, s, n);
    varint(&m, 2 << 3 | 5);
    put(&m, &score, 4);
    varint(&m, 3 << 3 | 0);
    varint(&m, (uint64_t)type);
    varint(w, 1 << 3 | 2);
    varint(w, m.n);
    put(w, m.p, m.n);
    free(m.p);
}

/* A trainer_spec with model_type (2: BPE). */
static void trainer(pbw *w, int model_type)
{
    pbw m = {0};
    varint(&m, 3 << 3 | 0);
    varint(&m, (uint64_t)model_type);
    varint(w, 2 << 3 | 2);
    varint(w, m.n);
    put(w, m.p, m.n);
    free(m.p);
}

static mx_tok *load_spm(const void *d, size_t n, mixq_error *err)
{
    return mx_tok_load(MX_TOK_SPM_MODEL, d, n, NULL, 0, "bad.model", err);
}

/* A small valid BPE model: <unk> <s> </s> a b ab ▁ ▁a. */
static pbw small_model(void)
{
    pbw w = {0};
    piece(&w, "<unk>", 5, 0, 2);
    piece(&w, "<s>", 3, 0, 3);
    piece(&w, "</s>", 4, 0, 3);
    piece(&w, "a", 1, -1, 1);
    piece(&w, "b", 1, -2, 1);
    piece(&w, "ab", 2, -0.5f, 1);
    piece(&w, "\xe2\x96\x81", 3, -3, 1);
    piece(&w, "\xe2\x96\x81" "a", 4, -0.25f, 1);
    trainer(&w, 2);
    return w;
}

Test(tokenizer_spm, crafted_model_encodes)
{
    pbw w = small_model();
    mixq_error err;
    mx_tok *t = load_spm(w.p, w.n, &err);
    cr_assert(t, "%s", err.message);
    int32_t *ids;
    size_t n;
    cr_assert_eq(mx_tok_encode(t, "ab  ab c", 8, 1, &ids, &n, &err), MIXQ_OK, "%s", err.message);
    /* "▁ab▁ab▁c" (the double space removed): ▁a (-0.25) merges before ab (-0.5), leftmost first */
    int32_t want[] = {1, 7, 4, 7, 4, 6, 0};
    cr_assert_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "id %zu", i);
    char *text;
    size_t len;
    cr_assert_eq(mx_tok_decode(t, ids, n, &text, &len, &err), MIXQ_OK);
    cr_assert_str_eq(text, "ab ab  \xe2\x81\x87 ");
    free(text);
    free(ids);
    cr_assert_eq(mx_tok_vocab_size(t), 8);
    cr_assert_eq(mx_tok_bos(t), 1);
    cr_assert_eq(mx_tok_eos(t), 2);
    cr_assert_eq(mx_tok_piece_id(t, "ab", 2), 5);
    cr_assert_eq(mx_tok_piece_id(t, "zz", 2), -1);
    size_t pl;
    cr_assert_str_eq(mx_tok_piece(t, 7, &pl), "\xe2\x96\x81" "a");
    cr_assert_eq(pl, 4);
    cr_assert_null(mx_tok_piece(t, 8, &pl));
    cr_assert_null(mx_tok_decode_piece(t, -1, &pl));
    const char *d = mx_tok_decode_piece(t, 7, &pl);
    cr_assert(pl == 2 && memcmp(d, " a", 2) == 0);
    d = mx_tok_decode_piece(t, 1, &pl);
    cr_assert_eq(pl, 0); /* <s> is a control piece: no text */
    int32_t bad_id = 8;
    cr_assert_eq(mx_tok_decode(t, &bad_id, 1, &text, &len, &err), MIXQ_E_RANGE);
    check_msg(&err, "bad.model");
    mx_tok_free(t);
    free(w.p);
}

Test(tokenizer_spm, truncated_and_garbage_models)
{
    size_t len;
    uint8_t *d = read_source("tests/data/tokenizer/unigram.model", &len);
    mixq_error err;
    int failed = 0;
    for (size_t cut = 0; cut < len; cut += 37) {
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, d, cut);
        mx_tok *t = load_spm(c, cut, &err);
        if (t) {
            mx_tok_free(t);
        } else {
            check_msg(&err, "bad.model");
            failed++;
        }
        free(c);
    }
    cr_assert_gt(failed, (int)(len / 37 / 2), "most truncations must be refused (%d)", failed);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) d[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 24);
    cr_assert_null(load_spm(d, len, &err));
    check_msg(&err, "bad.model");
    free(d);
}

Test(tokenizer_spm, hostile_lengths_and_counts)
{
    mixq_error err;
    /* a length-delimited field claiming 2^62 bytes */
    pbw w = {0};
    varint(&w, 1 << 3 | 2);
    varint(&w, 1ull << 62);
    put(&w, "xx", 2);
    cr_assert_null(load_spm(w.p, w.n, &err));
    check_msg(&err, "malformed");
    /* an 11-byte varint */
    w.n = 0;
    put(&w, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
    cr_assert_null(load_spm(w.p, w.n, &err));
    check_msg(&err, "malformed");
    /* more pieces than MX_TOK_MAX_VOCAB (each an empty message: 2 bytes) */
    w.n = 0;
    size_t count = (size_t)MX_TOK_MAX_VOCAB + 1;
    w.p = realloc(w.p, count * 2);
    for (size_t i = 0; i < count; i++) w.p[2 * i] = 0x0A, w.p[2 * i + 1] = 0;
    cr_assert_null(load_spm(w.p, count * 2, &err));
    check_msg(&err, "more than the limit");
    free(w.p);
    /* no pieces, a group wire type, an empty piece, an unknown type */
    cr_assert_null(load_spm("", 0, &err));
    check_msg(&err, "no pieces");
    cr_assert_null(load_spm("\x0b\x0c", 2, &err));
    check_msg(&err, "malformed");
    pbw e = {0};
    piece(&e, "<unk>", 5, 0, 2);
    piece(&e, "", 0, 0, 1);
    cr_assert_null(load_spm(e.p, e.n, &err));
    check_msg(&err, "piece 1 is empty");
    e.n = 0;
    piece(&e, "<unk>", 5, 0, 9);
    cr_assert_null(load_spm(e.p, e.n, &err));
    check_msg(&err, "unknown type");
    free(e.p);
}

Test(tokenizer_spm, bad_pieces_and_specs)
{
    mixq_error err;
    pbw w = {0};
    piece(&w, "<unk>", 5, 0, 2);
    piece(&w, "a\xff", 2, 0, 1);
    cr_assert_null(load_spm(w.p, w.n, &err));
    check_msg(&err, "piece 1 is not valid UTF-8");
    w.n = 0;
    piece(&w, "<unk>", 5, 0, 2);
    piece(&w, "a", 1, 0, 1);
    piece(&w, "a", 1, 0, 1);
    cr_assert_null(load_spm(w.p, w.n, &err));
    check_msg(&err, "appears twice");
    w.n = 0;
    piece(&w, "a", 1, 0, 1);
    cr_assert_null(load_spm(w.p, w.n, &err));
    check_msg(&err, "UNKNOWN");
    w.n = 0;
    piece(&w, "<unk>", 5, 0, 2);
    trainer(&w, 3);
    cr_assert_null(load_spm(w.p, w.n, &err));
    check_msg(&err, "model type 3 is not supported");
    /* a normalizer with a precompiled charsmap (nmt_nfkc) */
    w.n = 0;
    piece(&w, "<unk>", 5, 0, 2);
    put(&w, "\x1a\x0e\x0a\x08nmt_nfkc\x12\x02\x01\x02", 16);
    cr_assert_null(load_spm(w.p, w.n, &err));
    check_msg(&err, "only identity normalization");
    /* bos_id beyond the vocabulary */
    w.n = 0;
    piece(&w, "<unk>", 5, 0, 2);
    put(&w, "\x12\x03\xc8\x02\x07", 5); /* trainer_spec { bos_id: 7 } */
    cr_assert_null(load_spm(w.p, w.n, &err));
    check_msg(&err, "bos_id 7");
    free(w.p);
}

Test(tokenizer_spm, invalid_utf8_text)
{
    pbw w = small_model();
    mixq_error err;
    mx_tok *t = load_spm(w.p, w.n, &err);
    cr_assert(t);
    int32_t *ids;
    size_t n;
    const char *bad[] = {"ab\xc3(", "ab\xed\xa0\x80", "ab\xc0\x80", "ab\xf4\x90\x80\x80", "ab\xe2\x96"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(mx_tok_encode(t, bad[i], strlen(bad[i]), 0, &ids, &n, &err), MIXQ_E_DATA);
        check_msg(&err, "byte offset 2");
        cr_assert_null(ids);
    }
    cr_assert_eq(mx_tok_encode(t, "", 0, 1, &ids, &n, &err), MIXQ_OK);
    cr_assert(n == 1 && ids[0] == 1); /* only <s> */
    free(ids);
    mx_tok_free(t);
    free(w.p);
}

Test(tokenizer_spm, byte_fallback_round_trip)
{
    size_t len;
    uint8_t *d = read_source("tests/data/tokenizer/unigram-bf.model", &len);
    mixq_error err;
    mx_tok *t = load_spm(d, len, &err);
    cr_assert(t, "%s", err.message);
    const char *text = "Hello world, \xe6\x97\xa5\xe6\x9c\xac and \xf0\x9f\xa6\x99!";
    int32_t *ids;
    size_t n;
    cr_assert_eq(mx_tok_encode(t, text, strlen(text), 0, &ids, &n, &err), MIXQ_OK);
    char *out;
    size_t olen;
    cr_assert_eq(mx_tok_decode(t, ids, n, &out, &olen, &err), MIXQ_OK);
    cr_assert_str_eq(out, text);
    /* streaming: the pieces joined give the same bytes after the dummy-prefix space */
    char joined[256];
    size_t jn = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        const char *p = mx_tok_decode_piece(t, ids[i], &pl);
        cr_assert(p && jn + pl < sizeof joined);
        memcpy(joined + jn, p, pl);
        jn += pl;
    }
    cr_assert(jn == strlen(text) + 1 && joined[0] == ' ' && memcmp(joined + 1, text, jn - 1) == 0);
    free(out);
    free(ids);
    mx_tok_free(t);
    free(d);
}

/* ---- tokenizer.json ---- */

static const char *json_ok =
    "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true,"
    " \"vocab\": {\"<unk>\": 0, \"\\u2581\": 1, \"a\": 2, \"b\": 3, \"\\u2581a\": 4, \"ab\": 5, \"\\u2581ab\": 6},"
    " \"merges\": [\"\\u2581 a\", [\"a\", \"b\"], \"\\u2581a b\"]},"
    " \"added_tokens\": [{\"id\": 7, \"content\": \"<|x|>\", \"special\": true}],"
    " \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"always\"}}";

static mx_tok *load_json(const char *s, mixq_error *err)
{
    return mx_tok_load(MX_TOK_HF_JSON, s, strlen(s), NULL, 0, "bad/tokenizer.json", err);
}

Test(tokenizer_json, crafted_metaspace_fuse_unk)
{
    mixq_error err;
    mx_tok *t = load_json(json_ok, &err);
    cr_assert(t, "%s", err.message);
    int32_t *ids;
    size_t n;
    const char *text = "ab a  cc<|x|>ab";
    cr_assert_eq(mx_tok_encode(t, text, strlen(text), 0, &ids, &n, &err), MIXQ_OK, "%s", err.message);
    /* ▁ab ▁a ▁ ▁cc | <|x|> | ▁ab   (cc: one fused <unk>) */
    int32_t want[] = {6, 4, 1, 1, 0, 7, 6};
    cr_assert_eq(n, sizeof want / sizeof want[0], "%zu ids", n);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "id %zu", i);
    free(ids);
    cr_assert_eq(mx_tok_vocab_size(t), 8);
    cr_assert_eq(mx_tok_get_kind(t), MX_TOK_HF_JSON);
    mx_tok_free(t);
}

Test(tokenizer_json, wrong_types_and_unsupported)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"[]", "not a JSON object"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": [1]}}", "model.vocab is not an object"},
        {"{\"model\": {\"vocab\": {\"a\": \"x\"}}}", "has no valid id"},
        {"{\"model\": {\"vocab\": {\"a\": -1}}}", "has no valid id"},
        {"{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": 3}}", "model.merges is not an array"},
        {"{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}", "merges[0]"},
        {"{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [\"a z\"]}}", "not in the vocabulary"},
        {"{\"model\": {\"vocab\": {\"a\": 0}}, \"added_tokens\": [{\"id\": 1, \"content\": 5}]}", "added_tokens[0]"},
        {"{\"model\": {\"vocab\": {\"a\": 0}}, \"added_tokens\": [{\"content\": \"x\"}]}", "added_tokens[0]"},
        {"{\"model\": {\"vocab\": {\"a\": 0}}, \"added_tokens\": [{\"id\": 0, \"content\": \"b\"}]}", "reuses id 0"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "only BPE"},
        {"{\"model\": {\"vocab\": {\"a\": 0}}, \"normalizer\": {\"type\": \"Lowercase\"}}", "\"Lowercase\" is not supported"},
        {"{\"model\": {\"vocab\": {\"a\": 0}}, \"normalizer\": 7}", "normalizer is not an object"},
        {"{\"model\": {\"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"Whitespace\"}}", "not supported"},
        {"{\"model\": {\"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"},"
         " \"behavior\": \"Isolated\"}}", "regex"},
        {"{\"model\": {\"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": 1}}", "not a boolean"},
        {"{\"model\": {\"vocab\": {\"a\": 0}, \"byte_fallback\": \"yes\"}}", "not a boolean"},
        {"{\"model\": {\"vocab\": {\"a\": 0}, \"unk_token\": \"<unk>\"}}", "unk_token is not in the vocabulary"},
        {"{\"model\": {\"vocab\": {\"a\": 0}, \"dropout\": 0.1}}", "dropout"},
        {"{\"model\": {\"vocab\": {\"a\": 0, \"\\u00ff\\ud800\": 1}}}", "invalid JSON"},
        {"{\"model\": {\"vocab\": {\"a\": 0, \"b\": 0}}}", "used twice"},
        {"{\"model\": {\"vocab\": {}}}", "empty"},
        {"{\"model\": {\"vocab\": {\"a\": 0}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mixq_error err;
        mx_tok *t = load_json(cases[i].json, &err);
        cr_assert_null(t, "case %zu loaded", i);
        check_msg(&err, "bad/tokenizer.json");
        check_msg(&err, cases[i].want);
    }
}

Test(tokenizer_json, nfc_refuses_what_it_cannot_check)
{
    const char *j = "{\"model\": {\"vocab\": {\"a\": 0}}, \"normalizer\": {\"type\": \"NFC\"}}";
    mixq_error err;
    mx_tok *t = load_json(j, &err);
    cr_assert(t, "%s", err.message);
    int32_t *ids;
    size_t n;
    const char *decomposed = "aa e\xcc\x81"; /* e + COMBINING ACUTE: NFC would compose it */
    cr_assert_eq(mx_tok_encode(t, decomposed, strlen(decomposed), 0, &ids, &n, &err), MIXQ_E_UNSUPPORTED);
    check_msg(&err, "NFC normalization of U+0301 (near text byte 4)");
    cr_assert_eq(mx_tok_encode(t, "aa", 2, 0, &ids, &n, &err), MIXQ_OK);
    cr_assert(n == 2 && ids[0] == 0 && ids[1] == 0);
    free(ids);
    mx_tok_free(t);
}

/* ---- token files ---- */

Test(tokenizer_ids, parse)
{
    int32_t *ids;
    size_t n;
    mixq_error err;
    const char *ok = " 1 2\n\t99\r\n0 ";
    cr_assert_eq(mx_tok_parse_ids(ok, strlen(ok), 100, "t.txt", &ids, &n, &err), MIXQ_OK);
    cr_assert(n == 4 && ids[0] == 1 && ids[1] == 2 && ids[2] == 99 && ids[3] == 0);
    free(ids);
    cr_assert_eq(mx_tok_parse_ids("", 0, 100, "t.txt", &ids, &n, &err), MIXQ_OK);
    cr_assert_eq(n, 0);
    free(ids);
    static const struct {
        const char *text, *want;
        mixq_status code;
    } bad[] = {
        {"1 2 100", "t.txt: byte 4 (token 3): id 100 is out of range (vocabulary of 100)", MIXQ_E_RANGE},
        {"1 x2", "t.txt: byte 2 (token 2): \"x2\" is not a token id", MIXQ_E_FORMAT},
        {"-1", "\"-1\" is not a token id", MIXQ_E_FORMAT},
        {"1,2", "\"1,2\" is not a token id", MIXQ_E_FORMAT},
        {"99999999999999999999999", "out of range", MIXQ_E_RANGE},
        {"3\n\x01\n", "byte 2 (token 2)", MIXQ_E_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(mx_tok_parse_ids(bad[i].text, strlen(bad[i].text), 100, "t.txt", &ids, &n, &err), bad[i].code,
                     "case %zu", i);
        check_msg(&err, bad[i].want);
        cr_assert_null(ids);
    }
}

Test(tokenizer_ids, read_file_and_load_dir)
{
    char *dir = ts_tmpdir(), *p = ts_path(dir, "tokens.txt");
    ts_write_file(p, "5 6 7\n", 6);
    int32_t *ids;
    size_t n;
    mixq_error err;
    cr_assert_eq(mx_tok_read_ids(p, 8, &ids, &n, &err), MIXQ_OK);
    cr_assert(n == 3 && ids[2] == 7);
    free(ids);
    cr_assert_eq(mx_tok_read_ids(p, 7, &ids, &n, &err), MIXQ_E_RANGE);
    check_msg(&err, "tokens.txt: byte 4 (token 3)");
    free(p);
    p = ts_path(dir, "missing.txt");
    cr_assert_eq(mx_tok_read_ids(p, 7, &ids, &n, &err), MIXQ_E_IO);
    check_msg(&err, "missing.txt");
    free(p);

    /* load_dir: nothing, then tokenizer.model, then tokenizer.json wins */
    cr_assert_null(mx_tok_load_dir(dir, &err));
    check_msg(&err, "no tokenizer.json or tokenizer.model");
    pbw w = small_model();
    p = ts_path(dir, "tokenizer.model");
    ts_write_file(p, w.p, w.n);
    free(p);
    mx_tok *t = mx_tok_load_dir(dir, &err);
    cr_assert(t, "%s", err.message);
    cr_assert_eq(mx_tok_get_kind(t), MX_TOK_SPM_MODEL);
    mx_tok_free(t);
    p = ts_path(dir, "tokenizer.json");
    ts_write_file(p, json_ok, strlen(json_ok));
    free(p);
    p = ts_path(dir, "tokenizer_config.json");
    const char *cfg = "{\"bos_token\": {\"content\": \"<|x|>\"}, \"eos_token\": \"<unk>\"}";
    ts_write_file(p, cfg, strlen(cfg));
    free(p);
    t = mx_tok_load_dir(dir, &err);
    cr_assert(t, "%s", err.message);
    cr_assert_eq(mx_tok_get_kind(t), MX_TOK_HF_JSON);
    cr_assert_eq(mx_tok_bos(t), 7);
    cr_assert_eq(mx_tok_eos(t), 0);
    mx_tok_free(t);
    free(w.p);
    ts_rmtree(dir);
    free(dir);
}

/* Encodes text with a tokenizer.json of vocabulary <unk> a b c ab ' ', merge "a b", and the given extra members. */
static void expect_ids(const char *extra, const char *text, const int32_t *want, size_t nwant)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": {\"<unk>\": 0, \"a\": 1, \"b\": 2,"
             " \"c\": 3, \"ab\": 4, \" \": 5}, \"merges\": [\"a b\"]}%s}", extra);
    mixq_error err;
    mx_tok *t = load_json(json, &err);
    cr_assert(t, "%s", err.message);
    int32_t *ids;
    size_t n;
    cr_assert_eq(mx_tok_encode(t, text, strlen(text), 0, &ids, &n, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(n, nwant, "%s: %zu ids", extra, n);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "%s: id %zu", extra, i);
    free(ids);
    mx_tok_free(t);
}

Test(tokenizer_json, split_behaviors_and_added_token_strip)
{
#define SPLIT(b) ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \"b\"}, \"behavior\": \"" b "\"}"
    expect_ids(SPLIT("Isolated"), "abcab", (int32_t[]){1, 2, 3, 1, 2}, 5);          /* a|b|ca|b */
    expect_ids(SPLIT("Removed"), "abcab", (int32_t[]){1, 3, 1}, 3);                 /* a|ca */
    expect_ids(SPLIT("MergedWithPrevious"), "abcab", (int32_t[]){4, 3, 4}, 3);      /* ab|cab */
    expect_ids(SPLIT("MergedWithNext"), "abcab", (int32_t[]){1, 2, 3, 1, 2}, 5);    /* a|bca|b */
    expect_ids("", "abcab", (int32_t[]){4, 3, 4}, 3);                               /* no pre-tokenizer */
#undef SPLIT
    const char *strip = ", \"added_tokens\": [{\"id\": 6, \"content\": \"<x>\", \"lstrip\": true, \"rstrip\": true}]";
    const char *keep = ", \"added_tokens\": [{\"id\": 6, \"content\": \"<x>\"}]";
    expect_ids(strip, "ab <x> ab", (int32_t[]){4, 6, 4}, 3);
    expect_ids(keep, "ab <x> ab", (int32_t[]){4, 5, 6, 5, 4}, 5);
}
