/* test_avx2_twins.c - every AVX2 quantizer and dequantizer in the dispatch
 * table gives the portable kernel's bytes and floats exactly (so a file
 * does not depend on the CPU that wrote it): seeded heavy-tailed rows of
 * one to many blocks, with and without importance (including blocks of
 * zero importance), and edge rows (zeros, constants, one spike, tiny and
 * huge magnitudes, NaN/inf). Also: 1 and 2 threads give the same bytes.
 * Skipped when the CPU lacks AVX2+FMA+F16C. */
/* ctest-labels: fast threads */
#include "tests/quant/quant_test_util.h"

#include "common/qp_cpu.h"
#include "common/qp_threads.h"
#include "quant/qtype_ref.h"

static const uint32_t TYPES[] = {QP_GGML_Q2_K, QP_GGML_Q3_K,   QP_GGML_Q4_K,   QP_GGML_Q5_K,
                                 QP_GGML_Q6_K, QP_GGML_IQ4_XS, QP_GGML_IQ4_NL, QP_GGML_Q8_0,
                                 QP_GGML_Q4_0, QP_GGML_Q4_1,   QP_GGML_Q5_0,   QP_GGML_Q5_1};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

/* Edge row number k (n elements). */
static void edge_row(int k, float *x, int64_t n, qt_rng *r)
{
    for (int64_t i = 0; i < n; i++) {
        switch (k) {
        case 0: x[i] = 0.0f; break;
        case 1: x[i] = -0.75f; break;
        case 2: x[i] = i % 97 == 5 ? 3.0f : 0.0f; break;
        case 3: x[i] = (float)(1e-30 * qt_gauss(r)); break;
        case 4: x[i] = (float)(1e6 * qt_gauss(r)); break;
        case 5: x[i] = i % 61 == 7 ? NAN : (i % 67 == 3 ? -INFINITY : (float)qt_gauss(r)); break;
        case 6: x[i] = (float)(i % 16) - 7.5f; break; /* on a grid, many ties */
        default: x[i] = (float)(qt_gauss(r) * 1e-3) + 0.01f; break; /* offset, one-signed */
        }
    }
}

static int g_avx2;

static int setup(void **state)
{
    (void)state;
    g_avx2 = qp_cpu_detect().avx2;
    qp_cpu_force_scalar(0);
    return 0;
}

static void check_row(uint32_t type, const float *x, const float *imp, int64_t n, const char *what)
{
    const qp_qtype *s = qp_qtype_get_scalar(type), *v = qp_qtype_get(type);
    const uint64_t rb = qp_qtype_row_bytes(type, n);
    uint8_t *a = malloc(rb), *b = malloc(rb);
    float *da = malloc(sizeof(float) * (size_t)n), *db = malloc(sizeof(float) * (size_t)n);
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 0xA5, rb);
    memset(b, 0x5A, rb);
    s->quantize_row(x, a, n, imp);
    v->quantize_row(x, b, n, imp);
    if (memcmp(a, b, rb) != 0) {
        for (uint64_t k = 0; k < rb; k++)
            if (a[k] != b[k])
                fail_msg("%s %s n=%lld%s: byte %llu scalar 0x%02x avx2 0x%02x", qp_ggml_type_name(type),
                         what, (long long)n, imp ? " +imp" : "", (unsigned long long)k, a[k], b[k]);
    }
    s->dequantize_row(a, da, n);
    v->dequantize_row(a, db, n);
    assert_memory_equal(da, db, sizeof(float) * (size_t)n);
    free(a);
    free(b);
    free(da);
    free(db);
}

static void test_quantize_dequantize_twins(void **state)
{
    (void)state;
    if (!g_avx2) {
        print_message("skipped: this CPU lacks AVX2+FMA+F16C\n");
        skip();
    }
    static const int64_t LENS[] = {256, 512, 1024, 2816, 416 /* 13 blocks of 32 */, 32};
    qt_rng r = {0x7157u};
    for (size_t t = 0; t < NTYPES; t++) {
        const uint32_t type = TYPES[t];
        const qp_qtype *v = qp_qtype_get(type);
        assert_non_null(v);
        if (t < 7) /* the searched types have AVX2 quantizers installed */
            assert_true(v->quantize_row != qp_qtype_get_scalar(type)->quantize_row);
        for (size_t li = 0; li < sizeof LENS / sizeof LENS[0]; li++) {
            const int64_t n = LENS[li];
            if (n % (int64_t)v->block_elems != 0)
                continue;
            float *x = malloc(sizeof(float) * (size_t)n), *imp = malloc(sizeof(float) * (size_t)n);
            for (int rep = 0; rep < 3; rep++) {
                qt_heavy(&r, x, n, (float)exp(3.0 * qt_gauss(&r)));
                qt_importance(&r, imp, n);
                if (rep == 2) /* a block nobody routed to, and hostile importances */
                    for (int64_t i = 0; i < n; i++)
                        imp[i] = i < 256 ? 0.0f : (i % 31 == 0 ? -1.0f : (i % 37 == 0 ? NAN : imp[i]));
                check_row(type, x, NULL, n, "heavy");
                check_row(type, x, imp, n, "heavy");
            }
            for (int k = 0; k < 8; k++) {
                edge_row(k, x, n, &r);
                qt_importance(&r, imp, n);
                check_row(type, x, NULL, n, "edge");
                check_row(type, x, imp, n, "edge");
            }
            free(x);
            free(imp);
        }
    }
}

typedef struct {
    qp_quantize_row_fn fn;
    const float *x;
    uint8_t *out;
    int64_t n;
    uint64_t rb;
} rows_job;

static void rows_fn(void *ctx, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const rows_job *j = ctx;
    for (int64_t i = begin; i < end; i++)
        j->fn(j->x + i * j->n, j->out + (uint64_t)i * j->rb, j->n, NULL);
}

static void test_threads_same_bytes(void **state)
{
    (void)state;
    const int64_t rows = 24, n = 512;
    qt_rng r = {0xBEEFu};
    float *x = malloc(sizeof(float) * (size_t)(rows * n));
    qt_heavy(&r, x, rows * n, 0.02f);
    for (size_t t = 0; t < NTYPES; t++) {
        const uint64_t rb = qp_qtype_row_bytes(TYPES[t], n);
        uint8_t *a = malloc(rb * rows), *b = malloc(rb * rows);
        rows_job j1 = {qp_qtype_get(TYPES[t])->quantize_row, x, a, n, rb}, j2 = j1;
        j2.out = b;
        assert_int_equal(qp_parallel_for(1, rows, rows_fn, &j1), 0);
        assert_int_equal(qp_parallel_for(2, rows, rows_fn, &j2), 0);
        assert_memory_equal(a, b, rb * rows);
        free(a);
        free(b);
    }
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_dequantize_twins),
        cmocka_unit_test(test_threads_same_bytes),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
