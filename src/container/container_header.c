/*
 * container_header.c - the container's JSON header (format/FORMAT.md §3)
 * parsed and validated completely, building the tensor table.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/checked.h"
#include "format/container.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/json_fast.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "container/container_internal.h"

typedef enum jkind { JK_STRING, JK_UINT, JK_BOOL, JK_OBJECT, JK_ARRAY } jkind;

static const char *const jkind_name[] = {
    [JK_STRING] = "a string", [JK_UINT] = "an integer >= 0", [JK_BOOL] = "a boolean",
    [JK_OBJECT] = "an object", [JK_ARRAY] = "an array",
};

static bool is_kind(const jf_value *v, jkind k)
{
    switch (k) {
    case JK_STRING: return jf_type(v) == JF_STRING;
    case JK_UINT: return jf_is_int(v) && v->u.i >= 0; /* an integer literal, never 1.0 or 1e3 */
    case JK_BOOL: return jf_type(v) == JF_TRUE || jf_type(v) == JF_FALSE;
    case JK_OBJECT: return jf_type(v) == JF_OBJECT;
    case JK_ARRAY: return jf_type(v) == JF_ARRAY;
    }
    return false;
}

/* The value of a JK_UINT field (checked by is_kind). */
static inline uint64_t uint_of(const jf_value *v) { return (uint64_t)v->u.i; }

/*
 * Where in the header a check failed, rendered only for a message: a fixed
 * text, or tensor #index / tensor "name" (once the name is known), optionally
 * followed by a section.
 */
typedef struct place {
    const char *text;         /* fixed, or NULL for a tensor */
    const mixq_tensor *t;     /* t->name is NULL until validated */
    size_t index;
    const char *section;      /* or NULL */
} place;

#define PLACE_MAX (MX_SHOWN_MAX + 64)

static const char *place_str(const place *pl, char *buf)
{
    if (pl->text) return pl->text;
    char b[MX_SHOWN_BUF];
    int n = pl->t->name ? snprintf(buf, PLACE_MAX, "tensor \"%s\"", mx_shown(pl->t->name, b))
                        : snprintf(buf, PLACE_MAX, "tensor #%zu", pl->index);
    if (pl->section && n > 0 && n < PLACE_MAX)
        snprintf(buf + n, PLACE_MAX - (size_t)n, ": section \"%s\"", pl->section);
    return buf;
}

/*
 * Checks v = obj[key] (NULL if missing) against kind and stores it in *out.  A missing key is an error
 * unless optional (then *out is NULL).  pl names the place for messages.
 */
static mixq_status check_field(const mixq_file *f, const place *pl, const jf_value *v, const char *key, jkind kind,
                               bool optional, const jf_value **out, mixq_error *err)
{
    *out = v;
    char w[PLACE_MAX];
    if (!v) {
        if (optional) return MIXQ_OK;
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: key \"%s\" is missing", f->shown, place_str(pl, w), key);
    }
    if (!is_kind(v, kind))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"%s\" must be %s", f->shown, place_str(pl, w), key,
                      jkind_name[kind]);
    return MIXQ_OK;
}

/* check_field of obj[key] (NULL if missing), key a string literal. */
#define get_field(f, pl, obj, key, kind, optional, out, err) \
    check_field(f, pl, jf_obj_getn(obj, key "", sizeof(key) - 1), key, kind, optional, out, err)

/* Parses exactly 16 lowercase hex digits. */
static bool parse_hex64(const char *s, size_t len, uint64_t *out)
{
    if (len != 16) return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') v = (v << 4) | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = (v << 4) | (uint64_t)(c - 'a' + 10);
        else return false;
    }
    *out = v;
    return true;
}

/* Validates the metadata object (FORMAT.md §3.2): every known key is optional but must have its type. */
static mixq_status parse_metadata(mixq_file *f, const jf_value *meta, mixq_error *err)
{
    const place w = {"header metadata", NULL, 0, NULL};
    const jf_value *v;
    mixq_status s;
    if ((s = get_field(f, &w, meta, "mixq_version", JK_STRING, true, &v, err))) return s;
    if ((s = get_field(f, &w, meta, "source_metadata", JK_OBJECT, true, &f->source_meta, err))) return s;
    if (f->source_meta) {
        for (size_t i = 0, n = jf_obj_len(f->source_meta); i < n; i++) {
            const char *key = "";
            size_t klen = 0;
            const jf_value *val = jf_obj_member_at(f->source_meta, i, &key, &klen);
            char b[MX_SHOWN_BUF];
            if (jf_type(val) != JF_STRING)
                return mx_err(err, MIXQ_E_FORMAT, "%s: header metadata: source_metadata[\"%s\"] must be a string",
                              f->shown, mx_shown_n(key, klen, b));
        }
    }
    const jf_value *files;
    if ((s = get_field(f, &w, meta, "source_files", JK_ARRAY, true, &files, err))) return s;
    if (files) {
        const place we = {"header metadata source_files entry", NULL, 0, NULL};
        for (size_t i = 0, n = jf_arr_len(files); i < n; i++) {
            const jf_value *e = jf_arr_at(files, i);
            if (jf_type(e) != JF_OBJECT)
                return mx_err(err, MIXQ_E_FORMAT, "%s: header metadata: source_files[%zu] must be an object",
                              f->shown, i);
            if ((s = get_field(f, &we, e, "name", JK_STRING, false, &v, err)) ||
                (s = get_field(f, &we, e, "size", JK_UINT, false, &v, err)))
                return s;
        }
    }
    const jf_value *opts;
    if ((s = get_field(f, &w, meta, "options", JK_OBJECT, true, &opts, err))) return s;
    if (opts) {
        const place wo = {"header metadata options", NULL, 0, NULL};
        if ((s = get_field(f, &wo, opts, "type", JK_STRING, true, &v, err)) ||
            (s = get_field(f, &wo, opts, "group_size", JK_UINT, true, &v, err)) ||
            (s = get_field(f, &wo, opts, "quantize_1d", JK_BOOL, true, &v, err)))
            return s;
    }
    return MIXQ_OK;
}

/* Checks the "sections" object of an entry against the computed layout: same names, offsets, lengths. */
static mixq_status check_sections(const mixq_file *f, const place *where, const jf_value *secs, const mixq_tensor *t,
                                  mixq_error *err)
{
    size_t expected = 0;
    char w[PLACE_MAX];
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!t->has[k]) continue;
        expected++;
        const char *sn = mixq_section_name((mixq_section_kind)k);
        const jf_value *sec = jf_obj_get(secs, sn), *off, *len;
        if (!sec)
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: section \"%s\" is missing (quant_type %s stores it)", f->shown,
                          place_str(where, w), sn, t->qt->name);
        if (jf_type(sec) != JF_OBJECT)
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: section \"%s\" must be an object", f->shown,
                          place_str(where, w), sn);
        mixq_status s;
        place w2 = *where;
        w2.section = sn;
        if ((s = get_field(f, &w2, sec, "offset", JK_UINT, false, &off, err)) ||
            (s = get_field(f, &w2, sec, "length", JK_UINT, false, &len, err)))
            return s;
        uint64_t o = uint_of(off), l = uint_of(len);
        if (o != t->lay.offset[k] || l != t->lay.length[k])
            return mx_err(err, MIXQ_E_FORMAT,
                          "%s: %s has offset %" PRIu64 ", length %" PRIu64 "; the layout of this shape and type "
                          "needs offset %" PRIu64 ", length %" PRIu64, f->shown, place_str(&w2, w), o, l,
                          t->lay.offset[k], t->lay.length[k]);
    }
    if (jf_obj_len(secs) != expected) {
        for (size_t i = 0, n = jf_obj_len(secs); i < n; i++) {
            const char *key = "";
            size_t klen = 0;
            jf_obj_member_at(secs, i, &key, &klen);
            bool known = false;
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
                const char *sn = mixq_section_name((mixq_section_kind)k);
                if (t->has[k] && strlen(sn) == klen && memcmp(key, sn, klen) == 0) known = true;
            }
            char b[MX_SHOWN_BUF];
            if (!known)
                return mx_err(err, MIXQ_E_FORMAT, "%s: %s: unexpected section \"%s\" for quant_type %s", f->shown,
                              place_str(where, w), mx_shown_n(key, klen, b), t->qt->name);
        }
    }
    return MIXQ_OK;
}

/*
 * The source_dtype and quant_type strings met so far (the first TC_SIZE
 * distinct ones) and their meaning: a model uses a handful of each, so most
 * lookups are one short comparison instead of a search by name.
 */
#define TC_SIZE 8
typedef struct type_cache {
    const char *src_str[TC_SIZE], *qt_str[TC_SIZE];
    size_t src_len[TC_SIZE], qt_len[TC_SIZE];
    st_dtype src[TC_SIZE];
    const qtype_desc *qt[TC_SIZE];
    unsigned nsrc, nqt;
} type_cache;

/* The cache slot of s[0..n) among the n_have strings of strs/lens, or TC_SIZE. */
static unsigned tc_find(const char *const *strs, const size_t *lens, unsigned n_have, const char *s, size_t n)
{
    for (unsigned i = 0; i < n_have; i++)
        if (lens[i] == n && jf__bytes_eq(strs[i], s, n)) return i;
    return TC_SIZE;
}

/* The keys of a tensor entry (FORMAT.md §3.1). */
enum { EK_NAME, EK_SHAPE, EK_SOURCE_DTYPE, EK_QUANT_TYPE, EK_GROUP_SIZE, EK_SYMMETRIC, EK_OFFSET, EK_LENGTH,
       EK_SECTIONS, EK_XXH3, EK_COUNT };

#define KEY_IS(m, lit) ((m)->key_len == sizeof(lit) - 1 && jf__bytes_eq((m)->key, lit, sizeof(lit) - 1))

/* One pass over an entry's members: out[EK_*] = the value of that key, or NULL (keys are unique). */
static void entry_fields(const jf_value *e, const jf_value *out[EK_COUNT])
{
    for (int k = 0; k < EK_COUNT; k++) out[k] = NULL;
    const jf_member *m = e->u.members, *end = m + e->len;
    for (; m < end; m++) {
        int k = -1;
        switch (m->key_len) {
        case 4: k = KEY_IS(m, "name") ? EK_NAME : KEY_IS(m, "xxh3") ? EK_XXH3 : -1; break;
        case 5: k = KEY_IS(m, "shape") ? EK_SHAPE : -1; break;
        case 6: k = KEY_IS(m, "offset") ? EK_OFFSET : KEY_IS(m, "length") ? EK_LENGTH : -1; break;
        case 8: k = KEY_IS(m, "sections") ? EK_SECTIONS : -1; break;
        case 9: k = KEY_IS(m, "symmetric") ? EK_SYMMETRIC : -1; break;
        case 10: k = KEY_IS(m, "quant_type") ? EK_QUANT_TYPE : KEY_IS(m, "group_size") ? EK_GROUP_SIZE : -1; break;
        case 12: k = KEY_IS(m, "source_dtype") ? EK_SOURCE_DTYPE : -1; break;
        default: break;
        }
        if (k >= 0) out[k] = &m->value;
    }
}

/*
 * Validates tensor entry i (FORMAT.md §3.1) and fills f->tensors[i].
 * *expect_offset is where this tensor must start; on return it is where the
 * next one must start.
 */
static mixq_status parse_entry(mixq_file *f, size_t i, const jf_value *e, uint64_t *expect_offset, type_cache *tc,
                               mixq_error *err)
{
    mixq_tensor *t = &f->tensors[i];
    const char *fn = f->shown;
    const place pl = {NULL, t, i, NULL};
    char w[PLACE_MAX], b[MX_SHOWN_BUF];
#define WHERE place_str(&pl, w)
    mixq_status s;
    const jf_value *v;
    t->file = f;
    if (jf_type(e) != JF_OBJECT) return mx_err(err, MIXQ_E_FORMAT, "%s: %s: entry must be an object", fn, WHERE);
    const jf_value *ef[EK_COUNT];
    entry_fields(e, ef);
    if ((s = check_field(f, &pl, ef[EK_NAME], "name", JK_STRING, false, &v, err))) return s;
    size_t name_len = 0;
    const char *name = jf_str(v, &name_len);
    if (!name_len) return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"name\" is empty", fn, WHERE);
    t->name = name; /* from here on, messages name the tensor */
    t->name_len = name_len;
    size_t dup = mx_cr_table_insert(f, i);
    if (dup != SIZE_MAX)
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: name used by tensors #%zu and #%zu; names must be unique", fn,
                      WHERE, dup, i);

    /* shape, rows, row length, element count */
    const jf_value *shape;
    if ((s = check_field(f, &pl, ef[EK_SHAPE], "shape", JK_ARRAY, false, &shape, err))) return s;
    size_t nd = jf_arr_len(shape);
    if (nd > MIXQ_MAX_DIMS)
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: shape has %zu dims; at most %d are allowed", fn, WHERE, nd,
                      MIXQ_MAX_DIMS);
    t->ndim = (unsigned)nd;
    for (size_t d = 0; d < nd; d++) {
        const jf_value *dim = jf_arr_at(shape, d);
        if (!is_kind(dim, JK_UINT))
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: shape[%zu] must be an integer >= 0", fn, WHERE, d);
        t->shape[d] = uint_of(dim);
    }
    uint64_t rows = 1, row_length = nd ? t->shape[nd - 1] : 1;
    bool empty = false; /* a zero dimension: no elements, whatever the others (as the readers) */
    for (size_t d = 0; d < nd; d++) empty |= t->shape[d] == 0;
    for (size_t d = 0; d + 1 < nd; d++)
        if (!ck_mul(rows, t->shape[d], &rows)) {
            if (!empty)
                return mx_err(err, MIXQ_E_FORMAT, "%s: %s: the element count of the shape overflows 64 bits", fn,
                              WHERE);
            rows = 0;
            break;
        }
    if (empty) t->n_elements = 0;
    else if (!ck_mul(rows, row_length, &t->n_elements))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: the element count of the shape overflows 64 bits", fn, WHERE);

    /* types */
    size_t sl = 0;
    const char *str;
    if ((s = check_field(f, &pl, ef[EK_SOURCE_DTYPE], "source_dtype", JK_STRING, false, &v, err))) return s;
    str = jf_str(v, &sl);
    unsigned c = tc_find(tc->src_str, tc->src_len, tc->nsrc, str, sl);
    if (c < TC_SIZE) {
        t->src = tc->src[c];
    } else {
        if (!st_dtype_parse(str, &t->src))
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: unknown source_dtype \"%s\"", fn, WHERE, mx_shown_n(str, sl, b));
        if (tc->nsrc < TC_SIZE) {
            tc->src_str[tc->nsrc] = str;
            tc->src_len[tc->nsrc] = sl;
            tc->src[tc->nsrc++] = t->src;
        }
    }
    if ((s = check_field(f, &pl, ef[EK_QUANT_TYPE], "quant_type", JK_STRING, false, &v, err))) return s;
    str = jf_str(v, &sl);
    c = tc_find(tc->qt_str, tc->qt_len, tc->nqt, str, sl);
    if (c < TC_SIZE) {
        t->qt = tc->qt[c];
    } else {
        t->qt = qtype_by_name(str);
        if (!t->qt)
            return mx_err(err, MIXQ_E_UNSUPPORTED, "%s: %s: unsupported quant_type \"%s\" (written by a newer mixq?)",
                          fn, WHERE, mx_shown_n(str, sl, b));
        if (tc->nqt < TC_SIZE) {
            tc->qt_str[tc->nqt] = str;
            tc->qt_len[tc->nqt] = sl;
            tc->qt[tc->nqt++] = t->qt;
        }
    }
    if ((s = check_field(f, &pl, ef[EK_GROUP_SIZE], "group_size", JK_UINT, false, &v, err))) return s;
    uint64_t gs = uint_of(v);
    if (gs > UINT_MAX || !qtype_group_ok(t->qt, (unsigned)gs))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: group_size %lld is not allowed for quant_type %s", fn, WHERE,
                      (long long)gs, t->qt->name);
    t->group_size = (unsigned)gs;
    if ((s = check_field(f, &pl, ef[EK_SYMMETRIC], "symmetric", JK_BOOL, false, &v, err))) return s;
    bool sym = jf_type(v) == JF_TRUE;
    if (sym != t->qt->symmetric)
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"symmetric\" is %s but quant_type %s is %s", fn, WHERE,
                      sym ? "true" : "false", t->qt->name, t->qt->symmetric ? "symmetric" : "asymmetric");

    /* layout */
    if (t->qt->quantized && t->group_size == 0 && row_length > UINT_MAX)
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "%s: %s: rows of %" PRIu64 " elements in one quantization group are not supported", fn, WHERE,
                      row_length);
    if (!qtype_layout(t->qt, t->src, rows, row_length, t->group_size, &t->lay) &&
        !(t->n_elements == 0 && qtype_layout(t->qt, t->src, rows, 0, t->group_size, &t->lay))) /* empty: stores nothing */
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: the stored size of this shape overflows 64 bits", fn, WHERE);
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) t->has[k] = qtype_has_section(t->qt, (mixq_section_kind)k);

    const jf_value *off, *len, *secs, *hx;
    if ((s = check_field(f, &pl, ef[EK_OFFSET], "offset", JK_UINT, false, &off, err)) ||
        (s = check_field(f, &pl, ef[EK_LENGTH], "length", JK_UINT, false, &len, err)) ||
        (s = check_field(f, &pl, ef[EK_SECTIONS], "sections", JK_OBJECT, false, &secs, err)) ||
        (s = check_field(f, &pl, ef[EK_XXH3], "xxh3", JK_STRING, false, &hx, err)))
        return s;
    t->offset = uint_of(off);
    t->length = uint_of(len);
    str = jf_str(hx, &sl);
    if (!parse_hex64(str, sl, &t->xxh3))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"xxh3\" must be 16 lowercase hex digits", fn, WHERE);
    if (t->length != t->lay.total)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: %s: \"length\" is %" PRIu64 " but quant_type %s needs %" PRIu64 " bytes for this shape", fn,
                      WHERE, t->length, t->qt->name, t->lay.total);
    if ((s = check_sections(f, &pl, secs, t, err))) return s;
    if (t->offset != *expect_offset)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: %s: \"offset\" is %" PRIu64 " but must be %" PRIu64
                      " (tensors follow each other, each aligned to %u)", fn, WHERE, t->offset, *expect_offset,
                      MX_ALIGN);
    uint64_t end;
    if (!ck_add(t->offset, t->length, &end) || end > f->header_offset)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: %s: bytes %" PRIu64 "..%" PRIu64 " extend beyond the data region (which ends at %" PRIu64
                      ")", fn, WHERE, t->offset, t->offset + t->length, f->header_offset);
    if (!ck_align(end, MX_ALIGN, expect_offset))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: offset overflows", fn, WHERE);
#undef WHERE
    return MIXQ_OK;
}

/* Parses and validates the whole header (FORMAT.md §3) and builds the tensor table. */
mixq_status mx_cr_parse_header(mixq_file *f, mixq_error *err)
{
    const char *fn = f->shown;
    jf_error je;
    f->doc = jf_parse((const char *)f->map + f->header_offset, (size_t)f->header_length, &je);
    if (!f->doc) {
        char b[MX_SHOWN_BUF];
        if (je.code == JF_E_NOMEM) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory while parsing the header", fn);
        return mx_err(err, MIXQ_E_FORMAT, "%s: header is not valid JSON: %s (at header byte %zu)", fn,
                      mx_shown(je.reason, b), je.offset);
    }
    const jf_value *root = jf_root(f->doc);
    if (jf_type(root) != JF_OBJECT) return mx_err(err, MIXQ_E_FORMAT, "%s: header is not a JSON object", fn);

    mixq_status s;
    const jf_value *v, *meta, *arr;
    const place w = {"header", NULL, 0, NULL};
    if ((s = get_field(f, &w, root, "format", JK_STRING, false, &v, err))) return s;
    if (strcmp(jf_str(v, NULL), "mixq") != 0)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header: \"format\" must be \"mixq\"", fn);
    if ((s = get_field(f, &w, root, "format_version", JK_UINT, false, &v, err))) return s;
    if (uint_of(v) != MXC_FORMAT_MAJOR)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header: format_version %lld does not match the preamble's %u", fn,
                      (long long)v->u.i, MXC_FORMAT_MAJOR);
    if ((s = get_field(f, &w, root, "alignment", JK_UINT, false, &v, err))) return s;
    if (uint_of(v) != MX_ALIGN)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header: alignment %lld is not %u", fn, (long long)v->u.i, MX_ALIGN);
    if ((s = get_field(f, &w, root, "metadata", JK_OBJECT, false, &meta, err))) return s;
    if ((s = parse_metadata(f, meta, err))) return s;
    if ((s = get_field(f, &w, root, "tensors", JK_ARRAY, false, &arr, err))) return s;

    size_t n = jf_arr_len(arr);
    f->ntensors = n;
    /* n < header_length <= 2^28, so none of these sizes can overflow and an index fits 32 bits. */
    for (f->nslots = 8; f->nslots <= 2 * n; f->nslots *= 2) {}
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->slots = calloc(f->nslots, sizeof *f->slots);
    if (!f->tensors || !f->slots) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory (%zu tensors)", fn, n);
    f->seed = mx_cr_pick_seed(f);

    uint64_t expect = MXC_PREAMBLE_LEN;
    type_cache tc = {0};
    for (size_t i = 0; i < n; i++)
        if ((s = parse_entry(f, i, jf_arr_at(arr, i), &expect, &tc, err))) return s;
    const jf_value *files;
    if ((s = get_field(f, &w, root, "files", JK_ARRAY, true, &files, err))) return s;
    if (files && (s = mx_cr_parse_files(f, files, err))) return s;
    uint64_t data_end = n ? expect : MXC_PREAMBLE_LEN;
    if (data_end != f->header_offset)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: data_length is %" PRIu64 " but the tensors need %" PRIu64
                      " (the data region must end at the last tensor rounded up to %u)", fn, f->data_length,
                      data_end - MXC_PREAMBLE_LEN, MX_ALIGN);
    return MIXQ_OK;
}
