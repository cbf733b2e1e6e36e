/* tok_api.c - loading (from bytes or a model directory), encode/decode entry points, accessors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/path.h"
#include "common/checked.h"
#include "tokenizer/tok_internal.h"

/* The byte of a "<0xHH>" piece, or -1. */
static int byte_piece(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    const char *h = strchr(hex, s[3]), *l = strchr(hex, s[4]);
    if (!h || !l || !s[3] || !s[4]) return -1;
    return (int)((h - hex) * 16 + (l - hex));
}

/* The inverse of the GPT-2 byte-to-character map: the byte of code point cp, or -1. */
static int bytelevel_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp < 0x100 || cp > 0x143) return -1;
    uint32_t k = cp - 0x100; /* the k-th byte outside those ranges, in byte order */
    for (int b = 0; b < 256; b++) {
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) continue;
        if (k-- == 0) return b;
    }
    return -1;
}

/* The bytes piece id stands for in text (see mx_tok_decode_piece), appended to out. */
static int decode_one(const mx_tok *tok, uint32_t id, tok_buf *out)
{
    if (tok->v.len[id] == UINT32_MAX || tok->type[id] == SPT_CONTROL) return 0;
    const char *s = tok->v.text.p + tok->v.off[id];
    size_t n = tok->v.len[id];
    uint8_t t = tok->type[id];
    if (tok->byte_id[0] >= 0 || t == SPT_BYTE) { /* byte pieces (byte fallback) */
        int b = byte_piece(s, n);
        if (b >= 0 && (int32_t)id == tok->byte_id[b]) {
            char c = (char)b;
            return tb_add(out, &c, 1);
        }
    }
    if (t == SPT_UNKNOWN && tok->kind == MX_TOK_SPM_MODEL) return tb_add(out, tok->unk_surface, strlen(tok->unk_surface));
    if (tok->hf && tok->hf->byte_level && t == SPT_NORMAL) {
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t k = tu_char(s + i, n - i, &cp);
            int b = k ? bytelevel_byte(cp) : -1;
            if (b >= 0) {
                char c = (char)b;
                if (tb_add(out, &c, 1)) return -1;
            } else if (tb_add(out, s + i, k ? k : 1)) {
                return -1;
            }
            i += k ? k : 1;
        }
        return 0;
    }
    for (size_t i = 0; i < n;) { /* U+2581 is a space */
        if (n - i >= 3 && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            if (tb_add(out, " ", 1)) return -1;
            i += 3;
        } else {
            if (tb_add(out, s + i, 1)) return -1;
            i++;
        }
    }
    return 0;
}

mixq_status tok_finish(mx_tok *tok, mixq_error *err)
{
    for (int b = 0; b < 256; b++) {
        char p[8];
        snprintf(p, sizeof p, "<0x%02X>", b);
        tok->byte_id[b] = tv_find(&tok->v, p, 6);
    }
    for (int b = 0; b < 256; b++) /* byte fallback needs all 256, or none counts */
        if (tok->byte_id[b] < 0) {
            for (int c = 0; c < 256; c++) tok->byte_id[c] = -1;
            break;
        }
    tok->dec_off = malloc((size_t)tok->v.n * sizeof *tok->dec_off);
    tok->dec_len = malloc((size_t)tok->v.n * sizeof *tok->dec_len);
    if (!tok->dec_off || !tok->dec_len) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    for (uint32_t i = 0; i < tok->v.n; i++) {
        size_t before = tok->dec.len;
        if (decode_one(tok, i, &tok->dec) || tb_add(&tok->dec, "", 0))
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
        tok->dec_off[i] = before;
        tok->dec_len[i] = (uint32_t)(tok->dec.len - before);
        tok->dec.len++; /* keep the NUL */
    }
    return MIXQ_OK;
}

mx_tok *mx_tok_load(mx_tok_kind kind, const void *data, size_t len, const void *config, size_t config_len,
                    const char *name, mixq_error *err)
{
    mx_err_clear(err);
    if (!name) name = "tokenizer";
    if (!data && len) {
        mx_err(err, MIXQ_E_INVALID_ARG, "%s: no data", name);
        return NULL;
    }
    if (len > MX_TOK_MAX_FILE || config_len > MX_TOK_MAX_FILE) {
        mx_err(err, MIXQ_E_FORMAT, "%s: %zu bytes, more than the limit of %u", name, len, MX_TOK_MAX_FILE);
        return NULL;
    }
    mx_tok *tok = calloc(1, sizeof *tok);
    if (!tok) {
        mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    tok->kind = kind;
    mx_shown(name, tok->name);
    tok->bos = tok->eos = tok->unk = -1;
    mixq_status st;
    if (kind == MX_TOK_SPM_MODEL) st = tok_spm_load(tok, data, len, err);
    else if (kind == MX_TOK_HF_JSON) st = tok_hf_load(tok, data, len, config, config_len, err);
    else st = mx_err(err, MIXQ_E_INVALID_ARG, "%s: unknown tokenizer kind %d", tok->name, (int)kind);
    if (!st) st = tok_finish(tok, err);
    if (st) {
        mx_tok_free(tok);
        return NULL;
    }
    return tok;
}

/* Reads a whole file (at most MX_TOK_MAX_FILE bytes); NULL with errno-based err on failure. */
static char *read_file(const char *path, size_t *len, mixq_error *err)
{
    char shown[MX_SHOWN_BUF];
    FILE *f = fopen(path, "rb");
    if (!f) {
        mx_err(err, MIXQ_E_IO, "%s: %s", mx_shown(path, shown), strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        mx_err(err, MIXQ_E_IO, "%s: not a regular file", mx_shown(path, shown));
    } else if ((uint64_t)st.st_size > MX_TOK_MAX_FILE) {
        mx_err(err, MIXQ_E_FORMAT, "%s: %lld bytes, more than the limit of %u", mx_shown(path, shown),
               (long long)st.st_size, MX_TOK_MAX_FILE);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", mx_shown(path, shown));
    } else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        mx_err(err, MIXQ_E_IO, "%s: read failed", mx_shown(path, shown));
        free(buf);
        buf = NULL;
    } else {
        *len = (size_t)st.st_size;
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}


mx_tok *mx_tok_load_dir(const char *dir, mixq_error *err)
{
    char *json = mx_path_join(dir, "tokenizer.json"), *cfg = mx_path_join(dir, "tokenizer_config.json"),
         *model = mx_path_join(dir, "tokenizer.model");
    mx_tok *tok = NULL;
    struct stat st;
    if (!json || !cfg || !model) {
        mx_err(err, MIXQ_E_NOMEM, "out of memory");
    } else if (stat(json, &st) == 0) {
        size_t n = 0, cn = 0;
        char *data = read_file(json, &n, err), *cdata = NULL;
        if (data && stat(cfg, &st) == 0) cdata = read_file(cfg, &cn, err);
        if (data && (cdata || stat(cfg, &st) != 0)) tok = mx_tok_load(MX_TOK_HF_JSON, data, n, cdata, cn, json, err);
        free(data);
        free(cdata);
    } else if (stat(model, &st) == 0) {
        size_t n = 0;
        char *data = read_file(model, &n, err);
        if (data) tok = mx_tok_load(MX_TOK_SPM_MODEL, data, n, NULL, 0, model, err);
        free(data);
    } else {
        char shown[MX_SHOWN_BUF];
        mx_err(err, MIXQ_E_NOT_FOUND, "%s: no tokenizer.json or tokenizer.model", mx_shown(dir, shown));
    }
    free(json);
    free(cfg);
    free(model);
    return tok;
}

void mx_tok_free(mx_tok *tok)
{
    if (!tok) return;
    tv_free(&tok->v);
    free(tok->score);
    free(tok->type);
    free(tok->dec.p);
    free(tok->dec_off);
    free(tok->dec_len);
    free(tok->user);
    tok_hf_free(tok->hf);
    free(tok);
}

mixq_status mx_tok_encode(const mx_tok *tok, const char *text, size_t len, int add_bos, int32_t **ids, size_t *n,
                          mixq_error *err)
{
    mx_err_clear(err);
    *ids = NULL;
    *n = 0;
    if (!text && len) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: no text", tok->name);
    size_t bad = tu_invalid_at(text, len);
    if (bad < len)
        return mx_err(err, MIXQ_E_DATA, "text is not valid UTF-8 at byte offset %zu (byte 0x%02x)", bad,
                      (unsigned char)text[bad]);
    tok_ids out = {0};
    mixq_status st = MIXQ_OK;
    if (add_bos && tok->bos >= 0 && ti_add(&out, tok->bos))
        st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    if (!st && len)
        st = tok->kind == MX_TOK_SPM_MODEL ? tok_spm_encode(tok, text, len, &out, err)
                                           : tok_hf_encode(tok, text, len, &out, err);
    if (st) {
        free(out.p);
        return st;
    }
    if (!out.p && !(out.p = malloc(sizeof *out.p))) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    *ids = out.p;
    *n = out.n;
    return MIXQ_OK;
}

const char *mx_tok_decode_piece(const mx_tok *tok, int32_t id, size_t *len)
{
    if (id < 0 || (uint32_t)id >= tok->v.n) return NULL;
    *len = tok->dec_len[id];
    return tok->dec.p + tok->dec_off[id];
}

mixq_status mx_tok_decode(const mx_tok *tok, const int32_t *ids, size_t n, char **text, size_t *len, mixq_error *err)
{
    mx_err_clear(err);
    tok_buf out = {0};
    *text = NULL;
    *len = 0;
    int bos_ws = 1; /* SentencePiece: at the start, where a piece loses one leading U+2581 */
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= tok->v.n) {
            free(out.p);
            return mx_err(err, MIXQ_E_RANGE, "%s: token id %lld (position %zu) is out of range (vocabulary of %u)",
                          tok->name, (long long)ids[i], i, tok->v.n);
        }
        const char *s = tok->dec.p + tok->dec_off[ids[i]];
        size_t l = tok->dec_len[ids[i]];
        if (tok->kind == MX_TOK_SPM_MODEL) {
            /* as sentencepiece 0.1.97's DecodeIds: control pieces are nothing and keep the start state, <unk>
               is its surface, other pieces lose one leading U+2581 while nothing has been written */
            uint8_t t = tok->type[ids[i]];
            if (t == SPT_CONTROL) continue;
            if (bos_ws && t != SPT_UNKNOWN && tok->v.len[ids[i]] >= 3 &&
                memcmp(tok->v.text.p + tok->v.off[ids[i]], "\xE2\x96\x81", 3) == 0 && l && s[0] == ' ')
                s++, l--;
            if (l || t == SPT_UNKNOWN) bos_ws = 0;
        } else if (bos_ws && l) { /* tokenizer.json: one leading space of the whole text (the Strip decoder) */
            if (tok->strip_first_space && s[0] == ' ') s++, l--;
            bos_ws = 0;
        }
        if (tb_add(&out, s, l)) {
            free(out.p);
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
        }
    }
    if (tb_add(&out, "", 0)) {
        free(out.p);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    }
    *text = out.p;
    *len = out.len;
    return MIXQ_OK;
}

size_t mx_tok_vocab_size(const mx_tok *tok) { return tok->v.n; }
int32_t mx_tok_bos(const mx_tok *tok) { return tok->bos; }
int32_t mx_tok_eos(const mx_tok *tok) { return tok->eos; }
mx_tok_kind mx_tok_get_kind(const mx_tok *tok) { return tok->kind; }

const char *mx_tok_piece(const mx_tok *tok, int32_t id, size_t *len)
{
    if (id < 0 || (uint32_t)id >= tok->v.n || tok->v.len[id] == UINT32_MAX) return NULL;
    if (len) *len = tok->v.len[id];
    return tok->v.text.p + tok->v.off[id];
}

int32_t mx_tok_piece_id(const mx_tok *tok, const char *piece, size_t len) { return tv_find(&tok->v, piece, len); }
