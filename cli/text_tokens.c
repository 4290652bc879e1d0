/* text_tokens.c - read and tokenize the text of ppl / calibrate (see
 * text_tokens.h). */
#include "cli/text_tokens.h"

#include <stdlib.h>

#include "runtime-lite/model_tok.h"
#include "runtime-lite/textsrc.h"
#include "runtime-lite/tokenizer.h"

qp_status cli_text_tokens(const qp_rt_model *model, const char *path, const char *field, int32_t **ids,
                          size_t *n_ids, size_t *n_bytes, qp_err *err)
{
    char *text = NULL;
    qp_tokenizer *tok = NULL;
    *ids = NULL;
    *n_ids = 0;
    *n_bytes = 0;
    qp_status st = qp_text_load(path, field, &text, n_bytes, err);
    if (st == QP_OK)
        st = qp_rt_model_tokenizer(model, &tok, NULL, err);
    if (st == QP_OK &&
        (st = qp_tokenizer_encode(tok, text, *n_bytes, QP_TOK_ENCODE_NO_CONTROL, ids, n_ids, err)) != QP_OK)
        qp_err_set_path(err, path);
    qp_tokenizer_free(tok);
    free(text);
    return st;
}
