/* hf_vocab.h - the vocabulary of a Hugging Face byte-level BPE tokenizer.json:
 * tokens by id, merges by rank, added tokens and their kinds. Shared by the
 * GGUF exporter (convert/) and the runtime tokenizer (runtime-lite/). */
#ifndef QP_HF_VOCAB_H
#define QP_HF_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

/* llama.cpp's token types, as stored in tokenizer.ggml.token_type. */
enum {
    QP_TOKEN_NORMAL = 1,
    QP_TOKEN_UNKNOWN = 2,
    QP_TOKEN_CONTROL = 3,      /* special added tokens (<|im_end|>) */
    QP_TOKEN_USER_DEFINED = 4, /* added, not special (<think>) */
    QP_TOKEN_UNUSED = 5,       /* holes and [PAD<id>] padding */
    QP_TOKEN_BYTE = 6,
};

typedef struct {
    int64_t n_tokens;      /* max id + 1 over model.vocab and added_tokens */
    char **tokens;         /* [n_tokens], NUL-terminated, byte-level form; NULL for holes */
    uint32_t *token_len;   /* [n_tokens] */
    int32_t *token_type;   /* [n_tokens] QP_TOKEN_* */
    int64_t n_merges;
    char **merges;         /* [n_merges] "left right", rank order */
    int64_t n_added;
    int64_t *added_ids;    /* [n_added] ids of added_tokens, in file order */
    int normalizer_nfc;    /* normalizer is NFC */
    int byte_level;        /* pre_tokenizer/decoder is ByteLevel */
} qp_hf_vocab;

/* Load `path` (a tokenizer.json). */
qp_status qp_hf_vocab_load(const char *path, qp_hf_vocab *out, qp_err *err);
/* Parse from memory (fuzzing, tests). Merges may be "a b" strings or
 * ["a","b"] pairs. */
qp_status qp_hf_vocab_parse(const char *json, size_t len, const char *path_for_errors,
                            qp_hf_vocab *out, qp_err *err);
void qp_hf_vocab_free(qp_hf_vocab *v); /* accepts NULL and a zeroed struct */

#endif
