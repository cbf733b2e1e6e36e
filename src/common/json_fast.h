/*
 * json_fast.h - a strict RFC 8259 JSON parser into an arena-allocated,
 * read-only document (DOM), for the container header (container_read.c).
 *
 * Strictness (everything else RFC 8259 allows is accepted):
 *   - exactly one value; whitespace (space, tab, LF, CR) around it; nothing
 *     else after it.  No byte-order mark, no comments, no trailing commas,
 *     no NaN/Infinity, no single quotes, no leading zeros or '+' signs.
 *   - strings: UTF-8 validated strictly (overlong forms, surrogates
 *     U+D800..U+DFFF and code points above U+10FFFF are rejected, as are
 *     truncated sequences); raw control characters (< 0x20) rejected;
 *     escapes \" \\ \/ \b \f \n \r \t \uXXXX decoded, a \uXXXX high surrogate
 *     must be followed by a \uXXXX low surrogate (the pair is decoded to one
 *     code point); a lone surrogate and \u0000 are rejected, so a decoded
 *     string never contains a NUL byte.
 *   - object keys are unique (compared after decoding escapes): a linear
 *     check up to 16 members, an O(n log n) sort above, so hostile input
 *     cannot make the check quadratic.
 *   - numbers: an integer literal (no fraction, no exponent) must fit int64
 *     and is stored exactly; other numbers are kept as text and converted
 *     with strtod only when asked for (jf_real), but one whose magnitude
 *     overflows binary64 (e.g. 1e400) is rejected at parse time.  "-0" is the
 *     integer 0.
 *   - nesting deeper than JF_MAX_DEPTH arrays/objects is rejected.  The
 *     parser is iterative (no recursion).
 *   - inputs longer than JF_MAX_INPUT bytes are rejected.
 * These are the rules of jansson's json_loadb(..., JSON_REJECT_DUPLICATES)
 * as well, except that jansson accepts nesting up to 2048 and requires an
 * object or array at the top level (json_fast takes any value).
 *
 * Memory: the parser never reads outside [buf, buf + len) (buf need not be
 * NUL-terminated); values live in a few large arena chunks (no allocation
 * per value).  Decoded string values are copied into the arena with a NUL
 * terminator.  Object keys without escapes, and the text of non-integer
 * numbers, point into buf instead: buf must stay valid and unchanged until
 * jf_free.
 *
 * A document is immutable after jf_parse; concurrent readers need no lock.
 * The structures below are visible only so that the accessors can be
 * inline; use the accessors.
 */
#ifndef MIXQ_JSON_FAST_H
#define MIXQ_JSON_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Deepest nesting of arrays and objects accepted ("[[1]]" has depth 2). */
#define JF_MAX_DEPTH 64
/* Longest input accepted, in bytes (counts and lengths are kept in 32 bits). */
#define JF_MAX_INPUT ((size_t)UINT32_MAX)

/* The type of a value. */
typedef enum jf_kind { JF_NULL, JF_FALSE, JF_TRUE, JF_NUMBER, JF_STRING, JF_ARRAY, JF_OBJECT } jf_kind;

/* Why jf_parse failed. */
typedef enum jf_status {
    JF_OK = 0,
    JF_E_SYNTAX,    /* not JSON (including bad UTF-8, escapes, control characters) */
    JF_E_DUPLICATE, /* an object has two members with the same key */
    JF_E_DEPTH,     /* nested deeper than JF_MAX_DEPTH */
    JF_E_RANGE,     /* an integer literal outside int64, or a number overflowing binary64 */
    JF_E_TOO_LARGE, /* len > JF_MAX_INPUT */
    JF_E_NOMEM      /* an allocation failed */
} jf_status;

/* Error details from jf_parse. */
typedef struct jf_error {
    jf_status code;
    size_t offset;    /* byte offset in the input where the problem was found */
    char reason[128]; /* one line, printable ASCII / UTF-8, no control characters */
} jf_error;

typedef struct jf_doc jf_doc;
typedef struct jf_value jf_value;
typedef struct jf_member jf_member;

/* Number flag: an integer literal (value in u.i). */
#define JF_FLAG_INT 1u

struct jf_value {
    uint8_t kind;  /* jf_kind */
    uint8_t flags; /* JF_FLAG_* */
    uint16_t reserved;
    uint32_t len;  /* string bytes (without the NUL), array elements, object members, number text bytes */
    union {
        int64_t i;                 /* integer literal */
        const char *s;             /* string (NUL-terminated, in the arena); number text (in buf) */
        const jf_value *items;     /* array elements */
        const jf_member *members;  /* object members, in input order */
    } u;
};

struct jf_member {
    const char *key;     /* decoded key, key_len bytes, NOT NUL-terminated (may point into buf) */
    uint32_t key_len;
    uint32_t key_offset; /* input offset of the key's opening quote */
    jf_value value;
};

/*
 * Parses buf[0..len) as one JSON value.  Returns the document, or NULL with
 * *e filled (e may be NULL).  Never reads outside buf; buf must outlive the
 * document (see above).
 */
jf_doc *jf_parse(const char *buf, size_t len, jf_error *e);

/* Frees the document and every value in it; NULL is allowed. */
void jf_free(jf_doc *doc);

/* The top-level value (never NULL for a parsed document). */
const jf_value *jf_root(const jf_doc *doc);

/* Bytes of arena memory the document holds (for tests and statistics). */
size_t jf_memory(const jf_doc *doc);

/* The type of v. */
static inline jf_kind jf_type(const jf_value *v) { return (jf_kind)v->kind; }

/* True if v is a number written as an integer literal (then it fits int64). */
static inline bool jf_is_int(const jf_value *v) { return v->kind == JF_NUMBER && (v->flags & JF_FLAG_INT); }

/* If v is an integer literal, stores it in *out and returns true; else false (*out untouched). */
static inline bool jf_int(const jf_value *v, int64_t *out)
{
    if (!jf_is_int(v)) return false;
    *out = v->u.i;
    return true;
}

/*
 * If v is a number, stores it as a double in *out (strtod's correctly rounded
 * result, independent of the locale; integers converted exactly as (double))
 * and returns true; false if v is not a number or memory ran out for a very
 * long number text.
 */
bool jf_real(const jf_value *v, double *out);

/* If v is true or false, stores it in *out and returns true; else false. */
static inline bool jf_bool(const jf_value *v, bool *out)
{
    if (v->kind != JF_TRUE && v->kind != JF_FALSE) return false;
    *out = v->kind == JF_TRUE;
    return true;
}

/*
 * The decoded bytes of a string (NUL-terminated, never containing NUL) and,
 * if len is non-NULL, their count; NULL (and *len = 0) if v is not a string.
 */
static inline const char *jf_str(const jf_value *v, size_t *len)
{
    bool is = v->kind == JF_STRING;
    if (len) *len = is ? v->len : 0;
    return is ? v->u.s : NULL;
}

/* Number of elements of an array (0 if v is not an array). */
static inline size_t jf_arr_len(const jf_value *v) { return v->kind == JF_ARRAY ? v->len : 0; }

/* Element i of an array, or NULL if v is not an array or i is out of range. */
static inline const jf_value *jf_arr_at(const jf_value *v, size_t i)
{
    return v->kind == JF_ARRAY && i < v->len ? &v->u.items[i] : NULL;
}

/* Number of members of an object (0 if v is not an object). */
static inline size_t jf_obj_len(const jf_value *v) { return v->kind == JF_OBJECT ? v->len : 0; }

/*
 * Member i of an object in input order: returns its value and sets *key
 * (not NUL-terminated) and *key_len (either may be NULL); NULL (and *key =
 * NULL, *key_len = 0) if v is not an object or i is out of range.
 */
static inline const jf_value *jf_obj_member_at(const jf_value *v, size_t i, const char **key, size_t *key_len)
{
    const jf_member *m = v->kind == JF_OBJECT && i < v->len ? &v->u.members[i] : NULL;
    if (key) *key = m ? m->key : NULL;
    if (key_len) *key_len = m ? m->key_len : 0;
    return m ? &m->value : NULL;
}

/*
 * Internal: equality of a[0..n) and b[0..n) (keys are short: two
 * overlapping loads inside the n bytes beat a call to memcmp).
 */
static inline bool jf__bytes_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        if (n > 16) return memcmp(a, b, n) == 0;
        uint64_t x, y, u, v;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        memcpy(&u, a + n - 8, 8);
        memcpy(&v, b + n - 8, 8);
        return ((x ^ y) | (u ^ v)) == 0;
    }
    if (n >= 4) {
        uint32_t x, y, u, v;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        memcpy(&u, a + n - 4, 4);
        memcpy(&v, b + n - 4, 4);
        return ((x ^ y) | (u ^ v)) == 0;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

/* The value of the member with key key[0..key_len), or NULL (also if v is not an object).  Linear. */
static inline const jf_value *jf_obj_getn(const jf_value *v, const char *key, size_t key_len)
{
    if (v->kind != JF_OBJECT) return NULL;
    const jf_member *m = v->u.members, *e = m + v->len;
    for (; m < e; m++)
        if (m->key_len == key_len && jf__bytes_eq(m->key, key, key_len)) return &m->value;
    return NULL;
}

/* As jf_obj_getn with a NUL-terminated key. */
static inline const jf_value *jf_obj_get(const jf_value *v, const char *key)
{
    return jf_obj_getn(v, key, strlen(key));
}

#endif
