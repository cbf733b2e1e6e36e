/*
 * container_read.c - the container loader (format/FORMAT.md): maps a file
 * read-only, validates the preamble and the JSON header completely before
 * any offset is used, and serves lookups, zero-copy section views,
 * dequantization and full verification.  Every byte of the file is treated
 * as hostile; nothing outside the mapping is ever read.
 *
 * This file opens a file (the preamble, the name index, the accessors); the
 * header is parsed in container_header.c, verified in container_verify.c and
 * dequantized in container_dequant.c (container_internal.h).
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
#include "common/guard.h"
#include "common/json_fast.h"
#include "kernels/qtype.h"
#include "kernels/simd.h"
#include "container/container_internal.h"

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

uint64_t mx_cr_pick_seed(const mixq_file *f)
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
size_t mx_cr_table_insert(mixq_file *f, size_t i)
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
/* Open / close and accessors                                              */
/* ---------------------------------------------------------------------- */

typedef struct open_args {
    mixq_file *f;
    mixq_error *err;
    mixq_status s;
} open_args;

/* The preamble and header checks, which read the mapping: run under the SIGBUS guard. */
static void open_guarded(void *ctx)
{
    open_args *a = ctx;
    a->s = check_preamble(a->f, a->err);
    if (a->s == MIXQ_OK) a->s = mx_cr_parse_header(a->f, a->err);
}

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
    open_args oa = {f, err, MIXQ_OK};
    if (mx_guarded(open_guarded, &oa) != MX_GUARD_OK) { /* the file shrank under the mapping */
        mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read (it shrank)", fn);
        goto fail;
    }
    if (oa.s != MIXQ_OK) goto fail;
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
    free(f->stored);
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
