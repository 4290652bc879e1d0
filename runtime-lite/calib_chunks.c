/* calib_chunks.c - the chunk loop of the calibration passes (see
 * calib_chunks.h). */
#include "runtime-lite/calib_chunks.h"

qp_status qp_calib_chunk_count(const qp_calib_job *job, int64_t *n_chunks, qp_err *err)
{
    int64_t n = job->n_tokens / job->n_ctx;
    if (job->max_chunks > 0 && n > job->max_chunks)
        n = job->max_chunks;
    *n_chunks = n;
    if (n < 1)
        return qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "the text has %lld tokens, fewer than one chunk of %lld",
                          (long long)job->n_tokens, (long long)job->n_ctx);
    return QP_OK;
}

static int coverage_done(const qp_calib_cover *cv)
{
    for (int64_t i = 0; i < cv->n; i++)
        if (cv->flag[i] && cv->mass[i] < cv->need[i])
            return 0;
    return 1;
}

qp_status qp_calib_run_chunks(const qp_calib_job *job, qp_rt_state *s, const qp_rt_observer *obs, int64_t n_chunks,
                              const char *what, const qp_status *cb_st, const qp_calib_cover *cover,
                              int64_t *chunks_run, qp_err *err)
{
    const uint64_t total = (uint64_t)(n_chunks * job->n_ctx);
    qp_rt_state_set_observer(s, obs);
    if (chunks_run)
        *chunks_run = 0;
    for (int64_t k = 0; k < n_chunks; k++) {
        if (qp_cancelled(&job->progress))
            return qp_err_set(err, QP_ERR_INTERRUPTED, NULL, "interrupted");
        qp_rt_state_reset(s);
        qp_status st = qp_rt_forward(job->model, s, job->tokens + k * job->n_ctx, job->n_ctx, 0, 0, NULL, err);
        if (st == QP_OK)
            st = *cb_st;
        if (st != QP_OK)
            return st;
        if (chunks_run)
            *chunks_run = k + 1;
        qp_report(&job->progress, (uint64_t)((k + 1) * job->n_ctx), total, what);
        if (cover && coverage_done(cover))
            break;
    }
    return QP_OK;
}
