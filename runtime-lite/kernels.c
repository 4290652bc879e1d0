/* kernels.c - scalar row kernels and the dispatch table (see kernels.h). */
#include "runtime-lite/kernels.h"

#include <math.h>
#include <string.h>

#include "common/qp_cpu.h"

static void rmsnorm_scalar(float *out, const float *x, const float *w, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    const float inv = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    for (int64_t i = 0; i < n; i++)
        out[i] = w[i] * (x[i] * inv);
}

static void swiglu_scalar(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static float max_scalar(const float *x, int64_t n)
{
    float m = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > m)
            m = x[i];
    return m;
}

static void softmax_scalar(float *x, int64_t n)
{
    const float m = max_scalar(x, n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

static double sum_exp_scalar(const float *x, int64_t n, float m)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += expf(x[i] - m);
    return sum;
}

static void attn_row_scalar(const float *q, const float *k, int64_t kstride, const float *v, int64_t vstride,
                            int64_t n_keys, int64_t head_dim, float scale, float *scores, float *out)
{
    for (int64_t s = 0; s < n_keys; s++) {
        const float *ks = k + s * kstride;
        float dot = 0.0f;
        for (int64_t d = 0; d < head_dim; d++)
            dot += q[d] * ks[d];
        scores[s] = dot * scale;
    }
    softmax_scalar(scores, n_keys);
    memset(out, 0, (size_t)head_dim * sizeof(float));
    for (int64_t s = 0; s < n_keys; s++) {
        const float p = scores[s];
        const float *vs = v + s * vstride;
        for (int64_t d = 0; d < head_dim; d++)
            out[d] += p * vs[d];
    }
}

static const qp_rt_kernels SCALAR = {
    .rmsnorm = rmsnorm_scalar,
    .swiglu = swiglu_scalar,
    .softmax = softmax_scalar,
    .max = max_scalar,
    .sum_exp = sum_exp_scalar,
    .attn_row = attn_row_scalar,
};

const qp_rt_kernels *qp_rt_kernels_scalar(void) { return &SCALAR; }

const qp_rt_kernels *qp_rt_kernels_for(int avx2) { return avx2 ? qp_rt_kernels_avx2() : &SCALAR; }

const qp_rt_kernels *qp_rt_kernels_get(void) { return qp_rt_kernels_for(qp_cpu_get().avx2); }

void qp_rt_rope_table(float *cos_tab, float *sin_tab, int64_t n_pos, int64_t head_dim, double theta)
{
    const int64_t half = head_dim / 2;
    for (int64_t i = 0; i < half; i++) {
        /* transformers: inv_freq = 1 / theta ** (arange(0, D, 2) / D), float32 */
        const float inv_freq = (float)(1.0 / pow(theta, (double)(2 * i) / (double)head_dim));
        for (int64_t p = 0; p < n_pos; p++) {
            const float angle = (float)p * inv_freq;
            cos_tab[p * half + i] = cosf(angle);
            sin_tab[p * half + i] = sinf(angle);
        }
    }
}

void qp_rt_rope_neox(float *x, int64_t head_dim, const float *cos_row, const float *sin_row)
{
    const int64_t half = head_dim / 2;
    for (int64_t i = 0; i < half; i++) {
        const float x0 = x[i], x1 = x[i + half];
        x[i] = x0 * cos_row[i] - x1 * sin_row[i];
        x[i + half] = x1 * cos_row[i] + x0 * sin_row[i];
    }
}
