/* tok_ids_file.c - token files (--tokens): decimal ids separated by whitespace. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/tok_internal.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

mixq_status mx_tok_parse_ids(const char *data, size_t len, size_t vocab_size, const char *name, int32_t **ids,
                             size_t *n, mixq_error *err)
{
    char shown[MX_SHOWN_BUF], word[24];
    tok_ids out = {0};
    mx_err_clear(err);
    *ids = NULL;
    *n = 0;
    mx_shown(name ? name : "token file", shown);
    for (size_t i = 0; i < len;) {
        if (is_space(data[i])) {
            i++;
            continue;
        }
        size_t start = i;
        uint64_t v = 0;
        int digits = 1;
        while (i < len && !is_space(data[i])) {
            if (data[i] < '0' || data[i] > '9') digits = 0;
            else if (v <= UINT32_MAX) v = v * 10 + (uint64_t)(data[i] - '0');
            i++;
        }
        mx_shown_n(data + start, i - start < 20 ? i - start : 20, word);
        if (!digits) {
            free(out.p);
            return mx_err(err, MIXQ_E_FORMAT, "%s: byte %zu (token %zu): \"%s\" is not a token id", shown, start,
                          out.n + 1, word);
        }
        if (v >= vocab_size || v > INT32_MAX) {
            free(out.p);
            return mx_err(err, MIXQ_E_RANGE, "%s: byte %zu (token %zu): id %s is out of range (vocabulary of %zu)",
                          shown, start, out.n + 1, word, vocab_size);
        }
        if (ti_add(&out, (int32_t)v)) {
            free(out.p);
            return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", shown);
        }
    }
    if (!out.p && !(out.p = malloc(sizeof *out.p))) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", shown);
    *ids = out.p;
    *n = out.n;
    return MIXQ_OK;
}

mixq_status mx_tok_read_ids(const char *path, size_t vocab_size, int32_t **ids, size_t *n, mixq_error *err)
{
    char shown[MX_SHOWN_BUF];
    *ids = NULL;
    *n = 0;
    mx_shown(path, shown);
    FILE *f = fopen(path, "rb");
    if (!f) return mx_err(err, MIXQ_E_IO, "%s: %s", shown, strerror(errno));
    struct stat st;
    mixq_status s = MIXQ_OK;
    char *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) s = mx_err(err, MIXQ_E_IO, "%s: not a regular file", shown);
    else if ((uint64_t)st.st_size > MX_TOK_MAX_FILE)
        s = mx_err(err, MIXQ_E_FORMAT, "%s: %lld bytes, more than the limit of %u", shown, (long long)st.st_size,
                   MX_TOK_MAX_FILE);
    else if (!(buf = malloc((size_t)st.st_size + 1))) s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", shown);
    else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        s = mx_err(err, MIXQ_E_IO, "%s: read failed", shown);
    fclose(f);
    if (!s) s = mx_tok_parse_ids(buf, (size_t)st.st_size, vocab_size, path, ids, n, err);
    free(buf);
    return s;
}
