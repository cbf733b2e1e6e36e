/*
 * container_read.c - the container loader (format/FORMAT.md): maps a file
 * read-only, validates the preamble and the JSON header completely before
 * any offset is used, and serves lookups, zero-copy section views,
 * dequantization and full verification.  Every byte of the file is treated
 * as hostile; nothing outside the mapping is ever read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#include "checked.h"
#include "container.h"
#include "dtype.h"
#include "error.h"
#include "half.h"
#include "qtype.h"
#include "simd.h"

/* Longest rendering of a file-supplied string (name, type) in a message. */
#define SHOWN_MAX 160
/* Floats converted per step when producing f16 output without a heap buffer. */
#define CHUNK 1024

struct mixq_tensor {
    const mixq_file *file;
    const char *name;              /* owned by file->root */
    unsigned ndim;
    uint64_t shape[MIXQ_MAX_DIMS];
    uint64_t n_elements;
    const qtype_desc *qt;
    st_dtype src;
    unsigned group_size;           /* as recorded */
    uint64_t offset, length;       /* absolute */
    uint64_t xxh3;
    qlayout lay;
    bool has[MIXQ_SECTION_COUNT];
};

struct mixq_file {
    char shown[SHOWN_MAX + 8];     /* the path, sanitised for messages */
    const uint8_t *map;
    uint64_t size;
    uint64_t data_length, header_offset, header_length;
    json_t *root;                  /* kept alive: tensor names and metadata point into it */
    json_t *source_meta;           /* borrowed from root; NULL if absent */
    mixq_tensor *tensors;
    size_t ntensors;
    size_t *slots;                 /* open addressing: tensor index + 1, 0 = empty */
    size_t nslots;                 /* power of two, > 2 * ntensors */
};

/*
 * Copies s into buf (SHOWN_MAX + 8 bytes) fit for a one-line message:
 * control bytes become '?', and a long string is cut at a UTF-8 character
 * boundary and marked with "...".
 */
static const char *shown(const char *s, char *buf)
{
    size_t n = 0;
    for (; s[n] && n < SHOWN_MAX; n++) {
        unsigned char c = (unsigned char)s[n];
        buf[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[n]) {
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
        memcpy(buf + n, "...", 4);
    } else {
        buf[n] = '\0';
    }
    return buf;
}

/* ---------------------------------------------------------------------- */
/* Name lookup                                                             */
/* ---------------------------------------------------------------------- */

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* Inserts tensor i by name; returns the index of an earlier tensor of the same name, or SIZE_MAX. */
static size_t table_insert(mixq_file *f, size_t i)
{
    size_t mask = f->nslots - 1, j = (size_t)name_hash(f->tensors[i].name) & mask;
    for (; f->slots[j]; j = (j + 1) & mask)
        if (strcmp(f->tensors[f->slots[j] - 1].name, f->tensors[i].name) == 0) return f->slots[j] - 1;
    f->slots[j] = i + 1;
    return SIZE_MAX;
}

const mixq_tensor *mixq_find(const mixq_file *f, const char *name)
{
    if (!f || !name || !f->nslots) return NULL;
    size_t mask = f->nslots - 1;
    for (size_t j = (size_t)name_hash(name) & mask; f->slots[j]; j = (j + 1) & mask)
        if (strcmp(f->tensors[f->slots[j] - 1].name, name) == 0) return &f->tensors[f->slots[j] - 1];
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Preamble                                                                */
/* ---------------------------------------------------------------------- */

/* Checks every preamble rule of FORMAT.md §2 and the header checksum. */
static mixq_status check_preamble(mixq_file *f, mixq_error *err)
{
    const uint8_t *p = f->map;
    const char *fn = f->shown;
    if (memcmp(p + MXC_OFF_MAGIC, MXC_MAGIC, MXC_MAGIC_LEN) != 0)
        return mx_err(err, MIXQ_E_FORMAT, "%s: not a mixq container (bad magic bytes)", fn);
    unsigned major = mxc_get_u16(p + MXC_OFF_MAJOR);
    if (major > MXC_FORMAT_MAJOR)
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "%s: format version %u is newer than this mixq supports; upgrade mixq", fn, major);
    if (major != MXC_FORMAT_MAJOR)
        return mx_err(err, MIXQ_E_FORMAT, "%s: invalid format version %u (expected %u)", fn, major,
                      MXC_FORMAT_MAJOR);
    uint64_t stored = mxc_get_u64(p + MXC_OFF_PREAMBLE_XXH3), computed = XXH3_64bits(p, MXC_OFF_PREAMBLE_XXH3);
    if (stored != computed)
        return mx_err(err, MIXQ_E_CHECKSUM,
                      "%s: preamble: checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                      "): the file is corrupt; re-create it", fn, stored, computed);
    uint32_t flags = mxc_get_u32(p + MXC_OFF_FLAGS);
    if (flags != 0)
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "%s: preamble flags 0x%08" PRIx32 " are set; this mixq knows no flags (written by a newer mixq?)",
                      fn, flags);
    uint64_t data_offset = mxc_get_u64(p + MXC_OFF_DATA_OFFSET);
    f->data_length = mxc_get_u64(p + MXC_OFF_DATA_LENGTH);
    f->header_offset = mxc_get_u64(p + MXC_OFF_HEADER_OFFSET);
    f->header_length = mxc_get_u64(p + MXC_OFF_HEADER_LENGTH);
    if (data_offset != MXC_PREAMBLE_LEN)
        return mx_err(err, MIXQ_E_FORMAT, "%s: data_offset is %" PRIu64 "; it must be %u", fn, data_offset,
                      MXC_PREAMBLE_LEN);
    if (f->data_length % MX_ALIGN != 0)
        return mx_err(err, MIXQ_E_FORMAT, "%s: data_length %" PRIu64 " is not a multiple of %u", fn,
                      f->data_length, MX_ALIGN);
    uint64_t expect;
    if (!ck_add(data_offset, f->data_length, &expect) || f->header_offset != expect)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: header_offset %" PRIu64 " is not data_offset + data_length (%" PRIu64 " + %" PRIu64 ")",
                      fn, f->header_offset, data_offset, f->data_length);
    if (f->header_length == 0 || f->header_length > MXC_MAX_HEADER)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header_length %" PRIu64 " is outside 1..%u", fn, f->header_length,
                      MXC_MAX_HEADER);
    uint64_t end;
    if (!ck_add(f->header_offset, f->header_length, &end) || end > f->size)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: the header (bytes %" PRIu64 "..%" PRIu64 ") extends beyond the end of the file (%" PRIu64
                      " bytes): the file is truncated or corrupt", fn, f->header_offset,
                      f->header_offset + f->header_length, f->size);
    if (end != f->size)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: %" PRIu64 " unexpected byte(s) after the header (the file should end at %" PRIu64 ")", fn,
                      f->size - end, end);
    stored = mxc_get_u64(p + MXC_OFF_HEADER_XXH3);
    computed = XXH3_64bits(p + f->header_offset, (size_t)f->header_length);
    if (stored != computed)
        return mx_err(err, MIXQ_E_CHECKSUM,
                      "%s: header (bytes %" PRIu64 "..%" PRIu64 "): checksum mismatch (stored %016" PRIx64
                      ", computed %016" PRIx64 "): the file is corrupt; re-create it", fn, f->header_offset, end,
                      stored, computed);
    return MIXQ_OK;
}

/* ---------------------------------------------------------------------- */
/* JSON header                                                             */
/* ---------------------------------------------------------------------- */

typedef enum jkind { JK_STRING, JK_UINT, JK_BOOL, JK_OBJECT, JK_ARRAY } jkind;

static const char *const jkind_name[] = {
    [JK_STRING] = "a string", [JK_UINT] = "an integer >= 0", [JK_BOOL] = "a boolean",
    [JK_OBJECT] = "an object", [JK_ARRAY] = "an array",
};

static bool is_kind(const json_t *v, jkind k)
{
    switch (k) {
    case JK_STRING: return json_is_string(v);
    case JK_UINT: return json_is_integer(v) && json_integer_value(v) >= 0;
    case JK_BOOL: return json_is_boolean(v);
    case JK_OBJECT: return json_is_object(v);
    case JK_ARRAY: return json_is_array(v);
    }
    return false;
}

/*
 * Fetches obj[key] of the given kind into *out.  A missing key is an error
 * unless optional (then *out is NULL).  `where` names the place for messages.
 */
static mixq_status get_field(const mixq_file *f, const char *where, json_t *obj, const char *key, jkind kind,
                             bool optional, json_t **out, mixq_error *err)
{
    json_t *v = json_object_get(obj, key);
    *out = v;
    if (!v) {
        if (optional) return MIXQ_OK;
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: key \"%s\" is missing", f->shown, where, key);
    }
    if (!is_kind(v, kind))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"%s\" must be %s", f->shown, where, key, jkind_name[kind]);
    return MIXQ_OK;
}

/* Parses 16 lowercase hex digits. */
static bool parse_hex64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') v = (v << 4) | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = (v << 4) | (uint64_t)(c - 'a' + 10);
        else return false;
    }
    if (s[16] != '\0') return false;
    *out = v;
    return true;
}

/* Validates the metadata object (FORMAT.md §3.2): every known key is optional but must have its type. */
static mixq_status parse_metadata(mixq_file *f, json_t *meta, mixq_error *err)
{
    const char *w = "header metadata";
    json_t *v;
    mixq_status s;
    if ((s = get_field(f, w, meta, "mixq_version", JK_STRING, true, &v, err))) return s;
    if ((s = get_field(f, w, meta, "source_metadata", JK_OBJECT, true, &f->source_meta, err))) return s;
    if (f->source_meta) {
        const char *key;
        json_t *val;
        char b[SHOWN_MAX + 8];
        json_object_foreach(f->source_meta, key, val) {
            if (!json_is_string(val))
                return mx_err(err, MIXQ_E_FORMAT, "%s: header metadata: source_metadata[\"%s\"] must be a string",
                              f->shown, shown(key, b));
        }
    }
    json_t *files;
    if ((s = get_field(f, w, meta, "source_files", JK_ARRAY, true, &files, err))) return s;
    if (files) {
        size_t i;
        json_t *e;
        json_array_foreach(files, i, e) {
            if (!json_is_object(e))
                return mx_err(err, MIXQ_E_FORMAT, "%s: header metadata: source_files[%zu] must be an object",
                              f->shown, i);
            if ((s = get_field(f, "header metadata source_files entry", e, "name", JK_STRING, false, &v, err)) ||
                (s = get_field(f, "header metadata source_files entry", e, "size", JK_UINT, false, &v, err)))
                return s;
        }
    }
    json_t *opts;
    if ((s = get_field(f, w, meta, "options", JK_OBJECT, true, &opts, err))) return s;
    if (opts) {
        const char *wo = "header metadata options";
        if ((s = get_field(f, wo, opts, "type", JK_STRING, true, &v, err)) ||
            (s = get_field(f, wo, opts, "group_size", JK_UINT, true, &v, err)) ||
            (s = get_field(f, wo, opts, "quantize_1d", JK_BOOL, true, &v, err)))
            return s;
    }
    return MIXQ_OK;
}

/* Checks the "sections" object of an entry against the computed layout: same names, offsets, lengths. */
static mixq_status check_sections(const mixq_file *f, const char *where, json_t *secs, const mixq_tensor *t,
                                  mixq_error *err)
{
    size_t expected = 0;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!t->has[k]) continue;
        expected++;
        const char *sn = mixq_section_name((mixq_section_kind)k);
        json_t *sec = json_object_get(secs, sn), *off, *len;
        if (!sec)
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: section \"%s\" is missing (quant_type %s stores it)", f->shown,
                          where, sn, t->qt->name);
        if (!json_is_object(sec))
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: section \"%s\" must be an object", f->shown, where, sn);
        mixq_status s;
        char w2[SHOWN_MAX + 64];
        snprintf(w2, sizeof w2, "%s: section \"%s\"", where, sn);
        if ((s = get_field(f, w2, sec, "offset", JK_UINT, false, &off, err)) ||
            (s = get_field(f, w2, sec, "length", JK_UINT, false, &len, err)))
            return s;
        uint64_t o = (uint64_t)json_integer_value(off), l = (uint64_t)json_integer_value(len);
        if (o != t->lay.offset[k] || l != t->lay.length[k])
            return mx_err(err, MIXQ_E_FORMAT,
                          "%s: %s has offset %" PRIu64 ", length %" PRIu64 "; the layout of this shape and type "
                          "needs offset %" PRIu64 ", length %" PRIu64, f->shown, w2, o, l, t->lay.offset[k],
                          t->lay.length[k]);
    }
    if (json_object_size(secs) != expected) {
        const char *key;
        json_t *val;
        char b[SHOWN_MAX + 8];
        json_object_foreach(secs, key, val) {
            bool known = false;
            for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
                if (t->has[k] && strcmp(key, mixq_section_name((mixq_section_kind)k)) == 0) known = true;
            if (!known)
                return mx_err(err, MIXQ_E_FORMAT, "%s: %s: unexpected section \"%s\" for quant_type %s", f->shown,
                              where, shown(key, b), t->qt->name);
        }
    }
    return MIXQ_OK;
}

/*
 * Validates tensor entry i (FORMAT.md §3.1) and fills f->tensors[i].
 * *expect_offset is where this tensor must start; on return it is where the
 * next one must start.
 */
static mixq_status parse_entry(mixq_file *f, size_t i, json_t *e, uint64_t *expect_offset, mixq_error *err)
{
    mixq_tensor *t = &f->tensors[i];
    const char *fn = f->shown;
    char where[SHOWN_MAX + 32], b[SHOWN_MAX + 8];
    mixq_status s;
    json_t *v;
    t->file = f;
    snprintf(where, sizeof where, "tensor #%zu", i);
    if (!json_is_object(e)) return mx_err(err, MIXQ_E_FORMAT, "%s: %s: entry must be an object", fn, where);
    if ((s = get_field(f, where, e, "name", JK_STRING, false, &v, err))) return s;
    t->name = json_string_value(v);
    if (!t->name[0]) return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"name\" is empty", fn, where);
    snprintf(where, sizeof where, "tensor \"%s\"", shown(t->name, b));
    size_t dup = table_insert(f, i);
    if (dup != SIZE_MAX)
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: name used by tensors #%zu and #%zu; names must be unique", fn,
                      where, dup, i);

    /* shape, rows, row length, element count */
    json_t *shape;
    if ((s = get_field(f, where, e, "shape", JK_ARRAY, false, &shape, err))) return s;
    size_t nd = json_array_size(shape);
    if (nd > MIXQ_MAX_DIMS)
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: shape has %zu dims; at most %d are allowed", fn, where, nd,
                      MIXQ_MAX_DIMS);
    t->ndim = (unsigned)nd;
    for (size_t d = 0; d < nd; d++) {
        json_t *dim = json_array_get(shape, d);
        if (!is_kind(dim, JK_UINT))
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: shape[%zu] must be an integer >= 0", fn, where, d);
        t->shape[d] = (uint64_t)json_integer_value(dim);
    }
    uint64_t rows = 1, row_length = nd ? t->shape[nd - 1] : 1;
    for (size_t d = 0; d + 1 < nd; d++)
        if (!ck_mul(rows, t->shape[d], &rows))
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: the element count of the shape overflows 64 bits", fn, where);
    if (!ck_mul(rows, row_length, &t->n_elements))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: the element count of the shape overflows 64 bits", fn, where);

    /* types */
    if ((s = get_field(f, where, e, "source_dtype", JK_STRING, false, &v, err))) return s;
    if (!st_dtype_parse(json_string_value(v), &t->src))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: unknown source_dtype \"%s\"", fn, where,
                      shown(json_string_value(v), b));
    if ((s = get_field(f, where, e, "quant_type", JK_STRING, false, &v, err))) return s;
    t->qt = qtype_by_name(json_string_value(v));
    if (!t->qt)
        return mx_err(err, MIXQ_E_UNSUPPORTED, "%s: %s: unsupported quant_type \"%s\" (written by a newer mixq?)", fn,
                      where, shown(json_string_value(v), b));
    if ((s = get_field(f, where, e, "group_size", JK_UINT, false, &v, err))) return s;
    json_int_t gs = json_integer_value(v);
    if (gs > (json_int_t)UINT_MAX || !qtype_group_ok(t->qt, (unsigned)gs))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: group_size %lld is not allowed for quant_type %s", fn, where,
                      (long long)gs, t->qt->name);
    t->group_size = (unsigned)gs;
    if ((s = get_field(f, where, e, "symmetric", JK_BOOL, false, &v, err))) return s;
    if (json_is_true(v) != t->qt->symmetric)
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"symmetric\" is %s but quant_type %s is %s", fn, where,
                      json_is_true(v) ? "true" : "false", t->qt->name, t->qt->symmetric ? "symmetric" : "asymmetric");

    /* layout */
    if (t->qt->quantized && t->group_size == 0 && row_length > UINT_MAX)
        return mx_err(err, MIXQ_E_UNSUPPORTED,
                      "%s: %s: rows of %" PRIu64 " elements in one quantization group are not supported", fn, where,
                      row_length);
    if (!qtype_layout(t->qt, t->src, rows, row_length, t->group_size, &t->lay))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: the stored size of this shape overflows 64 bits", fn, where);
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) t->has[k] = qtype_has_section(t->qt, (mixq_section_kind)k);

    json_t *off, *len, *secs, *hx;
    if ((s = get_field(f, where, e, "offset", JK_UINT, false, &off, err)) ||
        (s = get_field(f, where, e, "length", JK_UINT, false, &len, err)) ||
        (s = get_field(f, where, e, "sections", JK_OBJECT, false, &secs, err)) ||
        (s = get_field(f, where, e, "xxh3", JK_STRING, false, &hx, err)))
        return s;
    t->offset = (uint64_t)json_integer_value(off);
    t->length = (uint64_t)json_integer_value(len);
    if (!parse_hex64(json_string_value(hx), &t->xxh3))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"xxh3\" must be 16 lowercase hex digits", fn, where);
    if (t->length != t->lay.total)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: %s: \"length\" is %" PRIu64 " but quant_type %s needs %" PRIu64 " bytes for this shape", fn,
                      where, t->length, t->qt->name, t->lay.total);
    if ((s = check_sections(f, where, secs, t, err))) return s;
    if (t->offset != *expect_offset)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: %s: \"offset\" is %" PRIu64 " but must be %" PRIu64
                      " (tensors follow each other, each aligned to %u)", fn, where, t->offset, *expect_offset,
                      MX_ALIGN);
    uint64_t end;
    if (!ck_add(t->offset, t->length, &end) || end > f->header_offset)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: %s: bytes %" PRIu64 "..%" PRIu64 " extend beyond the data region (which ends at %" PRIu64
                      ")", fn, where, t->offset, t->offset + t->length, f->header_offset);
    if (!ck_align(end, MX_ALIGN, expect_offset))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: offset overflows", fn, where);
    return MIXQ_OK;
}

/* Parses and validates the whole header (FORMAT.md §3) and builds the tensor table. */
static mixq_status parse_header(mixq_file *f, mixq_error *err)
{
    const char *fn = f->shown;
    json_error_t je;
    f->root = json_loadb((const char *)f->map + f->header_offset, (size_t)f->header_length, JSON_REJECT_DUPLICATES,
                         &je);
    if (!f->root) {
        char b[SHOWN_MAX + 8];
        if (json_error_code(&je) == json_error_out_of_memory)
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory while parsing the header", fn);
        return mx_err(err, MIXQ_E_FORMAT, "%s: header is not valid JSON: %s (at header byte %d)", fn,
                      shown(je.text, b), je.position);
    }
    if (!json_is_object(f->root)) return mx_err(err, MIXQ_E_FORMAT, "%s: header is not a JSON object", fn);

    mixq_status s;
    json_t *v, *meta, *arr;
    const char *w = "header";
    if ((s = get_field(f, w, f->root, "format", JK_STRING, false, &v, err))) return s;
    if (strcmp(json_string_value(v), "mixq") != 0)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header: \"format\" must be \"mixq\"", fn);
    if ((s = get_field(f, w, f->root, "format_version", JK_UINT, false, &v, err))) return s;
    if (json_integer_value(v) != MXC_FORMAT_MAJOR)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header: format_version %lld does not match the preamble's %u", fn,
                      (long long)json_integer_value(v), MXC_FORMAT_MAJOR);
    if ((s = get_field(f, w, f->root, "alignment", JK_UINT, false, &v, err))) return s;
    if (json_integer_value(v) != MX_ALIGN)
        return mx_err(err, MIXQ_E_FORMAT, "%s: header: alignment %lld is not %u", fn,
                      (long long)json_integer_value(v), MX_ALIGN);
    if ((s = get_field(f, w, f->root, "metadata", JK_OBJECT, false, &meta, err))) return s;
    if ((s = parse_metadata(f, meta, err))) return s;
    if ((s = get_field(f, w, f->root, "tensors", JK_ARRAY, false, &arr, err))) return s;

    size_t n = json_array_size(arr);
    f->ntensors = n;
    /* n < header_length, so none of these sizes can overflow. */
    for (f->nslots = 8; f->nslots <= 2 * n; f->nslots *= 2) {}
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->slots = calloc(f->nslots, sizeof *f->slots);
    if (!f->tensors || !f->slots) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory (%zu tensors)", fn, n);

    uint64_t expect = MXC_PREAMBLE_LEN;
    for (size_t i = 0; i < n; i++)
        if ((s = parse_entry(f, i, json_array_get(arr, i), &expect, err))) return s;
    uint64_t data_end = n ? expect : MXC_PREAMBLE_LEN;
    if (data_end != f->header_offset)
        return mx_err(err, MIXQ_E_FORMAT,
                      "%s: data_length is %" PRIu64 " but the tensors need %" PRIu64
                      " (the data region must end at the last tensor rounded up to %u)", fn, f->data_length,
                      data_end - MXC_PREAMBLE_LEN, MX_ALIGN);
    return MIXQ_OK;
}

/* ---------------------------------------------------------------------- */
/* Open / close and accessors                                              */
/* ---------------------------------------------------------------------- */

mixq_file *mixq_open(const char *path, unsigned flags, mixq_error *err)
{
    mx_err_clear(err);
    if (!path) {
        mx_err(err, MIXQ_E_INVALID_ARG, "mixq_open: path is NULL");
        return NULL;
    }
    mixq_file *f = calloc(1, sizeof *f);
    char b[SHOWN_MAX + 8];
    if (!f) {
        mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", shown(path, b));
        return NULL;
    }
    shown(path, f->shown);
    const char *fn = f->shown;
    if (flags & ~MIXQ_OPEN_VERIFY) {
        mx_err(err, MIXQ_E_INVALID_ARG, "%s: unknown open flags 0x%x", fn, flags);
        goto fail;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", fn, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        mx_err(err, MIXQ_E_IO, "%s: cannot stat: %s", fn, strerror(errno));
        close(fd);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        mx_err(err, MIXQ_E_IO, "%s: not a regular file", fn);
        close(fd);
        goto fail;
    }
    f->size = (uint64_t)st.st_size;
    if (f->size < MXC_PREAMBLE_LEN) {
        if (f->size == 0) mx_err(err, MIXQ_E_FORMAT, "%s: the file is empty; not a mixq container", fn);
        else mx_err(err, MIXQ_E_FORMAT,
                    "%s: the file is %" PRIu64 " bytes, too small for a mixq container (at least %u)", fn, f->size,
                    MXC_PREAMBLE_LEN);
        close(fd);
        goto fail;
    }
    if (f->size > SIZE_MAX) {
        mx_err(err, MIXQ_E_UNSUPPORTED, "%s: the file is too large to map on this system", fn);
        close(fd);
        goto fail;
    }
    void *m = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (m == MAP_FAILED) {
        mx_err(err, MIXQ_E_IO, "%s: cannot map: %s", fn, strerror(merr));
        goto fail;
    }
    f->map = m;
    if (check_preamble(f, err) != MIXQ_OK || parse_header(f, err) != MIXQ_OK) goto fail;
    if ((flags & MIXQ_OPEN_VERIFY) && mixq_verify(f, err) != MIXQ_OK) goto fail;
    return f;
fail:
    mixq_close(f);
    return NULL;
}

void mixq_close(mixq_file *f)
{
    if (!f) return;
    if (f->map) munmap((void *)f->map, (size_t)f->size);
    json_decref(f->root);
    free(f->tensors);
    free(f->slots);
    free(f);
}

size_t mixq_tensor_count(const mixq_file *f) { return f ? f->ntensors : 0; }

const mixq_tensor *mixq_tensor_at(const mixq_file *f, size_t i)
{
    return f && i < f->ntensors ? &f->tensors[i] : NULL;
}

void mixq_tensor_get_info(const mixq_tensor *t, mixq_tensor_info *info)
{
    if (!info) return;
    memset(info, 0, sizeof *info);
    if (!t) return;
    info->name = t->name;
    info->ndim = t->ndim;
    memcpy(info->shape, t->shape, sizeof info->shape);
    info->n_elements = t->n_elements;
    info->rows = t->lay.rows;
    info->row_length = t->lay.row_length;
    info->qtype = t->qt->id;
    info->quant_type = t->qt->name;
    info->source_dtype = st_dtypes[t->src].name;
    info->group_size = t->group_size;
    info->quantized = t->qt->quantized;
    info->symmetric = t->qt->symmetric;
    info->offset = t->offset;
    info->nbytes = t->length;
    info->bits_per_weight = t->n_elements ? (double)t->length * 8.0 / (double)t->n_elements : 0.0;
    info->checksum = t->xxh3;
}

mixq_status mixq_tensor_section(const mixq_tensor *t, mixq_section_kind kind, mixq_section *out)
{
    if (!t || !out) return MIXQ_E_INVALID_ARG;
    if ((unsigned)kind >= MIXQ_SECTION_COUNT || !t->has[kind]) return MIXQ_E_NOT_FOUND;
    out->data = t->file->map + t->offset + t->lay.offset[kind];
    out->offset = t->offset + t->lay.offset[kind];
    out->size = t->lay.length[kind];
    out->row_stride = t->lay.row_bytes[kind];
    return MIXQ_OK;
}

const char *mixq_header_json(const mixq_file *f, size_t *len)
{
    if (!f) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = (size_t)f->header_length;
    return (const char *)f->map + f->header_offset;
}

uint64_t mixq_file_size(const mixq_file *f) { return f ? f->size : 0; }

const char *mixq_source_metadata(const mixq_file *f, const char *key)
{
    if (!f || !key || !f->source_meta) return NULL;
    return json_string_value(json_object_get(f->source_meta, key)); /* NULL if absent or not a string */
}

/* ---------------------------------------------------------------------- */
/* Verification                                                            */
/* ---------------------------------------------------------------------- */

/* Checks that [from, to) of the file is all zero; names the first non-zero byte. */
static mixq_status check_zero(const mixq_file *f, uint64_t from, uint64_t to, mixq_error *err)
{
    for (uint64_t o = from; o < to; o++)
        if (f->map[o] != 0)
            return mx_err(err, MIXQ_E_CHECKSUM,
                          "%s: padding at offset %" PRIu64 " is not zero: the file is corrupt; re-create it", f->shown,
                          o);
    return MIXQ_OK;
}

mixq_status mixq_verify(const mixq_file *f, mixq_error *err)
{
    mx_err_clear(err);
    if (!f) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_verify: file is NULL");
    const char *fn = f->shown;
    uint64_t stored = mxc_get_u64(f->map + MXC_OFF_PREAMBLE_XXH3);
    uint64_t computed = XXH3_64bits(f->map, MXC_OFF_PREAMBLE_XXH3);
    if (stored != computed)
        return mx_err(err, MIXQ_E_CHECKSUM,
                      "%s: preamble: checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                      "): the file is corrupt; re-create it", fn, stored, computed);
    stored = mxc_get_u64(f->map + MXC_OFF_HEADER_XXH3);
    computed = XXH3_64bits(f->map + f->header_offset, (size_t)f->header_length);
    if (stored != computed)
        return mx_err(err, MIXQ_E_CHECKSUM,
                      "%s: header: checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                      "): the file is corrupt; re-create it", fn, stored, computed);
    for (size_t i = 0; i < f->ntensors; i++) {
        const mixq_tensor *t = &f->tensors[i];
        computed = XXH3_64bits(f->map + t->offset, (size_t)t->length);
        if (computed != t->xxh3) {
            char b[SHOWN_MAX + 8];
            return mx_err(err, MIXQ_E_CHECKSUM,
                          "%s: tensor \"%s\" (bytes %" PRIu64 "..%" PRIu64 "): checksum mismatch (stored %016" PRIx64
                          ", computed %016" PRIx64 "): the file is corrupt; re-create it", fn, shown(t->name, b),
                          t->offset, t->offset + t->length, t->xxh3, computed);
        }
    }
    uint64_t pos = MXC_PREAMBLE_LEN;
    mixq_status s;
    for (size_t i = 0; i < f->ntensors; i++) {
        const mixq_tensor *t = &f->tensors[i];
        if ((s = check_zero(f, pos, t->offset, err))) return s;
        uint64_t cur = 0; /* relative end of the sections so far; sections are in kind order */
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
            if (!t->has[k]) continue;
            if (t->lay.offset[k] > cur && (s = check_zero(f, t->offset + cur, t->offset + t->lay.offset[k], err)))
                return s;
            if (t->lay.offset[k] + t->lay.length[k] > cur) cur = t->lay.offset[k] + t->lay.length[k];
        }
        if ((s = check_zero(f, t->offset + cur, t->offset + t->length, err))) return s;
        pos = t->offset + t->length;
    }
    return check_zero(f, pos, f->header_offset, err);
}

/* ---------------------------------------------------------------------- */
/* Dequantization                                                          */
/* ---------------------------------------------------------------------- */

/* Checks the arguments of a dequantize call; *n gets the element count. */
static mixq_status deq_args(const mixq_file *f, const mixq_tensor *t, uint64_t rb, uint64_t re, const void *out,
                            uint64_t *n, mixq_error *err)
{
    mx_err_clear(err);
    if (!f || !t) return mx_err(err, MIXQ_E_INVALID_ARG, "dequantize: file or tensor is NULL");
    char b[SHOWN_MAX + 8];
    if (t->file != f)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\" belongs to another file", f->shown,
                      shown(t->name, b));
    if (rb > re || re > t->lay.rows)
        return mx_err(err, MIXQ_E_RANGE,
                      "%s: tensor \"%s\": rows %" PRIu64 "..%" PRIu64 " are out of range (the tensor has %" PRIu64
                      " rows)", f->shown, shown(t->name, b), rb, re, t->lay.rows);
    *n = (re - rb) * t->lay.row_length; /* <= n_elements: no overflow */
    if (*n > SIZE_MAX / sizeof(float))
        return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": too many elements for one call", f->shown,
                      shown(t->name, b));
    if (*n && !out) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\": output is NULL", f->shown,
                                  shown(t->name, b));
    return MIXQ_OK;
}

/* The element dtype of a plain (not quantized) tensor's data section. */
static st_dtype plain_dtype(const mixq_tensor *t)
{
    switch (t->qt->id) {
    case MIXQ_QT_F32: return ST_F32;
    case MIXQ_QT_F16: return ST_F16;
    case MIXQ_QT_BF16: return ST_BF16;
    default: return t->src;
    }
}

/* Converts elements [first, first + n) of a plain tensor to float. */
static void plain_to_f32(const mixq_tensor *t, uint64_t first, size_t n, float *out)
{
    st_dtype dt = plain_dtype(t);
    const uint8_t *p = t->file->map + t->offset + t->lay.offset[MIXQ_SEC_DATA] + first * st_dtypes[dt].size;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (dt == ST_F32) {
        memcpy(out, p, n * sizeof(float));
        return;
    }
#endif
    st_to_f32(dt, p, n, out);
}

/* Dequantizes row r of a quantized tensor into out (row_length floats). */
static void quant_row_to_f32(const mixq_tensor *t, uint64_t r, float *out)
{
    mx_crowptrs rp = {{0}};
    const uint8_t *base = t->file->map + t->offset;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++)
        if (t->has[k]) rp.sec[k] = base + t->lay.offset[k] + r * t->lay.row_bytes[k];
    mx_kernels()->dequantize_row[t->qt->id](rp, (size_t)t->lay.row_length, t->lay.group, out);
}

mixq_status mixq_dequantize_f32(const mixq_file *f, const mixq_tensor *t, uint64_t rb, uint64_t re, float *out,
                                mixq_error *err)
{
    uint64_t n;
    mixq_status s = deq_args(f, t, rb, re, out, &n, err);
    if (s != MIXQ_OK || n == 0) return s;
    uint64_t k = t->lay.row_length;
    if (!t->qt->quantized) {
        plain_to_f32(t, rb * k, (size_t)n, out);
        return MIXQ_OK;
    }
    for (uint64_t r = rb; r < re; r++) quant_row_to_f32(t, r, out + (r - rb) * k);
    return MIXQ_OK;
}

mixq_status mixq_dequantize_f16(const mixq_file *f, const mixq_tensor *t, uint64_t rb, uint64_t re, uint16_t *out,
                                mixq_error *err)
{
    uint64_t n;
    mixq_status s = deq_args(f, t, rb, re, out, &n, err);
    if (s != MIXQ_OK || n == 0) return s;
    uint64_t k = t->lay.row_length;
    float stackbuf[CHUNK];
    if (!t->qt->quantized) {
        uint64_t first = rb * k;
        if (plain_dtype(t) == ST_F16) { /* already f16: copy the bit patterns exactly */
            const uint8_t *p = t->file->map + t->offset + t->lay.offset[MIXQ_SEC_DATA] + first * 2;
            for (uint64_t i = 0; i < n; i++) out[i] = mxc_get_u16(p + 2 * i);
            return MIXQ_OK;
        }
        for (uint64_t done = 0; done < n;) {
            size_t c = n - done < CHUNK ? (size_t)(n - done) : CHUNK;
            plain_to_f32(t, first + done, c, stackbuf);
            mx_kernels()->f32_to_f16(stackbuf, c, out + done);
            done += c;
        }
        return MIXQ_OK;
    }
    float *row = stackbuf;
    if (k > CHUNK) {
        row = malloc((size_t)k * sizeof *row); /* k * 4 <= n * 4 fits size_t (checked in deq_args) */
        if (!row) {
            char b[SHOWN_MAX + 8];
            return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory for a row of %" PRIu64 " elements",
                          f->shown, shown(t->name, b), k);
        }
    }
    for (uint64_t r = rb; r < re; r++) {
        quant_row_to_f32(t, r, row);
        mx_kernels()->f32_to_f16(row, (size_t)k, out + (r - rb) * k);
    }
    if (row != stackbuf) free(row);
    return MIXQ_OK;
}
