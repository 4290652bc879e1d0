/* tensor_error.c - error statistics between source and dequantized rows. */
#include "verify/tensor_error.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_checked.h"
#include "common/qp_ggml_types.h"
#include "common/qp_threads.h"
#include "quant/qtype.h"

void qp_terr_acc_init(qp_terr_acc *a)
{
    memset(a, 0, sizeof *a);
}

void qp_terr_acc_rows(qp_terr_acc *a, const float *src, const float *deq, int64_t n_rows,
                      int64_t row_len, const float *imp)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const float *s = src + r * row_len, *q = deq + r * row_len;
        /* Row sums first, then into the tensor sums: keeps the rounding of
         * one row independent of how many rows came before it. */
        double ss = 0, qq = 0, sq = 0, ee = 0, wee = 0, wss = 0, mx = a->max_abs_err;
        int64_t n = 0, bad = 0, nw = 0;
        for (int64_t j = 0; j < row_len; j++) {
            double sv = s[j], qv = q[j];
            if (!isfinite(sv) || !isfinite(qv)) {
                bad++;
                continue;
            }
            double e = qv - sv;
            ss += sv * sv;
            qq += qv * qv;
            sq += sv * qv;
            ee += e * e;
            if (fabs(e) > mx)
                mx = fabs(e);
            if (imp) {
                double w = imp[j];
                if (isfinite(w) && w >= 0) {
                    wee += w * e * e;
                    wss += w * sv * sv;
                    nw++;
                }
            }
            n++;
        }
        a->n += n;
        a->nonfinite += bad;
        a->sum_src2 += ss;
        a->sum_deq2 += qq;
        a->sum_dot += sq;
        a->sum_err2 += ee;
        a->max_abs_err = mx;
        a->n_weighted += nw;
        a->w_sum_err2 += wee;
        a->w_sum_src2 += wss;
    }
}

void qp_terr_acc_merge(qp_terr_acc *into, const qp_terr_acc *b)
{
    into->n += b->n;
    into->nonfinite += b->nonfinite;
    into->sum_src2 += b->sum_src2;
    into->sum_deq2 += b->sum_deq2;
    into->sum_dot += b->sum_dot;
    into->sum_err2 += b->sum_err2;
    if (b->max_abs_err > into->max_abs_err)
        into->max_abs_err = b->max_abs_err;
    into->n_weighted += b->n_weighted;
    into->w_sum_err2 += b->w_sum_err2;
    into->w_sum_src2 += b->w_sum_src2;
}

/* num/den where 0/0 is a perfect match (0) and x/0 is unbounded. */
static double ratio(double num, double den)
{
    if (den > 0)
        return num / den;
    return num > 0 ? INFINITY : 0.0;
}

void qp_terr_finish(const qp_terr_acc *a, qp_terr *o)
{
    memset(o, 0, sizeof *o);
    o->n = a->n;
    o->nonfinite = a->nonfinite;
    o->rmse = a->n ? sqrt(a->sum_err2 / (double)a->n) : 0.0;
    o->rel_rmse = sqrt(ratio(a->sum_err2, a->sum_src2));
    o->max_abs_err = a->max_abs_err;
    if (a->sum_src2 > 0 && a->sum_deq2 > 0)
        o->cosine = a->sum_dot / sqrt(a->sum_src2 * a->sum_deq2);
    else
        o->cosine = (a->sum_src2 == 0 && a->sum_deq2 == 0) ? 1.0 : 0.0;
    if (o->cosine > 1.0) /* rounding of identical rows */
        o->cosine = 1.0;
    if (a->sum_err2 > 0)
        o->snr_db = a->sum_src2 > 0 ? 10.0 * log10(a->sum_src2 / a->sum_err2) : -INFINITY;
    else
        o->snr_db = INFINITY;
    o->n_weighted = a->n_weighted;
    o->has_weighted = a->n_weighted > 0;
    o->weighted_rel_rmse = o->has_weighted ? sqrt(ratio(a->w_sum_err2, a->w_sum_src2)) : 0.0;
}

/* ------------------------------------------------------------ streaming */

typedef struct {
    const qp_terr_job *job;
    const qp_qtype *qt;
    uint64_t row_bytes;
    int64_t rows_per_group, block_rows, blocks_per_group;
    qp_terr_acc *acc;        /* one per block */
    qp_err *errs;            /* one per thread */
    int64_t *err_block;      /* block index of errs[tid], -1 if none */
    atomic_int stop;
} run_ctx;

static void run_blocks(void *vctx, int64_t begin, int64_t end, int tid)
{
    run_ctx *c = vctx;
    const qp_terr_job *j = c->job;
    size_t n = (size_t)(c->block_rows * j->row_len);
    float *src = malloc(n * sizeof *src), *deq = malloc(n * sizeof *deq);
    for (int64_t b = begin; b < end; b++) {
        if (atomic_load(&c->stop))
            break;
        qp_status s = QP_OK;
        qp_err *e = &c->errs[tid];
        if (!src || !deq) {
            s = qp_err_set(e, QP_ERR_NOMEM, NULL, "out of memory comparing rows");
        } else if (qp_cancelled(j->progress)) {
            s = qp_err_set(e, QP_ERR_INTERRUPTED, NULL, "interrupted");
        } else {
            int64_t g = b / c->blocks_per_group, k = b % c->blocks_per_group;
            int64_t r0 = g * c->rows_per_group + k * c->block_rows;
            int64_t nr = c->rows_per_group - k * c->block_rows;
            if (nr > c->block_rows)
                nr = c->block_rows;
            s = j->source(j->source_ctx, r0, nr, src, e);
            if (s == QP_OK) {
                const uint8_t *q = (const uint8_t *)j->qdata + (uint64_t)r0 * c->row_bytes;
                for (int64_t r = 0; r < nr; r++)
                    c->qt->dequantize_row(q + (uint64_t)r * c->row_bytes, deq + r * j->row_len, j->row_len);
                const float *imp = j->imp ? j->imp[g] : NULL;
                qp_terr_acc_rows(&c->acc[b], src, deq, nr, j->row_len, imp);
            }
        }
        if (s != QP_OK) {
            c->err_block[tid] = b;
            atomic_store(&c->stop, 1);
            break;
        }
    }
    free(src);
    free(deq);
}

qp_status qp_terr_compute(const qp_terr_job *j, qp_terr *total, qp_terr *per_group, qp_err *err)
{
    const char *name = j->name ? j->name : "tensor";
    const qp_qtype *qt = qp_qtype_get(j->qtype);
    if (!qt || !qt->dequantize_row)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, NULL, "%s: cannot dequantize type %s", name,
                          qp_ggml_type_name(j->qtype));
    int64_t groups = j->n_groups > 1 ? j->n_groups : 1;
    if (j->row_len <= 0 || j->n_rows <= 0 || j->n_rows % groups != 0 || !j->source)
        return qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "%s: bad shape (%lld rows of %lld in %lld groups)",
                          name, (long long)j->n_rows, (long long)j->row_len, (long long)groups);
    uint64_t rb = qp_qtype_row_bytes(j->qtype, j->row_len), need;
    if (rb == 0 || !qp_mul_u64(rb, (uint64_t)j->n_rows, &need) || need > j->qbytes)
        return qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "%s: %lld rows of %lld %s elements do not fit %llu bytes",
                          name, (long long)j->n_rows, (long long)j->row_len, qp_ggml_type_name(j->qtype),
                          (unsigned long long)j->qbytes);
    run_ctx c = {.job = j, .qt = qt, .row_bytes = rb};
    c.rows_per_group = j->n_rows / groups;
    /* ~64K elements per block: big enough to amortize the source reads,
     * small enough to keep two buffers per thread in cache. */
    c.block_rows = 65536 / j->row_len;
    if (c.block_rows < 1)
        c.block_rows = 1;
    if (c.block_rows > c.rows_per_group)
        c.block_rows = c.rows_per_group;
    c.blocks_per_group = (c.rows_per_group + c.block_rows - 1) / c.block_rows;
    int64_t nb = groups * c.blocks_per_group;
    int nt = j->n_threads > 1 ? j->n_threads : 1;
    if (nt > nb)
        nt = (int)nb;
    c.acc = calloc((size_t)nb, sizeof *c.acc);
    c.errs = calloc((size_t)nt, sizeof *c.errs);
    c.err_block = malloc((size_t)nt * sizeof *c.err_block);
    qp_status s = QP_OK;
    if (!c.acc || !c.errs || !c.err_block) {
        s = qp_err_set(err, QP_ERR_NOMEM, NULL, "%s: out of memory", name);
        goto done;
    }
    for (int t = 0; t < nt; t++)
        c.err_block[t] = -1;
    atomic_init(&c.stop, 0);
    qp_parallel_for(nt, nb, run_blocks, &c);
    /* Report the failure of the lowest block, whatever thread saw it. */
    int worst = -1;
    for (int t = 0; t < nt; t++)
        if (c.err_block[t] >= 0 && (worst < 0 || c.err_block[t] < c.err_block[worst]))
            worst = t;
    if (worst >= 0) {
        s = c.errs[worst].status ? c.errs[worst].status : QP_ERR_INTERNAL;
        if (err)
            *err = c.errs[worst];
        qp_err_set_tensor(err, name);
        goto done;
    }
    qp_terr_acc all;
    qp_terr_acc_init(&all);
    for (int64_t g = 0; g < groups; g++) {
        qp_terr_acc ga;
        qp_terr_acc_init(&ga);
        for (int64_t k = 0; k < c.blocks_per_group; k++)
            qp_terr_acc_merge(&ga, &c.acc[g * c.blocks_per_group + k]);
        if (per_group)
            qp_terr_finish(&ga, &per_group[g]);
        qp_terr_acc_merge(&all, &ga);
    }
    if (total)
        qp_terr_finish(&all, total);
    if (j->acc_out)
        *j->acc_out = all;
done:
    free(c.acc);
    free(c.errs);
    free(c.err_block);
    return s;
}
