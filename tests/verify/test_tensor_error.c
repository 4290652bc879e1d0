/* test_tensor_error.c - the error statistics on tensors whose error is known
 * by construction, so every figure can be worked out by hand. */
/* ctest-labels: fast threads */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "common/qp_half.h"
#include "support/qp_test.h"
#include "verify/tensor_error.h"

#define EPS 1e-12

/* |a - b| <= eps, printing both on failure (this cmocka has no double assert). */
#define assert_double_equal(a, b, eps) assert_near_impl((a), (b), (eps), #a, __FILE__, __LINE__)
static void assert_near_impl(double a, double b, double eps, const char *what, const char *file, int line)
{
    if (!(fabs(a - b) <= eps) && !(a == b)) {
        print_error("%s:%d: %s = %.17g, expected %.17g (eps %g)\n", file, line, what, a, b, eps);
        fail();
    }
}

/* Source +-a in alternation, error +-d in the pattern (+,+,-,-): the two are
 * orthogonal over every 4 elements, so with N elements
 *   sum s^2 = N a^2, sum e^2 = N d^2, sum s*q = N a^2, sum q^2 = N (a^2 + d^2). */
static void orthogonal_rows(float *src, float *deq, int n, float a, float d)
{
    for (int i = 0; i < n; i++) {
        float s = (i % 2) ? -a : a;
        float e = (i % 4) < 2 ? d : -d;
        src[i] = s;
        deq[i] = s + e;
    }
}

static void test_orthogonal_error(void **state)
{
    (void)state;
    float src[32], deq[32];
    orthogonal_rows(src, deq, 32, 2.0f, 0.5f);
    qp_terr_acc a;
    qp_terr_acc_init(&a);
    qp_terr_acc_rows(&a, src, deq, 4, 8, NULL);
    qp_terr e;
    qp_terr_finish(&a, &e);
    assert_int_equal(e.n, 32);
    assert_int_equal(e.nonfinite, 0);
    /* rmse = d = 0.5; rel = d/a = 0.25; SNR = 20 log10(a/d) = 20 log10 4;
     * cosine = a / sqrt(a^2 + d^2) = 2 / sqrt(4.25). */
    assert_double_equal(e.rmse, 0.5, EPS);
    assert_double_equal(e.rel_rmse, 0.25, EPS);
    assert_double_equal(e.snr_db, 20.0 * log10(4.0), EPS);
    assert_double_equal(e.snr_db, 12.041199826559248, 1e-12);
    assert_double_equal(e.cosine, 2.0 / sqrt(4.25), EPS);
    assert_double_equal(e.max_abs_err, 0.5, EPS);
    assert_false(e.has_weighted);
}

static void test_spike_sets_max_abs(void **state)
{
    (void)state;
    float src[16], deq[16];
    orthogonal_rows(src, deq, 16, 1.0f, 0.25f);
    deq[11] = src[11] - 3.0f; /* one element off by 3 */
    qp_terr_acc a;
    qp_terr_acc_init(&a);
    qp_terr_acc_rows(&a, src, deq, 2, 8, NULL);
    qp_terr e;
    qp_terr_finish(&a, &e);
    assert_double_equal(e.max_abs_err, 3.0, EPS);
    /* sum e^2 = 15 * 0.0625 + 9, sum s^2 = 16 */
    assert_double_equal(e.rel_rmse, sqrt((15 * 0.0625 + 9.0) / 16.0), EPS);
}

static void test_importance_weighted(void **state)
{
    (void)state;
    /* s = [1,2,3,4], q = [1.5,2,2,4]: e = [0.5,0,-1,0]; w = [4,1,1,2]:
     * sum w e^2 = 4*0.25 + 1 = 2, sum w s^2 = 4 + 4 + 9 + 32 = 49. */
    const float src[4] = {1, 2, 3, 4}, deq[4] = {1.5f, 2, 2, 4}, w[4] = {4, 1, 1, 2};
    qp_terr_acc a;
    qp_terr_acc_init(&a);
    qp_terr_acc_rows(&a, src, deq, 1, 4, w);
    qp_terr e;
    qp_terr_finish(&a, &e);
    assert_true(e.has_weighted);
    assert_int_equal(e.n_weighted, 4);
    assert_double_equal(e.weighted_rel_rmse, sqrt(2.0) / 7.0, EPS);
    assert_double_equal(e.rel_rmse, sqrt(1.25 / 30.0), EPS);
    assert_double_equal(e.max_abs_err, 1.0, EPS);
}

static void test_degenerate(void **state)
{
    (void)state;
    const float z[4] = {0, 0, 0, 0}, one[4] = {0, 1, 0, 0};
    qp_terr_acc a;
    qp_terr e;
    /* Zero source reproduced exactly: perfect. */
    qp_terr_acc_init(&a);
    qp_terr_acc_rows(&a, z, z, 1, 4, NULL);
    qp_terr_finish(&a, &e);
    assert_double_equal(e.rel_rmse, 0.0, 0);
    assert_double_equal(e.cosine, 1.0, 0);
    assert_true(isinf(e.snr_db) && e.snr_db > 0);
    /* Zero source, non-zero result: unbounded relative error. */
    qp_terr_acc_init(&a);
    qp_terr_acc_rows(&a, z, one, 1, 4, NULL);
    qp_terr_finish(&a, &e);
    assert_true(isinf(e.rel_rmse));
    assert_double_equal(e.cosine, 0.0, 0);
    assert_true(isinf(e.snr_db) && e.snr_db < 0);
    /* NaN and Inf are counted and kept out of the sums. */
    const float src[4] = {1, 2, 3, 4};
    float deq[4] = {1, NAN, 3, INFINITY};
    qp_terr_acc_init(&a);
    qp_terr_acc_rows(&a, src, deq, 1, 4, NULL);
    qp_terr_finish(&a, &e);
    assert_int_equal(e.nonfinite, 2);
    assert_int_equal(e.n, 2);
    assert_double_equal(e.rel_rmse, 0.0, 0);
}

/* ------------------------------------------------------------ streaming */

typedef struct {
    const float *rows;
    int64_t row_len;
    int fail_at_row;  /* -1: never */
} mem_src;

static qp_status mem_rows(void *ctx, int64_t row0, int64_t n, float *dst, qp_err *err)
{
    const mem_src *m = ctx;
    if (m->fail_at_row >= 0 && row0 <= m->fail_at_row && m->fail_at_row < row0 + n)
        return qp_err_set(err, QP_ERR_IO, "src.bin", "read failed at row %d", m->fail_at_row);
    memcpy(dst, m->rows + row0 * m->row_len, (size_t)(n * m->row_len) * sizeof *dst);
    return QP_OK;
}

/* A Q8_0 row of 2 blocks (d = 0.25, q_j = j - 16) dequantizes to
 * 0.25 (j - 16); the source is that plus 0.125 s_j with s_j = +1 for even j,
 * -1 for odd. Per block: sum e^2 = 32/64 = 0.5; sum q^2 = sum_{k=-16}^{15}
 * k^2 / 16 = 2736/16 = 171; sum q*s_j*0.125 = 0.03125 * sum (j-16) s_j =
 * 0.03125 * -16 = -0.5, so sum s*q = 171 - 0.5 = 170.5 and
 * sum s^2 = 171 - 1 + 0.5 = 170.5. */
static void test_q8_0_known_error(void **state)
{
    (void)state;
    enum { ROWS = 3, ROW = 64 };
    uint8_t q[ROWS * 2 * 34];
    float src[ROWS * ROW];
    for (int b = 0; b < ROWS * 2; b++) {
        uint16_t d = qp_f32_to_f16(0.25f);
        memcpy(q + b * 34, &d, 2);
        for (int j = 0; j < 32; j++) {
            q[b * 34 + 2 + j] = (uint8_t)(int8_t)(j - 16);
            src[b * 32 + j] = 0.25f * (float)(j - 16) + ((j % 2) ? -0.125f : 0.125f);
        }
    }
    mem_src m = {src, ROW, -1};
    qp_terr_job j = {.name = "q8", .qdata = q, .qbytes = sizeof q, .qtype = QP_GGML_Q8_0, .row_len = ROW,
                     .n_rows = ROWS, .source = mem_rows, .source_ctx = &m, .n_threads = 2};
    qp_terr e;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_terr_compute(&j, &e, NULL, &err), QP_OK);
    assert_int_equal(e.n, ROWS * ROW);
    assert_double_equal(e.rmse, 0.125, EPS);
    assert_double_equal(e.rel_rmse, sqrt(0.5 / 170.5), EPS);
    assert_double_equal(e.snr_db, 10.0 * log10(341.0), 1e-9);
    assert_double_equal(e.cosine, sqrt(170.5 / 171.0), EPS);
    assert_double_equal(e.max_abs_err, 0.125, EPS);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* The same tensor with 1, 3 and 8 threads gives bit-identical figures, and
 * the same figures (to rounding) as adding all rows at once. Rows are split
 * in 4 groups (experts) checked one by one. */
static void test_threads_deterministic(void **state)
{
    (void)state;
    enum { ROWS = 1000, ROW = 1024, GROUPS = 4 };
    float *src = malloc(sizeof(float) * ROWS * ROW), *deq = malloc(sizeof(float) * ROWS * ROW);
    float *imp = malloc(sizeof(float) * GROUPS * ROW);
    assert_non_null(src);
    assert_non_null(deq);
    assert_non_null(imp);
    uint32_t s = 7;
    for (int i = 0; i < ROWS * ROW; i++) {
        src[i] = (float)((int)(lcg(&s) % 2001) - 1000) / 997.0f;
        deq[i] = src[i] + (float)((int)(lcg(&s) % 201) - 100) / 9973.0f;
    }
    for (int i = 0; i < GROUPS * ROW; i++)
        imp[i] = (float)(1 + lcg(&s) % 50);
    const float *imps[GROUPS] = {imp, NULL, imp + 2 * ROW, imp + 3 * ROW}; /* group 1: no importance */
    mem_src m = {src, ROW, -1};
    qp_terr t1, t3, t8, g1[GROUPS], g8[GROUPS];
    qp_err err;
    qp_terr_job j = {.name = "f32", .qdata = deq, .qbytes = sizeof(float) * ROWS * ROW, .qtype = QP_GGML_F32,
                     .row_len = ROW, .n_rows = ROWS, .n_groups = GROUPS, .source = mem_rows, .source_ctx = &m,
                     .imp = imps, .n_threads = 1};
    assert_int_equal(qp_terr_compute(&j, &t1, g1, &err), QP_OK);
    j.n_threads = 3;
    assert_int_equal(qp_terr_compute(&j, &t3, NULL, &err), QP_OK);
    j.n_threads = 8;
    assert_int_equal(qp_terr_compute(&j, &t8, g8, &err), QP_OK);
    assert_memory_equal(&t1, &t3, sizeof t1);
    assert_memory_equal(&t1, &t8, sizeof t1);
    assert_memory_equal(g1, g8, sizeof g1);
    /* Against one pass over everything, and group by group. */
    qp_terr_acc all;
    qp_terr_acc_init(&all);
    for (int g = 0; g < GROUPS; g++) {
        int rpg = ROWS / GROUPS;
        qp_terr_acc ga;
        qp_terr_acc_init(&ga);
        qp_terr_acc_rows(&ga, src + g * rpg * ROW, deq + g * rpg * ROW, rpg, ROW, imps[g]);
        qp_terr ge;
        qp_terr_finish(&ga, &ge);
        assert_double_equal(g1[g].rel_rmse, ge.rel_rmse, 1e-12);
        assert_int_equal(g1[g].has_weighted, g != 1);
        if (g != 1)
            assert_double_equal(g1[g].weighted_rel_rmse, ge.weighted_rel_rmse, 1e-12);
        qp_terr_acc_merge(&all, &ga);
    }
    qp_terr ref;
    qp_terr_finish(&all, &ref);
    assert_int_equal(t1.n, ROWS * ROW);
    assert_int_equal(t1.n_weighted, 3 * (ROWS / GROUPS) * ROW);
    assert_double_equal(t1.rel_rmse, ref.rel_rmse, 1e-12);
    assert_double_equal(t1.cosine, ref.cosine, 1e-12);
    assert_double_equal(t1.snr_db, ref.snr_db, 1e-9);
    assert_double_equal(t1.max_abs_err, ref.max_abs_err, 0);
    assert_double_equal(t1.weighted_rel_rmse, ref.weighted_rel_rmse, 1e-12);
    free(src);
    free(deq);
    free(imp);
}

static void test_job_errors(void **state)
{
    (void)state;
    float rows[4 * 32] = {0};
    mem_src m = {rows, 32, 2};
    qp_terr e;
    qp_err err;
    qp_terr_job j = {.name = "t", .qdata = rows, .qbytes = sizeof rows, .qtype = QP_GGML_F32, .row_len = 32,
                     .n_rows = 4, .source = mem_rows, .source_ctx = &m, .n_threads = 2};
    /* The source's failure comes back with the tensor named. */
    qp_err_clear(&err);
    assert_int_equal(qp_terr_compute(&j, &e, NULL, &err), QP_ERR_IO);
    assert_string_equal(err.tensor, "t");
    assert_non_null(strstr(err.msg, "row 2"));
    m.fail_at_row = -1;
    /* Data shorter than the shape says. */
    j.qbytes = sizeof rows - 4;
    assert_int_equal(qp_terr_compute(&j, &e, NULL, &err), QP_ERR_BAD_INPUT);
    j.qbytes = sizeof rows;
    /* A type without a dequantizer. */
    j.qtype = QP_GGML_IQ2_XXS;
    assert_int_equal(qp_terr_compute(&j, &e, NULL, &err), QP_ERR_UNSUPPORTED);
    j.qtype = QP_GGML_F32;
    /* Rows that do not split into the groups. */
    j.n_groups = 3;
    assert_int_equal(qp_terr_compute(&j, &e, NULL, &err), QP_ERR_BAD_INPUT);
    j.n_groups = 1;
    /* Cancellation between blocks. */
    volatile sig_atomic_t cancel = 1;
    qp_progress p = {NULL, NULL, &cancel};
    j.progress = &p;
    assert_int_equal(qp_terr_compute(&j, &e, NULL, &err), QP_ERR_INTERRUPTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orthogonal_error),
        cmocka_unit_test(test_spike_sets_max_abs),
        cmocka_unit_test(test_importance_weighted),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_q8_0_known_error),
        cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_job_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
