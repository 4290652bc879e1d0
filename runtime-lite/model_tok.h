/* model_tok.h - the tokenizer that belongs to a runtime model: the
 * tokenizer.json of a Hugging Face directory, or the tokenizer.ggml.*
 * arrays of a GGUF (byte-level BPE, "gpt2" model, "qwen2" pre-tokenizer). */
#ifndef QP_RT_MODEL_TOK_H
#define QP_RT_MODEL_TOK_H

#include <stdint.h>

#include "common/qp_error.h"
#include "runtime-lite/model.h"
#include "runtime-lite/tokenizer.h"

/* *eos_id gets the end-of-text id (GGUF tokenizer.ggml.eos_token_id, or
 * config/generation_config eos_token_id), -1 when unknown; may be NULL. */
qp_status qp_rt_model_tokenizer(const qp_rt_model *m, qp_tokenizer **out, int32_t *eos_id, qp_err *err);

#endif
