/* base64.c - RFC 4648 base64, strict canonical decoding (see base64.h). */
#include "common/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool mx_b64_encoded_len(size_t n, size_t *out)
{
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > SIZE_MAX / 4) return false;
    *out = groups * 4;
    return true;
}

void mx_b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

static int value_of(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool mx_b64_decoded_len(const char *in, size_t len, size_t *out)
{
    if (len % 4) return false;
    size_t n = len / 4 * 3;
    if (len && in[len - 1] == '=') {
        n--;
        if (in[len - 2] == '=') n--;
    }
    *out = n;
    return true;
}

bool mx_b64_decode(const char *in, size_t len, uint8_t *out)
{
    if (len % 4) return false;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int pad = 0;
        if (i + 4 == len) pad = (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=');
        int v[4];
        for (int k = 0; k < 4; k++) {
            if (k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = value_of(in[i + k]);
            if (v[k] < 0) return false;
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (pad == 2 && (x & 0xFFFF)) return false; /* non-canonical: unused bits set */
        if (pad == 1 && (x & 0xFF)) return false;
        if (!out) continue; /* checking only */
        out[o++] = (uint8_t)(x >> 16);
        if (pad < 2) out[o++] = (uint8_t)(x >> 8);
        if (pad < 1) out[o++] = (uint8_t)x;
    }
    return true;
}
