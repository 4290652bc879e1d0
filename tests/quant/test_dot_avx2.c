/* test_dot_avx2.c - the AVX2 dot products and activation quantizers
 * against their scalar twins:
 *  - vec_dot of every quantized weight type, on quantizer output and on
 *    arbitrary block bytes, several row lengths: AVX2 within 1e-5 of
 *    sum |w a| of the scalar result (the integer parts are exact; only the
 *    float accumulation order differs);
 *  - vec_dot_x4 bit-identical to four AVX2 vec_dot calls, any stride;
 *  - Q8_0 / Q8_K quantize_row byte-identical to scalar, including ties,
 *    NaN, infinities, zeros, subnormals and huge values.
 * Skipped when the CPU lacks AVX2. */
/* ctest-labels: fast */
#include "tests/quant/quant_test_util.h"

#include <stddef.h>

#include "common/qp_cpu.h"
#include "common/qp_half.h"
#include "quant/qblocks.h"

/* Offsets of the f16 scale fields of a block, which arbitrary bytes must
 * not turn into inf/NaN (the float parts would then compare NaN). */
typedef struct {
    uint32_t type;
    size_t f16_off[2];
    int n_f16;
} dot_type;

static const dot_type TYPES[] = {
    {QP_GGML_Q8_0, {offsetof(qp_block_q8_0, d)}, 1},
    {QP_GGML_Q4_0, {offsetof(qp_block_q4_0, d)}, 1},
    {QP_GGML_Q4_1, {offsetof(qp_block_q4_1, d), offsetof(qp_block_q4_1, m)}, 2},
    {QP_GGML_Q5_0, {offsetof(qp_block_q5_0, d)}, 1},
    {QP_GGML_Q5_1, {offsetof(qp_block_q5_1, d), offsetof(qp_block_q5_1, m)}, 2},
    {QP_GGML_IQ4_NL, {offsetof(qp_block_iq4_nl, d)}, 1},
    {QP_GGML_Q2_K, {offsetof(qp_block_q2_k, d), offsetof(qp_block_q2_k, dmin)}, 2},
    {QP_GGML_Q3_K, {offsetof(qp_block_q3_k, d)}, 1},
    {QP_GGML_Q4_K, {offsetof(qp_block_q4_k, d), offsetof(qp_block_q4_k, dmin)}, 2},
    {QP_GGML_Q5_K, {offsetof(qp_block_q5_k, d), offsetof(qp_block_q5_k, dmin)}, 2},
    {QP_GGML_Q6_K, {offsetof(qp_block_q6_k, d)}, 1},
    {QP_GGML_IQ4_XS, {offsetof(qp_block_iq4_xs, d)}, 1},
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

static int have_avx2(void)
{
    if (qp_cpu_detect().avx2)
        return 1;
    print_message("CPU lacks AVX2+FMA+F16C: AVX2 twins not tested\n");
    return 0;
}

/* The AVX2 table entry (not forced scalar). */
static const qp_qtype *avx2_entry(uint32_t type)
{
    qp_cpu_force_scalar(0);
    const qp_qtype *q = qp_qtype_get(type);
    assert_non_null(q);
    assert_ptr_not_equal(q, qp_qtype_get_scalar(type));
    return q;
}

#define ROWS 3  /* weight rows per case */
#define AROWS 4 /* activation rows (one vec_dot_x4 group) */

/* Weight rows: quantizer output (mode 0) or arbitrary bytes with finite
 * scale fields (mode 1). */
static uint8_t *make_weights(const dot_type *t, int64_t n, int mode, qt_rng *r, uint64_t *rb_out)
{
    const qp_qtype *sq = qp_qtype_get_scalar(t->type);
    const uint64_t rb = qp_qtype_row_bytes(t->type, n);
    assert_true(rb > 0);
    uint8_t *w = malloc(rb * ROWS);
    if (mode == 0) {
        float *x = malloc(sizeof(float) * (size_t)n);
        for (int i = 0; i < ROWS; i++) {
            qt_heavy(r, x, n, 0.05f * (float)(i + 1));
            sq->quantize_row(x, w + rb * (uint64_t)i, n, NULL);
        }
        free(x);
    } else {
        for (uint64_t k = 0; k < rb * ROWS; k++)
            w[k] = (uint8_t)(qt_next(r) >> 56);
        const uint64_t nblocks = rb * ROWS / sq->block_bytes;
        for (uint64_t b = 0; b < nblocks; b++)
            for (int f = 0; f < t->n_f16; f++) {
                const uint16_t h = qp_f32_to_f16((float)(qt_unif(r) * 0.02 - 0.01));
                memcpy(w + b * sq->block_bytes + t->f16_off[f], &h, 2);
            }
    }
    *rb_out = rb;
    return w;
}

static void check_type(const dot_type *t, int64_t n, int mode, qt_rng *r, double *worst)
{
    const qp_qtype *sq = qp_qtype_get_scalar(t->type), *vq = avx2_entry(t->type);
    assert_non_null(sq->vec_dot);
    assert_non_null(vq->vec_dot);
    assert_non_null(vq->vec_dot_x4);
    assert_int_equal(vq->vec_dot_type, sq->vec_dot_type);
    const qp_qtype *aq = qp_qtype_get_scalar(sq->vec_dot_type);
    uint64_t rb;
    uint8_t *w = make_weights(t, n, mode, r, &rb);
    /* activation rows with padding between them, to exercise the stride */
    const uint64_t arb = qp_qtype_row_bytes(sq->vec_dot_type, n);
    const uint64_t stride = arb + 4 * (uint64_t)(mode + 1); /* keeps Q8_K rows 4-aligned */
    uint8_t *a = calloc(AROWS, stride);
    float *x = malloc(sizeof(float) * (size_t)n * AROWS);
    float *wf = malloc(sizeof(float) * (size_t)n), *af = malloc(sizeof(float) * (size_t)n);
    for (int j = 0; j < AROWS; j++) {
        qt_heavy(r, x + (size_t)j * (size_t)n, n, (float)(j + 1));
        aq->quantize_row(x + (size_t)j * (size_t)n, a + stride * (uint64_t)j, n, NULL);
    }
    for (int i = 0; i < ROWS; i++) {
        const uint8_t *wr = w + rb * (uint64_t)i;
        sq->dequantize_row(wr, wf, n);
        float v[AROWS], v4[AROWS];
        vq->vec_dot_x4(n, wr, a, stride, v4);
        for (int j = 0; j < AROWS; j++) {
            const uint8_t *ar = a + stride * (uint64_t)j;
            aq->dequantize_row(ar, af, n);
            double mag = 0.0;
            for (int64_t k = 0; k < n; k++)
                mag += fabs((double)wf[k] * af[k]);
            const float s = sq->vec_dot(n, wr, ar);
            v[j] = vq->vec_dot(n, wr, ar);
            const double rel = fabs((double)s - v[j]) / (mag > 0 ? mag : 1e-30);
            if (rel > *worst)
                *worst = rel;
            if (!(rel <= 1e-5))
                fail_msg("%s n=%lld mode %d row %d act %d: scalar %.9g avx2 %.9g (sum|wa| %.9g)",
                         qp_ggml_type_name(t->type), (long long)n, mode, i, j, s, v[j], mag);
        }
        assert_memory_equal(v, v4, sizeof v); /* x4 is bit-identical */
    }
    free(w);
    free(a);
    free(x);
    free(wf);
    free(af);
}

static void test_vec_dot_twins(void **state)
{
    (void)state;
    if (!have_avx2())
        skip();
    static const int64_t lens_k[] = {256, 768, 2816};
    static const int64_t lens_32[] = {32, 96, 256, 2816};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const dot_type *t = &TYPES[ti];
        const int k = qp_qtype_get_scalar(t->type)->block_elems == QP_QK_K;
        const int64_t *lens = k ? lens_k : lens_32;
        const size_t nl = k ? sizeof lens_k / sizeof lens_k[0] : sizeof lens_32 / sizeof lens_32[0];
        qt_rng r = {0xd07a0001u + t->type};
        double worst = 0.0;
        for (size_t li = 0; li < nl; li++)
            for (int mode = 0; mode < 2; mode++)
                check_type(t, lens[li], mode, &r, &worst);
        print_message("%-7s worst |avx2 - scalar| / sum|wa| = %.3g\n", qp_ggml_type_name(t->type), worst);
    }
    qp_cpu_force_scalar(0);
}

/* Extreme blocks: every code at its largest magnitude and the activations
 * at +-127 (the int16 pair sums' worst case), both signs. */
static void test_vec_dot_extremes(void **state)
{
    (void)state;
    if (!have_avx2())
        skip();
    const int64_t n = 512;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const dot_type *t = &TYPES[ti];
        const qp_qtype *sq = qp_qtype_get_scalar(t->type), *vq = avx2_entry(t->type);
        const qp_qtype *aq = qp_qtype_get_scalar(sq->vec_dot_type);
        const uint64_t rb = qp_qtype_row_bytes(t->type, n), arb = qp_qtype_row_bytes(sq->vec_dot_type, n);
        for (int pat = 0; pat < 4; pat++) {
            uint8_t *w = malloc(rb), *a = malloc(arb * AROWS);
            memset(w, pat & 1 ? 0xFF : 0x00, rb);
            if (pat >= 2)
                for (uint64_t k = 0; k < rb; k++)
                    w[k] = (uint8_t)(k % 3 ? 0x88 : 0x77);
            const uint64_t nblocks = rb / sq->block_bytes;
            for (uint64_t b = 0; b < nblocks; b++)
                for (int f = 0; f < t->n_f16; f++) {
                    const uint16_t h = qp_f32_to_f16(f ? -0.003f : 0.01f);
                    memcpy(w + b * sq->block_bytes + t->f16_off[f], &h, 2);
                }
            float x[512];
            for (int j = 0; j < AROWS; j++) {
                for (int k = 0; k < n; k++)
                    x[k] = (j & 1 ? -1.0f : 1.0f) * (k % (j + 2) ? 1.0f : -1.0f);
                aq->quantize_row(x, a + arb * (uint64_t)j, n, NULL);
            }
            float v4[AROWS];
            vq->vec_dot_x4(n, w, a, arb, v4);
            for (int j = 0; j < AROWS; j++) {
                const float s = sq->vec_dot(n, w, a + arb * (uint64_t)j);
                const float v = vq->vec_dot(n, w, a + arb * (uint64_t)j);
                assert_true(fabsf(s - v) <= 1e-5f * fabsf(s) + 1e-6f);
                assert_true(memcmp(&v, &v4[j], sizeof v) == 0);
            }
            free(w);
            free(a);
        }
    }
    qp_cpu_force_scalar(0);
}

/* Rows that stress the activation quantizers' rounding and special
 * values; `kind` selects the pattern. */
static void special_row(float *x, int64_t n, int kind, qt_rng *r)
{
    qt_heavy(r, x, n, 2.0f);
    for (int64_t k = 0; k < n; k++) {
        switch (kind) {
        case 1: /* exact halves: d = 1 (Q8_0: amax 127 per block; Q8_K: max -127) */
            x[k] = (float)((int)(qt_next(r) % 253) - 126) + (k % 2 ? 0.5f : 0.0f);
            if (k % 32 == 0)
                x[k] = -127.0f;
            break;
        case 2:
            if (k % 7 == 3)
                x[k] = NAN;
            break;
        case 3:
            if (k % 97 == 5)
                x[k] = k % 2 ? INFINITY : -INFINITY;
            break;
        case 4:
            x[k] = k % 64 < 32 ? 0.0f : x[k] * 1e-41f; /* zero blocks, subnormals */
            break;
        case 5:
            x[k] *= 3e37f; /* beyond QP_KS_XMAX: clamped by Q8_0 */
            break;
        case 6:
            if (k % 64 == 9)
                x[k] = -x[k - 1]; /* ties of magnitude with opposite signs */
            x[k] = k % 256 == 17 ? 500.0f : (k % 256 == 200 ? -500.0f : x[k]);
            break;
        default:
            break;
        }
    }
}

static void test_quantize_twins(void **state)
{
    (void)state;
    if (!have_avx2())
        skip();
    const uint32_t types[] = {QP_GGML_Q8_0, QP_GGML_Q8_K};
    const int64_t n = 2048;
    float *x = malloc(sizeof(float) * (size_t)n), *imp = malloc(sizeof(float) * (size_t)n);
    for (size_t ti = 0; ti < 2; ti++) {
        const qp_qtype *sq = qp_qtype_get_scalar(types[ti]), *vq = avx2_entry(types[ti]);
        assert_ptr_not_equal(sq->quantize_row, vq->quantize_row);
        const uint64_t rb = qp_qtype_row_bytes(types[ti], n);
        uint8_t *b1 = malloc(rb), *b2 = malloc(rb);
        qt_rng r = {0x9a17u + ti};
        for (int kind = 0; kind < 7; kind++)
            for (int rep = 0; rep < 4; rep++) {
                special_row(x, n, kind, &r);
                memset(b1, 0xAA, rb);
                memset(b2, 0x55, rb);
                sq->quantize_row(x, b1, n, NULL);
                vq->quantize_row(x, b2, n, NULL);
                if (memcmp(b1, b2, rb) != 0)
                    fail_msg("%s kind %d rep %d: AVX2 bytes differ", qp_ggml_type_name(types[ti]), kind, rep);
                /* with importance (weights): the scalar search's bytes */
                qt_importance(&r, imp, n);
                sq->quantize_row(x, b1, n, imp);
                vq->quantize_row(x, b2, n, imp);
                assert_memory_equal(b1, b2, rb);
            }
        free(b1);
        free(b2);
    }
    free(x);
    free(imp);
    qp_cpu_force_scalar(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec_dot_twins),
        cmocka_unit_test(test_vec_dot_extremes),
        cmocka_unit_test(test_quantize_twins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
