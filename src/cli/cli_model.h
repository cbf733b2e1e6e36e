/* cli_model.h - what eval, calibrate and run share: opening a model, reading the input tokens. */
#ifndef MIXQ_CLI_MODEL_H
#define MIXQ_CLI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/model.h"
#include "tokenizer/tokenizer.h"

/* Opens a model (container or checkpoint); prints the error and returns an exit code (0 on success). */
int cli_open_model(const char *cmd, const char *path, const char *config_dir, rt_model **out);

/*
 * The input tokens: from --tokens FILE (decimal ids), or from --text FILE
 * through the model's tokenizer (add_bos: start with the model's BOS).
 * Every id is checked against the model's vocabulary.  Prints the error and
 * returns an exit code (0 on success).
 */
int cli_input_tokens(const char *cmd, const rt_model *m, const char *tokens_path, const char *text_path,
                     int add_bos, int32_t **ids, size_t *n);

/*
 * Loads the model's tokenizer (tokenizer.json, else tokenizer.model, from the
 * directory of its config.json) and checks it fits the embedding.  Prints the
 * error and returns an exit code (0 on success).
 */
int cli_open_tokenizer(const char *cmd, const rt_model *m, mx_tok **out);

/* Tokenizes a UTF-8 text (from the file `name`, for messages) with the model's tokenizer (cli_open_tokenizer). */
int cli_tokenize(const char *cmd, const rt_model *m, const char *name, const char *text, size_t len, int add_bos,
                 int32_t **ids, size_t *n);

/* Parses --threads (1..1024); returns 0 or prints a usage error and returns EXIT_USAGE. */
int cli_parse_threads(const char *cmd, const char *arg, unsigned *out);

#endif
