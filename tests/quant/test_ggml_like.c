/* test_ggml_like.c - the scalar twin of llama.cpp's search (quant/ggml_like.c,
 * the benchmark's comparison column) is faithful: on the first rows of the
 * ggml-vectors tensors its error is within 1% of the error of llama.cpp's
 * own dequantized rows (pure-Q4_K_S, pure-Q5_K_S, pure-Q6_K); and the
 * production search is no worse than either. */
/* ctest-labels: fast */
#include "tests/quant/ggml_vectors_common.h"

#include "quant/qtype_ref.h"

#define ROWS 32

static gv_oracle g_o;

static int setup(void **state)
{
    (void)state;
    gv_load(&g_o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gv_free(&g_o);
    return 0;
}

static double rows_error(qp_quantize_row_fn fn, uint32_t type, const gv_tensor *t)
{
    const qp_qtype *q = qp_qtype_get_scalar(type);
    const uint64_t rb = qp_qtype_row_bytes(type, t->cols);
    uint8_t *b = malloc(rb);
    float *deq = malloc(sizeof(float) * (size_t)ROWS * t->cols);
    for (int i = 0; i < ROWS; i++) {
        fn(t->src + (size_t)i * t->cols, b, t->cols, NULL);
        q->dequantize_row(b, deq + (size_t)i * t->cols, t->cols);
    }
    const double e = gv_rel_rmse(t->src, deq, ROWS, t->cols, NULL);
    free(b);
    free(deq);
    return e;
}

static void test_twin_matches_ggml(void **state)
{
    (void)state;
    static const char *const TAGS[] = {"pure-Q4_K_S", "pure-Q5_K_S", "pure-Q6_K"};
    for (size_t k = 0; k < sizeof TAGS / sizeof TAGS[0]; k++) {
        const gv_tag *g = NULL;
        for (int ti = 0; ti < g_o.ntags; ti++)
            if (strcmp(g_o.tags[ti].tag, TAGS[k]) == 0)
                g = &g_o.tags[ti];
        assert_non_null(g);
        const qp_quantize_row_fn twin = qp_qtype_ggml_like_quantizer(g->type);
        assert_non_null(twin);
        for (int ti = 0; ti < 2; ti++) {
            const gv_tensor *t = &g_o.t[ti];
            float *ref = gv_ggml_deq(g, t);
            const double theirs = gv_rel_rmse(t->src, ref, ROWS, t->cols, NULL);
            const double mine = rows_error(twin, g->type, t);
            float *deq = malloc(sizeof(float) * (size_t)ROWS * t->cols);
            free(gv_quantize(t, g->type, 0, ROWS, deq)); /* the production search */
            const double fast = gv_rel_rmse(t->src, deq, ROWS, t->cols, NULL);
            free(deq);
            print_message("%-12s %-22s ggml %.6f twin %.6f fast %.6f\n", g->tag, t->name, theirs, mine, fast);
            assert_true(fabs(mine / theirs - 1.0) < 0.01);
            assert_true(fast <= theirs && fast <= mine);
            free(ref);
        }
    }
    assert_null(qp_qtype_ggml_like_quantizer(QP_GGML_Q8_0));
}

int main(void)
{
    (void)gv_check_dequant; /* shared helper this test does not need */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twin_matches_ggml),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
