/* qerror.h - the importance-weighted squared quantization error of a plan
 * tensor under candidate block types, the error term of size-targeted
 * allocation (convert/job.c) and of the sensitivity measurement
 * (runtime-lite/sensitivity.c), which must agree on it.
 *
 * For a row w with importances imp (the imatrix's mean x_j^2, or 1 without
 * data) quantized with those importances exactly as the converter does and
 * dequantized to q, the row error is sum_j imp_j (w_j - q_j)^2: the expected
 * squared error of that output for inputs with those second moments. A
 * tensor's error is the sum over its rows; rows of a stacked expert tensor
 * are weighted by the expert's traffic weight. Large tensors are estimated
 * from evenly spaced rows (at most QP_QERR_ROWS per tensor, at least
 * QP_QERR_MIN_EXPERT_ROWS per expert) scaled to all rows: deterministic. */
#ifndef QP_QERROR_H
#define QP_QERROR_H

#include <stdint.h>

#include "common/qp_error.h"
#include "convert/convert.h"
#include "convert/plan.h"

#define QP_QERR_ROWS 512
#define QP_QERR_MIN_EXPERT_ROWS 8

/* out[k] = error of plan tensor i under types[k] (each must quantize and
 * dequantize and fit the row length). imp may be NULL (uniform);
 * expert_w (n_expert values) may be NULL (all 1). Not multithreaded; safe
 * to call for different tensors from several threads. */
qp_status qp_qerr_tensor(const qp_plan *plan, int64_t i, const uint32_t *types, int n_types, qp_importance_fn imp,
                         void *imp_ctx, const double *expert_w, double *out, qp_err *err);

#endif
