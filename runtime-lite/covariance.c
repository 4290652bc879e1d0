/* covariance.c - routed and coverage passes collecting H = sum x x^T per
 * weight matrix (see covariance.h), fed by the forward pass's observer. */
#include "runtime-lite/covariance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime-lite/calib_chunks.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/matmul.h"

typedef struct {
    qp_covmat *m;
    const qp_rt_config *c;
    const qp_rt_weights *w;
    int n_threads;
    qp_status st;         /* first failure inside a callback */
    qp_err *err;
    /* coverage pass */
    const uint8_t *flag;  /* [L*NE] */
    const double *need;   /* [L*NE] soft mass wanted */
    double *mass;         /* [L*NE] */
    qp_covmat *soft;      /* "x.L" / "h.L" entries, [NE] experts each */
    float *hg, *hu, *y;   /* [n_ctx][max(E, FE)] scratch */
} cov_ctx;

/* The name under which an input is accumulated: matrices that share an
 * input with another one report NULL (they get a copy at the end). */
static int is_shared_alias(const char *w)
{
    static const char *const alias[] = {".attn_k.weight", ".attn_v.weight", ".ffn_up.weight", ".ffn_up_exps.weight",
                                        ".ffn_gate_inp.weight"};
    const size_t n = strlen(w);
    for (size_t k = 0; k < sizeof alias / sizeof *alias; k++) {
        const size_t a = strlen(alias[k]);
        if (n > a && strcmp(w + n - a, alias[k]) == 0)
            return 1;
    }
    return 0;
}

static void fail(cov_ctx *x)
{
    x->st = x->err && x->err->status != QP_OK ? x->err->status : QP_ERR_INTERNAL;
}

static void on_matmul(void *user, const qp_rt_obs_matmul *ev)
{
    cov_ctx *x = user;
    if (x->st != QP_OK || is_shared_alias(ev->weight))
        return;
    const int64_t n_expert = ev->expert < 0 ? 1 : x->c->n_expert;
    int64_t entry = qp_covmat_add(x->m, ev->weight, ev->n_in, n_expert, x->err);
    if (entry < 0) {
        fail(x);
        return;
    }
    x->st = qp_covmat_accumulate(x->m, entry, ev->expert < 0 ? 0 : ev->expert, ev->x, ev->n_rows, x->n_threads,
                                 x->err);
}

/* H_soft[e] += sum_t p_t (y_t y_t^T): rows scaled by sqrt(p_t). */
static qp_status soft_add(cov_ctx *x, const char *kind, int64_t layer, int64_t e, const float *rows, int64_t T,
                          int64_t n, const float *probs, int64_t NE)
{
    char name[32];
    snprintf(name, sizeof name, "%s.%lld", kind, (long long)layer);
    int64_t entry = qp_covmat_add(x->soft, name, n, NE, x->err);
    if (entry < 0)
        return x->err && x->err->status != QP_OK ? x->err->status : QP_ERR_INTERNAL;
    for (int64_t t = 0; t < T; t++) {
        const float s = sqrtf(probs[t * NE + e]);
        for (int64_t j = 0; j < n; j++)
            x->y[t * n + j] = s * rows[t * n + j];
    }
    return qp_covmat_accumulate(x->soft, entry, e, x->y, T, x->n_threads, x->err);
}

static float silu(float v) { return v / (1.0f + expf(-v)); }

/* Coverage pass: the flagged experts of this layer that still want mass
 * (the same test and the same mass sums as calibrate.c). */
static void on_route_soft(void *user, const qp_rt_obs_route *ev)
{
    cov_ctx *x = user;
    if (x->st != QP_OK)
        return;
    const qp_rt_layer *L = &x->w->layers[ev->layer];
    const int64_t E = ev->n_embd, NE = ev->n_expert, FE = x->c->n_ff_exp, T = ev->n_tok;
    for (int64_t e = 0; e < NE; e++) {
        const int64_t le = ev->layer * NE + e;
        if (!x->flag[le] || x->mass[le] >= x->need[le])
            continue;
        double mass = 0;
        for (int64_t t = 0; t < T; t++)
            mass += ev->probs[t * NE + e];
        x->mass[le] += mass;
        if ((x->st = soft_add(x, "x", ev->layer, e, ev->x, T, E, ev->probs, NE)) != QP_OK)
            return;
        const qp_rt_mm_job jobs[2] = {
            {&L->ffn_gate_exps, e * FE, FE, x->hg, FE, 0, 0},
            {&L->ffn_up_exps, e * FE, FE, x->hu, FE, 0, 0},
        };
        if ((x->st = qp_rt_matmul(jobs, 2, ev->x, E, T, x->n_threads, x->err)) != QP_OK)
            return;
        for (int64_t t = 0; t < T * FE; t++)
            x->hg[t] = silu(x->hg[t]) * x->hu[t];
        if ((x->st = soft_add(x, "h", ev->layer, e, x->hg, T, FE, ev->probs, NE)) != QP_OK)
            return;
    }
}

/* H = H_routed + need * H_soft / mass for the flagged experts. */
static qp_status blend(cov_ctx *x, const qp_calib_result *r, qp_err *err)
{
    static const char *const kinds[2] = {"ffn_gate_exps", "ffn_down_exps"};
    const int64_t NE = r->n_expert;
    for (int64_t l = 0; l < r->n_layer; l++)
        for (int64_t e = 0; e < NE; e++) {
            const int64_t le = l * NE + e;
            if (!x->flag[le] || !(x->mass[le] > 0))
                continue;
            for (int k = 0; k < 2; k++) {
                char name[96], sname[32];
                snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l, kinds[k]);
                snprintf(sname, sizeof sname, "%s.%lld", k == 0 ? "x" : "h", (long long)l);
                int64_t d = qp_covmat_find(x->m, name), sidx = qp_covmat_find(x->soft, sname);
                if (d < 0 || sidx < 0)
                    return qp_err_set(err, QP_ERR_INTERNAL, NULL, "coverage data missing for %s", name);
                const int64_t n = qp_covmat_n_in(x->m, d);
                double *h = qp_covmat_h_mut(x->m, d, e);
                const double *hs = qp_covmat_h(x->soft, sidx, e), f = x->need[le] / x->mass[le];
                for (int64_t k2 = 0; k2 < n * n; k2++)
                    h[k2] += f * hs[k2];
                qp_covmat_set_rows(x->m, d, e, qp_covmat_rows(x->m, d, e) + x->need[le]);
            }
        }
    return QP_OK;
}

static qp_status coverage(const qp_calib_job *job, const qp_calib_result *r, qp_rt_state *s, cov_ctx *x,
                          int64_t n_chunks, qp_err *err)
{
    const int64_t LNE = r->n_layer * r->n_expert, W = x->c->n_embd > x->c->n_ff_exp ? x->c->n_embd : x->c->n_ff_exp;
    double *need = calloc((size_t)LNE, sizeof *need);
    uint8_t *flag = calloc((size_t)LNE, 1);
    x->mass = calloc((size_t)LNE, sizeof *x->mass);
    x->soft = qp_covmat_new();
    x->hg = malloc((size_t)(job->n_ctx * W) * sizeof(float));
    x->hu = malloc((size_t)(job->n_ctx * W) * sizeof(float));
    x->y = malloc((size_t)(job->n_ctx * W) * sizeof(float));
    qp_status st = QP_OK;
    if (!need || !flag || !x->mass || !x->soft || !x->hg || !x->hu || !x->y) {
        st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (covariance coverage pass)");
        goto out;
    }
    int64_t n_flag = 0;
    for (int64_t i = 0; i < LNE; i++) {
        flag[i] = r->min_expert_tokens > 0 && r->routed[i] < r->min_expert_tokens;
        need[i] = (double)r->min_expert_tokens - (double)r->routed[i];
        n_flag += flag[i];
    }
    x->flag = flag;
    x->need = need;
    if (n_flag > 0) {
        const qp_rt_observer obs = {NULL, on_route_soft, x};
        const qp_calib_cover cover = {flag, need, x->mass, LNE};
        if ((st = qp_calib_run_chunks(job, s, &obs, n_chunks, "coverage", &x->st, &cover, NULL, err)) == QP_OK)
            st = blend(x, r, err);
    }
out:
    free(need);
    free(flag);
    free(x->mass);
    qp_covmat_free(x->soft);
    free(x->hg);
    free(x->hu);
    free(x->y);
    x->flag = NULL;
    return st;
}

/* Store the shared-input copies under their own names. */
static qp_status add_aliases(qp_covmat *m, qp_err *err)
{
    static const char *const pairs[][2] = {{"attn_q", "attn_k"},    {"attn_q", "attn_v"},
                                           {"ffn_gate", "ffn_up"},  {"ffn_gate_exps", "ffn_up_exps"}};
    const int64_t n = qp_covmat_count(m);
    for (int64_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++) {
            char want[64], name[QP_COVMAT_MAX_NAME + 1];
            snprintf(want, sizeof want, ".%s.weight", pairs[k][0]);
            const char *src = qp_covmat_name(m, i), *dot = strstr(src, want);
            if (!dot || strcmp(dot, want) != 0)
                continue;
            snprintf(name, sizeof name, "%.*s.%s.weight", (int)(dot - src), src, pairs[k][1]);
            qp_status st = qp_covmat_copy(m, i, name, err);
            if (st != QP_OK)
                return st;
        }
    return QP_OK;
}

qp_status qp_cov_collect(const qp_calib_job *job, const qp_calib_result *calib, qp_covmat **out, qp_err *err)
{
    *out = NULL;
    if (!job || !job->model || (job->n_tokens > 0 && !job->tokens) || job->n_ctx < 1)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_cov_collect: bad arguments");
    const qp_rt_config *c = qp_rt_model_config(job->model);
    int64_t n_chunks;
    qp_status st = qp_calib_chunk_count(job, &n_chunks, err);
    if (st != QP_OK)
        return st;
    qp_rt_state *s = NULL;
    cov_ctx x = {.m = qp_covmat_new(),
                 .c = c,
                 .w = qp_rt_model_weights(job->model),
                 .n_threads = job->n_threads < 1 ? 1 : job->n_threads,
                 .st = QP_OK,
                 .err = err};
    if (!x.m) {
        st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (covariance)");
        goto fail;
    }
    if ((st = qp_rt_state_new(job->model, job->n_ctx, 0, job->n_threads, &s, err)) != QP_OK)
        goto fail;
    const qp_rt_observer obs = {on_matmul, NULL, &x};
    if ((st = qp_calib_run_chunks(job, s, &obs, n_chunks, "covariance", &x.st, NULL, NULL, err)) != QP_OK)
        goto fail;
    if (c->is_moe && calib && calib->routed && calib->n_expert == c->n_expert &&
        (st = coverage(job, calib, s, &x, n_chunks, err)) != QP_OK)
        goto fail;
    if ((st = add_aliases(x.m, err)) != QP_OK)
        goto fail;
    qp_covmat_set_chunks(x.m, (uint32_t)n_chunks, (uint32_t)job->n_ctx);
    qp_rt_state_free(s);
    *out = x.m;
    return QP_OK;
fail:
    qp_rt_state_free(s);
    qp_covmat_free(x.m);
    return st;
}
