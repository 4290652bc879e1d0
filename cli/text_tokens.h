/* text_tokens.h - the token stream that `qpack ppl` and `qpack calibrate`
 * run over: a text file (plain, JSON Lines with a field, compressed) read
 * whole and tokenized with the model's own tokenizer. */
#ifndef QP_CLI_TEXT_TOKENS_H
#define QP_CLI_TEXT_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"
#include "runtime-lite/model.h"

/* Like llama.cpp's tools: no BOS, and special-token text in the input is
 * plain text. *ids (free with free) gets *n_ids tokens; *n_bytes the text's
 * size. A tokenizer error names the text file. */
qp_status cli_text_tokens(const qp_rt_model *model, const char *path, const char *field, int32_t **ids,
                          size_t *n_ids, size_t *n_bytes, qp_err *err);

#endif
