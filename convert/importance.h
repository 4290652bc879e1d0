/* importance.h - an importance matrix applied to a conversion plan.
 *
 * Maps every quantized plan tensor to its entry by GGUF name, checks the
 * shapes (columns == row length, experts == experts; a legacy .dat entry is
 * one flat vector of row_len * n_expert values), and precomputes the
 * per-column importances in_sum2 / count for each expert, which the
 * converter hands to the quantizers through qp_convert_options.importance.
 *
 * As llama-quantize does: a tensor without an entry is quantized without
 * importance (NULL) and listed by qp_importance_missing(); an expert that
 * saw no calibration rows gets uniform importances (all 1.0); a shape
 * mismatch is an error (except for token_embd, which is then treated as
 * missing). Tensors stored as F32/F16/BF16 are not looked up. */
#ifndef QP_IMPORTANCE_H
#define QP_IMPORTANCE_H

#include <stdint.h>

#include "common/qp_error.h"
#include "convert/plan.h"

typedef struct qp_importance qp_importance;

/* `types[i]` is the output type of plan tensor i. Errors: the file's own
 * (see format/imatrix.h), a shape mismatch naming the tensor, or
 * QP_ERR_BAD_INPUT when no quantized tensor has an entry (a matrix made
 * for another model). */
qp_status qp_importance_open(const char *path, const qp_plan *plan, const uint32_t *types, qp_importance **out,
                             qp_err *err);
void qp_importance_free(qp_importance *imp); /* accepts NULL */

/* A qp_importance_fn: ctx is the qp_importance. Thread-safe (read-only). */
const float *qp_importance_get(void *ctx, const qp_plan *plan, int64_t i, int64_t expert);

/* An extra_meta hook (ctx is the qp_importance, w a qp_gguf_writer):
 * llama-quantize's quantize.imatrix.file (STRING, the file's base name),
 * .dataset (STRING, first dataset, if any), .entries_count (UINT32) and
 * .chunks_count (UINT32, when known). */
qp_status qp_importance_write_meta(void *ctx, void *gguf_writer, qp_err *err);

/* Quantized plan tensors without importance data, in plan order. */
int64_t qp_importance_missing_count(const qp_importance *imp);
const char *qp_importance_missing(const qp_importance *imp, int64_t k);
/* Plan tensors that use importance data; experts among them with no rows. */
int64_t qp_importance_used_count(const qp_importance *imp);
int64_t qp_importance_empty_experts(const qp_importance *imp);

#endif
