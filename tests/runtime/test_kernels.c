/* test_kernels.c - the runtime's kernels: AVX2 twins agree with the scalar
 * ones, the matmul is exact on small integers for every weight type path,
 * identical for any thread count, and vec_dot / dequantize paths agree with
 * an f32 product of the dequantized weights. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_cpu.h"
#include "common/qp_ggml_types.h"
#include "common/qp_half.h"
#include "quant/qtype.h"
#include "runtime-lite/kernels.h"
#include "runtime-lite/matmul.h"

static uint32_t g_rng = 12345;
static float frand(void) /* uniform in [-1, 1) */
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

static float *rand_vec(int64_t n, float scale)
{
    float *v = aligned_alloc(32, (size_t)((n + 7) / 8 * 8) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        v[i] = scale * frand();
    return v;
}

static void assert_close(const float *a, const float *b, int64_t n, double rel)
{
    double max_ref = 0, max_diff = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(a[i]) > max_ref)
            max_ref = fabs(a[i]);
        if (fabs(a[i] - b[i]) > max_diff)
            max_diff = fabs(a[i] - b[i]);
    }
    if (max_diff > rel * (max_ref > 1 ? max_ref : 1))
        fail_msg("max diff %g vs max %g (rel limit %g)", max_diff, max_ref, rel);
}

static int have_avx2(void)
{
    if (!qp_cpu_detect().avx2) {
        print_message("no AVX2 on this CPU: twins not compared\n");
        return 0;
    }
    return 1;
}

static void test_tile_and_pack_twins(void **state)
{
    (void)state;
    if (!have_avx2())
        skip();
    const int64_t K = 77; /* not a multiple of 8: the scalar tail of the pack */
    const uint32_t types[3] = {QP_GGML_F32, QP_GGML_F16, QP_GGML_BF16};
    for (int ti = 0; ti < 3; ti++) {
        const uint32_t type = types[ti];
        const size_t es = type == QP_GGML_F32 ? 4 : 2;
        uint8_t *rows = malloc(16 * (size_t)K * es);
        for (int64_t i = 0; i < 16 * K; i++) {
            const float v = frand();
            if (type == QP_GGML_F32)
                memcpy(rows + 4 * i, &v, 4);
            else {
                uint16_t h = type == QP_GGML_F16 ? qp_f32_to_f16(v) : qp_f32_to_bf16(v);
                memcpy(rows + 2 * i, &h, 2);
            }
        }
        for (int nr = 1; nr <= 16; nr += 5) {
            float *p1 = aligned_alloc(32, 16 * (size_t)K * sizeof(float));
            float *p2 = aligned_alloc(32, 16 * (size_t)K * sizeof(float));
            qp_rt_pack_scalar(type, rows, (uint64_t)K * es, nr, K, p1);
            qp_rt_pack_avx2(type, rows, (uint64_t)K * es, nr, K, p2);
            assert_memory_equal(p1, p2, 16 * (size_t)K * sizeof(float)); /* conversion is exact */
            free(p2);
            float *x = rand_vec(6 * K, 1.0f);
            float y1[6 * 16], y2[6 * 16], y3[6 * 16];
            qp_rt_tile_scalar(6, K, x, K, p1, 16, y1, 16);
            qp_rt_tile_avx2(6, K, x, K, p1, 16, y2, 16);
            assert_close(y1, y2, 6 * 16, 1e-5);
            /* fewer rows: the same values for the rows computed */
            for (int m = 1; m < 6; m++) {
                memset(y3, 0, sizeof y3);
                qp_rt_tile_avx2(m, K, x, K, p1, 16, y3, 16);
                assert_memory_equal(y3, y2, (size_t)m * 16 * sizeof(float));
                qp_rt_tile_scalar(m, K, x, K, p1, 16, y3, 16);
                assert_memory_equal(y3, y1, (size_t)m * 16 * sizeof(float));
            }
            free(x);
            free(p1);
        }
        free(rows);
    }
}

static void test_row_kernel_twins(void **state)
{
    (void)state;
    if (!have_avx2())
        skip();
    const qp_rt_kernels *s = qp_rt_kernels_scalar(), *a = qp_rt_kernels_avx2();
    for (int64_t n = 1; n <= 203; n += 29) {
        float *x = rand_vec(n, 20.0f), *w = rand_vec(n, 2.0f), *u = rand_vec(n, 3.0f);
        float *o1 = rand_vec(n, 0), *o2 = rand_vec(n, 0);
        s->rmsnorm(o1, x, w, n, 1e-6f);
        a->rmsnorm(o2, x, w, n, 1e-6f);
        assert_close(o1, o2, n, 1e-6);
        memcpy(o1, x, (size_t)n * 4);
        memcpy(o2, x, (size_t)n * 4);
        s->swiglu(o1, u, n);
        a->swiglu(o2, u, n);
        assert_close(o1, o2, n, 1e-6);
        memcpy(o1, x, (size_t)n * 4);
        memcpy(o2, x, (size_t)n * 4);
        s->softmax(o1, n);
        a->softmax(o2, n);
        assert_close(o1, o2, n, 1e-6);
        assert_true(s->max(x, n) == a->max(x, n));
        const float m = s->max(x, n);
        const double e1 = s->sum_exp(x, n, m), e2 = a->sum_exp(x, n, m);
        assert_true(fabs(e1 - e2) <= 1e-6 * e1);
        free(x);
        free(w);
        free(u);
        free(o1);
        free(o2);
    }
    /* attention rows, head_dim 64 and 128, 1..50 keys */
    for (int64_t D = 64; D <= 128; D += 64)
        for (int64_t nk = 1; nk <= 50; nk += 7) {
            const int64_t stride = 2 * D;
            float *q = rand_vec(D, 1.0f), *k = rand_vec(nk * stride, 1.0f), *v = rand_vec(nk * stride, 1.0f);
            float *sc = rand_vec(nk, 0), *o1 = rand_vec(D, 0), *o2 = rand_vec(D, 0);
            s->attn_row(q, k, stride, v, stride, nk, D, 0.125f, sc, o1);
            a->attn_row(q, k, stride, v, stride, nk, D, 0.125f, sc, o2);
            assert_close(o1, o2, D, 1e-5);
            free(q);
            free(k);
            free(v);
            free(sc);
            free(o1);
            free(o2);
        }
}

static void test_exp_accuracy(void **state)
{
    (void)state;
    if (!have_avx2())
        skip();
    /* softmax of two values checks exp(d) across the range used */
    const qp_rt_kernels *a = qp_rt_kernels_avx2();
    for (float d = -80.0f; d <= 0.0f; d += 0.37f) {
        float x[2] = {0.0f, d};
        a->softmax(x, 2);
        const double want = exp((double)d) / (1.0 + exp((double)d));
        assert_true(fabs(x[1] - want) <= 4e-7 * want + 1e-37);
    }
}

/* A weight matrix of small integers in every float type: the product with
 * small-integer activations is exact, whatever the order of summation. */
static void test_matmul_exact_and_threads(void **state)
{
    (void)state;
    const int64_t K = 96, N = 37, T = 13;
    const uint32_t types[3] = {QP_GGML_F32, QP_GGML_F16, QP_GGML_BF16};
    int32_t *wi = malloc((size_t)(N * K) * sizeof *wi);
    float *x = malloc((size_t)(T * K) * sizeof *x);
    for (int64_t i = 0; i < N * K; i++)
        wi[i] = (int32_t)(frand() * 8);
    for (int64_t i = 0; i < T * K; i++)
        x[i] = (float)(int)(frand() * 8);
    for (int ti = 0; ti < 3; ti++) {
        const uint32_t type = types[ti];
        const size_t es = type == QP_GGML_F32 ? 4 : 2;
        uint8_t *data = malloc((size_t)(N * K) * es);
        for (int64_t i = 0; i < N * K; i++) {
            const float v = (float)wi[i];
            if (type == QP_GGML_F32)
                memcpy(data + 4 * i, &v, 4);
            else {
                uint16_t h = type == QP_GGML_F16 ? qp_f32_to_f16(v) : qp_f32_to_bf16(v);
                memcpy(data + 2 * i, &h, 2);
            }
        }
        qp_rt_tensor w = {type, K, N, (uint64_t)K * es, data, "w", NULL, 0};
        /* the same rows pre-packed into panels */
        const int64_t n_pan = (N + 15) / 16;
        float *packed = aligned_alloc(32, (size_t)(n_pan * 16 * K) * sizeof(float));
        for (int64_t p = 0; p < n_pan; p++)
            qp_rt_pack_scalar(type, data + (size_t)(p * 16 * K) * es, (uint64_t)K * es,
                              (int)(N - p * 16 < 16 ? N - p * 16 : 16), K, packed + p * 16 * K);
        for (int scalar = 0; scalar <= 1; scalar++) {
            qp_cpu_force_scalar(scalar);
            for (int nt = 1; nt <= 3; nt++) {
                /* rows 5..5+N-6 of the matrix into a wider output */
                /* rows 5.. (packed panels unusable: not on a panel boundary)
                 * and rows 16.. (packed panels used), with and without them */
                for (int variant = 0; variant < 4; variant++) {
                    const int64_t r_first = variant & 1 ? 16 : 5;
                    w.packed = variant & 2 ? packed : NULL;
                    float *y = calloc((size_t)(T * 40), sizeof *y);
                    qp_rt_mm_job job = {&w, r_first, N - r_first, y, 40, 0, 0};
                    qp_err err;
                    assert_int_equal(qp_rt_matmul(&job, 1, x, K, T, nt, &err), QP_OK);
                    for (int64_t t = 0; t < T; t++)
                        for (int64_t r = 0; r < N - r_first; r++) {
                            double want = 0;
                            for (int64_t k = 0; k < K; k++)
                                want += (double)wi[(r + r_first) * K + k] * x[t * K + k];
                            assert_true(y[t * 40 + r] == (float)want);
                        }
                    free(y);
                }
            }
        }
        qp_cpu_force_scalar(0);
        free(packed);
        free(data);
    }
    free(wi);
    free(x);
}

/* Quantized weights: the vec_dot path (activations quantized to the
 * vec_dot type) is close to f32 x dequantized weights, and bit-identical
 * for any thread count. */
static void test_matmul_quantized(void **state)
{
    (void)state;
    const uint32_t types[] = {QP_GGML_Q4_0, QP_GGML_Q8_0, QP_GGML_Q4_K, QP_GGML_Q6_K, QP_GGML_Q2_K};
    const int64_t K = 256, N = 20, T = 7;
    float *wf = rand_vec(N * K, 1.0f), *x = rand_vec(T * K, 1.0f);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const qp_qtype *qt = qp_qtype_get(types[ti]);
        if (!qt || !qt->quantize_row || !qt->dequantize_row) {
            print_message("type %s not available yet\n", qp_ggml_type_name(types[ti]));
            continue;
        }
        const uint64_t rb = qp_qtype_row_bytes(types[ti], K);
        uint8_t *q = malloc((size_t)(rb * N));
        for (int64_t r = 0; r < N; r++)
            qt->quantize_row(wf + r * K, q + r * rb, K, NULL);
        float *deq = malloc((size_t)(N * K) * sizeof(float));
        for (int64_t r = 0; r < N; r++)
            qt->dequantize_row(q + r * rb, deq + r * K, K);
        qp_rt_tensor w = {types[ti], K, N, rb, q, "q", NULL, 0};
        float *y1 = calloc((size_t)(T * N), sizeof(float)), *y2 = calloc((size_t)(T * N), sizeof(float));
        float *ref = calloc((size_t)(T * N), sizeof(float));
        qp_rt_mm_job j1 = {&w, 0, N, y1, N, 0, 0}, j2 = {&w, 0, N, y2, N, 0, 0};
        qp_err err;
        assert_int_equal(qp_rt_matmul(&j1, 1, x, K, T, 1, &err), QP_OK);
        assert_int_equal(qp_rt_matmul(&j2, 1, x, K, T, 3, &err), QP_OK);
        assert_memory_equal(y1, y2, (size_t)(T * N) * sizeof(float));
        double max_err = 0, max_ref = 0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = 0; r < N; r++) {
                double d = 0;
                for (int64_t k = 0; k < K; k++)
                    d += (double)deq[r * K + k] * x[t * K + k];
                ref[t * N + r] = (float)d;
                max_ref = fmax(max_ref, fabs(d));
                max_err = fmax(max_err, fabs(d - y1[t * N + r]));
            }
        print_message("%s: max |y - f32 ref| %.3g of %.3g\n", qp_ggml_type_name(types[ti]), max_err, max_ref);
        /* activation quantization to 8 bits costs well under 2% */
        assert_true(max_err < 0.02 * max_ref);
        free(q);
        free(deq);
        free(y1);
        free(y2);
        free(ref);
    }
    free(wf);
    free(x);
}

static void test_rope(void **state)
{
    (void)state;
    /* position 0 is the identity; rotation keeps each pair's norm */
    float c[4 * 8], s[4 * 8];
    qp_rt_rope_table(c, s, 4, 16, 10000.0);
    float v[16], w[16];
    for (int i = 0; i < 16; i++)
        v[i] = w[i] = frand();
    qp_rt_rope_neox(w, 16, c, s);
    assert_memory_equal(v, w, sizeof v);
    qp_rt_rope_neox(w, 16, c + 3 * 8, s + 3 * 8);
    for (int i = 0; i < 8; i++) {
        const double n0 = v[i] * v[i] + v[i + 8] * v[i + 8], n1 = w[i] * w[i] + w[i + 8] * w[i + 8];
        assert_true(fabs(n0 - n1) < 1e-5);
    }
    /* pair 0 turns by exactly 3 radians at position 3 */
    assert_true(fabs(w[0] - (v[0] * cos(3.0) - v[8] * sin(3.0))) < 1e-5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tile_and_pack_twins),
        cmocka_unit_test(test_row_kernel_twins),
        cmocka_unit_test(test_exp_accuracy),
        cmocka_unit_test(test_matmul_exact_and_threads),
        cmocka_unit_test(test_matmul_quantized),
        cmocka_unit_test(test_rope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
