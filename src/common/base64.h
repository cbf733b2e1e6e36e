/* base64.h - RFC 4648 base64 (standard alphabet, '=' padding), for binary data inside JSON. */
#ifndef MIXQ_BASE64_H
#define MIXQ_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Characters encoding n bytes (without a NUL); false if that overflows size_t. */
bool mx_b64_encoded_len(size_t n, size_t *out);

/* Encodes n bytes into out (mx_b64_encoded_len(n) characters plus a NUL). */
void mx_b64_encode(const uint8_t *in, size_t n, char *out);

/* Bytes that len characters of canonical base64 decode to; false if len is not a multiple of 4. */
bool mx_b64_decoded_len(const char *in, size_t len, size_t *out);

/*
 * Decodes len characters (a multiple of 4, padding only at the end, unused
 * bits zero: the one canonical form) into out (mx_b64_decoded_len bytes;
 * NULL: only check the text).  false on any other input.
 */
bool mx_b64_decode(const char *in, size_t len, uint8_t *out);

#endif
