/* tiny_ckpt.c - see tiny_ckpt.h. */
#include "support/tiny_ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support/qp_test.h"

void qp_tiny_ckpt_defaults(qp_tiny_ckpt *c)
{
    if (!c->n_layers) c->n_layers = 1;
    if (!c->hidden) c->hidden = 64;
    if (!c->n_head) c->n_head = 2;
    if (!c->n_kv) c->n_kv = 1;
    if (!c->head_dim) c->head_dim = 32;
    if (!c->ffn) c->ffn = 128;
    if (!c->n_expert) c->n_expert = 4;
    if (!c->n_used) c->n_used = 2;
    if (!c->expert_ffn) c->expert_ffn = 64;
    if (!c->vocab) c->vocab = 8192;
    if (!c->ctx) c->ctx = 4096;
    if (!c->bos_id) c->bos_id = 8189;
    if (!c->eos_id) c->eos_id = 8189;
    if (!c->tokenizer_dir) c->tokenizer_dir = qp_fixture("models/qwen3-tiny");
    if (!c->seed) c->seed = 1;
}

static int copy_file(const char *from, const char *to)
{
    size_t n;
    void *d = qp_test_read_file(from, &n);
    if (!d)
        return -1;
    int rc = qp_test_write_file(to, d, n);
    free(d);
    return rc;
}

typedef struct {
    st_craft_tensor *t;
    char (*names)[128];
    float **vals;
    int n, cap;
} spec_list;

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

static void add(spec_list *l, const char *name, int n_dims, int64_t d0, int64_t d1, int64_t d2, uint32_t *seed,
                float center)
{
    st_craft_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    snprintf(l->names[l->n], 128, "%s", name);
    t->name = l->names[l->n];
    t->dtype = "BF16";
    t->n_dims = n_dims;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    int64_t n = d0 * (n_dims > 1 ? d1 : 1) * (n_dims > 2 ? d2 : 1);
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        v[i] = center + ((float)(rng(seed) >> 8) / 16777216.0f - 0.5f) * 0.2f;
    l->vals[l->n] = v;
    t->values = v;
    l->n++;
}

int qp_tiny_ckpt_write(const char *dir, const qp_tiny_ckpt *cin)
{
    qp_tiny_ckpt c = *cin;
    qp_tiny_ckpt_defaults(&c);
    mkdir(dir, 0755);
    char path[4096];
    static const char *tok_files[] = {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"};
    for (size_t i = 0; i < 4; i++) {
        char from[4096];
        snprintf(from, sizeof from, "%s/%s", c.tokenizer_dir, tok_files[i]);
        snprintf(path, sizeof path, "%s/%s", dir, tok_files[i]);
        if (qp_test_file_exists(from) && copy_file(from, path) != 0)
            return -1;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"hidden_size\": %d,\n"
            "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
            "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"vocab_size\": %d,\n"
            "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": 1e-06,\n  \"rope_theta\": 1000000.0,\n"
            "  \"tie_word_embeddings\": %s,\n  \"hidden_act\": \"silu\",\n  \"attention_bias\": false,\n"
            "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"torch_dtype\": \"bfloat16\"",
            c.moe ? "Qwen3MoeForCausalLM" : "Qwen3ForCausalLM", c.moe ? "qwen3_moe" : "qwen3", c.hidden, c.ffn,
            c.n_layers, c.n_head, c.n_kv, c.head_dim, c.vocab, c.ctx, (c.untied || c.moe) ? "false" : "true", c.bos_id,
            c.eos_id);
    if (c.moe)
        fprintf(f, ",\n  \"num_experts\": %d,\n  \"num_experts_per_tok\": %d,\n  \"moe_intermediate_size\": %d,\n"
                   "  \"norm_topk_prob\": true,\n  \"decoder_sparse_step\": 1,\n  \"mlp_only_layers\": []",
                c.n_expert, c.n_used, c.expert_ffn);
    if (c.config_extra)
        fprintf(f, ",\n  %s", c.config_extra);
    fprintf(f, "\n}\n");
    if (fclose(f) != 0)
        return -1;

    int cap = 8 + c.n_layers * (16 + 3 * c.n_expert) + c.n_extra;
    spec_list l = {calloc((size_t)cap, sizeof(st_craft_tensor)), calloc((size_t)cap, 128),
                   calloc((size_t)cap, sizeof(float *)), 0, cap};
    uint32_t seed = c.seed;
    char nm[128];
    int H = c.hidden, QD = c.n_head * c.head_dim, KD = c.n_kv * c.head_dim;
    add(&l, "model.embed_tokens.weight", 2, c.vocab, H, 0, &seed, 0);
    for (int L = 0; L < c.n_layers; L++) {
#define LN(s) (snprintf(nm, sizeof nm, "model.layers.%d.%s", L, s), nm)
        add(&l, LN("input_layernorm.weight"), 1, H, 0, 0, &seed, 1);
        add(&l, LN("post_attention_layernorm.weight"), 1, H, 0, 0, &seed, 1);
        add(&l, LN("self_attn.q_proj.weight"), 2, QD, H, 0, &seed, 0);
        add(&l, LN("self_attn.k_proj.weight"), 2, KD, H, 0, &seed, 0);
        add(&l, LN("self_attn.v_proj.weight"), 2, KD, H, 0, &seed, 0);
        add(&l, LN("self_attn.o_proj.weight"), 2, H, QD, 0, &seed, 0);
        add(&l, LN("self_attn.q_norm.weight"), 1, c.head_dim, 0, 0, &seed, 1);
        add(&l, LN("self_attn.k_norm.weight"), 1, c.head_dim, 0, 0, &seed, 1);
        if (!c.moe) {
            add(&l, LN("mlp.gate_proj.weight"), 2, c.ffn, H, 0, &seed, 0);
            add(&l, LN("mlp.up_proj.weight"), 2, c.ffn, H, 0, &seed, 0);
            add(&l, LN("mlp.down_proj.weight"), 2, H, c.ffn, 0, &seed, 0);
        } else {
            add(&l, LN("mlp.gate.weight"), 2, c.n_expert, H, 0, &seed, 0);
            if (c.fused_experts) {
                add(&l, LN("mlp.experts.gate_up_proj"), 3, c.n_expert, 2 * c.expert_ffn, H, &seed, 0);
                add(&l, LN("mlp.experts.down_proj"), 3, c.n_expert, H, c.expert_ffn, &seed, 0);
            } else {
                for (int e = 0; e < c.n_expert; e++) {
                    char s[96];
                    snprintf(s, sizeof s, "mlp.experts.%d.gate_proj.weight", e);
                    add(&l, LN(s), 2, c.expert_ffn, H, 0, &seed, 0);
                    snprintf(s, sizeof s, "mlp.experts.%d.up_proj.weight", e);
                    add(&l, LN(s), 2, c.expert_ffn, H, 0, &seed, 0);
                    snprintf(s, sizeof s, "mlp.experts.%d.down_proj.weight", e);
                    add(&l, LN(s), 2, H, c.expert_ffn, 0, &seed, 0);
                }
            }
        }
#undef LN
    }
    add(&l, "model.norm.weight", 1, H, 0, 0, &seed, 1);
    if (c.untied || c.moe)
        add(&l, "lm_head.weight", 2, c.vocab, H, 0, &seed, 0);
    /* mutate / drop */
    int w = 0;
    for (int i = 0; i < l.n; i++) {
        if (c.mutate && c.mutate(c.mutate_ctx, &l.t[i]))
            continue;
        l.t[w++] = l.t[i];
    }
    for (int i = 0; i < c.n_extra; i++)
        l.t[w++] = c.extra[i];
    int rc;
    if (c.n_shards > 1) {
        int *shard_of = calloc((size_t)w, sizeof(int));
        for (int i = 0; i < w; i++)
            shard_of[i] = i * c.n_shards / w;
        rc = st_craft_write_sharded(dir, l.t, (size_t)w, shard_of, c.n_shards);
        free(shard_of);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = st_craft_write_file(path, l.t, (size_t)w);
    }
    for (int i = 0; i < l.n; i++)
        free(l.vals[i]);
    free(l.vals);
    free(l.names);
    free(l.t);
    return rc;
}
