/* calib_chunks.h - the chunk loop shared by the importance-matrix and the
 * covariance calibration (calibrate.c, covariance.c; internal to
 * runtime-lite). Both must walk the same chunks and stop their coverage
 * pass at the same chunk, so that diag(H) matches the imatrix entry by
 * entry; one loop keeps them from drifting apart. */
#ifndef QP_RT_CALIB_CHUNKS_H
#define QP_RT_CALIB_CHUNKS_H

#include <stdint.h>

#include "common/qp_error.h"
#include "runtime-lite/calibrate.h"
#include "runtime-lite/forward.h"

/* Coverage-pass state: the run stops once every flagged expert has the
 * mass it needs (mass[i] >= need[i] for each flag[i]). */
typedef struct {
    const uint8_t *flag; /* [n] */
    const double *need;  /* [n] */
    const double *mass;  /* [n], growing while the observer runs */
    int64_t n;
} qp_calib_cover;

/* The number of whole chunks of job->n_ctx tokens (capped by max_chunks);
 * an error when the text holds less than one. */
qp_status qp_calib_chunk_count(const qp_calib_job *job, int64_t *n_chunks, qp_err *err);

/* Forward chunks [0, n_chunks) of job->tokens through `s` with `obs`,
 * reporting progress as `what`. After each chunk *cb_st (the first failure
 * inside the observer's callbacks) is checked. With `cover` the run stops
 * early once coverage is done. *chunks_run (may be NULL) gets the number
 * of chunks forwarded. */
qp_status qp_calib_run_chunks(const qp_calib_job *job, qp_rt_state *s, const qp_rt_observer *obs, int64_t n_chunks,
                              const char *what, const qp_status *cb_st, const qp_calib_cover *cover,
                              int64_t *chunks_run, qp_err *err);

#endif
