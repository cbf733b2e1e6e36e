/*
 * tok_spm_encode.c - SentencePiece encoding: identity normalization (dummy
 * prefix, extra whitespace removal, ' ' -> U+2581), then BPE (merge by piece
 * score) or unigram (Viterbi over piece scores), then unknown pieces to byte
 * pieces (byte fallback) or one <unk> per run, as sentencepiece does.
 */
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "tokenizer/tok_internal.h"

#define SPACE_SYM "\xE2\x96\x81" /* U+2581 */

/* Normalizes text into out (see sentencepiece's Normalizer::Normalize with an identity charsmap). */
static int normalize(const mx_tok *tok, const char *text, size_t len, tok_buf *out)
{
    size_t i = 0;
    const char *sp = tok->escape_ws ? SPACE_SYM : " ";
    size_t spl = strlen(sp);
    if (tok->remove_extra_ws)
        while (i < len && text[i] == ' ') i++;
    if (i == len) return 0;
    if (tok->add_dummy_prefix && tb_add(out, sp, spl)) return -1;
    int prev_space = 0;
    while (i < len) {
        char c = text[i++];
        if (c == ' ') {
            if (prev_space && tok->remove_extra_ws) continue;
            if (tb_add(out, sp, spl)) return -1;
            prev_space = 1;
        } else {
            if (tb_add(out, &c, 1)) return -1;
            prev_space = 0;
        }
    }
    if (tok->remove_extra_ws)
        while (out->len >= spl && memcmp(out->p + out->len - spl, sp, spl) == 0) out->len -= spl;
    return 0;
}

/* Length of the user-defined piece at s[0..n) (longest), or 0. */
static size_t user_match(const mx_tok *tok, const char *s, size_t n)
{
    for (size_t k = 0; k < tok->n_user; k++) {
        uint32_t l = tok->v.len[tok->user[k]];
        if (l <= n && memcmp(s, tok->v.text.p + tok->v.off[tok->user[k]], l) == 0) return l;
    }
    return 0;
}

/* Length of the symbol starting at s: a user-defined piece, else one UTF-8 character. */
static size_t symbol_len(const mx_tok *tok, const char *s, size_t n)
{
    size_t u = tok->n_user ? user_match(tok, s, n) : 0;
    if (u) return u;
    uint32_t cp;
    size_t k = tu_char(s, n, &cp);
    return k ? k : 1;
}

/* Whether a piece type takes part in segmentation (sentencepiece's pieces_, not reserved ids). */
static int is_segment_type(uint8_t t) { return t == SPT_NORMAL || t == SPT_USER || t == SPT_UNUSED; }

typedef struct bpe_ctx {
    const mx_tok *tok;
    uint32_t *rev_left; /* for UNUSED merged pieces: length of the left part + 1 */
} bpe_ctx;

static int spm_pair(const void *vctx, const char *word, const tok_sym *a, const tok_sym *b, double *prio, int32_t *id)
{
    const bpe_ctx *c = vctx;
    int32_t m = tv_find(&c->tok->v, word + a->start, (size_t)a->len + b->len);
    if (m < 0 || !is_segment_type(c->tok->type[m])) return 0;
    if (c->rev_left && c->tok->type[m] == SPT_UNUSED) c->rev_left[m] = a->len + 1;
    *prio = c->tok->score[m];
    *id = m;
    return 1;
}

/* Adds the id of piece s[0..n) to out: UNUSED pieces split back into their parts; -1 for an unknown piece. */
static int emit_piece(const bpe_ctx *c, const char *s, size_t n, tok_ids *out, int depth)
{
    int32_t id = tv_find(&c->tok->v, s, n);
    if (id >= 0 && c->tok->type[id] == SPT_UNUSED && c->rev_left && c->rev_left[id] && depth < 64) {
        size_t l = c->rev_left[id] - 1;
        if (emit_piece(c, s, l, out, depth + 1)) return -1;
        return emit_piece(c, s + l, n - l, out, depth + 1);
    }
    return ti_add(out, id);
}

/* BPE over the normalized string: ids (-1 for unknown) with the byte range of each into pieces. */
static int bpe_encode(const mx_tok *tok, const char *s, size_t n, tok_ids *ids, tok_ids *spans)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i += symbol_len(tok, s + i, n - i)) count++;
    tok_sym *sym = calloc(count ? count : 1, sizeof *sym);
    bpe_ctx c = {tok, NULL};
    if (!sym || (tok->has_unused && !(c.rev_left = calloc(tok->v.n, sizeof *c.rev_left)))) {
        free(sym);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; k++) {
        size_t l = symbol_len(tok, s + i, n - i);
        sym[k] = (tok_sym){(uint32_t)i, (uint32_t)l, -1, (int32_t)k - 1, k + 1 < count ? (int32_t)k + 1 : -1, 0};
        sym[k].frozen = tok->n_user && user_match(tok, s + i, n - i) == l;
        i += l;
    }
    int rc = tok_bpe_merge(sym, count, s, spm_pair, &c);
    for (int32_t i = count ? 0 : -1; i >= 0 && !rc; i = sym[i].next) {
        size_t before = ids->n;
        rc = emit_piece(&c, s + sym[i].start, sym[i].len, ids, 0);
        /* spans: start and length of each emitted id's text (a resegmented piece has several) */
        size_t off = sym[i].start;
        for (size_t j = before; j < ids->n && !rc; j++) {
            uint32_t l = ids->p[j] >= 0 ? tok->v.len[ids->p[j]] : sym[i].len;
            rc = ti_add(spans, (int32_t)off);
            if (!rc) rc = ti_add(spans, (int32_t)l);
            off += l;
        }
    }
    free(c.rev_left);
    free(sym);
    return rc;
}

/* Viterbi node: best score of a segmentation ending here, and the last piece. */
typedef struct vnode {
    float score;
    int32_t id;     /* -1: unknown character */
    uint32_t start; /* start of the last piece */
    uint8_t set;
} vnode;

/*
 * Unigram over the normalized string (sentencepiece's unigram
 * EncodeOptimized): the best path ending at each position.  Its arithmetic is
 * kept exactly: a candidate is computed and compared in double (the piece
 * score expression there is a double), and stored as a float; rounding
 * decides between paths of equal score.
 */
static int unigram_encode(const mx_tok *tok, const char *s, size_t n, tok_ids *ids, tok_ids *spans)
{
    uint64_t bytes;
    if (!ck_mul((uint64_t)n + 1, sizeof(vnode), &bytes) || bytes > SIZE_MAX) return -1;
    vnode *best = calloc(n + 1, sizeof *best);
    if (!best) return -1;
    best[0].set = 1;
    const float unk_score = tok->min_score - 10.0f;
    for (size_t pos = 0; pos < n;) {
        uint32_t cp0;
        size_t first = tu_char(s + pos, n - pos, &cp0);
        if (!first) first = 1;
        int single = 0;
        size_t end = pos, chars = 0;
        while (end < n && chars < tok->max_piece_chars) {
            uint32_t cp;
            size_t k = tu_char(s + end, n - end, &cp);
            end += k ? k : 1;
            chars++;
            int32_t id = tv_find(&tok->v, s + pos, end - pos);
            if (id < 0 || tok->type[id] == SPT_UNUSED || !is_segment_type(tok->type[id])) continue;
            double sc = tok->type[id] == SPT_USER ? (double)(end - pos) * tok->max_score - 0.1 : tok->score[id];
            double cand = sc + best[pos].score;
            if (!best[end].set || cand > best[end].score) best[end] = (vnode){(float)cand, id, (uint32_t)pos, 1};
            if (end - pos == first) single = 1;
        }
        if (!single) {
            float cand = unk_score + best[pos].score;
            size_t e = pos + first;
            if (!best[e].set || cand > best[e].score) best[e] = (vnode){cand, -1, (uint32_t)pos, 1};
        }
        pos += first;
    }
    /* walk back from the end, then reverse */
    size_t from = ids->n, nodes = 0;
    int rc = 0;
    for (size_t e = n; e > 0 && !rc; e = best[e].start, nodes++) {
        rc = ti_add(ids, best[e].id);
        if (!rc) rc = ti_add(spans, (int32_t)best[e].start);
        if (!rc) rc = ti_add(spans, (int32_t)(e - best[e].start));
    }
    for (size_t i = 0; i < nodes / 2 && !rc; i++) {
        size_t a = from + i, b = from + nodes - 1 - i;
        int32_t t = ids->p[a];
        ids->p[a] = ids->p[b];
        ids->p[b] = t;
        for (int j = 0; j < 2; j++) {
            t = spans->p[2 * a + j];
            spans->p[2 * a + j] = spans->p[2 * b + j];
            spans->p[2 * b + j] = t;
        }
    }
    free(best);
    return rc;
}

mixq_status tok_spm_encode(const mx_tok *tok, const char *text, size_t len, tok_ids *out, mixq_error *err)
{
    tok_buf ns = {0};
    tok_ids ids = {0}, spans = {0};
    int rc = normalize(tok, text, len, &ns);
    if (ns.len > INT32_MAX) rc = -1;
    if (!rc && ns.len) rc = tok->spm_unigram ? unigram_encode(tok, ns.p, ns.len, &ids, &spans)
                                             : bpe_encode(tok, ns.p, ns.len, &ids, &spans);
    int prev_unk = 0;
    for (size_t i = 0; i < ids.n && !rc; i++) {
        int32_t id = ids.p[i] >= 0 ? ids.p[i] : tok->unk;
        if (id == tok->unk && tok->byte_fallback) {
            const unsigned char *b = (const unsigned char *)ns.p + spans.p[2 * i];
            for (int32_t j = 0; j < spans.p[2 * i + 1] && !rc; j++)
                rc = ti_add(out, tok->byte_id[b[j]] >= 0 ? tok->byte_id[b[j]] : tok->unk);
            prev_unk = 0;
            continue;
        }
        if (id == tok->unk && prev_unk) continue; /* a run of unknown pieces is one <unk> */
        prev_unk = id == tok->unk;
        rc = ti_add(out, id);
    }
    free(ns.p);
    free(ids.p);
    free(spans.p);
    if (rc) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory encoding %zu bytes of text", tok->name, len);
    return MIXQ_OK;
}
