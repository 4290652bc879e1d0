/* kquant_fast_impl.h - the fast searches (model in kquant_fast.h), written
 * once over the kernels of kquant_fast_kern.h. Included once by each
 * kernel set's file, which first defines the kernels and the names:
 *   KF_AFFINE_NAME, KF_SYM_NAME, KF_F16_NAME.
 * Everything outside the kernels is plain C compiled with contraction off
 * (-std=c11), so both inclusions compute the same floats. */
#ifndef KF_AFFINE_NAME
#error "define the kernels and KF_*_NAME before including kquant_fast_impl.h"
#endif

#include <math.h>

/* ---------------------------------------------------------------- tuning
 * Measured on the ggml-vectors tensors (tests/bench/bench_quant.c): each
 * buys error at a small cost; removing any costs more error than time.
 *  KF_AFF_DELTA: starting inverse scales (qmax + delta) / range of the
 *      affine fit, scored together;
 *  KF_ALS: least-squares refinements of the best start;
 *  KF_SYM_DELTA: starting inverse scales of the symmetric fit, in levels
 *      beyond the far end of the grid (side 0) or the near end (side 1);
 *  KF_D_K / KF_D_STEP: super-scale candidates smax / (end * (1 + k*step)),
 *      |k| <= KF_D_K, ranked on the model;
 *  KF_REFIT: least-squares refits of the super-scale(s). */
static const float KF_AFF_DELTA[8] = {-1.0f, -0.5f, -0.25f, 0.0f, 0.25f, 0.5f, 0.75f, 1.0f};
#define KF_SYM_ALS 0
/* With importance the weighted optimum can sit far from the starts (a
 * low-weight extreme element is better clipped): more refinement. */
#define KF_W_ALS 2
static const float KF_SYM_DELTA[8] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, -0.5f, 0.0f, 0.5f};
static const int KF_SYM_SIDE[8] = {0, 0, 0, 0, 0, 1, 1, 1};
#define KF_D_K 4
#define KF_D_STEP 0.0125f
#define KF_REFIT 0

#define KF_MAXS 16

/* Whether the block has importance weights (else all are 1). */
static inline int kf_weighted(int n, const float *w)
{
    int any = 0;
    for (int i = 0; i < n; i++)
        any |= w[i] != 1.0f;
    return any;
}

/* Index of the first least element (branch-free: the outcomes are data
 * dependent and mispredict). */
static inline int kf_argmin_d(const double *e, int n)
{
    int b = 0;
    for (int k = 1; k < n; k++)
        b = e[k] < e[b] ? k : b;
    return b;
}

static inline int kf_argmin_f(const float *e, int n)
{
    int b = 0;
    for (int k = 1; k < n; k++)
        b = e[k] < e[b] ? k : b;
    return b;
}

/* Weighted least squares x ~ s*q + m for fixed codes from the moments
 * (see kquant_search.c's twin); returns the error or INFINITY. */
static double kf_fit_moments(double sw, double sx, double sxx, double sq, double sqq, double sqx,
                             float *s, float *m)
{
    const double D = sw * sqq - sq * sq;
    if (!(D > 1e-12 * sw * sqq) || !(sqq > 0.0))
        return INFINITY;
    double ss = (sw * sqx - sq * sx) / D;
    double mm = (sqq * sx - sq * sqx) / D;
    if (mm > 0.0) { /* the K types store -m >= 0 */
        mm = 0.0;
        ss = sqx / sqq;
    }
    if (!(ss > 0.0))
        return INFINITY;
    *s = (float)ss;
    *m = (float)mm;
    return sxx - 2.0 * ss * sqx - 2.0 * mm * sx + ss * ss * sqq + 2.0 * ss * mm * sq + mm * mm * sw;
}

/* ------------------------------------------------------------ affine */

typedef struct {
    float s, mn;         /* fit: x ~ s*q - mn */
    double A, B, C, Sx;  /* sum w q^2, sum w q, sum w, sum w x of the fit's codes */
} kf_asub;

/* Weight threshold of the trimmed starts: elements below this fraction of
 * their sub-block's largest weight may be clipped. 0 = no trimmed starts. */
#define KF_TRIM 0.05f

static inline float kf_trim_thr(int n, const float *w)
{
    float m = 0.0f;
    for (int i = 0; i < n; i++)
        m = w[i] > m ? w[i] : m;
    return KF_TRIM * m;
}

static void kf_aff_fit(int n, const float *x, const float *w, int qmax, int als, float wtrim, kf_asub *o)
{
    float sw, sx, sxx, xmin, xmax;
    kf_stats(n, x, w, &sw, &sx, &sxx, &xmin, &xmax);
    o->C = sw;
    o->Sx = sx;
    o->A = o->B = 0.0;
    o->s = 0.0f;
    o->mn = 0.0f;
    if (xmin > xmax) /* no weight anywhere: anything is exact */
        return;
    const float off = xmin < 0.0f ? xmin : 0.0f;
    const float range = xmax - off;
    if (!(range > QP_KS_XMIN) || !isfinite(range)) { /* constant block */
        o->mn = isfinite(off) ? -off : 0.0f;
        return;
    }
    const float top = (float)qmax;
    float t[8], sq[8], sqq[8], sqx[8];
    for (int c = 0; c < 8; c++)
        t[c] = (top + KF_AFF_DELTA[c]) / range;
    kf_aff_cand8(n, x, w, top, t, off, sq, sqq, sqx);
    float fs[8], fm[8];
    double fe[8];
    kf_fit8(sw, sx, sxx, sq, sqq, sqx, fs, fm, fe);
    int bc = kf_argmin_d(fe, 8);
    double best = fe[bc];
    o->s = fs[bc];
    o->mn = -fm[bc];
    o->A = sqq[bc];
    o->B = sq[bc];
    if (wtrim > 0.0f) {
        /* the same fan over the range of the elements that carry weight */
        float tmin, tmax;
        kf_minmax(n, x, w, wtrim, &tmin, &tmax);
        const float toff = tmin < 0.0f ? tmin : 0.0f, trange = tmax - toff;
        if (tmin <= tmax && trange > QP_KS_XMIN && trange < range) {
            for (int c = 0; c < 8; c++)
                t[c] = (top + KF_AFF_DELTA[c]) / trange;
            kf_aff_cand8(n, x, w, top, t, toff, sq, sqq, sqx);
            kf_fit8(sw, sx, sxx, sq, sqq, sqx, fs, fm, fe);
            bc = kf_argmin_d(fe, 8);
            if (fe[bc] < best) {
                best = fe[bc];
                o->s = fs[bc];
                o->mn = -fm[bc];
                o->A = sqq[bc];
                o->B = sq[bc];
            }
        }
    }
    if (!(best < INFINITY)) { /* degenerate: plain range */
        o->s = range / top;
        o->mn = -off;
        return;
    }
    for (int it = 0; it < als; it++) {
        float q1, q2, q3, s = 0.0f, m = 0.0f;
        kf_aff_moments(n, x, w, top, 1.0f / o->s, -o->mn, &q1, &q2, &q3);
        const double e = kf_fit_moments(sw, sx, sxx, q1, q2, q3, &s, &m);
        if (!(e < best))
            break;
        best = e;
        o->s = s;
        o->mn = -m;
        o->A = q2;
        o->B = q1;
    }
}

/* The f16 super-scale among vmax / (imax * (1 + KF_D_FAN[c])) with the
 * least model error sum_j A_j (d * clamp(round(v_j / d)) - v_j)^2 (each
 * sub-block at its nearest integer), eight candidates scored together. */
static const float KF_D_FAN[8] = {-0.0375f, -0.025f, -0.0125f, 0.0f, 0.0125f, 0.025f, 0.0375f, 0.05f};

static float kf_pick_scale(int nsub, const float *v, const double *A, float vmax, int imin, int imax,
                           int end)
{
    if (!(vmax != 0.0f))
        return 0.0f;
    float Af[KF_MAXS], d[8], e[8];
    for (int j = 0; j < nsub; j++)
        Af[j] = (float)A[j];
    for (int c = 0; c < 8; c++)
        d[c] = qp_ks_f16_round(vmax / ((float)end * (1.0f + KF_D_FAN[c])));
    kf_model8(nsub, v, Af, d, (float)imin, (float)imax, e);
    return d[kf_argmin_f(e, 8)];
}

/* Exact pass of sub-block j with integers (a, b): codes, error, moments. */
static double kf_aff_exact(const qp_ks_affine_spec *sp, const float *x, const float *w, float d,
                           float dmin, int j, int a, int b, uint8_t *L, float *mom)
{
    const int len = sp->sublen;
    kf_aff_quant(len, x + j * len, w + j * len, (float)sp->qmax, d * (float)a, dmin * (float)b,
                 L + j * len, mom);
    return mom[0];
}

double KF_AFFINE_NAME(const qp_ks_affine_spec *sp, const float *x, const float *w,
                      uint16_t *d_bits, uint16_t *dmin_bits, int *sc, int *m, uint8_t *L)
{
    const int nsub = sp->nsub, len = sp->sublen;
    /* Where the effort pays (measured): few levels (Q2_K) gain from a
     * refined sub-block fit, many levels from the exact choice of the
     * integer scale and min among their neighbours. */
    const int exact8 = sp->qmax >= 15;
    const int weighted = kf_weighted(nsub * len, w);
    const int als = (exact8 ? 0 : 1) + (weighted ? KF_W_ALS : 0);
    kf_asub sub[KF_MAXS];
    float s[KF_MAXS], mn[KF_MAXS];
    double A[KF_MAXS], C[KF_MAXS];
    float smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        kf_aff_fit(len, x + j * len, w + j * len, sp->qmax, als,
                   weighted ? kf_trim_thr(len, w + j * len) : 0.0f, &sub[j]);
        s[j] = sub[j].s;
        mn[j] = sub[j].mn;
        A[j] = sub[j].A;
        C[j] = sub[j].C;
        smax = s[j] > smax ? s[j] : smax;
        mmax = mn[j] > mmax ? mn[j] : mmax;
    }
    if (!isfinite(smax) || !isfinite(mmax))
        smax = mmax = 0.0f;
    /* super-scales: each on its own part of the model (the cross term
     * couples them only through rounding) */
    float d = kf_pick_scale(nsub, s, A, smax, 0, sp->scmax, sp->scmax);
    float dmin = kf_pick_scale(nsub, mn, C, mmax, 0, sp->mmax, sp->mmax);
    *d_bits = qp_ks_f16_bits(d);
    *dmin_bits = qp_ks_f16_bits(dmin);
    /* integers: the best of the 3x3 neighbourhood on the full quadratic
     * model (cross term included), then one exact pass */
    double total = 0.0;
    float mom[KF_MAXS][4];
    for (int j = 0; j < nsub; j++) {
        const int c1 = d != 0.0f ? qp_ks_nearest_int(s[j] / d) : 0;
        const int c2 = dmin != 0.0f ? qp_ks_nearest_int(mn[j] / dmin) : 0;
        double me[9];
        int pa[9], pb[9];
        for (int k = 0; k < 9; k++) {
            pa[k] = qp_ks_clampi(c1 - 1 + k / 3, 0, sp->scmax);
            pb[k] = qp_ks_clampi(c2 - 1 + k % 3, 0, sp->mmax);
            const double da = (double)d * pa[k] - s[j], db = (double)dmin * pb[k] - mn[j];
            me[k] = A[j] * da * da - 2.0 * sub[j].B * da * db + C[j] * db * db;
        }
        int ba, bb;
        if (exact8) {
            /* the eight best on the model scored exactly (the worst dropped) */
            int worst = 0;
            for (int k = 1; k < 9; k++)
                worst = me[k] > me[worst] ? k : worst;
            float dl[8], ml[8], e8[8];
            int ka[8], kb[8];
            for (int k = 0, c = 0; k < 9; k++) {
                if (k == worst)
                    continue;
                ka[c] = pa[k];
                kb[c] = pb[k];
                dl[c] = d * (float)pa[k];
                ml[c++] = dmin * (float)pb[k];
            }
            kf_aff_err8(len, x + j * len, w + j * len, (float)sp->qmax, dl, ml, e8);
            const int bk = kf_argmin_f(e8, 8);
            ba = ka[bk];
            bb = kb[bk];
        } else {
            const int bk = kf_argmin_d(me, 9);
            ba = pa[bk];
            bb = pb[bk];
        }
        sc[j] = ba;
        m[j] = bb;
        total += kf_aff_exact(sp, x, w, d, dmin, j, ba, bb, L, mom[j]);
    }
    /* least-squares refit of (d, dmin) on the exact pass's codes */
    for (int it = 0; it < KF_REFIT; it++) {
        double aa = 0, ab = 0, bb = 0, ax = 0, bx = 0;
        for (int j = 0; j < nsub; j++) {
            const double a = sc[j], b = m[j];
            aa += a * a * mom[j][2];
            ab -= a * b * mom[j][1];
            bb += b * b * C[j];
            ax += a * mom[j][3];
            bx -= b * sub[j].Sx;
        }
        const double D = aa * bb - ab * ab;
        double nd, ndm;
        if (D > 1e-12 * aa * bb && bb > 0.0) {
            nd = (ax * bb - bx * ab) / D;
            ndm = (aa * bx - ab * ax) / D;
            if (ndm < 0.0) {
                ndm = 0.0;
                nd = ax / aa;
            }
        } else if (aa > 0.0) {
            nd = ax / aa;
            ndm = dmin;
        } else {
            break;
        }
        if (!(nd >= 0.0))
            break;
        const uint16_t tdb = qp_ks_f16_bits((float)nd), tmb = qp_ks_f16_bits((float)ndm);
        if (tdb == *d_bits && tmb == *dmin_bits)
            break;
        const float td = qp_f16_to_f32(tdb), tdm = qp_f16_to_f32(tmb);
        uint8_t tL[KF_MAXS * QP_KS_MAX_SUB];
        float tmom[KF_MAXS][4];
        double t = 0.0;
        for (int j = 0; j < nsub; j++)
            t += kf_aff_exact(sp, x, w, td, tdm, j, sc[j], m[j], tL, tmom[j]);
        if (!(t < total))
            break;
        total = t;
        *d_bits = tdb;
        *dmin_bits = tmb;
        d = td;
        dmin = tdm;
        memcpy(L, tL, (size_t)(nsub * len));
        memcpy(mom, tmom, sizeof mom);
    }
    return total;
}

/* ------------------------------------------------------------ symmetric */

/* Best real scale of one sub-block (signed): the largest element mapped a
 * few levels around either end of the grid, the best start refined by
 * least squares. *H = sum w lev^2 of its codes. */
static float kf_sym_fit(int n, const float *x, const float *w, const qp_ks_grid *g, int als,
                        float wtrim, double *H)
{
    float xmin, xmax;
    kf_minmax(n, x, w, 0.0f, &xmin, &xmax);
    *H = 0.0;
    if (xmin > xmax)
        return 0.0f;
    const float M = xmax >= -xmin ? xmax : xmin;
    if (!(fabsf(M) > QP_KS_XMIN) || !isfinite(M))
        return 0.0f;
    const float e0 = g->lev[0], e1 = g->lev[g->nlev - 1];
    /* one level of the grid around its ends */
    const float step = (e1 - e0) / (float)(g->nlev - 1);
    float t[8], sqx[8], sqq[8];
    for (int c = 0; c < 8; c++) {
        const float end = KF_SYM_SIDE[c] ? e1 + KF_SYM_DELTA[c] * step : e0 - KF_SYM_DELTA[c] * step;
        t[c] = end / M;
    }
    kf_sym_cand8(n, x, w, g, t, sqx, sqq);
    double bx = 0.0, bq = 1.0;
    for (int c = 0; c < 8; c++)
        if (sqq[c] > 0.0f && (double)sqx[c] * sqx[c] * bq > bx * bx * sqq[c]) {
            bx = sqx[c];
            bq = sqq[c];
        }
    if (wtrim > 0.0f) {
        /* the same fan around the largest element that carries weight */
        float tmin, tmax;
        kf_minmax(n, x, w, wtrim, &tmin, &tmax);
        const float Mt = tmax >= -tmin ? tmax : tmin;
        if (tmin <= tmax && fabsf(Mt) > QP_KS_XMIN && fabsf(Mt) < fabsf(M)) {
            for (int c = 0; c < 8; c++)
                t[c] = t[c] * (M / Mt);
            kf_sym_cand8(n, x, w, g, t, sqx, sqq);
            for (int c = 0; c < 8; c++)
                if (sqq[c] > 0.0f && (double)sqx[c] * sqx[c] * bq > bx * bx * sqq[c]) {
                    bx = sqx[c];
                    bq = sqq[c];
                }
        }
    }
    if (bx == 0.0)
        return 0.0f;
    float s = (float)(bx / bq);
    *H = bq;
    for (int it = 0; it < als; it++) {
        float mom[3];
        uint8_t Lt[QP_KS_MAX_SUB];
        kf_sym_quant(n, x, w, g, s, Lt, mom);
        if (!(mom[2] > 0.0f) || !((double)mom[1] * mom[1] * bq > bx * bx * mom[2]))
            break;
        bx = mom[1];
        bq = mom[2];
        s = (float)(bx / bq);
        *H = bq;
    }
    return s;
}

double KF_SYM_NAME(const qp_ks_sym_spec *sp, const float *x, const float *w, uint16_t *d_bits,
                   int *ls, uint8_t *L)
{
    const int nsub = sp->nsub, len = sp->sublen;
    const int weighted = kf_weighted(nsub * len, w);
    const int als = KF_SYM_ALS + (weighted ? KF_W_ALS : 0);
    float s[KF_MAXS];
    double H[KF_MAXS];
    float smax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        s[j] = kf_sym_fit(len, x + j * len, w + j * len, sp->grid, als,
                          weighted ? kf_trim_thr(len, w + j * len) : 0.0f, &H[j]);
        if (fabsf(s[j]) > fabsf(smax))
            smax = s[j];
    }
    float d = 0.0f;
    if (smax != 0.0f && isfinite(smax)) {
        /* the largest sub-block scale near either end of the integer range */
        const float d0 = kf_pick_scale(nsub, s, H, smax, sp->lmin, sp->lmax, sp->lmin);
        const float d1 = kf_pick_scale(nsub, s, H, smax, sp->lmin, sp->lmax, sp->lmax);
        float Hf[KF_MAXS], dd[8] = {d0, d1, d1, d1, d1, d1, d1, d1}, e[8];
        for (int j = 0; j < nsub; j++)
            Hf[j] = (float)H[j];
        kf_model8(nsub, s, Hf, dd, (float)sp->lmin, (float)sp->lmax, e);
        d = e[1] < e[0] ? d1 : d0;
    }
    *d_bits = qp_ks_f16_bits(d);
    d = qp_f16_to_f32(*d_bits);
    /* integers: nearest and its two neighbours scored exactly together */
    double total = 0.0;
    float mom[KF_MAXS][3];
    for (int j = 0; j < nsub; j++) {
        const float *xj = x + j * len, *wj = w + j * len;
        const int c = d != 0.0f ? qp_ks_clampi(qp_ks_nearest_int(s[j] / d), sp->lmin, sp->lmax) : 0;
        float dl[8], e[8];
        int lc[8];
        for (int k = 0; k < 8; k++) {
            lc[k] = qp_ks_clampi(c + (k < 3 ? k - 1 : 0), sp->lmin, sp->lmax);
            dl[k] = d * (float)lc[k];
        }
        kf_sym_err8(len, xj, wj, sp->grid, dl, e);
        int bk = 1;
        for (int k = 0; k < 3; k++)
            if (e[k] < e[bk])
                bk = k;
        ls[j] = lc[bk];
        kf_sym_quant(len, xj, wj, sp->grid, dl[bk], L + j * len, mom[j]);
        total += mom[j][0];
    }
    /* least-squares refit of d on the exact codes */
    for (int it = 0; it < KF_REFIT; it++) {
        double num = 0.0, den = 0.0;
        for (int j = 0; j < nsub; j++) {
            num += (double)ls[j] * mom[j][1];
            den += (double)ls[j] * ls[j] * mom[j][2];
        }
        if (!(den > 0.0))
            break;
        const uint16_t tb = qp_ks_f16_bits((float)(num / den));
        if (tb == *d_bits)
            break;
        const float td = qp_f16_to_f32(tb);
        uint8_t tL[KF_MAXS * QP_KS_MAX_SUB];
        float tmom[KF_MAXS][3];
        double t = 0.0;
        for (int j = 0; j < nsub; j++) {
            kf_sym_quant(len, x + j * len, w + j * len, sp->grid, td * (float)ls[j], tL + j * len,
                         tmom[j]);
            t += tmom[j][0];
        }
        if (!(t < total))
            break;
        total = t;
        *d_bits = tb;
        memcpy(L, tL, (size_t)(nsub * len));
        memcpy(mom, tmom, sizeof mom);
    }
    return total;
}

/* ------------------------------------------------------------ one f16 scale */

double KF_F16_NAME(int n, const float *x, const float *w, const qp_ks_grid *g, uint16_t *d_bits,
                   uint8_t *L)
{
    double H;
    const int weighted = kf_weighted(n, w);
    const float s = kf_sym_fit(n, x, w, g, KF_SYM_ALS + (weighted ? KF_W_ALS : 0),
                               weighted ? kf_trim_thr(n, w) : 0.0f, &H);
    /* the all-zero block, the f16 rounding of s and its two neighbours */
    const uint16_t b = qp_ks_f16_bits(s);
    uint16_t cand[8];
    float dl[8], e[8];
    cand[0] = 0;
    cand[1] = b;
    cand[2] = (b & 0x7fffu) < 0x7bffu ? (uint16_t)(b + 1) : b;
    cand[3] = (b & 0x7fffu) > 0 ? (uint16_t)(b - 1) : b;
    for (int k = 0; k < 8; k++) {
        if (k >= 4)
            cand[k] = b;
        dl[k] = qp_f16_to_f32(cand[k]);
    }
    kf_sym_err8(n, x, w, g, dl, e);
    int bk = 0;
    for (int k = 1; k < 4; k++)
        if (e[k] < e[bk])
            bk = k;
    *d_bits = cand[bk];
    float mom[3];
    kf_sym_quant(n, x, w, g, dl[bk], L, mom);
    return mom[0];
}
