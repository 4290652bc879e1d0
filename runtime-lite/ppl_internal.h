/* ppl_internal.h - argument checks shared by the in-memory and the
 * streamed perplexity runs (ppl.c, ppl_stream.c; internal to
 * runtime-lite), so that both refuse the same jobs with the same
 * messages. */
#ifndef QP_RT_PPL_INTERNAL_H
#define QP_RT_PPL_INTERNAL_H

#include <stdint.h>

#include "common/qp_error.h"
#include "runtime-lite/ppl.h"

/* A live base and a base file exclude each other; a live base must share
 * the model's vocabulary. */
qp_status qp_ppl_check_base(const qp_ppl_job *job, qp_err *err);

/* Without a base file: checks job->n_ctx and that the text holds at least
 * two contexts (as llama.cpp); *n_avail gets its number of whole chunks. */
qp_status qp_ppl_text_chunks(const qp_ppl_job *job, int64_t *n_avail, qp_err *err);

#endif
