/* test_kquant_search.c - the shared searches of quant/kquant_search.c:
 * rounding, grids, the exactness of the scale sweep against a dense
 * brute-force scan, the affine fit against min/max, the two-level
 * searches' ranges and returned errors, input sanitizing and weights. */
/* ctest-labels: fast */
#include "tests/quant/quant_test_util.h"

#include "quant/kquant_search.h"
#include "quant/qblocks.h"

static void test_nearest_int(void **state)
{
    (void)state;
    assert_int_equal(qp_ks_nearest_int(0.5f), 0);
    assert_int_equal(qp_ks_nearest_int(1.5f), 2);
    assert_int_equal(qp_ks_nearest_int(-2.5f), -2);
    assert_int_equal(qp_ks_nearest_int(-2.6f), -3);
    assert_int_equal(qp_ks_nearest_int(1e30f), 4194303);
    assert_int_equal(qp_ks_nearest_int(-INFINITY), -4194303);
    assert_int_equal(qp_ks_nearest_int(NAN), 0);
}

static int brute_index(const qp_ks_grid *g, float z)
{
    int best = 0;
    for (int k = 1; k < g->nlev; k++)
        if (fabsf(g->lev[k] - z) < fabsf(g->lev[best] - z))
            best = k;
    return best;
}

static void test_grid_index(void **state)
{
    (void)state;
    qp_ks_grid u, t;
    qp_ks_grid_uniform(&u, -32, 31);
    qp_ks_grid_table(&t, qp_iq4_values, 16);
    qt_rng r = {5};
    for (int i = 0; i < 20000; i++) {
        const float z = (float)(qt_unif(&r) * 360.0 - 180.0);
        assert_int_equal(qp_ks_grid_index(&t, z), brute_index(&t, z));
        const float zu = z / 4.0f;
        if (fabsf(zu - floorf(zu) - 0.5f) > 1e-4f) /* away from ties */
            assert_int_equal(qp_ks_grid_index(&u, zu), brute_index(&u, zu));
    }
}

/* Error of the least-squares scale for the codes nearest x*t. */
static double lsq_error_at(int n, const float *x, const float *w, const qp_ks_grid *g, double t)
{
    double sqx = 0, sqq = 0, sxx = 0;
    for (int i = 0; i < n; i++) {
        const double v = g->lev[qp_ks_grid_index(g, (float)(x[i] * t))];
        sqx += (double)w[i] * x[i] * v;
        sqq += (double)w[i] * v * v;
        sxx += (double)w[i] * x[i] * x[i];
    }
    return sqq > 0 ? sxx - sqx * sqx / sqq : sxx;
}

/* The sweep finds the best scale of its window: no t on a dense scan of
 * the same window (both signs) does better. */
static void test_sym_scale_is_optimal(void **state)
{
    (void)state;
    qp_ks_grid grids[3];
    qp_ks_grid_uniform(&grids[0], -4, 3);
    qp_ks_grid_uniform(&grids[1], -32, 31);
    qp_ks_grid_table(&grids[2], qp_iq4_values, 16);
    const int lens[3] = {16, 16, 32};
    qt_rng r = {6};
    for (int gi = 0; gi < 3; gi++) {
        const qp_ks_grid *g = &grids[gi];
        const int n = lens[gi];
        for (int trial = 0; trial < 16; trial++) {
            float x[32], w[32];
            uint8_t L[32];
            qt_heavy(&r, x, n, 1.0f);
            qt_importance(&r, w, n);
            const float s = qp_ks_sym_scale_window(n, x, w, g, 0.5f, 1.3f, L);
            const double mine = qp_ks_sym_requant(n, x, w, g, s, L);
            float amax = 0;
            for (int i = 0; i < n; i++)
                amax = fmaxf(amax, fabsf(x[i]));
            const double e0 = fabs(g->lev[0]), e1 = fabs(g->lev[g->nlev - 1]);
            const double t_lo = 0.5 * fmin(e0, e1) / amax, t_hi = 1.3 * fmax(e0, e1) / amax;
            double brute = INFINITY;
            for (int k = 0; k <= 8000; k++) {
                const double t = t_lo + (t_hi - t_lo) * k / 8000.0;
                brute = fmin(brute, lsq_error_at(n, x, w, g, t));
                brute = fmin(brute, lsq_error_at(n, x, w, g, -t));
            }
            assert_true(mine <= brute * (1.0 + 1e-5) + 1e-12);
        }
    }
}

/* The affine fit beats the min/max mapping and keeps its contract. */
static void test_affine_fit(void **state)
{
    (void)state;
    qt_rng r = {7};
    const int qmaxes[3] = {3, 15, 31};
    for (int qi = 0; qi < 3; qi++)
        for (int trial = 0; trial < 50; trial++) {
            const int qmax = qmaxes[qi], n = 32;
            float x[32], w[32], m;
            uint8_t L[32];
            qt_heavy(&r, x, n, 1.0f);
            if (trial % 2)
                for (int i = 0; i < n; i++)
                    x[i] = fabsf(x[i]) + 0.1f; /* all positive: min clamps to 0 */
            qt_importance(&r, w, n);
            const int nonpos = trial % 4 < 2;
            const float s = qp_ks_affine_fit(n, x, w, qmax, nonpos, &m, L);
            assert_true(s >= 0.0f);
            if (nonpos)
                assert_true(m <= 0.0f);
            for (int i = 0; i < n; i++)
                assert_true(L[i] <= qmax);
            float mn = x[0], mx = x[0];
            for (int i = 0; i < n; i++) {
                mn = fminf(mn, x[i]);
                mx = fmaxf(mx, x[i]);
            }
            if (nonpos && mn > 0)
                mn = 0;
            uint8_t T[32];
            const double base = qp_ks_affine_requant(n, x, w, qmax, (mx - mn) / qmax, -mn, T);
            const double mine = qp_ks_affine_requant(n, x, w, qmax, s, -m, T);
            assert_true(mine <= base * (1.0 + 1e-6));
        }
}

/* Two-level searches: integers in range, codes in range, and the returned
 * error is the error of what was returned. */
static void test_superblocks(void **state)
{
    (void)state;
    qt_rng r = {8};
    qp_ks_grid g;
    qp_ks_grid_uniform(&g, -32, 31);
    const qp_ks_sym_spec ss = {.nsub = 16, .sublen = 16, .grid = &g, .lmin = -128, .lmax = 127,
                               .r_lo = 0.5f, .r_hi = 1.3f};
    const qp_ks_affine_spec as = {.nsub = 8, .sublen = 32, .qmax = 15, .scmax = 63, .mmax = 63};
    for (int trial = 0; trial < 20; trial++) {
        float x[256], w[256];
        uint8_t L[256];
        qt_heavy(&r, x, 256, 0.1f);
        qt_importance(&r, w, 256);
        uint16_t d, dmin;
        int ls[16], sc[8], m[8];
        double e = qp_ks_sym_superblock(&ss, x, w, &d, ls, L);
        double chk = 0.0;
        for (int j = 0; j < 16; j++) {
            assert_true(ls[j] >= -128 && ls[j] <= 127);
            const float dl = qp_f16_to_f32(d) * (float)ls[j];
            for (int i = 0; i < 16; i++) {
                assert_true(L[16 * j + i] < 64);
                const double diff = dl * g.lev[L[16 * j + i]] - x[16 * j + i];
                chk += w[16 * j + i] * diff * diff;
            }
        }
        assert_true(fabs(chk - e) <= 1e-4 * chk + 1e-12);
        e = qp_ks_affine_superblock(&as, x, w, &d, &dmin, sc, m, L);
        chk = 0.0;
        for (int j = 0; j < 8; j++) {
            assert_true(sc[j] >= 0 && sc[j] <= 63 && m[j] >= 0 && m[j] <= 63);
            const float dl = qp_f16_to_f32(d) * (float)sc[j], ml = qp_f16_to_f32(dmin) * (float)m[j];
            for (int i = 0; i < 32; i++) {
                assert_true(L[32 * j + i] <= 15);
                const double diff = (dl * (float)L[32 * j + i] - ml) - x[32 * j + i];
                chk += w[32 * j + i] * diff * diff;
            }
        }
        assert_true(fabs(chk - e) <= 1e-4 * chk + 1e-12);
    }
}

static void test_block_input_and_weights(void **state)
{
    (void)state;
    float x[8] = {1, -2, 3, 0, 5, 6, 7, 8}, buf[8], w[8];
    assert_ptr_equal(qp_ks_block_input(x, 8, buf), x);
    x[1] = NAN;
    x[2] = INFINITY;
    x[3] = -1e30f;
    const float *p = qp_ks_block_input(x, 8, buf);
    assert_ptr_equal(p, buf);
    assert_true(p[0] == 1.0f && p[1] == 0.0f && p[2] == QP_KS_XMAX && p[3] == -QP_KS_XMAX);
    const float imp[8] = {0, -1, NAN, INFINITY, 4, 2, 1, 0};
    assert_true(qp_ks_block_weights(imp, 8, w) == 1.75f);
    assert_true(w[4] == 1.0f && w[5] == 0.5f && w[0] == 0.0f && w[1] == 0.0f && w[2] == 0.0f &&
                w[3] == 0.0f);
    const float zero[8] = {0};
    assert_true(qp_ks_block_weights(zero, 8, w) == 8.0f);
    assert_true(qp_ks_block_weights(NULL, 8, w) == 8.0f && w[7] == 1.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nearest_int),
        cmocka_unit_test(test_grid_index),
        cmocka_unit_test(test_sym_scale_is_optimal),
        cmocka_unit_test(test_affine_fit),
        cmocka_unit_test(test_superblocks),
        cmocka_unit_test(test_block_input_and_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
