/* test_covariance.c - covariance collection (runtime-lite/covariance.c) on
 * qwen3-moe-tiny with two short chunks: every quantizable matrix gets an
 * entry of the imatrix's shape, H is symmetric and PSD-like, diag(H) equals
 * the imatrix's in_sum2 and the counts agree (same tokens, same coverage
 * fill), shared inputs get equal matrices, and the result does not depend
 * on the thread count. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/covmat.h"
#include "format/imatrix.h"
#include "runtime-lite/calibrate.h"
#include "runtime-lite/covariance.h"
#include "runtime-lite/model.h"

#define CTX 64
#define CHUNKS 2

static int32_t *g_ids;
static int64_t g_n_ids;
static qp_rt_model *g_model;

static int setup(void **state)
{
    (void)state;
    g_ids = qp_test_read_ids("reference/tiny-tokenizer/calib.ids.i32", &g_n_ids);
    qp_err err;
    if (!g_ids || qp_rt_model_open(qp_fixture("models/qwen3-moe-tiny"), &g_model, &err) != QP_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_ids);
    qp_rt_model_free(g_model);
    return 0;
}

static qp_calib_job job_for(int n_threads)
{
    qp_calib_job job = {
        .model = g_model,
        .tokens = g_ids,
        .n_tokens = g_n_ids,
        .n_ctx = CTX,
        .max_chunks = CHUNKS,
        .n_threads = n_threads,
        .min_expert_tokens = 64, /* 2 x 64 tokens x top-4 over 16 experts: several fall short */
    };
    return job;
}

static void collect(int n_threads, qp_calib_result *r, qp_covmat **cov)
{
    qp_calib_job job = job_for(n_threads);
    qp_err err;
    if (qp_calib_run(&job, r, &err) != QP_OK)
        fail_msg("calibrate: %s", err.msg);
    if (qp_cov_collect(&job, r, cov, &err) != QP_OK)
        fail_msg("covariance: %s", err.msg);
}

static void test_matches_imatrix(void **state)
{
    (void)state;
    qp_calib_result r;
    qp_covmat *cov = NULL;
    collect(2, &r, &cov);
    assert_true(r.n_forced > 0); /* the coverage blend is exercised */
    int64_t checked = 0;
    for (int64_t e = 0; e < qp_imatrix_count(r.imatrix); e++) {
        const char *name = qp_imatrix_name(r.imatrix, e);
        int64_t c = qp_covmat_find(cov, name);
        if (strstr(name, "ffn_gate_inp")) { /* the router stays F32: not recorded */
            assert_true(c < 0);
            continue;
        }
        if (c < 0)
            fail_msg("no covariance entry for %s", name);
        const int64_t n = qp_imatrix_n_in(r.imatrix, e), NE = qp_imatrix_n_expert(r.imatrix, e);
        assert_int_equal(qp_covmat_n_in(cov, c), n);
        assert_int_equal(qp_covmat_n_expert(cov, c), NE);
        for (int64_t x = 0; x < NE; x++) {
            const float *s2 = qp_imatrix_sums(r.imatrix, e) + x * n;
            const double *h = qp_covmat_h(cov, c, x);
            assert_true(fabs(qp_covmat_rows(cov, c, x) - qp_imatrix_rows(r.imatrix, e, x)) < 1e-6);
            for (int64_t i = 0; i < n; i++) {
                const double d = h[i * n + i];
                if (fabs(d - s2[i]) > 1e-4 * fabs(s2[i]) + 1e-6)
                    fail_msg("%s expert %lld: diag %lld = %g, in_sum2 = %g", name, (long long)x, (long long)i, d,
                             (double)s2[i]);
                for (int64_t j = 0; j < n; j++) {
                    assert_true(h[i * n + j] == h[j * n + i]);
                    assert_true(fabs(h[i * n + j]) <= sqrt(d * h[j * n + j]) * (1 + 1e-4) + 1e-6);
                }
            }
            checked++;
        }
    }
    assert_true(checked >= 4 * (4 + 3 * 16));
    /* shared inputs: q/k/v and gate/up hold the same matrix */
    int64_t q = qp_covmat_find(cov, "blk.1.attn_q.weight"), v = qp_covmat_find(cov, "blk.1.attn_v.weight");
    int64_t g = qp_covmat_find(cov, "blk.2.ffn_gate_exps.weight"), u = qp_covmat_find(cov, "blk.2.ffn_up_exps.weight");
    assert_true(q >= 0 && v >= 0 && g >= 0 && u >= 0);
    assert_memory_equal(qp_covmat_h(cov, q, 0), qp_covmat_h(cov, v, 0), 256 * 256 * sizeof(double));
    assert_memory_equal(qp_covmat_h(cov, g, 5), qp_covmat_h(cov, u, 5), 256 * 256 * sizeof(double));
    qp_covmat_free(cov);
    qp_calib_result_free(&r);
}

/* The PSD check above is pairwise; here a random direction must give
 * v^T H v >= 0 for every matrix of one layer. */
static void test_quadratic_form_nonnegative(void **state)
{
    (void)state;
    qp_calib_result r;
    qp_covmat *cov = NULL;
    collect(1, &r, &cov);
    uint32_t seed = 7;
    for (int64_t c = 0; c < qp_covmat_count(cov); c++) {
        const int64_t n = qp_covmat_n_in(cov, c);
        for (int64_t x = 0; x < qp_covmat_n_expert(cov, c); x++) {
            const double *h = qp_covmat_h(cov, c, x);
            double v[256], q = 0;
            assert_true(n <= 256);
            for (int64_t i = 0; i < n; i++) {
                seed = seed * 1664525u + 1013904223u;
                v[i] = (double)(seed >> 8) / 16777216.0 - 0.5;
            }
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++)
                    q += v[i] * h[i * n + j] * v[j];
            assert_true(q >= -1e-6 * fabs(h[0]) - 1e-6);
        }
    }
    qp_covmat_free(cov);
    qp_calib_result_free(&r);
}

static void test_thread_count_invariant(void **state)
{
    (void)state;
    qp_calib_result r1, r3;
    qp_covmat *c1 = NULL, *c3 = NULL;
    collect(1, &r1, &c1);
    collect(3, &r3, &c3);
    assert_int_equal(qp_covmat_count(c1), qp_covmat_count(c3));
    for (int64_t c = 0; c < qp_covmat_count(c1); c++) {
        const int64_t n = qp_covmat_n_in(c1, c);
        assert_string_equal(qp_covmat_name(c1, c), qp_covmat_name(c3, c));
        for (int64_t x = 0; x < qp_covmat_n_expert(c1, c); x++)
            assert_memory_equal(qp_covmat_h(c1, c, x), qp_covmat_h(c3, c, x), (size_t)(n * n) * sizeof(double));
    }
    qp_covmat_free(c1);
    qp_covmat_free(c3);
    qp_calib_result_free(&r1);
    qp_calib_result_free(&r3);
}

/* `qpack calibrate --covariance` writes the file; convert refuses it for
 * another model (the full convert is test_covariance_convert.c, slow). */
static void test_cli(void **state)
{
    (void)state;
    char *dir = qp_test_tmpdir("covariance");
    char imat[512], cov[512], out[512];
    snprintf(imat, sizeof imat, "%s/imat.gguf", dir);
    snprintf(cov, sizeof cov, "%s/cov.gguf", dir);
    snprintf(out, sizeof out, "%s/q4.gguf", dir);
    qp_run_qpack_ok("calibrate %s --text %s -o %s --covariance %s -c 64 --chunks 2 -t 2 -q",
                    qp_fixture("models/qwen3-moe-tiny"), qp_fixture("text/calib.txt"), imat, cov);
    qp_covmat *m = NULL;
    qp_err err;
    assert_int_equal(qp_covmat_read(cov, &m, &err), QP_OK);
    assert_true(qp_covmat_find(m, "blk.0.ffn_down_exps.weight") >= 0);
    assert_int_equal(qp_covmat_chunk_count(m), 2);
    assert_int_equal(qp_covmat_chunk_size(m), 64);
    qp_covmat_free(m);
    /* convert checks every entry's shape before quantizing anything */
    qp_covmat *bad = qp_covmat_new();
    assert_true(qp_covmat_add(bad, "blk.0.attn_q.weight", 128, 1, &err) == 0);
    qp_covmat_set_rows(bad, 0, 0, 1);
    assert_int_equal(qp_covmat_write(bad, cov, &err), QP_OK);
    qp_covmat_free(bad);
    qp_run_result r = qp_run_qpack("convert %s -o %s --type Q3_K_M --covariance %s -t 2 -q",
                                   qp_fixture("models/qwen3-moe-tiny"), out, cov);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "blk.0.attn_q.weight"));
    assert_false(qp_test_file_exists(out));
    qp_run_free(&r);
    qp_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_imatrix),
        cmocka_unit_test(test_quadratic_form_nonnegative),
        cmocka_unit_test(test_thread_count_invariant),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
