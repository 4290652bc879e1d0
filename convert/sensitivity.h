/* sensitivity.h - measured per-tensor sensitivities, stored in an imatrix
 * GGUF under qpack.sens.* keys (llama.cpp and other readers ignore qpack.*
 * keys; llama.cpp's own keys and tensors are unchanged).
 *
 * coef[k] is how much mean KL divergence one unit of tensor k's weighted
 * quantization error (convert/qerror.h) adds: `qpack calibrate --sensitivity`
 * quantizes only that tensor to probe_type, runs n_chunks calibration chunks
 * and divides the KLD against the unquantized model by the tensor's error
 * at probe_type (runtime-lite/sensitivity.h). The allocator predicts the
 * loss of tensor k at type T as coef[k] * err_k(T).
 *
 * Keys: qpack.sens.version (UINT32 1), qpack.sens.probe_type (UINT32 ggml
 * type), qpack.sens.chunks and qpack.sens.ctx (UINT32), qpack.sens.tensors
 * (ARRAY[STRING] GGUF names), qpack.sens.coef, qpack.sens.kld and
 * qpack.sens.err (ARRAY[FLOAT64], one per name). Expert traffic comes from
 * the calibration's qpack.calib.routed_counts (n_layer x n_expert). */
#ifndef QP_SENSITIVITY_H
#define QP_SENSITIVITY_H

#include <stdint.h>

#include "common/qp_error.h"
#include "format/gguf.h"

#define QP_SENS_NAME_MAX 96

typedef struct {
    int64_t n;                       /* tensors measured */
    char (*name)[QP_SENS_NAME_MAX];
    double *coef, *kld, *err;
    uint32_t probe_type;
    uint32_t n_chunks, n_ctx;
    int64_t n_layer, n_expert;       /* traffic table shape (0 for dense) */
    uint32_t *routed;                /* [n_layer * n_expert] tokens routed, or NULL */
} qp_sens;

/* Zeroed table of n entries (names empty); NULL on allocation failure. */
qp_sens *qp_sens_new(int64_t n);
void qp_sens_free(qp_sens *s); /* accepts NULL */

/* Read from an imatrix GGUF. QP_ERR_NOT_FOUND with "no sensitivity data
 * (make it with qpack calibrate --sensitivity)" when the keys are absent;
 * QP_ERR_BAD_INPUT for inconsistent keys. */
qp_status qp_sens_read(const char *path, qp_sens **out, qp_err *err);

/* Add the qpack.sens.* keys (not the calib ones) to a writer. */
qp_status qp_sens_write_keys(const qp_sens *s, qp_gguf_writer *w, qp_err *err);

/* Index of a tensor by GGUF name, -1 if it was not measured. */
int64_t qp_sens_find(const qp_sens *s, const char *name);

/* Traffic weights of the n_expert experts of `layer`: n_expert * (r_e + 1)
 * / sum(r + 1) from the routed counts (uniform traffic gives 1 each; +1
 * keeps an expert the calibration never reached from counting as free);
 * all 1 without counts or for a shape mismatch. */
void qp_sens_expert_weights(const qp_sens *s, int64_t layer, int64_t n_expert, double *w);

#endif
