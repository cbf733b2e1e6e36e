/* gguf_write.c - the byte-level primitives of GGUF headers (see gguf.h). */
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"

void mxg_put(mxg_buf *b, const void *d, size_t n)
{
    if (b->fail) return;
    if (n > SIZE_MAX - b->len) {
        b->fail = 1;
        return;
    }
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n) {
            if (nc > SIZE_MAX / 2) {
                b->fail = 1;
                return;
            }
            nc *= 2;
        }
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->fail = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}

/* Little-endian on every host mixq supports (format/container.h checks it). */
void mxg_put_u32(mxg_buf *b, uint32_t v) { mxg_put(b, &v, 4); }
void mxg_put_i32(mxg_buf *b, int32_t v) { mxg_put(b, &v, 4); }
void mxg_put_u64(mxg_buf *b, uint64_t v) { mxg_put(b, &v, 8); }
void mxg_put_f32(mxg_buf *b, float v) { mxg_put(b, &v, 4); }

void mxg_put_strn(mxg_buf *b, const char *s, size_t n)
{
    mxg_put_u64(b, n);
    mxg_put(b, s, n);
}

void mxg_put_str(mxg_buf *b, const char *s) { mxg_put_strn(b, s, strlen(s)); }

void mxg_pad(mxg_buf *b, size_t align)
{
    static const uint8_t zero[MXG_ALIGN];
    if (align > MXG_ALIGN || align == 0) {
        b->fail = 1;
        return;
    }
    mxg_put(b, zero, (align - b->len % align) % align);
}

void mxg_kv_str(mxg_buf *b, const char *key, const char *v)
{
    mxg_put_str(b, key);
    mxg_put_u32(b, MXG_STRING);
    mxg_put_str(b, v);
}

void mxg_kv_u32(mxg_buf *b, const char *key, uint32_t v)
{
    mxg_put_str(b, key);
    mxg_put_u32(b, MXG_U32);
    mxg_put_u32(b, v);
}

void mxg_kv_i32(mxg_buf *b, const char *key, int32_t v)
{
    mxg_put_str(b, key);
    mxg_put_u32(b, MXG_I32);
    mxg_put_i32(b, v);
}

void mxg_kv_f32(mxg_buf *b, const char *key, float v)
{
    mxg_put_str(b, key);
    mxg_put_u32(b, MXG_F32);
    mxg_put_f32(b, v);
}

void mxg_kv_bool(mxg_buf *b, const char *key, int v)
{
    uint8_t x = v != 0;
    mxg_put_str(b, key);
    mxg_put_u32(b, MXG_BOOL);
    mxg_put(b, &x, 1);
}

void mxg_kv_array(mxg_buf *b, const char *key, uint32_t elem_type, uint64_t count)
{
    mxg_put_str(b, key);
    mxg_put_u32(b, MXG_ARRAY);
    mxg_put_u32(b, elem_type);
    mxg_put_u64(b, count);
}
