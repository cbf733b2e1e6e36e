/* atomic_file.c - temporary file + fsync + rename, so an output appears whole or not at all. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

/* A temporary name in the directory: ".NAME.tmp-" + 6 random characters, NAME cut so the whole fits NAME_MAX. */
static char *make_tmp_name(const char *base, unsigned attempt)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t bl = strlen(base), room = NAME_MAX - 1 - 5 - 6; /* "." NAME ".tmp-" XXXXXX */
    if (bl > room) { /* cut at a UTF-8 character boundary */
        bl = room;
        while (bl > 0 && ((unsigned char)base[bl] & 0xc0) == 0x80) bl--;
    }
    char *name = malloc(bl + 13);
    if (!name) return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t r = (uint64_t)ts.tv_nsec * 6364136223846793005ull + ((uint64_t)getpid() << 20) + attempt * 1442695040888963407ull;
    char suffix[7];
    for (int i = 0; i < 6; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        suffix[i] = al[(r >> 33) % (sizeof al - 1)];
    }
    suffix[6] = '\0';
    snprintf(name, bl + 13, ".%.*s.tmp-%s", (int)bl, base, suffix);
    return name;
}

mixq_status afile_open(afile *f, const char *final_path, int force, mixq_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->dirfd = -1;
    size_t plen = strlen(final_path);
    if (plen == 0 || final_path[plen - 1] == '/')
        return mx_err(err, MIXQ_E_INVALID_ARG, "\"%s\": not a file name; give the output file's name", final_path);
    struct stat st;
    if (stat(final_path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return mx_err(err, MIXQ_E_INVALID_ARG, "%s: is a directory; give a file name for the output", final_path);
        if (!S_ISREG(st.st_mode)) /* a device, FIFO or socket: never replaced, even with --force */
            return mx_err(err, MIXQ_E_INVALID_ARG,
                          "%s: exists and is not a regular file (a device, FIFO or socket); it is never replaced, "
                          "even with --force", final_path);
        if (!force)
            return mx_err(err, MIXQ_E_EXISTS, "%s: already exists; set force to replace it", final_path);
    }
    char *dir = dir_of(final_path);
    f->final_name = base_of(final_path);
    f->final_path = strdup(final_path);
    f->force = force;
    if (!dir || !f->final_name || !f->final_path) {
        free(dir);
        afile_abort(f);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", final_path);
    }
    if (strlen(f->final_name) > NAME_MAX) {
        free(dir);
        afile_abort(f);
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: the file name is longer than %d bytes", final_path, NAME_MAX);
    }
    f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dirfd < 0) {
        int e = errno;
        mixq_status s = mx_err(err, MIXQ_E_IO, "%s: cannot create a temporary file in %s: %s", final_path, dir,
                               strerror(e));
        free(dir);
        afile_abort(f);
        return s;
    }
    int e = 0;
    for (unsigned attempt = 0; attempt < 100 && f->fd < 0; attempt++) {
        free(f->tmp_name);
        f->tmp_name = make_tmp_name(f->final_name, attempt);
        if (!f->tmp_name) {
            e = ENOMEM;
            break;
        }
        f->fd = openat(f->dirfd, f->tmp_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        e = f->fd < 0 ? errno : 0;
        if (f->fd < 0 && e != EEXIST) break;
    }
    if (f->fd < 0) {
        free(f->tmp_name);
        f->tmp_name = NULL; /* nothing to remove */
        mixq_status s = e == ENOMEM ? mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", final_path)
                                    : mx_err(err, MIXQ_E_IO, "%s: cannot create a temporary file in %s: %s",
                                             final_path, dir, strerror(e));
        free(dir);
        afile_abort(f);
        return s;
    }
    if (asprintf(&f->tmp_path, "%s/%s", dir, f->tmp_name) < 0) f->tmp_path = NULL;
    free(dir);
    if (!f->tmp_path) {
        afile_abort(f);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", final_path);
    }
    /* created 0600; give the output the usual permissions under the umask. */
    mode_t um = umask(0);
    umask(um);
    if (fchmod(f->fd, 0666 & ~um) != 0) {
        int e2 = errno;
        afile_abort(f);
        return mx_err(err, MIXQ_E_IO, "%s: cannot set permissions: %s", final_path, strerror(e2));
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
    struct stat st, sd; /* the directory path must still lead to the directory the temporary is in */
    char *dir = dir_of(f->final_path);
    r = dir ? stat(dir, &st) : -1;
    free(dir);
    if (r != 0 || fstat(f->dirfd, &sd) != 0 || st.st_dev != sd.st_dev || st.st_ino != sd.st_ino) {
        s = mx_err(err, MIXQ_E_IO, "%s: the output directory was moved or replaced while the output was written; "
                   "nothing was written", f->final_path);
        goto fail;
    }
    /* a non-regular file that appeared meanwhile is not replaced either */
    if (f->force && fstatat(f->dirfd, f->final_name, &st, 0) == 0 && !S_ISREG(st.st_mode)) {
        s = mx_err(err, MIXQ_E_INVALID_ARG, "%s: exists and is not a regular file; it is never replaced",
                   f->final_path);
        goto fail;
    }
    if (f->force) {
        r = renameat(f->dirfd, f->tmp_name, f->dirfd, f->final_name);
    } else {
        /* Refuse to replace a file that appeared while we were writing. */
        r = renameat2(f->dirfd, f->tmp_name, f->dirfd, f->final_name, RENAME_NOREPLACE);
        if (r != 0 && (errno == EINVAL || errno == ENOSYS)) {
            r = linkat(f->dirfd, f->tmp_name, f->dirfd, f->final_name, 0);
            if (r == 0) unlinkat(f->dirfd, f->tmp_name, 0);
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
    free(f->tmp_name);
    f->tmp_name = NULL; /* renamed: nothing to remove */
    (void)fsync(f->dirfd); /* best effort: some file systems refuse directory fsync */
    afile_abort(f);
    return MIXQ_OK;
fail:
    afile_abort(f); /* after the message: it frees final_path */
    return s;
}

void afile_abort(afile *f)
{
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp_name && f->dirfd >= 0) unlinkat(f->dirfd, f->tmp_name, 0);
    if (f->dirfd >= 0) close(f->dirfd);
    f->dirfd = -1;
    free(f->tmp_name);
    free(f->tmp_path);
    free(f->final_name);
    free(f->final_path);
    f->tmp_name = f->tmp_path = f->final_name = f->final_path = NULL;
}
