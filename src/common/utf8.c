/* utf8.c - validating UTF-8 and replacing what is not. */
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t seq_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n) return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

bool mx_utf8_valid(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = seq_len(p);
        if (!n) return false;
        p += n;
    }
    return true;
}

char *mx_utf8_lossy(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len * 3 + 1); /* each bad byte becomes 3 bytes */
    if (!out) return NULL;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = seq_len(p);
        if (n) {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        }
    }
    out[o] = '\0';
    return out;
}
