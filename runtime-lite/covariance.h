/* covariance.h - input second-moment matrices H = sum x x^T per weight
 * matrix (per expert for stacked tensors), for error-feedback quantization
 * (quant/gptq.h; file format in format/covmat.h).
 *
 * The same chunks and the same two passes as the importance-matrix
 * calibration (runtime-lite/calibrate.h), so that diag(H) equals the
 * imatrix's in_sum2 entry by entry:
 *  - routed pass: every quantizable product's input rows (experts: the
 *    tokens routed to them);
 *  - coverage pass for the experts calibrate.h flagged (routed fewer than
 *    min_expert_tokens tokens): H_soft = sum_t p_t,e y_t y_t^T (y the gate/up
 *    input, or the expert's own SwiGLU output for down) and mass
 *    W = sum_t p_t,e, stopping when calibrate.h's pass stops; then
 *        H = H_routed + (min - n_routed) * H_soft / W,  count = min.
 * Matrices sharing an input (attn_q/k/v, ffn_gate/up) are accumulated once
 * and stored under each name. token_embd, output and the router
 * (ffn_gate_inp, kept F32 by the presets) are not recorded. */
#ifndef QP_RT_COVARIANCE_H
#define QP_RT_COVARIANCE_H

#include "common/qp_error.h"
#include "format/covmat.h"
#include "runtime-lite/calibrate.h"

/* `calib` is the result of qp_calib_run on the same job (its routed
 * counts and forced flags pick the coverage experts; NULL for a dense
 * model or to skip coverage). *out is owned by the caller. */
qp_status qp_cov_collect(const qp_calib_job *job, const qp_calib_result *calib, qp_covmat **out, qp_err *err);

#endif
