/* alloc_plan.c - candidates, errors and the knapsack for a whole plan
 * (see alloc_plan.h). */
#include "convert/alloc_plan.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_threads.h"
#include "convert/qerror.h"
#include "quant/alloc.h"
#include "quant/qtype.h"
#include "quant/recipe.h"

static const uint32_t CANDIDATES[QP_ALLOC_N_TYPES] = {QP_GGML_Q2_K, QP_GGML_Q3_K, QP_GGML_Q4_K,
                                                      QP_GGML_Q5_K, QP_GGML_Q6_K, QP_GGML_Q8_0};

static int is_quantized(uint32_t t)
{
    return t != QP_GGML_F32 && t != QP_GGML_F16 && t != QP_GGML_BF16;
}

typedef struct {
    const qp_alloc_plan_job *job;
    const int64_t *idx;      /* plan index of item k */
    qp_alloc_item *items;
    atomic_int failed;
    atomic_flag err_taken;
    qp_err err;
} err_ctx;

/* Candidate set of plan tensor i: the fallback-adjusted types, deduplicated. */
static void fill_candidates(const qp_plan_tensor *t, qp_alloc_item *it)
{
    it->n_cand = 0;
    for (int c = 0; c < QP_ALLOC_N_TYPES; c++) {
        uint32_t ty = qp_recipe_fallback_type(CANDIDATES[c], t->row_len);
        const qp_qtype *qt = qp_qtype_get(ty);
        int dup = 0;
        for (int d = 0; d < it->n_cand; d++)
            dup |= it->type[d] == ty;
        if (dup || !qt || !qt->quantize_row || !qt->dequantize_row)
            continue;
        it->type[it->n_cand] = ty;
        it->bytes[it->n_cand] = qp_qtype_row_bytes(ty, t->row_len) * (uint64_t)t->n_rows;
        it->n_cand++;
    }
}

static void measure_items(void *ctx, int64_t b0, int64_t b1, int tid)
{
    (void)tid;
    err_ctx *x = ctx;
    const qp_alloc_plan_job *job = x->job;
    qp_err e;
    qp_err_clear(&e);
    for (int64_t k = b0; k < b1 && !atomic_load(&x->failed); k++) {
        const int64_t i = x->idx[k];
        const qp_plan_tensor *t = qp_plan_at(job->plan, i);
        qp_alloc_item *it = &x->items[k];
        double ew_stack[64], *ew = NULL, err[QP_ALLOC_MAX_CAND];
        if (t->n_expert > 1) {
            ew = t->n_expert <= 64 ? ew_stack : malloc((size_t)t->n_expert * sizeof *ew);
            if (!ew) {
                qp_err_set(&e, QP_ERR_NOMEM, NULL, "out of memory");
                goto fail;
            }
            qp_sens_expert_weights(job->sens, t->layer, t->n_expert, ew);
        }
        qp_status s = qp_qerr_tensor(job->plan, i, it->type, it->n_cand, job->importance, job->importance_ctx, ew,
                                     err, &e);
        if (ew != ew_stack)
            free(ew);
        if (s != QP_OK)
            goto fail;
        const double coef = job->sens->coef[qp_sens_find(job->sens, t->name)];
        for (int c = 0; c < it->n_cand; c++)
            it->loss[c] = coef * err[c];
        continue;
    fail:
        if (!atomic_flag_test_and_set(&x->err_taken))
            x->err = e;
        atomic_store(&x->failed, 1);
        return;
    }
}

double qp_alloc_bpw(const qp_alloc_plan *p, uint64_t bytes)
{
    return p->n_elements ? 8.0 * (double)bytes / (double)p->n_elements : 0.0;
}

void qp_alloc_plan_free(qp_alloc_plan *p)
{
    if (!p)
        return;
    free(p->types);
    free(p->loss);
    memset(p, 0, sizeof *p);
}

qp_status qp_alloc_plan_run(const qp_alloc_plan_job *job, qp_alloc_plan *out, qp_err *err)
{
    memset(out, 0, sizeof *out);
    const qp_plan *plan = job->plan;
    const int64_t n = qp_plan_count(plan);
    const size_t m = (size_t)(n ? n : 1);
    out->n = n;
    out->types = malloc(m * sizeof *out->types);
    out->loss = calloc(m, sizeof *out->loss);
    int64_t *idx = malloc(m * sizeof *idx);
    qp_alloc_item *items = calloc(m, sizeof *items);
    int *choice = malloc(m * sizeof *choice);
    err_ctx *x = calloc(1, sizeof *x);
    qp_status s = QP_OK;
    if (!out->types || !out->loss || !idx || !items || !choice || !x) {
        s = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (bit allocation)");
        goto out;
    }
    int64_t n_items = 0;
    for (int64_t i = 0; i < n; i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        out->types[i] = job->types[i];
        out->n_elements += (uint64_t)t->row_len * (uint64_t)t->n_rows;
        if (!is_quantized(job->types[i])) {
            out->fixed_bytes += qp_qtype_row_bytes(job->types[i], t->row_len) * (uint64_t)t->n_rows;
            continue;
        }
        if (qp_sens_find(job->sens, t->name) < 0) {
            s = qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "no sensitivity measured for this tensor (calibrated on "
                           "another model?)");
            qp_err_set_tensor(err, t->name);
            goto out;
        }
        fill_candidates(t, &items[n_items]);
        idx[n_items++] = i;
    }
    x->job = job;
    x->idx = idx;
    x->items = items;
    atomic_init(&x->failed, 0);
    atomic_flag_clear(&x->err_taken);
    qp_parallel_for(job->n_threads > 0 ? job->n_threads : 1, n_items, measure_items, x);
    if (atomic_load(&x->failed)) {
        if (err)
            *err = x->err;
        s = x->err.status;
        goto out;
    }
    uint64_t avail = job->budget > out->fixed_bytes ? job->budget - out->fixed_bytes : 0;
    qp_alloc_result r;
    qp_err e;
    qp_err_clear(&e);
    s = qp_alloc_solve(items, n_items, avail, choice, &r, &e);
    out->min_bytes = out->fixed_bytes + r.min_bytes;
    out->max_bytes = out->fixed_bytes + r.max_bytes;
    if (s == QP_ERR_BAD_INPUT || (s == QP_OK && job->budget < out->fixed_bytes)) {
        s = qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "a budget of %llu tensor bytes (%.3f bpw) is below the smallest "
                       "possible %llu bytes (%.3f bpw, every matrix at its smallest type)",
                       (unsigned long long)job->budget, qp_alloc_bpw(out, job->budget),
                       (unsigned long long)out->min_bytes, qp_alloc_bpw(out, out->min_bytes));
        goto out;
    }
    if (s != QP_OK) {
        if (err)
            *err = e;
        goto out;
    }
    for (int64_t k = 0; k < n_items; k++) {
        out->types[idx[k]] = items[k].type[choice[k]];
        out->loss[idx[k]] = items[k].loss[choice[k]];
    }
    out->bytes = out->fixed_bytes + r.bytes;
    out->loss_total = r.loss;
out:
    free(idx);
    free(items);
    free(choice);
    free(x);
    if (s != QP_OK) {
        /* keep the size range: callers word their errors with it */
        uint64_t lo = out->min_bytes, hi = out->max_bytes;
        qp_alloc_plan_free(out);
        out->min_bytes = lo;
        out->max_bytes = hi;
    }
    return s;
}
