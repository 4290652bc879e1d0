/* test_float_types.c - F32, F16 and BF16 rows: ggml's conversions (round to
 * nearest even, saturation to inf, quiet NaN), exact round trips of every
 * representable value, rows, and vec_dot with f32 activations. */
/* ctest-labels: fast */
#include "tests/quant/quant_test_util.h"

#include "common/qp_half.h"

static void test_entries(void **state)
{
    (void)state;
    const uint32_t types[3] = {QP_GGML_F32, QP_GGML_F16, QP_GGML_BF16};
    for (int i = 0; i < 3; i++) {
        qt_check_entry(types[i]);
        assert_int_equal(qt_get(types[i])->vec_dot_type, QP_GGML_F32);
    }
}

static uint16_t to_f16(float v)
{
    uint16_t h;
    qt_get(QP_GGML_F16)->quantize_row(&v, &h, 1, NULL);
    return h;
}

static uint16_t to_bf16(float v)
{
    uint16_t h;
    qt_get(QP_GGML_BF16)->quantize_row(&v, &h, 1, NULL);
    return h;
}

static void test_f16_known_values(void **state)
{
    (void)state;
    assert_int_equal(to_f16(1.0f), 0x3C00);
    assert_int_equal(to_f16(-2.0f), 0xC000);
    assert_int_equal(to_f16(65504.0f), 0x7BFF);
    assert_int_equal(to_f16(65519.0f), 0x7BFF); /* below the midpoint */
    assert_int_equal(to_f16(65520.0f), 0x7C00); /* tie -> even -> inf */
    assert_int_equal(to_f16(INFINITY), 0x7C00);
    assert_int_equal(to_f16(0x1p-24f), 0x0001);  /* smallest subnormal */
    assert_int_equal(to_f16(0x1p-25f), 0x0000);  /* tie -> even -> 0 */
    assert_int_equal(to_f16(0x1.8p-24f), 0x0002); /* tie -> even -> 2 */
    assert_int_equal(to_f16(1.0f + 0x1p-11f), 0x3C00); /* tie -> even */
    assert_int_equal(to_f16(1.0f + 0x1.8p-10f), 0x3C02);
    assert_int_equal(to_f16(NAN) & 0x7E00, 0x7E00);
    assert_int_equal(to_f16(-0.0f), 0x8000);
}

static void test_bf16_known_values(void **state)
{
    (void)state;
    assert_int_equal(to_bf16(1.0f), 0x3F80);
    assert_int_equal(to_bf16(qp_bits_f32(0x3F808000u)), 0x3F80); /* tie -> even */
    assert_int_equal(to_bf16(qp_bits_f32(0x3F818000u)), 0x3F82); /* tie -> even (up) */
    assert_int_equal(to_bf16(qp_bits_f32(0x3F808001u)), 0x3F81);
    assert_int_equal(to_bf16(INFINITY), 0x7F80);
    assert_int_equal(to_bf16(qp_bits_f32(0x7F800001u)) & 0x0040, 0x0040); /* quiet NaN */
}

/* Every non-NaN 16-bit pattern decodes and re-encodes to itself. */
static void test_exhaustive_round_trip(void **state)
{
    (void)state;
    const qp_qtype *h = qt_get(QP_GGML_F16), *b = qt_get(QP_GGML_BF16);
    for (uint32_t u = 0; u < 65536; u++) {
        uint16_t in = (uint16_t)u, out;
        float v;
        if ((u & 0x7C00) != 0x7C00 || (u & 0x03FF) == 0) {
            h->dequantize_row(&in, &v, 1);
            h->quantize_row(&v, &out, 1, NULL);
            assert_int_equal(out, in);
        }
        if ((u & 0x7F80) != 0x7F80 || (u & 0x007F) == 0) {
            b->dequantize_row(&in, &v, 1);
            b->quantize_row(&v, &out, 1, NULL);
            assert_int_equal(out, in);
        }
    }
}

static void test_rows(void **state)
{
    (void)state;
    qt_check_rows(QP_GGML_F32, 0);
    qt_check_rows(QP_GGML_F16, 0);
    qt_check_rows(QP_GGML_BF16, 1);
    float x[37], y[37];
    qt_rng r = {3};
    qt_heavy(&r, x, 37, 1.0f);
    free(qt_roundtrip(QP_GGML_F32, x, y, 37, 1, NULL));
    assert_memory_equal(x, y, sizeof x);
}

static void test_vec_dot(void **state)
{
    (void)state;
    enum { N = 1000 };
    qt_rng r = {4};
    float w[N], a[N], wd[N];
    uint8_t buf[4 * N];
    qt_heavy(&r, w, N, 1.0f);
    qt_heavy(&r, a, N, 1.0f);
    const uint32_t types[3] = {QP_GGML_F32, QP_GGML_F16, QP_GGML_BF16};
    for (int t = 0; t < 3; t++) {
        const qp_qtype *q = qt_get(types[t]);
        q->quantize_row(w, buf, N, NULL);
        q->dequantize_row(buf, wd, N);
        double ref = 0.0, mag = 0.0;
        for (int i = 0; i < N; i++) {
            ref += (double)wd[i] * a[i];
            mag += fabs((double)wd[i] * a[i]);
        }
        assert_true(fabs(q->vec_dot(N, buf, a) - ref) <= 1e-6 * mag);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_bf16_known_values),
        cmocka_unit_test(test_exhaustive_round_trip),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_vec_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
