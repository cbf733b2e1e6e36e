/* tok_buf.c - growable byte and id buffers with overflow-checked growth. */
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "tokenizer/tok_internal.h"

/* Grows *cap (doubling, at least need) for elements of size elem; 0 or -1. */
static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    uint64_t c = *cap ? *cap : 64, bytes;
    while (c < need)
        if (!ck_mul(c, 2, &c)) return -1;
    if (!ck_mul(c, elem, &bytes) || bytes > SIZE_MAX) return -1;
    void *q = realloc(*p, (size_t)bytes);
    if (!q) return -1;
    *p = q;
    *cap = (size_t)c;
    return 0;
}

int tb_add(tok_buf *b, const void *s, size_t n)
{
    uint64_t need;
    if (!ck_add(b->len, n, &need) || !ck_add(need, 1, &need) || need > SIZE_MAX) return -1;
    if (grow((void **)&b->p, &b->cap, (size_t)need, 1)) return -1;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int ti_add(tok_ids *v, int32_t id)
{
    if (v->n == SIZE_MAX || grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p)) return -1;
    v->p[v->n++] = id;
    return 0;
}
