/* ggml_like.c - scalar twins of llama.cpp's K-quant searches without an
 * importance matrix (Q4_K, Q5_K, Q6_K: the types of Q4_K_M), written from
 * the published algorithm, for tests/bench/bench_quant.c to measure the
 * production search against on the same machine. Not used to write files.
 *
 * Q4_K / Q5_K: per sub-block of 32, weights av + |x| (av the root mean
 * square of the sub-block); the starting scale (max - min) / qmax and
 * nstep + 1 further inverse scales (qmax + rmin + k * 0.1) / (max - min),
 * each giving codes whose weighted least-squares scale and min (min <= 0)
 * are scored by their weighted error; the best kept. Then d = max scale /
 * 63, dmin = max min / 63, integer scales and mins rounded, codes
 * requantized.
 * Q6_K: per sub-block of 16, weights x^2; the largest element mapped to
 * -32 and 19 inverse scales -(32 + k/10) / max, k = -9..9, each scored by
 * its least-squares scale; then d = max scale / -128, integer scales
 * rounded, codes requantized. */
#include "quant/qtype_ref.h"

#include <math.h>

#include "quant/kquant_search.h"
#include "quant/quant_rows.h"

/* make_qkx2-style search: x ~ scale * L + min, min <= 0. Returns scale,
 * *mn = -min. */
static float gl_qkx2(int n, int nmax, const float *x, const float *w, float rmin, float rdelta,
                     int nstep, float *mn)
{
    float xmin = x[0], xmax = x[0], sw = 0.0f, sx = 0.0f;
    for (int i = 0; i < n; i++) {
        xmin = x[i] < xmin ? x[i] : xmin;
        xmax = x[i] > xmax ? x[i] : xmax;
        sw += w[i];
        sx += w[i] * x[i];
    }
    if (xmin > 0.0f)
        xmin = 0.0f;
    if (xmax == xmin) {
        *mn = -xmin;
        return 0.0f;
    }
    float iscale = (float)nmax / (xmax - xmin), scale = 1.0f / iscale, best = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = qp_ks_clampi(qp_ks_nearest_int(iscale * (x[i] - xmin)), 0, nmax);
        const float diff = scale * (float)l + xmin - x[i];
        best += w[i] * diff * diff;
    }
    float bmin = xmin;
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (xmax - xmin);
        float sl = 0.0f, sl2 = 0.0f, sxl = 0.0f;
        int Laux[QP_KS_MAX_SUB];
        for (int i = 0; i < n; i++) {
            const int l = qp_ks_clampi(qp_ks_nearest_int(iscale * (x[i] - xmin)), 0, nmax);
            Laux[i] = l;
            sl += w[i] * (float)l;
            sl2 += w[i] * (float)(l * l);
            sxl += w[i] * (float)l * x[i];
        }
        const float D = sw * sl2 - sl * sl;
        if (!(D > 0.0f))
            continue;
        float ts = (sw * sxl - sx * sl) / D, tm = (sl2 * sx - sl * sxl) / D;
        if (tm > 0.0f) {
            tm = 0.0f;
            ts = sxl / sl2;
        }
        float e = 0.0f;
        for (int i = 0; i < n; i++) {
            const float diff = ts * (float)Laux[i] + tm - x[i];
            e += w[i] * diff * diff;
        }
        if (e < best) {
            best = e;
            scale = ts;
            bmin = tm;
        }
    }
    *mn = -bmin;
    return scale;
}

static double gl_affine(const qp_ks_affine_spec *sp, const float *x, const float *w,
                        uint16_t *d_bits, uint16_t *dmin_bits, int *sc, int *m, uint8_t *L)
{
    (void)w;
    const int nsub = sp->nsub, len = sp->sublen, nmax = sp->qmax;
    const float rmin = nmax == 15 ? -1.0f : -0.5f;
    const int nstep = nmax == 15 ? 20 : 15;
    float scale[16], mins[16], smax = 0.0f, mmax = 0.0f, ww[QP_KS_MAX_SUB];
    for (int j = 0; j < nsub; j++) {
        const float *xj = x + j * len;
        float s2 = 0.0f;
        for (int i = 0; i < len; i++)
            s2 += xj[i] * xj[i];
        const float av = sqrtf(s2 / (float)len);
        for (int i = 0; i < len; i++)
            ww[i] = av + fabsf(xj[i]);
        scale[j] = gl_qkx2(len, nmax, xj, ww, rmin, 0.1f, nstep, &mins[j]);
        smax = scale[j] > smax ? scale[j] : smax;
        mmax = mins[j] > mmax ? mins[j] : mmax;
    }
    const float is = smax > 0.0f ? (float)sp->scmax / smax : 0.0f;
    const float im = mmax > 0.0f ? (float)sp->mmax / mmax : 0.0f;
    for (int j = 0; j < nsub; j++) {
        sc[j] = qp_ks_clampi(qp_ks_nearest_int(is * scale[j]), 0, sp->scmax);
        m[j] = qp_ks_clampi(qp_ks_nearest_int(im * mins[j]), 0, sp->mmax);
    }
    *d_bits = qp_ks_f16_bits(smax / (float)sp->scmax);
    *dmin_bits = qp_ks_f16_bits(mmax / (float)sp->mmax);
    const float d = qp_f16_to_f32(*d_bits), dmin = qp_f16_to_f32(*dmin_bits);
    double e = 0.0;
    for (int j = 0; j < nsub; j++) {
        const float dl = d * (float)sc[j], ml = dmin * (float)m[j];
        for (int i = 0; i < len; i++) {
            const float v = x[j * len + i];
            const int l = dl != 0.0f ? qp_ks_clampi(qp_ks_nearest_int((v + ml) / dl), 0, nmax) : 0;
            L[j * len + i] = (uint8_t)l;
            const float diff = dl * (float)l - ml - v;
            e += (double)diff * diff;
        }
    }
    return e;
}

/* make_qx-style search with weights x^2 over -(nmax + k/10) / max. */
static float gl_qx(int n, int nmax, const float *x)
{
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < 1e-30f)
        return 0.0f;
    float best_scale = 0.0f, best = -1.0f;
    for (int is = -9; is <= 9; is++) {
        const float iscale = -((float)nmax + 0.1f * (float)is) / max;
        float sxl = 0.0f, sl2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = qp_ks_clampi(qp_ks_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float wv = x[i] * x[i];
            sxl += wv * x[i] * (float)l;
            sl2 += wv * (float)(l * l);
        }
        if (sl2 > 0.0f && sxl * sxl > best * sl2) {
            best = sxl * sxl / sl2;
            best_scale = sxl / sl2;
        }
    }
    return best_scale;
}

static double gl_sym(const qp_ks_sym_spec *sp, const float *x, const float *w, uint16_t *d_bits,
                     int *ls, uint8_t *L)
{
    (void)w;
    const int nsub = sp->nsub, len = sp->sublen, nmax = -sp->grid->lo;
    float scale[16], smax = 0.0f, amax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        scale[j] = gl_qx(len, nmax, x + j * len);
        if (fabsf(scale[j]) > amax) {
            amax = fabsf(scale[j]);
            smax = scale[j];
        }
    }
    const float iscale = amax > 0.0f ? (float)sp->lmin / smax : 0.0f;
    *d_bits = qp_ks_f16_bits(iscale != 0.0f ? 1.0f / iscale : 0.0f);
    const float d = qp_f16_to_f32(*d_bits);
    double e = 0.0;
    for (int j = 0; j < nsub; j++) {
        ls[j] = qp_ks_clampi(qp_ks_nearest_int(iscale * scale[j]), sp->lmin, sp->lmax);
        const float dl = d * (float)ls[j];
        for (int i = 0; i < len; i++) {
            const float v = x[j * len + i];
            const int l = dl != 0.0f ? qp_ks_clampi(qp_ks_nearest_int(v / dl), -nmax, nmax - 1) : 0;
            L[j * len + i] = (uint8_t)(l + nmax);
            const float diff = dl * (float)l - v;
            e += (double)diff * diff;
        }
    }
    return e;
}

static void gl_q4_k(const float *s, void *d, int64_t n, const float *imp)
{
    (void)imp;
    qp_q4_k_quantize_rows(s, d, n, NULL, gl_affine);
}
static void gl_q5_k(const float *s, void *d, int64_t n, const float *imp)
{
    (void)imp;
    qp_q5_k_quantize_rows(s, d, n, NULL, gl_affine);
}
static void gl_q6_k(const float *s, void *d, int64_t n, const float *imp)
{
    (void)imp;
    qp_q6_k_quantize_rows(s, d, n, NULL, gl_sym);
}

qp_quantize_row_fn qp_qtype_ggml_like_quantizer(uint32_t type)
{
    switch (type) {
    case QP_GGML_Q4_K: return gl_q4_k;
    case QP_GGML_Q5_K: return gl_q5_k;
    case QP_GGML_Q6_K: return gl_q6_k;
    default: return NULL;
    }
}
