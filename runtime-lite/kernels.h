/* kernels.h - the named row kernels of the forward pass other than the
 * matrix products: RMSNorm, rotary embedding, SwiGLU, softmax, one
 * attention row, log-sum-exp. Each has a portable scalar version and an
 * AVX2 twin (kernels_avx2.c); callers fetch the table once per operation. */
#ifndef QP_RT_KERNELS_H
#define QP_RT_KERNELS_H

#include <stdint.h>

typedef struct {
    /* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i] (out may be x) */
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
    /* g[i] = silu(g[i]) * u[i] */
    void (*swiglu)(float *g, const float *u, int64_t n);
    /* x = softmax(x), in place */
    void (*softmax)(float *x, int64_t n);
    /* max of x[0..n) (n >= 1) */
    float (*max)(const float *x, int64_t n);
    /* sum of exp(x[i] - m), accumulated in double */
    double (*sum_exp)(const float *x, int64_t n, float m);
    /* One query of causal attention over n_keys cached keys/values:
     * out[d] = sum_s softmax_s(scale * q.k_s) v_s[d]. `scores` holds n_keys
     * floats of scratch. k_s = k + s*kstride, v_s = v + s*vstride. */
    void (*attn_row)(const float *q, const float *k, int64_t kstride, const float *v, int64_t vstride,
                     int64_t n_keys, int64_t head_dim, float scale, float *scores, float *out);
} qp_rt_kernels;

/* The table for this CPU (AVX2 when present and not forced scalar). */
const qp_rt_kernels *qp_rt_kernels_get(void);
const qp_rt_kernels *qp_rt_kernels_scalar(void);
/* avx2 non-zero: the AVX2 table (the caller has checked qp_cpu_get). */
const qp_rt_kernels *qp_rt_kernels_for(int avx2);
/* Only valid to call on an AVX2 CPU (tests check qp_cpu_detect first). */
const qp_rt_kernels *qp_rt_kernels_avx2(void);

/* Rotary embedding tables, HF style: for pair i < D/2 the angle at position
 * p is p * theta^(-2i/D) (computed in float as transformers does);
 * cos/sin are [n_pos][D/2]. */
void qp_rt_rope_table(float *cos_tab, float *sin_tab, int64_t n_pos, int64_t head_dim, double theta);

/* Rotate one head in place, NEOX / rotate-half pairing (i, i + D/2). */
void qp_rt_rope_neox(float *x, int64_t head_dim, const float *cos_row, const float *sin_row);

#endif
