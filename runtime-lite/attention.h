/* attention.h - causal grouped-query attention of a batch of queries over
 * the KV cache, computed in blocks of 6 queries on the matmul tile:
 * scores = Q K^T (keys packed k-major in panels of 16), scaled, softmax
 * over the keys each query may see, then out = P V with V read in place.
 * Every output value is a fixed-order sum, so a query gets the same bits
 * whether it runs inside a batch or alone against the cache, for any
 * thread count. Head sizes not a multiple of 16 use the per-row kernel. */
#ifndef QP_RT_ATTENTION_H
#define QP_RT_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const float *q;        /* [n_tok][n_head * head_dim], normed and rotated */
    const float *k, *v;    /* this layer's cache: [n_ctx][n_head_kv * head_dim] */
    float *out;            /* [n_tok][n_head * head_dim] */
    float *kpack;          /* qp_rt_attn_kpack_floats() of scratch */
    float *scratch;        /* n_threads * qp_rt_attn_scratch_floats() */
    int64_t n_tok, pos0;   /* queries are at positions pos0 .. pos0+n_tok-1 */
    int64_t n_head, n_head_kv, head_dim, n_ctx;
    int avx2;
} qp_rt_attn;

size_t qp_rt_attn_kpack_floats(int64_t n_ctx, int64_t n_head_kv, int64_t head_dim);
size_t qp_rt_attn_scratch_floats(int64_t n_ctx, int64_t head_dim); /* per thread */

void qp_rt_attention(const qp_rt_attn *a, int n_threads);

#endif
