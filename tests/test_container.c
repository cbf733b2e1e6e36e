/*
 * test_container.c - the container loader (src/container_read.c) against
 * files built by hand from format/FORMAT.md with a test-local builder, so
 * that the loader is checked independently of the library's writer.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <xxhash.h>

#include "common/half.h"
#include "mixq.h"
#include "test_support.h"

/* ---------------------------------------------------------------------- */
/* A test-local container builder, straight from FORMAT.md                 */
/* ---------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

typedef struct tb {
    uint8_t *data;     /* the data region; data[0] is file offset 64 */
    size_t len, cap;
    long data_adjust;  /* added to the padded data length (tests of data_length rules) */
    json_t *root, *tensors, *meta;
} tb;

static tb *tb_new(void)
{
    tb *b = calloc(1, sizeof *b);
    b->cap = 1 << 16;
    b->data = calloc(1, b->cap);
    b->meta = json_pack("{s:s,s:{s:s,s:s},s:[{s:s,s:i}],s:{s:s,s:i,s:b}}", "mixq_version", "0.1.0",
                        "source_metadata", "format", "pt", "note", "hello", "source_files", "name",
                        "model.safetensors", "size", 1234, "options", "type", "int8", "group_size", 0,
                        "quantize_1d", 0);
    b->tensors = json_array();
    b->root = json_pack("{s:s,s:i,s:i,s:O,s:O}", "format", "mixq", "format_version", 1, "alignment", 64,
                        "metadata", b->meta, "tensors", b->tensors);
    cr_assert(b->meta && b->tensors && b->root);
    return b;
}

static void tb_free(tb *b)
{
    json_decref(b->meta);
    json_decref(b->tensors);
    json_decref(b->root);
    free(b->data);
    free(b);
}

/* Parses "codes=0+80,scales=128+8" into a sections object. */
static json_t *parse_secs(const char *spec)
{
    json_t *o = json_object();
    char name[32];
    long long off, len;
    int used;
    while (*spec && sscanf(spec, "%31[a-z]=%lld+%lld%n", name, &off, &len, &used) == 3) {
        json_object_set_new(o, name, json_pack("{s:I,s:I}", "offset", (json_int_t)off, "length", (json_int_t)len));
        spec += used;
        if (*spec == ',') spec++;
    }
    cr_assert(*spec == '\0', "bad section spec");
    return o;
}

/* Appends a tensor (its stored bytes as given) at the next 64-aligned offset; returns its entry. */
static json_t *tb_add(tb *b, const char *name, const char *shape, const char *src, const char *qt, int gs,
                      const char *secs, const void *bytes, size_t n)
{
    size_t off = align64(b->len);
    while (off + n > b->cap) b->data = realloc(b->data, b->cap *= 2);
    memset(b->data + b->len, 0, off - b->len);
    if (n) memcpy(b->data + off, bytes, n);
    b->len = off + n;
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, (uint64_t)XXH3_64bits(bytes ? bytes : "", n));
    json_t *sh = json_loads(shape, 0, NULL);
    cr_assert(sh != NULL);
    json_t *e = json_pack("{s:s,s:o,s:s,s:s,s:i,s:b,s:I,s:I,s:o,s:s}", "name", name, "shape", sh, "source_dtype", src,
                          "quant_type", qt, "group_size", gs, "symmetric", strcmp(qt, "int4") != 0, "offset",
                          (json_int_t)(64 + off), "length", (json_int_t)n, "sections", parse_secs(secs), "xxh3", hex);
    cr_assert(e != NULL);
    json_array_append_new(b->tensors, e);
    return e;
}

static json_t *entry(tb *b, size_t i) { return json_array_get(b->tensors, i); }

/* Assembles preamble + data + header with the given header text; all checksums right. */
static uint8_t *mk_file(const uint8_t *data, size_t data_len, const char *hdr, size_t hlen, size_t *out_len)
{
    size_t len = 64 + data_len + hlen;
    uint8_t *f = calloc(1, len + 1);
    memcpy(f, "\x89MXQ\r\n\x1a\n", 8);
    put16(f + 8, 1);
    put16(f + 10, 0);
    put32(f + 12, 0);
    put64(f + 16, 64);
    put64(f + 24, data_len);
    put64(f + 32, 64 + data_len);
    put64(f + 40, hlen);
    if (data_len) memcpy(f + 64, data, data_len);
    memcpy(f + 64 + data_len, hdr, hlen);
    put64(f + 48, XXH3_64bits(hdr, hlen));
    put64(f + 56, XXH3_64bits(f, 56));
    *out_len = len;
    return f;
}

/* Serialises the builder's JSON compactly and assembles the file. */
static uint8_t *tb_build(tb *b, size_t *len)
{
    size_t dl = (size_t)((long)align64(b->len) + b->data_adjust);
    uint8_t *data = calloc(1, dl + 1);
    memcpy(data, b->data, b->len < dl ? b->len : dl);
    char *hdr = json_dumps(b->root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_assert(hdr != NULL);
    uint8_t *f = mk_file(data, dl, hdr, strlen(hdr), len);
    free(hdr);
    free(data);
    return f;
}

/* Recomputes the preamble checksum after a preamble field was changed. */
static void fix_preamble(uint8_t *f) { put64(f + 56, XXH3_64bits(f, 56)); }

/* ---------------------------------------------------------------------- */
/* The standard valid container                                            */
/* ---------------------------------------------------------------------- */

static const float f32_vals[6] = {1.5f, -2.0f, 0.25f, 3.0f, 4.0f, -0.125f};
static const uint16_t f32_as_f16[6] = {0x3E00, 0xC000, 0x3400, 0x4200, 0x4400, 0xB000};
static const uint16_t f16_bits[4] = {0x3C00, 0xC000, 0x3800, 0x7BFF};
static const float f16_vals[4] = {1.0f, -2.0f, 0.5f, 65504.0f};
static const uint16_t bf16_bits[4] = {0x3F80, 0xC040, 0x3E80, 0x4120};
static const float bf16_vals[4] = {1.0f, -3.0f, 0.25f, 10.0f};

/* int8 [2,40], group 32: scales (f16 bits, value) per row, group */
static const uint16_t i8_sbits[2][2] = {{0x3800, 0x3400}, {0x4000, 0x0000}};
static const float i8_svals[2][2] = {{0.5f, 0.25f}, {2.0f, 0.0f}};
static int8_t i8_code(int r, int i) { return (int8_t)(((r * 40 + i) * 37) % 255 - 127); }

/* int8 [3,5], one group per row */
static const uint16_t i8r_sbits[3] = {0x3C00, 0x4400, 0x2C00};
static const float i8r_svals[3] = {1.0f, 4.0f, 0.0625f};
static int8_t i8r_code(int r, int i) { return (int8_t)(r * 50 - i * 23 + 7); }

/* int4 [2,37], group 16: 3 groups per row (16, 16, 5) */
static const uint16_t i4_sbits[6] = {0x3000, 0x3C00, 0x2C00, 0x3800, 0x0000, 0x4000};
static const float i4_svals[6] = {0.125f, 1.0f, 0.0625f, 0.5f, 0.0f, 2.0f};
static const uint16_t i4_mbits[6] = {0xBC00, 0x3800, 0xB400, 0x0000, 0x4200, 0xC000};
static const float i4_mvals[6] = {-1.0f, 0.5f, -0.25f, 0.0f, 3.0f, -2.0f};
static unsigned i4_code(int r, int i) { return (unsigned)(r * 37 + i * 5) % 16; }

static uint8_t t_f32[24], t_f16[8], t_i8[136], t_i8r[70], t_i4[140], t_raw[6], t_scalar[8], t_bf16[8];

static void fill_bytes(void)
{
    for (int i = 0; i < 6; i++) { uint32_t u; memcpy(&u, &f32_vals[i], 4); put32(t_f32 + 4 * i, u); }
    for (int i = 0; i < 4; i++) put16(t_f16 + 2 * i, f16_bits[i]);
    for (int i = 0; i < 4; i++) put16(t_bf16 + 2 * i, bf16_bits[i]);
    memset(t_i8, 0, sizeof t_i8);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 40; i++) t_i8[r * 40 + i] = (uint8_t)i8_code(r, i);
    for (int r = 0; r < 2; r++)
        for (int g = 0; g < 2; g++) put16(t_i8 + 128 + 2 * (r * 2 + g), i8_sbits[r][g]);
    memset(t_i8r, 0, sizeof t_i8r);
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 5; i++) t_i8r[r * 5 + i] = (uint8_t)i8r_code(r, i);
    for (int r = 0; r < 3; r++) put16(t_i8r + 64 + 2 * r, i8r_sbits[r]);
    memset(t_i4, 0, sizeof t_i4);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 37; i++) t_i4[r * 19 + i / 2] |= (uint8_t)(i4_code(r, i) << (4 * (i % 2)));
    for (int j = 0; j < 6; j++) {
        put16(t_i4 + 64 + 2 * j, i4_sbits[j]);
        put16(t_i4 + 128 + 2 * j, i4_mbits[j]);
    }
    int16_t rv[3] = {-5, 7, 300};
    for (int i = 0; i < 3; i++) put16(t_raw + 2 * i, (uint16_t)rv[i]);
    double d = 2.5;
    uint64_t du;
    memcpy(&du, &d, 8);
    put64(t_scalar, du);
}

enum { T_F32, T_F16, T_I8, T_I8R, T_EMPTY, T_I4, T_RAW, T_SCALAR, T_EMPTY4, T_BF16, T_COUNT };

/* The standard container: every quant type, odd shapes, empty tensors; the last leaves tail padding. */
static tb *std_tb(void)
{
    fill_bytes();
    tb *b = tb_new();
    tb_add(b, "w.f32", "[2,3]", "F32", "f32", 0, "data=0+24", t_f32, 24);
    tb_add(b, "w.f16", "[4]", "BF16", "f16", 0, "data=0+8", t_f16, 8);
    tb_add(b, "w.int8", "[2,40]", "BF16", "int8", 32, "codes=0+80,scales=128+8", t_i8, 136);
    tb_add(b, "w.int8row", "[3,5]", "F32", "int8", 0, "codes=0+15,scales=64+6", t_i8r, 70);
    tb_add(b, "empty", "[0,4]", "F32", "f32", 0, "data=0+0", NULL, 0);
    tb_add(b, "w.int4", "[2,37]", "F16", "int4", 16, "codes=0+38,scales=64+12,mins=128+12", t_i4, 140);
    tb_add(b, "b.raw", "[3]", "I16", "raw", 0, "data=0+6", t_raw, 6);
    tb_add(b, "scalar", "[]", "F64", "raw", 0, "data=0+8", t_scalar, 8);
    tb_add(b, "empty4", "[3,0]", "F32", "int4", 64, "codes=0+0,scales=0+0,mins=0+0", NULL, 0);
    tb_add(b, "w.bf16", "[2,2]", "F32", "bf16", 0, "data=0+8", t_bf16, 8);
    return b;
}

/* ---------------------------------------------------------------------- */
/* Fixture and helpers                                                     */
/* ---------------------------------------------------------------------- */

static char *tmpdir, *fpath;

static void setup(void)
{
    tmpdir = ts_tmpdir();
    fpath = ts_path(tmpdir, "t.mxq");
}

static void teardown(void)
{
    ts_rmtree(tmpdir);
    free(tmpdir);
    free(fpath);
}

TestSuite(container, .init = setup, .fini = teardown);

static mixq_file *open_bytes(const uint8_t *buf, size_t len, unsigned flags, mixq_error *err)
{
    ts_write_file(fpath, buf, len);
    return mixq_open(fpath, flags, err);
}

/* Asserts that opening buf fails with code and a one-line message naming the file and containing substr. */
static void expect_fail(const uint8_t *buf, size_t len, mixq_status code, const char *substr)
{
    mixq_error err;
    mixq_file *f = open_bytes(buf, len, 0, &err);
    cr_assert_null(f, "open succeeded; expected failure with \"%s\"", substr);
    cr_assert_eq(err.code, code, "status %s, expected %s: %s", mixq_status_name(err.code), mixq_status_name(code),
                 err.message);
    cr_assert(strstr(err.message, substr) != NULL, "message \"%s\" lacks \"%s\"", err.message, substr);
    cr_assert(strstr(err.message, "t.mxq") != NULL, "message \"%s\" does not name the file", err.message);
    cr_assert(strchr(err.message, '\n') == NULL, "message has a newline");
}

static void expect_fail_tb(tb *b, mixq_status code, const char *substr)
{
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    expect_fail(buf, len, code, substr);
    free(buf);
    tb_free(b);
}

static void expect_fail_hdr(const char *hdr, size_t hlen, mixq_status code, const char *substr)
{
    size_t len;
    uint8_t *buf = mk_file(NULL, 0, hdr, hlen, &len);
    expect_fail(buf, len, code, substr);
    free(buf);
}

static mixq_file *open_tb_ok(tb *b, unsigned flags)
{
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    mixq_error err;
    mixq_file *f = open_bytes(buf, len, flags, &err);
    cr_assert_not_null(f, "open failed: %s", err.message);
    free(buf);
    return f;
}

static const mixq_tensor *must_find(mixq_file *f, const char *name)
{
    const mixq_tensor *t = mixq_find(f, name);
    cr_assert_not_null(t, "tensor %s not found", name);
    return t;
}

static uint16_t f32_to_f16_bits_exact(float x) { return mx_f32_to_f16(x); }

/* ---------------------------------------------------------------------- */
/* Valid containers                                                        */
/* ---------------------------------------------------------------------- */

Test(container, opens_lists_and_finds)
{
    tb *b = std_tb();
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    mixq_error err;
    mixq_file *f = open_bytes(buf, len, MIXQ_OPEN_VERIFY, &err);
    cr_assert_not_null(f, "open failed: %s", err.message);
    cr_assert_eq(mixq_tensor_count(f), T_COUNT);
    cr_assert_eq(mixq_file_size(f), len);
    for (size_t i = 0; i < T_COUNT; i++) {
        const mixq_tensor *t = mixq_tensor_at(f, i);
        cr_assert_not_null(t);
        mixq_tensor_info info;
        mixq_tensor_get_info(t, &info);
        cr_assert_str_eq(info.name, json_string_value(json_object_get(entry(b, i), "name")));
        cr_assert_eq(mixq_find(f, info.name), t);
    }
    cr_assert_null(mixq_tensor_at(f, T_COUNT));
    cr_assert_null(mixq_find(f, "nope"));
    cr_assert_null(mixq_find(f, ""));
    cr_assert_null(mixq_find(f, "w.f3"));
    size_t hl;
    const char *h = mixq_header_json(f, &hl);
    cr_assert_eq(hl, len - get64(buf + 32));
    cr_assert(memcmp(h, buf + get64(buf + 32), hl) == 0);
    cr_assert_str_eq(mixq_source_metadata(f, "format"), "pt");
    cr_assert_str_eq(mixq_source_metadata(f, "note"), "hello");
    cr_assert_null(mixq_source_metadata(f, "missing"));
    cr_assert_eq(mixq_verify(f, &err), MIXQ_OK, "%s", err.message);
    mixq_close(f);
    free(buf);
    tb_free(b);
}

Test(container, info_fields)
{
    tb *b = std_tb();
    mixq_file *f = open_tb_ok(b, 0);
    mixq_tensor_info in;

    mixq_tensor_get_info(must_find(f, "w.int4"), &in);
    cr_assert_eq(in.ndim, 2);
    cr_assert_eq(in.shape[0], 2);
    cr_assert_eq(in.shape[1], 37);
    cr_assert_eq(in.n_elements, 74);
    cr_assert_eq(in.rows, 2);
    cr_assert_eq(in.row_length, 37);
    cr_assert_eq(in.qtype, MIXQ_QT_INT4);
    cr_assert_str_eq(in.quant_type, "int4");
    cr_assert_str_eq(in.source_dtype, "F16");
    cr_assert_eq(in.group_size, 16);
    cr_assert_eq(in.quantized, 1);
    cr_assert_eq(in.symmetric, 0);
    cr_assert_eq(in.offset % 64, 0);
    cr_assert_eq(in.nbytes, 140);
    cr_assert_float_eq(in.bits_per_weight, 140.0 * 8 / 74, 1e-12);
    cr_assert_eq(in.checksum, XXH3_64bits(t_i4, 140));

    mixq_tensor_get_info(must_find(f, "w.f32"), &in);
    cr_assert_eq(in.offset, 64);
    cr_assert_eq(in.rows, 2);
    cr_assert_eq(in.row_length, 3);
    cr_assert_eq(in.qtype, MIXQ_QT_F32);
    cr_assert_eq(in.quantized, 0);
    cr_assert_eq(in.symmetric, 1);
    cr_assert_eq(in.group_size, 0);

    mixq_tensor_get_info(must_find(f, "w.int8"), &in);
    cr_assert_eq(in.offset, 64 + 64 + 64); /* f32 at 64 (24 bytes), f16 at 128 (8 bytes), int8 at 192 */
    cr_assert_eq(in.group_size, 32);
    cr_assert_eq(in.symmetric, 1);
    cr_assert_str_eq(in.source_dtype, "BF16");

    mixq_tensor_get_info(must_find(f, "w.f16"), &in);
    cr_assert_eq(in.ndim, 1);
    cr_assert_eq(in.rows, 1);
    cr_assert_eq(in.row_length, 4);

    mixq_tensor_get_info(must_find(f, "scalar"), &in);
    cr_assert_eq(in.ndim, 0);
    cr_assert_eq(in.n_elements, 1);
    cr_assert_eq(in.rows, 1);
    cr_assert_eq(in.row_length, 1);
    cr_assert_str_eq(in.source_dtype, "F64");
    cr_assert_eq(in.qtype, MIXQ_QT_RAW);

    mixq_tensor_get_info(must_find(f, "empty"), &in);
    cr_assert_eq(in.n_elements, 0);
    cr_assert_eq(in.rows, 0);
    cr_assert_eq(in.row_length, 4);
    cr_assert_eq(in.nbytes, 0);
    cr_assert_eq(in.bits_per_weight, 0.0);

    mixq_tensor_get_info(must_find(f, "empty4"), &in);
    cr_assert_eq(in.rows, 3);
    cr_assert_eq(in.row_length, 0);
    cr_assert_eq(in.group_size, 64);
    mixq_close(f);
    tb_free(b);
}

Test(container, sections)
{
    tb *b = std_tb();
    mixq_file *f = open_tb_ok(b, 0);
    mixq_section s;
    const mixq_tensor *t = must_find(f, "w.int8");
    cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_CODES, &s), MIXQ_OK);
    cr_assert_eq(s.size, 80);
    cr_assert_eq(s.row_stride, 40);
    cr_assert_eq((uintptr_t)s.data % 64, 0);
    cr_assert(memcmp(s.data, t_i8, 80) == 0);
    cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_SCALES, &s), MIXQ_OK);
    cr_assert_eq(s.size, 8);
    cr_assert_eq(s.row_stride, 4);
    cr_assert(memcmp(s.data, t_i8 + 128, 8) == 0);
    cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_MINS, &s), MIXQ_E_NOT_FOUND);
    cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_DATA, &s), MIXQ_E_NOT_FOUND);
    cr_assert_eq(mixq_tensor_section(t, (mixq_section_kind)99, &s), MIXQ_E_NOT_FOUND);

    t = must_find(f, "w.int4");
    cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_CODES, &s), MIXQ_OK);
    cr_assert_eq(s.size, 38);
    cr_assert_eq(s.row_stride, 19);
    cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_MINS, &s), MIXQ_OK);
    cr_assert_eq(s.size, 12);
    cr_assert_eq(s.row_stride, 6);
    cr_assert(memcmp(s.data, t_i4 + 128, 12) == 0);

    t = must_find(f, "w.f32");
    cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_DATA, &s), MIXQ_OK);
    cr_assert_eq(s.size, 24);
    cr_assert_eq(s.row_stride, 12);
    cr_assert(memcmp(s.data, t_f32, 24) == 0);
    cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_CODES, &s), MIXQ_E_NOT_FOUND);

    t = must_find(f, "empty4");
    cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_SCALES, &s), MIXQ_OK);
    cr_assert_eq(s.size, 0);
    mixq_close(f);
    tb_free(b);
}

Test(container, dequantize_plain)
{
    tb *b = std_tb();
    mixq_file *f = open_tb_ok(b, 0);
    mixq_error err;
    float out[8];
    uint16_t h[8];

    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "w.f32"), 0, 2, out, &err), MIXQ_OK, "%s", err.message);
    for (int i = 0; i < 6; i++) cr_assert_eq(out[i], f32_vals[i]);
    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "w.f32"), 1, 2, out, &err), MIXQ_OK);
    for (int i = 0; i < 3; i++) cr_assert_eq(out[i], f32_vals[3 + i]);
    cr_assert_eq(mixq_dequantize_f16(f, must_find(f, "w.f32"), 0, 2, h, &err), MIXQ_OK);
    for (int i = 0; i < 6; i++) cr_assert_eq(h[i], f32_as_f16[i], "%d: %04x", i, h[i]);

    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "w.f16"), 0, 1, out, &err), MIXQ_OK);
    for (int i = 0; i < 4; i++) cr_assert_eq(out[i], f16_vals[i]);
    cr_assert_eq(mixq_dequantize_f16(f, must_find(f, "w.f16"), 0, 1, h, &err), MIXQ_OK);
    for (int i = 0; i < 4; i++) cr_assert_eq(h[i], f16_bits[i]);

    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "w.bf16"), 0, 2, out, &err), MIXQ_OK);
    for (int i = 0; i < 4; i++) cr_assert_eq(out[i], bf16_vals[i]);
    cr_assert_eq(mixq_dequantize_f16(f, must_find(f, "w.bf16"), 1, 2, h, &err), MIXQ_OK);
    cr_assert_eq(h[0], 0x3400); /* 0.25 */
    cr_assert_eq(h[1], 0x4900); /* 10.0 */

    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "b.raw"), 0, 1, out, &err), MIXQ_OK);
    cr_assert_eq(out[0], -5.0f);
    cr_assert_eq(out[1], 7.0f);
    cr_assert_eq(out[2], 300.0f);
    cr_assert_eq(mixq_dequantize_f16(f, must_find(f, "b.raw"), 0, 1, h, &err), MIXQ_OK);
    cr_assert_eq(h[2], 0x5CB0); /* 300 */

    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "scalar"), 0, 1, out, &err), MIXQ_OK);
    cr_assert_eq(out[0], 2.5f);
    mixq_close(f);
    tb_free(b);
}

Test(container, dequantize_int8)
{
    tb *b = std_tb();
    mixq_file *f = open_tb_ok(b, 0);
    mixq_error err;
    float out[80];
    uint16_t h[80];
    const mixq_tensor *t = must_find(f, "w.int8");
    cr_assert_eq(mixq_dequantize_f32(f, t, 0, 2, out, &err), MIXQ_OK, "%s", err.message);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 40; i++)
            cr_assert_eq(out[r * 40 + i], (float)i8_code(r, i) * i8_svals[r][i / 32], "r%d i%d: %g", r, i,
                         (double)out[r * 40 + i]);
    cr_assert_eq(mixq_dequantize_f32(f, t, 1, 2, out, &err), MIXQ_OK);
    for (int i = 0; i < 40; i++) cr_assert_eq(out[i], (float)i8_code(1, i) * i8_svals[1][i / 32]);
    cr_assert_eq(mixq_dequantize_f16(f, t, 0, 2, h, &err), MIXQ_OK);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 40; i++)
            cr_assert_eq(h[r * 40 + i], f32_to_f16_bits_exact((float)i8_code(r, i) * i8_svals[r][i / 32]));

    t = must_find(f, "w.int8row");
    cr_assert_eq(mixq_dequantize_f32(f, t, 0, 3, out, &err), MIXQ_OK, "%s", err.message);
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 5; i++) cr_assert_eq(out[r * 5 + i], (float)i8r_code(r, i) * i8r_svals[r]);
    cr_assert_eq(mixq_dequantize_f32(f, t, 2, 3, out, &err), MIXQ_OK);
    for (int i = 0; i < 5; i++) cr_assert_eq(out[i], (float)i8r_code(2, i) * i8r_svals[2]);
    mixq_close(f);
    tb_free(b);
}

Test(container, dequantize_int4)
{
    tb *b = std_tb();
    mixq_file *f = open_tb_ok(b, 0);
    mixq_error err;
    float out[74];
    uint16_t h[74];
    const mixq_tensor *t = must_find(f, "w.int4");
    cr_assert_eq(mixq_dequantize_f32(f, t, 0, 2, out, &err), MIXQ_OK, "%s", err.message);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 37; i++) {
            int j = r * 3 + i / 16;
            float want = (float)i4_code(r, i) * i4_svals[j] + i4_mvals[j];
            cr_assert_eq(out[r * 37 + i], want, "r%d i%d: %g != %g", r, i, (double)out[r * 37 + i], (double)want);
        }
    cr_assert_eq(mixq_dequantize_f16(f, t, 1, 2, h, &err), MIXQ_OK);
    for (int i = 0; i < 37; i++) {
        int j = 3 + i / 16;
        cr_assert_eq(h[i], f32_to_f16_bits_exact((float)i4_code(1, i) * i4_svals[j] + i4_mvals[j]));
    }
    mixq_close(f);
    tb_free(b);
}

Test(container, dequantize_long_rows_f16)
{
    /* Rows longer than the loader's internal chunk, quantized and plain. */
    enum { K = 3000 };
    tb *b = tb_new();
    static uint8_t codes[2 * K + 64 + 2 * 2 * (K / 256 + 1) + 64];
    size_t ng = (K + 255) / 256, soff = align64(2 * K);
    for (int i = 0; i < 2 * K; i++) codes[i] = (uint8_t)(int8_t)(i % 255 - 127);
    for (size_t j = 0; j < 2 * ng; j++) put16(codes + soff + 2 * j, 0x3800); /* 0.5 */
    size_t total = soff + 2 * 2 * ng;
    char secs[128];
    snprintf(secs, sizeof secs, "codes=0+%d,scales=%zu+%zu", 2 * K, soff, 2 * 2 * ng);
    tb_add(b, "q", "[2,3000]", "F32", "int8", 256, secs, codes, total);
    static uint8_t plain[4 * 2 * K];
    for (int i = 0; i < 2 * K; i++) { float v = (float)(i - K); uint32_t u; memcpy(&u, &v, 4); put32(plain + 4 * i, u); }
    snprintf(secs, sizeof secs, "data=0+%d", 8 * K);
    tb_add(b, "p", "[2,3000]", "F32", "f32", 0, secs, plain, sizeof plain);
    mixq_file *f = open_tb_ok(b, MIXQ_OPEN_VERIFY);
    static uint16_t h[2 * K];
    mixq_error err;
    cr_assert_eq(mixq_dequantize_f16(f, must_find(f, "q"), 0, 2, h, &err), MIXQ_OK, "%s", err.message);
    for (int i = 0; i < 2 * K; i++) cr_assert_eq(h[i], mx_f32_to_f16((float)(int8_t)codes[i] * 0.5f));
    cr_assert_eq(mixq_dequantize_f16(f, must_find(f, "p"), 0, 2, h, &err), MIXQ_OK, "%s", err.message);
    for (int i = 0; i < 2 * K; i++) cr_assert_eq(h[i], mx_f32_to_f16((float)(i - K)));
    mixq_close(f);
    tb_free(b);
}

Test(container, row_ranges)
{
    tb *b = std_tb();
    mixq_file *f = open_tb_ok(b, 0);
    mixq_error err;
    float out[4] = {42, 42, 42, 42};
    uint16_t h[4] = {7, 7, 7, 7};
    const mixq_tensor *t = must_find(f, "w.f32");
    cr_assert_eq(mixq_dequantize_f32(f, t, 1, 1, out, &err), MIXQ_OK);
    cr_assert_eq(out[0], 42);
    cr_assert_eq(mixq_dequantize_f32(f, t, 2, 2, out, &err), MIXQ_OK);
    cr_assert_eq(mixq_dequantize_f32(f, t, 0, 3, out, &err), MIXQ_E_RANGE);
    cr_assert_eq(err.code, MIXQ_E_RANGE);
    cr_assert(strstr(err.message, "w.f32") && strstr(err.message, "out of range"), "%s", err.message);
    cr_assert_eq(mixq_dequantize_f32(f, t, 2, 1, out, &err), MIXQ_E_RANGE);
    cr_assert_eq(mixq_dequantize_f32(f, t, 3, 3, out, &err), MIXQ_E_RANGE);
    cr_assert_eq(mixq_dequantize_f16(f, t, 0, UINT64_MAX, h, &err), MIXQ_E_RANGE);
    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "w.int4"), 1, 3, out, &err), MIXQ_E_RANGE);
    cr_assert_eq(out[0], 42);
    cr_assert_eq(h[0], 7);
    /* empty tensors: nothing to write */
    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "empty"), 0, 0, out, &err), MIXQ_OK);
    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "empty"), 0, 1, out, &err), MIXQ_E_RANGE);
    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "empty4"), 0, 3, out, &err), MIXQ_OK);
    cr_assert_eq(mixq_dequantize_f16(f, must_find(f, "empty4"), 1, 3, h, &err), MIXQ_OK);
    cr_assert_eq(mixq_dequantize_f32(f, must_find(f, "empty4"), 0, 3, NULL, &err), MIXQ_OK);
    cr_assert_eq(out[0], 42);
    cr_assert_eq(h[0], 7);
    cr_assert_eq(mixq_dequantize_f32(f, t, 0, 1, NULL, &err), MIXQ_E_INVALID_ARG);
    cr_assert_eq(mixq_dequantize_f32(NULL, t, 0, 1, out, &err), MIXQ_E_INVALID_ARG);
    mixq_close(f);
    tb_free(b);
}

Test(container, no_tensors)
{
    tb *b = tb_new();
    mixq_file *f = open_tb_ok(b, MIXQ_OPEN_VERIFY);
    cr_assert_eq(mixq_tensor_count(f), 0);
    cr_assert_null(mixq_find(f, "x"));
    cr_assert_null(mixq_tensor_at(f, 0));
    mixq_close(f);
    tb_free(b);
}

Test(container, many_tensors_lookup)
{
    tb *b = tb_new();
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "layer.%d.w", i);
        tb_add(b, name, "[0]", "F16", "f16", 0, "data=0+0", NULL, 0);
    }
    float one = 1.0f;
    tb_add(b, "last", "[1]", "F32", "f32", 0, "data=0+4", &one, 4);
    mixq_file *f = open_tb_ok(b, MIXQ_OPEN_VERIFY);
    cr_assert_eq(mixq_tensor_count(f), 2001);
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "layer.%d.w", i);
        cr_assert_eq(mixq_find(f, name), mixq_tensor_at(f, (size_t)i));
    }
    cr_assert_eq(mixq_find(f, "last"), mixq_tensor_at(f, 2000));
    cr_assert_null(mixq_find(f, "layer.2000.w"));
    mixq_close(f);
    tb_free(b);
}

Test(container, unknown_keys_and_minor_accepted)
{
    tb *b = std_tb();
    json_object_set_new(b->root, "future_top", json_pack("{s:[i,i]}", "x", 1, 2));
    json_object_set_new(b->meta, "future_meta", json_string("v"));
    json_object_set_new(json_object_get(b->meta, "options"), "future_opt", json_true());
    json_object_set_new(entry(b, 2), "future_entry", json_real(1.5));
    json_object_set_new(json_object_get(json_object_get(entry(b, 2), "sections"), "codes"), "future_sec",
                        json_null());
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    put16(buf + 10, 7); /* minor 7: accepted */
    fix_preamble(buf);
    mixq_error err;
    mixq_file *f = open_bytes(buf, len, MIXQ_OPEN_VERIFY, &err);
    cr_assert_not_null(f, "%s", err.message);
    cr_assert_eq(mixq_tensor_count(f), T_COUNT);
    mixq_close(f);
    free(buf);
    tb_free(b);
}

Test(container, metadata_optional)
{
    tb *b = tb_new();
    json_object_clear(b->meta);
    float one = 1.0f;
    tb_add(b, "x", "[1]", "F32", "f32", 0, "data=0+4", &one, 4);
    mixq_file *f = open_tb_ok(b, MIXQ_OPEN_VERIFY);
    cr_assert_null(mixq_source_metadata(f, "format"));
    mixq_close(f);
    tb_free(b);
}

/* ---------------------------------------------------------------------- */
/* Preamble rules                                                          */
/* ---------------------------------------------------------------------- */

/* Builds the standard file, lets the caller change it, and expects failure. */
#define PREAMBLE_CASE(name, edit, fix, code, substr)        \
    Test(container, name)                                   \
    {                                                       \
        tb *b = std_tb();                                   \
        size_t len;                                         \
        uint8_t *buf = tb_build(b, &len);                   \
        buf = realloc(buf, len + 64);                       \
        edit;                                               \
        if (fix) fix_preamble(buf);                         \
        expect_fail(buf, len, code, substr);                \
        free(buf);                                          \
        tb_free(b);                                         \
    }

PREAMBLE_CASE(bad_magic, buf[3] = 'Y', 1, MIXQ_E_FORMAT, "not a mixq container")
PREAMBLE_CASE(major_2, put16(buf + 8, 2), 1, MIXQ_E_UNSUPPORTED,
              "format version 2 is newer than this mixq supports; upgrade mixq")
PREAMBLE_CASE(major_2_unsummed, put16(buf + 8, 2), 0, MIXQ_E_UNSUPPORTED, "upgrade mixq")
PREAMBLE_CASE(major_0, put16(buf + 8, 0), 1, MIXQ_E_FORMAT, "format version 0")
PREAMBLE_CASE(flags_set, put32(buf + 12, 4), 1, MIXQ_E_UNSUPPORTED, "flags")
PREAMBLE_CASE(data_offset_wrong, put64(buf + 16, 128), 1, MIXQ_E_FORMAT, "data_offset")
PREAMBLE_CASE(data_length_unaligned, put64(buf + 24, get64(buf + 24) + 1); put64(buf + 32, get64(buf + 32) + 1), 1,
              MIXQ_E_FORMAT, "multiple of 64")
PREAMBLE_CASE(data_length_overflow, put64(buf + 24, UINT64_MAX - 63), 1, MIXQ_E_FORMAT, "header_offset")
PREAMBLE_CASE(header_offset_wrong, put64(buf + 32, get64(buf + 32) + 64), 1, MIXQ_E_FORMAT, "header_offset")
PREAMBLE_CASE(header_beyond_file, put64(buf + 40, get64(buf + 40) + 1000), 1, MIXQ_E_FORMAT,
              "beyond the end of the file")
PREAMBLE_CASE(header_length_zero, put64(buf + 40, 0), 1, MIXQ_E_FORMAT, "header_length 0")
PREAMBLE_CASE(header_length_huge, put64(buf + 40, (uint64_t)256 * 1024 * 1024 + 1), 1, MIXQ_E_FORMAT,
              "header_length")
PREAMBLE_CASE(header_length_max, put64(buf + 40, UINT64_MAX), 1, MIXQ_E_FORMAT, "header_length")
PREAMBLE_CASE(trailing_bytes, buf[len] = 0; len += 1, 0, MIXQ_E_FORMAT, "1 unexpected byte(s) after the header")
PREAMBLE_CASE(truncated, len -= 1, 0, MIXQ_E_FORMAT, "beyond the end of the file")
PREAMBLE_CASE(preamble_checksum, buf[57] ^= 0x10, 0, MIXQ_E_CHECKSUM, "preamble")
PREAMBLE_CASE(preamble_field_flip, buf[20] ^= 0x01, 0, MIXQ_E_CHECKSUM, "preamble: checksum mismatch")
PREAMBLE_CASE(header_checksum_byte, buf[len - 2] ^= 0x01, 0, MIXQ_E_CHECKSUM, "header")
PREAMBLE_CASE(header_checksum_stored, buf[50] ^= 0x01, 1, MIXQ_E_CHECKSUM, "header (bytes")

Test(container, empty_tiny_missing_dir)
{
    expect_fail((const uint8_t *)"", 0, MIXQ_E_FORMAT, "empty");
    expect_fail((const uint8_t *)"\x89MXQ\r\n\x1a\n", 8, MIXQ_E_FORMAT, "too small");
    uint8_t z[63] = {0};
    expect_fail(z, sizeof z, MIXQ_E_FORMAT, "too small");
    mixq_error err;
    char *p = ts_path(tmpdir, "missing.mxq");
    cr_assert_null(mixq_open(p, 0, &err));
    cr_assert_eq(err.code, MIXQ_E_IO);
    cr_assert(strstr(err.message, "missing.mxq"), "%s", err.message);
    free(p);
    cr_assert_null(mixq_open(tmpdir, 0, &err));
    cr_assert_eq(err.code, MIXQ_E_IO);
    cr_assert_null(mixq_open(NULL, 0, &err));
    cr_assert_eq(err.code, MIXQ_E_INVALID_ARG);
    uint8_t junk[100];
    memset(junk, 'A', sizeof junk);
    expect_fail(junk, sizeof junk, MIXQ_E_FORMAT, "bad magic");
    mixq_close(NULL);
}

/* ---------------------------------------------------------------------- */
/* JSON header rules                                                       */
/* ---------------------------------------------------------------------- */

#define HDR(s) s, sizeof(s) - 1

Test(container, json_syntax)
{
    expect_fail_hdr(HDR("not json"), MIXQ_E_FORMAT, "not valid JSON");
    expect_fail_hdr(HDR("[]"), MIXQ_E_FORMAT, "not a JSON object");
    expect_fail_hdr(HDR("\"mixq\""), MIXQ_E_FORMAT, "JSON");
    expect_fail_hdr(HDR("{} {}"), MIXQ_E_FORMAT, "not valid JSON");
    expect_fail_hdr(HDR("{}x"), MIXQ_E_FORMAT, "not valid JSON");
    expect_fail_hdr(HDR("{\"format\":\"mixq\""), MIXQ_E_FORMAT, "not valid JSON");
    expect_fail_hdr(HDR("\xEF\xBB\xBF{}"), MIXQ_E_FORMAT, "not valid JSON");
    expect_fail_hdr(HDR("{\"format\":\"\xff\"}"), MIXQ_E_FORMAT, "not valid JSON");
    expect_fail_hdr(HDR("{\"a\":1}\0"), MIXQ_E_FORMAT, "not valid JSON");
    expect_fail_hdr(HDR("{\"format\":\"mixq\",\"format\":\"mixq\"}"), MIXQ_E_FORMAT, "duplicate");
    expect_fail_hdr(HDR("{\"format\":\"mixq\",\"format_version\":1,\"alignment\":64,\"metadata\":{},\"tensors\":"
                        "[{\"name\":\"a\\u0000b\"}]}"),
                    MIXQ_E_FORMAT, "not valid JSON");
    expect_fail_hdr(HDR("{\"format\":\"mixq\",\"format_version\":1,\"alignment\":64,\"metadata\":{},\"tensors\":"
                        "[{\"name\":\"a\",\"shape\":[99999999999999999999]}]}"),
                    MIXQ_E_FORMAT, "not valid JSON");
    expect_fail_hdr(HDR("{\"format\":\"mixq\",\"format_version\":1,\"alignment\":64,\"metadata\":{},\"tensors\":[5]}"),
                    MIXQ_E_FORMAT, "tensor #0: entry must be an object");
    /* deep nesting must not crash */
    char deep[20010];
    memset(deep, '[', 20000);
    expect_fail_hdr(deep, 20000, MIXQ_E_FORMAT, "not valid JSON");
}

Test(container, minimal_header_ok)
{
    const char h[] = "{\"format\":\"mixq\",\"format_version\":1,\"alignment\":64,\"metadata\":{},\"tensors\":[]}";
    size_t len;
    uint8_t *buf = mk_file(NULL, 0, h, sizeof h - 1, &len);
    mixq_error err;
    mixq_file *f = open_bytes(buf, len, MIXQ_OPEN_VERIFY, &err);
    cr_assert_not_null(f, "%s", err.message);
    mixq_close(f);
    free(buf);
}

Test(container, top_level_fields)
{
    const char *keys[] = {"format", "format_version", "alignment", "metadata", "tensors"};
    for (size_t i = 0; i < 5; i++) {
        tb *b = std_tb();
        json_object_del(b->root, keys[i]);
        char want[64];
        snprintf(want, sizeof want, "key \"%s\" is missing", keys[i]);
        expect_fail_tb(b, MIXQ_E_FORMAT, want);
    }
    json_t *wrong[] = {json_integer(1), json_string("1"), json_string("64"), json_array(), json_object()};
    for (size_t i = 0; i < 5; i++) {
        tb *b = std_tb();
        json_object_set_new(b->root, keys[i], wrong[i]);
        char want[64];
        snprintf(want, sizeof want, "\"%s\" must be", keys[i]);
        expect_fail_tb(b, MIXQ_E_FORMAT, want);
    }
    tb *b = std_tb();
    json_object_set_new(b->root, "format", json_string("gguf"));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"format\" must be \"mixq\"");
    b = std_tb();
    json_object_set_new(b->root, "format_version", json_integer(2));
    expect_fail_tb(b, MIXQ_E_FORMAT, "format_version 2");
    b = std_tb();
    json_object_set_new(b->root, "format_version", json_real(1.0));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"format_version\" must be an integer");
    b = std_tb();
    json_object_set_new(b->root, "alignment", json_integer(32));
    expect_fail_tb(b, MIXQ_E_FORMAT, "alignment 32");
}

Test(container, metadata_types)
{
    tb *b = std_tb();
    json_object_set_new(b->meta, "mixq_version", json_integer(1));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"mixq_version\" must be a string");
    b = std_tb();
    json_object_set_new(b->meta, "source_metadata", json_array());
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"source_metadata\" must be an object");
    b = std_tb();
    json_object_set_new(json_object_get(b->meta, "source_metadata"), "n", json_integer(3));
    expect_fail_tb(b, MIXQ_E_FORMAT, "source_metadata[\"n\"] must be a string");
    b = std_tb();
    json_object_set_new(b->meta, "source_files", json_pack("[{s:s}]", "name", "x"));
    expect_fail_tb(b, MIXQ_E_FORMAT, "key \"size\" is missing");
    b = std_tb();
    json_object_set_new(b->meta, "source_files", json_pack("[i]", 3));
    expect_fail_tb(b, MIXQ_E_FORMAT, "source_files[0] must be an object");
    b = std_tb();
    json_object_set_new(json_object_get(b->meta, "options"), "group_size", json_string("64"));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"group_size\" must be an integer");
    b = std_tb();
    json_object_set_new(json_object_get(b->meta, "options"), "quantize_1d", json_integer(0));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"quantize_1d\" must be a boolean");
}

Test(container, entry_fields_missing_or_wrong_type)
{
    const char *keys[] = {"name", "shape", "source_dtype", "quant_type", "group_size",
                          "symmetric", "offset", "length", "sections", "xxh3"};
    for (size_t i = 0; i < 10; i++) {
        tb *b = std_tb();
        json_object_del(entry(b, 2), keys[i]);
        char want[64];
        snprintf(want, sizeof want, "key \"%s\" is missing", keys[i]);
        expect_fail_tb(b, MIXQ_E_FORMAT, want);
    }
    for (size_t i = 0; i < 10; i++) {
        tb *b = std_tb();
        json_t *v = (i == 0 || i == 2 || i == 3 || i == 9) ? json_integer(5)
                  : (i == 5) ? json_integer(1)
                  : (i == 1 || i == 8) ? json_string("x")
                  : json_string("5");
        json_object_set_new(entry(b, 2), keys[i], v);
        char want[64];
        snprintf(want, sizeof want, "\"%s\" must be", keys[i]);
        expect_fail_tb(b, MIXQ_E_FORMAT, want);
    }
    tb *b = std_tb();
    json_object_set_new(entry(b, 2), "offset", json_integer(-64));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"offset\" must be an integer >= 0");
    b = std_tb();
    json_object_set_new(entry(b, 2), "group_size", json_real(32.0));
    expect_fail_tb(b, MIXQ_E_FORMAT, "tensor \"w.int8\": \"group_size\" must be an integer");
}

Test(container, names)
{
    tb *b = std_tb();
    json_object_set_new(entry(b, 3), "name", json_string("w.f32"));
    expect_fail_tb(b, MIXQ_E_FORMAT, "names must be unique");
    b = std_tb();
    json_object_set_new(entry(b, 1), "name", json_string(""));
    expect_fail_tb(b, MIXQ_E_FORMAT, "tensor #1: \"name\" is empty");
    /* a hostile name with a newline is shown on one line */
    b = std_tb();
    json_object_set_new(entry(b, 0), "name", json_string("evil\nname"));
    json_object_set_new(entry(b, 0), "quant_type", json_string("q\n9"));
    expect_fail_tb(b, MIXQ_E_UNSUPPORTED, "tensor \"evil?name\": unsupported quant_type \"q?9\"");
    /* a very long name is shortened at a character boundary; the message keeps its tail */
    char longname[601];
    for (int i = 0; i < 300; i++) memcpy(longname + 2 * i, "\xc3\xa9", 2);
    longname[600] = '\0';
    b = std_tb();
    json_object_set_new(entry(b, 0), "name", json_string(longname));
    json_object_set_new(entry(b, 0), "quant_type", json_string("int3"));
    expect_fail_tb(b, MIXQ_E_UNSUPPORTED, "\xc3\xa9...\": unsupported quant_type \"int3\"");
}

Test(container, shapes)
{
    tb *b = std_tb();
    json_object_set_new(entry(b, 0), "shape", json_pack("[i,i,i,i,i,i,i,i,i]", 1, 1, 1, 1, 1, 1, 1, 2, 3));
    expect_fail_tb(b, MIXQ_E_FORMAT, "shape has 9 dims; at most 8");
    b = std_tb();
    json_object_set_new(entry(b, 0), "shape", json_pack("[I,I,i]", (json_int_t)4294967296LL,
                                                        (json_int_t)4294967296LL, 16));
    expect_fail_tb(b, MIXQ_E_FORMAT, "overflows");
    b = std_tb();
    json_object_set_new(entry(b, 0), "shape", json_pack("[I,I,i]", (json_int_t)4294967296LL,
                                                        (json_int_t)4294967296LL, 0));
    /* a zero dimension makes any shape empty, as in safetensors (#16): no overflow, but it stores 0 bytes */
    expect_fail_tb(b, MIXQ_E_FORMAT, "needs 0 bytes for this shape");
    b = std_tb();
    json_object_set_new(entry(b, 0), "shape", json_pack("[i,i]", 2, -3));
    expect_fail_tb(b, MIXQ_E_FORMAT, "shape[1] must be an integer >= 0");
    b = std_tb();
    json_object_set_new(entry(b, 0), "shape", json_pack("[f,i]", 2.0, 3));
    expect_fail_tb(b, MIXQ_E_FORMAT, "shape[0] must be an integer >= 0");
    b = std_tb();
    json_object_set_new(entry(b, 0), "shape", json_pack("[s]", "6"));
    expect_fail_tb(b, MIXQ_E_FORMAT, "shape[0]");
    /* a shape that does not match the stored length */
    b = std_tb();
    json_object_set_new(entry(b, 0), "shape", json_pack("[i,i]", 3, 3));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"length\" is 24 but quant_type f32 needs 36 bytes for this shape");
    /* a huge (non-overflowing) shape needs a huge layout: the lengths disagree, nothing is read */
    b = std_tb();
    json_object_set_new(entry(b, 0), "shape", json_pack("[I,I]", (json_int_t)1 << 40, (json_int_t)1 << 20));
    expect_fail_tb(b, MIXQ_E_FORMAT, "w.f32");
}

Test(container, types)
{
    tb *b = std_tb();
    json_object_set_new(entry(b, 2), "quant_type", json_string("int3"));
    expect_fail_tb(b, MIXQ_E_UNSUPPORTED, "t.mxq: tensor \"w.int8\": unsupported quant_type \"int3\" (written by a newer mixq?)");
    b = std_tb();
    json_object_set_new(entry(b, 0), "source_dtype", json_string("F128"));
    expect_fail_tb(b, MIXQ_E_FORMAT, "unknown source_dtype \"F128\"");
    b = std_tb();
    json_object_set_new(entry(b, 0), "source_dtype", json_string("f32"));
    expect_fail_tb(b, MIXQ_E_FORMAT, "unknown source_dtype");
    b = std_tb();
    json_object_set_new(entry(b, 5), "symmetric", json_true());
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"symmetric\" is true but quant_type int4 is asymmetric");
    b = std_tb();
    json_object_set_new(entry(b, 2), "symmetric", json_false());
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"symmetric\" is false");
    b = std_tb();
    json_object_set_new(entry(b, 0), "symmetric", json_false());
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"symmetric\" is false");
    /* raw with a different source dtype changes the layout */
    b = std_tb();
    json_object_set_new(entry(b, 6), "source_dtype", json_string("I32"));
    expect_fail_tb(b, MIXQ_E_FORMAT, "tensor \"b.raw\": \"length\" is 6 but quant_type raw needs 12 bytes");
}

Test(container, group_sizes)
{
    struct { int tensor; json_int_t gs; } cases[] = {
        {5, 0}, {5, 48}, {5, 8}, {5, 512}, {2, 16}, {2, 33}, {0, 32}, {6, 1}, {2, (json_int_t)1 << 32},
        {2, (json_int_t)1 << 62},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tb *b = std_tb();
        json_object_set_new(entry(b, (size_t)cases[i].tensor), "group_size", json_integer(cases[i].gs));
        char want[64];
        snprintf(want, sizeof want, "group_size %lld is not allowed", (long long)cases[i].gs);
        expect_fail_tb(b, MIXQ_E_FORMAT, want);
    }
    /* an allowed but different group size changes the layout */
    tb *b = std_tb();
    json_object_set_new(entry(b, 2), "group_size", json_integer(64));
    expect_fail_tb(b, MIXQ_E_FORMAT, "tensor \"w.int8\"");
}

Test(container, offsets)
{
    tb *b = std_tb();
    json_object_set_new(entry(b, 0), "offset", json_integer(128));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"offset\" is 128 but must be 64");
    b = std_tb(); /* hole */
    json_object_set_new(entry(b, 1), "offset", json_integer(192));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"offset\" is 192 but must be 128");
    b = std_tb(); /* overlap */
    json_object_set_new(entry(b, 1), "offset", json_integer(64));
    expect_fail_tb(b, MIXQ_E_FORMAT, "tensor \"w.f16\": \"offset\" is 64 but must be 128");
    b = std_tb(); /* unaligned */
    json_object_set_new(entry(b, 1), "offset", json_integer(88));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"offset\" is 88");
    b = std_tb();
    json_object_set_new(entry(b, 1), "offset", json_integer(INT64_MAX));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"offset\" is");
    b = std_tb(); /* data region longer than the tensors need */
    b->data_adjust = 64;
    expect_fail_tb(b, MIXQ_E_FORMAT, "data_length");
    b = std_tb(); /* data region shorter than the tensors need */
    b->data_adjust = -64;
    expect_fail_tb(b, MIXQ_E_FORMAT, "extend beyond the data region");
    b = tb_new(); /* no tensors but a data region */
    b->data_adjust = 64;
    expect_fail_tb(b, MIXQ_E_FORMAT, "data_length is 64 but the tensors need 0");
}

Test(container, lengths_and_sections)
{
    tb *b = std_tb();
    json_object_set_new(entry(b, 2), "length", json_integer(137));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"length\" is 137");
    b = std_tb();
    json_object_del(json_object_get(entry(b, 2), "sections"), "scales");
    expect_fail_tb(b, MIXQ_E_FORMAT, "section \"scales\" is missing");
    b = std_tb();
    json_object_set_new(json_object_get(entry(b, 2), "sections"), "mins", json_pack("{s:i,s:i}", "offset", 192,
                                                                                    "length", 0));
    expect_fail_tb(b, MIXQ_E_FORMAT, "unexpected section \"mins\"");
    b = std_tb();
    json_object_set_new(json_object_get(entry(b, 0), "sections"), "extra", json_pack("{s:i,s:i}", "offset", 0,
                                                                                     "length", 0));
    expect_fail_tb(b, MIXQ_E_FORMAT, "unexpected section \"extra\"");
    b = std_tb();
    json_object_set_new(json_object_get(entry(b, 2), "sections"), "scales", json_pack("{s:i,s:i}", "offset", 80,
                                                                                      "length", 8));
    expect_fail_tb(b, MIXQ_E_FORMAT, "section \"scales\" has offset 80, length 8; the layout of this shape and type needs offset 128, length 8");
    b = std_tb();
    json_object_set_new(json_object_get(entry(b, 2), "sections"), "scales", json_pack("{s:i,s:i}", "offset", 128,
                                                                                      "length", 4));
    expect_fail_tb(b, MIXQ_E_FORMAT, "has offset 128, length 4");
    b = std_tb();
    json_object_set_new(json_object_get(entry(b, 5), "sections"), "codes", json_integer(0));
    expect_fail_tb(b, MIXQ_E_FORMAT, "section \"codes\" must be an object");
    b = std_tb();
    json_object_set_new(json_object_get(entry(b, 5), "sections"), "mins", json_pack("{s:i}", "offset", 128));
    expect_fail_tb(b, MIXQ_E_FORMAT, "section \"mins\": key \"length\" is missing");
    b = std_tb();
    json_object_set_new(json_object_get(entry(b, 5), "sections"), "mins", json_pack("{s:s,s:i}", "offset", "128",
                                                                                    "length", 12));
    expect_fail_tb(b, MIXQ_E_FORMAT, "\"offset\" must be an integer");
    b = std_tb(); /* an empty tensor's sections are all at 0 */
    json_object_set_new(json_object_get(entry(b, 8), "sections"), "mins", json_pack("{s:i,s:i}", "offset", 64,
                                                                                    "length", 0));
    expect_fail_tb(b, MIXQ_E_FORMAT, "tensor \"empty4\": section \"mins\"");
}

Test(container, xxh3_field)
{
    const char *bad[] = {"0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "0x23456789abcdef",
                         "", "0123456789abcdeg", " 123456789abcdef"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tb *b = std_tb();
        json_object_set_new(entry(b, 1), "xxh3", json_string(bad[i]));
        expect_fail_tb(b, MIXQ_E_FORMAT, "16 lowercase hex digits");
    }
}

/* ---------------------------------------------------------------------- */
/* Verification                                                            */
/* ---------------------------------------------------------------------- */

static size_t tensor_offset(tb *b, size_t i)
{
    return (size_t)json_integer_value(json_object_get(entry(b, i), "offset"));
}

Test(container, verify_tensor_bit_flip)
{
    tb *b = std_tb();
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    size_t off = tensor_offset(b, T_I8);
    buf[off + 41] ^= 0x08;
    mixq_error err;
    mixq_file *f = open_bytes(buf, len, 0, &err); /* opening does not read tensor data */
    cr_assert_not_null(f, "%s", err.message);
    cr_assert_eq(mixq_verify(f, &err), MIXQ_E_CHECKSUM);
    char want[128];
    snprintf(want, sizeof want, "t.mxq: tensor \"w.int8\" (bytes %zu..%zu): checksum mismatch (stored %016" PRIx64,
             off, off + 136, (uint64_t)XXH3_64bits(t_i8, 136));
    cr_assert(strstr(err.message, want), "%s\nwant: %s", err.message, want);
    cr_assert(strstr(err.message, "the file is corrupt; re-create it"), "%s", err.message);
    mixq_close(f);
    cr_assert_null(mixq_open(fpath, MIXQ_OPEN_VERIFY, &err));
    cr_assert_eq(err.code, MIXQ_E_CHECKSUM);
    cr_assert(strstr(err.message, "tensor \"w.int8\""), "%s", err.message);
    free(buf);
    tb_free(b);
}

/* Opens buf (which must open) and expects verify to report padding at `at`. */
static void expect_padding(const uint8_t *buf, size_t len, size_t at)
{
    mixq_error err;
    mixq_file *f = open_bytes(buf, len, 0, &err);
    cr_assert_not_null(f, "%s", err.message);
    cr_assert_eq(mixq_verify(f, &err), MIXQ_E_CHECKSUM);
    char want[64];
    snprintf(want, sizeof want, "t.mxq: padding at offset %zu is not zero", at);
    cr_assert(strstr(err.message, want), "%s\nwant: %s", err.message, want);
    mixq_close(f);
    cr_assert_null(mixq_open(fpath, MIXQ_OPEN_VERIFY, &err));
    cr_assert_eq(err.code, MIXQ_E_CHECKSUM);
}

Test(container, verify_padding_between_tensors)
{
    tb *b = std_tb();
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    buf[64 + 24 + 5] = 1; /* after w.f32 (24 bytes at 64) */
    expect_padding(buf, len, 64 + 24 + 5);
    free(buf);
    tb_free(b);
}

Test(container, verify_padding_between_sections)
{
    /* The tensor checksum covers the non-zero padding; only the zero rule catches it. */
    fill_bytes();
    tb *b = tb_new();
    uint8_t bytes[136];
    memcpy(bytes, t_i8, sizeof bytes);
    bytes[100] = 0x80;
    tb_add(b, "w.int8", "[2,40]", "BF16", "int8", 32, "codes=0+80,scales=128+8", bytes, 136);
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    expect_padding(buf, len, 64 + 100);
    free(buf);
    tb_free(b);
}

Test(container, verify_padding_at_end)
{
    tb *b = std_tb();
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    size_t hoff = (size_t)get64(buf + 32);
    buf[hoff - 1] = 0xff;
    expect_padding(buf, len, hoff - 1);
    free(buf);
    tb_free(b);
}

Test(container, verify_order_checksum_before_padding)
{
    tb *b = std_tb();
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    buf[64 + 30] = 1;                          /* padding after w.f32 */
    buf[tensor_offset(b, T_BF16)] ^= 1;        /* and the last tensor's data */
    mixq_error err;
    mixq_file *f = open_bytes(buf, len, 0, &err);
    cr_assert_not_null(f);
    cr_assert_eq(mixq_verify(f, &err), MIXQ_E_CHECKSUM);
    cr_assert(strstr(err.message, "tensor \"w.bf16\""), "%s", err.message);
    mixq_close(f);
    free(buf);
    tb_free(b);
}

Test(container, every_bit_flip_is_caught, .timeout = 240)
{
    fill_bytes();
    tb *b = tb_new();
    json_object_clear(b->meta);
    tb_add(b, "a", "[2,3]", "F32", "f32", 0, "data=0+24", t_f32, 24);
    tb_add(b, "q", "[2,37]", "F16", "int4", 16, "codes=0+38,scales=64+12,mins=128+12", t_i4, 140);
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    mixq_error err;
    mixq_file *f = open_bytes(buf, len, MIXQ_OPEN_VERIFY, &err);
    cr_assert_not_null(f, "%s", err.message);
    mixq_close(f);
    for (size_t bit = 0; bit < len * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        f = open_bytes(buf, len, 0, &err);
        if (f) {
            mixq_status s = mixq_verify(f, &err);
            cr_assert_neq(s, MIXQ_OK, "flipping bit %zu (byte %zu) went unnoticed", bit, bit / 8);
            cr_assert_eq(s, MIXQ_E_CHECKSUM);
            mixq_close(f);
        }
        cr_assert_neq(err.code, MIXQ_OK);
        cr_assert(err.message[0] != '\0' && strchr(err.message, '\n') == NULL);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    free(buf);
    tb_free(b);
}

Test(container, open_rejects_unknown_flags)
{
    tb *b = tb_new();
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    mixq_error err;
    cr_assert_null(open_bytes(buf, len, 0x80, &err));
    cr_assert_eq(err.code, MIXQ_E_INVALID_ARG);
    free(buf);
    tb_free(b);
}

/* Reads every tensor of an open file in full through every accessor (must stay inside the mapping). */
static void read_everything(mixq_file *f)
{
    mixq_error err;
    for (size_t i = 0; i < mixq_tensor_count(f); i++) {
        const mixq_tensor *t = mixq_tensor_at(f, i);
        mixq_tensor_info in;
        mixq_tensor_get_info(t, &in);
        cr_assert(in.n_elements < (1u << 20));
        float *o = malloc((size_t)in.n_elements * sizeof *o + 1);
        uint16_t *h = malloc((size_t)in.n_elements * sizeof *h + 1);
        cr_assert_eq(mixq_dequantize_f32(f, t, 0, in.rows, o, &err), MIXQ_OK, "%s", err.message);
        cr_assert_eq(mixq_dequantize_f16(f, t, 0, in.rows, h, &err), MIXQ_OK, "%s", err.message);
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
            mixq_section s;
            if (mixq_tensor_section(t, (mixq_section_kind)k, &s) != MIXQ_OK) continue;
            volatile uint8_t sum = 0;
            for (uint64_t j = 0; j < s.size; j++) sum ^= ((const uint8_t *)s.data)[j];
            (void)sum;
        }
        free(o);
        free(h);
    }
    mixq_verify(f, &err);
}

Test(container, hostile_header_edits_with_valid_checksums, .timeout = 240)
{
    /* Every header byte replaced by a few characters, checksums recomputed, so the parser itself is attacked. */
    tb *b = std_tb();
    size_t len;
    uint8_t *buf = tb_build(b, &len);
    size_t hoff = (size_t)get64(buf + 32);
    const char repl[] = "09\"}]-1";
    int opened = 0;
    for (size_t p = hoff; p < len; p++) {
        uint8_t orig = buf[p];
        for (size_t r = 0; r < sizeof repl - 1; r++) {
            if ((uint8_t)repl[r] == orig) continue;
            buf[p] = (uint8_t)repl[r];
            put64(buf + 48, XXH3_64bits(buf + hoff, len - hoff));
            fix_preamble(buf);
            mixq_error err;
            mixq_file *f = open_bytes(buf, len, 0, &err);
            if (f) {
                opened++;
                read_everything(f);
                mixq_close(f);
            } else {
                cr_assert(err.code == MIXQ_E_FORMAT || err.code == MIXQ_E_UNSUPPORTED, "%s", err.message);
                cr_assert(strchr(err.message, '\n') == NULL);
            }
        }
        buf[p] = orig;
    }
    cr_assert(opened > 0); /* e.g. edits inside metadata strings */
    free(buf);
    tb_free(b);
}
