/*
 * test_json_fast.c - the strict JSON parser src/json_fast.c.
 *
 *   - a table of valid and invalid inputs covering every strictness rule
 *     (syntax, strings and UTF-8, escapes and surrogates, numbers and their
 *     ranges, duplicate keys, nesting depth), each with the expected status
 *     and, for some, the expected decoded value;
 *   - every input is parsed from an exact-size malloc'd copy (never
 *     NUL-terminated), so that under AddressSanitizer a read one byte past
 *     the end is a failure; every prefix of the valid inputs as well;
 *   - equivalence with jansson (json_loadb with JSON_REJECT_DUPLICATES |
 *     JSON_DECODE_ANY): the same accept/reject decision and, when both
 *     accept, the same canonical dump (except jansson's two deviations:
 *     nesting up to 2048, and a NUL byte right after a number or literal,
 *     which it swallows), on the table, on every container and
 *     safetensors header of the fuzz corpora and testdata, and on thousands
 *     of generated documents and byte-level mutations of them;
 *   - a large generated container header (10,000 tensors), objects above the
 *     linear duplicate-check limit (sorted check), and hostile key sets.
 *
 * Built twice (tests/meson.build): against the library (SSE2 string scanner
 * on x86-64) and from the source with -DJF_PORTABLE (the SWAR scanner).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/json_fast.h"
#include "test_rng.h"

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

/* An exact-size heap copy: ASan reports any read past its end. */
static char *copy_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    if (n) memcpy(p, s, n);
    return p;
}

/* A growing text buffer. */
typedef struct dbuf {
    char *p;
    size_t len, cap;
} dbuf;

static void db_put(dbuf *d, const char *s, size_t n)
{
    if (d->len + n + 1 > d->cap) {
        d->cap = (d->len + n + 1) * 2;
        d->p = realloc(d->p, d->cap);
        cr_assert_not_null(d->p);
    }
    memcpy(d->p + d->len, s, n);
    d->len += n;
    d->p[d->len] = '\0';
}

static void db_printf(dbuf *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void db_printf(dbuf *d, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof tmp);
    db_put(d, tmp, (size_t)n);
}

static void db_str(dbuf *d, const char *s) { db_put(d, s, strlen(s)); }

/* A string's bytes, quoted, everything but printable ASCII as \xHH (so the dump is exact). */
static void dump_bytes(dbuf *d, const char *s, size_t n)
{
    db_put(d, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') db_put(d, (const char *)&c, 1);
        else db_printf(d, "\\x%02x", c);
    }
    db_put(d, "\"", 1);
}

typedef struct kv {
    const char *k;
    size_t n;
    const void *v;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->k, y->k, n);
    if (c) return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

static void dump_real(dbuf *d, double x) { db_printf(d, "r(%.17g)", x); }

/* Canonical dump of a json_fast value: object members sorted by key. */
static void dump_jf(dbuf *d, const jf_value *v)
{
    switch (jf_type(v)) {
    case JF_NULL: db_str(d, "null"); return;
    case JF_TRUE: db_str(d, "true"); return;
    case JF_FALSE: db_str(d, "false"); return;
    case JF_NUMBER: {
        int64_t i;
        double x;
        if (jf_int(v, &i)) {
            db_printf(d, "%" PRId64, i);
        } else {
            cr_assert(jf_real(v, &x));
            dump_real(d, x);
        }
        return;
    }
    case JF_STRING: {
        size_t n;
        const char *s = jf_str(v, &n);
        cr_assert_eq(s[n], '\0');
        cr_assert_eq(strlen(s), n, "a decoded string contains NUL");
        dump_bytes(d, s, n);
        return;
    }
    case JF_ARRAY:
        db_str(d, "[");
        for (size_t i = 0; i < jf_arr_len(v); i++) {
            if (i) db_str(d, ",");
            dump_jf(d, jf_arr_at(v, i));
        }
        db_str(d, "]");
        return;
    case JF_OBJECT: {
        size_t n = jf_obj_len(v);
        kv *m = calloc(n ? n : 1, sizeof *m);
        for (size_t i = 0; i < n; i++) m[i].v = jf_obj_member_at(v, i, &m[i].k, &m[i].n);
        qsort(m, n, sizeof *m, kv_cmp);
        db_str(d, "{");
        for (size_t i = 0; i < n; i++) {
            if (i) db_str(d, ",");
            dump_bytes(d, m[i].k, m[i].n);
            db_str(d, ":");
            dump_jf(d, m[i].v);
        }
        db_str(d, "}");
        free(m);
        return;
    }
    }
    cr_assert_fail("bad kind %d", (int)jf_type(v));
}

/* The same canonical dump of a jansson value. */
static void dump_jansson(dbuf *d, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: db_str(d, "null"); return;
    case JSON_TRUE: db_str(d, "true"); return;
    case JSON_FALSE: db_str(d, "false"); return;
    case JSON_INTEGER: db_printf(d, "%lld", (long long)json_integer_value(v)); return;
    case JSON_REAL: dump_real(d, json_real_value(v)); return;
    case JSON_STRING: dump_bytes(d, json_string_value(v), json_string_length(v)); return;
    case JSON_ARRAY:
        db_str(d, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) db_str(d, ",");
            dump_jansson(d, json_array_get(v, i));
        }
        db_str(d, "]");
        return;
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        kv *m = calloc(n ? n : 1, sizeof *m);
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            m[i].k = key;
            m[i].n = strlen(key);
            m[i].v = val;
            i++;
        }
        qsort(m, n, sizeof *m, kv_cmp);
        db_str(d, "{");
        for (i = 0; i < n; i++) {
            if (i) db_str(d, ",");
            dump_bytes(d, m[i].k, m[i].n);
            db_str(d, ":");
            dump_jansson(d, m[i].v);
        }
        db_str(d, "}");
        free(m);
        return;
    }
    }
    cr_assert_fail("bad jansson type");
}

/* Input bytes for a failure message (hex of the first 200). */
static const char *hexof(const char *s, size_t n)
{
    static char out[700];
    size_t o = 0;
    for (size_t i = 0; i < n && i < 200; i++) o += (size_t)snprintf(out + o, sizeof out - o, "%02x", (unsigned char)s[i]);
    if (n > 200) snprintf(out + o, sizeof out - o, "...");
    out[o < sizeof out ? o : sizeof out - 1] = '\0';
    return out;
}

/*
 * Parses s[0..n) from an exact-size copy; returns the status and, if
 * accepted, fills *dump (malloc'd) with the canonical dump (else NULL).
 */
static jf_status jf_check(const char *s, size_t n, char **dump, jf_error *eout)
{
    char *c = copy_exact(s, n);
    jf_error e;
    memset(&e, 0x5A, sizeof e);
    jf_doc *doc = jf_parse(c, n, &e);
    if (dump) *dump = NULL;
    if (!doc) {
        cr_assert_neq(e.code, JF_OK);
        cr_assert(memchr(e.reason, '\0', sizeof e.reason) != NULL);
        cr_assert(e.reason[0] != '\0');
        for (const char *r = e.reason; *r; r++) cr_assert((unsigned char)*r >= 0x20, "control byte in the reason");
        cr_assert(e.offset <= n, "error offset %zu beyond the input (%zu)", e.offset, n);
    } else {
        cr_assert_eq(e.code, JF_OK);
        if (dump) {
            dbuf d = {0};
            dump_jf(&d, jf_root(doc));
            *dump = d.p;
        }
        jf_free(doc);
    }
    free(c);
    if (eout) *eout = e;
    return doc ? JF_OK : e.code;
}

/* jansson's decision on the same bytes (exact-size copy too), with its dump if accepted. */
static bool jansson_check(const char *s, size_t n, char **dump)
{
    char *c = copy_exact(s, n);
    json_error_t je;
    json_t *root = json_loadb(c, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    free(c);
    *dump = NULL;
    if (!root) return false;
    dbuf d = {0};
    dump_jansson(&d, root);
    json_decref(root);
    *dump = d.p;
    return true;
}

/* Asserts that json_fast and jansson agree on s[0..n); returns json_fast's status. */
static jf_status agree(const char *s, size_t n)
{
    char *a, *b;
    jf_error e;
    jf_status st = jf_check(s, n, &a, &e);
    bool ok = jansson_check(s, n, &b);
    /*
     * jansson quirk: a NUL byte right after a number or a literal is
     * swallowed ("[1\0]" and "1\0" are accepted; its stream treats a NUL in
     * its look-ahead buffer as "buffer empty").  json_fast rejects the NUL.
     */
    if (st != JF_OK && ok && e.offset < n && s[e.offset] == '\0') {
        free(a);
        free(b);
        return st;
    }
    /* json_fast's documented depth limit (JF_MAX_DEPTH); jansson allows 2048. */
    if (st == JF_E_DEPTH && ok) {
        cr_assert(n > 2 * JF_MAX_DEPTH, "depth error on a %zu-byte input, too short to nest that deep", n);
        free(a);
        free(b);
        return st;
    }
    cr_assert_eq(st == JF_OK, ok, "json_fast %s (%s) but jansson %s: input %s", st == JF_OK ? "accepts" : "rejects",
                 st == JF_OK ? "" : e.reason, ok ? "accepts" : "rejects", hexof(s, n));
    if (ok) cr_assert_str_eq(a, b, "dumps differ for input %s", hexof(s, n));
    free(a);
    free(b);
    return st;
}

/* ---------------------------------------------------------------------- */
/* The table                                                               */
/* ---------------------------------------------------------------------- */

typedef struct row {
    const char *text;
    size_t len;
    jf_status want;
    const char *dump;  /* expected canonical dump (accepted rows), or NULL */
    bool jansson_differs; /* documented difference (nesting between 65 and 2048) */
} row;

#define OK(s) {s, sizeof(s) - 1, JF_OK, NULL, false}
#define OKD(s, d) {s, sizeof(s) - 1, JF_OK, d, false}
#define BAD(s, code) {s, sizeof(s) - 1, code, NULL, false}
#define SYN(s) BAD(s, JF_E_SYNTAX)

static const row rows[] = {
    /* structure and whitespace */
    OKD("{}", "{}"), OKD("[]", "[]"), OKD(" \t\n\r[ \t\n\r] \t\n\r", "[]"), OKD("[1,[2,[3]]]", "[1,[2,[3]]]"),
    OKD("{\"b\":{\"c\":[true,false,null]},\"a\":1}", "{\"a\":1,\"b\":{\"c\":[true,false,null]}}"),
    OKD(" { \"a\" : 1 , \"b\" : [ ] } ", "{\"a\":1,\"b\":[]}"),
    OKD("{\"a\":1,\"A\":2,\"a \":3,\"\":4}", "{\"\":4,\"A\":2,\"a\":1,\"a \":3}"),
    OKD("[[],{},[{}],{\"x\":[]}]", "[[],{},[{}],{\"x\":[]}]"),
    OKD("true", "true"), OKD("false", "false"), OKD("null", "null"), OKD(" 7 ", "7"),
    SYN(""), SYN(" "), SYN("\n\t "), SYN("{"), SYN("["), SYN("]"), SYN("}"), SYN("[1,]"), SYN("[,1]"), SYN("[,]"),
    SYN("{\"a\":1,}"), SYN("{,}"), SYN("{\"a\" 1}"), SYN("{\"a\":}"), SYN("{\"a\"}"), SYN("{a:1}"), SYN("{'a':1}"),
    SYN("['a']"), SYN("[1 2]"), SYN("{\"a\":1 \"b\":2}"), SYN("{\"a\":1;\"b\":2}"), SYN("{1:1}"), SYN("{null:1}"),
    SYN("[1]x"), SYN("[1] [2]"), SYN("{} {}"), SYN("{}}"), SYN("[]]"), SYN("[}"), SYN("{]"), SYN("[1:2]"),
    SYN("/* c */ 1"), SYN("[1] // c"), SYN("\v1"), SYN("\f1"), SYN("1\v"), SYN("\xa0 1"), SYN("\xef\xbb\xbf{}"),
    SYN("\0"), SYN("[1]\0"), SYN("\0[1]"), SYN("[1,\0 2]"), SYN("[1\0]"), SYN("1\0"), SYN("[true\0]"),
    SYN("{\"a\":1\0}"), SYN("\xc3\xa9"), SYN("[\xc3\xa9]"),
    /* literals */
    SYN("tru"), SYN("truee"), SYN("True"), SYN("TRUE"), SYN("nul"), SYN("nulll"), SYN("fals"), SYN("falsex"),
    SYN("[true1]"), SYN("[nan]"), SYN("NaN"), SYN("Infinity"), SYN("-Infinity"), SYN("undefined"), SYN("t"),
    /* numbers */
    OKD("0", "0"), OKD("-0", "0"), OKD("1", "1"), OKD("-1", "-1"), OKD("123456789", "123456789"),
    OKD("9223372036854775807", "9223372036854775807"), OKD("-9223372036854775808", "-9223372036854775808"),
    OKD("[0,-0,10,-10]", "[0,0,10,-10]"), OKD("1.5", "r(1.5)"), OKD("-1.5e10", "r(-15000000000)"), OKD("1E5", "r(100000)"),
    OKD("1e+5", "r(100000)"), OKD("1e-5", "r(1.0000000000000001e-05)"), OKD("0.0", "r(0)"), OKD("-0.0", "r(-0)"),
    OKD("0e0", "r(0)"), OKD("1.0", "r(1)"), OKD("1e0", "r(1)"), OKD("0.5E-0", "r(0.5)"),
    OKD("1.7976931348623157e308", "r(1.7976931348623157e+308)"), OKD("1.7976931348623158e308", "r(1.7976931348623157e+308)"),
    OKD("1e308", "r(1e+308)"), OKD("0.01e310", "r(1e+308)"), OKD("1e-400", "r(0)"), OKD("-1e-400", "r(-0)"),
    OKD("4.9e-324", "r(4.9406564584124654e-324)"), OKD("0e999999999999999999999", "r(0)"),
    OKD("0.000e99999", "r(0)"), OKD("1e-99999999999999999999", "r(0)"),
    OKD("1e00000000000000000000000000000001", "r(10)"),
    OKD("123456789012345678.5", "r(1.2345678901234568e+17)"),
    BAD("9223372036854775808", JF_E_RANGE), BAD("-9223372036854775809", JF_E_RANGE),
    BAD("99999999999999999999", JF_E_RANGE), BAD("[10000000000000000000]", JF_E_RANGE),
    BAD("1e309", JF_E_RANGE), BAD("-1e309", JF_E_RANGE), BAD("1.7976931348623159e308", JF_E_RANGE),
    BAD("9.9e308", JF_E_RANGE), BAD("10e308", JF_E_RANGE), BAD("0.1e310", JF_E_RANGE), BAD("1e400", JF_E_RANGE),
    BAD("1e99999999999999999999", JF_E_RANGE), BAD("[1,2,1e999]", JF_E_RANGE),
    SYN("01"), SYN("-01"), SYN("00"), SYN("-00"), SYN("1."), SYN(".5"), SYN("-"), SYN("-a"), SYN("+1"), SYN("1e"),
    SYN("1e+"), SYN("1e-"), SYN("1.e5"), SYN("1.5e"), SYN("0x10"), SYN("1_000"), SYN("1,5"), SYN("--1"),
    SYN("-.5"), SYN("[1.]"), SYN("[-]"), SYN("1e5.5"), SYN("1.5.5"), SYN("0.5f"), SYN("2a"),
    /* strings */
    OKD("\"\"", "\"\""), OKD("\"abc\"", "\"abc\""),
    OKD("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\x22\\x5c/\\x08\\x0c\\x0a\\x0d\\x09\""),
    OKD("\"\\u0041\\u00e9\\u20AC\"", "\"A\\xc3\\xa9\\xe2\\x82\\xac\""),
    OKD("\"\\uD83D\\uDE00\"", "\"\\xf0\\x9f\\x98\\x80\""), OKD("\"\\ud83d\\ude00x\"", "\"\\xf0\\x9f\\x98\\x80x\""),
    OKD("\"\\uDBFF\\uDFFF\"", "\"\\xf4\\x8f\\xbf\\xbf\""), OKD("\"\\uD800\\uDC00\"", "\"\\xf0\\x90\\x80\\x80\""),
    OKD("\"\\u0001\\u001f\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
        "\"\\x01\\x1f\\x7f\\xc2\\x80\\xdf\\xbf\\xe0\\xa0\\x80\\xef\\xbf\\xbf\""),
    OKD("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\"\\xc3\\xa9\\xe2\\x82\\xac\\xf0\\x9f\\x98\\x80\""),
    OKD("\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\"",
        "\"\\xc2\\x80\\xdf\\xbf\\xe0\\xa0\\x80\\xed\\x9f\\xbf\\xee\\x80\\x80\\xef\\xbf\\xbf\""),
    OKD("\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"", "\"\\xf0\\x90\\x80\\x80\\xf4\\x8f\\xbf\\xbf\""),
    OKD("\"\x7f\"", "\"\\x7f\""),
    OKD("\"0123456789abcdef0123456789abcdef\\n\"", "\"0123456789abcdef0123456789abcdef\\x0a\""),
    OKD("\"0123456789abcdef0123456789abcde\xc3\xa9\"", "\"0123456789abcdef0123456789abcde\\xc3\\xa9\""),
    OKD("{\"\\u0061\":1,\"b\":2}", "{\"a\":1,\"b\":2}"), OKD("{\"\\n\":1}", "{\"\\x0a\":1}"),
    SYN("\""), SYN("\"abc"), SYN("\"abc\\\""), SYN("\"abc\\"), SYN("\"\\x\""), SYN("\"\\a\""), SYN("\"\\'\""),
    SYN("\"\\U0041\""), SYN("\"\\u\""), SYN("\"\\u1\""), SYN("\"\\u12\""), SYN("\"\\u123\""), SYN("\"\\u12g4\""),
    SYN("\"\\u 123\""), SYN("\"\\u-123\""), SYN("\"\\uD800\""), SYN("\"\\uD800x\""), SYN("\"\\uD800\\u0041\""),
    SYN("\"\\uD800\\uD800\""), SYN("\"\\uDBFF\\uDBFF\""), SYN("\"\\uDC00\""), SYN("\"\\uDFFF\\uD800\""),
    SYN("\"\\uD800\\\""), SYN("\"\\uD800\\n\""), SYN("\"\\uD800\\uDC0\""), SYN("\"\\u0000\""), SYN("\"a\\u0000b\""),
    SYN("{\"\\u0000\":1}"), SYN("\"\x01\""), SYN("\"\n\""), SYN("\"\t\""), SYN("\"\r\""), SYN("\"\x1f\""),
    SYN("\"a\0b\""), SYN("{\"a\0\":1}"), SYN("\"\x80\""), SYN("\"\xbf\""), SYN("\"\xc0\x80\""), SYN("\"\xc1\xbf\""),
    SYN("\"\xc2\""), SYN("\"\xc2\x41\""), SYN("\"\xe0\x80\x80\""), SYN("\"\xe0\x9f\xbf\""), SYN("\"\xed\xa0\x80\""),
    SYN("\"\xed\xbf\xbf\""), SYN("\"\xed\xa0\x80\xed\xb0\x80\""), SYN("\"\xf0\x80\x80\x80\""),
    SYN("\"\xf0\x8f\xbf\xbf\""), SYN("\"\xf4\x90\x80\x80\""), SYN("\"\xf5\x80\x80\x80\""), SYN("\"\xf8\x88\x80\x80\x80\""),
    SYN("\"\xfe\""), SYN("\"\xff\""), SYN("\"\xe2\x82\""), SYN("\"\xe2\x28\xa1\""), SYN("\"\xf0\x9f\x98\""),
    SYN("\"\xf0\x9f\x98\x80\x80\""), SYN("\"0123456789abcdef0123456789abcdef\x01\""),
    SYN("\"0123456789abcdef0123456789abcdef\xff\""), SYN("\"0123456789abcdef0123456789abcdef"),
    SYN("{\"0123456789abcdef0123456789abcdef\xc0\":1}"), SYN("\"\xe2\x82\xac"), SYN("\"\\uD83D"),
    /* duplicate keys (compared after decoding) */
    BAD("{\"a\":1,\"a\":2}", JF_E_DUPLICATE), BAD("{\"a\":1,\"\\u0061\":1}", JF_E_DUPLICATE),
    BAD("{\"\":1,\"\":1}", JF_E_DUPLICATE), BAD("[{\"x\":{\"y\":1,\"y\":{}}}]", JF_E_DUPLICATE),
    BAD("{\"\xc3\xa9\":1,\"\\u00e9\":2}", JF_E_DUPLICATE), BAD("{\"a\":1,\"b\":2,\"c\":3,\"b\":4}", JF_E_DUPLICATE),
    BAD("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}", JF_E_DUPLICATE),
};

/* Fills buf with depth '[' then depth ']' (and an integer in the middle); returns the length. */
static size_t nested(char *buf, size_t depth)
{
    memset(buf, '[', depth);
    buf[depth] = '1';
    memset(buf + depth + 1, ']', depth);
    return 2 * depth + 1;
}

Test(json_fast, table)
{
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const row *w = &rows[r];
        char *dump;
        jf_error e;
        jf_status st = jf_check(w->text, w->len, &dump, &e);
        cr_assert_eq(st, w->want, "row %zu (%s): status %d, expected %d (%s)", r, hexof(w->text, w->len), (int)st,
                     (int)w->want, st ? e.reason : "accepted");
        if (w->dump) cr_assert_str_eq(dump, w->dump, "row %zu (%s)", r, hexof(w->text, w->len));
        free(dump);
        if (!w->jansson_differs) agree(w->text, w->len);
    }
}

Test(json_fast, every_prefix_of_the_valid_rows)
{
    /* Cut anywhere: never a read past the end, and the same decision as jansson. */
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (rows[r].want != JF_OK) continue;
        for (size_t n = 0; n < rows[r].len; n++) agree(rows[r].text, n);
    }
}

Test(json_fast, nesting_depth)
{
    static char buf[2 * 100000 + 8];
    size_t n = nested(buf, JF_MAX_DEPTH);
    cr_assert_eq(jf_check(buf, n, NULL, NULL), JF_OK);
    n = nested(buf, JF_MAX_DEPTH + 1);
    jf_error e;
    cr_assert_eq(jf_check(buf, n, NULL, &e), JF_E_DEPTH);
    cr_assert_eq(e.offset, JF_MAX_DEPTH);
    /* objects count too */
    dbuf d = {0};
    for (int i = 0; i < JF_MAX_DEPTH; i++) db_str(&d, "{\"a\":");
    db_str(&d, "[]");
    for (int i = 0; i < JF_MAX_DEPTH; i++) db_str(&d, "}");
    cr_assert_eq(jf_check(d.p, d.len, NULL, NULL), JF_E_DEPTH);
    free(d.p);
    /* very deep: an error, no recursion, no crash (jansson also rejects beyond 2048) */
    memset(buf, '[', 100000);
    cr_assert_eq(jf_check(buf, 100000, NULL, NULL), JF_E_DEPTH);
    n = nested(buf, 100000);
    cr_assert_eq(agree(buf, n), JF_E_DEPTH);
    memset(buf, '{', 100000);
    cr_assert_neq(jf_check(buf, 100000, NULL, NULL), JF_OK);
    /* wide is fine */
    d = (dbuf){0};
    db_str(&d, "[");
    for (int i = 0; i < 100000; i++) db_str(&d, i ? ",[]" : "[]");
    db_str(&d, "]");
    cr_assert_eq(agree(d.p, d.len), JF_OK);
    free(d.p);
}

Test(json_fast, error_offsets)
{
    static const struct {
        const char *s;
        size_t offset;
        const char *reason;
    } cases[] = {
        {"[1,]", 3, "unexpected ']'"},
        {"[1 2]", 3, "expected ',' or ']'"},
        {"{\"a\":1,\"a\":2}", 7, "duplicate object key \"a\""},
        {"{\"a\":1 \"b\":2}", 7, "expected ',' or '}'"},
        {"\"ab\x01\"", 3, "control character 0x01"},
        {"\"ab\\q\"", 3, "invalid escape '\\q'"},
        {"\"ab\\u00\"", 3, "invalid \\u escape"},
        {"\"ab\\u0000\"", 3, "\\u0000 is not allowed"},
        {"\"ab\\uDC00\"", 3, "lone low surrogate"},
        {"\"ab\\uD800\"", 3, "high surrogate"},
        {"\"ab\xc0\x80\"", 3, "invalid UTF-8"},
        {"  ", 2, "unexpected end of input"},
        {"01", 0, "leading zero"},
        {"[-x]", 2, "a digit must follow '-'"},
        {"[1.e5]", 3, "a digit must follow '.'"},
        {"[1e]", 3, "exponent"},
        {"[9223372036854775808]", 1, "does not fit in 64 bits"},
        {"[1e400]", 1, "overflows a double"},
        {"[tru]", 1, "invalid literal"},
        {"{} x", 3, "unexpected 'x'"},
        {"\xef\xbb\xbf{}", 0, "unexpected byte 0xef"},
        {"{\"a\":1", 6, "unexpected end of input"},
        {"\"abc", 4, "unexpected end of input in a string"},
        {"\"\\n", 3, "unexpected end of input in a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jf_error e;
        cr_assert_neq(jf_check(cases[i].s, strlen(cases[i].s), NULL, &e), JF_OK, "%s", cases[i].s);
        cr_assert_eq(e.offset, cases[i].offset, "%s: offset %zu, expected %zu (%s)", cases[i].s, e.offset,
                     cases[i].offset, e.reason);
        cr_assert(strstr(e.reason, cases[i].reason) != NULL, "%s: reason \"%s\" lacks \"%s\"", cases[i].s, e.reason,
                  cases[i].reason);
    }
    /* a key full of control characters is shown without them */
    jf_error e;
    const char dup[] = "{\"\\n\\t\":1,\"\\n\\t\":2}";
    cr_assert_eq(jf_check(dup, sizeof dup - 1, NULL, &e), JF_E_DUPLICATE);
    cr_assert(strstr(e.reason, "\"??\"") != NULL, "%s", e.reason);
    /* NULL error pointer and NULL empty buffer are allowed */
    cr_assert_null(jf_parse("[", 1, NULL));
    cr_assert_null(jf_parse(NULL, 0, &e));
    cr_assert_eq(e.code, JF_E_SYNTAX);
    jf_free(NULL);
}

Test(json_fast, accessors)
{
    const char text[] = "{\"s\":\"h\\u00e9llo\",\"i\":-42,\"r\":2.5e-1,\"t\":true,\"f\":false,\"n\":null,"
                        "\"a\":[1,\"x\",[]],\"o\":{\"k\":{}},\"\\u00e9\":7,\"big\":-9223372036854775808}";
    char *c = copy_exact(text, sizeof text - 1);
    jf_error e;
    jf_doc *doc = jf_parse(c, sizeof text - 1, &e);
    cr_assert_not_null(doc, "%s", e.reason);
    const jf_value *root = jf_root(doc);
    cr_assert_eq(jf_type(root), JF_OBJECT);
    cr_assert_eq(jf_obj_len(root), 10);
    const char *key = NULL;
    size_t klen = 0;
    const jf_value *v = jf_obj_member_at(root, 0, &key, &klen);
    cr_assert(klen == 1 && key[0] == 's');
    size_t sl;
    cr_assert_str_eq(jf_str(v, &sl), "h\xc3\xa9llo");
    cr_assert_eq(sl, 6);
    cr_assert_null(jf_obj_member_at(root, 10, &key, &klen));
    cr_assert_eq(jf_obj_member_at(root, 9, NULL, NULL), jf_obj_get(root, "big"));
    v = jf_obj_member_at(root, 8, &key, &klen);
    cr_assert(klen == 2 && memcmp(key, "\xc3\xa9", 2) == 0);
    cr_assert_eq(jf_obj_get(root, "\xc3\xa9"), v);
    cr_assert_eq(jf_obj_getn(root, "ix", 1), jf_obj_get(root, "i"));

    int64_t i;
    double x;
    bool b;
    cr_assert(jf_int(jf_obj_get(root, "i"), &i) && i == -42);
    cr_assert(jf_is_int(jf_obj_get(root, "i")));
    cr_assert(jf_int(jf_obj_get(root, "big"), &i) && i == INT64_MIN);
    cr_assert(jf_real(jf_obj_get(root, "i"), &x) && x == -42.0);
    cr_assert(!jf_int(jf_obj_get(root, "r"), &i));
    cr_assert(!jf_is_int(jf_obj_get(root, "r")));
    cr_assert(jf_real(jf_obj_get(root, "r"), &x) && x == 0.25);
    cr_assert(jf_bool(jf_obj_get(root, "t"), &b) && b);
    cr_assert(jf_bool(jf_obj_get(root, "f"), &b) && !b);
    cr_assert(!jf_bool(jf_obj_get(root, "n"), &b));
    cr_assert_eq(jf_type(jf_obj_get(root, "n")), JF_NULL);
    cr_assert_null(jf_obj_get(root, "missing"));
    cr_assert_null(jf_obj_get(root, ""));
    cr_assert_null(jf_obj_get(root, "S"));

    const jf_value *a = jf_obj_get(root, "a");
    cr_assert_eq(jf_arr_len(a), 3);
    cr_assert(jf_int(jf_arr_at(a, 0), &i) && i == 1);
    cr_assert_str_eq(jf_str(jf_arr_at(a, 1), NULL), "x");
    cr_assert_eq(jf_type(jf_arr_at(a, 2)), JF_ARRAY);
    cr_assert_eq(jf_arr_len(jf_arr_at(a, 2)), 0);
    cr_assert_null(jf_arr_at(jf_arr_at(a, 2), 0));
    cr_assert_null(jf_arr_at(a, 3));
    const jf_value *o = jf_obj_get(root, "o");
    cr_assert_eq(jf_obj_len(jf_obj_get(o, "k")), 0);
    cr_assert_null(jf_obj_get(jf_obj_get(o, "k"), "k"));

    /* wrong types: NULL / false / 0, never a crash */
    const jf_value *s = jf_obj_get(root, "s");
    cr_assert_null(jf_str(a, NULL));
    cr_assert(!jf_int(s, &i));
    cr_assert(!jf_real(s, &x));
    cr_assert(!jf_bool(s, &b));
    cr_assert_eq(jf_arr_len(s), 0);
    cr_assert_null(jf_arr_at(s, 0));
    cr_assert_eq(jf_obj_len(a), 0);
    cr_assert_null(jf_obj_get(a, "x"));
    cr_assert_null(jf_obj_member_at(s, 0, NULL, NULL));
    cr_assert(jf_memory(doc) > 0);
    jf_free(doc);
    free(c);

    /* a scalar document */
    c = copy_exact("\"x\"", 3);
    doc = jf_parse(c, 3, &e);
    cr_assert_not_null(doc);
    cr_assert_str_eq(jf_str(jf_root(doc), NULL), "x");
    jf_free(doc);
    free(c);
}

Test(json_fast, real_values_ignore_the_locale)
{
    const char t[] = "[1.5,-0.0,2.5e-3,1e-400,123456789.125,1.7976931348623157e308]";
    const double want[] = {1.5, -0.0, 2.5e-3, 0.0, 123456789.125, 1.7976931348623157e308};
    const char *locs[] = {"de_DE.UTF-8", "de_DE", "fr_FR.UTF-8", "C"};
    for (size_t l = 0; l < sizeof locs / sizeof locs[0]; l++) {
        if (!setlocale(LC_NUMERIC, locs[l])) continue;
        char *c = copy_exact(t, sizeof t - 1);
        jf_doc *doc = jf_parse(c, sizeof t - 1, NULL);
        cr_assert_not_null(doc);
        for (size_t i = 0; i < 6; i++) {
            double x;
            cr_assert(jf_real(jf_arr_at(jf_root(doc), i), &x));
            cr_assert(x == want[i] && signbit(x) == signbit(want[i]), "%s: element %zu is %.17g", locs[l], i, x);
        }
        jf_free(doc);
        free(c);
    }
    setlocale(LC_NUMERIC, "C");
    /* a long real (its strtod copy is on the heap) */
    dbuf d = {0};
    db_str(&d, "0.");
    for (int i = 0; i < 300; i++) db_str(&d, "0");
    db_str(&d, "15e301");
    char *c = copy_exact(d.p, d.len);
    jf_doc *doc = jf_parse(c, d.len, NULL);
    cr_assert_not_null(doc);
    double x;
    cr_assert(jf_real(jf_root(doc), &x) && x == 1.5);
    jf_free(doc);
    free(c);
    cr_assert_eq(agree(d.p, d.len), JF_OK);
    free(d.p);
}

/* ---------------------------------------------------------------------- */
/* Large objects: the sorted duplicate check                               */
/* ---------------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { return rng_next(&rng); }

Test(json_fast, large_objects_and_duplicates)
{
    static const size_t sizes[] = {15, 16, 17, 18, 33, 100, 1000, 5000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int trial = 0; trial < 6; trial++) {
            /* keys k<i>; trial > 0: key `dup_of` repeated at position `at` (shifting the rest) */
            size_t at = trial ? 1 + (size_t)(rnd() % (n - 1)) : n, dup_of = trial ? (size_t)(rnd() % at) : 0;
            if (trial == 1) {
                at = n - 1;
                dup_of = 0;
            }
            dbuf d = {0};
            size_t key_offset = 0;
            db_str(&d, "{");
            for (size_t i = 0, k = 0; i < n; i++) {
                if (i) db_str(&d, ",");
                if (i == at) key_offset = d.len;
                /* vary lengths and escapes so that equal keys differ in spelling */
                size_t id = i == at ? dup_of : k++;
                if (id % 7 == 3) db_printf(&d, "\"\\u006b%zu\":%zu", id, i);
                else db_printf(&d, "\"k%zu\":%zu", id, i);
            }
            db_str(&d, "}");
            jf_error e;
            jf_status st = jf_check(d.p, d.len, NULL, &e);
            if (at < n) {
                cr_assert_eq(st, JF_E_DUPLICATE, "n %zu at %zu dup_of %zu: %d", n, at, dup_of, (int)st);
                cr_assert_eq(e.offset, key_offset, "n %zu: offset %zu, expected %zu", n, e.offset, key_offset);
            } else {
                cr_assert_eq(st, JF_OK, "n %zu: %s", n, e.reason);
            }
            agree(d.p, d.len);
            free(d.p);
        }
    }
    /* several duplicates: the first repeat in input order is reported */
    dbuf d = {0};
    db_str(&d, "{");
    for (int i = 0; i < 40; i++) db_printf(&d, "%s\"u%d\":0", i ? "," : "", i);
    size_t first = d.len + 1;
    db_str(&d, ",\"u30\":1,\"u2\":1,\"u30\":2,\"u0\":1}");
    jf_error e;
    cr_assert_eq(jf_check(d.p, d.len, NULL, &e), JF_E_DUPLICATE);
    cr_assert_eq(e.offset, first);
    cr_assert(strstr(e.reason, "\"u30\"") != NULL, "%s", e.reason);
    free(d.p);
}

Test(json_fast, hostile_keys_stay_fast, .timeout = 120)
{
    /* 20,000 keys of 1,000 bytes sharing a 990-byte prefix: a quadratic check would take hours */
    const size_t n = 20000;
    char prefix[991];
    memset(prefix, 'p', 990);
    prefix[990] = '\0';
    dbuf d = {0};
    db_str(&d, "{");
    for (size_t i = 0; i < n; i++) {
        db_str(&d, i ? ",\"" : "\"");
        db_str(&d, prefix);
        db_printf(&d, "%010zu\":0", (i * 7919) % n);
    }
    db_str(&d, "}");
    cr_assert_eq(jf_check(d.p, d.len, NULL, NULL), JF_OK);
    d.len -= 1;
    db_str(&d, ",\"");
    db_str(&d, prefix);
    db_printf(&d, "%010zu\":1}", (size_t)12345);
    cr_assert_eq(jf_check(d.p, d.len, NULL, NULL), JF_E_DUPLICATE);
    free(d.p);
    /* many equal-length short keys */
    d = (dbuf){0};
    db_str(&d, "{");
    for (size_t i = 0; i < 200000; i++) db_printf(&d, "%s\"%06zu\":%zu", i ? "," : "", (i * 104729) % 200000, i);
    db_str(&d, "}");
    cr_assert_eq(jf_check(d.p, d.len, NULL, NULL), JF_OK);
    free(d.p);
}

/* ---------------------------------------------------------------------- */
/* A large container header                                                */
/* ---------------------------------------------------------------------- */

Test(json_fast, large_generated_header)
{
    const size_t n = 10000;
    dbuf d = {0};
    db_str(&d, "{\"format\":\"mixq\",\"format_version\":1,\"alignment\":64,\"metadata\":{\"mixq_version\":\"0.1.0\","
               "\"source_metadata\":{\"format\":\"pt\",\"note\":\"caf\\u00e9 \\ud83d\\ude00\"},"
               "\"source_files\":[{\"name\":\"model.safetensors\",\"size\":123456789}],"
               "\"options\":{\"type\":\"int4\",\"group_size\":0,\"quantize_1d\":false,\"search\":true}},\"tensors\":[");
    uint64_t off = 64;
    for (size_t i = 0; i < n; i++) {
        db_printf(&d, "%s{\"name\":\"model.layers.%zu.mlp.w%zu.weight\",\"shape\":[%zu,4096],", i ? "," : "", i / 7,
                  i % 7, 64 + i);
        db_printf(&d, "\"source_dtype\":\"BF16\",\"quant_type\":\"int4\",\"group_size\":64,\"symmetric\":false,");
        db_printf(&d, "\"offset\":%" PRIu64 ",\"length\":%zu,\"sections\":{\"codes\":{\"offset\":0,\"length\":%zu},",
                  off, (64 + i) * 2304, (64 + i) * 2048);
        db_printf(&d, "\"scales\":{\"offset\":%zu,\"length\":%zu},", (64 + i) * 2048, (64 + i) * 128);
        db_printf(&d, "\"mins\":{\"offset\":%zu,\"length\":%zu}},", (64 + i) * 2176, (64 + i) * 128);
        db_printf(&d, "\"xxh3\":\"%016" PRIx64 "\",\"estimated_error\":%.17g}", rnd(), (double)i * 1.25e-3);
        off += (64 + i) * 2304;
    }
    db_str(&d, "]}");
    char *c = copy_exact(d.p, d.len);
    jf_error e;
    jf_doc *doc = jf_parse(c, d.len, &e);
    cr_assert_not_null(doc, "%s at %zu", e.reason, e.offset);
    const jf_value *t = jf_obj_get(jf_root(doc), "tensors");
    cr_assert_eq(jf_arr_len(t), n);
    for (size_t i = 0; i < n; i += 997) {
        const jf_value *en = jf_arr_at(t, i);
        char want[64];
        snprintf(want, sizeof want, "model.layers.%zu.mlp.w%zu.weight", i / 7, i % 7);
        cr_assert_str_eq(jf_str(jf_obj_get(en, "name"), NULL), want);
        int64_t v;
        cr_assert(jf_int(jf_arr_at(jf_obj_get(en, "shape"), 0), &v) && v == (int64_t)(64 + i));
        cr_assert(jf_int(jf_obj_get(jf_obj_get(jf_obj_get(en, "sections"), "mins"), "length"), &v) &&
                  v == (int64_t)((64 + i) * 128));
        double x;
        cr_assert(jf_real(jf_obj_get(en, "estimated_error"), &x) && x == (double)i * 1.25e-3);
    }
    cr_assert_str_eq(jf_str(jf_obj_get(jf_obj_get(jf_obj_get(jf_root(doc), "metadata"), "source_metadata"), "note"),
                            NULL),
                     "caf\xc3\xa9 \xf0\x9f\x98\x80");
    /* the arena stays a small multiple of the input, in a few chunks */
    cr_assert(jf_memory(doc) <= 4 * d.len + 65536, "arena %zu bytes for %zu bytes of JSON", jf_memory(doc), d.len);
    jf_free(doc);
    free(c);
    cr_assert_eq(agree(d.p, d.len), JF_OK);
    free(d.p);
}

Test(json_fast, arena_growth_on_dense_input)
{
    /* the densest inputs (8+ arena bytes per input byte) need more chunks; still correct */
    const char *unit[] = {"0,", "[],", "{},", "\"\",", "{\"\":0},"};
    for (size_t u = 0; u < sizeof unit / sizeof unit[0]; u++) {
        dbuf d = {0};
        db_str(&d, "[");
        for (int i = 0; i < 300000; i++) db_str(&d, unit[u]);
        d.p[d.len - 1] = ']';
        cr_assert_eq(agree(d.p, d.len), JF_OK);
        free(d.p);
    }
}

/* ---------------------------------------------------------------------- */
/* Corpora: container and safetensors headers                              */
/* ---------------------------------------------------------------------- */

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        if (r == 0) break;
        n += r;
    }
    fclose(fp);
    *len = n;
    return buf;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* The JSON inside a container (header region) or safetensors file (after the length), else the whole file. */
static void json_regions(const uint8_t *b, size_t n, size_t *checked)
{
    if (n >= 64 && memcmp(b, "\x89MXQ\r\n\x1a\n", 8) == 0) {
        uint64_t ho = le64(b + 32);
        if (ho <= n) {
            agree((const char *)b + ho, n - ho);
            (*checked)++;
        }
    } else if (n >= 8 && le64(b) <= n - 8) {
        agree((const char *)b + 8, (size_t)le64(b));
        (*checked)++;
    }
    if (n <= (1u << 20)) {
        agree((const char *)b, n); /* the raw file (index JSON files) */
        (*checked)++;
    }
}

static void walk(const char *dir, size_t *checked)
{
    DIR *dp = opendir(dir);
    if (!dp) return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            walk(path, checked);
            continue;
        }
        if (!S_ISREG(st.st_mode) || st.st_size > (64 << 20)) continue;
        size_t n;
        uint8_t *b = read_all(path, &n);
        if (!b) continue;
        json_regions(b, n, checked);
        free(b);
    }
    closedir(dp);
}

Test(json_fast, corpora_agree_with_jansson, .timeout = 240)
{
    const char *root = getenv("MIXQ_SOURCE_ROOT");
    if (!root) root = ".";
    const char *dirs[] = {"tests/fuzz/corpus", "tests/fuzz/regressions", "testdata"};
    size_t checked = 0;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
        walk(path, &checked);
    }
    cr_assert(checked > 40, "only %zu corpus files found under %s", checked, root);
}

/* ---------------------------------------------------------------------- */
/* Generated documents and mutations, against jansson                      */
/* ---------------------------------------------------------------------- */

static void gen_ws(dbuf *d)
{
    static const char ws[] = " \t\n\r";
    if (rnd() % 4 == 0)
        for (int i = (int)(rnd() % 3); i >= 0; i--) db_put(d, &ws[rnd() % 4], 1);
}

static void gen_string(dbuf *d)
{
    static const char *const parts[] = {
        "a", "Z", "model.layers.0", " ", "\\n", "\\t", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\r", "\\u0041",
        "\\u00e9", "\\u20ac", "\\uffff", "\\ud83d\\ude00", "\\uDBFF\\uDFFF", "\xc3\xa9", "\xe2\x82\xac",
        "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\x7f", "0123456789abcdef", "\\u0001",
    };
    db_put(d, "\"", 1);
    for (int i = (int)(rnd() % 6); i > 0; i--) db_str(d, parts[rnd() % (sizeof parts / sizeof parts[0])]);
    db_put(d, "\"", 1);
}

static void gen_number(dbuf *d)
{
    switch (rnd() % 9) {
    case 0: db_printf(d, "%d", (int)(rnd() % 2000) - 1000); break;
    case 1: db_printf(d, "%" PRId64, (int64_t)rnd()); break;
    case 2: db_printf(d, "%s", rnd() % 2 ? "9223372036854775807" : "-9223372036854775808"); break;
    case 3: db_printf(d, "%.17g", (double)(int64_t)rnd() / 1e10); break;
    case 4: db_printf(d, "%de%d", (int)(rnd() % 100), (int)(rnd() % 700) - 350); break;
    case 5: db_printf(d, "%d.%03dE+%d", (int)(rnd() % 10), (int)(rnd() % 1000), (int)(rnd() % 320)); break;
    case 6: db_printf(d, "-0.%05d", (int)(rnd() % 100000)); break;
    case 7: db_str(d, "0"); break;
    default: db_printf(d, "%u", (unsigned)(rnd() % 100)); break;
    }
}

static void gen_value(dbuf *d, int depth)
{
    unsigned k = (unsigned)(rnd() % (depth > 6 ? 6 : 9));
    gen_ws(d);
    switch (k) {
    case 0: db_str(d, "true"); break;
    case 1: db_str(d, "false"); break;
    case 2: db_str(d, "null"); break;
    case 3: case 4: gen_number(d); break;
    case 5: gen_string(d); break;
    case 6: case 7: {
        db_str(d, "[");
        int n = (int)(rnd() % 5);
        for (int i = 0; i < n; i++) {
            if (i) db_str(d, ",");
            gen_value(d, depth + 1);
        }
        gen_ws(d);
        db_str(d, "]");
        break;
    }
    default: {
        db_str(d, "{");
        int n = (int)(rnd() % (rnd() % 8 ? 5 : 30)); /* sometimes above the linear-check limit */
        for (int i = 0; i < n; i++) {
            if (i) db_str(d, ",");
            gen_ws(d);
            if (rnd() % 3) db_printf(d, "\"k%u\"", (unsigned)(rnd() % (unsigned)(2 * n + 20))); /* sometimes a duplicate */
            else gen_string(d);
            gen_ws(d);
            db_str(d, ":");
            gen_value(d, depth + 1);
        }
        gen_ws(d);
        db_str(d, "}");
        break;
    }
    }
    gen_ws(d);
}

/* One random edit of d (in place): replace, insert or delete a byte, or cut. */
static void mutate(dbuf *d)
{
    static const unsigned char special[] = {'"', '\\', '{', '}', '[', ']', ',', ':', '0', '1', '-', '+', 'e', 'E',
                                            '.', 'u', 'D', '8', 'n', 't', ' ', '\n', 0x00, 0x01, 0x1f, 0x7f, 0x80,
                                            0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff};
    if (d->len == 0) return;
    size_t at = (size_t)(rnd() % d->len);
    unsigned char c = rnd() % 2 ? special[rnd() % sizeof special] : (unsigned char)rnd();
    switch (rnd() % 4) {
    case 0: d->p[at] = (char)c; break;
    case 1:
        db_put(d, " ", 1);
        memmove(d->p + at + 1, d->p + at, d->len - 1 - at);
        d->p[at] = (char)c;
        break;
    case 2:
        memmove(d->p + at, d->p + at + 1, d->len - at - 1);
        d->len--;
        break;
    default: d->len = at; break;
    }
}

Test(json_fast, generated_documents_agree_with_jansson, .timeout = 240)
{
    /* MIXQ_JF_DOCS=N (default 4000) and MIXQ_JF_SEED=S run a longer or different campaign */
    const char *env = getenv("MIXQ_JF_DOCS");
    long ndocs = env ? atol(env) : 4000;
    env = getenv("MIXQ_JF_SEED");
    rng = env ? strtoull(env, NULL, 10) : 12345;
    size_t accepted = 0, rejected = 0;
    for (long doc = 0; doc < ndocs; doc++) {
        dbuf d = {0};
        gen_value(&d, 0);
        if (agree(d.p, d.len) == JF_OK) accepted++;
        else rejected++;
        for (int m = 0; m < 12; m++) {
            dbuf e = {0};
            db_put(&e, d.p, d.len);
            for (int k = (int)(rnd() % 3); k >= 0; k--) mutate(&e);
            if (agree(e.p, e.len) == JF_OK) accepted++;
            else rejected++;
            free(e.p);
        }
        free(d.p);
    }
    cr_assert(accepted > (size_t)ndocs && rejected > (size_t)ndocs, "accepted %zu, rejected %zu", accepted, rejected);
}
