/*
 * export_hf.c - container -> a Hugging Face model directory: sharded
 * dequantized safetensors, model.safetensors.index.json and the stored model
 * files, built in a temporary directory beside the destination and renamed
 * into place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/path.h"
#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/dtype.h"
#include "common/error.h"
#include "common/options.h"
#include "convert/export_internal.h"

#define INDEX_NAME "model.safetensors.index.json"
#define MAX_SHARDS 99999u

static void hf_defaults(mixq_export_hf_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->dtype = MIXQ_QT_BF16;
    opts->verify = 1;
}

void mixq_export_hf_options_init_sized(mixq_export_hf_options *opts, size_t struct_size)
{
    mixq_export_hf_options d;
    hf_defaults(&d);
    mx_options_init_sized(opts, struct_size, &d, sizeof d);
}

/* A directory being built: its path and the names written into it (removed again on failure). */
typedef struct tdir {
    char *path;
    char **names;
    size_t n, cap;
} tdir;


static int track(tdir *d, const char *name)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? 2 * d->cap : 16;
        char **nn = realloc(d->names, nc * sizeof *nn);
        if (!nn) return -1;
        d->names = nn;
        d->cap = nc;
    }
    d->names[d->n] = strdup(name);
    if (!d->names[d->n]) return -1;
    d->n++;
    return 0;
}

/* Removes what was written and the directory itself; frees d. */
static void tdir_discard(tdir *d)
{
    if (d->path) {
        for (size_t i = 0; i < d->n; i++) {
            char *p = mx_path_join(d->path, d->names[i]);
            if (p) unlink(p);
            free(p);
        }
        rmdir(d->path);
    }
    for (size_t i = 0; i < d->n; i++) free(d->names[i]);
    free(d->names);
    free(d->path);
    memset(d, 0, sizeof *d);
}

static void tdir_free(tdir *d)
{
    for (size_t i = 0; i < d->n; i++) free(d->names[i]);
    free(d->names);
    free(d->path);
    memset(d, 0, sizeof *d);
}

static void fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse directory fsync */
        close(fd);
    }
}

/* The shard file name of shard k (0-based) of n. */
static void shard_name(char *buf, size_t cap, size_t k, size_t n)
{
    snprintf(buf, cap, "model-%05zu-of-%05zu.safetensors", k + 1, n);
}

/* True if name is something an HF export writes: a shard, the index, or a stored model file name. */
static bool export_owned(const char *name)
{
    static const char *const own[] = {INDEX_NAME, "model.safetensors", "config.json", "generation_config.json",
                                      "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                      "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(name, own[i])) return true;
    size_t a, b;
    char tail[32];
    return sscanf(name, "model-%5zu-of-%5zu%31s", &a, &b, tail) == 3 && !strcmp(tail, ".safetensors");
}

/*
 * An existing out_dir that --force may replace: a directory holding only
 * files an export writes.  *count gets the number of entries.
 */
static mixq_status check_replaceable(const char *dir, mixq_error *err)
{
    char b[MX_SHOWN_BUF], nb[MX_SHOWN_BUF];
    DIR *d = opendir(dir);
    if (!d) return mx_err(err, MIXQ_E_IO, "%s: cannot read the existing directory: %s", mx_shown(dir, b), strerror(errno));
    struct dirent *e;
    mixq_status s = MIXQ_OK;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!export_owned(e->d_name)) {
            s = mx_err(err, MIXQ_E_EXISTS,
                       "%s: holds \"%s\", which an export does not write; not replacing it (remove it yourself)",
                       mx_shown(dir, b), mx_shown(e->d_name, nb));
            break;
        }
    }
    closedir(d);
    return s;
}

/* Removes a directory of export files (checked by check_replaceable) and the directory. */
static void remove_export_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !export_owned(e->d_name)) continue;
        char *p = mx_path_join(dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Writes bytes to dir/name atomically and tracks it. */
static mixq_status write_small(tdir *t, const char *name, const void *data, size_t len, mixq_error *err)
{
    char *p = mx_path_join(t->path, name);
    if (!p || track(t, name)) {
        free(p);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    afile af;
    mixq_status s = afile_open(&af, p, 0, err);
    if (s == MIXQ_OK) s = afile_pwrite(&af, data, len, 0, err);
    if (s == MIXQ_OK) s = afile_commit(&af, err);
    else afile_abort(&af);
    free(p);
    return s;
}

/* Output bytes of tensor t exported in dtype (integer and bool tensors keep their bytes). */
static bool out_bytes(const mixq_tensor *t, mixq_qtype dtype, uint64_t *out)
{
    mixq_tensor_info in;
    mixq_tensor_get_info(t, &in);
    st_dtype src;
    if (!st_dtype_parse(in.source_dtype, &src)) return false;
    size_t es = in.qtype == MIXQ_QT_RAW && !st_dtypes[src].is_float ? st_dtypes[src].size
                : dtype == MIXQ_QT_F32 ? 4 : 2;
    return ck_mul(in.n_elements, es, out);
}

/*
 * A fresh directory beside out_dir, "PARENT/.BASE.TAG-PID-N", created with
 * mode 0777 minus the umask (what mkdir gives, unlike mkdtemp's 0700).
 */
static char *make_tmpdir(const char *out_dir, const char *tag)
{
    size_t n = strlen(out_dir);
    while (n > 1 && out_dir[n - 1] == '/') n--;
    const char *slash = NULL;
    for (size_t i = 0; i < n; i++)
        if (out_dir[i] == '/') slash = out_dir + i;
    size_t plen = slash ? (size_t)(slash - out_dir) + 1 : 0;
    const char *base = out_dir + plen;
    size_t blen = n - plen;
    size_t cap = plen + blen + strlen(tag) + 48;
    char *p = malloc(cap);
    if (!p) return NULL;
    static unsigned counter; /* uniqueness within the process; mkdir's EEXIST across processes */
    for (unsigned attempt = 0; attempt < 1000; attempt++) {
        snprintf(p, cap, "%.*s.%.*s.%s-%ld-%u", (int)plen, out_dir, (int)blen, base, tag, (long)getpid(),
                 __atomic_fetch_add(&counter, 1u, __ATOMIC_RELAXED));
        if (mkdir(p, 0777) == 0) return p;
        if (errno != EEXIST) break;
    }
    free(p);
    return NULL;
}

mixq_status mixq_export_hf(const char *container_path, const char *out_dir, const mixq_export_hf_options *opts_in,
                           mixq_error *err)
{
    mixq_error local_err;
    if (!err) err = &local_err;
    mx_err_clear(err);
    mixq_export_hf_options local;
    hf_defaults(&local);
    mixq_status so = mx_options_take(&local, sizeof local, opts_in, MX_FIELD_END(mixq_export_hf_options, progress_ctx),
                                     "export_hf_options", err);
    if (so != MIXQ_OK) return so;
    const mixq_export_hf_options *opts = &local;
    if (!container_path || !out_dir || !*out_dir)
        return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_export_hf: input and output paths are required");
    if (opts->dtype != MIXQ_QT_F32 && opts->dtype != MIXQ_QT_F16 && opts->dtype != MIXQ_QT_BF16)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: cannot export to type %d (choose f32, f16 or bf16)", out_dir,
                      (int)opts->dtype);
    char b[MX_SHOWN_BUF];
    const char *shown = mx_shown(out_dir, b);
    struct stat st;
    bool exists = lstat(out_dir, &st) == 0;
    mixq_status s;
    if (exists) {
        if (!opts->force) return mx_err(err, MIXQ_E_EXISTS, "%s: exists (use --force to replace it)", shown);
        if (!S_ISDIR(st.st_mode)) return mx_err(err, MIXQ_E_EXISTS, "%s: exists and is not a directory", shown);
        if ((s = check_replaceable(out_dir, err))) return s;
    }
    mixq_file *f = mixq_open(container_path, opts->verify ? MIXQ_OPEN_VERIFY : 0, err);
    if (!f) return err->code;

    /* shards: tensors in container order, a new shard when the next one would pass shard_size */
    uint64_t limit = opts->shard_size ? opts->shard_size : MIXQ_HF_SHARD_SIZE_DEFAULT;
    size_t n = mixq_tensor_count(f), nshards = 0;
    size_t *shard_of = malloc((n ? n : 1) * sizeof *shard_of);
    uint64_t cur = 0, total = 0;
    tdir t = {0};
    json_t *index = NULL;
    char *text = NULL;
    s = MIXQ_OK;
    if (!shard_of) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; s == MIXQ_OK && i < n; i++) {
        uint64_t bytes;
        if (!out_bytes(mixq_tensor_at(f, i), opts->dtype, &bytes) || !ck_add(total, bytes, &total)) {
            s = mx_err(err, MIXQ_E_RANGE, "%s: the export's size overflows 64 bits", container_path);
            break;
        }
        if (nshards == 0 || (cur > 0 && (cur + bytes > limit || cur + bytes < cur))) {
            nshards++;
            cur = 0;
        }
        cur += bytes;
        shard_of[i] = nshards - 1;
    }
    if (nshards == 0) nshards = 1; /* a container without tensors: one empty shard */
    if (s == MIXQ_OK && nshards > MAX_SHARDS)
        s = mx_err(err, MIXQ_E_INVALID_ARG, "%s: %zu shards; raise the shard size", shown, nshards);
    if (s == MIXQ_OK && !(t.path = make_tmpdir(out_dir, "mixq-tmp")))
        s = mx_err(err, MIXQ_E_IO, "%s: cannot create a temporary directory beside it: %s", shown, strerror(errno));

    /* the shards */
    mixq_export_options eo;
    mixq_export_options_init(&eo);
    eo.dtype = opts->dtype;
    eo.cancel = opts->cancel;
    eo.progress = opts->progress;
    eo.progress_ctx = opts->progress_ctx;
    eo.verify = 0; /* checked once above */
    index = json_object();
    json_t *wmap = json_object();
    if (s == MIXQ_OK && (!index || !wmap)) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (size_t k = 0, i = 0; s == MIXQ_OK && k < nshards; k++) {
        size_t j = i;
        while (j < n && shard_of[j] == k) j++;
        char name[64];
        shard_name(name, sizeof name, k, nshards);
        char *p = mx_path_join(t.path, name);
        if (!p || track(&t, name)) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        if (s == MIXQ_OK) s = mx_export_st(f, container_path, i, j - i, p, &eo, 1, err);
        free(p);
        for (size_t q = i; s == MIXQ_OK && q < j; q++) {
            mixq_tensor_info in;
            mixq_tensor_get_info(mixq_tensor_at(f, q), &in);
            if (json_object_set_new(wmap, in.name, json_string(name))) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        }
        i = j;
    }
    /* the index (keys sorted, as Hugging Face writes it) */
    if (s == MIXQ_OK) {
        json_t *meta = json_pack("{s:I}", "total_size", (json_int_t)total);
        if (!meta || json_object_set_new(index, "metadata", meta) || json_object_set(index, "weight_map", wmap) ||
            !(text = json_dumps(index, JSON_INDENT(2) | JSON_SORT_KEYS)))
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    json_decref(wmap);
    if (s == MIXQ_OK) {
        size_t tl = strlen(text);
        text[tl] = '\n'; /* json_dumps leaves room for its NUL: the newline replaces it */
        s = write_small(&t, INDEX_NAME, text, tl + 1, err);
    }
    /* the stored model files, byte for byte */
    for (size_t i = 0; s == MIXQ_OK && i < mixq_file_count(f); i++) {
        mixq_stored_file sf;
        mixq_file_at(f, i, &sf);
        char nb[MX_SHOWN_BUF];
        if (!strcmp(sf.name, INDEX_NAME) || strstr(sf.name, ".safetensors")) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: stored file \"%s\" would replace the export's own tensor files",
                       container_path, mx_shown(sf.name, nb));
            break;
        }
        void *buf = NULL;
        size_t len = 0;
        s = mixq_file_read(f, sf.name, &buf, &len, err);
        if (s == MIXQ_OK) s = write_small(&t, sf.name, buf, len, err);
        mixq_free(buf);
    }
    if (s == MIXQ_OK && opts->cancel && *opts->cancel)
        s = mx_err(err, MIXQ_E_CANCELLED, "%s: export interrupted", container_path);

    /* into place */
    char *old = NULL;
    if (s == MIXQ_OK) {
        fsync_path(t.path);
        if (exists) { /* move the old export aside (onto a fresh empty directory), then the new one in */
            old = make_tmpdir(out_dir, "mixq-old");
            if (!old || rename(out_dir, old) != 0)
                s = mx_err(err, MIXQ_E_IO, "%s: cannot move the existing directory aside: %s", shown, strerror(errno));
        } else if (lstat(out_dir, &st) == 0) {
            s = mx_err(err, MIXQ_E_EXISTS, "%s: appeared while exporting; not replacing it", shown);
        }
    }
    if (s == MIXQ_OK && rename(t.path, out_dir) != 0) {
        s = mx_err(err, MIXQ_E_IO, "%s: cannot rename the finished directory into place: %s", shown, strerror(errno));
        if (old) (void)rename(old, out_dir); /* put the old one back */
    }
    if (old) {
        if (s == MIXQ_OK) remove_export_dir(old);
        else rmdir(old);
        free(old);
    }
    if (s == MIXQ_OK) {
        char *parent = strdup(out_dir), *sl = parent ? strrchr(parent, '/') : NULL;
        while (sl && sl > parent && sl[1] == '\0') { /* trailing slashes */
            *sl = '\0';
            sl = strrchr(parent, '/');
        }
        if (sl) sl[sl == parent] = '\0';
        if (parent) fsync_path(sl ? parent : ".");
        free(parent);
        tdir_free(&t);
    } else {
        tdir_discard(&t);
    }
    free(text);
    json_decref(index);
    free(shard_of);
    mixq_close(f);
    return s;
}
