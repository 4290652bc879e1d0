/* test_kquant_fast.c - the production (fast) searches against the
 * exhaustive reference (quant/qtype_ref.h) on seeded heavy-tailed rows,
 * plain and importance-weighted: the weighted error stays within a few
 * percent of the reference (a regression guard; the ggml oracle tests
 * check the absolute figures), it beats the plain range quantizer every
 * searched type starts from, and the superblock searches return the
 * error of the block they wrote. */
/* ctest-labels: fast */
#include "tests/quant/quant_test_util.h"

#include "quant/kquant_fast.h"
#include "quant/qtype_ref.h"

/* type, allowed ratio of fast to exhaustive weighted squared error (the
 * measured ratios, plain / weighted by log-normal importance spanning
 * decades: Q2_K 1.07/1.12, Q3_K 0.97/0.93, Q4_K 1.05/1.08, Q5_K 1.03/1.12,
 * Q6_K 1.04/1.08, IQ4_XS 1.00/1.05, IQ4_NL 1.00/1.04) */
static const struct {
    uint32_t type;
    double ratio;
} TYPES[] = {
    {QP_GGML_Q2_K, 1.15},   {QP_GGML_Q3_K, 1.05},   {QP_GGML_Q4_K, 1.12}, {QP_GGML_Q5_K, 1.15},
    {QP_GGML_Q6_K, 1.12},   {QP_GGML_IQ4_XS, 1.08}, {QP_GGML_IQ4_NL, 1.08},
};

static double sq_err(uint32_t type, qp_quantize_row_fn fn, const float *x, const float *imp, int64_t n)
{
    const qp_qtype *q = qp_qtype_get_scalar(type);
    const uint64_t rb = qp_qtype_row_bytes(type, n);
    uint8_t *b = malloc(rb);
    float *y = malloc(sizeof(float) * (size_t)n);
    fn(x, b, n, imp);
    q->dequantize_row(b, y, n);
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)y[i] - x[i];
        e += (imp ? imp[i] : 1.0) * d * d;
    }
    free(b);
    free(y);
    return e;
}

static void test_fast_close_to_exhaustive(void **state)
{
    (void)state;
    const int64_t n = 256 * 32;
    float *x = malloc(sizeof(float) * (size_t)n), *imp = malloc(sizeof(float) * (size_t)n);
    qt_rng r = {0xFA57u};
    qt_heavy(&r, x, n, 0.02f);
    qt_importance(&r, imp, n);
    for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++) {
        const uint32_t type = TYPES[t].type;
        const qp_quantize_row_fn fast = qp_qtype_get_scalar(type)->quantize_row;
        const qp_quantize_row_fn ref = qp_qtype_exhaustive_quantizer(type);
        assert_non_null(ref);
        assert_true(ref != fast);
        for (int wi = 0; wi < 2; wi++) {
            const float *w = wi ? imp : NULL;
            const double ef = sq_err(type, fast, x, w, n), er = sq_err(type, ref, x, w, n);
            print_message("%-7s %s fast/exhaustive error %.4f\n", qp_ggml_type_name(type), wi ? "imat" : "pure",
                          ef / er);
            assert_true(ef <= er * TYPES[t].ratio);
        }
    }
    free(x);
    free(imp);
}

/* The plain starting point of every search: the range (or the largest
 * element) over the grid, integers rounded. The fast search must beat it. */
static void test_fast_beats_range_start(void **state)
{
    (void)state;
    qt_rng r = {0x5EEDu};
    float x[256], w[256];
    uint8_t L[256];
    for (int rep = 0; rep < 50; rep++) {
        qt_heavy(&r, x, 256, 1.0f);
        for (int i = 0; i < 256; i++)
            w[i] = 1.0f;
        const qp_ks_affine_spec sp = {.nsub = 8, .sublen = 32, .qmax = 15, .scmax = 63, .mmax = 63};
        uint16_t d, dm;
        int sc[8], m[8];
        const double e = qp_kf_affine_superblock(&sp, x, w, &d, &dm, sc, m, L);
        /* the block the search returned has the error it reports */
        double chk = 0.0, naive = 0.0;
        float smax = 0.0f, mmax = 0.0f, s[8], mn[8];
        for (int j = 0; j < 8; j++) {
            float lo = x[32 * j], hi = x[32 * j];
            for (int i = 0; i < 32; i++) {
                const float v = x[32 * j + i];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
                const float y = qp_f16_to_f32(d) * (float)sc[j] * (float)L[32 * j + i] - qp_f16_to_f32(dm) * (float)m[j];
                chk += ((double)y - v) * ((double)y - v);
            }
            lo = lo < 0.0f ? lo : 0.0f;
            s[j] = (hi - lo) / 15.0f;
            mn[j] = -lo;
            smax = s[j] > smax ? s[j] : smax;
            mmax = mn[j] > mmax ? mn[j] : mmax;
        }
        const float nd = qp_ks_f16_round(smax / 63.0f), ndm = qp_ks_f16_round(mmax / 63.0f);
        for (int j = 0; j < 8; j++) {
            const int a = qp_ks_clampi(qp_ks_nearest_int(s[j] / nd), 0, 63);
            const int b = qp_ks_clampi(qp_ks_nearest_int(mn[j] / ndm), 0, 63);
            naive += qp_ks_affine_requant(32, x + 32 * j, w, 15, nd * (float)a, ndm * (float)b, L);
        }
        assert_true(fabs(chk - e) <= 1e-4 * e + 1e-30);
        assert_true(e < naive);
    }
}

static void test_sym_superblock_reports_its_error(void **state)
{
    (void)state;
    qt_rng r = {0x6E7u};
    qp_ks_grid g;
    qp_ks_grid_uniform(&g, -32, 31);
    const qp_ks_sym_spec sp = {.nsub = 16, .sublen = 16, .grid = &g, .lmin = -128, .lmax = 127,
                               .r_lo = 0.7f, .r_hi = 1.1f};
    float x[256], w[256];
    uint8_t L[256];
    int ls[16];
    for (int rep = 0; rep < 50; rep++) {
        qt_heavy(&r, x, 256, 1.0f);
        qt_importance(&r, w, 256);
        qp_kf_block_weights(w, 256, w);
        uint16_t d;
        const double e = qp_kf_sym_superblock(&sp, x, w, &d, ls, L);
        double chk = 0.0;
        for (int i = 0; i < 256; i++) {
            const float y = qp_f16_to_f32(d) * (float)ls[i / 16] * g.lev[L[i]];
            chk += (double)w[i] * ((double)y - x[i]) * ((double)y - x[i]);
        }
        assert_true(fabs(chk - e) <= 1e-4 * e + 1e-30);
        for (int j = 0; j < 16; j++)
            assert_true(ls[j] >= -128 && ls[j] <= 127);
    }
}

/* qp_kf_block_weights gives qp_ks_block_weights's values (without the sum). */
static void test_block_weights_same(void **state)
{
    (void)state;
    qt_rng r = {0xB10Cu};
    float imp[256], a[256], b[256];
    for (int rep = 0; rep < 20; rep++) {
        qt_importance(&r, imp, 256);
        if (rep % 4 == 1)
            for (int i = 0; i < 256; i++)
                imp[i] = i % 7 == 0 ? -1.0f : (i % 11 == 0 ? NAN : (i % 13 == 0 ? INFINITY : imp[i]));
        if (rep % 4 == 2)
            for (int i = 0; i < 256; i++)
                imp[i] = 0.0f;
        if (rep % 4 == 3)
            for (int i = 0; i < 256; i++)
                imp[i] *= 1e35f;
        qp_ks_block_weights(imp, 256, a);
        qp_kf_block_weights(imp, 256, b);
        assert_memory_equal(a, b, sizeof a);
    }
    qp_ks_block_weights(NULL, 256, a);
    qp_kf_block_weights(NULL, 256, b);
    assert_memory_equal(a, b, sizeof a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_weights_same),
        cmocka_unit_test(test_fast_close_to_exhaustive),
        cmocka_unit_test(test_fast_beats_range_start),
        cmocka_unit_test(test_sym_superblock_reports_its_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
