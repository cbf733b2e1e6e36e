/* error.c - mixq_error filling, status names and the library version. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "mixq_config.h"

mixq_status mx_err(mixq_error *err, mixq_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        /* Messages are one line and may quote untrusted names: no control byte
           (newline, escape sequence) survives, whatever a caller formatted. */
        for (char *p = err->message; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
        err->code = code;
    }
    return code;
}

void mx_err_clear(mixq_error *err)
{
    if (err) {
        err->code = MIXQ_OK;
        err->message[0] = '\0';
    }
}

const char *mixq_status_name(mixq_status status)
{
    static const char *const names[] = {
        [MIXQ_OK] = "ok",
        [MIXQ_E_INVALID_ARG] = "invalid argument",
        [MIXQ_E_IO] = "i/o error",
        [MIXQ_E_NOMEM] = "out of memory",
        [MIXQ_E_FORMAT] = "malformed file",
        [MIXQ_E_UNSUPPORTED] = "unsupported",
        [MIXQ_E_CHECKSUM] = "checksum mismatch",
        [MIXQ_E_NOT_FOUND] = "not found",
        [MIXQ_E_RANGE] = "out of range",
        [MIXQ_E_EXISTS] = "already exists",
        [MIXQ_E_CANCELLED] = "cancelled",
        [MIXQ_E_DATA] = "unconvertible data",
    };
    if ((unsigned)status < sizeof names / sizeof names[0] && names[status]) return names[status];
    return "unknown status";
}

const char *mixq_version_string(void)
{
    return MIXQ_VERSION_STRING;
}

const char *mx_printable(char *buf, size_t cap, const char *s, int quoted)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[4];
        size_t n = 0;
        if (*p < 0x20 || *p == 0x7f) {
            tmp[n++] = '\\';
            tmp[n++] = 'x';
            tmp[n++] = hex[*p >> 4];
            tmp[n++] = hex[*p & 15];
        } else if (quoted && (*p == '"' || *p == '\\')) {
            tmp[n++] = '\\';
            tmp[n++] = (char)*p;
        } else {
            tmp[n++] = (char)*p;
        }
        if (o + n + 4 > cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, tmp, n);
        o += n;
    }
    buf[o] = '\0';
    return buf;
}

const char *mx_shown_n(const char *s, size_t len, char *buf)
{
    size_t n = 0;
    for (; n < len && n < MX_SHOWN_MAX; n++) {
        unsigned char c = (unsigned char)s[n];
        buf[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n < len) {
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
        memcpy(buf + n, "...", 4);
    } else {
        buf[n] = '\0';
    }
    return buf;
}

const char *mx_shown(const char *s, char *buf) { return mx_shown_n(s, strnlen(s, MX_SHOWN_MAX + 1), buf); }
