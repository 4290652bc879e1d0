/* matmul.c - typed weight x batched activation products (see matmul.h). */
#include "runtime-lite/matmul.h"

#include <stdlib.h>
#include <string.h>

#include "common/qp_cpu.h"
#include "common/qp_half.h"
#include "common/qp_threads.h"
#include "quant/qtype.h"

typedef enum { MM_FLOAT, MM_VECDOT, MM_DEQUANT } mm_kind;

typedef struct {
    const qp_rt_mm_job *job;
    mm_kind kind;
    const qp_qtype *qt;   /* weight kernels (vec_dot, dequantize_row) */
    const float *x;       /* the job's first activation row */
    int64_t n_tok;        /* its rows */
    const uint8_t *xq;    /* MM_VECDOT: the job's activations in vec_dot_type */
    uint64_t xq_row_bytes;
    int64_t first_item;   /* global index of this job's first panel */
    int64_t n_items;
} mm_plan;

typedef struct {
    mm_plan *plans;
    int n_jobs;
    int64_t ldx, K;
    qp_rt_tile_fn tile;
    qp_rt_pack_fn pack;
    float *scratch;       /* per thread: panel [16*K] + rows [16*K] */
    size_t scratch_floats;
    const int64_t *cut;   /* thread i runs items cut[i] .. cut[i+1]-1 */
} mm_ctx;

static int is_float_type(uint32_t t)
{
    return t == QP_GGML_F32 || t == QP_GGML_F16 || t == QP_GGML_BF16;
}

int qp_rt_type_supported(uint32_t type)
{
    if (is_float_type(type))
        return 1;
    const qp_qtype *qt = qp_qtype_get(type);
    return qt && qt->dequantize_row && qt->block_elems > 0;
}

void qp_rt_rows_to_f32(const qp_rt_tensor *w, int64_t row0, int64_t n, float *dst)
{
    const int64_t K = w->row_len;
    for (int64_t r = 0; r < n; r++) {
        const uint8_t *src = (const uint8_t *)w->data + (uint64_t)(row0 + r) * w->row_bytes;
        float *d = dst + r * K;
        switch (w->type) {
        case QP_GGML_F32:
            memcpy(d, src, (size_t)K * sizeof(float));
            break;
        case QP_GGML_F16:
            for (int64_t k = 0; k < K; k++) {
                uint16_t h;
                memcpy(&h, src + 2 * k, 2);
                d[k] = qp_f16_to_f32(h);
            }
            break;
        case QP_GGML_BF16:
            for (int64_t k = 0; k < K; k++) {
                uint16_t h;
                memcpy(&h, src + 2 * k, 2);
                d[k] = qp_bf16_to_f32(h);
            }
            break;
        default: {
            const qp_qtype *qt = qp_qtype_get(w->type);
            if (qt && qt->dequantize_row)
                qt->dequantize_row(src, d, K);
            else
                memset(d, 0, (size_t)K * sizeof(float)); /* unreachable: checked at load */
        }
        }
    }
}

/* ------------------------------------------------------------ scalar twins */

void qp_rt_tile_scalar(int m, int64_t K, const float *x, int64_t ldx, const float *panel, int64_t ldp, float *y,
                       int64_t ldy)
{
    float acc[QP_RT_TILE_M][QP_RT_TILE_N];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < K; k++) {
        const float *p = panel + k * ldp;
        for (int i = 0; i < m; i++) {
            const float a = x[i * ldx + k];
            for (int j = 0; j < QP_RT_TILE_N; j++)
                acc[i][j] += a * p[j];
        }
    }
    for (int i = 0; i < m; i++)
        memcpy(y + i * ldy, acc[i], sizeof acc[i]);
}

void qp_rt_pack_scalar(uint32_t type, const void *rows, uint64_t row_bytes, int n_rows, int64_t K, float *panel)
{
    for (int r = 0; r < QP_RT_TILE_N; r++) {
        if (r >= n_rows) {
            for (int64_t k = 0; k < K; k++)
                panel[k * QP_RT_TILE_N + r] = 0.0f;
            continue;
        }
        const uint8_t *src = (const uint8_t *)rows + (uint64_t)r * row_bytes;
        for (int64_t k = 0; k < K; k++) {
            float v;
            if (type == QP_GGML_F32) {
                memcpy(&v, src + 4 * k, 4);
            } else {
                uint16_t h;
                memcpy(&h, src + 2 * k, 2);
                v = type == QP_GGML_BF16 ? qp_bf16_to_f32(h) : qp_f16_to_f32(h);
            }
            panel[k * QP_RT_TILE_N + r] = v;
        }
    }
}

/* ------------------------------------------------------------ workers */

/* All tiles of one packed panel: rows r0..r0+nr of the job's output. */
static void run_panel(const mm_ctx *c, const mm_plan *pl, const float *panel, int64_t r0, int nr)
{
    const qp_rt_mm_job *job = pl->job;
    float tmp[QP_RT_TILE_M * QP_RT_TILE_N];
    for (int64_t t0 = 0; t0 < pl->n_tok; t0 += QP_RT_TILE_M) {
        const int m = pl->n_tok - t0 < QP_RT_TILE_M ? (int)(pl->n_tok - t0) : QP_RT_TILE_M;
        const float *xs = pl->x + t0 * c->ldx;
        float *y = job->y + t0 * job->ldy + r0;
        if (nr == QP_RT_TILE_N) {
            c->tile(m, c->K, xs, c->ldx, panel, QP_RT_TILE_N, y, job->ldy);
        } else {
            c->tile(m, c->K, xs, c->ldx, panel, QP_RT_TILE_N, tmp, QP_RT_TILE_N);
            for (int i = 0; i < m; i++)
                memcpy(y + i * job->ldy, tmp + i * QP_RT_TILE_N, (size_t)nr * sizeof(float));
        }
    }
}

static void run_vecdot(const mm_ctx *c, const mm_plan *pl, int64_t r0, int nr)
{
    const qp_rt_mm_job *job = pl->job;
    const qp_rt_tensor *w = job->w;
    const uint8_t *wrows = (const uint8_t *)w->data + (uint64_t)(job->row0 + r0) * w->row_bytes;
    int64_t t = 0;
    /* Four tokens per weight row where the type has a 4-row kernel: each
     * result is bit-identical to vec_dot, so batching never changes it. */
    if (pl->qt->vec_dot_x4)
        for (; t + 4 <= pl->n_tok; t += 4) {
            const uint8_t *xq = pl->xq + (uint64_t)t * pl->xq_row_bytes;
            for (int r = 0; r < nr; r++) {
                float o[4];
                pl->qt->vec_dot_x4(c->K, wrows + (uint64_t)r * w->row_bytes, xq, pl->xq_row_bytes, o);
                for (int i = 0; i < 4; i++)
                    job->y[(t + i) * job->ldy + r0 + r] = o[i];
            }
        }
    for (; t < pl->n_tok; t++) {
        const uint8_t *xq = pl->xq + (uint64_t)t * pl->xq_row_bytes;
        float *y = job->y + t * job->ldy + r0;
        for (int r = 0; r < nr; r++)
            y[r] = pl->qt->vec_dot(c->K, wrows + (uint64_t)r * w->row_bytes, xq);
    }
}

static void mm_worker(void *vctx, int64_t begin, int64_t end, int tid)
{
    const mm_ctx *c = vctx;
    float *panel = c->scratch + (size_t)tid * c->scratch_floats;
    float *rowbuf = panel + (size_t)QP_RT_TILE_N * (size_t)c->K;
    int j = 0;
    for (int64_t item = c->cut[begin]; item < c->cut[end]; item++) {
        while (item >= c->plans[j].first_item + c->plans[j].n_items)
            j++;
        const mm_plan *pl = &c->plans[j];
        const qp_rt_mm_job *job = pl->job;
        const qp_rt_tensor *w = job->w;
        const int64_t r0 = (item - pl->first_item) * QP_RT_TILE_N;
        const int nr = (int)(job->n_out - r0 < QP_RT_TILE_N ? job->n_out - r0 : QP_RT_TILE_N);
        const uint8_t *rows = (const uint8_t *)w->data + (uint64_t)(job->row0 + r0) * w->row_bytes;
        switch (pl->kind) {
        case MM_FLOAT:
            if (w->packed && (job->row0 + r0) % QP_RT_TILE_N == 0) {
                run_panel(c, pl, w->packed + (size_t)((job->row0 + r0) / QP_RT_TILE_N) * QP_RT_TILE_N * (size_t)c->K,
                          r0, nr);
                break;
            }
            c->pack(w->type, rows, w->row_bytes, nr, c->K, panel);
            run_panel(c, pl, panel, r0, nr);
            break;
        case MM_DEQUANT:
            for (int r = 0; r < nr; r++)
                pl->qt->dequantize_row(rows + (uint64_t)r * w->row_bytes, rowbuf + (size_t)r * (size_t)c->K, c->K);
            c->pack(QP_GGML_F32, rowbuf, (uint64_t)c->K * sizeof(float), nr, c->K, panel);
            run_panel(c, pl, panel, r0, nr);
            break;
        case MM_VECDOT:
            run_vecdot(c, pl, r0, nr);
            break;
        }
    }
}

typedef struct {
    const qp_qtype *qt;
    const float *x;
    int64_t ldx, K;
    uint8_t *dst;
    uint64_t row_bytes;
} quant_ctx;

static void quant_worker(void *vctx, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const quant_ctx *q = vctx;
    for (int64_t t = begin; t < end; t++)
        q->qt->quantize_row(q->x + t * q->ldx, q->dst + (uint64_t)t * q->row_bytes, q->K, NULL);
}

/* Activation buffers, one per distinct vec_dot_type among the jobs. */
#define MM_MAX_ACT 8

typedef struct {
    uint32_t type;
    uint8_t *buf;        /* all n_tok rows of the call, quantized */
    uint64_t row_bytes;
} act_buf;

/* The call's rows in `type` (quantized once, shared by the jobs). */
static qp_status activations(act_buf *act, int *n_act, uint32_t type, const float *x, int64_t ldx, int64_t K,
                             int64_t n_tok, int n_threads, const char *tensor, act_buf **out, qp_err *err)
{
    for (int a = 0; a < *n_act; a++)
        if (act[a].type == type) {
            *out = &act[a];
            return QP_OK;
        }
    if (*n_act == MM_MAX_ACT)
        return qp_err_set(err, QP_ERR_INTERNAL, NULL, "too many activation types in one matmul");
    const qp_qtype *aq = qp_qtype_get(type);
    const uint64_t rb = qp_qtype_row_bytes(type, K);
    if (!aq || !aq->quantize_row || rb == 0)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, NULL, "tensor %s: row of %lld cannot be quantized to %s",
                          tensor, (long long)K, qp_ggml_type_name(type));
    act_buf *b = &act[*n_act];
    b->type = type;
    b->row_bytes = rb;
    b->buf = malloc((size_t)(rb * (uint64_t)n_tok));
    if (!b->buf)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (activations)");
    (*n_act)++;
    quant_ctx q = {aq, x, ldx, K, b->buf, rb};
    qp_parallel_for(n_threads, n_tok, quant_worker, &q);
    *out = b;
    return QP_OK;
}

/* Decide how each job runs and where its activations come from. */
static qp_status plan_job(const qp_rt_mm_job *job, int j, mm_plan *pl, const float *x, int64_t ldx, int64_t K,
                          int64_t n_tok, int n_threads, act_buf *act, int *n_act, qp_err *err)
{
    const qp_rt_tensor *w = job->w;
    pl->job = job;
    pl->n_tok = job->n_tok > 0 ? job->n_tok : n_tok;
    const int64_t x0 = job->n_tok > 0 ? job->x_row0 : 0;
    if (!w->data || w->row_len != K || job->row0 < 0 || job->n_out < 0 || job->row0 + job->n_out > w->n_rows ||
        job->ldy < job->n_out || job->n_tok < 0 || x0 < 0 || x0 + pl->n_tok > n_tok || (job->n_tok == 0 && job->x_row0 != 0))
        return qp_err_set(err, QP_ERR_INTERNAL, NULL, "matmul job %d does not fit tensor %s", j, w->name);
    pl->x = x + x0 * ldx;
    pl->n_items = (job->n_out + QP_RT_TILE_N - 1) / QP_RT_TILE_N;
    if (is_float_type(w->type)) {
        pl->kind = MM_FLOAT;
        return QP_OK;
    }
    pl->qt = qp_qtype_get(w->type);
    if (!pl->qt || !pl->qt->dequantize_row)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, NULL, "tensor %s: type %s cannot be multiplied", w->name,
                          qp_ggml_type_name(w->type));
    const qp_qtype *vq = pl->qt->vec_dot ? qp_qtype_get(pl->qt->vec_dot_type) : NULL;
    if (!pl->qt->vec_dot || (pl->qt->vec_dot_type != QP_GGML_F32 && (!vq || !vq->quantize_row))) {
        pl->kind = MM_DEQUANT;
        return QP_OK;
    }
    pl->kind = MM_VECDOT;
    if (pl->qt->vec_dot_type == QP_GGML_F32 && ldx == K) {
        pl->xq = (const uint8_t *)pl->x;
        pl->xq_row_bytes = (uint64_t)K * sizeof(float);
        return QP_OK;
    }
    act_buf *b = NULL;
    qp_status st = activations(act, n_act, pl->qt->vec_dot_type, x, ldx, K, n_tok, n_threads, w->name, &b, err);
    if (st != QP_OK)
        return st;
    pl->xq = b->buf + (uint64_t)x0 * b->row_bytes;
    pl->xq_row_bytes = b->row_bytes;
    return QP_OK;
}

qp_status qp_rt_matmul(const qp_rt_mm_job *jobs, int n_jobs, const float *x, int64_t ldx,
                       int64_t n_tok, int n_threads, qp_err *err)
{
    return qp_rt_matmul_sel(jobs, n_jobs, x, ldx, n_tok, n_threads, qp_cpu_get().avx2, err);
}

qp_status qp_rt_matmul_sel(const qp_rt_mm_job *jobs, int n_jobs, const float *x, int64_t ldx,
                           int64_t n_tok, int n_threads, int avx2, qp_err *err)
{
    if (n_jobs <= 0 || n_tok <= 0)
        return QP_OK;
    const int64_t K = jobs[0].w->row_len;
    mm_plan *plans = calloc((size_t)n_jobs, sizeof *plans);
    if (!plans)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (matmul plan)");
    act_buf act[MM_MAX_ACT];
    int n_act = 0, need_float = 0;
    int64_t items = 0;
    qp_status st = QP_OK;
    for (int j = 0; j < n_jobs && st == QP_OK; j++) {
        st = plan_job(&jobs[j], j, &plans[j], x, ldx, K, n_tok, n_threads, act, &n_act, err);
        plans[j].first_item = items;
        items += plans[j].n_items;
        if (st == QP_OK && plans[j].kind != MM_VECDOT)
            need_float = 1;
    }
    mm_ctx c;
    memset(&c, 0, sizeof c);
    if (st == QP_OK && items > 0) {
        int nt = n_threads < 1 ? 1 : n_threads;
        if (nt > items)
            nt = (int)items;
        c.plans = plans;
        c.n_jobs = n_jobs;
        c.ldx = ldx;
        c.K = K;
        c.tile = avx2 ? qp_rt_tile_avx2 : qp_rt_tile_scalar;
        c.pack = avx2 ? qp_rt_pack_avx2 : qp_rt_pack_scalar;
        if (need_float) {
            /* panel (16*K) + dequantized rows (16*K), rounded to 32 bytes */
            c.scratch_floats = ((size_t)32 * (size_t)K + 7) & ~(size_t)7;
            c.scratch = aligned_alloc(32, c.scratch_floats * sizeof(float) * (size_t)nt);
            if (!c.scratch)
                st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (matmul scratch)");
        }
        /* Split the panels by work (tokens each one multiplies, plus its
         * packing), not by count: experts see very different numbers of
         * tokens. The split depends only on the shapes, and no output
         * depends on it. */
        int64_t cut[65];
        if (nt > 64)
            nt = 64;
        if (st == QP_OK) {
            int64_t total = 0, acc = 0, item = 0;
            int i = 1;
            for (int j = 0; j < n_jobs; j++)
                total += plans[j].n_items * (plans[j].n_tok + 4);
            cut[0] = 0;
            for (int j = 0; j < n_jobs; j++)
                for (int64_t p = 0; p < plans[j].n_items; p++, item++) {
                    while (i < nt && acc >= total * i / nt)
                        cut[i++] = item;
                    acc += plans[j].n_tok + 4;
                }
            while (i <= nt)
                cut[i++] = items;
            c.cut = cut;
            qp_parallel_for(nt, nt, mm_worker, &c);
        }
    }
    free(c.scratch);
    for (int a = 0; a < n_act; a++)
        free(act[a].buf);
    free(plans);
    return st;
}
