/* test_index.c - index.json parsing (st_index_parse) and sharded checkpoints (st_open). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "reader/st_reader.h"
#include "test_support.h"

/* Parses index text and asserts failure with code and a message containing want. */
static void expect_index_fail(const char *text, mixq_status code, const char *want)
{
    st_index idx;
    mixq_error e;
    mixq_status st = st_index_parse("model.safetensors.index.json", text, strlen(text), &idx, &e);
    cr_assert_eq(st, code, "status %d (%s), want %d", st, e.message, code);
    cr_assert_eq(e.code, code);
    cr_assert(strstr(e.message, want) != NULL, "message \"%s\" lacks \"%s\"", e.message, want);
    cr_assert(strncmp(e.message, "model.safetensors.index.json: ", 30) == 0, "%s", e.message);
    cr_assert_null(strchr(e.message, '\n'), "%s", e.message);
    cr_assert_eq(idx.nnames, 0);
    cr_assert_eq(idx.nshards, 0);
    cr_assert_null(idx.names);
    st_index_free(&idx);
}

/* Writes a safetensors file with data_len pattern bytes to dir/name. */
static void write_st(const char *dir, const char *name, const char *hdr, size_t data_len)
{
    char *p = ts_path(dir, name);
    size_t len;
    uint8_t *buf = ts_safetensors(hdr, NULL, data_len, &len);
    ts_write_file(p, buf, len);
    free(buf);
    free(p);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char *p = ts_path(dir, name);
    ts_write_file(p, text, strlen(text));
    free(p);
}

#define T(name, dt, shape, b, e) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

/* A valid two-shard checkpoint: shard 1 holds b and a, shard 2 holds c. */
static char *make_sharded(void)
{
    char *dir = ts_tmpdir();
    write_st(dir, "model-00001-of-00002.safetensors",
             "{\"__metadata__\":{\"format\":\"pt\"}," T("b", "F32", "[2]", 0, 8) "," T("a", "U8", "[3]", 8, 11) "}", 11);
    write_st(dir, "model-00002-of-00002.safetensors",
             "{\"__metadata__\":{\"format\":\"other\"}," T("c", "BF16", "[2,2]", 0, 8) "}", 8);
    write_text(dir, "model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":27},\"weight_map\":{"
               "\"c\":\"model-00002-of-00002.safetensors\","
               "\"a\":\"model-00001-of-00002.safetensors\","
               "\"b\":\"model-00001-of-00002.safetensors\"}}");
    return dir;
}

/* Opens path and asserts failure with code and a message containing every string of want. */
static void expect_open_fail(const char *path, mixq_status code, const char *want1, const char *want2)
{
    st_model *m = (st_model *)0x1;
    mixq_error e;
    mixq_status st = st_open(path, &m, &e);
    cr_assert_eq(st, code, "status %d (%s), want %d", st, e.message, code);
    cr_assert_null(m);
    cr_assert(strstr(e.message, want1) != NULL, "message \"%s\" lacks \"%s\"", e.message, want1);
    if (want2) cr_assert(strstr(e.message, want2) != NULL, "message \"%s\" lacks \"%s\"", e.message, want2);
    cr_assert_null(strchr(e.message, '\n'), "%s", e.message);
}

static void cleanup(char *dir)
{
    ts_rmtree(dir);
    free(dir);
}

/* ---------------------------------------------------------------------- */
/* st_index_parse                                                          */
/* ---------------------------------------------------------------------- */

Test(index, parses_weight_map)
{
    const char *text = "{\"metadata\":{\"total_size\":10},\"weight_map\":{"
                       "\"z\":\"s2.safetensors\",\"a\":\"s2.safetensors\",\"m\":\"s1.safetensors\"}}";
    st_index idx;
    mixq_error e;
    cr_assert_eq(st_index_parse("i.json", text, strlen(text), &idx, &e), MIXQ_OK, "%s", e.message);
    cr_assert_eq(idx.nshards, 2);
    cr_assert_str_eq(idx.shards[0], "s1.safetensors");
    cr_assert_str_eq(idx.shards[1], "s2.safetensors");
    cr_assert_eq(idx.nnames, 3);
    cr_assert_str_eq(idx.names[0], "a");
    cr_assert_str_eq(idx.names[1], "m");
    cr_assert_str_eq(idx.names[2], "z");
    cr_assert_eq(idx.shard_of[0], 1);
    cr_assert_eq(idx.shard_of[1], 0);
    cr_assert_eq(idx.shard_of[2], 1);
    st_index_free(&idx);
    st_index_free(&idx); /* idempotent */
}

Test(index, accepts_missing_metadata_and_extra_keys)
{
    const char *text = "{\"weight_map\":{\"a\":\"s.safetensors\"},\"other\":[1]}";
    st_index idx;
    mixq_error e;
    cr_assert_eq(st_index_parse("i.json", text, strlen(text), &idx, &e), MIXQ_OK, "%s", e.message);
    cr_assert_eq(idx.nshards, 1);
    st_index_free(&idx);
}

Test(index, rejects_invalid_json)
{
    expect_index_fail("{\"weight_map\":", MIXQ_E_FORMAT, "not valid JSON");
}

Test(index, rejects_empty_text)
{
    expect_index_fail("", MIXQ_E_FORMAT, "not valid JSON");
}

Test(index, rejects_non_object)
{
    expect_index_fail("[]", MIXQ_E_FORMAT, "index must be a JSON object");
}

Test(index, rejects_missing_weight_map)
{
    expect_index_fail("{\"metadata\":{}}", MIXQ_E_FORMAT, "index has no \"weight_map\"");
}

Test(index, rejects_weight_map_not_object)
{
    expect_index_fail("{\"weight_map\":[\"a\"]}", MIXQ_E_FORMAT, "\"weight_map\" must be an object, not an array");
}

Test(index, rejects_empty_weight_map)
{
    expect_index_fail("{\"weight_map\":{}}", MIXQ_E_FORMAT, "\"weight_map\" lists no tensors");
}

Test(index, rejects_metadata_not_object)
{
    expect_index_fail("{\"metadata\":\"x\",\"weight_map\":{\"a\":\"s\"}}", MIXQ_E_FORMAT,
                      "\"metadata\" must be an object, not a string");
}

Test(index, rejects_shard_name_not_string)
{
    expect_index_fail("{\"weight_map\":{\"a\":1}}", MIXQ_E_FORMAT,
                      "weight_map value of tensor \"a\" must be a shard file name, not 1");
}

Test(index, rejects_duplicate_tensor_names)
{
    expect_index_fail("{\"weight_map\":{\"a\":\"s\",\"a\":\"t\"}}", MIXQ_E_FORMAT, "duplicate object key");
}

Test(index, rejects_path_traversal)
{
    expect_index_fail("{\"weight_map\":{\"a\":\"../secret.safetensors\"}}", MIXQ_E_FORMAT,
                      "weight_map maps tensor \"a\" to \"../secret.safetensors\", which is not a plain file name");
    expect_index_fail("{\"weight_map\":{\"a\":\"..\"}}", MIXQ_E_FORMAT, "not a plain file name");
    expect_index_fail("{\"weight_map\":{\"a\":\"/etc/passwd\"}}", MIXQ_E_FORMAT, "not a plain file name");
    expect_index_fail("{\"weight_map\":{\"a\":\"sub/s.safetensors\"}}", MIXQ_E_FORMAT, "not a plain file name");
    expect_index_fail("{\"weight_map\":{\"a\":\"\"}}", MIXQ_E_FORMAT, "not a plain file name");
}

Test(index, rejects_escaped_nul_in_shard_name)
{
    expect_index_fail("{\"weight_map\":{\"a\":\"s.safetensors\\u0000../x\"}}", MIXQ_E_FORMAT, "not valid JSON");
}

Test(index, parses_every_prefix_without_crashing)
{
    const char *text = "{\"metadata\":{\"total_size\":10},\"weight_map\":{\"a\":\"s1\",\"b\":\"s2\"}}";
    size_t n = strlen(text);
    for (size_t cut = 0; cut < n; cut++) {
        char *part = malloc(cut ? cut : 1);
        memcpy(part, text, cut);
        st_index idx;
        mixq_error e;
        cr_assert_eq(st_index_parse("i.json", part, cut, &idx, &e), MIXQ_E_FORMAT, "cut %zu", cut);
        free(part);
    }
}

/* ---------------------------------------------------------------------- */
/* Sharded checkpoints                                                     */
/* ---------------------------------------------------------------------- */

/* Checks the model made by make_sharded. */
static void check_sharded(const st_model *m, const char *dir)
{
    cr_assert_eq(m->nfiles, 2);
    char *p1 = ts_path(dir, "model-00001-of-00002.safetensors");
    cr_assert_str_eq(m->files[0].path, p1);
    free(p1);
    cr_assert(strstr(m->files[1].path, "model-00002-of-00002.safetensors") != NULL);
    cr_assert_not_null(m->index_path);
    cr_assert(strstr(m->index_path, "model.safetensors.index.json") != NULL);
    cr_assert_eq(m->ntensors, 3);
    const char *order[] = {"b", "a", "c"};
    const size_t file_of[] = {0, 0, 1};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(m->tensors[i].name, order[i]);
        cr_assert_eq(m->tensors[i].file_index, file_of[i]);
        cr_assert_eq(st_find(m, order[i]), &m->tensors[i]);
        const st_file *f = &m->files[file_of[i]];
        cr_assert_eq(m->tensors[i].data, f->map + m->tensors[i].file_offset);
    }
    cr_assert_eq(st_find(m, "c")->dtype, ST_BF16);
    cr_assert_null(st_find(m, "d"));
    cr_assert_str_eq(st_meta_get(m, "format"), "pt"); /* first shard's __metadata__ */
}

Test(sharded, opens_via_directory)
{
    char *dir = make_sharded();
    /* The index is preferred over a model.safetensors beside it. */
    write_st(dir, "model.safetensors", "{" T("x", "U8", "[1]", 0, 1) "}", 1);
    st_model *m = NULL;
    mixq_error e;
    cr_assert_eq(st_open(dir, &m, &e), MIXQ_OK, "%s", e.message);
    check_sharded(m, dir);
    st_close(m);
    cleanup(dir);
}

Test(sharded, opens_via_index_path)
{
    char *dir = make_sharded();
    char *ip = ts_path(dir, "model.safetensors.index.json");
    st_model *m = NULL;
    mixq_error e;
    cr_assert_eq(st_open(ip, &m, &e), MIXQ_OK, "%s", e.message);
    check_sharded(m, dir);
    cr_assert_str_eq(m->index_path, ip);
    st_close(m);
    free(ip);
    cleanup(dir);
}

Test(sharded, missing_shard)
{
    char *dir = make_sharded();
    char *p = ts_path(dir, "model-00002-of-00002.safetensors");
    remove(p);
    free(p);
    expect_open_fail(dir, MIXQ_E_IO, "model.safetensors.index.json: shard \"model-00002-of-00002.safetensors\"",
                     "(holding tensor \"c\") does not exist");
    cleanup(dir);
}

Test(sharded, tensor_in_weight_map_missing_from_shard)
{
    char *dir = make_sharded();
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"c\":\"model-00002-of-00002.safetensors\","
               "\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\","
               "\"ghost\":\"model-00002-of-00002.safetensors\"}}");
    expect_open_fail(dir, MIXQ_E_FORMAT, "model.safetensors.index.json: weight_map maps tensor \"ghost\"",
                     "to shard \"model-00002-of-00002.safetensors\", which does not contain it");
    cleanup(dir);
}

Test(sharded, tensor_in_shard_missing_from_weight_map)
{
    char *dir = make_sharded();
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"c\":\"model-00002-of-00002.safetensors\","
               "\"b\":\"model-00001-of-00002.safetensors\"}}");
    expect_open_fail(dir, MIXQ_E_FORMAT,
                     "tensor \"a\" in shard \"model-00001-of-00002.safetensors\" is not listed in weight_map", NULL);
    cleanup(dir);
}

Test(sharded, tensor_mapped_to_wrong_shard)
{
    char *dir = make_sharded();
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"c\":\"model-00001-of-00002.safetensors\","
               "\"a\":\"model-00002-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\"}}");
    expect_open_fail(dir, MIXQ_E_FORMAT,
                     "tensor \"a\" is in shard \"model-00001-of-00002.safetensors\" but weight_map maps it to "
                     "\"model-00002-of-00002.safetensors\"",
                     NULL);
    cleanup(dir);
}

Test(sharded, duplicate_across_shards)
{
    char *dir = make_sharded();
    write_st(dir, "model-00002-of-00002.safetensors", "{" T("c", "BF16", "[2,2]", 0, 8) "," T("a", "U8", "[1]", 8, 9) "}",
             9);
    expect_open_fail(dir, MIXQ_E_FORMAT,
                     "tensor \"a\" appears in two shards, \"model-00001-of-00002.safetensors\" and "
                     "\"model-00002-of-00002.safetensors\"",
                     NULL);
    cleanup(dir);
}

Test(sharded, rejects_traversal)
{
    char *dir = make_sharded();
    char *sub = ts_path(dir, "sub");
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_st(dir, "outside.safetensors", "{" T("x", "U8", "[1]", 0, 1) "}", 1);
    write_text(sub, "model.safetensors.index.json", "{\"weight_map\":{\"x\":\"../outside.safetensors\"}}");
    expect_open_fail(sub, MIXQ_E_FORMAT, "weight_map maps tensor \"x\" to \"../outside.safetensors\"",
                     "not a plain file name");
    free(sub);
    cleanup(dir);
}

Test(sharded, reports_bad_shard_by_path)
{
    char *dir = make_sharded();
    write_st(dir, "model-00002-of-00002.safetensors", "{" T("c", "BF16", "[2,2]", 0, 6) "}", 6);
    char *p = ts_path(dir, "model-00002-of-00002.safetensors");
    expect_open_fail(dir, MIXQ_E_FORMAT, p, "tensor \"c\": data_offsets [0, 6] hold 6 bytes but shape [2, 2] of BF16 needs 8");
    free(p);
    cleanup(dir);
}

Test(sharded, reports_bad_index_json)
{
    char *dir = make_sharded();
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":\"x\"}");
    char *ip = ts_path(dir, "model.safetensors.index.json");
    expect_open_fail(ip, MIXQ_E_FORMAT, ip, "not valid JSON");
    free(ip);
    cleanup(dir);
}

Test(sharded, shard_that_is_a_directory)
{
    char *dir = make_sharded();
    char *p = ts_path(dir, "model-00002-of-00002.safetensors");
    remove(p);
    cr_assert_eq(mkdir(p, 0700), 0);
    expect_open_fail(dir, MIXQ_E_IO, p, "not a regular file");
    free(p);
    cleanup(dir);
}
