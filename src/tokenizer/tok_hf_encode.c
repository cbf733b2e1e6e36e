/*
 * tok_hf_encode.c - tokenizer.json encoding: added tokens matched first
 * (leftmost, longest), then per remaining segment the normalizers, the
 * pre-tokenizers (each maps a list of pieces to a new list) and the BPE model
 * on every piece, as the Hugging Face tokenizers library does.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* A list of pieces: piece i is buf.p[off.p[i] .. off.p[i] + len.p[i]). */
typedef struct plist {
    tok_buf buf;
    tok_ids off, len;
} plist;

static void pl_free(plist *l)
{
    free(l->buf.p);
    free(l->off.p);
    free(l->len.p);
    memset(l, 0, sizeof *l);
}

/* Appends a piece (empty pieces are dropped). */
static int pl_add(plist *l, const char *s, size_t n)
{
    if (n == 0) return 0;
    if (l->buf.len + n > INT32_MAX) return -1;
    int32_t off = (int32_t)l->buf.len;
    if (tb_add(&l->buf, s, n) || ti_add(&l->off, off) || ti_add(&l->len, (int32_t)n)) return -1;
    return 0;
}

/*
 * Code points that NFC leaves unchanged in any context: canonical combining
 * class 0, NFC_Quick_Check=Yes (Unicode's DerivedNormalizationProps), so a
 * string of them only is already in NFC.  A conservative subset: Latin to
 * U+02FF, Latin Extended Additional, Cyrillic letters, general punctuation to
 * the arrows, math, box drawing and shapes (without U+2000-2001, the
 * combining marks U+20D0-20F0, U+2126, U+212A-212B, U+2329-232A, U+2ADC),
 * CJK punctuation, kana, CJK ideographs, Hangul syllables, full-width forms,
 * emoji.
 */
static const uint32_t nfc_stable[][2] = {
    {0x0000, 0x02FF}, {0x0400, 0x0482}, {0x048A, 0x04FF}, {0x1E00, 0x1EFF}, {0x2002, 0x20CF},
    {0x20F1, 0x2125}, {0x2127, 0x2129}, {0x212C, 0x2328}, {0x232B, 0x2ADB}, {0x2ADD, 0x2BFF},
    {0x3000, 0x3029}, {0x3030, 0x303F}, {0x3041, 0x3096}, {0x30A0, 0x30FF}, {0x4E00, 0x9FFF},
    {0xAC00, 0xD7A3}, {0xFF01, 0xFFEE}, {0x1F000, 0x1FAFF},
};

/* Whether normalization form kind leaves code point cp unchanged in any context (conservative). */
static int nf_stable(int kind, uint32_t cp)
{
    if (cp < 0x80) return 1;
    if (kind == TN_NFC) {
        for (size_t i = 0; i < sizeof nfc_stable / sizeof nfc_stable[0]; i++)
            if (cp >= nfc_stable[i][0] && cp <= nfc_stable[i][1]) return 1;
        return 0;
    }
    if (kind == TN_NFKC) return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3);
    return cp >= 0x4E00 && cp <= 0x9FFF; /* NFD, NFKD: Hangul syllables decompose */
}

/* Applies the normalizers to one segment (out gets the result); an unsupported change is an error. */
static mixq_status normalize(const mx_tok *tok, const char *s, size_t n, size_t base, tok_buf *out, mixq_error *err)
{
    static const char *const names[] = {"", "", "", "NFC", "NFD", "NFKC", "NFKD"};
    tok_buf tmp = {0};
    if (tb_add(out, s, n)) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    for (size_t k = 0; k < tok->hf->n_norm; k++) {
        const tok_norm *t = &tok->hf->norm[k];
        tmp.len = 0;
        int rc = 0;
        if (t->kind == TN_PREPEND) {
            if (out->len == 0) continue;
            rc = tb_add(&tmp, t->a, t->alen) || tb_add(&tmp, out->p, out->len);
        } else if (t->kind == TN_REPLACE) {
            for (size_t i = 0; i < out->len && !rc;) {
                if (out->len - i >= t->alen && memcmp(out->p + i, t->a, t->alen) == 0) {
                    rc = tb_add(&tmp, t->b, t->blen);
                    i += t->alen;
                } else {
                    rc = tb_add(&tmp, out->p + i, 1);
                    i++;
                }
            }
        } else {
            for (size_t i = 0; i < out->len;) {
                uint32_t cp;
                size_t c = tu_char(out->p + i, out->len - i, &cp);
                if (!c) c = 1, cp = 0xFFFD;
                if (!nf_stable(t->kind, cp)) {
                    free(tmp.p);
                    return mx_err(err, MIXQ_E_UNSUPPORTED,
                                  "%s: %s normalization of U+%04X (near text byte %zu) is not supported", tok->name,
                                  names[t->kind], (unsigned)cp, base + i);
                }
                i += c;
            }
            continue;
        }
        if (rc) {
            free(tmp.p);
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
        }
        tok_buf sw = *out;
        *out = tmp;
        tmp = sw;
    }
    free(tmp.p);
    return MIXQ_OK;
}

/* Splits s at the matches of a regex or literal, per the Split behavior, into out. */
static int split_matches(const tok_pre *t, const char *s, size_t n, plist *out, pcre2_match_data *md,
                         pcre2_match_context *mc)
{
    size_t pos = 0, gap = 0, pending = SIZE_MAX; /* pending: start of a match to merge with the next gap */
    while (pos <= n) {
        size_t ms, me;
        if (t->re) {
            int rc = pcre2_match(t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, mc);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) return -2;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            ms = ov[0];
            me = ov[1];
        } else {
            const char *f = NULL;
            for (size_t i = pos; i + t->lit_len <= n; i++)
                if (memcmp(s + i, t->lit, t->lit_len) == 0) {
                    f = s + i;
                    break;
                }
            if (!f) break;
            ms = (size_t)(f - s);
            me = ms + t->lit_len;
        }
        if (me == ms) { /* an empty match splits nothing: step over one character */
            uint32_t cp;
            size_t c = ms < n ? tu_char(s + ms, n - ms, &cp) : 1;
            pos = ms + (c ? c : 1);
            continue;
        }
        int rc = 0;
        size_t from = pending != SIZE_MAX ? pending : gap;
        switch (t->behavior) {
        case TP_ISOLATED: rc = pl_add(out, s + gap, ms - gap) || pl_add(out, s + ms, me - ms); break;
        case TP_REMOVED: rc = pl_add(out, s + gap, ms - gap); break;
        case TP_MERGED_PREV: rc = pl_add(out, s + gap, me - gap); break;
        case TP_MERGED_NEXT:
            rc = pl_add(out, s + from, ms - from);
            pending = ms;
            break;
        }
        if (rc) return -1;
        gap = pos = me;
    }
    size_t from = pending != SIZE_MAX ? pending : gap;
    return pl_add(out, s + from, n - from) ? -1 : 0;
}

/* Maps the bytes of s to the GPT-2 byte-level characters. */
static int bytelevel_map(const char *s, size_t n, tok_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned b = (unsigned char)s[i], cp = b;
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) {
            unsigned k = 0; /* the rank of b among the bytes mapped above 0xFF */
            for (unsigned c = 0; c < b; c++)
                k += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE));
            cp = 0x100 + k;
        }
        char u[4];
        if (tb_add(out, u, tu_put(cp, u))) return -1;
    }
    return 0;
}

/* Runs one pre-tokenizer over every piece of in, into out.  first: the segment starts the text. */
static int pre_step(const tok_pre *t, const plist *in, plist *out, int first, pcre2_match_data *md,
                    pcre2_match_context *mc)
{
    tok_buf tmp = {0}, mapped = {0};
    int rc = 0;
    for (size_t i = 0; i < in->off.n && !rc; i++) {
        const char *s = in->buf.p + in->off.p[i];
        size_t n = (size_t)in->len.p[i];
        tmp.len = 0;
        if (t->kind == TP_SPLIT) {
            rc = split_matches(t, s, n, out, md, mc);
        } else if (t->kind == TP_BYTELEVEL) {
            if (t->add_prefix_space && s[0] != ' ') rc = tb_add(&tmp, " ", 1);
            if (!rc) rc = tb_add(&tmp, s, n);
            plist parts = {0};
            if (!rc && t->re) rc = split_matches(t, tmp.p, tmp.len, &parts, md, mc);
            else if (!rc) rc = pl_add(&parts, tmp.p, tmp.len);
            for (size_t k = 0; k < parts.off.n && !rc; k++) {
                mapped.len = 0;
                rc = bytelevel_map(parts.buf.p + parts.off.p[k], (size_t)parts.len.p[k], &mapped);
                if (!rc) rc = pl_add(out, mapped.p, mapped.len);
            }
            pl_free(&parts);
        } else { /* Metaspace: ' ' -> replacement, maybe a leading one, split before each */
            int pre = t->prepend == TP_PREPEND_ALWAYS || (t->prepend == TP_PREPEND_FIRST && first && i == 0);
            /* prepended unless the piece starts with the replacement once spaces are replaced */
            if (pre && s[0] != ' ' && !(n >= t->repl_len && memcmp(s, t->repl, t->repl_len) == 0))
                rc = tb_add(&tmp, t->repl, t->repl_len);
            for (size_t k = 0; k < n && !rc; k++)
                rc = s[k] == ' ' ? tb_add(&tmp, t->repl, t->repl_len) : tb_add(&tmp, s + k, 1);
            if (rc) break;
            if (!t->split) {
                rc = pl_add(out, tmp.p, tmp.len);
                continue;
            }
            size_t start = 0;
            for (size_t k = 1; k + t->repl_len <= tmp.len && !rc; k++)
                if (memcmp(tmp.p + k, t->repl, t->repl_len) == 0) {
                    rc = pl_add(out, tmp.p + start, k - start);
                    start = k;
                }
            if (!rc) rc = pl_add(out, tmp.p + start, tmp.len - start);
        }
    }
    free(tmp.p);
    free(mapped.p);
    return rc;
}

static int hf_pair(const void *ctx, const char *word, const tok_sym *a, const tok_sym *b, double *prio, int32_t *id)
{
    (void)word;
    uint32_t rank;
    if (a->id < 0 || b->id < 0 || !tp_find(ctx, a->id, b->id, &rank, id)) return 0;
    *prio = -(double)rank;
    return 1;
}

/* The BPE model on one piece (HF BPE::tokenize without a cache). */
static int bpe_word(const mx_tok *tok, const char *s, size_t n, tok_ids *out)
{
    const tok_hf *hf = tok->hf;
    if (hf->ignore_merges) {
        int32_t id = tv_find(&tok->v, s, n);
        if (id >= 0) return ti_add(out, id);
    }
    tok_sym *sym = malloc(n * sizeof *sym); /* at most one symbol per byte */
    if (!sym) return -1;
    size_t k = 0;
    int last_unk = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t c = tu_char(s + i, n - i, &cp);
        if (!c) c = 1;
        int32_t id = tv_find(&tok->v, s + i, c);
        if (id >= 0) {
            sym[k++] = (tok_sym){(uint32_t)i, (uint32_t)c, id, 0, 0, 0};
            last_unk = 0;
        } else if (hf->byte_fallback && tok->byte_id[0] >= 0) {
            for (size_t j = 0; j < c; j++)
                sym[k++] = (tok_sym){(uint32_t)(i + j), 1, tok->byte_id[(unsigned char)s[i + j]], 0, 0, 0};
            last_unk = 0;
        } else if (tok->unk >= 0) {
            if (hf->fuse_unk && last_unk) sym[k - 1].len += (uint32_t)c;
            else sym[k++] = (tok_sym){(uint32_t)i, (uint32_t)c, tok->unk, 0, 0, 0};
            last_unk = 1;
        } /* else: the character is dropped, as the reference does without an unk token */
        i += c;
    }
    for (size_t i = 0; i < k; i++) {
        sym[i].prev = (int32_t)i - 1;
        sym[i].next = i + 1 < k ? (int32_t)i + 1 : -1;
    }
    int rc = tok_bpe_merge(sym, k, s, hf_pair, &hf->merges);
    for (int32_t i = k ? 0 : -1; i >= 0 && !rc; i = sym[i].next) rc = ti_add(out, sym[i].id);
    free(sym);
    return rc;
}

/* Encodes one segment of text without added tokens. */
static mixq_status encode_segment(const mx_tok *tok, const char *s, size_t n, size_t base, tok_ids *out,
                                  pcre2_match_data *md, pcre2_match_context *mc, mixq_error *err)
{
    plist a = {0}, b = {0};
    tok_buf norm = {0};
    mixq_status st = normalize(tok, s, n, base, &norm, err);
    int rc = st ? 0 : pl_add(&a, norm.p, norm.len);
    for (size_t k = 0; k < tok->hf->n_pre && !rc && !st; k++) {
        rc = pre_step(&tok->hf->pre[k], &a, &b, base == 0, md, mc);
        plist t = a;
        a = b;
        b = t;
        pl_free(&b);
    }
    for (size_t i = 0; i < a.off.n && !rc && !st; i++) rc = bpe_word(tok, a.buf.p + a.off.p[i], (size_t)a.len.p[i], out);
    pl_free(&a);
    pl_free(&b);
    free(norm.p);
    if (rc == -2)
        return mx_err(err, MIXQ_E_DATA, "%s: pre_tokenizer regex failed (match limit) in the text from byte %zu",
                      tok->name, base);
    if (rc) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    return st;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* The added token matching at text[i] (longest), or NULL. */
static const tok_added *added_at(const mx_tok *tok, const char *text, size_t len, size_t i)
{
    for (size_t k = 0; k < tok->hf->n_added; k++) {
        const tok_added *a = &tok->hf->added[k];
        uint32_t l = tok->v.len[a->id];
        if (l <= len - i && memcmp(text + i, tok->v.text.p + tok->v.off[a->id], l) == 0) return a;
    }
    return NULL;
}

mixq_status tok_hf_encode(const mx_tok *tok, const char *text, size_t len, tok_ids *out, mixq_error *err)
{
    uint8_t first[256] = {0};
    for (size_t k = 0; k < tok->hf->n_added; k++)
        first[(unsigned char)tok->v.text.p[tok->v.off[tok->hf->added[k].id]]] = 1;
    pcre2_match_data *md = NULL;
    for (size_t k = 0; k < tok->hf->n_pre && !md; k++)
        if (tok->hf->pre[k].re && !(md = pcre2_match_data_create_from_pattern(tok->hf->pre[k].re, NULL)))
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    /* a hostile pattern must not backtrack for minutes: a lower match limit than PCRE2's 10 million */
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (!mc) {
        pcre2_match_data_free(md);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
    }
    pcre2_set_match_limit(mc, 1000000);
    pcre2_set_depth_limit(mc, 100000);
    mixq_status st = MIXQ_OK;
    size_t seg = 0, i = 0;
    while (i < len && !st) {
        const tok_added *a = first[(unsigned char)text[i]] ? added_at(tok, text, len, i) : NULL;
        if (!a) {
            i++;
            continue;
        }
        size_t end = i + tok->v.len[a->id], start = i;
        if (a->lstrip)
            while (start > seg && is_ws(text[start - 1])) start--;
        if (a->rstrip)
            while (end < len && is_ws(text[end])) end++;
        if (start > seg) st = encode_segment(tok, text + seg, start - seg, seg, out, md, mc, err);
        if (!st && ti_add(out, a->id)) st = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", tok->name);
        seg = i = end;
    }
    if (!st && seg < len) st = encode_segment(tok, text + seg, len - seg, seg, out, md, mc, err);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    return st;
}
