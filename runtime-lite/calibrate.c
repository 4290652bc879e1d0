/* calibrate.c - routed and coverage passes of the importance-matrix
 * calibration (see calibrate.h), fed by the forward pass's observer hook. */
#include "runtime-lite/calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/imatrix_ext.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/matmul.h"

typedef struct {
    qp_imatrix *m;
    const qp_rt_config *c;
    const qp_rt_weights *w;
    int n_threads;
    qp_status st;           /* first failure inside a callback */
    qp_err *err;
    int64_t *routed;        /* [L*NE] */
    /* coverage pass */
    const uint8_t *flag;    /* [L*NE] experts under the threshold */
    const double *need;     /* [L*NE] soft mass wanted */
    double *mass;           /* [L*NE] */
    double *soft_x;         /* [L*NE][E]  gate/up inputs, probability-weighted */
    double *soft_h;         /* [L*NE][FE] down inputs, probability-weighted */
    float *hg, *hu;         /* [n_ctx][FE] scratch */
} calib_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Routed pass: every product's input rows go into its entry. */
static void on_matmul(void *user, const qp_rt_obs_matmul *ev)
{
    calib_ctx *x = user;
    if (x->st != QP_OK)
        return;
    const int64_t n_expert = ev->expert < 0 ? 1 : x->c->n_expert;
    int64_t entry = qp_imatrix_add(x->m, ev->weight, ev->n_in, n_expert, x->err);
    if (entry < 0) {
        x->st = x->err && x->err->status != QP_OK ? x->err->status : QP_ERR_INTERNAL;
        return;
    }
    x->st = qp_imatrix_accumulate(x->m, entry, ev->expert < 0 ? 0 : ev->expert, ev->x, ev->n_rows, x->err);
}

static void on_route_count(void *user, const qp_rt_obs_route *ev)
{
    calib_ctx *x = user;
    int64_t *r = x->routed + ev->layer * ev->n_expert;
    for (int64_t i = 0; i < ev->n_tok * ev->k; i++)
        r[ev->sel[i]]++;
}

static float silu(float v) { return v / (1.0f + expf(-v)); }

/* Coverage pass: probability-weighted statistics of the flagged experts of
 * this layer that still want mass. */
static void on_route_soft(void *user, const qp_rt_obs_route *ev)
{
    calib_ctx *x = user;
    if (x->st != QP_OK)
        return;
    const qp_rt_config *c = x->c;
    const qp_rt_layer *L = &x->w->layers[ev->layer];
    const int64_t E = ev->n_embd, NE = ev->n_expert, FE = c->n_ff_exp, T = ev->n_tok;
    for (int64_t e = 0; e < NE; e++) {
        const int64_t le = ev->layer * NE + e;
        if (!x->flag[le] || x->mass[le] >= x->need[le])
            continue;
        double *sx = x->soft_x + le * E, *sh = x->soft_h + le * FE, mass = 0;
        for (int64_t t = 0; t < T; t++) {
            const double p = ev->probs[t * NE + e];
            const float *xt = ev->x + t * E;
            for (int64_t j = 0; j < E; j++)
                sx[j] += p * (double)xt[j] * (double)xt[j];
            mass += p;
        }
        x->mass[le] += mass;
        /* what this expert's down projection would see for these tokens */
        const qp_rt_mm_job jobs[2] = {
            {&L->ffn_gate_exps, e * FE, FE, x->hg, FE, 0, 0},
            {&L->ffn_up_exps, e * FE, FE, x->hu, FE, 0, 0},
        };
        if ((x->st = qp_rt_matmul(jobs, 2, ev->x, E, T, x->n_threads, x->err)) != QP_OK)
            return;
        for (int64_t t = 0; t < T; t++) {
            const double p = ev->probs[t * NE + e];
            const float *g = x->hg + t * FE, *u = x->hu + t * FE;
            for (int64_t j = 0; j < FE; j++) {
                const double h = (double)(silu(g[j]) * u[j]);
                sh[j] += p * h * h;
            }
        }
    }
}

static int coverage_done(const calib_ctx *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x->flag[i] && x->mass[i] < x->need[i])
            return 0;
    return 1;
}

/* Run chunks [0, n_chunks) with the observer; stop early when `done` says so. */
static qp_status run_chunks(const qp_calib_job *job, qp_rt_state *s, const qp_rt_observer *obs, int64_t n_chunks,
                            const char *what, calib_ctx *x, int64_t L_NE, int64_t *chunks_run, qp_err *err)
{
    const uint64_t total = (uint64_t)(n_chunks * job->n_ctx);
    qp_rt_state_set_observer(s, obs);
    *chunks_run = 0;
    for (int64_t k = 0; k < n_chunks; k++) {
        if (qp_cancelled(&job->progress))
            return qp_err_set(err, QP_ERR_INTERRUPTED, NULL, "interrupted");
        qp_rt_state_reset(s);
        qp_status st = qp_rt_forward(job->model, s, job->tokens + k * job->n_ctx, job->n_ctx, 0, 0, NULL, err);
        if (st == QP_OK)
            st = x->st;
        if (st != QP_OK)
            return st;
        *chunks_run = k + 1;
        qp_report(&job->progress, (uint64_t)((k + 1) * job->n_ctx), total, what);
        if (x->flag && coverage_done(x, L_NE))
            break;
    }
    return QP_OK;
}

void qp_calib_result_free(qp_calib_result *r)
{
    if (!r)
        return;
    qp_imatrix_free(r->imatrix);
    free(r->routed);
    free(r->soft_mass);
    free(r->counts);
    free(r->forced);
    memset(r, 0, sizeof *r);
}

/* in_sum2 = S_routed + n_add * S_soft / W, count = n_routed + n_add. */
static qp_status blend_entry(qp_imatrix *m, const char *name, int64_t e, const double *soft, double mass,
                             double n_add, double *buf, qp_err *err)
{
    int64_t entry = qp_imatrix_find(m, name);
    if (entry < 0)
        return QP_OK; /* the tensor was never used (cannot happen for a bound model) */
    const int64_t n_in = qp_imatrix_n_in(m, entry);
    const float *sums = qp_imatrix_sums(m, entry) + e * n_in;
    for (int64_t j = 0; j < n_in; j++)
        buf[j] = (double)sums[j] + n_add * soft[j] / mass;
    return qp_imatrix_set(m, entry, e, buf, qp_imatrix_rows(m, entry, e) + n_add, err);
}

static qp_status coverage(const qp_calib_job *job, qp_rt_state *s, calib_ctx *x, qp_calib_result *r,
                          int64_t n_chunks, qp_err *err)
{
    const qp_rt_config *c = x->c;
    const int64_t L = c->n_layer, NE = c->n_expert, E = c->n_embd, FE = c->n_ff_exp, LNE = L * NE;
    const double min = (double)job->min_expert_tokens;
    double *need = calloc((size_t)LNE, sizeof *need);
    x->mass = r->soft_mass;
    x->need = need;
    x->flag = r->forced;
    x->soft_x = calloc((size_t)(LNE * E), sizeof *x->soft_x);
    x->soft_h = calloc((size_t)(LNE * FE), sizeof *x->soft_h);
    x->hg = malloc((size_t)(job->n_ctx * FE) * sizeof *x->hg);
    x->hu = malloc((size_t)(job->n_ctx * FE) * sizeof *x->hu);
    double *buf = malloc((size_t)(E > FE ? E : FE) * sizeof *buf);
    qp_status st = QP_OK;
    if (!need || !x->soft_x || !x->soft_h || !x->hg || !x->hu || !buf) {
        st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (coverage pass)");
        goto out;
    }
    for (int64_t i = 0; i < LNE; i++)
        need[i] = min - (double)r->routed[i];
    const qp_rt_observer obs = {NULL, on_route_soft, x};
    if ((st = run_chunks(job, s, &obs, n_chunks, "coverage", x, LNE, &r->coverage_chunks, err)) != QP_OK)
        goto out;
    static const char *const kinds[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    for (int64_t l = 0; l < L; l++)
        for (int64_t e = 0; e < NE; e++) {
            const int64_t le = l * NE + e;
            if (!r->forced[le])
                continue;
            if (!(x->mass[le] > 0)) { /* softmax never underflows to 0 on every token, but stay safe */
                r->forced[le] = 0;
                r->n_forced--;
                continue;
            }
            for (int k = 0; k < 3 && st == QP_OK; k++) {
                char name[96];
                snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l, kinds[k]);
                const double *soft = k < 2 ? x->soft_x + le * E : x->soft_h + le * FE;
                st = blend_entry(x->m, name, e, soft, x->mass[le], need[le], buf, err);
            }
            if (st != QP_OK)
                goto out;
        }
out:
    free(need);
    free(x->soft_x);
    free(x->soft_h);
    free(x->hg);
    free(x->hu);
    free(buf);
    x->soft_x = x->soft_h = NULL;
    x->hg = x->hu = NULL;
    x->flag = NULL;
    return st;
}

qp_status qp_calib_run(const qp_calib_job *job, qp_calib_result *out, qp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!job || !job->model || (job->n_tokens > 0 && !job->tokens) || job->n_ctx < 1)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_calib_run: bad arguments");
    const qp_rt_config *c = qp_rt_model_config(job->model);
    int64_t n_chunks = job->n_tokens / job->n_ctx;
    if (job->max_chunks > 0 && n_chunks > job->max_chunks)
        n_chunks = job->max_chunks;
    if (n_chunks < 1)
        return qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "the text has %lld tokens, fewer than one chunk of %lld",
                          (long long)job->n_tokens, (long long)job->n_ctx);
    const int64_t NE = c->is_moe ? c->n_expert : 0, LNE = c->n_layer * NE;
    qp_calib_result *r = out;
    r->n_layer = c->n_layer;
    r->n_expert = NE;
    r->n_expert_used = c->is_moe ? c->n_expert_used : 0;
    r->min_expert_tokens = job->min_expert_tokens > 0 ? job->min_expert_tokens : 0;
    r->n_ctx = job->n_ctx;
    r->imatrix = qp_imatrix_new();
    qp_rt_state *s = NULL;
    qp_status st;
    if (!r->imatrix)
        goto nomem;
    if (NE > 0) {
        r->routed = calloc((size_t)LNE, sizeof *r->routed);
        r->soft_mass = calloc((size_t)LNE, sizeof *r->soft_mass);
        r->counts = calloc((size_t)LNE, sizeof *r->counts);
        r->forced = calloc((size_t)LNE, sizeof *r->forced);
        if (!r->routed || !r->soft_mass || !r->counts || !r->forced)
            goto nomem;
    }
    if ((st = qp_rt_state_new(job->model, job->n_ctx, 0, job->n_threads, &s, err)) != QP_OK)
        goto fail;
    calib_ctx x = {.m = r->imatrix,
                   .c = c,
                   .w = qp_rt_model_weights(job->model),
                   .n_threads = job->n_threads < 1 ? 1 : job->n_threads,
                   .st = QP_OK,
                   .err = err,
                   .routed = r->routed};
    const double t0 = now_s();
    const qp_rt_observer routed_obs = {on_matmul, NE > 0 ? on_route_count : NULL, &x};
    if ((st = run_chunks(job, s, &routed_obs, n_chunks, "routed", &x, 0, &r->n_chunks, err)) != QP_OK)
        goto fail;
    const double t1 = now_s();
    r->tokens_per_second = t1 > t0 ? (double)(n_chunks * job->n_ctx) / (t1 - t0) : 0;
    qp_imatrix_set_chunks(r->imatrix, (uint32_t)n_chunks, (uint32_t)job->n_ctx);
    if (job->dataset && (st = qp_imatrix_add_dataset(r->imatrix, job->dataset, err)) != QP_OK)
        goto fail;
    for (int64_t i = 0; i < LNE; i++)
        if (r->min_expert_tokens > 0 && r->routed[i] < r->min_expert_tokens) {
            r->forced[i] = 1;
            r->n_forced++;
        }
    if (r->n_forced > 0 && (st = coverage(job, s, &x, r, n_chunks, err)) != QP_OK)
        goto fail;
    for (int64_t i = 0; i < LNE; i++) {
        char name[96];
        snprintf(name, sizeof name, "blk.%lld.ffn_down_exps.weight", (long long)(i / NE));
        int64_t entry = qp_imatrix_find(r->imatrix, name);
        r->counts[i] = entry >= 0 ? qp_imatrix_rows(r->imatrix, entry, i % NE) : 0;
    }
    r->seconds = now_s() - t0;
    qp_rt_state_free(s);
    return QP_OK;
nomem:
    st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (calibration)");
fail:
    qp_rt_state_free(s);
    qp_calib_result_free(r);
    return st;
}

/* ------------------------------------------------------------ writing */

static qp_status write_keys(void *user, qp_gguf_writer *w, qp_err *err)
{
    const qp_calib_result *r = user;
    qp_status st;
    if ((st = qp_gguf_set_u32(w, "qpack.calib.min_expert_tokens", (uint32_t)r->min_expert_tokens)) != QP_OK ||
        (st = qp_gguf_set_u32(w, "qpack.calib.n_expert", (uint32_t)r->n_expert)) != QP_OK)
        return qp_err_set(err, st, NULL, "cannot set qpack.calib metadata");
    if (r->n_expert <= 0)
        return QP_OK;
    const int64_t n = r->n_layer * r->n_expert;
    uint32_t *counts = malloc((size_t)n * sizeof *counts);
    if (!counts)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    for (int64_t i = 0; i < n; i++)
        counts[i] = r->routed[i] > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)r->routed[i];
    st = qp_gguf_set_arr(w, "qpack.calib.routed_counts", QP_GGUF_U32, counts, (uint64_t)n);
    free(counts);
    if (st == QP_OK)
        st = qp_gguf_set_arr(w, "qpack.calib.forced", QP_GGUF_U8, r->forced, (uint64_t)n);
    if (st != QP_OK)
        return qp_err_set(err, st, NULL, "cannot set qpack.calib metadata");
    return QP_OK;
}

qp_status qp_calib_write(const qp_calib_result *r, const char *path, qp_err *err)
{
    if (!r || !r->imatrix || !path)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_calib_write: bad arguments");
    return qp_imatrix_write_kv(r->imatrix, path, write_keys, (void *)r, err);
}
