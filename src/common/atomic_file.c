/* atomic_file.c - temporary file + fsync + rename, so an output appears whole or not at all. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/error.h"

/* Directory part of path (malloc'd), "." if none. */
static char *dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return NULL;
    char *d = strdup(dirname(copy));
    free(copy);
    return d;
}

static char *base_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return NULL;
    char *b = strdup(basename(copy));
    free(copy);
    return b;
}

mixq_status afile_open(afile *f, const char *final_path, int force, mixq_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t plen = strlen(final_path);
    if (plen == 0 || final_path[plen - 1] == '/')
        return mx_err(err, MIXQ_E_INVALID_ARG, "\"%s\": not a file name; give the output file's name", final_path);
    struct stat st;
    if (stat(final_path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return mx_err(err, MIXQ_E_INVALID_ARG, "%s: is a directory; give a file name for the output", final_path);
        if (!force)
            return mx_err(err, MIXQ_E_EXISTS, "%s: already exists; set force to replace it", final_path);
    }
    char *dir = dir_of(final_path), *base = base_of(final_path);
    if (!dir || !base || asprintf(&f->tmp_path, "%s/.%s.tmp-XXXXXX", dir, base) < 0) {
        free(dir);
        free(base);
        f->tmp_path = NULL;
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", final_path);
    }
    free(base);
    f->final_path = strdup(final_path);
    f->force = force;
    if (!f->final_path) {
        free(dir);
        afile_abort(f);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", final_path);
    }
    f->fd = mkostemp(f->tmp_path, O_CLOEXEC);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp_path);
        f->tmp_path = NULL;
        mixq_status s = mx_err(err, MIXQ_E_IO, "%s: cannot create a temporary file in %s: %s", final_path, dir,
                               strerror(e));
        free(dir);
        afile_abort(f);
        return s;
    }
    free(dir);
    /* mkstemp creates 0600; give the output the usual permissions under the umask. */
    mode_t um = umask(0);
    umask(um);
    if (fchmod(f->fd, 0666 & ~um) != 0) {
        int e = errno;
        afile_abort(f);
        return mx_err(err, MIXQ_E_IO, "%s: cannot set permissions: %s", final_path, strerror(e));
    }
    return MIXQ_OK;
}

/*
 * Write-back of the bytes written so far, a window at a time (advice only:
 * errors are ignored here, and an I/O error surfaces at the final fsync).
 */
static void writeback(afile *f)
{
#ifdef SYNC_FILE_RANGE_WRITE
    if (f->wb_high - f->wb_submitted < MX_WRITEBACK_WINDOW) return;
    (void)sync_file_range(f->fd, (off_t)f->wb_submitted, (off_t)(f->wb_high - f->wb_submitted),
                          SYNC_FILE_RANGE_WRITE);
    if (f->wb_submitted > f->wb_done) {
        (void)sync_file_range(f->fd, (off_t)f->wb_done, (off_t)(f->wb_submitted - f->wb_done),
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        (void)posix_fadvise(f->fd, (off_t)f->wb_done, (off_t)(f->wb_submitted - f->wb_done), POSIX_FADV_DONTNEED);
        f->wb_done = f->wb_submitted;
    }
    f->wb_submitted = f->wb_high;
#else
    (void)f;
#endif
}

mixq_status afile_pwrite(afile *f, const void *buf, size_t len, uint64_t offset, mixq_error *err)
{
    const uint8_t *p = buf;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t n = pwrite(f->fd, p, chunk, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return mx_err(err, MIXQ_E_IO, "%s: write failed at offset %llu: %s", f->final_path,
                          (unsigned long long)offset, strerror(errno));
        }
        if (n == 0)
            return mx_err(err, MIXQ_E_IO, "%s: write made no progress at offset %llu", f->final_path,
                          (unsigned long long)offset);
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    if (offset > f->wb_high) f->wb_high = offset;
    writeback(f);
    return MIXQ_OK;
}

/* fsync of the directory holding path, so the rename itself is durable. */
static int fsync_dir(const char *path)
{
    char *dir = dir_of(path);
    if (!dir) return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

mixq_status afile_commit(afile *f, mixq_error *err)
{
    mixq_status s = MIXQ_OK;
    int r;
    if (fsync(f->fd) != 0) {
        s = mx_err(err, MIXQ_E_IO, "%s: fsync failed: %s", f->final_path, strerror(errno));
        goto fail;
    }
    r = close(f->fd);
    f->fd = -1;
    if (r != 0) {
        s = mx_err(err, MIXQ_E_IO, "%s: close failed: %s", f->final_path, strerror(errno));
        goto fail;
    }
    if (f->cancel && *f->cancel) { /* interrupted while finishing: the output must not appear */
        s = mx_err(err, MIXQ_E_CANCELLED, "%s: interrupted; no output was written", f->final_path);
        goto fail;
    }
    if (f->force) {
        r = rename(f->tmp_path, f->final_path);
    } else {
        /* Refuse to replace a file that appeared while we were writing. */
        r = renameat2(AT_FDCWD, f->tmp_path, AT_FDCWD, f->final_path, RENAME_NOREPLACE);
        if (r != 0 && (errno == EINVAL || errno == ENOSYS)) {
            r = link(f->tmp_path, f->final_path);
            if (r == 0) unlink(f->tmp_path);
        }
    }
    if (r != 0) {
        if (errno == EEXIST)
            s = mx_err(err, MIXQ_E_EXISTS, "%s: already exists; set force to replace it", f->final_path);
        else
            s = mx_err(err, MIXQ_E_IO, "%s: cannot rename the temporary file into place: %s", f->final_path,
                       strerror(errno));
        goto fail;
    }
    free(f->tmp_path);
    f->tmp_path = NULL;
    (void)fsync_dir(f->final_path); /* best effort: some file systems refuse directory fsync */
    free(f->final_path);
    f->final_path = NULL;
    return MIXQ_OK;
fail:
    afile_abort(f); /* after the message: it frees final_path */
    return s;
}

void afile_abort(afile *f)
{
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->final_path);
    f->tmp_path = NULL;
    f->final_path = NULL;
}
