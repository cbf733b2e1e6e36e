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
        for (unsigned char *p = (unsigned char *)err->message; *p; p++) {
            if (is_control(*p)) *p = '?';
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

enum {
    R_HEX = 1,    /* an escaped byte as \xHH (else '?') */
    R_QUOTED = 2, /* '"' and '\\' behind a backslash */
};

/* Length of the valid UTF-8 sequence at p[0..avail), 1..4, or 0 if the bytes there are not one. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n || n > avail) return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && p[1] < 0xa0) return 0; /* overlong */
    if (c == 0xed && p[1] >= 0xa0) return 0; /* surrogate */
    if (c == 0xf0 && p[1] < 0x90) return 0; /* overlong */
    if (c == 0xf4 && p[1] >= 0x90) return 0; /* beyond U+10FFFF */
    return n;
}

/*
 * The one sanitiser of untrusted text for messages (mx_printable, mx_shown_n):
 * s[0..len) into buf (cap >= 4 bytes) as one line, character by character.
 * C0 controls, DEL, the C1 controls U+0080..U+009F (CSI is U+009B) and bytes
 * that are not UTF-8 are escaped, each byte as \xHH (R_HEX) or '?'; when the
 * next character's rendering would leave fewer than 4 bytes of buf, the text
 * is cut there (a character boundary) and ends in "...".  Returns buf.
 */
static const char *render(char *buf, size_t cap, const char *s, size_t len, unsigned flags)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t k = utf8_len(p + i, len - i);
        int escape = k == 0 || is_control(p[i]) || (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0);
        if (k == 0) k = 1;
        int quote = (flags & R_QUOTED) && (p[i] == '"' || p[i] == '\\');
        size_t n = escape ? ((flags & R_HEX) ? 4 * k : k) : quote ? 2 : k;
        if (o + n + 4 > cap)
            break;
        for (size_t j = 0; j < k; j++) {
            unsigned char c = p[i + j];
            if (escape && (flags & R_HEX)) {
                buf[o++] = '\\';
                buf[o++] = 'x';
                buf[o++] = hex[c >> 4];
                buf[o++] = hex[c & 15];
            } else if (escape) {
                buf[o++] = '?';
            } else if (quote) {
                buf[o++] = '\\';
                buf[o++] = (char)c;
            } else {
                buf[o++] = (char)c;
            }
        }
        i += k;
    }
    if (i < len) {
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
const char *mx_shown_n(const char *s, size_t len, char *buf) { return render(buf, MX_SHOWN_MAX + 4, s, len, 0); }

const char *mx_shown(const char *s, char *buf) { return mx_shown_n(s, strnlen(s, MX_SHOWN_MAX + 1), buf); }
