/* kquant_search.c - scale searches shared by the block quantizers (see
 * kquant_search.h for the model of each search). */
#include "quant/kquant_search.h"

#include <math.h>

/* Search effort. Each was tuned on the ggml-vectors tensors for error
 * against time; larger values buy little.
 *  NSTEP: starting inverse scales of the affine fit (qmax-1 .. qmax+1);
 *  RADIUS: integer sub-block scales tried either side of the model's;
 *  TOP: super-scale candidates evaluated exactly after the model ranking;
 *  AK, AS: the affine super-scale grid, (2*AK+1)^2 divisors in steps of AS. */
#define QP_KS_NSTEP 12
#define QP_KS_RADIUS 1
#define QP_KS_TOP 2
#define QP_KS_AK 3
#define QP_KS_AS 0.025f

float qp_ks_block_weights(const float *imp, int n, float *w)
{
    if (imp) {
        float wmax = 0.0f;
        for (int i = 0; i < n; i++) {
            float v = imp[i];
            if (!(v > 0.0f) || !isfinite(v)) /* negative, NaN, inf: no say */
                v = 0.0f;
            w[i] = v;
            wmax = v > wmax ? v : wmax;
        }
        if (wmax > 0.0f) {
            const float inv = 1.0f / wmax;
            double sum = 0.0;
            for (int i = 0; i < n; i++) {
                w[i] = wmax < 1e30f ? w[i] * inv : w[i] / wmax;
                sum += w[i];
            }
            return (float)sum;
        }
    }
    /* No importance (or none for this block: e.g. an expert the calibration
     * never routed to): plain squared error. */
    for (int i = 0; i < n; i++)
        w[i] = 1.0f;
    return (float)n;
}

const float *qp_ks_block_input(const float *src, int n, float *buf)
{
    int ok = 1;
    for (int i = 0; i < n; i++)
        ok &= fabsf(src[i]) <= QP_KS_XMAX; /* false for NaN and inf */
    if (ok)
        return src;
    for (int i = 0; i < n; i++) {
        const float v = src[i];
        buf[i] = v != v ? 0.0f : (v > QP_KS_XMAX ? QP_KS_XMAX : (v < -QP_KS_XMAX ? -QP_KS_XMAX : v));
    }
    return buf;
}

/* ---------------------------------------------------------------- grids */

static void grid_mids(qp_ks_grid *g)
{
    for (int k = 0; k + 1 < g->nlev; k++)
        g->mid[k] = 0.5f * (g->lev[k] + g->lev[k + 1]);
}

void qp_ks_grid_uniform(qp_ks_grid *g, int lo, int hi)
{
    memset(g, 0, sizeof *g);
    g->nlev = hi - lo + 1;
    g->uniform = 1;
    g->lo = lo;
    for (int k = 0; k < g->nlev; k++)
        g->lev[k] = (float)(lo + k);
    grid_mids(g);
}

void qp_ks_grid_table(qp_ks_grid *g, const int8_t *vals, int n)
{
    memset(g, 0, sizeof *g);
    g->nlev = n;
    for (int k = 0; k < n; k++)
        g->lev[k] = (float)vals[k];
    grid_mids(g);
}

/* ------------------------------------------------------- error evaluators */

/* The hot loops below keep QP_KS_LANES independent partial sums so that
 * they vectorize (and so an AVX2 twin is the same arithmetic lane for
 * lane); sub-block lengths are multiples of it. */
#define QP_KS_LANES 8

/* v clamped to [lo, hi] and rounded to the nearest integer (ties to even),
 * as a float: adding and removing 1.5 * 2^23 leaves the integer (exact for
 * |v| < 2^22). Plain comparisons clamp (maxss/minss, no libm call), the
 * first mapping NaN to lo, so the result is always in range. */
static inline float roundf_clamped(float v, float lo, float hi)
{
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return (v + 12582912.0f) - 12582912.0f;
}

static inline double lanes_sum(const float *acc)
{
    double e = 0.0;
    for (int l = 0; l < QP_KS_LANES; l++)
        e += acc[l];
    return e;
}

double qp_ks_sym_requant(int n, const float *x, const float *w, const qp_ks_grid *g, float dl,
                         uint8_t *L)
{
    float acc[QP_KS_LANES] = {0};
    if (dl == 0.0f) {
        const uint8_t k0 = (uint8_t)qp_ks_grid_index(g, 0.0f);
        for (int i = 0; i < n; i++) {
            acc[i % QP_KS_LANES] += w[i] * x[i] * x[i];
            L[i] = k0;
        }
        return lanes_sum(acc);
    }
    const float id = 1.0f / dl;
    if (g->uniform) {
        const float lo = (float)g->lo, hi = (float)(g->lo + g->nlev - 1);
        int i = 0;
        for (; i + QP_KS_LANES <= n; i += QP_KS_LANES)
            for (int l = 0; l < QP_KS_LANES; l++) {
                const float q = roundf_clamped(x[i + l] * id, lo, hi);
                const float diff = dl * q - x[i + l];
                acc[l] += w[i + l] * diff * diff;
                L[i + l] = (uint8_t)(int)(q - lo);
            }
        for (; i < n; i++) {
            const float q = roundf_clamped(x[i] * id, lo, hi);
            const float diff = dl * q - x[i];
            acc[0] += w[i] * diff * diff;
            L[i] = (uint8_t)(int)(q - lo);
        }
    } else {
        for (int i = 0; i < n; i++) {
            const int k = qp_ks_grid_index(g, x[i] * id);
            const float diff = dl * g->lev[k] - x[i];
            acc[i % QP_KS_LANES] += w[i] * diff * diff;
            L[i] = (uint8_t)k;
        }
    }
    return lanes_sum(acc);
}

double qp_ks_affine_requant(int n, const float *x, const float *w, int qmax, float dl, float ml,
                            uint8_t *L)
{
    float acc[QP_KS_LANES] = {0};
    const float id = dl != 0.0f ? 1.0f / dl : 0.0f, top = (float)qmax;
    int i = 0;
    for (; i + QP_KS_LANES <= n; i += QP_KS_LANES)
        for (int l = 0; l < QP_KS_LANES; l++) {
            const float q = roundf_clamped((x[i + l] + ml) * id, 0.0f, top);
            const float diff = dl * q - ml - x[i + l];
            acc[l] += w[i + l] * diff * diff;
            L[i + l] = (uint8_t)(int)q;
        }
    for (; i < n; i++) {
        const float q = roundf_clamped((x[i] + ml) * id, 0.0f, top);
        const float diff = dl * q - ml - x[i];
        acc[0] += w[i] * diff * diff;
        L[i] = (uint8_t)(int)q;
    }
    return lanes_sum(acc);
}

/* ------------------------------------------------------ symmetric sweep */

#define SWEEP_MAX_EVENTS (QP_KS_MAX_SUB * (QP_KS_MAX_LEVELS - 1))

/* Sweep t = 1/s over [t_lo, t_hi] for x * sign: each element starts at its
 * nearest level for t_lo and steps one level outwards each time x_i * t
 * crosses a midpoint. Every assignment met is scored by its least-squares
 * scale; the optimum (s*, L(1/s*)) over the window is among them. The best
 * is kept as the pair (sqx, sqq): score sqx^2/sqq, scale sqx/sqq.
 *
 * The crossings are ordered by a counting sort into as many buckets as
 * there are crossings, finished by an insertion sort (stable, so one
 * element's own steps stay in order). */
static void sweep(int n, const float *x, const float *w, const qp_ks_grid *g, float sign,
                  float t_lo, float t_hi, double *bqx, double *bqq)
{
    int lvl[QP_KS_MAX_SUB], dir[QP_KS_MAX_SUB];
    float xs[QP_KS_MAX_SUB];
    float ev_t[SWEEP_MAX_EVENTS];
    uint8_t ev_i[SWEEP_MAX_EVENTS], order[SWEEP_MAX_EVENTS];
    uint16_t ev_b[SWEEP_MAX_EVENTS];
    int ne = 0;
    double sqx = 0.0, sqq = 0.0;
    for (int i = 0; i < n; i++) {
        xs[i] = sign * x[i];
        int k = qp_ks_grid_index(g, xs[i] * t_lo);
        lvl[i] = k;
        dir[i] = xs[i] > 0.0f ? 1 : -1;
        sqx += (double)w[i] * xs[i] * g->lev[k];
        sqq += (double)w[i] * g->lev[k] * g->lev[k];
        if (w[i] == 0.0f || xs[i] == 0.0f)
            continue; /* moving it changes nothing / it never moves */
        const float ix = 1.0f / xs[i];
        if (xs[i] > 0.0f) {
            for (int m = k; m + 1 < g->nlev; m++) {
                const float t = g->mid[m] * ix;
                if (t > t_hi)
                    break;
                ev_t[ne] = t;
                ev_i[ne++] = (uint8_t)i;
            }
        } else {
            for (int m = k - 1; m >= 0; m--) {
                const float t = g->mid[m] * ix;
                if (t > t_hi)
                    break;
                ev_t[ne] = t;
                ev_i[ne++] = (uint8_t)i;
            }
        }
    }
    if (sqq > 0.0 && sqx * sqx * *bqq > *bqx * *bqx * sqq) {
        *bqx = sign * sqx;
        *bqq = sqq;
    }
    if (ne == 0)
        return;
    /* counting sort by bucket */
    uint16_t cnt[SWEEP_MAX_EVENTS + 1];
    memset(cnt, 0, sizeof(uint16_t) * (size_t)(ne + 1));
    const float scale = (float)ne / (t_hi - t_lo);
    for (int e = 0; e < ne; e++) {
        float b = (ev_t[e] - t_lo) * scale;
        int bi = b > 0.0f ? (b < (float)(ne - 1) ? (int)b : ne - 1) : 0;
        ev_b[e] = (uint16_t)bi;
        cnt[bi + 1]++;
    }
    for (int b = 0; b < ne; b++)
        cnt[b + 1] = (uint16_t)(cnt[b + 1] + cnt[b]);
    uint16_t *pos = cnt; /* pos[b] = next slot of bucket b */
    float st[SWEEP_MAX_EVENTS];
    for (int e = 0; e < ne; e++) {
        const int p = pos[ev_b[e]]++;
        st[p] = ev_t[e];
        order[p] = ev_i[e];
    }
    /* Only crossings sharing a bucket can be out of order: an insertion
     * sort finishes the job in about linear time. */
    for (int e = 1; e < ne; e++) {
        const float t = st[e];
        const uint8_t i = order[e];
        int p = e;
        for (; p > 0 && st[p - 1] > t; p--) {
            st[p] = st[p - 1];
            order[p] = order[p - 1];
        }
        st[p] = t;
        order[p] = i;
    }
    for (int e = 0; e < ne; e++) {
        const int i = order[e];
        const int k = lvl[i], nk = k + dir[i];
        const double wi = w[i];
        sqx += wi * xs[i] * (g->lev[nk] - g->lev[k]);
        sqq += wi * ((double)g->lev[nk] * g->lev[nk] - (double)g->lev[k] * g->lev[k]);
        lvl[i] = nk;
        /* score sqx^2/sqq > best, without a division */
        if (sqx * sqx * *bqq > *bqx * *bqx * sqq) {
            *bqx = sign * sqx;
            *bqq = sqq;
        }
    }
}

float qp_ks_sym_scale_window(int n, const float *x, const float *w, const qp_ks_grid *g,
                             float r_lo, float r_hi, uint8_t *L)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++)
        if (w[i] != 0.0f && fabsf(x[i]) > amax)
            amax = fabsf(x[i]);
    const float e0 = fabsf(g->lev[0]), e1 = fabsf(g->lev[g->nlev - 1]);
    if (!(amax > QP_KS_XMIN) || !isfinite(amax)) {
        qp_ks_sym_requant(n, x, w, g, 0.0f, L);
        return 0.0f;
    }
    /* window of inverse scales: the largest element between r_lo and
     * r_hi times the far end of the grid */
    const float t_lo = r_lo * (e0 < e1 ? e0 : e1) / amax, t_hi = r_hi * (e0 > e1 ? e0 : e1) / amax;
    double bqx = 0.0, bqq = 1.0;
    sweep(n, x, w, g, 1.0f, t_lo, t_hi, &bqx, &bqq);
    sweep(n, x, w, g, -1.0f, t_lo, t_hi, &bqx, &bqq);
    float s = (float)(bqx / bqq);
    double e = qp_ks_sym_requant(n, x, w, g, s, L);
    if (s == 0.0f)
        return 0.0f;
    /* The sweep's sums drift by float rounding; a few alternating steps
     * (nearest levels <-> least-squares scale) settle it. */
    for (int it = 0; it < 2; it++) {
        double sqx = 0.0, sqq = 0.0;
        for (int i = 0; i < n; i++) {
            double v = g->lev[L[i]];
            sqx += (double)w[i] * x[i] * v;
            sqq += (double)w[i] * v * v;
        }
        if (!(sqq > 0.0))
            break;
        float s2 = (float)(sqx / sqq);
        uint8_t L2[QP_KS_MAX_SUB];
        double e2 = qp_ks_sym_requant(n, x, w, g, s2, L2);
        if (!(e2 < e))
            break;
        e = e2;
        s = s2;
        memcpy(L, L2, (size_t)n);
    }
    return s;
}

float qp_ks_sym_scale(int n, const float *x, const float *w, const qp_ks_grid *g, uint8_t *L)
{
    return qp_ks_sym_scale_window(n, x, w, g, QP_KS_RLO, QP_KS_RHI, L);
}

/* ------------------------------------------------------ affine fit */

/* Weighted least squares of x ~ s*q + m for fixed codes q, from the
 * moments sw = sum w, sx = sum w x, sxx = sum w x^2, sq = sum w q,
 * sqq = sum w q^2, sqx = sum w q x. Returns the error of the fit, or
 * INFINITY when q carries no scale information. */
static double fit_moments(double sw, double sx, double sxx, double sq, double sqq, double sqx,
                         int nonpos_min, float *s, float *m)
{
    const double D = sw * sqq - sq * sq;
    if (!(D > 1e-12 * sw * sqq) || !(sqq > 0.0))
        return INFINITY;
    double ss = (sw * sqx - sq * sx) / D;
    double mm = (sqq * sx - sq * sqx) / D;
    if (nonpos_min && mm > 0.0) {
        mm = 0.0;
        ss = sqx / sqq;
    }
    if (!(ss > 0.0))
        return INFINITY;
    *s = (float)ss;
    *m = (float)mm;
    return sxx - 2.0 * ss * sqx - 2.0 * mm * sx + ss * ss * sqq + 2.0 * ss * mm * sq + mm * mm * sw;
}

float qp_ks_affine_fit(int n, const float *x, const float *w, int qmax, int nonpos_min,
                       float *m_out, uint8_t *L)
{
    float xmin = INFINITY, xmax = -INFINITY;
    double sw = 0.0, sx = 0.0, sxx = 0.0;
    for (int i = 0; i < n; i++) {
        sw += w[i];
        sx += (double)w[i] * x[i];
        sxx += (double)w[i] * x[i] * x[i];
        if (w[i] == 0.0f)
            continue;
        xmin = x[i] < xmin ? x[i] : xmin;
        xmax = x[i] > xmax ? x[i] : xmax;
    }
    if (xmin > xmax) { /* no weight anywhere: any answer is exact */
        *m_out = 0.0f;
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    if (nonpos_min && xmin > 0.0f)
        xmin = 0.0f;
    if (!(xmax - xmin > QP_KS_XMIN) || !isfinite(xmax - xmin)) { /* constant block */
        *m_out = isfinite(xmin) ? xmin : 0.0f;
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    /* Starting inverse scales from (qmax - 1) to (qmax + 1) steps over the
     * range (as ggml's qkx2 search); from each start, alternate
     * least-squares (s, m) and nearest codes while the error drops. One
     * pass per step: the codes' moments give both the error and the next
     * fit. */
    const int nstep = QP_KS_NSTEP;
    const float top = (float)qmax;
    float best_s = (xmax - xmin) / top, best_m = xmin;
    double best_fit = INFINITY;
    for (int k = 0; k <= nstep; k++) {
        float iscale = ((float)qmax - 1.0f + 2.0f * (float)k / (float)nstep) / (xmax - xmin);
        float off = xmin;
        double prev = INFINITY;
        for (int it = 0; it < 4; it++) {
            float aq[QP_KS_LANES] = {0}, aqq[QP_KS_LANES] = {0}, aqx[QP_KS_LANES] = {0};
            for (int i0 = 0; i0 < n; i0 += QP_KS_LANES)
                for (int l = 0; l < QP_KS_LANES && i0 + l < n; l++) {
                    const int i = i0 + l;
                    const float q = roundf_clamped((x[i] - off) * iscale, 0.0f, top);
                    aq[l] += w[i] * q;
                    aqq[l] += w[i] * q * q;
                    aqx[l] += w[i] * q * x[i];
                }
            const double sq = lanes_sum(aq), sqq = lanes_sum(aqq), sqx = lanes_sum(aqx);
            float s = 1.0f / iscale, m = off;
            const double e = fit_moments(sw, sx, sxx, sq, sqq, sqx, nonpos_min, &s, &m);
            if (e < best_fit) {
                best_fit = e;
                best_s = s;
                best_m = m;
            }
            if (!(e < prev))
                break;
            prev = e;
            iscale = 1.0f / s;
            off = m;
        }
    }
    qp_ks_affine_requant(n, x, w, qmax, best_s, -best_m, L);
    *m_out = best_m;
    return best_s;
}

/* ------------------------------------------------------ ranking by model */

/* Super-scale candidates are first ranked by a quadratic model of each
 * sub-block's error around its best real parameters (codes held fixed),
 * which costs O(sub-blocks) instead of O(elements); only the best few are
 * evaluated exactly. */

typedef struct {
    double model[QP_KS_TOP];
    float d[QP_KS_TOP], dmin[QP_KS_TOP];
    int n;
} top_list;

static void top_add(top_list *t, double model, float d, float dmin)
{
    for (int i = 0; i < t->n; i++)
        if (t->d[i] == d && t->dmin[i] == dmin)
            return; /* f16 rounding makes neighbouring candidates collide */
    int i;
    if (t->n < QP_KS_TOP)
        i = t->n++;
    else if (model < t->model[QP_KS_TOP - 1])
        i = QP_KS_TOP - 1;
    else
        return;
    while (i > 0 && model < t->model[i - 1]) {
        t->model[i] = t->model[i - 1];
        t->d[i] = t->d[i - 1];
        t->dmin[i] = t->dmin[i - 1];
        i--;
    }
    t->model[i] = model;
    t->d[i] = d;
    t->dmin[i] = dmin;
}

/* ------------------------------------------------------ symmetric two-level */

/* sum_j H_j (d*l_j - s_j)^2 with the best l_j of the three nearest. */
static double sym_model(const qp_ks_sym_spec *sp, const float *s, const double *H, float d)
{
    double total = 0.0;
    for (int j = 0; j < sp->nsub; j++) {
        const int c = qp_ks_nearest_int(s[j] / d);
        double best = INFINITY;
        for (int l = c - 1; l <= c + 1; l++) {
            const int lc = qp_ks_clampi(l, sp->lmin, sp->lmax);
            const double diff = (double)d * lc - s[j];
            const double e = H[j] * diff * diff;
            best = e < best ? e : best;
        }
        total += best;
    }
    return total;
}

/* Exact error of the whole super-block for super-scale d (rounded to f16):
 * every sub-block takes the best integer scale among the neighbours of
 * center[j] (or of s[j]/d when center is NULL). */
static double sym_eval(const qp_ks_sym_spec *sp, const float *x, const float *w, const float *s,
                       const int *center, float d_in, uint16_t *bits, int *ls, uint8_t *L)
{
    *bits = qp_ks_f16_bits(d_in);
    const float d = qp_f16_to_f32(*bits);
    const int len = sp->sublen;
    double total = 0.0;
    uint8_t tmp[QP_KS_MAX_SUB];
    for (int j = 0; j < sp->nsub; j++) {
        const float *xj = x + j * len, *wj = w + j * len;
        int c = center ? center[j] : (d != 0.0f ? qp_ks_nearest_int(s[j] / d) : 0);
        c = qp_ks_clampi(c, sp->lmin, sp->lmax);
        double best = INFINITY;
        for (int l = c - QP_KS_RADIUS; l <= c + QP_KS_RADIUS; l++) {
            if (l < sp->lmin || l > sp->lmax)
                continue;
            double e = qp_ks_sym_requant(len, xj, wj, sp->grid, d * (float)l, tmp);
            if (e < best) {
                best = e;
                ls[j] = l;
                memcpy(L + j * len, tmp, (size_t)len);
            }
        }
        total += best;
    }
    return total;
}

double qp_ks_sym_superblock(const qp_ks_sym_spec *sp, const float *x, const float *w,
                            uint16_t *d_bits, int *ls, uint8_t *L)
{
    enum { MAXS = 16 };
    const int nsub = sp->nsub, len = sp->sublen, n = nsub * len;
    float s[MAXS];
    double H[MAXS];
    float smax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        const float *xj = x + j * len, *wj = w + j * len;
        uint8_t *Lj = L + j * len;
        s[j] = qp_ks_sym_scale_window(len, xj, wj, sp->grid, sp->r_lo, sp->r_hi, Lj);
        H[j] = 0.0;
        for (int i = 0; i < len; i++)
            H[j] += (double)wj[i] * sp->grid->lev[Lj[i]] * sp->grid->lev[Lj[i]];
        if (fabsf(s[j]) > fabsf(smax))
            smax = s[j];
    }
    *d_bits = 0;
    if (smax == 0.0f || !isfinite(smax)) {
        for (int j = 0; j < nsub; j++)
            ls[j] = 0;
        return qp_ks_sym_requant(n, x, w, sp->grid, 0.0f, L);
    }
    /* The largest sub-block scale lands on either end of the integer range,
     * the divisor swept a few percent either side (the top sub-block then
     * clips slightly, or the others get finer steps). */
    top_list top = {.n = 0};
    const int ends[2] = {sp->lmin, sp->lmax};
    for (int side = 0; side < 2; side++)
        for (int k = -8; k <= 8; k++) {
            const float d = qp_ks_f16_round(smax / ((float)ends[side] * (1.0f + (float)k / 64.0f)));
            if (d != 0.0f)
                top_add(&top, sym_model(sp, s, H, d), d, 0.0f);
        }
    /* start from the all-zero block, so the outputs are always set */
    for (int j = 0; j < nsub; j++)
        ls[j] = 0;
    double best = qp_ks_sym_requant(n, x, w, sp->grid, 0.0f, L);
    int tls[MAXS];
    uint8_t tL[MAXS * QP_KS_MAX_SUB];
    uint16_t tbits;
    for (int c = 0; c < top.n; c++) {
        double e = sym_eval(sp, x, w, s, NULL, top.d[c], &tbits, tls, tL);
        if (e < best) {
            best = e;
            *d_bits = tbits;
            memcpy(ls, tls, sizeof(int) * (size_t)nsub);
            memcpy(L, tL, (size_t)n);
        }
    }
    /* Least-squares refit of d for the chosen integers and codes, then the
     * integers re-picked around the current ones, while the error drops. */
    for (int it = 0; it < 3; it++) {
        double num = 0.0, den = 0.0;
        for (int j = 0; j < nsub; j++)
            for (int i = 0; i < len; i++) {
                const int k = j * len + i;
                const double a = (double)ls[j] * sp->grid->lev[L[k]];
                num += (double)w[k] * a * x[k];
                den += (double)w[k] * a * a;
            }
        if (!(den > 0.0))
            break;
        double e = sym_eval(sp, x, w, s, ls, (float)(num / den), &tbits, tls, tL);
        if (!(e < best))
            break;
        best = e;
        *d_bits = tbits;
        memcpy(ls, tls, sizeof(int) * (size_t)nsub);
        memcpy(L, tL, (size_t)n);
    }
    return best;
}

/* ------------------------------------------------------ affine two-level */

typedef struct {
    double A, B, C; /* sum w q^2, sum w q, sum w over the sub-block */
} moments;

/* Model error of sub-block parameters (a, b) against the fit (s, m):
 * y changes by (a - s) q - (b - m). */
static inline double affine_q(const moments *mo, double da, double db)
{
    return mo->A * da * da - 2.0 * mo->B * da * db + mo->C * db * db;
}

static double affine_model(const qp_ks_affine_spec *sp, const float *s, const float *mn,
                           const moments *mo, float d, float dmin)
{
    double total = 0.0;
    for (int j = 0; j < sp->nsub; j++) {
        const int c1 = d != 0.0f ? qp_ks_nearest_int(s[j] / d) : 0;
        const int c2 = dmin != 0.0f ? qp_ks_nearest_int(mn[j] / dmin) : 0;
        double best = INFINITY;
        for (int a = c1 - 1; a <= c1 + 1; a++) {
            const double da = (double)d * qp_ks_clampi(a, 0, sp->scmax) - s[j];
            for (int b = c2 - 1; b <= c2 + 1; b++) {
                const double db = (double)dmin * qp_ks_clampi(b, 0, sp->mmax) - mn[j];
                const double e = affine_q(&mo[j], da, db);
                best = e < best ? e : best;
            }
        }
        total += best;
    }
    return total;
}

static double affine_eval(const qp_ks_affine_spec *sp, const float *x, const float *w,
                          const float *s, const float *mn, const int *csc, const int *cm,
                          float d_in, float dmin_in, uint16_t *dbits, uint16_t *mbits, int *sc,
                          int *m, uint8_t *L)
{
    *dbits = qp_ks_f16_bits(d_in);
    *mbits = qp_ks_f16_bits(dmin_in);
    const float d = qp_f16_to_f32(*dbits), dmin = qp_f16_to_f32(*mbits);
    const int len = sp->sublen;
    double total = 0.0;
    uint8_t tmp[QP_KS_MAX_SUB];
    for (int j = 0; j < sp->nsub; j++) {
        const float *xj = x + j * len, *wj = w + j * len;
        int c1 = csc ? csc[j] : (d != 0.0f ? qp_ks_nearest_int(s[j] / d) : 0);
        int c2 = cm ? cm[j] : (dmin != 0.0f ? qp_ks_nearest_int(mn[j] / dmin) : 0);
        c1 = qp_ks_clampi(c1, 0, sp->scmax);
        c2 = qp_ks_clampi(c2, 0, sp->mmax);
        double best = INFINITY;
        for (int a = c1 - 1; a <= c1 + 1; a++) {
            if (a < 0 || a > sp->scmax)
                continue;
            const float dl = d * (float)a;
            for (int b = c2 - 1; b <= c2 + 1; b++) {
                if (b < 0 || b > sp->mmax)
                    continue;
                const float ml = dmin * (float)b;
                double e = qp_ks_affine_requant(len, xj, wj, sp->qmax, dl, ml, tmp);
                if (e < best) {
                    best = e;
                    sc[j] = a;
                    m[j] = b;
                    memcpy(L + j * len, tmp, (size_t)len);
                }
            }
        }
        total += best;
    }
    return total;
}

double qp_ks_affine_superblock(const qp_ks_affine_spec *sp, const float *x, const float *w,
                               uint16_t *d_bits, uint16_t *dmin_bits, int *sc, int *m,
                               uint8_t *L)
{
    enum { MAXS = 16 };
    const int nsub = sp->nsub, len = sp->sublen, n = nsub * len;
    float s[MAXS], mn[MAXS];
    moments mo[MAXS];
    float smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        const float *xj = x + j * len, *wj = w + j * len;
        uint8_t *Lj = L + j * len;
        float off;
        s[j] = qp_ks_affine_fit(len, xj, wj, sp->qmax, 1, &off, Lj);
        mn[j] = -off;
        mo[j].A = mo[j].B = mo[j].C = 0.0;
        for (int i = 0; i < len; i++) {
            mo[j].A += (double)wj[i] * Lj[i] * Lj[i];
            mo[j].B += (double)wj[i] * Lj[i];
            mo[j].C += wj[i];
        }
        smax = s[j] > smax ? s[j] : smax;
        mmax = mn[j] > mmax ? mn[j] : mmax;
    }
    if (!isfinite(smax) || !isfinite(mmax))
        smax = mmax = 0.0f;
    /* Divisors around the full integer range for both super-scales. */
    top_list top = {.n = 0};
    for (int a = -QP_KS_AK; a <= QP_KS_AK; a++) {
        const float d = qp_ks_f16_round(smax / ((float)sp->scmax * (1.0f + QP_KS_AS * (float)a)));
        for (int b = -QP_KS_AK; b <= QP_KS_AK; b++) {
            const float dm = qp_ks_f16_round(mmax / ((float)sp->mmax * (1.0f + QP_KS_AS * (float)b)));
            top_add(&top, affine_model(sp, s, mn, mo, d, dm), d, dm);
        }
    }
    /* start from the all-zero block, so the outputs are always set */
    *d_bits = *dmin_bits = 0;
    for (int j = 0; j < nsub; j++)
        sc[j] = m[j] = 0;
    double best = qp_ks_affine_requant(n, x, w, sp->qmax, 0.0f, 0.0f, L);
    int tsc[MAXS], tm[MAXS];
    uint8_t tL[MAXS * QP_KS_MAX_SUB];
    uint16_t tdb, tmb;
    for (int c = 0; c < top.n; c++) {
        double e = affine_eval(sp, x, w, s, mn, NULL, NULL, top.d[c], top.dmin[c], &tdb, &tmb,
                               tsc, tm, tL);
        if (e < best) {
            best = e;
            *d_bits = tdb;
            *dmin_bits = tmb;
            memcpy(sc, tsc, sizeof(int) * (size_t)nsub);
            memcpy(m, tm, sizeof(int) * (size_t)nsub);
            memcpy(L, tL, (size_t)n);
        }
    }
    /* Joint least squares of (d, dmin) for the chosen integers and codes:
     * y = d * A - dmin * B with A = sc_j q_i, B = m_j; then the integers
     * re-picked around the current ones, while the error drops. */
    for (int it = 0; it < 3; it++) {
        double aa = 0, ab = 0, bb = 0, ax = 0, bx = 0;
        for (int j = 0; j < nsub; j++)
            for (int i = 0; i < len; i++) {
                const int k = j * len + i;
                const double wi = w[k], A = (double)sc[j] * L[k], B = -(double)m[j];
                aa += wi * A * A;
                ab += wi * A * B;
                bb += wi * B * B;
                ax += wi * A * x[k];
                bx += wi * B * x[k];
            }
        const double D = aa * bb - ab * ab;
        double d, dm;
        if (D > 1e-12 * aa * bb && bb > 0.0) {
            d = (ax * bb - bx * ab) / D;
            dm = (aa * bx - ab * ax) / D;
            if (dm < 0.0) {
                dm = 0.0;
                d = ax / aa;
            }
        } else if (aa > 0.0) {
            d = ax / aa;
            dm = qp_f16_to_f32(*dmin_bits);
        } else {
            break;
        }
        if (!(d >= 0.0))
            break;
        double e = affine_eval(sp, x, w, s, mn, sc, m, (float)d, (float)dm, &tdb, &tmb, tsc, tm,
                               tL);
        if (!(e < best))
            break;
        best = e;
        *d_bits = tdb;
        *dmin_bits = tmb;
        memcpy(sc, tsc, sizeof(int) * (size_t)nsub);
        memcpy(m, tm, sizeof(int) * (size_t)nsub);
        memcpy(L, tL, (size_t)n);
    }
    return best;
}

/* ------------------------------------------------------ one-scale blocks */

/* f16 bit patterns next to `b` (same sign), skipping inf/NaN. */
static int f16_neighbours(uint16_t b, uint16_t out[3])
{
    int k = 0;
    out[k++] = b;
    if ((b & 0x7fffu) < 0x7bffu)
        out[k++] = (uint16_t)(b + 1);
    if ((b & 0x7fffu) > 0)
        out[k++] = (uint16_t)(b - 1);
    return k;
}

double qp_ks_sym_block_f16(int n, const float *x, const float *w, const qp_ks_grid *g,
                           uint16_t *d_bits, uint8_t *L)
{
    float s = qp_ks_sym_scale(n, x, w, g, L);
    uint16_t cand[3];
    int nc = f16_neighbours(qp_ks_f16_bits(s), cand);
    *d_bits = 0; /* the all-zero block first, so the outputs are always set */
    double best = qp_ks_sym_requant(n, x, w, g, 0.0f, L);
    uint8_t tmp[QP_KS_MAX_SUB];
    for (int c = 0; c < nc; c++) {
        double e = qp_ks_sym_requant(n, x, w, g, qp_f16_to_f32(cand[c]), tmp);
        if (e < best) {
            best = e;
            *d_bits = cand[c];
            memcpy(L, tmp, (size_t)n);
        }
    }
    return best;
}

double qp_ks_affine_block_f16(int n, const float *x, const float *w, int qmax, uint16_t *d_bits,
                              uint16_t *m_bits, uint8_t *L)
{
    float m;
    float s = qp_ks_affine_fit(n, x, w, qmax, 0, &m, L);
    uint16_t cd[3], cm[3];
    int nd = f16_neighbours(qp_ks_f16_bits(s), cd);
    int nm = f16_neighbours(qp_ks_f16_bits(m), cm);
    *d_bits = *m_bits = 0; /* the all-zero block first, so the outputs are always set */
    double best = qp_ks_affine_requant(n, x, w, qmax, 0.0f, 0.0f, L);
    uint8_t tmp[QP_KS_MAX_SUB];
    for (int a = 0; a < nd; a++)
        for (int b = 0; b < nm; b++) {
            /* the dequantizer computes d*q + m; d*q - (-m) is the same float */
            double e = qp_ks_affine_requant(n, x, w, qmax, qp_f16_to_f32(cd[a]),
                                            -qp_f16_to_f32(cm[b]), tmp);
            if (e < best) {
                best = e;
                *d_bits = cd[a];
                *m_bits = cm[b];
                memcpy(L, tmp, (size_t)n);
            }
        }
    return best;
}
