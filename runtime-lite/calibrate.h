/* calibrate.h - importance-matrix calibration with full expert coverage.
 *
 * Routed pass: the token stream is cut into non-overlapping chunks of n_ctx
 * tokens (no BOS; a last partial chunk is dropped, as llama-imatrix does);
 * each chunk runs alone from an empty cache, and for every quantizable
 * matrix (attn_q/k/v/output, ffn_gate/up/down, the router ffn_gate_inp and
 * the stacked ffn_{gate,up,down}_exps; not token_embd/output) the sum over
 * all positions of x_j^2 of its input x and the token count are added, under
 * llama.cpp's tensor names. Matrices sharing an input (q/k/v, gate/up) each
 * get their own copy of the same data, as llama-imatrix records them. A
 * stacked expert tensor gets one row and one count per expert, from the
 * tokens routed to that expert (top-k).
 *
 * Coverage (forced) pass, MoE only: an expert routed fewer than
 * min_expert_tokens tokens in a layer would be quantized with little or no
 * data (llama.cpp then falls back to all-1 weights). For those experts the
 * chunks are run again and every token of the layer contributes to the
 * expert's statistics weighted by the router probability p_t,e (softmax
 * before top-k): the input x_t for gate/up, and for down the expert's own
 * SwiGLU output h_e(x_t) = silu(G_e x_t) * (U_e x_t), computed for that
 * purpose (it does not touch the model's output). With S_soft = sum_t p_t,e
 * y_t^2 and W = sum_t p_t,e, the expert's row becomes
 *     in_sum2 = S_routed + (min - n_routed) * S_soft / W,
 *     count   = min,
 * i.e. the soft mean fills the missing (min - n_routed) tokens and the
 * routed tokens keep their weight. The pass stops once every flagged
 * expert's soft mass W reaches min - n_routed, or at the end of the chunks.
 *
 * The library never prints; progress goes through qp_progress ("routed",
 * then "coverage" as `what`). */
#ifndef QP_RT_CALIBRATE_H
#define QP_RT_CALIBRATE_H

#include <stdint.h>

#include "common/qp_error.h"
#include "common/qp_progress.h"
#include "format/imatrix.h"
#include "format/imatrix_ext.h"
#include "runtime-lite/model.h"
#include "runtime-lite/stream.h"

typedef struct {
    const qp_rt_model *model;
    const int32_t *tokens;
    int64_t n_tokens;
    int64_t n_ctx;              /* tokens per chunk (llama-imatrix default 512) */
    int64_t max_chunks;         /* <= 0: all */
    int n_threads;
    int64_t min_expert_tokens;  /* coverage threshold; <= 0 disables the forced pass */
    const char *dataset;        /* stored in imatrix.datasets; may be NULL */
    qp_progress progress;       /* tokens done / total per pass; cancel flag */
    /* Layer-streamed calibration (stream.h), NULL: in memory. Layer by
     * layer: the routed events of every chunk, then that layer's coverage
     * pass over the same inputs, then the next layer; the result equals the
     * in-memory one. Progress is one "stream" display (what: "stream
     * layer l/L"). The model should come from qp_rt_model_open_deferred. */
    const qp_rt_stream_opts *stream;
    qp_rt_stream_stats *stream_stats; /* filled when streaming (may be NULL) */
} qp_calib_job;

typedef struct {
    qp_imatrix *imatrix;        /* the result (owned) */
    int64_t n_layer;
    int64_t n_expert;           /* 0 for a dense model */
    int64_t n_expert_used;
    int64_t min_expert_tokens;
    /* [n_layer * n_expert], layer-major (NULL for dense models): */
    int64_t *routed;            /* tokens routed (top-k) in the routed pass */
    double *soft_mass;          /* forced experts: sum of router probabilities seen */
    double *counts;             /* final count of the expert rows */
    uint8_t *forced;            /* 1: the coverage blend was applied */
    int64_t n_forced;
    int64_t n_chunks;           /* routed pass */
    int64_t n_ctx;
    int64_t coverage_chunks;    /* chunks run by the forced pass (0: none) */
    double seconds;             /* both passes */
    double tokens_per_second;   /* routed pass */
} qp_calib_result;

/* Run both passes. QP_ERR_BAD_INPUT when the text has fewer than n_ctx
 * tokens; QP_ERR_INTERRUPTED when the cancel flag is raised (between
 * chunks). *out is filled on success; free it with qp_calib_result_free. */
qp_status qp_calib_run(const qp_calib_job *job, qp_calib_result *out, qp_err *err);
void qp_calib_result_free(qp_calib_result *r); /* accepts NULL and a zeroed result */

/* Write the matrix in llama.cpp's GGUF imatrix format plus the keys
 * qpack.calib.min_expert_tokens (UINT32), qpack.calib.n_expert (UINT32),
 * and for MoE models qpack.calib.routed_counts (ARRAY[UINT32], layer-major
 * n_layer x n_expert) and qpack.calib.forced (ARRAY[UINT8], same shape). */
qp_status qp_calib_write(const qp_calib_result *r, const char *path, qp_err *err);
/* The same plus more keys after those (e.g. qpack.sens.*; more may be NULL). */
qp_status qp_calib_write_ex(const qp_calib_result *r, const char *path, qp_imatrix_kv_fn more, void *more_user,
                            qp_err *err);

#endif
