/* sensitivity.h - measure how much each matrix's quantization error moves
 * the model's output, for size-targeted allocation (convert/sensitivity.h
 * stores the result, quant/alloc.h uses it).
 *
 * For every quantizable matrix (2-D or stacked, not the router or norms) in
 * turn, the matrix alone is quantized to probe_type (with the importance
 * data, exactly as the converter would) and swapped into the model in
 * place of its source weights; n_chunks chunks of n_ctx calibration tokens
 * are run and the mean KL divergence against the unquantized model over the
 * positions perplexity scores (n_ctx/2 .. n_ctx-2) is taken. The tensor's
 * coefficient is that KLD divided by its weighted error at probe_type
 * (convert/qerror.h, experts weighted by traffic), i.e. KLD per unit of
 * error; a matrix whose row length does not fit probe_type is probed with
 * Q8_0. Base log-probabilities of all chunks are kept in memory
 * (n_chunks * n_ctx/2 * n_vocab floats). The swap is undone before the
 * call returns, whatever happens. Deterministic for any thread count. */
#ifndef QP_RT_SENSITIVITY_H
#define QP_RT_SENSITIVITY_H

#include <stdint.h>

#include "common/qp_error.h"
#include "common/qp_progress.h"
#include "convert/convert.h"
#include "convert/plan.h"
#include "convert/sensitivity.h"
#include "runtime-lite/model.h"

typedef struct {
    qp_rt_model *model;           /* matrices are swapped temporarily */
    const qp_plan *plan;          /* over the same checkpoint as model */
    qp_importance_fn importance;  /* NULL: plain quantization */
    void *importance_ctx;
    const qp_sens *traffic;       /* routed counts for expert weights; may be NULL */
    const int32_t *tokens;
    int64_t n_tokens;
    int64_t n_ctx;                /* tokens per chunk (>= 4) */
    int64_t n_chunks;             /* chunks to run (capped by the text) */
    uint32_t probe_type;          /* e.g. QP_GGML_Q3_K */
    int n_threads;
    qp_progress progress;         /* matrices done / total; cancel flag */
} qp_sens_job;

/* *out gets a new table (free with qp_sens_free) without traffic data.
 * QP_ERR_BAD_INPUT when the text is shorter than one chunk;
 * QP_ERR_INTERRUPTED on cancel. */
qp_status qp_sens_measure(const qp_sens_job *job, qp_sens **out, qp_err *err);

#endif
