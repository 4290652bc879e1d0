/* gptq.h - error-feedback (GPTQ / OBQ-style) quantization of a weight
 * matrix with the second moment of its inputs.
 *
 * For W [rows x n] (ggml blocks along n) and H = sum_t x_t x_t^T [n x n]
 * the objective is the output error sum_r (w_r - q_r)^T H (w_r - q_r) =
 * ||(W - Q) X||^2, not the per-element weighted error of the plain
 * quantizers. With U the upper Cholesky factor of (H + lambda I)^-1, each
 * row is processed column by column in ggml's fixed order: at the start
 * of every block the type's own importance-weighted search (its
 * quantize_row) picks the block's scales on the current, error-updated
 * weights; each element then takes the level nearest to its current value
 * given those scales, and its error e_j = (w_j - y_j) / U_jj is fed back to
 * the later columns (w_k -= e_j U_jk), which is the least-squares
 * compensation under H. With `passes` > 1 the block scales of the next pass
 * are searched on the values the elements had when they were quantized
 * (the targets), so scales fit what is actually rounded.
 *
 * Types: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (qp_gptq_supported). The output
 * bytes are ordinary blocks of the type (same size, any dequantizer reads
 * them). Rows are independent: the work is split over rows by fixed
 * ranges, so the output does not depend on the thread count. */
#ifndef QP_GPTQ_H
#define QP_GPTQ_H

#include <stdint.h>

#include "common/qp_error.h"

typedef struct {
    double damp;    /* lambda = damp * mean(diag H); <= 0: 0.01 */
    int passes;     /* scale-search passes (>= 1; 0 means 2) */
    int scale_imp;  /* 0: block scales weighted by imp (or diag H when NULL);
                       1: by 1/U_jj^2, the cost of an error at column j
                       after the feedback */
    int n_threads;  /* <= 1: inline */
    int refine;     /* coordinate-descent sweeps over the codes after each
                       pass (each element tries its neighbouring levels,
                       kept when the H-weighted error drops); 0: 4, < 0:
                       none */
    int refit;      /* with refine: least-squares refit of the f16
                       super-scales under H, then refine again; 0: on,
                       < 0: off */
} qp_gptq_options;

int qp_gptq_supported(uint32_t type);

/* w: rows * n floats (row-major), h: n * n doubles (symmetric), imp: n
 * per-column importances or NULL, dst: rows * row_bytes(type, n). opt may
 * be NULL (defaults). QP_ERR_UNSUPPORTED for other types, QP_ERR_USAGE for
 * n not a multiple of the block, QP_ERR_NOMEM. An H that stays singular
 * after raising the damping falls back to diagonal H (plain weighted
 * quantization) rather than failing. */
qp_status qp_gptq_quantize(uint32_t type, const float *w, int64_t rows, int64_t n, const double *h,
                           const float *imp, const qp_gptq_options *opt, void *dst, qp_err *err);

/* The output error sum_r (w_r - y_r)^T H (w_r - y_r) of dequantized rows y
 * (tests and benchmarks). */
double qp_gptq_output_error(const float *w, const float *y, int64_t rows, int64_t n, const double *h);

#endif
