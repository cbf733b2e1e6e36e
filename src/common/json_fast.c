/*
 * json_fast.c - strict RFC 8259 JSON parser into an arena DOM (json_fast.h).
 *
 * Design.  One iterative pass over the input with an explicit stack of open
 * arrays/objects (at most JF_MAX_DEPTH).  The children of an open container
 * are collected on a scratch stack (one for array elements, one for object
 * members); when the container closes its children are copied, contiguous,
 * into the arena, so every value is copied at most once and the DOM needs no
 * per-value allocation.  The arena is a list of large chunks: the first is
 * sized from the input length (enough for a typical header), later ones
 * double.  Strings are scanned 16 bytes at a time (SSE2; 8 with SWAR
 * elsewhere) for '"', '\\', control and non-ASCII bytes; a plain string is
 * one memcpy into the arena (a plain key is not copied at all), anything else
 * takes the slow path that validates UTF-8 and decodes escapes.
 *
 * Every read is bounds-checked against the end of the input (which is not
 * NUL-terminated): the vector loops run only while 16 (8) bytes remain.
 */
#include "common/json_fast.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__) && !defined(JF_PORTABLE)
#include <emmintrin.h>
#define JF_SSE2 1
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && !defined(JF_NO_SWAR)
#define JF_SWAR 1
#endif

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

/* Adds a chunk with at least `need` bytes of data. */
static bool new_chunk(parser *P, size_t need)
{
    size_t cap = P->next_cap;
    if (cap < need) cap = need;
    if (cap > SIZE_MAX - sizeof(jf_chunk)) return false;
    jf_chunk *c = malloc(sizeof *c + cap);
    if (!c) return false;
    c->next = P->chunk;
    c->cap = cap;
    c->used = 0;
    P->chunk = c;
    P->memory += cap;
    if (P->next_cap <= SIZE_MAX / 4) P->next_cap *= 2;
    return true;
}

/* n bytes aligned to `align` (a power of two <= 8) from the arena, or NULL. */
static inline void *arena_alloc(parser *P, size_t n, size_t align)
{
    jf_chunk *c = P->chunk;
    size_t at = (c->used + align - 1) & ~(align - 1);
    if (UNLIKELY(at > c->cap || c->cap - at < n)) {
        if (n > SIZE_MAX - 16 || !new_chunk(P, n + 16)) return NULL;
        c = P->chunk;
        at = 0;
    }
    c->used = at + n;
    return CHUNK_DATA(c) + at;
}

static void free_chunks(jf_chunk *c)
{
    while (c) {
        jf_chunk *n = c->next;
        free(c);
        c = n;
    }
}

/* ---------------------------------------------------------------------- */
/* Errors                                                                  */
/* ---------------------------------------------------------------------- */

static void set_error(parser *P, jf_status code, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(parser *P, jf_status code, const unsigned char *at, const char *fmt, ...)
{
    jf_error *e = P->e;
    e->code = code;
    e->offset = at ? (size_t)(at - P->buf) : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
}

/* A quoted rendering of a (decoded) key for a message: control bytes as '?', cut at a character boundary. */
static void show_key(const char *k, size_t n, char *out, size_t cap)
{
    size_t max = cap - 4, i = 0;
    for (; i < n && i < max; i++) {
        unsigned char c = (unsigned char)k[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (i < n) {
        while (i > 0 && ((unsigned char)k[i] & 0xC0) == 0x80) i--;
        memcpy(out + i, "...", 4);
    } else {
        out[i] = '\0';
    }
}

/* Describes the byte at p (or the end) for "unexpected ..." messages. */
static void unexpected(parser *P, const unsigned char *p, const char *expected)
{
    if (p >= P->end) set_error(P, JF_E_SYNTAX, P->end, "unexpected end of input (expected %s)", expected);
    else if (*p >= 0x21 && *p < 0x7f) set_error(P, JF_E_SYNTAX, p, "unexpected '%c' (expected %s)", *p, expected);
    else set_error(P, JF_E_SYNTAX, p, "unexpected byte 0x%02x (expected %s)", *p, expected);
}

/* ---------------------------------------------------------------------- */
/* Lexing helpers                                                          */
/* ---------------------------------------------------------------------- */

static inline const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        unsigned c = *p;
        if (LIKELY(c > ' ')) break;
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
        p++;
    }
    return p;
}

static inline bool is_digit(unsigned c) { return c - '0' < 10u; }

/* The first byte at or after p that is '"', '\\', < 0x20 or >= 0x80, or end. */
static inline const unsigned char *scan_plain(const unsigned char *p, const unsigned char *end)
{
#if defined(JF_SSE2)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed compare: bytes 0x00..0x1F and 0x80..0xFF are both "less than 0x20" */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                 _mm_cmplt_epi8(x, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask) return p + __builtin_ctz(mask);
        p += 16;
    }
#elif defined(JF_SWAR)
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        /* per term the lowest flagged byte is exact (borrows only disturb higher bytes) */
        uint64_t t = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x;
        t &= highs;
        if (t) return p + (__builtin_ctzll(t) >> 3);
        p += 8;
    }
#endif
    while (p < end) {
        unsigned c = *p;
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        p++;
    }
    return p;
}

static inline int hexval(unsigned c)
{
    if (c - '0' < 10u) return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6u) return (int)(c - 'a' + 10);
    return -1;
}

/* Four hex digits at p (p + 4 <= limit checked by the caller) or -1. */
static inline long hex4(const unsigned char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = (v << 4) | h;
    }
    return v;
}

/*
 * Length of the valid UTF-8 sequence starting at p (first byte >= 0x80), not
 * reaching limit; 0 if invalid (overlong, surrogate, > U+10FFFF, truncated).
 */
static inline size_t utf8_seq(const unsigned char *p, const unsigned char *limit)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* > U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 (overlong), F5..FF */
    }
    if ((size_t)(limit - p) < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

static inline char *put_utf8(char *d, unsigned long cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xC0 | (cp >> 6));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | (cp >> 12));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | (cp >> 18));
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* ---------------------------------------------------------------------- */
/* Strings                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * The slow path of a string whose contents start at s: p is the first byte
 * that is not plain ASCII.  Finds the closing quote, then validates and
 * decodes [s, close) into the arena (decoded text is never longer).
 * Returns the byte after the closing quote, or NULL on error.
 */
static const unsigned char *string_slow(parser *P, const unsigned char *s, const unsigned char *p, const char **out,
                                        uint32_t *out_len)
{
    const unsigned char *end = P->end;
    while (p < end && *p != '"') {
        if (*p == '\\') {
            if (end - p < 2) {
                p = end;
                break;
            }
            p += 2;
        } else {
            p++;
        }
    }
    if (p >= end) {
        set_error(P, JF_E_SYNTAX, end, "unexpected end of input in a string starting at byte %zu",
                  (size_t)(s - 1 - P->buf));
        return NULL;
    }
    const unsigned char *close = p;
    char *d0 = arena_alloc(P, (size_t)(close - s) + 1, 1), *d = d0;
    if (!d0) {
        set_error(P, JF_E_NOMEM, s, "out of memory");
        return NULL;
    }
    const unsigned char *q = s;
    while (q < close) {
        unsigned c = *q;
        if (c == '\\') {
            /* q + 1 < close: the scan above stepped over the escaped byte */
            unsigned e = q[1];
            switch (e) {
            case '"': *d++ = '"'; q += 2; continue;
            case '\\': *d++ = '\\'; q += 2; continue;
            case '/': *d++ = '/'; q += 2; continue;
            case 'b': *d++ = '\b'; q += 2; continue;
            case 'f': *d++ = '\f'; q += 2; continue;
            case 'n': *d++ = '\n'; q += 2; continue;
            case 'r': *d++ = '\r'; q += 2; continue;
            case 't': *d++ = '\t'; q += 2; continue;
            case 'u': break;
            default:
                if (e >= 0x21 && e < 0x7f) set_error(P, JF_E_SYNTAX, q, "invalid escape '\\%c' in a string", e);
                else set_error(P, JF_E_SYNTAX, q, "invalid escape (backslash, byte 0x%02x) in a string", e);
                return NULL;
            }
            long cp = close - q >= 6 ? hex4(q + 2) : -1;
            if (cp < 0) {
                set_error(P, JF_E_SYNTAX, q, "invalid \\u escape (four hex digits expected)");
                return NULL;
            }
            if (cp == 0) {
                set_error(P, JF_E_SYNTAX, q, "\\u0000 is not allowed in a string");
                return NULL;
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                set_error(P, JF_E_SYNTAX, q, "invalid Unicode: lone low surrogate \\u%04lX", (unsigned long)cp);
                return NULL;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = (close - q >= 12 && q[6] == '\\' && q[7] == 'u') ? hex4(q + 8) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    set_error(P, JF_E_SYNTAX, q,
                              "invalid Unicode: high surrogate \\u%04lX not followed by a low surrogate escape",
                              (unsigned long)cp);
                    return NULL;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                q += 12;
            } else {
                q += 6;
            }
            d = put_utf8(d, (unsigned long)cp);
        } else if (c < 0x20) {
            set_error(P, JF_E_SYNTAX, q, "control character 0x%02x in a string (must be escaped)", c);
            return NULL;
        } else if (c < 0x80) {
            *d++ = (char)c;
            q++;
        } else {
            size_t n = utf8_seq(q, close);
            if (!n) {
                set_error(P, JF_E_SYNTAX, q, "invalid UTF-8 in a string (byte 0x%02x)", c);
                return NULL;
            }
            memcpy(d, q, n);
            d += n;
            q += n;
        }
    }
    *d = '\0';
    *out = d0;
    *out_len = (uint32_t)(d - d0);
    return close + 1;
}

/*
 * A string at p (the opening quote).  Values (copy) are copied into the
 * arena with a NUL; a plain key is left in the input.  Returns the byte after
 * the closing quote, or NULL.
 */
static inline const unsigned char *parse_string(parser *P, const unsigned char *p, bool copy, const char **out,
                                                uint32_t *out_len)
{
    const unsigned char *s = p + 1, *end = P->end;
    p = scan_plain(s, end);
    if (LIKELY(p < end && *p == '"')) {
        size_t n = (size_t)(p - s);
        if (copy) {
            char *d = arena_alloc(P, n + 1, 1);
            if (UNLIKELY(!d)) {
                set_error(P, JF_E_NOMEM, s, "out of memory");
                return NULL;
            }
            memcpy(d, s, n);
            d[n] = '\0';
            *out = d;
        } else {
            *out = (const char *)s;
        }
        *out_len = (uint32_t)n;
        return p + 1;
    }
    if (p < end && *p < 0x20) {
        set_error(P, JF_E_SYNTAX, p, "control character 0x%02x in a string (must be escaped)", *p);
        return NULL;
    }
    return string_slow(P, s, p, out, out_len);
}

/* ---------------------------------------------------------------------- */
/* Numbers                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * strtod of a number text (valid JSON syntax), independent of the locale:
 * the decimal point is removed and the exponent adjusted, so strtod never
 * sees a '.'.  Returns false if out of memory.
 */
static bool number_to_double(const char *t, size_t n, double *out)
{
    char stackbuf[96];
    /* digits + 'e' + sign + up to 20 exponent digits + NUL */
    size_t cap = n + 32;
    char *b = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
    if (!b) return false;
    size_t i = 0, o = 0;
    long long frac = 0, ex = 0;
    bool exneg = false;
    if (t[i] == '-') b[o++] = t[i++];
    while (i < n && is_digit((unsigned char)t[i])) b[o++] = t[i++];
    if (i < n && t[i] == '.') {
        i++;
        while (i < n && is_digit((unsigned char)t[i])) {
            b[o++] = t[i++];
            frac++;
        }
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (t[i] == '+' || t[i] == '-') exneg = t[i++] == '-';
        for (; i < n; i++)
            if (ex < 1000000000LL) ex = ex * 10 + (t[i] - '0'); /* saturates: beyond it the result is 0 or inf */
    }
    if (exneg) ex = -ex;
    ex -= frac; /* |ex| < 1e9 + 2^32: fits */
    snprintf(b + o, cap - o, "e%lld", ex);
    *out = strtod(b, NULL);
    if (b != stackbuf) free(b);
    return true;
}

/*
 * A number at p ('-' or a digit).  Integer literals are converted exactly
 * (JF_E_RANGE outside int64); other numbers are checked for binary64
 * overflow by their decimal exponent (strtod only on the boundary decade).
 */
static const unsigned char *parse_number(parser *P, const unsigned char *p, jf_value *v)
{
    const unsigned char *start = p, *end = P->end;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p >= end || !is_digit(*p)) {
        set_error(P, JF_E_SYNTAX, p, "invalid number (a digit must follow '-')");
        return NULL;
    }
    const unsigned char *ds = p;
    uint64_t m = 0;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) {
            set_error(P, JF_E_SYNTAX, p - 1, "invalid number (leading zero)");
            return NULL;
        }
    } else {
        const unsigned char *lim = (size_t)(end - p) > 19 ? p + 19 : end;
        while (p < lim && is_digit(*p)) m = m * 10 + (*p++ - '0');
        while (p < end && is_digit(*p)) p++; /* more than 19 digits: not an int64 */
    }
    size_t nint = (size_t)(p - ds);
    const unsigned char *fs = NULL, *fe = NULL;
    long long ex = 0;
    bool real = false;
    if (p < end && *p == '.') {
        real = true;
        fs = ++p;
        while (p < end && is_digit(*p)) p++;
        fe = p;
        if (fs == fe) {
            set_error(P, JF_E_SYNTAX, p, "invalid number (a digit must follow '.')");
            return NULL;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        const unsigned char *es = p;
        while (p < end && is_digit(*p)) {
            if (ex < 1000000000LL) ex = ex * 10 + (*p - '0');
            p++;
        }
        if (p == es) {
            set_error(P, JF_E_SYNTAX, p, "invalid number (a digit must follow the exponent)");
            return NULL;
        }
        if (eneg) ex = -ex;
    }
    v->kind = JF_NUMBER;
    v->reserved = 0;
    v->len = (uint32_t)(p - start);
    if (!real) {
        if (nint > 19 || m > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
            set_error(P, JF_E_RANGE, start, "integer %s does not fit in 64 bits", neg ? "too small" : "too large");
            return NULL;
        }
        v->flags = JF_FLAG_INT;
        v->u.i = !neg ? (int64_t)m : m == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)m;
        return p;
    }
    /*
     * Decimal magnitude: with the first non-zero digit at position E of the
     * mantissa (E = digits before the point counted from it, or -j for the
     * j-th fraction digit), |x| lies in [10^(T-1), 10^T), T = E + exponent.
     * DBL_MAX ~ 1.8e308: T <= 308 never overflows, T >= 310 always does.
     */
    long long E = LLONG_MIN;
    for (size_t i = 0; i < nint; i++)
        if (ds[i] != '0') {
            E = (long long)(nint - i);
            break;
        }
    if (E == LLONG_MIN && fs)
        for (const unsigned char *f = fs; f < fe; f++)
            if (*f != '0') {
                E = -(long long)(f - fs);
                break;
            }
    if (E != LLONG_MIN) {
        long long T = E + ex; /* |E| <= 2^32, |ex| <= 1e9 */
        bool overflow = T >= 310;
        if (T == 309) {
            double d;
            if (!number_to_double((const char *)start, (size_t)(p - start), &d)) {
                set_error(P, JF_E_NOMEM, start, "out of memory");
                return NULL;
            }
            overflow = isinf(d);
        }
        if (overflow) {
            set_error(P, JF_E_RANGE, start, "number overflows a double");
            return NULL;
        }
    }
    v->flags = 0;
    v->u.s = (const char *)start;
    return p;
}

bool jf_real(const jf_value *v, double *out)
{
    if (v->kind != JF_NUMBER) return false;
    if (v->flags & JF_FLAG_INT) {
        *out = (double)v->u.i;
        return true;
    }
    return number_to_double(v->u.s, v->len, out);
}

/* ---------------------------------------------------------------------- */
/* Duplicate keys                                                          */
/* ---------------------------------------------------------------------- */

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
static bool find_duplicate(parser *P, const jf_member *m, size_t n, size_t *dup)
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

/* ---------------------------------------------------------------------- */
/* Parser                                                                  */
/* ---------------------------------------------------------------------- */

/* What empty arrays and objects point to (never NULL, so that pointer arithmetic stays defined). */
static const jf_value no_items[1];
static const jf_member no_members[1];

static inline bool push_value(parser *P, const jf_value *v)
{
    if (UNLIKELY(P->vn == P->vcap)) {
        size_t cap = P->vcap * 2;
        jf_value *n = realloc(P->vs, cap * sizeof *n);
        if (!n) return false;
        P->vs = n;
        P->vcap = cap;
    }
    P->vs[P->vn++] = *v;
    return true;
}

static inline jf_member *push_member(parser *P)
{
    if (UNLIKELY(P->mn == P->mcap)) {
        size_t cap = P->mcap * 2;
        jf_member *n = realloc(P->ms, cap * sizeof *n);
        if (!n) return NULL;
        P->ms = n;
        P->mcap = cap;
    }
    return &P->ms[P->mn++];
}

jf_doc *jf_parse(const char *buf, size_t len, jf_error *e)
{
    jf_error dummy;
    if (!e) e = &dummy;
    e->code = JF_OK;
    e->offset = 0;
    e->reason[0] = '\0';
    parser P = {0};
    P.e = e;
    P.buf = (const unsigned char *)buf;
    P.end = P.buf + len;
    if (len > JF_MAX_INPUT) {
        set_error(&P, JF_E_TOO_LARGE, NULL, "input of %zu bytes is too large (at most %zu)", len, JF_MAX_INPUT);
        return NULL;
    }
    if (!buf && len) {
        set_error(&P, JF_E_SYNTAX, NULL, "no input");
        return NULL;
    }
    /* A compact header needs about 2.5 arena bytes per input byte; the first chunk covers 3. */
    P.next_cap = len < (SIZE_MAX - MIN_CHUNK) / 3 ? 3 * len + MIN_CHUNK : len;
    P.vcap = 64;
    P.mcap = 64;
    P.vs = malloc(P.vcap * sizeof *P.vs);
    P.ms = malloc(P.mcap * sizeof *P.ms);
    jf_doc *doc = NULL;
    frame stack[JF_MAX_DEPTH];
    unsigned depth = 0;
    const unsigned char *p = P.buf, *end = P.end;
    jf_value v;
    if (!P.vs || !P.ms || !new_chunk(&P, P.next_cap) || !(doc = arena_alloc(&P, sizeof *doc, 8))) goto nomem;

value:
    p = skip_ws(p, end);
    if (UNLIKELY(p >= end)) {
        unexpected(&P, p, "a value");
        goto fail;
    }
    switch (*p) {
    case '"': {
        const char *s;
        uint32_t n;
        p = parse_string(&P, p, true, &s, &n);
        if (!p) goto fail;
        v.kind = JF_STRING;
        v.flags = 0;
        v.reserved = 0;
        v.len = n;
        v.u.s = s;
        goto done_value;
    }
    case '{':
        if (UNLIKELY(depth == JF_MAX_DEPTH)) {
            set_error(&P, JF_E_DEPTH, p, "nesting deeper than %d arrays/objects", JF_MAX_DEPTH);
            goto fail;
        }
        stack[depth].start = (uint32_t)P.mn;
        stack[depth].is_obj = 1;
        depth++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            p++;
            depth--;
            v.kind = JF_OBJECT;
            v.flags = 0;
            v.reserved = 0;
            v.len = 0;
            v.u.members = no_members;
            goto done_value;
        }
        goto key;
    case '[':
        if (UNLIKELY(depth == JF_MAX_DEPTH)) {
            set_error(&P, JF_E_DEPTH, p, "nesting deeper than %d arrays/objects", JF_MAX_DEPTH);
            goto fail;
        }
        stack[depth].start = (uint32_t)P.vn;
        stack[depth].is_obj = 0;
        depth++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
            depth--;
            v.kind = JF_ARRAY;
            v.flags = 0;
            v.reserved = 0;
            v.len = 0;
            v.u.items = no_items;
            goto done_value;
        }
        goto value;
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0) goto bad_literal;
        v.kind = JF_TRUE;
        p += 4;
        goto literal;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0) goto bad_literal;
        v.kind = JF_FALSE;
        p += 5;
        goto literal;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0) goto bad_literal;
        v.kind = JF_NULL;
        p += 4;
        goto literal;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        p = parse_number(&P, p, &v);
        if (!p) goto fail;
        goto done_value;
    default:
        unexpected(&P, p, "a value");
        goto fail;
    }

bad_literal:
    set_error(&P, JF_E_SYNTAX, p, "invalid literal (true, false or null expected)");
    goto fail;
literal:
    v.flags = 0;
    v.reserved = 0;
    v.len = 0;
    v.u.i = 0;
    goto done_value;

key: {
    /* p is after '{' or ',' and whitespace */
    if (UNLIKELY(p >= end || *p != '"')) {
        unexpected(&P, p, "a string key");
        goto fail;
    }
    jf_member *m = push_member(&P);
    if (!m) goto nomem;
    m->key_offset = (uint32_t)(p - P.buf);
    p = parse_string(&P, p, false, &m->key, &m->key_len);
    if (!p) goto fail;
    p = skip_ws(p, end);
    if (UNLIKELY(p >= end || *p != ':')) {
        unexpected(&P, p, "':'");
        goto fail;
    }
    p++;
    goto value;
}

done_value:
    if (UNLIKELY(depth == 0)) goto finish;
    {
        frame *fr = &stack[depth - 1];
        if (fr->is_obj) {
            P.ms[P.mn - 1].value = v;
            p = skip_ws(p, end);
            if (LIKELY(p < end && *p == ',')) {
                p = skip_ws(p + 1, end);
                goto key;
            }
            if (UNLIKELY(p >= end || *p != '}')) {
                unexpected(&P, p, "',' or '}'");
                goto fail;
            }
            p++;
            size_t n = P.mn - fr->start;
            jf_member *mem = arena_alloc(&P, n * sizeof *mem, 8);
            if (!mem) goto nomem;
            memcpy(mem, P.ms + fr->start, n * sizeof *mem);
            size_t dup;
            if (!find_duplicate(&P, mem, n, &dup)) goto nomem;
            if (UNLIKELY(dup < n)) {
                char k[72];
                show_key(mem[dup].key, mem[dup].key_len, k, sizeof k);
                set_error(&P, JF_E_DUPLICATE, P.buf + mem[dup].key_offset, "duplicate object key \"%s\"", k);
                goto fail;
            }
            P.mn = fr->start;
            depth--;
            v.kind = JF_OBJECT;
            v.flags = 0;
            v.reserved = 0;
            v.len = (uint32_t)n;
            v.u.members = mem;
            goto done_value;
        }
        if (!push_value(&P, &v)) goto nomem;
        p = skip_ws(p, end);
        if (LIKELY(p < end && *p == ',')) {
            p++;
            goto value;
        }
        if (UNLIKELY(p >= end || *p != ']')) {
            unexpected(&P, p, "',' or ']'");
            goto fail;
        }
        p++;
        size_t n = P.vn - fr->start;
        jf_value *items = arena_alloc(&P, n * sizeof *items, 8);
        if (!items) goto nomem;
        memcpy(items, P.vs + fr->start, n * sizeof *items);
        P.vn = fr->start;
        depth--;
        v.kind = JF_ARRAY;
        v.flags = 0;
        v.reserved = 0;
        v.len = (uint32_t)n;
        v.u.items = items;
        goto done_value;
    }

finish:
    p = skip_ws(p, end);
    if (p != end) {
        unexpected(&P, p, "the end of the input after the JSON value");
        goto fail;
    }
    doc->root = v;
    doc->chunks = P.chunk;
    doc->memory = P.memory;
    free(P.vs);
    free(P.ms);
    free(P.idx);
    return doc;

nomem:
    set_error(&P, JF_E_NOMEM, p, "out of memory");
fail:
    free(P.vs);
    free(P.ms);
    free(P.idx);
    free_chunks(P.chunk);
    return NULL;
}

void jf_free(jf_doc *doc)
{
    if (doc) free_chunks(doc->chunks);
}

const jf_value *jf_root(const jf_doc *doc) { return &doc->root; }

size_t jf_memory(const jf_doc *doc) { return doc ? doc->memory : 0; }
