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
        for (unsigned char *p = (unsigned char *)err->message; *p; p++) {
            if (*p < 0x20 || *p == 0x7f) *p = '?';
            else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0) p[0] = p[1] = '?'; /* a C1 control (CSI) */
        }
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

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not one. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n) return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && p[1] < 0xa0) return 0;                 /* overlong */
    if (c == 0xed && p[1] >= 0xa0) return 0;                /* surrogate */
    if (c == 0xf0 && p[1] < 0x90) return 0;                 /* overlong */
    if (c == 0xf4 && p[1] >= 0x90) return 0;                /* beyond U+10FFFF */
    return n;
}

const char *mx_printable(char *buf, size_t cap, const char *s, int quoted)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char tmp[16];
        size_t n = 0, len = utf8_len(p);
        /* escaped: C0 controls, DEL, the C1 controls U+0080..U+009F (CSI is U+009B) and bytes that are not UTF-8 */
        if (len == 0 || *p < 0x20 || *p == 0x7f || (len == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
            size_t k = len ? len : 1;
            for (size_t i = 0; i < k; i++) {
                tmp[n++] = '\\';
                tmp[n++] = 'x';
                tmp[n++] = hex[p[i] >> 4];
                tmp[n++] = hex[p[i] & 15];
            }
            len = k;
        } else if (quoted && (*p == '"' || *p == '\\')) {
            tmp[n++] = '\\';
            tmp[n++] = (char)*p;
        } else {
            for (size_t i = 0; i < len; i++) tmp[n++] = (char)p[i];
        }
        if (o + n + 4 > cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, tmp, n);
        o += n;
        p += len;
    }
    buf[o] = '\0';
    return buf;
}

const char *mx_shown_n(const char *s, size_t len, char *buf)
{
    size_t n = 0;
    for (; n < len && n < MX_SHOWN_MAX; n++) {
        unsigned char c = (unsigned char)s[n];
        int c1 = c == 0xc2 && n + 1 < len && (unsigned char)s[n + 1] >= 0x80 && (unsigned char)s[n + 1] < 0xa0;
        int c1_tail = n > 0 && (unsigned char)s[n - 1] == 0xc2 && c >= 0x80 && c < 0xa0;
        buf[n] = (c < 0x20 || c == 0x7f || c1 || c1_tail) ? '?' : (char)c;
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
