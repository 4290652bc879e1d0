/* test_q8_k.c - Q8_K, the activation type of the K types and IQ4_XS:
 * ggml's scheme (largest magnitude -> -127, codes within -127..127),
 * per-16 sums, round trip, zero and hostile rows. */
/* ctest-labels: fast */
#include "tests/quant/quant_test_util.h"

#include "quant/qblocks.h"

static void test_entry(void **state)
{
    (void)state;
    qt_check_entry(QP_GGML_Q8_K);
    assert_null(qt_get(QP_GGML_Q8_K)->vec_dot); /* activations only */
}

static void test_codes_and_sums(void **state)
{
    (void)state;
    enum { NB = 4, N = NB * QP_QK_K };
    qt_rng r = {99};
    float x[N], y[N];
    qt_heavy(&r, x, N, 3.0f);
    qp_block_q8_k b[NB];
    const qp_qtype *q = qt_get(QP_GGML_Q8_K);
    q->quantize_row(x, b, N, NULL);
    q->dequantize_row(b, y, N);
    for (int i = 0; i < NB; i++) {
        float amax = 0.0f;
        int imax = 0;
        for (int j = 0; j < QP_QK_K; j++)
            if (fabsf(x[i * QP_QK_K + j]) > amax) {
                amax = fabsf(x[i * QP_QK_K + j]);
                imax = j;
            }
        assert_int_equal(b[i].qs[imax], -127); /* the largest maps to -127 */
        for (int j = 0; j < QP_QK_K; j++) {
            assert_true(b[i].qs[j] >= -127);
            /* within half a step of the input */
            assert_true(fabsf(y[i * QP_QK_K + j] - x[i * QP_QK_K + j]) <= 0.5f * fabsf(b[i].d) * 1.0001f);
        }
        for (int s = 0; s < QP_QK_K / 16; s++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += b[i].qs[16 * s + l];
            assert_int_equal(b[i].bsums[s], sum);
        }
    }
    qp_block_q8_k again[NB];
    q->quantize_row(x, again, N, NULL);
    assert_memory_equal(b, again, sizeof b);
}

static void test_zero_and_hostile(void **state)
{
    (void)state;
    float x[QP_QK_K], y[QP_QK_K];
    qp_block_q8_k b;
    const qp_qtype *q = qt_get(QP_GGML_Q8_K);
    memset(x, 0, sizeof x);
    q->quantize_row(x, &b, QP_QK_K, NULL);
    q->dequantize_row(&b, y, QP_QK_K);
    for (int j = 0; j < QP_QK_K; j++)
        assert_true(y[j] == 0.0f);
    for (int j = 0; j < QP_QK_K; j++)
        x[j] = j % 3 == 0 ? NAN : (float)j;
    q->quantize_row(x, &b, QP_QK_K, NULL);
    q->dequantize_row(&b, y, QP_QK_K);
    for (int j = 0; j < QP_QK_K; j++)
        assert_true(isfinite(y[j]));
    x[7] = INFINITY;
    q->quantize_row(x, &b, QP_QK_K, NULL);
    q->dequantize_row(&b, y, QP_QK_K);
    for (int j = 0; j < QP_QK_K; j++)
        assert_true(isfinite(y[j]));
}

static void test_rows(void **state)
{
    (void)state;
    qt_check_rows(QP_GGML_Q8_K, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry),
        cmocka_unit_test(test_codes_and_sums),
        cmocka_unit_test(test_zero_and_hostile),
        cmocka_unit_test(test_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
