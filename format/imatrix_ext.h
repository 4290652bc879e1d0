/* imatrix_ext.h - what a calibration pass needs beyond imatrix.h: setting
 * an expert's sums and count directly (for statistics that are not plain
 * unweighted rows, such as router-probability-weighted ones), and writing
 * extra metadata keys after llama.cpp's four. */
#ifndef QP_IMATRIX_EXT_H
#define QP_IMATRIX_EXT_H

#include <stdint.h>

#include "common/qp_error.h"
#include "format/gguf.h"
#include "format/imatrix.h"

/* Replace one expert's sums (n_in values, finite and >= 0) and count
 * (finite, >= 0). QP_ERR_USAGE on a bad entry/expert, QP_ERR_BAD_INPUT on
 * a bad value (nothing changes then). Not thread-safe. */
qp_status qp_imatrix_set(qp_imatrix *m, int64_t entry, int64_t expert, const double *sum2, double count,
                         qp_err *err);

/* Called by qp_imatrix_write_kv after the four standard keys: add more keys
 * with the qp_gguf_set_* functions (e.g. "qpack.calib.*"). */
typedef qp_status (*qp_imatrix_kv_fn)(void *user, qp_gguf_writer *w, qp_err *err);

/* qp_imatrix_write with extra keys (extra_kv may be NULL). */
qp_status qp_imatrix_write_kv(const qp_imatrix *m, const char *path, qp_imatrix_kv_fn extra_kv, void *user,
                              qp_err *err);

#endif
