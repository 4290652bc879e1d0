/* plan.h - the conversion plan: which GGUF tensors a Hugging Face checkpoint
 * becomes, their llama.cpp names and shapes, and where each one's rows come
 * from. The converter writes the plan; the runtime reads HF directories
 * through it too, so both see the same tensors under the same names.
 *
 * A plan tensor is a matrix (or vector) of `n_rows` rows of `row_len`
 * elements, in GGUF order: ne = {row_len, rows_per_expert, n_expert} for
 * stacked experts, else {row_len, n_rows} (or {row_len} for vectors).
 * qp_plan_read_rows() produces any run of rows in f32 from the source
 * shards (stacking per-expert tensors, splitting fused gate_up, widening
 * bf16/f16, dequantizing FP8 blocks) without materializing the tensor. */
#ifndef QP_PLAN_H
#define QP_PLAN_H

#include <stdint.h>

#include "common/qp_error.h"
#include "format/gguf.h"
#include "format/hf_config.h"
#include "format/safetensors.h"

typedef enum {
    QP_ROLE_OTHER = 0,
    QP_ROLE_TOKEN_EMBD, QP_ROLE_OUTPUT, QP_ROLE_OUTPUT_NORM,
    QP_ROLE_ATTN_NORM, QP_ROLE_ATTN_Q, QP_ROLE_ATTN_K, QP_ROLE_ATTN_V, QP_ROLE_ATTN_OUTPUT,
    QP_ROLE_ATTN_Q_NORM, QP_ROLE_ATTN_K_NORM,
    QP_ROLE_FFN_NORM, QP_ROLE_FFN_GATE, QP_ROLE_FFN_UP, QP_ROLE_FFN_DOWN,
    QP_ROLE_FFN_GATE_INP,   /* MoE router */
    QP_ROLE_FFN_GATE_EXPS, QP_ROLE_FFN_UP_EXPS, QP_ROLE_FFN_DOWN_EXPS,
    QP_ROLE_COUNT
} qp_tensor_role;

typedef struct {
    char name[96];          /* GGUF name, e.g. "blk.3.ffn_down_exps.weight" */
    qp_tensor_role role;
    int layer;              /* -1 for non-layer tensors */
    uint32_t n_dims;        /* 1..3 */
    int64_t ne[4];          /* GGUF order, innermost first */
    int64_t row_len;        /* ne[0] */
    int64_t n_rows;         /* product of ne[1..] */
    int64_t n_expert;       /* ne[2] for stacked experts, else 1 */
    int keep_f32;           /* norms and router: stored F32 in every file */
    uint32_t source_dtype;  /* BF16/F16/F32 when rows copy byte for byte; QP_GGML_TYPE_LIMIT otherwise */
    uint64_t source_bytes;  /* bytes read from the shards for this tensor */
} qp_plan_tensor;

typedef struct qp_plan qp_plan;

/* Build the plan for an opened checkpoint. Every source tensor must map to
 * exactly one plan tensor (or be a known auxiliary such as FP8 scales):
 * an unrecognised name is an error naming it. Shapes are checked against the
 * config (hidden size, heads, experts, layers). */
qp_status qp_plan_build(const qp_st_model *st, const qp_hf_config *cfg, qp_plan **out, qp_err *err);
void qp_plan_free(qp_plan *p);

int64_t qp_plan_count(const qp_plan *p);
const qp_plan_tensor *qp_plan_at(const qp_plan *p, int64_t i);
int64_t qp_plan_find(const qp_plan *p, const char *gguf_name); /* -1 if absent */

/* Rows [row0, row0+n) of plan tensor i as f32, row-major, into dst
 * (n * row_len floats). Rows of stacked experts are numbered expert-major:
 * row r is expert r / rows_per_expert. Thread-safe. */
qp_status qp_plan_read_rows(const qp_plan *p, int64_t i, int64_t row0, int64_t n, float *dst, qp_err *err);

/* Raw source bytes of rows, in the source dtype (for lossless bf16/f16/f32
 * output); fails with QP_ERR_UNSUPPORTED when the rows are not stored
 * contiguously in one plain dtype (FP8 sources). */
qp_status qp_plan_read_rows_raw(const qp_plan *p, int64_t i, int64_t row0, int64_t n, void *dst, qp_err *err);

/* Drop cached source pages of plan tensor i (after it has been written). */
void qp_plan_release(const qp_plan *p, int64_t i);

/* A plan over the tensors of a GGUF file, in file order, under their own
 * names (for requantizing): rows are dequantized through quant/qtype.h.
 * `g` must outlive the plan. qp_plan_config() is NULL for such plans. */
qp_status qp_plan_from_gguf(const qp_gguf *g, qp_plan **out, qp_err *err);
const qp_gguf *qp_plan_gguf(const qp_plan *p); /* NULL for HF plans */

const qp_st_model *qp_plan_source(const qp_plan *p);
const qp_hf_config *qp_plan_config(const qp_plan *p);

/* ------------------------------------------------ other layouts (omni) */

/* Qwen3-Omni keeps its text model under "thinker.model." and
 * "thinker.lm_head.": build the plan from the tensors under hf_prefix. With
 * skip_other_components, tensors outside "<prefix>model." and
 * "<prefix>lm_head." are left out instead of being an error: the caller
 * (convert/omni) maps them into other files and owns the check that every
 * tensor lands somewhere. Names under those two prefixes must still parse. */
typedef struct {
    const char *hf_prefix;        /* "thinker."; NULL or "" for none */
    int skip_other_components;
} qp_plan_options;

qp_status qp_plan_build_ex(const qp_plan_options *opt, const qp_st_model *st, const qp_hf_config *cfg,
                           qp_plan **out, qp_err *err);

/* Plans whose tensors a caller lays out itself (convert/omni's mmproj and
 * talker files). A tensor is n_pieces runs of rows_per_piece rows, each run
 * contiguous in its source tensor (rows of t->ne[0] elements, source viewed
 * flat), so stacking, splitting and reshaping need no copy. */
typedef struct {
    const qp_st_tensor *src;
    int64_t src_row0;             /* first row of the run, in rows of ne[0] */
} qp_plan_piece;

/* Rows [row0, row0+n) of a computed tensor, as f32 (must be thread-safe). */
typedef void (*qp_plan_gen_fn)(const void *ctx, int64_t row0, int64_t n, int64_t row_len, float *dst);

/* NULL on allocation failure or a capacity outside 1..2^24. */
qp_plan *qp_plan_new_custom(const qp_st_model *st, const qp_hf_config *cfg, int64_t capacity);
/* t supplies name (< 64 bytes, unique), role, layer, n_dims, ne, n_expert
 * and keep_f32; row_len, n_rows, source_dtype and source_bytes are derived.
 * Sources must be F32/F16/BF16 and every run inside its source. */
qp_status qp_plan_add_pieces(qp_plan *p, const qp_plan_tensor *t, int64_t rows_per_piece,
                             const qp_plan_piece *pieces, int64_t n_pieces, qp_err *err);
/* A tensor with no source bytes (e.g. a sinusoidal position table). */
qp_status qp_plan_add_generated(qp_plan *p, const qp_plan_tensor *t, qp_plan_gen_fn gen, const void *ctx,
                                qp_err *err);

/* Where plan tensor i's rows come from: its pieces' source tensors (0
 * pieces for computed and GGUF-backed tensors have their own reader). */
int64_t qp_plan_piece_count(const qp_plan *p, int64_t i);
const qp_st_tensor *qp_plan_piece_source(const qp_plan *p, int64_t i, int64_t k, int64_t *src_row0);

#endif
