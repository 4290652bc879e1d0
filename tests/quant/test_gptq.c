/* test_gptq.c - error-feedback quantization (quant/gptq.c) on a small
 * synthetic matrix with strongly correlated inputs: for every supported
 * type the output error ||(W - Q) X||^2 is clearly below the plain
 * importance quantization's, the bytes are ordinary blocks the existing
 * dequantizer reads, the result does not depend on the thread count, a
 * singular H falls back to the plain bytes, and bad calls are refused. */
/* ctest-labels: fast threads */
#include "quant_test_util.h"

#include "quant/gptq.h"

#define ROWS 16
#define N 512 /* two super-blocks: the feedback crosses a block boundary */
#define T 768

static const uint32_t TYPES[] = {QP_GGML_Q2_K, QP_GGML_Q3_K, QP_GGML_Q4_K, QP_GGML_Q5_K, QP_GGML_Q6_K};

/* Inputs with correlated channels (as hidden states are): x = A z with a
 * few shared factors plus per-channel noise and channel scales that span
 * a decade. H = X^T X. */
static void make_h(double *h, uint64_t seed)
{
    qt_rng r = {seed};
    enum { K = 8 };
    static float a[N][K], sc[N];
    for (int i = 0; i < N; i++) {
        sc[i] = (float)exp(1.2 * qt_gauss(&r));
        for (int k = 0; k < K; k++)
            a[i][k] = (float)qt_gauss(&r);
    }
    memset(h, 0, sizeof(double) * N * N);
    float *x = malloc(sizeof(float) * N);
    for (int t = 0; t < T; t++) {
        float z[K];
        for (int k = 0; k < K; k++)
            z[k] = (float)qt_gauss(&r);
        for (int i = 0; i < N; i++) {
            float v = 0.3f * (float)qt_gauss(&r);
            for (int k = 0; k < K; k++)
                v += a[i][k] * z[k];
            x[i] = sc[i] * v;
        }
        for (int i = 0; i < N; i++)
            for (int j = i; j < N; j++)
                h[i * N + j] += (double)x[i] * x[j];
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++)
            h[i * N + j] = h[j * N + i];
    free(x);
}

static double *g_h;
static float *g_w, *g_imp;

static int setup(void **state)
{
    (void)state;
    g_h = malloc(sizeof(double) * N * N);
    g_w = malloc(sizeof(float) * ROWS * N);
    g_imp = malloc(sizeof(float) * N);
    if (!g_h || !g_w || !g_imp)
        return -1;
    make_h(g_h, 0x9e3779b97f4a7c15ull);
    qt_rng r = {12345};
    for (int i = 0; i < ROWS; i++)
        qt_heavy(&r, g_w + i * N, N, 0.02f * (float)(1 + i % 3));
    for (int j = 0; j < N; j++)
        g_imp[j] = (float)(g_h[j * N + j] / T); /* what an imatrix holds: the mean of x_j^2 */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_h);
    free(g_w);
    free(g_imp);
    return 0;
}

static double out_err_of(uint32_t type, const void *q)
{
    float *y = malloc(sizeof(float) * ROWS * N);
    const qp_qtype *qt = qp_qtype_get(type);
    for (int r = 0; r < ROWS; r++)
        qt->dequantize_row((const char *)q + r * qp_qtype_row_bytes(type, N), y + r * N, N);
    for (int k = 0; k < ROWS * N; k++)
        assert_true(isfinite(y[k]));
    double e = qp_gptq_output_error(g_w, y, ROWS, N, g_h);
    free(y);
    return e;
}

static void test_lower_output_error(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof TYPES / sizeof *TYPES; k++) {
        const uint32_t type = TYPES[k];
        const uint64_t rb = qp_qtype_row_bytes(type, N);
        uint8_t *plain = malloc(rb * ROWS), *fb = malloc(rb * ROWS);
        for (int r = 0; r < ROWS; r++)
            qp_qtype_get(type)->quantize_row(g_w + r * N, plain + r * rb, N, g_imp);
        qp_err err;
        assert_int_equal(qp_gptq_quantize(type, g_w, ROWS, N, g_h, g_imp, NULL, fb, &err), QP_OK);
        const double e_plain = out_err_of(type, plain), e_fb = out_err_of(type, fb);
        /* the feedback pass alone (no refinement): refinement must only help */
        const qp_gptq_options bare = {0.01, 2, 0, 1, -1, -1};
        assert_int_equal(qp_gptq_quantize(type, g_w, ROWS, N, g_h, g_imp, &bare, fb, &err), QP_OK);
        const double e_bare = out_err_of(type, fb);
        print_message("%-5s output error: plain %.4g, feedback %.4g (%.3f), refined %.4g (%.3f)\n",
                      qp_ggml_type_name(type), e_plain, e_bare, e_bare / e_plain, e_fb, e_fb / e_plain);
        assert_true(e_bare < 0.9 * e_plain);
        assert_true(e_fb < e_bare);
        free(plain);
        free(fb);
    }
}

static void test_thread_count_invariant(void **state)
{
    (void)state;
    static const uint32_t some[] = {QP_GGML_Q3_K, QP_GGML_Q5_K}; /* one symmetric, one affine */
    for (size_t k = 0; k < sizeof some / sizeof *some; k++) {
        const uint32_t type = some[k];
        const uint64_t rb = qp_qtype_row_bytes(type, N);
        uint8_t *a = malloc(rb * ROWS), *b = malloc(rb * ROWS);
        qp_gptq_options o1 = {0.01, 2, 0, 1, 0, 0}, o3 = {0.01, 2, 0, 3, 0, 0};
        qp_err err;
        assert_int_equal(qp_gptq_quantize(type, g_w, ROWS, N, g_h, g_imp, &o1, a, &err), QP_OK);
        assert_int_equal(qp_gptq_quantize(type, g_w, ROWS, N, g_h, g_imp, &o3, b, &err), QP_OK);
        assert_memory_equal(a, b, rb * ROWS);
        free(a);
        free(b);
    }
}

/* Options are honoured and each variant still beats plain quantization. */
static void test_options(void **state)
{
    (void)state;
    const uint32_t type = QP_GGML_Q4_K;
    const uint64_t rb = qp_qtype_row_bytes(type, N);
    uint8_t *plain = malloc(rb * ROWS), *q = malloc(rb * ROWS);
    for (int r = 0; r < ROWS; r++)
        qp_qtype_get(type)->quantize_row(g_w + r * N, plain + r * rb, N, g_imp);
    const double e_plain = out_err_of(type, plain);
    const qp_gptq_options opts[] = {
        {0.001, 1, 0, 2, -1, -1}, {0.1, 3, 0, 2, 4, -1}, {0.01, 2, 1, 2, 8, 0},
    };
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++) {
        qp_err err;
        assert_int_equal(qp_gptq_quantize(type, g_w, ROWS, N, g_h, NULL, &opts[k], q, &err), QP_OK);
        assert_true(out_err_of(type, q) < 0.9 * e_plain);
    }
    free(plain);
    free(q);
}

/* No input data at all: nothing to feed back, the plain bytes come out. */
static void test_singular_h_is_plain(void **state)
{
    (void)state;
    double *zero = calloc(N * N, sizeof(double));
    const uint32_t type = QP_GGML_Q3_K;
    const uint64_t rb = qp_qtype_row_bytes(type, N);
    uint8_t *plain = malloc(rb * ROWS), *q = malloc(rb * ROWS);
    for (int r = 0; r < ROWS; r++)
        qp_qtype_get(type)->quantize_row(g_w + r * N, plain + r * rb, N, g_imp);
    qp_err err;
    assert_int_equal(qp_gptq_quantize(type, g_w, ROWS, N, zero, g_imp, NULL, q, &err), QP_OK);
    assert_memory_equal(plain, q, rb * ROWS);
    free(zero);
    free(plain);
    free(q);
}

static void test_bad_calls(void **state)
{
    (void)state;
    uint8_t buf[4096];
    qp_err err;
    assert_false(qp_gptq_supported(QP_GGML_Q4_0));
    assert_true(qp_gptq_supported(QP_GGML_Q6_K));
    assert_int_equal(qp_gptq_quantize(QP_GGML_Q4_0, g_w, 1, N, g_h, NULL, NULL, buf, &err), QP_ERR_UNSUPPORTED);
    assert_int_equal(qp_gptq_quantize(QP_GGML_Q4_K, g_w, 1, 100, g_h, NULL, NULL, buf, &err), QP_ERR_USAGE);
    assert_int_equal(qp_gptq_quantize(QP_GGML_Q4_K, g_w, 1, N, NULL, NULL, NULL, buf, &err), QP_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lower_output_error),  cmocka_unit_test(test_thread_count_invariant),
        cmocka_unit_test(test_options),             cmocka_unit_test(test_singular_h_is_plain),
        cmocka_unit_test(test_bad_calls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
