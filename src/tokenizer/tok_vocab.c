/* tok_vocab.c - the vocabulary (id <-> piece) and the merge pair table, both open-addressed hash tables. */
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "tokenizer/tok_internal.h"

/* FNV-1a of s[0..n). */
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

/* Mixes a 64-bit key (splitmix64 finalizer). */
static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int tv_init(tok_vocab *v, uint32_t n)
{
    memset(v, 0, sizeof *v);
    v->n = n;
    v->off = calloc(n ? n : 1, sizeof *v->off);
    v->len = malloc((n ? n : 1) * sizeof *v->len);
    if (!v->off || !v->len) return -1;
    for (uint32_t i = 0; i < n; i++) v->len[i] = UINT32_MAX;
    return 0;
}

int tv_set(tok_vocab *v, uint32_t id, const char *s, size_t n)
{
    if (id >= v->n || n >= UINT32_MAX) return -1;
    uint64_t off = v->text.len;
    if (tb_add(&v->text, s, n)) return -1;
    v->text.len++; /* keep the NUL tb_add wrote after the piece */
    v->off[id] = off;
    v->len[id] = (uint32_t)n;
    return 0;
}

int64_t tv_index(tok_vocab *v)
{
    uint64_t ns = 16;
    while (ns < (uint64_t)v->n * 2) ns *= 2;
    free(v->slot);
    v->slot = calloc((size_t)ns, sizeof *v->slot);
    if (!v->slot) return -2;
    v->nslot = (size_t)ns;
    for (uint32_t id = 0; id < v->n; id++) {
        if (v->len[id] == UINT32_MAX) continue;
        const char *s = v->text.p + v->off[id];
        size_t n = v->len[id];
        size_t i = (size_t)hash_bytes(s, n) & (v->nslot - 1);
        for (; v->slot[i]; i = (i + 1) & (v->nslot - 1)) {
            uint32_t o = v->slot[i] - 1;
            if (v->len[o] == n && memcmp(v->text.p + v->off[o], s, n) == 0) return id;
        }
        v->slot[i] = id + 1;
    }
    return -1;
}

int32_t tv_find(const tok_vocab *v, const char *s, size_t n)
{
    if (!v->nslot) return -1;
    for (size_t i = (size_t)hash_bytes(s, n) & (v->nslot - 1); v->slot[i]; i = (i + 1) & (v->nslot - 1)) {
        uint32_t o = v->slot[i] - 1;
        if (v->len[o] == n && memcmp(v->text.p + v->off[o], s, n) == 0) return (int32_t)o;
    }
    return -1;
}

void tv_free(tok_vocab *v)
{
    free(v->text.p);
    free(v->off);
    free(v->len);
    free(v->slot);
    memset(v, 0, sizeof *v);
}

/* Doubles the pair table (or makes the first one). */
static int tp_grow(tok_pairs *t)
{
    size_t ns = t->nslot ? t->nslot * 2 : 1024;
    if (ns > (SIZE_MAX / 16)) return -1;
    tok_pairs n = {calloc(ns, sizeof *n.key), malloc(ns * sizeof *n.rank), malloc(ns * sizeof *n.merged), ns, 0};
    if (!n.key || !n.rank || !n.merged) {
        tp_free(&n);
        return -1;
    }
    for (size_t i = 0; i < t->nslot; i++) {
        if (!t->key[i]) continue;
        size_t j = (size_t)hash_u64(t->key[i]) & (ns - 1);
        while (n.key[j]) j = (j + 1) & (ns - 1);
        n.key[j] = t->key[i];
        n.rank[j] = t->rank[i];
        n.merged[j] = t->merged[i];
        n.n++;
    }
    tp_free(t);
    *t = n;
    return 0;
}

int tp_add(tok_pairs *t, int32_t a, int32_t b, uint32_t rank, int32_t merged)
{
    if ((t->n + 1) * 2 > t->nslot && tp_grow(t)) return -1;
    uint64_t k = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    size_t i = (size_t)hash_u64(k) & (t->nslot - 1);
    for (; t->key[i]; i = (i + 1) & (t->nslot - 1))
        if (t->key[i] == k) return 0;
    t->key[i] = k;
    t->rank[i] = rank;
    t->merged[i] = merged;
    t->n++;
    return 0;
}

int tp_find(const tok_pairs *t, int32_t a, int32_t b, uint32_t *rank, int32_t *merged)
{
    if (!t->nslot) return 0;
    uint64_t k = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    for (size_t i = (size_t)hash_u64(k) & (t->nslot - 1); t->key[i]; i = (i + 1) & (t->nslot - 1)) {
        if (t->key[i] == k) {
            *rank = t->rank[i];
            *merged = t->merged[i];
            return 1;
        }
    }
    return 0;
}

void tp_free(tok_pairs *t)
{
    free(t->key);
    free(t->rank);
    free(t->merged);
    memset(t, 0, sizeof *t);
}
