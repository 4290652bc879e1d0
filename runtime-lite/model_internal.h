/* model_internal.h - what the two loaders (model_gguf.c, model_hf.c) share
 * with model.c: the model record and the one place that knows which tensors
 * a Qwen3 / Qwen3-MoE model has and their shapes. */
#ifndef QP_RT_MODEL_INTERNAL_H
#define QP_RT_MODEL_INTERNAL_H

#include "runtime-lite/model.h"

struct qp_rt_model {
    qp_rt_config cfg;
    qp_rt_weights w;
    char path[1024];
    void *gguf;          /* qp_gguf * of the metadata file when mapped from a GGUF */
    void *gguf_set;      /* qp_gguf_set * owning every file of a (split) GGUF */
    int is_hf;
    void **owned;        /* buffers freed with the model */
    size_t n_owned, cap_owned;
    uint64_t weight_bytes;
    int deferred;        /* qp_rt_model_open_deferred: tensors acquired one layer at a time */
    void *hf_plan;       /* deferred HF: the qp_plan, its qp_st_model and qp_hf_config, */
    void *hf_st;         /* kept open to read the layers */
    void *hf_cfg;
};

/* Find a tensor by GGUF name and check its shape. ne = {row_len, rows,
 * n_expert} (n_expert 0 for a 2-D matrix, row count 0 for a vector).
 * Returns QP_OK with out->data == NULL when the tensor is absent and not
 * required. The data stays owned by the loader (mapping or m->owned). */
typedef qp_status (*qp_rt_lookup_fn)(void *ctx, qp_rt_model *m, const char *name,
                                     int64_t row_len, int64_t rows, int64_t n_expert,
                                     int required, qp_rt_tensor *out, qp_err *err);

/* Bind every tensor the configuration calls for (cfg must be complete,
 * n_vocab included), convert norms to f32, and check that `n_available`
 * tensors are all used (an unused one is reported by name through
 * `name_at`, since silently ignoring e.g. a bias would give wrong logits). */
qp_status qp_rt_bind_weights(qp_rt_model *m, qp_rt_lookup_fn lookup, void *ctx,
                             int64_t n_available, const char *(*name_at)(void *ctx, int64_t i),
                             qp_err *err);

/* Check a configuration for sizes the runtime can run. */
qp_status qp_rt_config_check(const qp_rt_config *c, const char *path, qp_err *err);

/* Keep `p` until the model is freed (frees `p` and fails on NOMEM). */
qp_status qp_rt_model_own(qp_rt_model *m, void *p, qp_err *err);

qp_rt_model *qp_rt_model_alloc(const char *path);

/* Loader hook to free the GGUF set's mappings (set by model_gguf.c). */
void qp_rt_model_close_gguf(void *gguf_set);

/* Deferred HF models (model_hf.c): open without reading the matrices, read
 * one matrix now into a 64-byte aligned buffer (*data, freed with free),
 * and close the plan and shards at free. */
qp_status qp_rt_model_open_hf_deferred(const char *dir, qp_rt_model **out, qp_err *err);
qp_status qp_rt_model_hf_read(const qp_rt_model *m, const qp_rt_tensor *t, void **data, qp_err *err);
void qp_rt_model_close_hf(qp_rt_model *m);

#endif
