/*
 * fault_write_shim.c - an LD_PRELOAD library that injects I/O faults into the
 * mixq CLI, for tests/test_faults.c.  Only file descriptors >= 3 that refer
 * to regular files are affected (stdin, stdout and stderr never are, so the
 * CLI can still print its error message).  Controlled by the environment:
 *
 *   MIXQ_FAULT_WRITE_LIMIT=N     the first N bytes written (write, pwrite,
 *                                pwrite64, writev, pwritev) succeed; the write
 *                                that crosses N is cut short at N (as a full
 *                                disk does) and every later one fails
 *   MIXQ_FAULT_ERRNO=E           errno of those failures (default ENOSPC)
 *   MIXQ_FAULT_FSYNC=1           fsync and fdatasync fail with EIO
 *   MIXQ_FAULT_RENAME=eio        rename, renameat, renameat2 and link fail with EIO
 *   MIXQ_FAULT_RENAME=enosys     renameat2 fails with ENOSYS (a kernel or file
 *                                system without RENAME_NOREPLACE); the rest work
 *   MIXQ_FAULT_WRITE_DELAY_US=U  each affected write first sleeps U microseconds
 *   MIXQ_FAULT_FSYNC_DELAY_US=U  each affected fsync first sleeps U microseconds
 *
 * The delays widen the window in which the signal tests interrupt a
 * conversion; a signal cuts a sleep short.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
/* Define pwrite and pwrite64 separately (meson passes -D_FILE_OFFSET_BITS=64,
 * which would make pwrite a second name for pwrite64). */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Exported so that the tests can check the shim is loaded (nm / dlsym). */
int mixq_fault_shim_loaded = 1;

static int initialised;
static long long write_limit = -1; /* -1: no limit */
static long long written;
static int fault_errno = ENOSPC;
static int fail_fsync;
static int rename_mode; /* 0 none, 1 eio, 2 enosys */
static long write_delay_us, fsync_delay_us;

static void init(void)
{
    if (initialised) return;
    initialised = 1;
    const char *s;
    if ((s = getenv("MIXQ_FAULT_WRITE_LIMIT")) && *s) write_limit = strtoll(s, NULL, 10);
    if ((s = getenv("MIXQ_FAULT_ERRNO")) && *s) fault_errno = atoi(s);
    if ((s = getenv("MIXQ_FAULT_FSYNC")) && *s == '1') fail_fsync = 1;
    if ((s = getenv("MIXQ_FAULT_RENAME")) && *s) rename_mode = !strcmp(s, "enosys") ? 2 : 1;
    if ((s = getenv("MIXQ_FAULT_WRITE_DELAY_US")) && *s) write_delay_us = strtol(s, NULL, 10);
    if ((s = getenv("MIXQ_FAULT_FSYNC_DELAY_US")) && *s) fsync_delay_us = strtol(s, NULL, 10);
}

/* The next definition of a symbol (libc's, or a sanitizer's interceptor). */
static void *next_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) abort();
    return p;
}

/* Declares and resolves real_NAME, a pointer to the next definition of NAME. */
#define REAL(ret, name, params)                 \
    static ret(*real_##name) params;            \
    if (!real_##name) {                         \
        void *p_ = next_sym(#name);             \
        memcpy(&real_##name, &p_, sizeof p_);   \
    }

static int affected(int fd)
{
    if (fd < 3) return 0;
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static void pause_us(long us)
{
    if (us <= 0) return;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL); /* EINTR: a signal arrived; carry on */
}

/*
 * How many of len bytes a write to fd may write: len if unaffected, fewer
 * when crossing the limit, or -1 (errno set) when the limit is reached.
 */
static ssize_t allowance(int fd, size_t len)
{
    init();
    if (!affected(fd)) return (ssize_t)len;
    pause_us(write_delay_us);
    if (write_limit < 0) return (ssize_t)len;
    long long left = write_limit - written;
    if (left <= 0 && len > 0) {
        errno = fault_errno;
        return -1;
    }
    return (long long)len <= left ? (ssize_t)len : (ssize_t)left;
}

static void account(int fd, ssize_t n)
{
    if (n > 0 && write_limit >= 0 && affected(fd)) written += n;
}

ssize_t write(int fd, const void *buf, size_t len)
{
    REAL(ssize_t, write, (int, const void *, size_t));
    ssize_t a = allowance(fd, len);
    if (a < 0) return -1;
    ssize_t n = real_write(fd, buf, (size_t)a);
    account(fd, n);
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    REAL(ssize_t, pwrite, (int, const void *, size_t, off_t));
    ssize_t a = allowance(fd, len);
    if (a < 0) return -1;
    ssize_t n = real_pwrite(fd, buf, (size_t)a, off);
    account(fd, n);
    return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
    REAL(ssize_t, pwrite64, (int, const void *, size_t, off64_t));
    ssize_t a = allowance(fd, len);
    if (a < 0) return -1;
    ssize_t n = real_pwrite64(fd, buf, (size_t)a, off);
    account(fd, n);
    return n;
}

/* Vectored writes: only the first buffer's worth is let through when crossing the limit. */
static ssize_t vec_len(const struct iovec *iov, int cnt)
{
    size_t t = 0;
    for (int i = 0; i < cnt; i++) t += iov[i].iov_len;
    return (ssize_t)t;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(ssize_t, writev, (int, const struct iovec *, int));
    size_t total = (size_t)vec_len(iov, cnt);
    ssize_t a = allowance(fd, total);
    if (a < 0) return -1;
    if ((size_t)a < total) {
        size_t first = cnt ? iov[0].iov_len : 0;
        return write(fd, cnt ? iov[0].iov_base : NULL, (size_t)a < first ? (size_t)a : first);
    }
    ssize_t n = real_writev(fd, iov, cnt);
    account(fd, n);
    return n;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(ssize_t, pwritev, (int, const struct iovec *, int, off_t));
    size_t total = (size_t)vec_len(iov, cnt);
    ssize_t a = allowance(fd, total);
    if (a < 0) return -1;
    if ((size_t)a < total) {
        size_t first = cnt ? iov[0].iov_len : 0;
        return pwrite(fd, cnt ? iov[0].iov_base : NULL, (size_t)a < first ? (size_t)a : first, off);
    }
    ssize_t n = real_pwritev(fd, iov, cnt, off);
    account(fd, n);
    return n;
}

static int fsync_fault(int fd)
{
    init();
    if (!affected(fd)) return 0;
    pause_us(fsync_delay_us);
    if (fail_fsync) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int fsync(int fd)
{
    REAL(int, fsync, (int));
    if (fsync_fault(fd)) return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(int, fdatasync, (int));
    if (fsync_fault(fd)) return -1;
    return real_fdatasync(fd);
}

int rename(const char *a, const char *b)
{
    REAL(int, rename, (const char *, const char *));
    init();
    if (rename_mode == 1) {
        errno = EIO;
        return -1;
    }
    return real_rename(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
    REAL(int, renameat, (int, const char *, int, const char *));
    init();
    if (rename_mode == 1) {
        errno = EIO;
        return -1;
    }
    return real_renameat(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags)
{
    REAL(int, renameat2, (int, const char *, int, const char *, unsigned));
    init();
    if (rename_mode) {
        errno = rename_mode == 1 ? EIO : ENOSYS;
        return -1;
    }
    return real_renameat2(da, a, db, b, flags);
}

int link(const char *a, const char *b)
{
    REAL(int, link, (const char *, const char *));
    init();
    if (rename_mode == 1) {
        errno = EIO;
        return -1;
    }
    return real_link(a, b);
}
