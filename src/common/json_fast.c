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
 * The slow paths of strings and numbers and the error messages are in
 * json_fast_lex.c, the duplicate-key check in json_fast_keys.c
 * (json_fast_internal.h).
 *
 * Every read is bounds-checked against the end of the input (which is not
 * NUL-terminated): the vector loops run only while 16 (8) bytes remain.
 */
#include "common/json_fast.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_fast_internal.h"

#if defined(__SSE2__) && !defined(JF_PORTABLE)
#include <emmintrin.h>
#define JF_SSE2 1
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && !defined(JF_NO_SWAR)
#define JF_SWAR 1
#endif

/* Adds a chunk with at least `need` bytes of data. */
bool mx_jf_new_chunk(parser *P, size_t need)
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


static void free_chunks(jf_chunk *c)
{
    while (c) {
        jf_chunk *n = c->next;
        free(c);
        c = n;
    }
}


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
                mx_jf_set_error(P, JF_E_NOMEM, s, "out of memory");
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
        mx_jf_set_error(P, JF_E_SYNTAX, p, "control character 0x%02x in a string (must be escaped)", *p);
        return NULL;
    }
    return mx_jf_string_slow(P, s, p, out, out_len);
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
        mx_jf_set_error(P, JF_E_SYNTAX, p, "invalid number (a digit must follow '-')");
        return NULL;
    }
    const unsigned char *ds = p;
    uint64_t m = 0;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) {
            mx_jf_set_error(P, JF_E_SYNTAX, p - 1, "invalid number (leading zero)");
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
            mx_jf_set_error(P, JF_E_SYNTAX, p, "invalid number (a digit must follow '.')");
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
            mx_jf_set_error(P, JF_E_SYNTAX, p, "invalid number (a digit must follow the exponent)");
            return NULL;
        }
        if (eneg) ex = -ex;
    }
    v->kind = JF_NUMBER;
    v->reserved = 0;
    v->len = (uint32_t)(p - start);
    if (!real) {
        if (nint > 19 || m > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
            mx_jf_set_error(P, JF_E_RANGE, start, "integer %s does not fit in 64 bits", neg ? "too small" : "too large");
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
            if (!mx_jf_number_to_double((const char *)start, (size_t)(p - start), &d)) {
                mx_jf_set_error(P, JF_E_NOMEM, start, "out of memory");
                return NULL;
            }
            overflow = isinf(d);
        }
        if (overflow) {
            mx_jf_set_error(P, JF_E_RANGE, start, "number overflows a double");
            return NULL;
        }
    }
    v->flags = 0;
    v->u.s = (const char *)start;
    return p;
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
        mx_jf_set_error(&P, JF_E_TOO_LARGE, NULL, "input of %zu bytes is too large (at most %zu)", len, JF_MAX_INPUT);
        return NULL;
    }
    if (!buf && len) {
        mx_jf_set_error(&P, JF_E_SYNTAX, NULL, "no input");
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
    if (!P.vs || !P.ms || !mx_jf_new_chunk(&P, P.next_cap) || !(doc = arena_alloc(&P, sizeof *doc, 8))) goto nomem;

value:
    p = skip_ws(p, end);
    if (UNLIKELY(p >= end)) {
        mx_jf_unexpected(&P, p, "a value");
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
            mx_jf_set_error(&P, JF_E_DEPTH, p, "nesting deeper than %d arrays/objects", JF_MAX_DEPTH);
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
            mx_jf_set_error(&P, JF_E_DEPTH, p, "nesting deeper than %d arrays/objects", JF_MAX_DEPTH);
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
        mx_jf_unexpected(&P, p, "a value");
        goto fail;
    }

bad_literal:
    mx_jf_set_error(&P, JF_E_SYNTAX, p, "invalid literal (true, false or null expected)");
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
        mx_jf_unexpected(&P, p, "a string key");
        goto fail;
    }
    jf_member *m = push_member(&P);
    if (!m) goto nomem;
    m->key_offset = (uint32_t)(p - P.buf);
    p = parse_string(&P, p, false, &m->key, &m->key_len);
    if (!p) goto fail;
    p = skip_ws(p, end);
    if (UNLIKELY(p >= end || *p != ':')) {
        mx_jf_unexpected(&P, p, "':'");
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
                mx_jf_unexpected(&P, p, "',' or '}'");
                goto fail;
            }
            p++;
            size_t n = P.mn - fr->start;
            jf_member *mem = arena_alloc(&P, n * sizeof *mem, 8);
            if (!mem) goto nomem;
            memcpy(mem, P.ms + fr->start, n * sizeof *mem);
            size_t dup;
            if (!mx_jf_find_duplicate(&P, mem, n, &dup)) goto nomem;
            if (UNLIKELY(dup < n)) {
                char k[72];
                mx_jf_show_key(mem[dup].key, mem[dup].key_len, k, sizeof k);
                mx_jf_set_error(&P, JF_E_DUPLICATE, P.buf + mem[dup].key_offset, "duplicate object key \"%s\"", k);
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
            mx_jf_unexpected(&P, p, "',' or ']'");
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
        mx_jf_unexpected(&P, p, "the end of the input after the JSON value");
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
    mx_jf_set_error(&P, JF_E_NOMEM, p, "out of memory");
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

