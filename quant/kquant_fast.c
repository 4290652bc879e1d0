/* kquant_fast.c - the portable kernel set of the fast searches and their
 * instantiation (the searches themselves are in kquant_fast_impl.h; the
 * kernel contracts in kquant_fast_kern.h). The loops are shaped like the
 * AVX2 twins: 8 lanes, in the same order, so results are identical. */
#include "quant/kquant_fast_kern.h"

#include <math.h>

void qp_kf_block_weights(const float *imp, int n, float *w)
{
    if (imp) {
        float wmax = 0.0f;
        for (int i = 0; i < n; i++) {
            float v = imp[i];
            if (!(v > 0.0f) || !(v <= 3.402823466e38f)) /* negative, NaN, inf: no say */
                v = 0.0f;
            w[i] = v;
            wmax = v > wmax ? v : wmax;
        }
        if (wmax > 0.0f) {
            if (wmax < 1e30f) {
                const float inv = 1.0f / wmax;
                for (int i = 0; i < n; i++)
                    w[i] = w[i] * inv;
            } else {
                for (int i = 0; i < n; i++)
                    w[i] = w[i] / wmax;
            }
            return;
        }
    }
    for (int i = 0; i < n; i++)
        w[i] = 1.0f;
}

/* ---------------------------------------------------------------- kernels */

static inline void kf_minmax(int n, const float *x, const float *w, float thr, float *xmin, float *xmax)
{
    float lo[8], hi[8];
    for (int l = 0; l < 8; l++) {
        lo[l] = INFINITY;
        hi[l] = -INFINITY;
    }
    for (int i0 = 0; i0 < n; i0 += 8)
        for (int l = 0; l < 8; l++) {
            const float v = x[i0 + l];
            if (w[i0 + l] > thr) {
                lo[l] = v < lo[l] ? v : lo[l];
                hi[l] = v > hi[l] ? v : hi[l];
            }
        }
    float a = lo[0], b = hi[0];
    for (int l = 1; l < 8; l++) {
        a = lo[l] < a ? lo[l] : a;
        b = hi[l] > b ? hi[l] : b;
    }
    *xmin = a;
    *xmax = b;
}

static inline void kf_stats(int n, const float *x, const float *w, float *sw, float *sx, float *sxx,
                            float *xmin, float *xmax)
{
    float a[8] = {0}, b[8] = {0}, c[8] = {0};
    for (int i0 = 0; i0 < n; i0 += 8)
        for (int l = 0; l < 8; l++) {
            const float wx = w[i0 + l] * x[i0 + l];
            a[l] += w[i0 + l];
            b[l] += wx;
            c[l] += wx * x[i0 + l];
        }
    *sw = kf_tree8(a);
    *sx = kf_tree8(b);
    *sxx = kf_tree8(c);
    kf_minmax(n, x, w, 0.0f, xmin, xmax);
}

static inline void kf_aff_cand8(int n, const float *x, const float *w, float top, const float *t,
                                float off, float *sq, float *sqq, float *sqx)
{
    float a[8] = {0}, b[8] = {0}, c[8] = {0};
    for (int i = 0; i < n; i++) {
        const float xi = x[i], wi = w[i], xo = xi - off;
        for (int l = 0; l < 8; l++) {
            const float q = kf_rnd_clamp(xo * t[l], 0.0f, top);
            const float wq = wi * q;
            a[l] += wq;
            b[l] += wq * q;
            c[l] += wq * xi;
        }
    }
    for (int l = 0; l < 8; l++) {
        sq[l] = a[l];
        sqq[l] = b[l];
        sqx[l] = c[l];
    }
}

static inline void kf_aff_moments(int n, const float *x, const float *w, float top, float t,
                                  float off, float *sq, float *sqq, float *sqx)
{
    float a[8] = {0}, b[8] = {0}, c[8] = {0};
    for (int i0 = 0; i0 < n; i0 += 8)
        for (int l = 0; l < 8; l++) {
            const float xi = x[i0 + l];
            const float q = kf_rnd_clamp((xi - off) * t, 0.0f, top);
            const float wq = w[i0 + l] * q;
            a[l] += wq;
            b[l] += wq * q;
            c[l] += wq * xi;
        }
    *sq = kf_tree8(a);
    *sqq = kf_tree8(b);
    *sqx = kf_tree8(c);
}

static inline void kf_aff_quant(int n, const float *x, const float *w, float top, float dl,
                                float ml, uint8_t *L, float *mom)
{
    const float id = dl != 0.0f ? 1.0f / dl : 0.0f;
    float e[8] = {0}, a[8] = {0}, b[8] = {0}, c[8] = {0};
    for (int i0 = 0; i0 < n; i0 += 8)
        for (int l = 0; l < 8; l++) {
            const float xi = x[i0 + l], wi = w[i0 + l];
            const float q = kf_rnd_clamp((xi + ml) * id, 0.0f, top);
            const float diff = (dl * q - ml) - xi;
            const float wq = wi * q;
            e[l] += (wi * diff) * diff;
            a[l] += wq;
            b[l] += wq * q;
            c[l] += wq * xi;
            L[i0 + l] = (uint8_t)(int)q;
        }
    mom[0] = kf_tree8(e);
    mom[1] = kf_tree8(a);
    mom[2] = kf_tree8(b);
    mom[3] = kf_tree8(c);
}

static inline void kf_aff_err8(int n, const float *x, const float *w, float top, const float *dl,
                               const float *ml, float *out)
{
    float id[8], e[8] = {0};
    for (int l = 0; l < 8; l++)
        id[l] = dl[l] != 0.0f ? 1.0f / dl[l] : 0.0f;
    for (int i = 0; i < n; i++) {
        const float xi = x[i], wi = w[i];
        for (int l = 0; l < 8; l++) {
            const float q = kf_rnd_clamp((xi + ml[l]) * id[l], 0.0f, top);
            const float diff = (dl[l] * q - ml[l]) - xi;
            e[l] += (wi * diff) * diff;
        }
    }
    for (int l = 0; l < 8; l++)
        out[l] = e[l];
}

static inline void kf_f16_round8(float *v)
{
    for (int l = 0; l < 8; l++)
        v[l] = qp_ks_f16_round(v[l]);
}

static inline void kf_model8(int nsub, const float *v, const float *H, const float *d, float lmin,
                             float lmax, float *out)
{
    float id[8], e[8] = {0};
    for (int l = 0; l < 8; l++)
        id[l] = d[l] != 0.0f ? 1.0f / d[l] : 0.0f;
    for (int j = 0; j < nsub; j++) {
        const float vj = v[j], hj = H[j];
        for (int l = 0; l < 8; l++) {
            const float q = kf_rnd_clamp(vj * id[l], lmin, lmax);
            const float diff = d[l] * q - vj;
            e[l] += (hj * diff) * diff;
        }
    }
    for (int l = 0; l < 8; l++)
        out[l] = e[l];
}

static inline void kf_fit8(const double *vw, const double *vx, const double *vxx, const float *sq,
                           const float *sqq, const float *sqx, float *s, float *m, double *err)
{
    for (int l = 0; l < 8; l++) {
        const double sw = vw[l], sx = vx[l], sxx = vxx[l];
        const double q = sq[l], qq = sqq[l], qx = sqx[l];
        const double D = sw * qq - q * q;
        double ss = (sw * qx - q * sx) / D;
        double mm = (qq * sx - q * qx) / D;
        const double s0 = qx / qq;
        const int clamp = mm > 0.0;
        ss = clamp ? s0 : ss;
        mm = clamp ? 0.0 : mm;
        const double t2s = 2.0 * ss, t2m = 2.0 * mm;
        double e = sxx - t2s * qx;
        e = e - t2m * sx;
        e = e + (ss * ss) * qq;
        e = e + (t2s * mm) * q;
        e = e + (mm * mm) * sw;
        const int ok = (D > 1e-12 * sw * qq) & (qq > 0.0) & (ss > 0.0);
        err[l] = ok ? e : INFINITY;
        s[l] = (float)ss;
        m[l] = (float)mm;
    }
}

/* Level value and index of v on grid g. */
static inline float kf_level(const qp_ks_grid *g, float v, int *k)
{
    if (g->uniform) {
        const float q = kf_rnd_clamp(v, g->lev[0], g->lev[g->nlev - 1]);
        *k = (int)q - g->lo;
        return q;
    }
    int c = 0;
    for (int m = 0; m + 1 < g->nlev; m++)
        c += v > g->mid[m];
    *k = c;
    return g->lev[c];
}

static inline void kf_sym_cand8(int n, const float *x, const float *w, const qp_ks_grid *g,
                                const float *t, float *sqx, float *sqq)
{
    float a[8] = {0}, b[8] = {0};
    for (int i = 0; i < n; i++) {
        const float xi = x[i], wi = w[i];
        for (int l = 0; l < 8; l++) {
            int k;
            const float v = kf_level(g, xi * t[l], &k);
            const float wv = wi * v;
            a[l] += wv * xi;
            b[l] += wv * v;
        }
    }
    for (int l = 0; l < 8; l++) {
        sqx[l] = a[l];
        sqq[l] = b[l];
    }
}

static inline void kf_sym_quant(int n, const float *x, const float *w, const qp_ks_grid *g,
                                float dl, uint8_t *L, float *mom)
{
    const float id = dl != 0.0f ? 1.0f / dl : 0.0f;
    float e[8] = {0}, a[8] = {0}, b[8] = {0};
    for (int i0 = 0; i0 < n; i0 += 8)
        for (int l = 0; l < 8; l++) {
            const float xi = x[i0 + l], wi = w[i0 + l];
            int k;
            const float v = kf_level(g, xi * id, &k);
            const float diff = dl * v - xi;
            const float wv = wi * v;
            e[l] += (wi * diff) * diff;
            a[l] += wv * xi;
            b[l] += wv * v;
            L[i0 + l] = (uint8_t)k;
        }
    mom[0] = kf_tree8(e);
    mom[1] = kf_tree8(a);
    mom[2] = kf_tree8(b);
}

static inline void kf_sym_err4x2(int n, const float *xa, const float *wa, const float *xb,
                                 const float *wb, const qp_ks_grid *g, const float *dl, float *out)
{
    float id[8], e[8] = {0};
    for (int l = 0; l < 8; l++)
        id[l] = dl[l] != 0.0f ? 1.0f / dl[l] : 0.0f;
    for (int i = 0; i < n; i++)
        for (int l = 0; l < 8; l++) {
            const float xi = l < 4 ? xa[i] : xb[i], wi = l < 4 ? wa[i] : wb[i];
            int k;
            const float v = kf_level(g, xi * id[l], &k);
            const float diff = dl[l] * v - xi;
            e[l] += (wi * diff) * diff;
        }
    for (int l = 0; l < 8; l++)
        out[l] = e[l];
}

#define KF_AFFINE_NAME qp_kf_affine_superblock
#define KF_SYM_NAME qp_kf_sym_superblock
#define KF_F16_NAME qp_kf_sym_block_f16
#define KF_F16N_NAME qp_kf_sym_blocks_f16
#define KF_AFF16_NAME qp_kf_affine_block_f16
#include "quant/kquant_fast_impl.h"
