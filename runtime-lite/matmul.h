/* matmul.h - batched products of a batch of f32 activation rows with typed
 * weight matrices: Y[t][r] = dot(W row (row0 + r), X[t]).
 *
 * F32/F16/BF16 weights: panels of 16 rows are widened to f32 and transposed
 * (k-major), then a 6-token x 16-row register tile accumulates over k with
 * f32 activations (AVX2+FMA when present, a scalar twin otherwise).
 * Quantized weights with a vec_dot kernel: the activation rows are
 * quantized once per call to the type's vec_dot_type, then each output is
 * one vec_dot (what llama.cpp does on CPU). Quantized types without vec_dot
 * are dequantized panel by panel into the f32 path.
 *
 * Work is split over threads by fixed 16-row panels, and every output is
 * computed by one thread in a fixed order, so results are bit-identical for
 * any thread count, and the same whether a token runs alone or in a batch
 * (the tile's per-output order does not depend on how many rows it has). */
#ifndef QP_RT_MATMUL_H
#define QP_RT_MATMUL_H

#include <stdint.h>

#include "common/qp_error.h"
#include "runtime-lite/model.h"

#define QP_RT_TILE_M 6   /* tokens per register tile */
#define QP_RT_TILE_N 16  /* weight rows per panel */

typedef struct {
    const qp_rt_tensor *w;
    int64_t row0;   /* first weight row used (an expert's slice) */
    int64_t n_out;  /* rows used = output columns */
    float *y;       /* [job tokens][ldy] */
    int64_t ldy;
    /* Activation rows of this job: x rows [x_row0, x_row0 + n_tok). With
     * n_tok == 0 the job takes all the call's rows (x_row0 must be 0). */
    int64_t x_row0, n_tok;
} qp_rt_mm_job;

/* Run every job over rows of the same activations x ([n_tok][ldx], K =
 * row_len columns; all jobs must share K). One parallel region for all
 * jobs, so q/k/v, gate/up, or every expert of a layer cost one thread
 * launch, and activations are quantized once per call. Fails only on
 * NOMEM or a bad job (QP_ERR_INTERNAL). */
qp_status qp_rt_matmul(const qp_rt_mm_job *jobs, int n_jobs, const float *x, int64_t ldx,
                       int64_t n_tok, int n_threads, qp_err *err);

/* The same with the kernel family chosen by the caller (avx2 non-zero only
 * when qp_cpu_get().avx2): the forward pass resolves it once per call,
 * since CPU detection is not free. */
qp_status qp_rt_matmul_sel(const qp_rt_mm_job *jobs, int n_jobs, const float *x, int64_t ldx,
                           int64_t n_tok, int n_threads, int avx2, qp_err *err);

/* Rows [row0, row0+n) of w as f32 (n * row_len floats). */
void qp_rt_rows_to_f32(const qp_rt_tensor *w, int64_t row0, int64_t n, float *dst);

/* ---- kernels (exposed for the twins test and the benchmark) ---- */

/* y[i][j] = sum_k x[i][k] * panel[k*ldp + j] for i < m (1..6), j < 16, k in
 * order: every output is the same chain of (fused on AVX2) multiply-adds
 * whatever m, and adding k terms that are exactly zero changes nothing. */
typedef void (*qp_rt_tile_fn)(int m, int64_t K, const float *x, int64_t ldx, const float *panel, int64_t ldp,
                              float *y, int64_t ldy);
void qp_rt_tile_scalar(int m, int64_t K, const float *x, int64_t ldx, const float *panel, int64_t ldp, float *y,
                       int64_t ldy);
void qp_rt_tile_avx2(int m, int64_t K, const float *x, int64_t ldx, const float *panel, int64_t ldp, float *y,
                     int64_t ldy);

/* Widen and transpose rows of F32/F16/BF16 (n_rows <= 16, the rest of the
 * panel zero) into a k-major panel. */
typedef void (*qp_rt_pack_fn)(uint32_t type, const void *rows, uint64_t row_bytes, int n_rows,
                              int64_t K, float *panel);
void qp_rt_pack_scalar(uint32_t type, const void *rows, uint64_t row_bytes, int n_rows, int64_t K, float *panel);
void qp_rt_pack_avx2(uint32_t type, const void *rows, uint64_t row_bytes, int n_rows, int64_t K, float *panel);

#endif
