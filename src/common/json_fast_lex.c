/*
 * json_fast_lex.c - the JSON parser's slow paths: strings with escapes or
 * non-ASCII bytes (validated and decoded), numbers through strtod, and the
 * error messages.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_fast_internal.h"

void mx_jf_set_error(parser *P, jf_status code, const unsigned char *at, const char *fmt, ...)
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
void mx_jf_show_key(const char *k, size_t n, char *out, size_t cap)
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
void mx_jf_unexpected(parser *P, const unsigned char *p, const char *expected)
{
    if (p >= P->end) mx_jf_set_error(P, JF_E_SYNTAX, P->end, "unexpected end of input (expected %s)", expected);
    else if (*p >= 0x21 && *p < 0x7f) mx_jf_set_error(P, JF_E_SYNTAX, p, "unexpected '%c' (expected %s)", *p, expected);
    else mx_jf_set_error(P, JF_E_SYNTAX, p, "unexpected byte 0x%02x (expected %s)", *p, expected);
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


/*
 * The slow path of a string whose contents start at s: p is the first byte
 * that is not plain ASCII.  Finds the closing quote, then validates and
 * decodes [s, close) into the arena (decoded text is never longer).
 * Returns the byte after the closing quote, or NULL on error.
 */
const unsigned char *mx_jf_string_slow(parser *P, const unsigned char *s, const unsigned char *p, const char **out,
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
        mx_jf_set_error(P, JF_E_SYNTAX, end, "unexpected end of input in a string starting at byte %zu",
                  (size_t)(s - 1 - P->buf));
        return NULL;
    }
    const unsigned char *close = p;
    char *d0 = arena_alloc(P, (size_t)(close - s) + 1, 1), *d = d0;
    if (!d0) {
        mx_jf_set_error(P, JF_E_NOMEM, s, "out of memory");
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
                if (e >= 0x21 && e < 0x7f) mx_jf_set_error(P, JF_E_SYNTAX, q, "invalid escape '\\%c' in a string", e);
                else mx_jf_set_error(P, JF_E_SYNTAX, q, "invalid escape (backslash, byte 0x%02x) in a string", e);
                return NULL;
            }
            long cp = close - q >= 6 ? hex4(q + 2) : -1;
            if (cp < 0) {
                mx_jf_set_error(P, JF_E_SYNTAX, q, "invalid \\u escape (four hex digits expected)");
                return NULL;
            }
            if (cp == 0) {
                mx_jf_set_error(P, JF_E_SYNTAX, q, "\\u0000 is not allowed in a string");
                return NULL;
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                mx_jf_set_error(P, JF_E_SYNTAX, q, "invalid Unicode: lone low surrogate \\u%04lX", (unsigned long)cp);
                return NULL;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = (close - q >= 12 && q[6] == '\\' && q[7] == 'u') ? hex4(q + 8) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    mx_jf_set_error(P, JF_E_SYNTAX, q,
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
            mx_jf_set_error(P, JF_E_SYNTAX, q, "control character 0x%02x in a string (must be escaped)", c);
            return NULL;
        } else if (c < 0x80) {
            *d++ = (char)c;
            q++;
        } else {
            size_t n = utf8_seq(q, close);
            if (!n) {
                mx_jf_set_error(P, JF_E_SYNTAX, q, "invalid UTF-8 in a string (byte 0x%02x)", c);
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
 * strtod of a number text (valid JSON syntax), independent of the locale:
 * the decimal point is removed and the exponent adjusted, so strtod never
 * sees a '.'.  Returns false if out of memory.
 */
bool mx_jf_number_to_double(const char *t, size_t n, double *out)
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

bool jf_real(const jf_value *v, double *out)
{
    if (v->kind != JF_NUMBER) return false;
    if (v->flags & JF_FLAG_INT) {
        *out = (double)v->u.i;
        return true;
    }
    return mx_jf_number_to_double(v->u.s, v->len, out);
}

