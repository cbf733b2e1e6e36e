/*
 * fuzz_json_fast.c - libFuzzer target: the container header's JSON parser
 * (jf_parse, src/json_fast.c), differentially against jansson.
 *
 * json_fast.h promises the rules of jansson's json_loadb(...,
 * JSON_REJECT_DUPLICATES) except two: any top-level value is accepted (so
 * jansson runs with JSON_DECODE_ANY) and nesting is limited to JF_MAX_DEPTH
 * (jansson: 2048).  So, for every input without a NUL byte (jansson mishandles
 * those, see below; json_fast must reject them all):
 *   - jf_parse succeeds exactly when jansson does, unless json_fast reports
 *     JF_E_DEPTH (then jansson fails too or its tree is deeper than
 *     JF_MAX_DEPTH) or runs out of memory;
 *   - when both succeed, the documents are equal: same kinds, integers,
 *     doubles (bit for bit), decoded strings (NUL-terminated, no NUL inside),
 *     array elements in order, object members (looked up by key in jansson,
 *     and by jf_obj_getn in json_fast);
 *   - an error has an offset inside the input and a printable reason;
 *   - the arena stays within a bounded multiple of the input size.
 * The parser must never read outside [data, data + size): the libFuzzer
 * buffer is exact, so ASan sees any overread.  A broken promise aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/json_fast.h"

#define FUZZ_TARGET "fuzz_json_fast"
#include "fuzz_common.h"


/* Nesting depth of a jansson value ("[[1]]" has depth 2, a scalar 0). */
static size_t jansson_depth(json_t *v)
{
    size_t d = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t c = jansson_depth(json_array_get(v, i));
            if (c > d) d = c;
        }
        return d + 1;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val) {
            size_t c = jansson_depth(val);
            if (c > d) d = c;
        }
        return d + 1;
    }
    return 0;
}

static void compare(const jf_value *a, json_t *b)
{
    switch (jf_type(a)) {
    case JF_NULL: CHECK(json_is_null(b)); break;
    case JF_FALSE: CHECK(json_is_false(b)); break;
    case JF_TRUE: CHECK(json_is_true(b)); break;
    case JF_NUMBER: {
        double d, e;
        CHECK(jf_real(a, &d));
        if (jf_is_int(a)) {
            int64_t i;
            CHECK(jf_int(a, &i));
            CHECK(json_is_integer(b) && json_integer_value(b) == i);
            CHECK(d == (double)i);
        } else {
            CHECK(json_is_real(b));
            e = json_real_value(b);
            CHECK(memcmp(&d, &e, sizeof d) == 0);
        }
        break;
    }
    case JF_STRING: {
        size_t n;
        const char *s = jf_str(a, &n);
        CHECK(s != NULL && s[n] == '\0' && memchr(s, '\0', n) == NULL);
        CHECK(json_is_string(b) && json_string_length(b) == n);
        CHECK(memcmp(s, json_string_value(b), n) == 0);
        break;
    }
    case JF_ARRAY: {
        size_t n = jf_arr_len(a);
        CHECK(json_is_array(b) && json_array_size(b) == n);
        CHECK(jf_arr_at(a, n) == NULL);
        for (size_t i = 0; i < n; i++) compare(jf_arr_at(a, i), json_array_get(b, i));
        break;
    }
    case JF_OBJECT: {
        size_t n = jf_obj_len(a);
        CHECK(json_is_object(b) && json_object_size(b) == n);
        CHECK(jf_obj_member_at(a, n, NULL, NULL) == NULL);
        for (size_t i = 0; i < n; i++) {
            const char *key;
            size_t klen;
            const jf_value *v = jf_obj_member_at(a, i, &key, &klen);
            CHECK(v != NULL && key != NULL && memchr(key, '\0', klen) == NULL);
            CHECK(jf_obj_getn(a, key, klen) == v); /* keys are unique */
            json_t *w = json_object_getn(b, key, klen);
            CHECK(w != NULL);
            compare(v, w);
        }
        break;
    }
    default: CHECK(!"unknown jf_kind");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jf_error e;
    jf_doc *doc = jf_parse((const char *)data, size, &e);
    if (memchr(data, '\0', size)) {
        /*
         * A raw NUL byte is never valid JSON (outside strings it is no token,
         * inside one an unescaped control character).  jansson is no
         * reference here: it skips a NUL right after a number ("[1\0]" loads
         * as [1]).
         */
        CHECK(doc == NULL);
        return 0;
    }
    json_error_t je;
    json_t *ref = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);

    if (!doc) {
        CHECK(e.code != JF_OK);
        CHECK(e.offset <= size);
        CHECK(memchr(e.reason, '\0', sizeof e.reason) != NULL);
        for (const char *p = e.reason; *p; p++) CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
        if (e.code == JF_E_DEPTH) CHECK(!ref || jansson_depth(ref) > JF_MAX_DEPTH);
        else if (e.code != JF_E_NOMEM) CHECK(ref == NULL); /* both reject */
    } else {
        CHECK(ref != NULL); /* jansson accepts what json_fast accepts */
        CHECK(jansson_depth(ref) <= JF_MAX_DEPTH);
        const jf_value *root = jf_root(doc);
        CHECK(root != NULL);
        compare(root, ref);
        CHECK(jf_memory(doc) <= 64 * size + (1u << 20)); /* no memory blow-up */
    }
    jf_free(doc);
    json_decref(ref);
    return 0;
}
