/* test_covariance_convert.c - `qpack convert --covariance` end to end on
 * qwen3-moe-tiny (calibrated on two short chunks): the file verifies, has
 * exactly the size and tensor table of the same preset without it, its
 * bytes differ from the plain conversion and do not depend on the thread
 * count. Slow: error feedback quantizes every expert row several times. */
/* ctest-labels: slow */
#include "support/qp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_dir[512], g_imat[600], g_cov[600];

static int setup(void **state)
{
    (void)state;
    char *d = qp_test_tmpdir("cov-convert");
    snprintf(g_dir, sizeof g_dir, "%s", d);
    free(d);
    snprintf(g_imat, sizeof g_imat, "%s/imat.gguf", g_dir);
    snprintf(g_cov, sizeof g_cov, "%s/cov.gguf", g_dir);
    qp_run_qpack_ok("calibrate %s --text %s -o %s --covariance %s -c 128 --chunks 2 -t 2 -q",
                    qp_fixture("models/qwen3-moe-tiny"), qp_fixture("text/calib.txt"), g_imat, g_cov);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    return 0;
}

static void *convert(const char *tag, const char *extra, int threads, size_t *size)
{
    char out[700];
    snprintf(out, sizeof out, "%s/%s.gguf", g_dir, tag);
    qp_run_qpack_ok("convert %s -o %s --type Q3_K_M --imatrix %s %s -t %d -q", qp_fixture("models/qwen3-moe-tiny"),
                    out, g_imat, extra, threads);
    qp_run_qpack_ok("verify %s", out);
    return qp_test_read_file(out, size);
}

static void test_convert(void **state)
{
    (void)state;
    char extra[700];
    snprintf(extra, sizeof extra, "--covariance %s", g_cov);
    size_t n_plain, n1, n3;
    uint8_t *plain = convert("plain", "", 2, &n_plain);
    uint8_t *c1 = convert("cov1", extra, 1, &n1);
    uint8_t *c3 = convert("cov3", extra, 3, &n3);
    assert_true(n_plain == n1 && n1 == n3); /* same types, same size */
    assert_memory_equal(c1, c3, n1);
    assert_true(memcmp(plain, c1, n1) != 0);
    /* the plan (names, types, shapes) is the same: compare inspect outputs */
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/plain.gguf", g_dir);
    snprintf(b, sizeof b, "%s/cov1.gguf", g_dir);
    qp_run_result ra = qp_run_qpack("inspect %s --json", a), rb = qp_run_qpack("inspect %s --json", b);
    assert_int_equal(ra.exit_code, 0);
    assert_int_equal(rb.exit_code, 0);
    const char *ta = strstr(ra.out, "\"tensors\""), *tb = strstr(rb.out, "\"tensors\"");
    assert_non_null(ta);
    assert_non_null(tb);
    assert_string_equal(ta, tb); /* tensor table (names, shapes, types, bytes) and totals */
    qp_run_free(&ra);
    qp_run_free(&rb);
    free(plain);
    free(c1);
    free(c3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convert),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
