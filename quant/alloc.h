/* alloc.h - choose one candidate (block type) per tensor so the summed
 * predicted loss is smallest while the summed bytes stay within a budget.
 *
 * The caller supplies, per tensor, a few candidates with their exact output
 * bytes and predicted loss (convert/job.c: sensitivity x weighted error). The
 * solver is an exact 0/1 multiple-choice knapsack by dynamic programming on
 * coarse byte units: bytes above each tensor's cheapest candidate are
 * rounded UP to units of ceil(range / QP_ALLOC_UNITS) bytes, where range is
 * the spread between the all-cheapest and all-largest choices. Rounding up
 * keeps the real total within the budget; the unit does not depend on the
 * budget, so a larger budget never gives a higher predicted loss. Ties go
 * to the earlier candidate, then the smaller unit count: the result is a
 * pure function of the inputs. */
#ifndef QP_ALLOC_H
#define QP_ALLOC_H

#include <stdint.h>

#include "common/qp_error.h"

#define QP_ALLOC_MAX_CAND 8
#define QP_ALLOC_UNITS 16384

typedef struct {
    int n_cand;                            /* 1..QP_ALLOC_MAX_CAND */
    uint32_t type[QP_ALLOC_MAX_CAND];      /* opaque to the solver */
    uint64_t bytes[QP_ALLOC_MAX_CAND];
    double loss[QP_ALLOC_MAX_CAND];        /* finite, >= 0 */
} qp_alloc_item;

typedef struct {
    uint64_t bytes;        /* sum of the chosen candidates' bytes */
    double loss;           /* sum of their losses */
    uint64_t min_bytes;    /* every item at its cheapest candidate */
    uint64_t max_bytes;    /* every item at its largest candidate */
} qp_alloc_result;

/* choice[k] gets the chosen candidate index of items[k]. QP_ERR_BAD_INPUT
 * (naming both sizes) when the budget is below min_bytes; QP_ERR_USAGE for
 * a malformed item; QP_ERR_NOMEM. */
qp_status qp_alloc_solve(const qp_alloc_item *items, int64_t n, uint64_t budget, int *choice, qp_alloc_result *res,
                         qp_err *err);

#endif
