/* model_hf.c - a runtime model straight from a Hugging Face checkpoint
 * directory, read through the conversion plan (convert/plan.h) so tensor
 * names, shapes and expert stacking are exactly what a GGUF would hold.
 * Matrices keep their source dtype when it is BF16/F16/F32 (lossless, and
 * the same kernels as a bf16 GGUF); FP8 sources are widened to f32. */
#include "runtime-lite/model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "convert/omni.h"
#include "convert/plan.h"
#include "format/hf_config.h"
#include "format/safetensors.h"

typedef struct {
    const qp_plan *plan;
    int deferred;   /* matrices are bound unread (qp_rt_model_open_hf_deferred) */
} hf_ctx;

static void *alloc_aligned(uint64_t bytes)
{
    const uint64_t rounded = (bytes + 63) & ~(uint64_t)63;
    if (rounded == 0 || rounded > (uint64_t)SIZE_MAX)
        return NULL;
    return aligned_alloc(64, (size_t)rounded);
}

/* Rows of plan tensor idx in the type chosen for t (its source bytes for
 * BF16/F16/F32, else widened to f32) into a new buffer *data. */
static qp_status read_tensor(const qp_plan *plan, int64_t idx, const qp_rt_tensor *t, void **data, qp_err *err)
{
    const qp_plan_tensor *pt = qp_plan_at(plan, idx);
    void *buf = alloc_aligned(t->row_bytes * (uint64_t)t->n_rows);
    qp_status st;
    *data = NULL;
    if (!buf)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory for tensor %s", pt->name);
    if (t->type != QP_GGML_F32 || pt->source_dtype == QP_GGML_F32) {
        st = qp_plan_read_rows_raw(plan, idx, 0, t->n_rows, buf, err);
        if (st == QP_ERR_UNSUPPORTED && t->type == QP_GGML_F32) {
            qp_err_clear(err);
            st = qp_plan_read_rows(plan, idx, 0, t->n_rows, buf, err);
        }
    } else {
        st = qp_plan_read_rows(plan, idx, 0, t->n_rows, buf, err);
    }
    if (st != QP_OK) {
        free(buf);
        qp_err_set_tensor(err, pt->name);
        return st;
    }
    qp_plan_release(plan, idx);
    *data = buf;
    return QP_OK;
}

static qp_status lookup_hf(void *vctx, qp_rt_model *m, const char *name, int64_t row_len, int64_t rows,
                           int64_t n_expert, int required, qp_rt_tensor *out, qp_err *err)
{
    hf_ctx *c = vctx;
    qp_status st;
    const int64_t idx = qp_plan_find(c->plan, name);
    if (idx < 0) {
        if (!required)
            return QP_OK;
        st = qp_err_set(err, QP_ERR_BAD_INPUT, m->path, "checkpoint lacks the tensor the runtime needs");
        qp_err_set_tensor(err, name);
        return st;
    }
    const qp_plan_tensor *pt = qp_plan_at(c->plan, idx);
    const int64_t want[3] = {row_len, rows ? rows : 1, n_expert ? n_expert : 1};
    for (int d = 0; d < 3; d++) {
        const int64_t have = d < (int)pt->n_dims ? pt->ne[d] : 1;
        if (have != want[d]) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, m->path, "tensor dimension %d is %lld, expected %lld", d,
                            (long long)have, (long long)want[d]);
            qp_err_set_tensor(err, name);
            return st;
        }
    }
    const int64_t n_rows = want[1] * want[2];
    uint32_t type = QP_GGML_F32;
    if (rows != 0 && !pt->keep_f32 &&
        (pt->source_dtype == QP_GGML_BF16 || pt->source_dtype == QP_GGML_F16 || pt->source_dtype == QP_GGML_F32))
        type = pt->source_dtype;
    int ok = 0;
    uint64_t row_bytes = qp_ggml_row_bytes(type, (uint64_t)row_len, &ok);
    if (!ok)
        return qp_err_set(err, QP_ERR_NOMEM, m->path, "out of memory for tensor %s", name);
    out->type = type;
    out->row_len = row_len;
    out->n_rows = n_rows;
    out->row_bytes = row_bytes;
    if (c->deferred && rows != 0) {
        out->deferred = 1; /* read by qp_rt_model_hf_read when the layer runs */
        return QP_OK;
    }
    void *buf = NULL;
    if ((st = read_tensor(c->plan, idx, out, &buf, err)) != QP_OK)
        return st;
    if ((st = qp_rt_model_own(m, buf, err)) != QP_OK)
        return st;
    out->data = buf;
    return QP_OK;
}

qp_status qp_rt_model_hf_read(const qp_rt_model *m, const qp_rt_tensor *t, void **data, qp_err *err)
{
    *data = NULL;
    const qp_plan *plan = m->hf_plan;
    const int64_t idx = plan ? qp_plan_find(plan, t->name) : -1;
    if (idx < 0) {
        qp_status st = qp_err_set(err, QP_ERR_INTERNAL, m->path, "no deferred tensor of that name");
        qp_err_set_tensor(err, t->name);
        return st;
    }
    return read_tensor(plan, idx, t, data, err);
}

void qp_rt_model_close_hf(qp_rt_model *m)
{
    qp_plan_free(m->hf_plan);
    qp_st_close(m->hf_st);
    free(m->hf_cfg);
    m->hf_plan = NULL;
    m->hf_st = NULL;
    m->hf_cfg = NULL;
}

static const char *name_at_hf(void *vctx, int64_t i)
{
    hf_ctx *c = vctx;
    return qp_plan_at(c->plan, i)->name;
}

static qp_status config_from_hf(const qp_hf_config *h, const qp_plan *plan, const char *dir, qp_rt_config *c,
                                qp_err *err)
{
    if (h->arch != QP_ARCH_QWEN3 && h->arch != QP_ARCH_QWEN3_MOE && h->arch != QP_ARCH_QWEN3_OMNI)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, dir, "architecture %s is not supported by the runtime",
                          h->architecture_name[0] ? h->architecture_name : "(unknown)");
    if (h->rope_scaling.type[0])
        return qp_err_set(err, QP_ERR_UNSUPPORTED, dir, "rope scaling '%s' is not supported by the runtime",
                          h->rope_scaling.type);
    /* Qwen3-Omni: the thinker's MoE text model (see qp_omni_open_thinker). */
    c->is_moe = h->arch == QP_ARCH_QWEN3_MOE || h->arch == QP_ARCH_QWEN3_OMNI;
    c->n_embd = h->hidden_size;
    c->n_layer = h->num_hidden_layers;
    c->n_head = h->num_attention_heads;
    c->n_head_kv = h->num_key_value_heads > 0 ? h->num_key_value_heads : h->num_attention_heads;
    c->head_dim = h->head_dim;
    c->n_ff = h->intermediate_size;
    c->n_ctx_train = h->max_position_embeddings;
    c->rope_theta = h->rope_theta > 0 ? h->rope_theta : 10000.0;
    c->rms_eps = (float)h->rms_norm_eps;
    if (c->is_moe) {
        if (h->n_mlp_only_layers > 0 || h->decoder_sparse_step > 1)
            return qp_err_set(err, QP_ERR_UNSUPPORTED, dir,
                              "MoE checkpoints with dense layers (mlp_only_layers, decoder_sparse_step) "
                              "are not supported by the runtime");
        c->n_expert = h->num_experts;
        c->n_expert_used = h->num_experts_per_tok;
        c->n_ff_exp = h->moe_intermediate_size;
        c->norm_topk_prob = h->norm_topk_prob;
    }
    const int64_t emb = qp_plan_find(plan, "token_embd.weight");
    if (emb < 0)
        return qp_err_set(err, QP_ERR_BAD_INPUT, dir, "checkpoint has no token embedding");
    c->n_vocab = qp_plan_at(plan, emb)->n_rows;
    return qp_rt_config_check(c, dir, err);
}

static qp_status open_hf(const char *dir, int deferred, qp_rt_model **out, qp_err *err)
{
    *out = NULL;
    qp_rt_model *m = qp_rt_model_alloc(dir);
    qp_hf_config *h = calloc(1, sizeof *h);
    qp_st_model *st_model = NULL;
    qp_plan *plan = NULL;
    qp_status st;
    if (!m || !h) {
        st = qp_err_set(err, QP_ERR_NOMEM, dir, "out of memory");
        goto fail;
    }
    m->is_hf = 1;
    if (qp_omni_is_omni_dir(dir)) {
        /* Only the thinker's text model runs here; M-RoPE sections reduce
         * to plain rotary on text-only positions. */
        int64_t mrope[4];
        if ((st = qp_omni_open_thinker(dir, h, mrope, &st_model, &plan, err)) != QP_OK)
            goto fail;
    } else if ((st = qp_hf_config_load(dir, h, err)) != QP_OK || (st = qp_st_open_dir(dir, &st_model, err)) != QP_OK ||
               (st = qp_plan_build(st_model, h, &plan, err)) != QP_OK) {
        goto fail;
    }
    if ((st = config_from_hf(h, plan, dir, &m->cfg, err)) != QP_OK)
        goto fail;
    hf_ctx ctx = {plan, deferred};
    if ((st = qp_rt_bind_weights(m, lookup_hf, &ctx, qp_plan_count(plan), name_at_hf, err)) != QP_OK)
        goto fail;
    if (deferred) {
        /* the plan reads the layers later; it refers to the shards (and config) */
        m->deferred = 1;
        m->hf_plan = plan;
        m->hf_st = st_model;
        m->hf_cfg = h;
    } else {
        qp_plan_free(plan);
        qp_st_close(st_model);
        free(h);
    }
    *out = m;
    return QP_OK;
fail:
    qp_plan_free(plan);
    qp_st_close(st_model);
    free(h);
    qp_rt_model_free(m);
    return st;
}

qp_status qp_rt_model_open_hf(const char *dir, qp_rt_model **out, qp_err *err)
{
    return open_hf(dir, 0, out, err);
}

qp_status qp_rt_model_open_hf_deferred(const char *dir, qp_rt_model **out, qp_err *err)
{
    return open_hf(dir, 1, out, err);
}
