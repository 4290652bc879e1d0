/* kquant_fast_avx2.c - the AVX2 kernel set of the fast searches (compiled
 * with -mavx2 -mfma -mf16c; reached only through the run-time dispatch).
 * Each kernel performs the float operations of its portable twin in
 * kquant_fast.c in the same order, lane for lane (separate multiply and
 * add, never FMA; correctly rounded division; the same rounding and
 * clamping), so the searches return the same bytes on either path. */
#include "quant/kquant_fast_kern.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* kf_tree8 in registers: ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)). */
static inline float kf_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

static inline __m256 kf_rnd_clamp8(__m256 v, __m256 lo, __m256 hi)
{
    const __m256 magic = _mm256_set1_ps(KF_MAGIC);
    v = _mm256_max_ps(v, lo); /* NaN -> lo, as v > lo ? v : lo */
    v = _mm256_min_ps(v, hi);
    return _mm256_sub_ps(_mm256_add_ps(v, magic), magic);
}

/* 8 floats that are small non-negative integers -> 8 bytes at L. */
static inline void kf_store_codes(uint8_t *L, __m256 q)
{
    const __m256i i = _mm256_cvttps_epi32(q);
    const __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64((__m128i *)L, _mm_packus_epi16(p, p));
}

static inline void kf_minmax(int n, const float *x, const float *w, float thr, float *xmin, float *xmax)
{
    const __m256 inf = _mm256_set1_ps(INFINITY), ninf = _mm256_set1_ps(-INFINITY), zero = _mm256_set1_ps(thr);
    __m256 lo = inf, hi = ninf;
    for (int i0 = 0; i0 < n; i0 += 8) {
        const __m256 v = _mm256_loadu_ps(x + i0);
        const __m256 has = _mm256_cmp_ps(_mm256_loadu_ps(w + i0), zero, _CMP_GT_OQ);
        lo = _mm256_min_ps(_mm256_blendv_ps(inf, v, has), lo);
        hi = _mm256_max_ps(_mm256_blendv_ps(ninf, v, has), hi);
    }
    float l8[8], h8[8];
    _mm256_storeu_ps(l8, lo);
    _mm256_storeu_ps(h8, hi);
    float a = l8[0], b = h8[0];
    for (int l = 1; l < 8; l++) {
        a = l8[l] < a ? l8[l] : a;
        b = h8[l] > b ? h8[l] : b;
    }
    *xmin = a;
    *xmax = b;
}

static inline void kf_stats(int n, const float *x, const float *w, float *sw, float *sx, float *sxx,
                            float *xmin, float *xmax)
{
    const __m256 inf = _mm256_set1_ps(INFINITY), ninf = _mm256_set1_ps(-INFINITY), zero = _mm256_setzero_ps();
    __m256 a = zero, b = zero, c = zero, lo = inf, hi = ninf;
    for (int i0 = 0; i0 < n; i0 += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i0), wv = _mm256_loadu_ps(w + i0);
        const __m256 wx = _mm256_mul_ps(wv, xv);
        a = _mm256_add_ps(a, wv);
        b = _mm256_add_ps(b, wx);
        c = _mm256_add_ps(c, _mm256_mul_ps(wx, xv));
        const __m256 has = _mm256_cmp_ps(wv, zero, _CMP_GT_OQ);
        lo = _mm256_min_ps(_mm256_blendv_ps(inf, xv, has), lo);
        hi = _mm256_max_ps(_mm256_blendv_ps(ninf, xv, has), hi);
    }
    *sw = kf_hsum(a);
    *sx = kf_hsum(b);
    *sxx = kf_hsum(c);
    /* min and max are the same whatever the order (up to the sign of a
     * zero, which no search outcome depends on) */
    __m128 l4 = _mm_min_ps(_mm256_castps256_ps128(lo), _mm256_extractf128_ps(lo, 1));
    __m128 h4 = _mm_max_ps(_mm256_castps256_ps128(hi), _mm256_extractf128_ps(hi, 1));
    l4 = _mm_min_ps(l4, _mm_movehl_ps(l4, l4));
    h4 = _mm_max_ps(h4, _mm_movehl_ps(h4, h4));
    *xmin = _mm_cvtss_f32(_mm_min_ss(l4, _mm_shuffle_ps(l4, l4, 1)));
    *xmax = _mm_cvtss_f32(_mm_max_ss(h4, _mm_shuffle_ps(h4, h4, 1)));
}

static inline void kf_aff_cand8(int n, const float *x, const float *w, float top, const float *t,
                                float off, float *sq, float *sqq, float *sqx)
{
    const __m256 tv = _mm256_loadu_ps(t);
    const __m256 zero = _mm256_setzero_ps(), topv = _mm256_set1_ps(top);
    __m256 a = zero, b = zero, c = zero;
    for (int i = 0; i < n; i++) {
        const __m256 xi = _mm256_set1_ps(x[i]), wi = _mm256_set1_ps(w[i]);
        const __m256 q = kf_rnd_clamp8(_mm256_mul_ps(_mm256_set1_ps(x[i] - off), tv), zero, topv);
        const __m256 wq = _mm256_mul_ps(wi, q);
        a = _mm256_add_ps(a, wq);
        b = _mm256_add_ps(b, _mm256_mul_ps(wq, q));
        c = _mm256_add_ps(c, _mm256_mul_ps(wq, xi));
    }
    _mm256_storeu_ps(sq, a);
    _mm256_storeu_ps(sqq, b);
    _mm256_storeu_ps(sqx, c);
}

static inline void kf_aff_moments(int n, const float *x, const float *w, float top, float t,
                                  float off, float *sq, float *sqq, float *sqx)
{
    const __m256 tv = _mm256_set1_ps(t), ov = _mm256_set1_ps(off);
    const __m256 zero = _mm256_setzero_ps(), topv = _mm256_set1_ps(top);
    __m256 a = zero, b = zero, c = zero;
    for (int i0 = 0; i0 < n; i0 += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i0);
        const __m256 q = kf_rnd_clamp8(_mm256_mul_ps(_mm256_sub_ps(xv, ov), tv), zero, topv);
        const __m256 wq = _mm256_mul_ps(_mm256_loadu_ps(w + i0), q);
        a = _mm256_add_ps(a, wq);
        b = _mm256_add_ps(b, _mm256_mul_ps(wq, q));
        c = _mm256_add_ps(c, _mm256_mul_ps(wq, xv));
    }
    *sq = kf_hsum(a);
    *sqq = kf_hsum(b);
    *sqx = kf_hsum(c);
}

static inline void kf_aff_quant(int n, const float *x, const float *w, float top, float dl,
                                float ml, uint8_t *L, float *mom)
{
    const float id = dl != 0.0f ? 1.0f / dl : 0.0f;
    const __m256 idv = _mm256_set1_ps(id), dlv = _mm256_set1_ps(dl), mlv = _mm256_set1_ps(ml);
    const __m256 zero = _mm256_setzero_ps(), topv = _mm256_set1_ps(top);
    __m256 e = zero, a = zero, b = zero, c = zero;
    for (int i0 = 0; i0 < n; i0 += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i0), wv = _mm256_loadu_ps(w + i0);
        const __m256 q = kf_rnd_clamp8(_mm256_mul_ps(_mm256_add_ps(xv, mlv), idv), zero, topv);
        const __m256 diff = _mm256_sub_ps(_mm256_sub_ps(_mm256_mul_ps(dlv, q), mlv), xv);
        const __m256 wq = _mm256_mul_ps(wv, q);
        e = _mm256_add_ps(e, _mm256_mul_ps(_mm256_mul_ps(wv, diff), diff));
        a = _mm256_add_ps(a, wq);
        b = _mm256_add_ps(b, _mm256_mul_ps(wq, q));
        c = _mm256_add_ps(c, _mm256_mul_ps(wq, xv));
        kf_store_codes(L + i0, q);
    }
    mom[0] = kf_hsum(e);
    mom[1] = kf_hsum(a);
    mom[2] = kf_hsum(b);
    mom[3] = kf_hsum(c);
}

static inline void kf_aff_err8(int n, const float *x, const float *w, float top, const float *dl,
                               const float *ml, float *out)
{
    const __m256 zero = _mm256_setzero_ps(), topv = _mm256_set1_ps(top);
    const __m256 dlv = _mm256_loadu_ps(dl), mlv = _mm256_loadu_ps(ml);
    /* 1/dl where dl != 0, else 0 */
    const __m256 nz = _mm256_cmp_ps(dlv, zero, _CMP_NEQ_UQ);
    const __m256 idv = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), dlv), nz);
    __m256 e = zero;
    for (int i = 0; i < n; i++) {
        const __m256 xi = _mm256_set1_ps(x[i]), wi = _mm256_set1_ps(w[i]);
        const __m256 q = kf_rnd_clamp8(_mm256_mul_ps(_mm256_add_ps(xi, mlv), idv), zero, topv);
        const __m256 diff = _mm256_sub_ps(_mm256_sub_ps(_mm256_mul_ps(dlv, q), mlv), xi);
        e = _mm256_add_ps(e, _mm256_mul_ps(_mm256_mul_ps(wi, diff), diff));
    }
    _mm256_storeu_ps(out, e);
}

/* qp_ks_f16_round of finite values: F16C rounds to nearest even, as
 * qp_f32_to_f16 does (common/qp_half.h), after the same saturation. */
static inline void kf_f16_round8(float *v)
{
    const __m256 lim = _mm256_set1_ps(65504.0f);
    __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(v), _mm256_set1_ps(-65504.0f)), lim);
    x = _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    _mm256_storeu_ps(v, x);
}

static inline void kf_model8(int nsub, const float *v, const float *H, const float *d, float lmin,
                             float lmax, float *out)
{
    const __m256 zero = _mm256_setzero_ps(), dv = _mm256_loadu_ps(d);
    const __m256 lo = _mm256_set1_ps(lmin), hi = _mm256_set1_ps(lmax);
    const __m256 nz = _mm256_cmp_ps(dv, zero, _CMP_NEQ_UQ);
    const __m256 idv = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), dv), nz);
    __m256 e = zero;
    for (int j = 0; j < nsub; j++) {
        const __m256 vj = _mm256_set1_ps(v[j]), hj = _mm256_set1_ps(H[j]);
        const __m256 q = kf_rnd_clamp8(_mm256_mul_ps(vj, idv), lo, hi);
        const __m256 diff = _mm256_sub_ps(_mm256_mul_ps(dv, q), vj);
        e = _mm256_add_ps(e, _mm256_mul_ps(_mm256_mul_ps(hj, diff), diff));
    }
    _mm256_storeu_ps(out, e);
}

static inline void kf_fit4(__m256d sw, __m256d sx, __m256d sxx, __m128 fq, __m128 fqq, __m128 fqx,
                           float *s, float *m, double *err)
{
    const __m256d q = _mm256_cvtps_pd(fq), qq = _mm256_cvtps_pd(fqq), qx = _mm256_cvtps_pd(fqx);
    const __m256d zero = _mm256_setzero_pd(), two = _mm256_set1_pd(2.0);
    const __m256d D = _mm256_sub_pd(_mm256_mul_pd(sw, qq), _mm256_mul_pd(q, q));
    __m256d ss = _mm256_div_pd(_mm256_sub_pd(_mm256_mul_pd(sw, qx), _mm256_mul_pd(q, sx)), D);
    __m256d mm = _mm256_div_pd(_mm256_sub_pd(_mm256_mul_pd(qq, sx), _mm256_mul_pd(q, qx)), D);
    const __m256d s0 = _mm256_div_pd(qx, qq);
    const __m256d clamp = _mm256_cmp_pd(mm, zero, _CMP_GT_OQ);
    ss = _mm256_blendv_pd(ss, s0, clamp);
    mm = _mm256_blendv_pd(mm, zero, clamp);
    const __m256d t2s = _mm256_mul_pd(two, ss), t2m = _mm256_mul_pd(two, mm);
    __m256d e = _mm256_sub_pd(sxx, _mm256_mul_pd(t2s, qx));
    e = _mm256_sub_pd(e, _mm256_mul_pd(t2m, sx));
    e = _mm256_add_pd(e, _mm256_mul_pd(_mm256_mul_pd(ss, ss), qq));
    e = _mm256_add_pd(e, _mm256_mul_pd(_mm256_mul_pd(t2s, mm), q));
    e = _mm256_add_pd(e, _mm256_mul_pd(_mm256_mul_pd(mm, mm), sw));
    const __m256d lim = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(1e-12), sw), qq);
    const __m256d ok = _mm256_and_pd(_mm256_and_pd(_mm256_cmp_pd(D, lim, _CMP_GT_OQ), _mm256_cmp_pd(qq, zero, _CMP_GT_OQ)),
                                     _mm256_cmp_pd(ss, zero, _CMP_GT_OQ));
    _mm256_storeu_pd(err, _mm256_blendv_pd(_mm256_set1_pd(INFINITY), e, ok));
    _mm_storeu_ps(s, _mm256_cvtpd_ps(ss));
    _mm_storeu_ps(m, _mm256_cvtpd_ps(mm));
}

static inline void kf_fit8(const double *vw, const double *vx, const double *vxx, const float *sq,
                           const float *sqq, const float *sqx, float *s, float *m, double *err)
{
    for (int h = 0; h < 8; h += 4)
        kf_fit4(_mm256_loadu_pd(vw + h), _mm256_loadu_pd(vx + h), _mm256_loadu_pd(vxx + h), _mm_loadu_ps(sq + h),
                _mm_loadu_ps(sqq + h), _mm_loadu_ps(sqx + h), s + h, m + h, err + h);
}

/* Grid lookup: level values of v (and indices when k != NULL). */
typedef struct {
    int uniform;
    __m256 lo, hi;     /* uniform: clamp range */
    __m256i lo_i;      /* uniform: index offset */
    __m256 mid[QP_KS_MAX_LEVELS - 1];
    __m256 tab_lo, tab_hi; /* table grids of up to 16 levels */
    int nmid;
    int iq4;           /* the IQ4 table: index by bins, not by 15 compares */
} kf_grid8;

/* IQ4 index by bins of width 32 over [-128, 128): index = base[b] + (v >
 * A[b]) + (v > B[b]) + (v > C[b]), A, B, C the (at most three) midpoints
 * inside bin b, one permute per table. Checked against the count of
 * midpoints below v for every float with |v| <= 300, NaN and +-inf (beyond
 * 300 the bins clamp to the ends, where the compares are exact): the same
 * index as the portable kernel. */
static const float KF_IQ4_LEV[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};
static const int32_t KF_IQ4_BASE[8] = {0, 1, 3, 5, 8, 11, 13, 14};
static const float KF_IQ4_A[8] = {-115.5f, -93.5f, -57.0f, -28.5f, 7.0f, 45.5f, 79.0f, 101.0f};
static const float KF_IQ4_B[8] = {INFINITY, -74.0f, -42.0f, -16.0f, 19.0f, 61.0f, INFINITY, INFINITY};
static const float KF_IQ4_C[8] = {INFINITY, INFINITY, INFINITY, -4.5f, 31.5f, INFINITY, INFINITY, INFINITY};

static inline void kf_grid8_init(kf_grid8 *G, const qp_ks_grid *g)
{
    G->uniform = g->uniform;
    G->lo = _mm256_set1_ps(g->lev[0]);
    G->hi = _mm256_set1_ps(g->lev[g->nlev - 1]);
    G->lo_i = _mm256_set1_epi32(g->lo);
    G->nmid = g->uniform ? 0 : g->nlev - 1;
    float t[16] = {0};
    for (int k = 0; k < 16 && k < g->nlev; k++)
        t[k] = g->lev[k];
    G->tab_lo = _mm256_loadu_ps(t);
    G->tab_hi = _mm256_loadu_ps(t + 8);
    G->iq4 = !g->uniform && g->nlev == 16 && memcmp(g->lev, KF_IQ4_LEV, sizeof KF_IQ4_LEV) == 0;
    if (!G->iq4)
        for (int m = 0; m < G->nmid; m++)
            G->mid[m] = _mm256_set1_ps(g->mid[m]);
}

static inline __m256 kf_level8(const kf_grid8 *G, __m256 v, __m256i *k)
{
    if (G->uniform) {
        const __m256 q = kf_rnd_clamp8(v, G->lo, G->hi);
        if (k)
            *k = _mm256_sub_epi32(_mm256_cvttps_epi32(q), G->lo_i);
        return q;
    }
    __m256i c;
    if (G->iq4) {
        __m256 vc = _mm256_max_ps(v, _mm256_set1_ps(-128.0f)); /* NaN -> bin 0 */
        vc = _mm256_min_ps(vc, _mm256_set1_ps(127.5f));
        const __m256i b = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_add_ps(vc, _mm256_set1_ps(128.0f)),
                                                            _mm256_set1_ps(0.03125f)));
        c = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(const void *)KF_IQ4_BASE), b);
        c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_permutevar8x32_ps(_mm256_loadu_ps(KF_IQ4_A), b), _CMP_GT_OQ)));
        c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_permutevar8x32_ps(_mm256_loadu_ps(KF_IQ4_B), b), _CMP_GT_OQ)));
        c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_permutevar8x32_ps(_mm256_loadu_ps(KF_IQ4_C), b), _CMP_GT_OQ)));
    } else {
        c = _mm256_setzero_si256();
        for (int m = 0; m < G->nmid; m++) /* count of midpoints below v (mask = -1) */
            c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(v, G->mid[m], _CMP_GT_OQ)));
    }
    if (k)
        *k = c;
    const __m256 a = _mm256_permutevar8x32_ps(G->tab_lo, c), b = _mm256_permutevar8x32_ps(G->tab_hi, c);
    const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(c, _mm256_set1_epi32(7)));
    return _mm256_blendv_ps(a, b, upper);
}

static inline void kf_store_idx(uint8_t *L, __m256i i)
{
    const __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64((__m128i *)L, _mm_packus_epi16(p, p));
}

static inline void kf_sym_cand8(int n, const float *x, const float *w, const qp_ks_grid *g,
                                const float *t, float *sqx, float *sqq)
{
    kf_grid8 G;
    kf_grid8_init(&G, g);
    const __m256 tv = _mm256_loadu_ps(t);
    __m256 a = _mm256_setzero_ps(), b = a;
    for (int i = 0; i < n; i++) {
        const __m256 xi = _mm256_set1_ps(x[i]), wi = _mm256_set1_ps(w[i]);
        const __m256 v = kf_level8(&G, _mm256_mul_ps(xi, tv), NULL);
        const __m256 wv = _mm256_mul_ps(wi, v);
        a = _mm256_add_ps(a, _mm256_mul_ps(wv, xi));
        b = _mm256_add_ps(b, _mm256_mul_ps(wv, v));
    }
    _mm256_storeu_ps(sqx, a);
    _mm256_storeu_ps(sqq, b);
}

static inline void kf_sym_quant(int n, const float *x, const float *w, const qp_ks_grid *g,
                                float dl, uint8_t *L, float *mom)
{
    kf_grid8 G;
    kf_grid8_init(&G, g);
    const float id = dl != 0.0f ? 1.0f / dl : 0.0f;
    const __m256 idv = _mm256_set1_ps(id), dlv = _mm256_set1_ps(dl);
    __m256 e = _mm256_setzero_ps(), a = e, b = e;
    for (int i0 = 0; i0 < n; i0 += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i0), wv = _mm256_loadu_ps(w + i0);
        __m256i k;
        const __m256 v = kf_level8(&G, _mm256_mul_ps(xv, idv), &k);
        const __m256 diff = _mm256_sub_ps(_mm256_mul_ps(dlv, v), xv);
        const __m256 wl = _mm256_mul_ps(wv, v);
        e = _mm256_add_ps(e, _mm256_mul_ps(_mm256_mul_ps(wv, diff), diff));
        a = _mm256_add_ps(a, _mm256_mul_ps(wl, xv));
        b = _mm256_add_ps(b, _mm256_mul_ps(wl, v));
        kf_store_idx(L + i0, k);
    }
    mom[0] = kf_hsum(e);
    mom[1] = kf_hsum(a);
    mom[2] = kf_hsum(b);
}

static inline void kf_sym_err4x2(int n, const float *xa, const float *wa, const float *xb,
                                 const float *wb, const qp_ks_grid *g, const float *dl, float *out)
{
    kf_grid8 G;
    kf_grid8_init(&G, g);
    const __m256 zero = _mm256_setzero_ps(), dlv = _mm256_loadu_ps(dl);
    const __m256 nz = _mm256_cmp_ps(dlv, zero, _CMP_NEQ_UQ);
    const __m256 idv = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), dlv), nz);
    __m256 e = zero;
    for (int i = 0; i < n; i++) {
        const __m256 xi = _mm256_set_m128(_mm_set1_ps(xb[i]), _mm_set1_ps(xa[i]));
        const __m256 wi = _mm256_set_m128(_mm_set1_ps(wb[i]), _mm_set1_ps(wa[i]));
        const __m256 v = kf_level8(&G, _mm256_mul_ps(xi, idv), NULL);
        const __m256 diff = _mm256_sub_ps(_mm256_mul_ps(dlv, v), xi);
        e = _mm256_add_ps(e, _mm256_mul_ps(_mm256_mul_ps(wi, diff), diff));
    }
    _mm256_storeu_ps(out, e);
}

#define KF_AFFINE_NAME qp_kf_affine_superblock_avx2
#define KF_SYM_NAME qp_kf_sym_superblock_avx2
#define KF_F16_NAME qp_kf_sym_block_f16_avx2
#define KF_F16N_NAME qp_kf_sym_blocks_f16_avx2
#define KF_AFF16_NAME qp_kf_affine_block_f16_avx2
#include "quant/kquant_fast_impl.h"
