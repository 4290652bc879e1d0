/* covmat.h - input second-moment matrices ("covariance files") for
 * error-feedback quantization (quant/gptq.h).
 *
 * For each weight matrix W (GGUF name, e.g. "blk.0.attn_q.weight") the file
 * holds H = sum_t x_t x_t^T over the calibration inputs x_t (n_in floats)
 * that multiplied W, and the number of tokens summed; stacked expert
 * tensors keep one H and one count per expert (tokens routed to it, plus
 * the coverage fill of runtime-lite/covariance.h). diag(H) equals the
 * importance matrix's in_sum2 for the same tokens.
 *
 * GGUF layout (a separate file; the imatrix stays llama.cpp's format):
 * general.type = "covariance", qpack.cov.chunk_count (UINT32),
 * qpack.cov.chunk_size (UINT32); per entry the F32 tensors
 *   "<name>.cov"       ne = [n_in, n_in] or [n_in, n_in, n_expert]
 *   "<name>.cov_count" ne = [1] or [1, n_expert]
 * Reading validates everything (type, shapes, pairing, finite values,
 * non-negative counts and diagonals). Other tensors are rejected.
 *
 * Memory holds doubles (accumulation); the file stores F32. Not locked:
 * qp_covmat_accumulate may run concurrently only for distinct
 * (entry, expert) pairs. */
#ifndef QP_COVMAT_H
#define QP_COVMAT_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

#define QP_COVMAT_MAX_NAME 96
#define QP_COVMAT_MAX_N_IN 65536

typedef struct qp_covmat qp_covmat;

qp_covmat *qp_covmat_new(void);
void qp_covmat_free(qp_covmat *m); /* accepts NULL */

qp_status qp_covmat_read(const char *path, qp_covmat **out, qp_err *err);
qp_status qp_covmat_read_memory(const void *buf, size_t size, const char *name_for_errors, qp_covmat **out,
                                qp_err *err);
/* Temp file renamed at the end; entries in insertion order. */
qp_status qp_covmat_write(const qp_covmat *m, const char *path, qp_err *err);

int64_t qp_covmat_count(const qp_covmat *m);
int64_t qp_covmat_find(const qp_covmat *m, const char *name); /* -1 if absent */
const char *qp_covmat_name(const qp_covmat *m, int64_t entry);
int64_t qp_covmat_n_in(const qp_covmat *m, int64_t entry);
int64_t qp_covmat_n_expert(const qp_covmat *m, int64_t entry);
/* H of one expert: n_in * n_in doubles, row-major, symmetric. */
const double *qp_covmat_h(const qp_covmat *m, int64_t entry, int64_t expert);
double *qp_covmat_h_mut(qp_covmat *m, int64_t entry, int64_t expert);
double qp_covmat_rows(const qp_covmat *m, int64_t entry, int64_t expert);
void qp_covmat_set_rows(qp_covmat *m, int64_t entry, int64_t expert, double rows);
uint32_t qp_covmat_chunk_count(const qp_covmat *m);
uint32_t qp_covmat_chunk_size(const qp_covmat *m);
void qp_covmat_set_chunks(qp_covmat *m, uint32_t chunk_count, uint32_t chunk_size);

/* Declare an entry with zero data (an existing one of the same shape is
 * returned as is); -1 with err set on a clash, bad name or no memory. */
int64_t qp_covmat_add(qp_covmat *m, const char *name, int64_t n_in, int64_t n_expert, qp_err *err);

/* H[expert] += x^T x over n_rows rows of n_in floats (row-major), rows
 * += n_rows. n_threads split the work by fixed row ranges of H, so the
 * result does not depend on the count. Non-finite x: QP_ERR_BAD_INPUT,
 * nothing changed. */
qp_status qp_covmat_accumulate(qp_covmat *m, int64_t entry, int64_t expert, const float *x, int64_t n_rows,
                               int n_threads, qp_err *err);

/* Copy entry src's data into a new entry `name` (matrices that share an
 * input, e.g. attn_q/k/v). */
qp_status qp_covmat_copy(qp_covmat *m, int64_t src, const char *name, qp_err *err);

#endif
