/* forward.h - the Qwen3 / Qwen3-MoE forward pass over a batch of tokens,
 * with a KV cache (the run state, kept apart from config and weights).
 *
 * One call processes n_tok tokens that follow the ones already in the
 * cache (positions pos .. pos+n_tok-1) as matrix-matrix products, appends
 * their keys/values, and returns logits for the requested rows only (the
 * output projection is the largest matrix: perplexity needs half the rows,
 * generation one). */
#ifndef QP_RT_FORWARD_H
#define QP_RT_FORWARD_H

#include <stdint.h>

#include "common/qp_error.h"
#include "runtime-lite/model.h"

typedef struct qp_rt_state qp_rt_state;

/* n_ctx: cache capacity in tokens; max_batch: tokens per internal pass
 * (longer calls are split; 0 means n_ctx). */
qp_status qp_rt_state_new(const qp_rt_model *m, int64_t n_ctx, int64_t max_batch, int n_threads,
                          qp_rt_state **out, qp_err *err);
void qp_rt_state_free(qp_rt_state *s); /* accepts NULL */

void qp_rt_state_reset(qp_rt_state *s);          /* forget the cached tokens */
int64_t qp_rt_state_pos(const qp_rt_state *s);   /* tokens in the cache */
int64_t qp_rt_state_n_ctx(const qp_rt_state *s);

/* Run tokens[0..n_tok) at the next positions. Rows out_first ..
 * out_first+n_out-1 of the batch get their logits in
 * logits[(t - out_first) * n_vocab ...] (n_out may be 0). Fails with
 * QP_ERR_BAD_INPUT for a token id outside the vocabulary and QP_ERR_USAGE
 * when the cache would overflow or the output range is outside the batch. */
qp_status qp_rt_forward(const qp_rt_model *m, qp_rt_state *s, const int32_t *tokens, int64_t n_tok,
                        int64_t out_first, int64_t n_out, float *logits, qp_err *err);

/* ---- observation hook (calibration; see runtime-lite/calibrate.h) ----
 * Optional callbacks that see the inputs of every quantizable product and
 * the router's choices, without changing the results. NULL (the default)
 * costs one pointer test per product. Called from the thread that runs
 * qp_rt_forward, never concurrently; the pointers are valid only during
 * the call. */
typedef struct {
    const char *weight;       /* GGUF name of the matrix, e.g. "blk.0.attn_q.weight" */
    int64_t layer;
    int64_t expert;           /* -1: a dense matrix; else the expert of a stacked one */
    const float *x;           /* n_rows input rows of n_in floats, contiguous */
    int64_t n_rows, n_in;
    const int32_t *row_token; /* experts: the batch token of each row; NULL for dense */
} qp_rt_obs_matmul;

typedef struct {
    int64_t layer;
    const float *x;           /* [n_tok][n_embd] the router's (and every expert's gate/up) input */
    const float *probs;       /* [n_tok][n_expert] softmax of the router logits */
    const int32_t *sel;       /* [n_tok][k] chosen experts */
    int64_t n_tok, n_embd, n_expert, k;
    const qp_rt_layer *weights; /* the layer's weights in use (resident while streaming) */
} qp_rt_obs_route;

typedef struct {
    void (*on_matmul)(void *user, const qp_rt_obs_matmul *ev); /* may be NULL */
    void (*on_route)(void *user, const qp_rt_obs_route *ev);   /* may be NULL */
    void *user;
} qp_rt_observer;

/* Install (a copy of) `obs`, or remove it with NULL. */
void qp_rt_state_set_observer(qp_rt_state *s, const qp_rt_observer *obs);

/* ---- one layer at a time (the layer-streaming engine, stream.h) ----
 * qp_rt_forward split into its steps, for a loop that runs every chunk
 * through one layer before the next layer is loaded. The steps are the
 * same code as qp_rt_forward's, in passes of the same max_batch rows, so
 * the results are bit-identical. Weights are passed explicitly (the
 * resident copy of a layer), since a model opened with
 * qp_rt_model_open_deferred has none bound. */

/* A state whose cache holds the keys/values of one layer; such a state
 * runs only qp_rt_forward_layer / qp_rt_forward_head. */
qp_status qp_rt_state_new_layer(const qp_rt_model *m, int64_t n_ctx, int64_t max_batch, int n_threads,
                                qp_rt_state **out, qp_err *err);
uint64_t qp_rt_state_bytes(const qp_rt_state *s); /* buffers held by the state */

/* x[n_tok][n_embd] = the embeddings of tokens (QP_ERR_BAD_INPUT for an id
 * outside the vocabulary). */
qp_status qp_rt_forward_embed(const qp_rt_model *m, const qp_rt_tensor *token_embd, const int32_t *tokens,
                              int64_t n_tok, float *x, qp_err *err);

/* Run layer `layer` with weights L over x[n_tok][n_embd] in place, at the
 * state's next positions (tokens run earlier since the last reset are
 * attended to), and advance the position. The observer sees the layer's
 * events as in qp_rt_forward. */
qp_status qp_rt_forward_layer(const qp_rt_model *m, qp_rt_state *s, int64_t layer, const qp_rt_layer *L, float *x,
                              int64_t n_tok, qp_err *err);

/* logits[n_rows][n_vocab] of the final hidden rows x[n_rows][n_embd]:
 * output norm, then the output matrix `output`. */
qp_status qp_rt_forward_head(const qp_rt_model *m, qp_rt_state *s, const qp_rt_tensor *output, const float *x,
                             int64_t n_rows, float *logits, qp_err *err);

#endif
