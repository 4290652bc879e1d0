/* calibrate.c - routed and coverage passes of the importance-matrix
 * calibration (see calibrate.h), fed by the forward pass's observer hook. */
#include "runtime-lite/calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/imatrix_ext.h"
#include "runtime-lite/calib_chunks.h"
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
    double *need;           /* [L*NE] soft mass wanted */
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
    const qp_rt_layer *L = ev->weights; /* resident even when streaming */
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

/* Buffers of the coverage pass; x->need is filled by the caller. */
static qp_status coverage_begin(const qp_calib_job *job, calib_ctx *x, qp_calib_result *r, qp_err *err)
{
    const qp_rt_config *c = x->c;
    const int64_t LNE = c->n_layer * c->n_expert, E = c->n_embd, FE = c->n_ff_exp;
    x->mass = r->soft_mass;
    x->flag = r->forced;
    x->need = calloc((size_t)LNE, sizeof *x->need);
    x->soft_x = calloc((size_t)(LNE * E), sizeof *x->soft_x);
    x->soft_h = calloc((size_t)(LNE * FE), sizeof *x->soft_h);
    x->hg = malloc((size_t)(job->n_ctx * FE) * sizeof *x->hg);
    x->hu = malloc((size_t)(job->n_ctx * FE) * sizeof *x->hu);
    if (!x->need || !x->soft_x || !x->soft_h || !x->hg || !x->hu)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (coverage pass)");
    return QP_OK;
}

static void coverage_end(calib_ctx *x)
{
    free(x->need);
    free(x->soft_x);
    free(x->soft_h);
    free(x->hg);
    free(x->hu);
    x->need = NULL;
    x->soft_x = x->soft_h = NULL;
    x->hg = x->hu = NULL;
    x->flag = NULL;
}

/* Blend the soft statistics into the rows of the forced experts. */
static qp_status coverage_blend(calib_ctx *x, qp_calib_result *r, qp_err *err)
{
    const qp_rt_config *c = x->c;
    const int64_t L = c->n_layer, NE = c->n_expert, E = c->n_embd, FE = c->n_ff_exp;
    double *buf = malloc((size_t)(E > FE ? E : FE) * sizeof *buf);
    if (!buf)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (coverage pass)");
    qp_status st = QP_OK;
    static const char *const kinds[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    for (int64_t l = 0; l < L && st == QP_OK; l++)
        for (int64_t e = 0; e < NE && st == QP_OK; e++) {
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
                st = blend_entry(x->m, name, e, soft, x->mass[le], x->need[le], buf, err);
            }
        }
    free(buf);
    return st;
}

static qp_status coverage(const qp_calib_job *job, qp_rt_state *s, calib_ctx *x, qp_calib_result *r,
                          int64_t n_chunks, qp_err *err)
{
    const int64_t LNE = x->c->n_layer * x->c->n_expert;
    qp_status st = coverage_begin(job, x, r, err);
    if (st == QP_OK) {
        for (int64_t i = 0; i < LNE; i++)
            x->need[i] = (double)job->min_expert_tokens - (double)r->routed[i];
        const qp_rt_observer obs = {NULL, on_route_soft, x};
        const qp_calib_cover cover = {x->flag, x->need, x->mass, LNE};
        st = qp_calib_run_chunks(job, s, &obs, n_chunks, "coverage", &x->st, &cover, &r->coverage_chunks, err);
    }
    if (st == QP_OK)
        st = coverage_blend(x, r, err);
    coverage_end(x);
    return st;
}

/* Both passes chunk by chunk with the whole model resident. */
static qp_status calib_in_memory(const qp_calib_job *job, calib_ctx *x, qp_calib_result *r, int64_t n_chunks,
                                 qp_err *err)
{
    const int64_t LNE = r->n_layer * r->n_expert;
    qp_rt_state *s = NULL;
    qp_status st = qp_rt_state_new(job->model, job->n_ctx, 0, job->n_threads, &s, err);
    if (st != QP_OK)
        return st;
    const double t0 = now_s();
    const qp_rt_observer routed_obs = {on_matmul, r->n_expert > 0 ? on_route_count : NULL, x};
    if ((st = qp_calib_run_chunks(job, s, &routed_obs, n_chunks, "routed", &x->st, NULL, &r->n_chunks, err)) != QP_OK)
        goto out;
    const double t1 = now_s();
    r->tokens_per_second = t1 > t0 ? (double)(n_chunks * job->n_ctx) / (t1 - t0) : 0;
    qp_imatrix_set_chunks(r->imatrix, (uint32_t)n_chunks, (uint32_t)job->n_ctx);
    if (job->dataset && (st = qp_imatrix_add_dataset(r->imatrix, job->dataset, err)) != QP_OK)
        goto out;
    for (int64_t i = 0; i < LNE; i++)
        if (r->min_expert_tokens > 0 && r->routed[i] < r->min_expert_tokens) {
            r->forced[i] = 1;
            r->n_forced++;
        }
    if (r->n_forced > 0)
        st = coverage(job, s, x, r, n_chunks, err);
out:
    qp_rt_state_free(s);
    return st;
}

/* The flagged experts of layer l have their soft mass. */
static int layer_coverage_done(const calib_ctx *x, int64_t l)
{
    const int64_t NE = x->c->n_expert;
    for (int64_t le = l * NE; le < (l + 1) * NE; le++)
        if (x->flag[le] && x->mass[le] < x->need[le])
            return 0;
    return 1;
}

/* Layer l's coverage pass over the same inputs (the outputs are not kept).
 * An expert adds whole chunks until its mass suffices, as in memory, so
 * stopping per layer instead of globally changes nothing. */
static qp_status layer_coverage(const qp_calib_job *job, qp_rt_stream *eng, calib_ctx *x, qp_calib_result *r,
                                int64_t l, int64_t n_chunks, qp_err *err)
{
    const qp_rt_observer soft_obs = {NULL, on_route_soft, x};
    qp_rt_stream_set_observer(eng, &soft_obs);
    for (int64_t k = 0; k < n_chunks; k++) {
        if (qp_cancelled(&job->progress))
            return qp_err_set(err, QP_ERR_INTERRUPTED, NULL, "interrupted");
        qp_status st = qp_rt_stream_layer_chunk(eng, k, 0, err);
        if (st == QP_OK)
            st = x->st;
        if (st != QP_OK)
            return st;
        if (layer_coverage_done(x, l)) {
            if (k + 1 > r->coverage_chunks)
                r->coverage_chunks = k + 1;
            return QP_OK;
        }
    }
    r->coverage_chunks = n_chunks;
    return QP_OK;
}

/* Layer by layer with one layer resident (job->stream): every chunk's
 * routed events, then the layer's routed counts are final, its experts
 * under the threshold are flagged and its coverage pass runs. Every entry
 * gets its contributions in the same chunk order as in memory. */
static qp_status calib_streamed(const qp_calib_job *job, calib_ctx *x, qp_calib_result *r, int64_t n_chunks,
                                qp_err *err)
{
    const int64_t NE = r->n_expert, n_layer = r->n_layer, per_layer = n_chunks * job->n_ctx;
    const qp_rt_observer routed_obs = {on_matmul, NE > 0 ? on_route_count : NULL, x};
    qp_rt_stream *eng = NULL;
    int cov = 0; /* coverage buffers allocated */
    double t_routed = 0;
    qp_status st = qp_rt_stream_new(job->model, job->tokens, n_chunks, job->n_ctx, x->n_threads, job->stream,
                                    &eng, err);
    if (st == QP_OK)
        st = qp_rt_stream_embed(eng, err);
    for (int64_t l = 0; l < n_layer && st == QP_OK; l++) {
        char what[64];
        snprintf(what, sizeof what, "stream layer %lld/%lld", (long long)(l + 1), (long long)n_layer);
        if ((st = qp_rt_stream_layer_begin(eng, l, err)) != QP_OK)
            break;
        qp_rt_stream_set_observer(eng, &routed_obs);
        const double t0 = now_s();
        for (int64_t k = 0; k < n_chunks && st == QP_OK; k++) {
            if (qp_cancelled(&job->progress)) {
                st = qp_err_set(err, QP_ERR_INTERRUPTED, NULL, "interrupted");
                break;
            }
            if ((st = qp_rt_stream_layer_chunk(eng, k, 1, err)) == QP_OK)
                st = x->st;
            qp_report(&job->progress, (uint64_t)((l * per_layer + (k + 1) * job->n_ctx) / n_layer),
                      (uint64_t)per_layer, what);
        }
        t_routed += now_s() - t0;
        int64_t n_flag = 0;
        for (int64_t e = 0; e < NE && st == QP_OK; e++)
            n_flag += r->min_expert_tokens > 0 && r->routed[l * NE + e] < r->min_expert_tokens;
        if (st == QP_OK && n_flag > 0) {
            if (!cov) {
                cov = 1;
                st = coverage_begin(job, x, r, err);
            }
            for (int64_t e = 0; e < NE && st == QP_OK; e++) {
                const int64_t le = l * NE + e;
                x->need[le] = (double)r->min_expert_tokens - (double)r->routed[le];
                if (r->routed[le] < r->min_expert_tokens) {
                    r->forced[le] = 1;
                    r->n_forced++;
                }
            }
            if (st == QP_OK)
                st = layer_coverage(job, eng, x, r, l, n_chunks, err);
        }
        if (st == QP_OK)
            st = qp_rt_stream_layer_end(eng, err);
    }
    if (st == QP_OK) {
        r->n_chunks = n_chunks;
        r->tokens_per_second = t_routed > 0 ? (double)per_layer / t_routed : 0;
        qp_imatrix_set_chunks(r->imatrix, (uint32_t)n_chunks, (uint32_t)job->n_ctx);
        if (job->dataset)
            st = qp_imatrix_add_dataset(r->imatrix, job->dataset, err);
    }
    if (st == QP_OK && r->n_forced > 0)
        st = coverage_blend(x, r, err);
    if (cov)
        coverage_end(x);
    if (eng && job->stream_stats)
        qp_rt_stream_stats_get(eng, job->stream_stats);
    qp_rt_stream_free(eng);
    return st;
}

qp_status qp_calib_run(const qp_calib_job *job, qp_calib_result *out, qp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!job || !job->model || (job->n_tokens > 0 && !job->tokens) || job->n_ctx < 1)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_calib_run: bad arguments");
    const qp_rt_config *c = qp_rt_model_config(job->model);
    int64_t n_chunks;
    qp_status st = qp_calib_chunk_count(job, &n_chunks, err);
    if (st != QP_OK)
        return st;
    const int64_t NE = c->is_moe ? c->n_expert : 0, LNE = c->n_layer * NE;
    qp_calib_result *r = out;
    r->n_layer = c->n_layer;
    r->n_expert = NE;
    r->n_expert_used = c->is_moe ? c->n_expert_used : 0;
    r->min_expert_tokens = job->min_expert_tokens > 0 ? job->min_expert_tokens : 0;
    r->n_ctx = job->n_ctx;
    r->imatrix = qp_imatrix_new();
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
    calib_ctx x = {.m = r->imatrix,
                   .c = c,
                   .w = qp_rt_model_weights(job->model),
                   .n_threads = job->n_threads < 1 ? 1 : job->n_threads,
                   .st = QP_OK,
                   .err = err,
                   .routed = r->routed};
    const double t0 = now_s();
    st = job->stream ? calib_streamed(job, &x, r, n_chunks, err) : calib_in_memory(job, &x, r, n_chunks, err);
    if (st != QP_OK)
        goto fail;
    for (int64_t i = 0; i < LNE; i++) {
        char name[96];
        snprintf(name, sizeof name, "blk.%lld.ffn_down_exps.weight", (long long)(i / NE));
        int64_t entry = qp_imatrix_find(r->imatrix, name);
        r->counts[i] = entry >= 0 ? qp_imatrix_rows(r->imatrix, entry, i % NE) : 0;
    }
    r->seconds = now_s() - t0;
    return QP_OK;
nomem:
    st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (calibration)");
fail:
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
    return qp_calib_write_ex(r, path, NULL, NULL, err);
}

typedef struct {
    const qp_calib_result *r;
    qp_imatrix_kv_fn more;
    void *more_user;
} keys_ex;

static qp_status write_keys_ex(void *user, qp_gguf_writer *w, qp_err *err)
{
    const keys_ex *k = user;
    qp_status st = write_keys((void *)k->r, w, err);
    if (st == QP_OK && k->more)
        st = k->more(k->more_user, w, err);
    return st;
}

qp_status qp_calib_write_ex(const qp_calib_result *r, const char *path, qp_imatrix_kv_fn more, void *more_user,
                            qp_err *err)
{
    if (!r || !r->imatrix || !path)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_calib_write: bad arguments");
    keys_ex k = {r, more, more_user};
    return qp_imatrix_write_kv(r->imatrix, path, write_keys_ex, &k, err);
}
