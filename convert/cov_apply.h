/* cov_apply.h - a covariance file (format/covmat.h) applied to a
 * conversion plan: for every quantized plan tensor whose type supports
 * error-feedback quantization (quant/gptq.h), the H of each expert, found
 * by GGUF name and checked against the tensor's shape (n_in == row_len,
 * experts == experts). Tensors without an entry are quantized as before
 * (importance only); an expert that saw no tokens (count 0) gets NULL too. */
#ifndef QP_COV_APPLY_H
#define QP_COV_APPLY_H

#include <stdint.h>

#include "common/qp_error.h"
#include "convert/plan.h"

typedef struct qp_cov_apply qp_cov_apply;

/* QP_ERR_BAD_INPUT on a shape mismatch (naming the tensor) or when no
 * quantized tensor has an entry. */
qp_status qp_cov_apply_open(const char *path, const qp_plan *plan, const uint32_t *types, qp_cov_apply **out,
                            qp_err *err);
void qp_cov_apply_free(qp_cov_apply *c); /* accepts NULL */

/* A covariance hook for qp_convert_options (ctx is the qp_cov_apply):
 * row_len * row_len doubles, or NULL. Thread-safe (read-only). */
const double *qp_cov_apply_get(void *ctx, const qp_plan *plan, int64_t i, int64_t expert);

/* Plan tensors that will use error feedback. */
int64_t qp_cov_apply_used_count(const qp_cov_apply *c);

#endif
