/* tiny_ckpt.h - write a small, valid Qwen3 / Qwen3-MoE checkpoint directory
 * (config.json, tokenizer files, safetensors) for tests, with hooks to make
 * one part of it wrong. */
#ifndef QP_TINY_CKPT_H
#define QP_TINY_CKPT_H

#include <stdint.h>

#include "support/st_craft.h"

typedef struct {
    int moe;                 /* Qwen3MoeForCausalLM with per-expert tensors */
    int n_layers;            /* default 1 */
    int hidden;              /* default 64 */
    int n_head, n_kv, head_dim; /* default 2, 1, 32 */
    int ffn;                 /* default 128 */
    int n_expert, n_used, expert_ffn; /* MoE defaults 4, 2, 64 */
    int vocab;               /* default 8192 (fixture tokenizer) */
    int ctx;                 /* max_position_embeddings, default 4096 */
    int bos_id, eos_id;      /* config.json ids, default 8189 */
    int untied;              /* write lm_head.weight (always for MoE; dense is tied by default) */
    int fused_experts;       /* write mlp.experts.gate_up_proj / down_proj */
    const char *tokenizer_dir; /* where tokenizer.json etc. come from (default models/qwen3-tiny) */
    const char *config_extra;  /* extra raw JSON members appended to config.json ("\"x\": 1") */
    int n_shards;              /* 0/1: single model.safetensors; >1: sharded with index */
    uint32_t seed;
    /* Called for every tensor spec before writing; may change any field,
     * or return 1 to drop the tensor. */
    int (*mutate)(void *ctx, st_craft_tensor *t);
    void *mutate_ctx;
    /* Extra tensors appended as they are. */
    const st_craft_tensor *extra;
    int n_extra;
} qp_tiny_ckpt;

/* Fill defaults for zero fields. */
void qp_tiny_ckpt_defaults(qp_tiny_ckpt *c);

/* Write the checkpoint into dir (created if needed). 0 on success. */
int qp_tiny_ckpt_write(const char *dir, const qp_tiny_ckpt *c);

#endif
