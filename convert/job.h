/* job.h - a conversion job: checkpoint + plan + per-tensor types chosen by
 * a preset recipe (+ importance matrix), ready to hand to qp_convert_plan. */
#ifndef QP_JOB_H
#define QP_JOB_H

#include <stdint.h>

#include "common/qp_error.h"
#include "convert/alloc_plan.h"
#include "convert/convert.h"
#include "convert/cov_apply.h"
#include "convert/importance.h"
#include "convert/plan.h"

typedef struct {
    const char *preset;          /* preset or type name; NULL = "BF16" */
    int pure;
    int output_type;             /* -1: preset decides */
    int token_embd_type;         /* -1: preset decides */
    int n_overrides;
    const char *const *override_patterns;
    const uint32_t *override_types;
    const char *imatrix_path;    /* NULL: none */
    const char *covariance_path; /* NULL: none; else error-feedback quantization (quant/gptq.h) */
    qp_gptq_options gptq;        /* with covariance_path; zeros: defaults */
    /* Size-targeted allocation (convert/alloc_plan.h); at most one > 0.
     * Needs imatrix_path with qpack.sens.* keys; excludes pure, overrides
     * and output/token_embd types; preset is then ignored. */
    double target_bpw;           /* bits per weight over all tensors */
    uint64_t target_size;        /* bytes of the whole (single) output file */
    int n_threads;               /* for measuring errors; <= 0: 1 */
} qp_job_options;

typedef struct qp_job qp_job;

qp_status qp_job_open(const char *hf_dir, const qp_job_options *opt, qp_job **out, qp_err *err);
/* Requantize a GGUF (F32/F16/BF16 tensors; Q8_0 accepted, see
 * qp_job_from_q8_0). Metadata is carried over (convert/meta_copy.c). */
qp_status qp_job_open_gguf(const char *path, const qp_job_options *opt, qp_job **out, qp_err *err);
int qp_job_from_q8_0(const qp_job *job);
void qp_job_free(qp_job *job);

const qp_plan *qp_job_plan(const qp_job *job);
const char *qp_job_dir(const qp_job *job);
uint32_t qp_job_type(const qp_job *job, int64_t i);
/* The type the preset wanted when the row length forced a fallback, else -1. */
int qp_job_fallback(const qp_job *job, int64_t i);
uint64_t qp_job_tensor_bytes(const qp_job *job, int64_t i); /* output bytes of tensor i */
/* The importance matrix as applied to this job's tensors, NULL without one. */
const qp_importance *qp_job_importance(const qp_job *job);
/* The covariance file as applied to this job's tensors, NULL without one. */
const qp_cov_apply *qp_job_covariance(const qp_job *job);

/* Size-targeted jobs: the allocation (NULL otherwise), the tensor-byte
 * budget it met, and for --target-size the header + padding allowance. */
const qp_alloc_plan *qp_job_alloc(const qp_job *job);
uint64_t qp_job_alloc_budget(const qp_job *job);
uint64_t qp_job_alloc_overhead(const qp_job *job);

/* Fill choose_type / importance / file_type / recipe; the caller sets
 * out_path, n_threads and progress. */
void qp_job_convert_options(const qp_job *job, qp_convert_options *out);

#endif
