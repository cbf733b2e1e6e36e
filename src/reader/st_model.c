/*
 * st_model.c - opening a checkpoint (a .safetensors file, a directory or an
 * index file), looking tensors and metadata up, releasing pages, and the
 * container header metadata that describes the checkpoint as a source.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/error.h"
#include "reader/st_internal.h"
#include "format/header_meta.h"

/* Joins a directory and a file name into a malloc'd path ("name" alone if dir is empty). */
char *mx_st_join_path(const char *dir, size_t dir_len, const char *name)
{
    size_t nl = strlen(name);
    int slash = dir_len > 0 && dir[dir_len - 1] != '/';
    char *p = malloc(dir_len + (size_t)slash + nl + 1);
    if (!p) return NULL;
    memcpy(p, dir, dir_len);
    if (slash) p[dir_len] = '/';
    memcpy(p + dir_len + (size_t)slash, name, nl + 1);
    return p;
}

/*
 * Maps path read-only into *f.  On failure fills err and, if errno_out is
 * non-NULL, stores the errno of the failed call (0 for non-system errors).
 */
mixq_status mx_st_map_file(const char *path, st_file *f, int *errno_out, mixq_error *err)
{
    char fb[PATH_BUF];
    const char *fn = disp_text(fb, sizeof fb, path, 0);
    if (errno_out) *errno_out = 0;
    f->path = xstrdup(path);
    if (!f->path) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", fn);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0) {
        int e = errno;
        if (errno_out) *errno_out = e;
        return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", fn, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        if (errno_out) *errno_out = e;
        close(fd);
        return mx_err(err, MIXQ_E_IO, "%s: cannot stat: %s", fn, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return mx_err(err, MIXQ_E_IO, "%s: not a regular file", fn);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return mx_err(err, MIXQ_E_IO, "%s: file of %lld bytes is too large to map", fn, (long long)sb.st_size);
    }
    f->size = (uint64_t)sb.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            if (errno_out) *errno_out = e;
            close(fd);
            return mx_err(err, MIXQ_E_IO, "%s: cannot map %llu bytes: %s", fn, (unsigned long long)f->size,
                          strerror(e));
        }
        f->map = p;
        f->owns_map = 1;
    }
    st_file_id_of(&sb, &f->id);
    f->fd = fd; /* kept: tensor data is read through pread (st_read) */
    f->has_fd = 1;
    return MIXQ_OK;
}

static int cmp_tensor_ptr(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x->file_index < y->file_index ? -1 : x->file_index > y->file_index;
}

/* Builds the name-sorted index used by st_find; duplicates end up adjacent. */
mixq_status mx_st_build_name_index(st_model *m, mixq_error *err)
{
    m->by_name = calloc(m->ntensors ? m->ntensors : 1, sizeof *m->by_name);
    if (!m->by_name) return mx_err(err, MIXQ_E_NOMEM, "out of memory indexing %zu tensors", m->ntensors);
    for (size_t i = 0; i < m->ntensors; i++) m->by_name[i] = &m->tensors[i];
    qsort(m->by_name, m->ntensors, sizeof *m->by_name, cmp_tensor_ptr);
    return MIXQ_OK;
}

void st_close(st_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nfiles; i++) {
        if (m->files[i].owns_map && m->files[i].map) munmap((void *)m->files[i].map, (size_t)m->files[i].size);
        if (m->files[i].has_fd) close(m->files[i].fd);
        free(m->files[i].path);
    }
    free(m->files);
    for (size_t i = 0; i < m->ntensors; i++) free(m->tensors[i].name);
    free(m->tensors);
    free(m->by_name);
    mx_st_free_meta(m->meta, m->nmeta);
    free(m->index_path);
    json_decref(m->stored_files);
    free(m);
}

/* Opens a single .safetensors file. */
static mixq_status open_single(const char *path, st_model **out, mixq_error *err)
{
    st_model *m = calloc(1, sizeof *m);
    if (!m || !(m->files = calloc(1, sizeof *m->files))) {
        free(m);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    m->nfiles = 1;
    mixq_status st = mx_st_map_file(path, &m->files[0], NULL, err);
    if (!st) st = mx_st_parse_file(m, 0, err);
    if (!st) st = mx_st_build_name_index(m, err);
    if (st) {
        st_close(m);
        return st;
    }
    *out = m;
    return MIXQ_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

mixq_status st_open(const char *path, st_model **out, mixq_error *err)
{
    mx_err_clear(err);
    if (!out) return mx_err(err, MIXQ_E_INVALID_ARG, "st_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return mx_err(err, MIXQ_E_INVALID_ARG, "st_open: no input path given");
    char fb[PATH_BUF];
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", disp_text(fb, sizeof fb, path, 0), strerror(e));
    }
    if (!S_ISDIR(sb.st_mode))
        return ends_with(path, ".json") ? mx_st_open_index(path, out, err) : open_single(path, out, err);

    char *p = mx_st_join_path(path, strlen(path), INDEX_NAME);
    if (!p) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    mixq_status st;
    if (stat(p, &sb) == 0) {
        st = mx_st_open_index(p, out, err);
        free(p);
        return st;
    }
    free(p);
    p = mx_st_join_path(path, strlen(path), SINGLE_NAME);
    if (!p) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    if (stat(p, &sb) == 0) {
        st = open_single(p, out, err);
        free(p);
        return st;
    }
    free(p);
    return mx_err(err, MIXQ_E_IO, "%s: directory holds neither " INDEX_NAME " nor " SINGLE_NAME,
                  disp_text(fb, sizeof fb, path, 0));
}

const st_tensor *st_find(const st_model *m, const char *name)
{
    if (!m || !name || !m->by_name) return NULL;
    size_t lo = 0, hi = m->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->by_name[mid]->name, name);
        if (c == 0) return m->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *st_meta_get(const st_model *m, const char *key)
{
    if (!m || !key) return NULL;
    size_t lo = 0, hi = m->nmeta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->meta[mid].key, key);
        if (c == 0) return m->meta[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/*
 * Drops the pages of t's bytes [off, off + len) from this process: every page
 * they touch if outward, else only the pages wholly inside.  Only for files
 * this reader mapped itself (never a caller's buffer, which MADV_DONTNEED
 * would zero).
 */
static void release_bytes(const st_model *model, const st_tensor *t, uint64_t off, uint64_t len, bool outward)
{
    const st_file *f = &model->files[t->file_index];
    if (!f->owns_map || !f->map || off >= t->nbytes) return;
    if (len > t->nbytes - off) len = t->nbytes - off;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t first = (uintptr_t)t->data + (uintptr_t)off, last = first + (uintptr_t)len, start, end;
    if (outward) {
        start = first & ~(page - 1);
        end = (last + page - 1) & ~(page - 1);
        if (start < (uintptr_t)f->map) start = (uintptr_t)f->map; /* the mapping itself starts on a page */
    } else {
        start = (first + page - 1) & ~(page - 1);
        end = last & ~(page - 1);
    }
    if (end > start) (void)madvise((void *)start, end - start, MADV_DONTNEED); /* advice only */
}

void st_file_id_of(const void *stat_buf, st_file_id *id)
{
    const struct stat *sb = stat_buf;
    id->dev = (uint64_t)sb->st_dev;
    id->ino = (uint64_t)sb->st_ino;
    id->size = (uint64_t)sb->st_size;
    id->mtime_s = (int64_t)sb->st_mtim.tv_sec;
    id->mtime_ns = (int64_t)sb->st_mtim.tv_nsec;
    id->ctime_s = (int64_t)sb->st_ctim.tv_sec;
    id->ctime_ns = (int64_t)sb->st_ctim.tv_nsec;
}

static bool same_id(const st_file_id *a, const st_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_s == b->mtime_s &&
           a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

static mixq_status changed(const char *path, const char *how, mixq_error *err)
{
    char fb[PATH_BUF];
    return mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read (%s); nothing was written", 
                  disp_text(fb, sizeof fb, path, 0), how);
}

mixq_status st_read(const st_model *model, const st_tensor *t, uint64_t off, void *dst, size_t len,
                    mixq_error *err)
{
    const st_file *f = &model->files[t->file_index];
    if (off > t->nbytes || len > t->nbytes - off)
        return mx_err(err, MIXQ_E_INVALID_ARG, "st_read: bytes %llu+%zu are outside the tensor",
                      (unsigned long long)off, len);
    if (!f->has_fd) {
        memcpy(dst, t->data + off, len);
        return MIXQ_OK;
    }
    uint8_t *p = dst;
    uint64_t pos = t->file_offset + off;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t n = pread(f->fd, p, chunk, (off_t)pos);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            char fb[PATH_BUF];
            int e = errno;
            return mx_err(err, MIXQ_E_IO, "%s: read failed at offset %llu: %s", disp_text(fb, sizeof fb, f->path, 0),
                          (unsigned long long)pos, strerror(e));
        }
        if (n == 0) return changed(f->path, "it is now shorter", err);
        p += n;
        pos += (uint64_t)n;
        len -= (size_t)n;
    }
    return MIXQ_OK;
}

mixq_status st_check_unchanged(const st_model *m, mixq_error *err)
{
    struct stat sb;
    st_file_id now;
    for (size_t i = 0; i < m->nfiles; i++) {
        const st_file *f = &m->files[i];
        if (!f->has_fd) continue;
        if (fstat(f->fd, &sb) != 0) return changed(f->path, "cannot stat it", err);
        st_file_id_of(&sb, &now);
        if (!same_id(&now, &f->id))
            return changed(f->path, now.size != f->id.size ? "its size changed" : "it was modified", err);
        if (stat(f->path, &sb) != 0) return changed(f->path, "it was removed", err);
        st_file_id_of(&sb, &now);
        if (!same_id(&now, &f->id)) return changed(f->path, "it was replaced", err);
    }
    if (m->index_path) {
        if (stat(m->index_path, &sb) != 0) return changed(m->index_path, "it was removed", err);
        st_file_id_of(&sb, &now);
        if (!same_id(&now, &m->index_id)) return changed(m->index_path, "it was modified or replaced", err);
    }
    return MIXQ_OK;
}

void st_release(const st_model *model, const st_tensor *t) { release_bytes(model, t, 0, t->nbytes, true); }

void st_release_range(const st_model *model, const st_tensor *t, uint64_t off, uint64_t len)
{
    release_bytes(model, t, off, len, false);
}

json_t *st_header_meta(const st_model *m, mixq_qtype type, unsigned group_size, bool quantize_1d, bool search)
{
    json_t *meta = mxf_header_meta_new(type, group_size, quantize_1d, search);
    if (!meta) return NULL;
    for (size_t i = 0; i < m->nmeta; i++)
        if (mxf_header_meta_add_source_metadata(meta, m->meta[i].key, m->meta[i].value)) goto fail;
    if (m->index_path) {
        struct stat st;
        if (stat(m->index_path, &st) != 0 || mxf_header_meta_add_source_file(meta, m->index_path, (uint64_t)st.st_size))
            goto fail;
    }
    for (size_t i = 0; i < m->nfiles; i++)
        if (mxf_header_meta_add_source_file(meta, m->files[i].path, m->files[i].size)) goto fail;
    /* the stored files: moved to the header's top level by the container writer */
    if (m->stored_files && json_array_size(m->stored_files) &&
        json_object_set(meta, "files", m->stored_files))
        goto fail;
    return meta;
fail:
    json_decref(meta);
    return NULL;
}

