/* alloc.c - exact multiple-choice knapsack on coarse byte units (alloc.h). */
#include "quant/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int item_ok(const qp_alloc_item *it)
{
    if (it->n_cand < 1 || it->n_cand > QP_ALLOC_MAX_CAND)
        return 0;
    for (int c = 0; c < it->n_cand; c++)
        if (!isfinite(it->loss[c]) || it->loss[c] < 0)
            return 0;
    return 1;
}

static void item_range(const qp_alloc_item *it, uint64_t *lo, uint64_t *hi)
{
    *lo = *hi = it->bytes[0];
    for (int c = 1; c < it->n_cand; c++) {
        if (it->bytes[c] < *lo)
            *lo = it->bytes[c];
        if (it->bytes[c] > *hi)
            *hi = it->bytes[c];
    }
}

qp_status qp_alloc_solve(const qp_alloc_item *items, int64_t n, uint64_t budget, int *choice, qp_alloc_result *res,
                         qp_err *err)
{
    memset(res, 0, sizeof *res);
    if (n < 0 || (n > 0 && (!items || !choice)))
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_alloc_solve: bad arguments");
    for (int64_t k = 0; k < n; k++) {
        if (!item_ok(&items[k]))
            return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_alloc_solve: item %lld has no valid candidates",
                              (long long)k);
        uint64_t lo, hi;
        item_range(&items[k], &lo, &hi);
        res->min_bytes += lo;
        res->max_bytes += hi;
    }
    if (budget < res->min_bytes)
        return qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "a budget of %llu bytes is below the smallest possible size "
                          "(%llu bytes with every tensor at its smallest type)",
                          (unsigned long long)budget, (unsigned long long)res->min_bytes);
    if (budget >= res->max_bytes) {
        /* Everything fits: each item's least loss (the unrounded optimum,
         * never above what the DP would find for a smaller budget). */
        for (int64_t k = 0; k < n; k++) {
            int bc = 0;
            for (int c = 1; c < items[k].n_cand; c++)
                if (items[k].loss[c] < items[k].loss[bc] ||
                    (items[k].loss[c] == items[k].loss[bc] && items[k].bytes[c] < items[k].bytes[bc]))
                    bc = c;
            choice[k] = bc;
            res->bytes += items[k].bytes[bc];
            res->loss += items[k].loss[bc];
        }
        return QP_OK;
    }
    const uint64_t range = res->max_bytes - res->min_bytes;
    const uint64_t unit = range / QP_ALLOC_UNITS + 1; /* > range / QP_ALLOC_UNITS: at most QP_ALLOC_UNITS units */
    uint64_t slack_units = (budget - res->min_bytes) / unit;
    const uint64_t range_units = (range + unit - 1) / unit + (uint64_t)n; /* every item rounded up */
    if (slack_units > range_units)
        slack_units = range_units;
    const size_t U = (size_t)slack_units + 1;
    double *prev = malloc(U * sizeof *prev), *cur = malloc(U * sizeof *cur);
    uint8_t *pick = malloc((size_t)(n ? n : 1) * U);
    uint32_t *units = malloc((size_t)(n ? n : 1) * QP_ALLOC_MAX_CAND * sizeof *units);
    if (!prev || !cur || !pick || !units) {
        free(prev);
        free(cur);
        free(pick);
        free(units);
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (bit allocation)");
    }
    for (int64_t k = 0; k < n; k++) {
        uint64_t lo, hi;
        item_range(&items[k], &lo, &hi);
        for (int c = 0; c < items[k].n_cand; c++)
            units[k * QP_ALLOC_MAX_CAND + c] = (uint32_t)((items[k].bytes[c] - lo + unit - 1) / unit);
    }
    /* prev[u]: least loss of the items so far within u units. */
    for (size_t u = 0; u < U; u++)
        prev[u] = 0;
    for (int64_t k = 0; k < n; k++) {
        const qp_alloc_item *it = &items[k];
        const uint32_t *uk = units + k * QP_ALLOC_MAX_CAND;
        uint8_t *pk = pick + (size_t)k * U;
        for (size_t u = 0; u < U; u++) {
            double best = INFINITY;
            int bc = -1;
            for (int c = 0; c < it->n_cand; c++) {
                if (uk[c] > u)
                    continue;
                double v = prev[u - uk[c]] + it->loss[c];
                if (v < best || (v == best && bc >= 0 && uk[c] < uk[bc])) {
                    best = v;
                    bc = c;
                }
            }
            cur[u] = best; /* finite: the cheapest candidate has 0 units */
            pk[u] = (uint8_t)bc;
        }
        double *t = prev;
        prev = cur;
        cur = t;
    }
    size_t u = U - 1;
    for (int64_t k = n - 1; k >= 0; k--) {
        int c = pick[(size_t)k * U + u];
        choice[k] = c;
        u -= units[k * QP_ALLOC_MAX_CAND + c];
        res->bytes += items[k].bytes[c];
    }
    /* Sum in item order, so the figure does not depend on the DP's order. */
    for (int64_t k = 0; k < n; k++)
        res->loss += items[k].loss[choice[k]];
    free(prev);
    free(cur);
    free(pick);
    free(units);
    return QP_OK;
}
