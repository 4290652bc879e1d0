/* kquant_search.c - scale searches shared by the block quantizers (see
 * kquant_search.h for the model of each search). */
#include "quant/kquant_search.h"

#include <math.h>

float qp_ks_block_weights(const float *imp, int n, float *w)
{
    if (imp) {
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            float v = imp[i];
            if (!(v > 0.0f) || !isfinite(v)) /* negative, NaN, inf: no say */
                v = 0.0f;
            w[i] = v;
            sum += v;
        }
        if (sum > 0.0 && isfinite(sum))
            return (float)sum;
    }
    /* No importance (or none for this block: e.g. an expert the calibration
     * never routed to): plain squared error. */
    for (int i = 0; i < n; i++)
        w[i] = 1.0f;
    return (float)n;
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

double qp_ks_sym_requant(int n, const float *x, const float *w, const qp_ks_grid *g, float dl,
                         uint8_t *L)
{
    const float id = dl != 0.0f ? 1.0f / dl : 0.0f;
    const int k0 = qp_ks_grid_index(g, 0.0f);
    double e = 0.0;
    for (int i = 0; i < n; i++) {
        int k = dl != 0.0f ? qp_ks_grid_index(g, x[i] * id) : k0;
        float y = dl * g->lev[k];
        double diff = (double)y - (double)x[i];
        e += (double)w[i] * diff * diff;
        if (L)
            L[i] = (uint8_t)k;
    }
    return e;
}

double qp_ks_affine_requant(int n, const float *x, const float *w, int qmax, float dl, float ml,
                            uint8_t *L)
{
    const float id = dl != 0.0f ? 1.0f / dl : 0.0f;
    double e = 0.0;
    for (int i = 0; i < n; i++) {
        int q = dl != 0.0f ? qp_ks_clampi(qp_ks_nearest_int((x[i] + ml) * id), 0, qmax) : 0;
        float y = dl * (float)q - ml;
        double diff = (double)y - (double)x[i];
        e += (double)w[i] * diff * diff;
        if (L)
            L[i] = (uint8_t)q;
    }
    return e;
}

/* ------------------------------------------------------ symmetric sweep */

/* A min-heap of (t, element) pairs: the next inverse scale at which each
 * element moves to its neighbouring level. */
typedef struct {
    float t[QP_KS_MAX_SUB];
    int8_t i[QP_KS_MAX_SUB];
    int n;
} ev_heap;

static void heap_push(ev_heap *h, float t, int i)
{
    int c = h->n++;
    while (c > 0) {
        int p = (c - 1) / 2;
        if (h->t[p] <= t)
            break;
        h->t[c] = h->t[p];
        h->i[c] = h->i[p];
        c = p;
    }
    h->t[c] = t;
    h->i[c] = (int8_t)i;
}

static int heap_pop(ev_heap *h)
{
    int top = h->i[0];
    float t = h->t[--h->n];
    int8_t i = h->i[h->n];
    int c = 0;
    for (;;) {
        int l = 2 * c + 1;
        if (l >= h->n)
            break;
        if (l + 1 < h->n && h->t[l + 1] < h->t[l])
            l++;
        if (h->t[l] >= t)
            break;
        h->t[c] = h->t[l];
        h->i[c] = h->i[l];
        c = l;
    }
    if (h->n > 0) {
        h->t[c] = t;
        h->i[c] = i;
    }
    return top;
}

/* Sweep t = 1/s over [t_lo, t_hi] for x * sign: each element starts at its
 * nearest level for t_lo and steps outwards as x_i * t crosses midpoints.
 * Every assignment met is scored by its least-squares scale; the optimum
 * (s*, L(1/s*)) over the window is among them. The best is kept as the
 * pair (sqx, sqq): score sqx^2/sqq, scale sqx/sqq. */
static void sweep(int n, const float *x, const float *w, const qp_ks_grid *g, float sign,
                  float t_lo, float t_hi, double *bqx, double *bqq)
{
    int lvl[QP_KS_MAX_SUB];
    float xs[QP_KS_MAX_SUB];
    ev_heap h;
    h.n = 0;
    double sqx = 0.0, sqq = 0.0;
    for (int i = 0; i < n; i++) {
        xs[i] = sign * x[i];
        int k = qp_ks_grid_index(g, xs[i] * t_lo);
        lvl[i] = k;
        sqx += (double)w[i] * xs[i] * g->lev[k];
        sqq += (double)w[i] * g->lev[k] * g->lev[k];
        if (w[i] == 0.0f)
            continue; /* moving it changes nothing */
        float t = -1.0f;
        if (xs[i] > 0.0f && k + 1 < g->nlev)
            t = g->mid[k] / xs[i];
        else if (xs[i] < 0.0f && k > 0)
            t = g->mid[k - 1] / xs[i];
        if (t >= 0.0f && t <= t_hi)
            heap_push(&h, t, i);
    }
    for (;;) {
        /* score sqx^2/sqq > best, without a division */
        if (sqq > 0.0 && sqx * sqx * *bqq > *bqx * *bqx * sqq) {
            *bqx = sign * sqx;
            *bqq = sqq;
        }
        if (h.n == 0)
            break;
        int i = heap_pop(&h);
        int k = lvl[i];
        int nk = xs[i] > 0.0f ? k + 1 : k - 1;
        double wi = w[i];
        sqx += wi * xs[i] * (g->lev[nk] - g->lev[k]);
        sqq += wi * ((double)g->lev[nk] * g->lev[nk] - (double)g->lev[k] * g->lev[k]);
        lvl[i] = nk;
        float t = -1.0f;
        if (xs[i] > 0.0f && nk + 1 < g->nlev)
            t = g->mid[nk] / xs[i];
        else if (xs[i] < 0.0f && nk > 0)
            t = g->mid[nk - 1] / xs[i];
        if (t >= 0.0f && t <= t_hi)
            heap_push(&h, t, i);
    }
}

float qp_ks_sym_scale_window(int n, const float *x, const float *w, const qp_ks_grid *g,
                             float r_lo, float r_hi, uint8_t *L)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++)
        if (w[i] != 0.0f)
            amax = fmaxf(amax, fabsf(x[i]));
    const float e0 = fabsf(g->lev[0]), e1 = fabsf(g->lev[g->nlev - 1]);
    if (!(amax > 0.0f) || !isfinite(amax)) {
        qp_ks_sym_requant(n, x, w, g, 0.0f, L);
        return 0.0f;
    }
    /* window of inverse scales: the largest element between r_lo and
     * r_hi times the far end of the grid */
    const float t_lo = r_lo * fminf(e0, e1) / amax, t_hi = r_hi * fmaxf(e0, e1) / amax;
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

/* Weighted least squares of x ~ s*q + m for fixed q; returns 0 when q is
 * constant (no information on s). */
static int fit_sm(int n, const float *x, const float *w, const uint8_t *q, int nonpos_min,
                  float *s, float *m)
{
    double sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (int i = 0; i < n; i++) {
        double wi = w[i], qi = q[i];
        sw += wi;
        sq += wi * qi;
        sqq += wi * qi * qi;
        sx += wi * x[i];
        sqx += wi * qi * x[i];
    }
    double D = sw * sqq - sq * sq;
    if (!(D > 1e-12 * sw * sqq) || !(sqq > 0.0))
        return 0;
    double ss = (sw * sqx - sq * sx) / D;
    double mm = (sqq * sx - sq * sqx) / D;
    if (nonpos_min && mm > 0.0) {
        mm = 0.0;
        ss = sqx / sqq;
    }
    if (!(ss > 0.0))
        return 0;
    *s = (float)ss;
    *m = (float)mm;
    return 1;
}

float qp_ks_affine_fit(int n, const float *x, const float *w, int qmax, int nonpos_min,
                       float *m_out, uint8_t *L)
{
    float xmin = INFINITY, xmax = -INFINITY;
    for (int i = 0; i < n; i++) {
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
    if (!(xmax > xmin)) { /* constant block (<= 0 when nonpos_min) */
        *m_out = xmin;
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float best_s = (xmax - xmin) / (float)qmax, best_m = xmin;
    double best_e = qp_ks_affine_requant(n, x, w, qmax, best_s, -best_m, L);
    uint8_t q[QP_KS_MAX_SUB];
    /* Starting inverse scales from (qmax - 1) to (qmax + 1) steps over the
     * range, as ggml's qkx2 search; each start is then refined by
     * alternating least-squares fit and nearest-level assignment. */
    const int nstep = 20;
    for (int k = 0; k <= nstep; k++) {
        float iscale = ((float)qmax - 1.0f + 0.1f * (float)k) / (xmax - xmin);
        for (int i = 0; i < n; i++)
            q[i] = (uint8_t)qp_ks_clampi(qp_ks_nearest_int(iscale * (x[i] - xmin)), 0, qmax);
        float s = 1.0f / iscale, m = xmin;
        double prev = INFINITY;
        for (int it = 0; it < 3; it++) {
            if (!fit_sm(n, x, w, q, nonpos_min, &s, &m))
                break;
            double e = qp_ks_affine_requant(n, x, w, qmax, s, -m, q);
            if (e < best_e) {
                best_e = e;
                best_s = s;
                best_m = m;
                memcpy(L, q, (size_t)n);
            }
            if (!(e < prev))
                break;
            prev = e;
        }
    }
    *m_out = best_m;
    return best_s;
}

/* ------------------------------------------------------ symmetric two-level */

/* Error of the whole super-block for super-scale d (rounded to f16): every
 * sub-block takes the best integer scale among the neighbours of center[j]
 * (or of s[j]/d when center is NULL). */
static double sym_eval(const qp_ks_sym_spec *sp, const float *x, const float *w, const float *s,
                       const int *center, float d_in, uint16_t *bits, int *ls, uint8_t *L)
{
    *bits = qp_ks_f16_bits(d_in);
    const float d = qp_f16_to_f32(*bits);
    const int len = sp->sublen;
    double total = 0.0;
    for (int j = 0; j < sp->nsub; j++) {
        const float *xj = x + j * len, *wj = w + j * len;
        int c = center ? center[j] : (d != 0.0f ? qp_ks_nearest_int(s[j] / d) : 0);
        double best = INFINITY;
        uint8_t tmp[QP_KS_MAX_SUB];
        for (int l = c - 1; l <= c + 1; l++) {
            if (l < sp->lmin || l > sp->lmax)
                continue;
            float dl = d * (float)l;
            double e = qp_ks_sym_requant(len, xj, wj, sp->grid, dl, tmp);
            if (e < best) {
                best = e;
                ls[j] = l;
                memcpy(L + j * len, tmp, (size_t)len);
            }
        }
        if (best == INFINITY) { /* center far outside the range: clamp */
            int l = qp_ks_clampi(c, sp->lmin, sp->lmax);
            best = qp_ks_sym_requant(len, xj, wj, sp->grid, d * (float)l, L + j * len);
            ls[j] = l;
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
    float smax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        s[j] = qp_ks_sym_scale(len, x + j * len, w + j * len, sp->grid, L + j * len);
        if (fabsf(s[j]) > fabsf(smax))
            smax = s[j];
    }
    if (smax == 0.0f || !isfinite(smax)) {
        *d_bits = 0;
        for (int j = 0; j < nsub; j++)
            ls[j] = 0;
        return qp_ks_sym_requant(n, x, w, sp->grid, 0.0f, L);
    }
    double best = INFINITY;
    int tls[MAXS];
    uint8_t tL[MAXS * QP_KS_MAX_SUB];
    uint16_t tbits;
    /* The largest sub-block scale lands on either end of the integer range,
     * with the divisor swept a few percent either side (the top sub-block
     * then clips slightly, or the others get finer steps). */
    const int ends[2] = {sp->lmin, sp->lmax};
    for (int side = 0; side < 2; side++) {
        for (int k = -6; k <= 6; k++) {
            float den = (float)ends[side] * (1.0f + (float)k / 64.0f);
            double e = sym_eval(sp, x, w, s, NULL, smax / den, &tbits, tls, tL);
            if (e < best) {
                best = e;
                *d_bits = tbits;
                memcpy(ls, tls, sizeof(int) * (size_t)nsub);
                memcpy(L, tL, (size_t)n);
            }
        }
    }
    /* Least-squares refit of d for the chosen integers, then re-pick the
     * integers around the current ones. */
    for (int it = 0; it < 4; it++) {
        double num = 0.0, den = 0.0;
        for (int j = 0; j < nsub; j++)
            for (int i = 0; i < len; i++) {
                double a = (double)ls[j] * sp->grid->lev[L[j * len + i]];
                num += (double)w[j * len + i] * a * x[j * len + i];
                den += (double)w[j * len + i] * a * a;
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
    float smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        float off;
        s[j] = qp_ks_affine_fit(len, x + j * len, w + j * len, sp->qmax, 1, &off, L + j * len);
        mn[j] = -off;
        smax = s[j] > smax ? s[j] : smax;
        mmax = mn[j] > mmax ? mn[j] : mmax;
    }
    if (!isfinite(smax) || !isfinite(mmax))
        smax = mmax = 0.0f;
    double best = INFINITY;
    int tsc[MAXS], tm[MAXS];
    uint8_t tL[MAXS * QP_KS_MAX_SUB];
    uint16_t tdb, tmb;
    /* Divisors around the full integer range for both super-scales. */
    for (int a = -2; a <= 2; a++) {
        float d = smax / ((float)sp->scmax * (1.0f + 0.03f * (float)a));
        for (int b = -2; b <= 2; b++) {
            float dm = mmax / ((float)sp->mmax * (1.0f + 0.03f * (float)b));
            double e = affine_eval(sp, x, w, s, mn, NULL, NULL, d, dm, &tdb, &tmb, tsc, tm, tL);
            if (e < best) {
                best = e;
                *d_bits = tdb;
                *dmin_bits = tmb;
                memcpy(sc, tsc, sizeof(int) * (size_t)nsub);
                memcpy(m, tm, sizeof(int) * (size_t)nsub);
                memcpy(L, tL, (size_t)n);
            }
        }
    }
    /* Joint least squares of (d, dmin) for the chosen integers:
     * y = d * A - dmin * B with A = sc_j q_i, B = m_j. */
    for (int it = 0; it < 4; it++) {
        double aa = 0, ab = 0, bb = 0, ax = 0, bx = 0;
        for (int j = 0; j < nsub; j++)
            for (int i = 0; i < len; i++) {
                const int k = j * len + i;
                double wi = w[k], A = (double)sc[j] * L[k], B = -(double)m[j];
                aa += wi * A * A;
                ab += wi * A * B;
                bb += wi * B * B;
                ax += wi * A * x[k];
                bx += wi * B * x[k];
            }
        double D = aa * bb - ab * ab;
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
    double best = INFINITY;
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
    double best = INFINITY;
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
