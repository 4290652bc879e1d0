/* importance.c - importance vectors from a qp_imatrix for verify. */
#include "verify/importance.h"

int qp_verify_imatrix_importance(void *ctx, const char *name, int64_t expert, int64_t n_expert, int64_t row_len,
                                 float *out)
{
    const qp_imatrix *m = ctx;
    int64_t e = qp_imatrix_find(m, name);
    if (e < 0 || qp_imatrix_n_in(m, e) != row_len || qp_imatrix_n_expert(m, e) != n_expert)
        return 0;
    return qp_imatrix_mean(m, e, expert, out);
}
