/* test_support.c - helpers shared by the Criterion tests. */
#include "test_support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

char *ts_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char *tmpl = NULL;
    cr_assert(asprintf(&tmpl, "%s/mixq-test-XXXXXX", base) > 0);
    cr_assert(mkdtemp(tmpl) != NULL, "mkdtemp: %s", strerror(errno));
    return tmpl;
}

static char *tracked[32];
static size_t ntracked;

char *ts_tmpdir_tracked(void)
{
    char *d = ts_tmpdir();
    if (ntracked < sizeof tracked / sizeof tracked[0]) tracked[ntracked++] = strdup(d);
    return d;
}

void ts_remove_tracked(void)
{
    for (size_t i = 0; i < ntracked; i++) {
        chmod(tracked[i], 0700);
        ts_rmtree(tracked[i]);
        free(tracked[i]);
    }
    ntracked = 0;
}

void ts_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) { unlink(path); return; }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = ts_path(path, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            chmod(p, 0700);
            ts_rmtree(p);
        } else {
            unlink(p);
        }
        free(p);
    }
    closedir(d);
    rmdir(path);
}

char *ts_path(const char *dir, const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

void ts_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL, "cannot create %s: %s", path, strerror(errno));
    cr_assert(len == 0 || fwrite(data, 1, len, f) == len);
    cr_assert(fclose(f) == 0);
}

uint8_t *ts_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

int ts_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int ts_dir_count(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

uint8_t *ts_safetensors(const char *header_json, const void *data, size_t data_len, size_t *len)
{
    size_t hl = strlen(header_json);
    *len = 8 + hl + data_len;
    uint8_t *buf = malloc(*len ? *len : 1);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header_json, hl);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + hl + i] = data ? ((const uint8_t *)data)[i] : (uint8_t)(i * 7 + 1);
    return buf;
}

char *ts_source_path(const char *rel)
{
    const char *root = getenv("MIXQ_SOURCE_ROOT");
    cr_assert(root != NULL, "MIXQ_SOURCE_ROOT is not set (run the tests through meson test)");
    return ts_path(root, rel);
}

char *ts_models_dir(void)
{
    const char *env = getenv("MIXQ_MODELS_DIR");
    char *p = env ? strdup(env) : ts_source_path("../shared/models");
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) { free(p); return NULL; }
    return p;
}

/* Reads everything from fd into a malloc'd NUL-terminated string. */
static char *slurp_fd(int fd)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while ((got = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    return buf;
}

int ts_run_cli(const char *const *args, char **out, char **err)
{
    const char *exe = getenv("MIXQ_EXE");
    cr_assert(exe != NULL, "MIXQ_EXE is not set (run the tests through meson test)");
    size_t n = 0;
    while (args[n]) n++;
    char **argv = calloc(n + 2, sizeof *argv);
    argv[0] = (char *)exe;
    for (size_t i = 0; i < n; i++) argv[i + 1] = (char *)args[i];

    char otmpl[] = "/tmp/mixq-out-XXXXXX", etmpl[] = "/tmp/mixq-err-XXXXXX";
    int ofd = mkstemp(otmpl), efd = mkstemp(etmpl);
    cr_assert(ofd >= 0 && efd >= 0);
    unlink(otmpl);
    unlink(etmpl);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(ofd, 1);
        dup2(efd, 2);
        execv(exe, argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    free(argv);
    lseek(ofd, 0, SEEK_SET);
    lseek(efd, 0, SEEK_SET);
    if (out) *out = slurp_fd(ofd);
    if (err) *err = slurp_fd(efd);
    close(ofd);
    close(efd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double ts_ref_e4m3(uint8_t b)
{
    int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
    double v;
    if (e == 15 && m == 7)
        v = NAN;
    else if (e == 0)
        v = ldexp(m, -9);
    else
        v = ldexp(8 + m, e - 10);
    return s ? -v : v;
}

double ts_ref_e5m2(uint8_t b)
{
    int s = b >> 7, e = (b >> 2) & 31, m = b & 3;
    double v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, -16);
    else
        v = ldexp(4 + m, e - 17);
    return s ? -v : v;
}

/* A LLaMA checkpoint of F32 tensors with the shapes of (H, I, L, heads, kv heads, V) and config.json. */
void ts_write_llama(const char *dir, int H, int I, int L, int nh, int nkv, int V, const char *cfg_json)
{
    int hd = H / nh;
    char *hdr = malloc(1 << 16);
    size_t hl = 0, off = 0;
    hl += (size_t)sprintf(hdr + hl, "{");
    struct { char name[96]; int r, c; } t[64];
    int nt = 0;
#define T(nm, rows, cols) (snprintf(t[nt].name, sizeof t[nt].name, "%s", nm), t[nt].r = rows, t[nt].c = cols, nt++)
    T("model.embed_tokens.weight", V, H);
    T("model.norm.weight", H, 0);
    for (int l = 0; l < L; l++) {
        char n[96];
#define LT(suffix, rows, cols) (snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix), T(n, rows, cols))
        LT("input_layernorm.weight", H, 0);
        LT("post_attention_layernorm.weight", H, 0);
        LT("self_attn.q_proj.weight", nh * hd, H);
        LT("self_attn.k_proj.weight", nkv * hd, H);
        LT("self_attn.v_proj.weight", nkv * hd, H);
        LT("self_attn.o_proj.weight", H, nh * hd);
        LT("mlp.gate_proj.weight", I, H);
        LT("mlp.up_proj.weight", I, H);
        LT("mlp.down_proj.weight", H, I);
    }
    for (int i = 0; i < nt; i++) {
        size_t n = (size_t)t[i].r * (size_t)(t[i].c ? t[i].c : 1);
        if (t[i].c)
            hl += (size_t)sprintf(hdr + hl, "%s\"%s\": {\"dtype\": \"F32\", \"shape\": [%d, %d], \"data_offsets\": [%zu, %zu]}",
                                  i ? ", " : "", t[i].name, t[i].r, t[i].c, off, off + 4 * n);
        else
            hl += (size_t)sprintf(hdr + hl, "%s\"%s\": {\"dtype\": \"F32\", \"shape\": [%d], \"data_offsets\": [%zu, %zu]}",
                                  i ? ", " : "", t[i].name, t[i].r, off, off + 4 * n);
        off += 4 * n;
    }
    sprintf(hdr + hl, "}");
    float *data = malloc(off);
    uint32_t x = 12345;
    for (size_t i = 0; i < off / 4; i++) {
        x = x * 1664525u + 1013904223u;
        data[i] = ((float)(x >> 8) / 16777216.0f - 0.5f);
    }
    size_t len;
    uint8_t *st = ts_safetensors(hdr, data, off, &len);
    char *p = ts_path(dir, "model.safetensors");
    ts_write_file(p, st, len);
    free(p);
    p = ts_path(dir, "config.json");
    ts_write_file(p, cfg_json, strlen(cfg_json));
    free(p);
    free(st);
    free(data);
    free(hdr);
}

