/*
 * container_read.c - the container loader (format/FORMAT.md): maps a file
 * read-only, validates the preamble and the JSON header completely before
 * any offset is used, and serves lookups, zero-copy section views,
 * dequantization and full verification.  Every byte of the file is treated
 * as hostile; nothing outside the mapping is ever read.
 *
 * Opening touches only the preamble and the header (tensor data is read on
 * demand, or by mixq_verify): the header is parsed by json_fast.c into one
 * arena, kept until mixq_close (tensor names and metadata point into it);
 * the tensor table is one array and the name index one slot array.  Error
 * messages are formatted only on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/checked.h"
#include "format/container.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/half.h"
#include "common/json_fast.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"

/* Floats converted per step when producing f16 output without a heap buffer. */
#define CHUNK 1024

struct mixq_tensor {
    const mixq_file *file;
    const char *name;              /* NUL-terminated, in file->doc's arena */
    size_t name_len;
    uint64_t name_hash;
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
    char shown[MX_SHOWN_BUF];     /* the path, sanitised for messages */
    const uint8_t *map;
    uint64_t size;
    uint64_t data_length, header_offset, header_length;
    jf_doc *doc;                   /* the parsed header, kept alive: names and metadata point into it */
    const jf_value *source_meta;   /* inside doc; NULL if absent */
    mixq_tensor *tensors;
    size_t ntensors;
    uint64_t *slots;               /* open addressing: 0 = empty, else (hash >> 32) << 32 | (tensor index + 1) */
    size_t nslots;                 /* power of two, > 2 * ntensors */
    uint64_t seed;                 /* of the name hash, per file */
};

/* ---------------------------------------------------------------------- */
/* Name lookup                                                             */
/* ---------------------------------------------------------------------- */

/*
 * Hash of a name, 8 bytes per step.  The seed is chosen per file at open,
 * so names crafted to collide in one process's table do not collide in
 * another's (the table cannot be driven quadratic by a prepared file).
 */
static uint64_t name_hash(const char *s, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ull);
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static uint64_t pick_seed(const mixq_file *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)(uintptr_t)f ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The tensor whose name is s[0..n) with hash h, or SIZE_MAX; *slot gets where it is or would go. */
static size_t table_lookup(const mixq_file *f, const char *s, size_t n, uint64_t h, size_t *slot)
{
    size_t mask = f->nslots - 1, j = (size_t)h & mask;
    uint64_t tag = h >> 32;
    for (; f->slots[j]; j = (j + 1) & mask) {
        uint64_t e = f->slots[j];
        if ((e >> 32) != tag) continue;
        const mixq_tensor *t = &f->tensors[(uint32_t)e - 1];
        if (t->name_len == n && memcmp(t->name, s, n) == 0) {
            *slot = j;
            return (uint32_t)e - 1;
        }
    }
    *slot = j;
    return SIZE_MAX;
}

/* Inserts tensor i by name; returns the index of an earlier tensor of the same name, or SIZE_MAX. */
static size_t table_insert(mixq_file *f, size_t i)
{
    mixq_tensor *t = &f->tensors[i];
    t->name_hash = name_hash(t->name, t->name_len, f->seed);
    size_t slot, dup = table_lookup(f, t->name, t->name_len, t->name_hash, &slot);
    if (dup != SIZE_MAX) return dup;
    f->slots[slot] = (t->name_hash >> 32) << 32 | (uint64_t)(i + 1);
    return SIZE_MAX;
}

const mixq_tensor *mixq_find(const mixq_file *f, const char *name)
{
    if (!f || !name || !f->nslots) return NULL;
    size_t n = strlen(name), slot;
    size_t i = table_lookup(f, name, n, name_hash(name, n, f->seed), &slot);
    return i == SIZE_MAX ? NULL : &f->tensors[i];
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
    size_t dup = table_insert(f, i);
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
    for (size_t d = 0; d + 1 < nd; d++)
        if (!ck_mul(rows, t->shape[d], &rows))
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: the element count of the shape overflows 64 bits", fn, WHERE);
    if (!ck_mul(rows, row_length, &t->n_elements))
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
    if (!qtype_layout(t->qt, t->src, rows, row_length, t->group_size, &t->lay))
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
static mixq_status parse_header(mixq_file *f, mixq_error *err)
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
    f->seed = pick_seed(f);

    uint64_t expect = MXC_PREAMBLE_LEN;
    type_cache tc = {0};
    for (size_t i = 0; i < n; i++)
        if ((s = parse_entry(f, i, jf_arr_at(arr, i), &expect, &tc, err))) return s;
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
    char b[MX_SHOWN_BUF];
    if (!f) {
        mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", mx_shown(path, b));
        return NULL;
    }
    mx_shown(path, f->shown);
    const char *fn = f->shown;
    if (flags & ~MIXQ_OPEN_VERIFY) {
        mx_err(err, MIXQ_E_INVALID_ARG, "%s: unknown open flags 0x%x", fn, flags);
        goto fail;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
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
    jf_free(f->doc);
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
    const jf_value *v = jf_obj_get(f->source_meta, key);
    return v ? jf_str(v, NULL) : NULL; /* NULL if absent or not a string */
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
            char b[MX_SHOWN_BUF];
            return mx_err(err, MIXQ_E_CHECKSUM,
                          "%s: tensor \"%s\" (bytes %" PRIu64 "..%" PRIu64 "): checksum mismatch (stored %016" PRIx64
                          ", computed %016" PRIx64 "): the file is corrupt; re-create it", fn, mx_shown(t->name, b),
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
    char b[MX_SHOWN_BUF];
    if (t->file != f)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\" belongs to another file", f->shown,
                      mx_shown(t->name, b));
    if (rb > re || re > t->lay.rows)
        return mx_err(err, MIXQ_E_RANGE,
                      "%s: tensor \"%s\": rows %" PRIu64 "..%" PRIu64 " are out of range (the tensor has %" PRIu64
                      " rows)", f->shown, mx_shown(t->name, b), rb, re, t->lay.rows);
    *n = (re - rb) * t->lay.row_length; /* <= n_elements: no overflow */
    if (*n > SIZE_MAX / sizeof(float))
        return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": too many elements for one call", f->shown,
                      mx_shown(t->name, b));
    if (*n && !out) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\": output is NULL", f->shown,
                                  mx_shown(t->name, b));
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
            char b[MX_SHOWN_BUF];
            return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory for a row of %" PRIu64 " elements",
                          f->shown, mx_shown(t->name, b), k);
        }
    }
    for (uint64_t r = rb; r < re; r++) {
        quant_row_to_f32(t, r, row);
        mx_kernels()->f32_to_f16(row, (size_t)k, out + (r - rb) * k);
    }
    if (row != stackbuf) free(row);
    return MIXQ_OK;
}
