/* ppl.c - perplexity / KL-divergence driver and statistics (see ppl.h). */
#include "runtime-lite/ppl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/qp_threads.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/kernels.h"
#include "runtime-lite/logits_file.h"
#include "runtime-lite/ppl_internal.h"

double qp_ppl_nll(const float *logits, int64_t n_vocab, int32_t target)
{
    const qp_rt_kernels *k = qp_rt_kernels_get();
    const float m = k->max(logits, n_vocab);
    const double log_z = (double)m + log(k->sum_exp(logits, n_vocab, m));
    return log_z - (double)logits[target];
}

/* ------------------------------------------------------------ statistics */

static qp_ppl_est mean_unc(double sum, double sum2, int64_t count)
{
    qp_ppl_est e = {0, 0};
    if (count < 1)
        return e;
    e.val = sum / (double)count;
    double var = sum2 / (double)count - e.val * e.val;
    e.unc = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) : 0.0;
    return e;
}

static double covariance(double sa, double sb, double sab, int64_t count)
{
    if (count < 10)
        return 0.0;
    const double n = (double)count;
    return (sab / n - (sa / n) * (sb / n)) / (n - 1);
}

void qp_ppl_acc_stats(const qp_ppl_acc *a, int has_base, qp_ppl_stats *o)
{
    memset(o, 0, sizeof *o);
    o->n_scored = a->count;
    o->has_base = has_base;
    const qp_ppl_est ln = mean_unc(a->sum_nll, a->sum_nll2, a->count);
    o->ppl.val = exp(ln.val);
    o->ppl.unc = o->ppl.val * ln.unc;
    if (!has_base)
        return;
    const qp_ppl_est lnb = mean_unc(a->sum_nll_base, a->sum_nll_base2, a->count);
    o->ppl_base.val = exp(lnb.val);
    o->ppl_base.unc = o->ppl_base.val * lnb.unc;
    const double cov = covariance(a->sum_nll, a->sum_nll_base, a->sum_nll_nll_base, a->count);
    o->cor = ln.unc > 0 && lnb.unc > 0 ? cov / (ln.unc * lnb.unc) : 0.0;
    o->ln_ratio.val = ln.val - lnb.val;
    double v = ln.unc * ln.unc + lnb.unc * lnb.unc - 2.0 * cov;
    o->ln_ratio.unc = v > 0 ? sqrt(v) : 0.0;
    o->ratio.val = exp(o->ln_ratio.val);
    o->ratio.unc = o->ratio.val * o->ln_ratio.unc;
    o->diff.val = o->ppl.val - o->ppl_base.val;
    v = o->ppl.unc * o->ppl.unc + o->ppl_base.unc * o->ppl_base.unc - 2.0 * o->ppl.val * o->ppl_base.val * cov;
    o->diff.unc = v > 0 ? sqrt(v) : 0.0;
    o->kld = mean_unc(a->sum_kld, a->sum_kld2, a->count);
    o->p_diff = mean_unc(a->sum_p_diff, a->sum_p_diff2, a->count);
    const qp_ppl_est mse = mean_unc(a->sum_p_diff2, a->sum_p_diff4, a->count);
    o->p_diff_rms.val = sqrt(mse.val);
    o->p_diff_rms.unc = o->p_diff_rms.val > 0 ? 0.5 / o->p_diff_rms.val * mse.unc : 0.0;
    if (a->count > 0) {
        const double p = (double)a->n_same_top / (double)a->count;
        o->same_top.val = p;
        o->same_top.unc = a->count > 1 ? sqrt(p * (1 - p) / (double)(a->count - 1)) : 0.0;
    }
    o->max_abs_p_diff = a->max_p_diff;
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static double percentile(const float *v, int64_t n, double fraction)
{
    if (fraction <= 0)
        return v[0];
    if (fraction >= 1)
        return v[n - 1];
    const double p = fraction * (double)(n - 1);
    const int64_t ip = (int64_t)p;
    const double f = p - (double)ip;
    return (1 - f) * v[ip] + f * v[ip + 1 < n ? ip + 1 : n - 1];
}

static void quantiles(float *v, int64_t n, qp_ppl_quantiles *q)
{
    memset(q, 0, sizeof *q);
    if (n <= 0)
        return;
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    q->max = v[n - 1];
    q->min = v[0];
    q->p999 = percentile(v, n, 0.999);
    q->p99 = percentile(v, n, 0.99);
    q->p95 = percentile(v, n, 0.95);
    q->p90 = percentile(v, n, 0.90);
    q->p10 = percentile(v, n, 0.10);
    q->p05 = percentile(v, n, 0.05);
    q->p01 = percentile(v, n, 0.01);
    q->p001 = percentile(v, n, 0.001);
    q->median = n % 2 == 0 ? 0.5 * ((double)v[n / 2] + (double)v[n / 2 - 1]) : v[n / 2];
}

/* ------------------------------------------------------------ scoring */

typedef struct {
    const qp_rt_kernels *k;
    int64_t V, rec_len;
    const float *logits;       /* [n][V] model */
    const float *base_logits;  /* [n][V] live base, or NULL */
    const uint16_t *base_rec;  /* [n][rec_len] base from a file, or NULL */
    uint16_t *save_rec;        /* [n][rec_len] to write, or NULL */
    const int32_t *targets;    /* [n] */
    float *scratch;            /* [n_threads][V] */
    double *nll, *nll_base, *kld;
    float *p_diff;
    uint8_t *same;
} score_ctx;

static int64_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static void score_worker(void *vctx, int64_t begin, int64_t end, int tid)
{
    const score_ctx *c = vctx;
    const int64_t V = c->V;
    float *tmp = c->scratch + (size_t)tid * (size_t)V;
    for (int64_t j = begin; j < end; j++) {
        const float *L = c->logits + j * V;
        const int32_t tgt = c->targets[j];
        const float m = c->k->max(L, V);
        const double log_z = (double)m + log(c->k->sum_exp(L, V, m));
        const double nll = log_z - (double)L[tgt];
        c->nll[j] = nll;
        if (c->save_rec)
            qp_logits_encode(L, V, c->save_rec + j * c->rec_len);
        if (!c->base_logits && !c->base_rec)
            continue;
        double nll_b, kld = 0.0;
        int64_t top_b;
        if (c->base_logits) {
            const float *Lb = c->base_logits + j * V;
            const float mb = c->k->max(Lb, V);
            const double log_zb = (double)mb + log(c->k->sum_exp(Lb, V, mb));
            nll_b = log_zb - (double)Lb[tgt];
            memcpy(tmp, Lb, (size_t)V * sizeof(float));
            c->k->softmax(tmp, V);
            for (int64_t i = 0; i < V; i++)
                kld += (double)tmp[i] * (((double)Lb[i] - log_zb) - ((double)L[i] - log_z));
            top_b = argmax(Lb, V);
        } else {
            qp_logits_decode(c->base_rec + j * c->rec_len, V, tmp);
            nll_b = -(double)tmp[tgt];
            for (int64_t i = 0; i < V; i++)
                if (tmp[i] > -16.0f)
                    kld += (double)expf(tmp[i]) * ((double)tmp[i] - ((double)L[i] - log_z));
            top_b = argmax(tmp, V);
        }
        c->nll_base[j] = nll_b;
        c->kld[j] = kld;
        c->p_diff[j] = (float)(exp(-nll) - exp(-nll_b));
        c->same[j] = argmax(L, V) == top_b;
    }
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ driver */

typedef struct {
    qp_rt_state *s, *sb;
    qp_logits_file *in, *out;
    float *logits, *base_logits, *scratch, *p_diff, *kld_all, *p_diff_all;
    double *nll, *nll_base, *kld;
    uint16_t *base_rec, *save_rec;
    uint8_t *same;
} ppl_bufs;

static void free_bufs(ppl_bufs *b)
{
    qp_rt_state_free(b->s);
    qp_rt_state_free(b->sb);
    qp_logits_file_close(b->in);
    qp_logits_file_close(b->out);
    void *ps[] = {b->logits, b->base_logits, b->scratch, b->p_diff, b->kld_all, b->p_diff_all, b->nll,
                  b->nll_base, b->kld, b->base_rec, b->save_rec, b->same};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        free(ps[i]);
}

static void *alloc_n(int64_t n, size_t elem)
{
    return malloc((size_t)(n > 0 ? n : 1) * elem);
}

/* Per-token KLD as raw f32 (before quantiles() sorts them), through a
 * temp file renamed when complete. */
static qp_status save_token_kld(const char *path, const float *kld, int64_t n, qp_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return qp_err_io(err, tmp, errno, "cannot create");
    int ok = fwrite(kld, sizeof *kld, (size_t)n, f) == (size_t)n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return qp_err_io(err, path, e, "cannot write");
    }
    return QP_OK;
}

qp_status qp_ppl_check_base(const qp_ppl_job *job, qp_err *err)
{
    const int64_t V = qp_rt_model_config(job->model)->n_vocab;
    if (job->base && job->base_logits)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "a live base and a base log-probability file exclude each other");
    if (job->base && qp_rt_model_config(job->base)->n_vocab != V)
        return qp_err_set(err, QP_ERR_BAD_INPUT, qp_rt_model_path(job->base),
                          "vocabulary of %lld tokens differs from the model's %lld",
                          (long long)qp_rt_model_config(job->base)->n_vocab, (long long)V);
    return QP_OK;
}

qp_status qp_ppl_text_chunks(const qp_ppl_job *job, int64_t *n_avail, qp_err *err)
{
    const int64_t n_ctx = job->n_ctx;
    if (n_ctx < 4 || n_ctx > ((int64_t)1 << 24))
        return qp_err_set(err, QP_ERR_USAGE, NULL, "context size %lld out of range", (long long)n_ctx);
    if (job->n_tokens < 2 * n_ctx)
        return qp_err_set(err, QP_ERR_BAD_INPUT, NULL,
                          "the text has %lld tokens; perplexity with a context of %lld needs at least %lld",
                          (long long)job->n_tokens, (long long)n_ctx, (long long)(2 * n_ctx));
    *n_avail = job->n_tokens / n_ctx;
    return QP_OK;
}

qp_status qp_ppl_run(const qp_ppl_job *job, qp_ppl_summary *out, qp_err *err)
{
    if (job->stream && !job->model_logits)
        return qp_ppl_run_stream(job, out, err);
    memset(out, 0, sizeof *out);
    ppl_bufs b;
    memset(&b, 0, sizeof b);
    qp_status st = QP_OK;
    const qp_rt_config *c = qp_rt_model_config(job->model);
    const int64_t V = c->n_vocab;
    const int has_base = job->base != NULL || job->base_logits != NULL;
    const int nt = job->n_threads < 1 ? 1 : job->n_threads;
    const int32_t *tokens = job->tokens;
    int64_t n_ctx = job->n_ctx, n_avail = 0;

    if ((st = qp_ppl_check_base(job, err)) != QP_OK)
        return st;
    if (job->base_logits) {
        if ((st = qp_logits_file_open(job->base_logits, &b.in, err)) != QP_OK)
            return st;
        if (qp_logits_file_n_vocab(b.in) != V) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, job->base_logits,
                            "base log-probabilities have %d tokens, the model %lld",
                            (int)qp_logits_file_n_vocab(b.in), (long long)V);
            goto done;
        }
        n_ctx = qp_logits_file_n_ctx(b.in);
        tokens = qp_logits_file_tokens(b.in);
        n_avail = qp_logits_file_n_chunk(b.in);
    } else if ((st = qp_ppl_text_chunks(job, &n_avail, err)) != QP_OK) {
        return st;
    }
    const int64_t n_chunks = job->max_chunks > 0 && job->max_chunks < n_avail ? job->max_chunks : n_avail;
    const int64_t first = n_ctx / 2, n_sc = qp_logits_scored_per_chunk(n_ctx);
    const int64_t rec_len = qp_logits_record_len(V);
    if (n_chunks <= 0) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, job->base_logits, "no chunks to evaluate");
        goto done;
    }

    if (!job->model_logits && (st = qp_rt_state_new(job->model, n_ctx, 0, nt, &b.s, err)) != QP_OK)
        goto done;
    if (job->base && (st = qp_rt_state_new(job->base, n_ctx, 0, nt, &b.sb, err)) != QP_OK)
        goto done;
    if (job->save_logits &&
        (st = qp_logits_file_create(job->save_logits, (int32_t)n_ctx, (int32_t)V, (int32_t)n_chunks, tokens,
                                    &b.out, err)) != QP_OK)
        goto done;
    b.logits = alloc_n(n_sc * V, sizeof(float));
    b.scratch = alloc_n((int64_t)nt * V, sizeof(float));
    b.nll = alloc_n(n_sc, sizeof(double));
    int ok = b.logits && b.scratch && b.nll;
    if (job->base)
        ok = ok && (b.base_logits = alloc_n(n_sc * V, sizeof(float)));
    if (b.in)
        ok = ok && (b.base_rec = alloc_n(n_sc * rec_len, sizeof(uint16_t)));
    if (b.out)
        ok = ok && (b.save_rec = alloc_n(n_sc * rec_len, sizeof(uint16_t)));
    if (has_base) {
        b.nll_base = alloc_n(n_sc, sizeof(double));
        b.kld = alloc_n(n_sc, sizeof(double));
        b.p_diff = alloc_n(n_sc, sizeof(float));
        b.same = alloc_n(n_sc, 1);
        b.kld_all = alloc_n(n_chunks * n_sc, sizeof(float));
        b.p_diff_all = alloc_n(n_chunks * n_sc, sizeof(float));
        ok = ok && b.nll_base && b.kld && b.p_diff && b.same && b.kld_all && b.p_diff_all;
    }
    if (!ok) {
        st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory for logits of %lld tokens x %lld",
                        (long long)n_sc, (long long)V);
        goto done;
    }

    qp_ppl_acc acc;
    memset(&acc, 0, sizeof acc);
    double t_model = 0.0;
    const uint64_t total_tok = (uint64_t)(n_chunks * n_ctx);
    qp_report(&job->progress, 0, total_tok, NULL);
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        if (qp_cancelled(&job->progress)) {
            st = qp_err_set(err, QP_ERR_INTERRUPTED, NULL, "interrupted after %lld chunks", (long long)ch);
            goto done;
        }
        const int32_t *tok = tokens + ch * n_ctx;
        double t0 = now_seconds();
        if (job->model_logits) {
            if ((st = job->model_logits(job->model_logits_ctx, ch, b.logits, err)) != QP_OK)
                goto done;
        } else {
            qp_rt_state_reset(b.s);
            if ((st = qp_rt_forward(job->model, b.s, tok, n_ctx, first, n_sc, b.logits, err)) != QP_OK)
                goto done;
        }
        if (b.sb) {
            qp_rt_state_reset(b.sb);
            if ((st = qp_rt_forward(job->base, b.sb, tok, n_ctx, first, n_sc, b.base_logits, err)) != QP_OK)
                goto done;
        }
        t_model += now_seconds() - t0;
        if (b.in && (st = qp_logits_file_read_chunk(b.in, b.base_rec, err)) != QP_OK)
            goto done;
        score_ctx sc = {qp_rt_kernels_get(), V, rec_len, b.logits, b.base_logits, b.base_rec, b.save_rec,
                        tok + first + 1, b.scratch, b.nll, b.nll_base, b.kld, b.p_diff, b.same};
        qp_parallel_for(nt, n_sc, score_worker, &sc);
        if (b.out && (st = qp_logits_file_write(b.out, b.save_rec, n_sc, err)) != QP_OK)
            goto done;
        for (int64_t j = 0; j < n_sc; j++) {
            const double v = b.nll[j];
            acc.sum_nll += v;
            acc.sum_nll2 += v * v;
            if (has_base) {
                const double vb = b.nll_base[j], kl = b.kld[j], pd = b.p_diff[j];
                acc.sum_nll_base += vb;
                acc.sum_nll_base2 += vb * vb;
                acc.sum_nll_nll_base += v * vb;
                acc.sum_kld += kl;
                acc.sum_kld2 += kl * kl;
                acc.sum_p_diff += pd;
                acc.sum_p_diff2 += pd * pd;
                acc.sum_p_diff4 += pd * pd * pd * pd;
                if (fabs(pd) > acc.max_p_diff)
                    acc.max_p_diff = fabs(pd);
                acc.n_same_top += b.same[j];
                b.kld_all[acc.count] = (float)kl;
                b.p_diff_all[acc.count] = (float)pd;
            }
            acc.count++;
        }
        qp_ppl_stats running;
        qp_ppl_acc_stats(&acc, has_base, &running);
        running.chunk = ch + 1;
        running.n_chunks = n_chunks;
        if (job->on_chunk)
            job->on_chunk(job->user, &running);
        qp_report(&job->progress, (uint64_t)((ch + 1) * n_ctx), total_tok, NULL);
    }
    if (b.out) {
        st = qp_logits_file_finish(b.out, err);
        b.out = NULL;
        if (st != QP_OK)
            goto done;
    }
    if (has_base && job->save_token_kld && (st = save_token_kld(job->save_token_kld, b.kld_all, acc.count, err)) != QP_OK)
        goto done;
    qp_ppl_acc_stats(&acc, has_base, &out->stats);
    out->stats.chunk = n_chunks;
    out->stats.n_chunks = n_chunks;
    if (has_base) {
        quantiles(b.kld_all, acc.count, &out->kld_q);
        quantiles(b.p_diff_all, acc.count, &out->p_diff_q);
    }
    out->n_ctx = n_ctx;
    out->seconds = t_model;
    out->tokens_per_second = t_model > 0 ? (double)(n_chunks * n_ctx) * (b.sb ? 2.0 : 1.0) / t_model : 0.0;
done:
    free_bufs(&b);
    return st;
}
