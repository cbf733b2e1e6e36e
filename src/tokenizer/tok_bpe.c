/*
 * tok_bpe.c - the BPE merge loop: a heap of candidate pairs, best first
 * (highest priority, then leftmost), as sentencepiece's bpe_model and the
 * Hugging Face BPE model both do.  A popped pair whose symbols changed since
 * it was pushed is stale and skipped.
 */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

typedef struct cand {
    double prio;
    uint32_t left, right, size;
    int32_t id;
} cand;

typedef struct heap {
    cand *c;
    size_t n, cap;
    const tok_sym *syms;
} heap;

/* 1 if a goes before b: higher priority, then the leftmost. */
static int better(const heap *h, const cand *a, const cand *b)
{
    if (a->prio != b->prio) return a->prio > b->prio;
    return h->syms[a->left].start < h->syms[b->left].start;
}

static int push(heap *h, cand c)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        if (nc > SIZE_MAX / sizeof *h->c) return -1;
        cand *p = realloc(h->c, nc * sizeof *p);
        if (!p) return -1;
        h->c = p;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!better(h, &c, &h->c[up])) break;
        h->c[i] = h->c[up];
        i = up;
    }
    h->c[i] = c;
    return 0;
}

static cand pop(heap *h)
{
    cand top = h->c[0], last = h->c[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, best = l;
        if (l >= h->n) break;
        if (l + 1 < h->n && better(h, &h->c[l + 1], &h->c[l])) best = l + 1;
        if (!better(h, &h->c[best], &last)) break;
        h->c[i] = h->c[best];
        i = best;
    }
    if (h->n) h->c[i] = last;
    return top;
}

/* Pushes the pair (l, r) if it merges. */
static int consider(heap *h, tok_sym *s, int32_t l, int32_t r, const char *word, tok_pair_fn fn, const void *ctx)
{
    if (l < 0 || r < 0 || s[l].frozen || s[r].frozen) return 0;
    cand c;
    if (!fn(ctx, word, &s[l], &s[r], &c.prio, &c.id)) return 0;
    c.left = (uint32_t)l;
    c.right = (uint32_t)r;
    c.size = s[l].len + s[r].len;
    return push(h, c);
}

int tok_bpe_merge(tok_sym *s, size_t n, const char *word, tok_pair_fn fn, const void *ctx)
{
    heap h = {NULL, 0, 0, s};
    int rc = 0;
    for (size_t i = 0; i + 1 < n && !rc; i++) rc = consider(&h, s, (int32_t)i, (int32_t)i + 1, word, fn, ctx);
    while (!rc && h.n) {
        cand c = pop(&h);
        tok_sym *l = &s[c.left], *r = &s[c.right];
        if (l->len == 0 || r->len == 0 || l->next != (int32_t)c.right || l->len + r->len != c.size) continue;
        l->len += r->len;
        l->id = c.id;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = (int32_t)c.left;
        r->len = 0;
        rc = consider(&h, s, l->prev, (int32_t)c.left, word, fn, ctx);
        if (!rc) rc = consider(&h, s, (int32_t)c.left, l->next, word, fn, ctx);
    }
    free(h.c);
    return rc;
}
