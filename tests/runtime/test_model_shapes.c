/* test_model_shapes.c - the runtime on small random checkpoints of shapes
 * the fixtures do not have: head sizes that are not a multiple of 16 (the
 * per-row attention) or of 8 (its scalar fallback), 3 query heads per kv
 * head, MoE with 2 of 4 experts. For each: finite logits, token-by-token
 * through the cache equal to the batch, any thread count equal, scalar
 * kernels close to AVX2; and a broken checkpoint is refused. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"
#include "support/tiny_ckpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_cpu.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/model.h"

static float *run(const qp_rt_model *m, const int32_t *toks, int64_t n, int n_threads, int one_by_one)
{
    const int64_t V = qp_rt_model_config(m)->n_vocab;
    float *out = malloc((size_t)(n * V) * sizeof(float));
    qp_rt_state *s = NULL;
    qp_err err;
    assert_int_equal(qp_rt_state_new(m, n, 0, n_threads, &s, &err), QP_OK);
    if (one_by_one) {
        for (int64_t t = 0; t < n; t++)
            assert_int_equal(qp_rt_forward(m, s, toks + t, 1, 0, 1, out + t * V, &err), QP_OK);
    } else {
        assert_int_equal(qp_rt_forward(m, s, toks, n, 0, n, out, &err), QP_OK);
    }
    qp_rt_state_free(s);
    return out;
}

static void check_shape(const char *tag, qp_tiny_ckpt *ck)
{
    char *dir = qp_test_tmpdir(tag);
    assert_non_null(dir);
    qp_tiny_ckpt_defaults(ck);
    assert_int_equal(qp_tiny_ckpt_write(dir, ck), 0);
    qp_rt_model *m = NULL;
    qp_err err;
    qp_status st = qp_rt_model_open(dir, &m, &err);
    if (st != QP_OK) {
        char buf[2048];
        qp_err_format(&err, buf, sizeof buf);
        fail_msg("%s: %s", tag, buf);
    }
    const int64_t V = qp_rt_model_config(m)->n_vocab, n = 23;
    int32_t toks[23];
    for (int i = 0; i < n; i++)
        toks[i] = (int32_t)((i * 2654435761u) % (uint32_t)V);
    float *a = run(m, toks, n, 1, 0);
    for (int64_t i = 0; i < n * V; i++)
        assert_true(isfinite(a[i]));
    float *b = run(m, toks, n, 3, 0);
    assert_memory_equal(a, b, (size_t)(n * V) * sizeof(float));
    float *c = run(m, toks, n, 2, 1);
    assert_memory_equal(a, c, (size_t)(n * V) * sizeof(float));
    qp_cpu_force_scalar(1);
    float *d = run(m, toks, n, 2, 0);
    qp_cpu_force_scalar(0);
    double max_a = 0, max_d = 0;
    for (int64_t i = 0; i < n * V; i++) {
        max_a = fmax(max_a, fabs(a[i]));
        max_d = fmax(max_d, fabs(a[i] - d[i]));
    }
    assert_true(max_d <= 1e-4 * (max_a > 1 ? max_a : 1));
    free(a);
    free(b);
    free(c);
    free(d);
    qp_rt_model_free(m);
    qp_test_rmtree(dir);
    free(dir);
}

static void test_head_dim_24(void **state)
{
    (void)state;
    qp_tiny_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ck.head_dim = 24;
    ck.n_head = 3;
    ck.n_kv = 1;
    ck.n_layers = 2;
    check_shape("rt-shape-hd24", &ck);
}

static void test_head_dim_40(void **state)
{
    (void)state;
    qp_tiny_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ck.head_dim = 40;
    ck.n_head = 2;
    ck.n_kv = 2;
    check_shape("rt-shape-hd40", &ck);
}

static void test_moe_small(void **state)
{
    (void)state;
    qp_tiny_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ck.moe = 1;
    ck.n_layers = 2;
    check_shape("rt-shape-moe", &ck);
}

static int drop_k_norm(void *ctx, st_craft_tensor *t)
{
    (void)ctx;
    return strstr(t->name, "k_norm") != NULL;
}

static void test_missing_tensor(void **state)
{
    (void)state;
    char *dir = qp_test_tmpdir("rt-shape-missing");
    qp_tiny_ckpt ck;
    memset(&ck, 0, sizeof ck);
    qp_tiny_ckpt_defaults(&ck);
    ck.mutate = drop_k_norm;
    assert_int_equal(qp_tiny_ckpt_write(dir, &ck), 0);
    qp_rt_model *m = NULL;
    qp_err err;
    assert_int_not_equal(qp_rt_model_open(dir, &m, &err), QP_OK);
    assert_null(m);
    qp_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_dim_24),
        cmocka_unit_test(test_head_dim_40),
        cmocka_unit_test(test_moe_small),
        cmocka_unit_test(test_missing_tensor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
