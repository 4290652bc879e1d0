/* forward.c - one forward pass built from named kernels (see forward.h).
 *
 * Shapes (B = tokens in this pass, E = n_embd, H/KV = heads, D = head_dim,
 * F = feed-forward width, V = vocabulary):
 *   x    [B][E]      residual stream
 *   xb   [B][E]      normed input of a block; xb2 [B][E] block output
 *   q    [B][H*D]    queries; keys/values go straight into the cache
 *   kc/vc[L][n_ctx][KV*D]
 *   att  [B][H*D]    attention output before the output projection
 *   hb/hb2 [B][F]    SwiGLU gate/up */
#include "runtime-lite/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_cpu.h"
#include "common/qp_threads.h"
#include "runtime-lite/attention.h"
#include "runtime-lite/kernels.h"
#include "runtime-lite/matmul.h"

struct qp_rt_state {
    const qp_rt_model *m;
    int64_t n_ctx, max_batch, pos;
    int n_threads;
    int avx2;                   /* kernel family of the current call */
    float *x, *xb, *xb2, *q, *att, *hb, *hb2;
    float *key_cache, *value_cache;
    float *rope_cos, *rope_sin; /* [n_ctx][D/2] */
    float *kpack;               /* keys packed for the attention tiles */
    float *attn_scratch;        /* [n_threads][qp_rt_attn_scratch_floats] */
    /* MoE */
    float *router;              /* [B][n_expert] */
    int32_t *sel;               /* [B][k] chosen experts */
    float *sel_w;               /* [B][k] their weights */
    int32_t *rows;              /* [B*k] token of each gathered row */
    float *rows_w;              /* [B*k] its routing weight */
    float *xe, *ye;             /* [B*k][E] gathered inputs, expert outputs */
    int64_t *exp_off, *exp_fill; /* [n_expert+1] first gathered row per expert */
    qp_rt_mm_job *exp_jobs;     /* [2*n_expert] */
    qp_rt_observer obs;         /* calibration hook; all NULL by default */
    int has_obs;
    int single_layer;           /* the cache holds one layer (qp_rt_state_new_layer) */
    uint64_t bytes;             /* float buffers allocated, for memory reports */
};

static void *zalloc(qp_rt_state *s, int64_t n_floats)
{
    if (n_floats <= 0)
        n_floats = 1;
    size_t bytes = ((size_t)n_floats * sizeof(float) + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes);
    if (p) {
        memset(p, 0, bytes);
        s->bytes += bytes;
    }
    return p;
}

void qp_rt_state_free(qp_rt_state *s)
{
    if (!s)
        return;
    float **bufs[] = {&s->x, &s->xb, &s->xb2, &s->q, &s->att, &s->hb, &s->hb2, &s->key_cache, &s->value_cache,
                      &s->rope_cos, &s->rope_sin, &s->kpack, &s->attn_scratch, &s->router, &s->sel_w, &s->rows_w,
                      &s->xe, &s->ye};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(*bufs[i]);
    free(s->sel);
    free(s->rows);
    free(s->exp_off);
    free(s->exp_fill);
    free(s->exp_jobs);
    free(s);
}

/* n_cache_layers: n_layer for a whole-model state, 1 for a layer-streamed one. */
static qp_status state_new(const qp_rt_model *m, int64_t n_ctx, int64_t max_batch, int n_threads,
                           int64_t n_cache_layers, qp_rt_state **out, qp_err *err)
{
    *out = NULL;
    const qp_rt_config *c = qp_rt_model_config(m);
    if (n_ctx <= 0 || n_ctx > ((int64_t)1 << 24))
        return qp_err_set(err, QP_ERR_USAGE, NULL, "context size %lld out of range", (long long)n_ctx);
    if (max_batch <= 0 || max_batch > n_ctx)
        max_batch = n_ctx;
    if (n_threads < 1)
        n_threads = 1;
    qp_rt_state *s = calloc(1, sizeof *s);
    if (!s)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (run state)");
    s->m = m;
    s->n_ctx = n_ctx;
    s->max_batch = max_batch;
    s->n_threads = n_threads;
    const int64_t B = max_batch, E = c->n_embd, D = c->head_dim;
    const int64_t HD = c->n_head * D, KVD = c->n_head_kv * D;
    /* MoE: every token's row is gathered once per chosen expert */
    const int64_t F = c->is_moe ? c->n_ff_exp * c->n_expert_used : c->n_ff;
    s->x = zalloc(s, B * E);
    s->xb = zalloc(s, B * E);
    s->xb2 = zalloc(s, B * E);
    s->q = zalloc(s, B * HD);
    s->att = zalloc(s, B * HD);
    s->hb = zalloc(s, B * F);
    s->hb2 = zalloc(s, B * F);
    s->single_layer = n_cache_layers == 1;
    s->key_cache = zalloc(s, n_cache_layers * n_ctx * KVD);
    s->value_cache = zalloc(s, n_cache_layers * n_ctx * KVD);
    s->rope_cos = zalloc(s, n_ctx * (D / 2));
    s->rope_sin = zalloc(s, n_ctx * (D / 2));
    s->kpack = zalloc(s, (int64_t)qp_rt_attn_kpack_floats(n_ctx, c->n_head_kv, D));
    s->attn_scratch = zalloc(s, (int64_t)n_threads * (int64_t)qp_rt_attn_scratch_floats(n_ctx, D));
    int ok = s->x && s->xb && s->xb2 && s->q && s->att && s->hb && s->hb2 && s->key_cache && s->value_cache &&
             s->rope_cos && s->rope_sin && s->kpack && s->attn_scratch;
    if (ok && c->is_moe) {
        s->router = zalloc(s, B * c->n_expert);
        s->sel = calloc((size_t)(B * c->n_expert_used), sizeof *s->sel);
        s->sel_w = zalloc(s, B * c->n_expert_used);
        const int64_t BK = B * c->n_expert_used;
        s->rows = calloc((size_t)BK, sizeof *s->rows);
        s->rows_w = zalloc(s, BK);
        s->xe = zalloc(s, BK * E);
        s->ye = zalloc(s, BK * E);
        s->exp_off = calloc((size_t)(c->n_expert + 1), sizeof *s->exp_off);
        s->exp_fill = calloc((size_t)(c->n_expert + 1), sizeof *s->exp_fill);
        s->exp_jobs = calloc((size_t)(2 * c->n_expert), sizeof *s->exp_jobs);
        ok = s->router && s->sel && s->sel_w && s->rows && s->rows_w && s->xe && s->ye && s->exp_off &&
             s->exp_fill && s->exp_jobs;
    }
    if (!ok) {
        qp_rt_state_free(s);
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (run state for %lld tokens)", (long long)n_ctx);
    }
    qp_rt_rope_table(s->rope_cos, s->rope_sin, n_ctx, D, c->rope_theta);
    *out = s;
    return QP_OK;
}

qp_status qp_rt_state_new(const qp_rt_model *m, int64_t n_ctx, int64_t max_batch, int n_threads,
                          qp_rt_state **out, qp_err *err)
{
    *out = NULL;
    if (qp_rt_model_is_deferred(m))
        return qp_err_set(err, QP_ERR_USAGE, qp_rt_model_path(m),
                          "model opened for layer streaming runs only through the streaming engine");
    return state_new(m, n_ctx, max_batch, n_threads, qp_rt_model_config(m)->n_layer, out, err);
}

qp_status qp_rt_state_new_layer(const qp_rt_model *m, int64_t n_ctx, int64_t max_batch, int n_threads,
                                qp_rt_state **out, qp_err *err)
{
    return state_new(m, n_ctx, max_batch, n_threads, 1, out, err);
}

uint64_t qp_rt_state_bytes(const qp_rt_state *s) { return s->bytes; }

void qp_rt_state_reset(qp_rt_state *s) { s->pos = 0; }
int64_t qp_rt_state_pos(const qp_rt_state *s) { return s->pos; }
int64_t qp_rt_state_n_ctx(const qp_rt_state *s) { return s->n_ctx; }

void qp_rt_state_set_observer(qp_rt_state *s, const qp_rt_observer *obs)
{
    memset(&s->obs, 0, sizeof s->obs);
    s->has_obs = obs != NULL;
    if (obs)
        s->obs = *obs;
}

/* Report the input rows of a product to the observer (calibration). */
static void observe_mm(const qp_rt_state *s, const qp_rt_tensor *w, int64_t layer, int64_t expert, const float *x,
                       int64_t n_rows, int64_t n_in, const int32_t *row_token)
{
    if (!s->has_obs || !s->obs.on_matmul || !w->data || n_rows <= 0)
        return;
    const qp_rt_obs_matmul ev = {w->name, layer, expert, x, n_rows, n_in, row_token};
    s->obs.on_matmul(s->obs.user, &ev);
}

/* ------------------------------------------------------------ row-parallel steps */

typedef struct {
    const qp_rt_kernels *k;
    const qp_rt_config *c;
    qp_rt_state *s;
    const qp_rt_layer *L;
    int64_t cache_layer, pos0, n_tok; /* cache_layer: 0 in a single-layer state */
} step_ctx;

/* Per-head RMSNorm of q and k, then rotary embedding, token by token. */
static void qk_norm_rope_worker(void *vctx, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const step_ctx *sc = vctx;
    const qp_rt_config *c = sc->c;
    qp_rt_state *s = sc->s;
    const int64_t D = c->head_dim, HD = c->n_head * D, KVD = c->n_head_kv * D, half = D / 2;
    float *kc = s->key_cache + (sc->cache_layer * s->n_ctx + sc->pos0) * KVD;
    for (int64_t t = begin; t < end; t++) {
        const float *cs = s->rope_cos + (sc->pos0 + t) * half;
        const float *sn = s->rope_sin + (sc->pos0 + t) * half;
        for (int64_t h = 0; h < c->n_head; h++) {
            float *qh = s->q + t * HD + h * D;
            sc->k->rmsnorm(qh, qh, sc->L->attn_q_norm, D, c->rms_eps);
            qp_rt_rope_neox(qh, D, cs, sn);
        }
        for (int64_t h = 0; h < c->n_head_kv; h++) {
            float *kh = kc + t * KVD + h * D;
            sc->k->rmsnorm(kh, kh, sc->L->attn_k_norm, D, c->rms_eps);
            qp_rt_rope_neox(kh, D, cs, sn);
        }
    }
}

typedef struct {
    const qp_rt_kernels *k;
    float *g;
    const float *u;
    int64_t width;
} swiglu_ctx;

static void swiglu_worker(void *vctx, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const swiglu_ctx *w = vctx;
    for (int64_t t = begin; t < end; t++)
        w->k->swiglu(w->g + t * w->width, w->u + t * w->width, w->width);
}

static void swiglu_rows(const qp_rt_kernels *k, float *g, const float *u, int64_t n_rows, int64_t width,
                        int n_threads)
{
    swiglu_ctx w = {k, g, u, width};
    qp_parallel_for(n_threads, n_rows, swiglu_worker, &w);
}

static void rmsnorm_rows(const qp_rt_kernels *k, float *out, const float *x, const float *w, int64_t n_rows,
                         int64_t width, float eps)
{
    for (int64_t t = 0; t < n_rows; t++)
        k->rmsnorm(out + t * width, x + t * width, w, width, eps);
}

static void add_rows(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* ------------------------------------------------------------ blocks */

static qp_status attention_block(const qp_rt_kernels *k, const qp_rt_config *c, qp_rt_state *s,
                                 const qp_rt_layer *L, int64_t l, int64_t n_tok, qp_err *err)
{
    const int64_t E = c->n_embd, D = c->head_dim, HD = c->n_head * D, KVD = c->n_head_kv * D;
    const int64_t pos0 = s->pos, cl = s->single_layer ? 0 : l;
    rmsnorm_rows(k, s->xb, s->x, L->attn_norm, n_tok, E, c->rms_eps);
    /* q, k, v in one parallel region; k and v land in the cache */
    float *kc = s->key_cache + (cl * s->n_ctx + pos0) * KVD;
    float *vc = s->value_cache + (cl * s->n_ctx + pos0) * KVD;
    const qp_rt_mm_job qkv[3] = {
        {&L->attn_q, 0, HD, s->q, HD, 0, 0},
        {&L->attn_k, 0, KVD, kc, KVD, 0, 0},
        {&L->attn_v, 0, KVD, vc, KVD, 0, 0},
    };
    if (s->has_obs) {
        observe_mm(s, &L->attn_q, l, -1, s->xb, n_tok, E, NULL);
        observe_mm(s, &L->attn_k, l, -1, s->xb, n_tok, E, NULL);
        observe_mm(s, &L->attn_v, l, -1, s->xb, n_tok, E, NULL);
    }
    qp_status st = qp_rt_matmul_sel(qkv, 3, s->xb, E, n_tok, s->n_threads, s->avx2, err);
    if (st != QP_OK)
        return st;
    step_ctx sc = {k, c, s, L, cl, pos0, n_tok};
    qp_parallel_for(s->n_threads, n_tok, qk_norm_rope_worker, &sc);
    const qp_rt_attn at = {s->q, s->key_cache + cl * s->n_ctx * KVD, s->value_cache + cl * s->n_ctx * KVD, s->att,
                           s->kpack, s->attn_scratch, n_tok, pos0, c->n_head, c->n_head_kv, D, s->n_ctx, s->avx2};
    qp_rt_attention(&at, s->n_threads);
    const qp_rt_mm_job o = {&L->attn_output, 0, E, s->xb2, E, 0, 0};
    observe_mm(s, &L->attn_output, l, -1, s->att, n_tok, HD, NULL);
    if ((st = qp_rt_matmul_sel(&o, 1, s->att, HD, n_tok, s->n_threads, s->avx2, err)) != QP_OK)
        return st;
    add_rows(s->x, s->xb2, n_tok * E);
    return QP_OK;
}

static qp_status dense_ffn(const qp_rt_kernels *k, const qp_rt_config *c, qp_rt_state *s, const qp_rt_layer *L,
                           int64_t l, int64_t n_tok, qp_err *err)
{
    const int64_t E = c->n_embd, F = c->n_ff;
    const qp_rt_mm_job gu[2] = {
        {&L->ffn_gate, 0, F, s->hb, F, 0, 0},
        {&L->ffn_up, 0, F, s->hb2, F, 0, 0},
    };
    if (s->has_obs) {
        observe_mm(s, &L->ffn_gate, l, -1, s->xb, n_tok, E, NULL);
        observe_mm(s, &L->ffn_up, l, -1, s->xb, n_tok, E, NULL);
    }
    qp_status st = qp_rt_matmul_sel(gu, 2, s->xb, E, n_tok, s->n_threads, s->avx2, err);
    if (st != QP_OK)
        return st;
    swiglu_rows(k, s->hb, s->hb2, n_tok, F, s->n_threads);
    const qp_rt_mm_job d = {&L->ffn_down, 0, E, s->xb2, E, 0, 0};
    observe_mm(s, &L->ffn_down, l, -1, s->hb, n_tok, F, NULL);
    return qp_rt_matmul_sel(&d, 1, s->hb, F, n_tok, s->n_threads, s->avx2, err);
}

/* Router: softmax over experts, top-k (ties to the lower index), optional
 * renormalization, as transformers' Qwen3MoeSparseMoeBlock does. */
static void route_tokens(const qp_rt_kernels *k, const qp_rt_config *c, qp_rt_state *s, int64_t n_tok)
{
    const int64_t NE = c->n_expert, K = c->n_expert_used;
    for (int64_t t = 0; t < n_tok; t++) {
        float *p = s->router + t * NE;
        k->softmax(p, NE);
        int32_t *sel = s->sel + t * K;
        float *w = s->sel_w + t * K;
        float sum = 0.0f;
        for (int64_t j = 0; j < K; j++) {
            int32_t best = -1;
            for (int64_t e = 0; e < NE; e++) {
                int taken = 0;
                for (int64_t i = 0; i < j && !taken; i++)
                    taken = sel[i] == e;
                if (!taken && (best < 0 || p[e] > p[best]))
                    best = (int32_t)e;
            }
            sel[j] = best;
            w[j] = p[best];
            sum += p[best];
        }
        if (c->norm_topk_prob)
            for (int64_t j = 0; j < K; j++)
                w[j] /= sum;
    }
}

/* All experts of a layer in three parallel regions: the tokens' rows are
 * gathered expert by expert (ascending expert, then token), each expert's
 * gate/up and down products are jobs of one matmul call, and the outputs
 * are added back per token in ascending expert order, the order
 * transformers uses, whatever the batch. */
static qp_status moe_ffn(const qp_rt_kernels *k, const qp_rt_config *c, qp_rt_state *s, const qp_rt_layer *L,
                         int64_t l, int64_t n_tok, qp_err *err)
{
    const int64_t E = c->n_embd, NE = c->n_expert, K = c->n_expert_used, FE = c->n_ff_exp;
    const qp_rt_mm_job r = {&L->ffn_gate_inp, 0, NE, s->router, NE, 0, 0};
    observe_mm(s, &L->ffn_gate_inp, l, -1, s->xb, n_tok, E, NULL);
    qp_status st = qp_rt_matmul_sel(&r, 1, s->xb, E, n_tok, s->n_threads, s->avx2, err);
    if (st != QP_OK)
        return st;
    route_tokens(k, c, s, n_tok);
    if (s->has_obs && s->obs.on_route) {
        const qp_rt_obs_route ev = {l, s->xb, s->router, s->sel, n_tok, E, NE, K, L};
        s->obs.on_route(s->obs.user, &ev);
    }
    /* counting sort of the (token, expert) pairs by expert */
    int64_t *off = s->exp_off, *fill = s->exp_fill;
    memset(off, 0, (size_t)(NE + 1) * sizeof *off);
    for (int64_t i = 0; i < n_tok * K; i++)
        off[s->sel[i] + 1]++;
    for (int64_t e = 0; e < NE; e++)
        off[e + 1] += off[e];
    memcpy(fill, off, (size_t)NE * sizeof *fill);
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t j = 0; j < K; j++) {
            const int64_t row = fill[s->sel[t * K + j]]++;
            s->rows[row] = (int32_t)t;
            s->rows_w[row] = s->sel_w[t * K + j];
            memcpy(s->xe + row * E, s->xb + t * E, (size_t)E * sizeof(float));
        }
    const int64_t n_rows = n_tok * K;
    if (s->has_obs)
        for (int64_t e = 0; e < NE; e++) {
            observe_mm(s, &L->ffn_gate_exps, l, e, s->xe + off[e] * E, off[e + 1] - off[e], E, s->rows + off[e]);
            observe_mm(s, &L->ffn_up_exps, l, e, s->xe + off[e] * E, off[e + 1] - off[e], E, s->rows + off[e]);
        }
    qp_rt_mm_job *jobs = s->exp_jobs;
    int nj = 0;
    for (int64_t e = 0; e < NE; e++) {
        const int64_t n = off[e + 1] - off[e];
        if (n == 0)
            continue;
        jobs[nj++] = (qp_rt_mm_job){&L->ffn_gate_exps, e * FE, FE, s->hb + off[e] * FE, FE, off[e], n};
        jobs[nj++] = (qp_rt_mm_job){&L->ffn_up_exps, e * FE, FE, s->hb2 + off[e] * FE, FE, off[e], n};
    }
    if ((st = qp_rt_matmul_sel(jobs, nj, s->xe, E, n_rows, s->n_threads, s->avx2, err)) != QP_OK)
        return st;
    swiglu_rows(k, s->hb, s->hb2, n_rows, FE, s->n_threads);
    if (s->has_obs)
        for (int64_t e = 0; e < NE; e++)
            observe_mm(s, &L->ffn_down_exps, l, e, s->hb + off[e] * FE, off[e + 1] - off[e], FE, s->rows + off[e]);
    nj = 0;
    for (int64_t e = 0; e < NE; e++) {
        const int64_t n = off[e + 1] - off[e];
        if (n > 0)
            jobs[nj++] = (qp_rt_mm_job){&L->ffn_down_exps, e * E, E, s->ye + off[e] * E, E, off[e], n};
    }
    if ((st = qp_rt_matmul_sel(jobs, nj, s->hb, FE, n_rows, s->n_threads, s->avx2, err)) != QP_OK)
        return st;
    memset(s->xb2, 0, (size_t)(n_tok * E) * sizeof(float));
    for (int64_t row = 0; row < n_rows; row++) {
        float *acc = s->xb2 + (int64_t)s->rows[row] * E;
        const float *y = s->ye + row * E;
        const float w = s->rows_w[row];
        for (int64_t d = 0; d < E; d++)
            acc[d] += y[d] * w;
    }
    return QP_OK;
}

/* Layer l (weights L) over the n_tok rows of s->x at positions s->pos.. */
static qp_status layer_pass(const qp_rt_kernels *k, const qp_rt_config *c, qp_rt_state *s, const qp_rt_layer *L,
                            int64_t l, int64_t n_tok, qp_err *err)
{
    const int64_t E = c->n_embd;
    qp_status st = attention_block(k, c, s, L, l, n_tok, err);
    if (st != QP_OK)
        return st;
    rmsnorm_rows(k, s->xb, s->x, L->ffn_norm, n_tok, E, c->rms_eps);
    st = c->is_moe ? moe_ffn(k, c, s, L, l, n_tok, err) : dense_ffn(k, c, s, L, l, n_tok, err);
    if (st != QP_OK)
        return st;
    add_rows(s->x, s->xb2, n_tok * E);
    return QP_OK;
}

/* Output norm and output matrix over n_out rows of x: logits[n_out][V]. */
static qp_status head_pass(const qp_rt_kernels *k, const qp_rt_config *c, qp_rt_state *s, const float *norm,
                           const qp_rt_tensor *output, const float *x, int64_t n_out, float *logits, qp_err *err)
{
    const int64_t E = c->n_embd;
    rmsnorm_rows(k, s->xb, x, norm, n_out, E, c->rms_eps);
    const qp_rt_mm_job o = {output, 0, c->n_vocab, logits, c->n_vocab, 0, 0};
    return qp_rt_matmul_sel(&o, 1, s->xb, E, n_out, s->n_threads, s->avx2, err);
}

/* One pass over at most max_batch tokens. */
static qp_status forward_pass(const qp_rt_model *m, qp_rt_state *s, const int32_t *tokens, int64_t n_tok,
                              int64_t out_first, int64_t n_out, float *logits, qp_err *err)
{
    const qp_rt_config *c = qp_rt_model_config(m);
    const qp_rt_weights *w = qp_rt_model_weights(m);
    const qp_rt_kernels *k = qp_rt_kernels_for(s->avx2);
    const int64_t E = c->n_embd;
    qp_status st;
    for (int64_t t = 0; t < n_tok; t++)
        qp_rt_rows_to_f32(&w->token_embd, tokens[t], 1, s->x + t * E);
    for (int64_t l = 0; l < c->n_layer; l++)
        if ((st = layer_pass(k, c, s, &w->layers[l], l, n_tok, err)) != QP_OK)
            return st;
    s->pos += n_tok;
    if (n_out <= 0)
        return QP_OK;
    /* at most max_batch rows: xb holds them */
    return head_pass(k, c, s, w->output_norm, &w->output, s->x + out_first * E, n_out, logits, err);
}

qp_status qp_rt_forward(const qp_rt_model *m, qp_rt_state *s, const int32_t *tokens, int64_t n_tok,
                        int64_t out_first, int64_t n_out, float *logits, qp_err *err)
{
    const qp_rt_config *c = qp_rt_model_config(m);
    if (s->m != m)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "run state belongs to another model");
    if (n_tok < 0 || s->pos + n_tok > s->n_ctx)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "context full: %lld cached + %lld new tokens > %lld",
                          (long long)s->pos, (long long)n_tok, (long long)s->n_ctx);
    if (n_out < 0 || out_first < 0 || (n_out > 0 && out_first + n_out > n_tok))
        return qp_err_set(err, QP_ERR_USAGE, NULL, "output rows %lld..%lld outside the batch of %lld",
                          (long long)out_first, (long long)(out_first + n_out), (long long)n_tok);
    for (int64_t t = 0; t < n_tok; t++)
        if (tokens[t] < 0 || tokens[t] >= c->n_vocab)
            return qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "token id %d outside the vocabulary of %lld",
                              (int)tokens[t], (long long)c->n_vocab);
    s->avx2 = qp_cpu_get().avx2;
    for (int64_t b0 = 0; b0 < n_tok; b0 += s->max_batch) {
        const int64_t nb = n_tok - b0 < s->max_batch ? n_tok - b0 : s->max_batch;
        /* the requested output rows that fall inside this pass */
        int64_t lo = out_first > b0 ? out_first : b0;
        int64_t hi = out_first + n_out < b0 + nb ? out_first + n_out : b0 + nb;
        if (n_out <= 0 || hi < lo)
            hi = lo;
        float *dst = hi > lo ? logits + (lo - out_first) * c->n_vocab : NULL;
        qp_status st = forward_pass(m, s, tokens + b0, nb, lo - b0, hi - lo, dst, err);
        if (st != QP_OK)
            return st;
    }
    return QP_OK;
}

/* ------------------------------------------------------------ one layer at a time */

static qp_status check_tokens(const qp_rt_config *c, const int32_t *tokens, int64_t n_tok, qp_err *err)
{
    for (int64_t t = 0; t < n_tok; t++)
        if (tokens[t] < 0 || tokens[t] >= c->n_vocab)
            return qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "token id %d outside the vocabulary of %lld",
                              (int)tokens[t], (long long)c->n_vocab);
    return QP_OK;
}

qp_status qp_rt_forward_embed(const qp_rt_model *m, const qp_rt_tensor *token_embd, const int32_t *tokens,
                              int64_t n_tok, float *x, qp_err *err)
{
    const qp_rt_config *c = qp_rt_model_config(m);
    qp_status st = check_tokens(c, tokens, n_tok, err);
    if (st != QP_OK)
        return st;
    for (int64_t t = 0; t < n_tok; t++)
        qp_rt_rows_to_f32(token_embd, tokens[t], 1, x + t * c->n_embd);
    return QP_OK;
}

qp_status qp_rt_forward_layer(const qp_rt_model *m, qp_rt_state *s, int64_t layer, const qp_rt_layer *L, float *x,
                              int64_t n_tok, qp_err *err)
{
    const qp_rt_config *c = qp_rt_model_config(m);
    if (s->m != m || !s->single_layer)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_rt_forward_layer needs a single-layer state of this model");
    if (layer < 0 || layer >= c->n_layer)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "layer %lld outside 0..%lld", (long long)layer,
                          (long long)(c->n_layer - 1));
    if (n_tok < 0 || s->pos + n_tok > s->n_ctx)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "context full: %lld cached + %lld new tokens > %lld",
                          (long long)s->pos, (long long)n_tok, (long long)s->n_ctx);
    s->avx2 = qp_cpu_get().avx2;
    const qp_rt_kernels *k = qp_rt_kernels_for(s->avx2);
    const int64_t E = c->n_embd;
    /* the same passes of at most max_batch rows as qp_rt_forward, so the
     * products see the same batches and give the same bits */
    for (int64_t b0 = 0; b0 < n_tok; b0 += s->max_batch) {
        const int64_t nb = n_tok - b0 < s->max_batch ? n_tok - b0 : s->max_batch;
        memcpy(s->x, x + b0 * E, (size_t)(nb * E) * sizeof(float));
        qp_status st = layer_pass(k, c, s, L, layer, nb, err);
        if (st != QP_OK)
            return st;
        memcpy(x + b0 * E, s->x, (size_t)(nb * E) * sizeof(float));
        s->pos += nb;
    }
    return QP_OK;
}

qp_status qp_rt_forward_head(const qp_rt_model *m, qp_rt_state *s, const qp_rt_tensor *output, const float *x,
                             int64_t n_rows, float *logits, qp_err *err)
{
    const qp_rt_config *c = qp_rt_model_config(m);
    const qp_rt_weights *w = qp_rt_model_weights(m);
    if (s->m != m)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "run state belongs to another model");
    s->avx2 = qp_cpu_get().avx2;
    const qp_rt_kernels *k = qp_rt_kernels_for(s->avx2);
    for (int64_t r0 = 0; r0 < n_rows; r0 += s->max_batch) {
        const int64_t nr = n_rows - r0 < s->max_batch ? n_rows - r0 : s->max_batch;
        qp_status st = head_pass(k, c, s, w->output_norm, output, x + r0 * c->n_embd, nr,
                                 logits + r0 * c->n_vocab, err);
        if (st != QP_OK)
            return st;
    }
    return QP_OK;
}
