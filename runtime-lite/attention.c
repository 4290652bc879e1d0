/* attention.c - blocked causal attention (see attention.h). */
#include "runtime-lite/attention.h"

#include <math.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "common/qp_threads.h"
#include "runtime-lite/kernels.h"
#include "runtime-lite/matmul.h"

#define BM QP_RT_TILE_M /* queries per block */
#define BN QP_RT_TILE_N /* keys per panel, head dims per output tile */

static int64_t round16(int64_t n) { return (n + BN - 1) / BN * BN; }

size_t qp_rt_attn_kpack_floats(int64_t n_ctx, int64_t n_head_kv, int64_t head_dim)
{
    return (size_t)(round16(n_ctx) * n_head_kv * head_dim);
}

/* scores [BM][round16(n_ctx)] + one output tile, or the row kernel's
 * scores [n_ctx] */
size_t qp_rt_attn_scratch_floats(int64_t n_ctx, int64_t head_dim)
{
    (void)head_dim;
    return (size_t)(BM * round16(n_ctx) + BM * BN);
}

typedef struct {
    const qp_rt_attn *a;
    const qp_rt_kernels *k;
    qp_rt_tile_fn tile;
    qp_rt_pack_fn pack;
    int64_t n_keys, n_pan, n_blocks;
    float scale;
} attn_ctx;

/* Keys of kv head h, panel j: 16 keys x D, k-major (d outer). */
static void pack_worker(void *vctx, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const attn_ctx *c = vctx;
    const qp_rt_attn *a = c->a;
    const int64_t D = a->head_dim, KVD = a->n_head_kv * D;
    for (int64_t it = begin; it < end; it++) {
        const int64_t h = it / c->n_pan, j = it % c->n_pan;
        const int64_t nr = c->n_keys - j * BN < BN ? c->n_keys - j * BN : BN;
        c->pack(QP_GGML_F32, a->k + j * BN * KVD + h * D, (uint64_t)KVD * sizeof(float), (int)nr, D,
                a->kpack + (h * c->n_pan + j) * D * BN);
    }
}

static void block_worker(void *vctx, int64_t begin, int64_t end, int tid)
{
    const attn_ctx *c = vctx;
    const qp_rt_attn *a = c->a;
    const int64_t D = a->head_dim, HD = a->n_head * D, KVD = a->n_head_kv * D;
    const int64_t group = a->n_head / a->n_head_kv, ld_s = round16(a->n_ctx);
    float *S = a->scratch + (size_t)tid * qp_rt_attn_scratch_floats(a->n_ctx, D);
    float *obuf = S + BM * ld_s;
    for (int64_t it = begin; it < end; it++) {
        const int64_t h = it / c->n_blocks, t0 = (it % c->n_blocks) * BM, kvh = h / group;
        const int m = a->n_tok - t0 < BM ? (int)(a->n_tok - t0) : BM;
        const int64_t nk = a->pos0 + t0 + m; /* keys the block's last query sees */
        const int64_t np = (nk + BN - 1) / BN;
        const float *q = a->q + t0 * HD + h * D;
        for (int64_t j = 0; j < np; j++)
            c->tile(m, D, q, HD, a->kpack + (kvh * c->n_pan + j) * D * BN, BN, S + j * BN, ld_s);
        for (int i = 0; i < m; i++) {
            float *row = S + i * ld_s;
            const int64_t valid = a->pos0 + t0 + i + 1;
            for (int64_t s = 0; s < valid; s++)
                row[s] *= c->scale;
            c->k->softmax(row, valid);
            memset(row + valid, 0, (size_t)(nk - valid) * sizeof(float));
        }
        for (int64_t d0 = 0; d0 < D; d0 += BN) {
            c->tile(m, nk, S, ld_s, a->v + kvh * D + d0, KVD, obuf, BN);
            for (int i = 0; i < m; i++)
                memcpy(a->out + (t0 + i) * HD + h * D + d0, obuf + i * BN, BN * sizeof(float));
        }
    }
}

/* head_dim not a multiple of 16: one query row at a time */
static void row_worker(void *vctx, int64_t begin, int64_t end, int tid)
{
    const attn_ctx *c = vctx;
    const qp_rt_attn *a = c->a;
    const int64_t D = a->head_dim, HD = a->n_head * D, KVD = a->n_head_kv * D;
    const int64_t group = a->n_head / a->n_head_kv;
    float *scores = a->scratch + (size_t)tid * qp_rt_attn_scratch_floats(a->n_ctx, D);
    for (int64_t it = begin; it < end; it++) {
        const int64_t h = it / a->n_tok, t = it % a->n_tok, kvh = h / group;
        c->k->attn_row(a->q + t * HD + h * D, a->k + kvh * D, KVD, a->v + kvh * D, KVD, a->pos0 + t + 1, D,
                       c->scale, scores, a->out + t * HD + h * D);
    }
}

void qp_rt_attention(const qp_rt_attn *a, int n_threads)
{
    attn_ctx c;
    c.a = a;
    c.k = qp_rt_kernels_for(a->avx2);
    c.tile = a->avx2 ? qp_rt_tile_avx2 : qp_rt_tile_scalar;
    c.pack = a->avx2 ? qp_rt_pack_avx2 : qp_rt_pack_scalar;
    c.scale = (float)(1.0 / sqrt((double)a->head_dim));
    c.n_keys = a->pos0 + a->n_tok;
    c.n_pan = (c.n_keys + BN - 1) / BN;
    c.n_blocks = (a->n_tok + BM - 1) / BM;
    if (a->head_dim % BN != 0) {
        qp_parallel_for(n_threads, a->n_head * a->n_tok, row_worker, &c);
        return;
    }
    qp_parallel_for(n_threads, a->n_head_kv * c.n_pan, pack_worker, &c);
    qp_parallel_for(n_threads, a->n_head * c.n_blocks, block_worker, &c);
}
