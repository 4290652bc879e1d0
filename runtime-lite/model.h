/* model.h - a Qwen3 / Qwen3-MoE model for the reference runtime: its
 * configuration and its weights, kept apart as in llama2.c's run.c.
 *
 * Weights are typed views: a GGUF is mapped and its tensors are used in
 * place, whatever their ggml type; a Hugging Face directory is read through
 * the conversion plan (convert/plan.h), so both see the same tensors under
 * the same GGUF names. Norm vectors are always copied to f32.
 *
 * Matrices follow the GGUF convention: a matrix of ne = {row_len, n_rows}
 * stores n_rows rows of row_len elements; y = W x means y[r] = dot(row r, x).
 * Stacked experts are n_expert blocks of rows_per_expert rows. */
#ifndef QP_RT_MODEL_H
#define QP_RT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

typedef struct {
    int is_moe;            /* qwen3moe */
    int64_t n_vocab;       /* rows of token_embd */
    int64_t n_embd;        /* hidden size E */
    int64_t n_layer;
    int64_t n_head;        /* query heads H */
    int64_t n_head_kv;     /* key/value heads (H % n_head_kv == 0) */
    int64_t head_dim;      /* D (attention.key_length) */
    int64_t n_ff;          /* dense SwiGLU width F */
    int64_t n_expert;      /* MoE: experts per layer */
    int64_t n_expert_used; /* MoE: top-k */
    int64_t n_ff_exp;      /* MoE: expert SwiGLU width */
    int norm_topk_prob;    /* MoE: renormalize the top-k weights */
    int64_t n_ctx_train;   /* context_length (informational) */
    double rope_theta;
    float rms_eps;
} qp_rt_config;

/* A matrix of n_rows rows of row_len elements of ggml type `type`. */
typedef struct {
    uint32_t type;        /* qp_ggml_type */
    int64_t row_len;
    int64_t n_rows;
    uint64_t row_bytes;
    const void *data;     /* NULL: tensor absent */
    char name[96];
    /* F32/F16/BF16 only, after qp_rt_model_prepack: the rows widened to
     * f32 in the matmul's panel layout (16 rows, k-major), or NULL. */
    const float *packed;
    /* Opened with qp_rt_model_open_deferred from a HF directory: data is
     * NULL and qp_rt_model_acquire reads the tensor when it is needed. */
    int deferred;
} qp_rt_tensor;

typedef struct {
    float *attn_norm;      /* [E] */
    float *attn_q_norm;    /* [D] */
    float *attn_k_norm;    /* [D] */
    qp_rt_tensor attn_q;   /* [H*D rows][E] */
    qp_rt_tensor attn_k;   /* [KV*D rows][E] */
    qp_rt_tensor attn_v;   /* [KV*D rows][E] */
    qp_rt_tensor attn_output; /* [E rows][H*D] */
    float *ffn_norm;       /* [E] */
    /* dense */
    qp_rt_tensor ffn_gate; /* [F rows][E] */
    qp_rt_tensor ffn_up;   /* [F rows][E] */
    qp_rt_tensor ffn_down; /* [E rows][F] */
    /* MoE */
    qp_rt_tensor ffn_gate_inp;  /* router [n_expert rows][E] */
    qp_rt_tensor ffn_gate_exps; /* [n_expert * Fe rows][E] */
    qp_rt_tensor ffn_up_exps;   /* [n_expert * Fe rows][E] */
    qp_rt_tensor ffn_down_exps; /* [n_expert * E rows][Fe] */
} qp_rt_layer;

typedef struct {
    qp_rt_tensor token_embd;  /* [V rows][E] */
    float *output_norm;       /* [E] */
    qp_rt_tensor output;      /* [V rows][E]; a copy of token_embd's view when tied */
    int tied;
    qp_rt_layer *layers;      /* [n_layer] */
} qp_rt_weights;

typedef struct qp_rt_model qp_rt_model;

/* Open `path`: a .gguf file (mapped) or a Hugging Face checkpoint directory
 * (config.json + safetensors, read through the conversion plan). */
qp_status qp_rt_model_open(const char *path, qp_rt_model **out, qp_err *err);
qp_status qp_rt_model_open_gguf(const char *path, qp_rt_model **out, qp_err *err);
qp_status qp_rt_model_open_hf(const char *dir, qp_rt_model **out, qp_err *err);
void qp_rt_model_free(qp_rt_model *m); /* accepts NULL */

const qp_rt_config *qp_rt_model_config(const qp_rt_model *m);
const qp_rt_weights *qp_rt_model_weights(const qp_rt_model *m);
const char *qp_rt_model_path(const qp_rt_model *m);
/* The GGUF handle (qp_gguf *) when opened from a GGUF, else NULL: the
 * tokenizer reads its token arrays from it. */
const void *qp_rt_model_gguf(const qp_rt_model *m);
int qp_rt_model_is_hf(const qp_rt_model *m);

/* Widen every F32/F16/BF16 matrix into the matmul's f32 panel layout once,
 * so products no longer repack weights per call (what dominates token-by-
 * token generation). Results are bit-identical with or without. Does
 * nothing (and returns QP_OK) when it would take more than max_bytes;
 * *bytes_out (may be NULL) gets the memory used. */
qp_status qp_rt_model_prepack(qp_rt_model *m, uint64_t max_bytes, int n_threads, uint64_t *bytes_out,
                              qp_err *err);

/* Bytes of weight data in use (mapped or owned). */
uint64_t qp_rt_model_weight_bytes(const qp_rt_model *m);

/* True when the runtime can multiply by a matrix of this ggml type
 * (F32/F16/BF16, or a quant type with vec_dot or dequantize_row). */
int qp_rt_type_supported(uint32_t type);

/* ---- one layer resident at a time (runtime-lite/stream.h) ----
 * qp_rt_model_open_deferred opens like qp_rt_model_open, except that a
 * Hugging Face directory's matrices are not read: they are bound with
 * `deferred` set and read by qp_rt_model_acquire when needed (norms are
 * read at open). A GGUF is mapped as always: acquiring a tensor gives its
 * view of the mapping and releasing it drops its pages from memory
 * (madvise), so only the tensors in use stay resident. Such a model runs
 * only through the streaming engine (qp_rt_state_new refuses a deferred
 * one). */
qp_status qp_rt_model_open_deferred(const char *path, qp_rt_model **out, qp_err *err);
int qp_rt_model_is_deferred(const qp_rt_model *m); /* opened by qp_rt_model_open_deferred */

/* *out = t made resident (its data readable); `t` is one of the model's
 * tensor views (weights or a layer). An absent tensor gives an absent view. */
qp_status qp_rt_model_acquire(const qp_rt_model *m, const qp_rt_tensor *t, qp_rt_tensor *out, qp_err *err);
/* Undo qp_rt_model_acquire: free what was read / drop the mapped pages of
 * a streamed model; t->data becomes NULL. Accepts an absent view. */
void qp_rt_model_release(const qp_rt_model *m, qp_rt_tensor *t);

/* Every matrix of layer l acquired into *out (norms are shared with the
 * model); *bytes (may be NULL) gets their size. On failure nothing stays
 * acquired. */
qp_status qp_rt_model_acquire_layer(const qp_rt_model *m, int64_t l, qp_rt_layer *out, uint64_t *bytes,
                                    qp_err *err);
void qp_rt_model_release_layer(const qp_rt_model *m, qp_rt_layer *L);

#endif
