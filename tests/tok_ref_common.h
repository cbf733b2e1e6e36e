/*
 * tok_ref_common.h - what the tokenizer reference tests share: the texts
 * compared (handcrafted strings, every line of eval-text.txt, the whole
 * text), running a reference program and comparing its ids with ours.
 */
#ifndef MIXQ_TOK_REF_COMMON_H
#define MIXQ_TOK_REF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

typedef struct tref_texts {
    char **s;
    size_t *len;
    size_t n;
} tref_texts;

/* The handcrafted strings, then (when eval_text is non-NULL) its first max_lines lines and the whole of it. */
void tref_texts_build(tref_texts *t, const char *eval_text, size_t max_lines);
void tref_texts_free(tref_texts *t);
/* Writes the texts separated by NUL bytes into a temporary file; returns its malloc'd path. */
char *tref_write(const tref_texts *t, const char *dir);
/* Runs a shell command and returns its stdout (malloc'd), or NULL if it failed (exit status in *status). */
char *tref_run(const char *cmd, int *status);
/*
 * Compares tok's ids of every text with the reference output (one line of
 * ids per text, then optionally a tab and the hex bytes of the reference's
 * decoding, compared with mx_tok_decode); fails the test at the first
 * difference.  Returns the number of tokens compared.
 */
size_t tref_compare(const mx_tok *tok, const tref_texts *t, const char *ref, const char *what);

#endif
