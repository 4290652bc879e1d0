/* hf_config.h - the Hugging Face config.json of Qwen3-family checkpoints.
 *
 * Accepts the Hub's transformers-4 spellings (`rope_theta`, `num_experts`)
 * and transformers-5 ones (`rope_parameters.rope_theta`,
 * `num_local_experts`). Every key is either understood, or known to be
 * irrelevant to the GGUF (listed in hf_config.c with the reason), or
 * reported in `unknown_keys` so the CLI can say so: nothing is silently
 * dropped. Also reads generation_config.json when present (its token ids
 * win, as in transformers' generate()); tokenizer_config.json is read by the
 * GGUF tokenizer export (convert/meta_tokenizer.c), not here. */
#ifndef QP_HF_CONFIG_H
#define QP_HF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

typedef enum {
    QP_ARCH_UNKNOWN = 0,
    QP_ARCH_QWEN3,       /* Qwen3ForCausalLM */
    QP_ARCH_QWEN3_MOE,   /* Qwen3MoeForCausalLM */
    QP_ARCH_QWEN3_OMNI,  /* Qwen3OmniMoeForConditionalGeneration (see convert/omni) */
} qp_arch;

typedef struct {
    char type[32];           /* "yarn", "linear", "dynamic", ... ; "" if none */
    double factor;
    double original_max_position_embeddings;
    double attn_factor;      /* 0 if absent */
    double beta_fast, beta_slow; /* 0 if absent */
} qp_rope_scaling;

typedef struct {
    qp_arch arch;
    char architecture_name[96]; /* as in "architectures"[0] */
    char model_type[48];
    int64_t vocab_size;
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_hidden_layers;
    int64_t num_attention_heads;
    int64_t num_key_value_heads;
    int64_t head_dim;           /* hidden_size / heads when absent */
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    qp_rope_scaling rope_scaling;
    int tie_word_embeddings;
    /* MoE (0 for dense) */
    int64_t num_experts;
    int64_t num_experts_per_tok;
    int64_t moe_intermediate_size;
    int norm_topk_prob;
    int64_t decoder_sparse_step;
    int64_t n_mlp_only_layers;
    int64_t mlp_only_layers[256];
    /* Token ids from config/generation_config (-1 when absent). */
    int64_t bos_token_id, eos_token_id, pad_token_id;
    char torch_dtype[16];
    /* FP8 checkpoints: quantization_config */
    int fp8;                          /* quant_method == "fp8" */
    int64_t fp8_block[2];             /* weight_block_size */
    /* Keys present in config.json that nothing understands (comma-separated). */
    char unknown_keys[1024];
} qp_hf_config;

/* Parse `dir`/config.json (+ generation_config.json when present). */
qp_status qp_hf_config_load(const char *dir, qp_hf_config *cfg, qp_err *err);

/* Parse a config.json held in memory (fuzzing, tests). */
qp_status qp_hf_config_parse(const char *json, size_t len, const char *path_for_errors,
                             qp_hf_config *cfg, qp_err *err);

const char *qp_arch_name(qp_arch a); /* llama.cpp's: "qwen3", "qwen3moe", "qwen3vlmoe" */

#endif
