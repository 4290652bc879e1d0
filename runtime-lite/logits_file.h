/* logits_file.h - the base log-probability file of llama.cpp's perplexity
 * tool (`--kl-divergence-base`), read and written byte-compatibly:
 *
 *   "_logits_"                      8 bytes
 *   n_ctx, n_vocab, n_chunk         int32 each, little-endian
 *   tokens[n_chunk * n_ctx]         int32
 *   per chunk, per scored position (n_ctx - 1 - n_ctx/2 of them, predicting
 *   positions n_ctx/2+1 .. n_ctx-1), one record of
 *   nv = 2*((n_vocab+1)/2) + 4 uint16:
 *     [0..1] float scale, [2..3] float min_log_prob,
 *     [4 + i] q_i for token i (padding to an even count is 0),
 *   and log p_i = scale * q_i + min_log_prob. The encoder clamps the
 *   range to 16 nats below the top logit: m = max(min logit, max - 16),
 *   scale = (max - m) / 65535, min_log_prob = m - max - log(sum exp(l - max)),
 *   q_i = round((l_i - m) / scale) for l_i > m, else 0. */
#ifndef QP_RT_LOGITS_FILE_H
#define QP_RT_LOGITS_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "common/qp_error.h"

typedef struct qp_logits_file qp_logits_file;

/* uint16 per record */
int64_t qp_logits_record_len(int64_t n_vocab);
/* scored positions per chunk */
int64_t qp_logits_scored_per_chunk(int64_t n_ctx);

void qp_logits_encode(const float *logits, int64_t n_vocab, uint16_t *record);
/* log-probabilities from a record */
void qp_logits_decode(const uint16_t *record, int64_t n_vocab, float *logp);

/* Writer: creates "<path>.tmp", renamed to path by _finish. */
qp_status qp_logits_file_create(const char *path, int32_t n_ctx, int32_t n_vocab, int32_t n_chunk,
                                const int32_t *tokens, qp_logits_file **out, qp_err *err);
/* Append `n_records` records (one chunk is scored_per_chunk records). */
qp_status qp_logits_file_write(qp_logits_file *f, const uint16_t *records, int64_t n_records, qp_err *err);
/* Check the count of records written, flush, rename; frees f. */
qp_status qp_logits_file_finish(qp_logits_file *f, qp_err *err);

/* Reader: validates the header, the token ids and the file size. */
qp_status qp_logits_file_open(const char *path, qp_logits_file **out, qp_err *err);
int32_t qp_logits_file_n_ctx(const qp_logits_file *f);
int32_t qp_logits_file_n_vocab(const qp_logits_file *f);
int32_t qp_logits_file_n_chunk(const qp_logits_file *f);
const int32_t *qp_logits_file_tokens(const qp_logits_file *f); /* [n_chunk * n_ctx] */
/* Read the next chunk's records (scored_per_chunk * record_len uint16). */
qp_status qp_logits_file_read_chunk(qp_logits_file *f, uint16_t *records, qp_err *err);

/* Close a reader, or abandon a writer (removes its temp file). NULL ok. */
void qp_logits_file_close(qp_logits_file *f);

#endif
