/*
 * test_bad_inputs.c - the bad-input catalogue (docs/ROBUSTNESS.md): crafted
 * inputs run through the real CLI, each expecting a specific exit code and
 * error message, and afterwards no output file, no temporary and the input
 * unchanged.  Then the integrity check: `mixq verify` (here the same library
 * calls, in-process for speed) catches every single-bit flip of a container.
 *
 * A catalogue row is {name, bytes-builder, command, exit code, message
 * substring, tensor named in the message}.  The builder is one of:
 *  - .hdr (+ .data/.data_size or .data_len pattern bytes): a single
 *    safetensors file, written with ts_safetensors;
 *  - .cpatch / .cpost: the container converted from testdata/tiny-llama-f32
 *    (int4), its header JSON and data edited by .cpatch, its preamble bytes
 *    by .cpost, then the preamble and header checksums recomputed (unless the
 *    row asks for a bad one) so that the loader's structural checks, not the
 *    checksums, are what fails;
 *  - .build: anything else (shards and index files, loops over variants).
 * Rows whose .bug is set fail because of a known bug in src/ (see
 * docs/ROBUSTNESS.md, "Known bugs"); their failure messages start with
 * "[KNOWN BUG ...]".
 *
 * Set MIXQ_CATALOGUE_MD=FILE to write the table of docs/ROBUSTNESS.md.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <xxhash.h>

#include "format/container.h"
#include "mixq_tools.h"
#include "reader/st_reader.h"
#include "test_support.h"

TestSuite(catalogue, .fini = ts_remove_tracked);
TestSuite(integrity, .fini = ts_remove_tracked);

/* ---------------------------------------------------------------------- */
/* Rows                                                                    */
/* ---------------------------------------------------------------------- */

typedef enum command { CONVERT, VERIFY, DUMP, DUMP_JSON, EXPORT } command;
static const char *const command_name[] = {"convert", "verify", "dump", "dump", "export"};

/* One concrete input of a row (a looping row has several). */
typedef struct variant {
    char *input;        /* path given to the command */
    char *file;         /* the file the message must name (default: input) */
    char *tensor;       /* overrides the row's tensor */
    char *message;      /* overrides the row's message */
} variant;

typedef struct cont cont;

typedef struct row {
    const char *name;
    /* builders (see the top of the file) */
    const char *hdr;
    const void *data;
    size_t data_size;
    size_t data_len;
    void (*cpatch)(cont *c);
    void (*cpost)(uint8_t *buf, size_t len);
    int (*build)(const char *dir, size_t i, variant *v);
    /* the run */
    command cmd;
    const char *args[4];
    /* expectations */
    int exit_code;
    const char *message;     /* substring of the one-line error (NULL for exit 0) */
    const char *tensor;      /* tensor the message must name, or NULL */
    void (*check_ok)(const char *in, const char *out); /* exit 0 rows: checks of the output */
    const char *bug;         /* known bug in src/ that makes this row fail */
} row;

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */
/* ---------------------------------------------------------------------- */

static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    cr_assert(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    return s;
}

/* Writes a safetensors file dir/name; returns its path. */
static char *put_st(const char *dir, const char *name, const char *hdr, const void *data, size_t len)
{
    size_t n;
    uint8_t *b = ts_safetensors(hdr, data, len, &n);
    char *p = ts_path(dir, name);
    ts_write_file(p, b, n);
    free(b);
    return p;
}

static char *put_text(const char *dir, const char *name, const char *text)
{
    char *p = ts_path(dir, name);
    ts_write_file(p, text, strlen(text));
    return p;
}

static const char *base_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/*
 * A snapshot of a directory: every entry's name, size, mtime and xxh3, in
 * name order, as one string (to compare before and after a run).
 */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static char *snapshot(const char *dir)
{
    char *cmd_names[256];
    size_t n = 0;
    char *listing = xasprintf("");
    DIR *d = opendir(dir);
    if (!d) return listing;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) cmd_names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(cmd_names, n, sizeof *cmd_names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *p = ts_path(dir, cmd_names[i]);
        struct stat st;
        uint64_t h = 0;
        size_t len = 0;
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            uint8_t *b = ts_read_file(p, &len);
            if (b) h = XXH3_64bits(b, len);
            free(b);
        }
        char *next = xasprintf("%s%s size=%lld mtime=%lld.%09ld xxh3=%016llx\n", listing, cmd_names[i],
                               (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                               (unsigned long long)h);
        free(listing);
        listing = next;
        free(p);
        free(cmd_names[i]);
    }
    return listing;
}

/* ---------------------------------------------------------------------- */
/* Containers to patch                                                     */
/* ---------------------------------------------------------------------- */

struct cont {
    uint8_t pre[MXC_PREAMBLE_LEN];
    uint8_t *data;             /* the data region */
    size_t data_len;
    json_t *root;              /* the header */
    char *text;                /* if set: header text used instead of root */
    int bad_header_hash, bad_preamble_hash;
    size_t extra;              /* zero bytes appended after the header */
    size_t cut;                /* bytes cut off the end of the file */
    char tensor[256];          /* the tensor a patch edited (the message must name it) */
    char message[160];         /* if set: overrides the row's message */
};

static uint8_t *base_bytes;
static size_t base_len;

/* The container all container rows start from: testdata/tiny-llama-f32 converted to int4. */
static void load_base(void)
{
    if (base_bytes) return;
    char *dir = ts_tmpdir_tracked(), *out = ts_path(dir, "base.mxq"), *in = ts_source_path("testdata/tiny-llama-f32");
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = MIXQ_QT_INT4;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    base_bytes = ts_read_file(out, &base_len);
    cr_assert(base_bytes);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

static void cont_load(cont *c)
{
    load_base();
    memset(c, 0, sizeof *c);
    memcpy(c->pre, base_bytes, MXC_PREAMBLE_LEN);
    uint64_t dl = mxc_get_u64(base_bytes + MXC_OFF_DATA_LENGTH);
    uint64_t ho = mxc_get_u64(base_bytes + MXC_OFF_HEADER_OFFSET);
    uint64_t hl = mxc_get_u64(base_bytes + MXC_OFF_HEADER_LENGTH);
    c->data_len = (size_t)dl;
    c->data = malloc(c->data_len + 1);
    memcpy(c->data, base_bytes + MXC_PREAMBLE_LEN, c->data_len);
    json_error_t je;
    c->root = json_loadb((const char *)base_bytes + ho, (size_t)hl, 0, &je);
    cr_assert(c->root, "base header: %s", je.text);
}

static void cont_free(cont *c)
{
    free(c->data);
    free(c->text);
    json_decref(c->root);
}

/* Assembles the file: layout fields and both checksums recomputed, then post, then the preamble checksum again. */
static uint8_t *cont_bytes(cont *c, void (*post)(uint8_t *, size_t), size_t *len)
{
    char *text = c->text ? strdup(c->text) : json_dumps(c->root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t hl = strlen(text);
    size_t n = MXC_PREAMBLE_LEN + c->data_len + hl + c->extra;
    uint8_t *b = calloc(1, n);
    memcpy(b, c->pre, MXC_PREAMBLE_LEN);
    memcpy(b + MXC_PREAMBLE_LEN, c->data, c->data_len);
    memcpy(b + MXC_PREAMBLE_LEN + c->data_len, text, hl);
    mxc_put_u64(b + MXC_OFF_DATA_LENGTH, c->data_len);
    mxc_put_u64(b + MXC_OFF_HEADER_OFFSET, MXC_PREAMBLE_LEN + c->data_len);
    mxc_put_u64(b + MXC_OFF_HEADER_LENGTH, hl);
    mxc_put_u64(b + MXC_OFF_HEADER_XXH3, XXH3_64bits(text, hl) ^ (c->bad_header_hash ? 1u : 0u));
    if (post) post(b, n);
    mxc_put_u64(b + MXC_OFF_PREAMBLE_XXH3, XXH3_64bits(b, MXC_OFF_PREAMBLE_XXH3) ^ (c->bad_preamble_hash ? 1u : 0u));
    free(text);
    cr_assert(c->cut <= n);
    *len = n - c->cut;
    return b;
}

static json_t *tensors_of(cont *c) { return json_object_get(c->root, "tensors"); }

/* The i-th tensor entry; records its name as the one the message must name. */
static json_t *entry(cont *c, size_t i)
{
    json_t *e = json_array_get(tensors_of(c), i);
    cr_assert(e, "base container has no tensor #%zu", i);
    snprintf(c->tensor, sizeof c->tensor, "%s", json_string_value(json_object_get(e, "name")));
    return e;
}

/* Index of the first tensor stored as quant_type qt (after index `from`). */
static size_t find_qt(cont *c, const char *qt, size_t from)
{
    json_t *arr = tensors_of(c);
    for (size_t i = from; i < json_array_size(arr); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(arr, i), "quant_type")), qt)) return i;
    cr_assert_fail("base container has no %s tensor", qt);
    return 0;
}

static uint64_t ival(json_t *o, const char *k) { return (uint64_t)json_integer_value(json_object_get(o, k)); }

/* Sets e.xxh3 to the checksum of its bytes in the (edited) data region. */
static void rehash(cont *c, json_t *e)
{
    uint64_t off = ival(e, "offset") - MXC_PREAMBLE_LEN, len = ival(e, "length");
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH3_64bits(c->data + off, (size_t)len));
    json_object_set_new(e, "xxh3", json_string(hex));
}

/* ---- preamble (byte-level, applied after the layout fields are set) ---- */
static void p_magic(uint8_t *b, size_t n) { (void)n; b[1] = 'X'; }
static void p_major2(uint8_t *b, size_t n) { (void)n; mxc_put_u16(b + MXC_OFF_MAJOR, 2); }
static void p_major0(uint8_t *b, size_t n) { (void)n; mxc_put_u16(b + MXC_OFF_MAJOR, 0); }
static void p_flags(uint8_t *b, size_t n) { (void)n; mxc_put_u32(b + MXC_OFF_FLAGS, 1); }
static void p_data_offset(uint8_t *b, size_t n) { (void)n; mxc_put_u64(b + MXC_OFF_DATA_OFFSET, 128); }
static void p_data_length_odd(uint8_t *b, size_t n)
{
    (void)n;
    mxc_put_u64(b + MXC_OFF_DATA_LENGTH, mxc_get_u64(b + MXC_OFF_DATA_LENGTH) + 1);
    mxc_put_u64(b + MXC_OFF_HEADER_OFFSET, mxc_get_u64(b + MXC_OFF_HEADER_OFFSET) + 1);
}
static void p_header_offset(uint8_t *b, size_t n)
{
    (void)n;
    mxc_put_u64(b + MXC_OFF_HEADER_OFFSET, mxc_get_u64(b + MXC_OFF_HEADER_OFFSET) + 64);
}
static void p_header_length0(uint8_t *b, size_t n) { (void)n; mxc_put_u64(b + MXC_OFF_HEADER_LENGTH, 0); }
static void p_header_length_plus1(uint8_t *b, size_t n)
{
    (void)n;
    mxc_put_u64(b + MXC_OFF_HEADER_LENGTH, mxc_get_u64(b + MXC_OFF_HEADER_LENGTH) + 1);
}
static void p_header_length_huge(uint8_t *b, size_t n) { (void)n; mxc_put_u64(b + MXC_OFF_HEADER_LENGTH, 1ull << 40); }
static void p_header_offset_wrap(uint8_t *b, size_t n)
{
    (void)n; /* data_length so large that data_offset + data_length wraps around */
    mxc_put_u64(b + MXC_OFF_DATA_LENGTH, UINT64_MAX - 63);
    mxc_put_u64(b + MXC_OFF_HEADER_OFFSET, 0);
}
static void p_minor_changed(uint8_t *b, size_t n) { (void)n; mxc_put_u16(b + MXC_OFF_MINOR, 7); }

/* ---- file-level ---- */
static void c_none(cont *c) { (void)c; }
static void c_trailing(cont *c) { c->extra = 64; }
static void c_cut_header(cont *c) { c->cut = 10; }
static void c_bad_preamble_hash(cont *c) { c->bad_preamble_hash = 1; }
static void c_bad_header_hash(cont *c) { c->bad_header_hash = 1; }
static void c_header_not_json(cont *c) { c->text = strdup("{\"format\":\"mixq\",\"format_version\":1,"); }
static void c_header_array(cont *c) { c->text = strdup("[1,2,3]"); }
static void c_header_bom(cont *c)
{
    char *t = json_dumps(c->root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    c->text = xasprintf("\xEF\xBB\xBF%s", t);
    free(t);
}
static void c_header_not_utf8(cont *c)
{
    char *t = json_dumps(c->root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *p = strstr(t, "\"mixq_version\":\"");
    cr_assert(p);
    p[16] = (char)0xff; /* the first character of the version string */
    c->text = t;
}
static void c_header_dup_key(cont *c)
{
    char *t = json_dumps(c->root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    c->text = xasprintf("{\"alignment\":64,%s", t + 1);
    free(t);
}
static void c_format(cont *c) { json_object_set_new(c->root, "format", json_string("gguf")); }
static void c_format_version(cont *c) { json_object_set_new(c->root, "format_version", json_integer(2)); }
static void c_alignment(cont *c) { json_object_set_new(c->root, "alignment", json_integer(32)); }
static void c_no_tensors_key(cont *c) { json_object_del(c->root, "tensors"); }
static void c_tensors_object(cont *c) { json_object_set_new(c->root, "tensors", json_object()); }
static void c_no_metadata(cont *c) { json_object_del(c->root, "metadata"); }
static void c_source_files(cont *c)
{
    json_object_set_new(json_object_get(c->root, "metadata"), "source_files", json_string("model.safetensors"));
}
static void c_source_metadata_value(cont *c)
{
    json_object_set_new(json_object_get(json_object_get(c->root, "metadata"), "source_metadata"), "format",
                        json_integer(1));
}
static void c_options_type(cont *c)
{
    json_object_set_new(json_object_get(json_object_get(c->root, "metadata"), "options"), "group_size",
                        json_integer(-64));
}

/* ---- tensor entries ---- */
static void c_entry_not_object(cont *c) { json_array_set_new(tensors_of(c), 3, json_integer(5)); }
static void c_name_missing(cont *c) { json_object_del(json_array_get(tensors_of(c), 1), "name"); }
static void c_name_empty(cont *c) { json_object_set_new(json_array_get(tensors_of(c), 1), "name", json_string("")); }
static void c_name_not_string(cont *c) { json_object_set_new(json_array_get(tensors_of(c), 1), "name", json_integer(7)); }
static void c_duplicate_names(cont *c)
{
    json_t *a = entry(c, 1);
    json_object_set(json_array_get(tensors_of(c), 3), "name", json_object_get(a, "name"));
}
static void c_shape_negative(cont *c)
{
    json_array_set_new(json_object_get(entry(c, find_qt(c, "int4", 0)), "shape"), 0, json_integer(-1));
}
static void c_shape_fraction(cont *c)
{
    json_array_set_new(json_object_get(entry(c, find_qt(c, "int4", 0)), "shape"), 0, json_real(1.5));
}
static void c_shape_string(cont *c)
{
    json_array_set_new(json_object_get(entry(c, find_qt(c, "int4", 0)), "shape"), 1, json_string("64"));
}
static void c_shape_overflow(cont *c)
{
    json_t *e = entry(c, find_qt(c, "int4", 0));
    json_object_set_new(e, "shape", json_pack("[I,I,I]", (json_int_t)1 << 32, (json_int_t)1 << 32, (json_int_t)64));
}
static void c_shape_9_dims(cont *c)
{
    json_t *e = entry(c, find_qt(c, "f32", 0));
    json_object_set_new(e, "shape", json_pack("[i,i,i,i,i,i,i,i,i]", 1, 1, 1, 1, 1, 1, 1, 1, 1));
}
static void c_shape_mismatch(cont *c)
{
    json_t *e = entry(c, find_qt(c, "int4", 0));
    json_array_set_new(json_object_get(e, "shape"), 0, json_integer(97));
}
static void c_quant_type_unknown(cont *c)
{
    json_object_set_new(entry(c, find_qt(c, "int4", 0)), "quant_type", json_string("int5"));
}
static void c_quant_type_number(cont *c)
{
    json_object_set_new(entry(c, find_qt(c, "int4", 0)), "quant_type", json_integer(5));
}
static void c_source_dtype_unknown(cont *c)
{
    json_object_set_new(entry(c, find_qt(c, "int4", 0)), "source_dtype", json_string("F128"));
}
static void c_group_size(cont *c) { json_object_set_new(entry(c, find_qt(c, "int4", 0)), "group_size", json_integer(48)); }
static void c_group_size_plain(cont *c)
{
    json_object_set_new(entry(c, find_qt(c, "f32", 0)), "group_size", json_integer(64));
}
static void c_symmetric(cont *c) { json_object_set_new(entry(c, find_qt(c, "int4", 0)), "symmetric", json_true()); }
static void c_length(cont *c)
{
    json_t *e = entry(c, find_qt(c, "int4", 0));
    json_object_set_new(e, "length", json_integer((json_int_t)ival(e, "length") + 64));
}
static void c_length_negative(cont *c) { json_object_set_new(entry(c, find_qt(c, "int4", 0)), "length", json_integer(-1)); }
static void c_section_offset(cont *c)
{
    json_t *s = json_object_get(json_object_get(entry(c, find_qt(c, "int4", 0)), "sections"), "scales");
    json_object_set_new(s, "offset", json_integer((json_int_t)ival(s, "offset") + 64));
}
static void c_section_missing(cont *c)
{
    json_object_del(json_object_get(entry(c, find_qt(c, "int4", 0)), "sections"), "mins");
}
static void c_section_extra(cont *c)
{
    json_object_set_new(json_object_get(entry(c, find_qt(c, "f32", 0)), "sections"), "codes",
                        json_pack("{s:i,s:i}", "offset", 0, "length", 0));
}
static void c_section_not_object(cont *c)
{
    json_object_set_new(json_object_get(entry(c, find_qt(c, "int4", 0)), "sections"), "codes", json_integer(5));
}
static void c_offset_misaligned(cont *c)
{
    json_t *e = entry(c, 5);
    json_object_set_new(e, "offset", json_integer((json_int_t)ival(e, "offset") + 1));
}
static void c_offset_overlap(cont *c)
{
    json_t *prev = json_array_get(tensors_of(c), 4), *e = entry(c, 5);
    json_object_set_new(e, "offset", json_integer((json_int_t)ival(prev, "offset")));
}
static void c_offset_hole(cont *c)
{
    json_t *e = entry(c, 5);
    json_object_set_new(e, "offset", json_integer((json_int_t)ival(e, "offset") + 64));
}
static void c_offset_first(cont *c)
{
    json_object_set_new(entry(c, 0), "offset", json_integer(0));
}
static void c_offset_huge(cont *c)
{
    json_t *arr = tensors_of(c);
    json_t *e = entry(c, json_array_size(arr) - 1);
    json_object_set_new(e, "offset", json_integer(INT64_MAX - 10));
}
static void c_swap_entries(cont *c)
{
    /* two tensors listed out of data order */
    json_t *arr = tensors_of(c), *a = json_incref(json_array_get(arr, 1)), *b = json_incref(json_array_get(arr, 2));
    json_array_set_new(arr, 1, b);
    json_array_set_new(arr, 2, a);
    entry(c, 1);
}
static void c_xxh3_not_hex(cont *c) { json_object_set_new(entry(c, 2), "xxh3", json_string("not-a-checksum!!")); }
static void c_xxh3_upper(cont *c)
{
    json_t *e = entry(c, 2);
    char *h = strdup(json_string_value(json_object_get(e, "xxh3")));
    for (char *p = h; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 32);
    if (!strpbrk(h, "ABCDEF")) h[0] = 'A';
    json_object_set_new(e, "xxh3", json_string(h));
    free(h);
}
static void c_xxh3_short(cont *c) { json_object_set_new(entry(c, 2), "xxh3", json_string("0123456789abcde")); }
/* The data region is 64 bytes short of what the last tensor needs. */
static void c_data_short(cont *c)
{
    json_t *arr = tensors_of(c);
    json_t *last = entry(c, json_array_size(arr) - 1);
    uint64_t end = ival(last, "offset") + ival(last, "length") - MXC_PREAMBLE_LEN;
    c->data_len = (size_t)(end - 1) & ~(size_t)63;
}
/* 64 more zero bytes of data region than the tensors need. */
static void c_data_long(cont *c)
{
    c->data = realloc(c->data, c->data_len + 64);
    memset(c->data + c->data_len, 0, 64);
    c->data_len += 64;
}
/* Changes a byte of a tensor's data (its xxh3 no longer matches). */
static void c_tensor_bytes(cont *c)
{
    json_t *e = entry(c, find_qt(c, "int4", 0));
    c->data[ival(e, "offset") - MXC_PREAMBLE_LEN + ival(e, "length") / 2] ^= 0x20;
}
static void c_tensor_bytes_raw(cont *c)
{
    json_t *e = entry(c, find_qt(c, "raw", 0));
    c->data[ival(e, "offset") - MXC_PREAMBLE_LEN] ^= 0x01;
}
/* A valid but wrong xxh3 in the header. */
static void c_xxh3_wrong(cont *c)
{
    json_t *e = entry(c, find_qt(c, "f32", 0));
    json_object_set_new(e, "xxh3", json_string("0123456789abcdef"));
}
/* A non-zero byte in the padding after tensor i (the first with padding). */
static void c_padding_between_tensors(cont *c)
{
    json_t *arr = tensors_of(c);
    for (size_t i = 0; i + 1 < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i), *n = json_array_get(arr, i + 1);
        uint64_t end = ival(e, "offset") + ival(e, "length");
        if (end < ival(n, "offset")) {
            c->data[end - MXC_PREAMBLE_LEN] = 0x5a;
            snprintf(c->message, sizeof c->message, "padding at offset %llu is not zero", (unsigned long long)end);
            return;
        }
    }
    cr_assert_fail("no padding between tensors in the base container");
}
static void c_padding_at_end(cont *c)
{
    uint64_t at = MXC_PREAMBLE_LEN + c->data_len - 1;
    json_t *arr = tensors_of(c), *last = json_array_get(arr, json_array_size(arr) - 1);
    cr_assert_lt(ival(last, "offset") + ival(last, "length"), at + 1, "the last tensor fills the data region");
    c->data[c->data_len - 1] = 0x01;
    snprintf(c->message, sizeof c->message, "padding at offset %llu is not zero", (unsigned long long)at);
}
/* A non-zero byte between two sections of a tensor, with the tensor's xxh3 recomputed. */
static void c_padding_between_sections(cont *c)
{
    static const char *const order[] = {"data", "codes", "scales", "mins"};
    json_t *arr = tensors_of(c);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i), *secs = json_object_get(e, "sections");
        uint64_t prev_end = 0;
        int have = 0;
        for (int k = 0; k < 4; k++) {
            json_t *s = json_object_get(secs, order[k]);
            if (!s) continue;
            if (have && ival(s, "offset") > prev_end) {
                uint64_t at = ival(e, "offset") + prev_end;
                c->data[at - MXC_PREAMBLE_LEN] = 0x77;
                rehash(c, e);
                snprintf(c->message, sizeof c->message, "padding at offset %llu is not zero", (unsigned long long)at);
                return;
            }
            prev_end = ival(s, "offset") + ival(s, "length");
            have = 1;
        }
    }
    cr_assert_fail("no padding between sections in the base container");
}

/* ---------------------------------------------------------------------- */
/* Builders for inputs of several files, and looping rows                  */
/* ---------------------------------------------------------------------- */

/* The small file whose every truncation is tried. */
static const char small_hdr[] = "{\"__metadata__\":{\"format\":\"pt\"},"
                                "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                                "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}  ";

static int b_truncated_safetensors(const char *dir, size_t i, variant *v)
{
    size_t len;
    uint8_t *full = ts_safetensors(small_hdr, NULL, 22, &len);
    if (i >= len) {
        free(full);
        return 0;
    }
    v->input = ts_path(dir, "model.safetensors");
    ts_write_file(v->input, full, i);
    size_t hl = strlen(small_hdr);
    if (i == 0) v->message = strdup("file is empty");
    else if (i < 8) v->message = strdup("too short for the 8-byte header length");
    else if (i < 8 + hl) v->message = xasprintf("header length %zu exceeds the file size %zu", hl, i);
    else {
        v->message = strdup("extend past the end of the file");
        v->tensor = strdup("b");
    }
    free(full);
    return 1;
}

/* A small container from a crafted checkpoint; every truncation of it is tried. */
static uint8_t *small_container(size_t *len);

/*
 * Cuts: every length up to the end of the preamble and over the last 96
 * bytes (the end of the header), every 7th in between (each run of the CLI
 * costs time under the sanitizers).
 */
static int b_truncated_container(const char *dir, size_t i, variant *v)
{
    size_t len;
    uint8_t *full = small_container(&len);
    size_t cut = 0, k = 0;
    for (size_t c = 0; c < len; c++) {
        if (!(c <= MXC_PREAMBLE_LEN + 8 || c + 96 >= len || c % 7 == 0)) continue;
        if (k++ == i) {
            cut = c;
            break;
        }
    }
    if (k <= i) {
        free(full);
        return 0;
    }
    i = cut;
    v->input = ts_path(dir, "small.mxq");
    ts_write_file(v->input, full, i);
    if (i == 0) v->message = strdup("the file is empty");
    else if (i < MXC_PREAMBLE_LEN) v->message = strdup("too small for a mixq container");
    else v->message = strdup("extends beyond the end of the file");
    free(full);
    return 1;
}

/* Two shards and an index; `index` is the index text, `drop` a shard not to write (1 or 2, 0 none). */
static const char shard1_hdr[] = "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
static const char shard2_hdr[] = "{\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"
#define GOOD_MAP "\"weight_map\":{\"a.weight\":\"" SHARD1 "\",\"b.weight\":\"" SHARD2 "\"}"

static void sharded(const char *dir, const char *index, int drop, const char *hdr1, const char *hdr2, variant *v)
{
    if (drop != 1) free(put_st(dir, SHARD1, hdr1 ? hdr1 : shard1_hdr, NULL, 16));
    if (drop != 2) free(put_st(dir, SHARD2, hdr2 ? hdr2 : shard2_hdr, NULL, 16));
    free(put_text(dir, "model.safetensors.index.json", index));
    v->input = strdup(dir); /* the directory: the index is used first */
    v->file = ts_path(dir, "model.safetensors.index.json");
}

#define ONCE if (i) return 0
static int b_missing_shard(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{\"metadata\":{}," GOOD_MAP "}", 2, NULL, NULL, v);
    return 1;
}
static int b_index_not_json(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{\"weight_map\":{\"a.weight\":", 0, NULL, NULL, v);
    return 1;
}
static int b_index_array(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "[\"" SHARD1 "\"]", 0, NULL, NULL, v);
    return 1;
}
static int b_index_no_map(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{\"metadata\":{\"total_size\":32}}", 0, NULL, NULL, v);
    return 1;
}
static int b_index_empty_map(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{\"weight_map\":{}}", 0, NULL, NULL, v);
    return 1;
}
static int b_index_map_not_object(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{\"weight_map\":[\"" SHARD1 "\"]}", 0, NULL, NULL, v);
    return 1;
}
static int b_index_value_not_string(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{\"weight_map\":{\"a.weight\":\"" SHARD1 "\",\"b.weight\":2}}", 0, NULL, NULL, v);
    return 1;
}
static int b_index_path_traversal(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{\"weight_map\":{\"a.weight\":\"" SHARD1 "\",\"b.weight\":\"../" SHARD2 "\"}}", 0, NULL, NULL, v);
    return 1;
}
static int b_index_metadata_not_object(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{\"metadata\":\"big\"," GOOD_MAP "}", 0, NULL, NULL, v);
    return 1;
}
static int b_index_unlisted_tensor(const char *dir, size_t i, variant *v)
{
    ONCE;
    /* shard 2 also holds c.weight, which weight_map does not list */
    sharded(dir, "{" GOOD_MAP "}", 0, NULL,
            "{\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
            "\"c.weight\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]}}", v);
    return 1;
}
static int b_index_wrong_shard(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir,
            "{\"weight_map\":{\"a.weight\":\"" SHARD1 "\",\"b.weight\":\"" SHARD2 "\",\"x.weight\":\"" SHARD2 "\"}}",
            0, "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
               "\"x.weight\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]}}", NULL, v);
    return 1;
}
static int b_index_phantom_tensor(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir,
            "{\"weight_map\":{\"a.weight\":\"" SHARD1 "\",\"b.weight\":\"" SHARD2 "\",\"ghost.weight\":\"" SHARD2
            "\"}}", 0, NULL, NULL, v);
    return 1;
}
static int b_index_tensor_twice(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{" GOOD_MAP "}", 0, NULL,
            "{\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
            "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]}}", v);
    return 1;
}
static int b_index_bad_shard(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{" GOOD_MAP "}", 0, NULL,
            "{\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", v);
    free(v->file);
    v->file = ts_path(dir, SHARD2);
    return 1;
}
/* The index file itself given as the input. */
static int b_index_file_input(const char *dir, size_t i, variant *v)
{
    ONCE;
    sharded(dir, "{\"metadata\":{}," GOOD_MAP "}", 1, NULL, NULL, v);
    free(v->input);
    v->input = ts_path(dir, "model.safetensors.index.json");
    return 1;
}
static int b_empty_dir(const char *dir, size_t i, variant *v)
{
    ONCE;
    free(put_text(dir, "config.json", "{}"));
    v->input = strdup(dir);
    return 1;
}
static int b_missing_file(const char *dir, size_t i, variant *v)
{
    ONCE;
    v->input = ts_path(dir, "no-such-model.safetensors");
    return 1;
}
static int b_dev_null(const char *dir, size_t i, variant *v)
{
    (void)dir;
    ONCE;
    v->input = strdup("/dev/null");
    return 1;
}
static int b_directory(const char *dir, size_t i, variant *v)
{
    ONCE;
    v->input = ts_path(dir, "sub.mxq");
    cr_assert_eq(mkdir(v->input, 0755), 0);
    return 1;
}
static int b_empty_container(const char *dir, size_t i, variant *v)
{
    ONCE;
    v->input = ts_path(dir, "empty.mxq");
    ts_write_file(v->input, "", 0);
    return 1;
}
static int b_safetensors_as_container(const char *dir, size_t i, variant *v)
{
    ONCE;
    v->input = put_st(dir, "model.mxq", shard1_hdr, NULL, 16);
    return 1;
}
/* A header length field above 100 MB in a file much smaller than that. */
static int b_header_len_over_limit(const char *dir, size_t i, variant *v)
{
    ONCE;
    uint8_t b[64] = {0};
    mxc_put_u64(b, 100000001ull);
    memcpy(b + 8, "{}", 2);
    v->input = ts_path(dir, "model.safetensors");
    ts_write_file(v->input, b, sizeof b);
    return 1;
}
static int b_header_len_u64_max(const char *dir, size_t i, variant *v)
{
    ONCE;
    uint8_t b[16];
    memset(b, 0xff, 8);
    memcpy(b + 8, "{}      ", 8);
    v->input = ts_path(dir, "model.safetensors");
    ts_write_file(v->input, b, sizeof b);
    return 1;
}
/* A safetensors file whose header length field is 1000 but which holds 50 bytes. */
static int b_header_len_beyond_file(const char *dir, size_t i, variant *v)
{
    ONCE;
    uint8_t b[50];
    memset(b, ' ', sizeof b);
    mxc_put_u64(b, 1000);
    memcpy(b + 8, "{}", 2);
    v->input = ts_path(dir, "model.safetensors");
    ts_write_file(v->input, b, sizeof b);
    return 1;
}
static int b_empty_safetensors(const char *dir, size_t i, variant *v)
{
    ONCE;
    v->input = ts_path(dir, "model.safetensors");
    ts_write_file(v->input, "", 0);
    return 1;
}
static int b_short_file(const char *dir, size_t i, variant *v)
{
    ONCE;
    v->input = ts_path(dir, "model.safetensors");
    ts_write_file(v->input, "\x02\x00\x00", 3);
    return 1;
}
/* Raw header bytes (may hold invalid UTF-8) plus pattern data. */
static int raw_header(const char *dir, const char *hdr, size_t hlen, size_t data_len, variant *v)
{
    size_t n = 8 + hlen + data_len;
    uint8_t *b = malloc(n);
    mxc_put_u64(b, hlen);
    memcpy(b + 8, hdr, hlen);
    for (size_t k = 0; k < data_len; k++) b[8 + hlen + k] = (uint8_t)k;
    v->input = ts_path(dir, "model.safetensors");
    ts_write_file(v->input, b, n);
    free(b);
    return 1;
}
static int b_name_latin1(const char *dir, size_t i, variant *v)
{
    ONCE;
    static const char h[] = "{\"caf\xe9.weight\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    return raw_header(dir, h, sizeof h - 1, 2, v);
}
static int b_name_surrogate(const char *dir, size_t i, variant *v)
{
    ONCE;
    static const char h[] = "{\"w\xed\xa0\x80\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    return raw_header(dir, h, sizeof h - 1, 2, v);
}
static int b_name_overlong(const char *dir, size_t i, variant *v)
{
    ONCE;
    static const char h[] = "{\"w\xc0\xaf\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    return raw_header(dir, h, sizeof h - 1, 2, v);
}
static int b_nul_padding(const char *dir, size_t i, variant *v)
{
    ONCE;
    static const char h[] = "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}\0\0\0";
    return raw_header(dir, h, sizeof h - 1, 2, v);
}
/* A second tensor holding NaN: the first is already written when the conversion fails. */
static int b_nan_after_large_tensor(const char *dir, size_t i, variant *v)
{
    ONCE;
    size_t n1 = 256 * 256, n = n1 + 8;
    float *x = malloc(n * sizeof *x);
    for (size_t k = 0; k < n; k++) x[k] = (float)(k % 101) / 50.0f - 1.0f;
    x[n1 + 6] = NAN;
    v->input = ts_path(dir, "model.safetensors");
    char *h = xasprintf("{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[256,256],\"data_offsets\":[0,%zu]},"
                        "\"z.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[%zu,%zu]}}",
                        n1 * 4, n1 * 4, n * 4);
    free(put_st(dir, "model.safetensors", h, x, n * 4));
    free(h);
    free(x);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Checks of successful rows                                               */
/* ---------------------------------------------------------------------- */

/* Every tensor stored at source precision holds exactly the source bytes; returns how many. */
static size_t check_exact_tensors(const char *in, const char *out, int all)
{
    mixq_error err;
    st_model *m = NULL;
    cr_assert_eq(st_open(in, &m, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    cr_assert_eq(mixq_tensor_count(f), m->ntensors);
    size_t exact = 0;
    for (size_t i = 0; i < m->ntensors; i++) {
        const st_tensor *st = &m->tensors[i];
        const mixq_tensor *t = mixq_find(f, st->name);
        cr_assert(t, "%s missing", st->name);
        mixq_tensor_info info;
        mixq_tensor_get_info(t, &info);
        cr_assert_eq(info.ndim, st->ndim, "%s: ndim", st->name);
        for (unsigned d = 0; d < st->ndim; d++) cr_assert_eq(info.shape[d], st->shape[d], "%s: shape", st->name);
        cr_assert_eq(info.n_elements, st->n_elements);
        if (info.quantized) {
            cr_assert(!all, "%s was quantized", st->name);
            continue;
        }
        mixq_section sec;
        cr_assert_eq(mixq_tensor_section(t, MIXQ_SEC_DATA, &sec), MIXQ_OK);
        int at_source_precision = info.qtype == MIXQ_QT_RAW ||
                                  (info.qtype == MIXQ_QT_F32 && !strcmp(info.source_dtype, "F32")) ||
                                  (info.qtype == MIXQ_QT_F16 && !strcmp(info.source_dtype, "F16")) ||
                                  (info.qtype == MIXQ_QT_BF16 && !strcmp(info.source_dtype, "BF16"));
        if (!at_source_precision) {
            cr_assert(!all, "%s stored as %s from %s", st->name, info.quant_type, info.source_dtype);
            continue;
        }
        cr_assert_eq(sec.size, st->nbytes, "%s: %llu bytes stored, %llu in the source", st->name,
                     (unsigned long long)sec.size, (unsigned long long)st->nbytes);
        cr_assert(st->nbytes == 0 || memcmp(sec.data, st->data, st->nbytes) == 0, "%s: bytes differ from the source",
                  st->name);
        exact++;
    }
    mixq_close(f);
    st_close(m);
    return exact;
}

static void ok_all_exact(const char *in, const char *out)
{
    cr_assert_gt(check_exact_tensors(in, out, 1), 0);
}

static void ok_plain_exact(const char *in, const char *out)
{
    cr_assert_gt(check_exact_tensors(in, out, 0), 0);
}

/* NaN stays NaN and infinities keep their sign through f32 -> f16. */
static void ok_nonfinite_kept(const char *in, const char *out)
{
    mixq_error err;
    st_model *m = NULL;
    cr_assert_eq(st_open(in, &m, &err), MIXQ_OK, "%s", err.message);
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    const st_tensor *st = &m->tensors[0];
    const mixq_tensor *t = mixq_find(f, st->name);
    mixq_tensor_info info;
    mixq_tensor_get_info(t, &info);
    cr_assert_eq(info.qtype, MIXQ_QT_F16);
    float x[16], y[16];
    cr_assert_leq(st->n_elements, 16);
    memcpy(x, st->data, st->nbytes);
    cr_assert_eq(mixq_dequantize_f32(f, t, 0, info.rows, y, &err), MIXQ_OK, "%s", err.message);
    for (size_t k = 0; k < st->n_elements; k++) {
        if (isnan(x[k])) cr_assert(isnan(y[k]), "element %zu: NaN became %g", k, (double)y[k]);
        else if (isinf(x[k])) cr_assert(isinf(y[k]) && signbit(x[k]) == signbit(y[k]), "element %zu: %g became %g",
                                        k, (double)x[k], (double)y[k]);
    }
    mixq_close(f);
    st_close(m);
}

/* Zero-element tensors: listed with their shapes, 0 bytes, and they come back through export. */
static void ok_zero_elements(const char *in, const char *out)
{
    check_exact_tensors(in, out, 0);
    mixq_error err;
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    size_t empty = 0;
    for (size_t i = 0; i < mixq_tensor_count(f); i++) {
        mixq_tensor_info info;
        mixq_tensor_get_info(mixq_tensor_at(f, i), &info);
        if (info.n_elements == 0) {
            empty++;
            cr_assert_eq(info.nbytes, 0, "%s: %llu bytes for no elements", info.name, (unsigned long long)info.nbytes);
            float dummy;
            cr_assert_eq(mixq_dequantize_f32(f, mixq_tensor_at(f, i), 0, info.rows, &dummy, &err), MIXQ_OK, "%s",
                         err.message);
        }
    }
    cr_assert_geq(empty, 4);
    mixq_close(f);

    /* Back to safetensors through `mixq export` (when this build has it): same names and shapes. */
    char *o = NULL, *e = NULL;
    int has_export = ts_run_cli((const char *const[]){"export", "--help", NULL}, &o, &e) == 0;
    free(o); free(e);
    if (!has_export) return;
    char *dir = ts_tmpdir_tracked(), *back = ts_path(dir, "back.safetensors");
    int rc = ts_run_cli((const char *const[]){"export", out, "-o", back, "--quiet", NULL}, &o, &e);
    cr_assert_eq(rc, 0, "export: %s", e);
    free(o); free(e);
    st_model *a = NULL, *b = NULL;
    cr_assert_eq(st_open(in, &a, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(st_open(back, &b, &err), MIXQ_OK, "%s", err.message);
    cr_assert_eq(a->ntensors, b->ntensors);
    for (size_t i = 0; i < a->ntensors; i++) {
        const st_tensor *x = &a->tensors[i], *y = st_find(b, x->name);
        cr_assert(y, "%s lost by the round trip", x->name);
        cr_assert_eq(x->ndim, y->ndim, "%s", x->name);
        for (unsigned d = 0; d < x->ndim; d++) cr_assert_eq(x->shape[d], y->shape[d], "%s", x->name);
        cr_assert_eq(x->n_elements, y->n_elements);
    }
    st_close(a);
    st_close(b);
    ts_rmtree(dir);
    free(dir); free(back);
}

static void ok_no_tensors(const char *in, const char *out)
{
    (void)in;
    mixq_error err;
    mixq_file *f = mixq_open(out, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    cr_assert_eq(mixq_tensor_count(f), 0);
    mixq_close(f);
}

/* ---------------------------------------------------------------------- */
/* Data of the value rows                                                  */
/* ---------------------------------------------------------------------- */

#define F32_NAN_PAYLOAD 0x7fc00001u
#define F32_NEG_NAN 0xffc00000u
#define F32_PINF 0x7f800000u
#define F32_NINF 0xff800000u
static const float nan_2x4[8] = {1, 2, 3, 4, 5, NAN, 7, 8};
static const float inf_2x4[8] = {1, 2, 3, 4, 5, 6, 7, INFINITY};
static const float big_2x4[8] = {1, 2, 1e6f, 4, 5, 6, 7, 8};
static const float nan_row0[8] = {NAN, 2, 3, 4, 5, 6, 7, 8};
static const uint16_t f16_ninf[4] = {0x3c00, 0x3c00, 0xfc00, 0x3c00};
static const uint16_t bf16_nan[4] = {0x3f80, 0x7fc0, 0x3f80, 0x3f80};
static const double f64_nan[4] = {1, 2, 3, NAN};
static const uint8_t e4m3_nan[4] = {0x38, 0x38, 0x7f, 0x38};
static const uint8_t e5m2_inf[4] = {0x3c, 0x3c, 0x3c, 0x7c};
static const uint32_t nonfinite_f32[8] = {0x3f800000u, F32_NAN_PAYLOAD, F32_NEG_NAN, F32_PINF,
                                          F32_NINF,    0x49742400u /* 1e6 */, 0x80000000u, 0x00000001u};
static const uint32_t nonfinite_small_f32[8] = {0x3f800000u, F32_NAN_PAYLOAD, F32_NEG_NAN, F32_PINF,
                                                F32_NINF,    0x477fe000u /* 65504 */, 0x80000000u, 0x00000001u};
static const uint16_t nonfinite_f16[4] = {0x7e01, 0xfc00, 0x7c00, 0x8001};
static const uint16_t nonfinite_bf16[4] = {0x7fc1, 0xff80, 0x7f80, 0x0001};
static const float nan_1d[5] = {1, NAN, INFINITY, -INFINITY, 2};

#define HDR_2x4(dt) "{\"w.weight\":{\"dtype\":\"" dt "\",\"shape\":[2,4],\"data_offsets\":[0,32]}}"
#define HDR_2x2(dt, n) "{\"w.weight\":{\"dtype\":\"" dt "\",\"shape\":[2,2],\"data_offsets\":[0," #n "]}}"

static const char zero_hdr[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"empty.rows\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
    "\"empty.cols\":{\"dtype\":\"BF16\",\"shape\":[4,0],\"data_offsets\":[0,0]},"
    "\"empty.vec\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
    "\"empty.3d\":{\"dtype\":\"F16\",\"shape\":[2,0,3],\"data_offsets\":[0,0]},"
    "\"empty.ids\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[0,0]},"
    "\"w.weight\":{\"dtype\":\"F32\",\"shape\":[2,64],\"data_offsets\":[0,512]}}";
static float ramp_128[128];

/* ---------------------------------------------------------------------- */
/* The catalogue                                                           */
/* ---------------------------------------------------------------------- */

#define ST_ROW(nm, h, dlen, code, msg, tn) \
    {.name = nm, .hdr = h, .data_len = dlen, .cmd = CONVERT, .exit_code = code, .message = msg, .tensor = tn}
#define B_ROW(nm, fn, c, code, msg, tn) {.name = nm, .build = fn, .cmd = c, .exit_code = code, .message = msg, .tensor = tn}
#define C_ROW(nm, patch, post, c, code, msg) \
    {.name = nm, .cpatch = patch, .cpost = post, .cmd = c, .exit_code = code, .message = msg}
#define U8_2 "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}"

static row catalogue[] = {
    /* ---- safetensors: the file and its length prefix ---- */
    B_ROW("truncated at every byte (header and data)", b_truncated_safetensors, CONVERT, 1, NULL, NULL),
    B_ROW("empty file", b_empty_safetensors, CONVERT, 1, "file is empty; a safetensors file starts with an 8-byte header length", NULL),
    ST_ROW("header of length 0", "", 0, 1, "header is not valid JSON", NULL),
    B_ROW("file shorter than the length prefix", b_short_file, CONVERT, 1, "too short for the 8-byte header length", NULL),
    B_ROW("header length beyond the file", b_header_len_beyond_file, CONVERT, 1, "header length 1000 exceeds the file size 50", NULL),
    B_ROW("header length over 100 MB", b_header_len_over_limit, CONVERT, 1, "exceeds the limit of 100000000 bytes", NULL),
    B_ROW("header length 2^64-1", b_header_len_u64_max, CONVERT, 1, "header length 18446744073709551615 exceeds the limit", NULL),
    /* ---- safetensors: the JSON header ---- */
    ST_ROW("header not JSON", "{\"w\":{\"dtype\":\"U8\",", 0, 1, "header is not valid JSON", NULL),
    ST_ROW("header a JSON array", "[{\"dtype\":\"U8\"}]", 0, 1, "header must be a JSON object", NULL),
    ST_ROW("header a JSON string", "\"weights\"", 0, 1, "header is not valid JSON", NULL),
    ST_ROW("header a number", "42", 0, 1, "header is not valid JSON", NULL),
    B_ROW("tensor name in Latin-1, not UTF-8", b_name_latin1, CONVERT, 1, "header is not valid UTF-8 (byte 5", NULL),
    B_ROW("tensor name with a UTF-8 surrogate", b_name_surrogate, CONVERT, 1, "header is not valid UTF-8 (byte 3", NULL),
    B_ROW("tensor name with an overlong UTF-8 sequence", b_name_overlong, CONVERT, 1, "header is not valid UTF-8 (byte 3", NULL),
    B_ROW("NUL bytes after the JSON", b_nul_padding, CONVERT, 1, "header is not valid JSON", NULL),
    ST_ROW("text after the JSON object", U8_2 "x", 2, 1, "header is not valid JSON", NULL),
    ST_ROW("duplicate tensor names",
           "{\"dup.weight\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
           "\"dup.weight\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, 1, "duplicate object key", "dup.weight"),
    ST_ROW("escaped NUL in a tensor name", "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, 1,
           "header is not valid JSON", NULL),
    ST_ROW("integer too large for the parser", "{\"w\":{\"dtype\":\"U8\",\"shape\":[99999999999999999999],\"data_offsets\":[0,2]}}",
           2, 1, "too big integer", NULL),
    ST_ROW("__metadata__ not an object", "{\"__metadata__\":[\"pt\"]," "\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
           2, 1, "__metadata__ must be an object of strings, not an array", NULL),
    ST_ROW("__metadata__ value not a string", "{\"__metadata__\":{\"format\":1},\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
           2, 1, "__metadata__ value of \"format\" must be a string, not 1", NULL),
    /* ---- safetensors: tensor entries, wrong types ---- */
    ST_ROW("tensor entry not an object", "{\"w.weight\":[1,2]}", 0, 1, "expected an object with dtype, shape and data_offsets", "w.weight"),
    ST_ROW("dtype missing", "{\"w.weight\":{\"shape\":[2],\"data_offsets\":[0,2]}}", 2, 1, "missing \"dtype\"", "w.weight"),
    ST_ROW("shape missing", "{\"w.weight\":{\"dtype\":\"U8\",\"data_offsets\":[0,2]}}", 2, 1, "missing \"shape\"", "w.weight"),
    ST_ROW("data_offsets missing", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[2]}}", 2, 1, "missing \"data_offsets\"", "w.weight"),
    ST_ROW("dtype a number", "{\"w.weight\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,2]}}", 2, 1, "dtype must be a string, not 4", "w.weight"),
    ST_ROW("unknown dtype", "{\"w.weight\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,32]}}", 32, 1, "unsupported dtype \"F128\"", "w.weight"),
    ST_ROW("dtype in lower case", "{\"w.weight\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 1, "unsupported dtype \"f32\"", "w.weight"),
    ST_ROW("shape not an array", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":2,\"data_offsets\":[0,2]}}", 2, 1,
           "shape must be an array of non-negative integers, not 2", "w.weight"),
    ST_ROW("negative dimension", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[2,-3],\"data_offsets\":[0,2]}}", 2, 1,
           "shape dimension 1 is -3", "w.weight"),
    ST_ROW("fractional dimension", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[2.5],\"data_offsets\":[0,2]}}", 2, 1,
           "shape dimension 0 is the real number 2.5", "w.weight"),
    ST_ROW("integral real dimension", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[2.0],\"data_offsets\":[0,2]}}", 2, 1,
           "shape dimension 0 is the real number 2.0", "w.weight"),
    ST_ROW("dimension a string", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[\"2\"],\"data_offsets\":[0,2]}}", 2, 1,
           "shape dimension 0 is a string", "w.weight"),
    ST_ROW("nine dimensions", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,2]}}", 2, 1,
           "shape has 9 dimensions; at most 8", "w.weight"),
    ST_ROW("element count overflows 64 bits",
           "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,2]}}", 2, 1,
           "shape [4294967296, 4294967296, 2] of U8 is too large (its size overflows 64 bits)", "w.weight"),
    ST_ROW("byte size overflows 64 bits",
           "{\"w.weight\":{\"dtype\":\"F32\",\"shape\":[2305843009213693952,4],\"data_offsets\":[0,2]}}", 2, 1,
           "its size overflows 64 bits", "w.weight"),
    ST_ROW("data_offsets not a pair", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0]}}", 2, 1,
           "data_offsets must be an array [begin, end]", "w.weight"),
    ST_ROW("negative offset", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[-1,1]}}", 2, 1,
           "data_offsets begin is -1", "w.weight"),
    ST_ROW("fractional offset", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2.5]}}", 2, 1,
           "data_offsets end is the real number 2.5", "w.weight"),
    ST_ROW("offsets end before they begin", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,0]}}", 2, 1,
           "data_offsets [2, 0] end before they begin", "w.weight"),
    ST_ROW("offsets and shape disagree", "{\"w.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12, 1,
           "data_offsets [0, 12] hold 12 bytes but shape [2, 2] of F32 needs 16", "w.weight"),
    /* ---- safetensors: offsets against each other and the file ---- */
    ST_ROW("overlapping tensors",
           "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
           "\"b.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24, 1, "overlap tensor \"a.weight\"", "b.weight"),
    ST_ROW("identical offsets",
           "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
           "\"b.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, 1, "data_offsets [0, 16] overlap tensor", "b.weight"),
    ST_ROW("hole between tensors",
           "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
           "\"b.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[20,36]}}", 36, 1,
           "leave a gap of 4 unused bytes after tensor \"a.weight\"", "b.weight"),
    ST_ROW("hole at the start", "{\"w.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24, 1,
           "leave a gap of 8 unused bytes at the start of the data section", "w.weight"),
    ST_ROW("trailing bytes after the last tensor", "{\"w.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 20, 1,
           "4 trailing bytes belong to no tensor", NULL),
    ST_ROW("offsets beyond the end of the file", "{\"w.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10, 1,
           "extend past the end of the file", "w.weight"),
    ST_ROW("offsets of 2^64-1 (beyond the JSON integer range)",
           "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[18446744073709551615,18446744073709551615]}}",
           0, 1, "too big integer", NULL),
    ST_ROW("offsets near 2^63", "{\"w.weight\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[9223372036854775805,9223372036854775807]}}",
           2, 1, "leave a gap of 9223372036854775805 unused bytes at the start", "w.weight"),
    /* ---- sharded checkpoints ---- */
    B_ROW("index names a missing shard", b_missing_shard, CONVERT, 3,
          "shard \"" SHARD2 "\" (holding tensor \"b.weight\") does not exist", "b.weight"),
    B_ROW("index file given directly, shard missing", b_index_file_input, CONVERT, 3, "shard \"" SHARD1 "\"", "a.weight"),
    B_ROW("index not JSON", b_index_not_json, CONVERT, 1, "not valid JSON", NULL),
    B_ROW("index a JSON array", b_index_array, CONVERT, 1, "index must be a JSON object", NULL),
    B_ROW("index without weight_map", b_index_no_map, CONVERT, 1, "index has no \"weight_map\"", NULL),
    B_ROW("index with an empty weight_map", b_index_empty_map, CONVERT, 1, "\"weight_map\" lists no tensors", NULL),
    B_ROW("index weight_map an array", b_index_map_not_object, CONVERT, 1, "\"weight_map\" must be an object, not an array", NULL),
    B_ROW("index maps a tensor to a number", b_index_value_not_string, CONVERT, 1,
          "weight_map value of tensor \"b.weight\" must be a shard file name", "b.weight"),
    B_ROW("index maps a tensor outside its directory", b_index_path_traversal, CONVERT, 1, "is not a plain file name", "b.weight"),
    B_ROW("index metadata not an object", b_index_metadata_not_object, CONVERT, 1, "\"metadata\" must be an object", NULL),
    B_ROW("shard holds a tensor the index does not list", b_index_unlisted_tensor, CONVERT, 1, "is not listed in weight_map",
          "c.weight"),
    B_ROW("index maps a tensor to the wrong shard", b_index_wrong_shard, CONVERT, 1, "but weight_map maps it to", "x.weight"),
    B_ROW("index lists a tensor no shard holds", b_index_phantom_tensor, CONVERT, 1, "which does not contain it", "ghost.weight"),
    B_ROW("tensor in two shards", b_index_tensor_twice, CONVERT, 1, "appears in two shards", "a.weight"),
    B_ROW("malformed shard", b_index_bad_shard, CONVERT, 1, "hold 16 bytes but shape [2, 3] of F32 needs 24", "b.weight"),
    B_ROW("directory without a checkpoint", b_empty_dir, CONVERT, 3, "directory holds neither model.safetensors.index.json nor model.safetensors", NULL),
    B_ROW("input does not exist", b_missing_file, CONVERT, 3, "cannot open: No such file or directory", NULL),
    B_ROW("input is a character device", b_dev_null, CONVERT, 3, "not a regular file", NULL),
    /* (a conversion plan naming unknown tensors is rejected once the planner exists: add its rows here) */
    /* ---- values a quantized type cannot hold ---- */
    {.name = "NaN in a tensor to quantize (int8)", .hdr = HDR_2x4("F32"), .data = nan_2x4, .data_size = sizeof nan_2x4,
     .cmd = CONVERT, .exit_code = 1, .message = "row 1, column 1 holds NaN", .tensor = "w.weight"},
    {.name = "+Inf in a tensor to quantize (int4)", .hdr = HDR_2x4("F32"), .data = inf_2x4, .data_size = sizeof inf_2x4,
     .cmd = CONVERT, .args = {"--type", "int4"}, .exit_code = 1, .message = "row 1, column 3 holds an infinity", .tensor = "w.weight"},
    {.name = "value beyond the f16 range (int8)", .hdr = HDR_2x4("F32"), .data = big_2x4, .data_size = sizeof big_2x4,
     .cmd = CONVERT, .exit_code = 1, .message = "row 0, column 2 holds a value beyond", .tensor = "w.weight"},
    {.name = "NaN in row 0, one group per row", .hdr = HDR_2x4("F32"), .data = nan_row0, .data_size = sizeof nan_row0,
     .cmd = CONVERT, .args = {"--group-size", "row"}, .exit_code = 1, .message = "row 0, column 0 holds NaN", .tensor = "w.weight"},
    {.name = "-Inf in an F16 source", .hdr = HDR_2x2("F16", 8), .data = f16_ninf, .data_size = sizeof f16_ninf, .cmd = CONVERT,
     .exit_code = 1, .message = "row 1, column 0 holds an infinity", .tensor = "w.weight"},
    {.name = "NaN in a BF16 source (int4)", .hdr = HDR_2x2("BF16", 8), .data = bf16_nan, .data_size = sizeof bf16_nan,
     .cmd = CONVERT, .args = {"--type", "int4"}, .exit_code = 1, .message = "row 0, column 1 holds NaN", .tensor = "w.weight"},
    {.name = "NaN in an F64 source", .hdr = HDR_2x2("F64", 32), .data = f64_nan, .data_size = sizeof f64_nan, .cmd = CONVERT,
     .exit_code = 1, .message = "row 1, column 1 holds NaN", .tensor = "w.weight"},
    {.name = "NaN in an F8_E4M3 source", .hdr = HDR_2x2("F8_E4M3", 4), .data = e4m3_nan, .data_size = sizeof e4m3_nan,
     .cmd = CONVERT, .exit_code = 1, .message = "row 1, column 0 holds NaN", .tensor = "w.weight"},
    {.name = "+Inf in an F8_E5M2 source", .hdr = HDR_2x2("F8_E5M2", 4), .data = e5m2_inf, .data_size = sizeof e5m2_inf,
     .cmd = CONVERT, .args = {"--type", "int4"}, .exit_code = 1, .message = "row 1, column 1 holds an infinity", .tensor = "w.weight"},
    {.name = "NaN in a 1-D tensor with --quantize-1d", .hdr = "{\"n.bias\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20]}}",
     .data = nan_1d, .data_size = sizeof nan_1d, .cmd = CONVERT, .args = {"--quantize-1d"}, .exit_code = 1,
     .message = "row 0, column 1 holds NaN", .tensor = "n.bias"},
    {.name = "NaN in a tensor whose name holds a newline", .hdr = "{\"w\\nx.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]}}",
     .data = nan_2x4, .data_size = sizeof nan_2x4, .cmd = CONVERT, .exit_code = 1, .message = "row 1, column 1 holds NaN",
     .tensor = "w\\x0ax.weight", .bug = "B5: convert.c prints tensor names unescaped"},
    {.name = "value beyond f16 in a tensor whose name holds ESC", .hdr = "{\"\\u001b[2Jw\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]}}",
     .data = nonfinite_f32, .data_size = sizeof nonfinite_f32, .cmd = CONVERT, .args = {"--type", "f16"}, .exit_code = 1,
     .message = "beyond the range of f16", .tensor = "\\x1b[2Jw", .bug = "B5: convert.c prints tensor names unescaped"},
    B_ROW("NaN in the second tensor, after 256 KB were written", b_nan_after_large_tensor, CONVERT, 1, "row 1, column 2 holds NaN", "z.weight"),
    /* ---- inputs that convert: zero elements, nothing at all, non-finite values kept at source precision ---- */
    {.name = "zero-element tensors (int4)", .hdr = zero_hdr, .data = ramp_128, .data_size = sizeof ramp_128, .cmd = CONVERT,
     .args = {"--type", "int4"}, .exit_code = 0, .check_ok = ok_zero_elements},
    {.name = "zero-element tensors (int8, --quantize-1d)", .hdr = zero_hdr, .data = ramp_128, .data_size = sizeof ramp_128,
     .cmd = CONVERT, .args = {"--quantize-1d"}, .exit_code = 0, .check_ok = ok_zero_elements},
    {.name = "no tensors at all", .hdr = "{}", .cmd = CONVERT, .exit_code = 0, .check_ok = ok_no_tensors},
    {.name = "only __metadata__", .hdr = "{\"__metadata__\":{\"format\":\"pt\"}}", .cmd = CONVERT, .exit_code = 0,
     .check_ok = ok_no_tensors},
    {.name = "NaN, Inf and 1e6 kept exactly (--type f32)", .hdr = HDR_2x4("F32"), .data = nonfinite_f32,
     .data_size = sizeof nonfinite_f32, .cmd = CONVERT, .args = {"--type", "f32"}, .exit_code = 0, .check_ok = ok_all_exact},
    {.name = "F16 NaN and Inf kept exactly (--type f16)", .hdr = HDR_2x2("F16", 8), .data = nonfinite_f16,
     .data_size = sizeof nonfinite_f16, .cmd = CONVERT, .args = {"--type", "f16"}, .exit_code = 0, .check_ok = ok_all_exact},
    {.name = "BF16 NaN and Inf kept exactly (--type bf16)", .hdr = HDR_2x2("BF16", 8), .data = nonfinite_bf16,
     .data_size = sizeof nonfinite_bf16, .cmd = CONVERT, .args = {"--type", "bf16"}, .exit_code = 0, .check_ok = ok_all_exact},
    {.name = "NaN in a 1-D tensor kept exactly (int8)", .hdr = "{\"n.bias\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20]}}",
     .data = nan_1d, .data_size = sizeof nan_1d, .cmd = CONVERT, .exit_code = 0, .check_ok = ok_plain_exact},
    {.name = "F32 NaN and Inf stay NaN and Inf in f16", .hdr = HDR_2x4("F32"), .data = nonfinite_small_f32,
     .data_size = sizeof nonfinite_small_f32, .cmd = CONVERT, .args = {"--type", "f16"}, .exit_code = 0,
     .check_ok = ok_nonfinite_kept},
    {.name = "finite value beyond the f16 range (--type f16)", .hdr = HDR_2x4("F32"), .data = nonfinite_f32,
     .data_size = sizeof nonfinite_f32, .cmd = CONVERT, .args = {"--type", "f16"}, .exit_code = 1,
     .message = "row 1, column 1 holds 1e+06, beyond the range of f16", .tensor = "w.weight"},
    /* ---- containers: the file and its preamble ---- */
    B_ROW("container truncated at every byte", b_truncated_container, VERIFY, 1, NULL, NULL),
    B_ROW("empty container", b_empty_container, VERIFY, 1, "the file is empty; not a mixq container", NULL),
    B_ROW("safetensors file given to verify", b_safetensors_as_container, VERIFY, 1, "not a mixq container (bad magic bytes)", NULL),
    B_ROW("container path is a directory", b_directory, VERIFY, 3, "not a regular file", NULL),
    B_ROW("container does not exist", b_missing_file, VERIFY, 3, "cannot open: No such file or directory", NULL),
    C_ROW("bad magic", c_none, p_magic, VERIFY, 1, "not a mixq container (bad magic bytes)"),
    C_ROW("format major version 2", c_none, p_major2, VERIFY, 1, "format version 2 is newer than this mixq supports"),
    C_ROW("format major version 0", c_none, p_major0, VERIFY, 1, "invalid format version 0 (expected 1)"),
    C_ROW("preamble flags set", c_none, p_flags, VERIFY, 1, "preamble flags 0x00000001 are set"),
    C_ROW("data_offset not 64", c_none, p_data_offset, VERIFY, 1, "data_offset is 128; it must be 64"),
    C_ROW("data_length not a multiple of 64", c_none, p_data_length_odd, VERIFY, 1, "is not a multiple of 64"),
    C_ROW("header_offset not data_offset + data_length", c_none, p_header_offset, VERIFY, 1, "is not data_offset + data_length"),
    C_ROW("data_offset + data_length wraps around", c_none, p_header_offset_wrap, VERIFY, 1, "is not data_offset + data_length"),
    C_ROW("header_length 0", c_none, p_header_length0, VERIFY, 1, "header_length 0 is outside 1..268435456"),
    C_ROW("header_length 2^40", c_none, p_header_length_huge, VERIFY, 1, "header_length 1099511627776 is outside 1..268435456"),
    C_ROW("header_length one beyond the file", c_none, p_header_length_plus1, VERIFY, 1, "extends beyond the end of the file"),
    C_ROW("file cut inside the header", c_cut_header, NULL, VERIFY, 1, "extends beyond the end of the file"),
    C_ROW("bytes after the header", c_trailing, NULL, VERIFY, 1, "64 unexpected byte(s) after the header"),
    C_ROW("preamble checksum mismatch", c_bad_preamble_hash, NULL, VERIFY, 1, "preamble: checksum mismatch"),
    C_ROW("preamble changed, checksum not updated", c_bad_preamble_hash, p_minor_changed, VERIFY, 1, "preamble: checksum mismatch"),
    C_ROW("header checksum mismatch", c_bad_header_hash, NULL, VERIFY, 1, "checksum mismatch (stored"),
    /* ---- containers: the JSON header (checksums valid) ---- */
    C_ROW("header not JSON", c_header_not_json, NULL, VERIFY, 1, "header is not valid JSON"),
    C_ROW("header a JSON array", c_header_array, NULL, VERIFY, 1, "header is not a JSON object"),
    C_ROW("header with a byte-order mark", c_header_bom, NULL, VERIFY, 1, "header is not valid JSON"),
    C_ROW("header not UTF-8", c_header_not_utf8, NULL, VERIFY, 1, "header is not valid JSON"),
    C_ROW("header with a duplicate key", c_header_dup_key, NULL, VERIFY, 1, "duplicate object key"),
    C_ROW("format not \"mixq\"", c_format, NULL, VERIFY, 1, "\"format\" must be \"mixq\""),
    C_ROW("format_version 2 in the header", c_format_version, NULL, VERIFY, 1, "format_version 2 does not match the preamble's 1"),
    C_ROW("alignment 32", c_alignment, NULL, VERIFY, 1, "alignment 32 is not 64"),
    C_ROW("tensors missing", c_no_tensors_key, NULL, VERIFY, 1, "key \"tensors\" is missing"),
    C_ROW("tensors an object", c_tensors_object, NULL, VERIFY, 1, "\"tensors\" must be an array"),
    C_ROW("metadata missing", c_no_metadata, NULL, VERIFY, 1, "key \"metadata\" is missing"),
    C_ROW("metadata source_files a string", c_source_files, NULL, VERIFY, 1, "\"source_files\" must be an array"),
    C_ROW("metadata source_metadata value a number", c_source_metadata_value, NULL, VERIFY, 1,
          "source_metadata[\"format\"] must be a string"),
    C_ROW("metadata options group_size negative", c_options_type, NULL, VERIFY, 1, "\"group_size\" must be an integer >= 0"),
    /* ---- containers: tensor entries ---- */
    C_ROW("tensor entry a number", c_entry_not_object, NULL, VERIFY, 1, "tensor #3: entry must be an object"),
    C_ROW("tensor name missing", c_name_missing, NULL, VERIFY, 1, "tensor #1: key \"name\" is missing"),
    C_ROW("tensor name empty", c_name_empty, NULL, VERIFY, 1, "tensor #1: \"name\" is empty"),
    C_ROW("tensor name a number", c_name_not_string, NULL, VERIFY, 1, "tensor #1: \"name\" must be a string"),
    C_ROW("duplicate tensor names", c_duplicate_names, NULL, VERIFY, 1, "name used by tensors #1 and #3; names must be unique"),
    C_ROW("negative dimension", c_shape_negative, NULL, VERIFY, 1, "shape[0] must be an integer >= 0"),
    C_ROW("fractional dimension", c_shape_fraction, NULL, VERIFY, 1, "shape[0] must be an integer >= 0"),
    C_ROW("dimension a string", c_shape_string, NULL, VERIFY, 1, "shape[1] must be an integer >= 0"),
    C_ROW("element count overflows 64 bits", c_shape_overflow, NULL, VERIFY, 1, "the element count of the shape overflows 64 bits"),
    C_ROW("nine dimensions", c_shape_9_dims, NULL, VERIFY, 1, "shape has 9 dims; at most 8 are allowed"),
    C_ROW("shape does not match the stored size", c_shape_mismatch, NULL, VERIFY, 1, "\"length\" is"),
    C_ROW("unknown quant_type", c_quant_type_unknown, NULL, VERIFY, 1, "unsupported quant_type \"int5\""),
    C_ROW("quant_type a number", c_quant_type_number, NULL, VERIFY, 1, "\"quant_type\" must be a string"),
    C_ROW("unknown source_dtype", c_source_dtype_unknown, NULL, VERIFY, 1, "unknown source_dtype \"F128\""),
    C_ROW("group_size not allowed for int4", c_group_size, NULL, VERIFY, 1, "group_size 48 is not allowed for quant_type int4"),
    C_ROW("group_size on a plain type", c_group_size_plain, NULL, VERIFY, 1, "group_size 64 is not allowed for quant_type f32"),
    C_ROW("symmetric wrong for int4", c_symmetric, NULL, VERIFY, 1, "\"symmetric\" is true but quant_type int4 is asymmetric"),
    C_ROW("length wrong", c_length, NULL, VERIFY, 1, "\"length\" is"),
    C_ROW("length negative", c_length_negative, NULL, VERIFY, 1, "\"length\" must be an integer >= 0"),
    C_ROW("section at the wrong offset", c_section_offset, NULL, VERIFY, 1, "section \"scales\" has offset"),
    C_ROW("section missing", c_section_missing, NULL, VERIFY, 1, "section \"mins\" is missing (quant_type int4 stores it)"),
    C_ROW("extra section", c_section_extra, NULL, VERIFY, 1, "unexpected section \"codes\" for quant_type f32"),
    C_ROW("section a number", c_section_not_object, NULL, VERIFY, 1, "section \"codes\" must be an object"),
    C_ROW("misaligned tensor offset", c_offset_misaligned, NULL, VERIFY, 1, "(tensors follow each other, each aligned to 64)"),
    C_ROW("overlapping tensors", c_offset_overlap, NULL, VERIFY, 1, "(tensors follow each other, each aligned to 64)"),
    C_ROW("hole between tensors", c_offset_hole, NULL, VERIFY, 1, "(tensors follow each other, each aligned to 64)"),
    C_ROW("first tensor inside the preamble", c_offset_first, NULL, VERIFY, 1, "\"offset\" is 0 but must be 64"),
    C_ROW("offset near 2^63", c_offset_huge, NULL, VERIFY, 1, "\"offset\" is 9223372036854775797 but must be"),
    C_ROW("tensors out of data order", c_swap_entries, NULL, VERIFY, 1, "(tensors follow each other, each aligned to 64)"),
    C_ROW("xxh3 not hex", c_xxh3_not_hex, NULL, VERIFY, 1, "\"xxh3\" must be 16 lowercase hex digits"),
    C_ROW("xxh3 in upper case", c_xxh3_upper, NULL, VERIFY, 1, "\"xxh3\" must be 16 lowercase hex digits"),
    C_ROW("xxh3 of 15 digits", c_xxh3_short, NULL, VERIFY, 1, "\"xxh3\" must be 16 lowercase hex digits"),
    C_ROW("last tensor beyond the data region", c_data_short, NULL, VERIFY, 1, "extend beyond the data region"),
    C_ROW("data region longer than the tensors", c_data_long, NULL, VERIFY, 1, "(the data region must end at the last tensor rounded up to 64)"),
    /* ---- containers: checksums and padding (what only verify sees) ---- */
    C_ROW("int4 tensor bytes changed", c_tensor_bytes, NULL, VERIFY, 1, "checksum mismatch (stored"),
    C_ROW("raw tensor bytes changed", c_tensor_bytes_raw, NULL, VERIFY, 1, "checksum mismatch (stored"),
    C_ROW("xxh3 wrong in the header", c_xxh3_wrong, NULL, VERIFY, 1, "checksum mismatch (stored 0123456789abcdef"),
    C_ROW("non-zero padding between tensors", c_padding_between_tensors, NULL, VERIFY, 1, NULL),
    C_ROW("non-zero padding between sections (xxh3 updated)", c_padding_between_sections, NULL, VERIFY, 1, NULL),
    C_ROW("non-zero padding at the end of the data", c_padding_at_end, NULL, VERIFY, 1, NULL),
    /* ---- the same container faults through dump (header only) and export (verifies first) ---- */
    C_ROW("dump: unknown quant_type", c_quant_type_unknown, NULL, DUMP, 1, "unsupported quant_type \"int5\""),
    C_ROW("dump: misaligned tensor offset", c_offset_misaligned, NULL, DUMP, 1, "(tensors follow each other, each aligned to 64)"),
    C_ROW("dump: element count overflows", c_shape_overflow, NULL, DUMP, 1, "overflows 64 bits"),
    C_ROW("dump: header checksum mismatch", c_bad_header_hash, NULL, DUMP, 1, "checksum mismatch"),
    C_ROW("dump --json: duplicate names", c_duplicate_names, NULL, DUMP_JSON, 1, "names must be unique"),
    C_ROW("dump --json: bytes after the header", c_trailing, NULL, DUMP_JSON, 1, "unexpected byte(s) after the header"),
    C_ROW("export: tensor bytes changed", c_tensor_bytes, NULL, EXPORT, 1, "checksum mismatch"),
    C_ROW("export: non-zero padding", c_padding_between_tensors, NULL, EXPORT, 1, NULL),
    C_ROW("export: unknown quant_type", c_quant_type_unknown, NULL, EXPORT, 1, "unsupported quant_type \"int5\""),
    C_ROW("export: bad magic", c_none, p_magic, EXPORT, 1, "bad magic"),
};

/* ---------------------------------------------------------------------- */
/* Running a row                                                           */
/* ---------------------------------------------------------------------- */

/* Builds variant i of a row into dir; 0 when the row has no such variant. */
static int build_variant(const row *r, const char *dir, size_t i, variant *v)
{
    memset(v, 0, sizeof *v);
    if (r->build) return r->build(dir, i, v);
    if (i) return 0;
    if (r->hdr) {
        v->input = put_st(dir, "model.safetensors", r->hdr, r->data, r->data ? r->data_size : r->data_len);
        return 1;
    }
    cont c;
    cont_load(&c);
    r->cpatch(&c);
    size_t len;
    uint8_t *b = cont_bytes(&c, r->cpost, &len);
    v->input = ts_path(dir, "model.mxq");
    ts_write_file(v->input, b, len);
    free(b);
    if (c.tensor[0]) v->tensor = strdup(c.tensor);
    if (c.message[0]) v->message = strdup(c.message);
    cont_free(&c);
    return 1;
}

static int export_available(void)
{
    static int cached = -1;
    if (cached < 0) {
        char *o = NULL, *e = NULL;
        cached = ts_run_cli((const char *const[]){"export", "--help", NULL}, &o, &e) == 0;
        free(o); free(e);
    }
    return cached;
}

/* Empties a directory (keeps it). */
static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = ts_path(dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) ts_rmtree(p);
        else unlink(p);
        free(p);
    }
    if (d) closedir(d);
}

static void run_row(const row *r)
{
    if (r->cmd == EXPORT && !export_available()) cr_skip_test("this mixq has no export command");
    char tag[300];
    if (r->bug) snprintf(tag, sizeof tag, "[KNOWN BUG %s] %s", r->bug, r->name);
    else snprintf(tag, sizeof tag, "%s", r->name);
    /* one directory for all variants (directory removal is slow on some file systems) */
    char *root = ts_tmpdir_tracked(), *indir = ts_path(root, "in"), *outdir = ts_path(root, "out");
    CHECK(mkdir(indir, 0755) == 0, "mkdir");
    CHECK(mkdir(outdir, 0755) == 0, "mkdir");
    for (size_t i = 0;; i++) {
        variant v;
        if (!build_variant(r, indir, i, &v)) {
            CHECK(i > 0, "%s: the builder made no input", tag);
            break;
        }
        const char *msg = v.message ? v.message : r->message;
        const char *tensor = v.tensor ? v.tensor : r->tensor;
        const char *file = v.file ? v.file : v.input;
        char *before = snapshot(indir);
        char *out = ts_path(outdir, r->cmd == EXPORT ? "out.safetensors" : "out.mxq");
        const char *args[12] = {command_name[r->cmd], v.input};
        size_t na = 2;
        if (r->cmd == CONVERT || r->cmd == EXPORT) {
            args[na++] = "-o";
            args[na++] = out;
        }
        if (r->cmd == DUMP_JSON) args[na++] = "--json";
        for (int k = 0; k < 4 && r->args[k]; k++) args[na++] = r->args[k];
        args[na] = NULL;

        char *o = NULL, *e = NULL;
        int rc = ts_run_cli(args, &o, &e);
        CHECK(rc == r->exit_code, "%s (variant %zu): exit code %d, expected %d; stderr: %s", tag, i, rc,
                     r->exit_code, e);
        if (r->exit_code == 0) {
            CHECK(ts_dir_count(outdir) == 1, "%s: expected exactly the output in %s", tag, outdir);
            if (r->check_ok) r->check_ok(v.input, out);
        } else {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "mixq %s: ", command_name[r->cmd]);
            size_t el = strlen(e);
            CHECK(el > 0 && e[el - 1] == '\n' && strchr(e, '\n') == e + el - 1,
                      "%s (variant %zu): the error is not exactly one line: \"%s\"", tag, i, e);
            CHECK(strncmp(e, prefix, strlen(prefix)) == 0, "%s (variant %zu): the error does not start with \"%s\": %s",
                      tag, i, prefix, e);
            if (msg) CHECK(strstr(e, msg), "%s (variant %zu): message lacks \"%s\": %s", tag, i, msg, e);
            CHECK(strstr(e, file) || (strstr(e, base_of(file)) && strlen(base_of(file)) > 3),
                      "%s (variant %zu): message does not name the file %s: %s", tag, i, file, e);
            if (tensor) CHECK(strstr(e, tensor), "%s (variant %zu): message does not name tensor \"%s\": %s", tag, i,
                                  tensor, e);
            CHECK(!strcmp(o, ""), "%s (variant %zu): something was printed on stdout: %s", tag, i, o);
            CHECK(ts_dir_count(outdir) == 0, "%s (variant %zu): an output or temporary file was left in %s", tag, i,
                         outdir);
        }
        char *after = snapshot(indir);
        CHECK(!strcmp(after, before), "%s (variant %zu): the input directory changed", tag, i);
        free(before); free(after);
        free(o); free(e);
        free(out);
        free(v.input); free(v.file); free(v.tensor); free(v.message);
        clear_dir(indir);
        clear_dir(outdir);
    }
    ts_rmtree(root);
    free(root); free(indir); free(outdir);
}

/* Writes the catalogue as the Markdown table of docs/ROBUSTNESS.md. */
static void write_markdown(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "| # | input | command | exit | message contains | tensor named |\n|--:|---|---|--:|---|---|\n");
    for (size_t i = 0; i < sizeof catalogue / sizeof catalogue[0]; i++) {
        const row *r = &catalogue[i];
        const char *cmd = r->cmd == DUMP_JSON ? "dump --json" : command_name[r->cmd];
        char args[80] = "";
        for (int k = 0; k < 4 && r->args[k]; k++) {
            strcat(args, " ");
            strcat(args, r->args[k]);
        }
        char bug[16] = "";
        if (r->bug) snprintf(bug, sizeof bug, "%.*s", (int)strcspn(r->bug, ":"), r->bug);
        fprintf(f, "| %zu | %s%s%s%s | %s%s | %d | ", i + 1, r->name, bug[0] ? " (**known bug " : "", bug,
                bug[0] ? "**)" : "", cmd, args, r->exit_code);
        /* container rows: the tensor and message the patch decides */
        char tn[300] = "", cm[200] = "";
        if (r->cpatch) {
            cont c;
            cont_load(&c);
            r->cpatch(&c);
            if (c.tensor[0]) snprintf(tn, sizeof tn, "`%s`", c.tensor);
            if (c.message[0]) snprintf(cm, sizeof cm, "%s", c.message);
            cont_free(&c);
        }
        if (r->tensor) snprintf(tn, sizeof tn, "`%s`", r->tensor);
        const char *m = r->message ? r->message
                        : cm[0] ? cm
                        : r->exit_code == 0 ? "(succeeds; the output is checked)"
                                            : "(depends on the cut)";
        fputc('`', f);
        for (const char *p = m; *p; p++) {
            if (*p == '|') fputs("\\|", f);
            else fputc(*p, f);
        }
        fputc('`', f);
        if (r->exit_code == 0) fprintf(f, " |  |\n");
        else fprintf(f, " | %s |\n", tn);
    }
    fclose(f);
}

/*
 * The parameters are row indices: Criterion runs each in a fresh process
 * where only memory from cr_malloc is shared, so the rows themselves (full
 * of pointers) are looked up there.
 */
static void free_params(struct criterion_test_params *p) { cr_free(p->params); }

ParameterizedTestParameters(catalogue, row)
{
    size_t n = sizeof catalogue / sizeof catalogue[0];
    size_t *idx = cr_malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    return cr_make_param_array(size_t, idx, n, free_params);
}

ParameterizedTest(size_t *i, catalogue, row, .timeout = 120)
{
    for (size_t k = 0; k < 128; k++) ramp_128[k] = (float)k / 64.0f - 1.0f;
    run_row(&catalogue[*i]);
}

Test(catalogue, has_enough_rows)
{
    const char *md = getenv("MIXQ_CATALOGUE_MD");
    if (md) write_markdown(md);
    size_t failing = 0;
    for (size_t i = 0; i < sizeof catalogue / sizeof catalogue[0]; i++) failing += catalogue[i].exit_code != 0;
    cr_assert_geq(failing, 40, "the catalogue needs at least 40 failing inputs, has %zu", failing);
}

/* ---------------------------------------------------------------------- */
/* Integrity: every single-bit flip of a small container is caught         */
/* ---------------------------------------------------------------------- */

/* Three small tensors: int4 (sections with padding between them), a 1-D f32 and a raw I32. */
static const char tiny_hdr[] = "{\"__metadata__\":{\"format\":\"pt\"},"
                               "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[3,40],\"data_offsets\":[0,480]},"
                               "\"b.bias\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[480,500]},"
                               "\"c.ids\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[500,508]}}";

static uint8_t *convert_tiny(mixq_qtype type, size_t *len)
{
    float x[127];
    for (int i = 0; i < 127; i++) x[i] = (float)((i * 37) % 61) / 30.0f - 1.0f;
    char *dir = ts_tmpdir_tracked(), *out = ts_path(dir, "tiny.mxq");
    char *in = put_st(dir, "tiny.safetensors", tiny_hdr, x, 508);
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    o.type = type;
    mixq_error err;
    cr_assert_eq(mixq_convert(in, out, &o, &err), MIXQ_OK, "%s", err.message);
    uint8_t *b = ts_read_file(out, len);
    ts_rmtree(dir);
    free(dir); free(out); free(in);
    return b;
}

/* The int4 conversion of the tiny checkpoint (made once per process; the caller frees its copy). */
static uint8_t *small_container(size_t *len)
{
    static uint8_t *cached;
    static size_t cached_len;
    if (!cached) cached = convert_tiny(MIXQ_QT_INT4, &cached_len);
    uint8_t *b = malloc(cached_len);
    memcpy(b, cached, cached_len);
    *len = cached_len;
    return b;
}

/* Flips every bit of a converted container in place and expects open or verify to fail, naming the region. */
static void every_bit_flip(mixq_qtype type)
{
    size_t len;
    uint8_t *orig = convert_tiny(type, &len);
    char *dir = ts_tmpdir_tracked(), *path = ts_path(dir, "c.mxq");
    ts_write_file(path, orig, len);
    mixq_error err;
    mixq_file *f = mixq_open(path, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "%s", err.message);
    size_t nt = mixq_tensor_count(f);
    cr_assert_eq(nt, 3);
    mixq_tensor_info info[3];
    char *names[3];
    for (size_t i = 0; i < nt; i++) {
        mixq_tensor_get_info(mixq_tensor_at(f, i), &info[i]);
        names[i] = strdup(info[i].name); /* info's strings die with the file */
    }
    uint64_t header_offset = mxc_get_u64(orig + MXC_OFF_HEADER_OFFSET);
    mixq_close(f);

    FILE *fp = fopen(path, "r+b");
    cr_assert(fp);
    size_t caught = 0;
    for (size_t off = 0; off < len; off++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t b = (uint8_t)(orig[off] ^ (1u << bit));
            CHECK(fseek(fp, (long)off, SEEK_SET) == 0, "fseek");
            CHECK(fwrite(&b, 1, 1, fp) == 1, "fwrite");
            CHECK(fflush(fp) == 0, "fflush");
            f = mixq_open(path, 0, &err);
            mixq_status s = f ? mixq_verify(f, &err) : err.code;
            mixq_close(f);
            CHECK(s != MIXQ_OK, "%s: flipping bit %d of byte %zu went unnoticed", mixq_qtype_name(type), bit, off);
            CHECK(strstr(err.message, path), "byte %zu: message does not name the file: %s", off, err.message);
            /* the message names the region */
            char want[200] = "";
            if (off < 8) snprintf(want, sizeof want, "bad magic");
            else if (off < 10) snprintf(want, sizeof want, "format version");
            else if (off < MXC_PREAMBLE_LEN) snprintf(want, sizeof want, "preamble: checksum mismatch");
            else if (off >= header_offset) snprintf(want, sizeof want, "header");
            else {
                for (size_t i = 0; i < nt; i++)
                    if (off >= info[i].offset && off < info[i].offset + info[i].nbytes)
                        snprintf(want, sizeof want, "tensor \"%s\"", names[i]);
                if (!want[0]) snprintf(want, sizeof want, "padding at offset %zu is not zero", off);
            }
            CHECK(strstr(err.message, want), "%s: bit %d of byte %zu: message lacks \"%s\": %s",
                      mixq_qtype_name(type), bit, off, want, err.message);
            caught++;
        }
        CHECK(fseek(fp, (long)off, SEEK_SET) == 0, "fseek");
        CHECK(fwrite(&orig[off], 1, 1, fp) == 1, "fwrite");
        CHECK(fflush(fp) == 0, "fflush");
    }
    fclose(fp);
    cr_assert_eq(caught, len * 8);
    for (size_t i = 0; i < nt; i++) free(names[i]);
    f = mixq_open(path, MIXQ_OPEN_VERIFY, &err);
    cr_assert(f, "restored file: %s", err.message);
    mixq_close(f);
    ts_rmtree(dir);
    free(dir); free(path); free(orig);
}

Test(integrity, every_bit_flip_int4, .timeout = 240) { every_bit_flip(MIXQ_QT_INT4); }
Test(integrity, every_bit_flip_int8, .timeout = 240) { every_bit_flip(MIXQ_QT_INT8); }
Test(integrity, every_bit_flip_f16, .timeout = 240) { every_bit_flip(MIXQ_QT_F16); }
