/* kquant_fast_impl.h - the fast searches (model in kquant_fast.h), written
 * once over the kernels of kquant_fast_kern.h. Included once by each
 * kernel set's file, which first defines the kernels and the names:
 *   KF_AFFINE_NAME, KF_SYM_NAME, KF_F16_NAME, KF_F16N_NAME, KF_AFF16_NAME.
 * Everything outside the kernels is plain C compiled with contraction off
 * (-std=c11), so both inclusions compute the same floats. */
#ifndef KF_AFFINE_NAME
#error "define the kernels and KF_*_NAME before including kquant_fast_impl.h"
#endif

#include <math.h>

/* ---------------------------------------------------------------- tuning
 * Measured with tests/bench/bench_quant.c on the ggml-vectors tensors
 * (error against llama.cpp's) and a heavy-tailed synthetic tensor (speed),
 * each against the exhaustive reference:
 *  KF_AFF_DELTA: starting inverse scales (qmax + delta) / range of the
 *      affine fit, scored together (one lane each);
 *  KF_SYM_DELTA / KF_SYM_SIDE: starting inverse scales of the symmetric
 *      fit: the largest element delta levels beyond the far end of the
 *      grid (side 0) or the near end (side 1);
 *  KF_SYM_ALS: least-squares refinements of the best symmetric start
 *      (the affine fit refines once for Q2_K, see KF_AFFINE_NAME);
 *  KF_W_ALS: extra refinements with importance: the weighted optimum can
 *      sit far from the starts (a low-weight extreme element is better
 *      clipped); KF_TRIM below adds starts for that case too;
 *  KF_D_FAN (below): super-scale candidates, ranked on the model;
 *  KF_REFIT / KF_W_REFIT: least-squares refits of the super-scale(s)
 *      without / with importance (each costs an exact pass). */
static const float KF_AFF_DELTA[8] = {-1.0f, -0.5f, -0.25f, 0.0f, 0.25f, 0.5f, 0.75f, 1.0f};
static const float KF_SYM_DELTA[8] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, -0.5f, 0.0f, 0.5f};
static const int KF_SYM_SIDE[8] = {0, 0, 0, 0, 0, 1, 1, 1};
#define KF_SYM_ALS 0
#define KF_W_ALS 2
#define KF_REFIT 0
#define KF_W_REFIT 1

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

/* ------------------------------------------------------------ affine */

typedef struct {
    float s, mn;         /* fit: x ~ s*q - mn */
    double A, B, C, Sx;  /* sum w q^2, sum w q, sum w, sum w x of the fit's codes */
    double Sxx, e;       /* sum w x^2; the fit's error (INFINITY: not refinable) */
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

/* The best start of every sub-block, phase by phase over all of them (they
 * are independent: this keeps each phase's latencies overlapping); the
 * refinements follow in kf_aff_refine. */
static void kf_aff_fit(const qp_ks_affine_spec *sp, const float *x, const float *w, int weighted,
                       kf_asub *sub)
{
    const int nsub = sp->nsub, n = sp->sublen;
    const float top = (float)sp->qmax;
    float off[KF_MAXS], range[KF_MAXS], t[KF_MAXS][8], sq[KF_MAXS][8], sqq[KF_MAXS][8], sqx[KF_MAXS][8];
    int live[KF_MAXS];
    for (int j = 0; j < nsub; j++) {
        kf_asub *o = &sub[j];
        float sw, sx, sxx, xmin, xmax;
        kf_stats(n, x + j * n, w + j * n, &sw, &sx, &sxx, &xmin, &xmax);
        o->C = sw;
        o->Sx = sx;
        o->Sxx = sxx;
        o->e = INFINITY;
        o->A = o->B = 0.0;
        o->s = 0.0f;
        o->mn = 0.0f;
        off[j] = xmin < 0.0f ? xmin : 0.0f;
        range[j] = xmax - off[j];
        /* no weight anywhere (anything is exact), or a constant block */
        live[j] = xmin <= xmax && range[j] > QP_KS_XMIN && isfinite(range[j]);
        if (xmin <= xmax && !live[j])
            o->mn = isfinite(off[j]) ? -off[j] : 0.0f;
        const float ir = live[j] ? 1.0f / range[j] : 0.0f;
        for (int c = 0; c < 8; c++)
            t[j][c] = (top + KF_AFF_DELTA[c]) * ir;
    }
    for (int j = 0; j < nsub; j++)
        kf_aff_cand8(n, x + j * n, w + j * n, top, t[j], off[j], sq[j], sqq[j], sqx[j]);
    for (int j = 0; j < nsub; j++) {
        kf_asub *o = &sub[j];
        if (!live[j])
            continue;
        float fs[8], fm[8];
        double fe[8], vw[8], vx[8], vxx[8];
        for (int c = 0; c < 8; c++) {
            vw[c] = o->C;
            vx[c] = o->Sx;
            vxx[c] = o->Sxx;
        }
        kf_fit8(vw, vx, vxx, sq[j], sqq[j], sqx[j], fs, fm, fe);
        int bc = kf_argmin_d(fe, 8);
        double best = fe[bc];
        o->s = fs[bc];
        o->mn = -fm[bc];
        o->A = sqq[j][bc];
        o->B = sq[j][bc];
        if (weighted) {
            /* the same fan over the range of the elements that carry weight */
            const float *xj = x + j * n, *wj = w + j * n;
            float tmin, tmax, tt[8], uq[8], uqq[8], uqx[8];
            kf_minmax(n, xj, wj, kf_trim_thr(n, wj), &tmin, &tmax);
            const float toff = tmin < 0.0f ? tmin : 0.0f, trange = tmax - toff;
            if (tmin <= tmax && trange > QP_KS_XMIN && trange < range[j]) {
                for (int c = 0; c < 8; c++)
                    tt[c] = (top + KF_AFF_DELTA[c]) / trange;
                kf_aff_cand8(n, xj, wj, top, tt, toff, uq, uqq, uqx);
                kf_fit8(vw, vx, vxx, uq, uqq, uqx, fs, fm, fe);
                bc = kf_argmin_d(fe, 8);
                if (fe[bc] < best) {
                    best = fe[bc];
                    o->s = fs[bc];
                    o->mn = -fm[bc];
                    o->A = uqq[bc];
                    o->B = uq[bc];
                }
            }
        }
        if (!(best < INFINITY)) { /* degenerate: plain range */
            o->s = range[j] / top;
            o->mn = -off[j];
            continue;
        }
        o->e = best;
    }
}

/* als rounds of least squares on the codes of the current fit, for all
 * sub-blocks at once (the fits are independent: batching them keeps the
 * divisions of one from stalling the next); each sub-block keeps a round
 * only when its error drops. */
static void kf_aff_refine(const qp_ks_affine_spec *sp, const float *x, const float *w, int als,
                          kf_asub *sub)
{
    const int nsub = sp->nsub, len = sp->sublen;
    const float top = (float)sp->qmax;
    for (int it = 0; it < als; it++) {
        float q1[KF_MAXS], q2[KF_MAXS], q3[KF_MAXS], fs[KF_MAXS], fm[KF_MAXS];
        double vw[KF_MAXS], vx[KF_MAXS], vxx[KF_MAXS], fe[KF_MAXS];
        for (int j = 0; j < nsub; j++) {
            const int live = sub[j].e < INFINITY;
            kf_aff_moments(len, x + j * len, w + j * len, top, live ? 1.0f / sub[j].s : 0.0f,
                           -sub[j].mn, &q1[j], &q2[j], &q3[j]);
            vw[j] = sub[j].C;
            vx[j] = sub[j].Sx;
            vxx[j] = sub[j].Sxx;
        }
        for (int j = 0; j < nsub; j += 8)
            kf_fit8(vw + j, vx + j, vxx + j, q1 + j, q2 + j, q3 + j, fs + j, fm + j, fe + j);
        for (int j = 0; j < nsub; j++)
            if (fe[j] < sub[j].e) {
                sub[j].e = fe[j];
                sub[j].s = fs[j];
                sub[j].mn = -fm[j];
                sub[j].A = q2[j];
                sub[j].B = q1[j];
            }
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
        d[c] = vmax / ((float)end * (1.0f + KF_D_FAN[c]));
    kf_f16_round8(d);
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
    kf_aff_fit(sp, x, w, weighted, sub);
    kf_aff_refine(sp, x, w, als, sub);
    for (int j = 0; j < nsub; j++) {
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
    /* integers: the 3x3 neighbourhood on the full quadratic model (cross
     * term included); with exact8 its eight best scored exactly (phase by
     * phase over the sub-blocks, as the fits); then one exact pass */
    double total = 0.0;
    float mom[KF_MAXS][4];
    int ka[KF_MAXS][8], kb[KF_MAXS][8];
    float dl[KF_MAXS][8], ml[KF_MAXS][8], e8[KF_MAXS][8];
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
        if (exact8) {
            /* the eight best on the model (the worst dropped) */
            int worst = 0;
            for (int k = 1; k < 9; k++)
                worst = me[k] > me[worst] ? k : worst;
            for (int k = 0, c = 0; k < 9; k++) {
                if (k == worst)
                    continue;
                ka[j][c] = pa[k];
                kb[j][c] = pb[k];
                dl[j][c] = d * (float)pa[k];
                ml[j][c++] = dmin * (float)pb[k];
            }
        } else {
            const int bk = kf_argmin_d(me, 9);
            sc[j] = pa[bk];
            m[j] = pb[bk];
        }
    }
    if (exact8) {
        for (int j = 0; j < nsub; j++)
            kf_aff_err8(len, x + j * len, w + j * len, (float)sp->qmax, dl[j], ml[j], e8[j]);
        for (int j = 0; j < nsub; j++) {
            const int bk = kf_argmin_f(e8[j], 8);
            sc[j] = ka[j][bk];
            m[j] = kb[j][bk];
        }
    }
    for (int j = 0; j < nsub; j++)
        total += kf_aff_exact(sp, x, w, d, dmin, j, sc[j], m[j], L, mom[j]);
    /* least-squares refit of (d, dmin) on the exact pass's codes */
    for (int it = 0; it < (weighted ? KF_W_REFIT : KF_REFIT); it++) {
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
/* Scores sqx^2 / sqq of eight candidates (the error each removes at its
 * least-squares scale; -1 when it has no codes); returns the best one's
 * index (the first of equals). */
static inline int kf_sym_score8(const float *sqx, const float *sqq, double *sc)
{
    for (int c = 0; c < 8; c++)
        sc[c] = sqq[c] > 0.0f ? (double)sqx[c] * sqx[c] / sqq[c] : -1.0;
    int b = 0;
    for (int c = 1; c < 8; c++)
        b = sc[c] > sc[b] ? c : b;
    return b;
}

/* Best real scales s[j] (signed) of nsub sub-blocks of len elements: the
 * largest element mapped a few levels around either end of the grid, the
 * best start refined by least squares (als rounds). H[j] = sum w lev^2 of
 * the codes. Done phase by phase over all sub-blocks (they are
 * independent; this keeps each phase's latencies overlapping). */
static void kf_sym_fit(int nsub, int len, const float *x, const float *w, const qp_ks_grid *g,
                       int als, int weighted, float *s, double *H)
{
    const float e0 = g->lev[0], e1 = g->lev[g->nlev - 1];
    /* one level of the grid around its ends */
    const float step = (e1 - e0) / (float)(g->nlev - 1);
    float ends[8];
    for (int c = 0; c < 8; c++)
        ends[c] = KF_SYM_SIDE[c] ? e1 + KF_SYM_DELTA[c] * step : e0 - KF_SYM_DELTA[c] * step;
    float M[KF_MAXS], t[KF_MAXS][8], sqx[KF_MAXS][8], sqq[KF_MAXS][8];
    int live[KF_MAXS];
    for (int j = 0; j < nsub; j++) {
        float xmin, xmax;
        kf_minmax(len, x + j * len, w + j * len, 0.0f, &xmin, &xmax);
        M[j] = xmax >= -xmin ? xmax : xmin;
        live[j] = xmin <= xmax && fabsf(M[j]) > QP_KS_XMIN && isfinite(M[j]);
        const float iM = live[j] ? 1.0f / M[j] : 0.0f;
        for (int c = 0; c < 8; c++)
            t[j][c] = ends[c] * iM;
    }
    for (int j = 0; j < nsub; j++)
        kf_sym_cand8(len, x + j * len, w + j * len, g, t[j], sqx[j], sqq[j]);
    for (int j = 0; j < nsub; j++) {
        const float *xj = x + j * len, *wj = w + j * len;
        s[j] = 0.0f;
        H[j] = 0.0;
        if (!live[j])
            continue;
        double sc[8];
        int bc = kf_sym_score8(sqx[j], sqq[j], sc);
        double bx = sqx[j][bc], bq = sqq[j][bc], best = sc[bc];
        if (weighted) {
            /* the same fan around the largest element that carries weight */
            float tmin, tmax, tx[8], ux[8], uq[8];
            kf_minmax(len, xj, wj, kf_trim_thr(len, wj), &tmin, &tmax);
            const float Mt = tmax >= -tmin ? tmax : tmin;
            if (tmin <= tmax && fabsf(Mt) > QP_KS_XMIN && fabsf(Mt) < fabsf(M[j])) {
                for (int c = 0; c < 8; c++)
                    tx[c] = t[j][c] * (M[j] / Mt);
                kf_sym_cand8(len, xj, wj, g, tx, ux, uq);
                bc = kf_sym_score8(ux, uq, sc);
                if (sc[bc] > best) {
                    bx = ux[bc];
                    bq = uq[bc];
                    best = sc[bc];
                }
            }
        }
        if (!(best > 0.0))
            continue;
        float sj = (float)(bx / bq);
        H[j] = bq;
        for (int it = 0; it < als; it++) {
            float mom[3];
            uint8_t Lt[QP_KS_MAX_SUB];
            kf_sym_quant(len, xj, wj, g, sj, Lt, mom);
            if (!(mom[2] > 0.0f) || !((double)mom[1] * mom[1] * bq > bx * bx * mom[2]))
                break;
            bx = mom[1];
            bq = mom[2];
            sj = (float)(bx / bq);
            H[j] = bq;
        }
        s[j] = sj;
    }
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
    kf_sym_fit(nsub, len, x, w, sp->grid, als, weighted, s, H);
    for (int j = 0; j < nsub; j++)
        if (fabsf(s[j]) > fabsf(smax))
            smax = s[j];
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
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    float dl[KF_MAXS / 2][8], e[KF_MAXS / 2][8];
    int lc[KF_MAXS / 2][8];
    for (int j = 0; j < nsub; j += 2) /* two sub-blocks, four lanes each */
        for (int k = 0; k < 8; k++) {
            const int c = qp_ks_clampi(qp_ks_nearest_int(s[j + k / 4] * id), sp->lmin, sp->lmax);
            lc[j / 2][k] = qp_ks_clampi(c + ((k & 3) < 3 ? (k & 3) - 1 : 0), sp->lmin, sp->lmax);
            dl[j / 2][k] = d * (float)lc[j / 2][k];
        }
    for (int j = 0; j < nsub; j += 2)
        kf_sym_err4x2(len, x + j * len, w + j * len, x + (j + 1) * len, w + (j + 1) * len, sp->grid,
                      dl[j / 2], e[j / 2]);
    for (int j = 0; j < nsub; j++) {
        const int h = j & 1, bk = 4 * h + kf_argmin_f(e[j / 2] + 4 * h, 3);
        ls[j] = lc[j / 2][bk];
        kf_sym_quant(len, x + j * len, w + j * len, sp->grid, dl[j / 2][bk], L + j * len, mom[j]);
        total += mom[j][0];
    }
    /* least-squares refit of d on the exact codes */
    for (int it = 0; it < (weighted ? KF_W_REFIT : KF_REFIT); it++) {
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

void KF_F16N_NAME(int nblk, int n, const float *x, const float *w, const qp_ks_grid *g,
                  uint16_t *d_bits, uint8_t *L)
{
    float s[KF_MAXS];
    double H[KF_MAXS];
    const int weighted = kf_weighted(nblk * n, w);
    kf_sym_fit(nblk, n, x, w, g, KF_SYM_ALS + (weighted ? KF_W_ALS : 0), weighted, s, H);
    /* per block: the all-zero block, the f16 rounding of s and its two
     * neighbours, two blocks scored together */
    for (int j = 0; j < nblk; j += 2) {
        const int j1 = j + 1 < nblk ? j + 1 : j; /* an odd last block pairs with itself */
        uint16_t cand[8];
        float dl[8], e[8];
        for (int h = 0; h < 2; h++) {
            const uint16_t b = qp_ks_f16_bits(s[h ? j1 : j]);
            uint16_t *c = cand + 4 * h;
            c[0] = 0;
            c[1] = b;
            c[2] = (b & 0x7fffu) < 0x7bffu ? (uint16_t)(b + 1) : b;
            c[3] = (b & 0x7fffu) > 0 ? (uint16_t)(b - 1) : b;
        }
        for (int k = 0; k < 8; k++)
            dl[k] = qp_f16_to_f32(cand[k]);
        kf_sym_err4x2(n, x + j * n, w + j * n, x + j1 * n, w + j1 * n, g, dl, e);
        for (int h = 0; h < 2 && j + h < nblk; h++) {
            const int bk = 4 * h + kf_argmin_f(e + 4 * h, 4);
            float mom[3];
            d_bits[j + h] = cand[bk];
            kf_sym_quant(n, x + (j + h) * n, w + (j + h) * n, g, dl[bk], L + (j + h) * n, mom);
        }
    }
}

double KF_F16_NAME(int n, const float *x, const float *w, const qp_ks_grid *g, uint16_t *d_bits,
                   uint8_t *L)
{
    KF_F16N_NAME(1, n, x, w, g, d_bits, L);
    float mom[3];
    kf_sym_quant(n, x, w, g, qp_f16_to_f32(*d_bits), L, mom);
    return mom[0];
}

/* ------------------------------------------------------------ f16 scale and offset */

double KF_AFF16_NAME(int n, const float *x, const float *w, int qmax, uint16_t *d_bits,
                     uint16_t *m_bits, uint8_t *L)
{
    /* The affine fit keeps its offset <= 0 (the K types store -min):
     * measured from the midrange c, the best offset (the value of the
     * lowest code) lies below 0 anyway. */
    float lo, hi, xs[QP_KS_MAX_SUB];
    kf_minmax(n, x, w, 0.0f, &lo, &hi);
    const float c = lo <= hi && isfinite(lo) && isfinite(hi) ? 0.5f * lo + 0.5f * hi : 0.0f;
    for (int i = 0; i < n; i++)
        xs[i] = x[i] - c;
    const qp_ks_affine_spec sp = {.nsub = 1, .sublen = n, .qmax = qmax, .scmax = 1, .mmax = 1};
    kf_asub sub;
    kf_aff_fit(&sp, xs, w, 1, &sub);
    kf_aff_refine(&sp, xs, w, 2, &sub);
    /* the f16 roundings of d and m and their neighbours, scored exactly */
    const uint16_t db = qp_ks_f16_bits(sub.s), mb = qp_ks_f16_bits(c - sub.mn);
    uint16_t cd[3] = {db, db, db}, cm[3] = {mb, mb, mb};
    if ((db & 0x7fffu) < 0x7bffu)
        cd[1] = (uint16_t)(db + 1);
    if ((db & 0x7fffu) > 0)
        cd[2] = (uint16_t)(db - 1);
    if ((mb & 0x7fffu) < 0x7bffu)
        cm[1] = (uint16_t)(mb + 1);
    if ((mb & 0x7fffu) > 0)
        cm[2] = (uint16_t)(mb - 1);
    float dl[16], ml[16], e[16];
    for (int k = 0; k < 16; k++) {
        const int kk = k < 9 ? k : 0;
        dl[k] = qp_f16_to_f32(cd[kk / 3]);
        ml[k] = -qp_f16_to_f32(cm[kk % 3]); /* y = d*q - (-m) = d*q + m */
    }
    kf_aff_err8(n, x, w, (float)qmax, dl, ml, e);
    kf_aff_err8(n, x, w, (float)qmax, dl + 8, ml + 8, e + 8);
    const int bk = kf_argmin_f(e, 9);
    *d_bits = cd[bk / 3];
    *m_bits = cm[bk % 3];
    float mom[4];
    kf_aff_quant(n, x, w, (float)qmax, dl[bk], ml[bk], L, mom);
    return mom[0];
}
