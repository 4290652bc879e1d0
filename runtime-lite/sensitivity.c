/* sensitivity.c - per-matrix KLD sensitivity by swapping in one quantized
 * matrix at a time (see sensitivity.h). */
#include "runtime-lite/sensitivity.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_threads.h"
#include "convert/qerror.h"
#include "quant/qtype.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/model_internal.h"

#define MAX_VIEWS 4 /* a tied token_embd is also the output view */

/* Every runtime view of the GGUF tensor `name` (count returned). */
static int find_views(qp_rt_model *m, const char *name, qp_rt_tensor **views)
{
    int n = 0;
    qp_rt_tensor *top[2] = {&m->w.token_embd, &m->w.output};
    for (int k = 0; k < 2; k++)
        if (top[k]->data && strcmp(top[k]->name, name) == 0 && n < MAX_VIEWS)
            views[n++] = top[k];
    for (int64_t l = 0; l < m->cfg.n_layer; l++) {
        qp_rt_layer *L = &m->w.layers[l];
        qp_rt_tensor *all[] = {&L->attn_q,   &L->attn_k,       &L->attn_v,        &L->attn_output,
                               &L->ffn_gate, &L->ffn_up,       &L->ffn_down,      &L->ffn_gate_exps,
                               &L->ffn_up_exps, &L->ffn_down_exps};
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
            if (all[k]->data && strcmp(all[k]->name, name) == 0 && n < MAX_VIEWS)
                views[n++] = all[k];
    }
    return n;
}

/* In place: logits row -> log-softmax (accumulated in double). */
static void log_softmax(float *x, int64_t n)
{
    float mx = x[0];
    for (int64_t j = 1; j < n; j++)
        mx = x[j] > mx ? x[j] : mx;
    double z = 0;
    for (int64_t j = 0; j < n; j++)
        z += exp((double)x[j] - (double)mx);
    const double lz = (double)mx + log(z);
    for (int64_t j = 0; j < n; j++)
        x[j] = (float)((double)x[j] - lz);
}

typedef struct {
    float *logits;        /* [n_out][V] the model's, made log-softmax */
    const float *base;    /* [n_out][V] base log-probabilities */
    double *kld;          /* [n_out] */
    int64_t V;
    int with_base;
} kld_ctx;

static void kld_rows(void *ctx, int64_t b0, int64_t b1, int tid)
{
    (void)tid;
    kld_ctx *k = ctx;
    for (int64_t r = b0; r < b1; r++) {
        float *q = k->logits + r * k->V;
        log_softmax(q, k->V);
        if (!k->with_base)
            continue;
        const float *p = k->base + r * k->V;
        double s = 0;
        for (int64_t j = 0; j < k->V; j++) {
            const double lp = (double)p[j];
            s += exp(lp) * (lp - (double)q[j]);
        }
        k->kld[r] = s;
    }
}

typedef struct {
    const qp_plan *plan;
    int64_t i;
    const qp_qtype *qt;
    uint64_t row_bytes;
    uint8_t *dst;
    qp_importance_fn imp;
    void *imp_ctx;
    atomic_int failed;
    atomic_flag err_taken;
    qp_err err;           /* the first failure */
} quant_ctx;

static void quant_fail(quant_ctx *q, const qp_err *e)
{
    if (!atomic_flag_test_and_set(&q->err_taken))
        q->err = *e;
    atomic_store(&q->failed, 1);
}

static void quant_rows(void *ctx, int64_t b0, int64_t b1, int tid)
{
    (void)tid;
    quant_ctx *q = ctx;
    const qp_plan_tensor *t = qp_plan_at(q->plan, q->i);
    const int64_t rpe = t->n_rows / t->n_expert;
    float *row = malloc((size_t)t->row_len * sizeof *row);
    qp_err e;
    qp_err_clear(&e);
    if (!row) {
        qp_err_set(&e, QP_ERR_NOMEM, NULL, "out of memory (sensitivity)");
        quant_fail(q, &e);
        return;
    }
    for (int64_t r = b0; r < b1 && !atomic_load(&q->failed); r++) {
        if (qp_plan_read_rows(q->plan, q->i, r, 1, row, &e) != QP_OK) {
            quant_fail(q, &e);
            break;
        }
        const float *iw = q->imp ? q->imp(q->imp_ctx, q->plan, q->i, r / rpe) : NULL;
        q->qt->quantize_row(row, q->dst + (uint64_t)r * q->row_bytes, t->row_len, iw);
    }
    free(row);
}

/* Mean KLD over all chunks with the model as it is now. */
static qp_status run_chunks(const qp_sens_job *job, qp_rt_state *s, float *logits, double *kld, const float *base,
                            float *base_store, double *mean, qp_err *err)
{
    const int64_t V = qp_rt_model_config(job->model)->n_vocab;
    const int64_t first = job->n_ctx / 2, n_out = job->n_ctx - first - 1;
    double sum = 0;
    for (int64_t c = 0; c < job->n_chunks; c++) {
        qp_rt_state_reset(s);
        float *dst = base_store ? base_store + c * n_out * V : logits;
        qp_status st = qp_rt_forward(job->model, s, job->tokens + c * job->n_ctx, job->n_ctx, first, n_out, dst, err);
        if (st != QP_OK)
            return st;
        kld_ctx k = {dst, base ? base + c * n_out * V : NULL, kld, V, base != NULL};
        qp_parallel_for(job->n_threads, n_out, kld_rows, &k);
        if (base)
            for (int64_t r = 0; r < n_out; r++)
                sum += kld[r];
    }
    *mean = sum / (double)(job->n_chunks * n_out);
    return QP_OK;
}

static int measurable(const qp_plan_tensor *t)
{
    return t->n_dims >= 2 && !t->keep_f32 && t->role != QP_ROLE_FFN_GATE_INP;
}

qp_status qp_sens_measure(const qp_sens_job *job, qp_sens **out, qp_err *err)
{
    *out = NULL;
    if (!job || !job->model || !job->plan || !job->tokens || job->n_ctx < 4 || job->n_chunks < 1)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_sens_measure: bad arguments");
    qp_sens_job jb = *job;
    if (jb.n_chunks > jb.n_tokens / jb.n_ctx)
        jb.n_chunks = jb.n_tokens / jb.n_ctx;
    if (jb.n_chunks < 1)
        return qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "the text has %lld tokens, fewer than one chunk of %lld",
                          (long long)jb.n_tokens, (long long)jb.n_ctx);
    if (jb.n_threads < 1)
        jb.n_threads = 1;
    job = &jb;
    qp_rt_model *m = job->model;
    const int64_t V = m->cfg.n_vocab, n_out = job->n_ctx - job->n_ctx / 2 - 1;
    const int64_t n_plan = qp_plan_count(job->plan);
    int64_t n_meas = 0;
    qp_rt_tensor *views[MAX_VIEWS];
    for (int64_t i = 0; i < n_plan; i++)
        n_meas += measurable(qp_plan_at(job->plan, i)) && find_views(m, qp_plan_at(job->plan, i)->name, views) > 0;
    qp_sens *sens = qp_sens_new(n_meas);
    float *base = malloc((size_t)(job->n_chunks * n_out * V) * sizeof *base);
    float *logits = malloc((size_t)(n_out * V) * sizeof *logits);
    double *kld = malloc((size_t)n_out * sizeof *kld);
    double *ew = malloc((size_t)(m->cfg.n_expert > 0 ? m->cfg.n_expert : 1) * sizeof *ew);
    qp_rt_state *s = NULL;
    qp_status st = QP_OK;
    if (!sens || !base || !logits || !kld || !ew) {
        st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (sensitivity)");
        goto out;
    }
    sens->probe_type = job->probe_type;
    sens->n_chunks = (uint32_t)job->n_chunks;
    sens->n_ctx = (uint32_t)job->n_ctx;
    if ((st = qp_rt_state_new(m, job->n_ctx, 0, job->n_threads, &s, err)) != QP_OK)
        goto out;
    double unused;
    if ((st = run_chunks(job, s, logits, kld, NULL, base, &unused, err)) != QP_OK)
        goto out;
    int64_t k = 0;
    for (int64_t i = 0; i < n_plan && st == QP_OK; i++) {
        const qp_plan_tensor *t = qp_plan_at(job->plan, i);
        int nv = measurable(t) ? find_views(m, t->name, views) : 0;
        if (nv == 0)
            continue;
        if (qp_cancelled(&job->progress)) {
            st = qp_err_set(err, QP_ERR_INTERRUPTED, NULL, "interrupted");
            break;
        }
        uint32_t probe = job->probe_type;
        if (t->row_len % qp_ggml_type_get(probe)->block_elems != 0)
            probe = QP_GGML_Q8_0;
        quant_ctx q;
        memset(&q, 0, sizeof q);
        q.plan = job->plan;
        q.i = i;
        q.qt = qp_qtype_get(probe);
        q.row_bytes = qp_qtype_row_bytes(probe, t->row_len);
        q.imp = job->importance;
        q.imp_ctx = job->importance_ctx;
        atomic_init(&q.failed, 0);
        atomic_flag_clear(&q.err_taken);
        q.dst = malloc((size_t)(q.row_bytes * (uint64_t)t->n_rows));
        if (!q.dst) {
            st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (sensitivity)");
            break;
        }
        qp_parallel_for(job->n_threads, t->n_rows, quant_rows, &q);
        if (atomic_load(&q.failed)) {
            if (err)
                *err = q.err;
            qp_err_set_tensor(err, t->name);
            st = q.err.status;
            free(q.dst);
            break;
        }
        qp_rt_tensor saved[MAX_VIEWS];
        for (int v = 0; v < nv; v++) {
            saved[v] = *views[v];
            views[v]->type = probe;
            views[v]->data = q.dst;
            views[v]->row_bytes = q.row_bytes;
            views[v]->packed = NULL;
        }
        double mean = 0;
        st = run_chunks(job, s, logits, kld, base, NULL, &mean, err);
        for (int v = 0; v < nv; v++)
            *views[v] = saved[v];
        free(q.dst);
        if (st != QP_OK)
            break;
        double e = 0;
        if (t->n_expert > 1)
            qp_sens_expert_weights(job->traffic, t->layer, t->n_expert, ew);
        st = qp_qerr_tensor(job->plan, i, &probe, 1, job->importance, job->importance_ctx,
                            t->n_expert > 1 ? ew : NULL, &e, err);
        if (st != QP_OK)
            break;
        snprintf(sens->name[k], QP_SENS_NAME_MAX, "%s", t->name);
        sens->kld[k] = mean > 0 ? mean : 0; /* rounding can leave a tiny negative sum */
        sens->err[k] = e;
        sens->coef[k] = e > 0 ? sens->kld[k] / e : 0;
        k++;
        qp_report(&job->progress, (uint64_t)k, (uint64_t)n_meas, t->name);
    }
out:
    qp_rt_state_free(s);
    free(base);
    free(logits);
    free(kld);
    free(ew);
    if (st != QP_OK) {
        qp_sens_free(sens);
        return st;
    }
    *out = sens;
    return QP_OK;
}
