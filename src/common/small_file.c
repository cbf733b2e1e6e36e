/* small_file.c - a whole small regular file into memory, with a size cap checked first. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/small_file.h"

mixq_status mx_read_small_file(const char *path, const char *what, uint64_t cap, char **out, size_t *len,
                               mixq_error *err)
{
    char fb[200];
    const char *fn = mx_printable(fb, sizeof fb, path, 0);
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0) return mx_err(err, MIXQ_E_IO, "%s: cannot open: %s", fn, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return mx_err(err, MIXQ_E_IO, "%s: cannot stat: %s", fn, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return mx_err(err, MIXQ_E_IO, "%s: not a regular file (a %s must be one)", fn, what);
    }
    if ((uint64_t)sb.st_size > cap || (uint64_t)sb.st_size >= SIZE_MAX) {
        close(fd);
        return mx_err(err, MIXQ_E_RANGE, "%s: %s of %lld bytes exceeds the limit of %llu bytes", fn, what,
                      (long long)sb.st_size, (unsigned long long)cap);
    }
    size_t size = (size_t)sb.st_size, n = 0;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory reading %zu bytes", fn, size + 1);
    }
    for (;;) { /* read one byte more than expected: a file that grew is noticed */
        size_t want = n < size ? size - n : 1;
        char extra;
        ssize_t got = read(fd, n < size ? buf + n : &extra, want);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return mx_err(err, MIXQ_E_IO, "%s: read failed: %s", fn, strerror(e));
        }
        if (got == 0) break;
        if (n >= size) { /* more than fstat said */
            free(buf);
            close(fd);
            return mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read (it grew); try again", fn);
        }
        n += (size_t)got;
    }
    close(fd);
    if (n != size) {
        free(buf);
        return mx_err(err, MIXQ_E_IO, "%s: the file changed while it was read (it shrank); try again", fn);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return MIXQ_OK;
}
