/* kernels_avx2.c - AVX2/FMA twins of the row kernels (kernels.h).
 *
 * exp is computed as 2^n * e^r with n = round(x / ln 2), |r| <= ln2/2, and a
 * degree-7 Taylor polynomial for e^r (truncation error < 1e-8 relative, so
 * results stay within ~2 ulp of expf). Inputs are clamped to [-87, 88] so
 * 2^n stays a normal float; below -87 the result (~1.6e-38) is negligible
 * next to the terms it is summed with. */
#include "runtime-lite/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline __m256 exp8(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), _mm256_min_ps(_mm256_set1_ps(88.0f), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = x - n*ln2, ln2 split in a high part exact in float and the rest */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline double hsum4d(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

/* Scalar tail with the same polynomial, so a row's result does not depend
 * on where it is cut into vectors. */
static inline float exp1(float x)
{
    float buf[8] = {x};
    _mm256_storeu_ps(buf, exp8(_mm256_loadu_ps(buf)));
    return buf[0];
}

static void rmsnorm_avx2(float *out, const float *x, const float *w, int64_t n, float eps)
{
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        acc0 = _mm256_fmadd_pd(lo, lo, acc0);
        acc1 = _mm256_fmadd_pd(hi, hi, acc1);
    }
    double ss = hsum4d(_mm256_add_pd(acc0, acc1));
    for (; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    const float inv = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv)));
    for (; i < n; i++)
        out[i] = w[i] * (x[i] * inv);
}

static void swiglu_avx2(float *g, const float *u, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = exp8(_mm256_sub_ps(zero, x));
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, e));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + exp1(-g[i])) * u[i];
}

static float max_avx2(const float *x, int64_t n)
{
    int64_t i = 0;
    float m = x[0];
    if (n >= 8) {
        __m256 vm = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8)
            vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        float buf[8];
        _mm256_storeu_ps(buf, vm);
        m = buf[0];
        for (int j = 1; j < 8; j++)
            if (buf[j] > m)
                m = buf[j];
    }
    for (; i < n; i++)
        if (x[i] > m)
            m = x[i];
    return m;
}

/* x[i] = exp(x[i] - m); returns the sum in double */
static double exp_sub_store(float *x, int64_t n, float m)
{
    const __m256 vm = _mm256_set1_ps(m);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double sum = hsum4d(_mm256_add_pd(acc0, acc1));
    for (; i < n; i++) {
        x[i] = exp1(x[i] - m);
        sum += x[i];
    }
    return sum;
}

static void softmax_avx2(float *x, int64_t n)
{
    const float m = max_avx2(x, n);
    const double sum = exp_sub_store(x, n, m);
    const float inv = (float)(1.0 / sum);
    const __m256 vinv = _mm256_set1_ps(inv);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
    for (; i < n; i++)
        x[i] *= inv;
}

static double sum_exp_avx2(const float *x, int64_t n, float m)
{
    const __m256 vm = _mm256_set1_ps(m);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double sum = hsum4d(_mm256_add_pd(acc0, acc1));
    for (; i < n; i++)
        sum += exp1(x[i] - m);
    return sum;
}

/* Scores of 4 keys at once: the horizontal sums are combined with hadd. */
static inline __m128 dot4(const float *q, const float *k0, const float *k1, const float *k2, const float *k3,
                          int64_t D)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) {
        const __m256 qv = _mm256_loadu_ps(q + d);
        a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + d), a0);
        a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + d), a1);
        a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + d), a2);
        a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + d), a3);
    }
    const __m256 h01 = _mm256_hadd_ps(a0, a1);   /* a0 pairs, a1 pairs per lane */
    const __m256 h23 = _mm256_hadd_ps(a2, a3);
    const __m256 h = _mm256_hadd_ps(h01, h23);   /* per 128-bit lane: a0 a1 a2 a3 partials */
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

static void attn_row_avx2(const float *q, const float *k, int64_t kstride, const float *v, int64_t vstride,
                          int64_t n_keys, int64_t D, float scale, float *scores, float *out)
{
    if (D % 8 != 0) {
        qp_rt_kernels_scalar()->attn_row(q, k, kstride, v, vstride, n_keys, D, scale, scores, out);
        return;
    }
    const __m128 vscale = _mm_set1_ps(scale);
    int64_t s = 0;
    for (; s + 4 <= n_keys; s += 4) {
        const float *ks = k + s * kstride;
        const __m128 d4 = dot4(q, ks, ks + kstride, ks + 2 * kstride, ks + 3 * kstride, D);
        _mm_storeu_ps(scores + s, _mm_mul_ps(d4, vscale));
    }
    for (; s < n_keys; s++) {
        const float *ks = k + s * kstride;
        __m256 a = _mm256_setzero_ps();
        for (int64_t d = 0; d < D; d += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(ks + d), a);
        scores[s] = hsum8(a) * scale;
    }
    softmax_avx2(scores, n_keys);
    /* out = sum_s p_s v_s, 64 dimensions (8 accumulators) at a time */
    for (int64_t d0 = 0; d0 < D; d0 += 64) {
        const int nv = (int)((D - d0) >= 64 ? 8 : (D - d0) / 8);
        __m256 acc[8];
        for (int j = 0; j < 8; j++)
            acc[j] = _mm256_setzero_ps();
        for (s = 0; s < n_keys; s++) {
            const __m256 p = _mm256_set1_ps(scores[s]);
            const float *vs = v + s * vstride + d0;
            for (int j = 0; j < nv; j++)
                acc[j] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vs + 8 * j), acc[j]);
        }
        for (int j = 0; j < nv; j++)
            _mm256_storeu_ps(out + d0 + 8 * j, acc[j]);
    }
}

static const qp_rt_kernels AVX2 = {
    .rmsnorm = rmsnorm_avx2,
    .swiglu = swiglu_avx2,
    .softmax = softmax_avx2,
    .max = max_avx2,
    .sum_exp = sum_exp_avx2,
    .attn_row = attn_row_avx2,
};

const qp_rt_kernels *qp_rt_kernels_avx2(void) { return &AVX2; }
