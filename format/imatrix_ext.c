/* imatrix_ext.c - setting an expert's statistics directly (see imatrix_ext.h). */
#include "format/imatrix_ext.h"

#include <float.h>
#include <math.h>

#include "format/imatrix_impl.h"

qp_status qp_imatrix_set(qp_imatrix *m, int64_t entry, int64_t expert, const double *sum2, double count,
                         qp_err *err)
{
    if (!m || entry < 0 || entry >= m->n || !sum2)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_imatrix_set: bad arguments");
    qp_imx_entry *e = &m->e[entry];
    if (expert < 0 || expert >= e->n_expert) {
        qp_err_set(err, QP_ERR_USAGE, NULL, "expert %lld out of range (%lld experts)", (long long)expert,
                   (long long)e->n_expert);
        qp_err_set_tensor(err, e->name);
        return QP_ERR_USAGE;
    }
    /* the writers store f32: check the values fit before changing anything */
    if (!isfinite(count) || count < 0 || count > FLT_MAX) {
        qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "bad count %g for expert %lld", count, (long long)expert);
        qp_err_set_tensor(err, e->name);
        return QP_ERR_BAD_INPUT;
    }
    for (int64_t j = 0; j < e->n_in; j++)
        if (!isfinite(sum2[j]) || sum2[j] < 0 || sum2[j] > FLT_MAX) {
            qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "bad sum %g in column %lld of expert %lld", sum2[j],
                       (long long)j, (long long)expert);
            qp_err_set_tensor(err, e->name);
            return QP_ERR_BAD_INPUT;
        }
    float *s = e->sums + expert * e->n_in;
    for (int64_t j = 0; j < e->n_in; j++)
        s[j] = (float)sum2[j];
    e->counts[expert] = count;
    return QP_OK;
}
