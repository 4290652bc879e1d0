/* quant_test_util.h - checks shared by the per-family quant tests
 * (test_legacy_quants.c, test_k_quants.c, test_iq4_quants.c): seeded
 * heavy-tailed data, round trips, row lengths of several blocks with
 * canaries past the end, determinism, importance weighting, hostile values
 * and vec_dot against dequantize-then-dot. Static functions only. */
#ifndef QUANT_TEST_UTIL_H
#define QUANT_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "quant/qtype.h"
#include "support/qp_test.h"

/* ---- seeded data */

typedef struct {
    uint64_t s;
} qt_rng;

static inline uint64_t qt_next(qt_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

static inline double qt_unif(qt_rng *r) { return ((double)(qt_next(r) >> 11) + 0.5) / 9007199254740992.0; }

static inline double qt_gauss(qt_rng *r)
{
    return sqrt(-2.0 * log(qt_unif(r))) * cos(6.283185307179586 * qt_unif(r));
}

/* Weight-like heavy tails: a Gaussian scale mixture (log-normal scale per
 * element) plus rare 10x outliers, and a per-row scale. */
static inline void qt_heavy(qt_rng *r, float *x, int64_t n, float row_scale)
{
    for (int64_t i = 0; i < n; i++) {
        double v = qt_gauss(r) * exp(0.6 * qt_gauss(r));
        if (qt_unif(r) < 0.005)
            v *= 10.0;
        x[i] = (float)(row_scale * v);
    }
}

/* Importance-like weights spanning several decades. */
static inline void qt_importance(qt_rng *r, float *imp, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        imp[i] = (float)exp(2.0 * qt_gauss(r));
}

/* ---- measures */

static inline double qt_werr(const float *x, const float *y, const float *w, int64_t n, double *den)
{
    double num = 0.0, d = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0, e = (double)y[i] - x[i];
        num += wi * e * e;
        d += wi * (double)x[i] * x[i];
    }
    if (den)
        *den = d;
    return num;
}

static inline const qp_qtype *qt_get(uint32_t type)
{
    const qp_qtype *q = qp_qtype_get_scalar(type);
    assert_non_null(q);
    assert_non_null(q->quantize_row);
    assert_non_null(q->dequantize_row);
    return q;
}

/* Quantize + dequantize rows x (rows * n) into y; returns malloc'ed bytes. */
static inline uint8_t *qt_roundtrip(uint32_t type, const float *x, float *y, int64_t n, int rows,
                             const float *imp)
{
    const qp_qtype *q = qt_get(type);
    uint64_t rb = qp_qtype_row_bytes(type, n);
    assert_true(rb > 0);
    uint8_t *buf = malloc(rb * (uint64_t)rows);
    for (int r = 0; r < rows; r++) {
        q->quantize_row(x + (size_t)r * n, buf + rb * (uint64_t)r, n, imp);
        q->dequantize_row(buf + rb * (uint64_t)r, y + (size_t)r * n, n);
    }
    return buf;
}

/* ---- the checks */

#define QT_N 1024  /* row length of the statistical checks */
#define QT_ROWS 16

/* Relative RMSE of a plain round trip on heavy-tailed rows; must be under
 * `bound`. Prints it (the table of the test output). */
static inline double qt_check_accuracy(uint32_t type, double bound)
{
    qt_rng r = {0x5eed0001u + type};
    float *x = malloc(sizeof(float) * QT_N * QT_ROWS), *y = malloc(sizeof(float) * QT_N * QT_ROWS);
    for (int i = 0; i < QT_ROWS; i++)
        qt_heavy(&r, x + (size_t)i * QT_N, QT_N, (float)exp(qt_gauss(&r)) * 0.02f);
    free(qt_roundtrip(type, x, y, QT_N, QT_ROWS, NULL));
    double den, num = qt_werr(x, y, NULL, (int64_t)QT_N * QT_ROWS, &den);
    double rel = sqrt(num / den);
    print_message("%-7s heavy-tailed rel_rmse %.6f (bound %.3f)\n", qp_ggml_type_name(type), rel,
                  bound);
    assert_true(rel < bound);
    free(x);
    free(y);
    return rel;
}

/* With importance, the importance-weighted error must beat the plain
 * quantization's weighted error (the weighted search targets it). */
static inline void qt_check_importance(uint32_t type)
{
    qt_rng r = {0x5eed0002u + type};
    float *x = malloc(sizeof(float) * QT_N * QT_ROWS), *y = malloc(sizeof(float) * QT_N * QT_ROWS);
    float *imp = malloc(sizeof(float) * QT_N);
    qt_importance(&r, imp, QT_N);
    for (int i = 0; i < QT_ROWS; i++)
        qt_heavy(&r, x + (size_t)i * QT_N, QT_N, 0.02f);
    free(qt_roundtrip(type, x, y, QT_N, QT_ROWS, NULL));
    double plain = 0.0, weighted = 0.0;
    for (int i = 0; i < QT_ROWS; i++)
        plain += qt_werr(x + (size_t)i * QT_N, y + (size_t)i * QT_N, imp, QT_N, NULL);
    free(qt_roundtrip(type, x, y, QT_N, QT_ROWS, imp));
    for (int i = 0; i < QT_ROWS; i++)
        weighted += qt_werr(x + (size_t)i * QT_N, y + (size_t)i * QT_N, imp, QT_N, NULL);
    print_message("%-7s importance-weighted error: plain %.4g, with importance %.4g (%.1f%%)\n",
                  qp_ggml_type_name(type), plain, weighted, 100.0 * (weighted / plain - 1.0));
    assert_true(weighted < plain);
    free(x);
    free(y);
    free(imp);
}

/* Rows of 1, 2, 3 and 7 blocks: nothing written past the row (canaries),
 * dequantize writes exactly n floats, and a row of k blocks equals the
 * same blocks quantized one by one (blocks are independent). Same input,
 * same bytes. */
static inline void qt_check_rows(uint32_t type, int use_imp)
{
    const qp_qtype *q = qt_get(type);
    const int64_t be = q->block_elems;
    const int nblk[4] = {1, 2, 3, 7};
    qt_rng r = {0x5eed0003u + type};
    for (int c = 0; c < 4; c++) {
        const int64_t n = be * nblk[c];
        const uint64_t rb = qp_qtype_row_bytes(type, n);
        assert_int_equal(rb, (uint64_t)q->block_bytes * (uint64_t)nblk[c]);
        float *x = malloc(sizeof(float) * (size_t)n), *imp = malloc(sizeof(float) * (size_t)n);
        qt_heavy(&r, x, n, 0.05f);
        qt_importance(&r, imp, n);
        const float *ip = use_imp ? imp : NULL;
        uint8_t *a = malloc(rb + 64), *b = malloc(rb + 64);
        memset(a, 0xA5, rb + 64);
        memset(b, 0x5A, rb + 64);
        q->quantize_row(x, a, n, ip);
        q->quantize_row(x, b, n, ip);
        assert_memory_equal(a, b, rb);
        for (int k = 0; k < 64; k++)
            assert_int_equal(a[rb + k], 0xA5);
        for (int k = 0; k < nblk[c]; k++) {
            q->quantize_row(x + k * be, b, be, ip ? ip + k * be : NULL);
            assert_memory_equal(a + (size_t)k * q->block_bytes, b, q->block_bytes);
        }
        float *y = malloc(sizeof(float) * (size_t)(n + 16));
        for (int k = 0; k < 16; k++)
            y[n + k] = 12345.0f;
        q->dequantize_row(a, y, n);
        for (int k = 0; k < 16; k++)
            assert_true(y[n + k] == 12345.0f);
        for (int64_t i = 0; i < n; i++)
            assert_true(isfinite(y[i]));
        free(x);
        free(imp);
        free(a);
        free(b);
        free(y);
    }
}

/* Degenerate and hostile blocks: all zero -> exact zeros; constant; one
 * large outlier among tiny values; denormals; huge magnitudes; NaN and
 * infinities. Output must be finite and the zero block exact; importance
 * of zeros, negatives and NaN must be harmless. */
static inline void qt_check_edge_values(uint32_t type)
{
    const qp_qtype *q = qt_get(type);
    const int64_t n = q->block_elems * 2;
    const uint64_t rb = qp_qtype_row_bytes(type, n);
    float *x = calloc((size_t)n, sizeof(float)), *y = malloc(sizeof(float) * (size_t)n);
    float *imp = malloc(sizeof(float) * (size_t)n);
    uint8_t *buf = malloc(rb);
    for (int64_t i = 0; i < n; i++)
        imp[i] = (i % 3 == 0) ? 0.0f : ((i % 3 == 1) ? -1.0f : NAN);
    for (int pass = 0; pass < 2; pass++) {
        const float *ip = pass ? imp : NULL;
        memset(x, 0, sizeof(float) * (size_t)n);
        q->quantize_row(x, buf, n, ip);
        q->dequantize_row(buf, y, n);
        for (int64_t i = 0; i < n; i++)
            assert_true(y[i] == 0.0f);
        for (int c = 0; c < 6; c++) {
            for (int64_t i = 0; i < n; i++) {
                switch (c) {
                case 0: x[i] = 0.25f; break;                                /* constant */
                case 1: x[i] = i == 5 ? 3.0f : 1e-4f * (float)(i % 7 - 3); break; /* outlier */
                case 2: x[i] = 1e-41f * (float)(i % 5 - 2); break;          /* denormal */
                case 3: x[i] = (i % 2 ? 1e30f : -3e29f) * (float)(i % 5); break; /* huge */
                case 4: x[i] = i % 4 == 0 ? NAN : 0.1f * (float)(i % 9 - 4); break;
                default: x[i] = i % 4 == 0 ? INFINITY : (i % 4 == 1 ? -INFINITY : 0.5f); break;
                }
            }
            q->quantize_row(x, buf, n, ip);
            q->dequantize_row(buf, y, n);
            for (int64_t i = 0; i < n; i++)
                assert_true(isfinite(y[i]));
            if (c == 0) /* a constant is representable closely by every type */
                for (int64_t i = 0; i < n; i++)
                    assert_true(fabsf(y[i] - 0.25f) < 0.02f);
        }
    }
    free(x);
    free(y);
    free(imp);
    free(buf);
}

/* vec_dot of a weight row with an activation row quantized to the
 * vec_dot_type equals the double dot of the two dequantized rows (up to
 * float rounding), and is close to the dot with the f32 activations. */
static inline void qt_check_vec_dot(uint32_t type)
{
    const qp_qtype *q = qt_get(type);
    assert_non_null(q->vec_dot);
    const qp_qtype *a = qt_get(q->vec_dot_type);
    const int64_t n = 2048;
    qt_rng r = {0x5eed0004u + type};
    float *w = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * n);
    float *wd = malloc(sizeof(float) * n), *xd = malloc(sizeof(float) * n);
    uint8_t *wq = malloc(qp_qtype_row_bytes(type, n)), *xq = malloc(qp_qtype_row_bytes(a->type, n));
    for (int t = 0; t < 8; t++) {
        qt_heavy(&r, w, n, 0.03f);
        qt_heavy(&r, x, n, 1.0f + (float)t);
        q->quantize_row(w, wq, n, NULL);
        q->dequantize_row(wq, wd, n);
        a->quantize_row(x, xq, n, NULL);
        a->dequantize_row(xq, xd, n);
        double exact = 0.0, mag = 0.0, f32 = 0.0;
        for (int64_t i = 0; i < n; i++) {
            exact += (double)wd[i] * xd[i];
            mag += fabs((double)wd[i] * xd[i]);
            f32 += (double)wd[i] * x[i];
        }
        const float got = q->vec_dot(n, wq, xq);
        assert_true(fabs(got - exact) <= 1e-5 * mag + 1e-30);
        assert_true(fabs(got - f32) <= 2e-2 * mag);
    }
    free(w);
    free(x);
    free(wd);
    free(xd);
    free(wq);
    free(xq);
}

/* The table entry agrees with the ggml geometry table. */
static inline void qt_check_entry(uint32_t type)
{
    const qp_qtype *q = qt_get(type);
    const qp_ggml_type_info *info = qp_ggml_type_get(type);
    assert_non_null(info);
    assert_int_equal(q->type, type);
    assert_int_equal(q->block_elems, info->block_elems);
    assert_int_equal(q->block_bytes, info->block_bytes);
    assert_non_null(qp_qtype_get(type));
}

#endif
