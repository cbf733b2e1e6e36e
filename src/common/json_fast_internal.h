/*
 * json_fast_internal.h - what the JSON parser's files share: the arena,
 * the parser state and the slow paths.  json_fast.c is the parser (one pass,
 * the fast string and number paths, the arena), json_fast_lex.c the slow
 * paths of strings (escapes, UTF-8) and numbers and the error messages,
 * json_fast_keys.c the duplicate-key check.  Not for use outside
 * src/common/.
 */
#ifndef MIXQ_JSON_FAST_INTERNAL_H
#define MIXQ_JSON_FAST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/json_fast.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---------------------------------------------------------------------- */
/* Arena                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct jf_chunk {
    struct jf_chunk *next;
    size_t cap, used; /* bytes of data after the header */
} jf_chunk;

struct jf_doc {
    jf_value root;
    jf_chunk *chunks; /* every chunk; the document itself lives in the last one */
    size_t memory;
};

#define CHUNK_DATA(c) ((unsigned char *)((c) + 1))
#define MIN_CHUNK ((size_t)4096)

/* Frame of an open container: where its children start on the scratch stack. */
typedef struct frame {
    uint32_t start;
    uint32_t is_obj;
} frame;

typedef struct parser {
    const unsigned char *buf, *end;
    jf_chunk *chunk;       /* current chunk (head of the list) */
    size_t next_cap;       /* data size of the next chunk */
    size_t memory;
    jf_value *vs;          /* scratch: elements of open arrays */
    size_t vn, vcap;
    jf_member *ms;         /* scratch: members of open objects */
    size_t mn, mcap;
    uint32_t *idx;         /* scratch: member indices for the duplicate check */
    size_t idxcap;
    jf_error *e;
} parser;

/* Adds a chunk with at least `need` bytes of data (json_fast.c). */
bool mx_jf_new_chunk(parser *P, size_t need);

/* n bytes aligned to `align` (a power of two <= 8) from the arena, or NULL. */
static inline void *arena_alloc(parser *P, size_t n, size_t align)
{
    jf_chunk *c = P->chunk;
    size_t at = (c->used + align - 1) & ~(align - 1);
    if (UNLIKELY(at > c->cap || c->cap - at < n)) {
        if (n > SIZE_MAX - 16 || !mx_jf_new_chunk(P, n + 16)) return NULL;
        c = P->chunk;
        at = 0;
    }
    c->used = at + n;
    return CHUNK_DATA(c) + at;
}

static inline bool is_digit(unsigned c) { return c - '0' < 10u; }

/* json_fast_lex.c */

/* Records the error (code, offset of at, message) in P->e. */
void mx_jf_set_error(parser *P, jf_status code, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A quoted rendering of a (decoded) key for a message: control bytes as '?', cut at a character boundary. */
void mx_jf_show_key(const char *k, size_t n, char *out, size_t cap);

/* Describes the byte at p (or the end) for "unexpected ..." messages. */
void mx_jf_unexpected(parser *P, const unsigned char *p, const char *expected);

/*
 * The slow path of a string whose contents start at s: p is the first byte
 * that is not plain ASCII.  Finds the closing quote, then validates and
 * decodes [s, close) into the arena (decoded text is never longer).
 * Returns the byte after the closing quote, or NULL on error.
 */
const unsigned char *mx_jf_string_slow(parser *P, const unsigned char *s, const unsigned char *p, const char **out,
                                       uint32_t *out_len);

/*
 * strtod of a number text (valid JSON syntax), independent of the locale:
 * the decimal point is removed and the exponent adjusted, so strtod never
 * sees a '.'.  Returns false if out of memory.
 */
bool mx_jf_number_to_double(const char *t, size_t n, double *out);

/* json_fast_keys.c */

/*
 * Index of the first member (in input order) whose key occurs earlier in
 * the object, or n if the keys are unique.  Linear scan for small objects,
 * heapsort (O(n log n) key comparisons whatever the input) above.
 */
bool mx_jf_find_duplicate(parser *P, const jf_member *m, size_t n, size_t *dup);

#endif
