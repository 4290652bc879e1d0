/* alloc_plan.h - size-targeted bit allocation over a conversion plan:
 * `--target-bpw` / `--target-size`.
 *
 * Every tensor the baseline types quantize gets one of Q2_K, Q3_K, Q4_K,
 * Q5_K, Q6_K, Q8_0 (a type whose block does not divide the row length is
 * replaced by the presets' fallback for it; all experts of a stacked tensor
 * share one type, as GGUF stores one type per tensor). Its predicted loss
 * under type T is sens.coef * err(T), err being the importance-weighted
 * quantization error of convert/qerror.h (experts weighted by traffic), so
 * the sum estimates the mean KLD the quantization adds. quant/alloc.h picks
 * the types minimizing that sum with all tensor bytes (the quantized ones
 * plus the F32 norms and router, which keep their types) within the budget.
 *
 * Sizes are tensor bytes (ggml_nbytes); bits per weight = 8 * bytes /
 * elements over every tensor of the file, norms included: what llama.cpp
 * prints as "model size ... (N BPW)". */
#ifndef QP_ALLOC_PLAN_H
#define QP_ALLOC_PLAN_H

#include <stdint.h>

#include "common/qp_error.h"
#include "convert/convert.h"
#include "convert/plan.h"
#include "convert/sensitivity.h"

#define QP_ALLOC_N_TYPES 6

typedef struct {
    const qp_plan *plan;
    const uint32_t *types;        /* baseline: F32/F16/BF16 entries keep their type */
    qp_importance_fn importance;  /* NULL: uniform */
    void *importance_ctx;
    const qp_sens *sens;          /* coefficients and traffic (required) */
    uint64_t budget;              /* bytes of all tensors */
    int n_threads;
} qp_alloc_plan_job;

typedef struct {
    int64_t n;
    uint32_t *types;       /* [n] chosen types (baseline for fixed tensors) */
    double *loss;          /* [n] predicted loss, 0 for fixed tensors */
    uint64_t bytes;        /* all tensors */
    uint64_t fixed_bytes;  /* tensors that keep their type */
    uint64_t min_bytes;    /* all tensors, every quantized one at its smallest type */
    uint64_t max_bytes;    /* ... at its largest */
    uint64_t n_elements;   /* all tensors */
    double loss_total;
} qp_alloc_plan;

/* QP_ERR_BAD_INPUT for a budget below min_bytes (the message gives both in
 * bytes and bits per weight) or a quantized tensor with no sensitivity. */
qp_status qp_alloc_plan_run(const qp_alloc_plan_job *job, qp_alloc_plan *out, qp_err *err);
void qp_alloc_plan_free(qp_alloc_plan *p); /* accepts NULL and a zeroed plan */

/* Bits per weight of `bytes` over the plan's elements. */
double qp_alloc_bpw(const qp_alloc_plan *p, uint64_t bytes);

#endif
