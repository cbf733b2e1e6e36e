/* error.c - mixq_error filling, status names and the library version. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "mixq_config.h"

/* A byte that must not reach a one-line message as itself: C0 controls and DEL. */
static int is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

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
            if (is_control((unsigned char)*p)) *p = '?';
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

enum {
    R_HEX = 1,     /* a control byte as \xHH (else '?') */
    R_QUOTED = 2,  /* '"' and '\\' behind a backslash */
    R_UTF8_CUT = 4 /* a cut text backs off to a UTF-8 character boundary */
};

/* The number of bytes byte c renders to. */
static size_t rendered_width(unsigned char c, unsigned flags)
{
    if (is_control(c))
        return (flags & R_HEX) ? 4u : 1u;
    return (flags & R_QUOTED) && (c == '"' || c == '\\') ? 2u : 1u;
}

/*
 * The one sanitiser of untrusted text for messages (mx_printable, mx_shown_n):
 * s[0..len) into buf (cap >= 4 bytes) as one line, by flags; when the next
 * byte's rendering would leave fewer than 4 bytes of buf, the text is cut
 * there and ends in "...".  Returns buf.
 */
static const char *render(char *buf, size_t cap, const char *s, size_t len, unsigned flags)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    for (; i < len; i++) {
        unsigned char c = p[i];
        size_t n = rendered_width(c, flags);
        if (o + n + 4 > cap)
            break;
        if (n == 4) {
            buf[o] = '\\';
            buf[o + 1] = 'x';
            buf[o + 2] = hex[c >> 4];
            buf[o + 3] = hex[c & 15];
        } else if (n == 2) {
            buf[o] = '\\';
            buf[o + 1] = (char)c;
        } else {
            buf[o] = is_control(c) ? '?' : (char)c;
        }
        o += n;
    }
    if (i < len) {
        if (flags & R_UTF8_CUT)
            while (i > 0 && (p[i] & 0xC0) == 0x80) {
                i--;
                o -= rendered_width(p[i], flags);
            }
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

const char *mx_printable(char *buf, size_t cap, const char *s, int quoted)
{
    return render(buf, cap, s, strlen(s), R_HEX | (quoted ? R_QUOTED : 0u));
}

/* MX_SHOWN_MAX bytes and "..." fit: the cut comes after MX_SHOWN_MAX input bytes (each renders to one). */
const char *mx_shown_n(const char *s, size_t len, char *buf) { return render(buf, MX_SHOWN_MAX + 4, s, len, R_UTF8_CUT); }

const char *mx_shown(const char *s, char *buf) { return mx_shown_n(s, strnlen(s, MX_SHOWN_MAX + 1), buf); }
