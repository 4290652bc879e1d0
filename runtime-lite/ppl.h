/* ppl.h - perplexity and KL divergence, llama.cpp's protocol.
 *
 * The token stream is cut into non-overlapping chunks of n_ctx tokens; each
 * chunk runs alone from an empty cache (no BOS), and positions
 * n_ctx/2 .. n_ctx-2 are scored on the next token (255 per chunk at 512).
 * ppl = exp(mean NLL); its uncertainty is ppl * sqrt(var(NLL) / (N-1)).
 *
 * With a base (a second model run live, or a llama.cpp base log-probability
 * file, see logits_file.h) each scored token also contributes
 *   KLD(base || model) = sum_i p_base,i (log p_base,i - log p_model,i),
 *   Δp = p_model(next token) - p_base(next token), and top-1 agreement;
 * summaries follow llama.cpp's --kl-divergence report (means with standard
 * errors, correlation-aware errors for ln ratio / ratio / difference of the
 * perplexities, quantiles of KLD and Δp). A live base uses its exact
 * log-probabilities; a file base uses the decoded 16-bit values and, like
 * llama.cpp, leaves out base terms below e^-16.
 *
 * Per-token values are computed in parallel but summed in token order, so
 * results do not depend on the thread count. */
#ifndef QP_RT_PPL_H
#define QP_RT_PPL_H

#include <stdint.h>

#include "common/qp_error.h"
#include "common/qp_progress.h"
#include "runtime-lite/model.h"
#include "runtime-lite/stream.h"

typedef struct {
    double val, unc;
} qp_ppl_est;

/* Reported after each chunk (the running values) and at the end. */
typedef struct {
    int64_t chunk;          /* chunks done (1-based count) */
    int64_t n_chunks;       /* chunks that will run */
    int64_t n_scored;       /* tokens scored so far */
    qp_ppl_est ppl;         /* of the model */
    int has_base;
    qp_ppl_est ppl_base;
    qp_ppl_est ln_ratio;    /* ln(PPL(model)/PPL(base)) */
    qp_ppl_est ratio;       /* PPL(model)/PPL(base) */
    qp_ppl_est diff;        /* PPL(model) - PPL(base) */
    double cor;             /* correlation of per-token NLLs */
    qp_ppl_est kld;         /* mean KLD */
    qp_ppl_est p_diff;      /* mean Δp */
    qp_ppl_est p_diff_rms;  /* RMS Δp */
    qp_ppl_est same_top;    /* fraction with the same top-1 token */
    double max_abs_p_diff;
} qp_ppl_stats;

/* Quantiles, only in the final summary (sorted per-token values). */
typedef struct {
    double max, p999, p99, p95, p90, median, p10, p05, p01, p001, min;
} qp_ppl_quantiles;

typedef struct {
    qp_ppl_stats stats;
    qp_ppl_quantiles kld_q;    /* when has_base */
    qp_ppl_quantiles p_diff_q; /* when has_base */
    int64_t n_ctx;             /* tokens per chunk (the file's with base_logits) */
    double seconds;            /* wall time of the model passes */
    double tokens_per_second;  /* tokens run through the model per second */
} qp_ppl_summary;

typedef void (*qp_ppl_chunk_fn)(void *user, const qp_ppl_stats *running);

typedef struct {
    const qp_rt_model *model;
    const qp_rt_model *base;       /* live base, or NULL */
    const int32_t *tokens;         /* the text; ignored with base_logits */
    int64_t n_tokens;
    int64_t n_ctx;                 /* ignored with base_logits (the file's) */
    int64_t max_chunks;            /* <= 0: all */
    int n_threads;
    const char *save_logits;       /* write the model's log-probs (llama.cpp format) */
    const char *base_logits;       /* read base log-probs from this file */
    /* With a base: write every scored token's KLD (f32, little-endian, token
     * order) to this file, for paired comparisons (tests/bench/paired_kld.c). */
    const char *save_token_kld;
    qp_progress progress;          /* tokens done / total; cancel flag */
    qp_ppl_chunk_fn on_chunk;
    void *user;
    /* Layer-streamed evaluation (ppl_stream.c, stream.h), NULL: in memory.
     * Models opened with qp_rt_model_open_deferred hold one layer at a
     * time; the results equal the in-memory ones bit for bit, except that a
     * live base is first streamed into a temporary base log-probability
     * file, so KLD statistics equal in-memory --base-logits of that file. */
    const qp_rt_stream_opts *stream;
    qp_rt_stream_stats *stream_stats; /* filled when streaming (may be NULL) */
    /* Where the model's logits come from instead of running `model`
     * (set by ppl_stream.c): logits[scored][n_vocab] of chunk `chunk`. */
    qp_status (*model_logits)(void *ctx, int64_t chunk, float *logits, qp_err *err);
    void *model_logits_ctx;
} qp_ppl_job;

/* Run the job. QP_ERR_BAD_INPUT when there are fewer than 2*n_ctx tokens
 * (as llama.cpp), the vocabularies disagree, or the file does not match;
 * QP_ERR_INTERRUPTED when the cancel flag is raised between chunks. */
qp_status qp_ppl_run(const qp_ppl_job *job, qp_ppl_summary *out, qp_err *err);
/* qp_ppl_run of a job with `stream` set (ppl_stream.c). */
qp_status qp_ppl_run_stream(const qp_ppl_job *job, qp_ppl_summary *out, qp_err *err);

/* The accumulators behind the statistics, exposed for tests. */
typedef struct {
    int64_t count;
    double sum_nll, sum_nll2;
    double sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2;
    double sum_p_diff, sum_p_diff2, sum_p_diff4;
    double max_p_diff;
    int64_t n_same_top;
} qp_ppl_acc;

void qp_ppl_acc_stats(const qp_ppl_acc *a, int has_base, qp_ppl_stats *out);

/* NLL of `target` under softmax(logits) (log-sum-exp in double). */
double qp_ppl_nll(const float *logits, int64_t n_vocab, int32_t target);

#endif
