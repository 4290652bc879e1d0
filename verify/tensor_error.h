/* tensor_error.h - how far a quantized tensor is from its source rows.
 *
 * For source values s and dequantized values q (e = q - s) over the n
 * elements of a tensor:
 *   rmse          = sqrt(sum e^2 / n)
 *   rel_rmse      = sqrt(sum e^2 / sum s^2)          (rmse / rms of the source)
 *   max_abs_err   = max |e|
 *   cosine        = sum s*q / sqrt(sum s^2 * sum q^2) (1 when both are all zero)
 *   snr_db        = 10 log10(sum s^2 / sum e^2)       (+inf when e is all zero)
 *   weighted_rel_rmse = sqrt(sum_ij w_j e_ij^2 / sum_ij w_j s_ij^2)
 * where w_j is the importance of column j (for a weight row, the mean
 * squared activation the importance matrix recorded for input j; stacked
 * experts use their own vector). This is the figure llama.cpp's quantizers
 * minimise, so it says how much of the error lands where activations are.
 *
 * Sums are taken in double. qp_terr_compute() streams the rows in fixed
 * blocks that never depend on the thread count and merges the block sums in
 * block order, so results are bit-identical for any number of threads. */
#ifndef QP_VERIFY_TENSOR_ERROR_H
#define QP_VERIFY_TENSOR_ERROR_H

#include <stdint.h>

#include "common/qp_error.h"
#include "common/qp_progress.h"

/* Running sums; add rows, merge, then finish. */
typedef struct {
    int64_t n;          /* finite element pairs summed */
    int64_t nonfinite;  /* pairs skipped because s or q was NaN/Inf */
    double sum_src2, sum_deq2, sum_dot, sum_err2;
    double max_abs_err;
    int64_t n_weighted; /* elements that carried an importance weight */
    double w_sum_err2, w_sum_src2;
} qp_terr_acc;

typedef struct {
    int64_t n, nonfinite;
    double rmse, rel_rmse, max_abs_err, cosine, snr_db;
    int has_weighted;          /* some rows had importance weights */
    int64_t n_weighted;        /* how many elements they covered */
    double weighted_rel_rmse;  /* over the weighted elements only */
} qp_terr;

void qp_terr_acc_init(qp_terr_acc *a);
/* Add n_rows rows of row_len elements; imp is row_len column weights or NULL. */
void qp_terr_acc_rows(qp_terr_acc *a, const float *src, const float *deq, int64_t n_rows,
                      int64_t row_len, const float *imp);
void qp_terr_acc_merge(qp_terr_acc *into, const qp_terr_acc *from);
void qp_terr_finish(const qp_terr_acc *a, qp_terr *out);

/* Source rows [row0, row0+n) as f32 (n * row_len floats). Must be callable
 * from several threads at once. */
typedef qp_status (*qp_terr_rows_fn)(void *ctx, int64_t row0, int64_t n, float *dst, qp_err *err);

typedef struct {
    const char *name;          /* tensor name, for errors */
    const void *qdata;         /* n_rows rows stored as qtype */
    uint64_t qbytes;           /* bytes available at qdata (checked) */
    uint32_t qtype;            /* qp_ggml_type with a dequantizer in quant/qtype.h */
    int64_t row_len, n_rows;
    int64_t n_groups;          /* rows split evenly into groups (experts); <= 1: one */
    qp_terr_rows_fn source;
    void *source_ctx;
    const float *const *imp;   /* n_groups vectors of row_len (entries may be NULL), or NULL */
    int n_threads;             /* <= 1: inline */
    const qp_progress *progress; /* cancel flag only (checked between blocks); may be NULL */
    qp_terr_acc *acc_out;      /* receives the whole tensor's sums; may be NULL */
} qp_terr_job;

/* Compare every row. `total` gets the whole tensor; `per_group` (n_groups
 * entries, may be NULL) each group alone. QP_ERR_UNSUPPORTED when qtype has
 * no dequantizer, QP_ERR_BAD_INPUT when the shape does not fit the type or
 * qbytes, QP_ERR_INTERRUPTED on cancel, else the source's error. */
qp_status qp_terr_compute(const qp_terr_job *job, qp_terr *total, qp_terr *per_group, qp_err *err);

#endif
