/* test_legacy_quants.c - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: layouts against
 * hand-built blocks, ggml's plain quantizer properties, round trips on
 * heavy-tailed data, rows of several blocks, importance weighting, hostile
 * values and vec_dot against Q8_0 activations. (Bit-exactness against
 * ggml's own bytes is test_ggml_vectors*.) */
/* ctest-labels: fast */
#include "tests/quant/quant_test_util.h"

#include "common/qp_half.h"
#include "quant/qblocks.h"

static const uint32_t TYPES[] = {QP_GGML_Q4_0, QP_GGML_Q4_1, QP_GGML_Q5_0, QP_GGML_Q5_1,
                                 QP_GGML_Q8_0};
#define NT (sizeof TYPES / sizeof TYPES[0])

static void test_entries(void **state)
{
    (void)state;
    for (size_t i = 0; i < NT; i++) {
        qt_check_entry(TYPES[i]);
        assert_int_equal(qt_get(TYPES[i])->vec_dot_type, QP_GGML_Q8_0);
    }
}

/* Hand-built blocks decode per the documented layout. */
static void test_layout_known_answers(void **state)
{
    (void)state;
    float y[32];
    qp_block_q4_0 b40;
    b40.d = qp_f32_to_f16(0.5f);
    for (int j = 0; j < 16; j++)
        b40.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    qt_get(QP_GGML_Q4_0)->dequantize_row(&b40, y, 32);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 0.5f * (float)(j - 8));
        assert_true(y[j + 16] == 0.5f * (float)(7 - j));
    }
    qp_block_q4_1 b41;
    b41.d = qp_f32_to_f16(0.25f);
    b41.m = qp_f32_to_f16(-1.0f);
    for (int j = 0; j < 16; j++)
        b41.qs[j] = (uint8_t)(j | (j << 4));
    qt_get(QP_GGML_Q4_1)->dequantize_row(&b41, y, 32);
    for (int j = 0; j < 16; j++)
        assert_true(y[j] == 0.25f * (float)j - 1.0f && y[j + 16] == y[j]);
    qp_block_q5_0 b50;
    b50.d = qp_f32_to_f16(1.0f);
    memset(b50.qs, 0, sizeof b50.qs);
    const uint32_t qh = 0x80000001u; /* fifth bit of elements 0 and 31 */
    memcpy(b50.qh, &qh, 4);
    qt_get(QP_GGML_Q5_0)->dequantize_row(&b50, y, 32);
    for (int j = 0; j < 32; j++)
        assert_true(y[j] == ((j == 0 || j == 31) ? 0.0f : -16.0f));
    qp_block_q5_1 b51;
    b51.d = qp_f32_to_f16(1.0f);
    b51.m = qp_f32_to_f16(2.0f);
    memset(b51.qs, 0xFF, sizeof b51.qs);
    memcpy(b51.qh, &qh, 4);
    qt_get(QP_GGML_Q5_1)->dequantize_row(&b51, y, 32);
    for (int j = 0; j < 32; j++)
        assert_true(y[j] == ((j == 0 || j == 31) ? 33.0f : 17.0f));
    qp_block_q8_0 b80;
    b80.d = qp_f32_to_f16(2.0f);
    for (int j = 0; j < 32; j++)
        b80.qs[j] = (int8_t)(j * 8 - 128);
    qt_get(QP_GGML_Q8_0)->dequantize_row(&b80, y, 32);
    for (int j = 0; j < 32; j++)
        assert_true(y[j] == 2.0f * (float)(j * 8 - 128));
}

/* ggml's plain quantizers: the largest magnitude lands exactly on the end
 * of the range (Q4_0: -8, Q5_0: -16, Q8_0: +-127) and the ends of Q4_1/Q5_1
 * are min and max. */
static void test_plain_quantizer_properties(void **state)
{
    (void)state;
    float x[32], y[32];
    for (int j = 0; j < 32; j++)
        x[j] = 0.01f * (float)((j * 7) % 13 - 6);
    x[9] = 0.5f; /* the largest magnitude, positive */
    qp_block_q4_0 b40;
    qt_get(QP_GGML_Q4_0)->quantize_row(x, &b40, 32, NULL);
    assert_int_equal(b40.qs[9] & 0xF, 0); /* x/d = -8 */
    assert_true(qp_f16_to_f32(b40.d) < 0.0f);
    qp_block_q5_0 b50;
    qt_get(QP_GGML_Q5_0)->quantize_row(x, &b50, 32, NULL);
    assert_int_equal(b50.qs[9] & 0xF, 0);
    qp_block_q8_0 b80;
    qt_get(QP_GGML_Q8_0)->quantize_row(x, &b80, 32, NULL);
    assert_int_equal(b80.qs[9], 127);
    qp_block_q4_1 b41;
    qt_get(QP_GGML_Q4_1)->quantize_row(x, &b41, 32, NULL);
    qt_get(QP_GGML_Q4_1)->dequantize_row(&b41, y, 32);
    assert_int_equal(b41.qs[9] & 0xF, 15);
    assert_true(fabsf(y[9] - 0.5f) < 2e-3f);
}

static void test_accuracy(void **state)
{
    (void)state;
    static const double bound[NT] = {0.15, 0.115, 0.083, 0.06, 0.011};
    for (size_t i = 0; i < NT; i++)
        qt_check_accuracy(TYPES[i], bound[i]);
}

static void test_importance(void **state)
{
    (void)state;
    for (size_t i = 0; i < NT; i++)
        qt_check_importance(TYPES[i]);
}

static void test_rows_and_determinism(void **state)
{
    (void)state;
    for (size_t i = 0; i < NT; i++) {
        qt_check_rows(TYPES[i], 0);
        qt_check_rows(TYPES[i], 1);
    }
}

static void test_edge_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < NT; i++)
        qt_check_edge_values(TYPES[i]);
}

static void test_vec_dot(void **state)
{
    (void)state;
    for (size_t i = 0; i < NT; i++)
        qt_check_vec_dot(TYPES[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_layout_known_answers),
        cmocka_unit_test(test_plain_quantizer_properties),
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_importance),
        cmocka_unit_test(test_rows_and_determinism),
        cmocka_unit_test(test_edge_values),
        cmocka_unit_test(test_vec_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
