/* test_alloc.c - quant/alloc.c: the knapsack keeps the budget, is
 * deterministic, never predicts a higher loss for a larger budget, matches
 * brute force on small cases, and refuses budgets below the smallest mix. */
/* ctest-labels: fast */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "quant/alloc.h"

/* xorshift: seeded, the same everywhere */
static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Items like tensors: six types of growing size, loss falling with size. */
static void make_items(qp_alloc_item *it, int64_t n, uint64_t seed)
{
    static const double bpw[6] = {2.625, 3.4375, 4.5, 5.5, 6.5625, 8.5};
    for (int64_t k = 0; k < n; k++) {
        uint64_t elems = 256 * (1 + rng(&seed) % 64);
        double sens = (double)(1 + rng(&seed) % 1000) / 100.0;
        it[k].n_cand = 6;
        for (int c = 0; c < 6; c++) {
            it[k].type[c] = (uint32_t)c;
            it[k].bytes[c] = (uint64_t)(bpw[c] * (double)elems / 8.0);
            it[k].loss[c] = sens * (double)elems * 1e-4 / (double)(1u << (2 * c)) * (1.0 + (double)(rng(&seed) % 10) / 100.0);
        }
    }
}

static uint64_t sum_bytes(const qp_alloc_item *it, int64_t n, const int *ch)
{
    uint64_t b = 0;
    for (int64_t k = 0; k < n; k++)
        b += it[k].bytes[ch[k]];
    return b;
}

static void test_budget_kept_and_monotone(void **state)
{
    (void)state;
    enum { N = 40 };
    qp_alloc_item it[N];
    int ch[N];
    make_items(it, N, 12345);
    qp_alloc_result r;
    qp_err e;
    assert_int_equal(qp_alloc_solve(it, N, UINT64_MAX / 2, ch, &r, &e), QP_OK);
    const uint64_t lo = r.min_bytes, hi = r.max_bytes;
    double prev = INFINITY;
    for (int step = 0; step <= 50; step++) {
        uint64_t budget = lo + (hi - lo) * (uint64_t)step / 50;
        assert_int_equal(qp_alloc_solve(it, N, budget, ch, &r, &e), QP_OK);
        assert_true(r.bytes <= budget);
        assert_int_equal(r.bytes, sum_bytes(it, N, ch));
        assert_true(r.loss <= prev); /* larger budget, loss not higher */
        prev = r.loss;
    }
    /* everything fits: the all-largest mix (least loss per item here) */
    assert_int_equal(qp_alloc_solve(it, N, hi, ch, &r, &e), QP_OK);
    for (int k = 0; k < N; k++)
        assert_int_equal(ch[k], 5);
}

static void test_deterministic(void **state)
{
    (void)state;
    enum { N = 60 };
    qp_alloc_item it[N];
    int a[N], b[N];
    make_items(it, N, 777);
    qp_alloc_result ra, rb;
    qp_err e;
    assert_int_equal(qp_alloc_solve(it, N, UINT64_MAX / 2, a, &ra, &e), QP_OK);
    uint64_t budget = (ra.min_bytes + ra.max_bytes) / 2;
    assert_int_equal(qp_alloc_solve(it, N, budget, a, &ra, &e), QP_OK);
    assert_int_equal(qp_alloc_solve(it, N, budget, b, &rb, &e), QP_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_true(ra.loss == rb.loss);
}

/* Exhaustive search over 6^6 mixes: the DP may lose only what rounding to
 * units costs, which is nothing when every size is a multiple of the unit. */
static void test_matches_brute_force(void **state)
{
    (void)state;
    enum { N = 6 };
    qp_alloc_item it[N];
    int ch[N];
    make_items(it, N, 99);
    for (int k = 0; k < N; k++) /* exact at unit 1: keep the range under QP_ALLOC_UNITS */
        for (int c = 0; c < 6; c++)
            it[k].bytes[c] = it[k].bytes[c] % 2000 + (uint64_t)c * 300;
    qp_alloc_result r;
    qp_err e;
    assert_int_equal(qp_alloc_solve(it, N, UINT64_MAX / 2, ch, &r, &e), QP_OK);
    assert_true(r.max_bytes - r.min_bytes < QP_ALLOC_UNITS);
    const uint64_t budget = (r.min_bytes + r.max_bytes) / 2;
    double best = INFINITY;
    for (int code = 0; code < 6 * 6 * 6 * 6 * 6 * 6; code++) {
        int x = code;
        uint64_t bytes = 0;
        double loss = 0;
        for (int k = 0; k < N; k++, x /= 6) {
            bytes += it[k].bytes[x % 6];
            loss += it[k].loss[x % 6];
        }
        if (bytes <= budget && loss < best)
            best = loss;
    }
    assert_int_equal(qp_alloc_solve(it, N, budget, ch, &r, &e), QP_OK);
    assert_true(r.bytes <= budget);
    assert_true(r.loss <= best * (1 + 1e-12));
}

static void test_impossible_budget(void **state)
{
    (void)state;
    enum { N = 10 };
    qp_alloc_item it[N];
    int ch[N];
    make_items(it, N, 5);
    qp_alloc_result r;
    qp_err e;
    assert_int_equal(qp_alloc_solve(it, N, UINT64_MAX / 2, ch, &r, &e), QP_OK);
    const uint64_t lo = r.min_bytes;
    assert_int_equal(qp_alloc_solve(it, N, lo - 1, ch, &r, &e), QP_ERR_BAD_INPUT);
    assert_non_null(strstr(e.msg, "below the smallest possible size"));
    assert_int_equal(qp_alloc_solve(it, N, lo, ch, &r, &e), QP_OK); /* exactly the minimum fits */
    for (int k = 0; k < N; k++)
        assert_int_equal(ch[k], 0);
    it[3].loss[2] = -1; /* malformed */
    assert_int_equal(qp_alloc_solve(it, N, lo, ch, &r, &e), QP_ERR_USAGE);
    it[3].loss[2] = 0;
    it[3].n_cand = 0;
    assert_int_equal(qp_alloc_solve(it, N, lo, ch, &r, &e), QP_ERR_USAGE);
    assert_int_equal(qp_alloc_solve(NULL, 0, 0, NULL, &r, &e), QP_OK); /* nothing to choose */
    assert_int_equal(r.bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_kept_and_monotone),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_matches_brute_force),
        cmocka_unit_test(test_impossible_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
