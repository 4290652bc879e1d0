/* cov_apply.c - covariance file -> per-tensor, per-expert H for the
 * converter (see cov_apply.h). */
#include "convert/cov_apply.h"

#include <stdlib.h>

#include "format/covmat.h"
#include "quant/gptq.h"

struct qp_cov_apply {
    qp_covmat *m;
    int64_t n_plan;
    int64_t *entry; /* per plan tensor: covmat entry or -1 */
    int64_t used;
};

void qp_cov_apply_free(qp_cov_apply *c)
{
    if (!c)
        return;
    qp_covmat_free(c->m);
    free(c->entry);
    free(c);
}

qp_status qp_cov_apply_open(const char *path, const qp_plan *plan, const uint32_t *types, qp_cov_apply **out,
                            qp_err *err)
{
    *out = NULL;
    qp_cov_apply *c = calloc(1, sizeof *c);
    const int64_t n = qp_plan_count(plan);
    if (!c || !(c->entry = malloc((size_t)(n ? n : 1) * sizeof *c->entry))) {
        free(c);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    c->n_plan = n;
    qp_status s = qp_covmat_read(path, &c->m, err);
    for (int64_t i = 0; s == QP_OK && i < n; i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        c->entry[i] = -1;
        int64_t e = qp_covmat_find(c->m, t->name);
        if (e < 0)
            continue;
        if (qp_covmat_n_in(c->m, e) != t->row_len || qp_covmat_n_expert(c->m, e) != t->n_expert) {
            s = qp_err_set(err, QP_ERR_BAD_INPUT, path,
                           "covariance entry is %lld x %lld for %lld experts, the tensor has rows of %lld and %lld "
                           "experts", (long long)qp_covmat_n_in(c->m, e), (long long)qp_covmat_n_in(c->m, e),
                           (long long)qp_covmat_n_expert(c->m, e), (long long)t->row_len, (long long)t->n_expert);
            qp_err_set_tensor(err, t->name);
            break;
        }
        c->entry[i] = e;
        c->used += qp_gptq_supported(types[i]); /* convert checks the final type again */
    }
    if (s == QP_OK && c->used == 0)
        s = qp_err_set(err, QP_ERR_BAD_INPUT, path, "no quantized tensor of this model has a covariance entry");
    if (s != QP_OK) {
        qp_cov_apply_free(c);
        return s;
    }
    *out = c;
    return QP_OK;
}

const double *qp_cov_apply_get(void *ctx, const qp_plan *plan, int64_t i, int64_t expert)
{
    (void)plan;
    const qp_cov_apply *c = ctx;
    if (i < 0 || i >= c->n_plan || c->entry[i] < 0 || expert < 0 ||
        expert >= qp_covmat_n_expert(c->m, c->entry[i]) || !(qp_covmat_rows(c->m, c->entry[i], expert) > 0))
        return NULL;
    return qp_covmat_h(c->m, c->entry[i], expert);
}

int64_t qp_cov_apply_used_count(const qp_cov_apply *c) { return c ? c->used : 0; }
