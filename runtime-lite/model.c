/* model.c - what both loaders share: opening by path, the tensor list of a
 * Qwen3 / Qwen3-MoE model with its shapes, norms to f32, freeing. */
#include "runtime-lite/model_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/qp_ggml_types.h"
#include "runtime-lite/matmul.h"

qp_rt_model *qp_rt_model_alloc(const char *path)
{
    qp_rt_model *m = calloc(1, sizeof *m);
    if (m)
        snprintf(m->path, sizeof m->path, "%s", path);
    return m;
}

qp_status qp_rt_model_own(qp_rt_model *m, void *p, qp_err *err)
{
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **n = realloc(m->owned, cap * sizeof *n);
        if (!n) {
            free(p);
            return qp_err_set(err, QP_ERR_NOMEM, m->path, "out of memory");
        }
        m->owned = n;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return QP_OK;
}

void qp_rt_model_free(qp_rt_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->w.layers);
    if (m->gguf_set)
        qp_rt_model_close_gguf(m->gguf_set);
    if (m->hf_plan)
        qp_rt_model_close_hf(m);
    free(m);
}

qp_status qp_rt_model_open(const char *path, qp_rt_model **out, qp_err *err)
{
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) != 0)
        return qp_err_io(err, path, errno, "cannot open model");
    if (S_ISDIR(sb.st_mode))
        return qp_rt_model_open_hf(path, out, err);
    return qp_rt_model_open_gguf(path, out, err);
}

const qp_rt_config *qp_rt_model_config(const qp_rt_model *m) { return &m->cfg; }
const qp_rt_weights *qp_rt_model_weights(const qp_rt_model *m) { return &m->w; }
const char *qp_rt_model_path(const qp_rt_model *m) { return m->path; }
const void *qp_rt_model_gguf(const qp_rt_model *m) { return m->gguf; }
int qp_rt_model_is_hf(const qp_rt_model *m) { return m->is_hf; }
uint64_t qp_rt_model_weight_bytes(const qp_rt_model *m) { return m->weight_bytes; }

qp_status qp_rt_config_check(const qp_rt_config *c, const char *path, qp_err *err)
{
    /* Upper bounds keep every size product far from overflow. */
    const int64_t LIM = (int64_t)1 << 24;
    if (c->n_embd <= 0 || c->n_embd > LIM || c->n_layer <= 0 || c->n_layer > 4096 ||
        c->n_head <= 0 || c->n_head > 4096 || c->n_head_kv <= 0 || c->n_head_kv > c->n_head ||
        c->n_head % c->n_head_kv != 0 || c->head_dim <= 0 || c->head_dim > 4096 || c->head_dim % 2 != 0 ||
        c->n_vocab <= 0 || c->n_vocab > ((int64_t)1 << 31) - 1)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                          "unusable model shape (embd %lld, layers %lld, heads %lld/%lld, head_dim %lld, vocab %lld)",
                          (long long)c->n_embd, (long long)c->n_layer, (long long)c->n_head,
                          (long long)c->n_head_kv, (long long)c->head_dim, (long long)c->n_vocab);
    if (c->is_moe) {
        if (c->n_expert <= 0 || c->n_expert > 4096 || c->n_expert_used <= 0 ||
            c->n_expert_used > c->n_expert || c->n_ff_exp <= 0 || c->n_ff_exp > LIM)
            return qp_err_set(err, QP_ERR_BAD_INPUT, path, "unusable MoE shape (experts %lld, used %lld, width %lld)",
                              (long long)c->n_expert, (long long)c->n_expert_used, (long long)c->n_ff_exp);
    } else if (c->n_ff <= 0 || c->n_ff > LIM) {
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "unusable feed-forward width %lld", (long long)c->n_ff);
    }
    if (!(c->rms_eps > 0.0f && c->rms_eps < 1.0f))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "bad RMSNorm epsilon %g", (double)c->rms_eps);
    if (!(c->rope_theta > 0.0 && c->rope_theta < 1e12))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "bad rope theta %g", c->rope_theta);
    return QP_OK;
}

/* ------------------------------------------------------------ binding */

typedef struct {
    qp_rt_model *m;
    qp_rt_lookup_fn lookup;
    void *ctx;
    char (*used)[96];  /* names bound so far */
    int64_t n_used, cap_used;
    qp_err *err;
} binder;

static qp_status note_used(binder *b, const char *name)
{
    if (b->n_used == b->cap_used) {
        int64_t cap = b->cap_used ? 2 * b->cap_used : 64;
        void *n = realloc(b->used, (size_t)cap * sizeof *b->used);
        if (!n)
            return qp_err_set(b->err, QP_ERR_NOMEM, b->m->path, "out of memory");
        b->used = n;
        b->cap_used = cap;
    }
    snprintf(b->used[b->n_used++], 96, "%s", name);
    return QP_OK;
}

static qp_status bind_matrix(binder *b, const char *name, int64_t row_len, int64_t rows, int64_t n_expert,
                             int required, qp_rt_tensor *t)
{
    memset(t, 0, sizeof *t);
    qp_status st = b->lookup(b->ctx, b->m, name, row_len, rows, n_expert, required, t, b->err);
    if (st != QP_OK || (!t->data && !t->deferred))
        return st;
    snprintf(t->name, sizeof t->name, "%s", name);
    if (!qp_rt_type_supported(t->type)) {
        st = qp_err_set(b->err, QP_ERR_UNSUPPORTED, b->m->path, "tensor type %s is not supported by the runtime",
                        qp_ggml_type_name(t->type));
        qp_err_set_tensor(b->err, name);
        return st;
    }
    b->m->weight_bytes += t->row_bytes * (uint64_t)t->n_rows;
    return note_used(b, name);
}

/* A vector (norm weight) of any supported type, copied to f32. */
static qp_status bind_norm(binder *b, const char *name, int64_t n, float **out)
{
    qp_rt_tensor t;
    qp_status st = bind_matrix(b, name, n, 0, 0, 1, &t);
    if (st != QP_OK)
        return st;
    float *v = malloc((size_t)n * sizeof(float));
    if (!v)
        return qp_err_set(b->err, QP_ERR_NOMEM, b->m->path, "out of memory");
    qp_rt_rows_to_f32(&t, 0, 1, v);
    *out = v;
    return qp_rt_model_own(b->m, v, b->err);
}

qp_status qp_rt_bind_weights(qp_rt_model *m, qp_rt_lookup_fn lookup, void *ctx,
                             int64_t n_available, const char *(*name_at)(void *ctx, int64_t i),
                             qp_err *err)
{
    const qp_rt_config *c = &m->cfg;
    binder b = {m, lookup, ctx, NULL, 0, 0, err};
    qp_rt_weights *w = &m->w;
    qp_status st;
    const int64_t E = c->n_embd, D = c->head_dim;
    const int64_t HD = c->n_head * D, KVD = c->n_head_kv * D;

    w->layers = calloc((size_t)c->n_layer, sizeof *w->layers);
    if (!w->layers)
        return qp_err_set(err, QP_ERR_NOMEM, m->path, "out of memory");

    if ((st = bind_matrix(&b, "token_embd.weight", E, c->n_vocab, 0, 1, &w->token_embd)) != QP_OK)
        goto done;
    if ((st = bind_norm(&b, "output_norm.weight", E, &w->output_norm)) != QP_OK)
        goto done;
    if ((st = bind_matrix(&b, "output.weight", E, c->n_vocab, 0, 0, &w->output)) != QP_OK)
        goto done;
    if (!w->output.data && !w->output.deferred) {
        w->output = w->token_embd;
        w->tied = 1;
    }
    for (int64_t l = 0; l < c->n_layer; l++) {
        qp_rt_layer *L = &w->layers[l];
        char nm[96];
#define NAME(suffix) (snprintf(nm, sizeof nm, "blk.%lld." suffix, (long long)l), nm)
        if ((st = bind_norm(&b, NAME("attn_norm.weight"), E, &L->attn_norm)) != QP_OK ||
            (st = bind_norm(&b, NAME("attn_q_norm.weight"), D, &L->attn_q_norm)) != QP_OK ||
            (st = bind_norm(&b, NAME("attn_k_norm.weight"), D, &L->attn_k_norm)) != QP_OK ||
            (st = bind_matrix(&b, NAME("attn_q.weight"), E, HD, 0, 1, &L->attn_q)) != QP_OK ||
            (st = bind_matrix(&b, NAME("attn_k.weight"), E, KVD, 0, 1, &L->attn_k)) != QP_OK ||
            (st = bind_matrix(&b, NAME("attn_v.weight"), E, KVD, 0, 1, &L->attn_v)) != QP_OK ||
            (st = bind_matrix(&b, NAME("attn_output.weight"), HD, E, 0, 1, &L->attn_output)) != QP_OK ||
            (st = bind_norm(&b, NAME("ffn_norm.weight"), E, &L->ffn_norm)) != QP_OK)
            goto done;
        if (c->is_moe) {
            const int64_t NE = c->n_expert, FE = c->n_ff_exp;
            if ((st = bind_matrix(&b, NAME("ffn_gate_inp.weight"), E, NE, 0, 1, &L->ffn_gate_inp)) != QP_OK ||
                (st = bind_matrix(&b, NAME("ffn_gate_exps.weight"), E, FE, NE, 1, &L->ffn_gate_exps)) != QP_OK ||
                (st = bind_matrix(&b, NAME("ffn_up_exps.weight"), E, FE, NE, 1, &L->ffn_up_exps)) != QP_OK ||
                (st = bind_matrix(&b, NAME("ffn_down_exps.weight"), FE, E, NE, 1, &L->ffn_down_exps)) != QP_OK)
                goto done;
        } else {
            const int64_t F = c->n_ff;
            if ((st = bind_matrix(&b, NAME("ffn_gate.weight"), E, F, 0, 1, &L->ffn_gate)) != QP_OK ||
                (st = bind_matrix(&b, NAME("ffn_up.weight"), E, F, 0, 1, &L->ffn_up)) != QP_OK ||
                (st = bind_matrix(&b, NAME("ffn_down.weight"), F, E, 0, 1, &L->ffn_down)) != QP_OK)
                goto done;
        }
#undef NAME
    }
    /* Every tensor of the source must have been used. */
    for (int64_t i = 0; i < n_available; i++) {
        const char *name = name_at(ctx, i);
        int found = 0;
        for (int64_t j = 0; j < b.n_used && !found; j++)
            found = strcmp(b.used[j], name) == 0;
        if (!found) {
            st = qp_err_set(err, QP_ERR_UNSUPPORTED, m->path,
                            "tensor not used by the qwen3 runtime (unsupported model variant)");
            qp_err_set_tensor(err, name);
            goto done;
        }
    }
    st = QP_OK;
done:
    free(b.used);
    return st;
}
