/* test_k_quants.c - Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: scale packings and
 * layouts against hand-built blocks, round trips on heavy-tailed data,
 * rows of several super-blocks, importance weighting, hostile values and
 * vec_dot against Q8_K activations. (Bit-exactness against ggml's own
 * bytes is test_ggml_vectors*.) */
/* ctest-labels: fast */
#include "tests/quant/quant_test_util.h"

#include "common/qp_half.h"
#include "quant/qblocks.h"

static const uint32_t TYPES[] = {QP_GGML_Q2_K, QP_GGML_Q3_K, QP_GGML_Q4_K, QP_GGML_Q5_K,
                                 QP_GGML_Q6_K};
#define NT (sizeof TYPES / sizeof TYPES[0])

static void test_entries(void **state)
{
    (void)state;
    for (size_t i = 0; i < NT; i++) {
        qt_check_entry(TYPES[i]);
        assert_int_equal(qt_get(TYPES[i])->vec_dot_type, QP_GGML_Q8_K);
    }
}

/* The 6-bit scale/min packing of Q4_K/Q5_K round-trips every value in
 * every position. */
static void test_k4_scale_packing(void **state)
{
    (void)state;
    for (int v = 0; v < 64; v++)
        for (int pos = 0; pos < 8; pos++) {
            int sc[8], m[8];
            for (int j = 0; j < 8; j++) {
                sc[j] = (j == pos) ? v : (j * 9 + 5) % 64;
                m[j] = (j == pos) ? 63 - v : (j * 23 + 1) % 64;
            }
            uint8_t q[12];
            qp_k4_pack_scales(sc, m, q);
            for (int j = 0; j < 8; j++) {
                uint8_t a, b;
                qp_k4_scale_min(j, q, &a, &b);
                assert_int_equal(a, sc[j]);
                assert_int_equal(b, m[j]);
            }
        }
}

/* Hand-built Q3_K: scale s stored as 32 + (s - 8), codes q = element % 8,
 * so element e of sub-block s is d * (s - 8) * (e % 8 - 4). */
static void test_q3_k_layout(void **state)
{
    (void)state;
    qp_block_q3_k b;
    memset(&b, 0, sizeof b);
    b.d = qp_f32_to_f16(0.5f);
    for (int s = 0; s < 16; s++) {
        const int v = 32 + s - 8;
        b.scales[s % 8] |= (uint8_t)((v & 0xF) << (s < 8 ? 0 : 4));
        b.scales[8 + s % 4] |= (uint8_t)((v >> 4) << (2 * (s / 4)));
    }
    for (int e = 0; e < 256; e++) {
        const int q = e % 8, h = e / 128, k = (e % 128) / 32, l = e % 32;
        b.qs[32 * h + l] |= (uint8_t)((q & 3) << (2 * k));
        b.hmask[l] |= (uint8_t)((q >> 2) << (4 * h + k));
    }
    for (int s = 0; s < 16; s++)
        assert_int_equal(qp_k3_scale(s, b.scales), 32 + s - 8);
    float y[256];
    qt_get(QP_GGML_Q3_K)->dequantize_row(&b, y, 256);
    for (int e = 0; e < 256; e++)
        assert_true(y[e] == 0.5f * (float)(e / 16 - 8) * (float)(e % 8 - 4));
}

/* Hand-built Q6_K: scale of sub-block s = s - 8, code of element e =
 * (e * 5) % 64. */
static void test_q6_k_layout(void **state)
{
    (void)state;
    qp_block_q6_k b;
    memset(&b, 0, sizeof b);
    b.d = qp_f32_to_f16(0.25f);
    for (int s = 0; s < 16; s++)
        b.scales[s] = (int8_t)(s - 8);
    for (int e = 0; e < 256; e++) {
        const int q = (e * 5) % 64, h = e / 128, k = (e % 128) / 32, l = e % 32;
        b.ql[64 * h + 32 * (k & 1) + l] |= (uint8_t)((q & 0xF) << (k >= 2 ? 4 : 0));
        b.qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
    }
    float y[256];
    qt_get(QP_GGML_Q6_K)->dequantize_row(&b, y, 256);
    for (int e = 0; e < 256; e++)
        assert_true(y[e] == 0.25f * (float)(e / 16 - 8) * (float)((e * 5) % 64 - 32));
}

/* Hand-built Q4_K and Q5_K: sub-block s has scale s + 1 and min s; code
 * of element e is e % 16 (Q4_K) or e % 32 (Q5_K). */
static void test_q4_q5_k_layout(void **state)
{
    (void)state;
    int sc[8], m[8];
    for (int s = 0; s < 8; s++) {
        sc[s] = s + 1;
        m[s] = s;
    }
    qp_block_q4_k b4;
    memset(&b4, 0, sizeof b4);
    b4.d = qp_f32_to_f16(0.5f);
    b4.dmin = qp_f32_to_f16(0.25f);
    qp_k4_pack_scales(sc, m, b4.scales);
    qp_block_q5_k b5;
    memset(&b5, 0, sizeof b5);
    b5.d = b4.d;
    b5.dmin = b4.dmin;
    qp_k4_pack_scales(sc, m, b5.scales);
    for (int e = 0; e < 256; e++) {
        const int c = e / 64, l = e % 64;
        b4.qs[32 * c + l % 32] |= (uint8_t)((e % 16) << (l < 32 ? 0 : 4));
        const int q5 = e % 32;
        b5.qs[32 * c + l % 32] |= (uint8_t)((q5 & 0xF) << (l < 32 ? 0 : 4));
        b5.qh[l % 32] |= (uint8_t)((q5 >> 4) << (2 * c + l / 32));
    }
    float y[256];
    qt_get(QP_GGML_Q4_K)->dequantize_row(&b4, y, 256);
    for (int e = 0; e < 256; e++)
        assert_true(y[e] == 0.5f * (float)(e / 32 + 1) * (float)(e % 16) - 0.25f * (float)(e / 32));
    qt_get(QP_GGML_Q5_K)->dequantize_row(&b5, y, 256);
    for (int e = 0; e < 256; e++)
        assert_true(y[e] == 0.5f * (float)(e / 32 + 1) * (float)(e % 32) - 0.25f * (float)(e / 32));
}

/* Hand-built Q2_K: sub-block s has scale s % 16 and min 15 - s; code of
 * element e is e % 4. */
static void test_q2_k_layout(void **state)
{
    (void)state;
    qp_block_q2_k b;
    memset(&b, 0, sizeof b);
    b.d = qp_f32_to_f16(1.0f);
    b.dmin = qp_f32_to_f16(0.5f);
    for (int s = 0; s < 16; s++)
        b.scales[s] = (uint8_t)(s | ((15 - s) << 4));
    for (int e = 0; e < 256; e++) {
        const int h = e / 128, k = (e % 128) / 32, l = e % 32;
        b.qs[32 * h + l] |= (uint8_t)((e % 4) << (2 * k));
    }
    float y[256];
    qt_get(QP_GGML_Q2_K)->dequantize_row(&b, y, 256);
    for (int e = 0; e < 256; e++)
        assert_true(y[e] == (float)(e / 16) * (float)(e % 4) - 0.5f * (float)(15 - e / 16));
}

/* Without an importance matrix the objective is the plain error, so an
 * all-zero importance (no information) must give the same bytes. */
static void test_zero_importance_is_plain(void **state)
{
    (void)state;
    qt_rng r = {77};
    float x[512], imp[512];
    qt_heavy(&r, x, 512, 0.02f);
    memset(imp, 0, sizeof imp);
    uint8_t a[512], b[512];
    for (size_t i = 0; i < NT; i++) {
        const qp_qtype *q = qt_get(TYPES[i]);
        q->quantize_row(x, a, 512, NULL);
        q->quantize_row(x, b, 512, imp);
        assert_memory_equal(a, b, 2 * q->block_bytes);
    }
}

static void test_accuracy(void **state)
{
    (void)state;
    static const double bound[NT] = {0.31, 0.19, 0.09, 0.052, 0.028};
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
        cmocka_unit_test(test_k4_scale_packing),
        cmocka_unit_test(test_q2_k_layout),
        cmocka_unit_test(test_q3_k_layout),
        cmocka_unit_test(test_q4_q5_k_layout),
        cmocka_unit_test(test_q6_k_layout),
        cmocka_unit_test(test_zero_importance_is_plain),
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_importance),
        cmocka_unit_test(test_rows_and_determinism),
        cmocka_unit_test(test_edge_values),
        cmocka_unit_test(test_vec_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
