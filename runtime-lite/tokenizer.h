/* tokenizer.h - byte-level BPE tokenizer of the Qwen2/Qwen3 family,
 * producing the same ids as Hugging Face `tokenizers`.
 *
 * Encoding: added tokens (control and user-defined) are matched first,
 * leftmost-longest, and split the text; each remaining segment is NFC
 * normalized (when the tokenizer says so), cut into pieces by the
 * pre-tokenizer regex (PCRE2, UTF + UCP), and each piece's bytes are merged
 * by BPE rank into vocabulary ids.
 *
 * A tokenizer is built from a tokenizer.json, from a qp_hf_vocab, or from
 * plain arrays (what a GGUF file stores as tokenizer.ggml.tokens / merges /
 * token_type). After construction it is read-only: one tokenizer may encode
 * and decode from several threads at once. */
#ifndef QP_TOKENIZER_H
#define QP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"
#include "format/hf_vocab.h"

typedef struct qp_tokenizer qp_tokenizer;

/* The Qwen2 pre-tokenizer pattern (what Qwen2/2.5/3 tokenizer.json files
 * carry, and what GGUF's tokenizer.ggml.pre = "qwen2" stands for). */
extern const char qp_tokenizer_qwen2_regex[];

/* Plain arrays, as a GGUF file stores them. Only the arrays are read; they
 * may be freed after construction. */
typedef struct {
    int64_t n_tokens;
    const char *const *tokens;  /* [n_tokens] byte-level text; NULL = hole */
    const size_t *token_lens;   /* [n_tokens] or NULL (then strlen) */
    const int32_t *token_types; /* [n_tokens] QP_TOKEN_* or NULL (all normal) */
    int64_t n_merges;
    const char *const *merges;  /* [n_merges] "left right", by rank */
    const size_t *merge_lens;   /* [n_merges] or NULL (then strlen) */
    const char *pre_regex;      /* NULL: qp_tokenizer_qwen2_regex */
    int normalizer_nfc;         /* NFC-normalize text before splitting */
    int ignore_merges;          /* a piece that is itself a token stays whole */
} qp_tokenizer_spec;

/* Token kinds (QP_TOKEN_* of hf_vocab.h) decide the roles: NORMAL tokens
 * form the BPE vocabulary; CONTROL and USER_DEFINED tokens are matched
 * literally in the text before anything else; the rest are never produced.
 * Every merge must name two vocabulary tokens whose concatenation is one.
 * `name` labels error messages (a file path, or NULL). */
qp_status qp_tokenizer_from_spec(const qp_tokenizer_spec *spec, const char *name,
                                 qp_tokenizer **out, qp_err *err);

/* From a parsed tokenizer.json; pre_regex NULL means the Qwen2 pattern.
 * qp_hf_vocab does not carry model.ignore_merges (false for Qwen), so this
 * path assumes false; qp_tokenizer_load_json reads it. */
qp_status qp_tokenizer_from_hf_vocab(const qp_hf_vocab *v, const char *pre_regex,
                                     const char *name, qp_tokenizer **out, qp_err *err);

/* Read a tokenizer.json. Takes the pre-tokenizer regex from the file, and
 * refuses (QP_ERR_UNSUPPORTED) normalizers, pre-tokenizers, decoders and
 * added-token options that would change the ids and are not implemented. */
qp_status qp_tokenizer_load_json(const char *path, qp_tokenizer **out, qp_err *err);
/* `dir`/tokenizer.json (a Hugging Face checkpoint directory). */
qp_status qp_tokenizer_load_dir(const char *dir, qp_tokenizer **out, qp_err *err);

void qp_tokenizer_free(qp_tokenizer *t); /* accepts NULL */

enum {
    /* Treat the text of control tokens (<|im_end|>) as ordinary text, so
     * untrusted input cannot inject them. User-defined tokens still match. */
    QP_TOK_ENCODE_NO_CONTROL = 1u << 0,
};

/* Encode `len` bytes of UTF-8 (invalid UTF-8 is QP_ERR_BAD_INPUT, with the
 * byte offset). *ids is malloc'ed (free it); it may be NULL when *n is 0. */
qp_status qp_tokenizer_encode(const qp_tokenizer *t, const char *text, size_t len,
                              unsigned flags, int32_t **ids, size_t *n, qp_err *err);

enum {
    QP_TOK_DECODE_SKIP_CONTROL = 1u << 0, /* leave out control tokens */
};

/* Concatenate the bytes of `ids`. *text is malloc'ed and NUL-terminated
 * (not counted in *len). It need not be valid UTF-8 when the ids cut a
 * character. An id out of range is QP_ERR_BAD_INPUT. */
qp_status qp_tokenizer_decode(const qp_tokenizer *t, const int32_t *ids, size_t n,
                              unsigned flags, char **text, size_t *len, qp_err *err);

int64_t qp_tokenizer_n_tokens(const qp_tokenizer *t);
/* QP_TOKEN_* of `id`, or 0 when out of range. */
int qp_tokenizer_token_type(const qp_tokenizer *t, int32_t id);
/* The bytes `id` decodes to (not NUL-terminated), for streaming output;
 * NULL when out of range. Holes decode to "". */
const char *qp_tokenizer_piece(const qp_tokenizer *t, int32_t id, size_t *len);
/* The id whose token text is exactly `text` (e.g. "<|im_end|>", or a
 * byte-level vocabulary entry); -1 when none. */
int32_t qp_tokenizer_find(const qp_tokenizer *t, const char *text, size_t len);

#endif
