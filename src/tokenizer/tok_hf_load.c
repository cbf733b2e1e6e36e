/*
 * tok_hf_load.c - reads a Hugging Face tokenizer.json (BPE model) with
 * jansson: vocabulary, merges, added tokens, the normalizer and
 * pre-tokenizer steps it can run exactly.  Anything else is refused with a
 * one-line error rather than tokenized differently.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "tokenizer/tok_internal.h"

#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* Loading state: the tokenizer and a buffer for showing names. */
typedef struct hf_ld {
    mx_tok *tok;
    tok_hf *hf;
    mixq_error *err;
    char shown[MX_SHOWN_BUF];
} hf_ld;

static mixq_status bad(hf_ld *l, const char *what)
{
    return mx_err(l->err, MIXQ_E_FORMAT, "%s: %s", l->tok->name, what);
}

/* A member that must be a string (or absent/null when optional); its bytes and length. */
static int get_str(json_t *o, const char *key, const char **s, size_t *n)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) return -1;
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 0;
}

/* A boolean member with a default (absent or null); -1 when of another type. */
static int get_bool(json_t *o, const char *key, int def)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return def;
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Appends one normalizer (flattening Sequence). */
static mixq_status add_normalizer(hf_ld *l, json_t *n, int depth)
{
    const char *type, *a, *b;
    size_t tn, an, bn;
    if (json_is_null(n)) return MIXQ_OK;
    if (!json_is_object(n) || get_str(n, "type", &type, &tn)) return bad(l, "normalizer is not an object with a type");
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(n, "normalizers");
        if (!json_is_array(arr) || depth > 8) return bad(l, "normalizer Sequence without a normalizers array");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            mixq_status s = add_normalizer(l, json_array_get(arr, i), depth + 1);
            if (s) return s;
        }
        return MIXQ_OK;
    }
    tok_norm t = {0};
    if (strcmp(type, "Prepend") == 0) {
        if (get_str(n, "prepend", &a, &an)) return bad(l, "normalizer Prepend without a prepend string");
        t = (tok_norm){TN_PREPEND, dup_n(a, an), NULL, an, 0};
    } else if (strcmp(type, "Replace") == 0) {
        json_t *pat = json_object_get(n, "pattern");
        if (!json_is_object(pat) || get_str(pat, "String", &a, &an) || get_str(n, "content", &b, &bn))
            return mx_err(l->err, MIXQ_E_UNSUPPORTED,
                          "%s: normalizer Replace: only a String pattern and a content string are supported",
                          l->tok->name);
        if (an == 0) return bad(l, "normalizer Replace with an empty pattern");
        t = (tok_norm){TN_REPLACE, dup_n(a, an), dup_n(b, bn), an, bn};
        if (!t.b) free(t.a), t.a = NULL;
    } else if (strcmp(type, "NFC") == 0 || strcmp(type, "NFD") == 0 || strcmp(type, "NFKC") == 0 ||
               strcmp(type, "NFKD") == 0) {
        t.kind = type[2] == 'C' ? TN_NFC : type[2] == 'D' ? TN_NFD : type[3] == 'C' ? TN_NFKC : TN_NFKD;
        t.a = dup_n("", 0);
    } else {
        return mx_err(l->err, MIXQ_E_UNSUPPORTED, "%s: normalizer \"%s\" is not supported", l->tok->name,
                      mx_shown(type, l->shown));
    }
    if (!t.a) return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", l->tok->name);
    tok_norm *p = realloc(l->hf->norm, (l->hf->n_norm + 1) * sizeof *p);
    if (!p) {
        free(t.a);
        free(t.b);
        return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", l->tok->name);
    }
    l->hf->norm = p;
    p[l->hf->n_norm++] = t;
    return MIXQ_OK;
}

/* Compiles a regular expression with PCRE2 (UTF, Unicode properties). */
static mixq_status compile_re(hf_ld *l, const char *pat, size_t n, void **out)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, n, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(code, msg, sizeof msg);
        return mx_err(l->err, MIXQ_E_UNSUPPORTED, "%s: pre_tokenizer regex: %s at offset %zu", l->tok->name,
                      (const char *)msg, (size_t)off);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: matching falls back to the interpreter */
    *out = re;
    return MIXQ_OK;
}

static mixq_status push_pre(hf_ld *l, tok_pre *t)
{
    tok_pre *p = realloc(l->hf->pre, (l->hf->n_pre + 1) * sizeof *p);
    if (!p) {
        pcre2_code_free(t->re);
        free(t->lit);
        free(t->repl);
        return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", l->tok->name);
    }
    l->hf->pre = p;
    p[l->hf->n_pre++] = *t;
    return MIXQ_OK;
}

/* Appends one pre-tokenizer (flattening Sequence). */
static mixq_status add_pre(hf_ld *l, json_t *n, int depth)
{
    const char *type, *s;
    size_t tn, sn;
    if (json_is_null(n)) return MIXQ_OK;
    if (!json_is_object(n) || get_str(n, "type", &type, &tn)) return bad(l, "pre_tokenizer is not an object with a type");
    tok_pre t = {0};
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(n, "pretokenizers");
        if (!json_is_array(arr) || depth > 8) return bad(l, "pre_tokenizer Sequence without a pretokenizers array");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            mixq_status st = add_pre(l, json_array_get(arr, i), depth + 1);
            if (st) return st;
        }
        return MIXQ_OK;
    } else if (strcmp(type, "ByteLevel") == 0) {
        t.kind = TP_BYTELEVEL;
        t.behavior = TP_ISOLATED; /* its regex splits like an Isolated Split */
        t.add_prefix_space = get_bool(n, "add_prefix_space", 1);
        t.use_regex = get_bool(n, "use_regex", 1);
        if (t.add_prefix_space < 0 || t.use_regex < 0) return bad(l, "pre_tokenizer ByteLevel: a flag is not a boolean");
        if (t.use_regex) {
            mixq_status st = compile_re(l, GPT2_REGEX, strlen(GPT2_REGEX), &t.re);
            if (st) return st;
        }
        l->hf->byte_level = 1;
    } else if (strcmp(type, "Split") == 0) {
        const char *beh;
        size_t bn;
        json_t *pat = json_object_get(n, "pattern");
        t.kind = TP_SPLIT;
        if (get_bool(n, "invert", 0) != 0)
            return mx_err(l->err, MIXQ_E_UNSUPPORTED, "%s: pre_tokenizer Split: invert is not supported", l->tok->name);
        if (get_str(n, "behavior", &beh, &bn)) return bad(l, "pre_tokenizer Split without a behavior");
        t.behavior = strcmp(beh, "Isolated") == 0 ? TP_ISOLATED : strcmp(beh, "Removed") == 0 ? TP_REMOVED
                     : strcmp(beh, "MergedWithPrevious") == 0 ? TP_MERGED_PREV
                     : strcmp(beh, "MergedWithNext") == 0 ? TP_MERGED_NEXT : 0;
        if (!t.behavior)
            return mx_err(l->err, MIXQ_E_UNSUPPORTED, "%s: pre_tokenizer Split: behavior \"%s\" is not supported",
                          l->tok->name, mx_shown(beh, l->shown));
        if (json_is_object(pat) && get_str(pat, "Regex", &s, &sn) == 0) {
            mixq_status st = compile_re(l, s, sn, &t.re);
            if (st) return st;
        } else if (json_is_object(pat) && get_str(pat, "String", &s, &sn) == 0 && sn > 0) {
            if (!(t.lit = dup_n(s, sn))) return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", l->tok->name);
            t.lit_len = sn;
        } else {
            return bad(l, "pre_tokenizer Split without a Regex or non-empty String pattern");
        }
    } else if (strcmp(type, "Metaspace") == 0) {
        const char *sch;
        size_t schn;
        t.kind = TP_METASPACE;
        if (get_str(n, "replacement", &s, &sn) || sn == 0 || tu_invalid_at(s, sn) < sn)
            return bad(l, "pre_tokenizer Metaspace without a replacement character");
        if (get_str(n, "prepend_scheme", &sch, &schn) == 0) {
            t.prepend = strcmp(sch, "always") == 0 ? TP_PREPEND_ALWAYS : strcmp(sch, "first") == 0 ? TP_PREPEND_FIRST
                        : strcmp(sch, "never") == 0 ? TP_PREPEND_NEVER : -1;
            if (t.prepend < 0) return bad(l, "pre_tokenizer Metaspace: unknown prepend_scheme");
        } else {
            int a = get_bool(n, "add_prefix_space", 1);
            if (a < 0) return bad(l, "pre_tokenizer Metaspace: add_prefix_space is not a boolean");
            t.prepend = a ? TP_PREPEND_ALWAYS : TP_PREPEND_NEVER;
        }
        t.split = get_bool(n, "split", 1);
        if (t.split < 0) return bad(l, "pre_tokenizer Metaspace: split is not a boolean");
        if (!(t.repl = dup_n(s, sn))) return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", l->tok->name);
        t.repl_len = sn;
        if (t.prepend != TP_PREPEND_NEVER) l->tok->strip_first_space = 1;
    } else {
        return mx_err(l->err, MIXQ_E_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported", l->tok->name,
                      mx_shown(type, l->shown));
    }
    return push_pre(l, &t);
}

/* Largest id of the vocabulary and the added tokens, checked. */
static mixq_status count_ids(hf_ld *l, json_t *vocab, json_t *added, uint64_t *n)
{
    const char *key;
    json_t *val;
    uint64_t max = 0, count = 0;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= MX_TOK_MAX_VOCAB)
            return mx_err(l->err, MIXQ_E_FORMAT, "%s: model.vocab: \"%s\" has no valid id", l->tok->name,
                          mx_shown(key, l->shown));
        if ((uint64_t)json_integer_value(val) + 1 > max) max = (uint64_t)json_integer_value(val) + 1;
        count++;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *id = json_object_get(json_array_get(added, i), "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= MX_TOK_MAX_VOCAB)
            return mx_err(l->err, MIXQ_E_FORMAT, "%s: added_tokens[%zu] has no valid id", l->tok->name, i);
        if ((uint64_t)json_integer_value(id) + 1 > max) max = (uint64_t)json_integer_value(id) + 1;
    }
    if (count == 0) return bad(l, "model.vocab is empty");
    *n = max;
    return MIXQ_OK;
}

/* Sets every piece of the vocabulary and the added tokens. */
static mixq_status load_vocab(hf_ld *l, json_t *vocab, json_t *added)
{
    mx_tok *tok = l->tok;
    uint64_t n = 0;
    mixq_status st = count_ids(l, vocab, added, &n);
    if (st) return st;
    if (tv_init(&tok->v, (uint32_t)n) || !(tok->score = calloc(n, sizeof *tok->score)) || !(tok->type = calloc(n, 1)))
        return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory for %llu tokens", tok->name, (unsigned long long)n);
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        size_t kn = strlen(key);
        uint32_t id = (uint32_t)json_integer_value(val);
        if (kn == 0 || tu_invalid_at(key, kn) < kn) return bad(l, "model.vocab has an empty or non-UTF-8 token");
        if (tok->v.len[id] != UINT32_MAX)
            return mx_err(l->err, MIXQ_E_FORMAT, "%s: model.vocab: id %u is used twice", tok->name, id);
        if (tv_set(&tok->v, id, key, kn)) return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
        tok->type[id] = SPT_NORMAL;
    }
    size_t na = json_array_size(added);
    if (na && !(l->hf->added = calloc(na, sizeof *l->hf->added)))
        return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    for (size_t i = 0; i < na; i++) {
        json_t *a = json_array_get(added, i);
        const char *c;
        size_t cn;
        uint32_t id = (uint32_t)json_integer_value(json_object_get(a, "id"));
        int special = get_bool(a, "special", 0), ls = get_bool(a, "lstrip", 0), rs = get_bool(a, "rstrip", 0),
            sw = get_bool(a, "single_word", 0);
        if (get_str(a, "content", &c, &cn) || cn == 0 || tu_invalid_at(c, cn) < cn || special < 0 || ls < 0 ||
            rs < 0 || sw < 0)
            return mx_err(l->err, MIXQ_E_FORMAT, "%s: added_tokens[%zu]: bad content or flags", tok->name, i);
        if (sw)
            return mx_err(l->err, MIXQ_E_UNSUPPORTED, "%s: added token \"%s\": single_word is not supported",
                          tok->name, mx_shown(c, l->shown));
        if (tok->v.len[id] != UINT32_MAX &&
            (tok->v.len[id] != cn || memcmp(tok->v.text.p + tok->v.off[id], c, cn) != 0))
            return mx_err(l->err, MIXQ_E_FORMAT, "%s: added token \"%s\" reuses id %u of another token", tok->name,
                          mx_shown(c, l->shown), id);
        if (tok->v.len[id] == UINT32_MAX && tv_set(&tok->v, id, c, cn))
            return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
        tok->type[id] = special ? SPT_CONTROL : SPT_USER;
        l->hf->added[l->hf->n_added++] = (tok_added){(int32_t)id, (uint8_t)ls, (uint8_t)rs, (uint8_t)special};
    }
    int64_t dup = tv_index(&tok->v);
    if (dup == -2) return mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    if (dup >= 0)
        return mx_err(l->err, MIXQ_E_FORMAT, "%s: token \"%s\" (id %lld) appears twice", tok->name,
                      mx_shown(tok->v.text.p + tok->v.off[dup], l->shown), (long long)dup);
    for (size_t i = 1; i < l->hf->n_added; i++) { /* longest first, stable */
        tok_added x = l->hf->added[i];
        size_t j = i;
        while (j > 0 && tok->v.len[l->hf->added[j - 1].id] < tok->v.len[x.id]) {
            l->hf->added[j] = l->hf->added[j - 1];
            j--;
        }
        l->hf->added[j] = x;
    }
    return MIXQ_OK;
}

/* Reads the merges ("a b" strings or [a, b] arrays) into the pair table, rank = position. */
static mixq_status load_merges(hf_ld *l, json_t *merges)
{
    mx_tok *tok = l->tok;
    if (!merges || json_is_null(merges)) return MIXQ_OK;
    if (!json_is_array(merges)) return bad(l, "model.merges is not an array");
    tok_buf cat = {0};
    mixq_status st = MIXQ_OK;
    for (size_t i = 0; i < json_array_size(merges) && !st; i++) {
        json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t an, bn;
        if (json_is_string(m)) {
            a = json_string_value(m);
            const char *sp = memchr(a, ' ', json_string_length(m));
            if (!sp) {
                st = mx_err(l->err, MIXQ_E_FORMAT, "%s: model.merges[%zu] is not \"a b\"", tok->name, i);
                break;
            }
            an = (size_t)(sp - a);
            b = sp + 1;
            bn = json_string_length(m) - an - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            an = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            bn = json_string_length(json_array_get(m, 1));
        } else {
            st = mx_err(l->err, MIXQ_E_FORMAT, "%s: model.merges[%zu] is neither \"a b\" nor [a, b]", tok->name, i);
            break;
        }
        cat.len = 0;
        int32_t ia = tv_find(&tok->v, a, an), ib = tv_find(&tok->v, b, bn), im = -1;
        if (tb_add(&cat, a, an) || tb_add(&cat, b, bn)) st = mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
        else if ((im = tv_find(&tok->v, cat.p, cat.len)) < 0 || ia < 0 || ib < 0)
            st = mx_err(l->err, MIXQ_E_FORMAT, "%s: model.merges[%zu] \"%s\" names a token not in the vocabulary",
                        tok->name, i, mx_shown_n(cat.p, cat.len, l->shown));
        else if (tp_add(&l->hf->merges, ia, ib, (uint32_t)i, im))
            st = mx_err(l->err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    }
    free(cat.p);
    return st;
}

/* The id of a token named by tokenizer_config.json's key (a string or {"content": ...}), or -1. */
static int32_t config_token(const mx_tok *tok, json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return -1;
    return tv_find(&tok->v, json_string_value(v), json_string_length(v));
}

/* The first of the usual names that is a token, or -1. */
static int32_t first_known(const mx_tok *tok, const char *const *names)
{
    for (; *names; names++) {
        int32_t id = tv_find(&tok->v, *names, strlen(*names));
        if (id >= 0) return id;
    }
    return -1;
}

/* BOS/EOS: from tokenizer_config.json when given, else the usual special token names. */
static mixq_status special_ids(hf_ld *l, const char *config, size_t config_len)
{
    static const char *const bos[] = {"<s>", "<|begin_of_text|>", "<bos>", NULL};
    static const char *const eos[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", NULL};
    mx_tok *tok = l->tok;
    tok->bos = first_known(tok, bos);
    tok->eos = first_known(tok, eos);
    if (!config) return MIXQ_OK;
    json_error_t je;
    json_t *cfg = json_loadb(config, config_len, 0, &je);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return mx_err(l->err, MIXQ_E_FORMAT, "%s: tokenizer_config.json is not a JSON object", tok->name);
    }
    json_t *b = json_object_get(cfg, "bos_token"), *e = json_object_get(cfg, "eos_token");
    if (b) tok->bos = config_token(tok, cfg, "bos_token");
    if (e) tok->eos = config_token(tok, cfg, "eos_token");
    json_decref(cfg);
    return MIXQ_OK;
}

/* The model object: a BPE with options this code runs exactly. */
static mixq_status load_model(hf_ld *l, json_t *model, json_t *added)
{
    const char *s;
    size_t sn;
    if (!json_is_object(model)) return bad(l, "no model object");
    if (get_str(model, "type", &s, &sn) == 0 && strcmp(s, "BPE") != 0)
        return mx_err(l->err, MIXQ_E_UNSUPPORTED, "%s: model type \"%s\" is not supported (only BPE)", l->tok->name,
                      mx_shown(s, l->shown));
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) return bad(l, "model.vocab is not an object");
    if (added && !json_is_array(added)) return bad(l, "added_tokens is not an array");
    json_t *drop = json_object_get(model, "dropout");
    if (drop && !json_is_null(drop) && !(json_is_number(drop) && json_number_value(drop) == 0))
        return mx_err(l->err, MIXQ_E_UNSUPPORTED, "%s: BPE dropout is not supported", l->tok->name);
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(model, k ? "end_of_word_suffix" : "continuing_subword_prefix");
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return mx_err(l->err, MIXQ_E_UNSUPPORTED, "%s: BPE %s is not supported", l->tok->name,
                          k ? "end_of_word_suffix" : "continuing_subword_prefix");
    }
    l->hf->byte_fallback = get_bool(model, "byte_fallback", 0);
    l->hf->fuse_unk = get_bool(model, "fuse_unk", 0);
    l->hf->ignore_merges = get_bool(model, "ignore_merges", 0);
    if (l->hf->byte_fallback < 0 || l->hf->fuse_unk < 0 || l->hf->ignore_merges < 0)
        return bad(l, "model: byte_fallback, fuse_unk or ignore_merges is not a boolean");
    mixq_status st = load_vocab(l, vocab, added);
    if (!st) st = load_merges(l, json_object_get(model, "merges"));
    if (st) return st;
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) {
        l->tok->unk = tv_find(&l->tok->v, json_string_value(unk), json_string_length(unk));
        if (l->tok->unk < 0) return bad(l, "model.unk_token is not in the vocabulary");
    } else if (unk && !json_is_null(unk)) {
        return bad(l, "model.unk_token is not a string");
    }
    return MIXQ_OK;
}

mixq_status tok_hf_load(mx_tok *tok, const char *data, size_t len, const char *config, size_t config_len,
                        mixq_error *err)
{
    hf_ld l = {tok, NULL, err, {0}};
    json_error_t je;
    if (!(tok->hf = l.hf = calloc(1, sizeof *l.hf))) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return mx_err(err, MIXQ_E_FORMAT, "%s: invalid JSON at line %d column %d: %s", tok->name, je.line, je.column,
                      je.text);
    mixq_status st = MIXQ_OK;
    if (!json_is_object(root)) st = bad(&l, "not a JSON object");
    if (!st) st = load_model(&l, json_object_get(root, "model"), json_object_get(root, "added_tokens"));
    json_t *norm = json_object_get(root, "normalizer");
    if (!st && norm) st = add_normalizer(&l, norm, 0);
    json_t *pre = json_object_get(root, "pre_tokenizer");
    if (!st && pre) st = add_pre(&l, pre, 0);
    for (size_t i = 0; !st && i < l.hf->n_norm; i++)
        if (l.hf->norm[i].kind == TN_PREPEND) tok->strip_first_space = 1;
    if (!st) st = special_ids(&l, config, config_len);
    json_decref(root);
    return st;
}

void tok_hf_free(tok_hf *hf)
{
    if (!hf) return;
    for (size_t i = 0; i < hf->n_norm; i++) {
        free(hf->norm[i].a);
        free(hf->norm[i].b);
    }
    for (size_t i = 0; i < hf->n_pre; i++) {
        pcre2_code_free(hf->pre[i].re);
        free(hf->pre[i].lit);
        free(hf->pre[i].repl);
    }
    free(hf->norm);
    free(hf->pre);
    free(hf->added);
    tp_free(&hf->merges);
    free(hf);
}
