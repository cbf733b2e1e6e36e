/* tok_ref_common.c - see tok_ref_common.h. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test_support.h"
#include "tok_ref_common.h"

static const char *const handmade[] = {
    "Hello world",
    "",
    " ",
    "   ",
    "  leading, double  spaces and trailing  ",
    "tabs\tand\nnewlines\r\n\n\n end",
    " \t mixed \n whitespace \t",
    "caf\xc3\xa9 na\xc3\xafve \xc3\xbc" "ber \xc3\x9f \xc3\x86sir",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88",
    "emoji \xf0\x9f\xa6\x99\xf0\x9f\x9a\x80 and \xe2\x82\xac 5",
    "control bytes \x01\x02\x1b[0m \x7f end",
    "\xe2\x96\x81 a literal lower block \xe2\x96\x81\xe2\x96\x81",
    "ab<sep>ab abab <sep> the end the  end",
    "1234567890 3.14159 -42 1,000,000",
    "I'm you're we've they'll it's I'd SHOUTING",
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80",
    "\xea\xb0\x80\xeb\x82\x98\xeb\x8b\xa4 \xed\x95\x9c\xea\xb8\x80",
    "x\xe2\x80\x94y \xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\xa6",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "<s> </s> <unk> <0x41> <|im_start|> <|endoftext|>x<|begin_of_text|>",
    "code: for (int i = 0; i < n; i++) { x[i] += 2; }\n",
};

static void push(tref_texts *t, const char *s, size_t n)
{
    t->s = realloc(t->s, (t->n + 1) * sizeof *t->s);
    t->len = realloc(t->len, (t->n + 1) * sizeof *t->len);
    cr_assert(t->s && t->len);
    t->s[t->n] = malloc(n + 1);
    cr_assert(t->s[t->n]);
    memcpy(t->s[t->n], s, n);
    t->s[t->n][n] = '\0';
    t->len[t->n++] = n;
}

void tref_texts_build(tref_texts *t, const char *eval_text, size_t max_lines)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < sizeof handmade / sizeof handmade[0]; i++) push(t, handmade[i], strlen(handmade[i]));
    if (!eval_text) return;
    size_t len = 0;
    uint8_t *all = ts_read_file(eval_text, &len);
    cr_assert(all, "cannot read %s", eval_text);
    for (size_t i = 0, lines = 0; i < len && lines < max_lines; lines++) {
        size_t j = i;
        while (j < len && all[j] != '\n') j++;
        push(t, (const char *)all + i, j - i);
        i = j + 1;
    }
    push(t, (const char *)all, len);
    free(all);
}

void tref_texts_free(tref_texts *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->s[i]);
    free(t->s);
    free(t->len);
    memset(t, 0, sizeof *t);
}

char *tref_write(const tref_texts *t, const char *dir)
{
    char *path = ts_path(dir, "texts.bin");
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    for (size_t i = 0; i < t->n; i++) {
        if (i) fputc('\0', f);
        fwrite(t->s[i], 1, t->len[i], f);
    }
    fclose(f);
    return path;
}

char *tref_run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 4096) buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (*status != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The value of a hex digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

size_t tref_compare(const mx_tok *tok, const tref_texts *t, const char *ref, const char *what)
{
    const char *line = ref;
    size_t tokens = 0, decoded = 0;
    for (size_t i = 0; i < t->n; i++) {
        const char *eol = strchr(line, '\n');
        if (!eol) cr_assert_fail("%s: reference output ends at text %zu", what, i);
        int32_t *ids;
        size_t n;
        mixq_error err;
        if (mx_tok_encode(tok, t->s[i], t->len[i], 0, &ids, &n, &err) != MIXQ_OK)
            cr_assert_fail("%s: text %zu: %s", what, i, err.message);
        const char *p = line, *tab = memchr(line, '\t', (size_t)(eol - line)), *ids_end = tab ? tab : eol;
        size_t k = 0;
        while (p < ids_end) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) break;
            /* plain checks first: a passing Criterion assertion costs a message to the runner */
            if (k >= n) cr_assert_fail("%s: text %zu (\"%.60s\"): we give %zu ids, the reference more", what, i, t->s[i], n);
            if (ids[k] != v)
                cr_assert_fail("%s: text %zu (\"%.60s\"): id %zu is %d, the reference has %ld", what, i, t->s[i], k,
                               ids[k], v);
            k++;
            p = end;
        }
        if (k != n) cr_assert_fail("%s: text %zu (\"%.60s\"): we give %zu ids, the reference %zu", what, i, t->s[i], n, k);
        tokens += n;
        p = ids_end;
        if (*p == '\t') { /* the reference's decoding of those ids, in hex */
            char *text;
            size_t len;
            if (mx_tok_decode(tok, ids, n, &text, &len, &err) != MIXQ_OK) cr_assert_fail("%s", err.message);
            const char *h = p + 1;
            size_t j = 0;
            for (; h + 1 < eol && j < len; h += 2, j++) {
                int hi = hexval(h[0]), lo = hexval(h[1]); /* not sscanf: it measures the whole rest of the line */
                if (hi < 0 || lo < 0) cr_assert_fail("%s: text %zu: bad hex in the reference", what, i);
                unsigned b = (unsigned)(hi * 16 + lo);
                if ((unsigned char)text[j] != b)
                    cr_assert_fail("%s: text %zu (\"%.60s\"): decoded byte %zu is 0x%02x, the reference's 0x%02x",
                                   what, i, t->s[i], j, (unsigned char)text[j], b);
            }
            if (j != len || h < eol)
                cr_assert_fail("%s: text %zu (\"%.60s\"): decoded to %zu bytes, the reference to %zu", what, i, t->s[i],
                               len, (size_t)(eol - p - 1) / 2);
            free(text);
            decoded++;
        }
        free(ids);
        line = eol + 1;
    }
    fprintf(stderr, "%s: %zu texts, %zu tokens equal to the reference, %zu decodings equal\n", what, t->n, tokens,
            decoded);
    return tokens;
}
