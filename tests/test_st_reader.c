/* test_st_reader.c - validation of single safetensors files (st_open_buffer, st_open). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "reader/st_reader.h"
#include "test_support.h"

/* A crafted file held in memory while a model points into it. */
typedef struct crafted {
    uint8_t *buf;
    size_t len;
    st_model *model;
    mixq_error err;
    mixq_status st;
} crafted;

/* Builds safetensors bytes from a header and data_len pattern bytes and parses them. */
static crafted parse(const char *hdr, size_t data_len)
{
    crafted c;
    memset(&c, 0, sizeof c);
    c.buf = ts_safetensors(hdr, NULL, data_len, &c.len);
    c.st = st_open_buffer("model.safetensors", c.buf, c.len, &c.model, &c.err);
    return c;
}

static void done(crafted *c)
{
    st_close(c->model);
    free(c->buf);
}

/* Asserts that a parse failed with code and a one-line message containing want. */
static void expect_fail_raw(const uint8_t *buf, size_t len, mixq_status code, const char *want)
{
    st_model *m = (st_model *)0x1;
    mixq_error e;
    mixq_status st = st_open_buffer("model.safetensors", buf, len, &m, &e);
    cr_assert_eq(st, code, "status %d (%s), want %d", st, e.message, code);
    cr_assert_eq(e.code, code);
    cr_assert_null(m);
    cr_assert(strstr(e.message, want) != NULL, "message \"%s\" lacks \"%s\"", e.message, want);
    cr_assert(strncmp(e.message, "model.safetensors: ", 19) == 0, "message \"%s\" does not name the file", e.message);
    cr_assert_null(strchr(e.message, '\n'), "message has several lines: %s", e.message);
}

static void expect_fail(const char *hdr, size_t data_len, mixq_status code, const char *want)
{
    size_t len;
    uint8_t *buf = ts_safetensors(hdr, NULL, data_len, &len);
    expect_fail_raw(buf, len, code, want);
    free(buf);
}

/* ---------------------------------------------------------------------- */
/* One test per validation rule                                           */
/* ---------------------------------------------------------------------- */

Test(st_reader, rejects_empty_file)
{
    uint8_t b = 0;
    expect_fail_raw(&b, 0, MIXQ_E_FORMAT, "file is empty");
}

Test(st_reader, rejects_file_shorter_than_8_bytes)
{
    uint8_t b[5] = {2, 0, 0, 0, 0};
    expect_fail_raw(b, sizeof b, MIXQ_E_FORMAT, "only 5 bytes, too short");
}

Test(st_reader, rejects_header_over_limit)
{
    uint8_t b[16] = {0};
    uint64_t n = ST_MAX_HEADER + 1ull;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(n >> (8 * i));
    expect_fail_raw(b, sizeof b, MIXQ_E_FORMAT, "header length 100000001 exceeds the limit of 100000000 bytes");
}

Test(st_reader, rejects_header_length_beyond_file)
{
    size_t len;
    uint8_t *buf = ts_safetensors("{}", NULL, 0, &len);
    buf[0] = 0x3f; /* 999999 = 0x0f423f */
    buf[1] = 0x42;
    buf[2] = 0x0f;
    expect_fail_raw(buf, len, MIXQ_E_FORMAT, "header length 999999 exceeds the file size 10");
    free(buf);
}

Test(st_reader, rejects_huge_u64_header_length)
{
    uint8_t b[16];
    memset(b, 0xff, sizeof b);
    expect_fail_raw(b, sizeof b, MIXQ_E_FORMAT, "exceeds the limit");
}

Test(st_reader, rejects_invalid_utf8)
{
    expect_fail("{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 1, MIXQ_E_FORMAT,
                "header is not valid UTF-8 (byte 3 of the header)");
}

Test(st_reader, rejects_overlong_utf8_and_surrogates)
{
    expect_fail("{\"\xc0\xaf\":1}", 0, MIXQ_E_FORMAT, "not valid UTF-8");
    expect_fail("{\"\xed\xa0\x80\":1}", 0, MIXQ_E_FORMAT, "not valid UTF-8");
}

Test(st_reader, rejects_malformed_json)
{
    expect_fail("{\"a\":{\"dtype\":\"U8\",", 0, MIXQ_E_FORMAT, "header is not valid JSON");
}

Test(st_reader, rejects_empty_header)
{
    expect_fail("", 0, MIXQ_E_FORMAT, "header is not valid JSON");
}

Test(st_reader, rejects_header_that_is_not_an_object)
{
    expect_fail("[1, 2]", 0, MIXQ_E_FORMAT, "header must be a JSON object");
    expect_fail("42", 0, MIXQ_E_FORMAT, "header is not valid JSON");
}

Test(st_reader, rejects_non_whitespace_padding)
{
    expect_fail("{}xx", 0, MIXQ_E_FORMAT, "header is not valid JSON");
}

Test(st_reader, rejects_nul_padding)
{
    /* The reference's serde_json rejects trailing NUL bytes too. */
    size_t len;
    uint8_t *buf = ts_safetensors("{}  ", NULL, 0, &len);
    buf[10] = 0;
    buf[11] = 0;
    expect_fail_raw(buf, len, MIXQ_E_FORMAT, "header is not valid JSON");
    free(buf);
}

Test(st_reader, rejects_duplicate_names)
{
    expect_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                2, MIXQ_E_FORMAT, "duplicate object key");
}

Test(st_reader, rejects_escaped_nul_in_name)
{
    expect_fail("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, MIXQ_E_FORMAT,
                "header is not valid JSON: NUL byte in object key");
}

Test(st_reader, rejects_escaped_nul_in_metadata_value)
{
    expect_fail("{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, MIXQ_E_FORMAT,
                "header is not valid JSON: \\u0000 is not allowed");
}

Test(st_reader, rejects_raw_control_character_in_name)
{
    expect_fail("{\"a\nb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, MIXQ_E_FORMAT,
                "header is not valid JSON");
}

Test(st_reader, rejects_integer_too_big_for_json_parser)
{
    expect_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 0,
                MIXQ_E_FORMAT, "too big integer");
}

Test(st_reader, rejects_metadata_not_object)
{
    expect_fail("{\"__metadata__\":[\"a\"]}", 0, MIXQ_E_FORMAT, "__metadata__ must be an object of strings, not an array");
}

Test(st_reader, rejects_metadata_value_not_string)
{
    expect_fail("{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", 0, MIXQ_E_FORMAT,
                "__metadata__ value of \"n\" must be a string, not 3");
}

Test(st_reader, rejects_tensor_not_object)
{
    expect_fail("{\"w\":\"F32\"}", 0, MIXQ_E_FORMAT,
                "tensor \"w\": expected an object with dtype, shape and data_offsets, not a string");
}

Test(st_reader, rejects_missing_dtype)
{
    expect_fail("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MIXQ_E_FORMAT, "tensor \"w\": missing \"dtype\"");
}

Test(st_reader, rejects_missing_shape)
{
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, MIXQ_E_FORMAT, "tensor \"w\": missing \"shape\"");
}

Test(st_reader, rejects_missing_data_offsets)
{
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, MIXQ_E_FORMAT, "tensor \"w\": missing \"data_offsets\"");
}

Test(st_reader, rejects_dtype_not_string)
{
    expect_fail("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MIXQ_E_FORMAT,
                "tensor \"w\": dtype must be a string, not 4");
}

Test(st_reader, rejects_unknown_dtype)
{
    expect_fail("{\"w\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1, MIXQ_E_UNSUPPORTED,
                "tensor \"w\": unsupported dtype \"F4\"");
}

Test(st_reader, rejects_dtype_in_wrong_case)
{
    expect_fail("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MIXQ_E_UNSUPPORTED,
                "unsupported dtype \"f32\"");
}

Test(st_reader, rejects_shape_not_array)
{
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, MIXQ_E_FORMAT,
                "tensor \"w\": shape must be an array of non-negative integers, not 4");
}

Test(st_reader, rejects_negative_dimension)
{
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4, MIXQ_E_FORMAT,
                "tensor \"w\": shape dimension 1 is -1; dimensions must be non-negative integers");
}

Test(st_reader, rejects_fractional_dimension)
{
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,4]}}", 4, MIXQ_E_FORMAT,
                "shape dimension 0 is the real number 2.5;");
}

Test(st_reader, rejects_integral_real_dimension)
{
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, MIXQ_E_FORMAT,
                "shape dimension 0 is the real number 1.0;");
}

Test(st_reader, rejects_non_number_dimension)
{
    expect_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, MIXQ_E_FORMAT,
                "shape dimension 0 is a string;");
}

Test(st_reader, rejects_too_many_dimensions)
{
    expect_fail("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
                MIXQ_E_UNSUPPORTED, "tensor \"w\": shape has 9 dimensions; at most 8 are supported");
}

Test(st_reader, rejects_data_offsets_not_a_pair)
{
    expect_fail("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, MIXQ_E_FORMAT,
                "tensor \"w\": data_offsets must be an array [begin, end] of two non-negative integers");
}

Test(st_reader, rejects_negative_data_offset)
{
    expect_fail("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 1, MIXQ_E_FORMAT,
                "tensor \"w\": data_offsets begin is -1; offsets must be non-negative integers");
}

Test(st_reader, rejects_fractional_data_offset)
{
    expect_fail("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.5]}}", 1, MIXQ_E_FORMAT,
                "data_offsets end is the real number 1.5;");
}

Test(st_reader, rejects_offsets_ending_before_they_begin)
{
    expect_fail("{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, MIXQ_E_FORMAT,
                "tensor \"w\": data_offsets [4, 0] end before they begin");
}

Test(st_reader, rejects_size_mismatch)
{
    expect_fail("{\"x.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12, MIXQ_E_FORMAT,
                "model.safetensors: tensor \"x.weight\": data_offsets [0, 12] hold 12 bytes but shape [2, 2] of F32 needs 16");
}

Test(st_reader, rejects_size_overflow)
{
    expect_fail("{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
                MIXQ_E_FORMAT, "tensor \"w\": shape [4294967296, 4294967296] of F64 is too large (its size overflows 64 bits)");
    /* Elements fit in 64 bits but bytes do not. */
    expect_fail("{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8,
                MIXQ_E_FORMAT, "overflows 64 bits");
}

Test(st_reader, rejects_overlapping_tensors)
{
    expect_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
                6, MIXQ_E_FORMAT, "tensor \"b\": data_offsets [2, 6] overlap tensor \"a\" at [0, 4]");
}

Test(st_reader, rejects_gap_between_tensors)
{
    expect_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}",
                12, MIXQ_E_FORMAT, "tensor \"b\": data_offsets [8, 12] leave a gap of 4 unused bytes after tensor \"a\" (ends at 4)");
}

Test(st_reader, rejects_gap_at_start)
{
    expect_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 6, MIXQ_E_FORMAT,
                "tensor \"a\": data_offsets [2, 6] leave a gap of 2 unused bytes at the start of the data section");
}

Test(st_reader, rejects_trailing_data)
{
    expect_fail("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 7, MIXQ_E_FORMAT,
                "the data section holds 7 bytes but the tensors end at 4 (3 trailing bytes belong to no tensor)");
}

Test(st_reader, rejects_data_beyond_end_of_file)
{
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10, MIXQ_E_FORMAT,
                "tensor \"a\": data_offsets [0, 16] extend past the end of the file: the data section holds only 10 bytes");
}

Test(st_reader, rejects_data_with_no_tensors)
{
    expect_fail("{}", 3, MIXQ_E_FORMAT, "the data section holds 3 bytes but the tensors end at 0");
}

Test(st_reader, message_escapes_control_characters_in_names)
{
    expect_fail("{\"a\\nb\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1, MIXQ_E_FORMAT,
                "tensor \"a\\x0ab\": data_offsets [0, 1] hold 1 bytes");
}

Test(st_reader, truncation_at_every_length_fails_cleanly)
{
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}  ";
    size_t len;
    uint8_t *full = ts_safetensors(hdr, NULL, 22, &len);
    st_model *m = NULL;
    mixq_error e;
    cr_assert_eq(st_open_buffer("model.safetensors", full, len, &m, &e), MIXQ_OK, "%s", e.message);
    st_close(m);
    for (size_t cut = 0; cut < len; cut++) {
        /* A fresh exact-size copy, so ASan sees any read past the cut. */
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, full, cut);
        m = (st_model *)0x1;
        mixq_status st = st_open_buffer("model.safetensors", part, cut, &m, &e);
        cr_assert_eq(st, MIXQ_E_FORMAT, "cut at %zu: status %d (%s)", cut, st, e.message);
        cr_assert_null(m);
        cr_assert(strncmp(e.message, "model.safetensors: ", 19) == 0);
        free(part);
    }
    free(full);
}

Test(st_reader, null_arguments)
{
    mixq_error e;
    st_model *m;
    cr_assert_eq(st_open_buffer("x", NULL, 5, &m, &e), MIXQ_E_INVALID_ARG);
    cr_assert_eq(st_open_buffer("x", (const uint8_t *)"", 0, NULL, &e), MIXQ_E_INVALID_ARG);
    cr_assert_eq(st_open(NULL, &m, &e), MIXQ_E_INVALID_ARG);
    cr_assert_null(st_find(NULL, "a"));
    cr_assert_null(st_meta_get(NULL, "a"));
    st_close(NULL);
}

/* ---------------------------------------------------------------------- */
/* Files that must be accepted                                             */
/* ---------------------------------------------------------------------- */

Test(st_reader, reads_every_dtype)
{
    char hdr[4096] = "{";
    uint64_t off = 0;
    for (int d = 0; d < ST_DTYPE_COUNT; d++) {
        char one[160];
        uint64_t nb = 3ull * st_dtypes[d].size;
        snprintf(one, sizeof one, "%s\"t_%s\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[%llu,%llu]}",
                 d ? "," : "", st_dtypes[d].name, st_dtypes[d].name, (unsigned long long)off,
                 (unsigned long long)(off + nb));
        strcat(hdr, one);
        off += nb;
    }
    strcat(hdr, "}");
    crafted c = parse(hdr, off);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    cr_assert_eq(c.model->ntensors, ST_DTYPE_COUNT);
    for (int d = 0; d < ST_DTYPE_COUNT; d++) {
        char name[32];
        snprintf(name, sizeof name, "t_%s", st_dtypes[d].name);
        const st_tensor *t = st_find(c.model, name);
        cr_assert_not_null(t, "%s", name);
        cr_assert_eq(t->dtype, (st_dtype)d);
        cr_assert_eq(t->n_elements, 3);
        cr_assert_eq(t->nbytes, 3ull * st_dtypes[d].size);
        cr_assert_eq(t->ndim, 1);
        cr_assert_eq(t->shape[0], 3);
    }
    done(&c);
}

Test(st_reader, reads_scalar)
{
    crafted c = parse("{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    const st_tensor *t = st_find(c.model, "s");
    cr_assert_not_null(t);
    cr_assert_eq(t->ndim, 0);
    cr_assert_eq(t->n_elements, 1);
    cr_assert_eq(t->nbytes, 8);
    done(&c);
}

Test(st_reader, reads_zero_element_tensors)
{
    crafted c = parse("{\"z2\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[4,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"z1\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[4,4]},"
                      "\"z0\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}",
                      4);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    cr_assert_eq(c.model->ntensors, 4);
    const char *order[] = {"z0", "a", "z1", "z2"};
    for (size_t i = 0; i < 4; i++) cr_assert_str_eq(c.model->tensors[i].name, order[i]);
    const st_tensor *z = st_find(c.model, "z2");
    cr_assert_eq(z->n_elements, 0);
    cr_assert_eq(z->nbytes, 0);
    cr_assert_eq(z->ndim, 2);
    cr_assert_eq(st_find(c.model, "z0")->n_elements, 0);
    done(&c);
}

Test(st_reader, reads_empty_file_with_no_tensors)
{
    crafted c = parse("{}      ", 0);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    cr_assert_eq(c.model->ntensors, 0);
    cr_assert_null(st_find(c.model, "a"));
    done(&c);
}

Test(st_reader, reads_metadata_sorted)
{
    crafted c = parse("{\"__metadata__\":{\"format\":\"pt\",\"b\":\"2\",\"a\":\"\"},"
                      "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                      1);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    cr_assert_eq(c.model->nmeta, 3);
    cr_assert_str_eq(c.model->meta[0].key, "a");
    cr_assert_str_eq(c.model->meta[1].key, "b");
    cr_assert_str_eq(c.model->meta[2].key, "format");
    cr_assert_str_eq(st_meta_get(c.model, "format"), "pt");
    cr_assert_str_eq(st_meta_get(c.model, "a"), "");
    cr_assert_null(st_meta_get(c.model, "missing"));
    cr_assert_eq(c.model->ntensors, 1);
    cr_assert_null(st_find(c.model, "__metadata__"));
    done(&c);
}

Test(st_reader, accepts_null_metadata)
{
    crafted c = parse("{\"__metadata__\":null}", 0);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    cr_assert_eq(c.model->nmeta, 0);
    done(&c);
}

Test(st_reader, accepts_whitespace_padding)
{
    crafted c = parse(" \t\n{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}   \r\n\t ", 2);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    const st_tensor *t = st_find(c.model, "w");
    cr_assert_not_null(t);
    size_t hl = strlen(" \t\n{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}   \r\n\t ");
    cr_assert_eq(c.model->files[0].header_len, hl);
    cr_assert_eq(t->file_offset, 8 + hl);
    cr_assert_eq(t->data, c.buf + 8 + hl);
    done(&c);
}

Test(st_reader, ignores_unknown_keys_in_tensor_like_the_reference)
{
    crafted c = parse("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":[1]}}", 1);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    done(&c);
}

/* A tensor named "" is refused (the container format cannot hold it: #16 item 6); Unicode names are fine. */
Test(st_reader, refuses_empty_name_accepts_unicode_names)
{
    crafted c = parse("{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                      "\"gr\xc3\xbc\xc3\x9f\xe2\x82\xac\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                      2);
    cr_assert_eq(c.st, MIXQ_E_FORMAT, "%s", c.err.message);
    cr_assert(strstr(c.err.message, "empty name"), "%s", c.err.message);
    done(&c);
    c = parse("{\"gr\xc3\xbc\xc3\x9f\xe2\x82\xac\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    cr_assert_not_null(st_find(c.model, "gr\xc3\xbc\xc3\x9f\xe2\x82\xac"));
    done(&c);
}

Test(st_reader, orders_tensors_by_offset_and_finds_by_name)
{
    const char *hdr = "{\"m\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[6,14]},"
                      "\"z\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                      "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[6,6]},"
                      "\"d\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[6,6]},"
                      "\"a\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[14,22]}}";
    crafted c = parse(hdr, 22);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    const char *order[] = {"z", "d", "e", "m", "a"};
    const uint64_t begin[] = {0, 6, 6, 6, 14};
    uint64_t data0 = 8 + strlen(hdr);
    cr_assert_eq(c.model->ntensors, 5);
    for (size_t i = 0; i < 5; i++) {
        const st_tensor *t = &c.model->tensors[i];
        cr_assert_str_eq(t->name, order[i]);
        cr_assert_eq(t->file_offset, data0 + begin[i]);
        cr_assert_eq(t->data, c.buf + data0 + begin[i]);
        cr_assert_eq(t->file_index, 0);
        cr_assert_eq(st_find(c.model, order[i]), t);
    }
    const st_tensor *a = st_find(c.model, "a");
    cr_assert_eq(a->ndim, 2);
    cr_assert_eq(a->dtype, ST_I64);
    cr_assert_null(st_find(c.model, "b"));
    cr_assert_null(st_find(c.model, "zz"));
    cr_assert_null(st_find(c.model, ""));
    cr_assert_null(c.model->index_path);
    cr_assert_eq(c.model->nfiles, 1);
    cr_assert_eq(c.model->files[0].owns_map, 0);
    done(&c);
}

Test(st_reader, finds_among_many_tensors)
{
    size_t n = 300;
    char *hdr = malloc(n * 80 + 2);
    size_t o = 0;
    hdr[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(hdr + o, "%s\"layer.%03zu\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
                             i ? "," : "", (n - 1 - i), i, i + 1);
    hdr[o++] = '}';
    hdr[o] = 0;
    crafted c = parse(hdr, n);
    cr_assert_eq(c.st, MIXQ_OK, "%s", c.err.message);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "layer.%03zu", i);
        const st_tensor *t = st_find(c.model, name);
        cr_assert_not_null(t, "%s", name);
        cr_assert_str_eq(t->name, name);
        cr_assert_eq(t, &c.model->tensors[n - 1 - i]);
    }
    done(&c);
    free(hdr);
}

/* ---------------------------------------------------------------------- */
/* Files on disk                                                           */
/* ---------------------------------------------------------------------- */

Test(st_reader, opens_file_by_path_and_directory)
{
    char *dir = ts_tmpdir();
    char *p = ts_path(dir, "model.safetensors");
    size_t len;
    const uint8_t data[4] = {1, 2, 3, 4};
    uint8_t *buf = ts_safetensors("{\"w\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", data, 4, &len);
    ts_write_file(p, buf, len);

    const char *paths[] = {p, dir};
    for (int k = 0; k < 2; k++) {
        st_model *m = NULL;
        mixq_error e;
        cr_assert_eq(st_open(paths[k], &m, &e), MIXQ_OK, "%s", e.message);
        cr_assert_eq(m->nfiles, 1);
        cr_assert_eq(m->files[0].size, len);
        cr_assert_eq(m->files[0].owns_map, 1);
        cr_assert_null(m->index_path);
        const st_tensor *t = st_find(m, "w");
        cr_assert_not_null(t);
        cr_assert_eq(memcmp(t->data, data, 4), 0);
        st_close(m);
    }
    free(buf);
    free(p);
    ts_rmtree(dir);
    free(dir);
}

Test(st_reader, open_reports_empty_file_on_disk)
{
    char *dir = ts_tmpdir();
    char *p = ts_path(dir, "empty.safetensors");
    ts_write_file(p, "", 0);
    st_model *m = (st_model *)0x1;
    mixq_error e;
    cr_assert_eq(st_open(p, &m, &e), MIXQ_E_FORMAT);
    cr_assert_null(m);
    cr_assert(strstr(e.message, "empty.safetensors: file is empty") != NULL, "%s", e.message);
    free(p);
    ts_rmtree(dir);
    free(dir);
}

Test(st_reader, open_reports_bad_file_on_disk_by_path)
{
    char *dir = ts_tmpdir();
    char *p = ts_path(dir, "bad.safetensors");
    size_t len;
    uint8_t *buf = ts_safetensors("{\"w\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", NULL, 3, &len);
    ts_write_file(p, buf, len);
    st_model *m = NULL;
    mixq_error e;
    cr_assert_eq(st_open(p, &m, &e), MIXQ_E_FORMAT);
    cr_assert(strstr(e.message, p) == e.message, "%s", e.message);
    cr_assert(strstr(e.message, "extend past the end of the file") != NULL, "%s", e.message);
    free(buf);
    free(p);
    ts_rmtree(dir);
    free(dir);
}

Test(st_reader, open_reports_missing_path)
{
    st_model *m = (st_model *)0x1;
    mixq_error e;
    cr_assert_eq(st_open("/nonexistent/mixq/model.safetensors", &m, &e), MIXQ_E_IO);
    cr_assert_null(m);
    cr_assert(strstr(e.message, "/nonexistent/mixq/model.safetensors: cannot open: No such file") != NULL, "%s",
              e.message);
}

Test(st_reader, open_reports_directory_without_model)
{
    char *dir = ts_tmpdir();
    st_model *m = (st_model *)0x1;
    mixq_error e;
    cr_assert_eq(st_open(dir, &m, &e), MIXQ_E_IO);
    cr_assert_null(m);
    cr_assert(strstr(e.message, "directory holds neither model.safetensors.index.json nor model.safetensors") != NULL,
              "%s", e.message);
    ts_rmtree(dir);
    free(dir);
}
