/* json_fast_keys.c - the JSON parser's duplicate-key check of an object's members. */
#include <stdlib.h>
#include <string.h>

#include "common/json_fast_internal.h"

static inline bool key_eq(const jf_member *a, const jf_member *b)
{
    return a->key_len == b->key_len && jf__bytes_eq(a->key, b->key, a->key_len);
}

static inline int key_cmp(const jf_member *m, uint32_t a, uint32_t b)
{
    if (m[a].key_len != m[b].key_len) return m[a].key_len < m[b].key_len ? -1 : 1;
    return memcmp(m[a].key, m[b].key, m[a].key_len);
}

static void sift_down(const jf_member *m, uint32_t *x, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && key_cmp(m, x[c], x[c + 1]) < 0) c++;
        if (key_cmp(m, x[i], x[c]) >= 0) return;
        uint32_t t = x[i];
        x[i] = x[c];
        x[c] = t;
        i = c;
    }
}

/*
 * Index of the first member (in input order) whose key occurs earlier in
 * the object, or n if the keys are unique.  Linear scan for small objects,
 * heapsort (O(n log n) key comparisons whatever the input) above.
 */
bool mx_jf_find_duplicate(parser *P, const jf_member *m, size_t n, size_t *dup)
{
    *dup = n;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (key_eq(&m[i], &m[j])) {
                    *dup = i;
                    return true;
                }
        return true;
    }
    if (n > P->idxcap) {
        size_t cap = P->idxcap ? P->idxcap : 64;
        while (cap < n) cap *= 2;
        uint32_t *x = realloc(P->idx, cap * sizeof *x);
        if (!x) return false;
        P->idx = x;
        P->idxcap = cap;
    }
    uint32_t *x = P->idx;
    for (size_t i = 0; i < n; i++) x[i] = (uint32_t)i;
    for (size_t i = n / 2; i-- > 0;) sift_down(m, x, i, n);
    for (size_t k = n; k-- > 1;) {
        uint32_t t = x[0];
        x[0] = x[k];
        x[k] = t;
        sift_down(m, x, 0, k);
    }
    /* In every run of equal keys the second-smallest index is its first repeat. */
    for (size_t i = 0; i + 1 < n;) {
        size_t j = i + 1;
        if (key_cmp(m, x[i], x[j]) != 0) {
            i = j;
            continue;
        }
        uint32_t a = x[i] < x[j] ? x[i] : x[j], b = x[i] < x[j] ? x[j] : x[i];
        for (j++; j < n && key_cmp(m, x[i], x[j]) == 0; j++) {
            if (x[j] < a) {
                b = a;
                a = x[j];
            } else if (x[j] < b) {
                b = x[j];
            }
        }
        if (b < *dup) *dup = b;
        i = j;
    }
    return true;
}
