/* test_iq4_quants.c - IQ4_NL (32 elements, one f16 scale) and IQ4_XS (256
 * elements, 6-bit sub-block scales) over ggml's non-uniform 16-level table:
 * layouts against hand-built blocks, round trips on heavy-tailed data,
 * rows of several blocks, importance weighting, hostile values and vec_dot
 * (IQ4_NL against Q8_0, IQ4_XS against Q8_K). */
/* ctest-labels: fast */
#include "tests/quant/quant_test_util.h"

#include "common/qp_half.h"
#include "quant/qblocks.h"

static const uint32_t TYPES[] = {QP_GGML_IQ4_NL, QP_GGML_IQ4_XS};
#define NT (sizeof TYPES / sizeof TYPES[0])

static void test_entries(void **state)
{
    (void)state;
    qt_check_entry(QP_GGML_IQ4_NL);
    qt_check_entry(QP_GGML_IQ4_XS);
    assert_int_equal(qt_get(QP_GGML_IQ4_NL)->vec_dot_type, QP_GGML_Q8_0);
    assert_int_equal(qt_get(QP_GGML_IQ4_XS)->vec_dot_type, QP_GGML_Q8_K);
    for (int k = 1; k < 16; k++)
        assert_true(qp_iq4_values[k - 1] < qp_iq4_values[k]);
}

static void test_layouts(void **state)
{
    (void)state;
    float y[256];
    qp_block_iq4_nl nl;
    nl.d = qp_f32_to_f16(0.5f);
    for (int j = 0; j < 16; j++)
        nl.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    qt_get(QP_GGML_IQ4_NL)->dequantize_row(&nl, y, 32);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 0.5f * (float)qp_iq4_values[j]);
        assert_true(y[j + 16] == 0.5f * (float)qp_iq4_values[15 - j]);
    }
    /* IQ4_XS: sub-block s has stored scale 32 + 3*s - 10 (6 bits, split
     * into scales_l nibbles and scales_h pairs); code of element e is
     * e % 16 within the first half of a sub-block, 15 - e % 16 after. */
    qp_block_iq4_xs xs;
    memset(&xs, 0, sizeof xs);
    xs.d = qp_f32_to_f16(0.125f);
    for (int s = 0; s < 8; s++) {
        const int v = 32 + 3 * s - 10;
        xs.scales_l[s / 2] |= (uint8_t)((v & 0xF) << (4 * (s % 2)));
        xs.scales_h |= (uint16_t)((v >> 4) << (2 * s));
        for (int j = 0; j < 16; j++)
            xs.qs[16 * s + j] = (uint8_t)(j | ((15 - j) << 4));
    }
    for (int s = 0; s < 8; s++)
        assert_int_equal(qp_iq4xs_scale(s, &xs), 32 + 3 * s - 10);
    qt_get(QP_GGML_IQ4_XS)->dequantize_row(&xs, y, 256);
    for (int e = 0; e < 256; e++) {
        const int s = e / 32, j = e % 32;
        const int code = j < 16 ? j : 15 - (j - 16);
        assert_true(y[e] == 0.125f * (float)(3 * s - 10) * (float)qp_iq4_values[code]);
    }
}

static void test_accuracy(void **state)
{
    (void)state;
    qt_check_accuracy(QP_GGML_IQ4_NL, 0.125);
    qt_check_accuracy(QP_GGML_IQ4_XS, 0.11);
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
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_importance),
        cmocka_unit_test(test_rows_and_determinism),
        cmocka_unit_test(test_edge_values),
        cmocka_unit_test(test_vec_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
