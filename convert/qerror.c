/* qerror.c - weighted quantization error of a plan tensor (see qerror.h). */
#include "convert/qerror.h"

#include <stdlib.h>
#include <string.h>

#include "quant/qtype.h"

/* Rows [0, rows_per_expert) sampled for each expert: k evenly spaced. */
static int64_t sampled_rows(const qp_plan_tensor *t)
{
    int64_t rpe = t->n_rows / t->n_expert;
    int64_t k = QP_QERR_ROWS / t->n_expert;
    if (k < QP_QERR_MIN_EXPERT_ROWS)
        k = QP_QERR_MIN_EXPERT_ROWS;
    return k < rpe ? k : rpe;
}

qp_status qp_qerr_tensor(const qp_plan *plan, int64_t i, const uint32_t *types, int n_types, qp_importance_fn imp,
                         void *imp_ctx, const double *expert_w, double *out, qp_err *err)
{
    const qp_plan_tensor *t = qp_plan_at(plan, i);
    const int64_t n = t->row_len, rpe = t->n_rows / t->n_expert, k = sampled_rows(t);
    for (int c = 0; c < n_types; c++) {
        const qp_qtype *qt = qp_qtype_get(types[c]);
        out[c] = 0;
        if (!qt || !qt->quantize_row || !qt->dequantize_row || n % qt->block_elems != 0)
            return qp_err_set(err, QP_ERR_USAGE, NULL, "cannot measure the %s error of %s", qp_ggml_type_name(types[c]),
                              t->name);
    }
    float *w = malloc((size_t)n * sizeof *w), *q = malloc((size_t)n * sizeof *q);
    void *blk = malloc((size_t)qp_qtype_row_bytes(QP_GGML_F32, n)); /* >= any quantized row */
    double *acc = calloc((size_t)n_types, sizeof *acc);
    qp_status s = QP_OK;
    if (!w || !q || !blk || !acc) {
        s = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    for (int64_t e = 0; e < t->n_expert && s == QP_OK; e++) {
        const float *iw = imp ? imp(imp_ctx, plan, i, e) : NULL;
        const double scale = (double)rpe / (double)k * (expert_w ? expert_w[e] : 1.0);
        memset(acc, 0, (size_t)n_types * sizeof *acc);
        for (int64_t r = 0; r < k; r++) {
            /* the middle row of each of k equal slices */
            int64_t row = e * rpe + (2 * r + 1) * rpe / (2 * k);
            if ((s = qp_plan_read_rows(plan, i, row, 1, w, err)) != QP_OK)
                break;
            for (int c = 0; c < n_types; c++) {
                const qp_qtype *qt = qp_qtype_get(types[c]);
                qt->quantize_row(w, blk, n, iw);
                qt->dequantize_row(blk, q, n);
                double sum = 0;
                for (int64_t j = 0; j < n; j++) {
                    double d = (double)w[j] - (double)q[j];
                    sum += (iw ? (double)iw[j] : 1.0) * d * d;
                }
                acc[c] += sum;
            }
        }
        for (int c = 0; c < n_types; c++)
            out[c] += acc[c] * scale;
    }
out:
    if (s != QP_OK)
        qp_err_set_tensor(err, t->name);
    free(w);
    free(q);
    free(blk);
    free(acc);
    return s;
}
