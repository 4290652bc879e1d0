/* test_qtype_table.c - the trait table: every type qpack handles has a
 * complete entry matching the ggml geometry table, activation types chain
 * correctly, unknown and unsupported ids give NULL, row sizes. */
/* ctest-labels: fast */
#include "tests/quant/quant_test_util.h"

static const uint32_t ALL[] = {QP_GGML_F32,  QP_GGML_F16,  QP_GGML_BF16,   QP_GGML_Q4_0,
                               QP_GGML_Q4_1, QP_GGML_Q5_0, QP_GGML_Q5_1,   QP_GGML_Q8_0,
                               QP_GGML_Q2_K, QP_GGML_Q3_K, QP_GGML_Q4_K,   QP_GGML_Q5_K,
                               QP_GGML_Q6_K, QP_GGML_Q8_K, QP_GGML_IQ4_NL, QP_GGML_IQ4_XS};

static void test_entries_complete(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ALL / sizeof ALL[0]; i++) {
        qt_check_entry(ALL[i]);
        const qp_qtype *q = qt_get(ALL[i]);
        /* every weight type can be multiplied; its activation type can be
         * produced from f32 */
        if (ALL[i] != QP_GGML_Q8_K) {
            assert_non_null(q->vec_dot);
            const qp_qtype *a = qt_get(q->vec_dot_type);
            assert_non_null(a->quantize_row);
            assert_int_equal(q->block_elems % a->block_elems, 0);
        }
    }
}

static void test_unsupported(void **state)
{
    (void)state;
    const uint32_t none[] = {QP_GGML_Q8_1, QP_GGML_IQ2_XXS, QP_GGML_IQ1_S, QP_GGML_TQ1_0,
                             QP_GGML_MXFP4, 4, 5, QP_GGML_TYPE_LIMIT, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        assert_null(qp_qtype_get(none[i]));
        assert_null(qp_qtype_get_scalar(none[i]));
    }
}

static void test_row_bytes(void **state)
{
    (void)state;
    assert_int_equal(qp_qtype_row_bytes(QP_GGML_Q4_K, 4096), 16 * 144);
    assert_int_equal(qp_qtype_row_bytes(QP_GGML_Q8_0, 64), 2 * 34);
    assert_int_equal(qp_qtype_row_bytes(QP_GGML_F16, 3), 6);
    assert_int_equal(qp_qtype_row_bytes(QP_GGML_Q4_K, 100), 0); /* not a whole block */
    assert_int_equal(qp_qtype_row_bytes(QP_GGML_Q4_0, -32), 0);
    assert_int_equal(qp_qtype_row_bytes(1000, 32), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_complete),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_row_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
