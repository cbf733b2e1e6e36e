/*
 * container_write.c - streaming container writer (format/FORMAT.md): tensor
 * bytes are appended at 64-byte aligned offsets, then the JSON header, then
 * the preamble is written at offset 0 and the file is committed atomically.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "format/container.h"
#include "format/stored_files.h"
#include "container/container_write.h"
#include "common/error.h"

struct cwriter {
    afile file;
    uint64_t end;      /* end of the last tensor written (absolute) */
    char *entries;     /* the header's tensor entries, serialised as they are added, joined by ',' */
    size_t len, cap;   /* (a text per tensor, not a JSON tree: a few hundred bytes each) */
    size_t count;
    unsigned minor;    /* highest format minor a tensor's quant type needs (qtype_desc.format_minor) */
};

static const uint8_t zeros[MX_ALIGN];

/* How the header is serialised (FORMAT.md §3: compact, fixed key order). */
#define HEADER_DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))

mixq_status cw_open(cwriter **out, const char *path, int force, mixq_error *err)
{
    cwriter *w = calloc(1, sizeof *w);
    if (!w) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", path);
    mixq_status s = afile_open(&w->file, path, force, err);
    if (s != MIXQ_OK) {
        free(w);
        return s;
    }
    w->end = MXC_PREAMBLE_LEN;
    *out = w;
    return MIXQ_OK;
}

/* Writes zero bytes over [from, to) (less than one alignment unit). */
static mixq_status write_padding(cwriter *w, uint64_t from, uint64_t to, mixq_error *err)
{
    if (to <= from) return MIXQ_OK;
    return afile_pwrite(&w->file, zeros, (size_t)(to - from), from, err);
}

/* Builds the header entry of one tensor (keys in the fixed order of FORMAT.md §3.1). */
static json_t *make_entry(const cw_tensor *t, const qlayout *layout, uint64_t offset, uint64_t hash)
{
    json_t *e = json_object(), *shape = json_array(), *sections = json_object();
    if (!e || !shape || !sections) goto fail;
    for (unsigned i = 0; i < t->ndim; i++)
        if (json_array_append_new(shape, json_integer((json_int_t)t->shape[i]))) goto fail;
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        if (!qtype_has_section(t->qt, (mixq_section_kind)k)) continue;
        json_t *sec = json_pack("{s:I,s:I}", "offset", (json_int_t)layout->offset[k], "length",
                                (json_int_t)layout->length[k]);
        if (!sec || json_object_set_new(sections, mixq_section_name((mixq_section_kind)k), sec)) goto fail;
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, hash);
    if (json_object_set_new(e, "name", json_string(t->name)) ||
        json_object_set_new(e, "shape", shape) ||
        json_object_set_new(e, "source_dtype", json_string(t->source_dtype)) ||
        json_object_set_new(e, "quant_type", json_string(t->qt->name)) ||
        json_object_set_new(e, "group_size", json_integer(t->group_size)) ||
        json_object_set_new(e, "symmetric", json_boolean(t->qt->symmetric)) ||
        json_object_set_new(e, "offset", json_integer((json_int_t)offset)) ||
        json_object_set_new(e, "length", json_integer((json_int_t)layout->total)) ||
        json_object_set_new(e, "sections", sections) ||
        json_object_set_new(e, "xxh3", json_string(hex))) {
        json_decref(e);
        return NULL;
    }
    if (t->extra && json_object_update(e, t->extra)) {
        json_decref(e);
        return NULL;
    }
    return e;
fail:
    json_decref(e);
    json_decref(shape);
    json_decref(sections);
    return NULL;
}

/* Checks the name, aligns the tensor's offset and writes the padding before it. */
static mixq_status begin_tensor(cwriter *w, const cw_tensor *t, const qlayout *layout, uint64_t *offset,
                                mixq_error *err)
{
    char nb[MX_SHOWN_BUF];
    if (!t->name || !*t->name) /* as the reader: a container tensor has a non-empty name */
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: a tensor has an empty name; tensor names must not be empty",
                      w->file.final_path);
    if (!ck_align(w->end, MX_ALIGN, offset) || *offset > INT64_MAX - layout->total)
        return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": output larger than 2^63 bytes", w->file.final_path,
                      mx_shown(t->name, nb));
    return write_padding(w, w->end, *offset, err);
}

/* Records the tensor's header entry once its bytes are written. */
static mixq_status end_tensor(cwriter *w, const cw_tensor *t, const qlayout *layout, uint64_t offset, uint64_t hash,
                              mixq_error *err)
{
    char nb[MX_SHOWN_BUF];
    json_t *e = make_entry(t, layout, offset, hash);
    char *text = e ? json_dumps(e, HEADER_DUMP_FLAGS) : NULL;
    json_decref(e);
    size_t n = text ? strlen(text) : 0, need = w->len + n + 1;
    if (text && need > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < need) cap *= 2;
        char *b = realloc(w->entries, cap);
        if (b) {
            w->entries = b;
            w->cap = cap;
        }
    }
    if (!text || need > w->cap) {
        free(text);
        return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory", w->file.final_path,
                      mx_shown(t->name, nb));
    }
    if (w->count++) w->entries[w->len++] = ',';
    memcpy(w->entries + w->len, text, n);
    w->len += n;
    free(text);
    if (t->qt->format_minor > w->minor) w->minor = t->qt->format_minor;
    w->end = offset + layout->total;
    return MIXQ_OK;
}

mixq_status cw_add_tensor(cwriter *w, const cw_tensor *t, const qlayout *layout, const uint8_t *bytes,
                          mixq_error *err)
{
    uint64_t offset = 0; /* set by begin_tensor (initialised for gcc -O3 -Wmaybe-uninitialized) */
    mixq_status s = begin_tensor(w, t, layout, &offset, err);
    if (s != MIXQ_OK) return s;
    if (layout->total) {
        s = afile_pwrite(&w->file, bytes, (size_t)layout->total, offset, err);
        if (s != MIXQ_OK) return s;
    }
    return end_tensor(w, t, layout, offset, XXH3_64bits(bytes, (size_t)layout->total), err);
}

/* Bytes per chunk of cw_add_tensor_from. */
#define CW_CHUNK ((size_t)4 << 20)

mixq_status cw_add_tensor_from(cwriter *w, const cw_tensor *t, const qlayout *layout, cw_read_fn read, void *ctx,
                               mixq_error *err)
{
    uint64_t offset = 0; /* as in cw_add_tensor */
    mixq_status s = begin_tensor(w, t, layout, &offset, err);
    if (s != MIXQ_OK) return s;
    uint64_t total = layout->total;
    size_t cap = total < CW_CHUNK ? (size_t)total : CW_CHUNK;
    uint8_t *buf = malloc(cap ? cap : 1);
    XXH3_state_t *st = XXH3_createState();
    char nb[MX_SHOWN_BUF];
    if (!buf || !st || XXH3_64bits_reset(st) != XXH_OK) {
        free(buf);
        XXH3_freeState(st);
        return mx_err(err, MIXQ_E_NOMEM, "%s: tensor \"%s\": out of memory", w->file.final_path,
                      mx_shown(t->name, nb));
    }
    for (uint64_t done = 0; done < total && s == MIXQ_OK; done += cap) {
        size_t n = total - done < cap ? (size_t)(total - done) : cap;
        s = read(ctx, done, buf, n, err);
        if (s == MIXQ_OK) s = afile_pwrite(&w->file, buf, n, offset + done, err);
        if (s == MIXQ_OK) (void)XXH3_64bits_update(st, buf, n); /* the bytes just written, from the same buffer */
        if (s == MIXQ_OK && w->file.cancel && *w->file.cancel) break; /* the caller reports the interruption */
    }
    uint64_t hash = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    free(buf);
    if (s != MIXQ_OK) return s;
    return end_tensor(w, t, layout, offset, hash, err);
}


/*
 * The top-level header object (FORMAT.md §3), with "files" (with_files) or
 * without it (cw_finish appends it after the spliced entries).  A "files" array in metadata
 * (st_header_meta puts the stored files there, so that every header size
 * bound counts them) becomes the top-level "files" (§3.3), after "tensors".
 */
static json_t *make_root(json_t *metadata, json_t *tensors, int with_files)
{
    json_t *files = json_object_get(metadata, "files");
    if (!files)
        return json_pack("{s:s,s:i,s:i,s:O,s:O}", "format", "mixq", "format_version", (int)MXC_FORMAT_MAJOR,
                         "alignment", (int)MX_ALIGN, "metadata", metadata, "tensors", tensors);
    json_t *meta = json_copy(metadata); /* shallow: the same values, keys in the same order */
    if (!meta || json_object_del(meta, "files")) {
        json_decref(meta);
        return NULL;
    }
    if (!with_files) /* the caller appends "files" itself */
        return json_pack("{s:s,s:i,s:i,s:o,s:O}", "format", "mixq", "format_version", (int)MXC_FORMAT_MAJOR,
                         "alignment", (int)MX_ALIGN, "metadata", meta, "tensors", tensors);
    return json_pack("{s:s,s:i,s:i,s:o,s:O,s:O}", "format", "mixq", "format_version", (int)MXC_FORMAT_MAJOR,
                     "alignment", (int)MX_ALIGN, "metadata", meta, "tensors", tensors, "files", files);
}

mixq_status cw_finish(cwriter *w, json_t *metadata, mixq_error *err)
{
    mixq_status s;
    uint64_t data_end;
    if (!ck_align(w->end, MX_ALIGN, &data_end)) {
        s = mx_err(err, MIXQ_E_RANGE, "%s: output too large", w->file.final_path);
        goto out;
    }
    s = write_padding(w, w->end, data_end, err);
    if (s != MIXQ_OK) goto out;

    /* the root without "files" and with an empty "tensors" array (then its last key), the entries spliced
       in, then the stored files: `...,"tensors":[` E `]` [`,"files":` F] `}`, as json_dumps of the whole */
    json_t *empty = json_array();
    json_t *root = empty ? make_root(metadata, empty, 0) : NULL;
    char *outer = root ? json_dumps(root, HEADER_DUMP_FLAGS) : NULL;
    json_t *files = json_object_get(metadata, "files");
    char *ftext = files ? json_dumps(files, HEADER_DUMP_FLAGS) : NULL;
    json_decref(root);
    json_decref(empty);
    size_t olen = outer ? strlen(outer) : 0, flen = ftext ? strlen(ftext) + 9 : 0; /* ,"files": */
    char *text = olen >= 3 && !strcmp(outer + olen - 3, "[]}") && (!files || ftext)
                     ? malloc(olen + w->len + flen + 1)
                     : NULL;
    if (!text) {
        free(outer);
        free(ftext);
        s = mx_err(err, MIXQ_E_NOMEM, "%s: cannot serialise the header (out of memory)", w->file.final_path);
        goto out;
    }
    size_t o = olen - 2;
    memcpy(text, outer, o);
    if (w->len) memcpy(text + o, w->entries, w->len);
    o += w->len;
    text[o++] = ']';
    if (ftext) {
        memcpy(text + o, ",\"files\":", 9);
        memcpy(text + o + 9, ftext, flen - 9);
        o += flen;
    }
    memcpy(text + o, "}", 2);
    free(outer);
    free(ftext);
    size_t hlen = o + 1;
    if (hlen > MXC_MAX_HEADER) {
        free(text);
        s = mx_err(err, MIXQ_E_RANGE, "%s: header of %zu bytes exceeds the format's limit", w->file.final_path,
                   hlen);
        goto out;
    }
    s = afile_pwrite(&w->file, text, hlen, data_end, err);
    uint64_t hhash = XXH3_64bits(text, hlen);
    free(text);
    if (s != MIXQ_OK) goto out;

    uint8_t pre[MXC_PREAMBLE_LEN] = {0};
    memcpy(pre + MXC_OFF_MAGIC, MXC_MAGIC, MXC_MAGIC_LEN);
    mxc_put_u16(pre + MXC_OFF_MAJOR, MXC_FORMAT_MAJOR);
    /* the minor of the newest addition the file uses (1.1: stored files; 1.2: the lookup-table and codebook types), so
       that files without them keep their older minor exactly */
    unsigned minor = json_object_get(metadata, "files") ? MXC_FORMAT_MINOR_FILES : MXC_FORMAT_MINOR;
    if (w->minor > minor) minor = w->minor;
    mxc_put_u16(pre + MXC_OFF_MINOR, (uint16_t)minor);
    mxc_put_u32(pre + MXC_OFF_FLAGS, 0);
    mxc_put_u64(pre + MXC_OFF_DATA_OFFSET, MXC_PREAMBLE_LEN);
    mxc_put_u64(pre + MXC_OFF_DATA_LENGTH, data_end - MXC_PREAMBLE_LEN);
    mxc_put_u64(pre + MXC_OFF_HEADER_OFFSET, data_end);
    mxc_put_u64(pre + MXC_OFF_HEADER_LENGTH, hlen);
    mxc_put_u64(pre + MXC_OFF_HEADER_XXH3, hhash);
    mxc_put_u64(pre + MXC_OFF_PREAMBLE_XXH3, XXH3_64bits(pre, MXC_OFF_PREAMBLE_XXH3));
    s = afile_pwrite(&w->file, pre, sizeof pre, 0, err);
    if (s != MIXQ_OK) goto out;
    s = afile_commit(&w->file, err);
out:
    if (s != MIXQ_OK) afile_abort(&w->file);
    free(w->entries);
    free(w);
    return s;
}

void cw_set_cancel(cwriter *w, volatile sig_atomic_t *cancel)
{
    w->file.cancel = cancel;
}

void cw_abort(cwriter *w)
{
    if (!w) return;
    afile_abort(&w->file);
    free(w->entries);
    free(w);
}

size_t cw_entry_bytes(const cw_tensor *t, const qlayout *layout, uint64_t offset)
{
    json_t *e = make_entry(t, layout, offset, UINT64_MAX); /* every hash prints as 16 hex digits */
    char *text = e ? json_dumps(e, HEADER_DUMP_FLAGS) : NULL;
    json_decref(e);
    size_t n = text ? strlen(text) : 0;
    free(text);
    return n;
}

size_t cw_entry_bound(const cw_tensor *t, const qlayout *layout, uint64_t max_offset)
{
    return cw_entry_bytes(t, layout, max_offset > INT64_MAX ? INT64_MAX : max_offset);
}

size_t cw_header_bytes(json_t *metadata, size_t n_entries, uint64_t entry_bytes)
{
    json_t *empty = json_array();
    json_t *root = empty ? make_root(metadata, empty, 1) : NULL;
    char *text = root ? json_dumps(root, HEADER_DUMP_FLAGS) : NULL;
    json_decref(root);
    json_decref(empty);
    size_t n = text ? strlen(text) : 0;
    free(text);
    if (!n) return 0;
    return n + (size_t)entry_bytes + (n_entries ? n_entries - 1 : 0);
}
