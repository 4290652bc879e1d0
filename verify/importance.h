/* importance.h - importance weights for verify from an importance matrix. */
#ifndef QP_VERIFY_IMPORTANCE_H
#define QP_VERIFY_IMPORTANCE_H

#include <stdint.h>

#include "format/imatrix.h"

/* A qp_verify_imp_fn (verify/against.h) over `ctx` = const qp_imatrix *:
 * the importance of column j for `expert` is the mean in_sum2[j] / count of
 * the entry named like the tensor. Returns 0 (no weights) when the entry is
 * absent, its shape disagrees with the tensor (other columns or experts), or
 * that expert saw no tokens. */
int qp_verify_imatrix_importance(void *ctx, const char *name, int64_t expert, int64_t n_expert, int64_t row_len,
                                 float *out);

#endif
