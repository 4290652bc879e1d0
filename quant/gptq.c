/* gptq.c - error-feedback quantization under the input second moment
 * (see gptq.h): the factorisation of H, the per-row column loop, and per
 * type the two facts it needs from a block: the level an element takes
 * given the block's scales, and where its code is stored. */
#include "quant/gptq.h"

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "common/qp_half.h"
#include "common/qp_threads.h"
#include "quant/qblocks.h"
#include "quant/qtype.h"

/* ------------------------------------------------ per-type block access */

/* y_e = a_e * (code_e - off) - m_e for code_e in 0..qmax. */
typedef struct {
    uint32_t type;
    int qmax, off;
    void (*params)(const void *blk, float *a, float *m); /* QP_QK_K each */
    void (*set)(void *blk, int e, int code);
    int off_d, off_dmin; /* byte offsets of the f16 super-scales (dmin: -1 when none) */
} gptq_type;

/* Q2_K / Q3_K / Q6_K element e = 128h + 32k + l (Q4_K / Q5_K: e = 64c + l). */
static void hkl(int e, int *h, int *k, int *l)
{
    *h = e / 128;
    *k = (e % 128) / 32;
    *l = e % 32;
}

static void q2_params(const void *blk, float *a, float *m)
{
    const qp_block_q2_k *b = blk;
    const float d = qp_f16_to_f32(b->d), dmin = qp_f16_to_f32(b->dmin);
    for (int s = 0; s < 16; s++)
        for (int i = 0; i < 16; i++) {
            a[16 * s + i] = d * (float)(b->scales[s] & 0xF);
            m[16 * s + i] = dmin * (float)(b->scales[s] >> 4);
        }
}

static void q2_set(void *blk, int e, int q)
{
    qp_block_q2_k *b = blk;
    int h, k, l;
    hkl(e, &h, &k, &l);
    uint8_t *p = &b->qs[32 * h + l];
    *p = (uint8_t)((*p & ~(3u << (2 * k))) | ((unsigned)q << (2 * k)));
}

static void q3_params(const void *blk, float *a, float *m)
{
    const qp_block_q3_k *b = blk;
    const float d = qp_f16_to_f32(b->d);
    for (int s = 0; s < 16; s++)
        for (int i = 0; i < 16; i++) {
            a[16 * s + i] = d * (float)(qp_k3_scale(s, b->scales) - 32);
            m[16 * s + i] = 0.0f;
        }
}

static void q3_set(void *blk, int e, int q)
{
    qp_block_q3_k *b = blk;
    int h, k, l;
    hkl(e, &h, &k, &l);
    uint8_t *p = &b->qs[32 * h + l];
    *p = (uint8_t)((*p & ~(3u << (2 * k))) | (((unsigned)q & 3u) << (2 * k)));
    const unsigned bit = 4u * (unsigned)h + (unsigned)k;
    b->hmask[l] = (uint8_t)((b->hmask[l] & ~(1u << bit)) | (((unsigned)q >> 2) << bit));
}

static void k4_params(const uint8_t *scales, uint16_t d16, uint16_t dmin16, float *a, float *m)
{
    const float d = qp_f16_to_f32(d16), dmin = qp_f16_to_f32(dmin16);
    for (int s = 0; s < 8; s++) {
        uint8_t sc, mn;
        qp_k4_scale_min(s, scales, &sc, &mn);
        for (int i = 0; i < 32; i++) {
            a[32 * s + i] = d * (float)sc;
            m[32 * s + i] = dmin * (float)mn;
        }
    }
}

static void q4_params(const void *blk, float *a, float *m)
{
    const qp_block_q4_k *b = blk;
    k4_params(b->scales, b->d, b->dmin, a, m);
}

static void q4_set(void *blk, int e, int q)
{
    qp_block_q4_k *b = blk;
    const int c = e / 64, l = e % 64, sh = 4 * (l / 32);
    uint8_t *p = &b->qs[32 * c + l % 32];
    *p = (uint8_t)((*p & ~(0xFu << sh)) | (((unsigned)q & 0xFu) << sh));
}

static void q5_params(const void *blk, float *a, float *m)
{
    const qp_block_q5_k *b = blk;
    k4_params(b->scales, b->d, b->dmin, a, m);
}

static void q5_set(void *blk, int e, int q)
{
    qp_block_q5_k *b = blk;
    const int c = e / 64, l = e % 64, sh = 4 * (l / 32);
    uint8_t *p = &b->qs[32 * c + l % 32];
    *p = (uint8_t)((*p & ~(0xFu << sh)) | (((unsigned)q & 0xFu) << sh));
    const unsigned bit = 2u * (unsigned)c + (unsigned)(l / 32);
    b->qh[l % 32] = (uint8_t)((b->qh[l % 32] & ~(1u << bit)) | (((unsigned)q >> 4) << bit));
}

static void q6_params(const void *blk, float *a, float *m)
{
    const qp_block_q6_k *b = blk;
    const float d = qp_f16_to_f32(b->d);
    for (int s = 0; s < 16; s++)
        for (int i = 0; i < 16; i++) {
            a[16 * s + i] = d * (float)b->scales[s];
            m[16 * s + i] = 0.0f;
        }
}

static void q6_set(void *blk, int e, int q)
{
    qp_block_q6_k *b = blk;
    int h, k, l;
    hkl(e, &h, &k, &l);
    const int sh = 4 * (k >= 2);
    uint8_t *p = &b->ql[64 * h + 32 * (k & 1) + l];
    *p = (uint8_t)((*p & ~(0xFu << sh)) | (((unsigned)q & 0xFu) << sh));
    uint8_t *hb = &b->qh[32 * h + l];
    *hb = (uint8_t)((*hb & ~(3u << (2 * k))) | ((((unsigned)q >> 4) & 3u) << (2 * k)));
}

static const gptq_type TYPES[] = {
    {QP_GGML_Q2_K, 3, 0, q2_params, q2_set, offsetof(qp_block_q2_k, d), offsetof(qp_block_q2_k, dmin)},
    {QP_GGML_Q3_K, 7, 4, q3_params, q3_set, offsetof(qp_block_q3_k, d), -1},
    {QP_GGML_Q4_K, 15, 0, q4_params, q4_set, offsetof(qp_block_q4_k, d), offsetof(qp_block_q4_k, dmin)},
    {QP_GGML_Q5_K, 31, 0, q5_params, q5_set, offsetof(qp_block_q5_k, d), offsetof(qp_block_q5_k, dmin)},
    {QP_GGML_Q6_K, 63, 32, q6_params, q6_set, offsetof(qp_block_q6_k, d), -1},
};

static const gptq_type *find_type(uint32_t type)
{
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++)
        if (TYPES[i].type == type)
            return &TYPES[i];
    return NULL;
}

int qp_gptq_supported(uint32_t type) { return find_type(type) != NULL; }

/* ------------------------------------------------ factorisation */

/* In place: a (n x n, row-major, symmetric) -> its lower Cholesky factor.
 * Returns 0 when a is not positive definite. */
static int cholesky_lower(double *a, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double s = a[j * n + j];
        for (int64_t k = 0; k < j; k++)
            s -= a[j * n + k] * a[j * n + k];
        if (!(s > 0))
            return 0;
        const double d = sqrt(s);
        a[j * n + j] = d;
        for (int64_t i = j + 1; i < n; i++) {
            double t = a[i * n + j];
            for (int64_t k = 0; k < j; k++)
                t -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = t / d;
        }
        for (int64_t i = 0; i < j; i++)
            a[i * n + j] = 0.0;
    }
    return 1;
}

/* u = upper Cholesky factor of (H + lambda I)^-1 (u^T u = that inverse),
 * and hd = H + lambda I (dead inputs get the mean diagonal). tmp: n*n
 * doubles. Returns 0 when H stays singular. */
static int inverse_factor(const double *h, int64_t n, double damp, double *u, double *tmp, double *hd)
{
    double mean = 0;
    for (int64_t j = 0; j < n; j++)
        mean += h[j * n + j];
    mean /= (double)n;
    if (!(mean > 0) || !isfinite(mean))
        return 0;
    for (int tries = 0; tries < 6; tries++, damp *= 10) {
        /* L = chol(H + lambda I) */
        memcpy(hd, h, (size_t)(n * n) * sizeof *hd);
        for (int64_t j = 0; j < n; j++)
            hd[j * n + j] += damp * mean + (h[j * n + j] > 0 ? 0 : mean); /* dead inputs: any positive value */
        memcpy(tmp, hd, (size_t)(n * n) * sizeof *tmp);
        if (!cholesky_lower(tmp, n))
            continue;
        /* u <- X = (L^-1)^T (upper; row c of X is column c of L^-1, so
         * both sums below run over contiguous memory), by forward
         * substitution column by column */
        memset(u, 0, (size_t)(n * n) * sizeof *u);
        for (int64_t c = 0; c < n; c++) {
            double *xc = u + c * n;
            xc[c] = 1.0 / tmp[c * n + c];
            for (int64_t i = c + 1; i < n; i++) {
                double s = 0;
                const double *li = tmp + i * n;
                for (int64_t k = c; k < i; k++)
                    s += li[k] * xc[k];
                xc[i] = -s / li[i];
            }
        }
        /* Hinv = L^-T L^-1: Hinv_ij = sum_k X_ik X_jk. Written into the
         * upper triangle of tmp first (L lives in the lower one), then
         * mirrored. */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i; j < n; j++) {
                double s = 0;
                const double *xi = u + i * n, *xj = u + j * n;
                for (int64_t k = j; k < n; k++)
                    s += xi[k] * xj[k];
                tmp[i * n + j] = s;
            }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < i; j++)
                tmp[i * n + j] = tmp[j * n + i];
        if (!cholesky_lower(tmp, n))
            continue;
        for (int64_t i = 0; i < n; i++) /* u = chol(Hinv)^T, upper */
            for (int64_t j = 0; j < n; j++)
                u[i * n + j] = j >= i ? tmp[j * n + i] : 0.0;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------ rows */

typedef struct {
    const gptq_type *gt;
    const qp_qtype *qt;
    const float *w;
    int64_t n;
    const double *h;  /* the undamped H, for choosing among candidates */
    const double *u;  /* NULL: no factor (plain quantization) */
    const double *hd; /* the damped H the feedback and the refinement minimise */
    const float *imp; /* per-column scale-search weights (n) or NULL */
    const float *imp_u; /* 1/U_jj^2 (n) */
    int passes, scale_imp, refine, refit;
    uint64_t row_bytes;
    uint8_t *dst;
    atomic_int failed;
} rows_job;

double qp_gptq_output_error(const float *w, const float *y, int64_t rows, int64_t n, const double *h)
{
    double total = 0;
    double *e = malloc((size_t)n * sizeof *e);
    if (!e)
        return NAN;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < n; j++)
            e[j] = (double)w[r * n + j] - (double)y[r * n + j];
        for (int64_t i = 0; i < n; i++) { /* symmetric: the upper triangle twice */
            if (e[i] == 0)
                continue;
            double s = 0;
            for (int64_t j = i + 1; j < n; j++)
                s += h[i * n + j] * e[j];
            total += e[i] * (h[i * n + i] * e[i] + 2 * s);
        }
    }
    free(e);
    return total;
}

/* One row, one pass: scales from `scale_src` (the current values when
 * NULL), error feedback through u; records the values at quantization
 * time in `target`. */
static void row_pass(const rows_job *j, const float *w, const float *scale_src, uint8_t *out, double *wr,
                     float *target)
{
    const int64_t n = j->n, nb = n / QP_QK_K;
    const uint64_t bb = j->qt->block_bytes;
    const float *imp = j->scale_imp ? j->imp_u : j->imp;
    float xb[QP_QK_K], a[QP_QK_K], m[QP_QK_K];
    for (int64_t c = 0; c < n; c++)
        wr[c] = w[c];
    for (int64_t b = 0; b < nb; b++) {
        const int64_t c0 = b * QP_QK_K;
        uint8_t *blk = out + (uint64_t)b * bb;
        for (int i = 0; i < QP_QK_K; i++)
            xb[i] = scale_src ? scale_src[c0 + i] : (float)wr[c0 + i];
        j->qt->quantize_row(xb, blk, QP_QK_K, imp ? imp + c0 : NULL);
        j->gt->params(blk, a, m);
        for (int i = 0; i < QP_QK_K; i++) {
            const int64_t c = c0 + i;
            const float v = (float)wr[c];
            target[c] = v;
            int q = 0;
            if (a[i] != 0.0f && isfinite(v)) {
                const float z = (v + m[i]) / a[i];
                q = !(z > -1e6f) ? 0 : (!(z < 1e6f) ? j->gt->qmax : (int)lrintf(z) + j->gt->off);
            } else if (a[i] == 0.0f) {
                q = j->gt->off;
            }
            q = q < 0 ? 0 : (q > j->gt->qmax ? j->gt->qmax : q);
            j->gt->set(blk, (int)i, q);
            const float y = a[i] * (float)(q - j->gt->off) - m[i];
            const double *ur = j->u + c * n;
            const double e = ((double)v - (double)y) / ur[c];
            for (int64_t k = c + 1; k < n; k++)
                wr[k] -= e * ur[k];
        }
    }
}

/* Greedy coordinate descent on the codes under the damped H: every
 * element tries its two neighbouring levels (block scales fixed) and a
 * move is kept when it lowers r^T H r exactly (r = w - y). The feedback
 * pass is sequential (an element never sees the errors of later ones);
 * this finds the moves it could not. g = H r is kept up to date. */
static void refine_codes(const rows_job *j, const float *w, uint8_t *row, float *y, double *g, int sweeps)
{
    const int64_t n = j->n;
    const uint64_t bb = j->qt->block_bytes;
    const int off = j->gt->off, qmax = j->gt->qmax;
    float a[QP_QK_K], m[QP_QK_K];
    j->qt->dequantize_row(row, y, n);
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        const double *hi = j->hd + i * n;
        for (int64_t k = 0; k < n; k++)
            s += hi[k] * ((double)w[k] - (double)y[k]);
        g[i] = s;
    }
    for (int sw = 0; sw < sweeps; sw++) {
        int64_t moved = 0;
        for (int64_t b = 0; b < n / QP_QK_K; b++) {
            uint8_t *blk = row + (uint64_t)b * bb;
            j->gt->params(blk, a, m);
            for (int i = 0; i < QP_QK_K; i++) {
                const int64_t e = b * QP_QK_K + i;
                if (a[i] == 0.0f)
                    continue;
                const int q = (int)lrintf((y[e] + m[i]) / a[i]) + off;
                const double hee = j->hd[e * n + e];
                double best = 0;
                int bq = q;
                float by = y[e];
                for (int c = q - 1; c <= q + 1; c += 2) {
                    if (c < 0 || c > qmax)
                        continue;
                    const float yc = a[i] * (float)(c - off) - m[i];
                    const double d = (double)yc - (double)y[e];
                    const double de = -2.0 * d * g[e] + d * d * hee;
                    if (de < best) {
                        best = de;
                        bq = c;
                        by = yc;
                    }
                }
                if (bq == q)
                    continue;
                const double d = (double)by - (double)y[e];
                j->gt->set(blk, i, bq);
                y[e] = by;
                const double *he = j->hd + e * n;
                for (int64_t k = 0; k < n; k++)
                    g[k] -= d * he[k];
                moved++;
            }
        }
        if (!moved)
            break;
    }
}

static uint16_t get_f16(const uint8_t *blk, int off)
{
    uint16_t v;
    memcpy(&v, blk + off, 2);
    return v;
}

static void put_f16(uint8_t *blk, int off, uint16_t v) { memcpy(blk + off, &v, 2); }

/* Least-squares refit of each block's f16 super-scales (d, and dmin for
 * the affine types) under the damped H, codes and integer sub-block
 * scales fixed: y = d * A - dmin * B is linear in them, so the best pair
 * solves a 2x2 system. The f16 rounding of the solution is kept only when
 * the exact H-weighted error drops. y: the row's current values; g:
 * scratch (n). */
static void refit_scales(const rows_job *j, const float *w, uint8_t *row, float *y, double *g)
{
    const int64_t n = j->n, nb = n / QP_QK_K;
    const uint64_t bb = j->qt->block_bytes;
    float a[QP_QK_K], m[QP_QK_K], yn[QP_QK_K];
    double A[QP_QK_K], B[QP_QK_K], HA[QP_QK_K], HB[QP_QK_K];
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = row + (uint64_t)b * bb;
        const int64_t c0 = b * QP_QK_K;
        j->qt->dequantize_row(row, y, n);
        for (int64_t i = 0; i < n; i++) { /* g = H r restricted to this block's rows */
            if (i < c0 || i >= c0 + QP_QK_K)
                continue;
            double s = 0;
            const double *hi = j->hd + i * n;
            for (int64_t k = 0; k < n; k++)
                s += hi[k] * ((double)w[k] - (double)y[k]);
            g[i] = s;
        }
        const uint16_t d16 = get_f16(blk, j->gt->off_d);
        const uint16_t m16 = j->gt->off_dmin >= 0 ? get_f16(blk, j->gt->off_dmin) : 0;
        const float d = qp_f16_to_f32(d16), dmin = qp_f16_to_f32(m16);
        if (!(d != 0.0f) || !isfinite(d))
            continue;
        j->gt->params(blk, a, m);
        for (int i = 0; i < QP_QK_K; i++) {
            const int q = (int)lrintf((y[c0 + i] + m[i]) / (a[i] != 0.0f ? a[i] : 1.0f)) + j->gt->off;
            A[i] = a[i] != 0.0f ? (double)a[i] / d * (double)(q - j->gt->off) : 0.0;
            B[i] = dmin != 0.0f ? (double)m[i] / dmin : 0.0;
        }
        double aga = 0, agb = 0, ahb = 0, aha = 0, bhb = 0;
        for (int i = 0; i < QP_QK_K; i++) {
            double sa = 0, sb = 0;
            const double *hi = j->hd + (c0 + i) * n + c0;
            for (int k = 0; k < QP_QK_K; k++) {
                sa += hi[k] * A[k];
                sb += hi[k] * B[k];
            }
            HA[i] = sa;
            HB[i] = sb;
            aga += A[i] * g[c0 + i];
            agb += B[i] * g[c0 + i];
        }
        for (int i = 0; i < QP_QK_K; i++) {
            aha += A[i] * HA[i];
            ahb += A[i] * HB[i];
            bhb += B[i] * HB[i];
        }
        /* E(dd, dm) = E - 2 (dd aga - dm agb) + dd^2 aha - 2 dd dm ahb + dm^2 bhb */
        double dd = 0, dm = 0;
        if (j->gt->off_dmin >= 0 && bhb > 0) {
            const double det = aha * bhb - ahb * ahb;
            if (!(det > 1e-12 * aha * bhb))
                continue;
            dd = (aga * bhb - agb * ahb) / det;
            dm = (aga * ahb - agb * aha) / det;
        } else if (aha > 0) {
            dd = aga / aha;
        }
        const uint16_t nd16 = qp_f32_to_f16((float)(d + dd));
        const uint16_t nm16 = j->gt->off_dmin >= 0 ? qp_f32_to_f16((float)(dmin + dm)) : 0;
        if (nd16 == d16 && nm16 == m16)
            continue;
        if (!isfinite(qp_f16_to_f32(nd16)) || !isfinite(qp_f16_to_f32(nm16)) || qp_f16_to_f32(nm16) < 0 ||
            (j->gt->off_dmin >= 0 && qp_f16_to_f32(nd16) < 0))
            continue;
        /* exact change of the H error for the rounded pair */
        put_f16(blk, j->gt->off_d, nd16);
        if (j->gt->off_dmin >= 0)
            put_f16(blk, j->gt->off_dmin, nm16);
        j->qt->dequantize_row(blk, yn, QP_QK_K);
        double de = 0;
        for (int i = 0; i < QP_QK_K; i++) {
            const double di = (double)yn[i] - (double)y[c0 + i];
            double hs = 0;
            const double *hi = j->hd + (c0 + i) * n + c0;
            for (int k = 0; k < QP_QK_K; k++)
                hs += hi[k] * ((double)yn[k] - (double)y[c0 + k]);
            de += -2.0 * di * g[c0 + i] + di * hs;
        }
        if (!(de < 0)) { /* keep the old scales */
            put_f16(blk, j->gt->off_d, d16);
            if (j->gt->off_dmin >= 0)
                put_f16(blk, j->gt->off_dmin, m16);
        }
    }
}

static void rows_range(void *ctx, int64_t r0, int64_t r1, int tid)
{
    (void)tid;
    rows_job *j = ctx;
    const int64_t n = j->n;
    double *wr = malloc((size_t)n * sizeof *wr);
    float *target = malloc((size_t)n * sizeof *target);
    float *target2 = malloc((size_t)n * sizeof *target2);
    float *y = malloc((size_t)n * sizeof *y);
    uint8_t *cand = malloc((size_t)j->row_bytes);
    if (!wr || !target || !target2 || !y || !cand) {
        atomic_store(&j->failed, 1);
        goto out;
    }
    for (int64_t r = r0; r < r1; r++) {
        const float *w = j->w + r * n;
        uint8_t *out = j->dst + (uint64_t)r * j->row_bytes;
        /* candidate 0: the plain importance-weighted quantization */
        j->qt->quantize_row(w, out, n, j->imp);
        if (!j->u)
            continue;
        j->qt->dequantize_row(out, y, n);
        double best = qp_gptq_output_error(w, y, 1, n, j->h);
        const float *src = NULL;
        for (int p = 0; p < j->passes; p++) {
            row_pass(j, w, src, cand, wr, p % 2 ? target2 : target);
            src = p % 2 ? target2 : target;
            if (j->refine > 0) { /* wr is free again: scratch for g */
                refine_codes(j, w, cand, y, wr, j->refine);
                if (j->refit) {
                    refit_scales(j, w, cand, y, wr);
                    refine_codes(j, w, cand, y, wr, j->refine);
                }
            }
            j->qt->dequantize_row(cand, y, n);
            const double e = qp_gptq_output_error(w, y, 1, n, j->h);
            if (e < best) {
                best = e;
                memcpy(out, cand, (size_t)j->row_bytes);
            }
        }
    }
out:
    free(wr);
    free(target);
    free(target2);
    free(y);
    free(cand);
}

qp_status qp_gptq_quantize(uint32_t type, const float *w, int64_t rows, int64_t n, const double *h,
                           const float *imp, const qp_gptq_options *opt, void *dst, qp_err *err)
{
    const gptq_type *gt = find_type(type);
    const qp_qtype *qt = qp_qtype_get(type);
    if (!gt || !qt || !qt->quantize_row || !qt->dequantize_row)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, NULL, "error-feedback quantization does not support %s",
                          qp_ggml_type_name(type));
    if (!w || !h || !dst || rows < 0 || n < QP_QK_K || n % QP_QK_K != 0 || n > 65536)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_gptq_quantize: bad arguments");
    const qp_gptq_options def = {0.01, 2, 0, 1, 0, 0};
    if (!opt)
        opt = &def;
    double *u = malloc((size_t)(n * n) * sizeof *u);
    double *tmp = malloc((size_t)(n * n) * sizeof *tmp);
    double *hd = malloc((size_t)(n * n) * sizeof *hd);
    float *imp_h = malloc((size_t)n * sizeof *imp_h);
    float *imp_u = malloc((size_t)n * sizeof *imp_u);
    qp_status st = QP_OK;
    if (!u || !tmp || !hd || !imp_h || !imp_u) {
        st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (error-feedback quantization)");
        goto out;
    }
    const int have_u = inverse_factor(h, n, opt->damp > 0 ? opt->damp : 0.01, u, tmp, hd);
    for (int64_t c = 0; c < n; c++) {
        imp_h[c] = (float)h[c * n + c];
        imp_u[c] = have_u ? (float)(1.0 / (u[c * n + c] * u[c * n + c])) : imp_h[c];
    }
    rows_job j = {.gt = gt,
                  .qt = qt,
                  .w = w,
                  .n = n,
                  .h = h,
                  .u = have_u ? u : NULL,
                  .hd = hd,
                  .imp = imp ? imp : imp_h,
                  .imp_u = imp_u,
                  .passes = opt->passes > 0 ? opt->passes : 2,
                  .scale_imp = opt->scale_imp,
                  .refine = opt->refine == 0 ? 4 : (opt->refine < 0 ? 0 : opt->refine),
                  .refit = opt->refit >= 0,
                  .row_bytes = qp_qtype_row_bytes(type, n),
                  .dst = dst};
    qp_parallel_for(opt->n_threads, rows, rows_range, &j);
    if (atomic_load(&j.failed))
        st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (error-feedback quantization)");
out:
    free(u);
    free(tmp);
    free(hd);
    free(imp_h);
    free(imp_u);
    return st;
}
