/*
 * gguf_vocab.c - vocabularies for GGUF (see gguf_vocab.h): a SentencePiece
 * ModelProto decoded from its protobuf wire format, a tokenizer.json BPE
 * model through jansson.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error.h"
#include "convert/gguf_vocab.h"

void gv_free(gv_vocab *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) free(v->tokens ? v->tokens[i] : NULL);
    free(v->tokens);
    free(v->token_len);
    free(v->scores);
    free(v->types);
    for (size_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

static int alloc_tokens(gv_vocab *v, size_t n, bool scores)
{
    v->tokens = calloc(n ? n : 1, sizeof *v->tokens);
    v->token_len = calloc(n ? n : 1, sizeof *v->token_len);
    v->types = calloc(n ? n : 1, sizeof *v->types);
    v->scores = scores ? calloc(n ? n : 1, sizeof *v->scores) : NULL;
    return v->tokens && v->token_len && v->types && (!scores || v->scores) ? 0 : -1;
}

static char *dup_n(const void *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ---------------------------------------------------------------- protobuf */

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static bool pb_varint(pb *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return false;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Reads one field: its number, wire type, and (length-delimited) its bytes or (varint/fixed) its value. */
static bool pb_field(pb *r, uint32_t *field, uint32_t *wire, pb *sub, uint64_t *val)
{
    uint64_t key;
    if (!pb_varint(r, &key) || key >> 32) return false;
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    switch (*wire) {
    case 0: return pb_varint(r, val);
    case 1:
        if (r->end - r->p < 8) return false;
        *val = 0;
        for (int i = 7; i >= 0; i--) *val = *val << 8 | r->p[i];
        r->p += 8;
        return true;
    case 5:
        if (r->end - r->p < 4) return false;
        *val = (uint64_t)r->p[0] | (uint64_t)r->p[1] << 8 | (uint64_t)r->p[2] << 16 | (uint64_t)r->p[3] << 24;
        r->p += 4;
        return true;
    case 2: {
        uint64_t n;
        if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return false;
        sub->p = r->p;
        sub->end = r->p + n;
        r->p += n;
        return true;
    }
    default: return false; /* groups (3, 4) are not used by SentencePiece */
    }
}

/* SentencePiece.Type -> llama.cpp token type (NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, BYTE 6, UNUSED 5). */
static int32_t sp_type(uint64_t t)
{
    switch (t) {
    case 2: return GV_UNKNOWN;
    case 3: return GV_CONTROL;
    case 4: return GV_USER_DEFINED;
    case 5: return GV_UNUSED;
    case 6: return GV_BYTE;
    default: return GV_NORMAL;
    }
}

mixq_status gv_from_sentencepiece(const char *name, const uint8_t *p, size_t len, uint64_t pad_to, gv_vocab *v,
                                  mixq_error *err)
{
    memset(v, 0, sizeof *v);
    v->model = "llama";
    v->bos = 1, v->eos = 2, v->unk = 0, v->pad = -1; /* TrainerSpec defaults */
    v->add_bos = -1, v->add_eos = -1;
    pb r = {p, p + len}, sub;
    uint32_t f, w;
    uint64_t val;
    size_t count = 0;
    /* pass 1: count the pieces and read the trainer spec */
    while (r.p < r.end) {
        if (!pb_field(&r, &f, &w, &sub, &val))
            return mx_err(err, MIXQ_E_FORMAT, "%s: not a SentencePiece model (bad protobuf at byte %zu)", name,
                          (size_t)(r.p - p));
        if (f == 1 && w == 2) count++;
        if (f == 2 && w == 2) { /* TrainerSpec: unk_id 40, bos_id 41, eos_id 42, pad_id 43 */
            pb t = sub, s2;
            uint32_t tf, tw;
            uint64_t tv;
            while (t.p < t.end) {
                if (!pb_field(&t, &tf, &tw, &s2, &tv))
                    return mx_err(err, MIXQ_E_FORMAT, "%s: not a SentencePiece model (bad trainer spec)", name);
                int64_t id = (int64_t)(int32_t)(uint32_t)tv;
                if (tw == 0 && tf == 40) v->unk = id;
                if (tw == 0 && tf == 41) v->bos = id;
                if (tw == 0 && tf == 42) v->eos = id;
                if (tw == 0 && tf == 43) v->pad = id;
            }
        }
    }
    if (count == 0) return mx_err(err, MIXQ_E_FORMAT, "%s: a SentencePiece model without pieces", name);
    uint64_t total = pad_to > count ? pad_to : count;
    if (total > GV_MAX_TOKENS)
        return mx_err(err, MIXQ_E_FORMAT, "%s: %llu tokens; at most %u are supported", name,
                      (unsigned long long)total, GV_MAX_TOKENS);
    if (alloc_tokens(v, (size_t)total, true)) {
        gv_free(v);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
    }
    v->n = (size_t)total;
    /* pass 2: the pieces */
    r = (pb){p, p + len};
    size_t i = 0;
    while (r.p < r.end) {
        pb_field(&r, &f, &w, &sub, &val); /* checked in pass 1 */
        if (f != 1 || w != 2) continue;
        const uint8_t *piece = NULL;
        size_t plen = 0;
        float score = 0;
        uint64_t type = 1;
        pb s = sub, s2;
        uint32_t pf, pw;
        uint64_t pv;
        while (s.p < s.end) {
            if (!pb_field(&s, &pf, &pw, &s2, &pv)) {
                gv_free(v);
                return mx_err(err, MIXQ_E_FORMAT, "%s: piece %zu: bad protobuf", name, i);
            }
            if (pf == 1 && pw == 2) piece = s2.p, plen = (size_t)(s2.end - s2.p);
            if (pf == 2 && pw == 5) {
                uint32_t u = (uint32_t)pv;
                memcpy(&score, &u, sizeof score);
            }
            if (pf == 3 && pw == 0) type = pv;
        }
        if (!piece || memchr(piece, 0, plen)) {
            gv_free(v);
            return mx_err(err, MIXQ_E_FORMAT, "%s: piece %zu has no text or a NUL byte", name, i);
        }
        v->tokens[i] = dup_n(piece, plen);
        v->token_len[i] = plen;
        v->scores[i] = score;
        v->types[i] = sp_type(type);
        if (!v->tokens[i]) {
            gv_free(v);
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
        }
        i++;
    }
    for (; i < v->n; i++) { /* padding up to the model's vocab_size */
        char b[32];
        int bl = snprintf(b, sizeof b, "[PAD%zu]", i);
        v->tokens[i] = dup_n(b, (size_t)bl);
        v->token_len[i] = (size_t)bl;
        v->scores[i] = -1000.0f;
        v->types[i] = GV_UNUSED;
        if (!v->tokens[i]) {
            gv_free(v);
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
        }
    }
    return MIXQ_OK;
}

/* ---------------------------------------------------------------- tokenizer.json */

/* The pre-tokenizer name llama.cpp uses for a known byte-level BPE pre-tokenizer regex, or NULL. */
static const char *known_pre(json_t *root)
{
    char *s = json_dumps(json_object_get(root, "pre_tokenizer"), JSON_COMPACT | JSON_SORT_KEYS);
    if (!s) return NULL;
    const char *name = NULL;
    /* Llama 3's split pattern (three-digit number groups, contractions case-insensitive) */
    if (strstr(s, "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}"))
        name = "llama-bpe";
    /* Qwen2's: single digits */
    else if (strstr(s, "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}|"))
        name = "qwen2";
    /* GPT-2's: the ByteLevel pre-tokenizer with its own regex */
    else if (strstr(s, "\"type\":\"ByteLevel\"") && strstr(s, "\"use_regex\":true"))
        name = "gpt2";
    free(s);
    return name;
}

mixq_status gv_from_tokenizer_json(const char *name, const char *text, size_t len, uint64_t pad_to, gv_vocab *v,
                                   mixq_error *err)
{
    memset(v, 0, sizeof *v);
    v->model = "gpt2";
    v->bos = v->eos = v->unk = v->pad = -1;
    v->add_bos = v->add_eos = -1;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return mx_err(err, MIXQ_E_FORMAT, "%s: not valid JSON (line %d: %s)", name, je.line, je.text);
    mixq_status s = MIXQ_OK;
    json_t *model = json_object_get(root, "model"), *vocab = json_object_get(model, "vocab"),
           *merges = json_object_get(model, "merges"), *added = json_object_get(root, "added_tokens");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!type || strcmp(type, "BPE") || !json_is_object(vocab) || !json_is_array(merges)) {
        s = mx_err(err, MIXQ_E_UNSUPPORTED, "%s: only BPE tokenizers (model.type \"BPE\" with vocab and merges) "
                   "can be exported to GGUF", name);
        goto out;
    }
    /* the vocabulary size: the largest id + 1 over vocab and added tokens, at least pad_to */
    uint64_t n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= GV_MAX_TOKENS) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: model.vocab: bad id for a token", name);
            goto out;
        }
        if ((uint64_t)id + 1 > n) n = (uint64_t)id + 1;
    }
    size_t ai;
    json_array_foreach(added, ai, val) {
        json_int_t id = json_integer_value(json_object_get(val, "id"));
        if (!json_is_string(json_object_get(val, "content")) || id < 0 || id >= GV_MAX_TOKENS) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: added_tokens[%zu]: bad entry", name, ai);
            goto out;
        }
        if ((uint64_t)id + 1 > n) n = (uint64_t)id + 1;
    }
    if (pad_to > n) n = pad_to;
    if (n > GV_MAX_TOKENS || json_array_size(merges) > GV_MAX_TOKENS * 4) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: vocabulary too large", name);
        goto out;
    }
    if (alloc_tokens(v, (size_t)n, false)) {
        s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
        goto out;
    }
    v->n = (size_t)n;
    json_object_foreach(vocab, key, val) {
        size_t id = (size_t)json_integer_value(val);
        if (v->tokens[id]) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: token id %zu is used twice", name, id);
            goto out;
        }
        v->tokens[id] = dup_n(key, strlen(key));
        v->token_len[id] = strlen(key);
        v->types[id] = GV_NORMAL;
        if (!v->tokens[id]) {
            s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
            goto out;
        }
    }
    json_array_foreach(added, ai, val) {
        size_t id = (size_t)json_integer_value(json_object_get(val, "id"));
        const char *c = json_string_value(json_object_get(val, "content"));
        size_t cl = json_string_length(json_object_get(val, "content"));
        if (memchr(c, 0, cl)) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: added_tokens[%zu]: a NUL in the token", name, ai);
            goto out;
        }
        if (!v->tokens[id]) {
            v->tokens[id] = dup_n(c, cl);
            v->token_len[id] = cl;
            if (!v->tokens[id]) {
                s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
                goto out;
            }
        }
        v->types[id] = json_is_true(json_object_get(val, "special")) ? GV_CONTROL : GV_USER_DEFINED;
    }
    for (size_t i = 0; i < v->n; i++) {
        if (v->tokens[i]) continue;
        char b[32];
        int bl = snprintf(b, sizeof b, "[PAD%zu]", i);
        v->tokens[i] = dup_n(b, (size_t)bl);
        v->token_len[i] = (size_t)bl;
        v->types[i] = GV_UNUSED;
        if (!v->tokens[i]) {
            s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
            goto out;
        }
    }
    v->n_merges = json_array_size(merges);
    v->merges = calloc(v->n_merges ? v->n_merges : 1, sizeof *v->merges);
    if (!v->merges) {
        v->n_merges = 0;
        s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
        goto out;
    }
    json_array_foreach(merges, ai, val) {
        char *m = NULL;
        if (json_is_string(val)) { /* "a b" */
            m = dup_n(json_string_value(val), json_string_length(val));
        } else if (json_is_array(val) && json_array_size(val) == 2 && json_is_string(json_array_get(val, 0)) &&
                   json_is_string(json_array_get(val, 1))) { /* ["a", "b"] (newer tokenizers) */
            json_t *a = json_array_get(val, 0), *b = json_array_get(val, 1);
            size_t la = json_string_length(a), lb = json_string_length(b);
            m = malloc(la + lb + 2);
            if (m) {
                memcpy(m, json_string_value(a), la);
                m[la] = ' ';
                memcpy(m + la + 1, json_string_value(b), lb);
                m[la + lb + 1] = '\0';
            }
        } else {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", name, ai);
            goto out;
        }
        if (!m) {
            s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
            goto out;
        }
        v->merges[ai] = m;
    }
    v->pre = known_pre(root);
out:
    json_decref(root);
    if (s != MIXQ_OK) gv_free(v);
    return s;
}

/* The id of a special token named in tokenizer_config.json (a string or {"content": ...}), or -1. */
static int64_t token_id_of(const gv_vocab *v, json_t *t)
{
    const char *c = json_is_string(t) ? json_string_value(t) : json_string_value(json_object_get(t, "content"));
    if (!c) return -1;
    size_t n = strlen(c);
    for (size_t i = 0; i < v->n; i++)
        if (v->token_len[i] == n && !memcmp(v->tokens[i], c, n)) return (int64_t)i;
    return -1;
}

void gv_apply_tokenizer_config(gv_vocab *v, const char *text, size_t len)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    json_t *b = json_object_get(root, "add_bos_token"), *e = json_object_get(root, "add_eos_token");
    if (json_is_boolean(b)) v->add_bos = json_is_true(b);
    if (json_is_boolean(e)) v->add_eos = json_is_true(e);
    int64_t id;
    if ((id = token_id_of(v, json_object_get(root, "bos_token"))) >= 0) v->bos = id;
    if ((id = token_id_of(v, json_object_get(root, "eos_token"))) >= 0) v->eos = id;
    if ((id = token_id_of(v, json_object_get(root, "unk_token"))) >= 0) v->unk = id;
    if ((id = token_id_of(v, json_object_get(root, "pad_token"))) >= 0) v->pad = id;
    json_decref(root);
}
