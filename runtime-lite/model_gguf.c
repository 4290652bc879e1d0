/* model_gguf.c - a runtime model from a GGUF file (llama.cpp's qwen3 /
 * qwen3moe conventions): metadata keys give the configuration, tensors are
 * used in place from the mapping. Any file of a gguf-split set opens the
 * whole set (format/gguf_set.h): metadata from its first file, tensors from
 * whichever file holds them. */
#include "runtime-lite/model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "format/gguf_set.h"

void qp_rt_model_close_gguf(void *gguf_set) { qp_gguf_set_close(gguf_set); }

typedef struct {
    const qp_gguf_set *set;
    char name[256];
} gguf_ctx;

/* An integer key "<arch>.<suffix>": absent -> def (or an error when
 * required); present but not a non-negative integer -> error. */
static qp_status get_int(const qp_gguf *g, const char *arch, const char *suffix, int required, int64_t def,
                         int64_t *out, qp_err *err)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = qp_gguf_find_key(g, key);
    uint64_t v;
    if (i < 0) {
        if (required)
            return qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(g), "missing metadata key %s", key);
        *out = def;
        return QP_OK;
    }
    if (!qp_gguf_kv_as_u64(g, i, &v) || v > ((uint64_t)1 << 40))
        return qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(g), "metadata key %s is not a usable integer", key);
    *out = (int64_t)v;
    return QP_OK;
}

static qp_status get_float(const qp_gguf *g, const char *arch, const char *suffix, int required, double def,
                           double *out, qp_err *err)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = qp_gguf_find_key(g, key);
    if (i < 0) {
        if (required)
            return qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(g), "missing metadata key %s", key);
        *out = def;
        return QP_OK;
    }
    if (!qp_gguf_kv_as_f64(g, i, out))
        return qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(g), "metadata key %s is not a number", key);
    return QP_OK;
}

static qp_status lookup_gguf(void *vctx, qp_rt_model *m, const char *name, int64_t row_len, int64_t rows,
                             int64_t n_expert, int required, qp_rt_tensor *out, qp_err *err)
{
    gguf_ctx *c = vctx;
    const qp_gguf_tensor *t = qp_gguf_set_find_tensor(c->set, name);
    qp_status st;
    if (!t) {
        if (!required)
            return QP_OK;
        st = qp_err_set(err, QP_ERR_BAD_INPUT, m->path, "missing tensor");
        qp_err_set_tensor(err, name);
        return st;
    }
    const int64_t want[4] = {row_len, rows ? rows : 1, n_expert ? n_expert : 1, 1};
    for (int d = 0; d < 4; d++) {
        const int64_t have = d < (int)t->n_dims ? t->ne[d] : 1;
        if (have != want[d]) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, m->path,
                            "tensor shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld, %lld]",
                            (long long)t->ne[0], (long long)(t->n_dims > 1 ? t->ne[1] : 1),
                            (long long)(t->n_dims > 2 ? t->ne[2] : 1), (long long)(t->n_dims > 3 ? t->ne[3] : 1),
                            (long long)want[0], (long long)want[1], (long long)want[2], (long long)want[3]);
            qp_err_set_tensor(err, name);
            return st;
        }
    }
    int ok = 0;
    const uint64_t row_bytes = qp_ggml_row_bytes(t->type, (uint64_t)row_len, &ok);
    const uint64_t n_rows = (uint64_t)want[1] * (uint64_t)want[2];
    if (!ok || row_bytes * n_rows != t->nbytes) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, m->path, "tensor of type %s has %llu bytes for %llu rows of %lld",
                        qp_ggml_type_name(t->type), (unsigned long long)t->nbytes, (unsigned long long)n_rows,
                        (long long)row_len);
        qp_err_set_tensor(err, name);
        return st;
    }
    out->type = t->type;
    out->row_len = row_len;
    out->n_rows = (int64_t)n_rows;
    out->row_bytes = row_bytes;
    out->data = t->data;
    return QP_OK;
}

static const char *name_at_gguf(void *vctx, int64_t i)
{
    gguf_ctx *c = vctx;
    const qp_gguf_tensor *t = qp_gguf_set_tensor_at(c->set, i);
    size_t n = t->name.len < sizeof c->name - 1 ? (size_t)t->name.len : sizeof c->name - 1;
    memcpy(c->name, t->name.ptr, n);
    c->name[n] = '\0';
    return c->name;
}

static int str_is(qp_gguf_str s, const char *lit)
{
    return s.ptr && s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static qp_status read_config(const qp_gguf_set *set, qp_rt_config *c, qp_err *err)
{
    const qp_gguf *g = qp_gguf_set_file(set, 0);
    const char *path = qp_gguf_path(g);
    qp_gguf_str arch_s;
    if (!qp_gguf_get_str(g, "general.architecture", &arch_s))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "missing general.architecture");
    const char *arch;
    if (str_is(arch_s, "qwen3")) {
        arch = "qwen3";
    } else if (str_is(arch_s, "qwen3moe")) {
        arch = "qwen3moe";
        c->is_moe = 1;
    } else if (str_is(arch_s, "qwen3vlmoe")) {
        /* The Qwen3-Omni / Qwen3-VL MoE text model: qwen3moe's tensors and keys
         * plus M-RoPE sections. On text-only input every section gets the
         * same position, which is plain rotary (tests/runtime/test_forward.c
         * checks this against the transformers reference). */
        arch = "qwen3vlmoe";
        c->is_moe = 1;
    } else {
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path,
                          "architecture '%.*s' is not supported by the runtime (qwen3, qwen3moe, qwen3vlmoe)",
                          (int)(arch_s.len > 64 ? 64 : arch_s.len), arch_s.ptr);
    }
    qp_status st;
    double eps, theta;
    int64_t rope_dims = 0;
    if ((st = get_int(g, arch, "block_count", 1, 0, &c->n_layer, err)) != QP_OK ||
        (st = get_int(g, arch, "embedding_length", 1, 0, &c->n_embd, err)) != QP_OK ||
        (st = get_int(g, arch, "attention.head_count", 1, 0, &c->n_head, err)) != QP_OK ||
        (st = get_int(g, arch, "attention.head_count_kv", 0, c->n_head, &c->n_head_kv, err)) != QP_OK ||
        (st = get_int(g, arch, "context_length", 0, 0, &c->n_ctx_train, err)) != QP_OK ||
        (st = get_float(g, arch, "attention.layer_norm_rms_epsilon", 1, 0, &eps, err)) != QP_OK ||
        (st = get_float(g, arch, "rope.freq_base", 0, 10000.0, &theta, err)) != QP_OK)
        return st;
    if (c->n_head <= 0)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "%s.attention.head_count is 0", arch);
    if ((st = get_int(g, arch, "attention.key_length", 0, c->n_embd / c->n_head, &c->head_dim, err)) != QP_OK)
        return st;
    int64_t vlen = 0;
    if ((st = get_int(g, arch, "attention.value_length", 0, c->head_dim, &vlen, err)) != QP_OK)
        return st;
    if (vlen != c->head_dim)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "value_length %lld differs from key_length %lld",
                          (long long)vlen, (long long)c->head_dim);
    if ((st = get_int(g, arch, "rope.dimension_count", 0, c->head_dim, &rope_dims, err)) != QP_OK)
        return st;
    if (rope_dims != c->head_dim)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "partial rotary embedding (%lld of %lld dims)",
                          (long long)rope_dims, (long long)c->head_dim);
    char key[160];
    qp_gguf_str scaling;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (qp_gguf_get_str(g, key, &scaling) && !str_is(scaling, "none"))
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "rope scaling '%.*s' is not supported by the runtime",
                          (int)(scaling.len > 32 ? 32 : scaling.len), scaling.ptr);
    c->rms_eps = (float)eps;
    c->rope_theta = theta;
    if (c->is_moe) {
        if ((st = get_int(g, arch, "expert_count", 1, 0, &c->n_expert, err)) != QP_OK ||
            (st = get_int(g, arch, "expert_used_count", 1, 0, &c->n_expert_used, err)) != QP_OK ||
            (st = get_int(g, arch, "expert_feed_forward_length", 1, 0, &c->n_ff_exp, err)) != QP_OK)
            return st;
        /* llama.cpp's qwen3moe graph always renormalizes the top-k weights;
         * honour an explicit key if a file carries one. */
        c->norm_topk_prob = 1;
        snprintf(key, sizeof key, "%s.expert_weights_norm", arch);
        int64_t ki = qp_gguf_find_key(g, key);
        uint64_t v;
        if (ki >= 0 && qp_gguf_kv_as_u64(g, ki, &v))
            c->norm_topk_prob = v != 0;
    } else if ((st = get_int(g, arch, "feed_forward_length", 1, 0, &c->n_ff, err)) != QP_OK) {
        return st;
    }
    const qp_gguf_tensor *emb = qp_gguf_set_find_tensor(set, "token_embd.weight");
    if (!emb || emb->n_dims != 2) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "missing or malformed tensor");
        qp_err_set_tensor(err, "token_embd.weight");
        return st;
    }
    c->n_vocab = emb->ne[1];
    return qp_rt_config_check(c, path, err);
}

qp_status qp_rt_model_open_gguf(const char *path, qp_rt_model **out, qp_err *err)
{
    *out = NULL;
    qp_rt_model *m = qp_rt_model_alloc(path);
    if (!m)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    qp_gguf_set *set = NULL;
    qp_status st = qp_gguf_set_open(path, &set, err);
    if (st != QP_OK) {
        qp_rt_model_free(m);
        return st;
    }
    m->gguf_set = set;
    m->gguf = (void *)qp_gguf_set_file(set, 0);
    if ((st = read_config(set, &m->cfg, err)) != QP_OK) {
        qp_rt_model_free(m);
        return st;
    }
    gguf_ctx ctx = {set, {0}};
    st = qp_rt_bind_weights(m, lookup_gguf, &ctx, qp_gguf_set_tensor_count(set), name_at_gguf, err);
    if (st != QP_OK) {
        qp_rt_model_free(m);
        return st;
    }
    *out = m;
    return QP_OK;
}
